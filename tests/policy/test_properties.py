"""Property-based tests (hypothesis) of policy merging: a stricter rule is never loosened by another.

When several rules of a policy apply to one gate, :func:`policy_requirements` merges their values
and :func:`apply_to` lifts a DAG's value to the merge at run time. For every comparison kind:

* whatever complies with the merged requirement complies with each rule (nothing is loosened);
* whatever complies with every rule complies with the merge (nothing is invented), except for
  ``equal`` values that disagree, which no DAG value can meet;
* the value the gate runs with complies with the policy, and a DAG value that already complies is
  kept as it is.

The merge is exercised through real policy text (``parse_policy``) for the thresholds of real gates.
Examples are few and deterministic (``derandomize``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_mlsecops.policy.engine import apply_to, complies, policy_requirements
from airflow_mlsecops.policy.model import EQUAL, FALSE_STRICT, MAX, MIN, SUBSET, SUPERSET, TRUE_STRICT, parse_policy

settings.register_profile("mlsecops-policy", derandomize=True, deadline=None, database=None, max_examples=80)
DETERMINISTIC = settings.get_profile("mlsecops-policy")

#: (gate, parameter, kind, strategy of policy values): one real threshold of each kind.
SEVERITIES = ["critical", "high", "medium", "low", "unknown"]
COLUMNS = ["id", "email", "phone", "note", "city"]
PARAMETERS: list[tuple[str, str, str, st.SearchStrategy[Any]]] = [
    ("robustness", "min_robust_accuracy", MIN, st.floats(min_value=0, max_value=1, allow_nan=False)),
    ("drift", "drift_share", MAX, st.floats(min_value=0.01, max_value=1, allow_nan=False)),
    ("sbom", "fail_on", SUPERSET, st.lists(st.sampled_from(SEVERITIES), min_size=1, unique=True)),
    ("pii-scan", "allow_columns", SUBSET, st.lists(st.sampled_from(COLUMNS), min_size=1, unique=True)),
    ("sbom", "require_vulnerability_check", TRUE_STRICT, st.booleans()),
    ("pii-scan", "allow_empty", FALSE_STRICT, st.booleans()),
    ("robustness", "norm", EQUAL, st.sampled_from(["inf", "2"])),
]


def _dag_values(kind: str) -> st.SearchStrategy[Any]:
    """Values a DAG could set for a parameter of ``kind``."""
    if kind in (MIN, MAX):
        return st.floats(min_value=-1, max_value=2, allow_nan=False)
    if kind == SUPERSET:
        return st.lists(st.sampled_from(SEVERITIES), unique=True)
    if kind == SUBSET:
        return st.lists(st.sampled_from(COLUMNS), unique=True)
    if kind in (TRUE_STRICT, FALSE_STRICT):
        return st.booleans()
    return st.sampled_from(["inf", "2", "1"])


def _policy(gate: str, parameter: str, values: list[Any]) -> str:
    """A policy whose rules all match DAG ``d`` and each set ``parameter`` of ``gate`` (JSON is YAML)."""
    rules = [
        {"name": f"rule-{i}", "match": {"dag_id_pattern": "d"}, "thresholds": {gate: {parameter: value}}}
        for i, value in enumerate(values)
    ]
    return json.dumps({"version": 1, "rules": rules})


@st.composite
def merges(draw: st.DrawFn) -> tuple[str, Any, list[Any], Any]:
    """(kind, merged requirement, each rule's value, a DAG value) for 1-3 rules on one parameter."""
    gate, parameter, kind, values = draw(st.sampled_from(PARAMETERS))
    rule_values = draw(st.lists(values, min_size=1, max_size=3))
    if kind == EQUAL:  # rules that disagree on an exact value are refused: test_contradictory_exact_values_...
        rule_values = [rule_values[0]] * len(rule_values)
    merged_kind, merged = policy_requirements(parse_policy(_policy(gate, parameter, rule_values)), gate, "d")[parameter]
    assert merged_kind == kind
    return kind, merged, rule_values, draw(_dag_values(kind))


@DETERMINISTIC
@given(case=merges())
def test_merging_rules_never_loosens_any_of_them(case: tuple[str, Any, list[Any], Any]) -> None:
    kind, merged, rule_values, dag_value = case
    if kind == EQUAL and len(set(rule_values)) > 1:
        return  # contradictory exact values: see test_contradictory_exact_values_are_not_resolved_silently
    if complies(kind, merged, dag_value):
        assert all(complies(kind, value, dag_value) for value in rule_values), (merged, rule_values, dag_value)


@DETERMINISTIC
@given(case=merges())
def test_merging_rules_asks_for_nothing_no_rule_asks_for(case: tuple[str, Any, list[Any], Any]) -> None:
    kind, merged, rule_values, dag_value = case
    if kind == EQUAL and len(set(rule_values)) > 1:
        return  # two rules demanding different exact values cannot both be met
    if all(complies(kind, value, dag_value) for value in rule_values):
        assert complies(kind, merged, dag_value), (merged, rule_values, dag_value)


@DETERMINISTIC
@given(case=merges())
def test_the_value_a_gate_runs_with_complies_and_keeps_a_stricter_dag_value(case: tuple[str, Any, list[Any], Any]) -> None:
    kind, merged, _, dag_value = case
    applied = apply_to(kind, merged, dag_value)
    assert complies(kind, merged, applied), (merged, dag_value, applied)
    if complies(kind, merged, dag_value):
        assert applied == dag_value


def test_contradictory_exact_values_are_not_resolved_silently() -> None:
    """Two matching rules demanding different exact values (robustness norm 'inf' and '2') cannot
    both be met: the gate fails closed instead of running with the first rule's value."""
    from airflow_mlsecops.exceptions import MLSecOpsError

    policy = parse_policy(_policy("robustness", "norm", ["inf", "2"]))
    with pytest.raises(MLSecOpsError, match="norm"):
        policy_requirements(policy, "robustness", "d")
