"""The alias guard (gate ``alias-guard``): find aliases of protected models that moved without a
signed promotion, alert, and where asked move them back.

>>> from airflow_mlsecops.lifecycle.alias_guard import guard_aliases
>>> report = guard_aliases(store, models=["credit-*"], restore=True)            # doctest: +SKIP
>>> report.verdict.value, [(f.name, f.alias, f.action) for f in report.findings]  # doctest: +SKIP
('failed', [('credit-risk', 'champion', 'restored')])

Why: open-source MLflow has no alias permissions. A ``@task`` that calls
``MlflowClient.set_registered_model_alias``, a DAG with no mlsecops operator at all, or a person
in the MLflow UI can give a protected model's alias to any version; the promotion gate never
sees it. This guard is the detector, run on a schedule (``AliasGuardOperator``, ``mlsecops
registry guard``): for every registered model a selection names (``--model`` shell patterns, else
the platform policy's ``match.models`` / ``match.aliases``), every alias it holds is verified on
its own (:func:`verify_alias`): the registration chain of the version holding it, the latest
signed promotion or rollback to the alias names that version (``holder:@<alias>``), a signed
promotion attestation of that version and digest to the alias, the gates and approval that
attestation required.

With ``restore``, a broken alias is moved back to the last version whose promotion to it still
verifies: the last signed holder first, then the alias history (``mlsecops.alias_history.<alias>``)
newest first. Going back to the last signed holder changes nothing the ledger says; going back
further is recorded first as a signed ``model-rollback`` (so the new holder is the signed one, as
``mlsecops rollback`` does). When no version verifies, the alias is deleted: a protected alias
never points at an unverified version. What was done is tagged on the registered model
(``mlsecops.alias_guard.<alias>``) and in the guard's own signed evidence.

Fail closed: no trusted key, no evidence ledger, an unreachable registry or a policy that cannot be
read is an ``error`` verdict (nothing is moved), never a pass. No Airflow import; MLflow is
imported lazily.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, GateError, MLSecOpsError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate, tool_versions
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle._registry_checks import (
    approval_check,
    evidence_run_uri,
    failed_check,
    gate_check,
    get_version,
    holder_check,
    inspect_version,
    load_history,
    registry_recorder,
    signed_alias_holder,
    utc_now,
    version_uri,
)
from airflow_mlsecops.lifecycle.model_registry import (
    REGISTRY_EXPERIMENT,
    TAG_ROLLBACK_EVIDENCE,
    RegistryCheck,
    tag_history,
)
from airflow_mlsecops.lifecycle.rollback import rollback_failure_result
from airflow_mlsecops.lifecycle.version_verification import attestation_check

if TYPE_CHECKING:
    from airflow_mlsecops.lifecycle._registry_checks import PipelineEvidence
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

#: The guard's gate name (not a gate a policy requires: it judges the registry, not a model).
ALIAS_GUARD = gate_names.ALIAS_GUARD

#: What the guard did with a broken alias.
ACTION_NONE = "none"  # restore not asked: alert only
ACTION_RESTORED = "restored"  # back on the last signed holder
ACTION_ROLLED_BACK = "rolled-back"  # back on an earlier verified holder, with a signed model-rollback
ACTION_REMOVED = "removed"  # no version verifies: the alias was deleted
ACTION_NOT_DONE = "not-done"  # the registry refused, or the alias moved again during the check

#: Longest value of the registered-model tag (MLflow limits tag values; the evidence has everything).
_TAG_CHARS = 3000


def tag_guard(alias: str) -> str:
    """Registered-model tag holding what the guard last did to ``alias`` (JSON).

    :param alias: the alias, e.g. ``champion``.
    """
    return f"mlsecops.alias_guard.{alias}"


# ----------------------------------------------------------------------------- what is protected
@dataclass(frozen=True)
class ProtectedAliases:
    """Registered models (shell patterns) and their aliases (any alias when ``aliases`` is empty)."""

    models: tuple[str, ...]
    aliases: tuple[str, ...] = ()

    def covers_model(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.models)

    def covers(self, name: str, alias: str) -> bool:
        return self.covers_model(name) and (not self.aliases or any(fnmatch.fnmatchcase(alias, p) for p in self.aliases))

    def to_dict(self) -> dict[str, list[str]]:
        return {"models": list(self.models), "aliases": list(self.aliases)}


def protected_aliases(models: Sequence[str] | str | None = None) -> tuple[list[ProtectedAliases], str]:
    """What to guard and where that came from: ``models`` (shell patterns, every alias), else the
    configured platform policy (each rule's ``match.models`` with its ``match.aliases``).

    :raises ConfigurationError: no patterns and no policy, a policy whose rules name no model, an
        empty pattern, or a policy that cannot be read (:class:`PolicyError`).
    """
    if isinstance(models, str):
        models = [models]
    if models:
        patterns = tuple(str(m).strip() for m in models)
        if any(not p for p in patterns):
            raise ConfigurationError("a model pattern is empty: give registered model names or shell patterns (credit-*)")
        return [ProtectedAliases(tuple(dict.fromkeys(patterns)))], "arguments"
    from airflow_mlsecops.policy.model import load_configured_policy

    policy = load_configured_policy()
    if policy is None:
        raise ConfigurationError(
            "no models to guard: give model patterns (mlsecops registry guard --model credit-*) or configure a platform "
            "policy whose rules name the protected models in match.models"
        )
    selection = [ProtectedAliases(r.match.models, r.match.aliases) for r in policy.rules if r.match.models]
    if not selection:
        raise ConfigurationError(
            f"the platform policy {policy.source} names no protected model (no rule has match.models): "
            "add match.models to the rules that govern registered models, or give model patterns"
        )
    return selection, f"policy {policy.source} (sha256 {policy.digest})"


# ----------------------------------------------------------------------------- verifying one alias
def verify_alias(
    store: MLflowEvidenceStore,
    *,
    name: str,
    alias: str,
    version: str,
    settings: Settings,
    trusted: Mapping[str, Any],
    holds_alias: bool = True,
) -> tuple[list[RegistryCheck], str | None]:
    """The checks of ``alias`` on ``name``/``version``, and the digest its files hash to now.

    Like :func:`~airflow_mlsecops.lifecycle.version_verification.verify_model_version` with
    ``alias``, but about this alias only: another alias the same version holds (set by hand, say)
    does not make this one broken, nor add the default gates its missing attestation would.

    :param holds_alias: ``version`` holds ``alias`` now: also require that the latest signed
        promotion or rollback to ``alias`` names it (``holder:@<alias>``). ``False`` for a
        candidate to move the alias back to.
    :raises ConfigurationError: unknown model or version.
    :raises StoreUnavailable: MLflow cannot be reached.
    """
    state = get_version(store, name, version)
    checks = inspect_version(store, state, settings)
    if holds_alias:
        checks.append(holder_check(state, alias, settings, trusted))
    reports: dict[str, PipelineEvidence] = {}
    if state.evidence is not None:
        reports[state.evidence.run_id] = state.evidence
    attestation, attempt = attestation_check(store, state, alias, settings, reports)
    checks.append(attestation)
    allowed: list[str] = []  # producers outside the package, where the signed promotion allowed them by name
    accept: list[str] = []  # incomplete verdicts the signed promotion accepted
    if attempt is not None:
        gates = [str(g) for g in attempt.result.details.get("required_gates") or ()]
        approvals = int(attempt.result.details.get("required_approvals") or 0)
        allowed = sorted({str(a) for a in attempt.result.details.get("allowed_producers") or ()})
        accept = sorted({str(g) for g in attempt.result.details.get("accept_warned") or ()})
    else:
        gates, approvals = list(gate_names.DEFAULT_REQUIRED_GATES), 1
    if state.evidence is None:
        checks.append(failed_check("approval", "no pipeline evidence to look in"))
    else:
        digest = state.reference_sha256
        checks.extend(gate_check(gate, state.evidence, digest, allowed, accept)[0] for gate in dict.fromkeys(gates))
        checks.append(approval_check(state.evidence, digest, approvals, allowed)[0])
    return checks, state.actual_sha256


# ----------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class CheckedAlias:
    """One alias the guard verified: where it was and whether its chain held."""

    name: str
    alias: str
    version: str
    verified: bool
    actual_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "verified": self.verified,
            "actual_sha256": self.actual_sha256,
        }


@dataclass(frozen=True)
class AliasFinding:
    """An alias whose chain is broken (moved or set without a signed promotion, or its version no
    longer verifies), and what the guard did about it."""

    name: str
    alias: str
    version: str
    problems: tuple[str, ...]
    action: str = ACTION_NONE
    moved_to: str | None = None
    action_detail: str = ""
    rollback_evidence: str | None = None

    @property
    def message(self) -> str:
        done = {
            ACTION_NONE: "not moved (restore not asked)",
            ACTION_RESTORED: f"moved back to version {self.moved_to}, its last signed holder",
            ACTION_ROLLED_BACK: f"rolled back to version {self.moved_to} with a signed model-rollback",
            ACTION_REMOVED: "deleted, as no version's promotion to it verifies",
            ACTION_NOT_DONE: "left where it is",
        }[self.action]
        detail = f" ({self.action_detail})" if self.action_detail else ""
        return (
            f"{self.name}@{self.alias} is on version {self.version} without a valid signed promotion: "
            f"{'; '.join(self.problems)}. The alias was {done}{detail}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "problems": list(self.problems),
            "action": self.action,
            "moved_to": self.moved_to,
            "action_detail": self.action_detail,
            "rollback_evidence": self.rollback_evidence,
        }


@dataclass
class GuardReport:
    """What one guard run checked, found and did, with its (signed-ready) gate outcome."""

    outcome: GateOutcome
    selection: list[ProtectedAliases]
    source: str
    restore: bool
    models: list[str] = field(default_factory=list)  # the registered models the selection covers
    checked: list[CheckedAlias] = field(default_factory=list)
    findings: list[AliasFinding] = field(default_factory=list)
    error: str | None = None
    evidence: str | None = None  # runs:/ URI of the recorded guard evidence
    recording_error: str | None = None

    @property
    def verdict(self) -> Verdict:
        return self.outcome.result.verdict

    @property
    def ok(self) -> bool:
        """Every protected alias verified, and the evidence of that was recorded (when recording)."""
        return self.verdict is Verdict.PASSED and self.recording_error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": ALIAS_GUARD,
            "verdict": self.verdict.value,
            "summary": self.outcome.result.summary,
            "selection": [s.to_dict() for s in self.selection],
            "source": self.source,
            "restore": self.restore,
            "models": list(self.models),
            "checked": [c.to_dict() for c in self.checked],
            "findings": [f.to_dict() for f in self.findings],
            "error": self.error,
            "evidence": self.evidence,
            "recording_error": self.recording_error,
        }


# ----------------------------------------------------------------------------- the registry
def _registered_model_names(store: MLflowEvidenceStore) -> list[str]:
    names: list[str] = []
    token: str | None = None
    with store.errors("cannot list the registered models"):
        while True:
            page = store.client.search_registered_models(max_results=1000, page_token=token)
            names.extend(str(m.name) for m in page)
            token = getattr(page, "token", None)
            if not token:
                return sorted(set(names))


def _protected_holders(
    store: MLflowEvidenceStore, selection: Sequence[ProtectedAliases], matched: list[str]
) -> Iterator[tuple[str, str, str]]:
    """``(model, alias, version holding it)`` for every protected alias in the registry now; the
    names of the registered models the selection covers are appended to ``matched``."""
    for name in _registered_model_names(store):
        if not any(s.covers_model(name) for s in selection):
            continue
        matched.append(name)
        aliases, _ = _model_state(store, name)
        for alias, version in sorted(aliases.items()):
            if any(s.covers(name, alias) for s in selection):
                yield name, alias, version


def _model_state(store: MLflowEvidenceStore, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(aliases -> version, tags)`` of a registered model."""
    with store.errors(f"cannot read registered model {name}"):
        model = store.client.get_registered_model(name)
    return {str(a): str(v) for a, v in dict(model.aliases or {}).items()}, dict(model.tags or {})


def _write_guard_tag(store: MLflowEvidenceStore, name: str, alias: str, record: Mapping[str, Any]) -> str | None:
    """Tag what was done on the registered model; the problem (not raised) when MLflow refuses."""
    text = json.dumps(record, sort_keys=True)
    if len(text) > _TAG_CHARS:
        text = json.dumps({**record, "problems": [p[:200] for p in record.get("problems", [])][:5]}, sort_keys=True)
    if len(text) > _TAG_CHARS:
        text = json.dumps({**record, "problems": ["see the guard's evidence"]}, sort_keys=True)
    try:
        with store.errors(f"cannot tag {name} with what the guard did to @{alias}"):
            store.client.set_registered_model_tag(name, tag_guard(alias), text)
    except MLSecOpsError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class _Candidate:
    version: str
    signed_holder: bool
    checks: list[RegistryCheck]
    actual_sha256: str | None


def _find_candidate(
    store: MLflowEvidenceStore,
    *,
    name: str,
    alias: str,
    current: str,
    history: Iterable[str],
    settings: Settings,
    trusted: Mapping[str, Any],
) -> tuple[_Candidate | None, list[str]]:
    """The version to move ``alias`` back to (the last signed holder first, then the history newest
    first), the first whose promotion to ``alias`` verifies; and why each one tried did not."""
    signed = signed_alias_holder(settings, name, alias, trusted)
    ordered = [signed.version] if signed is not None else []
    ordered.extend(reversed(list(history)))
    rejected: list[str] = []
    for version in dict.fromkeys(v for v in ordered if v and v != current):
        try:
            checks, actual = verify_alias(
                store, name=name, alias=alias, version=version, settings=settings, trusted=trusted, holds_alias=False
            )
        except ConfigurationError as exc:  # a version deleted since
            rejected.append(f"version {version}: {exc}")
            continue
        failed = [c for c in checks if c.failed]
        if not failed:
            return _Candidate(version, signed is not None and version == signed.version, checks, actual), rejected
        rejected.append(f"version {version}: {failed[0].name}: {failed[0].detail}")
    return None, rejected


def _history_after(history: list[str], target: str) -> list[str]:
    """The alias history once ``target`` holds the alias again: everything after it is dropped."""
    if target in history:
        return history[: len(history) - history[::-1].index(target)]
    return [*history, target]


def _rollback_result(
    *,
    name: str,
    alias: str,
    current: str,
    candidate: _Candidate,
    history: list[str],
    problems: Sequence[str],
) -> GateResult:
    """The ``model-rollback`` to ``candidate``, signed before the alias moves (it becomes the signed holder)."""
    target_uri = version_uri(name, candidate.version)
    details = {
        "name": name,
        "alias": alias,
        "from_version": current,
        "to_version": candidate.version,
        "model_uri": target_uri,
        "actual_sha256": candidate.actual_sha256,
        "forced": False,
        "reason": f"{ALIAS_GUARD}: @{alias} was on version {current} without a valid signed promotion",
        "by": ALIAS_GUARD,
        "problems": list(problems),
        "history_before": history,
        "history_after": _history_after(history, candidate.version),
        "verification": [c.to_dict() for c in candidate.checks],
    }
    return GateResult.create(
        gate=gate_names.MODEL_ROLLBACK,
        verdict=Verdict.PASSED,
        subjects=[Subject(target_uri, candidate.actual_sha256)] if candidate.actual_sha256 else [],
        findings=[Finding("rollback.chain", Severity.INFO, f"{target_uri} verifies", target_uri, passed=True)],
        policy={"force": False, "verify_previous_holder": True, "by": ALIAS_GUARD},
        tool_versions=tool_versions("mlflow"),
        summary=f"@{alias} of {name}: version {current} -> {candidate.version} (moved back by the {ALIAS_GUARD})",
        details=details,
    )


def _move_back(
    store: MLflowEvidenceStore,
    *,
    name: str,
    alias: str,
    current: str,
    problems: Sequence[str],
    settings: Settings,
    trusted: Mapping[str, Any],
    recorder: EvidenceRecorder | None,
) -> AliasFinding:
    """Move a broken alias back to its last verified holder, or delete it; what was done."""
    finding = AliasFinding(name, alias, current, tuple(problems))
    aliases, tags = _model_state(store, name)
    if aliases.get(alias) != current:
        now = aliases.get(alias)
        where = f"version {now}" if now else "no version"
        return _replace(finding, ACTION_NOT_DONE, detail=f"it moved to {where} during the check; the next run checks it again")
    history = load_history(tags, alias)
    history_note = "" if history is not None else f"the {tag_history(alias)} tag is not a JSON list, so it was not used"
    candidate, rejected = _find_candidate(
        store, name=name, alias=alias, current=current, history=history or [], settings=settings, trusted=trusted
    )
    notes = [n for n in (history_note, "; ".join(rejected) and f"not verified: {'; '.join(rejected)}") if n]
    client = store.client
    rollback_uri: str | None = None
    try:
        if candidate is None:
            with store.errors(f"cannot delete @{alias} of {name}"):
                client.delete_registered_model_alias(name, alias)
            result = _replace(finding, ACTION_REMOVED, detail="; ".join(notes))
        elif candidate.signed_holder:
            with store.errors(f"cannot move @{alias} of {name} back to version {candidate.version}"):
                client.set_registered_model_alias(name, alias, candidate.version)
            result = _replace(finding, ACTION_RESTORED, moved_to=candidate.version, detail="; ".join(notes))
        else:
            if recorder is None:
                raise ConfigurationError("no evidence recorder to sign the rollback with")
            rollback = _rollback_result(
                name=name, alias=alias, current=current, candidate=candidate, history=list(history or []), problems=problems
            )
            recorded = recorder.record(rollback, experiment_name=REGISTRY_EXPERIMENT)
            rollback_uri = evidence_run_uri(recorded) or ""
            try:
                with store.errors(f"cannot move @{alias} of {name} back to version {candidate.version}"):
                    client.set_registered_model_alias(name, alias, candidate.version)
            except MLSecOpsError as exc:
                try:
                    recorder.record(
                        rollback_failure_result(rollback, exc, f"the {ALIAS_GUARD} could not move the alias back: {exc}"),
                        experiment_name=REGISTRY_EXPERIMENT,
                        mlflow_run_id=recorded.mlflow_run_id,
                    )
                except MLSecOpsError:
                    pass  # the original failure is what the report names
                raise
            with store.errors(f"@{alias} is back on version {candidate.version}, but the rollback tags cannot be written"):
                client.set_registered_model_tag(
                    name, tag_history(alias), json.dumps(_history_after(list(history or []), candidate.version))
                )
                client.set_model_version_tag(name, candidate.version, TAG_ROLLBACK_EVIDENCE, rollback_uri)
            result = _replace(
                finding, ACTION_ROLLED_BACK, moved_to=candidate.version, detail="; ".join(notes), evidence=rollback_uri
            )
    except MLSecOpsError as exc:
        return _replace(finding, ACTION_NOT_DONE, detail=f"{exc}", evidence=rollback_uri)
    tag_problem = _write_guard_tag(
        store,
        name,
        alias,
        {
            "action": result.action,
            "from_version": current,
            "to_version": result.moved_to,
            "at": utc_now(),
            "problems": list(problems),
            "rollback_evidence": rollback_uri,
        },
    )
    if tag_problem:
        result = _replace(result, result.action, moved_to=result.moved_to, detail="; ".join([*notes, tag_problem]))
    return result


def _replace(
    finding: AliasFinding, action: str, *, moved_to: str | None = None, detail: str = "", evidence: str | None = None
) -> AliasFinding:
    return replace(
        finding, action=action, moved_to=moved_to, action_detail=detail, rollback_evidence=evidence or finding.rollback_evidence
    )


# ----------------------------------------------------------------------------- the gate
def check_aliases(
    store: MLflowEvidenceStore,
    *,
    models: Sequence[str] | str | None = None,
    restore: bool = False,
    settings: Settings | None = None,
    recorder: EvidenceRecorder | None = None,
    context: PipelineContext | None = None,
) -> GuardReport:
    """Gate ``alias-guard``: verify every alias of the protected models and (``restore``) move the
    broken ones back. The outcome is not recorded here: :func:`guard_aliases` or the operator does it.

    Verdict ``passed``: every protected alias verifies (none at all is a pass too: nothing is
    exposed). ``failed``: at least one alias was on a version without a valid signed promotion
    (whatever was done about it: an alert is due). ``error``: the check could not be made
    (unreachable registry, no trusted key, no ledger, no selection); aliases found broken before
    the error are named in its message, and nothing else was moved.

    :param store: the MLflow store (its registry).
    :param models: registered model names or shell patterns; default: the platform policy's ``match.models``.
    :param restore: move each broken alias back to its last verified holder, or delete it.
    :param settings: keys and ledger (default: environment).
    :param recorder: signs the ``model-rollback`` of a move past the last signed holder (default:
        one built from ``settings`` on ``store`` when needed).
    :param context: the Airflow task running the guard, if any.
    """
    report = GuardReport(
        outcome=GateOutcome(GateResult.create(gate=ALIAS_GUARD, verdict=Verdict.ERROR)), selection=[], source="", restore=restore
    )
    subjects: dict[str, Subject] = {}

    def body() -> Evaluation:
        nonlocal recorder
        cfg = settings or Settings.from_env()
        report.selection, report.source = protected_aliases(models)
        trusted = cfg.load_trusted_keys()
        if not trusted:
            raise ConfigurationError(
                "no trusted public keys are configured, so no alias can be verified (set MLSECOPS_TRUSTED_KEYS, "
                "or MLSECOPS_HOME to trust its keys/ folder); nothing was moved"
            )
        try:
            for name, alias, version in _protected_holders(store, report.selection, report.models):
                try:
                    checks, actual = verify_alias(store, name=name, alias=alias, version=version, settings=cfg, trusted=trusted)
                except ConfigurationError as exc:  # the version went away while we looked
                    checks, actual = [failed_check("registration", f"version {version} cannot be read: {exc}")], None
                problems = [f"{c.name}: {c.detail}" for c in checks if c.failed]
                report.checked.append(CheckedAlias(name, alias, version, not problems, actual))
                if actual:
                    subjects[version_uri(name, version)] = Subject(version_uri(name, version), actual)
                if problems and not restore:
                    report.findings.append(AliasFinding(name, alias, version, tuple(problems)))
                elif problems:
                    recorder = recorder or registry_recorder(store, cfg)
                    report.findings.append(
                        _move_back(
                            store,
                            name=name,
                            alias=alias,
                            current=version,
                            problems=problems,
                            settings=cfg,
                            trusted=trusted,
                            recorder=recorder,
                        )
                    )
        except MLSecOpsError as exc:
            if not report.findings:
                raise
            found = ", ".join(f"{f.name}@{f.alias} (version {f.version}, {f.action})" for f in report.findings)
            raise GateError(f"{exc}; before that, {len(report.findings)} broken alias(es) were found: {found}") from exc
        return _evaluation(report, list(subjects.values()))

    outcome = run_gate(
        ALIAS_GUARD,
        body,
        policy={"models": _listed(models), "restore": restore},
        distributions=("mlflow",),
        context=context,
    )
    result = outcome.result
    details = {
        **dict(result.details),
        "selection": [s.to_dict() for s in report.selection],
        "source": report.source,
        "restore": restore,
    }
    report.outcome = replace(outcome, result=replace(result, details=details))
    report.error = None if outcome.error is None else str(outcome.error)
    return report


def _listed(models: Sequence[str] | str | None) -> list[str] | str:
    if models is None or (not isinstance(models, str) and not models):
        return "the platform policy's match.models"
    return [models] if isinstance(models, str) else [str(m) for m in models]


def _evaluation(report: GuardReport, subjects: list[Subject]) -> Evaluation:
    checked, findings = report.checked, report.findings
    moved = [f for f in findings if f.action in (ACTION_RESTORED, ACTION_ROLLED_BACK)]
    removed = [f for f in findings if f.action == ACTION_REMOVED]
    gate_findings = [
        Finding(f"{ALIAS_GUARD}.unsigned-alias", Severity.CRITICAL, f.message, version_uri(f.name, f.version)) for f in findings
    ]
    gate_findings.extend(
        Finding(
            f"{ALIAS_GUARD}.verified",
            Severity.INFO,
            f"{c.name}@{c.alias} is on version {c.version}, which its signed promotion names",
            version_uri(c.name, c.version),
            passed=True,
        )
        for c in checked
        if c.verified
    )
    if findings:
        summary = (
            f"{len(findings)} of {len(checked)} protected alias(es) are on a version without a valid signed promotion: "
            + ", ".join(f"{f.name}@{f.alias} (version {f.version}, {f.action})" for f in findings)
        )
    elif checked:
        summary = f"all {len(checked)} protected alias(es) rest on a signed promotion"
    else:
        summary = (
            f"no protected alias exists ({len(report.models)} registered model(s) match: {', '.join(report.models) or 'none'})"
        )
    return Evaluation(
        passed=not findings,
        summary=summary,
        subjects=subjects,
        findings=gate_findings,
        metrics={
            "aliases_checked": float(len(checked)),
            "aliases_broken": float(len(findings)),
            "aliases_moved_back": float(len(moved)),
            "aliases_removed": float(len(removed)),
        },
        details={
            "models": list(report.models),
            "checked": [c.to_dict() for c in checked],
            "findings": [f.to_dict() for f in findings],
        },
    )


def guard_aliases(
    store: MLflowEvidenceStore,
    *,
    models: Sequence[str] | str | None = None,
    restore: bool = False,
    settings: Settings | None = None,
    recorder: EvidenceRecorder | None = None,
) -> GuardReport:
    """:func:`check_aliases`, then its signed evidence recorded in a new run of experiment
    ``mlsecops-registry``: ``mlsecops registry guard``.

    The report says where the evidence went (``evidence``), or why it could not be recorded
    (``recording_error``: then ``ok`` is false, a check without evidence is no pass).

    :param store: the MLflow store.
    :param models: registered model names or shell patterns; default: the platform policy's.
    :param restore: move broken aliases back (see :func:`check_aliases`).
    :param settings: keys and ledger (default: environment).
    :param recorder: records the evidence (default: one built from ``settings`` on ``store``).
    """
    report = check_aliases(store, models=models, restore=restore, settings=settings, recorder=recorder)
    try:
        recorder = recorder or registry_recorder(store, settings or Settings.from_env())
        recorded = recorder.record(report.outcome.result, experiment_name=REGISTRY_EXPERIMENT)
    except MLSecOpsError as exc:
        report.recording_error = str(exc)
    else:
        report.evidence = evidence_run_uri(recorded)
    return report
