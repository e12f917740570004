"""Record real evidence into a real MLflow store and ledger, then tamper with every part of it.

Each tamper test changes one thing (one byte of an artifact, a model file, a ledger row, a tag)
and asserts that ``verify_run`` names exactly that failure.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.ledger import EvidenceLedger
from airflow_mlsecops.evidence.models import PipelineContext, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, EvidenceRecordingError, VerificationError
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from airflow_mlsecops.lifecycle.verification import Status, verify_run


def _failed(report) -> dict[tuple[str, str], str]:
    return {(c.scope, c.name): c.detail for c in report.failures}


@pytest.fixture
def recorded(home: Settings, tmp_path: Path):
    """Two gates of one pipeline run: a dataset attestation and a model stored in MLflow."""
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    recorder = EvidenceRecorder.from_settings(home)
    ctx = PipelineContext("dag", "run-1", "sign_data")
    outcome = attest_artifacts([str(data)], context=ctx)
    first = recorder.record(outcome.result, experiment_name="dag", files=outcome.files)

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.skops").write_bytes(b"weights" * 100)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    client = recorder.store.client
    client.log_artifacts(first.mlflow_run_id, str(model_dir), artifact_path="model")
    uri = f"runs:/{first.mlflow_run_id}/model"
    model_outcome = attest_artifacts(
        {uri: str(model_dir)}, gate="model-provenance", context=PipelineContext("dag", "run-1", "sign_model")
    )
    second = recorder.record(model_outcome.result, experiment_name="dag", files=model_outcome.files)
    assert first.mlflow_run_id == second.mlflow_run_id
    return {"home": home, "run": first.mlflow_run_id, "data": data, "first": first, "second": second}


def _artifact_root(home: Settings, run_id: str) -> Path:
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    uri = store.client.get_run(run_id).info.artifact_uri
    return Path(uri.removeprefix("file://"))


def test_untouched_evidence_verifies(recorded) -> None:
    report = verify_run(recorded["run"], settings=recorded["home"])
    assert report.ok, _failed(report)
    names = {(c.scope, c.name) for c in report.checks if c.status is Status.OK}
    assert ("sign_data/try-1", "signature") in names
    assert ("sign_model/try-1", f"subject:runs:/{recorded['run']}/model") in names
    assert ("run", "ledger-chain") in names and ("run", "ledger-complete") in names
    report.raise_if_failed()


@pytest.mark.parametrize("name", ["envelope.dsse.json", "result.json", "manifest.json"])
def test_one_changed_byte_in_any_evidence_file_fails(recorded, name: str) -> None:
    path = _artifact_root(recorded["home"], recorded["run"]) / "mlsecops/evidence/sign_data/try-1" / name
    raw = bytearray(path.read_bytes())
    index = raw.index(b'"') + 1 if name != "envelope.dsse.json" else raw.index(b'"payload": "') + 20
    raw[index] = ord("X") if raw[index] != ord("X") else ord("Y")
    path.write_bytes(bytes(raw))
    report = verify_run(recorded["run"], settings=recorded["home"])
    assert not report.ok
    failed = _failed(report)
    if name == "envelope.dsse.json":
        assert ("sign_data/try-1", "ledger-entry") in failed
        assert ("sign_data/try-1", "signature") in failed or ("sign_data/try-1", "statement") in failed
    else:
        assert ("sign_data/try-1", f"file:{name}") in failed
    with pytest.raises(VerificationError, match="sign_data"):
        report.raise_if_failed()


def test_swapped_model_file_in_the_store_fails(recorded) -> None:
    model_file = _artifact_root(recorded["home"], recorded["run"]) / "model" / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[10] ^= 0x01
    model_file.write_bytes(bytes(data))
    failed = _failed(verify_run(recorded["run"], settings=recorded["home"]))
    assert list(failed) == [("sign_model/try-1", f"subject:runs:/{recorded['run']}/model")]


def test_file_added_to_model_after_signing_fails(recorded) -> None:
    (_artifact_root(recorded["home"], recorded["run"]) / "model" / "backdoor.pkl").write_bytes(b"cos\nsystem\n")
    failed = _failed(verify_run(recorded["run"], settings=recorded["home"]))
    assert ("sign_model/try-1", f"subject:runs:/{recorded['run']}/model") in failed


def test_changed_local_dataset_fails(recorded) -> None:
    recorded["data"].write_text("a,b\n1,2\n3,5\n")
    failed = _failed(verify_run(recorded["run"], settings=recorded["home"]))
    assert ("sign_data/try-1", f"subject:{recorded['data'].absolute()}") in failed


def test_unattested_file_next_to_envelope_fails(recorded) -> None:
    extra = _artifact_root(recorded["home"], recorded["run"]) / "mlsecops/evidence/sign_data/try-1/extra.json"
    extra.write_text("{}")
    assert ("sign_data/try-1", "file:extra.json") in _failed(verify_run(recorded["run"], settings=recorded["home"]))


def test_changed_ledger_row_fails(recorded) -> None:
    ledger_db = recorded["home"].home / "ledger.db"
    with sqlite3.connect(ledger_db) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE mlsecops_evidence_ledger SET task_id = 'x' WHERE seq = 1")
        conn.execute("DROP TRIGGER mlsecops_evidence_ledger_no_update")
        conn.execute("UPDATE mlsecops_evidence_ledger SET created_at = '2020-01-01T00:00:00Z' WHERE seq = 1")
    failed = _failed(verify_run(recorded["run"], settings=recorded["home"]))
    assert "seq=1" in failed[("run", "ledger-chain")]


def test_deleted_evidence_is_caught_by_the_ledger(recorded) -> None:
    import shutil

    shutil.rmtree(_artifact_root(recorded["home"], recorded["run"]) / "mlsecops/evidence/sign_model")
    failed = _failed(verify_run(recorded["run"], settings=recorded["home"]))
    assert "seq 2" in failed[("run", "ledger-complete")]


def test_forged_verdict_tag_fails(recorded) -> None:
    store = MLflowEvidenceStore(recorded["home"].tracking_uri)
    store.client.set_tag(recorded["run"], "mlsecops.gate.sign_data.verdict", "failed")
    failed = _failed(verify_run(recorded["run"], settings=recorded["home"]))
    assert ("sign_data", "verdict-tag") in failed


def test_evidence_signed_by_an_untrusted_key_fails(recorded) -> None:
    other = SigningKey.generate()
    report = verify_run(recorded["run"], settings=recorded["home"], trusted_keys={other.keyid: other.public_key})
    failed = _failed(report)
    assert "untrusted key" in failed[("sign_data/try-1", "signature")]


def test_no_trusted_keys_is_never_a_pass(recorded) -> None:
    report = verify_run(recorded["run"], settings=recorded["home"], trusted_keys={})
    assert not report.ok
    assert ("run", "trusted-keys") in _failed(report)


def test_unknown_run_is_a_configuration_error(home: Settings) -> None:
    with pytest.raises(ConfigurationError, match=r"not found|does not exist|No Run"):
        verify_run("0" * 32, settings=home)


def test_run_without_evidence_does_not_verify(home: Settings) -> None:
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="empty", run_name="nothing")
    EvidenceLedger(home.ledger_url)
    report = verify_run(run_id, settings=home)
    assert not report.ok
    assert ("run", "evidence-present") in _failed(report)


def test_failed_gate_is_recorded_too(home: Settings, tmp_path: Path) -> None:
    outcome = attest_artifacts([str(tmp_path / "missing.csv")], context=PipelineContext("dag", "r2", "sign"))
    assert outcome.result.verdict is Verdict.ERROR
    recorded = EvidenceRecorder.from_settings(home).record(outcome.result, experiment_name="dag", files=outcome.files)
    report = verify_run(recorded.mlflow_run_id, settings=home)
    assert report.ok, _failed(report)
    assert report.gates["sign/try-1"]["verdict"] == "error"


def test_mlflow_write_failure_fails_closed_and_leaves_a_ledger_note(home: Settings, tmp_path: Path) -> None:
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="dag", run_name="r")
    # Make the run's artifact location unwritable: MLflow cannot store the evidence files.
    artifact_dir = Path(store.client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    artifact_dir.parent.mkdir(parents=True, exist_ok=True)
    artifact_dir.write_text("a file where the artifact directory should be")
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    outcome = attest_artifacts([str(data)], context=PipelineContext("dag", "r3", "sign"))
    recorder = EvidenceRecorder.from_settings(home)
    with pytest.raises(EvidenceRecordingError, match="could not be logged to MLflow"):
        recorder.record(outcome.result, experiment_name="dag", files=outcome.files, mlflow_run_id=run_id)
    kinds = [e.kind for e in recorder.ledger.entries_for_mlflow_run(run_id)]
    assert kinds == ["attestation", "recording-failed"]
    recorder.ledger.verify_chain()


def test_missing_signing_key_stops_before_anything_is_recorded(home: Settings, monkeypatch) -> None:
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", str(home.home / "nope.pem"))
    from airflow_mlsecops.exceptions import KeyLoadError

    with pytest.raises(KeyLoadError, match="does not exist"):
        EvidenceRecorder.from_settings(Settings.from_env())


def test_result_json_is_readable(recorded) -> None:
    path = _artifact_root(recorded["home"], recorded["run"]) / "mlsecops/evidence/sign_data/try-1/result.json"
    data = json.loads(path.read_text())
    assert data["gate"] == "dataset-provenance" and data["verdict"] == "passed"
    assert data["context"]["task_id"] == "sign_data"
