"""The whole secure training pipeline, run for real to each outcome a reviewer can choose.

``dag.test()`` runs ``dags/secure_training_pipeline.py`` while a reviewer thread answers the
approval exactly as ``mlsecops approve`` does (Airflow's own human-in-the-loop mechanism).
"""

from __future__ import annotations

# The reviewer thread queries Airflow's models while dag.test() runs: import them here first.
import airflow.models.dagrun
import airflow.models.hitl
import airflow.models.taskinstance
import airflow.models.trigger
import airflow.models.xcom
import airflow.triggers.base  # noqa: F401
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.lifecycle.version_verification import verify_model_version
from tests.conftest import REPO_ROOT, TEST_DAGS, load_dag_file
from tests.helpers import Reviewer, pipeline_run_id, run_dag_with_reviewer

pytestmark = pytest.mark.airflow

DAG_FILE = REPO_ROOT / "dags" / "secure_training_pipeline.py"
CONF = {"rows": 1500, "seed": 11}


def _run(dag, user: str, approve: bool):
    reviewer = Reviewer(dag.dag_id, [(user, approve)], timeout=240)
    dag_run, states = run_dag_with_reviewer(dag, reviewer, run_conf=CONF)
    assert not reviewer.errors, reviewer.errors
    return dag_run, states


def _report(settings: Settings, dag_id: str, run_id: str):
    store = MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    return store, verify_run(pipeline_run_id(store, dag_id, run_id=run_id), settings=settings, store=store)


def _final_approval(report) -> dict:
    (_, result) = max((s, r) for s, r in report.results.items() if r.gate == "model-approval")
    return {"verdict": result.verdict.value, **result.details}


def test_approved_then_rejected(airflow_db, home: Settings) -> None:
    """Approved: the alias is set and the version verifies. Rejected: the alias stays where it was,
    and the rejection is signed evidence."""
    dag = load_dag_file(DAG_FILE, "secure_training_pipeline")
    dag_run, states = _run(dag, "alice", approve=True)
    assert dag_run.state == "success", states
    store, report = _report(home, dag.dag_id, dag_run.run_id)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert _final_approval(report)["decision"] == "approved"
    champion = store.client.get_model_version_by_alias("credit-risk", "champion")
    assert champion.tags["mlsecops.run_id"] == dag_run.run_id
    assert "alice" in champion.tags["mlsecops.approved_by"]
    # The model names the data it was trained on, and the data gates judged exactly those bytes.
    validated = {s.sha256 for r in report.results.values() if r.gate == "data-validation" for s in r.subjects}
    assert champion.tags["mlsecops.training_data_sha256"] in validated
    assert verify_model_version(store, name="credit-risk", version=champion.version, settings=home).ok

    rejected_run, states = _run(dag, "bob", approve=False)
    assert rejected_run.state == "failed"
    assert states["approve_model"] == "failed" and states["promote_model"] == "upstream_failed"
    _, rejected_report = _report(home, dag.dag_id, rejected_run.run_id)
    assert rejected_report.ok
    decision = _final_approval(rejected_report)
    assert decision["decision"] == "rejected" and decision["rejected_by"]["id"] == "bob"
    assert store.client.get_model_version_by_alias("credit-risk", "champion").version == champion.version


SWAP_DAG = '''"""An Airflow DAG: the secure training pipeline with an attacker between approval and promotion."""
from airflow.sdk import task
from secure_training_pipeline import MODEL_URI, build_secure_training_pipeline


@task
def swap_model(model_uri: str) -> None:
    """An attacker with write access to the artifact store rewrites the model after approval."""
    from pathlib import Path

    from airflow_mlsecops.hooks.evidence import EvidenceHook

    location = EvidenceHook().store.resolve_artifact_uri(model_uri).removeprefix("file://")
    target = next(Path(location).rglob("model.skops"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))


dag = build_secure_training_pipeline("pipeline_with_swap")
with dag:
    dag.get_task("approve_model") >> swap_model(MODEL_URI) >> dag.get_task("promote_model")
'''


def test_model_swapped_after_approval_is_not_promoted(airflow_db, home: Settings, monkeypatch) -> None:
    """A model file changed in the store after the scan (here: after approval, right before
    promotion) makes the promotion refuse, and the alias is never set. The DAG is a variant built
    by another DAG file with ``build_secure_training_pipeline``."""
    monkeypatch.syspath_prepend(str(DAG_FILE.parent))  # Airflow puts a bundle's folder on sys.path
    path = TEST_DAGS / "pipeline_with_swap.py"
    path.write_text(SWAP_DAG)
    dag = load_dag_file(path, "pipeline_with_swap")
    dag_run, states = _run(dag, "alice", approve=True)
    assert states["approve_model"] == "success" and states["swap_model"] == "success"
    assert states["promote_model"] == "failed" and dag_run.state == "failed"
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    with pytest.raises(Exception, match=r"(?i)alias|not found|does not exist"):
        store.client.get_model_version_by_alias("credit-risk", "champion")
    _, report = _report(home, "pipeline_with_swap", dag_run.run_id)
    promotion = max((s, r) for s, r in report.results.items() if r.gate == "model-promotion")[1]
    assert promotion.verdict.value == "failed"
    assert any(
        "model" in f.message.lower() and ("digest" in f.message.lower() or "sha256" in f.message.lower())
        for f in promotion.failed_findings
    )
