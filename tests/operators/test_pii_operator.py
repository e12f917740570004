"""``PIIScanGateOperator`` as a real Airflow task (``dag.test()``) recording into real MLflow and ledger stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id, run_dag, unique_dag_id, write_csv

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators.pii import PIIScanGateOperator"
RAW_PII = ["ann.smith@example.com", "123-45-6789", "4111 1111 1111 1111", "+1 (415) 555-2671"]


def _pii_file(tmp_path: Path) -> str:
    return write_csv(tmp_path, {"id": [1, 2, 3, 4], "contact": RAW_PII, "note": ["a", "b", "c", "d"]})


def test_clean_file_passes_with_verifiable_evidence(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("pii_clean")
    data = write_csv(
        tmp_path, {"id": [1, 2, 3], "city": ["Berlin", "Paris", "Oslo"], "when": ["2024-01-15", "2024-02-01", "10:30"]}
    )
    dag = write_dag(
        dag_id,
        f"""
gate = PIIScanGateOperator(task_id="pii", data={data!r})

@task
def downstream(summary: dict) -> str:
    assert summary["verdict"] == "passed" and summary["metrics"]["pii_cells"] == 0
    return summary["verdict"]

downstream(gate.output)
""",
        header=HEADER,
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "success"
    assert {t: str(ti.state) for t, ti in tis.items()} == {"pii": "success", "downstream": "success"}
    run_id = pipeline_run_id(home, dag_id)
    assert MLflowEvidenceStore(home.tracking_uri).run_tags(run_id)["mlsecops.gate.pii.verdict"] == "passed"
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert report.gates["pii/try-1"]["gate"] == "pii-scan"


def test_pii_file_fails_without_retry_and_records_masked_evidence(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("pii_leaky")
    data = _pii_file(tmp_path)
    dag = write_dag(
        dag_id,
        f"PIIScanGateOperator(task_id='pii', data={data!r}, retries=3, retry_delay=timedelta(seconds=0))",
        header=HEADER,
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert str(tis["pii"].state) == "failed"
    assert tis["pii"].try_number == 1  # AirflowFailException: a rejection is not retried
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.run_tags(run_id)["mlsecops.gate.pii.verdict"] == "failed"
    local = store.download_dir(run_id, "mlsecops/evidence/pii/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["verdict"] == "failed"
    assert {f["id"] for f in result["findings"]} == {"pii.email", "pii.us_ssn", "pii.credit_card", "pii.phone"}
    assert result["context"]["task_id"] == "pii"
    pii_report = json.loads((local / "pii_report.json").read_text())
    assert pii_report["columns"]["contact"]["types"]["us_ssn"]["samples_masked"] == ["***-**-6789"]
    evidence = "\n".join(p.read_text(errors="replace") for p in local.rglob("*") if p.is_file())
    for raw in RAW_PII:
        assert raw not in evidence
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert report.gates["pii/try-1"]["verdict"] == "failed"


def test_templated_allow_columns_let_an_allowed_column_pass(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = unique_dag_id("pii_allowed")
    data = _pii_file(tmp_path)
    dag = write_dag(
        dag_id,
        "PIIScanGateOperator(task_id='pii', data='{{ params.path }}', allow_columns='{{ params.allow }}', "
        "types=['email', 'us_ssn'], max_rows=3)",
        header=HEADER,
        params={"path": data, "allow": "note,contact"},
    )
    dag_run, _ = run_dag(dag)
    assert dag_run.state == "success"
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    # a sample of 3 of 4 rows: the row left out was never scanned, so warned (incomplete), never passed
    assert store.run_tags(run_id)["mlsecops.gate.pii.verdict"] == "warned"
    result = json.loads((store.download_dir(run_id, "mlsecops/evidence/pii/try-1", tmp_path / "dl") / "result.json").read_text())
    assert result["policy"]["allow_columns"] == ["note", "contact"]
    assert result["metrics"]["rows_scanned"] == 3 and result["details"]["sampled"] is True
    seed = result["details"]["sample_seed"]
    assert isinstance(seed, int)  # a random sample of 3 of the 4 rows, its seed on record
    from airflow_mlsecops.gates.pii import sample_rows

    rows = set(sample_rows(4, 3, seed).tolist())  # row 0 holds the e-mail, row 1 the SSN
    expected = {("pii.email", True, "info")} if 0 in rows else set()
    expected |= {("pii.us_ssn", True, "info")} if 1 in rows else set()
    expected |= {("pii-scan.rows-not-scanned", False, "low")}
    assert {(f["id"], f["passed"], f["severity"]) for f in result["findings"]} == expected
    assert result["details"]["not_performed"] == ["pii-scan.rows-not-scanned"]
    assert verify_run(run_id, settings=home).ok


def test_bad_arguments_fail_at_parse_time() -> None:
    from airflow_mlsecops.operators.pii import PIIScanGateOperator

    with pytest.raises(ValueError, match="passport"):
        PIIScanGateOperator(task_id="p", data="x.csv", types=["email", "passport"])
    with pytest.raises(ValueError, match="no PII types"):
        PIIScanGateOperator(task_id="p", data="x.csv", types=[])
    with pytest.raises(ValueError, match="data is required"):
        PIIScanGateOperator(task_id="p", data="")
    with pytest.raises(ValueError, match="max_rows"):
        PIIScanGateOperator(task_id="p", data="x.csv", max_rows=0)
    with pytest.raises(ValueError, match="allow_columns"):
        PIIScanGateOperator(task_id="p", data="x.csv", allow_columns=[1, 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="warn_only"):
        PIIScanGateOperator(task_id="p", data="x.csv", warn_only="yes")  # type: ignore[arg-type]
    op = PIIScanGateOperator(task_id="p", data=Path("x.csv"), types="phone,email", allow_columns=("a", "b"))
    assert op.types == ["email", "phone"] and op.allow_columns == ["a", "b"] and op.data == "x.csv"
    assert {"data", "allow_columns"} <= set(PIIScanGateOperator.template_fields)
    assert PIIScanGateOperator.gate_name == "pii-scan"


def test_roles_batches_and_engine_are_checked_at_parse_time() -> None:
    from airflow_mlsecops.operators.pii import PIIScanGateOperator

    with pytest.raises(ValueError, match="batch_rows"):
        PIIScanGateOperator(task_id="p", data="x.csv", batch_rows=0)
    with pytest.raises(ValueError, match="unknown engine"):
        PIIScanGateOperator(task_id="p", data="x.csv", engine="dask")
    with pytest.raises(ValueError, match="two roles"):
        PIIScanGateOperator(task_id="p", data="x.csv", id_columns=["a"], label_column="a")
    op = PIIScanGateOperator(task_id="p", data="x.csv", id_columns="{{ params.ids }}", features="a,b", engine="spark")
    assert op.engine == "spark" and op.id_columns == "{{ params.ids }}"
    assert {"id_columns", "features", "spark_master"} <= set(PIIScanGateOperator.template_fields)


def test_streamed_scan_records_roles_and_the_stream(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    """A directory of part files, read in batches by the gate: every part hashed, an identifier column still scanned."""
    parts = tmp_path / "table"
    parts.mkdir()
    write_csv(parts, {"ref": ["123-45-6789", "234-56-7890"], "note": ["a", "b"]}, name="part-0.csv")
    write_csv(parts, {"ref": ["345-67-8901", "x"], "note": ["c", "d"]}, name="part-1.csv")
    dag_id = unique_dag_id("pii_stream")
    dag = write_dag(
        dag_id,
        f"PIIScanGateOperator(task_id='pii', data={str(parts)!r}, id_columns='ref', batch_rows=1, retries=0)",
        header=HEADER,
    )
    dag_run, _ = run_dag(dag)
    assert dag_run.state == "failed"
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    result = json.loads((store.download_dir(run_id, "mlsecops/evidence/pii/try-1", tmp_path / "dl") / "result.json").read_text())
    assert result["verdict"] == "failed"
    assert result["details"]["streamed"] is True and result["details"]["stream"]["parts"] == 2
    assert result["details"]["column_roles"]["id_columns"] == ["ref"]
    assert len(result["subjects"]) == 2
    (finding,) = [f for f in result["findings"] if f["id"] == "pii.us_ssn"]
    assert "3 of 4" in finding["message"] and "identifier column" in finding["message"]
    assert verify_run(run_id, settings=home).ok
