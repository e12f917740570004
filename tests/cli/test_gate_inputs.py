"""``mlsecops gate``: the CLI fetches MLflow-stored inputs before the engines run (engines read local
paths only), names them by their URI in the evidence, and turns an input it cannot fetch into the
gate's ``error`` verdict (exit 2), never a pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

# Each test trains a model and logs it to an MLflow store: seconds each, so not in `make test-fast`.
pytestmark = pytest.mark.slow


def run_cli(capsys, *args: str) -> tuple[int, dict]:
    code = main([*args, "--json"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


@pytest.fixture
def stored(home: Settings, tmp_path: Path) -> dict[str, str]:
    """A scikit-learn model (skops) and the credit data, logged as artifacts of one MLflow run."""
    import mlflow.sklearn
    import sklearn
    from sklearn.linear_model import LogisticRegression

    frame = credit_frame(rows=400, seed=3)
    data = tmp_path / "credit.csv"
    frame.to_csv(data, index=False)
    model = LogisticRegression(max_iter=500).fit(frame[list(FEATURES)], frame[LABEL])
    model_dir = tmp_path / "model"
    mlflow.sklearn.save_model(model, str(model_dir), pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="training", run_name="train")
    store.client.log_artifacts(run_id, str(model_dir), "model")
    store.client.log_artifact(run_id, str(data), "data")
    return {
        "model": f"runs:/{run_id}/model",
        "data_uri": f"runs:/{run_id}/data/credit.csv",
        "data": str(data),
        "missing": f"runs:/{run_id}/nothing-here",
    }


def test_robustness_fetches_the_model_and_names_it_by_its_uri(capsys, stored: dict[str, str]) -> None:
    args = ["gate", "robustness", "--data", stored["data"], "--label-column", LABEL, "--epsilon", "0.01"]
    code, out = run_cli(capsys, *args, "--model", stored["model"])
    assert code == 0, out["summary"]
    assert out["subjects"][0]["name"] == stored["model"]
    code, out = run_cli(capsys, *args, "--model", stored["missing"])
    assert code == 2 and out["verdict"] == "error"
    assert out["findings"][0]["id"] == "gate.could-not-run" and "nothing-here" in out["summary"]


def test_sbom_fetches_the_model_and_names_it_by_its_uri(capsys, stored: dict[str, str]) -> None:
    args = ["gate", "sbom", "--no-vulnerability-check"]
    code, out = run_cli(capsys, *args, "--model", stored["model"])
    assert code == 0, out["summary"]
    assert out["subjects"][0]["name"] == stored["model"]
    code, out = run_cli(capsys, *args, "--model", stored["missing"])
    assert code == 2 and out["verdict"] == "error" and "nothing-here" in out["summary"]


def test_drift_reads_a_stored_reference_and_names_it_by_its_uri(capsys, stored: dict[str, str]) -> None:
    columns = ["--columns", ",".join(FEATURES)]
    code, out = run_cli(capsys, "gate", "drift", "--reference", stored["data_uri"], "--current", stored["data"], *columns)
    assert code == 0, out["summary"]
    assert out["subjects"][0]["name"] == stored["data_uri"]
    assert out["subjects"][0]["digest"]["sha256"] == sha256_file(stored["data"])
    code, out = run_cli(capsys, "gate", "drift", "--reference", stored["missing"], "--current", stored["data"], *columns)
    assert code == 2 and out["verdict"] == "error" and "nothing-here" in out["summary"]


def test_input_anomaly_with_a_model_it_cannot_fetch_is_an_error(capsys, stored: dict[str, str]) -> None:
    code, out = run_cli(capsys, "gate", "input-anomaly", "--data", stored["data"], "--model", stored["missing"])
    assert code == 2 and out["verdict"] == "error" and "nothing-here" in out["summary"]


def test_data_gates_read_stored_data_and_name_it_by_its_uri(capsys, stored: dict[str, str], tmp_path: Path) -> None:
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": LABEL}}]}))
    digest = sha256_file(stored["data"])
    runs = {
        "data-validation": ["--suite", str(suite)],
        "pii": [],
        "data-integrity": ["--reference", stored["data"], "--label-column", LABEL],
        "robustness": ["--model", stored["model"], "--label-column", LABEL, "--epsilon", "0.01"],
    }
    for gate, extra in runs.items():
        code, out = run_cli(capsys, "gate", gate, "--data", stored["data_uri"], *extra)
        assert out["verdict"] != "error", (gate, out["summary"])
        named = {s["name"]: s["digest"]["sha256"] for s in out["subjects"]}
        assert named[stored["data_uri"]] == digest, gate
        code, out = run_cli(capsys, "gate", gate, "--data", stored["missing"], *extra)
        assert code == 2 and out["verdict"] == "error" and "nothing-here" in out["summary"], gate
        assert out["findings"][0]["id"] == "gate.could-not-run"


def test_a_bad_argument_is_reported_before_data_that_cannot_be_read(capsys, stored: dict[str, str]) -> None:
    code, out = run_cli(capsys, "gate", "pii", "--data", stored["missing"], "--max-rows", "0")
    assert code == 2 and out["verdict"] == "error" and "max_rows must be a positive integer" in out["summary"]
    args = ["--data", stored["missing"], "--model", stored["model"], "--label-column", LABEL, "--epsilon", "-1"]
    code, out = run_cli(capsys, "gate", "robustness", *args)
    assert code == 2 and out["verdict"] == "error" and "epsilon must be a positive number" in out["summary"]
