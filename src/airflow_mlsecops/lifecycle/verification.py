"""Re-verify everything recorded for one MLflow run, from the stored bytes alone.

>>> from airflow_mlsecops.lifecycle.verification import verify_run
>>> report = verify_run("3f2a...")          # doctest: +SKIP
>>> report.raise_if_failed()                # raises VerificationError naming every failure

Checks, each reported by name so a failure says exactly which gate, which artifact, which check:

* ``ledger-chain``: the whole ledger's hash chain is intact;
* per recorded envelope: ``ledger-entry`` (the envelope's bytes are anchored in the ledger for this
  run), ``signature`` (a trusted key signed it), ``statement`` (a well-formed in-toto statement of
  this pipeline run), ``file:<name>`` (each evidence file matches the digest in the statement, and
  no unattested file sits beside it), ``attestation:<name>`` (further signed statements stored
  beside it, such as SLSA provenance, verify too), ``subject:<name>`` (artifacts stored in MLflow, such as
  models, still hash to the signed digest; local files are re-hashed when present);
* ``verdict-tag`` per gate: the MLflow tag agrees with the signed verdict of its latest attempt;
* ``ledger-complete``: every ledger entry of this run has its evidence in MLflow.
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
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.dsse import Envelope, verify_envelope
from airflow_mlsecops.evidence.keys import VerifyingKey
from airflow_mlsecops.evidence.ledger import KIND_ATTESTATION, KIND_RECORDING_FAILED, EvidenceLedger
from airflow_mlsecops.evidence.models import GateResult
from airflow_mlsecops.evidence.statement import GateStatement
from airflow_mlsecops.exceptions import MLSecOpsError, VerificationError
from airflow_mlsecops.io.mlflow_store import (
    ENVELOPE_FILE,
    TAG_DAG_ID,
    TAG_PREFIX,
    TAG_RUN_ID,
    MLflowEvidenceStore,
    attempt_order,
)


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
    results: dict[str, GateResult] = field(default_factory=dict)  # scope -> the signed result (verified)

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlflow_run_id": self.mlflow_run_id,
            "tracking_uri": self.tracking_uri,
            "verified": self.ok,
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


def verify_run(
    mlflow_run_id: str,
    *,
    settings: Settings | None = None,
    store: MLflowEvidenceStore | None = None,
    ledger: EvidenceLedger | None = None,
    trusted_keys: Mapping[str, VerifyingKey] | None = None,
    check_subjects: bool = True,
) -> VerificationReport:
    """Verify one MLflow run's evidence. Raises only when verification cannot run at all
    (:class:`ConfigurationError`, :class:`StoreUnavailable`); every failed check is in the report.
    """
    settings = settings or Settings.from_env()
    store = store or MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    trusted = dict(trusted_keys) if trusted_keys is not None else settings.load_trusted_keys()
    report = VerificationReport(mlflow_run_id=mlflow_run_id, tracking_uri=store.tracking_uri)

    run_tags = store.run_tags(mlflow_run_id)  # unknown run -> ConfigurationError
    ledger = ledger or EvidenceLedger(settings.ledger_url, create=False)

    try:
        chain = ledger.verify_chain()
        report.add("run", "ledger-chain", Status.OK, f"{chain.entries} entries, head {chain.head_hash[:16]}...")
    except VerificationError as exc:
        report.add("run", "ledger-chain", Status.FAILED, str(exc))
    entries = ledger.entries_for_mlflow_run(mlflow_run_id)
    anchored = {e.envelope_sha256: e for e in entries if e.kind == KIND_ATTESTATION}
    failed_recordings = {e.ref_seq for e in entries if e.kind == KIND_RECORDING_FAILED}
    seen_envelopes: set[str] = set()

    if not trusted:
        report.add("run", "trusted-keys", Status.FAILED, "no trusted public keys are configured (MLSECOPS_TRUSTED_KEYS)")

    locations = store.list_evidence(mlflow_run_id)
    if not locations:
        report.add("run", "evidence-present", Status.FAILED, "the run holds no mlsecops evidence")
    latest: dict[str, tuple[tuple[int, int, int, str], str]] = {}  # task key -> (attempt_order, verdict)

    with tempfile.TemporaryDirectory(prefix="mlsecops-verify-") as tmp:
        hasher = _SubjectHasher(store, Path(tmp, "subjects"))
        for index, location in enumerate(locations):
            scope = location.artifact_dir.split("/evidence/", 1)[-1]
            local = store.download_dir(mlflow_run_id, location.artifact_dir, Path(tmp, f"evidence-{index}"))
            raw = (local / ENVELOPE_FILE).read_bytes()
            envelope_sha = hashlib.sha256(raw).hexdigest()
            seen_envelopes.add(envelope_sha)
            if envelope_sha in anchored:
                report.add(scope, "ledger-entry", Status.OK, f"ledger seq {anchored[envelope_sha].seq}")
            else:
                report.add(scope, "ledger-entry", Status.FAILED, "envelope bytes match no ledger entry of this run")
            try:
                envelope = Envelope.from_json(raw)
                key = verify_envelope(envelope, trusted)
                report.add(scope, "signature", Status.OK, f"{key.key_type} key {key.keyid[:16]}...")
            except VerificationError as exc:
                report.add(scope, "signature", Status.FAILED, str(exc))
                continue
            try:
                statement = GateStatement.from_payload(envelope.payload)
            except VerificationError as exc:
                report.add(scope, "statement", Status.FAILED, str(exc))
                continue
            result = statement.result
            ctx = result.context
            if ctx is not None and (run_tags.get(TAG_DAG_ID) != ctx.dag_id or run_tags.get(TAG_RUN_ID) != ctx.run_id):
                report.add(scope, "statement", Status.FAILED, f"attests {ctx.dag_id}/{ctx.run_id}, not this pipeline run")
            else:
                report.add(scope, "statement", Status.OK, f"{result.gate}: {result.verdict.value}")
            report.gates[scope] = {"gate": result.gate, "verdict": result.verdict.value, "keyid": key.keyid}
            report.results[scope] = result
            attempt = attempt_order(location.artifact_dir.rsplit("/", 1)[-1])
            previous = latest.get(location.task_key)
            if previous is None or attempt >= previous[0]:
                latest[location.task_key] = (attempt, result.verdict.value)

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
                    inner = verify_envelope(Envelope.from_json((local / name).read_bytes()), trusted)
                    report.add(scope, f"attestation:{name}", Status.OK, f"signed by {inner.key_type} key {inner.keyid[:16]}...")
                except VerificationError as exc:
                    report.add(scope, f"attestation:{name}", Status.FAILED, str(exc))
            for extra in sorted(present - set(statement.evidence_files) - {ENVELOPE_FILE}):
                report.add(scope, f"file:{extra}", Status.FAILED, "file is not covered by the attestation")
            if check_subjects:
                for subject in result.subjects:
                    status, detail = hasher.check(subject.name, subject.sha256)
                    report.add(scope, f"subject:{subject.name}", status, detail)

    for task_key, (_, verdict) in sorted(latest.items()):
        tag = run_tags.get(f"{TAG_PREFIX}{task_key}.verdict")
        if tag == verdict:
            report.add(task_key, "verdict-tag", Status.OK, verdict)
        else:
            report.add(task_key, "verdict-tag", Status.FAILED, f"MLflow tag says {tag!r}, the signed verdict is {verdict!r}")

    missing = [e for e in anchored.values() if e.envelope_sha256 not in seen_envelopes and e.seq not in failed_recordings]
    if missing:
        names = ", ".join(f"seq {e.seq} ({e.task_id or e.gate})" for e in missing)
        report.add("run", "ledger-complete", Status.FAILED, f"ledger entries without evidence in MLflow: {names}")
    elif entries:
        report.add("run", "ledger-complete", Status.OK, f"{len(anchored)} attestations, all present")
    else:
        report.add("run", "ledger-complete", Status.FAILED, "the ledger holds no entry for this run")
    return report
