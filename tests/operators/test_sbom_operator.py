"""``SBOMGateOperator`` as a real Airflow task (``dag.test()``), recording into real MLflow and ledger stores."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.gates.osv_fixtures import advisory, ecosystem_range, write_osv_db
from tests.helpers import pipeline_run_id

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators.sbom import SBOMGateOperator"


def _fit():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(40, 2)), columns=["a", "b"])
    return LogisticRegression().fit(x, (x["a"] > 0).astype(int))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow.sklearn
    import sklearn

    path = tmp_path_factory.mktemp("sbom-op") / "model"
    mlflow.sklearn.save_model(
        _fit(), str(path), serialization_format="skops", pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
    )
    return path


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_sbom_gate_passes_and_records_a_verifiable_bom(
    airflow_db, home: Settings, tmp_path: Path, write_dag, model_dir: Path
) -> None:
    dag_id = f"sbom_pass_{uuid.uuid4().hex[:8]}"
    data = tmp_path / "train.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(data, index=False)
    db = write_osv_db(tmp_path / "osv")
    dag = write_dag(
        dag_id,
        f"""
sign = ProvenanceSignOperator(task_id="sign_data", artifacts=[{str(data)!r}])
sbom = SBOMGateOperator(
    task_id="sbom", model="{{{{ params.model }}}}", osv_db={str(db)!r},
    datasets=sign.output["subjects"], model_metrics={{"accuracy": 0.9}},
)

@task
def downstream(bom: str) -> str:
    assert bom.startswith("runs:/") and bom.endswith("/bom.cdx.json"), bom
    return bom

downstream(sbom.output["bom"])
""",
        header=HEADER,
        params={"model": str(model_dir)},
    )
    dag_run = dag.test()
    assert _states(dag_run) == {"sign_data": "success", "sbom": "success", "downstream": "success"}
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.run_tags(run_id)["mlsecops.gate.sbom.verdict"] == "passed"
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert report.gates["sbom/try-1"]["gate"] == "sbom"

    local = store.download_dir(run_id, "mlsecops/evidence/sbom/try-1", tmp_path / "dl")
    bom = json.loads((local / "bom.cdx.json").read_text())
    (dataset,) = [c for c in bom["components"] if c["type"] == "data"]
    assert dataset["name"] == str(data.absolute())  # the signed subject, passed through XCom
    (model,) = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    assert model["modelCard"]["modelParameters"]["datasets"] == [{"ref": dataset["bom-ref"]}]
    assert json.loads((local / "vulnerabilities.json").read_text())["checked"] is True
    result = json.loads((local / "result.json").read_text())
    assert result["subjects"][0]["name"] == str(model_dir.absolute())


def test_sbom_gate_fails_the_task_on_a_vulnerable_package(
    airflow_db, home: Settings, tmp_path: Path, write_dag, model_dir: Path
) -> None:
    import sklearn

    dag_id = f"sbom_fail_{uuid.uuid4().hex[:8]}"
    db = write_osv_db(
        tmp_path / "osv",
        [advisory("GHSA-oper-0000-0001", "scikit-learn", ranges=[ecosystem_range(("introduced", "0"))], severity="CRITICAL")],
    )
    dag = write_dag(
        dag_id,
        f"SBOMGateOperator(task_id='sbom', model={str(model_dir)!r}, osv_db={str(db)!r}, retries=2, "
        "retry_delay=timedelta(seconds=0))",
        header=HEADER,
    )
    dag_run = dag.test()
    assert dag_run.state == "failed"
    (ti,) = dag_run.get_task_instances()
    assert str(ti.state) == "failed" and ti.try_number == 1  # rejected: no retry
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.run_tags(run_id)["mlsecops.gate.sbom.verdict"] == "failed"
    local = store.download_dir(run_id, "mlsecops/evidence/sbom/try-1", tmp_path / "dl")
    vulns = json.loads((local / "vulnerabilities.json").read_text())["vulnerabilities"]
    assert [(v["id"], v["version"]) for v in vulns] == [("GHSA-oper-0000-0001", sklearn.__version__)]
    assert verify_run(run_id, settings=home).ok


def test_sbom_gate_fetches_a_registered_model_and_records_it_under_its_uri(
    airflow_db, home: Settings, tmp_path: Path, write_dag
) -> None:
    import mlflow.sklearn
    import sklearn

    from airflow_mlsecops.evidence.digest import sha256_path
    from airflow_mlsecops.lifecycle.registration import create_model_version

    name = f"sbom-op-{uuid.uuid4().hex[:8]}"
    # Logged and registered through a store's client: no process-global MLflow URI or active run.
    training = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    model = _fit()
    model_id = training.log_model(
        training.create_run(experiment_name=f"training-{name}", run_name="train"),
        lambda path, mlflow_model: mlflow.sklearn.save_model(
            model,
            str(path),
            mlflow_model=mlflow_model,
            serialization_format="skops",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        ),
    )
    assert create_model_version(training, f"models:/{model_id}", name) == "1"
    dag_id = f"sbom_fetch_{uuid.uuid4().hex[:8]}"
    db = write_osv_db(tmp_path / "osv")
    dag = write_dag(
        dag_id,
        f"""
SBOMGateOperator(task_id="registered", model="models:/{name}/1", osv_db={str(db)!r})
SBOMGateOperator(task_id="unfetchable", model="runs:/{uuid.uuid4().hex}/model", osv_db={str(db)!r})
""",
        header=HEADER,
    )
    dag_run = dag.test()
    assert _states(dag_run) == {"registered": "success", "unfetchable": "failed"}
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    tags = store.run_tags(run_id)
    assert (tags["mlsecops.gate.registered.verdict"], tags["mlsecops.gate.unfetchable.verdict"]) == ("passed", "error")
    assert verify_run(run_id, settings=home).ok

    local = store.download_dir(run_id, "mlsecops/evidence/registered/try-1", tmp_path / "registered")
    result = json.loads((local / "result.json").read_text())
    digest = sha256_path(store.download_uri(f"models:/{name}/1", tmp_path / "again"))
    assert result["subjects"] == [{"name": f"models:/{name}/1", "digest": {"sha256": digest}}]
    components = json.loads((local / "bom.cdx.json").read_text())["components"]
    (model,) = [c for c in components if c["type"] == "machine-learning-model"]
    assert (model["name"], model["version"], model["hashes"][0]["content"]) == (name, "1", digest)

    local = store.download_dir(run_id, "mlsecops/evidence/unfetchable/try-1", tmp_path / "unfetchable")
    result = json.loads((local / "result.json").read_text())
    assert result["verdict"] == "error" and result["subjects"] == []
    assert result["policy"]["fail_on"] == ["critical", "high", "unknown"] and result["policy"]["osv_db"] == str(db)
    assert "cyclonedx-python-lib" in result["tool_versions"]


def test_sbom_gate_arguments_are_checked_at_parse_time() -> None:
    from airflow_mlsecops.operators.sbom import SBOMGateOperator

    with pytest.raises(ValueError, match="unknown severities"):
        SBOMGateOperator(task_id="s", model="m", fail_on=["severe"])
    with pytest.raises(ValueError, match="model is required"):
        SBOMGateOperator(task_id="s", model="")
    with pytest.raises(ValueError, match="online"):
        SBOMGateOperator(task_id="s", model="m", online="yes")
    op = SBOMGateOperator(task_id="s", model="m", fail_on="critical, HIGH")
    assert op.fail_on == ("critical", "high")
    assert SBOMGateOperator(task_id="t", model="m").fail_on == ("critical", "high", "unknown")
