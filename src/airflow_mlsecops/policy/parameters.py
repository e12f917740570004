"""The arguments of each gate that the policy judges, read from a task at parse time.

:func:`gate_arguments` turns a gate task's arguments (through a getter that resolves ``{{ params.X }}``
templates and marks anything else run-time-only as :class:`~airflow_mlsecops.policy.engine.Unresolved`)
into the values the rule engine compares, normalised as the gate normalises them. The same names
are what each gate records as applied in its evidence (``GateResult.policy``), which the run-time
check reads. :func:`default_requirements` lists bounds that hold for a gate a rule governs even
where the rule sets no value.

No Airflow import; gate modules are imported only to normalise a value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.policy.engine import Unresolved
from airflow_mlsecops.policy.model import APPROVAL_GATE

if TYPE_CHECKING:
    from airflow_mlsecops.policy.model import Rule

Getter = Callable[[str], Any]


def default_requirements(rule: Rule) -> list[tuple[str, str, str, Any]]:
    """``(gate, parameter, kind, bound)`` that apply to every gate ``rule`` governs where the rule itself
    sets no value for that parameter."""
    return []


def gate_arguments(gate: str, get: Getter) -> dict[str, Any]:
    """The threshold arguments of one gate task, normalised like the gate normalises them."""
    if gate == gate_names.ROBUSTNESS:
        return {
            n: get(n) for n in ("min_robust_accuracy", "max_accuracy_drop", "epsilon", "allow_bounds", "norm", "epsilon_scale")
        }
    if gate == gate_names.SBOM:
        return {"fail_on": _fail_on(get("fail_on")), "require_vulnerability_check": get("require_vulnerability_check")}
    if gate == gate_names.PII_SCAN:
        return {"types": _pii_types(get("types")), "allow_columns": _columns(get("allow_columns"))}
    if gate == gate_names.DRIFT:
        return {"drift_share": get("drift_share")}
    if gate == gate_names.INPUT_ANOMALY:
        return {"max_flagged_share": get("max_flagged_share")}
    if gate == gate_names.DATA_INTEGRITY:
        return {"thresholds": _integrity_thresholds(get("thresholds"))}
    if gate == gate_names.MODEL_SCAN:
        return {
            "allow_globals": _columns(get("allow_globals")),
            "second_opinion": get("second_opinion"),
            "allow_model_code": get("allow_model_code"),
        }
    if gate == APPROVAL_GATE:
        reviewers = get("reviewers")
        return {
            "required_approvals": get("required_approvals"),
            "reviewers": reviewers if isinstance(reviewers, Unresolved) else list(reviewers or ()),
            "separation_of_duties": get("separation_of_duties"),
        }
    if gate == gate_names.MODEL_PROMOTION:
        return {"required_approvals": get("required_approvals")}
    if gate in (gate_names.PROVENANCE_VERIFICATION, gate_names.MODEL_SIGNATURE_VERIFICATION):
        keys = get("public_keys")
        return {"public_keys": [keys] if isinstance(keys, str) else keys}
    return {}


def _columns(value: Any) -> Any:
    if value is None or isinstance(value, Unresolved):
        return value
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(v) for v in value]


def _fail_on(value: Any) -> Any:
    if isinstance(value, Unresolved):
        return value
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.gates.sbom import DEFAULT_FAIL_ON, parse_fail_on

    try:
        return list(parse_fail_on(DEFAULT_FAIL_ON if value is None else value))
    except ConfigurationError:
        return Unresolved(f"the value {value!r}, which is not a severity list")


def _pii_types(value: Any) -> Any:
    if isinstance(value, Unresolved):
        return value
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.gates.pii import resolve_types

    try:
        return list(resolve_types(value))  # None: every type
    except ConfigurationError:
        return Unresolved(f"the value {value!r}, which is not a PII type list")


def _integrity_thresholds(value: Any) -> Any:
    if isinstance(value, Unresolved):
        return value
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.gates.data_integrity import IntegrityThresholds

    try:
        return IntegrityThresholds.from_mapping(value).to_dict()
    except (ConfigurationError, TypeError, ValueError):
        return Unresolved("thresholds that are only known when the task runs")


__all__ = ["default_requirements", "gate_arguments"]
