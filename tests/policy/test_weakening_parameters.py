"""Settings the policy does not name cannot cancel the ones it does (issue 20, item 4).

A rule that governs a gate (requires it, or sets any threshold of it) gets the product's default
bounds on every parameter that can weaken that gate. Each hostile setting of the issue is tried as
a DAG file (rejected by the cluster policy when Airflow parses it) and as evidence recorded by the
real gate engine (refused by the run-time check at promotion), under a rule that says nothing
about that parameter.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.policy.conftest import load_dags, recorded, write_dag

GOVERNS = """\
version: 1
rules:
  - name: governed
    match:
      tags: [production]
    required_gates:
      promote: [data-integrity, pii-scan, drift, data-validation, robustness, sbom, model-scan]
"""

HEADER = """\
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlsecops.operators import DataIntegrityGateOperator, DriftMonitorOperator, PIIScanGateOperator

def dag(dag_id):
    return DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), tags=["production"])
"""

PII = 'PIIScanGateOperator(task_id="scan_pii", data="/data/batch.csv"{})'
INTEGRITY = 'DataIntegrityGateOperator(task_id="check_integrity", data="/data/batch.csv", reference="/data/ref.csv"{})'
DRIFT = 'DriftMonitorOperator(task_id="detect_drift", reference="/data/ref.csv", current="/data/batch.csv"{})'
LABEL = ', label_column="defaulted"'

#: The issue's hostile settings: DAG id -> (task, the message the policy gives for it).
HOSTILE: dict[str, tuple[str, str]] = {
    "pii_one_row": (
        PII.format(", max_rows=1"),
        "requires max_rows of gate pii-scan to be at least 100000, but task scan_pii in DAG {dag} sets 1",
    ),
    "pii_every_column_allowed": (
        PII.format(', allow_columns=["age", "income", "email"]'),
        "requires allow_columns of gate pii-scan to be empty, but task scan_pii in DAG {dag} sets age, income, email",
    ),
    "integrity_without_label": (
        INTEGRITY.format(""),
        "requires has_label_column of gate data-integrity to be true, but task check_integrity in DAG {dag} sets false",
    ),
    "integrity_huge_min_class": (
        INTEGRITY.format(LABEL + ', thresholds={"label_flip_min_class_rows": 1000000000}'),
        "requires label_flip_min_class_rows of gate data-integrity to be at most 100, but task check_integrity"
        " in DAG {dag} sets 1000000000",
    ),
    "integrity_tiny_significance": (
        INTEGRITY.format(LABEL + ', thresholds={"significance": 1e-12}'),
        "requires significance of gate data-integrity to be at least 0.0001, but task check_integrity in DAG {dag} sets 1e-12",
    ),
    "integrity_ignores_every_feature": (
        INTEGRITY.format(LABEL + ', thresholds={"ignore_columns": ["age", "income"]}'),
        "requires ignore_columns of gate data-integrity to be empty, but task check_integrity in DAG {dag} sets age, income",
    ),
    "drift_one_column": (
        DRIFT.format(', columns=["age"]'),
        "requires compare_all_columns of gate drift to be true, but task detect_drift in DAG {dag} sets false",
    ),
    "drift_two_rows": (
        DRIFT.format(", max_rows=2"),
        "requires max_rows of gate drift to be at least 10000, but task detect_drift in DAG {dag} sets 2",
    ),
    "drift_evidently_share": (  # issue 21: at 0.5, two of five heavily drifted columns pass
        DRIFT.format(", drift_share=0.5"),
        "requires drift_share of gate drift to be at most 0.25, but task detect_drift in DAG {dag} sets 0.5",
    ),
}

#: The same gates with the product's defaults: the default bounds accept them.
COMPLIANT = {
    "pii_defaults": PII.format(""),
    "pii_enough_rows": PII.format(", max_rows=1000000"),
    "integrity_defaults": INTEGRITY.format(LABEL),
    "drift_defaults": DRIFT.format(""),
    "drift_every_row": DRIFT.format(", max_rows=None"),
}


def _dag_file(folder: Path, dag_id: str, task: str) -> None:
    write_dag(folder, dag_id, HEADER + textwrap.dedent(f"\nwith dag({dag_id!r}):\n    {task}\n"))


def _message(dag_id: str, text: str) -> str:
    return "policy rule 'governed' " + text.format(dag=dag_id)


@pytest.fixture
def governs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster_policy: Any) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(GOVERNS)
    monkeypatch.setenv("MLSECOPS_POLICY", str(path))
    return path


# ----------------------------------------------------------------------------- parse time
def test_the_cluster_policy_rejects_each_weakening_setting_the_rule_does_not_name(governs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    for dag_id, (task, _) in HOSTILE.items():
        _dag_file(folder, dag_id, task)
    for dag_id, task in COMPLIANT.items():
        _dag_file(folder, dag_id, task)

    dags, errors = load_dags(folder)

    for dag_id, (_, text) in HOSTILE.items():
        assert dag_id not in dags
        assert _message(dag_id, text) in errors[f"{dag_id}.py"], errors.get(f"{dag_id}.py")
        assert "[" not in errors[f"{dag_id}.py"]
    assert sorted(dags) == sorted(COMPLIANT), errors


def test_a_rule_that_names_the_parameter_decides_it(tmp_path: Path) -> None:
    """The default bounds apply only where the rule is silent: a platform loosens one by saying so."""
    from airflow_mlsecops.policy.engine import DagInfo, TaskInfo, evaluate
    from airflow_mlsecops.policy.model import parse_policy
    from airflow_mlsecops.policy.parameters import gate_arguments

    loosened = parse_policy(
        GOVERNS
        + textwrap.indent(
            textwrap.dedent(
                """\
                thresholds:
                  pii-scan: {allow_columns: [email], max_rows: 1000}
                  drift: {columns: [age, income]}
                  data-integrity: {ignore_columns: [customer_id], significance: 0.00001}
                """
            ),
            "    ",
        )
    )
    given = {
        "pii-scan": {"allow_columns": ["email"], "max_rows": 1000, "allow_empty": False},
        "drift": {
            "columns": ["age", "income", "debt_ratio"],
            "max_rows": 50_000,
            "drift_share": 0.25,
            "max_missing_change": 0.05,
            "fail_on_severe_column": True,
            "allow_empty": False,
        },
        "data-integrity": {
            "label_column": "defaulted",
            "allow_empty": False,
            "thresholds": {"ignore_columns": ["customer_id"], "significance": 0.00001},
        },
    }
    tasks = tuple(
        TaskInfo(task_id=gate, operator="Op", gate=gate, arguments=gate_arguments(gate, lambda n, v=values: v.get(n)))
        for gate, values in given.items()
    )
    info = DagInfo(dag_id="d", tasks=tasks, tags=("production",))
    assert [v.message for v in evaluate(loosened, info) if v.kind == "threshold"] == []
    narrower = DagInfo(
        dag_id="d",
        tasks=(TaskInfo("drift", "Op", "drift", arguments=gate_arguments("drift", {"columns": ["age"]}.get)),),
        tags=("production",),
    )
    assert [v.message for v in evaluate(loosened, narrower) if v.parameter == "columns"] == [
        "policy rule 'governed' requires columns of gate drift to include age, income, but task drift in DAG d sets age"
    ]


# ----------------------------------------------------------------------------- run time
def _pii(**arguments: Any) -> Any:
    from airflow_mlsecops.gates.pii import scan_pii

    return scan_pii("/nonexistent/batch.csv", **arguments).result


def _integrity(**arguments: Any) -> Any:
    from airflow_mlsecops.gates.data_integrity import check_integrity

    return check_integrity("/nonexistent/batch.csv", "/nonexistent/ref.csv", **arguments).result


def _drift(**arguments: Any) -> Any:
    from airflow_mlsecops.gates.drift import detect_drift

    return detect_drift("/nonexistent/ref.csv", "/nonexistent/batch.csv", html=False, **arguments).result


#: The same hostile settings, as the real gate engines record them: DAG id -> (task id, result).
RECORDED = {
    "pii_one_row": ("scan_pii", lambda: _pii(max_rows=1)),
    "pii_every_column_allowed": ("scan_pii", lambda: _pii(allow_columns=["age", "income", "email"])),
    "integrity_without_label": ("check_integrity", lambda: _integrity()),
    "integrity_huge_min_class": (
        "check_integrity",
        lambda: _integrity(label_column="defaulted", thresholds={"label_flip_min_class_rows": 1000000000}),
    ),
    "integrity_tiny_significance": (
        "check_integrity",
        lambda: _integrity(label_column="defaulted", thresholds={"significance": 1e-12}),
    ),
    "integrity_ignores_every_feature": (
        "check_integrity",
        lambda: _integrity(label_column="defaulted", thresholds={"ignore_columns": ["age", "income"]}),
    ),
    "drift_one_column": ("detect_drift", lambda: _drift(columns=["age"])),
    "drift_two_rows": ("detect_drift", lambda: _drift(max_rows=2)),
    "drift_evidently_share": ("detect_drift", lambda: _drift(drift_share=0.5)),
}


def _threshold_messages(results: dict[str, Any]) -> list[str]:
    from airflow_mlsecops.policy.model import parse_policy
    from airflow_mlsecops.policy.runtime import check_evidence_against_policy

    found = check_evidence_against_policy(
        results, dag_id="dag", tags=["production"], policy=parse_policy(GOVERNS), task_id="promote_model"
    )
    return [v.message for v in found if v.kind == "threshold"]


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_promotion_refuses_evidence_recorded_with_a_weakening_setting(case: str) -> None:
    task_id, record = RECORDED[case]
    result = recorded(record(), task_id)  # the engine's error verdict, as if it had passed
    assert _threshold_messages({f"{task_id}/try-1": result}) == [_message("dag", HOSTILE[case][1])]


def test_evidence_recorded_with_the_product_defaults_is_accepted() -> None:
    results = {
        "scan_pii/try-1": recorded(_pii(), "scan_pii"),
        "check_integrity/try-1": recorded(_integrity(label_column="defaulted"), "check_integrity"),
        "detect_drift/try-1": recorded(_drift(), "detect_drift"),
        "detect_drift_all/try-1": recorded(_drift(max_rows=None), "detect_drift_all"),
    }
    assert _threshold_messages(results) == []


def test_each_gate_records_the_weakening_parameters_it_applied() -> None:
    """The names the policy judges are in the evidence, so promotion judges what really ran."""
    from airflow_mlsecops.gates.data_validation import validate_data
    from airflow_mlsecops.gates.input_detection import score_batch
    from airflow_mlsecops.gates.robustness import evaluate_robustness
    from airflow_mlsecops.gates.sbom import build_and_check_sbom

    assert {"max_rows", "allow_columns", "types", "allow_empty"} <= set(_pii().policy)
    assert {"has_label_column", "allow_empty", "thresholds"} <= set(_integrity().policy)
    assert {"max_rows", "columns", "compare_all_columns", "drift_share", "allow_empty"} <= set(_drift().policy)
    anomaly = score_batch("/nonexistent/batch.csv", "/nonexistent/detector", trust_pickle=True).result.policy
    assert (anomaly["detector_from_model"], anomaly["trust_pickle"]) == (False, True)
    robust = evaluate_robustness(
        "/nonexistent/m", "/nonexistent/d.csv", label_column="y", epsilon=0.1, min_robust_accuracy=0.8, trust_pickle=True
    ).result.policy
    assert (robust["max_samples"], robust["attack_max_samples"], robust["trust_pickle"]) == (2000, 200, True)
    assert build_and_check_sbom("/nonexistent/m", python="/usr/bin/python3").result.policy["packages_from_model"] is False
    suite = {"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a", "mostly": 0.1}}]}
    validation = validate_data("/nonexistent/batch.csv", suite).result.policy
    assert validation["min_mostly"] == 0.1 and len(validation["suite_sha256"]) == 64


def test_every_gate_records_every_parameter_the_policy_judges() -> None:
    """Each name of THRESHOLD_KINDS is in what the real engine records, read as the run-time check reads it."""
    from airflow_mlsecops.gates.code_scan import scan_code
    from airflow_mlsecops.gates.data_validation import validate_data
    from airflow_mlsecops.gates.environment import check_training_environment
    from airflow_mlsecops.gates.input_detection import score_batch
    from airflow_mlsecops.gates.membership import evaluate_membership_inference
    from airflow_mlsecops.gates.membership.training_privacy import training_privacy_unavailable
    from airflow_mlsecops.gates.model_scan import scan_model
    from airflow_mlsecops.gates.robustness import evaluate_robustness
    from airflow_mlsecops.gates.sbom import build_and_check_sbom
    from airflow_mlsecops.policy.model import THRESHOLD_KINDS
    from airflow_mlsecops.policy.parameters import recorded_arguments

    suite = {"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]}
    results = {
        "pii-scan": _pii(),
        "data-integrity": _integrity(label_column="defaulted"),
        "drift": _drift(),
        "input-anomaly": score_batch("/nonexistent/batch.csv", None, model_uri="/nonexistent/model").result,
        "data-validation": validate_data("/nonexistent/batch.csv", suite).result,
        "robustness": evaluate_robustness(
            "/nonexistent/m", "/nonexistent/d.csv", label_column="y", epsilon=0.1, min_robust_accuracy=0.8
        ).result,
        "sbom": build_and_check_sbom("/nonexistent/m").result,
        "model-scan": scan_model("/nonexistent/m").result,
        "code-scan": scan_code("/nonexistent/code").result,
        "training-environment": check_training_environment("/nonexistent/m").result,
        "membership-inference": evaluate_membership_inference(
            "/nonexistent/m", "/nonexistent/t.csv", "/nonexistent/h.csv", label_column="y"
        ).result,
        "training-privacy": training_privacy_unavailable(FileNotFoundError("/nonexistent/m")).result,
    }
    assert set(results) == set(THRESHOLD_KINDS)
    for gate, result in results.items():
        arguments = recorded_arguments(gate, result.policy)
        if gate == "data-integrity":
            arguments = arguments["thresholds"]
        missing = set(THRESHOLD_KINDS[gate]) - set(arguments) - ({"columns"} if gate == "drift" else set())
        assert not missing, (gate, missing)  # drift: columns unset compares every column


def test_a_data_validation_suite_that_holds_for_few_rows_is_refused_at_parse_and_at_promotion(tmp_path: Path) -> None:
    import json

    from airflow_mlsecops.gates.data_validation import validate_data
    from airflow_mlsecops.policy.engine import DagInfo, TaskInfo, evaluate
    from airflow_mlsecops.policy.model import parse_policy
    from airflow_mlsecops.policy.parameters import gate_arguments

    suite = tmp_path / "suite.json"
    expectation = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a", "mostly": 0.01}}
    suite.write_text(json.dumps({"name": "lax", "expectations": [expectation]}))
    arguments = gate_arguments("data-validation", {"suite": str(suite), "allow_empty": False}.get)
    info = DagInfo("d", (TaskInfo("validate_data", "Op", "data-validation", arguments=arguments),), tags=("production",))
    expected = (
        "policy rule 'governed' requires min_mostly of gate data-validation to be at least 0.9,"
        " but task validate_data in DAG {dag} sets 0.01"
    )
    assert [v.message for v in evaluate(parse_policy(GOVERNS), info) if v.kind == "threshold"] == [expected.format(dag="d")]
    result = recorded(validate_data("/nonexistent/batch.csv", str(suite)).result, "validate_data")
    assert _threshold_messages({"validate_data/try-1": result}) == [expected.format(dag="dag")]


def test_operators_keep_every_row_when_the_policy_sets_a_floor_on_max_rows(governs: Path) -> None:
    """max_rows unset (every row) is stricter than any floor: the run-time policy must not sample."""
    from airflow.sdk import DAG

    from airflow_mlsecops.operators import DriftMonitorOperator, PIIScanGateOperator

    with DAG(dag_id="rows", schedule=None, start_date=datetime(2026, 1, 1), tags=["production"]) as dag:
        pii = PIIScanGateOperator(task_id="p", data="d.csv", allow_columns=["email"])
        few = PIIScanGateOperator(task_id="few", data="d.csv", max_rows=1)
        drift = DriftMonitorOperator(task_id="d", reference="r.csv", current="c.csv", max_rows=None)
    for op in (pii, few, drift):
        op.apply_policy({"dag": dag})
    assert (pii.max_rows, few.max_rows, drift.max_rows) == (None, 100_000, None)
    assert pii.allow_columns == []  # the rule lists no column that may hold personal data
