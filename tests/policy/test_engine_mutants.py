"""Exact tests of the rule engine (``policy/engine.py``) that mutation testing showed no other test
pins: ``accept_warned`` per rule (stricter wins, a template refused), a refused foreign gate counts
as no gate, the data-integrity thresholds, the structure messages, ancestors and the records'
dictionaries. Hand-made DAG structures, no Airflow.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from airflow_mlsecops.policy.engine import (
    DagInfo,
    TaskInfo,
    Unresolved,
    _jsonable,
    _render,
    _requirement,
    _value,
    apply_to,
    check_accept_warned,
    check_structure,
    check_thresholds,
    complies,
    evaluate,
    missing_gate_message,
    policy_defaults,
    policy_requirements,
    required_gates,
    threshold_message,
)
from airflow_mlsecops.policy.model import parse_policy

# Every test here takes milliseconds: a mutant that loops forever (ancestors) fails fast instead of
# running into pytest's 300 s default or mutmut's deadline (reported as "timeout", not killed).
pytestmark = pytest.mark.timeout(30)

STRICT = "  - name: strict\n    match: {tags: [prod]}\n    required_gates: {promote: [sbom, robustness]}\n"
LENIENT = (
    "  - name: lenient\n    match: {dag_id_pattern: '.*'}\n    required_gates: {promote: [sbom, model-scan]}\n"
    "    accept_warned: [sbom, model-scan]\n"
)


def policy(*rules: str) -> Any:
    return parse_policy("version: 1\nrules:\n" + "".join(rules), source="p.yaml")


def task(task_id: str, gate: str | None, upstream: tuple[str, ...] = (), **kwargs: Any) -> TaskInfo:
    arguments = MappingProxyType(kwargs.pop("arguments", {}))
    operator = {"model-registration": "RegisterModelOperator", "model-promotion": "PromoteModelOperator"}.get(gate or "", "Op")
    return TaskInfo(task_id, kwargs.pop("operator", operator), gate, frozenset(upstream), arguments, **kwargs)


def promote(task_id: str = "promote", accept: Any = None, upstream: tuple[str, ...] = ("sbom", "scan", "robust")) -> TaskInfo:
    return task(task_id, "model-promotion", upstream, arguments={"accept_warned": accept} if accept is not None else {})


def gates() -> tuple[TaskInfo, ...]:
    return (task("sbom", "sbom"), task("scan", "model-scan"), task("robust", "robustness"))


# ----------------------------------------------------------------------------- accept_warned
def test_accept_warned_is_checked_per_rule_and_stricter_wins() -> None:
    both = policy(STRICT, LENIENT)
    dag = DagInfo("d", (*gates(), promote(accept=["sbom", "model-scan"])), tags=("prod",))
    found = [v for v in evaluate(both, dag) if v.kind == "accept-warned"]
    assert [(v.rule, v.gate, v.task_id, v.parameter, v.dag_id) for v in found] == [
        ("strict", "sbom", "promote", "accept_warned", "d")
    ]
    assert found[0].message == (
        "policy rule 'strict' does not accept an incomplete (warned) sbom at promotion, "
        "but task promote in DAG d sets accept_warned to include sbom"
    )
    # Without the strict rule (the DAG is not tagged prod) the lenient rule accepts both.
    assert [v for v in evaluate(both, DagInfo("d", dag.tasks)) if v.kind == "accept-warned"] == []


def test_a_gate_no_rule_governs_may_be_accepted_by_the_task() -> None:
    dag = DagInfo("d", (*gates(), promote(accept=["pii-scan"])), tags=("prod",))
    assert check_accept_warned(policy(STRICT).rules[0], dag) == []


def test_an_accept_warned_template_is_refused_for_every_governed_gate_not_accepted() -> None:
    strict, lenient = policy(STRICT, LENIENT).rules
    dag = DagInfo("d", (*gates(), promote(accept=Unresolved("{{ params.accept }}"))))
    assert [v.gate for v in check_accept_warned(strict, dag)] == ["robustness", "sbom"]  # policy gate order
    assert check_accept_warned(lenient, dag) == []  # lenient governs sbom and model-scan and accepts both


def test_every_promote_task_is_checked_in_order_and_empty_values_are_skipped() -> None:
    strict = policy(STRICT).rules[0]
    dag = DagInfo("d", (*gates(), promote("p3", ["sbom"]), promote("p1", []), promote("p0"), promote("p2", ["sbom", "sbom"])))
    assert [(v.task_id, v.gate) for v in check_accept_warned(strict, dag)] == [("p2", "sbom"), ("p3", "sbom")]


# ----------------------------------------------------------------------------- foreign gates
def test_a_refused_foreign_gate_counts_as_no_gate_and_its_arguments_mean_nothing() -> None:
    pol = policy(STRICT + "    thresholds: {robustness: {min_robust_accuracy: 0.9}}\n")
    fake = task(
        "robust",
        "robustness",
        operator="LaxGate",
        operator_path="dags.evil.LaxGate",
        origin="subclass",
        imitates="RobustnessOperator",
        arguments={"min_robust_accuracy": 0.1},
    )
    dag = DagInfo("d", (task("sbom", "sbom"), fake, promote(upstream=("sbom", "robust"))), tags=("prod",))
    found = evaluate(pol, dag)
    assert [(v.kind, v.task_id, v.gate) for v in found] == [
        ("foreign-gate", "robust", "robustness"),
        ("missing-gate", "promote", "robustness"),
    ]
    assert found[0].message == (
        "task robust in DAG d uses dags.evil.LaxGate, a subclass of RobustnessOperator defined outside airflow-mlsecops; "
        "only the package's gate operators, or ones a policy rule allows by name (allowed_operators), may record gate evidence"
    )
    # Other tasks keep their gate and arguments: the sbom gate still counts.
    assert all(v.gate != "sbom" for v in found)


def test_an_allowed_foreign_gate_counts_but_may_not_override_execute() -> None:
    pol = policy(STRICT + "    allowed_operators: [dags.own.Gate]\n")
    own = task(
        "robust", "robustness", operator="Gate", operator_path="dags.own.Gate", origin="subclass", imitates="RobustnessOperator"
    )
    dag = DagInfo("d", (task("sbom", "sbom"), own, promote(upstream=("sbom", "robust"))), tags=("prod",))
    assert evaluate(pol, dag) == []
    overriding = TaskInfo(**{**own.__dict__, "overrides": ("execute", "run_gate")})
    found = evaluate(pol, DagInfo("d", (task("sbom", "sbom"), overriding, dag.tasks[2]), tags=("prod",)))
    assert [(v.kind, v.rule) for v in found] == [("overridden-gate", "platform")]
    assert found[0].message == (
        "task robust in DAG d uses dags.own.Gate, which a policy rule allows, but it overrides execute() and run_gate(); "
        "an allowed gate operator may change evaluate(), never how the package runs the gate and records its evidence"
    )
    # Judged with explicit rules: the allowed list comes from those rules.
    assert [v.kind for v in evaluate(pol, dag, rules=())] == ["foreign-gate"]


@pytest.mark.parametrize(
    ("origin", "imitates", "path", "expected"),
    [
        ("look-alike", "gate_name", None, "uses Op, a class outside airflow-mlsecops with a gate_name attribute like"),
        ("look-alike", "SbomOperator", "m.Op", "uses m.Op, a class outside airflow-mlsecops named like its SbomOperator;"),
    ],
)
def test_foreign_gate_messages(origin: str, imitates: str, path: str | None, expected: str) -> None:
    fake = task("x", "sbom", operator_path=path, origin=origin, imitates=imitates)
    [violation] = check_structure(policy(STRICT), DagInfo("d", (fake,)))
    assert violation.kind == "foreign-gate" and expected in violation.message


def test_tampered_and_empty_expand_messages() -> None:
    tampered = task("t", "sbom", tampered=("SbomOperator.execute", "SbomOperator.evaluate"))
    empty = task("e", None, origin="look-alike", imitates="gate_name", operator_path="m.E", empty_expand="list")
    mapped = task("m", "sbom", empty_expand="dict")
    found = check_structure(
        policy(STRICT + "    allowed_operators: [m.E]\n"), DagInfo("d", (tampered, empty, mapped), tags=("prod",))
    )
    assert [(v.kind, v.task_id) for v in found] == [("empty-expand", "e"), ("empty-expand", "m"), ("tampered-gate", "t")]
    assert found[0].message.startswith("task e in DAG d maps gate Op over an empty literal list, so it never runs")
    assert found[1].message.startswith("task m in DAG d maps gate sbom over an empty literal dict")
    assert found[2].message == (
        "task t in DAG d uses Op, whose code was replaced from outside airflow-mlsecops "
        "(SbomOperator.execute, SbomOperator.evaluate); a DAG file may not change the package's gate operators"
    )


def test_trigger_rule_messages_name_the_step_task_and_tasks_between() -> None:
    dag = DagInfo(
        "d",
        (
            task("sbom", "sbom"),
            task("join", None, ("sbom",), trigger_rule="all_done"),
            task("promote", "model-promotion", ("join",), trigger_rule="none_failed"),
        ),
    )
    found = check_structure(policy(STRICT), dag)
    assert [(v.task_id, v.parameter) for v in found] == [("promote", "trigger_rule"), ("join", "trigger_rule")]
    assert found[0].message.startswith("task promote (PromoteModelOperator) in DAG d uses trigger_rule none_failed, which")
    assert found[1].message.startswith(
        "task join in DAG d, between a gate and promote (PromoteModelOperator), uses trigger_rule all_done, which"
    )
    assert found[1].message.endswith("must use trigger_rule all_success")


def test_unknown_model_message() -> None:
    pol = policy("  - name: m\n    match: {models: [credit]}\n    required_gates: {promote: [sbom]}\n")
    step = task("promote", "model-promotion", registered_model=Unresolved("params.model"), model_alias="champion")
    [violation] = check_structure(pol, DagInfo("d", (step,)))
    assert violation.message == (
        "task promote (PromoteModelOperator) in DAG d takes its registered model name from params.model, which cannot "
        "be checked before the task runs; the policy selects rules by registered model (match models), so the "
        "registered model name must be a literal or a params default"
    )


def test_rules_that_govern_a_model_apply_through_dag_models() -> None:
    pol = policy("  - name: m\n    match: {models: [credit]}\n    required_gates: {promote: [sbom]}\n")
    dag = DagInfo("d", (promote(upstream=()),), models=(("credit", "champion"),))
    assert [v.kind for v in evaluate(pol, dag)] == ["missing-gate"]
    assert required_gates(pol, "d", models=[("credit", "champion")]) == ["sbom"]
    assert required_gates(pol, "d") == []
    pol = policy("  - name: m\n    match: {models: [credit]}\n    thresholds: {sbom: {fail_on: [critical, high]}}\n")
    assert policy_defaults(pol, "sbom", "d", models=[("credit", None)])["fail_on"] == ["critical", "high"]
    assert policy_defaults(pol, "sbom", "d") == {}


def test_evaluate_checks_only_the_steps_asked_for() -> None:
    pol = policy("  - name: r\n    match: {tags: [prod]}\n    required_gates: {register: [sbom], promote: [sbom]}\n")
    dag = DagInfo(
        "d", (task("register", "model-registration"), task("promote", "model-promotion", ("register",))), tags=("prod",)
    )
    assert [v.task_id for v in evaluate(pol, dag)] == ["register", "promote"]
    assert [v.task_id for v in evaluate(pol, dag, steps=("promote",))] == ["promote"]


# ----------------------------------------------------------------------------- data-integrity values
def test_data_integrity_thresholds_are_read_from_the_thresholds_mapping() -> None:
    def integrity(**arguments: Any) -> TaskInfo:
        return task("i", "data-integrity", arguments=arguments)

    assert _value(integrity(), "data-integrity", "significance") is not None  # absent: the _MISSING marker
    assert _value(integrity(thresholds=None), "data-integrity", "significance") is not None
    unresolved = Unresolved("{{ params.t }}")
    assert _value(integrity(thresholds=unresolved), "data-integrity", "significance") is unresolved
    assert _value(integrity(thresholds=[1]), "data-integrity", "significance") == Unresolved("thresholds that are not a mapping")
    pol = policy("  - name: r\n    match: {tags: [prod]}\n    thresholds: {data-integrity: {significance: 0.001}}\n")
    dag = DagInfo("d", (integrity(thresholds=None),), tags=("prod",))
    [violation] = [v for v in evaluate(pol, dag) if v.parameter == "significance"]
    assert "sets it from thresholds that are not a mapping" in violation.message
    assert [v for v in evaluate(pol, DagInfo("d", (integrity(),), tags=("prod",))) if v.parameter == "significance"] == []


# ----------------------------------------------------------------------------- messages and records
def test_message_parts() -> None:
    assert missing_gate_message("r", "sbom", None, "PromoteModelOperator", "d") == (
        "policy rule 'r' requires gate sbom upstream of PromoteModelOperator in DAG d"
    )
    assert missing_gate_message("r", "sbom", "", "Op", "d").endswith("upstream of Op in DAG d")
    assert _render([]) == "nothing" and _render(("a", "b")) == "a, b"
    assert _requirement("subset", ()) == "to be empty" and _requirement("subset", ("a",)) == "to be within a"
    with pytest.raises(ValueError, match="unknown comparison 'nope'"):
        _requirement("nope", 1)
    assert threshold_message("r", "g", "p", "superset", ("a",), "t", "d", []).endswith("sets nothing")


def test_records_as_dictionaries() -> None:
    step = task(
        "promote",
        "model-promotion",
        ("b", "a"),
        arguments={"limits": {"x": Unresolved("xcom")}, "names": ("a", Unresolved("t"))},
        registered_model=Unresolved("params.m"),
        model_alias="champion",
    )
    info = DagInfo("d", (step,), tags=("prod",), owners=("risk",), fileloc="/dags/d.py", models=(("credit", "champion"),))
    assert info.to_dict() == {
        "dag_id": "d",
        "tags": ["prod"],
        "owners": ["risk"],
        "fileloc": "/dags/d.py",
        "models": [["credit", "champion"]],
        "tasks": [step.to_dict()],
    }
    assert step.to_dict()["arguments"] == {"limits": {"x": {"unresolved": "xcom"}}, "names": ["a", {"unresolved": "t"}]}
    assert step.to_dict()["registered_model"] == {"unresolved": "params.m"} and step.to_dict()["model_alias"] == "champion"
    assert step.to_dict()["upstream"] == ["a", "b"]
    assert _jsonable({1: [2]}) == {"1": [2]}
    [violation] = evaluate(policy(STRICT), DagInfo("d", (promote(upstream=("sbom",)), task("sbom", "sbom")), tags=("prod",)))
    assert violation.to_dict() == {
        "rule": "strict",
        "dag_id": "d",
        "kind": "missing-gate",
        "task_id": "promote",
        "gate": "robustness",
        "parameter": None,
        "message": str(violation),
    }


def test_ancestors_follow_every_record_of_a_task_and_stop_on_cycles() -> None:
    dag = DagInfo(
        "d",
        (
            task("a", None),
            task("b", None, ("a",)),
            task("c", None, ("b",)),
            task("c", None, ("x",)),  # a second record of c (run-time structures)
            task("x", None, ("c",)),  # a cycle back to c
            task("y", None),
        ),
    )
    assert dag.ancestors("c") == {"a", "b", "x", "c"}
    assert dag.ancestors("b") == {"a"} and dag.ancestors("a") == set() and dag.ancestors("nowhere") == set()
    assert dag.task("b") is dag.tasks[1] and dag.task("nowhere") is None
    assert dag.task("c") is dag.tasks[2]  # the first record


def test_step_tasks_are_sorted_by_task_id_and_changes_models() -> None:
    dag = DagInfo("d", (promote("p2"), task("r", "model-registration"), promote("p1"), task("s", "sbom")))
    assert [t.task_id for t in dag.step_tasks("promote")] == ["p1", "p2"]
    assert [t.task_id for t in dag.step_tasks("register")] == ["r"]
    assert dag.changes_models and not DagInfo("d", (task("s", "sbom"),)).changes_models


# ----------------------------------------------------------------------------- thresholds, warn_only, defaults
def test_every_violation_names_its_rule_task_gate_and_parameter() -> None:
    pol = policy(STRICT + "    thresholds: {robustness: {min_robust_accuracy: 0.9}, sbom: {fail_on: [critical]}}\n")
    dag = DagInfo(
        "d",
        (
            task("sbom", "sbom", warn_only=True, arguments={"fail_on": ["critical"]}),
            task("robust", "robustness", arguments={"min_robust_accuracy": 0.5}),
            promote(upstream=("robust",)),
        ),
        tags=("prod",),
    )
    found = {v.kind: v.to_dict() for v in evaluate(pol, dag)}
    assert found["missing-gate"] == {
        "rule": "strict",
        "dag_id": "d",
        "kind": "missing-gate",
        "task_id": "promote",
        "gate": "sbom",
        "parameter": None,
        "message": "policy rule 'strict' requires gate sbom upstream of promote (PromoteModelOperator) in DAG d",
    }
    assert found["threshold"] == {
        "rule": "strict",
        "dag_id": "d",
        "kind": "threshold",
        "task_id": "robust",
        "gate": "robustness",
        "parameter": "min_robust_accuracy",
        "message": "policy rule 'strict' requires min_robust_accuracy of gate robustness to be at least 0.9, "
        "but task robust in DAG d sets 0.5",
    }
    assert found["warn-only"] == {
        "rule": "strict",
        "dag_id": "d",
        "kind": "warn-only",
        "task_id": "sbom",
        "gate": "sbom",
        "parameter": "warn_only",
        "message": "policy rule 'strict' forbids warn_only on gate sbom, but task sbom in DAG d sets warn_only=True",
    }


def test_a_task_is_checked_against_every_requirement_of_its_gate_whatever_comes_first() -> None:
    # The rule's first requirement is for another gate; the robustness task must still be judged.
    pol = policy(
        "  - name: r\n    match: {tags: [prod]}\n"
        "    thresholds: {sbom: {fail_on: [critical]}, robustness: {min_robust_accuracy: 0.9}}\n"
    )
    dag = DagInfo("d", (task("robust", "robustness", arguments={"min_robust_accuracy": 0.5}),), tags=("prod",))
    assert [v.parameter for v in evaluate(pol, dag)] == ["min_robust_accuracy"]
    assert policy_requirements(pol, "robustness", "d", ("prod",))["min_robust_accuracy"] == ("min", 0.9)


def test_policy_requirements_select_rules_by_owner() -> None:
    pol = policy("  - name: r\n    match: {owners: [risk]}\n    thresholds: {robustness: {min_robust_accuracy: 0.9}}\n")
    assert policy_requirements(pol, "robustness", "d", (), "risk")["min_robust_accuracy"] == ("min", 0.9)
    assert policy_requirements(pol, "robustness", "d", (), "airflow, risk")["min_robust_accuracy"] == ("min", 0.9)
    assert policy_requirements(pol, "robustness", "d", (), "airflow") == {}


@pytest.mark.parametrize(
    ("kind", "policy_value", "current", "expected"),
    [
        ("superset", ("email",), None, None),  # None: every type, already the strictest
        ("subset", ("a", "b"), None, ["a", "b"]),
        ("min", 0.8, None, 0.8),
        ("min", 0.8, 0.9, 0.9),
        ("min", 0.8, 0.5, 0.8),
        ("min", 0.8, "abc", 0.8),
        ("max", 0.2, 0.5, 0.2),
        ("subset", ("a", "b"), ["a", "c"], ["a"]),
        ("superset", ("a", "b"), ["c"], ["c", "a", "b"]),
        ("equal", "inf", "2", "inf"),
        ("true-strict", True, False, True),
        ("false-strict", False, True, False),
    ],
)
def test_apply_to_keeps_a_stricter_value_and_tightens_a_weaker_one(
    kind: str, policy_value: Any, current: Any, expected: Any
) -> None:
    assert apply_to(kind, policy_value, current) == expected
    assert type(apply_to(kind, policy_value, current)) is type(expected)


def test_a_weaker_limit_given_as_text_is_replaced_by_the_policy_not_a_crash() -> None:
    """A rendered template gives numbers as text: a weaker one takes the policy's limit (it used to raise TypeError)."""
    from airflow_mlsecops.policy.engine import apply_to

    assert apply_to("min", 0.8, "0.5") == 0.8
    assert apply_to("max", 0.2, "0.5") == 0.2
    assert apply_to("min", 0.8, 0.5) == 0.8
    assert apply_to("min", 0.8, 0.9) == 0.9  # stricter than the policy: kept


# ----------------------------------------------------------------------------- survivors of the 813/853 run
def test_a_non_finite_value_is_not_a_number_any_limit_accepts() -> None:
    """inf (or text that reads as inf) is refused, even on the strict side of a floor: not comparable."""
    for infinite in (float("inf"), "inf", " Infinity "):
        assert complies("min", 0.9, infinite) is False
    for infinite in (float("-inf"), "-inf"):
        assert complies("max", 0.2, infinite) is False
    for nan in (float("nan"), "nan"):
        assert complies("min", 0.9, nan) is False and complies("max", 0.2, nan) is False
    assert complies("min", 0.9, " 0.95 ") is True and complies("min", 0.9, 1) is True  # finite text and ints are numbers
    pol = policy(STRICT + "    thresholds: {robustness: {min_robust_accuracy: 0.9}}\n")
    dag = DagInfo("d", (task("robust", "robustness", arguments={"min_robust_accuracy": float("inf")}),), tags=("prod",))
    [violation] = [v for v in evaluate(pol, dag) if v.kind == "threshold"]
    assert violation.message == (
        "policy rule 'strict' requires min_robust_accuracy of gate robustness to be at least 0.9, "
        "but task robust in DAG d sets inf"
    )


def test_complies_compares_paths_only_when_asked_and_refuses_what_is_not_a_list() -> None:
    assert complies("subset", ("keys/a.pem",), ["./keys/a.pem"]) is False  # default: plain text
    assert complies("subset", ("keys/a.pem",), ["./keys/a.pem"], paths=True) is True
    assert complies("superset", ("keys/a.pem",), ["keys//a.pem"]) is False
    for not_a_list in (None, 3, {"a": 1}):
        assert complies("subset", ("a",), not_a_list) is False
        assert complies("superset", (), not_a_list) is False
        assert complies("nonempty-subset", ("a",), not_a_list) is False
    with pytest.raises(ValueError, match=r"^unknown comparison 'nope'$"):
        complies("nope", 1, 1)


def test_the_stricter_of_two_false_strict_values_is_false_only_if_one_is() -> None:
    rule = "  - name: {n}\n    match: {{tags: [prod]}}\n    thresholds: {{robustness: {{allow_bounds: {v}}}}}\n"
    both_allow = policy(rule.format(n="a", v="true"), rule.format(n="b", v="true"))
    assert policy_defaults(both_allow, "robustness", "d", ("prod",))["allow_bounds"] is True
    one_forbids = policy(rule.format(n="a", v="true"), rule.format(n="b", v="false"))
    assert policy_defaults(one_forbids, "robustness", "d", ("prod",))["allow_bounds"] is False


@pytest.mark.parametrize(
    ("match", "dag_kwargs"),
    [
        ("{dag_id_pattern: 'credit_.*'}", {}),
        ("{owners: [risk]}", {"owners": ("airflow", "risk")}),
        ("{models: [credit]}", {"models": (("credit", None),)}),
    ],
)
def test_check_structure_selects_the_rules_allowing_operators_by_dag_id_owners_and_models(
    match: str, dag_kwargs: dict[str, Any]
) -> None:
    pol = policy(f"  - name: r\n    match: {match}\n    required_gates: {{promote: [sbom]}}\n    allowed_operators: [m.Own]\n")
    own = task("own", "sbom", operator="Own", operator_path="m.Own", origin="subclass", imitates="SbomOperator")
    assert check_structure(pol, DagInfo("credit_daily", (own,), **dag_kwargs)) == []
    [refused] = check_structure(pol, DagInfo("other", (own,)))  # no rule applies: nothing allows m.Own
    assert (refused.rule, refused.dag_id, refused.kind, refused.task_id, refused.gate) == (
        "platform",
        "other",
        "foreign-gate",
        "own",
        "sbom",
    )


def test_each_task_with_a_lax_trigger_rule_is_reported_once_with_its_kind() -> None:
    dag = DagInfo(
        "d",
        (
            task("sbom", "sbom"),
            task("a_ok", None, ("sbom",)),  # all_success, sorted before join: the walk goes on past it
            task("join", None, ("a_ok",), trigger_rule="all_done"),
            task("register", "model-registration", ("join",), trigger_rule="none_failed"),
            task("promote", "model-promotion", ("register", "join")),  # join and register again, as ancestors
        ),
    )
    found = check_structure(policy(STRICT), dag)
    assert [(v.rule, v.dag_id, v.kind, v.task_id, v.gate, v.parameter) for v in found] == [
        ("platform", "d", "trigger-rule", "register", "model-registration", "trigger_rule"),
        ("platform", "d", "trigger-rule", "join", None, "trigger_rule"),
    ]
    assert found[0].message.startswith("task register (RegisterModelOperator) in DAG d uses trigger_rule none_failed,")
    assert found[1].message.startswith(
        "task join in DAG d, between a gate and register (RegisterModelOperator), uses trigger_rule all_done,"
    )


def test_a_lax_trigger_rule_with_no_gate_upstream_is_not_between_a_gate_and_a_step() -> None:
    dag = DagInfo(
        "d",
        (
            task("start", None),  # a plain task: not a gate
            task("join", None, ("start",), trigger_rule="all_done"),
            task("sbom", "sbom"),
            task("promote", "model-promotion", ("join", "sbom")),
        ),
    )
    assert check_structure(policy(STRICT), dag) == []
    # A look-alike gate (no gate name, a foreign class) upstream counts as a gate.
    fake = task("start", None, operator_path="m.Fake", origin="look-alike", imitates="gate_name")
    found = check_structure(policy(STRICT), DagInfo("d", (fake, *dag.tasks[1:])))
    assert [(v.kind, v.task_id) for v in found] == [("foreign-gate", "start"), ("trigger-rule", "join")]


def test_unknown_models_are_reported_only_when_the_policy_selects_by_model_and_name_the_alias() -> None:
    step = task("promote", "model-promotion", registered_model="credit", model_alias=Unresolved("params.alias"))
    by_model = policy("  - name: m\n    match: {models: [credit]}\n    required_gates: {promote: [sbom]}\n")
    [violation] = check_structure(by_model, DagInfo("d", (step,)))
    assert (violation.rule, violation.dag_id, violation.kind, violation.task_id, violation.gate, violation.parameter) == (
        "platform",
        "d",
        "unknown-model",
        "promote",
        "model-promotion",
        None,
    )
    assert violation.message == (
        "task promote (PromoteModelOperator) in DAG d takes its alias from params.alias, which cannot "
        "be checked before the task runs; the policy selects rules by registered model (match models), so the "
        "alias must be a literal or a params default"
    )
    # A policy with no model criteria never needs the name: nothing to report.
    unknown = task("promote", "model-promotion", registered_model=Unresolved("params.m"), model_alias=Unresolved("params.a"))
    assert check_structure(policy(STRICT), DagInfo("d", (unknown,))) == []


def test_a_missing_argument_does_not_stop_the_check_of_the_next() -> None:
    pol = policy(
        "  - name: r\n    match: {tags: [prod]}\n"
        "    thresholds: {robustness: {max_accuracy_drop: 0.1, min_robust_accuracy: 0.9}}\n"
    )
    dag = DagInfo("d", (task("robust", "robustness", arguments={"min_robust_accuracy": 0.5}),), tags=("prod",))
    assert [(v.parameter, v.task_id) for v in check_thresholds(pol.rules[0], dag)] == [("min_robust_accuracy", "robust")]


def test_policy_requirements_select_rules_by_model() -> None:
    pol = policy("  - name: m\n    match: {models: [credit]}\n    thresholds: {robustness: {min_robust_accuracy: 0.9}}\n")
    assert policy_requirements(pol, "robustness", "d", models=[("credit", None)])["min_robust_accuracy"] == ("min", 0.9)
    assert policy_requirements(pol, "robustness", "d") == {}


def test_ancestors_name_unknown_upstream_ids_and_walk_past_a_task_seen_twice() -> None:
    ghost = DagInfo("d", (task("b", None, ("ghost",)), task("c", None, ("b",))))
    assert ghost.ancestors("c") == {"b", "ghost"}  # "ghost" has no record: no upstream of its own
    # t <-> a and t <-> c: whichever of a, c is walked first, t comes back before the other is done.
    loop = DagInfo("d", (task("t", None, ("a", "c")), task("a", None, ("t",)), task("c", None, ("t",))))
    assert loop.ancestors("t") == {"a", "c", "t"}
    assert loop.ancestors("a") == {"a", "c", "t"}
