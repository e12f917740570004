"""``EvidenceHook``: the MLflow store, ledger and signing key, resolved for an Airflow task.

>>> from airflow_mlsecops.hooks.evidence import EvidenceHook
>>> hook = EvidenceHook()
>>> run_id = hook.pipeline_run_id(dag_id="train", run_id="manual__2026-01-01")   # doctest: +SKIP

Settings come from the environment (see :mod:`airflow_mlsecops.config`); ``MLSECOPS_MLFLOW_UI_URL``
names the MLflow UI for links when the tracking URI is not itself an http(s) server.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from airflow_mlsecops.config import Settings

if TYPE_CHECKING:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder


class EvidenceHook(BaseHook):
    """Gives operators a recorder and the pipeline's MLflow run.

    :param experiment_name: MLflow experiment of the pipeline's runs (default: the DAG id).
    """

    hook_name = "MLSecOps evidence"

    def __init__(self, experiment_name: str | None = None) -> None:
        super().__init__()
        self.experiment_name = experiment_name

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env()

    @cached_property
    def recorder(self) -> EvidenceRecorder:
        from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

        return EvidenceRecorder.from_settings(self.settings)

    @cached_property
    def store(self) -> MLflowEvidenceStore:
        from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

        return MLflowEvidenceStore.from_settings(self.settings)

    def pipeline_run_id(self, *, dag_id: str, run_id: str) -> str:
        """The MLflow run that holds this DAG run's evidence (created on first use)."""
        return self.store.resolve_pipeline_run(experiment_name=self.experiment_name or dag_id, dag_id=dag_id, run_id=run_id)

    def run_url(self, mlflow_run_id: str) -> str | None:
        base = os.environ.get("MLSECOPS_MLFLOW_UI_URL")
        uri = self.settings.tracking_uri
        if not base and uri.startswith(("http://", "https://")):
            base = uri
        if not base:
            return None
        experiment_id = self.store.run_experiment_id(mlflow_run_id)
        return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{mlflow_run_id}"
