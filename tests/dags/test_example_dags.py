"""Every example DAG imports cleanly, and the secure training pipeline runs end to end for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import TAG_RUN_ID, MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.conftest import REPO_ROOT, load_dag_file

DAGS = REPO_ROOT / "dags"


def test_every_example_dag_imports_without_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert "secure_training_pipeline" in bag.dag_ids


@pytest.mark.slow
def test_example_dag_imports_no_heavy_library_at_parse_time() -> None:
    import subprocess
    import sys

    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('mlflow', 'great_expectations', 'evidently', 'sklearn', 'pandas', 'boto3') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "secure_training_pipeline.py")], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


@pytest.mark.airflow
def test_secure_training_pipeline_end_to_end(airflow_db, home: Settings, tmp_path: Path) -> None:
    from tests.dags.test_training_pipeline import _run

    dag = load_dag_file(DAGS / "secure_training_pipeline.py", "secure_training_pipeline")
    dag_run, states = _run(dag, "alice", approve=True)
    assert dag_run.state == "success", states
    assert set(states.values()) == {"success"}

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    experiment = store.client.get_experiment_by_name("secure_training_pipeline")
    (run,) = store.client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_RUN_ID}` = '{dag_run.run_id}'")
    assert run.data.metrics["accuracy"] > 0.7
    tags = run.data.tags
    for task_id in (
        "validate_data",
        "check_integrity",
        "scan_pii",
        "sign_training_data",
        "scan_model",
        "sign_model",
        "promote_model",
    ):
        assert tags[f"mlsecops.gate.{task_id}.verdict"] == "passed"
    # The author is the run's triggering user (dag.test() triggers as "dag_test"), never the OS
    # user; the MLflow UI shows it as "Created by" and lists the logged model under the run.
    assert tags["mlflow.user"] == "dag_test"
    assert len(store.client.get_run(run.info.run_id).outputs.model_outputs) == 1
    report = verify_run(run.info.run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    model_subjects = [c for c in report.checks if c.scope == "attest_model/try-1" and c.name.startswith("subject:models:/")]
    assert len(model_subjects) == 1 and model_subjects[0].status.value == "ok"

    # One byte of the stored model changes after signing: verification must fail on exactly that subject.
    model_uri = model_subjects[0].name.removeprefix("subject:")
    location = Path(store.resolve_artifact_uri(model_uri).removeprefix("file://"))
    weights = location / "model.skops"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    tampered = verify_run(run.info.run_id, settings=home)
    # Every gate that judged those bytes now fails its subject check.
    failed = {(c.scope, c.name) for c in tampered.failures}
    assert ("attest_model/try-1", f"subject:{model_uri}") in failed
    assert ("scan_model/try-1", f"subject:{model_uri}") in failed
    assert all(name.startswith("subject:models:/") for _, name in failed)


def test_training_refuses_data_changed_after_signing(tmp_path: Path) -> None:
    """The train task re-hashes the batch the provenance gate signed and refuses a changed one."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.evidence.digest import sha256_file

    dag = load_dag_file(DAGS / "secure_training_pipeline.py", "secure_training_pipeline")
    train = dag.get_task("train_model").python_callable
    data = tmp_path / "train.csv"
    credit_frame(rows=200, seed=1).to_csv(data, index=False)
    signed = {"subjects": [{"name": str(data.absolute()), "digest": {"sha256": sha256_file(data)}}]}
    with data.open("a") as fh:
        fh.write("30,50000.0,0.2,3,0,100,0\n")
    with pytest.raises(AirflowFailException, match="changed after it was signed"):
        train(str(data), signed)
