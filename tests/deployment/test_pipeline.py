"""The example pipeline through a real distributed Airflow: the scheduler, Celery workers (every task
its own process), the REST API with Airflow's own logins, a remote MLflow with S3 artifacts, the
ledger on PostgreSQL. No ``dag.test()``.

Three runs go at once (the machine has two cores; the runs share the workers):

* alice triggers a run, so she is its triggering user and the model's author: Airflow itself
  answers her 403 (she is left out of the request's assigned users); bob approves with
  ``mlsecops approve`` through the REST API; the model is promoted and verifies;
* carol triggers a run that bob rejects: nothing is promoted, the signed rejection is recorded;
* carol triggers the 30-second-timeout variant and nobody answers: the scheduler fails the task,
  nothing is promoted, the timeout is recorded.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from tests.deployment.conftest import ESCAPE_POLICY_DAG, MODEL_NAME, SHORT_TIMEOUT_DAG, Deployment

# Setup (servers, three runs of 15 task processes each on two cores) takes minutes, not seconds.
pytestmark = [pytest.mark.deployment, pytest.mark.slow, pytest.mark.timeout(2400)]

PIPELINE = "secure_training_pipeline"
APPROVAL = "approve_model"


@pytest.fixture(scope="module")
def runs(deployment: Deployment) -> dict[str, str]:
    """Trigger the three runs at once; each test then waits for its own."""
    return {
        "approved": deployment.trigger("alice", PIPELINE),
        "rejected": deployment.trigger("carol", PIPELINE),
        "timed_out": deployment.trigger("carol", SHORT_TIMEOUT_DAG),
    }


def _hitl_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{APPROVAL}/-1/hitlDetails"


def _mlflow_run(deployment: Deployment, dag_id: str, run_id: str) -> str:
    """The MLflow run holding a DAG run's evidence."""
    from mlflow import MlflowClient

    from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_RUN_ID

    client = MlflowClient(tracking_uri=deployment.mlflow_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, f"tags.`{TAG_DAG_ID}` = '{dag_id}' and tags.`{TAG_RUN_ID}` = '{run_id}'")
    assert len(found) == 1, found
    return str(found[0].info.run_id)


def _approval_evidence(deployment: Deployment, dag_id: str, run_id: str) -> list[dict]:
    """The approval decisions of a run, after ``mlsecops verify`` (a fresh process with only the
    public key) verified every signature, digest and ledger entry of the run's evidence."""
    mlflow_run = _mlflow_run(deployment, dag_id, run_id)
    done = deployment.cli("verify", "--mlflow-run-id", mlflow_run, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["verified"] is True
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    store = MLflowEvidenceStore(deployment.mlflow_uri)
    decisions = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, location in enumerate(store.list_evidence(mlflow_run)):
            folder = store.download_dir(mlflow_run, location.artifact_dir, Path(tmp) / str(n))
            result = json.loads((folder / "result.json").read_text())
            if result["gate"] == "model-approval":
                decisions.append(result)
    return decisions


def test_only_the_dag_that_replaces_the_policy_is_rejected(deployment: Deployment) -> None:
    """The example DAGs load under the cluster policy; the hostile one that points
    AIRFLOW__MLSECOPS__POLICY_FILE at its own lax file in os.environ is rejected in the real
    dag-processor, and its change leaks into no other file's parse."""
    deadline = time.monotonic() + 180
    while True:
        status, body = deployment.call("admin", "GET", "/api/v2/importErrors")
        assert status == 200, body
        if body["total_entries"] or time.monotonic() > deadline:
            break
        time.sleep(3)
    errors = {Path(e["filename"]).name: e["stack_trace"] for e in body["import_errors"]}
    assert list(errors) == [f"{ESCAPE_POLICY_DAG}.py"], errors
    assert "AIRFLOW__MLSECOPS__POLICY_FILE changed inside this process" in errors[f"{ESCAPE_POLICY_DAG}.py"]
    status, _ = deployment.call("admin", "GET", f"/api/v2/dags/{ESCAPE_POLICY_DAG}")
    assert status == 404


def test_approved_by_a_second_reviewer_is_promoted_and_verifies(deployment: Deployment, runs: dict[str, str]) -> None:
    run_id = runs["approved"]
    states = deployment.wait_for(PIPELINE, run_id, task_state=(APPROVAL, "awaiting_input"))
    assert states[APPROVAL] == "awaiting_input", states

    # The request as Airflow holds it: alice (who triggered, so authored the model) is not assigned.
    status, detail = deployment.call("bob", "GET", _hitl_path(PIPELINE, run_id))
    assert status == 200, detail
    assert sorted(u["id"] for u in detail["assigned_users"]) == ["bob"]
    assert "alice (triggered this DAG run)" in detail["body"]

    # Airflow itself refuses her: 403, before our operator sees anything.
    status, body = deployment.call(
        "alice", "PATCH", _hitl_path(PIPELINE, run_id), {"chosen_options": ["Approve"], "params_input": {}}
    )
    assert status == 403, (status, body)

    # bob answers through the REST API with his own login (mlsecops approve --username bob).
    done = deployment.cli("approve", "--dag-id", PIPELINE, "--run-id", run_id, "--wait", "600", user="bob")
    assert done.returncode == 0, done.stdout + done.stderr
    states = deployment.wait_for(PIPELINE, run_id)
    assert deployment.run_state(PIPELINE, run_id) == "success", states
    assert set(states.values()) == {"success"}, states

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=deployment.mlflow_uri, registry_uri=deployment.mlflow_uri)
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert champion.version == _registered_version(deployment, PIPELINE, run_id)
    decisions = _approval_evidence(deployment, PIPELINE, run_id)
    assert decisions[-1]["details"]["decision"] == "approved"
    assert [a["id"] for a in decisions[-1]["details"]["approvals"]] == ["bob"]

    verified = deployment.cli("verify-model-version", MODEL_NAME, champion.version, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["verified"] is True


def test_rejected_is_not_promoted_and_the_rejection_is_signed(deployment: Deployment, runs: dict[str, str]) -> None:
    run_id = runs["rejected"]
    deployment.wait_for(PIPELINE, run_id, task_state=(APPROVAL, "awaiting_input"))
    done = deployment.cli("reject", "--dag-id", PIPELINE, "--run-id", run_id, user="bob")
    assert done.returncode == 0, done.stdout + done.stderr
    states = deployment.wait_for(PIPELINE, run_id)
    assert deployment.run_state(PIPELINE, run_id) == "failed"
    assert states[APPROVAL] == "failed" and states["promote_model"] == "upstream_failed", states
    decisions = _approval_evidence(deployment, PIPELINE, run_id)
    assert decisions[-1]["details"]["decision"] == "rejected"
    assert decisions[-1]["details"]["rejected_by"]["id"] == "bob"
    _assert_not_champion(deployment, PIPELINE, run_id)


def test_timeout_fails_closed_and_is_recorded(deployment: Deployment, runs: dict[str, str]) -> None:
    run_id = runs["timed_out"]
    states = deployment.wait_for(SHORT_TIMEOUT_DAG, run_id)
    assert deployment.run_state(SHORT_TIMEOUT_DAG, run_id) == "failed"
    assert states[APPROVAL] == "failed" and states["promote_model"] == "upstream_failed", states
    decisions = _approval_evidence(deployment, SHORT_TIMEOUT_DAG, run_id)
    assert decisions[-1]["details"]["decision"] == "timed_out"
    _assert_not_champion(deployment, SHORT_TIMEOUT_DAG, run_id)


def _assert_not_champion(deployment: Deployment, dag_id: str, run_id: str) -> None:
    """The version this run registered does not hold the champion alias."""
    from mlflow import MlflowClient

    version = _registered_version(deployment, dag_id, run_id)
    client = MlflowClient(tracking_uri=deployment.mlflow_uri, registry_uri=deployment.mlflow_uri)
    assert "champion" not in client.get_model_version(MODEL_NAME, version).aliases


def _registered_version(deployment: Deployment, dag_id: str, run_id: str) -> str:
    status, xcom = deployment.call(
        "admin", "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/register_model/xcomEntries/version"
    )
    assert status == 200, xcom
    return str(xcom["value"]).strip('"')
