"""Registration, promotion, rollback and version verification on a real MLflow registry.

Each test builds a pipeline run's evidence the way the pipeline does: a real scikit-learn model
logged to the pipeline's MLflow run, a real ``model-provenance`` and ``dataset-provenance``
attestation, and signed results for the gates whose engines live elsewhere (model scan,
robustness, SBOM, model signing, data validation, the approval), all recorded by the real
recorder into the real ledger. Then it tampers with one thing and checks the promotion says so.

Those results are made here, not by the package's engines, and their evidence says so: their
producer is :func:`simulated_gate` of this module. The promotions allow it by name
(``allowed_producers``), as a platform's policy allows a gate of its own (``allowed_operators``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.evidence.producer import CodeIdentity
from airflow_mlsecops.exceptions import ConfigurationError, GateError, GateRejected, VerificationError
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle._registry_checks import registry_recorder
from airflow_mlsecops.lifecycle.model_registry import (
    REGISTRY_EXPERIMENT,
    TAG_MODEL_SHA256,
    TAG_PIPELINE_RUN_ID,
    TAG_QUARANTINED,
    TAG_SIGNATURE_SHA256,
    tag_history,
)
from airflow_mlsecops.lifecycle.promotion import PromotionRecord, check_promotion, promote
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from airflow_mlsecops.lifecycle.registration import register_model
from airflow_mlsecops.lifecycle.rollback import rollback
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.lifecycle.version_verification import verify_model_version

# Every test registers and promotes models in an MLflow Model Registry (SQLite): seconds each, so
# not in `make test-fast`.
pytestmark = pytest.mark.slow

SIGNATURE_SHA256 = "5" * 64
#: The producer of the results this module makes by hand, allowed by name where they must count.
SIMULATED_PRODUCERS = (f"{__name__}.simulated_gate",)
CONSTRUCTED_MODEL_GATES = {"scan_model": "model-scan", "test_robustness": "robustness", "build_sbom": "sbom"}


@dataclass
class Pipeline:
    """One pipeline run's evidence: the MLflow run, the model in it and the model's digest."""

    home: Settings
    store: MLflowEvidenceStore
    recorder: EvidenceRecorder
    dag_id: str
    run_id: str
    mlflow_run_id: str
    model_uri: str
    digest: str
    #: SHA-256 of the training batch the data gates judged (declared at registration).
    data_digest: str = ""

    def ctx(self, task_id: str, try_number: int = 1) -> PipelineContext:
        return PipelineContext(self.dag_id, self.run_id, task_id, try_number)

    def record(self, result: GateResult, **kwargs) -> None:
        self.recorder.record(simulated_gate(result) if result.producer is None else result, experiment_name=self.dag_id, **kwargs)


def simulated_gate(result: GateResult) -> GateResult:
    """``result``, made by hand in this module, naming this function as the engine that produced it."""
    return result.with_producer(engine=CodeIdentity.of(simulated_gate).to_dict(), operator=None)


def check_allowing(store: MLflowEvidenceStore, **kwargs):
    """:func:`check_promotion` that lets this module's simulated gates count (the policy's allowed_operators)."""
    return check_promotion(store, allowed_producers=SIMULATED_PRODUCERS, **kwargs)


def promote_allowing(
    store: MLflowEvidenceStore, *, name: str, version: str, alias: str, settings: Settings
) -> tuple[object, PromotionRecord]:
    """:func:`~airflow_mlsecops.lifecycle.promotion.promote_model` (check, record the decision, promote),
    with this module's simulated gates allowed by name."""
    outcome = check_allowing(store, name=name, version=version, alias=alias, settings=settings)
    run_id = outcome.result.details.get("pipeline_run_id") or None
    recorded = registry_recorder(store, settings).record(
        outcome.result, experiment_name=REGISTRY_EXPERIMENT, files=outcome.files, mlflow_run_id=run_id
    )
    if outcome.verdict is Verdict.ERROR:
        raise GateError(outcome.result.summary)
    if outcome.verdict is not Verdict.PASSED:
        raise GateRejected(outcome.result.summary, result=outcome.result)
    return outcome, promote(store, name=name, version=str(version), alias=alias, outcome=outcome, evidence=recorded)


def log_model(home: Settings, mlflow_run_id: str, seed: int = 0) -> str:
    """Train a small scikit-learn model and log it to the pipeline's MLflow run; its ``models:/`` URI."""
    import mlflow.sklearn
    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    # Through the store's client: no global tracking URI or active run left behind for later tests.
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    model_id = store.log_model(
        mlflow_run_id,
        lambda path, mlflow_model: mlflow.sklearn.save_model(
            model, str(path), mlflow_model=mlflow_model, pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
        ),
    )
    return f"models:/{model_id}"


def approval_result(
    pipeline: Pipeline, model_uri: str, digest: str, *, approvers: int = 1, decision: str = "approved"
) -> GateResult:
    """The approval task's final record, as the contract describes it."""
    people = [{"id": f"u{i}", "name": f"reviewer-{i}", "responded_at": "2026-01-01T10:00:00Z"} for i in range(approvers)]
    passed = decision == "approved"
    return GateResult.create(
        gate="model-approval",
        verdict=Verdict.PASSED if passed else Verdict.FAILED,
        subjects=[Subject(model_uri, digest)],
        findings=[] if passed else [Finding("model-approval.decision", Severity.HIGH, decision)],
        context=pipeline.ctx("approve_model"),
        summary=f"{decision} by {', '.join(p['name'] for p in people)}",
        details={
            "decision": decision,
            "approvals": people if passed else [],
            "required_approvals": approvers,
            "model_uri": model_uri,
            "model_sha256": digest,
            "evidence_digest": "e" * 64,
            "reviewers": [p["name"] for p in people],
        },
    )


def build_pipeline(
    home: Settings,
    tmp_path: Path,
    *,
    omit: tuple[str, ...] = (),
    verdicts: dict[str, Verdict] | None = None,
    approval_for: tuple[str, str] | None = None,
    seed: int = 0,
) -> Pipeline:
    """Record a complete pipeline run's evidence, minus the gates in ``omit``.

    ``approval_for``: (model URI, digest) the approval names instead of this run's model.
    """
    verdicts = verdicts or {}
    dag_id = "train_pipeline"
    run_id = f"manual__{uuid.uuid4().hex[:8]}"
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    recorder = EvidenceRecorder.from_settings(home)
    mlflow_run_id = store.resolve_pipeline_run(experiment_name=dag_id, dag_id=dag_id, run_id=run_id)
    model_uri = log_model(home, mlflow_run_id, seed)
    local = store.download_uri(model_uri, tmp_path / f"model-{run_id}")
    pipeline = Pipeline(home, store, recorder, dag_id, run_id, mlflow_run_id, model_uri, "")

    signed = attest_artifacts({model_uri: str(local)}, gate="model-provenance", context=pipeline.ctx("sign_model"))
    pipeline.digest = signed.result.subjects[0].sha256
    if "model-provenance" not in omit:
        pipeline.record(signed.result, files=signed.files, statements=signed.statements)

    data = tmp_path / f"train-{run_id}.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,1\n")
    if "dataset-provenance" not in omit:
        attested = attest_artifacts([str(data)], context=pipeline.ctx("sign_training_data"))
        pipeline.record(attested.result, files=attested.files, statements=attested.statements)
    data_subject = attested.result.subjects[0] if "dataset-provenance" not in omit else Subject(str(data), "1" * 64)

    constructed: list[GateResult] = []
    for task_id, gate in CONSTRUCTED_MODEL_GATES.items():
        constructed.append(
            GateResult.create(
                gate=gate,
                verdict=verdicts.get(gate, Verdict.PASSED),
                subjects=[Subject(model_uri, pipeline.digest)],
                context=pipeline.ctx(task_id),
                summary=f"{gate} {verdicts.get(gate, Verdict.PASSED).value}",
                warn_only=verdicts.get(gate) is Verdict.WARNED,
            )
        )
    constructed.append(
        GateResult.create(
            gate="model-signing",
            verdict=verdicts.get("model-signing", Verdict.PASSED),
            subjects=[Subject(model_uri, pipeline.digest)],
            context=pipeline.ctx("sign_model_openssf"),
            summary="signed",
            details={"signature_sha256": SIGNATURE_SHA256, "bundle_sha256": SIGNATURE_SHA256},
        )
    )
    constructed.append(
        GateResult.create(
            gate="data-validation",
            verdict=verdicts.get("data-validation", Verdict.PASSED),
            subjects=[data_subject],
            context=pipeline.ctx("validate_data"),
            summary="12 expectations met",
        )
    )
    for result in constructed:
        if result.gate not in omit:
            pipeline.record(result)

    if "model-approval" not in omit:
        approved_uri, digest = approval_for or (model_uri, pipeline.digest)
        response = GateResult.create(
            gate="model-approval-response",
            verdict=Verdict.PASSED,
            subjects=[Subject(approved_uri, digest)],
            context=pipeline.ctx("approve_model"),
            summary="reviewer-0 chose approve",
            details={"model_uri": approved_uri, "model_sha256": digest, "outcome": "approved"},
        )
        pipeline.record(response, record="response-1")
        pipeline.record(approval_result(pipeline, approved_uri, digest), record="decision-1")
    pipeline.data_digest = data_subject.sha256
    return pipeline


def register(pipeline: Pipeline, name: str, *, expected: str | None = None) -> str:
    """Register the pipeline's model like the register task does (and record the evidence)."""
    outcome = register_model(
        pipeline.store,
        model_uri=pipeline.model_uri,
        name=name,
        expected_sha256=expected or pipeline.digest,
        pipeline_run_id=pipeline.mlflow_run_id,
        training_data=pipeline.data_digest or None,
        context=pipeline.ctx("register_model"),
        settings=pipeline.home,
    )
    pipeline.record(outcome.result, files=outcome.files)
    assert outcome.result.verdict is Verdict.PASSED, outcome.result.summary
    return str(outcome.result.details["version"])


def alias_holder(store: MLflowEvidenceStore, name: str, alias: str = "champion") -> str | None:
    holder = store.client.get_registered_model(name).aliases.get(alias)
    return str(holder) if holder is not None else None


def failed_checks(decision) -> dict[str, str]:
    """Failed checks of a promotion decision (an outcome, a result or a GateRejected)."""
    result = getattr(decision, "result", decision)
    return {c["check"]: c["detail"] for c in result.details["checks"] if c["status"] == "failed"}


def artifact_path(store: MLflowEvidenceStore, mlflow_run_id: str, relative: str) -> Path:
    uri = store.client.get_run(mlflow_run_id).info.artifact_uri
    return Path(uri.removeprefix("file://")) / relative


def model_files(store: MLflowEvidenceStore, model_uri: str) -> Path:
    location = store.client.get_logged_model(model_uri.removeprefix("models:/")).artifact_location
    return Path(location.removeprefix("file://"))


# ----------------------------------------------------------------------------- happy path
def test_registered_and_promoted_with_tags_history_and_attestation(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    store = pipeline.store
    version = register(pipeline, "credit")
    tags = store.client.get_model_version("credit", version).tags
    assert tags[TAG_MODEL_SHA256] == pipeline.digest
    assert tags[TAG_PIPELINE_RUN_ID] == pipeline.mlflow_run_id
    assert tags["mlsecops.dag_id"] == pipeline.dag_id and tags["mlsecops.run_id"] == pipeline.run_id
    assert tags["mlsecops.evidence"] == f"runs:/{pipeline.mlflow_run_id}/mlsecops/evidence"
    assert tags[TAG_SIGNATURE_SHA256] == SIGNATURE_SHA256

    outcome, record = promote_allowing(store, name="credit", version=version, alias="champion", settings=home)
    assert outcome.result.verdict is Verdict.PASSED, outcome.result.summary
    assert not failed_checks(outcome)
    checks = {c["check"] for c in outcome.result.details["checks"]}
    assert {"registry-digest", "pipeline-evidence", "approval", "gate:model-scan", "gate:dataset-provenance"} <= checks
    assert record.previous_version is None and record.approved_by == ("reviewer-0",)
    assert alias_holder(store, "credit") == version

    mv = store.client.get_model_version("credit", version)
    assert mv.tags["mlsecops.approved_by"] == "reviewer-0"
    assert mv.tags["mlsecops.previous_champion"] == "none"
    assert mv.tags["mlsecops.promoted_at"] == record.promoted_at
    assert mv.tags["mlsecops.promotion_evidence"] == record.evidence
    assert record.evidence and record.evidence.startswith(f"runs:/{pipeline.mlflow_run_id}/mlsecops/evidence/model-promotion/")
    assert json.loads(store.client.get_registered_model("credit").tags[tag_history("champion")]) == [version]

    # The attestation is signed evidence of the pipeline run, and everything still verifies.
    report = verify_run(pipeline.mlflow_run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    attested = [r for r in report.results.values() if r.gate == gate_names.MODEL_PROMOTION]
    assert [r.subjects[0] for r in attested] == [Subject(f"models:/credit/{version}", pipeline.digest)]

    verified = verify_model_version(store, name="credit", version=version, settings=home)
    assert verified.ok, verified.problems
    assert verified.to_dict()["aliases"] == ["champion"]

    # An alias set by hand on the same (good) version has no attestation of its own.
    store.client.set_registered_model_alias("credit", "prod", version)
    by_hand = verify_model_version(store, name="credit", version=version, settings=home)
    assert not by_hand.ok
    assert [p.split(":", 2)[:2] for p in by_hand.problems] == [["holder", "@prod"], ["attestation", "@prod"]]
    assert "no signed promotion or rollback to @prod exists" in by_hand.problems[0]


def test_registration_refuses_a_model_with_another_digest(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path, omit=("model-approval",))
    outcome = register_model(
        pipeline.store,
        model_uri=pipeline.model_uri,
        name="credit",
        expected_sha256="0" * 64,
        pipeline_run_id=pipeline.mlflow_run_id,
        settings=home,
    )
    assert outcome.result.verdict is Verdict.FAILED
    assert "nothing was registered" in outcome.result.summary
    assert pipeline.store.client.search_registered_models(filter_string="name = 'credit'") == []

    # Without an expected digest the pipeline's signed model-provenance evidence pins it.
    pinned = register_model(
        pipeline.store,
        model_uri=pipeline.model_uri,
        name="credit",
        expected_sha256=None,
        pipeline_run_id=pipeline.mlflow_run_id,
        settings=home,
    )
    assert pinned.result.verdict is Verdict.PASSED, pinned.result.summary
    assert pinned.result.details["pinned_by"] == "model-provenance evidence"
    assert pinned.result.details["model_sha256"] == pipeline.digest
    with pytest.raises(ConfigurationError):
        verify_model_version(pipeline.store, name="credit", version="7", settings=home)


# ----------------------------------------------------------------------------- refusals
def test_missing_gate_is_refused_by_name_and_alias_unchanged(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path, omit=("robustness",))
    version = register(pipeline, "credit")
    outcome = check_allowing(
        pipeline.store,
        name="credit",
        version=version,
        alias="champion",
        required_gates=("model-scan", "robustness", "sbom", "model-signing", "model-provenance", "data-validation"),
        required_approvals=1,
        settings=home,
    )
    assert outcome.result.verdict is Verdict.FAILED
    assert list(failed_checks(outcome)) == ["gate:robustness"]
    assert "gate:robustness" in outcome.result.summary and "no robustness evidence" in outcome.result.summary
    with pytest.raises(GateRejected):
        promote(pipeline.store, name="credit", version=version, alias="champion", outcome=outcome)
    assert alias_holder(pipeline.store, "credit") is None


def test_warned_gate_never_counts_as_passed(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path, verdicts={"sbom": Verdict.WARNED})
    version = register(pipeline, "credit")
    with pytest.raises(GateRejected) as refused:
        promote_allowing(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    failed = failed_checks(refused.value)
    assert list(failed) == ["gate:sbom"] and "warn-only" in failed["gate:sbom"]
    assert alias_holder(pipeline.store, "credit") is None
    # The refusal itself is signed evidence in the pipeline run.
    report = verify_run(pipeline.mlflow_run_id, settings=home)
    assert report.ok
    assert [g["verdict"] for g in report.gates.values() if g["gate"] == gate_names.MODEL_PROMOTION] == ["failed"]


def test_approval_of_another_digest_is_refused_and_the_champion_stays(home: Settings, tmp_path: Path) -> None:
    first = build_pipeline(home, tmp_path, seed=1)
    v1 = register(first, "credit")
    promote_allowing(first.store, name="credit", version=v1, alias="champion", settings=home)

    # The reviewers approved the current champion; the new version reuses that approval.
    second = build_pipeline(home, tmp_path, seed=2, approval_for=(first.model_uri, first.digest))
    v2 = register(second, "credit")
    outcome = check_allowing(
        second.store, name="credit", version=v2, alias="champion", required_gates=(), required_approvals=1, settings=home
    )
    assert outcome.result.verdict is Verdict.FAILED
    assert list(failed_checks(outcome)) == ["approval"], failed_checks(outcome)
    assert f"covers sha256 {first.digest[:16]}..., not {second.digest[:16]}" in failed_checks(outcome)["approval"]
    assert outcome.result.details["current_holder"] == v1
    assert alias_holder(second.store, "credit") == v1


def test_approval_needs_enough_distinct_approvers_and_no_rejection(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    outcome = check_allowing(
        pipeline.store, name="credit", version=version, alias="champion", required_gates=(), required_approvals=2, settings=home
    )
    assert list(failed_checks(outcome)) == ["approval"], failed_checks(outcome)
    assert "1 distinct approver(s)" in failed_checks(outcome)["approval"]

    # A second review of the same digest that rejected blocks, though the first one approved.
    rejected = approval_result(pipeline, pipeline.model_uri, pipeline.digest, decision="rejected")
    pipeline.record(replace(rejected, context=pipeline.ctx("security_review")), record="decision-1")
    outcome = check_allowing(
        pipeline.store, name="credit", version=version, alias="champion", required_gates=(), required_approvals=1, settings=home
    )
    assert list(failed_checks(outcome)) == ["approval"], failed_checks(outcome)
    assert "security_review/try-1.decision-1 is 'rejected'" in failed_checks(outcome)["approval"]


def test_model_changed_in_the_registry_after_the_scan_is_refused(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    weights = model_files(pipeline.store, pipeline.model_uri) / "model.skops"
    weights.write_bytes(weights.read_bytes() + b"\x00")  # the swap: same name, other bytes

    with pytest.raises(GateRejected) as refused:
        promote_allowing(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    failed = failed_checks(refused.value)
    assert "registry-digest" in failed and "changed in the registry" in failed["registry-digest"]
    assert "pipeline-evidence" in failed and f"subject:{pipeline.model_uri}" in failed["pipeline-evidence"]
    assert alias_holder(pipeline.store, "credit") is None
    assert not verify_model_version(pipeline.store, name="credit", version=version, settings=home).ok


def test_one_changed_byte_of_evidence_is_refused(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    path = artifact_path(pipeline.store, pipeline.mlflow_run_id, "mlsecops/evidence/scan_model/try-1/result.json")
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"passed"') + 1
    raw[at] = ord("P")
    path.write_bytes(bytes(raw))

    outcome = check_allowing(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    failed = failed_checks(outcome)
    assert outcome.result.verdict is Verdict.FAILED
    assert set(failed) == {"pipeline-evidence", "gate:model-scan"}
    assert "scan_model/try-1: file:result.json" in failed["pipeline-evidence"]
    assert "did not verify" in failed["gate:model-scan"]
    assert alias_holder(pipeline.store, "credit") is None


def test_latest_attempt_wins(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    retried = GateResult.create(
        gate="model-scan",
        verdict=Verdict.FAILED,
        subjects=[Subject(pipeline.model_uri, pipeline.digest)],
        findings=[Finding("scan.pickle", Severity.CRITICAL, "os.system in a pickle")],
        context=pipeline.ctx("scan_model", try_number=2),
        summary="unsafe pickle",
    )
    pipeline.record(retried)
    version = register(pipeline, "credit")
    outcome = check_allowing(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    assert list(failed_checks(outcome)) == ["gate:model-scan"]
    assert "failed at scan_model/try-2" in failed_checks(outcome)["gate:model-scan"]


# ----------------------------------------------------------------------------- rollback and verification
def test_rollback_restores_the_previous_version_and_records_evidence(home: Settings, tmp_path: Path) -> None:
    first = build_pipeline(home, tmp_path, seed=1)
    v1 = register(first, "credit")
    promote_allowing(first.store, name="credit", version=v1, alias="champion", settings=home)
    second = build_pipeline(home, tmp_path, seed=2)
    v2 = register(second, "credit")
    _, record = promote_allowing(second.store, name="credit", version=v2, alias="champion", settings=home)
    store = second.store
    assert record.previous_version == v1 and record.history == (v1, v2)
    assert store.client.get_model_version("credit", v2).tags["mlsecops.previous_champion"] == v1

    back = rollback(store, name="credit", alias="champion", settings=home, reason="drift in production")
    assert (back.from_version, back.to_version, back.forced) == (v2, v1, False)
    assert alias_holder(store, "credit") == v1
    assert json.loads(store.client.get_registered_model("credit").tags[tag_history("champion")]) == [v1]
    assert verify_model_version(store, name="credit", version=v1, settings=home).ok

    run_id = back.evidence.removeprefix("runs:/").split("/", 1)[0]
    assert store.client.get_experiment(store.client.get_run(run_id).info.experiment_id).name == REGISTRY_EXPERIMENT
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    (result,) = report.results.values()
    assert result.gate == "model-rollback" and result.verdict is Verdict.PASSED and result.context is None
    assert result.details["from_version"] == v2 and result.details["reason"] == "drift in production"
    assert result.subjects == (Subject(f"models:/credit/{v1}", first.digest),)

    with pytest.raises(ConfigurationError, match="no previous holder"):
        rollback(store, name="credit", alias="champion", settings=home)


def test_rollback_refuses_a_previous_holder_with_a_broken_chain_unless_forced(home: Settings, tmp_path: Path) -> None:
    first = build_pipeline(home, tmp_path, seed=1)
    v1 = register(first, "credit")
    promote_allowing(first.store, name="credit", version=v1, alias="champion", settings=home)
    second = build_pipeline(home, tmp_path, seed=2)
    v2 = register(second, "credit")
    promote_allowing(second.store, name="credit", version=v2, alias="champion", settings=home)
    weights = model_files(first.store, first.model_uri) / "model.skops"
    weights.write_bytes(weights.read_bytes() + b"\x00")

    with pytest.raises(VerificationError, match="registry-digest"):
        rollback(second.store, name="credit", alias="champion", settings=home)
    assert alias_holder(second.store, "credit") == v2
    forced = rollback(second.store, name="credit", alias="champion", settings=home, force=True)
    assert forced.to_version == v1 and forced.forced and forced.problems
    assert alias_holder(second.store, "credit") == v1


def test_alias_set_by_hand_on_an_unverified_version_is_detected(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    client = pipeline.store.client
    client.create_registered_model("credit")
    logged = client.get_logged_model(pipeline.model_uri.removeprefix("models:/"))
    # By hand, through this store's client: from the logged model's storage location, as MLflow's
    # registry database resolves a models:/m-... source only through the process-global tracking URI.
    mv = client.create_model_version("credit", logged.artifact_location, run_id=logged.source_run_id, model_id=logged.model_id)
    client.set_registered_model_alias("credit", "champion", mv.version)

    verified = verify_model_version(pipeline.store, name="credit", version=str(mv.version), settings=home)
    assert not verified.ok
    problems = "\n".join(verified.problems)
    assert "registration:" in problems and "set by hand" in problems
    assert "attestation:@champion" in problems
    assert verified.to_dict()["verified"] is False

    # And the promotion gate refuses the same version.
    outcome = check_allowing(pipeline.store, name="credit", version=str(mv.version), alias="champion", settings=home)
    assert {"registration", "registry-digest", "pipeline-evidence"} <= set(failed_checks(outcome))


def test_quarantined_version_is_refused(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    pipeline.store.client.set_model_version_tag("credit", version, TAG_QUARANTINED, "true")
    outcome = check_allowing(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    assert list(failed_checks(outcome)) == ["quarantine"]
