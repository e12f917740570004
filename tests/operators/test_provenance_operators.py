"""Sign where data is produced, verify where it is used: real Airflow tasks, real MLflow evidence."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id, run_dag_states

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators import ProvenanceVerifyOperator"


def _dag_source(data: Path, tamper: bool) -> str:
    change = "open(path, 'a').write('9,9\\n')" if tamper else "pass"
    return f"""
sign = ProvenanceSignOperator(task_id="sign", artifacts=[{str(data)!r}])

@task
def between_stages(path: str) -> None:
    {change}

verify = ProvenanceVerifyOperator(task_id="verify", artifacts=[{str(data)!r}], attestation=sign.output["attestation"])
sign >> between_stages({str(data)!r}) >> verify
"""


def test_unchanged_data_passes_verification(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    dag_id = f"provenance_ok_{uuid.uuid4().hex[:6]}"
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(data, tamper=False), header=HEADER))
    assert dag_run.state == "success", states
    report = verify_run(pipeline_run_id(home, dag_id), settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert {g["gate"] for g in report.gates.values()} == {"dataset-provenance", "provenance-verification"}
    assert any(c.name == "attestation:provenance.slsa.dsse.json" and c.status.value == "ok" for c in report.checks)


def test_data_changed_between_stages_is_rejected(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    dag_id = f"provenance_tampered_{uuid.uuid4().hex[:6]}"
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(data, tamper=True), header=HEADER))
    assert dag_run.state == "failed"
    assert states == {"sign": "success", "between_stages": "success", "verify": "failed"}
    run_id = pipeline_run_id(home, dag_id)
    tags = MLflowEvidenceStore(home.tracking_uri).run_tags(run_id)
    assert tags["mlsecops.gate.verify.verdict"] == "failed"
    assert verify_run(run_id, settings=home, check_subjects=False).ok


def test_missing_attestation_is_an_error_verdict(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a\n1\n")
    dag_id = f"provenance_noatt_{uuid.uuid4().hex[:6]}"
    source = f"ProvenanceVerifyOperator(task_id='verify', artifacts=[{str(data)!r}], attestation={str(tmp_path / 'none.json')!r})"
    _, states = run_dag_states(write_dag(dag_id, source, header=HEADER))
    assert states == {"verify": "failed"}
    tags = MLflowEvidenceStore(home.tracking_uri).run_tags(pipeline_run_id(home, dag_id))
    assert tags["mlsecops.gate.verify.verdict"] == "error"


def test_a_single_public_key_path_is_one_key() -> None:
    from airflow_mlsecops.operators import ProvenanceVerifyOperator

    op = ProvenanceVerifyOperator(task_id="verify", artifacts=["a.csv"], attestation="att.json", public_keys="keys/k.pub.pem")
    assert op.public_keys == ["keys/k.pub.pem"]
    with pytest.raises(ValueError, match="attestation is required"):
        ProvenanceVerifyOperator(task_id="verify", artifacts=["a.csv"], attestation="")
