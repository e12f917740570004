"""Logging and registering models through ``MLflowEvidenceStore``'s own client.

Each test runs with MLflow's own environment variables unset and an empty working directory: a
call that fell back on MLflow's process-global tracking URI would write ``./mlflow.db`` there (and
not find the model). ``tests/lifecycle/test_fresh_process.py`` runs the same steps in fresh
interpreters, where no earlier call can have set that URI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore


@pytest.fixture
def store(home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MLflowEvidenceStore:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return MLflowEvidenceStore.from_settings(home)


@pytest.fixture
def fitted():
    from sklearn.linear_model import LogisticRegression

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame

    frame = credit_frame(rows=300, seed=3)
    return LogisticRegression(max_iter=500).fit(frame[list(FEATURES)], frame[LABEL]), frame[list(FEATURES)]


def _nothing_in_cwd() -> None:
    assert sorted(p.name for p in Path.cwd().iterdir()) == []


def test_log_example_model_is_a_complete_mlflow_model_on_its_run(store: MLflowEvidenceStore, fitted, tmp_path: Path) -> None:
    import yaml
    from mlflow.entities import LoggedModelStatus

    from airflow_mlsecops.demo.example_data import log_example_model
    from airflow_mlsecops.io.model_loader import load_model

    model, features = fitted
    run_id = store.resolve_pipeline_run(experiment_name="store-models", dag_id="d", run_id="r1")
    uri = log_example_model(
        store,
        run_id,
        model,
        input_example=features.head(2),
        params={"training_data_sha256": "a" * 64},
        metrics={"accuracy": 0.81},
        author="carol",
    )
    model_id = uri.removeprefix("models:/")
    logged = store.client.get_logged_model(model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run_id and logged.tags["mlflow.user"] == "carol"
    assert logged.params == {"training_data_sha256": "a" * 64}
    assert [(m.key, m.value, m.model_id) for m in logged.metrics] == [("accuracy", 0.81, model_id)]
    run = store.client.get_run(run_id)
    assert [o.model_id for o in run.outputs.model_outputs] == [model_id]
    assert run.data.metrics == {"accuracy": 0.81} and run.data.params == {"training_data_sha256": "a" * 64}

    local = store.download_uri(uri, tmp_path / "download")
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert mlmodel["model_id"] == model_id and mlmodel["run_id"] == run_id
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "skops"
    assert {"model.skops", "requirements.txt", "input_example.json"} <= {p.name for p in local.iterdir()}
    assert "scikit-learn==" in (local / "requirements.txt").read_text()
    loaded = load_model(local)
    assert loaded.format == "mlflow/skops"
    assert (loaded.estimator.predict(features.head(5)) == model.predict(features.head(5))).all()
    _nothing_in_cwd()


def test_a_model_that_cannot_be_saved_is_marked_failed(store: MLflowEvidenceStore) -> None:
    from mlflow.entities import LoggedModelStatus

    run_id = store.resolve_pipeline_run(experiment_name="store-models", dag_id="d", run_id="r2")

    def save(path: Path, mlflow_model: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store.log_model(run_id, save, name="broken")
    (logged,) = store.client.search_logged_models([store.run_experiment_id(run_id)], filter_string="name = 'broken'")
    assert logged.status == LoggedModelStatus.FAILED
    _nothing_in_cwd()


def test_registering_a_logged_model_resolves_it_through_the_store(store: MLflowEvidenceStore, fitted) -> None:
    """The registry database, used directly, would look ``models:/m-...`` up through MLflow's
    global tracking URI: the source is resolved through this store instead, and the logged model
    names the version (``mlflow.modelVersions``) as an MLflow server would."""
    from airflow_mlsecops.demo.example_data import log_example_model
    from airflow_mlsecops.gates.input_detection import fit_detector, log_detector_to_model
    from airflow_mlsecops.lifecycle.registration import create_model_version

    model, features = fitted
    run_id = store.resolve_pipeline_run(experiment_name="store-models", dag_id="d", run_id="r3")
    uri = log_example_model(store, run_id, model)
    model_id = uri.removeprefix("models:/")
    detector = fit_detector(features, model=model, feature_columns=list(features.columns))
    assert log_detector_to_model(detector, model_id, store=store) == f"{uri}/input_detector"

    first = create_model_version(store, uri, "store-models")
    second = create_model_version(store, uri, "store-models")
    assert (first, second) == ("1", "2")
    logged = store.client.get_logged_model(model_id)
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [
        {"name": "store-models", "version": 1},
        {"name": "store-models", "version": 2},
    ]
    version = store.client.get_model_version("store-models", "1")
    assert version.run_id == run_id
    served = store.resolve_artifact_uri("models:/store-models/1")
    assert served.rstrip("/") == logged.artifact_location.rstrip("/")
    assert (Path(served.removeprefix("file://")) / "input_detector").is_dir()
    _nothing_in_cwd()
