"""Register and promote in real Airflow DAG runs: train -> sign -> gates -> register -> promote.

The model is trained and logged in the DAG run and every gate the promotion requires is the
package's real operator (scan, robustness, SBOM, OpenSSF signing, provenance, data validation):
evidence a DAG task made by hand would not count (its producer is not airflow-mlsecops code, see
``tests/lifecycle/test_untrusted_producer.py``). The approval step is covered with a real reviewer
in ``tests/dags/test_training_pipeline.py``; here the promotion needs none.
"""

from __future__ import annotations

import inspect
import json
import uuid
from pathlib import Path

import pytest

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.model_registry import TAG_MODEL_SHA256
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.lifecycle.version_verification import verify_model_version
from tests.helpers import pipeline_run_id, run_dag_states

pytestmark = pytest.mark.airflow

HEADER = """
from airflow_mlsecops.operators import (
    ModelScanGateOperator, ModelSignOperator, RobustnessGateOperator, SBOMGateOperator,
)
from airflow_mlsecops.operators.registry import PromoteModelOperator, RegisterModelOperator
"""
GATES = {
    "scan_model": "model-scan",
    "test_robustness": "robustness",
    "build_sbom": "sbom",
    "sign_model_openssf": "model-signing",
    "validate_data": "data-validation",
}
REQUIRED = ["model-scan", "robustness", "sbom", "model-signing", "model-provenance", "data-validation"]


def _training_data(tmp_path: Path) -> tuple[Path, Path]:
    """A small labelled data set (the label is the sign of f0) and an expectation suite for it."""
    import numpy as np
    import pandas as pd

    x = np.random.default_rng(0).normal(size=(200, 3))
    frame = pd.DataFrame(x, columns=["f0", "f1", "f2"]).assign(label=(x[:, 0] > 0).astype(int))
    data = tmp_path / "train.csv"
    frame.to_csv(data, index=False)
    suite = tmp_path / "suite.json"
    suite.write_text(
        json.dumps(
            {
                "name": "train",
                "expectations": [
                    {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["f0", "f1", "f2", "label"]}},
                    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": [0, 1]}},
                ],
            }
        )
    )
    return data, suite


def _dag_source(data: Path, suite: Path, name: str, gates: dict[str, str]) -> str:
    gate_tasks = {
        "scan_model": "ModelScanGateOperator(task_id='scan_model', path=model_uri)",
        "test_robustness": (
            f"RobustnessGateOperator(task_id='test_robustness', model=model_uri, data={str(data)!r}, "
            "label_column='label', epsilon=0.01, min_robust_accuracy=0.6)"
        ),
        "build_sbom": "SBOMGateOperator(task_id='build_sbom', model=model_uri, osv_db='', require_vulnerability_check=False)",
        "sign_model_openssf": "ModelSignOperator(task_id='sign_model_openssf', path=model_uri)",
        "validate_data": f"DataValidationGateOperator(task_id='validate_data', data={str(data)!r}, suite={str(suite)!r})",
    }
    chosen = "\n".join(f"    {gate_tasks[task]}," for task in gates)
    return f"""
@task
def train(**context) -> str:
    import mlflow.sklearn
    import pandas as pd
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from airflow_mlsecops.hooks.evidence import EvidenceHook

    hook = EvidenceHook()
    run_id = hook.pipeline_run_id(dag_id=context["dag"].dag_id, run_id=context["run_id"])
    frame = pd.read_csv({str(data)!r})
    model = LogisticRegression().fit(frame[["f0", "f1", "f2"]], frame["label"])
    # Through the hook's store, as in a real worker: no global tracking URI, no active run.
    model_id = hook.store.log_model(
        run_id,
        lambda path, mlflow_model: mlflow.sklearn.save_model(
            model, str(path), mlflow_model=mlflow_model, pip_requirements=[f"scikit-learn=={{sklearn.__version__}}"]
        ),
    )
    return f"models:/{{model_id}}"


model_uri = train()
sign_model = ProvenanceSignOperator(task_id="sign_model", artifacts=[model_uri], gate="model-provenance")
gates = [
{chosen}
]
register = RegisterModelOperator(
    training_data={str(data)!r},
    task_id="register_model",
    model_uri=model_uri,
    name={name!r},
    expected_sha256="{{{{ ti.xcom_pull(task_ids='sign_model', key='subjects')[0]['digest']['sha256'] }}}}",
    tags={{"team": "credit-risk"}},
)
promote = PromoteModelOperator(
    task_id="promote_model",
    name={name!r},
    version=register.output["version"],
    alias="champion",
    required_gates={REQUIRED!r},
    # offline, the SBOM gate records warned (vulnerability check not performed): the promotion accepts it
    accept_warned=("sbom",),
    required_approvals=0,
)
[sign_model, *gates] >> register >> promote
"""


def test_operator_defaults_match_the_engine() -> None:
    from airflow_mlsecops.lifecycle.promotion import check_promotion
    from airflow_mlsecops.operators.registry import DEFAULT_REQUIRED_GATES as OPERATOR_DEFAULT
    from airflow_mlsecops.operators.registry import PromoteModelOperator

    engine_default = inspect.signature(check_promotion).parameters["required_gates"].default
    assert OPERATOR_DEFAULT == engine_default == gate_names.DEFAULT_REQUIRED_GATES
    assert inspect.signature(PromoteModelOperator.__init__).parameters["required_gates"].default == engine_default
    with pytest.raises(ValueError, match="warn-only"):
        PromoteModelOperator(task_id="p", name="m", version="1", warn_only=True)


def test_register_then_promote_sets_the_alias(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    data, suite = _training_data(tmp_path)
    dag_id = f"registry_ok_{uuid.uuid4().hex[:6]}"
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(data, suite, "credit", GATES), header=HEADER))
    assert dag_run.state == "success", states

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.client.get_registered_model("credit").aliases == {"champion": 1}
    mv = store.client.get_model_version("credit", "1")
    assert mv.tags["team"] == "credit-risk" and mv.tags["mlsecops.approved_by"] == "none required"

    run_id = pipeline_run_id(store, dag_id)
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    (signing,) = [r for r in report.results.values() if r.gate == "model-signing"]
    assert mv.tags["mlsecops.signature_sha256"] == signing.details["bundle_sha256"]
    # Every gate's evidence names the package's operator that produced it.
    operators = {r.gate: r.producer["operator"]["name"] for r in report.results.values() if r.producer and r.producer["operator"]}
    assert operators["robustness"] == "airflow_mlsecops.operators.robustness.RobustnessGateOperator"
    assert operators["model-promotion"] == "airflow_mlsecops.operators.registry.PromoteModelOperator"
    verdicts = {g["gate"]: g["verdict"] for g in report.gates.values()}
    assert verdicts["model-registration"] == verdicts["model-promotion"] == "passed"
    subjects = {s.name: s.sha256 for r in report.results.values() if r.gate == "model-promotion" for s in r.subjects}
    assert subjects == {"models:/credit/1": mv.tags[TAG_MODEL_SHA256]}
    assert mv.tags["mlsecops.promotion_evidence"] == f"runs:/{run_id}/mlsecops/evidence/promote_model/try-1"
    assert verify_model_version(store, name="credit", version="1", settings=home).ok


def test_promotion_with_a_missing_gate_fails_and_leaves_the_alias(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    data, suite = _training_data(tmp_path)
    dag_id = f"registry_nosbom_{uuid.uuid4().hex[:6]}"
    gates = {task: gate for task, gate in GATES.items() if gate != "sbom"}
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(data, suite, "credit", gates), header=HEADER))
    assert dag_run.state == "failed"
    assert states["register_model"] == "success" and states["promote_model"] == "failed", states

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.client.get_registered_model("credit").aliases == {}
    assert "mlsecops.promoted_at" not in store.client.get_model_version("credit", "1").tags
    run_id = pipeline_run_id(store, dag_id)
    assert store.run_tags(run_id)["mlsecops.gate.promote_model.verdict"] == "failed"
    report = verify_run(run_id, settings=home)
    (refusal,) = [r for r in report.results.values() if r.gate == "model-promotion"]
    assert refusal.details["failed_checks"] == ["gate:sbom"]
    assert "gate:sbom" in refusal.summary
