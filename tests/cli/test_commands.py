"""The ``mlsecops`` command: exit codes 0 / 1 / 2, clear one-line errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_mlsecops.cli import main
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from tests.helpers import write_csv

SUITE = {
    "name": "s",
    "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 10}}],
}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what fixtures printed (MLflow creating its store) is not the command's output
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run_id(home: Settings, tmp_path: Path) -> str:
    data = tmp_path / "train.csv"
    data.write_text("x\n1\n2\n")
    outcome = attest_artifacts([str(data)], context=PipelineContext("dag", "run-1", "sign_data"))
    return EvidenceRecorder.from_settings(home).record(outcome.result, experiment_name="dag", files=outcome.files).mlflow_run_id


def _evidence_file(home: Settings, run_id: str, name: str) -> Path:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    uri = MLflowEvidenceStore(home.tracking_uri).client.get_run(run_id).info.artifact_uri
    return Path(uri.removeprefix("file://")) / "mlsecops/evidence/sign_data/try-1" / name


def test_verify_ok_text_and_json(capsys, home: Settings, run_id: str) -> None:
    code, out, _ = run_cli(capsys, "verify", "--mlflow-run-id", run_id)
    assert code == 0
    assert "VERIFIED" in out and "sign_data/try-1" in out
    code, out, _ = run_cli(capsys, "verify", "--mlflow-run-id", run_id, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["verified"] is True and report["failures"] == []


def test_verify_names_the_tampered_artifact(capsys, home: Settings, run_id: str) -> None:
    path = _evidence_file(home, run_id, "manifest.json")
    path.write_bytes(path.read_bytes().replace(b'"size"', b'"sizE"', 1))
    code, out, _ = run_cli(capsys, "verify", "--mlflow-run-id", run_id)
    assert code == 1
    assert "NOT VERIFIED" in out
    assert "sign_data/try-1: file:manifest.json: sha256 is" in out


def test_corrupt_envelope_is_a_verification_failure_not_a_traceback(capsys, home: Settings, run_id: str) -> None:
    _evidence_file(home, run_id, "envelope.dsse.json").write_text("{not json")
    code, out, err = run_cli(capsys, "verify", "--mlflow-run-id", run_id, "--json")
    assert code == 1
    failures = {(f["scope"], f["check"]): f["detail"] for f in json.loads(out)["failures"]}
    assert "not valid JSON" in failures[("sign_data/try-1", "signature")]
    assert "Traceback" not in out + err


def test_ledger_verify_and_a_tampered_ledger(capsys, home: Settings, run_id: str) -> None:
    import sqlite3

    code, out, _ = run_cli(capsys, "ledger", "verify")
    assert code == 0 and "1 entries" in out
    with sqlite3.connect(home.home / "ledger.db") as conn:
        conn.execute("DROP TRIGGER mlsecops_evidence_ledger_no_update")
        conn.execute("UPDATE mlsecops_evidence_ledger SET gate = 'forged' WHERE seq = 1")
    code, _, err = run_cli(capsys, "ledger", "verify")
    assert code == 1
    assert "seq=1" in err
    code, out, _ = run_cli(capsys, "verify", "--mlflow-run-id", run_id)
    assert code == 1 and "ledger-chain" in out


def test_unknown_run_id_exits_2(capsys, home: Settings, run_id: str) -> None:
    code, _, err = run_cli(capsys, "verify", "--mlflow-run-id", "f" * 32)
    assert code == 2
    assert err.startswith("mlsecops: error:") and "Traceback" not in err


def test_unreachable_tracking_uri_exits_2(capsys, home: Settings, run_id: str) -> None:
    code, _, err = run_cli(capsys, "verify", "--mlflow-run-id", run_id, "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2
    assert "127.0.0.1:9" in err and "Traceback" not in err


def test_missing_ledger_exits_2(capsys, home: Settings, run_id: str, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "verify", "--mlflow-run-id", run_id, "--ledger-url", f"sqlite:///{tmp_path}/none.db")
    assert code == 2 and "no evidence ledger" in err


def test_untrusted_key_given_on_the_command_line_fails(capsys, home: Settings, run_id: str, tmp_path: Path) -> None:
    code, _, _ = run_cli(capsys, "keygen", "--out", str(tmp_path / "other"))
    assert code == 0
    code, out, _ = run_cli(
        capsys, "verify", "--mlflow-run-id", run_id, "--trusted-key", str(tmp_path / "other/signing-key.pub.pem")
    )
    assert code == 1 and "untrusted key" in out


def test_keygen_refuses_to_overwrite_and_writes_0600(capsys, home: Settings, tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "keygen", "--out", str(tmp_path / "k"), "--key-type", "ed25519", "--json")
    assert code == 0
    info = json.loads(out)
    assert oct(Path(info["private_key"]).stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE KEY" not in out
    code, _, err = run_cli(capsys, "keygen", "--out", str(tmp_path / "k"))
    assert code == 2 and "refusing to overwrite" in err


@pytest.fixture
def suite_file(tmp_path: Path) -> str:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(SUITE))
    return str(path)


def test_gate_data_validation_exit_codes_and_json(capsys, home: Settings, tmp_path: Path, suite_file: str) -> None:
    code, out, _ = run_cli(
        capsys, "gate", "data-validation", "--data", write_csv(tmp_path, [1, 2], "d.csv"), "--suite", suite_file, "--json"
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["gate"] == "data-validation" and payload["verdict"] == "passed"
    assert {"id", "severity", "message", "location"} <= set(payload["findings"][0])
    code, out, _ = run_cli(
        capsys, "gate", "data-validation", "--data", write_csv(tmp_path, [1, 50], "d.csv"), "--suite", suite_file, "--json"
    )
    assert code == 1 and json.loads(out)["verdict"] == "failed"
    code, out, _ = run_cli(capsys, "gate", "data-validation", "--data", str(tmp_path / "missing.csv"), "--suite", suite_file)
    assert code == 2 and "does not exist" in out


def test_gate_with_unknown_expectation_exits_2(capsys, home: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "b", "expectations": [{"type": "expect_nonsense", "kwargs": {}}]}))
    code, _, err = run_cli(capsys, "gate", "data-validation", "--data", write_csv(tmp_path, [1], "d.csv"), "--suite", str(bad))
    assert code == 2 and "expect_nonsense" in err


def test_gate_record_then_verify(capsys, home: Settings, tmp_path: Path, suite_file: str) -> None:
    code, out, _ = run_cli(
        capsys,
        "gate",
        "data-validation",
        "--data",
        write_csv(tmp_path, [1], "d.csv"),
        "--suite",
        suite_file,
        "--record",
        "--json",
    )
    assert code == 0
    run_id = json.loads(out)["evidence"]["mlflow_run_id"]
    code, out, _ = run_cli(capsys, "verify", "--mlflow-run-id", run_id)
    assert code == 0, out


def test_attestation_with_missing_key_file_exits_2(capsys, home: Settings, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", str(tmp_path / "nope.pem"))
    code, _, err = run_cli(
        capsys, "gate", "provenance", write_csv(tmp_path, [1], "d.csv"), "--attestation", str(tmp_path / "a.json")
    )
    assert code == 2 and "nope.pem does not exist" in err


def test_rsa_signing_key_is_refused(capsys, home: Settings, tmp_path: Path, monkeypatch) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", str(path))
    code, _, err = run_cli(
        capsys, "gate", "provenance", write_csv(tmp_path, [1], "d.csv"), "--attestation", str(tmp_path / "a.json")
    )
    assert code == 2 and "RSA" in err and "not supported" in err
    assert "BEGIN" not in err


def test_attestation_file_verifies_with_the_public_key(capsys, home: Settings, tmp_path: Path) -> None:
    from airflow_mlsecops.evidence.dsse import Envelope, verify_envelope

    out_file = tmp_path / "att.json"
    code, _, _ = run_cli(capsys, "gate", "provenance", write_csv(tmp_path, [1], "d.csv"), "--attestation", str(out_file))
    assert code == 0
    verify_envelope(Envelope.from_json(out_file.read_bytes()), home.load_trusted_keys())


@pytest.mark.slow
def test_entry_point_runs_as_a_real_command(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "airflow_mlsecops.cli", "verify"], capture_output=True, text=True)
    assert done.returncode == 2 and "--mlflow-run-id" in done.stderr
    done = subprocess.run([sys.executable, "-m", "airflow_mlsecops.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "mlsecops" in done.stdout


def test_gate_model_scan_fetches_mlflow_uris(capsys, home: Settings, tmp_path: Path) -> None:
    import pickle

    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="scan", run_name="scan")
    store.client.log_artifacts(run_id, str(model), "model")
    code, out, _ = run_cli(capsys, "gate", "model-scan", f"runs:/{run_id}/model", "--json")
    assert code == 0, out
    assert json.loads(out)["subjects"][0]["name"] == f"runs:/{run_id}/model"
    (model / "evil.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    store.client.log_artifacts(run_id, str(model), "model")
    code, out, _ = run_cli(capsys, "gate", "model-scan", f"runs:/{run_id}/model", "--json")
    assert code == 1 and "system" in out


# ----------------------------------------------------------------------------- empty batches
def _empty_batch_args(gate: str, tmp_path: Path, suite_file: str) -> list[str]:
    empty = tmp_path / "empty.csv"
    empty.write_text("x\n")
    reference = write_csv(tmp_path, list(range(50)), "reference.csv")
    (tmp_path / "detector").mkdir()  # never read: the empty batch is refused first
    return {
        "data-validation": ["--data", str(empty), "--suite", suite_file],
        "data-integrity": ["--data", str(empty), "--reference", reference],
        "pii": ["--data", str(empty)],
        "drift": ["--reference", reference, "--current", str(empty)],
        "input-anomaly": ["--data", str(empty), "--detector", str(tmp_path / "detector")],
    }[gate]


@pytest.mark.parametrize("gate", ["data-validation", "data-integrity", "pii", "drift", "input-anomaly"])
def test_an_empty_batch_exits_2_even_with_warn_only(capsys, home: Settings, tmp_path: Path, suite_file: str, gate: str) -> None:
    """No data to check is never a pass (it passed data validation and the PII scan): could not run."""
    code, out, _ = run_cli(capsys, "gate", gate, *_empty_batch_args(gate, tmp_path, suite_file), "--warn-only", "--json")
    payload = json.loads(out)
    assert code == 2 and payload["verdict"] == "error", payload["summary"]
    assert "holds no rows: no data to check is never a pass" in payload["summary"] and "--allow-empty" in payload["summary"]


@pytest.mark.parametrize("gate", ["data-validation", "data-integrity", "pii", "drift"])
def test_allow_empty_accepts_an_empty_batch(capsys, home: Settings, tmp_path: Path, suite_file: str, gate: str) -> None:
    code, out, _ = run_cli(capsys, "gate", gate, *_empty_batch_args(gate, tmp_path, suite_file), "--allow-empty", "--json")
    payload = json.loads(out)
    # Accepted (exit 0), but nothing was checked: warned (incomplete), never passed.
    assert code == 0 and payload["verdict"] == "warned", payload["summary"]
    gate_name = "pii-scan" if gate == "pii" else gate
    assert payload["warned_reason"] == "incomplete" and payload["not_performed"] == [f"{gate_name}.empty-batch"]
    assert [f["id"] for f in payload["findings"] if f["id"].endswith(".empty-batch")] == [f"{gate_name}.empty-batch"]


def test_a_check_not_performed_prints_warned_exits_0_and_verifies_as_warned(capsys, home: Settings, tmp_path: Path) -> None:
    """data-integrity without a label column: the label checks did not run. Exit 0, but WARNED, naming them."""
    data, reference = write_csv(tmp_path, list(range(60)), "d.csv"), write_csv(tmp_path, list(range(60)), "r.csv")
    code, out, _ = run_cli(capsys, "gate", "data-integrity", "--data", data, "--reference", reference, "--record")
    assert code == 0, out
    first = out.splitlines()[0]
    assert first.startswith("data-integrity: WARNED (incomplete) - ") and "INCOMPLETE, not performed:" in first
    assert "  not performed: integrity.label_shift, integrity.class_set, integrity.label_flips" in out
    assert "[low] integrity.label_shift: skipped: no label column was given (label_column)" in out
    assert "PASSED" not in out
    run_id = out.split("evidence: MLflow run ", 1)[1].split()[0]
    code, out, _ = run_cli(capsys, "verify", "--mlflow-run-id", run_id)
    assert code == 0, out  # the evidence verifies; what it says is warned, incomplete
    assert "[data-integrity: warned (incomplete, not performed: integrity.label_shift, " in out


@pytest.mark.parametrize("gate", ["data-integrity", "drift"])
def test_allow_empty_never_accepts_an_empty_reference(capsys, home: Settings, tmp_path: Path, gate: str) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("x\n")
    batch = write_csv(tmp_path, list(range(50)), "batch.csv")
    args = (
        ["--data", batch, "--reference", str(empty)]
        if gate == "data-integrity"
        else ["--reference", str(empty), "--current", batch]
    )
    code, out, _ = run_cli(capsys, "gate", gate, *args, "--allow-empty")
    assert code == 2 and "an empty reference cannot vouch for any batch" in out
