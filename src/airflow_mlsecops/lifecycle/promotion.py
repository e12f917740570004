"""Promoting a registered version to an alias (gate ``model-promotion``), bound to the pipeline's evidence.

>>> from airflow_mlsecops import gate_names
>>> from airflow_mlsecops.lifecycle.promotion import check_promotion, promote
>>> decision = check_promotion(store, name="credit", version="3", alias="champion",
...                            required_gates=gate_names.DEFAULT_REQUIRED_GATES, required_approvals=1)  # doctest: +SKIP
>>> record = promote(store, name="credit", version="3", alias="champion", outcome=decision)  # doctest: +SKIP

At promotion time (:func:`check_promotion`), every check is made again from the stored bytes, and
each is named in the result:

* ``registration``: the version carries the registration tags (it went through the gate);
* ``quarantine`` and ``status``: it is not quarantined and MLflow reports it ``READY``;
* ``registry-digest``: its files, downloaded from the registry now, still hash to
  ``mlsecops.model_sha256`` (no swap between the scans and the promotion);
* ``pipeline-evidence``: :func:`~airflow_mlsecops.lifecycle.verification.verify_run` of the pipeline run is
  ok (signatures, ledger chain, evidence files, subjects re-hashed);
* ``gate:<name>`` per required gate: the latest attempt of each task that recorded the gate passed
  (``warned`` never counts, except an *incomplete* one, a check not performed and nothing
  rejected, of a gate listed in ``accept_warned``); for model gates the subject's digest is the model's;
* ``approval``: the latest ``model-approval`` decision passed, covers exactly this digest and
  counts at least ``required_approvals`` distinct approvers;
* ``training-data``: when a data gate is required, every training-data digest the registration
  recorded was judged by a passed record of each required data gate of the same run;
* ``policy-digest`` (with ``policy_digest``): every record names the platform policy.

:func:`promote` sets the alias only for a passed outcome, tags the version
(``mlsecops.approved_by``, ``mlsecops.promoted_at``, ``mlsecops.promotion_evidence``,
``mlsecops.previous_<alias>``) and keeps the alias's holders on the registered model
(``mlsecops.alias_history.<alias>``: a JSON list of versions, newest last), so
:func:`~airflow_mlsecops.lifecycle.rollback.rollback` is one command. :func:`promote_model` does
check, record and promote in one call (for the CLI).

Open-source MLflow has no alias permissions (see :mod:`airflow_mlsecops.lifecycle.model_registry`):
:func:`~airflow_mlsecops.lifecycle.version_verification.verify_model_version` detects an alias
moved by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, GateRejected, MLSecOpsError, StoreUnavailable
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle._registry_checks import (
    SHA256_HEX,
    SUPPLY_CHAIN_ATLAS,
    SUPPLY_CHAIN_OWASP,
    approval_check,
    current_holder,
    evidence_run_uri,
    failed_check,
    gate_check,
    get_version,
    inspect_version,
    load_history,
    ok_check,
    registry_recorder,
    restore_alias,
    short_digest,
    utc_now,
    validate_alias,
    validate_gates,
    version_uri,
)
from airflow_mlsecops.lifecycle.model_registry import (
    MAX_HISTORY,
    REGISTRY_EXPERIMENT,
    TAG_APPROVED_BY,
    TAG_PROMOTED_AT,
    TAG_PROMOTION_EVIDENCE,
    TAG_QUARANTINED,
    tag_history,
    tag_previous,
    tag_promotion_evidence,
)
from airflow_mlsecops.lifecycle.training_data import training_data_check

if TYPE_CHECKING:
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder, RecordedEvidence

#: Checks whose failure means the model or its evidence was tampered with (critical, mapped to ATLAS and OWASP).
_TAMPER_CHECKS = ("registry-digest", "pipeline-evidence")


def _evaluate_promotion(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    alias: str,
    required_gates: Sequence[str],
    required_approvals: int,
    settings: Settings | None,
    policy_check: Callable[[Mapping[str, GateResult]], Sequence[str]] | None,
    allowed_producers: Sequence[str] = (),
    policy_digest: str | None = None,
    accept_warned: Sequence[str] = (),
) -> Evaluation:
    """The ``model-promotion`` decision of :func:`check_promotion`: every check, made now, with no side effect."""
    model_uri = version_uri(name, version)
    validate_alias(alias)
    gates = validate_gates(required_gates, required_approvals)
    cfg = settings or Settings.from_env()
    state = get_version(store, name, version)
    holder = current_holder(store, name, alias)
    checks = inspect_version(store, state, cfg)
    digest = state.reference_sha256
    gate_scopes: dict[str, list[str]] = {}
    approved_by: list[str] = []
    approval_scope: str | None = None
    if state.evidence is None:
        checks.extend(failed_check(f"gate:{g}", "no pipeline evidence to look in") for g in gates)
        if required_approvals > 0:
            checks.append(failed_check("approval", "no pipeline evidence to look in"))
    else:
        for gate in gates:
            check, scopes = gate_check(gate, state.evidence, digest, allowed_producers, accept_warned)
            checks.append(check)
            gate_scopes[gate] = scopes
        approval, approved_by, approval_scope = approval_check(state.evidence, digest, required_approvals, allowed_producers)
        checks.append(approval)
        if policy_check is not None:
            violations = list(policy_check(state.evidence.report.results))
            checks.append(
                failed_check("policy", "; ".join(violations)) if violations else ok_check("policy", "the evidence complies")
            )
        if policy_digest is not None:
            checks.append(_policy_digest_check(state.evidence.report, policy_digest))
    checks.append(training_data_check(state.evidence, digest, gates))
    failed = [c for c in checks if c.failed]
    subject_digest = state.actual_sha256 or digest
    findings = [
        Finding(
            f"promotion.{c.name}",
            Severity.CRITICAL if c.name in _TAMPER_CHECKS else Severity.HIGH,
            f"{c.name}: {c.detail}",
            model_uri,
            SUPPLY_CHAIN_ATLAS if c.name in _TAMPER_CHECKS else (),
            SUPPLY_CHAIN_OWASP if c.name in _TAMPER_CHECKS else (),
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
        summary = f"{model_uri} (sha256 {short_digest(digest)}) may become @{alias}: {len(checks)} checks passed" + (
            f", approved by {', '.join(approved_by)}" if approved_by else ""
        )
    incomplete = _accepted_incomplete(state.evidence, gates, accept_warned, gate_scopes)
    if incomplete and not failed:
        summary += "; accepted incomplete (accept_warned): " + "; ".join(
            f"{g} (not performed: {', '.join(ids)})" for g, ids in incomplete.items()
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
            "allowed_producers": list(allowed_producers),
            "accept_warned": list(accept_warned),
            "accepted_incomplete": incomplete,
            "approved_by": approved_by,
            "approval_evidence": approval_scope,
            "gate_evidence": gate_scopes,
            "current_holder": holder,
            "checks": [c.to_dict() for c in checks],
            "failed_checks": [c.name for c in failed],
        },
    )


def _accepted_incomplete(
    evidence: Any, gates: Sequence[str], accept_warned: Sequence[str], gate_scopes: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Gate -> the checks not performed in the incomplete ``warned`` records this decision accepted."""
    if evidence is None:
        return {}
    out: dict[str, list[str]] = {}
    for gate in gates:
        if gate not in accept_warned:
            continue
        for scope in gate_scopes.get(gate, ()):
            attempt = evidence.at(scope)
            if attempt is not None and attempt.result.incomplete:
                out.setdefault(gate, []).extend(attempt.result.not_performed)
    return {g: list(dict.fromkeys(ids)) for g, ids in out.items()}


def check_accept_warned(accept_warned: Sequence[str] | str) -> list[str]:
    """``accept_warned`` as a list of gate names; :class:`ConfigurationError` for an empty name or an
    unknown gate. Approval and the registry's own steps have no incomplete verdict to accept."""
    if isinstance(accept_warned, str):
        accept_warned = [accept_warned]
    names = [str(g).strip() for g in accept_warned]
    refused = {gate_names.MODEL_APPROVAL, gate_names.MODEL_PROMOTION, gate_names.MODEL_REGISTRATION}
    for name in names:
        if not name or name not in gate_names.POLICY_GATES or name in refused:
            raise ConfigurationError(f"accept_warned: {name!r} is not a gate whose incomplete verdict can be accepted")
    return list(dict.fromkeys(names))


def _policy_digest_check(report: Any, expected: str) -> Any:
    """``policy-digest``: every record of the run names the policy the promotion is judged by (a gate
    that ran under another policy, e.g. one a DAG chose, was judged by other rules)."""
    other = sorted(
        f"{scope} ({(digest or 'no policy')[:16]})" for scope, digest in report.policy_digests.items() if digest != expected
    )
    if other:
        return failed_check(
            "policy-digest",
            f"records made under another policy than the platform's (sha256 {expected[:16]}...): " + ", ".join(other),
        )
    return ok_check("policy-digest", f"every record names the platform policy sha256 {expected[:16]}...")


def check_promotion(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    alias: str,
    required_gates: Sequence[str] = gate_names.DEFAULT_REQUIRED_GATES,
    required_approvals: int = 1,
    settings: Settings | None = None,
    context: PipelineContext | None = None,
    policy_check: Callable[[Mapping[str, GateResult]], Sequence[str]] | None = None,
    allowed_producers: Sequence[str] = (),
    policy_digest: str | None = None,
    accept_warned: Sequence[str] = (),
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
        (:data:`~airflow_mlsecops.gate_names.MODEL_SUBJECT_GATES`) must name the model's digest.
    :param required_approvals: distinct approvers the ``model-approval`` decision must count
        (``0``: no approval needed).
    :param settings: trusted keys and ledger (default: environment).
    :param context: the Airflow task deciding, if any.
    :param policy_check: judges the verified evidence against the platform policy (run-time
        enforcement); each returned message is a violation and fails the ``policy`` check.
    :param policy_digest: SHA-256 of the platform policy the promotion is judged by: every record of
        the pipeline run must have been made under it (``policy-digest`` check); ``None``: not checked.
    :param allowed_producers: code outside airflow-mlsecops (``module.Class``, the policy's
        ``allowed_operators``) whose evidence counts; any other producer that is not the installed
        package's code fails the ``gate:<name>`` or ``approval`` check it backs.
    :param accept_warned: required gates whose *incomplete* ``warned`` record (a check not
        performed, nothing rejected) counts; default none. A warn-only rejection never counts. The
        caller applies the policy first: a gate a governing rule does not accept must not be here
        (``PromoteModelOperator`` passes its own list; the ``policy`` check refuses what the policy
        does not accept). Recorded in the decision (``details["accept_warned"]``, and which checks
        were not performed in ``details["accepted_incomplete"]``), so a later verification applies
        the same list.
    """
    version = str(version)
    if isinstance(allowed_producers, str):
        allowed_producers = [allowed_producers]
    allowed = [str(a) for a in allowed_producers]
    try:
        accepted = check_accept_warned(accept_warned)
    except ConfigurationError as exc:
        return run_gate(gate_names.MODEL_PROMOTION, raising(exc), context=context)
    return run_gate(
        gate_names.MODEL_PROMOTION,
        lambda: _evaluate_promotion(
            store,
            name=name,
            version=version,
            alias=alias,
            required_gates=required_gates,
            required_approvals=required_approvals,
            settings=settings,
            policy_check=policy_check,
            allowed_producers=allowed,
            policy_digest=policy_digest,
            accept_warned=accepted,
        ),
        policy={
            "alias": alias,
            "required_gates": list(required_gates) if not isinstance(required_gates, str) else [required_gates],
            "required_approvals": required_approvals,
            "allowed_producers": allowed,
            "warned_counts_as_passed": False,
            "accept_warned": accepted,
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


def promote(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    alias: str,
    outcome: GateOutcome,
    evidence: RecordedEvidence | str | None = None,
    allowed_producers: Sequence[str] = (),
) -> PromotionRecord:
    """Set ``alias`` on ``name``/``version``, only if ``outcome`` (from :func:`check_promotion`) passed.

    Record ``outcome`` first (the operator and :func:`promote_model` do) and pass where it went as
    ``evidence``: the version's ``mlsecops.promotion_evidence`` tags then point at the signed
    attestation, which :func:`~airflow_mlsecops.lifecycle.version_verification.verify_model_version`
    requires for every alias a version holds.

    Refuses with :class:`GateRejected` (nothing changed) when the outcome did not pass, and with
    :class:`ConfigurationError` when it is about another version or alias, or when the version's
    pinned digest or quarantine tag changed since the check. If MLflow fails half way, the alias
    is put back (best effort) and :class:`StoreUnavailable` is raised.

    Open-source MLflow has no alias permissions: anyone who may edit the registered model can move
    the alias by hand afterwards; :func:`~airflow_mlsecops.lifecycle.version_verification.verify_model_version` detects that.

    :param store: the MLflow store.
    :param name: the registered model.
    :param version: the version to promote.
    :param alias: the alias to set.
    :param outcome: the ``model-promotion`` outcome of :func:`check_promotion` for this version and alias.
    :param evidence: where the outcome was recorded (a :class:`RecordedEvidence` or a ``runs:/`` URI).
    :param allowed_producers: code outside airflow-mlsecops allowed to have made the decision (the
        platform policy's ``allowed_operators``; never taken from the decision itself).
    :return: the promotion, with the alias's previous holder.
    """
    version = str(version)
    result = outcome.result
    details = result.details
    if result.gate != gate_names.MODEL_PROMOTION:
        raise ConfigurationError(f"the outcome is of gate {result.gate!r}, not {gate_names.MODEL_PROMOTION}")
    if result.verdict is not Verdict.PASSED:
        raise GateRejected(f"{version_uri(name, version)} is not promoted to @{alias}: {result.summary}", result=result)
    from airflow_mlsecops.evidence.producer import producer_problem

    problem = producer_problem(result.producer, allowed_producers)
    if problem is not None:  # e.g. a PromoteModelOperator subclass that made its own decision
        raise ConfigurationError(f"the promotion decision {problem}; nothing is promoted")
    if (details.get("name"), str(details.get("version")), details.get("alias")) != (name, version, alias):
        raise ConfigurationError(
            f"the promotion decision is about {details.get('name')}/{details.get('version')} @{details.get('alias')}, "
            f"not {name}/{version} @{alias}"
        )
    digest = str(details.get("model_sha256") or "")
    if not SHA256_HEX.match(digest):
        raise ConfigurationError("the promotion decision names no model digest")
    state = get_version(store, name, version)
    if state.registered_sha256 != digest:
        raise ConfigurationError(
            f"{state.model_uri} is now pinned to {short_digest(state.registered_sha256)}, "
            f"the decision was about {short_digest(digest)}"
        )
    if state.tags.get(TAG_QUARANTINED, "").lower() == "true":
        raise ConfigurationError(f"{state.model_uri} was quarantined after the decision")

    client = store.client
    with store.errors(f"cannot read registered model {name}"):
        model = client.get_registered_model(name)
    previous_raw = dict(model.aliases or {}).get(alias)
    previous = str(previous_raw) if previous_raw is not None else None
    history = load_history(dict(model.tags or {}), alias) or []
    if previous and (not history or history[-1] != previous):
        history.append(previous)
    if not history or history[-1] != version:
        history.append(version)
    history = history[-MAX_HISTORY:]
    promoted_at = utc_now()
    approved_by = tuple(str(a) for a in details.get("approved_by") or ())
    evidence_uri = evidence_run_uri(evidence)
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
        restore_alias(store, name, alias, previous)
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
        gate=gate_names.MODEL_PROMOTION,
        verdict=Verdict.ERROR,
        subjects=result.subjects,
        findings=[Finding("promotion.alias-not-set", Severity.HIGH, f"the alias could not be set: {error}")],
        policy=result.policy,
        tool_versions=result.tool_versions,
        context=result.context,
        summary=f"every check passed, but the alias could not be set: {error}",
        details={**dict(result.details), "alias_set": False, "alias_error": str(error)},
    )


def promote_model(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    alias: str,
    required_gates: Sequence[str] = gate_names.DEFAULT_REQUIRED_GATES,
    required_approvals: int = 1,
    settings: Settings | None = None,
    recorder: EvidenceRecorder | None = None,
    mlflow_run_id: str | None = None,
    allowed_producers: Sequence[str] = (),
    accept_warned: Sequence[str] = (),
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
    :param allowed_producers: see :func:`check_promotion`.
    :param accept_warned: see :func:`check_promotion`.
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
        allowed_producers=allowed_producers,
        accept_warned=accept_warned,
    )
    recorder = recorder or registry_recorder(store, cfg)
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
        record = promote(
            store,
            name=name,
            version=str(version),
            alias=alias,
            outcome=outcome,
            evidence=recorded,
            allowed_producers=allowed_producers,
        )
    except MLSecOpsError as exc:
        recorder.record(
            alias_failure_result(outcome, exc), experiment_name=REGISTRY_EXPERIMENT, mlflow_run_id=recorded.mlflow_run_id
        )
        raise
    return outcome, record
