"""The model scanner as a real Airflow task (``dag.test()``) recording evidence into real MLflow."""

from __future__ import annotations

import json
import os
import pickle
import uuid
import warnings
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.cli.test_model_scan_code import model_from_code
from tests.helpers import pipeline_run_id, run_dag

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators.model_scan import ModelScanGateOperator"


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _mlflow_model(tmp_path: Path) -> Path:
    import mlflow.sklearn
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(60, 4, random_state=0)
    target = tmp_path / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            LogisticRegression().fit(X, y), str(target), serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
        )
    return target


def test_benign_mlflow_model_passes(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    model = _mlflow_model(tmp_path)
    dag_id = f"model_scan_ok_{uuid.uuid4().hex[:6]}"
    dag = write_dag(
        dag_id,
        f"""
scan = ModelScanGateOperator(task_id="scan", path={str(model)!r})

@task
def register(summary: dict) -> str:
    assert summary["verdict"] == "passed" and summary["metrics"]["files"] >= 4
    return summary["subjects"][0]["digest"]["sha256"]

register(scan.output)
""",
        header=HEADER,
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "success", {t: str(ti.state) for t, ti in tis.items()}
    run_id = pipeline_run_id(home, dag_id)
    assert MLflowEvidenceStore(home.tracking_uri).run_tags(run_id)["mlsecops.gate.scan.verdict"] == "passed"
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert report.gates["scan/try-1"]["gate"] == "model-scan"


def test_malicious_pickle_fails_without_retry_and_records_why(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    marker = tmp_path / "PWNED"
    model = tmp_path / "model.joblib"
    model.write_bytes(pickle.dumps(_Touch(str(marker)), protocol=4))
    dag_id = f"model_scan_bad_{uuid.uuid4().hex[:6]}"
    dag = write_dag(
        dag_id,
        f"ModelScanGateOperator(task_id='scan', path={str(model)!r}, retries=3, retry_delay=timedelta(seconds=0))",
        header=HEADER,
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert str(tis["scan"].state) == "failed"
    assert tis["scan"].try_number == 1  # AirflowFailException: no retry
    assert not marker.exists()
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.run_tags(run_id)["mlsecops.gate.scan.verdict"] == "failed"
    local = store.download_dir(run_id, "mlsecops/evidence/scan/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["verdict"] == "failed"
    assert result["findings"][0]["location"] == "model.joblib @ byte 28"
    assert "posix.system" in result["findings"][0]["message"]
    scan_report = json.loads((local / "model_scan_report.json").read_text())
    assert scan_report["files"][0]["globals"] == {"posix.system": 1}
    assert verify_run(run_id, settings=home).ok


def test_model_fetched_from_an_mlflow_run_is_scanned(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    model = _mlflow_model(tmp_path)
    # The store's client (both URIs, artifacts under the test's home), not a client that would put
    # the experiment's artifacts in ./mlruns of the working directory.
    training = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    training_run = training.create_run(experiment_name=f"training-{uuid.uuid4().hex[:6]}", run_name="train")
    training.client.log_artifacts(training_run, str(model), "model")
    uri = f"runs:/{training_run}/model"
    dag_id = f"model_scan_uri_{uuid.uuid4().hex[:6]}"
    dag = write_dag(
        dag_id, "ModelScanGateOperator(task_id='scan', path='{{ params.model }}')", header=HEADER, params={"model": uri}
    )
    dag_run, _ = run_dag(dag)
    assert dag_run.state == "success"
    run_id = pipeline_run_id(home, dag_id)
    report = verify_run(run_id, settings=home)  # re-fetches runs:/ and re-hashes it
    assert report.ok, [c.to_dict() for c in report.failures]
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    local = store.download_dir(run_id, "mlsecops/evidence/scan/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["verdict"] == "passed"
    assert result["subjects"][0]["name"] == uri


def test_bad_arguments_fail_at_parse_time() -> None:
    from airflow_mlsecops.operators.model_scan import ModelScanGateOperator

    with pytest.raises(ValueError, match="path is required"):
        ModelScanGateOperator(task_id="s", path="")
    with pytest.raises(ValueError, match="gadget"):
        ModelScanGateOperator(task_id="s", path="m.pkl", allow_globals=["builtins.eval"])
    with pytest.raises(ValueError, match="unknown scan limits"):
        ModelScanGateOperator(task_id="s", path="m.pkl", limits={"max_depth": 2})
    with pytest.raises(ValueError, match="positive"):
        ModelScanGateOperator(task_id="s", path="m.pkl", limits={"max_archive_depth": 0})
    op = ModelScanGateOperator(task_id="s", path=Path("m.pkl"), limits={"max_archive_depth": 2}, allow_globals=["pkg.Cls"])
    assert op.path == "m.pkl" and op.limits.max_archive_depth == 2 and "path" in op.template_fields


def test_the_operator_passes_the_flag_on_and_refuses_one_that_is_not_a_bool(home, tmp_path: Path) -> None:
    from airflow_mlsecops.evidence.models import PipelineContext, Verdict
    from airflow_mlsecops.operators import ModelScanGateOperator

    with pytest.raises(ValueError, match="allow_model_code must be True or False"):
        ModelScanGateOperator(task_id="scan", path="/m", allow_model_code="false")
    model = str(model_from_code(tmp_path))
    pipeline = PipelineContext(dag_id="d", run_id="r", task_id="scan")
    assert ModelScanGateOperator(task_id="scan", path=model).evaluate({}, pipeline).verdict is Verdict.FAILED
    allowed = ModelScanGateOperator(task_id="scan", path=model, allow_model_code=True).evaluate({}, pipeline)
    # let through, but the model's code was not scanned: warned (incomplete), never passed
    assert allowed.verdict is Verdict.WARNED and allowed.result.policy["allow_model_code"] is True
    assert allowed.result.not_performed == ("model-scan.model-code-not-scanned",)
