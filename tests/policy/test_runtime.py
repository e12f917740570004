"""The run-time check on recorded evidence: same messages as at parse time, plus what only the
evidence can show (a gate that did not pass, too few approvers, an edited DAG); and the run-time
half inside every gate task (``BaseGateOperator.execute`` applies the policy), run for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.policy.airflow_dag import dag_info
from airflow_mlsecops.policy.engine import evaluate
from airflow_mlsecops.policy.model import load_policy
from airflow_mlsecops.policy.runtime import check_evidence_against_policy, check_result_against_policy
from tests.helpers import pipeline_run_id, run_dag_states, unique_dag_id, write_csv
from tests.policy.conftest import gate_result, load_dags, recorded, training_dag_source, training_evidence
from tests.policy.conftest import write_dag as write_dag_file

DAG_ID = "credit_compliant"


def check(evidence: dict[str, Any], policy: Path, **kwargs: Any) -> list[str]:
    options: dict[str, Any] = {"dag_id": DAG_ID, "tags": ["production"], "owner": "airflow", "task_id": "promote_model"}
    options.update(kwargs)
    return [v.message for v in check_evidence_against_policy(evidence, policy=policy, **options)]


def parse_time(tmp_path: Path, policy: Path, source: str) -> list[str]:
    write_dag_file(tmp_path / "dags", "d", source)
    dags, errors = load_dags(tmp_path / "dags")
    assert errors == {}
    return [v.message for v in evaluate(load_policy(policy), dag_info(dags[DAG_ID]))]


def test_compliant_evidence_passes(policy_file: Path) -> None:
    assert check(training_evidence("compliant"), policy_file, required_approvals=2) == []
    assert check(training_evidence("gate_missing"), policy_file, tags=["staging"]) == []  # no rule applies


def test_a_gate_marked_success_by_hand_left_no_evidence(policy_file: Path) -> None:
    evidence = training_evidence("compliant")
    del evidence["scan_model/try-1"]
    assert check(evidence, policy_file) == [
        "policy rule 'production-models' requires gate model-scan upstream of promote_model"
        f" (PromoteModelOperator) in DAG {DAG_ID}"
    ]


def test_the_latest_attempt_of_a_required_gate_must_have_passed(policy_file: Path) -> None:
    evidence = training_evidence("compliant")
    robust = gate_result("robustness")
    evidence["check_robustness/try-2"] = recorded(robust, "check_robustness", try_number=2, verdict="failed")
    assert check(evidence, policy_file) == [
        f"policy rule 'production-models' requires gate robustness to pass before promote_model (PromoteModelOperator)"
        f" in DAG {DAG_ID}, but task check_robustness recorded failed"
    ]
    evidence["check_robustness/try-3"] = recorded(robust, "check_robustness", try_number=3)
    assert check(evidence, policy_file) == []


def test_an_earlier_try_of_the_promote_task_is_not_a_gate(policy_file: Path) -> None:
    evidence = training_evidence("compliant")
    evidence["promote_model/try-1"] = recorded(gate_result("model-promotion"), "promote_model", verdict="failed")
    assert check(evidence, policy_file) == []


def test_warn_only_and_a_lowered_promote_quorum_give_the_parse_time_messages(tmp_path: Path, policy_file: Path) -> None:
    source = training_dag_source("compliant").replace("min_robust_accuracy=0.8,", "min_robust_accuracy=0.8, warn_only=True,")
    source = source.replace('version="1", required_approvals=2', 'version="1", required_approvals=1')
    expected = parse_time(tmp_path, policy_file, source)
    assert expected == [
        f"policy rule 'production-models' requires required_approvals of gate model-promotion to be at least 2,"
        f" but task promote_model in DAG {DAG_ID} sets 1",
        f"policy rule 'production-models' forbids warn_only on gate robustness, but task check_robustness in DAG {DAG_ID}"
        " sets warn_only=True",
    ]
    evidence = training_evidence("compliant")
    evidence["check_robustness/try-1"] = recorded(gate_result("robustness", warn_only=True), "check_robustness")
    assert check(evidence, policy_file, required_approvals=1) == expected


def test_the_sbom_severities_as_recorded_by_the_gate(tmp_path: Path, policy_file: Path) -> None:
    source = training_dag_source("compliant").replace(
        "    promote = ",
        '    sbom = SBOMGateOperator(task_id="build_sbom", model="/models/m", fail_on="critical")\n    promote = ',
    )
    expected = parse_time(tmp_path, policy_file, source)
    assert expected == [
        f"policy rule 'production-models' requires fail_on of gate sbom to include critical, high, unknown,"
        f" but task build_sbom in DAG {DAG_ID} sets critical"
    ]
    evidence = training_evidence("compliant")
    evidence["build_sbom/try-1"] = recorded(gate_result("sbom", fail_on="critical"), "build_sbom")
    assert check(evidence, policy_file, required_approvals=2) == expected


def test_the_gates_record_the_values_the_policy_checks() -> None:
    from airflow_mlsecops.policy.model import THRESHOLD_KINDS

    for gate, kwargs in {
        "robustness": {},
        "sbom": {"fail_on": ["critical"]},
        "model-scan": {},
        "drift": {"drift_share": 0.4},
    }.items():
        result = gate_result(gate, **kwargs)
        assert set(THRESHOLD_KINDS[gate]) <= set(result.policy), gate


def test_without_a_task_id_the_message_names_the_promote_step(policy_file: Path) -> None:
    evidence = training_evidence("gate_missing")
    assert check(evidence, policy_file, task_id=None) == [
        "policy rule 'production-models' requires gate robustness upstream of the promote step"
        f" (PromoteModelOperator) in DAG {DAG_ID}"
    ]


@pytest.mark.parametrize("owner", ["risk, ops", ["risk"]])
def test_rules_are_selected_by_owner(tmp_path: Path, owner: Any) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nrules:\n  - name: risk\n    match: {owners: [risk]}\n    required_gates: {promote: [sbom]}\n")
    assert check({}, policy, owner=owner) == [
        f"policy rule 'risk' requires gate sbom upstream of promote_model (PromoteModelOperator) in DAG {DAG_ID}"
    ]
    assert check({}, policy, owner="ops") == []


def test_one_gate_result_checks_itself(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nrules:\n  - name: monitoring\n    match: {tags: [monitoring]}\n    thresholds: {drift: {drift_share: 0.5}}\n"
    )
    loose = recorded(gate_result("drift", drift_share=0.8), "detect_drift", warn_only=True)
    assert [v.message for v in check_result_against_policy(loose, dag_id="m", tags=["monitoring"], policy=policy)] == [
        "policy rule 'monitoring' requires drift_share of gate drift to be at most 0.5, but task detect_drift in DAG m sets 0.8",
        "policy rule 'monitoring' forbids warn_only on gate drift, but task detect_drift in DAG m sets warn_only=True",
    ]
    strict = recorded(gate_result("drift", drift_share=0.5), "detect_drift")
    assert check_result_against_policy(strict, dag_id="m", tags=["monitoring"], policy=policy) == []
    assert check_result_against_policy(loose, dag_id="m", tags=["other"], policy=policy) == []


# ----------------------------------------------------------------------------- inside the gate task, at run time
#: A rule that narrows the PII gate's exemptions: only ``id`` may hold personal data.
NARROWING_POLICY = """\
version: 1
rules:
  - name: no-pii-exemptions
    match: {dag_id_pattern: "policy_runtime_.*"}
    thresholds:
      pii-scan: {allow_columns: [id]}
"""


def _pii_gate_dag(write_dag: Any, tmp_path: Path) -> Any:
    """A PII gate whose DAG exempts the ``contact`` column, which holds e-mail addresses."""
    data = write_csv(tmp_path, {"id": [1, 2, 3], "contact": ["ann.smith@example.com", "bob@example.org", "x@example.net"]})
    source = f"PIIScanGateOperator(task_id='pii', data={data!r}, allow_columns=['contact'], retries=2)"
    header = "from airflow_mlsecops.operators.pii import PIIScanGateOperator"
    return write_dag(unique_dag_id("policy_runtime"), source, header=header)


@pytest.mark.airflow
def test_the_gate_task_applies_the_policy_at_run_time(
    airflow_db, home: Any, tmp_path: Path, write_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DAG was loaded with no policy configured (as when no cluster policy is installed); at run
    time the platform policy narrows ``allow_columns``, so the e-mail column the DAG exempted fails the
    gate. Guards the ``apply_policy`` call in ``BaseGateOperator.execute``."""
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.verification import verify_run

    dag = _pii_gate_dag(write_dag, tmp_path)
    _, states = run_dag_states(dag)
    assert states == {"pii": "success"}, states  # the DAG's own exemption lets the gate pass

    policy = tmp_path / "policy.yaml"
    policy.write_text(NARROWING_POLICY)
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    with_policy, states = run_dag_states(dag)
    assert with_policy.state == "failed" and states == {"pii": "failed"}, states
    store = MLflowEvidenceStore(home.tracking_uri)
    report = verify_run(pipeline_run_id(store, dag.dag_id, run_id=with_policy.run_id), settings=home, store=store)
    (result,) = [r for r in report.results.values() if r.gate == "pii-scan"]
    assert result.verdict.value == "failed"
    assert result.policy["allow_columns"] == []  # the policy's narrowing, as recorded by the gate
    assert [f.id for f in result.failed_findings] and all("contact" in f.message for f in result.failed_findings)


@pytest.mark.airflow
def test_a_broken_policy_fails_the_gate_task_without_retry(
    airflow_db, home: Any, tmp_path: Path, write_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configured policy that does not parse fails the gate task at once (no retry, though the task
    has retries) and nothing is recorded as the gate's verdict: fail closed, at run time."""
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    dag = _pii_gate_dag(write_dag, tmp_path)
    broken = tmp_path / "broken-policy.yaml"
    broken.write_text("version: 1\nrules:\n  - name: [not, a, name]\n")
    monkeypatch.setenv("MLSECOPS_POLICY", str(broken))
    dag_run, states = run_dag_states(dag)
    assert dag_run.state == "failed" and states == {"pii": "failed"}, states
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 1  # AirflowFailException: not retried
    store = MLflowEvidenceStore(home.tracking_uri)
    experiment = store.client.get_experiment_by_name(dag.dag_id)
    runs = [] if experiment is None else store.client.search_runs([experiment.experiment_id])
    assert all(not store.list_evidence(r.info.run_id) for r in runs)  # the gate never ran
