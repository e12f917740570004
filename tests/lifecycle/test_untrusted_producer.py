"""A gate that signs a pass without judging: promotion refuses evidence that DAG code produced.

End to end in real Airflow DAG runs (``dag.test()``) on the ``home`` fixture's MLflow store and
ledger: train -> sign -> robustness gate -> register -> promote. The DAG author's robustness
gate is a subclass, written in the DAG file, that runs the real engine and then turns its
``failed`` verdict into ``passed``; the base operator signs that like any gate. The promotion is
refused naming the class, ``verify-model-version`` reports it too, and the same pipeline with the
package's own operator promotes. A subclass that overrides ``execute()`` fails its task.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.lifecycle.version_verification import verify_model_version
from tests.helpers import pipeline_run_id, run_dag_states

pytestmark = pytest.mark.airflow

HEADER = '''
import dataclasses

from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_mlsecops.operators.robustness import RobustnessGateOperator


class LaxRobustness(RobustnessGateOperator):
    """Runs the real engine, then reports a pass whatever it found."""

    def evaluate(self, context, pipeline):
        outcome = super().evaluate(context, pipeline)
        lax = dataclasses.replace(outcome.result, verdict=Verdict.PASSED, findings=(), summary="robust enough")
        return dataclasses.replace(outcome, result=lax)


class SelfSignedRobustness(RobustnessGateOperator):
    """Overrides execute(), where the base class applies the policy and signs."""

    def execute(self, context):
        self.min_robust_accuracy = 0.0
        return super().execute(context)
'''


@pytest.fixture(scope="module")
def credit_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example pipeline's training and test data."""
    from sklearn.model_selection import train_test_split

    from airflow_mlsecops.demo.example_data import LABEL, credit_frame

    root = tmp_path_factory.mktemp("untrusted-producer")
    frame = credit_frame(rows=1200, seed=7)
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[LABEL])
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    return {"train": str(root / "train.csv"), "test": str(root / "test.csv")}


def _pipeline(name: str, data: dict[str, str], gate_class: str, min_robust_accuracy: float) -> str:
    return f"""
@task
def train(**context) -> str:
    import mlflow.sklearn
    import pandas as pd
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    hook = EvidenceHook()
    run_id = hook.pipeline_run_id(dag_id=context["dag"].dag_id, run_id=context["run_id"])
    frame = pd.read_csv({data["train"]!r})
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame[list(FEATURES)], frame[LABEL])
    model_id = hook.store.log_model(
        run_id,
        lambda path, mlflow_model: mlflow.sklearn.save_model(
            model, str(path), mlflow_model=mlflow_model, pip_requirements=[f"scikit-learn=={{sklearn.__version__}}"]
        ),
    )
    return f"models:/{{model_id}}"


model_uri = train()
sign_model = ProvenanceSignOperator(task_id="sign_model", artifacts=[model_uri], gate="model-provenance")
check_robustness = {gate_class}(
    task_id="check_robustness",
    model=model_uri,
    data={data["test"]!r},
    label_column="defaulted",
    epsilon=0.01,
    min_robust_accuracy={min_robust_accuracy!r},
)
register = RegisterModelOperator(
    task_id="register_model",
    model_uri=model_uri,
    name={name!r},
    expected_sha256="{{{{ ti.xcom_pull(task_ids='sign_model', key='subjects')[0]['digest']['sha256'] }}}}",
)
promote = PromoteModelOperator(
    task_id="promote_model",
    name={name!r},
    version=register.output["version"],
    alias="champion",
    required_gates=["robustness", "model-provenance"],
    required_approvals=0,
)
[sign_model, check_robustness] >> register >> promote
"""


def _robustness_result(home: Settings, dag_id: str):
    run_id = pipeline_run_id(home, dag_id)
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    (result,) = [r for r in report.results.values() if r.gate == "robustness"]
    return run_id, report, result


def test_a_lax_gate_subclass_in_the_dag_is_refused_at_promotion(
    airflow_db, home: Settings, write_dag, credit_data: dict[str, str]
) -> None:
    dag_id = f"lax_gate_{uuid.uuid4().hex[:6]}"
    # No model reaches a robust accuracy of 0.99 at this epsilon: the real engine fails it.
    dag = write_dag(dag_id, _pipeline("credit", credit_data, "LaxRobustness", 0.99), header=HEADER)
    dag_run, states = run_dag_states(dag)
    assert states["check_robustness"] == "success" and states["register_model"] == "success", states
    assert states["promote_model"] == "failed" and dag_run.state == "failed", states

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.client.get_registered_model("credit").aliases == {}
    _, report, robustness = _robustness_result(home, dag_id)
    # The signed evidence says it passed, and which code said so.
    assert robustness.verdict.value == "passed" and robustness.summary == "robust enough"
    assert robustness.producer is not None
    assert robustness.producer["engine"]["name"].startswith("airflow_mlsecops.gates.robustness")
    assert robustness.producer["operator"]["name"].endswith(".LaxRobustness")
    lax_class = robustness.producer["operator"]["name"]

    (refusal,) = [r for r in report.results.values() if r.gate == "model-promotion"]
    assert refusal.verdict.value == "failed" and refusal.details["failed_checks"] == ["gate:robustness"]
    detail = {c["check"]: c["detail"] for c in refusal.details["checks"]}["gate:robustness"]
    assert f"task check_robustness's evidence at check_robustness/try-1 was produced by {lax_class}" in detail
    assert "which is not airflow-mlsecops code" in detail and "is not part of the airflow_mlsecops package" in detail
    # The real model-provenance evidence of the same run counts.
    assert {c["check"]: c["status"] for c in refusal.details["checks"]}["gate:model-provenance"] == "ok"

    # An alias set by hand on that version: verify-model-version names the same class.
    store.client.set_registered_model_alias("credit", "champion", "1")
    verified = verify_model_version(store, name="credit", version="1", settings=home)
    assert not verified.ok
    (gate_problem,) = [p for p in verified.problems if p.startswith("gate:robustness")]
    assert f"was produced by {lax_class}, which is not airflow-mlsecops code" in gate_problem


def test_the_same_pipeline_with_the_real_gate_promotes(
    airflow_db, home: Settings, write_dag, credit_data: dict[str, str]
) -> None:
    dag_id = f"real_gate_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, _pipeline("credit", credit_data, "RobustnessGateOperator", 0.7), header=HEADER)
    dag_run, states = run_dag_states(dag)
    assert dag_run.state == "success", states

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.client.get_registered_model("credit").aliases == {"champion": 1}
    _, report, robustness = _robustness_result(home, dag_id)
    assert robustness.producer is not None
    assert robustness.producer["operator"]["name"] == "airflow_mlsecops.operators.robustness.RobustnessGateOperator"
    (decision,) = [r for r in report.results.values() if r.gate == "model-promotion"]
    assert decision.verdict.value == "passed", decision.summary
    assert decision.producer is not None
    assert decision.producer["engine"]["name"] == "airflow_mlsecops.lifecycle.promotion.check_promotion"
    assert decision.producer["operator"]["name"] == "airflow_mlsecops.operators.registry.PromoteModelOperator"
    verified = verify_model_version(store, name="credit", version="1", settings=home)
    # The approval the default verification asks for is not part of this pipeline; the gates are fine.
    assert not [p for p in verified.problems if p.startswith("gate:")], verified.problems


def test_a_gate_subclass_that_overrides_execute_fails_its_task(
    airflow_db, home: Settings, tmp_path: Path, write_dag, credit_data: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    dag_id = f"self_signed_{uuid.uuid4().hex[:6]}"
    dag = write_dag(
        dag_id,
        f"""
check_robustness = SelfSignedRobustness(
    task_id="check_robustness", model={str(tmp_path / "model")!r}, data={credit_data["test"]!r},
    label_column="defaulted", epsilon=0.01, min_robust_accuracy=0.99,
)
""",
        header=HEADER,
    )
    dag_run, states = run_dag_states(dag)
    assert states["check_robustness"] == "failed" and dag_run.state == "failed", states
    logged = "".join(capfd.readouterr())
    assert "AirflowFailException: check_robustness: the gate operator class" in logged
    assert "SelfSignedRobustness overrides execute (where the policy is applied" in logged
    assert "Override evaluate() only" in logged
    # Nothing was evaluated or recorded.
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.client.get_experiment_by_name(dag_id) is None


def test_the_refusal_names_the_class_and_spares_the_package_operators() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlsecops.operators.registry import PromoteModelOperator
    from airflow_mlsecops.operators.robustness import RobustnessGateOperator

    class Overriding(RobustnessGateOperator):
        def apply_policy(self, context):  # type: ignore[no-untyped-def]
            return None

    gate = Overriding(task_id="check", model="m", data="d", label_column="y", epsilon=0.1, min_robust_accuracy=0.5)
    with pytest.raises(AirflowFailException, match=r"check: the gate operator class .*Overriding overrides apply_policy"):
        gate.refuse_sealed_overrides(type(gate))
    promote = PromoteModelOperator(task_id="promote", name="m", version="1")
    promote.refuse_sealed_overrides(type(promote))  # overrides execute, and is the package's own


def test_evidence_made_outside_the_package_counts_only_where_allowed_by_name(home: Settings, tmp_path: Path) -> None:
    """Library level: results made by hand in a test (their producer says so) are refused by
    promotion, and count when the promotion allows their producer by name (the policy's
    allowed_operators); verify-model-version then judges with what the signed attestation allowed."""
    from airflow_mlsecops.lifecycle.promotion import check_promotion
    from tests.lifecycle.test_registry import SIMULATED_PRODUCERS, build_pipeline, failed_checks, promote_allowing, register

    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    refused = check_promotion(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    failed = failed_checks(refused)
    made_by_hand = {"gate:model-scan", "gate:robustness", "gate:sbom", "gate:model-signing", "gate:data-validation"}
    assert set(failed) == {*made_by_hand, "approval"}, failed
    (simulated,) = SIMULATED_PRODUCERS
    assert failed["gate:robustness"].startswith(
        f"task test_robustness's evidence at test_robustness/try-1 was produced by the engine {simulated}, "
        "which is not airflow-mlsecops code (module tests.lifecycle.test_registry is not part of the airflow_mlsecops package"
    )
    assert (
        f"task approve_model's evidence at approve_model/try-1.decision-1 was produced by the engine {simulated}"
        in (failed["approval"])
    )
    # The real engines' evidence (provenance of the model and the data) counts without an operator.
    passed = {c["check"] for c in refused.result.details["checks"] if c["status"] == "ok"}
    assert {"gate:model-provenance", "gate:dataset-provenance"} <= passed

    outcome, _ = promote_allowing(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    assert outcome.result.details["allowed_producers"] == [simulated]
    assert outcome.result.policy["allowed_producers"] == [simulated]
    assert verify_model_version(pipeline.store, name="credit", version=version, settings=home).ok


def test_a_promotion_decided_outside_the_package_is_reported_by_verify_model_version(home: Settings, tmp_path: Path) -> None:
    """A passed ``model-promotion`` record that DAG code made (as a PromoteModelOperator subclass
    could) and signed, then the alias set with it: verify-model-version says the promotion is not
    attested by airflow-mlsecops code, and it does not count as the alias's signed holder."""
    from airflow_mlsecops import gate_names
    from airflow_mlsecops.evidence.models import Subject
    from airflow_mlsecops.gates.base import Evaluation, run_gate
    from airflow_mlsecops.lifecycle.promotion import promote
    from tests.lifecycle.test_registry import build_pipeline, register

    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    model_uri = f"models:/credit/{version}"
    details = {"name": "credit", "version": version, "alias": "champion", "model_sha256": pipeline.digest}
    details |= {"required_gates": [], "required_approvals": 0, "model_uri": model_uri}
    subjects = [Subject(model_uri, pipeline.digest)]
    made_up = run_gate(
        gate_names.MODEL_PROMOTION,
        lambda: Evaluation(passed=True, summary="may become @champion", subjects=subjects, details=details),
        context=pipeline.ctx("promote_model"),
    )
    recorded = pipeline.recorder.record(made_up.result, experiment_name=pipeline.dag_id)
    from airflow_mlsecops.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"the promotion decision was produced by the engine tests\.lifecycle"):
        promote(pipeline.store, name="credit", version=version, alias="champion", outcome=made_up, evidence=recorded)
    assert pipeline.store.client.get_registered_model("credit").aliases == {}
    # The DAG code then does what promote() would have done, with MlflowClient directly.
    from airflow_mlsecops.lifecycle._registry_checks import evidence_run_uri
    from airflow_mlsecops.lifecycle.model_registry import TAG_PROMOTION_EVIDENCE, tag_promotion_evidence

    client = pipeline.store.client
    client.set_registered_model_alias("credit", "champion", version)
    for tag in (TAG_PROMOTION_EVIDENCE, tag_promotion_evidence("champion")):
        client.set_model_version_tag("credit", version, tag, str(evidence_run_uri(recorded)))

    verified = verify_model_version(pipeline.store, name="credit", version=version, settings=home)
    assert not verified.ok
    problems = dict(p.split(": ", 1) for p in verified.problems)
    assert (
        "the promotion is not attested by airflow-mlsecops code: task promote_model's evidence"
        in (problems["attestation:@champion"])
    )
    assert f"was produced by the engine {__name__}." in problems["attestation:@champion"]
    assert "no signed promotion or rollback to @champion exists" in problems["holder:@champion"]
