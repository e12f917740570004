"""``DataValidationGateOperator`` with column roles and the Spark engine, as real Airflow tasks (``dag.test()``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.operators.data_validation import DataValidationGateOperator
from tests.helpers import pipeline_run_id

SUITE = {
    "name": "loans",
    "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0}}],
}


def _loans(path: Path, *, repeat_id: bool) -> str:
    frame = pd.DataFrame({"loan_id": range(100, 140), "income": [1000.5 + i for i in range(40)], "approved": [0, 1] * 20})
    if repeat_id:
        frame.loc[39, "loan_id"] = 100
    frame.to_csv(path, index=False)
    return str(path)


def _result(home: Settings, dag_id: str, tmp_path: Path) -> dict[str, Any]:
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    local = store.download_dir(run_id, "mlsecops/evidence/validate/try-1", tmp_path / "dl")
    return dict(json.loads((local / "result.json").read_text()))


@pytest.mark.airflow
def test_a_repeated_identifier_fails_the_task_with_templated_roles(airflow_db, home: Settings, write_dag, tmp_path: Path) -> None:
    data = _loans(tmp_path / "loans.csv", repeat_id=True)
    dag_id = f"validation_roles_{uuid.uuid4().hex[:8]}"
    dag = write_dag(
        dag_id,
        f"DataValidationGateOperator(task_id='validate', data={data!r}, suite={SUITE!r}, "
        "id_columns='{{ params.ids }}', label_column='approved')",
        params={"ids": "loan_id"},
    )
    dag_run = dag.test()
    assert dag_run.state == "failed"
    result = _result(home, dag_id, tmp_path)
    assert result["verdict"] == "failed"
    assert [f["id"] for f in result["findings"] if not f["passed"]] == ["column-role.expect_column_values_to_be_unique"]
    assert result["details"]["column_roles"]["id_columns"] == ["loan_id"]
    assert result["policy"]["id_columns"] == "loan_id" and result["policy"]["label_column"] == "approved"


@pytest.mark.airflow
@pytest.mark.slow
def test_the_spark_engine_takes_its_master_from_the_airflow_connection(
    airflow_db, home: Settings, write_dag, tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLSECOPS_SPARK",
        json.dumps({"conn_type": "spark", "host": "local[2]", "extra": {"conf": {"spark.sql.shuffle.partitions": "4"}}}),
    )
    monkeypatch.setenv("MLSECOPS_SPARK_MASTER", "local[1]")  # below the connection: not used
    data = _loans(tmp_path / "loans.csv", repeat_id=False)
    dag_id = f"validation_spark_{uuid.uuid4().hex[:8]}"
    dag = write_dag(
        dag_id,
        f"DataValidationGateOperator(task_id='validate', data={data!r}, suite={SUITE!r}, id_columns=['loan_id'], engine='spark')",
    )
    dag_run = dag.test()
    assert dag_run.state == "success"
    result = _result(home, dag_id, tmp_path)
    assert result["verdict"] == "passed"
    assert result["details"]["spark"]["master"] == "local[2]"
    assert result["details"]["spark"]["master_source"] == "connection 'mlsecops_spark'"
    assert result["details"]["spark"]["conf"] == ["spark.sql.shuffle.partitions"]  # names, never values
    assert result["policy"]["engine"] == "spark"


def test_arguments_are_checked_when_the_dag_is_parsed() -> None:
    operator = DataValidationGateOperator(
        task_id="v", data="/nowhere.csv", suite=SUITE, id_columns="{{ params.ids }}", label_column="y", engine="spark"
    )
    assert operator.engine == "spark" and operator.spark_conn_id == "mlsecops_spark"
    assert {"id_columns", "features"} <= set(DataValidationGateOperator.template_fields)
    with pytest.raises(ValueError, match="unknown engine 'dask'"):
        DataValidationGateOperator(task_id="v", data="d.csv", suite=SUITE, engine="dask")
    with pytest.raises(ValueError, match="two roles"):
        DataValidationGateOperator(task_id="v", data="d.csv", suite=SUITE, id_columns=["a"], label_column="a")
    with pytest.raises(ValueError, match="spark_master must be a non-empty string"):
        DataValidationGateOperator(task_id="v", data="d.csv", suite=SUITE, spark_master="")
