"""Rolling an alias back to its previous holder (gate ``model-rollback``), only to a verified version.

>>> from airflow_mlsecops.lifecycle.rollback import rollback
>>> record = rollback(store, name="credit", alias="champion", reason="drift")     # doctest: +SKIP
>>> record.from_version, record.to_version                                       # doctest: +SKIP
('3', '2')

The previous holder comes from the alias history :func:`~airflow_mlsecops.lifecycle.promotion.promote`
keeps; its chain is verified first, and signed evidence is recorded before the alias moves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Finding, GateResult, Severity, Subject, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, MLSecOpsError, VerificationError
from airflow_mlsecops.gates.base import tool_versions
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle._registry_checks import (
    evidence_run_uri,
    get_version,
    load_history,
    registry_recorder,
    restore_alias,
    utc_now,
    validate_alias,
    version_uri,
)
from airflow_mlsecops.lifecycle.model_registry import REGISTRY_EXPERIMENT, TAG_ROLLBACK_EVIDENCE, tag_history, tag_previous
from airflow_mlsecops.lifecycle.version_verification import verify_model_version

if TYPE_CHECKING:
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder


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
        get_version(store, name, version)
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


def rollback_failure_result(result: GateResult, error: BaseException, summary: str) -> GateResult:
    """The signed ``error`` record that follows a rollback whose alias could not be moved, so the
    ledger does not name as holder a version that never got the alias (``alias_moved`` false).

    :param result: the recorded ``model-rollback`` decision.
    :param error: why the alias could not be moved.
    :param summary: one line for humans.
    """
    return GateResult.create(
        gate=gate_names.MODEL_ROLLBACK,
        verdict=Verdict.ERROR,
        subjects=result.subjects,
        findings=[Finding("rollback.alias-not-moved", Severity.HIGH, str(error))],
        tool_versions=result.tool_versions,
        summary=summary,
        details={**dict(result.details), "alias_moved": False, "error": str(error)},
    )


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

    The previous holder comes from ``mlsecops.alias_history.<alias>`` (kept by
    :func:`~airflow_mlsecops.lifecycle.promotion.promote`), else the holder's
    ``mlsecops.previous_<alias>`` tag. The history works as a stack: the version rolled back from is
    taken off it, so a second rollback goes one version further back.

    The previous holder's chain is verified first
    (:func:`~airflow_mlsecops.lifecycle.version_verification.verify_model_version` with ``alias``):
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
    validate_alias(alias)
    cfg = settings or Settings.from_env()
    client = store.client
    with store.errors(f"cannot read registered model {name}"):
        model = client.get_registered_model(name)
    current_raw = dict(model.aliases or {}).get(alias)
    if current_raw is None:
        raise ConfigurationError(f"{name} has no alias @{alias}: nothing to roll back")
    current = str(current_raw)
    history = load_history(dict(model.tags or {}), alias)
    if history is None:
        raise ConfigurationError(f"the {tag_history(alias)} tag of {name} is not a JSON list of versions")
    fallback = get_version(store, name, current).tags.get(tag_previous(alias))
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
    rolled_back_at = utc_now()
    target_uri = version_uri(name, target)
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
        gate=gate_names.MODEL_ROLLBACK,
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
    recorder = recorder or registry_recorder(store, cfg)
    recorded = recorder.record(result, experiment_name=REGISTRY_EXPERIMENT)
    evidence_uri = evidence_run_uri(recorded) or ""
    try:
        with store.errors(f"cannot move @{alias} of {name} to version {target}"):
            client.set_registered_model_alias(name, alias, target)
        try:
            with store.errors(f"@{alias} is on version {target}, but the rollback tags cannot be written"):
                client.set_registered_model_tag(name, tag_history(alias), json.dumps(new_history))
                client.set_model_version_tag(name, target, TAG_ROLLBACK_EVIDENCE, evidence_uri)
                client.set_model_version_tag(name, current, f"mlsecops.rolled_back_from_{alias}", rolled_back_at)
        except MLSecOpsError:
            restore_alias(store, name, alias, current)
            raise
    except MLSecOpsError as exc:
        failure = rollback_failure_result(
            result, exc, f"the rollback of @{alias} of {name} to version {target} did not happen: {exc}"
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
