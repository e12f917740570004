"""Gate operators run as real Airflow tasks (``dag.test()``) against real MLflow and ledger stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id, run_dag, unique_dag_id, write_csv

pytestmark = pytest.mark.airflow

SUITE = {
    "name": "s",
    "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 10}}],
}


def test_passing_gate_succeeds_and_leaves_verifiable_evidence(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("passing")
    data = write_csv(tmp_path, [1, 2, 3])
    dag = write_dag(
        dag_id,
        f"""
gate = DataValidationGateOperator(task_id="validate", data={data!r}, suite={SUITE!r})
sign = ProvenanceSignOperator(task_id="sign", artifacts=[{data!r}])

@task
def downstream(summary: dict) -> str:
    assert summary["verdict"] == "passed" and summary["evidence"]["ledger_seq"] >= 1
    return summary["verdict"]

gate >> sign
downstream(gate.output)
""",
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "success"
    assert {t: str(ti.state) for t, ti in tis.items()} == {"validate": "success", "sign": "success", "downstream": "success"}
    run_id = pipeline_run_id(home, dag_id)
    tags = MLflowEvidenceStore(home.tracking_uri).run_tags(run_id)
    assert tags["mlsecops.gate.validate.verdict"] == "passed"
    assert tags["mlsecops.gate.sign.verdict"] == "passed"
    assert tags["mlsecops.run_id"] == dag_run.run_id
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert report.gates["validate/try-1"]["gate"] == "data-validation"


def test_rejecting_gate_fails_without_retry_and_records_why(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("rejecting")
    data = write_csv(tmp_path, [1, 99])
    dag = write_dag(
        dag_id,
        f"DataValidationGateOperator(task_id='validate', data={data!r}, suite={SUITE!r}, retries=3, "
        "retry_delay=timedelta(seconds=0))",
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert str(tis["validate"].state) == "failed"
    assert tis["validate"].try_number == 1  # AirflowFailException: no retry
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.run_tags(run_id)["mlsecops.gate.validate.verdict"] == "failed"
    local = store.download_dir(run_id, "mlsecops/evidence/validate/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["verdict"] == "failed"
    assert "1 of 2 values unexpected" in result["findings"][0]["message"]
    assert verify_run(run_id, settings=home).ok


def test_gate_that_cannot_run_is_retried_and_each_try_is_recorded(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("erroring")
    missing = str(tmp_path / "never.csv")
    dag = write_dag(
        dag_id,
        f"DataValidationGateOperator(task_id='validate', data={missing!r}, suite={SUITE!r}, retries=1, "
        "retry_delay=timedelta(seconds=0))",
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert tis["validate"].try_number == 2
    report = verify_run(pipeline_run_id(home, dag_id), settings=home)
    assert report.ok
    assert {scope: g["verdict"] for scope, g in report.gates.items()} == {"validate/try-1": "error", "validate/try-2": "error"}


def test_warn_only_gate_succeeds_but_says_warned(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("warning")
    data = write_csv(tmp_path, [99])
    dag = write_dag(dag_id, f"DataValidationGateOperator(task_id='validate', data={data!r}, suite={SUITE!r}, warn_only=True)")
    dag_run, _ = run_dag(dag)
    assert dag_run.state == "success"
    tags = MLflowEvidenceStore(home.tracking_uri).run_tags(pipeline_run_id(home, dag_id))
    assert tags["mlsecops.gate.validate.verdict"] == "warned"


def test_gate_fails_closed_when_evidence_cannot_be_recorded(
    airflow_db, home: Settings, tmp_path: Path, write_dag, monkeypatch
) -> None:
    monkeypatch.setenv("MLSECOPS_LEDGER_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    dag_id = unique_dag_id("unrecorded")
    data = write_csv(tmp_path, [1])
    dag = write_dag(dag_id, f"DataValidationGateOperator(task_id='validate', data={data!r}, suite={SUITE!r})")
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert str(tis["validate"].state) == "failed"


def test_missing_signing_key_fails_the_task(airflow_db, home: Settings, tmp_path: Path, write_dag, monkeypatch) -> None:
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", str(tmp_path / "absent.pem"))
    dag_id = unique_dag_id("nokey")
    data = write_csv(tmp_path, [1])
    dag = write_dag(dag_id, f"ProvenanceSignOperator(task_id='sign', artifacts=[{data!r}])")
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert str(tis["sign"].state) == "failed"


def test_templated_arguments_are_rendered(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("templated")
    data = write_csv(tmp_path, [5])
    dag = write_dag(
        dag_id,
        f"DataValidationGateOperator(task_id='validate', data='{{{{ params.path }}}}', suite={SUITE!r}, "
        "experiment_name='custom-{{ dag.dag_id }}')",
        params={"path": data},
    )
    dag_run, _ = run_dag(dag)
    assert dag_run.state == "success"
    assert MLflowEvidenceStore(home.tracking_uri).client.get_experiment_by_name(f"custom-{dag_id}") is not None


def test_bad_arguments_fail_at_parse_time() -> None:
    from airflow_mlsecops.operators import DataValidationGateOperator, ProvenanceSignOperator

    with pytest.raises(ValueError, match="suite is required"):
        DataValidationGateOperator(task_id="v", data="x.csv", suite="")
    with pytest.raises(ValueError, match="at least one"):
        ProvenanceSignOperator(task_id="s", artifacts=[])
    with pytest.raises(ValueError, match="warn_only"):
        DataValidationGateOperator(task_id="v", data="x.csv", suite="s.json", warn_only="yes")


def test_mlflow_link_is_stored_when_a_ui_url_is_configured(
    airflow_db, home: Settings, tmp_path: Path, write_dag, monkeypatch
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    monkeypatch.setenv("MLSECOPS_MLFLOW_UI_URL", "http://mlflow.example:5000/")
    dag_id = unique_dag_id("linked")
    data = write_csv(tmp_path, [1])
    dag = write_dag(dag_id, f"ProvenanceSignOperator(task_id='sign', artifacts=[{data!r}])")
    run_dag(dag)
    run_id = pipeline_run_id(home, dag_id)
    with create_session() as session:
        row = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.key == "_link_MLflowEvidenceLink").one()
        link = row.value if isinstance(row.value, str) else json.loads(row.value)
    assert link.startswith("http://mlflow.example:5000/#/experiments/")
    assert link.endswith(f"/runs/{run_id}")


def test_data_operators_load_stored_data_and_turn_a_failed_fetch_into_their_error_verdict(home: Settings, tmp_path: Path) -> None:
    """Each data operator loads its table through the evidence hook's store (named by its URI in the
    evidence); data it cannot fetch is the gate's own error verdict, with the gate's policy."""
    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
    from airflow_mlsecops.evidence.digest import sha256_file
    from airflow_mlsecops.evidence.models import PipelineContext, Verdict
    from airflow_mlsecops.operators import (
        DataIntegrityGateOperator,
        DataValidationGateOperator,
        PIIScanGateOperator,
        RobustnessGateOperator,
    )

    frame = credit_frame(rows=400, seed=3)
    data = tmp_path / "credit.csv"
    frame.to_csv(data, index=False)
    model_dir = tmp_path / "model"
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    mlflow.sklearn.save_model(LogisticRegression(max_iter=500).fit(frame[list(FEATURES)], frame[LABEL]), str(model_dir))
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="training", run_name="ingest")
    store.client.log_artifact(run_id, str(data), "data")
    stored, missing = f"runs:/{run_id}/data/credit.csv", f"runs:/{run_id}/data/nothing-here.csv"
    pipeline = PipelineContext(dag_id="training", run_id="r1", task_id="t")
    suite = {"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": LABEL}}]}
    operators = {
        "data-validation": lambda where: DataValidationGateOperator(task_id="v", data=where, suite=suite),
        "pii-scan": lambda where: PIIScanGateOperator(task_id="p", data=where, max_rows=100),
        "data-integrity": lambda where: DataIntegrityGateOperator(
            task_id="i", data=where, reference=str(data), label_column=LABEL, random_state=2
        ),
        "robustness": lambda where: RobustnessGateOperator(
            task_id="r", model=str(model_dir), data=where, label_column=LABEL, epsilon=0.01, min_robust_accuracy=0.0
        ),
    }
    for gate, make in operators.items():
        loaded = make(stored).evaluate({}, pipeline)
        assert loaded.result.gate == gate and loaded.verdict is not Verdict.ERROR, (gate, loaded.result.summary)
        assert (stored, sha256_file(data)) in [(s.name, s.sha256) for s in loaded.result.subjects], gate
        gone = make(missing).evaluate({}, pipeline)
        assert gone.verdict is Verdict.ERROR and gone.result.gate == gate and gone.error is not None, gate
        assert "nothing-here" in gone.result.summary and gone.result.context == pipeline, gate
        assert gone.result.policy == loaded.result.policy, gate


def test_an_empty_batch_fails_the_task_unless_allowed(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    """No data to check is never a pass: a header-only file is an error verdict (even warn-only), retried, then
    the task fails; allow_empty=True lets it through as warned (incomplete), with the flag in the signed policy."""
    dag_id = unique_dag_id("empty")
    empty = tmp_path / "empty.csv"
    empty.write_text("x\n")
    dag = write_dag(
        dag_id,
        f"""
refused = DataValidationGateOperator(
    task_id="refused", data={str(empty)!r}, suite={SUITE!r}, warn_only=True, retries=1, retry_delay=timedelta(seconds=0)
)
allowed = DataValidationGateOperator(task_id="allowed", data={str(empty)!r}, suite={SUITE!r}, allow_empty=True)
""",
    )
    _, tis = run_dag(dag)
    assert str(tis["refused"].state) == "failed" and tis["refused"].try_number == 2
    assert str(tis["allowed"].state) == "success"
    report = verify_run(pipeline_run_id(home, dag_id), settings=home)
    assert report.ok
    verdicts = {scope: g["verdict"] for scope, g in report.gates.items()}
    # allowed, but nothing was checked: warned (incomplete), never passed
    assert verdicts == {"refused/try-1": "error", "refused/try-2": "error", "allowed/try-1": "warned"}
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    local = store.download_dir(pipeline_run_id(home, dag_id), "mlsecops/evidence/allowed/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["policy"]["allow_empty"] is True
    assert "data-validation.empty-batch" in [f["id"] for f in result["findings"]]


def test_allow_empty_must_be_a_bool_at_parse_time() -> None:
    from airflow_mlsecops.operators import (
        DataIntegrityGateOperator,
        DataValidationGateOperator,
        DriftMonitorOperator,
        InputAnomalyGateOperator,
        PIIScanGateOperator,
    )

    for make in (
        lambda flag: DataValidationGateOperator(task_id="v", data="x.csv", suite="s.json", allow_empty=flag),
        lambda flag: DataIntegrityGateOperator(task_id="i", data="x.csv", reference="r.csv", allow_empty=flag),
        lambda flag: PIIScanGateOperator(task_id="p", data="x.csv", allow_empty=flag),
        lambda flag: DriftMonitorOperator(task_id="d", reference="r.csv", current="x.csv", allow_empty=flag),
        lambda flag: InputAnomalyGateOperator(task_id="a", data="x.csv", model="m", allow_empty=flag),
    ):
        with pytest.raises(ValueError, match="allow_empty must be True or False"):
            make("true")
        assert make(True).allow_empty is True and make(False).allow_empty is False
