"""The review of one DAG run (its evidence, verified) and of one registered model (its history).

INTERFACE STUB (session 15): the signatures below are the contract between the review builder, the
plugin's API/page and ``mlsecops report``; the bodies are filled in by the review work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore


@dataclass
class RunReview:
    """One pipeline run's evidence as a reviewer reads it, re-verified when built.

    ``to_dict()`` is the JSON the plugin's API serves: at least ``verified`` (bool), ``gates``
    (list, pipeline order), ``failures`` (list of failed verification checks)."""

    mlflow_run_id: str
    verified: bool
    gates: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlflow_run_id": self.mlflow_run_id,
            "verified": self.verified,
            "gates": list(self.gates),
            "failures": list(self.failures),
            **self.extra,
        }


@dataclass
class ModelReview:
    """One registered model: its versions, aliases, promotions and rollbacks."""

    name: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "versions": list(self.versions), "aliases": dict(self.aliases), **self.extra}


def run_review(
    mlflow_run_id: str, *, settings: Settings | None = None, store: MLflowEvidenceStore | None = None
) -> RunReview:
    """Re-verify and describe the evidence recorded in one MLflow run."""
    raise NotImplementedError("review.view.run_review: being built")


def pipeline_run_review(
    dag_id: str,
    run_id: str,
    *,
    experiment_name: str | None = None,
    settings: Settings | None = None,
    store: MLflowEvidenceStore | None = None,
) -> RunReview:
    """The review of a DAG run's evidence (its MLflow run found by the DAG and run id tags, in the
    experiment ``experiment_name``, default the DAG id). Raises ``ConfigurationError`` when the DAG
    run recorded no evidence."""
    raise NotImplementedError("review.view.pipeline_run_review: being built")


def model_review(
    name: str, *, settings: Settings | None = None, store: MLflowEvidenceStore | None = None
) -> ModelReview:
    """A registered model's versions, aliases, promotions and rollbacks."""
    raise NotImplementedError("review.view.model_review: being built")
