"""Record and verify evidence through a real MLflow tracking server (``MLSECOPS_TEST_MLFLOW_URI``)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.ledger import EvidenceLedger
from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from airflow_mlsecops.lifecycle.verification import verify_run

pytestmark = pytest.mark.mlflow_server


@pytest.fixture
def server_home(home: Settings, mlflow_server_uri: str, monkeypatch) -> Settings:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    return Settings.from_env()


def test_record_and_verify_through_the_server(server_home: Settings, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    dag_run = f"run-{uuid.uuid4().hex[:8]}"
    recorder = EvidenceRecorder.from_settings(server_home)
    recorded = [
        recorder.record(
            attest_artifacts([str(data)], context=PipelineContext("server_dag", dag_run, task)).result,
            experiment_name="server-evidence",
        )
        for task in ("first", "second")
    ]
    assert recorded[0].mlflow_run_id == recorded[1].mlflow_run_id
    assert recorded[0].tracking_uri.startswith("http://")
    report = verify_run(recorded[0].mlflow_run_id, settings=server_home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert set(report.gates) == {"first/try-1", "second/try-1"}

    store = MLflowEvidenceStore(server_home.tracking_uri)
    store.client.set_tag(recorded[0].mlflow_run_id, "mlsecops.gate.first.verdict", "passed-by-hand")
    assert not verify_run(recorded[0].mlflow_run_id, settings=server_home).ok


def test_model_logged_to_the_server_is_rehashed(server_home: Settings, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00\x01" * 4096)
    store = MLflowEvidenceStore(server_home.tracking_uri)
    run_id = store.resolve_pipeline_run(experiment_name="server-models", dag_id="d", run_id=uuid.uuid4().hex)
    store.client.log_artifacts(run_id, str(model), "model")
    uri = f"runs:/{run_id}/model"
    local = store.download_uri(uri, tmp_path / "dl")
    outcome = attest_artifacts({uri: str(local)}, gate="model-provenance")
    EvidenceRecorder.from_settings(server_home).record(outcome.result, experiment_name="server-models", mlflow_run_id=run_id)
    report = verify_run(run_id, settings=server_home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert any(c.name == f"subject:{uri}" and c.status.value == "ok" for c in report.checks)


def test_unknown_run_on_the_server(server_home: Settings) -> None:
    EvidenceLedger(server_home.ledger_url)
    with pytest.raises(ConfigurationError):
        verify_run(uuid.uuid4().hex, settings=server_home)
