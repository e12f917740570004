"""The checks registration, promotion, verification and rollback share (private to ``lifecycle``).

Reading a pipeline run's verified evidence (the latest record of a task, by ledger sequence, wins), the checks made on it
(``pipeline-evidence``, ``gate:<name>``, ``approval``), the registered version's state and the
checks made on it (``registration``, ``quarantine``, ``status``, ``registry-digest``), and the
alias history kept on the registered model.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import GateResult, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, MLSecOpsError, StoreUnavailable
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore, task_key_for
from airflow_mlsecops.lifecycle.model_registry import (
    TAG_MODEL_SHA256,
    TAG_PIPELINE_RUN_ID,
    TAG_QUARANTINE_REASON,
    TAG_QUARANTINED,
    RegistryCheck,
    tag_history,
)
from airflow_mlsecops.lifecycle.verification import Status, VerificationReport

if TYPE_CHECKING:
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder, RecordedEvidence

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ALIAS = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
SUPPLY_CHAIN_ATLAS = ("AML.T0010",)  # ML supply chain compromise
SUPPLY_CHAIN_OWASP = ("ML06:2023", "ML10:2023")  # AI supply chain attacks, model poisoning


# ----------------------------------------------------------------------------- messages and checks
def utc_now() -> str:
    """Now, in UTC, as ISO 8601 with a ``Z``."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def version_uri(name: str, version: str) -> str:
    """``models:/<name>/<version>``."""
    return f"models:/{name}/{version}"


def short_digest(digest: str | None) -> str:
    """The first 16 hex digits of a digest, for messages (``unknown`` when there is none)."""
    return f"{digest[:16]}..." if digest else "unknown"


def ok_check(name: str, detail: str) -> RegistryCheck:
    """A check that passed."""
    return RegistryCheck(name, Status.OK, detail)


def failed_check(name: str, detail: str) -> RegistryCheck:
    """A check that failed."""
    return RegistryCheck(name, Status.FAILED, detail)


# ----------------------------------------------------------------------------- evidence of a pipeline run
@dataclass(frozen=True)
class RecordedAttempt:
    """One recorded result of a pipeline run, with where it is and whether it verified."""

    scope: str
    task_key: str
    order: int  # the ledger sequence of its envelope: the order of recording
    result: GateResult
    failures: tuple[str, ...]

    @property
    def verified(self) -> bool:
        return not self.failures

    def covers(self, digest: str) -> bool:
        return any(s.sha256 == digest for s in self.result.subjects)


#: Where a record that is not in the ledger sorts: after every anchored one, so that it is the
#: "latest" and, never verifying, blocks (fail closed) instead of being passed over.
_UNANCHORED = 2**62


class PipelineEvidence:
    """The verified results of one MLflow run, grouped so that the latest record of a task wins.

    Task and order come from signed content only: the task key from the signed statement, the order
    from the ledger sequence (never from folder names, which anyone who can write to MLflow chooses).
    """

    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        failures: dict[str, list[str]] = {}
        for check in report.failures:
            failures.setdefault(check.scope, []).append(f"{check.name}: {check.detail}")
        self.attempts: list[RecordedAttempt] = []
        for scope, result in report.results.items():
            seq = report.order.get(scope)
            order = seq if seq is not None else _UNANCHORED
            self.attempts.append(RecordedAttempt(scope, task_key_for(result), order, result, tuple(failures.get(scope, ()))))
        self.attempts.sort(key=lambda a: (a.task_key, a.order, a.scope))

    @property
    def run_id(self) -> str:
        return self.report.mlflow_run_id

    def latest(self, gate: str) -> list[RecordedAttempt]:
        """The latest record of every task that recorded ``gate`` (by ledger sequence)."""
        newest: dict[str, RecordedAttempt] = {}
        for attempt in self.attempts:
            if attempt.result.gate == gate:
                newest[attempt.task_key] = attempt  # sorted ascending: the last one wins
        return list(newest.values())

    def at(self, scope: str) -> RecordedAttempt | None:
        return next((a for a in self.attempts if a.scope == scope), None)

    def superseded(self, attempt: RecordedAttempt, same: Any) -> RecordedAttempt | None:
        """A later record of the same task for which ``same(result)`` holds, if any."""
        later = [a for a in self.attempts if a.task_key == attempt.task_key and a.order > attempt.order and same(a.result)]
        return later[-1] if later else None


def verify_pipeline_run(
    store: MLflowEvidenceStore, run_id: str, settings: Settings, *, check_subjects: bool = True
) -> PipelineEvidence:
    """Verify the MLflow run ``run_id`` (:func:`~airflow_mlsecops.lifecycle.verification.verify_run`) and group its results."""
    from airflow_mlsecops.lifecycle.verification import verify_run

    return PipelineEvidence(verify_run(run_id, settings=settings, store=store, check_subjects=check_subjects))


def pipeline_check(evidence: PipelineEvidence) -> RegistryCheck:
    """``pipeline-evidence``: the pipeline run verifies (the first eight failures named when it does not)."""
    report = evidence.report
    if report.ok:
        passed = sum(c.status is Status.OK for c in report.checks)
        return ok_check("pipeline-evidence", f"MLflow run {report.mlflow_run_id} verifies ({passed} checks)")
    listed = "; ".join(f"{c.scope}: {c.name}: {c.detail}" for c in report.failures[:8])
    more = f" (and {len(report.failures) - 8} more)" if len(report.failures) > 8 else ""
    return failed_check(
        "pipeline-evidence",
        f"MLflow run {report.mlflow_run_id} does not verify, {len(report.failures)} failed check(s): {listed}{more}",
    )


def producer_of(attempt: RecordedAttempt, allowed: Sequence[str] = ()) -> str | None:
    """Why the code that produced ``attempt`` is not trusted (a sentence naming its task), else ``None``.

    Its engine must be recorded in the signed result, and it and the operator (when one ran it)
    must be airflow-mlsecops code (:func:`~airflow_mlsecops.evidence.producer.producer_problem`),
    or be allowed by name (the policy's ``allowed_operators``).
    """
    from airflow_mlsecops.evidence.producer import producer_problem

    problem = producer_problem(attempt.result.producer, allowed)
    if problem is None:
        return None
    task = attempt.result.context.task_id if attempt.result.context else attempt.task_key
    return f"task {task}'s evidence at {attempt.scope} {problem}"


def gate_check(
    gate: str,
    evidence: PipelineEvidence,
    digest: str | None,
    allowed: Sequence[str] = (),
    accept_warned: Sequence[str] = (),
) -> tuple[RegistryCheck, list[str]]:
    """``gate:<name>``: the latest attempts of the gate passed (and, for model gates, name this model),
    and were produced by trusted code (or code ``allowed`` by name, ``module.Class``).

    A ``warned`` attempt never counts, except an *incomplete* one (a check not performed, nothing
    rejected: :attr:`~airflow_mlsecops.evidence.models.GateResult.incomplete`) of a gate listed in
    ``accept_warned``; the check's detail then names what was not performed. A warn-only rejection
    never counts, whatever ``accept_warned`` says.
    """
    name = f"gate:{gate}"
    attempts = evidence.latest(gate)
    if not attempts:
        return failed_check(name, f"no {gate} evidence in the pipeline run {evidence.run_id}"), []
    if gate in gate_names.MODEL_SUBJECT_GATES:
        if digest is None:
            return failed_check(name, "the model's digest is unknown, so no evidence can be bound to it"), []
        relevant = [a for a in attempts if a.covers(digest)]
        if not relevant:
            judged = sorted({f"{s.name} (sha256 {short_digest(s.sha256)})" for a in attempts for s in a.result.subjects})
            return failed_check(
                name,
                f"{gate} evidence judged {', '.join(judged) or 'no subject'}, not this model (sha256 {short_digest(digest)})",
            ), []
        attempts = relevant
    problems: list[str] = []
    accepted: list[str] = []
    for attempt in attempts:
        result = attempt.result
        verdict = result.verdict
        if not attempt.verified:
            problems.append(f"evidence at {attempt.scope} did not verify ({attempt.failures[0]})")
        elif verdict is Verdict.WARNED and result.incomplete:
            missing = ", ".join(result.not_performed)
            if gate not in accept_warned:
                problems.append(
                    f"warned at {attempt.scope}: incomplete, not performed: {missing} (an incomplete {gate} counts "
                    f"only where the promotion and the policy accept it: accept_warned)"
                )
            elif untrusted := producer_of(attempt, allowed):
                problems.append(untrusted)
            else:
                accepted.append(f"{attempt.scope} (not performed: {missing})")
        elif verdict is Verdict.WARNED:
            problems.append(f"warned at {attempt.scope} (warn-only mode; warned never counts as passed)")
        elif verdict is not Verdict.PASSED:
            problems.append(f"{verdict.value} at {attempt.scope}: {result.summary}")
        elif untrusted := producer_of(attempt, allowed):
            problems.append(untrusted)
    scopes = [a.scope for a in attempts]
    if problems:
        return failed_check(name, "; ".join(problems)), scopes
    if accepted:
        passed = [a.scope for a in attempts if a.result.verdict is Verdict.PASSED]
        detail = (f"passed at {', '.join(passed)}; " if passed else "") + (
            f"WARNED, incomplete, accepted by accept_warned at {', '.join(accepted)}"
        )
        return ok_check(name, detail), scopes
    return ok_check(name, f"passed at {', '.join(scopes)}"), scopes


def _approvers(details: Mapping[str, Any]) -> dict[str, str]:
    """Distinct approvers of an approval decision: id -> display name."""
    found: dict[str, str] = {}
    approvals = details.get("approvals")
    for item in approvals if isinstance(approvals, list) else []:
        if not isinstance(item, Mapping):
            continue
        ident = str(item.get("id") or item.get("name") or "").strip()
        if ident and ident != "None":
            found.setdefault(ident, str(item.get("name") or ident))
    return found


def approval_check(
    evidence: PipelineEvidence, digest: str | None, required: int, allowed: Sequence[str] = ()
) -> tuple[RegistryCheck, list[str], str | None]:
    """``approval``: a passed ``model-approval`` decision for exactly ``digest`` by enough people.

    Every approval task's latest decision counts: one that covers this digest and says anything
    but ``approved`` (rejected, timed out, void) blocks, even if another task approved. A decision
    made by code that is not trusted (or ``allowed`` by name) blocks too.
    """
    if required <= 0:
        return ok_check("approval", "no approval required (required_approvals=0)"), [], None
    attempts = evidence.latest(gate_names.MODEL_APPROVAL)
    if not attempts:
        return (
            failed_check("approval", f"no {gate_names.MODEL_APPROVAL} evidence in the pipeline run {evidence.run_id}"),
            [],
            None,
        )
    if digest is None:
        return failed_check("approval", "the model's digest is unknown, so no approval can be bound to it"), [], None
    covering = [a for a in attempts if a.result.details.get("model_sha256") == digest and a.covers(digest)]
    if not covering:
        problems = [
            f"the approval at {a.scope} covers sha256 {short_digest(str(a.result.details.get('model_sha256')))}, "
            f"not {short_digest(digest)}"
            for a in attempts
        ]
        return failed_check("approval", "; ".join(problems)), [], None
    blocking: list[str] = []
    short: list[str] = []
    best: tuple[RecordedAttempt, list[str]] | None = None
    for attempt in covering:
        result = attempt.result
        decision = result.details.get("decision")
        if not attempt.verified:
            blocking.append(f"the approval at {attempt.scope} did not verify ({attempt.failures[0]})")
        elif result.verdict is not Verdict.PASSED or decision != "approved":
            blocking.append(f"the decision at {attempt.scope} is {decision!r} (verdict {result.verdict.value})")
        elif untrusted := producer_of(attempt, allowed):
            blocking.append(untrusted)
        else:
            names = sorted(_approvers(result.details).values())
            if len(names) < required:
                short.append(f"{len(names)} distinct approver(s) at {attempt.scope}, {required} required")
            elif best is None or len(names) > len(best[1]):
                best = (attempt, names)
    if blocking:
        return failed_check("approval", "; ".join(blocking)), [], None
    if best is None:
        return failed_check("approval", "; ".join(short)), [], None
    attempt, names = best
    detail = f"approved by {', '.join(names)} ({len(names)} of {required} required) at {attempt.scope}"
    return ok_check("approval", detail), names, attempt.scope


# ----------------------------------------------------------------------------- the registered version
@dataclass
class VersionState:
    """A registered model version as MLflow reports it, with what the checks learn about it."""

    name: str
    version: str
    tags: dict[str, str]
    aliases: list[str]
    status: str
    run_id: str | None
    actual_sha256: str | None = None
    evidence: PipelineEvidence | None = None

    @property
    def model_uri(self) -> str:
        return version_uri(self.name, self.version)

    @property
    def registered_sha256(self) -> str | None:
        value = self.tags.get(TAG_MODEL_SHA256, "")
        return value if SHA256_HEX.match(value) else None

    @property
    def reference_sha256(self) -> str | None:
        """The digest evidence must name: the pinned one, else (unregistered) what the files hash to."""
        return self.registered_sha256 or self.actual_sha256

    @property
    def pipeline_run_id(self) -> str | None:
        return self.tags.get(TAG_PIPELINE_RUN_ID) or None


def get_version(store: MLflowEvidenceStore, name: str, version: str) -> VersionState:
    """The model version, or :class:`ConfigurationError` when the model or the version is unknown."""
    if not name or not str(version).strip():
        raise ConfigurationError("a registered model name and a version are required")
    with store.errors(f"cannot read model version {name}/{version}"):
        mv = store.client.get_model_version(name, str(version))
    return VersionState(
        name=name,
        version=str(mv.version),
        tags=dict(mv.tags or {}),
        aliases=list(mv.aliases or []),
        status=str(mv.status or ""),
        run_id=mv.run_id,
    )


def hash_uri(store: MLflowEvidenceStore, uri: str) -> str:
    """SHA-256 of the files at ``uri``, downloaded from MLflow into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="mlsecops-registry-") as tmp:
        return sha256_path(store.download_uri(uri, Path(tmp)))


def inspect_version(store: MLflowEvidenceStore, state: VersionState, settings: Settings) -> list[RegistryCheck]:
    """Checks shared by promotion and verification: registration tags, digest, pipeline evidence."""
    checks: list[RegistryCheck] = []
    missing = [t for t in (TAG_MODEL_SHA256, TAG_PIPELINE_RUN_ID) if not state.tags.get(t)]
    if missing:
        held = (
            f"; it holds {', '.join('@' + a for a in state.aliases)} all the same (set by hand in MLflow?)"
            if state.aliases
            else ""
        )
        checks.append(
            failed_check(
                "registration",
                f"{state.model_uri} carries no {', '.join(missing)} tag: it was not registered through the "
                f"{gate_names.MODEL_REGISTRATION} gate{held}",
            )
        )
    elif state.registered_sha256 is None:
        checks.append(
            failed_check("registration", f"{TAG_MODEL_SHA256} is not a SHA-256 digest: {state.tags[TAG_MODEL_SHA256]!r}")
        )
    else:
        checks.append(
            ok_check(
                "registration", f"pinned to sha256 {short_digest(state.registered_sha256)}, pipeline run {state.pipeline_run_id}"
            )
        )
    if state.tags.get(TAG_QUARANTINED, "").lower() == "true":
        checks.append(failed_check("quarantine", f"quarantined: {state.tags.get(TAG_QUARANTINE_REASON, 'no reason recorded')}"))
    else:
        checks.append(ok_check("quarantine", "not quarantined"))
    if state.status and state.status != "READY":
        checks.append(failed_check("status", f"MLflow reports the version {state.status}, not READY"))
    else:
        checks.append(ok_check("status", "READY"))

    try:
        state.actual_sha256 = hash_uri(store, state.model_uri)
    except StoreUnavailable:
        raise
    except MLSecOpsError as exc:  # missing files, a symbolic link, an unreadable version
        checks.append(failed_check("registry-digest", f"the registered files could not be re-hashed: {exc}"))
    else:
        if state.registered_sha256 is None:
            checks.append(
                failed_check("registry-digest", f"files hash to {short_digest(state.actual_sha256)}, and no digest was pinned")
            )
        elif state.actual_sha256 != state.registered_sha256:
            checks.append(
                failed_check(
                    "registry-digest",
                    f"the registered files hash to {short_digest(state.actual_sha256)}, registration pinned "
                    f"{short_digest(state.registered_sha256)}: the model changed in the registry after it was registered",
                )
            )
        else:
            checks.append(ok_check("registry-digest", f"the registered files still hash to {short_digest(state.actual_sha256)}"))

    run_id = state.pipeline_run_id
    if run_id:
        try:
            store.run_tags(run_id)
        except ConfigurationError as exc:
            checks.append(failed_check("pipeline-evidence", f"the pipeline run {run_id} cannot be read: {exc}"))
        else:
            state.evidence = verify_pipeline_run(store, run_id, settings)
            checks.append(pipeline_check(state.evidence))
    else:
        checks.append(failed_check("pipeline-evidence", f"no {TAG_PIPELINE_RUN_ID} tag: no evidence to verify"))
    return checks


def current_holder(store: MLflowEvidenceStore, name: str, alias: str) -> str | None:
    """The version that holds ``alias`` of ``name`` now, if any."""
    with store.errors(f"cannot read registered model {name}"):
        model = store.client.get_registered_model(name)
    holder = dict(model.aliases or {}).get(alias)
    return str(holder) if holder is not None else None


def validate_alias(alias: str) -> None:
    """Raise :class:`ConfigurationError` for an alias MLflow would refuse or read as a version."""
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "latest" or re.fullmatch(r"v\d+", alias):
        raise ConfigurationError(f"{alias!r} is not a usable alias (letters, digits, '_' and '-'; not 'latest' or v<N>)")


def validate_gates(required_gates: Sequence[str], required_approvals: int) -> list[str]:
    """The required gates without duplicates; :class:`ConfigurationError` for an empty name or a bad count."""
    if isinstance(required_gates, str):
        required_gates = [required_gates]
    gates = [str(g).strip() for g in required_gates]
    if any(not g for g in gates):
        raise ConfigurationError("required_gates holds an empty gate name")
    if not isinstance(required_approvals, int) or required_approvals < 0:
        raise ConfigurationError(f"required_approvals must be a whole number >= 0, got {required_approvals!r}")
    return list(dict.fromkeys(gates))


# ----------------------------------------------------------------------------- the signed holder of an alias
@dataclass(frozen=True)
class SignedHolder:
    """The version the latest signed promotion or rollback to an alias put it on."""

    version: str
    gate: str  # model-promotion or model-rollback
    seq: int  # its ledger sequence
    mlflow_run_id: str | None

    def describe(self) -> str:
        what = "promotion" if self.gate == gate_names.MODEL_PROMOTION else "rollback"
        where = f", MLflow run {self.mlflow_run_id}" if self.mlflow_run_id else ""
        return f"the signed {what} at ledger seq {self.seq}{where}"


def signed_alias_holder(settings: Settings, name: str, alias: str, trusted: Mapping[str, Any]) -> SignedHolder | None:
    """The holder of ``name``'s ``alias`` according to the signed evidence alone: the version named
    by the latest (by ledger sequence) promotion or rollback to it that a trusted key signed.

    MLflow's alias is writable by anyone who may edit the model; the ledger is the record of what
    the gates did. A decision whose alias change did not happen is followed by a signed ``error``
    record (``alias_set`` / ``alias_moved`` false) or a ``recording-failed`` ledger note: it does
    not count. An envelope that appears twice in the ledger counts once, where it first appeared (a
    replayed copy cannot make an old promotion the latest). Entries that do not verify with a
    trusted key say nothing, nor do entries signed by a key outside its validity at the entry's
    ledger time or its statement's own time (a rotated-out key's promotions from before its
    ``not_after`` still count; a revoked key's count only from before ``revoked_at``). ``None``
    when no signed promotion or rollback to the alias exists.

    :param settings: the ledger to read.
    :param name: the registered model.
    :param alias: the alias.
    :param trusted: key id -> :class:`~airflow_mlsecops.evidence.keys.VerifyingKey`.
    """
    from airflow_mlsecops.evidence.dsse import Envelope, verify_envelope
    from airflow_mlsecops.evidence.ledger import KIND_ATTESTATION, KIND_RECORDING_FAILED, EvidenceLedger
    from airflow_mlsecops.evidence.producer import producer_problem
    from airflow_mlsecops.evidence.statement import GateStatement
    from airflow_mlsecops.evidence.trust import ledger_signing_time, statement_signing_time
    from airflow_mlsecops.exceptions import VerificationError

    gates = (gate_names.MODEL_PROMOTION, gate_names.MODEL_ROLLBACK)
    entries = EvidenceLedger(settings.ledger_url, create=False).entries()
    not_stored = {e.ref_seq for e in entries if e.kind == KIND_RECORDING_FAILED}
    seen: set[str] = set()
    holders: list[SignedHolder] = []
    for entry in entries:
        if entry.kind != KIND_ATTESTATION or entry.gate not in gates or entry.seq in not_stored:
            continue
        if entry.envelope_sha256 in seen:
            continue
        seen.add(entry.envelope_sha256)
        try:
            envelope = Envelope.from_json(entry.envelope.encode("utf-8"))
            key = verify_envelope(envelope, trusted, signed_at=ledger_signing_time(entry.created_at, entry.seq))
            result = GateStatement.from_payload(envelope.payload).result
            key.check_signing_time(statement_signing_time(result.finished_at))
        except VerificationError:
            continue
        details = result.details
        if result.gate not in gates or details.get("name") != name or details.get("alias") != alias:
            continue
        promotion = result.gate == gate_names.MODEL_PROMOTION
        version = str(details.get("version") if promotion else details.get("to_version"))
        if result.verdict is Verdict.PASSED or (not promotion and result.verdict is Verdict.WARNED):
            if promotion and producer_problem(result.producer) is not None:
                continue  # a promotion decided by code that is not the package's (a PromoteModelOperator subclass) says nothing
            holders.append(SignedHolder(version, result.gate, entry.seq, entry.mlflow_run_id))
        elif details.get("alias_set" if promotion else "alias_moved") is False:
            # The alias change that the decision before allowed did not happen: that decision does not count.
            for index in range(len(holders) - 1, -1, -1):
                if holders[index].gate == result.gate and holders[index].version == version:
                    del holders[index]
                    break
    return holders[-1] if holders else None


def holder_check(state: VersionState, alias: str, settings: Settings, trusted: Mapping[str, Any]) -> RegistryCheck:
    """``holder:@<alias>``: the version holding ``alias`` is the one the latest signed promotion or
    rollback to it names (an alias moved back by hand to a version once promoted fails here)."""
    name = f"holder:@{alias}"
    holder = signed_alias_holder(settings, state.name, alias, trusted)
    if holder is None:
        return failed_check(
            name, f"@{alias} is on version {state.version}, but no signed promotion or rollback to @{alias} exists (set by hand?)"
        )
    if holder.version != state.version:
        return failed_check(
            name,
            f"@{alias} is on version {state.version}, but the last signed holder is version {holder.version} "
            f"({holder.describe()}): the alias was moved outside the gate",
        )
    return ok_check(name, f"version {state.version} is the last signed holder of @{alias} ({holder.describe()})")


# ----------------------------------------------------------------------------- alias bookkeeping
def load_history(tags: Mapping[str, str], alias: str) -> list[str] | None:
    """The alias history tag as a list of versions; ``None`` when it is not valid JSON."""
    raw = tags.get(tag_history(alias))
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    return [str(v) for v in data]


def evidence_run_uri(evidence: RecordedEvidence | str | None) -> str | None:
    """Where recorded evidence is, as a ``runs:/`` URI (a string is taken as one already)."""
    if evidence is None or isinstance(evidence, str):
        return evidence
    return f"runs:/{evidence.mlflow_run_id}/{evidence.artifact_dir}"


def restore_alias(store: MLflowEvidenceStore, name: str, alias: str, holder: str | None) -> None:
    """Best effort: put ``alias`` back on ``holder`` (or remove it) after a failed change."""
    try:
        with store.errors(f"cannot restore @{alias}"):
            if holder is None:
                store.client.delete_registered_model_alias(name, alias)
            else:
                store.client.set_registered_model_alias(name, alias, holder)
    except MLSecOpsError:
        pass


def registry_recorder(store: MLflowEvidenceStore, settings: Settings) -> EvidenceRecorder:
    """A recorder signing with ``settings``' key into its ledger and ``store``."""
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

    return EvidenceRecorder(signing_key=settings.load_signing_key(), ledger=EvidenceLedger(settings.ledger_url), store=store)
