"""``ProvenanceSignOperator``: hash and sign datasets or models so later stages can prove what they got."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome


class ProvenanceSignOperator(BaseGateOperator):
    """Compute a SHA-256 manifest of each artifact and record it as signed evidence.

    .. code-block:: python

        ProvenanceSignOperator(task_id="sign_training_data", artifacts=["/data/train.csv"])
        ProvenanceSignOperator(task_id="sign_model", artifacts=["{{ ti.xcom_pull('train')['model_uri'] }}"],
                               gate="model-provenance")

    :param artifacts: local files or directories, or MLflow ``models:/`` / ``runs:/`` URIs (fetched
        from MLflow and hashed exactly as stored there, so a later swap in the registry is caught by
        ``mlsecops verify``). (templated)
    :param gate: the gate name in the evidence (``dataset-provenance`` by default).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "artifacts")
    gate_name: ClassVar[str] = "dataset-provenance"

    def __init__(self, *, artifacts: Sequence[str] | str, gate: str = "dataset-provenance", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(artifacts, (str, Path)):
            artifacts = [str(artifacts)]
        if not artifacts:
            raise ValueError(f"{self.task_id}: artifacts must name at least one file, directory or MLflow URI")
        self.artifacts = list(artifacts)
        self.gate = gate

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.provenance import attest_artifacts

        with tempfile.TemporaryDirectory(prefix="mlsecops-provenance-") as tmp:
            named: dict[str, str] = {}
            for index, artifact in enumerate(self.artifacts):
                artifact = str(artifact)
                if artifact.startswith(("models:/", "runs:/")):
                    local = self.evidence_hook().store.download_uri(artifact, Path(tmp, str(index)))
                    named[artifact] = str(local)
                else:
                    named[str(Path(artifact).absolute())] = artifact
            return attest_artifacts(named, gate=self.gate, context=pipeline)
