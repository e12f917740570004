"""Re-verify everything recorded for one MLflow run, from the stored bytes alone.

>>> from airflow_mlsecops.lifecycle.verification import verify_run
>>> report = verify_run("3f2a...")          # doctest: +SKIP
>>> report.raise_if_failed()                # raises VerificationError naming every failure

Identity and order come from signed content only: the statement names the task, try and record
(the folder name is checked against it, never read), and the ledger sequence orders the records.
``report.results`` is in ledger order, ``report.order`` gives each record's sequence, and
``report.trusted_keys`` names every key trusted and where it came from.

Checks, each reported by name so a failure says exactly which gate, which artifact, which check:

* ``ledger-chain``: the ledger's hash chain is intact from this run's oldest row (or the newest
  trusted checkpoint, whichever is earlier) to the head, and agrees with that checkpoint (a cut
  tail fails); without checkpoints the whole chain is walked;
* per recorded envelope: ``ledger-entry`` (the envelope's bytes are anchored in the ledger for this
  run), ``signature`` (a trusted key signed it, and was valid when it did: see below),
  ``statement`` (a well-formed in-toto statement of this pipeline run), ``file:<name>`` (each
  evidence file matches the digest in the statement, and no unattested file sits beside it),
  ``attestation:<name>`` (further signed statements stored beside it, such as SLSA provenance,
  verify too), ``subject:<name>`` (artifacts stored in MLflow, such as models, still hash to the
  signed digest; local files are re-hashed when present);
* per recorded envelope also ``location`` (it is stored in the folder its signed statement names:
  task, try and record; see :func:`~airflow_mlsecops.io.mlflow_store.evidence_dir_for`) and
  ``unique`` (the same envelope is not stored twice);
* ``verdict-tag`` per task: the MLflow tags (verdict, gate, evidence folder, ledger seq) agree with
  the latest signed record of the task, by ledger sequence; a tag no signed record backs fails;
* ``ledger-complete``: every ledger entry of this run has its evidence in MLflow.

Key validity (trust files, :mod:`airflow_mlsecops.evidence.trust`): a key with a window or a
revocation verifies a record only if both the record's ledger row time (hash-chained) and its
signed statement's finish time lie inside ``[not_before, not_after)`` and before ``revoked_at``;
a record with no ledger row has no known signing time and is refused by such a key. The ledger
time is what places a signature before a revocation: whoever holds a revoked key and can also
write the ledger's database could append rows dated earlier, which a signed ledger checkpoint
made before the revocation rules out for every row up to it.
"""

from __future__ import annotations

import enum
import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.checkpoint import verify_ledger
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.dsse import Envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningTime, VerifyingKey, format_time
from airflow_mlsecops.evidence.ledger import KIND_ATTESTATION, KIND_RECORDING_FAILED, EvidenceLedger, LedgerEntry
from airflow_mlsecops.evidence.models import GateResult
from airflow_mlsecops.evidence.statement import GateStatement
from airflow_mlsecops.evidence.trust import ledger_signing_time, statement_signing_time
from airflow_mlsecops.exceptions import MLSecOpsError, VerificationError
from airflow_mlsecops.io.mlflow_store import (
    ENVELOPE_FILE,
    TAG_DAG_ID,
    TAG_PREFIX,
    TAG_RUN_ID,
    MLflowEvidenceStore,
    evidence_dir_for,
    task_key_for,
)

#: The per-task tags the recorder writes (``mlsecops.gate.<task key>.<name>``), all recomputed by the verifier.
_TAG_FIELDS = ("verdict", "gate", "evidence", "ledger_seq")


class Status(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    scope: str  # "run" or an evidence directory's task key and attempt
    name: str
    status: Status
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"scope": self.scope, "check": self.name, "status": self.status.value, "detail": self.detail}


@dataclass
class VerificationReport:
    mlflow_run_id: str
    tracking_uri: str
    checks: list[Check] = field(default_factory=list)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)  # scope -> {gate, verdict, keyid}
    results: dict[str, GateResult] = field(default_factory=dict)  # scope -> the signed result, in ledger order
    order: dict[str, int | None] = field(default_factory=dict)  # scope -> ledger seq of its envelope (None: not anchored)
    #: scope -> sha256 of the policy the record was made under, as signed in its statement (None: no policy)
    policy_digests: dict[str, str | None] = field(default_factory=dict)
    #: keyid, key_type, source, validity (and not_before, not_after, revoked_at, revocation_reason when set) of every trusted key
    trusted_keys: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status is not Status.FAILED for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.FAILED]

    def add(self, scope: str, name: str, status: Status, detail: str = "") -> None:
        self.checks.append(Check(scope, name, status, detail))

    def raise_if_failed(self) -> None:
        if not self.ok:
            lines = [f"{c.scope}: {c.name}: {c.detail}" for c in self.failures] or ["nothing was verified"]
            raise VerificationError("evidence did not verify:\n  " + "\n  ".join(lines))

    def sort_by_ledger_order(self) -> None:
        """Order ``results`` and ``gates`` by ledger sequence (records not in the ledger last): the
        order in which they were recorded, which the folder names do not say."""
        ranked = sorted(self.results, key=lambda scope: (self.order.get(scope) is None, self.order.get(scope) or 0, scope))
        self.results = {scope: self.results[scope] for scope in ranked}
        self.gates = {scope: self.gates[scope] for scope in ranked if scope in self.gates}

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlflow_run_id": self.mlflow_run_id,
            "tracking_uri": self.tracking_uri,
            "verified": self.ok,
            "trusted_keys": self.trusted_keys,
            "gates": self.gates,
            "checks": [c.to_dict() for c in self.checks],
            "failures": [c.to_dict() for c in self.failures],
        }


class _SubjectHasher:
    """Re-hashes subjects, once each, fetching MLflow-stored ones into a scratch directory."""

    def __init__(self, store: MLflowEvidenceStore, scratch: Path) -> None:
        self.store = store
        self.scratch = scratch
        self.cache: dict[str, tuple[Status, str]] = {}

    def check(self, name: str, expected: str) -> tuple[Status, str]:
        key = f"{name}@{expected}"
        if key not in self.cache:
            self.cache[key] = self._check(name, expected)
        return self.cache[key]

    def _check(self, name: str, expected: str) -> tuple[Status, str]:
        if name.startswith("mlsecops-gate-result:"):
            return Status.SKIPPED, "no input was read; the statement is about the result itself"
        try:
            if name.startswith(("models:/", "runs:/")):
                target = self.scratch / hashlib.sha256(name.encode()).hexdigest()[:16]
                actual = sha256_path(self.store.download_uri(name, target))
            else:
                local = Path(name[len("file://") :] if name.startswith("file://") else name)
                if "://" in name and not name.startswith("file://"):
                    return Status.SKIPPED, "stored outside MLflow; re-hash it where it lives with `mlsecops verify-artifact`"
                if not local.is_absolute() or not local.exists():
                    return Status.SKIPPED, "not reachable from here"
                actual = sha256_path(local)
        except MLSecOpsError as exc:
            return Status.FAILED, f"could not be re-hashed: {exc}"
        if actual != expected:
            return Status.FAILED, f"sha256 is {actual[:16]}..., the attestation says {expected[:16]}..."
        return Status.OK, f"sha256 {expected[:16]}... matches"


def _identity(result: GateResult, record: str | None) -> str:
    """The signed identity of a record, for messages."""
    ctx = result.context
    if ctx is None:
        return f"gate {result.gate}, recorded outside Airflow at {result.started_at.isoformat()}"
    parts = [f"dag {ctx.dag_id}", f"run {ctx.run_id}", f"task {ctx.task_id}", f"try {ctx.try_number}"]
    if ctx.map_index >= 0:
        parts.append(f"map index {ctx.map_index}")
    if record:
        parts.append(f"record {record}")
    return ", ".join(parts)


def _location_check(artifact_dir: str, statement: GateStatement) -> tuple[Status, str]:
    """``location``: the envelope is stored where its signed identity says it belongs."""
    result = statement.result
    expected = evidence_dir_for(result, statement.record)
    here = _scope(artifact_dir)
    if artifact_dir == expected:
        return Status.OK, f"signed identity: {_identity(result, statement.record)}"
    if not statement.names_record and result.context is not None and artifact_dir.startswith(expected + "."):
        # Recorded before the record name was signed: the task and try are checked, the record name
        # cannot be (the ledger sequence orders such records all the same).
        return Status.OK, f"signed identity: {_identity(result, None)} (record name not signed: an older record)"
    return (
        Status.FAILED,
        f"stored at {here}, but its signed identity ({_identity(result, statement.record)}) belongs at {_scope(expected)}",
    )


def _scope(artifact_dir: str) -> str:
    return artifact_dir.split("/evidence/", 1)[-1]


def describe_trusted_keys(trusted: Mapping[str, VerifyingKey]) -> list[dict[str, str]]:
    """Each trusted key's id, type, where it came from (the file or trust file entry, and the
    setting that named it) and when it is valid (``validity`` in words; ``not_before``,
    ``not_after``, ``revoked_at`` and ``revocation_reason`` only when set), for reports."""
    described = []
    for keyid, key in sorted(trusted.items()):
        entry = {"keyid": keyid, "key_type": key.key_type, "source": key.origin or "given by the caller"}
        entry["validity"] = key.validity
        for name, moment in (("not_before", key.not_before), ("not_after", key.not_after), ("revoked_at", key.revoked_at)):
            if moment is not None:
                entry[name] = format_time(moment)
        if key.revoked_at is not None:
            entry["revocation_reason"] = key.revocation_reason
        described.append(entry)
    return described


def _check_statement_time(key: VerifyingKey, statement: GateStatement) -> None:
    """The signed statement's own time lies inside the window of the key that signed it (raises
    :class:`~airflow_mlsecops.exceptions.SignatureInvalid` otherwise)."""
    key.check_signing_time(statement_signing_time(statement.result.finished_at))


def verify_run(
    mlflow_run_id: str,
    *,
    settings: Settings | None = None,
    store: MLflowEvidenceStore | None = None,
    ledger: EvidenceLedger | None = None,
    trusted_keys: Mapping[str, VerifyingKey] | None = None,
    check_subjects: bool = True,
    checkpoint: str | None = None,
) -> VerificationReport:
    """Verify one MLflow run's evidence. Raises only when verification cannot run at all
    (:class:`ConfigurationError`, :class:`StoreUnavailable`); every failed check is in the report.

    Nothing a writer of the MLflow run controls without the signing key decides anything: a
    record's identity (task, try, record) comes from its signed statement, which must match the
    folder it is stored in; records are ordered by their ledger sequence; verdict tags are
    recomputed from the latest signed record of each task and compared.

    :param checkpoint: a signed ledger checkpoint (path or ``s3://`` URI) the ledger must agree
        with; default: the newest trusted one under ``settings.ledger_checkpoints``, if configured.
    """
    settings = settings or Settings.from_env()
    store = store or MLflowEvidenceStore.from_settings(settings)
    trusted = dict(trusted_keys) if trusted_keys is not None else settings.load_trusted_keys()
    report = VerificationReport(mlflow_run_id=mlflow_run_id, tracking_uri=store.tracking_uri)
    report.trusted_keys = describe_trusted_keys(trusted)

    run_tags = store.run_tags(mlflow_run_id)  # unknown run -> ConfigurationError
    ledger = ledger or EvidenceLedger(settings.ledger_url, create=False)

    entries = ledger.entries_for_mlflow_run(mlflow_run_id)
    try:
        # From this run's oldest row (or the checkpoint, whichever is earlier) to the head: the rows
        # this verification relies on are re-hashed, and they chain into the signed checkpoint.
        chain = verify_ledger(
            ledger,
            settings=settings,
            trusted_keys=trusted,
            checkpoint=checkpoint,
            from_seq=min((e.seq for e in entries), default=None),
        )
        report.add("run", "ledger-chain", Status.OK, chain.describe())
    except VerificationError as exc:
        report.add("run", "ledger-chain", Status.FAILED, str(exc))
    anchored: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        if entry.kind == KIND_ATTESTATION:
            anchored.setdefault(entry.envelope_sha256, []).append(entry)
    failed_recordings = {e.ref_seq for e in entries if e.kind == KIND_RECORDING_FAILED}

    if trusted:
        keys = ", ".join(
            f"{k['keyid'][:16]}... ({k['key_type']}) from {k['source']}, valid {k['validity']}" for k in report.trusted_keys
        )
        report.add("run", "trusted-keys", Status.OK, f"{len(trusted)} key(s): {keys}")
    else:
        hint = ""
        if trusted_keys is None and not settings.trust_source and settings.keys_dir.is_dir():
            hint = f"; {settings.keys_dir} is not trusted because MLSECOPS_HOME is not set (the working directory never decides)"
        report.add(
            "run",
            "trusted-keys",
            Status.FAILED,
            "no trusted public keys are configured (set MLSECOPS_TRUSTED_KEYS, or MLSECOPS_HOME to trust its keys/ folder)"
            + hint,
        )

    locations = store.list_evidence(mlflow_run_id)
    if not locations:
        report.add("run", "evidence-present", Status.FAILED, "the run holds no mlsecops evidence")
    # task key -> (ledger seq, artifact dir, result) of its latest signed record stored where it belongs
    latest: dict[str, tuple[int, str, GateResult]] = {}

    with tempfile.TemporaryDirectory(prefix="mlsecops-verify-") as tmp:
        hasher = _SubjectHasher(store, Path(tmp, "subjects"))
        downloaded: list[tuple[str, str, Path, bytes, str]] = []  # artifact dir, scope, local copy, envelope, sha256
        stored_at: dict[str, list[str]] = {}  # envelope sha256 -> scopes holding it
        for index, location in enumerate(locations):
            scope = _scope(location.artifact_dir)
            local = store.download_dir(mlflow_run_id, location.artifact_dir, Path(tmp, f"evidence-{index}"))
            raw = (local / ENVELOPE_FILE).read_bytes()
            envelope_sha = hashlib.sha256(raw).hexdigest()
            stored_at.setdefault(envelope_sha, []).append(scope)
            downloaded.append((location.artifact_dir, scope, local, raw, envelope_sha))

        for artifact_dir, scope, local, raw, envelope_sha in downloaded:
            anchors = anchored.get(envelope_sha, [])
            seq = anchors[0].seq if anchors else None
            # When it was signed: its (first) ledger row's time; unknown without one.
            signed_at: SigningTime | None = ledger_signing_time(anchors[0].created_at, anchors[0].seq) if anchors else None
            if not anchors:
                report.add(scope, "ledger-entry", Status.FAILED, "envelope bytes match no ledger entry of this run")
            elif len(anchors) > 1:
                seqs = ", ".join(str(e.seq) for e in anchors)
                report.add(
                    scope, "ledger-entry", Status.FAILED, f"the envelope is in the ledger twice or more (seq {seqs}): replayed"
                )
            else:
                report.add(scope, "ledger-entry", Status.OK, f"ledger seq {seq}")
            others = [s for s in stored_at[envelope_sha] if s != scope]
            if others:
                report.add(
                    scope,
                    "unique",
                    Status.FAILED,
                    f"the same signed envelope is also stored at {', '.join(others)}: a record is stored once, where it belongs",
                )
            try:
                envelope = Envelope.from_json(raw)
                key = verify_envelope(envelope, trusted, signed_at=signed_at)
            except VerificationError as exc:
                report.add(scope, "signature", Status.FAILED, str(exc))
                continue
            signed = f"{key.key_type} key {key.keyid[:16]}..."
            if key.time_limited and signed_at is not None:
                signed += f" (valid {key.validity}; signed at {format_time(signed_at.at)}, ledger seq {seq})"
            try:
                statement = GateStatement.from_payload(envelope.payload)
            except VerificationError as exc:
                report.add(scope, "signature", Status.OK, signed)
                report.add(scope, "statement", Status.FAILED, str(exc))
                continue
            try:
                _check_statement_time(key, statement)
            except VerificationError as exc:
                report.add(scope, "signature", Status.FAILED, str(exc))
                continue
            report.add(scope, "signature", Status.OK, signed)
            result = statement.result
            ctx = result.context
            this_run = ctx is None or (run_tags.get(TAG_DAG_ID) == ctx.dag_id and run_tags.get(TAG_RUN_ID) == ctx.run_id)
            if ctx is not None and not this_run:
                report.add(scope, "statement", Status.FAILED, f"attests {ctx.dag_id}/{ctx.run_id}, not this pipeline run")
            else:
                report.add(scope, "statement", Status.OK, f"{result.gate}: {result.verdict.value}")
            status, detail = _location_check(artifact_dir, statement)
            report.add(scope, "location", status, detail)
            report.gates[scope] = {
                "gate": result.gate,
                "verdict": result.verdict.value,
                "keyid": key.keyid,
                "policy_digest": statement.policy_digest,
            }
            report.results[scope] = result
            report.policy_digests[scope] = statement.policy_digest
            report.order[scope] = seq
            if status is Status.OK and this_run and seq is not None:
                task_key = task_key_for(result)
                if task_key not in latest or seq > latest[task_key][0]:
                    latest[task_key] = (seq, artifact_dir, result)

            present = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
            for name, expected in sorted(statement.evidence_files.items()):
                path = local / name
                if name not in present:
                    report.add(scope, f"file:{name}", Status.FAILED, "attested evidence file is missing")
                    continue
                actual = hashlib.sha256(path.read_bytes()).hexdigest()
                if actual == expected:
                    report.add(scope, f"file:{name}", Status.OK, f"sha256 {expected[:16]}... matches")
                else:
                    report.add(scope, f"file:{name}", Status.FAILED, f"sha256 is {actual[:16]}..., attested {expected[:16]}...")
            for name in sorted(n for n in statement.evidence_files if n.endswith(".dsse.json") and n in present):
                try:
                    # Stored and anchored with the record: it was signed when the record was.
                    inner = verify_envelope(Envelope.from_json((local / name).read_bytes()), trusted, signed_at=signed_at)
                    _check_statement_time(inner, statement)
                    report.add(scope, f"attestation:{name}", Status.OK, f"signed by {inner.key_type} key {inner.keyid[:16]}...")
                except VerificationError as exc:
                    report.add(scope, f"attestation:{name}", Status.FAILED, str(exc))
            for extra in sorted(present - set(statement.evidence_files) - {ENVELOPE_FILE}):
                report.add(scope, f"file:{extra}", Status.FAILED, "file is not covered by the attestation")
            if check_subjects:
                for subject in result.subjects:
                    status, detail = hasher.check(subject.name, subject.sha256)
                    report.add(scope, f"subject:{subject.name}", status, detail)

    _check_tags(report, run_tags, latest)
    report.sort_by_ledger_order()

    seen_envelopes = set(stored_at)
    missing = [
        e[0] for e in anchored.values() if e[0].envelope_sha256 not in seen_envelopes and e[0].seq not in failed_recordings
    ]
    if missing:
        names = ", ".join(f"seq {e.seq} ({e.task_id or e.gate})" for e in missing)
        report.add("run", "ledger-complete", Status.FAILED, f"ledger entries without evidence in MLflow: {names}")
    elif entries:
        report.add("run", "ledger-complete", Status.OK, f"{len(anchored)} attestations, all present")
    else:
        report.add("run", "ledger-complete", Status.FAILED, "the ledger holds no entry for this run")
    return report


def _check_tags(
    report: VerificationReport, run_tags: Mapping[str, str], latest: Mapping[str, tuple[int, str, GateResult]]
) -> None:
    """``verdict-tag`` per task: the recorder's tags are recomputed from the latest signed record of
    the task (by ledger sequence) and compared; a tag no signed record supports fails too."""
    claimed: dict[str, dict[str, str]] = {}
    for tag, value in run_tags.items():
        if tag.startswith(TAG_PREFIX):
            task_key, _, name = tag[len(TAG_PREFIX) :].rpartition(".")
            if task_key and name in _TAG_FIELDS:
                claimed.setdefault(task_key, {})[name] = value
    for task_key in sorted(set(latest) | set(claimed)):
        tags = claimed.get(task_key, {})
        if task_key not in latest:
            said = ", ".join(f"{name}={value!r}" for name, value in sorted(tags.items()))
            report.add(task_key, "verdict-tag", Status.FAILED, f"MLflow tags say {said}, but no signed record backs them")
            continue
        seq, artifact_dir, result = latest[task_key]
        expected = {"verdict": result.verdict.value, "gate": result.gate, "evidence": artifact_dir, "ledger_seq": str(seq)}
        wrong = [
            f"{name} tag says {tags.get(name)!r}, the signed record says {value!r}"
            for name, value in expected.items()
            if tags.get(name) != value
        ]
        where = f"the latest signed record is ledger seq {seq} at {_scope(artifact_dir)}"
        if wrong:
            report.add(task_key, "verdict-tag", Status.FAILED, f"{'; '.join(wrong)} ({where})")
        else:
            report.add(task_key, "verdict-tag", Status.OK, f"{result.verdict.value} ({where})")
