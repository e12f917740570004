"""The arguments of each gate that the policy judges, read from a task at parse time, and the
product's default bounds on them.

:func:`gate_arguments` turns a gate task's arguments (through a getter that resolves ``{{ params.X }}``
templates and marks anything else run-time-only as :class:`~airflow_mlsecops.policy.engine.Unresolved`)
into the values the rule engine compares, normalised as the gate normalises them. The same names
are what each gate records as applied in its evidence (``GateResult.policy``), which the run-time
check reads (:func:`recorded_arguments`).

Some names are derived from the arguments, because what weakens the gate is leaving something
out rather than a number:

* ``max_rows`` (pii-scan, drift): unset means every row, normalised to :data:`ALL_ROWS` so that a
  floor (``MIN``) accepts it;
* ``compare_all_columns`` (drift): ``columns`` is unset, so every column is compared;
* ``has_label_column`` (data-integrity): a ``label_column`` is named and not ignored, so the label
  checks run;
* ``excluded_columns`` (drift, data-integrity, input-anomaly): the columns a DAG declares out of the feature
  comparison by giving them a role (``id_columns``, ``prediction_column``, ``timestamp_column``, and
  for drift ``label_column``); by default none, so declaring a real feature an identifier cannot hide
  it (identifiers recognised from the reference need no declaration);
* ``compare_all_features`` (data-integrity): ``features`` is unset, so no column is left out through it
  (for drift, ``features`` counts as ``columns``);
* ``packages_from_model`` (sbom): the BOM lists the model's own requirements, not another
  interpreter's (``python`` unset);
* ``detector_from_model`` (input-anomaly): the detector is the one stored with the model;
* ``suite_sha256`` and ``min_mostly`` (data-validation): the suite that ran and the smallest share
  of rows any of its expectations must hold for (``mostly``).

:func:`default_requirements` lists :data:`DEFAULT_BOUNDS`: what holds for a gate a rule governs
(requires, or sets thresholds for) where the rule sets no value itself. They are conservative, so
a DAG cannot switch a governed gate off through a setting its policy forgot; a platform that wants
something looser (or stricter) writes the value in the rule.

No Airflow import; gate modules are imported only to normalise a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.policy.engine import Unresolved
from airflow_mlsecops.policy.model import APPROVAL_GATE, THRESHOLD_KINDS

if TYPE_CHECKING:
    from airflow_mlsecops.policy.model import Rule

Getter = Callable[[str], Any]

#: ``max_rows`` unset (every row is read): larger than any floor a policy can set.
ALL_ROWS = 2**63 - 1

#: The product's default bounds: gate -> ``(parameter, bound)`` (the comparison is the parameter's
#: kind in :data:`~airflow_mlsecops.policy.model.THRESHOLD_KINDS`). Each accepts the product's own
#: default value; each refuses a setting that turns the gate's check off or makes it look at less.
#: PII types default to every type (:func:`default_requirements` fills them in).
DEFAULT_BOUNDS: Mapping[str, tuple[tuple[str, Any], ...]] = MappingProxyType(
    {
        gate_names.DATA_INTEGRITY: (
            ("has_label_column", True),  # without it the label shift, class set and label flip checks are skipped
            ("ignore_columns", ()),  # an ignored column is not judged at all
            ("excluded_columns", ()),  # a column declared an id (prediction, timestamp) is not compared
            ("compare_all_features", True),  # features unset: no column left out through it
            ("significance", 0.0001),  # product 0.001; a tiny level makes no shift significant
            ("label_flip_min_class_rows", 100),  # product 20; a huge one skips the label-flip check
            ("label_flip_max_rows", 10_000),  # product 50,000; fewer rows, weaker flip estimate
            ("near_duplicate_radius", 0.005),  # product 0.01; 0 only finds exact copies
            ("max_schema_changes", 1),  # product 0
            ("max_new_classes", 1),  # product 0
            ("max_missing_classes", 1),  # product 0
            ("max_label_shift", 0.2),  # product 0.05
            ("max_duplicate_share", 0.1),  # product 0.01
            ("max_near_duplicate_share", 0.1),  # product 0.01
            ("max_out_of_range_share", 0.1),  # product 0.01
            ("max_non_finite_share", 0.01),  # product 0; inf crashes models and hides out-of-range values
            ("max_formula_share", 0.01),  # product 0; spreadsheet formulas in a training file
            ("range_tolerance", 0.25),  # product 0.05
            ("max_feature_shift", 0.3),  # product 0.1 (per-feature overrides included)
            ("max_label_flip_share", 0.1),  # product 0.03
            ("allow_empty", False),
        ),
        gate_names.PII_SCAN: (
            ("allow_columns", ()),  # no column may hold personal data unless the platform lists it
            ("max_rows", 100_000),  # unset (every row, the product default) or at least this many
            ("allow_empty", False),
        ),
        gate_names.DRIFT: (
            ("compare_all_columns", True),  # columns unset; not applied when the rule lists columns
            ("excluded_columns", ()),  # a column declared an id, label, prediction or timestamp is not compared
            ("max_rows", 10_000),  # product 50,000; unset compares every row
            ("drift_share", 0.25),  # product 0.25; Evidently's 0.5 lets 2 of 5 drifted columns pass
            ("max_missing_change", 0.1),  # product 0.05; a jump in missing values is drift
            ("fail_on_severe_column", True),  # one heavily drifted column fails the batch on its own
            ("allow_empty", False),
        ),
        gate_names.INPUT_ANOMALY: (
            ("detector_from_model", True),  # a detector of the DAG's choosing could flag nothing
            ("excluded_columns", ()),  # a column declared an id (prediction, timestamp) is named as not scored
            ("max_flagged_share", 0.1),  # product 0.05
            ("max_repeated_share", 0.1),  # product 0.05; repeated inputs are a sign of probing
            ("near_duplicate_radius", 0.025),  # product 0.05 training sd; smaller sees fewer near-copies
            ("trust_pickle", False),  # loading a pickle runs code
            ("allow_empty", False),
        ),
        gate_names.DATA_VALIDATION: (
            ("min_mostly", 0.9),  # an expectation that may fail on most rows checks nothing
            ("allow_empty", False),
        ),
        gate_names.ROBUSTNESS: (
            ("allow_bounds", False),  # a noise bound is not a measurement
            ("max_samples", 500),  # product 2,000
            ("attack_max_samples", 100),  # product 200
            ("trust_pickle", False),
        ),
        gate_names.MEMBERSHIP_INFERENCE: (
            ("max_attack_auc", 0.7),  # product 0.6; 0.5 is chance
            ("max_advantage", 0.2),  # product 0.1
            ("min_samples", 200),  # product 500; fewer rows, a noisier advantage
            ("attacks", ("loss", "confidence")),  # the global-threshold attacks always run
            ("trust_pickle", False),
        ),
        gate_names.SBOM: (
            ("fail_on", ("critical", "high", "unknown")),  # the product default
            ("require_vulnerability_check", True),  # the product default
            ("packages_from_model", True),  # python=... describes another interpreter than the model's
        ),
        gate_names.TRAINING_ENVIRONMENT: (
            ("fail_on", ("critical", "high", "unknown")),  # the product default
            ("require_vulnerability_check", True),  # the product default
            ("fail_on_mismatch", True),  # the product default: a model must declare what trained it
            ("fail_on_undeclared", True),  # the product default
            ("environment_from_worker", True),  # site_packages/freeze describe an environment of the DAG's choosing
        ),
        gate_names.MODEL_SCAN: (
            ("allow_globals", ()),  # extra pickle globals only where the platform lists them
            ("allow_model_code", False),  # the product default
        ),
        gate_names.CODE_SCAN: (
            ("fail_on_severity", ("high", "medium")),  # the product default: eval, yaml.load, pickle are medium
            ("fail_on_confidence", ("high", "medium")),  # the product default
            ("scan_secrets", True),  # the product default
        ),
    }
)


#: Threshold names that are not an operator argument of the same name: gate -> name -> the
#: argument(s) it is derived from (for data-integrity: not a key of ``thresholds``).
DERIVED_PARAMETERS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        gate_names.SBOM: {"packages_from_model": "python"},
        gate_names.TRAINING_ENVIRONMENT: {"environment_from_worker": "site_packages, freeze"},
        gate_names.DRIFT: {
            "compare_all_columns": "columns, features",
            "excluded_columns": "id_columns, label_column, prediction_column, timestamp_column",
        },
        gate_names.INPUT_ANOMALY: {
            "detector_from_model": "detector",
            "excluded_columns": "id_columns, prediction_column, timestamp_column",
        },
        gate_names.DATA_VALIDATION: {"suite_sha256": "suite", "min_mostly": "suite"},
        gate_names.DATA_INTEGRITY: {
            "has_label_column": "label_column",
            "allow_empty": "allow_empty",
            "excluded_columns": "id_columns, prediction_column, timestamp_column",
            "compare_all_features": "features",
        },
    }
)


def default_requirements(rule: Rule) -> list[tuple[str, str, str, Any]]:
    """``(gate, parameter, kind, bound)`` that apply to every gate ``rule`` governs where the rule itself
    sets no value for that parameter (:data:`DEFAULT_BOUNDS`)."""
    out: list[tuple[str, str, str, Any]] = []
    for gate in rule.governed_gates():
        own = rule.thresholds.get(gate, {})
        bounds = list(DEFAULT_BOUNDS.get(gate, ()))
        if gate == gate_names.PII_SCAN:
            from airflow_mlsecops.gates.pii import resolve_types

            bounds.append(("types", tuple(resolve_types(None))))
        for parameter, bound in bounds:
            if parameter in own:
                continue
            if gate == gate_names.DRIFT and parameter == "compare_all_columns" and "columns" in own:
                continue  # the platform says which columns must be compared: DAGs may name theirs
            out.append((gate, parameter, THRESHOLD_KINDS[gate][parameter], bound))
    return out


def gate_arguments(gate: str, get: Getter) -> dict[str, Any]:
    """The threshold arguments of one gate task, normalised like the gate normalises them.

    A name left out is not judged when the DAG is parsed (its evidence is, at promotion).
    """
    if gate == gate_names.ROBUSTNESS:
        names = ("min_robust_accuracy", "max_accuracy_drop", "epsilon", "allow_bounds", "norm", "epsilon_scale")
        return {n: get(n) for n in (*names, "max_samples", "attack_max_samples", "trust_pickle", "method")}
    if gate == gate_names.MEMBERSHIP_INFERENCE:
        return {
            **{n: get(n) for n in ("max_attack_auc", "max_advantage", "min_samples", "trust_pickle")},
            "attacks": _attacks(get("attacks")),
        }
    if gate == gate_names.TRAINING_PRIVACY:
        return {"max_epsilon": get("max_epsilon"), "max_delta": get("max_delta")}
    if gate == gate_names.SBOM:
        osv_db = get("osv_db")
        return {
            "fail_on": _fail_on(get("fail_on")),
            "require_vulnerability_check": get("require_vulnerability_check"),
            "packages_from_model": _unset(get("python")),
            "osv_db": None if _unset(osv_db) is True else osv_db if isinstance(osv_db, Unresolved) else str(osv_db),
        }
    if gate == gate_names.TRAINING_ENVIRONMENT:
        osv_db, elsewhere = get("osv_db"), (_unset(get("site_packages")), _unset(get("freeze")))
        # site_packages or freeze: an environment of the DAG's choosing, not the worker's own
        from_worker = next((v for v in elsewhere if isinstance(v, Unresolved)), all(v is True for v in elsewhere))
        return {
            "fail_on": _fail_on(get("fail_on")),
            "require_vulnerability_check": get("require_vulnerability_check"),
            "fail_on_mismatch": get("fail_on_mismatch"),
            "fail_on_undeclared": get("fail_on_undeclared"),
            "osv_db": None if _unset(osv_db) is True else osv_db if isinstance(osv_db, Unresolved) else str(osv_db),
            "environment_from_worker": from_worker,
        }
    if gate == gate_names.PII_SCAN:
        return {
            "types": _pii_types(get("types")),
            "allow_columns": _columns(get("allow_columns")),
            "max_rows": _max_rows(get("max_rows")),
            "allow_empty": get("allow_empty"),
        }
    if gate == gate_names.DRIFT:
        columns = _columns(get("columns"))
        if columns is None:
            columns = _columns(get("features"))  # the features given are the columns compared
        out = {
            "drift_share": get("drift_share"),
            "max_missing_change": get("max_missing_change"),
            "fail_on_severe_column": get("fail_on_severe_column"),
            "max_rows": _max_rows(get("max_rows")),
            "compare_all_columns": columns if isinstance(columns, Unresolved) else not columns,
            "excluded_columns": _excluded(get, ("id_columns", "label_column", "prediction_column", "timestamp_column")),
            "allow_empty": get("allow_empty"),
        }
        if columns:  # unset compares every column, which includes any the policy lists
            out["columns"] = columns
        return out
    if gate == gate_names.INPUT_ANOMALY:
        return {
            "max_flagged_share": get("max_flagged_share"),
            "max_repeated_share": get("max_repeated_share"),
            "near_duplicate_radius": get("near_duplicate_radius"),
            "detector_from_model": _unset(get("detector")),
            "trust_pickle": get("trust_pickle"),
            "allow_empty": get("allow_empty"),
            "excluded_columns": _excluded(get, ("id_columns", "prediction_column", "timestamp_column")),
        }
    if gate == gate_names.DATA_VALIDATION:
        return {**_suite(get("suite")), "allow_empty": get("allow_empty")}
    if gate == gate_names.DATA_INTEGRITY:
        arguments = _integrity_arguments(get("thresholds"), get("label_column"), get("allow_empty"))
        if isinstance(arguments, dict):
            arguments["excluded_columns"] = _excluded(get, ("id_columns", "prediction_column", "timestamp_column"))
            features = _columns(get("features"))
            arguments["compare_all_features"] = features if isinstance(features, Unresolved) else not features
        return {"thresholds": arguments}
    if gate == gate_names.MODEL_SCAN:
        return {
            "allow_globals": _columns(get("allow_globals")),
            "second_opinion": get("second_opinion"),
            "allow_model_code": get("allow_model_code"),
        }
    if gate == gate_names.CODE_SCAN:
        from airflow_mlsecops.gates.code_scan import policy_levels

        return {
            "fail_on_severity": policy_levels(get("fail_on_severity"), "fail_on_severity"),
            "fail_on_confidence": policy_levels(get("fail_on_confidence"), "fail_on_confidence"),
            "scan_secrets": get("scan_secrets"),
            "max_suppressions": get("max_suppressions"),
        }
    if gate == APPROVAL_GATE:
        reviewers = get("reviewers")
        return {
            "required_approvals": get("required_approvals"),
            "reviewers": reviewers if isinstance(reviewers, Unresolved) else list(reviewers or ()),
            "separation_of_duties": get("separation_of_duties"),
        }
    if gate == gate_names.MODEL_PROMOTION:
        accept = _columns(get("accept_warned"))  # unset: nothing accepted, and no key (older DAGs read unchanged)
        return {"required_approvals": get("required_approvals"), **({"accept_warned": accept} if accept else {})}
    if gate in (gate_names.PROVENANCE_VERIFICATION, gate_names.MODEL_SIGNATURE_VERIFICATION):
        keys = get("public_keys")
        return {"public_keys": [keys] if isinstance(keys, str) else keys}
    return {}


def recorded_arguments(gate: str, policy: Mapping[str, Any]) -> dict[str, Any]:
    """The values a gate recorded as applied (``GateResult.policy``), keyed and normalised like
    :func:`gate_arguments`, for the run-time check."""
    values = dict(policy or {})
    if gate == gate_names.MODEL_SCAN:
        values["second_opinion"] = bool(values.get("second_opinion"))
    if gate in (gate_names.PROVENANCE_VERIFICATION, gate_names.MODEL_SIGNATURE_VERIFICATION):
        values.pop("trusted_keys", None)  # key ids, not paths: the trusted keys are checked by verification
    if gate in (gate_names.PII_SCAN, gate_names.DRIFT) and "max_rows" in values:
        values["max_rows"] = _max_rows(values["max_rows"])
    if gate == gate_names.DRIFT:
        if values.get("columns") is None and values.get("features"):
            values["columns"] = _columns(values["features"])  # the features given are the columns compared
        if values.get("columns") is None:
            values.pop("columns", None)  # every column was compared
        values["excluded_columns"] = _excluded(
            values.get, ("id_columns", "label_column", "prediction_column", "timestamp_column")
        )
        if "compare_all_columns" not in values and "columns" in policy:
            values["compare_all_columns"] = policy.get("columns") is None
    if gate == gate_names.INPUT_ANOMALY:
        values["excluded_columns"] = _excluded(values.get, ("id_columns", "prediction_column", "timestamp_column"))
    if gate == gate_names.SBOM and "packages_from_model" not in values and "python" in values:
        values["packages_from_model"] = not values.get("python")
    if gate == gate_names.DATA_INTEGRITY:
        thresholds = values.get("thresholds")
        merged = dict(thresholds) if isinstance(thresholds, Mapping) else {}
        if "has_label_column" in values:
            merged["has_label_column"] = values["has_label_column"]
        elif "label_column" in values:
            merged["has_label_column"] = _has_label(values.get("label_column"), merged.get("ignore_columns"))
        if "allow_empty" in values:
            merged["allow_empty"] = values["allow_empty"]
        merged["excluded_columns"] = _excluded(values.get, ("id_columns", "prediction_column", "timestamp_column"))
        merged["compare_all_features"] = not values.get("features")
        if merged or isinstance(thresholds, Mapping):
            values["thresholds"] = merged
    return values


# ----------------------------------------------------------------------------- normalising
def _columns(value: Any) -> Any:
    if value is None or isinstance(value, Unresolved):
        return value
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(v) for v in value]


def _excluded(get: Getter, names: tuple[str, ...]) -> Any:
    """The columns declared out of the comparison through ``names`` (lists or single names), or the first unresolved one."""
    out: list[str] = []
    for name in names:
        value = _columns(get(name))
        if isinstance(value, Unresolved):
            return value
        out.extend(c for c in value or () if c not in out)
    return out


def _unset(value: Any) -> Any:
    """``True`` when an optional argument is not given (``None`` or empty), as the gates read it."""
    if isinstance(value, Unresolved):
        return value
    return value is None or (isinstance(value, str) and not value.strip())


def _max_rows(value: Any) -> Any:
    """``max_rows``: unset (``None``, ``"None"``, empty) reads every row: :data:`ALL_ROWS`."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return ALL_ROWS
    return value


def _has_label(label_column: Any, ignore_columns: Any) -> Any:
    if isinstance(label_column, Unresolved):
        return label_column
    if not isinstance(label_column, str) or not label_column:
        return False
    ignored = ignore_columns if isinstance(ignore_columns, (list, tuple)) else _columns(ignore_columns) or []
    return label_column not in {str(c) for c in ignored}


def _fail_on(value: Any) -> Any:
    if isinstance(value, Unresolved):
        return value
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.gates.sbom import DEFAULT_FAIL_ON, parse_fail_on

    try:
        return list(parse_fail_on(DEFAULT_FAIL_ON if value is None else value))
    except ConfigurationError:
        return Unresolved(f"the value {value!r}, which is not a severity list")


def _attacks(value: Any) -> Any:
    """Membership-inference attacks as the gate reads them (unset: every attack)."""
    if isinstance(value, Unresolved):
        return value
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.gates.membership.options import parse_attacks

    try:
        return list(parse_attacks(value))
    except ConfigurationError:
        return Unresolved(f"the value {value!r}, which is not a list of membership-inference attacks")


def _pii_types(value: Any) -> Any:
    if isinstance(value, Unresolved):
        return value
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.gates.pii import resolve_types

    try:
        return list(resolve_types(value))  # None: every type
    except ConfigurationError:
        return Unresolved(f"the value {value!r}, which is not a PII type list")


def _suite(value: Any) -> dict[str, Any]:
    """``suite_sha256`` and ``min_mostly`` of a suite known when the DAG is parsed (a dict or a
    readable file); nothing when it is not (the gate records both, judged at promotion)."""
    if value is None or isinstance(value, Unresolved):
        return {}
    from airflow_mlsecops.gates.data_validation import suite_policy

    return suite_policy(value)


def _integrity_arguments(thresholds: Any, label_column: Any, allow_empty: Any) -> Any:
    if isinstance(thresholds, Unresolved):
        return thresholds
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.gates.data_integrity import IntegrityThresholds

    try:
        values = IntegrityThresholds.from_mapping(thresholds).to_dict()
    except (ConfigurationError, TypeError, ValueError):
        return Unresolved("thresholds that are only known when the task runs")
    values["has_label_column"] = _has_label(label_column, values.get("ignore_columns"))
    values["allow_empty"] = allow_empty
    return values


__all__ = ["ALL_ROWS", "DEFAULT_BOUNDS", "DERIVED_PARAMETERS", "default_requirements", "gate_arguments", "recorded_arguments"]
