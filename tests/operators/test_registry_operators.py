"""Register and promote in real Airflow DAG runs: train -> sign -> gates -> register -> promote.

The model is trained and logged in the DAG run, signed by the real ``ProvenanceSignOperator``;
the gates whose operators are built elsewhere (scan, robustness, SBOM, OpenSSF signing, data
validation, approval) are recorded as signed results by a task of the same DAG run.
"""

from __future__ import annotations

import inspect
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

HEADER = "from airflow_mlsecops.operators.registry import PromoteModelOperator, RegisterModelOperator"
GATES = {
    "scan_model": "model-scan",
    "test_robustness": "robustness",
    "build_sbom": "sbom",
    "sign_model_openssf": "model-signing",
    "validate_data": "data-validation",
}


def _dag_source(data: Path, name: str, gates: dict[str, str]) -> str:
    return f"""
@task
def train(**context) -> str:
    import mlflow.sklearn
    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from airflow_mlsecops.hooks.evidence import EvidenceHook

    hook = EvidenceHook()
    run_id = hook.pipeline_run_id(dag_id=context["dag"].dag_id, run_id=context["run_id"])
    x = np.random.default_rng(0).normal(size=(40, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    # Through the hook's store, as in a real worker: no global tracking URI, no active run.
    model_id = hook.store.log_model(
        run_id,
        lambda path, mlflow_model: mlflow.sklearn.save_model(
            model, str(path), mlflow_model=mlflow_model, pip_requirements=[f"scikit-learn=={{sklearn.__version__}}"]
        ),
    )
    return f"models:/{{model_id}}"


@task
def other_gates(signed: dict, **context) -> None:
    from airflow_mlsecops.evidence.digest import sha256_path
    from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Subject, Verdict
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    ti = context["ti"]
    recorder = EvidenceHook().recorder
    uri, digest = signed["subjects"][0]["name"], signed["subjects"][0]["digest"]["sha256"]
    data = Subject({str(data)!r}, sha256_path({str(data)!r}))
    for task_id, gate in {gates!r}.items():
        recorder.record(
            GateResult.create(
                gate=gate,
                verdict=Verdict.PASSED,
                subjects=[data if gate.startswith("data") else Subject(uri, digest)],
                context=PipelineContext(ti.dag_id, ti.run_id, task_id),
                summary=gate + " passed",
                details={{"signature_sha256": "5" * 64}} if gate == "model-signing" else {{}},
            ),
            experiment_name=ti.dag_id,
        )
    approval = GateResult.create(
        gate="model-approval",
        verdict=Verdict.PASSED,
        subjects=[Subject(uri, digest)],
        context=PipelineContext(ti.dag_id, ti.run_id, "approve_model"),
        summary="approved by alice",
        details={{
            "decision": "approved",
            "approvals": [{{"id": "u1", "name": "alice", "responded_at": "2026-01-01T10:00:00Z"}}],
            "required_approvals": 1,
            "model_uri": uri,
            "model_sha256": digest,
            "evidence_digest": "e" * 64,
            "reviewers": ["alice", "bob"],
        }},
    )
    recorder.record(approval, experiment_name=ti.dag_id, record="decision-1")


model_uri = train()
sign_model = ProvenanceSignOperator(task_id="sign_model", artifacts=[model_uri], gate="model-provenance")
register = RegisterModelOperator(
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
    required_gates=["model-scan", "robustness", "sbom", "model-signing", "model-provenance", "data-validation"],
    required_approvals=1,
)
other_gates(sign_model.output) >> register >> promote
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
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    dag_id = f"registry_ok_{uuid.uuid4().hex[:6]}"
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(data, "credit", GATES), header=HEADER))
    assert dag_run.state == "success", states

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.client.get_registered_model("credit").aliases == {"champion": 1}
    mv = store.client.get_model_version("credit", "1")
    assert mv.tags["team"] == "credit-risk" and mv.tags["mlsecops.approved_by"] == "alice"
    assert mv.tags["mlsecops.signature_sha256"] == "5" * 64

    run_id = pipeline_run_id(store, dag_id)
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    verdicts = {g["gate"]: g["verdict"] for g in report.gates.values()}
    assert verdicts["model-registration"] == verdicts["model-promotion"] == "passed"
    subjects = {s.name: s.sha256 for r in report.results.values() if r.gate == "model-promotion" for s in r.subjects}
    assert subjects == {"models:/credit/1": mv.tags[TAG_MODEL_SHA256]}
    assert mv.tags["mlsecops.promotion_evidence"] == f"runs:/{run_id}/mlsecops/evidence/promote_model/try-1"
    assert verify_model_version(store, name="credit", version="1", settings=home).ok


def test_promotion_with_a_missing_gate_fails_and_leaves_the_alias(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    dag_id = f"registry_nosbom_{uuid.uuid4().hex[:6]}"
    gates = {task: gate for task, gate in GATES.items() if gate != "sbom"}
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(data, "credit", gates), header=HEADER))
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
