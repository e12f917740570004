"""Model registration and promotion in the MLflow Model Registry, bound to the pipeline's evidence.

>>> from airflow_mlsecops.lifecycle.registry import register_model, check_promotion, promote, rollback
>>> outcome = register_model(store, model_uri="models:/m-1f...", name="credit", expected_sha256=digest,
...                          pipeline_run_id=run_id)                                  # doctest: +SKIP
>>> decision = check_promotion(store, name="credit", version="3", alias="champion",
...                            required_gates=DEFAULT_REQUIRED_GATES, required_approvals=1)  # doctest: +SKIP
>>> record = promote(store, name="credit", version="3", alias="champion", outcome=decision)  # doctest: +SKIP

**Register** (gate ``model-registration``, :func:`register_model`). The model's files are hashed
before anything is registered (a digest other than the pinned one refuses, nothing registered);
the new version's files are hashed again as the registry serves them (a registry that copies, or a
swap during registration, quarantines the version: tag ``mlsecops.quarantined=true``, failed
verdict). A registered version carries the tags ``mlsecops.model_sha256``,
``mlsecops.pipeline_run_id``, ``mlsecops.dag_id``, ``mlsecops.run_id``, ``mlsecops.evidence`` (the
pipeline run's evidence root) and, when the model was signed, ``mlsecops.signature_sha256``.

**Promote** (gate ``model-promotion``, :func:`check_promotion` then :func:`promote`). At promotion
time, every check is made again from the stored bytes, and each is named in the result:

* ``registration``: the version carries the registration tags (it went through the gate);
* ``quarantine`` and ``status``: it is not quarantined and MLflow reports it ``READY``;
* ``registry-digest``: its files, downloaded from the registry now, still hash to
  ``mlsecops.model_sha256`` (no swap between the scans and the promotion);
* ``pipeline-evidence``: :func:`~airflow_mlsecops.lifecycle.verification.verify_run` of the pipeline run is
  ok (signatures, ledger chain, evidence files, subjects re-hashed);
* ``gate:<name>`` per required gate: the latest attempt of each task that recorded the gate passed
  (``warned`` never counts); for model gates the subject's digest is the model's;
* ``approval``: the latest ``model-approval`` decision passed, covers exactly this digest and
  counts at least ``required_approvals`` distinct approvers.

:func:`promote` sets the alias only for a passed outcome, tags the version
(``mlsecops.approved_by``, ``mlsecops.promoted_at``, ``mlsecops.promotion_evidence``,
``mlsecops.previous_<alias>``) and keeps the alias's holders on the registered model
(``mlsecops.alias_history.<alias>``: a JSON list of versions, newest last), so :func:`rollback`
is one command. :func:`promote_model` does check, record and promote in one call (for the CLI).

**Verify** (:func:`verify_model_version`) finds aliases whose chain is broken: set by hand in
MLflow, tags pointing to a pipeline run that does not verify, files that changed, no promotion
attestation for the alias, an attestation for another digest, no approval.

.. warning::
   Open-source MLflow has no permission specific to aliases: whoever may edit a registered model
   (anyone, or with MLflow's basic-auth app a user with ``EDIT`` on it) can move an alias by hand,
   and MLflow tags are just as writable. These functions cannot prevent that; they make sure the
   gate never moves an alias without a verified chain, and :func:`verify_model_version` detects an
   alias that was moved outside it. Enforcing it needs a registry with access control in front.

This module has no Airflow import; MLflow is imported lazily.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, GateRejected, MLSecOpsError, StoreUnavailable, VerificationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate, tool_versions
from airflow_mlsecops.io.mlflow_store import EVIDENCE_ROOT, TAG_DAG_ID, TAG_RUN_ID, MLflowEvidenceStore, attempt_order
from airflow_mlsecops.lifecycle.verification import Status, VerificationReport

if TYPE_CHECKING:
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder, RecordedEvidence

REGISTRATION_GATE = gate_names.MODEL_REGISTRATION
PROMOTION_GATE = gate_names.MODEL_PROMOTION
ROLLBACK_GATE = gate_names.MODEL_ROLLBACK
APPROVAL_GATE = gate_names.MODEL_APPROVAL
REGISTRY_EXPERIMENT = "mlsecops-registry"

#: Gates whose subjects are the model itself: their evidence must name the model's digest.
MODEL_GATES = gate_names.MODEL_SUBJECT_GATES
DEFAULT_REQUIRED_GATES = gate_names.DEFAULT_REQUIRED_GATES

TAG_MODEL_SHA256 = "mlsecops.model_sha256"
TAG_PIPELINE_RUN_ID = "mlsecops.pipeline_run_id"
TAG_VERSION_DAG_ID = TAG_DAG_ID
TAG_VERSION_RUN_ID = TAG_RUN_ID
TAG_EVIDENCE = "mlsecops.evidence"
TAG_SIGNATURE_SHA256 = "mlsecops.signature_sha256"
TAG_SOURCE_URI = "mlsecops.source_uri"
TAG_QUARANTINED = "mlsecops.quarantined"
TAG_QUARANTINE_REASON = "mlsecops.quarantine_reason"
TAG_APPROVED_BY = "mlsecops.approved_by"
TAG_PROMOTED_AT = "mlsecops.promoted_at"
TAG_PROMOTION_EVIDENCE = "mlsecops.promotion_evidence"
TAG_ROLLBACK_EVIDENCE = "mlsecops.rollback_evidence"
MAX_HISTORY = 100

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ALIAS = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_ATLAS = ("AML.T0010",)  # ML supply chain compromise
_OWASP = ("ML06:2023", "ML10:2023")  # AI supply chain attacks, model poisoning
_TAMPER_CHECKS = ("registry-digest", "pipeline-evidence")


def tag_previous(alias: str) -> str:
    """Version tag naming the version that held ``alias`` before this one was promoted to it.

    :param alias: the alias, e.g. ``champion``.
    """
    return f"mlsecops.previous_{alias}"


def tag_history(alias: str) -> str:
    """Registered-model tag holding the JSON list of versions that held ``alias``, newest last.

    :param alias: the alias, e.g. ``champion``.
    """
    return f"mlsecops.alias_history.{alias}"


def tag_promotion_evidence(alias: str) -> str:
    """Version tag pointing at the promotion attestation of this version to ``alias``.

    :param alias: the alias, e.g. ``champion``.
    """
    return f"{TAG_PROMOTION_EVIDENCE}.{alias}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _version_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def _short(digest: str | None) -> str:
    return f"{digest[:16]}..." if digest else "unknown"


# ----------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class RegistryCheck:
    """One named check of a promotion decision or a version verification."""

    name: str
    status: Status
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail}


def _ok(name: str, detail: str) -> RegistryCheck:
    return RegistryCheck(name, Status.OK, detail)


def _fail(name: str, detail: str) -> RegistryCheck:
    return RegistryCheck(name, Status.FAILED, detail)


# ----------------------------------------------------------------------------- evidence of a pipeline run
@dataclass(frozen=True)
class _Attempt:
    """One recorded result of a pipeline run, with where it is and whether it verified."""

    scope: str
    task_key: str
    order: tuple[int, int, int, str]
    result: GateResult
    failures: tuple[str, ...]

    @property
    def verified(self) -> bool:
        return not self.failures

    def covers(self, digest: str) -> bool:
        return any(s.sha256 == digest for s in self.result.subjects)


class _PipelineEvidence:
    """The verified results of one MLflow run, grouped so that the latest attempt of a task wins."""

    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        failures: dict[str, list[str]] = {}
        for check in report.failures:
            failures.setdefault(check.scope, []).append(f"{check.name}: {check.detail}")
        self.attempts: list[_Attempt] = []
        for scope, result in report.results.items():
            task_key, _, attempt = scope.rpartition("/")
            self.attempts.append(
                _Attempt(scope, task_key or scope, attempt_order(attempt), result, tuple(failures.get(scope, ())))
            )
        self.attempts.sort(key=lambda a: (a.task_key, a.order, a.scope))

    @property
    def run_id(self) -> str:
        return self.report.mlflow_run_id

    def latest(self, gate: str) -> list[_Attempt]:
        """The latest attempt of every task that recorded ``gate`` (by try number, then record number)."""
        newest: dict[str, _Attempt] = {}
        for attempt in self.attempts:
            if attempt.result.gate == gate:
                newest[attempt.task_key] = attempt  # sorted ascending: the last one wins
        return list(newest.values())

    def at(self, scope: str) -> _Attempt | None:
        return next((a for a in self.attempts if a.scope == scope), None)

    def superseded(self, attempt: _Attempt, same: Any) -> _Attempt | None:
        """A later record of the same task for which ``same(result)`` holds, if any."""
        later = [a for a in self.attempts if a.task_key == attempt.task_key and a.order > attempt.order and same(a.result)]
        return later[-1] if later else None


def _verify_pipeline_run(
    store: MLflowEvidenceStore, run_id: str, settings: Settings, *, check_subjects: bool = True
) -> _PipelineEvidence:
    from airflow_mlsecops.lifecycle.verification import verify_run

    return _PipelineEvidence(verify_run(run_id, settings=settings, store=store, check_subjects=check_subjects))


def _pipeline_check(evidence: _PipelineEvidence) -> RegistryCheck:
    report = evidence.report
    if report.ok:
        passed = sum(c.status is Status.OK for c in report.checks)
        return _ok("pipeline-evidence", f"MLflow run {report.mlflow_run_id} verifies ({passed} checks)")
    listed = "; ".join(f"{c.scope}: {c.name}: {c.detail}" for c in report.failures[:8])
    more = f" (and {len(report.failures) - 8} more)" if len(report.failures) > 8 else ""
    return _fail(
        "pipeline-evidence",
        f"MLflow run {report.mlflow_run_id} does not verify, {len(report.failures)} failed check(s): {listed}{more}",
    )


def _gate_check(gate: str, evidence: _PipelineEvidence, digest: str | None) -> tuple[RegistryCheck, list[str]]:
    """``gate:<name>``: the latest attempts of the gate passed (and, for model gates, name this model)."""
    name = f"gate:{gate}"
    attempts = evidence.latest(gate)
    if not attempts:
        return _fail(name, f"no {gate} evidence in the pipeline run {evidence.run_id}"), []
    if gate in MODEL_GATES:
        if digest is None:
            return _fail(name, "the model's digest is unknown, so no evidence can be bound to it"), []
        relevant = [a for a in attempts if a.covers(digest)]
        if not relevant:
            judged = sorted({f"{s.name} (sha256 {_short(s.sha256)})" for a in attempts for s in a.result.subjects})
            return _fail(
                name,
                f"{gate} evidence judged {', '.join(judged) or 'no subject'}, not this model (sha256 {_short(digest)})",
            ), []
        attempts = relevant
    problems: list[str] = []
    for attempt in attempts:
        verdict = attempt.result.verdict
        if not attempt.verified:
            problems.append(f"evidence at {attempt.scope} did not verify ({attempt.failures[0]})")
        elif verdict is Verdict.WARNED:
            problems.append(f"warned at {attempt.scope} (warn-only mode; warned never counts as passed)")
        elif verdict is not Verdict.PASSED:
            problems.append(f"{verdict.value} at {attempt.scope}: {attempt.result.summary}")
    scopes = [a.scope for a in attempts]
    if problems:
        return _fail(name, "; ".join(problems)), scopes
    return _ok(name, f"passed at {', '.join(scopes)}"), scopes


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


def _approval_check(
    evidence: _PipelineEvidence, digest: str | None, required: int
) -> tuple[RegistryCheck, list[str], str | None]:
    """``approval``: a passed ``model-approval`` decision for exactly ``digest`` by enough people.

    Every approval task's latest decision counts: one that covers this digest and says anything
    but ``approved`` (rejected, timed out, void) blocks, even if another task approved.
    """
    if required <= 0:
        return _ok("approval", "no approval required (required_approvals=0)"), [], None
    attempts = evidence.latest(APPROVAL_GATE)
    if not attempts:
        return _fail("approval", f"no {APPROVAL_GATE} evidence in the pipeline run {evidence.run_id}"), [], None
    if digest is None:
        return _fail("approval", "the model's digest is unknown, so no approval can be bound to it"), [], None
    covering = [a for a in attempts if a.result.details.get("model_sha256") == digest and a.covers(digest)]
    if not covering:
        problems = [
            f"the approval at {a.scope} covers sha256 {_short(str(a.result.details.get('model_sha256')))}, not {_short(digest)}"
            for a in attempts
        ]
        return _fail("approval", "; ".join(problems)), [], None
    blocking: list[str] = []
    short: list[str] = []
    best: tuple[_Attempt, list[str]] | None = None
    for attempt in covering:
        result = attempt.result
        decision = result.details.get("decision")
        if not attempt.verified:
            blocking.append(f"the approval at {attempt.scope} did not verify ({attempt.failures[0]})")
        elif result.verdict is not Verdict.PASSED or decision != "approved":
            blocking.append(f"the decision at {attempt.scope} is {decision!r} (verdict {result.verdict.value})")
        else:
            names = sorted(_approvers(result.details).values())
            if len(names) < required:
                short.append(f"{len(names)} distinct approver(s) at {attempt.scope}, {required} required")
            elif best is None or len(names) > len(best[1]):
                best = (attempt, names)
    if blocking:
        return _fail("approval", "; ".join(blocking)), [], None
    if best is None:
        return _fail("approval", "; ".join(short)), [], None
    attempt, names = best
    detail = f"approved by {', '.join(names)} ({len(names)} of {required} required) at {attempt.scope}"
    return _ok("approval", detail), names, attempt.scope


# ----------------------------------------------------------------------------- the registered version
@dataclass
class _VersionState:
    name: str
    version: str
    tags: dict[str, str]
    aliases: list[str]
    status: str
    run_id: str | None
    actual_sha256: str | None = None
    evidence: _PipelineEvidence | None = None

    @property
    def model_uri(self) -> str:
        return _version_uri(self.name, self.version)

    @property
    def registered_sha256(self) -> str | None:
        value = self.tags.get(TAG_MODEL_SHA256, "")
        return value if _SHA256.match(value) else None

    @property
    def reference_sha256(self) -> str | None:
        """The digest evidence must name: the pinned one, else (unregistered) what the files hash to."""
        return self.registered_sha256 or self.actual_sha256

    @property
    def pipeline_run_id(self) -> str | None:
        return self.tags.get(TAG_PIPELINE_RUN_ID) or None


def _get_version(store: MLflowEvidenceStore, name: str, version: str) -> _VersionState:
    """The model version, or :class:`ConfigurationError` when the model or the version is unknown."""
    if not name or not str(version).strip():
        raise ConfigurationError("a registered model name and a version are required")
    with store.errors(f"cannot read model version {name}/{version}"):
        mv = store.client.get_model_version(name, str(version))
    return _VersionState(
        name=name,
        version=str(mv.version),
        tags=dict(mv.tags or {}),
        aliases=list(mv.aliases or []),
        status=str(mv.status or ""),
        run_id=mv.run_id,
    )


def _hash_uri(store: MLflowEvidenceStore, uri: str) -> str:
    with tempfile.TemporaryDirectory(prefix="mlsecops-registry-") as tmp:
        return sha256_path(store.download_uri(uri, Path(tmp)))


def _inspect(store: MLflowEvidenceStore, state: _VersionState, settings: Settings) -> list[RegistryCheck]:
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
            _fail(
                "registration",
                f"{state.model_uri} carries no {', '.join(missing)} tag: it was not registered through the "
                f"{REGISTRATION_GATE} gate{held}",
            )
        )
    elif state.registered_sha256 is None:
        checks.append(_fail("registration", f"{TAG_MODEL_SHA256} is not a SHA-256 digest: {state.tags[TAG_MODEL_SHA256]!r}"))
    else:
        checks.append(
            _ok("registration", f"pinned to sha256 {_short(state.registered_sha256)}, pipeline run {state.pipeline_run_id}")
        )
    if state.tags.get(TAG_QUARANTINED, "").lower() == "true":
        checks.append(_fail("quarantine", f"quarantined: {state.tags.get(TAG_QUARANTINE_REASON, 'no reason recorded')}"))
    else:
        checks.append(_ok("quarantine", "not quarantined"))
    if state.status and state.status != "READY":
        checks.append(_fail("status", f"MLflow reports the version {state.status}, not READY"))
    else:
        checks.append(_ok("status", "READY"))

    try:
        state.actual_sha256 = _hash_uri(store, state.model_uri)
    except StoreUnavailable:
        raise
    except MLSecOpsError as exc:  # missing files, a symbolic link, an unreadable version
        checks.append(_fail("registry-digest", f"the registered files could not be re-hashed: {exc}"))
    else:
        if state.registered_sha256 is None:
            checks.append(_fail("registry-digest", f"files hash to {_short(state.actual_sha256)}, and no digest was pinned"))
        elif state.actual_sha256 != state.registered_sha256:
            checks.append(
                _fail(
                    "registry-digest",
                    f"the registered files hash to {_short(state.actual_sha256)}, registration pinned "
                    f"{_short(state.registered_sha256)}: the model changed in the registry after it was registered",
                )
            )
        else:
            checks.append(_ok("registry-digest", f"the registered files still hash to {_short(state.actual_sha256)}"))

    run_id = state.pipeline_run_id
    if run_id:
        try:
            store.run_tags(run_id)
        except ConfigurationError as exc:
            checks.append(_fail("pipeline-evidence", f"the pipeline run {run_id} cannot be read: {exc}"))
        else:
            state.evidence = _verify_pipeline_run(store, run_id, settings)
            checks.append(_pipeline_check(state.evidence))
    else:
        checks.append(_fail("pipeline-evidence", f"no {TAG_PIPELINE_RUN_ID} tag: no evidence to verify"))
    return checks


def _current_holder(store: MLflowEvidenceStore, name: str, alias: str) -> str | None:
    with store.errors(f"cannot read registered model {name}"):
        model = store.client.get_registered_model(name)
    holder = dict(model.aliases or {}).get(alias)
    return str(holder) if holder is not None else None


def _validate_alias(alias: str) -> None:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "latest" or re.fullmatch(r"v\d+", alias):
        raise ConfigurationError(f"{alias!r} is not a usable alias (letters, digits, '_' and '-'; not 'latest' or v<N>)")


def _validate_gates(required_gates: Sequence[str], required_approvals: int) -> list[str]:
    if isinstance(required_gates, str):
        required_gates = [required_gates]
    gates = [str(g).strip() for g in required_gates]
    if any(not g for g in gates):
        raise ConfigurationError("required_gates holds an empty gate name")
    if not isinstance(required_approvals, int) or required_approvals < 0:
        raise ConfigurationError(f"required_approvals must be a whole number >= 0, got {required_approvals!r}")
    return list(dict.fromkeys(gates))


# ----------------------------------------------------------------------------- register
def _normalise_digest(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", "none", "null"):
        return None
    text = text.removeprefix("sha256:")
    if not _SHA256.match(text):
        raise ConfigurationError(f"expected_sha256 must be 64 hex digits, got {value!r}")
    return text


def _source_of(store: MLflowEvidenceStore, model_uri: str) -> tuple[str, str | None, str | None]:
    """(source, run id, logged model id) of a new model version registered from ``model_uri``."""
    client = store.client
    if model_uri.startswith("models:/"):
        ref = model_uri[len("models:/") :].rstrip("/")
        head, _, rest = ref.partition("/")
        if "@" in head or (rest and rest.isdigit()):
            if "@" in head:
                model_name, alias = head.split("@", 1)
                mv = client.get_model_version_by_alias(model_name, alias)
            else:
                mv = client.get_model_version(head, rest)
            source = client.get_model_version_download_uri(mv.name, mv.version)
            return source, mv.run_id, getattr(mv, "model_id", None)
        if rest:
            raise ConfigurationError(
                f"{model_uri}: expected models:/<model id>, models:/<name>/<version> or models:/<name>@<alias>"
            )
        logged = client.get_logged_model(head)
        return model_uri, logged.source_run_id, logged.model_id
    if model_uri.startswith("runs:/"):
        from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

        run_id, _ = RunsArtifactRepository.parse_runs_uri(model_uri)
        return RunsArtifactRepository.get_underlying_uri(model_uri), run_id, None
    return model_uri, None, None


def _create_version(store: MLflowEvidenceStore, model_uri: str, name: str, description: str) -> str:
    from mlflow.exceptions import MlflowException

    client = store.client
    with store.errors(f"cannot register {model_uri} as {name}"):
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        source, run_id, model_id = _source_of(store, model_uri)
        mv = client.create_model_version(name, source, run_id=run_id, model_id=model_id, description=description)
        return str(mv.version)


def _quarantine(store: MLflowEvidenceStore, name: str, version: str, reason: str) -> str | None:
    """Tag a version ``mlsecops.quarantined=true``; returns why that failed, if it did."""
    try:
        with store.errors(f"cannot quarantine {name}/{version}"):
            store.client.set_model_version_tag(name, version, TAG_QUARANTINED, "true")
            store.client.set_model_version_tag(name, version, TAG_QUARANTINE_REASON, reason[:4000])
    except MLSecOpsError as exc:
        return str(exc)
    return None


def _pinned_by_evidence(evidence: _PipelineEvidence | None, model_uri: str) -> tuple[str | None, str]:
    """The digest the pipeline's ``model-provenance`` evidence signed for ``model_uri``."""
    if evidence is None:
        return None, "no pipeline run"
    digests = {
        s.sha256
        for attempt in evidence.latest(gate_names.MODEL_PROVENANCE)
        if attempt.verified and attempt.result.verdict is Verdict.PASSED
        for s in attempt.result.subjects
        if s.name == model_uri
    }
    if len(digests) == 1:
        return digests.pop(), "model-provenance evidence"
    if digests:
        return None, f"model-provenance evidence names {len(digests)} different digests for {model_uri}"
    return None, f"no verified model-provenance evidence names {model_uri}"


def _signature_digest(evidence: _PipelineEvidence | None, digest: str) -> str | None:
    """SHA-256 of the OpenSSF signature bundle of the model with ``digest``, from ``model-signing`` evidence."""
    if evidence is None:
        return None
    for attempt in reversed(evidence.latest(gate_names.MODEL_SIGNING)):
        if attempt.verified and attempt.result.verdict is Verdict.PASSED and attempt.covers(digest):
            value = attempt.result.details.get("signature_sha256") or attempt.result.details.get("bundle_sha256")
            if isinstance(value, str) and _SHA256.match(value):
                return value
    return None


def register_model(
    store: MLflowEvidenceStore,
    *,
    model_uri: str,
    name: str,
    expected_sha256: str | None,
    pipeline_run_id: str | None,
    tags: Mapping[str, str] | None = None,
    context: PipelineContext | None = None,
    settings: Settings | None = None,
) -> GateOutcome:
    """Gate ``model-registration``: register ``model_uri`` as a new version of ``name``, pinned to its digest.

    The model is hashed before anything is created: a digest other than ``expected_sha256``
    refuses (failed verdict) and nothing is registered. The new version is then downloaded from
    the registry and hashed again; if it differs (a registry that copies artifacts, or a swap while
    registering) the version is tagged ``mlsecops.quarantined=true`` and the verdict is failed.
    A registration that cannot run (unknown model, unreachable store) is an ``error`` verdict.

    :param store: the MLflow store (tracking and registry URI are the same).
    :param model_uri: ``models:/<model id>`` (a logged model), ``runs:/<run id>/<path>``,
        ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
    :param name: the registered model's name (created when missing).
    :param expected_sha256: the digest the model must have (e.g. the ``model-provenance`` subject's).
        ``None``: the digest that verified ``model-provenance`` evidence of the pipeline run signed
        for ``model_uri``; without one the registration is refused, never unpinned.
    :param pipeline_run_id: the MLflow run holding the pipeline's evidence; tagged on the version
        so promotion can verify it. ``None`` registers without it (promotion will then refuse).
    :param tags: further version tags (not in the ``mlsecops.`` namespace).
    :param context: the Airflow task registering, if any.
    :param settings: trusted keys and ledger for reading the pipeline's evidence (default: environment).
    :return: the gate outcome; ``result.details`` has ``name``, ``version``, ``model_uri``
        (``models:/<name>/<version>``) and ``model_sha256``.
    """
    extra = {str(k): str(v) for k, v in dict(tags or {}).items()}

    def body() -> Evaluation:
        if not name or not isinstance(name, str):
            raise ConfigurationError("a registered model name is required")
        if not model_uri:
            raise ConfigurationError("model_uri is required")
        reserved = sorted(k for k in extra if k.startswith("mlsecops."))
        if reserved:
            raise ConfigurationError(f"tags in the mlsecops. namespace are set by the gate only: {', '.join(reserved)}")
        expected = _normalise_digest(expected_sha256)
        cfg = settings or Settings.from_env()
        run_tags: dict[str, str] = {}
        evidence: _PipelineEvidence | None = None
        if pipeline_run_id:
            run_tags = store.run_tags(pipeline_run_id)
            evidence = _verify_pipeline_run(store, pipeline_run_id, cfg, check_subjects=False)
        pinned_by = "expected_sha256"
        if expected is None:
            expected, why = _pinned_by_evidence(evidence, model_uri)
            pinned_by = why
            if expected is None:
                return Evaluation(
                    passed=False,
                    summary=f"refused: nothing pins the digest of {model_uri} ({why}); nothing was registered",
                    findings=[Finding("registration.unpinned", Severity.HIGH, f"no expected_sha256 and {why}", model_uri)],
                    details={"name": name, "source_uri": model_uri, "registered": False},
                )
        base = {"name": name, "source_uri": model_uri, "expected_sha256": expected, "pinned_by": pinned_by}
        source_digest = _hash_uri(store, model_uri)
        if source_digest != expected:
            message = f"{model_uri} hashes to {_short(source_digest)}, expected {_short(expected)}"
            return Evaluation(
                passed=False,
                summary=f"refused: {message}; nothing was registered",
                subjects=[Subject(model_uri, source_digest)],
                findings=[Finding("registration.digest-mismatch", Severity.CRITICAL, message, model_uri, _ATLAS, _OWASP)],
                details={**base, "registered": False, "source_sha256": source_digest},
            )

        version = _create_version(store, model_uri, name, description=f"registered by airflow-mlsecops from {model_uri}")
        registered_uri = _version_uri(name, version)
        try:
            registered_digest = _hash_uri(store, registered_uri)
        except MLSecOpsError as exc:
            _quarantine(store, name, version, f"the registered files could not be hashed: {exc}")
            raise
        if registered_digest != expected:
            message = f"the registered files of {registered_uri} hash to {_short(registered_digest)}, expected {_short(expected)}"
            problem = _quarantine(store, name, version, message)
            return Evaluation(
                passed=False,
                summary=f"refused: {message}; the version is quarantined" + (f" (tagging failed: {problem})" if problem else ""),
                subjects=[Subject(registered_uri, registered_digest)],
                findings=[
                    Finding("registration.registered-digest-mismatch", Severity.CRITICAL, message, registered_uri, _ATLAS, _OWASP)
                ],
                details={
                    **base,
                    "registered": True,
                    "quarantined": problem is None,
                    "version": version,
                    "model_uri": registered_uri,
                },
            )

        version_tags = {TAG_MODEL_SHA256: expected, TAG_SOURCE_URI: model_uri}
        if pipeline_run_id:
            version_tags[TAG_PIPELINE_RUN_ID] = pipeline_run_id
            version_tags[TAG_EVIDENCE] = f"runs:/{pipeline_run_id}/{EVIDENCE_ROOT}"
        dag_id = run_tags.get(TAG_DAG_ID) or (context.dag_id if context else None)
        dag_run_id = run_tags.get(TAG_RUN_ID) or (context.run_id if context else None)
        if dag_id:
            version_tags[TAG_VERSION_DAG_ID] = dag_id
        if dag_run_id:
            version_tags[TAG_VERSION_RUN_ID] = dag_run_id
        signature = _signature_digest(evidence, expected)
        if signature:
            version_tags[TAG_SIGNATURE_SHA256] = signature
        try:
            with store.errors(f"cannot tag {registered_uri}"):
                for key, value in {**extra, **version_tags}.items():
                    store.client.set_model_version_tag(name, version, key, value)
        except MLSecOpsError as exc:
            _quarantine(store, name, version, f"the registration tags could not be set: {exc}")
            raise
        return Evaluation(
            passed=True,
            summary=f"registered {model_uri} as {registered_uri}, sha256 {_short(expected)} (pinned by {pinned_by})",
            subjects=[Subject(registered_uri, expected), Subject(model_uri, expected)],
            findings=[
                Finding(
                    "registration.digest",
                    Severity.INFO,
                    f"{registered_uri} hashes to the pinned digest",
                    registered_uri,
                    passed=True,
                )
            ],
            details={
                **base,
                "registered": True,
                "version": version,
                "model_uri": registered_uri,
                "model_sha256": expected,
                "pipeline_run_id": pipeline_run_id,
                "signature_sha256": signature,
                "tags": {**extra, **version_tags},
            },
        )

    return run_gate(
        REGISTRATION_GATE,
        body,
        policy={"digest": "sha256", "pinned": "expected_sha256 or model-provenance evidence", "rehash_registered": True},
        distributions=("mlflow",),
        context=context,
    )


# ----------------------------------------------------------------------------- promote
def check_promotion(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    alias: str,
    required_gates: Sequence[str] = DEFAULT_REQUIRED_GATES,
    required_approvals: int = 1,
    settings: Settings | None = None,
    context: PipelineContext | None = None,
    policy_check: Callable[[Mapping[str, GateResult]], Sequence[str]] | None = None,
) -> GateOutcome:
    """Gate ``model-promotion``: every check promotion needs, made now, with no side effect.

    The verdict is ``passed`` only when every check is ok; a failed verdict's summary names every
    failed check, and ``result.details["checks"]`` lists all of them. An unknown model or version
    is an ``error`` verdict. Nothing is changed in MLflow: pass the outcome to :func:`promote`.

    :param store: the MLflow store.
    :param name: the registered model.
    :param version: the version to promote.
    :param alias: the alias it should get (e.g. ``champion``).
    :param required_gates: gates that must have passed in the version's pipeline run; model gates
        (:data:`MODEL_GATES`) must name the model's digest.
    :param required_approvals: distinct approvers the ``model-approval`` decision must count
        (``0``: no approval needed).
    :param settings: trusted keys and ledger (default: environment).
    :param context: the Airflow task deciding, if any.
    :param policy_check: judges the verified evidence against the platform policy (run-time
        enforcement); each returned message is a violation and fails the ``policy`` check.
    """
    version = str(version)
    model_uri = _version_uri(name, version)

    def body() -> Evaluation:
        _validate_alias(alias)
        gates = _validate_gates(required_gates, required_approvals)
        cfg = settings or Settings.from_env()
        state = _get_version(store, name, version)
        holder = _current_holder(store, name, alias)
        checks = _inspect(store, state, cfg)
        digest = state.reference_sha256
        gate_scopes: dict[str, list[str]] = {}
        approved_by: list[str] = []
        approval_scope: str | None = None
        if state.evidence is None:
            checks.extend(_fail(f"gate:{g}", "no pipeline evidence to look in") for g in gates)
            if required_approvals > 0:
                checks.append(_fail("approval", "no pipeline evidence to look in"))
        else:
            for gate in gates:
                check, scopes = _gate_check(gate, state.evidence, digest)
                checks.append(check)
                gate_scopes[gate] = scopes
            approval, approved_by, approval_scope = _approval_check(state.evidence, digest, required_approvals)
            checks.append(approval)
            if policy_check is not None:
                violations = list(policy_check(state.evidence.report.results))
                checks.append(_fail("policy", "; ".join(violations)) if violations else _ok("policy", "the evidence complies"))
        failed = [c for c in checks if c.failed]
        subject_digest = state.actual_sha256 or digest
        findings = [
            Finding(
                f"promotion.{c.name}",
                Severity.CRITICAL if c.name in _TAMPER_CHECKS else Severity.HIGH,
                f"{c.name}: {c.detail}",
                model_uri,
                _ATLAS if c.name in _TAMPER_CHECKS else (),
                _OWASP if c.name in _TAMPER_CHECKS else (),
            )
            if c.failed
            else Finding(f"promotion.{c.name}", Severity.INFO, f"{c.name}: {c.detail}", model_uri, passed=True)
            for c in checks
        ]
        if failed:
            summary = f"promotion of {model_uri} to @{alias} refused, {len(failed)} failed check(s): " + "; ".join(
                f"{c.name} ({c.detail})" for c in failed
            )
        else:
            summary = f"{model_uri} (sha256 {_short(digest)}) may become @{alias}: {len(checks)} checks passed" + (
                f", approved by {', '.join(approved_by)}" if approved_by else ""
            )
        return Evaluation(
            passed=not failed,
            summary=summary,
            subjects=[Subject(model_uri, subject_digest)] if subject_digest else [],
            findings=findings,
            metrics={"checks": float(len(checks)), "failed_checks": float(len(failed))},
            details={
                "name": name,
                "version": state.version,
                "alias": alias,
                "model_uri": model_uri,
                "model_sha256": digest,
                "actual_sha256": state.actual_sha256,
                "pipeline_run_id": state.pipeline_run_id,
                "required_gates": gates,
                "required_approvals": required_approvals,
                "approved_by": approved_by,
                "approval_evidence": approval_scope,
                "gate_evidence": gate_scopes,
                "current_holder": holder,
                "checks": [c.to_dict() for c in checks],
                "failed_checks": [c.name for c in failed],
            },
        )

    return run_gate(
        PROMOTION_GATE,
        body,
        policy={
            "alias": alias,
            "required_gates": list(required_gates) if not isinstance(required_gates, str) else [required_gates],
            "required_approvals": required_approvals,
            "warned_counts_as_passed": False,
            "rehash_registered": True,
        },
        distributions=("mlflow",),
        context=context,
    )


@dataclass(frozen=True)
class PromotionRecord:
    """What :func:`promote` changed: the alias, its previous holder and where the evidence is."""

    name: str
    version: str
    alias: str
    model_uri: str
    model_sha256: str
    previous_version: str | None
    promoted_at: str
    approved_by: tuple[str, ...]
    evidence: str | None
    history: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "model_uri": self.model_uri,
            "model_sha256": self.model_sha256,
            "previous_version": self.previous_version,
            "promoted_at": self.promoted_at,
            "approved_by": list(self.approved_by),
            "evidence": self.evidence,
            "history": list(self.history),
        }


def _load_history(tags: Mapping[str, str], alias: str) -> list[str] | None:
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


def _evidence_uri(evidence: RecordedEvidence | str | None) -> str | None:
    if evidence is None or isinstance(evidence, str):
        return evidence
    return f"runs:/{evidence.mlflow_run_id}/{evidence.artifact_dir}"


def _restore_alias(store: MLflowEvidenceStore, name: str, alias: str, holder: str | None) -> None:
    """Best effort: put ``alias`` back on ``holder`` (or remove it) after a failed change."""
    try:
        with store.errors(f"cannot restore @{alias}"):
            if holder is None:
                store.client.delete_registered_model_alias(name, alias)
            else:
                store.client.set_registered_model_alias(name, alias, holder)
    except MLSecOpsError:
        pass


def promote(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    alias: str,
    outcome: GateOutcome,
    evidence: RecordedEvidence | str | None = None,
) -> PromotionRecord:
    """Set ``alias`` on ``name``/``version``, only if ``outcome`` (from :func:`check_promotion`) passed.

    Record ``outcome`` first (the operator and :func:`promote_model` do) and pass where it went as
    ``evidence``: the version's ``mlsecops.promotion_evidence`` tags then point at the signed
    attestation, which :func:`verify_model_version` requires for every alias a version holds.

    Refuses with :class:`GateRejected` (nothing changed) when the outcome did not pass, and with
    :class:`ConfigurationError` when it is about another version or alias, or when the version's
    pinned digest or quarantine tag changed since the check. If MLflow fails half way, the alias
    is put back (best effort) and :class:`StoreUnavailable` is raised.

    Open-source MLflow has no alias permissions: anyone who may edit the registered model can move
    the alias by hand afterwards; :func:`verify_model_version` detects that.

    :param store: the MLflow store.
    :param name: the registered model.
    :param version: the version to promote.
    :param alias: the alias to set.
    :param outcome: the ``model-promotion`` outcome of :func:`check_promotion` for this version and alias.
    :param evidence: where the outcome was recorded (a :class:`RecordedEvidence` or a ``runs:/`` URI).
    :return: the promotion, with the alias's previous holder.
    """
    version = str(version)
    result = outcome.result
    details = result.details
    if result.gate != PROMOTION_GATE:
        raise ConfigurationError(f"the outcome is of gate {result.gate!r}, not {PROMOTION_GATE}")
    if result.verdict is not Verdict.PASSED:
        raise GateRejected(f"{_version_uri(name, version)} is not promoted to @{alias}: {result.summary}", result=result)
    if (details.get("name"), str(details.get("version")), details.get("alias")) != (name, version, alias):
        raise ConfigurationError(
            f"the promotion decision is about {details.get('name')}/{details.get('version')} @{details.get('alias')}, "
            f"not {name}/{version} @{alias}"
        )
    digest = str(details.get("model_sha256") or "")
    if not _SHA256.match(digest):
        raise ConfigurationError("the promotion decision names no model digest")
    state = _get_version(store, name, version)
    if state.registered_sha256 != digest:
        raise ConfigurationError(
            f"{state.model_uri} is now pinned to {_short(state.registered_sha256)}, the decision was about {_short(digest)}"
        )
    if state.tags.get(TAG_QUARANTINED, "").lower() == "true":
        raise ConfigurationError(f"{state.model_uri} was quarantined after the decision")

    client = store.client
    with store.errors(f"cannot read registered model {name}"):
        model = client.get_registered_model(name)
    previous_raw = dict(model.aliases or {}).get(alias)
    previous = str(previous_raw) if previous_raw is not None else None
    history = _load_history(dict(model.tags or {}), alias) or []
    if previous and (not history or history[-1] != previous):
        history.append(previous)
    if not history or history[-1] != version:
        history.append(version)
    history = history[-MAX_HISTORY:]
    promoted_at = _now()
    approved_by = tuple(str(a) for a in details.get("approved_by") or ())
    evidence_uri = _evidence_uri(evidence)
    tags = {
        TAG_APPROVED_BY: ", ".join(approved_by) or "none required",
        TAG_PROMOTED_AT: promoted_at,
        tag_previous(alias): previous or "none",
    }
    if evidence_uri:
        tags[TAG_PROMOTION_EVIDENCE] = evidence_uri
        tags[tag_promotion_evidence(alias)] = evidence_uri

    with store.errors(f"cannot set @{alias} on {state.model_uri}"):
        client.set_registered_model_alias(name, alias, version)
    try:
        with store.errors(f"@{alias} is on {state.model_uri}, but its tags cannot be written"):
            client.set_registered_model_tag(name, tag_history(alias), json.dumps(history))
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
    except MLSecOpsError as exc:
        _restore_alias(store, name, alias, previous)
        raise StoreUnavailable(f"{exc}; @{alias} was put back on {previous or 'no version'}") from exc
    return PromotionRecord(
        name=name,
        version=version,
        alias=alias,
        model_uri=state.model_uri,
        model_sha256=digest,
        previous_version=previous,
        promoted_at=promoted_at,
        approved_by=approved_by,
        evidence=evidence_uri,
        history=tuple(history),
    )


def alias_failure_result(outcome: GateOutcome, error: BaseException) -> GateResult:
    """The ``error`` record of a promotion whose checks passed but whose alias could not be set.

    :param outcome: the passed ``model-promotion`` outcome.
    :param error: why the alias could not be set.
    """
    result = outcome.result
    return GateResult.create(
        gate=PROMOTION_GATE,
        verdict=Verdict.ERROR,
        subjects=result.subjects,
        findings=[Finding("promotion.alias-not-set", Severity.HIGH, f"the alias could not be set: {error}")],
        policy=result.policy,
        tool_versions=result.tool_versions,
        context=result.context,
        summary=f"every check passed, but the alias could not be set: {error}",
        details={**dict(result.details), "alias_set": False, "alias_error": str(error)},
    )


def _registry_recorder(store: MLflowEvidenceStore, settings: Settings) -> EvidenceRecorder:
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

    return EvidenceRecorder(signing_key=settings.load_signing_key(), ledger=EvidenceLedger(settings.ledger_url), store=store)


def promote_model(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    alias: str,
    required_gates: Sequence[str] = DEFAULT_REQUIRED_GATES,
    required_approvals: int = 1,
    settings: Settings | None = None,
    recorder: EvidenceRecorder | None = None,
    mlflow_run_id: str | None = None,
) -> tuple[GateOutcome, PromotionRecord]:
    """Check, record the signed decision, then promote: ``mlsecops promote`` in one call.

    The decision is recorded in ``mlflow_run_id``, by default the version's pipeline run (else a
    new run of experiment ``mlsecops-registry``). A refusal is recorded too, then raised as
    :class:`GateRejected` (alias unchanged); a decision that could not be reached raises
    :class:`~airflow_mlsecops.exceptions.GateError`. If the alias cannot be set after a passed
    decision, an ``error`` record follows it and the MLflow error is raised.

    :param store: the MLflow store.
    :param name: the registered model.
    :param version: the version to promote.
    :param alias: the alias to set.
    :param required_gates: see :func:`check_promotion`.
    :param required_approvals: see :func:`check_promotion`.
    :param settings: keys and ledger (default: environment).
    :param recorder: records the evidence (default: one built from ``settings`` on ``store``).
    :param mlflow_run_id: record into this MLflow run.
    :return: the recorded outcome and the promotion.
    """
    from airflow_mlsecops.exceptions import GateError

    cfg = settings or Settings.from_env()
    outcome = check_promotion(
        store,
        name=name,
        version=version,
        alias=alias,
        required_gates=required_gates,
        required_approvals=required_approvals,
        settings=cfg,
    )
    recorder = recorder or _registry_recorder(store, cfg)
    run_id = mlflow_run_id or outcome.result.details.get("pipeline_run_id") or None
    if run_id:
        try:
            store.run_tags(str(run_id))
        except ConfigurationError:
            run_id = None
    recorded = recorder.record(
        outcome.result, experiment_name=REGISTRY_EXPERIMENT, files=outcome.files, mlflow_run_id=str(run_id) if run_id else None
    )
    if outcome.verdict is Verdict.ERROR:
        raise GateError(f"promotion of {name}/{version} could not be decided: {outcome.result.summary}")
    if outcome.verdict is not Verdict.PASSED:
        raise GateRejected(outcome.result.summary, result=outcome.result)
    try:
        record = promote(store, name=name, version=str(version), alias=alias, outcome=outcome, evidence=recorded)
    except MLSecOpsError as exc:
        recorder.record(
            alias_failure_result(outcome, exc), experiment_name=REGISTRY_EXPERIMENT, mlflow_run_id=recorded.mlflow_run_id
        )
        raise
    return outcome, record


# ----------------------------------------------------------------------------- verify a version
@dataclass
class VersionVerification:
    """Whether a model version's registration and promotions rest on a verified evidence chain."""

    name: str
    version: str
    aliases: list[str]
    model_sha256: str | None
    actual_sha256: str | None
    pipeline_run_id: str | None
    checks: list[RegistryCheck] = field(default_factory=list)

    @property
    def model_uri(self) -> str:
        return _version_uri(self.name, self.version)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not any(c.failed for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if c.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "model_uri": self.model_uri,
            "aliases": list(self.aliases),
            "model_sha256": self.model_sha256,
            "actual_sha256": self.actual_sha256,
            "pipeline_run_id": self.pipeline_run_id,
            "verified": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "problems": self.problems,
        }


def _parse_runs_uri(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("runs:/"):
        return None
    run_id, _, path = uri[len("runs:/") :].partition("/")
    return (run_id, path.rstrip("/")) if run_id and path else None


def _is_promotion_of(result: GateResult, name: str, version: str, alias: str) -> bool:
    details = result.details
    return (
        result.gate == PROMOTION_GATE
        and details.get("name") == name
        and str(details.get("version")) == version
        and details.get("alias") == alias
    )


def _attestation_check(
    store: MLflowEvidenceStore,
    state: _VersionState,
    alias: str,
    settings: Settings,
    reports: dict[str, _PipelineEvidence],
) -> tuple[RegistryCheck, _Attempt | None]:
    """``attestation:@<alias>``: a verified, passed, not superseded promotion of this digest to ``alias``."""
    name = f"attestation:@{alias}"
    digest = state.registered_sha256
    candidates: list[tuple[str, str | None]] = []
    for key in (tag_promotion_evidence(alias), TAG_PROMOTION_EVIDENCE):
        parsed = _parse_runs_uri(state.tags.get(key, ""))
        if parsed:
            candidates.append(parsed)
    if state.pipeline_run_id:
        candidates.append((state.pipeline_run_id, None))
    problems: list[str] = []
    for run_id, artifact_dir in dict.fromkeys(candidates):
        evidence = reports.get(run_id)
        if evidence is None:
            try:
                store.run_tags(run_id)
            except ConfigurationError as exc:
                problems.append(f"the promotion evidence run {run_id} cannot be read: {exc}")
                continue
            evidence = reports[run_id] = _verify_pipeline_run(store, run_id, settings)
        if artifact_dir is not None:
            scope = artifact_dir.split("/evidence/", 1)[-1]
            located = evidence.at(scope)
            attempts = [located] if located else []
            if not attempts:
                problems.append(f"no verified evidence at runs:/{run_id}/{artifact_dir}")
        else:
            attempts = [a for a in evidence.attempts if _is_promotion_of(a.result, state.name, state.version, alias)]
        for attempt in reversed(attempts):
            result = attempt.result
            where = f"runs:/{run_id} {attempt.scope}"
            if not _is_promotion_of(result, state.name, state.version, alias):
                problems.append(f"{where} is not a promotion of {state.model_uri} to @{alias}")
            elif not attempt.verified:
                problems.append(f"the attestation at {where} does not verify ({attempt.failures[0]})")
            elif result.verdict is not Verdict.PASSED:
                problems.append(f"the promotion at {where} was {result.verdict.value}")
            elif digest is None or not attempt.covers(digest) or result.details.get("model_sha256") != digest:
                problems.append(
                    f"the attestation at {where} is about sha256 {_short(str(result.details.get('model_sha256')))}, "
                    f"the version is pinned to {_short(digest)}"
                )
            elif later := evidence.superseded(
                attempt,
                lambda r: _is_promotion_of(r, state.name, state.version, alias) and r.verdict is not Verdict.PASSED,
            ):
                problems.append(
                    f"the attestation at {where} is followed by a {later.result.verdict.value} record at {later.scope}"
                )
            elif not evidence.report.ok:
                problems.append(f"the attestation at {where} is in a run that does not verify")
            else:
                return _ok(name, f"promotion attested at {where}"), attempt
    if not candidates or not problems:
        problems.append(f"no promotion attestation of {state.model_uri} to @{alias} exists (alias set by hand in MLflow?)")
    return _fail(name, "; ".join(dict.fromkeys(problems))), None


def verify_model_version(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    settings: Settings | None = None,
    alias: str | None = None,
) -> VersionVerification:
    """Check that a version's registration and each alias it holds rest on a verified evidence chain.

    ``mlsecops verify-model-version NAME VERSION``. Always checks the registration chain
    (``registration``, ``quarantine``, ``status``, ``registry-digest``, ``pipeline-evidence``). For
    a promoted version (it holds an alias, or ``alias`` is given) also: per alias a signed
    ``model-promotion`` attestation of this version and digest (``attestation:@<alias>``), the
    gates that attestation required (``gate:<name>``) and the approval (``approval``).

    Detects an alias set by hand in MLflow (no mlsecops tags, or no attestation for the alias):
    open-source MLflow has no alias permissions, so this after-the-fact check is the control.

    Never raises for a broken chain: ``.ok`` is false and ``.problems`` says why. Raises
    :class:`ConfigurationError` for an unknown model or version, and :class:`StoreUnavailable`
    when MLflow cannot be reached.

    :param store: the MLflow store.
    :param name: the registered model.
    :param version: the version.
    :param settings: trusted keys and ledger (default: environment).
    :param alias: also require a promotion attestation for this alias (e.g. before a rollback to it).
    """
    cfg = settings or Settings.from_env()
    state = _get_version(store, name, str(version))
    checks = _inspect(store, state, cfg)
    aliases = list(dict.fromkeys([*state.aliases, *([alias] if alias else [])]))
    reports: dict[str, _PipelineEvidence] = {}
    if state.evidence is not None:
        reports[state.evidence.run_id] = state.evidence
    gates: list[str] = []
    approvals = 0
    for held in aliases:
        check, attempt = _attestation_check(store, state, held, cfg, reports)
        checks.append(check)
        if attempt is not None:
            gates.extend(str(g) for g in attempt.result.details.get("required_gates") or ())
            approvals = max(approvals, int(attempt.result.details.get("required_approvals") or 0))
        else:
            gates.extend(DEFAULT_REQUIRED_GATES)
            approvals = max(approvals, 1)
    if aliases:
        digest = state.reference_sha256
        if state.evidence is None:
            checks.append(_fail("approval", "no pipeline evidence to look in"))
        else:
            for gate in dict.fromkeys(gates):
                checks.append(_gate_check(gate, state.evidence, digest)[0])
            checks.append(_approval_check(state.evidence, digest, approvals)[0])
    return VersionVerification(
        name=name,
        version=state.version,
        aliases=state.aliases,
        model_sha256=state.registered_sha256,
        actual_sha256=state.actual_sha256,
        pipeline_run_id=state.pipeline_run_id,
        checks=checks,
    )


# ----------------------------------------------------------------------------- rollback
@dataclass(frozen=True)
class RollbackRecord:
    """What :func:`rollback` changed and where its signed evidence is."""

    name: str
    alias: str
    from_version: str
    to_version: str
    forced: bool
    problems: tuple[str, ...]
    rolled_back_at: str
    evidence: str
    history: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "forced": self.forced,
            "problems": list(self.problems),
            "rolled_back_at": self.rolled_back_at,
            "evidence": self.evidence,
            "history": list(self.history),
        }


def _version_exists(store: MLflowEvidenceStore, name: str, version: str) -> bool:
    try:
        _get_version(store, name, version)
    except ConfigurationError:
        return False
    return True


def _previous_holder(
    store: MLflowEvidenceStore, name: str, history: Iterable[str], current: str, fallback: str | None
) -> tuple[str | None, list[str]]:
    """The version ``alias`` goes back to, and the history after going back (ending with it)."""
    stack = list(history)
    while stack and stack[-1] == current:
        stack.pop()
    while stack:
        candidate = stack[-1]
        if candidate != current and _version_exists(store, name, candidate):
            return candidate, stack
        stack.pop()
    if fallback and fallback not in ("none", current) and _version_exists(store, name, fallback):
        return fallback, [fallback]
    return None, []


def rollback(
    store: MLflowEvidenceStore,
    *,
    name: str,
    alias: str,
    settings: Settings | None = None,
    force: bool = False,
    reason: str | None = None,
    recorder: EvidenceRecorder | None = None,
) -> RollbackRecord:
    """Give ``alias`` back to its previous holder: ``mlsecops rollback --model NAME --alias champion``.

    The previous holder comes from ``mlsecops.alias_history.<alias>`` (kept by :func:`promote`),
    else the holder's ``mlsecops.previous_<alias>`` tag. The history works as a stack: the version
    rolled back from is taken off it, so a second rollback goes one version further back.

    The previous holder's chain is verified first (:func:`verify_model_version` with ``alias``):
    a broken chain refuses with :class:`VerificationError` unless ``force`` (then the evidence
    records the problems and the verdict ``warned``). Signed evidence (gate ``model-rollback``,
    subject ``models:/<name>/<version>``) is recorded in a new run of experiment
    ``mlsecops-registry`` before the alias moves; if MLflow then fails, an ``error`` record
    follows and the error is raised.

    Open-source MLflow has no alias permissions: this is the recorded way to move an alias back,
    not the only possible one.

    :param store: the MLflow store.
    :param name: the registered model.
    :param alias: the alias to roll back.
    :param settings: keys and ledger (default: environment).
    :param force: roll back even to a version whose chain does not verify.
    :param reason: why, recorded in the evidence.
    :param recorder: records the evidence (default: one built from ``settings`` on ``store``).
    :raises ConfigurationError: unknown model, alias not set, or no previous holder.
    :raises VerificationError: the previous holder's chain is broken and ``force`` is not set.
    """
    _validate_alias(alias)
    cfg = settings or Settings.from_env()
    client = store.client
    with store.errors(f"cannot read registered model {name}"):
        model = client.get_registered_model(name)
    current_raw = dict(model.aliases or {}).get(alias)
    if current_raw is None:
        raise ConfigurationError(f"{name} has no alias @{alias}: nothing to roll back")
    current = str(current_raw)
    history = _load_history(dict(model.tags or {}), alias)
    if history is None:
        raise ConfigurationError(f"the {tag_history(alias)} tag of {name} is not a JSON list of versions")
    fallback = _get_version(store, name, current).tags.get(tag_previous(alias))
    target, new_history = _previous_holder(store, name, history, current, fallback)
    if target is None:
        raise ConfigurationError(f"@{alias} of {name} has no previous holder to roll back to (it is on version {current})")
    check = verify_model_version(store, name=name, version=target, settings=cfg, alias=alias)
    if not check.ok and not force:
        raise VerificationError(
            f"refusing to roll @{alias} back to {check.model_uri}: its evidence chain is broken:\n  "
            + "\n  ".join(check.problems)
            + "\n(use force to roll back anyway; the problems are then recorded)"
        )
    rolled_back_at = _now()
    target_uri = _version_uri(name, target)
    details: dict[str, Any] = {
        "name": name,
        "alias": alias,
        "from_version": current,
        "to_version": target,
        "model_uri": target_uri,
        "model_sha256": check.model_sha256,
        "actual_sha256": check.actual_sha256,
        "forced": force,
        "reason": reason,
        "history_before": history,
        "history_after": new_history,
        "verification": check.to_dict(),
    }
    forced_problems = not check.ok
    result = GateResult.create(
        gate=ROLLBACK_GATE,
        verdict=Verdict.WARNED if forced_problems else Verdict.PASSED,
        subjects=[Subject(target_uri, check.actual_sha256)] if check.actual_sha256 else [],
        findings=[Finding("rollback.chain", Severity.HIGH, p, target_uri) for p in check.problems]
        or [Finding("rollback.chain", Severity.INFO, f"{target_uri} verifies", target_uri, passed=True)],
        policy={"force": force, "verify_previous_holder": True},
        tool_versions=tool_versions("mlflow"),
        summary=f"@{alias} of {name}: version {current} -> {target}"
        + (" (forced over a broken chain)" if forced_problems else ""),
        warn_only=forced_problems,
        details=details,
    )
    recorder = recorder or _registry_recorder(store, cfg)
    recorded = recorder.record(result, experiment_name=REGISTRY_EXPERIMENT)
    evidence_uri = _evidence_uri(recorded) or ""
    try:
        with store.errors(f"cannot move @{alias} of {name} to version {target}"):
            client.set_registered_model_alias(name, alias, target)
        try:
            with store.errors(f"@{alias} is on version {target}, but the rollback tags cannot be written"):
                client.set_registered_model_tag(name, tag_history(alias), json.dumps(new_history))
                client.set_model_version_tag(name, target, TAG_ROLLBACK_EVIDENCE, evidence_uri)
                client.set_model_version_tag(name, current, f"mlsecops.rolled_back_from_{alias}", rolled_back_at)
        except MLSecOpsError:
            _restore_alias(store, name, alias, current)
            raise
    except MLSecOpsError as exc:
        failure = GateResult.create(
            gate=ROLLBACK_GATE,
            verdict=Verdict.ERROR,
            subjects=result.subjects,
            findings=[Finding("rollback.alias-not-moved", Severity.HIGH, str(exc))],
            tool_versions=result.tool_versions,
            summary=f"the rollback of @{alias} of {name} to version {target} did not happen: {exc}",
            details={**details, "alias_moved": False, "error": str(exc)},
        )
        try:
            recorder.record(failure, experiment_name=REGISTRY_EXPERIMENT, mlflow_run_id=recorded.mlflow_run_id)
        except MLSecOpsError:
            pass  # the original failure is what the user must see
        raise
    return RollbackRecord(
        name=name,
        alias=alias,
        from_version=current,
        to_version=target,
        forced=force,
        problems=tuple(check.problems),
        rolled_back_at=rolled_back_at,
        evidence=evidence_uri,
        history=tuple(new_history),
    )
