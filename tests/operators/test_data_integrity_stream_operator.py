"""``DataIntegrityGateOperator`` with ``batch_rows``: a directory of part files judged in frames as a real
Airflow task, every part named in evidence that verifies."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import credit_frame
from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id

HEADER = "from airflow_mlsecops.operators.data_integrity import DataIntegrityGateOperator"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("integrity-stream")
    credit_frame(rows=3000, seed=7).to_csv(root / "reference.csv", index=False)
    batch = credit_frame(rows=1000, seed=8)
    poisoned = pd.concat([batch, batch.iloc[:150]], ignore_index=True)
    parts = root / "poisoned"
    parts.mkdir()
    for i, start in enumerate(range(0, len(poisoned), 400)):
        poisoned.iloc[start : start + 400].to_csv(parts / f"part-{i}.csv", index=False)
    return {"reference": str(root / "reference.csv"), "parts": str(parts)}


@pytest.mark.airflow
def test_a_directory_of_parts_is_streamed_and_its_parts_are_in_the_evidence(
    airflow_db, home: Settings, files: dict[str, str], write_dag, tmp_path: Path
) -> None:
    dag_id = f"integrity_stream_{uuid.uuid4().hex[:8]}"
    dag = write_dag(
        dag_id,
        f"DataIntegrityGateOperator(task_id='integrity', data={files['parts']!r}, reference={files['reference']!r}, "
        "batch_rows=250)",
        header=HEADER,
    )
    dag_run = dag.test()
    assert dag_run.state == "failed"
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    local = store.download_dir(run_id, "mlsecops/evidence/integrity/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert [f["id"] for f in result["findings"] if not f["passed"] and f["severity"] == "high"] == ["integrity.duplicates"]
    assert result["details"]["stream"]["batch"]["parts"] == 3 and result["details"]["stream"]["batch"]["batch_rows"] == 250
    assert result["policy"]["batch_rows"] == 250
    parts = sorted(Path(files["parts"]).glob("part-*.csv"))
    digests = [s["digest"]["sha256"] for s in result["subjects"]]
    assert digests == [sha256_file(p) for p in parts] + [sha256_file(files["reference"])]
    integrity = json.loads((local / "integrity_report.json").read_text())
    duplicates = next(c for c in integrity["checks"] if c["id"] == "integrity.duplicates")
    assert duplicates["rows_total"] == 150 and duplicates["rows"][0] == 1000
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]


def test_stream_arguments_are_checked_when_the_dag_is_parsed() -> None:
    from airflow_mlsecops.operators.data_integrity import DataIntegrityGateOperator

    operator = DataIntegrityGateOperator(task_id="i", data="parts/", reference="r.csv", batch_rows=1000, sample_rows=5000)
    assert (operator.batch_rows, operator.sample_rows) == (1000, 5000)
    with pytest.raises(ValueError, match="batch_rows must be an integer of at least 1"):
        DataIntegrityGateOperator(task_id="i", data="b.csv", reference="r.csv", batch_rows=0)
    with pytest.raises(ValueError, match="sample_rows must be an integer of at least 100"):
        DataIntegrityGateOperator(task_id="i", data="b.csv", reference="r.csv", batch_rows=10, sample_rows=True)
