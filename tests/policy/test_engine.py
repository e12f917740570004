"""The pure rule engine on hand-made DAG structures (no Airflow)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from airflow_mlsecops.policy.engine import (
    DagInfo,
    TaskInfo,
    Unresolved,
    complies,
    evaluate,
    policy_defaults,
    required_gates,
)
from airflow_mlsecops.policy.model import parse_policy

POLICY = parse_policy(
    """\
version: 1
rules:
  - name: baseline
    match: {dag_id_pattern: ".*"}
    required_gates:
      register: [model-scan]
      promote: [model-scan, robustness]
    thresholds:
      robustness: {min_robust_accuracy: 0.6, max_accuracy_drop: 0.2, allow_bounds: false, norm: inf}
      sbom: {fail_on: [critical, high], require_vulnerability_check: true}
      pii-scan: {types: [email, iban], allow_columns: [contact_email]}
      drift: {drift_share: 0.5}
      data-integrity: {max_feature_shift: 0.2, significance: 0.001, ignore_columns: [id]}
  - name: team-risk
    match: {owners: [risk], tags: [production]}
    thresholds:
      robustness: {min_robust_accuracy: 0.8}
    approval: {required_approvals: 2, reviewers: [alice, bob], separation_of_duties: true}
    trusted_keys: [/keys/release.pem]
""",
    source="p.yaml",
)


def task(task_id: str, gate: str | None, upstream: tuple[str, ...] = (), warn_only: bool = False, **arguments: Any) -> TaskInfo:
    operator = {"model-registration": "RegisterModelOperator", "model-promotion": "PromoteModelOperator"}.get(gate or "", "Op")
    return TaskInfo(task_id, operator, gate, frozenset(upstream), MappingProxyType(arguments), warn_only)


def dag(*tasks: TaskInfo, dag_id: str = "d", tags: tuple[str, ...] = (), owners: tuple[str, ...] = ("airflow",)) -> DagInfo:
    return DagInfo(dag_id=dag_id, tasks=tasks, tags=tags, owners=owners)


def messages(info: DagInfo) -> list[str]:
    return [v.message for v in evaluate(POLICY, info)]


def test_required_gates_must_be_upstream_directly_or_not() -> None:
    ok = dag(
        task("scan", "model-scan"),
        task("train", None, ("scan",)),
        task("robust", "robustness", ("train",), min_robust_accuracy=0.7, max_accuracy_drop=0.1, allow_bounds=False, norm="inf"),
        task("register", "model-registration", ("robust",)),
        task("promote", "model-promotion", ("register",)),
    )
    assert messages(ok) == []
    assert ok.changes_models
    sideways = dag(
        task("scan", "model-scan"),
        task("register", "model-registration", ("scan",)),
        task("promote", "model-promotion", ("register",)),
        task(
            "robust", "robustness", ("promote",), min_robust_accuracy=0.7, max_accuracy_drop=0.1, allow_bounds=False, norm="inf"
        ),
    )
    assert messages(sideways) == [
        "policy rule 'baseline' requires gate robustness upstream of promote (PromoteModelOperator) in DAG d"
    ]
    nothing = dag(task("register", "model-registration"), task("promote", "model-promotion"))
    assert messages(nothing) == [
        "policy rule 'baseline' requires gate model-scan upstream of register (RegisterModelOperator) in DAG d",
        "policy rule 'baseline' requires gate model-scan upstream of promote (PromoteModelOperator) in DAG d",
        "policy rule 'baseline' requires gate robustness upstream of promote (PromoteModelOperator) in DAG d",
    ]


def test_a_dag_without_a_register_or_promote_step_needs_no_gates() -> None:
    info = dag(task("train", None), task("drift", "drift", drift_share=0.5))
    assert not info.changes_models
    assert messages(info) == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"min_robust_accuracy": 0.59},
            "requires min_robust_accuracy of gate robustness to be at least 0.6, but task t in DAG d sets 0.59",
        ),
        (
            {"max_accuracy_drop": None},
            "requires max_accuracy_drop of gate robustness to be at most 0.2, but task t in DAG d sets no limit",
        ),
        (
            {"max_accuracy_drop": 0.3},
            "requires max_accuracy_drop of gate robustness to be at most 0.2, but task t in DAG d sets 0.3",
        ),
        ({"allow_bounds": True}, "requires allow_bounds of gate robustness to be false, but task t in DAG d sets true"),
        ({"norm": "2"}, "requires norm of gate robustness to be inf, but task t in DAG d sets 2"),
        (
            {"min_robust_accuracy": Unresolved("the template {{ params.x }}")},
            "requires min_robust_accuracy of gate robustness to be at least 0.6, but task t in DAG d sets it from the "
            "template {{ params.x }}, which cannot be checked before the task runs",
        ),
        (
            {"min_robust_accuracy": "n/a"},
            "requires min_robust_accuracy of gate robustness to be at least 0.6, but task t in DAG d sets n/a",
        ),
    ],
)
def test_weaker_robustness_values(arguments: dict[str, Any], expected: str) -> None:
    strict = {"min_robust_accuracy": 0.6, "max_accuracy_drop": 0.2, "allow_bounds": False, "norm": "inf"}
    found = messages(dag(task("t", "robustness", **{**strict, **arguments})))
    assert found == [f"policy rule 'baseline' {expected}"]


def test_stricter_values_pass() -> None:
    info = dag(
        task("r", "robustness", min_robust_accuracy=0.9, max_accuracy_drop=0.0, allow_bounds=False, norm="inf"),
        task("s", "sbom", fail_on=["critical", "high", "medium"], require_vulnerability_check=True),
        task("p", "pii-scan", types=["email", "iban", "phone"], allow_columns=[]),
        task("d", "drift", drift_share="0.25"),
        task("i", "data-integrity", thresholds={"max_feature_shift": 0.1, "significance": 0.01, "ignore_columns": ["id"]}),
    )
    assert messages(info) == []


def test_lists_flags_and_per_feature_overrides() -> None:
    info = dag(
        task("s", "sbom", fail_on=["critical"], require_vulnerability_check=False),
        task("p", "pii-scan", types=["email"], allow_columns=["contact_email", "notes"]),
        task(
            "i",
            "data-integrity",
            thresholds={
                "max_feature_shift": 0.1,
                "feature_shift_overrides": {"income": 0.4},
                "significance": 0.0001,
                "ignore_columns": ["id", "name"],
            },
        ),
    )
    assert messages(info) == [
        "policy rule 'baseline' requires max_feature_shift of gate data-integrity to be at most"
        " 0.2, but task i in DAG d sets 0.4",
        "policy rule 'baseline' requires significance of gate data-integrity to be at least 0.001,"
        " but task i in DAG d sets 0.0001",
        "policy rule 'baseline' requires ignore_columns of gate data-integrity to be within id,"
        " but task i in DAG d sets id, name",
        "policy rule 'baseline' requires types of gate pii-scan to include email, iban, but task p in DAG d sets email",
        "policy rule 'baseline' requires allow_columns of gate pii-scan to be within contact_email,"
        " but task p in DAG d sets contact_email, notes",
        "policy rule 'baseline' requires fail_on of gate sbom to include critical, high, but task s in DAG d sets critical",
        "policy rule 'baseline' requires require_vulnerability_check of gate sbom to be true, but task s in DAG d sets false",
    ]


def test_warn_only_on_a_governed_gate() -> None:
    info = dag(
        task("s", "sbom", warn_only=True, fail_on=["critical", "high"], require_vulnerability_check=True),
        task("v", "data-validation", warn_only=True),  # not governed by any rule here
    )
    assert messages(info) == ["policy rule 'baseline' forbids warn_only on gate sbom, but task s in DAG d sets warn_only=True"]


def test_rules_match_by_tag_owner_and_pattern_and_add_up() -> None:
    def approval(**arguments: Any) -> TaskInfo:
        return task(
            "approve",
            "model-approval",
            **{"required_approvals": 2, "reviewers": ["alice"], "separation_of_duties": True, **arguments},
        )

    base = (task("r", "robustness", min_robust_accuracy=0.7, max_accuracy_drop=0.1, allow_bounds=False, norm="inf"),)
    # team-risk needs owner risk AND tag production
    assert messages(dag(*base, tags=("production",), owners=("alice",))) == []
    assert messages(dag(*base, tags=("staging",), owners=("risk",))) == []
    both = dag(*base, approval(), tags=("production", "x"), owners=("risk", "ops"))
    assert messages(both) == [
        "policy rule 'team-risk' requires min_robust_accuracy of gate robustness to be at least 0.8, but task r in DAG d sets 0.7"
    ]
    weak = dag(
        *base, approval(required_approvals=1, reviewers=[], separation_of_duties=False), tags=("production",), owners=("risk",)
    )
    assert messages(weak)[:3] == [
        "policy rule 'team-risk' requires required_approvals of gate model-approval to be at least"
        " 2, but task approve in DAG d sets 1",
        "policy rule 'team-risk' requires reviewers of gate model-approval to be within alice, bob, but task approve in DAG d"
        " sets no reviewers, so anyone may approve",
        "policy rule 'team-risk' requires separation_of_duties of gate model-approval to be true,"
        " but task approve in DAG d sets false",
    ]
    pattern = parse_policy(
        "version: 1\nrules:\n  - name: credit\n    match: {dag_id_pattern: 'credit_.*'}\n   "
        " thresholds: {drift: {drift_share: 0.1}}\n"
    )
    drift = task("d", "drift", drift_share=0.2)
    assert evaluate(pattern, dag(drift, dag_id="credit_x"))
    assert not evaluate(pattern, dag(drift, dag_id="my_credit_x"))  # the whole id must match


def test_approval_rules_require_an_approval_step_and_the_quorum_on_promote() -> None:
    info = dag(
        task("scan", "model-scan"),
        task("robust", "robustness", ("scan",), min_robust_accuracy=0.9, max_accuracy_drop=0.1, allow_bounds=False, norm="inf"),
        task("promote", "model-promotion", ("robust",), required_approvals=1),
        tags=("production",),
        owners=("risk",),
    )
    assert messages(info) == [
        "policy rule 'team-risk' requires gate model-approval upstream of promote (PromoteModelOperator) in DAG d",
        "policy rule 'team-risk' requires required_approvals of gate model-promotion to be at"
        " least 2, but task promote in DAG d sets 1",
    ]


def test_trusted_keys_bound_the_keys_a_verification_gate_trusts() -> None:
    info = dag(
        task("verify", "provenance-verification", public_keys=["/keys/release.pem", "/tmp/mine.pem"]),
        task("verify_env", "model-signature-verification", public_keys=None),  # the deployment's keys
        task("verify_ok", "model-signature-verification", public_keys=["/keys/../keys/release.pem"]),
        tags=("production",),
        owners=("risk",),
    )
    assert messages(info) == [
        "policy rule 'team-risk' requires public_keys of gate provenance-verification to be within /keys/release.pem,"
        " but task verify in DAG d sets /keys/release.pem, /tmp/mine.pem"
    ]


def test_defaults_are_the_strictest_of_the_matching_rules() -> None:
    args = ("d", ("production",), "risk, ops")
    assert policy_defaults(POLICY, "robustness", *args) == {
        "min_robust_accuracy": 0.8,
        "max_accuracy_drop": 0.2,
        "allow_bounds": False,
        "norm": "inf",
        "max_samples": 500,  # the product's default bounds (policy.parameters.DEFAULT_BOUNDS)
        "attack_max_samples": 100,
        "trust_pickle": False,
    }
    assert policy_defaults(POLICY, "robustness", "d") == {
        "min_robust_accuracy": 0.6,
        "max_accuracy_drop": 0.2,
        "allow_bounds": False,
        "norm": "inf",
        "max_samples": 500,  # the product's default bounds (policy.parameters.DEFAULT_BOUNDS)
        "attack_max_samples": 100,
        "trust_pickle": False,
    }
    assert policy_defaults(POLICY, "model-approval", *args) == {
        "required_approvals": 2,
        "reviewers": ["alice", "bob"],
        "separation_of_duties": True,
    }
    assert policy_defaults(POLICY, "model-promotion", *args) == {"required_approvals": 2}
    assert policy_defaults(POLICY, "model-scan", *args) == {"allow_globals": [], "allow_model_code": False}
    assert required_gates(POLICY, *args) == ["model-scan", "robustness", "model-approval"]
    assert required_gates(POLICY, "d", step="register") == ["model-scan"]


@pytest.mark.parametrize(
    ("kind", "expected", "actual", "ok"),
    [
        ("min", 0.5, 0.5, True),
        ("min", 0.5, "0.6", True),
        ("min", 0.5, True, False),
        ("max", 0.5, float("nan"), False),
        ("max", 0.5, None, False),
        ("superset", ("a",), "a, b", True),
        ("subset", ("a",), [], True),
        ("nonempty-subset", ("a",), [], False),
        ("true-strict", False, False, True),
        ("true-strict", True, None, False),
        ("false-strict", True, True, True),
        ("equal", "2", 2, True),
    ],
)
def test_comparisons(kind: str, expected: Any, actual: Any, ok: bool) -> None:
    assert complies(kind, expected, actual) is ok


def test_structures_serialise() -> None:
    info = dag(task("t", "drift", ("a",), drift_share=Unresolved("an XCom value")))
    assert info.to_dict()["tasks"][0] == {
        "task_id": "t",
        "operator": "Op",
        "gate": "drift",
        "upstream": ["a"],
        "arguments": {"drift_share": {"unresolved": "an XCom value"}},
        "warn_only": False,
        "trigger_rule": "all_success",
        "operator_path": None,
        "origin": None,
        "registered_model": None,
        "model_alias": None,
    }
    (violation,) = evaluate(POLICY, info)
    assert violation.to_dict()["kind"] == "threshold" and str(violation) == violation.message


def test_a_promote_task_may_accept_an_incomplete_gate_only_where_every_governing_rule_does() -> None:
    source = """\
version: 1
rules:
  - name: lenient
    match: {dag_id_pattern: ".*"}
    required_gates: {promote: [sbom, robustness]}
    accept_warned: [sbom]
  - name: strict
    match: {tags: [production]}
    thresholds: {sbom: {fail_on: [critical]}}
"""
    policy = parse_policy(source, source="p.yaml")
    gates = (task("sbom", "sbom"), task("rob", "robustness"))

    def found(accept: Any, tags: tuple[str, ...] = ()) -> list[str]:
        promote = task("promote", "model-promotion", ("sbom", "rob"), accept_warned=accept)
        info = dag(*gates, promote, tags=tags)
        return [v.message for v in evaluate(policy, info) if v.kind == "accept-warned"]

    assert found([]) == [] and found(["sbom"]) == []
    assert found(["sbom", "robustness"]) == [
        "policy rule 'lenient' does not accept an incomplete (warned) robustness at promotion, "
        "but task promote in DAG d sets accept_warned to include robustness"
    ]
    # The strict rule governs sbom (its thresholds) and does not list it: it refuses, the lenient one cannot loosen it.
    assert found(["sbom"], tags=("production",)) == [
        "policy rule 'strict' does not accept an incomplete (warned) sbom at promotion, "
        "but task promote in DAG d sets accept_warned to include sbom"
    ]
    # A value known only at run time cannot be shown to comply with a rule that governs a gate.
    assert found(Unresolved("a template")) != []
