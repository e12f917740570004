"""One real scenario every review test reads: two pipeline runs of a model in a real MLflow registry.

Built once per test package (about a minute): version 1 of ``credit`` trained, gated, registered and
promoted to ``@champion``; then the candidate (version 2), whose gates include a warned SBOM with
checks not performed, a data-integrity gate with byte counts, shares, large counts and a long
finding, and an approval with a refused and a counted response. The candidate's review is taken
while version 1 holds ``@champion``; then a fixed version 3 is promoted and rolled back, for the model's
history. The evidence is signed and recorded by the real recorder into the real ledger and MLflow.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Finding, GateResult, Severity, Subject, Verdict
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.rollback import rollback
from airflow_mlsecops.review import ModelReview, RunReview, model_review, run_review
from tests.conftest import _template_mlflow_db
from tests.lifecycle.test_registry import Pipeline, approval_result, build_pipeline, promote_allowing, register

UI_URL = "http://mlflow.example:5000"
NOT_PERFORMED = "sbom.vulnerability-check-not-performed"
LONG_MESSAGE = "3 rows of column 'income' hold a spreadsheet formula: " + ", ".join(f"=HYPERLINK(row {i})" for i in range(30))


@dataclass
class Scenario:
    home: Settings
    store: MLflowEvidenceStore
    champion: Pipeline
    candidate: Pipeline
    review: RunReview
    model: ModelReview
    extra: dict[str, Any]


def _candidate_records(p: Pipeline, data_digest: str) -> None:
    """The candidate's own gates: what makes a review worth reading."""
    p.record(
        GateResult.create(
            gate="data-integrity",
            verdict=Verdict.FAILED,
            subjects=[Subject("/data/train.csv", data_digest), Subject("/data/reference.csv", "7" * 64)],
            findings=[
                Finding("integrity.formula-injection", Severity.HIGH, LONG_MESSAGE, "column income, rows 4-6"),
                Finding("integrity.duplicates", Severity.LOW, "no duplicate rows", passed=True),
            ],
            metrics={"bytes": 130600.0, "flagged_share": 0.0125, "rows": 1200000.0, "seconds": 0.25},
            context=p.ctx("check_integrity"),
            summary="3 of 1,200,000 rows hold formulas",
        )
    )
    p.record(
        GateResult.create(
            gate="sbom",
            verdict=Verdict.WARNED,
            subjects=[Subject(p.model_uri, p.digest)],
            findings=[Finding(NOT_PERFORMED, Severity.LOW, "vulnerability check not performed: no OSV database (osv_db)")],
            metrics={"components": 42.0, "packages_unchecked": 42.0},
            context=p.ctx("build_sbom", try_number=2),
            summary="SBOM built; vulnerability check not performed",
            # As the SBOM gate records a check it did not perform: warned, incomplete, naming the finding.
            warned_reason="incomplete",
            details={"not_performed": [NOT_PERFORMED]},
        )
    )


def _approval(p: Pipeline) -> None:
    """The approval task's records: request, a refused response (the author), a counted one, the decision."""
    base = {"model_uri": p.model_uri, "model_sha256": p.digest, "required_approvals": 1, "reviewers": ["alice", "bob"]}
    p.record(
        GateResult.create(
            gate="model-approval-request",
            verdict=Verdict.PASSED,
            context=p.ctx("approve_model"),
            summary="approval requested",
            details={**base, "excluded": {"carol": "authored the model"}},
        ),
        record="request-1",
    )
    answers = [
        ("carol", "2026-12-04T09:00:00+00:00", "refused", "carol may not approve: authored the model"),
        ("alice", "2026-12-04T09:30:00+00:00", "approved", "1 of 1 approvals"),
    ]
    for n, (user, at, outcome, reason) in enumerate(answers, start=1):
        p.record(
            GateResult.create(
                gate="model-approval-response",
                verdict=Verdict.PASSED if outcome != "refused" else Verdict.FAILED,
                subjects=[Subject(p.model_uri, p.digest)],
                context=p.ctx("approve_model"),
                summary=f"{user} chose Approve: {reason}",
                details={
                    **base,
                    "response": {"user": {"id": user, "name": user}, "choice": "Approve", "responded_at": at},
                    "outcome": outcome,
                    "reason": reason,
                },
            ),
            record=f"response-{n}",
        )
    p.record(approval_result(p, p.model_uri, p.digest), record="decision-2")


def tampered_run(scenario: Scenario) -> str:
    """A new pipeline run with one signed record whose ``result.json`` was edited after signing."""
    import uuid

    from airflow_mlsecops.evidence.models import PipelineContext

    dag_run = f"tampered__{uuid.uuid4().hex[:8]}"
    recorded = scenario.candidate.recorder.record(
        GateResult.create(
            gate="model-scan",
            verdict=Verdict.FAILED,
            context=PipelineContext("train_pipeline", dag_run, "scan_model"),
            findings=[Finding("model-scan.global", Severity.CRITICAL, "os.system in model.pkl", "model.pkl")],
            summary="1 unsafe global",
        ),
        experiment_name="train_pipeline",
    )
    uri = scenario.store.client.get_run(recorded.mlflow_run_id).info.artifact_uri
    result_file = Path(uri.removeprefix("file://"), recorded.artifact_dir, "result.json")
    result_file.write_text(result_file.read_text().replace('"failed"', '"passed"'))
    return recorded.mlflow_run_id


def _train_metrics(p: Pipeline, **metrics: float) -> None:
    for name, value in metrics.items():
        p.store.client.log_metric(p.mlflow_run_id, name, value)
    p.store.client.log_param(p.mlflow_run_id, "C", "1.0")


@pytest.fixture(scope="package")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("review")
    root = tmp / "home"
    root.mkdir()
    shutil.copy(_template_mlflow_db(), root / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLSECOPS_HOME", str(root))
        mp.setenv("MLSECOPS_MLFLOW_UI_URL", UI_URL)
        for name in ("MLFLOW_TRACKING_URI", "MLSECOPS_LEDGER_URL", "MLFLOW_REGISTRY_URI"):
            mp.delenv(name, raising=False)
        Settings.from_env().generate_key_pair()
        home = Settings.from_env()
        champion = build_pipeline(home, tmp, seed=0)
        _train_metrics(champion, accuracy=0.88, roc_auc=0.91)
        register(champion, "credit")
        promote_allowing(champion.store, name="credit", version="1", alias="champion", settings=home)

        candidate = build_pipeline(home, tmp, seed=1, omit=("model-approval",), verdicts={"sbom": Verdict.WARNED})
        _train_metrics(candidate, accuracy=0.9125, roc_auc=0.905)
        _candidate_records(candidate, candidate.data_digest)
        version = register(candidate, "credit")
        _approval(candidate)
        review = run_review(candidate.mlflow_run_id, settings=home, compare_alias="champion", bundle_version="bundle-abc123")

        # The candidate cannot be promoted (its SBOM warned): a fixed third version is, then rolled back.
        fixed = build_pipeline(home, tmp, seed=2)
        promote_allowing(fixed.store, name="credit", version=register(fixed, "credit"), alias="champion", settings=home)
        rolled = rollback(candidate.store, name="credit", alias="champion", settings=home, reason="test rollback")
        model = model_review("credit", settings=home)
        yield Scenario(home, candidate.store, champion, candidate, review, model, {"rollback": rolled, "version": version})
