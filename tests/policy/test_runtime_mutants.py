"""Exact tests for policy/runtime.py written from surviving mutants (tests/mutation/README.md).

How the promote step counts distinct approvers in a signed approval decision: by ``id``, else by
``name``; anything else in the record counts for nothing (never a crash, never an extra approver).
Then the run-time judgement of evidence built in memory (no Airflow, no MLflow), pinning whole
``Violation`` objects: which record of which task counts, when an incomplete ``warned`` verdict is
accepted, the promote task's own records, results recorded outside Airflow, the recorded values
normalised per gate, and which rules apply (DAG id, owners, promoted model).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Verdict
from airflow_mlsecops.policy.engine import Violation
from airflow_mlsecops.policy.model import parse_policy
from airflow_mlsecops.policy.runtime import (
    _approvers,
    _task_id,
    check_evidence_against_policy,
    check_result_against_policy,
)


@pytest.mark.parametrize(
    ("approvals", "expected"),
    [
        ([{"id": "u1", "name": "Same"}, {"id": "u2", "name": "Same"}], {"u1", "u2"}),  # the id identifies
        ([{"name": "bob"}], {"bob"}),  # no id: the name
        ([{"id": "a"}, {"id": "b", "name": "Bob"}], {"a", "b"}),
        ([{"id": " a "}, {"id": "a"}, {"id": ""}, {"id": None}, {"name": "None"}, "c", 7], {"a"}),
        (5, set()),  # not a list: nobody (fail closed, no TypeError)
        ({"id": "a"}, set()),
        ("ab", set()),
    ],
)
def test_approvers_are_counted_by_id_then_name(approvals: Any, expected: set[str]) -> None:
    assert _approvers({"approvals": approvals}) == expected


# ----------------------------------------------------------------------------- evidence judged at promotion
# (Evidence built in memory; whole Violation objects are compared, not only the messages.)

DAG = "credit_x"
WHERE = f"before promote_model (PromoteModelOperator) in DAG {DAG}"


def _result(
    gate: str,
    task: str | None,
    verdict: Verdict = Verdict.PASSED,
    *,
    try_number: int = 1,
    policy: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    **kwargs: Any,
) -> GateResult:
    context = None if task is None else PipelineContext(DAG, "manual__1", task, try_number)
    return GateResult.create(gate=gate, verdict=verdict, policy=policy or {}, details=details or {}, context=context, **kwargs)


def _incomplete(gate: str, task: str) -> GateResult:
    """``warned`` only because two checks were not performed."""
    return _result(gate, task, Verdict.WARNED, warned_reason="incomplete", details={"not_performed": ["osv", "pgd"]})


def _not_passed(task: str, recorded: str) -> Violation:
    return Violation(
        rule="r",
        dag_id=DAG,
        kind="gate-not-passed",
        message=f"policy rule 'r' requires gate robustness to pass {WHERE}, but task {task} recorded {recorded}",
        task_id=task,
        gate="robustness",
    )


def _check(evidence: dict[str, GateResult], policy_text: str, **kwargs: Any) -> list[Violation]:
    options: dict[str, Any] = {"dag_id": DAG, "task_id": "promote_model"}
    options.update(kwargs)
    return check_evidence_against_policy(evidence, policy=parse_policy(policy_text), **options)


BY_DAG_ID = """\
version: 1
rules:
  - name: r
    match: {dag_id_pattern: "credit_.*"}
    required_gates: {promote: [robustness]}
    approval: {required_approvals: 1}
"""


def test_every_task_of_a_required_gate_must_pass_and_the_approval_count_enough_approvers() -> None:
    # Two tasks record robustness: each one's latest record counts (the later pass of robust_b
    # does not hide robust_a's failure). The approval passed with nobody approving: 0 of 1.
    evidence = {
        "robust_a/try-1": _result("robustness", "robust_a", Verdict.FAILED),
        "robust_b/try-1": _result("robustness", "robust_b"),
        "approve/try-1.decision-1": _result("model-approval", "approve", details={"approvals": []}),
    }
    assert _check(evidence, BY_DAG_ID) == [
        _not_passed("robust_a", "failed"),
        Violation(
            rule="r",
            dag_id=DAG,
            kind="approvals",
            message=f"policy rule 'r' requires 1 distinct approvals {WHERE}, but task approve recorded 0",
            task_id="approve",
            gate="model-approval",
        ),
    ]
    evidence["approve/try-1.decision-2"] = _result("model-approval", "approve", details={"approvals": [{"id": "ann"}]})
    evidence["robust_a/try-2"] = _result("robustness", "robust_a", try_number=2)
    assert _check(evidence, BY_DAG_ID) == []


ACCEPTING = """\
version: 1
rules:
  - name: r
    match: {dag_id_pattern: "credit_.*"}
    required_gates: {promote: [robustness]}
    accept_warned: [robustness]
"""
REFUSING = ACCEPTING.replace("    accept_warned: [robustness]\n", "")
INCOMPLETE_A = "warned (incomplete, not performed: osv, pgd), which no accept_warned of the promotion and the policy accepts"


@pytest.mark.parametrize(
    ("policy_text", "accept_warned", "expected"),
    [
        # The policy accepts; the promote task's list is not known here: the policy decides.
        (ACCEPTING, None, [_not_passed("robust_b", "failed")]),
        # The policy accepts and the promote task asks for it.
        (ACCEPTING, ["robustness"], [_not_passed("robust_b", "failed")]),
        # The policy accepts, but the promote task does not ask: the incomplete verdict does not count.
        (ACCEPTING, [], [_not_passed("robust_a", INCOMPLETE_A), _not_passed("robust_b", "failed")]),
        (ACCEPTING, ["sbom"], [_not_passed("robust_a", INCOMPLETE_A), _not_passed("robust_b", "failed")]),
        # The promote task asks, the policy refuses: the engine's message, then the verdicts.
        (
            REFUSING,
            ["robustness"],
            [
                Violation(
                    rule="r",
                    dag_id=DAG,
                    kind="accept-warned",
                    message=(
                        "policy rule 'r' does not accept an incomplete (warned) robustness at promotion, "
                        f"but task promote_model in DAG {DAG} sets accept_warned to include robustness"
                    ),
                    task_id="promote_model",
                    gate="robustness",
                    parameter="accept_warned",
                ),
                _not_passed("robust_a", INCOMPLETE_A),
                _not_passed("robust_b", "failed"),
            ],
        ),
        (REFUSING, None, [_not_passed("robust_a", INCOMPLETE_A), _not_passed("robust_b", "failed")]),
    ],
)
def test_an_incomplete_verdict_counts_only_when_asked_for_and_accepted(
    policy_text: str, accept_warned: list[str] | None, expected: list[Violation]
) -> None:
    # robust_a is incomplete, robust_b (checked after it) failed: accepting robust_a's verdict never
    # skips robust_b, and acceptance never covers a failure.
    evidence = {
        "robust_a/try-1": _incomplete("robustness", "robust_a"),
        "robust_b/try-1": _result("robustness", "robust_b", Verdict.FAILED),
    }
    assert _check(evidence, policy_text, accept_warned=accept_warned) == expected


def test_records_of_the_promote_task_itself_are_no_gate_upstream_of_it() -> None:
    # The promote task's id on a robustness record (and an earlier failed try of the promotion)
    # neither supplies the required gate nor is judged as one.
    evidence = {
        "promote_model/try-1": _result("robustness", "promote_model", Verdict.FAILED),
        "promote_model/try-1.promotion": _result("model-promotion", "promote_model", Verdict.FAILED),
    }
    assert _check(evidence, REFUSING) == [
        Violation(
            rule="r",
            dag_id=DAG,
            kind="missing-gate",
            message=f"policy rule 'r' requires gate robustness upstream of promote_model (PromoteModelOperator) in DAG {DAG}",
            task_id="promote_model",
            gate="robustness",
        )
    ]


def test_a_result_recorded_outside_airflow_is_named_by_its_scope() -> None:
    evidence = {"robustness/cli-20260101T000000000000Z": _result("robustness", None, Verdict.FAILED)}
    assert _check(evidence, REFUSING) == [_not_passed("robustness", "failed")]


@pytest.mark.parametrize(
    ("scope", "task", "expected"),
    [
        ("check_robustness/map-1/try-2", None, "check_robustness"),  # no context: the scope's first folder
        ("robustness/cli-20260101T000000000000Z", None, "robustness"),
        ("check_robustness", None, "check_robustness"),
        ("other/try-1", "check_robustness", "check_robustness"),  # the signed context wins over the folder name
    ],
)
def test_the_task_id_of_a_record(scope: str, task: str | None, expected: str) -> None:
    assert _task_id(scope, _result("robustness", task)) == expected


SECOND_OPINION = """\
version: 1
rules:
  - name: r
    match: {dag_id_pattern: "credit_.*"}
    thresholds: {model-scan: {second_opinion: true}}
"""


def test_recorded_values_are_normalised_per_gate_before_the_thresholds() -> None:
    # A model scan that records no second_opinion ran without one (normalised to False).
    evidence = {"scan/try-1": _result("model-scan", "scan")}
    assert _check(evidence, SECOND_OPINION) == [
        Violation(
            rule="r",
            dag_id=DAG,
            kind="threshold",
            message=(
                f"policy rule 'r' requires second_opinion of gate model-scan to be true, but task scan in DAG {DAG} sets false"
            ),
            task_id="scan",
            gate="model-scan",
            parameter="second_opinion",
        )
    ]


def test_rules_that_govern_the_promoted_model_apply_whatever_the_dag() -> None:
    policy_text = "version: 1\nrules:\n  - name: m\n    match: {models: [credit]}\n    required_gates: {promote: [robustness]}\n"
    missing = f"policy rule 'm' requires gate robustness upstream of promote_model (PromoteModelOperator) in DAG {DAG}"
    assert [v.message for v in _check({}, policy_text, models=[("credit", "prod")])] == [missing]
    assert _check({}, policy_text, models=[("other", "prod")]) == []


BY_OWNER_AND_ID = """\
version: 1
rules:
  - name: by-owner
    match: {owners: [risk]}
    thresholds: {model-scan: {second_opinion: true}}
  - name: by-id
    match: {dag_id_pattern: "credit_.*"}
    thresholds: {model-scan: {second_opinion: true}}
"""


def test_one_result_is_judged_by_the_rules_of_its_dag_id_and_owners() -> None:
    # Recorded outside Airflow (no context): the gate's name stands for the task.
    result = _result("model-scan", None, warn_only=True)

    def expected(rule: str) -> list[Violation]:
        return [
            Violation(
                rule=rule,
                dag_id=DAG,
                kind="threshold",
                message=f"policy rule '{rule}' requires second_opinion of gate model-scan to be true, but task model-scan"
                f" in DAG {DAG} sets false",
                task_id="model-scan",
                gate="model-scan",
                parameter="second_opinion",
            ),
            Violation(
                rule=rule,
                dag_id=DAG,
                kind="warn-only",
                message=f"policy rule '{rule}' forbids warn_only on gate model-scan, but task model-scan in DAG {DAG}"
                " sets warn_only=True",
                task_id="model-scan",
                gate="model-scan",
                parameter="warn_only",
            ),
        ]

    policy = parse_policy(BY_OWNER_AND_ID)
    assert check_result_against_policy(result, dag_id=DAG, owner="ops, risk", policy=policy) == [
        *expected("by-owner"),
        *expected("by-id"),
    ]
    assert check_result_against_policy(result, dag_id="other", owner=["risk"], policy=policy) == [
        *[replace_dag(v, "other") for v in expected("by-owner")]
    ]
    assert check_result_against_policy(result, dag_id="other", owner="ops", policy=policy) == []


def replace_dag(violation: Violation, dag_id: str) -> Violation:
    return dataclasses.replace(violation, dag_id=dag_id, message=violation.message.replace(DAG, dag_id))
