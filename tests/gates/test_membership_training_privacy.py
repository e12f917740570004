"""The training-privacy gate: DP guarantees declared on a real MLflow run, judged against a real policy."""

from __future__ import annotations

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Subject, Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.membership.training_privacy import (
    DP_TAGS,
    check_training_privacy,
    declare_dp_guarantee,
    dp_guarantee_tags,
    read_declaration,
    training_privacy_unavailable,
)
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.policy.model import parse_policy

MODEL = Subject("/models/credit", "a" * 64)
POLICY = """\
version: 1
rules:
  - name: all
    match: {dag_id_pattern: ".*"}
    required_gates: {promote: [training-privacy]}
sensitive_data:
  - name: customer-loans
    match: ["*/loans*.csv"]
    training: {max_epsilon: 8, max_delta: 1.0e-5}
  - name: loans-strict
    match: ["*/loans-eu*.csv"]
    training: {max_epsilon: 2}
  - name: logs
    match: ["*/logs/*"]
    evidence: {epsilon_per_release: 0.5, total_epsilon: 5}
"""


@pytest.fixture
def store(home: Settings) -> MLflowEvidenceStore:
    return MLflowEvidenceStore(home.tracking_uri, home.artifact_root)


def declared_run(store: MLflowEvidenceStore, **guarantee: object) -> str:
    run_id = store.create_run(experiment_name="training", run_name="train")
    if guarantee:
        declare_dp_guarantee(run_id, store=store, **guarantee)  # type: ignore[arg-type]
    return run_id


def check(store: MLflowEvidenceStore, run_id: str, data: str, **kwargs: object):
    entries = parse_policy(POLICY).sensitive_data
    return check_training_privacy(
        read_declaration(store, run_id),
        training_run_id=run_id,
        model=MODEL,
        training_data=[data],
        sensitive_entries=entries,
        **kwargs,
    ).result


def test_a_guarantee_declared_on_the_run_meets_the_sensitive_data_requirement(store: MLflowEvidenceStore) -> None:
    run_id = declared_run(store, epsilon=3.0, delta=1e-6, mechanism="dp-sgd", library="opacus==1.5.2")
    assert set(DP_TAGS) <= set(store.run_tags(run_id))
    result = check(store, run_id, "/data/loans-2026.csv")
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.details["sensitive_data"] == "customer-loans"
    assert result.metrics == {"epsilon": 3.0, "delta": 1e-6, "max_epsilon": 8.0, "max_delta": 1e-5}
    assert result.subjects[0] == MODEL
    assert result.policy["sensitive_data"]["training"] == {"max_epsilon": 8.0, "max_delta": 1e-5}


def test_no_guarantee_on_sensitive_data_is_rejected(store: MLflowEvidenceStore) -> None:
    result = check(store, declared_run(store), "/data/loans-2026.csv")
    assert result.verdict is Verdict.FAILED
    assert [f.id for f in result.failed_findings] == ["training-privacy.no-guarantee"]
    assert "declares no DP guarantee (missing mlsecops.dp.epsilon, mlsecops.dp.delta)" in result.failed_findings[0].message


@pytest.mark.parametrize(("epsilon", "delta"), [(9.0, 1e-6), (3.0, 1e-4)])
def test_a_weaker_guarantee_is_rejected(store: MLflowEvidenceStore, epsilon: float, delta: float) -> None:
    run_id = declared_run(store, epsilon=epsilon, delta=delta, mechanism="dp-sgd", library="opacus")
    result = check(store, run_id, "/data/loans-2026.csv")
    assert result.verdict is Verdict.FAILED
    assert "the declared guarantee is weaker" in result.failed_findings[0].message


def test_the_strictest_matching_entry_wins(store: MLflowEvidenceStore) -> None:
    run_id = declared_run(store, epsilon=3.0, delta=0.0, mechanism="dp-sgd", library="opacus")
    assert check(store, run_id, "/data/loans-2026.csv").verdict is Verdict.PASSED
    strict = check(store, run_id, "/data/loans-eu-2026.csv")  # both entries match: epsilon <= 2, delta <= 0
    assert strict.verdict is Verdict.FAILED
    assert strict.metrics["max_epsilon"] == 2.0 and strict.metrics["max_delta"] == 0.0


def test_an_unreadable_declaration_is_no_guarantee(store: MLflowEvidenceStore) -> None:
    run_id = declared_run(store)
    store.log_tags_and_metrics(run_id, {"mlsecops.dp.epsilon": "small", "mlsecops.dp.delta": "0"}, {})
    result = check(store, run_id, "/data/loans-2026.csv")
    assert result.verdict is Verdict.FAILED
    assert "unreadable DP guarantee" in result.failed_findings[0].message
    store.log_tags_and_metrics(run_id, {"mlsecops.dp.epsilon": "inf"}, {})
    assert check(store, run_id, "/data/loans-2026.csv").verdict is Verdict.FAILED


def test_params_count_as_a_declaration_too(store: MLflowEvidenceStore) -> None:
    run_id = declared_run(store)
    store.client.log_param(run_id, "mlsecops.dp.epsilon", "1.5")
    store.client.log_param(run_id, "mlsecops.dp.delta", "0")
    assert check(store, run_id, "/data/loans-2026.csv").verdict is Verdict.PASSED


def test_data_not_marked_sensitive_passes_with_a_note(store: MLflowEvidenceStore) -> None:
    for data in ("/data/iris.csv", "/srv/logs/today.csv"):  # logs: sensitive for evidence, no training requirement
        result = check(store, declared_run(store), data)
        assert result.verdict is Verdict.PASSED
        assert [f.id for f in result.findings] == ["training-privacy.not-required"]


def test_without_a_policy_the_tasks_own_limits_apply(store: MLflowEvidenceStore) -> None:
    run_id = declared_run(store, epsilon=5.0, delta=0.0, mechanism="dp-sgd", library="opacus")
    declared = read_declaration(store, run_id)

    def verdict(**limits: float) -> Verdict:
        return check_training_privacy(declared, training_run_id=run_id, model=MODEL, training_data=["/d/x.csv"], **limits).verdict  # type: ignore[arg-type]

    assert verdict() is Verdict.PASSED
    assert verdict(max_epsilon=8) is Verdict.PASSED
    assert verdict(max_epsilon=4) is Verdict.FAILED
    # The task's limit and the policy's: the stricter wins.
    sensitive = check(store, run_id, "/data/loans-2026.csv", max_epsilon=4)
    assert sensitive.verdict is Verdict.FAILED and sensitive.metrics["max_epsilon"] == 4.0


def test_a_digest_pattern_marks_data_sensitive(store: MLflowEvidenceStore) -> None:
    entries = parse_policy(POLICY.replace('["*/loans*.csv"]', f'["sha256:{"b" * 64}"]')).sensitive_data
    declared = read_declaration(store, declared_run(store))
    result = check_training_privacy(
        declared,
        training_run_id="r",
        model=MODEL,
        training_data=["/x.csv"],
        training_data_sha256=["b" * 64],
        sensitive_entries=entries,
    ).result
    assert result.verdict is Verdict.FAILED


def test_an_unknown_run_or_bad_limit_is_an_error_never_a_pass(store: MLflowEvidenceStore) -> None:
    with pytest.raises(ConfigurationError):
        read_declaration(store, "0" * 32)
    assert training_privacy_unavailable(ConfigurationError("no run")).verdict is Verdict.ERROR
    with pytest.raises(ConfigurationError):
        check_training_privacy({}, training_run_id="r", model=MODEL, max_epsilon=-1)


@pytest.mark.parametrize("bad", [{"epsilon": -1}, {"epsilon": float("nan")}, {"delta": 1.0}, {"mechanism": " "}])
def test_declaring_an_impossible_guarantee_is_refused(bad: dict) -> None:
    arguments = {"epsilon": 1.0, "delta": 0.0, "mechanism": "dp-sgd", "library": "opacus", **bad}
    with pytest.raises(ConfigurationError):
        dp_guarantee_tags(**arguments)
