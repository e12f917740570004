"""``TrainingEnvironmentGateOperator`` as a real Airflow task (``dag.test()``): the worker's own
environment and a site-packages directory, recorded into real MLflow and ledger stores."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.gates.osv_fixtures import write_osv_db
from tests.gates.test_environment import save_pinned_model, training_site
from tests.helpers import pipeline_run_id

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators.environment import TrainingEnvironmentGateOperator"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pinned_model(tmp_path_factory.mktemp("env-op") / "model")


def test_the_gate_judges_the_workers_environment_and_rejects_a_mismatch(
    airflow_db: Path, home: Settings, tmp_path: Path, write_dag: Any, model_dir: Path
) -> None:
    dag_id = f"environment_{uuid.uuid4().hex[:8]}"
    db = write_osv_db(tmp_path / "osv")
    other = training_site(tmp_path / "other", sklearn="1.0.2")
    dag = write_dag(
        dag_id,
        f"""
worker = TrainingEnvironmentGateOperator(task_id="worker", model="{{{{ params.model }}}}", osv_db={str(db)!r})
TrainingEnvironmentGateOperator(
    task_id="mismatch", model={str(model_dir)!r}, site_packages={str(other)!r}, osv_db={str(db)!r},
    retries=2, retry_delay=timedelta(seconds=0),
)

@task
def downstream(bom: str) -> str:
    assert bom.startswith("runs:/") and bom.endswith("/environment.cdx.json"), bom
    return bom

downstream(worker.output["bom"])
""",
        header=HEADER,
        params={"model": str(model_dir)},
    )
    dag_run = dag.test()
    states = {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    # The worker (this interpreter) installed what the model declares; the other environment did not,
    # and a rejection is not retried.
    assert states == {"worker": ("success", 1), "downstream": ("success", 1), "mismatch": ("failed", 1)}

    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    tags = store.run_tags(run_id)
    assert (tags["mlsecops.gate.worker.verdict"], tags["mlsecops.gate.mismatch.verdict"]) == ("passed", "failed")
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]

    local = store.download_dir(run_id, "mlsecops/evidence/worker/try-1", tmp_path / "worker")
    result = json.loads((local / "result.json").read_text())
    assert [s["name"] for s in result["subjects"]] == [str(model_dir.absolute()), "environment.cdx.json"]
    assert result["policy"]["environment_from_worker"] is True and result["producer"]["operator"]
    bom = json.loads((local / "environment.cdx.json").read_text())
    libraries = {c["name"].lower() for c in bom["components"] if c["type"] == "library"}
    assert {"mlflow", "scikit-learn", "pandas", "apache-airflow"} <= libraries  # the worker's own packages

    local = store.download_dir(run_id, "mlsecops/evidence/mismatch/try-1", tmp_path / "mismatch")
    differences = json.loads((local / "environment-report.json").read_text())["differences"]
    assert [(d["kind"], d["package"], d["installed"]) for d in differences] == [("mismatch", "scikit-learn", "1.0.2")]


def test_arguments_are_checked_at_parse_time() -> None:
    from airflow_mlsecops.operators.environment import TrainingEnvironmentGateOperator

    with pytest.raises(ValueError, match="unknown severities"):
        TrainingEnvironmentGateOperator(task_id="e", model="m", fail_on=["severe"])
    with pytest.raises(ValueError, match="model is required"):
        TrainingEnvironmentGateOperator(task_id="e", model="")
    with pytest.raises(ValueError, match="not both"):
        TrainingEnvironmentGateOperator(task_id="e", model="m", site_packages="/a", freeze="/b")
    with pytest.raises(ValueError, match="fail_on_mismatch must be True or False"):
        TrainingEnvironmentGateOperator(task_id="e", model="m", fail_on_mismatch="false")  # type: ignore[arg-type]
    op = TrainingEnvironmentGateOperator(task_id="e", model=Path("/m"), fail_on="critical, HIGH")
    assert (op.model, op.fail_on) == ("/m", ("critical", "high"))
