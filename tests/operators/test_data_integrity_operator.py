"""``DataIntegrityGateOperator`` as a real Airflow task (``dag.test()``) recording real, verifiable evidence."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import LABEL, credit_frame
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id

HEADER = "from airflow_mlsecops.operators.data_integrity import DataIntegrityGateOperator"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("integrity")
    batch = credit_frame(rows=1000, seed=8)
    paths = {"reference": root / "reference.csv", "clean": root / "clean.csv", "poisoned": root / "poisoned.csv"}
    credit_frame(rows=3000, seed=7).to_csv(paths["reference"], index=False)
    batch.to_csv(paths["clean"], index=False)
    pd.concat([batch, batch.iloc[:150]], ignore_index=True).to_csv(paths["poisoned"], index=False)
    return {name: str(path) for name, path in paths.items()}


@pytest.mark.airflow
def test_clean_batch_passes_and_its_evidence_verifies(airflow_db, home: Settings, files: dict[str, str], write_dag) -> None:
    dag_id = f"integrity_clean_{uuid.uuid4().hex[:8]}"
    dag = write_dag(
        dag_id,
        f"""
DataIntegrityGateOperator(
    task_id="integrity",
    data="{{{{ params.batch }}}}",
    reference={files["reference"]!r},
    label_column={LABEL!r},
    thresholds={{"max_feature_shift.income": 0.2}},
)
""",
        header=HEADER,
        params={"batch": files["clean"]},
    )
    dag_run = dag.test()
    assert dag_run.state == "success"
    run_id = pipeline_run_id(home, dag_id)
    tags = MLflowEvidenceStore(home.tracking_uri).run_tags(run_id)
    assert tags["mlsecops.gate.integrity.verdict"] == "passed"
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert report.gates["integrity/try-1"]["gate"] == "data-integrity"


@pytest.mark.airflow
def test_poisoned_batch_fails_the_task_and_records_why(
    airflow_db, home: Settings, files: dict[str, str], write_dag, tmp_path: Path
) -> None:
    dag_id = f"integrity_poisoned_{uuid.uuid4().hex[:8]}"
    dag = write_dag(
        dag_id,
        f"DataIntegrityGateOperator(task_id='integrity', data={files['poisoned']!r}, reference={files['reference']!r}, "
        f"label_column={LABEL!r}, retries=2, retry_delay=timedelta(seconds=0))",
        header=HEADER,
    )
    dag_run = dag.test()
    assert dag_run.state == "failed"
    ti = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "integrity")
    assert str(ti.state) == "failed" and ti.try_number == 1  # a rejection is not retried
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.run_tags(run_id)["mlsecops.gate.integrity.verdict"] == "failed"
    local = store.download_dir(run_id, "mlsecops/evidence/integrity/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    failed = [f for f in result["findings"] if not f["passed"]]
    assert [f["id"] for f in failed] == ["integrity.duplicates"]
    assert failed[0]["owasp_ml"] == ["ML02:2023"] and failed[0]["atlas"] == ["AML.T0020"]
    integrity = json.loads((local / "integrity_report.json").read_text())
    duplicates = next(c for c in integrity["checks"] if c["id"] == "integrity.duplicates")
    assert duplicates["rows_total"] == 150 and duplicates["rows"][0] == 1000
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert report.gates["integrity/try-1"]["verdict"] == "failed"


def test_arguments_are_checked_when_the_dag_is_parsed_without_reading_files() -> None:
    from airflow_mlsecops.operators.data_integrity import DataIntegrityGateOperator

    operator = DataIntegrityGateOperator(
        task_id="i", data="/nowhere/batch.csv", reference=Path("/nowhere/ref.parquet"), thresholds={"max_label_shift": "0.2"}
    )
    assert operator.reference == "/nowhere/ref.parquet"
    assert set(DataIntegrityGateOperator.template_fields) >= {"data", "reference"}
    with pytest.raises(ValueError, match="unknown data-integrity threshold 'max_dupes'"):
        DataIntegrityGateOperator(task_id="i", data="b.csv", reference="r.csv", thresholds={"max_dupes": 0.1})
    with pytest.raises(ValueError, match="max_duplicate_share must be between 0 and 1"):
        DataIntegrityGateOperator(task_id="i", data="b.csv", reference="r.csv", thresholds={"max_duplicate_share": 2})
    with pytest.raises(ValueError, match="reference is required"):
        DataIntegrityGateOperator(task_id="i", data="b.csv", reference="")
    with pytest.raises(ValueError, match="data is required"):
        DataIntegrityGateOperator(task_id="i", data="", reference="r.csv")
    with pytest.raises(ValueError, match="random_state"):
        DataIntegrityGateOperator(task_id="i", data="b.csv", reference="r.csv", random_state="0")


@pytest.mark.airflow
def test_a_reference_that_cannot_be_fetched_is_a_recorded_error_and_retried(
    airflow_db, home: Settings, files: dict[str, str], write_dag, tmp_path: Path
) -> None:
    """The operator loads its inputs first; one it cannot fetch is the gate's error verdict, recorded with its policy."""
    dag_id = f"integrity_unfetchable_{uuid.uuid4().hex[:8]}"
    missing = "runs:/0123456789abcdef/data/reference.csv"
    dag = write_dag(
        dag_id,
        f"DataIntegrityGateOperator(task_id='integrity', data={files['clean']!r}, reference={missing!r}, "
        f"label_column={LABEL!r}, thresholds={{'max_duplicate_share': 0.02}}, retries=1, retry_delay=timedelta(seconds=0))",
        header=HEADER,
    )
    dag_run = dag.test()
    assert dag_run.state == "failed"
    ti = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "integrity")
    assert str(ti.state) == "failed" and ti.try_number == 2  # an error verdict is retried
    run_id = pipeline_run_id(home, dag_id)
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert {scope: g["verdict"] for scope, g in report.gates.items()} == {"integrity/try-1": "error", "integrity/try-2": "error"}
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    local = store.download_dir(run_id, "mlsecops/evidence/integrity/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["findings"][0]["id"] == "gate.could-not-run" and missing in result["summary"]
    assert result["policy"]["reference"] == missing and result["policy"]["thresholds"]["max_duplicate_share"] == 0.02
