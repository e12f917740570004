"""Data gates on a decoy: promotion requires that the data gates judged exactly the bytes the model
was trained on.

Each test runs the pipeline's own functions for real on a fresh MLflow store (the ``home``
fixture): the data gates' engines on real files, the example DAG's training step
(``dags/secure_training_pipeline.py``'s ``train_model``), which logs the digest of the data it
trained on with the model, the real registration gate, which records that digest in its signed
evidence, and the promotion check. The model gates whose engines are tested elsewhere (scan,
robustness, SBOM, signing) and the approval are recorded as signed results, as in
``test_registry.py``.

The hostile DAG validates a decoy file and trains on another one: every gate passed, and the
promotion must still refuse.
"""

from __future__ import annotations

import importlib.util
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.dsse import sign_envelope
from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Subject, Verdict
from airflow_mlsecops.gates.data_validation import validate_data
from airflow_mlsecops.gates.provenance import PROVENANCE_FILE, attest_artifacts, verify_artifacts
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle._registry_checks import verify_pipeline_run
from airflow_mlsecops.lifecycle.promotion import check_promotion
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from airflow_mlsecops.lifecycle.registration import register_model
from airflow_mlsecops.lifecycle.training_data import TAG_TRAINING_DATA, training_data_check
from airflow_mlsecops.lifecycle.verification import Status
from tests.conftest import REPO_ROOT
from tests.io.test_verified_bytes import SwapAfterHashing

# Trains and registers real models in a real MLflow registry: seconds each.
pytestmark = pytest.mark.slow

DAG_FILE = REPO_ROOT / "dags" / "secure_training_pipeline.py"
SUITE = REPO_ROOT / "dags" / "suites" / "training_data.json"
DATA_GATES = ("data-validation", "dataset-provenance", "provenance-verification")
MODEL_GATES = ("model-scan", "robustness", "sbom", "model-signing", "model-provenance")
REQUIRED = (*DATA_GATES, *MODEL_GATES)


def example_dag_module() -> ModuleType:
    """``dags/secure_training_pipeline.py`` as a module (its tasks' functions are what we run)."""
    spec = importlib.util.spec_from_file_location(f"training_pipeline_{uuid.uuid4().hex[:6]}", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def credit_csv(path: Path, seed: int) -> Path:
    from airflow_mlsecops.demo.example_data import credit_frame

    credit_frame(rows=600, seed=seed).to_csv(path, index=False)
    return path


@dataclass
class Run:
    """One pipeline run: its ids, the store and the recorder that signs its evidence."""

    home: Settings
    dag_id: str = "training_on_a_decoy"
    run_id: str = field(default_factory=lambda: f"manual__{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self.store = MLflowEvidenceStore(self.home.tracking_uri, self.home.artifact_root)
        self.recorder = EvidenceRecorder.from_settings(self.home)
        self.mlflow_run_id = self.store.resolve_pipeline_run(experiment_name=self.dag_id, dag_id=self.dag_id, run_id=self.run_id)

    def ctx(self, task_id: str) -> PipelineContext:
        return PipelineContext(self.dag_id, self.run_id, task_id, 1)

    def record(self, outcome: Any) -> GateResult:
        result = outcome.result if hasattr(outcome, "result") else outcome
        files = getattr(outcome, "files", None)
        statements = getattr(outcome, "statements", None)
        self.recorder.record(result, experiment_name=self.dag_id, files=files, statements=statements)
        return result

    def task_context(self) -> dict[str, Any]:
        """What Airflow hands a ``@task`` that the training step reads."""
        return {"dag": SimpleNamespace(dag_id=self.dag_id), "run_id": self.run_id, "params": {"author": "carol"}, "dag_run": None}


def data_gates(run: Run, *, validated: Path, signed: Path) -> dict[str, Any]:
    """Run the data gates for real: data-validation on ``validated``, provenance (sign, verify) on
    ``signed``. Returns the verification's XCom, as the training step receives it."""
    checked = run.record(validate_data(str(validated), str(SUITE), context=run.ctx("validate_data")))
    assert checked.verdict is Verdict.PASSED, checked.summary
    attested = attest_artifacts([str(signed)], context=run.ctx("sign_training_data"))
    run.record(attested)
    key = run.home.load_signing_key()
    attestation = sign_envelope(attested.statements[PROVENANCE_FILE], key).to_json()
    verified = run.record(
        verify_artifacts([str(signed)], attestation, {key.keyid: key.public_key}, context=run.ctx("verify_training_data"))
    )
    assert verified.verdict is Verdict.PASSED, verified.summary
    return {"subjects": [s.to_intoto() for s in verified.subjects]}


def model_gates_and_approval(run: Run, model_uri: str, tmp_path: Path) -> str:
    """model-provenance for real, the other model gates and the approval as signed results; the model's digest."""
    local = run.store.download_uri(model_uri, tmp_path / f"model-{run.run_id}")
    signed = attest_artifacts({model_uri: str(local)}, gate="model-provenance", context=run.ctx("attest_model"))
    run.record(signed)
    digest = signed.result.subjects[0].sha256
    for task_id, gate in {"scan_model": "model-scan", "check_robustness": "robustness", "build_sbom": "sbom"}.items():
        run.record(
            GateResult.create(
                gate=gate, verdict=Verdict.PASSED, subjects=[Subject(model_uri, digest)], context=run.ctx(task_id), summary="ok"
            )
        )
    run.record(
        GateResult.create(
            gate="model-signing",
            verdict=Verdict.PASSED,
            subjects=[Subject(model_uri, digest)],
            context=run.ctx("sign_model"),
            summary="signed",
            details={"signature_sha256": "5" * 64},
        )
    )
    run.record(
        GateResult.create(
            gate="model-approval",
            verdict=Verdict.PASSED,
            subjects=[Subject(model_uri, digest)],
            context=run.ctx("approve_model"),
            summary="approved by alice",
            details={
                "decision": "approved",
                "approvals": [{"id": "alice", "name": "alice", "responded_at": "2026-01-01T10:00:00Z"}],
                "required_approvals": 1,
                "model_uri": model_uri,
                "model_sha256": digest,
            },
        )
    )
    return digest


def register(run: Run, model_uri: str, digest: str, training_data: str | None) -> GateResult:
    """What RegisterModelOperator does in the example DAG (training_data: the training step's XCom)."""
    outcome = register_model(
        run.store,
        model_uri=model_uri,
        name="credit-risk",
        expected_sha256=digest,
        pipeline_run_id=run.mlflow_run_id,
        training_data=training_data,
        context=run.ctx("register_model"),
        settings=run.home,
    )
    result = run.record(outcome)
    assert result.verdict is Verdict.PASSED, result.summary
    return result


def pipeline(home: Settings, tmp_path: Path, *, validated: Path, trained: Path) -> tuple[Run, GateResult, str]:
    """The example pipeline's functions, with data-validation on ``validated`` and training on ``trained``."""
    run = Run(home)
    verification = data_gates(run, validated=validated, signed=trained)
    module = example_dag_module()
    xcom = module.train_model.function(str(trained), verification, **run.task_context())
    assert xcom["training_data_sha256"] == sha256_file(trained)
    digest = model_gates_and_approval(run, xcom["model_uri"], tmp_path)
    registration = register(run, xcom["model_uri"], digest, xcom["training_data_sha256"])
    return run, registration, str(registration.details["version"])


def promotion_checks(outcome: Any) -> dict[str, tuple[str, str]]:
    """Every check of a promotion decision: name -> (status, detail)."""
    return {c["check"]: (c["status"], c["detail"]) for c in outcome.result.details["checks"]}


def promotion(run: Run, version: str) -> dict[str, tuple[str, str]]:
    """The promotion decision's checks. Only ``training-data`` is asserted on: the other gates'
    evidence here is recorded by their engines, not by the operators that promotion also requires."""
    outcome = check_promotion(
        run.store, name="credit-risk", version=version, alias="champion", required_gates=REQUIRED, settings=run.home
    )
    return promotion_checks(outcome)


def test_trained_on_what_the_data_gates_judged_is_promotable(home: Settings, tmp_path: Path) -> None:
    data = credit_csv(tmp_path / "train.csv", seed=3)
    run, registration, version = pipeline(home, tmp_path, validated=data, trained=data)
    digest = sha256_file(data)
    assert [d["sha256"] for d in registration.details["training_data"]] == [digest]
    tags = run.store.client.get_model_version("credit-risk", version).tags
    assert tags[TAG_TRAINING_DATA] == digest

    evidence = verify_pipeline_run(run.store, run.mlflow_run_id, home)
    check = training_data_check(evidence, registration.details["model_sha256"], REQUIRED)
    assert check.status is Status.OK, check.detail
    assert promotion(run, version)["training-data"][0] == "ok"


def test_data_gates_on_a_decoy_refuse_the_promotion(home: Settings, tmp_path: Path) -> None:
    """A DAG that validates one file and trains on another: every task passes, promotion refuses."""
    decoy = credit_csv(tmp_path / "decoy.csv", seed=3)
    trained = credit_csv(tmp_path / "poisoned.csv", seed=4)
    run, registration, version = pipeline(home, tmp_path, validated=decoy, trained=trained)

    evidence = verify_pipeline_run(run.store, run.mlflow_run_id, home)
    check = training_data_check(evidence, registration.details["model_sha256"], REQUIRED)
    assert check.status is Status.FAILED
    assert "data-validation" in check.detail and sha256_file(trained)[:16] in check.detail
    assert "dataset-provenance" not in check.detail  # that gate did judge the training data

    status, detail = promotion(run, version)["training-data"]
    assert status == "failed" and "data-validation" in detail


def test_a_model_that_declares_no_training_data(home: Settings, tmp_path: Path) -> None:
    """A training step that logs no training data digest: nothing ties the model to the judged data."""
    from sklearn.linear_model import LogisticRegression

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame, log_example_model

    data = credit_csv(tmp_path / "train.csv", seed=5)
    run = Run(home)
    data_gates(run, validated=data, signed=data)
    frame = credit_frame(rows=600, seed=5)
    model = LogisticRegression(max_iter=500).fit(frame[list(FEATURES)], frame[LABEL])
    model_uri = log_example_model(run.store, run.mlflow_run_id, model)
    digest = model_gates_and_approval(run, model_uri, tmp_path)
    registration = register(run, model_uri, digest, training_data=None)
    assert registration.details["training_data"] == []

    evidence = verify_pipeline_run(run.store, run.mlflow_run_id, home)
    check = training_data_check(evidence, digest, REQUIRED)
    assert check.status is Status.FAILED and "no training data" in check.detail
    # Without a required data gate there is nothing to match the training data against.
    assert training_data_check(evidence, digest, MODEL_GATES).status is Status.OK
    assert promotion(run, str(registration.details["version"]))["training-data"][0] == "failed"


def test_the_training_step_trains_on_the_verified_bytes(home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example DAG's training step reads its batch once: a swap right after the digest check
    (same size, same mtime) does not reach the model, and the logged digest is of what it read."""
    data = credit_csv(tmp_path / "train.csv", seed=6)
    run = Run(home)
    verification = data_gates(run, validated=data, signed=data)
    original = data.read_bytes()
    # Same length, unusable for training: a reader that opens the file again trips over it.
    swapped = original.replace(b"defaulted", b"defaultex", 1)
    swap = SwapAfterHashing(monkeypatch, data, original, swapped)
    xcom = example_dag_module().train_model.function(str(data), verification, **run.task_context())
    assert swap.swapped and data.read_bytes() == swapped
    assert xcom["training_data_sha256"] == verification["subjects"][0]["digest"]["sha256"]
    logged = run.store.client.get_logged_model(xcom["model_uri"].removeprefix("models:/"))
    assert logged.params["training_data_sha256"] == xcom["training_data_sha256"]


def test_the_training_step_refuses_other_bytes(home: Settings, tmp_path: Path) -> None:
    data = credit_csv(tmp_path / "train.csv", seed=6)
    run = Run(home)
    verification = data_gates(run, validated=data, signed=data)
    credit_csv(data, seed=8)  # replaced after the gates
    with pytest.raises(Exception, match="refusing to train"):
        example_dag_module().train_model.function(str(data), verification, **run.task_context())


def test_the_register_operator_takes_training_data() -> None:
    from airflow_mlsecops.operators import RegisterModelOperator

    op = RegisterModelOperator(task_id="register", model_uri="models:/m-1", name="m", training_data="{{ x }}")
    assert "training_data" in op.template_fields and op.training_data == "{{ x }}"
    assert op.gate_name == gate_names.MODEL_REGISTRATION


DECOY_DAG = '''"""An Airflow DAG: the secure training pipeline, with its data gates pointed at a clean decoy."""
from airflow.sdk import task
from secure_training_pipeline import build_secure_training_pipeline


@task
def make_decoy(**context) -> str:
    """A clean batch for the data gates to judge, while training reads the run's own batch."""
    import re

    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    run_dir = EvidenceHook().settings.home / "decoy" / re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "clean.csv"
    credit_frame(rows=1500, seed=99).to_csv(path, index=False)
    return str(path)


dag = build_secure_training_pipeline("pipeline_on_a_decoy")
with dag:
    decoy = make_decoy()
    for task_id in ("validate_data", "check_integrity", "scan_pii"):
        gate = dag.get_task(task_id)
        gate.data = "{{ ti.xcom_pull(task_ids='make_decoy') }}"
        decoy >> gate
'''


def test_a_dag_whose_data_gates_judge_a_decoy_is_not_promoted(
    airflow_db, home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hostile DAG end to end: validation, integrity and PII scan pass on a decoy, provenance
    and training use the real batch, a reviewer approves; the promotion refuses on ``training-data``."""
    # The reviewer thread queries Airflow's models while dag.test() runs: import and configure them
    # all here first, so the two threads never race on a half-imported module.
    import airflow.models.dagrun
    import airflow.models.hitl
    import airflow.models.taskinstance
    import airflow.models.trigger
    import airflow.models.xcom
    import airflow.serialization.serialized_objects
    import airflow.triggers.base  # noqa: F401
    from airflow.models import import_all_models
    from sqlalchemy.orm import configure_mappers

    import_all_models()
    configure_mappers()

    from airflow_mlsecops.lifecycle.verification import verify_run
    from tests.conftest import TEST_DAGS, load_dag_file
    from tests.helpers import Reviewer, pipeline_run_id, run_dag_with_reviewer

    monkeypatch.syspath_prepend(str(DAG_FILE.parent))
    path = TEST_DAGS / "pipeline_on_a_decoy.py"
    path.write_text(DECOY_DAG)
    dag = load_dag_file(path, "pipeline_on_a_decoy")
    reviewer = Reviewer(dag.dag_id, [("alice", True)], timeout=240)
    dag_run, states = run_dag_with_reviewer(dag, reviewer, run_conf={"rows": 1500, "seed": 11})
    assert states["validate_data"] == states["train_model"] == states["register_model"] == "success", states
    assert states["promote_model"] == "failed" and dag_run.state == "failed", states

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    report = verify_run(pipeline_run_id(store, dag.dag_id, run_id=dag_run.run_id), settings=home, store=store)
    validated = {s.sha256 for r in report.results.values() if r.gate == "data-validation" for s in r.subjects}
    (registration,) = [r for r in report.results.values() if r.gate == "model-registration"]
    trained = {t["sha256"] for t in registration.details["training_data"]}
    assert trained and not trained & validated  # the model was trained on bytes validation never saw
    (promotion,) = [r for r in report.results.values() if r.gate == "model-promotion"]
    checks = {c["check"]: c for c in promotion.details["checks"]}
    assert checks["training-data"]["status"] == "failed", checks
    assert "data-validation never judged the training data" in checks["training-data"]["detail"]
    with pytest.raises(Exception, match=r"(?i)alias|not found|does not exist"):
        store.client.get_model_version_by_alias("credit-risk", "champion")
