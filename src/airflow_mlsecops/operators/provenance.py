"""``ProvenanceSignOperator`` and ``ProvenanceVerifyOperator``: sign datasets or models where they
are produced, verify them byte for byte where they are used."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome
    from airflow_mlsecops.lifecycle.recorder import RecordedEvidence


def _as_list(task_id: str, artifacts: Sequence[str] | str) -> list[str]:
    if isinstance(artifacts, (str, Path)):
        artifacts = [str(artifacts)]
    if not artifacts:
        raise ValueError(f"{task_id}: artifacts must name at least one file, directory or URI")
    return list(artifacts)


class ProvenanceSignOperator(BaseGateOperator):
    """Hash every file of each artifact and sign a SLSA provenance v1 statement about them.

    .. code-block:: python

        sign_data = ProvenanceSignOperator(task_id="sign_training_data", artifacts=["s3://bucket/train.parquet"])
        sign_model = ProvenanceSignOperator(
            task_id="sign_model", artifacts=["{{ ti.xcom_pull('train')['model_uri'] }}"], gate="model-provenance"
        )

    The task's XCom return value carries ``attestation``: the ``runs:/`` URI of the signed SLSA
    statement, which :class:`ProvenanceVerifyOperator` takes downstream.

    :param artifacts: local files or directories, ``s3://`` objects or prefixes, or MLflow
        ``models:/`` / ``runs:/`` URIs (fetched and hashed exactly as stored). (templated)
    :param gate: the gate name in the evidence (``dataset-provenance`` by default).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "artifacts")
    gate_name: ClassVar[str] = gate_names.DATASET_PROVENANCE

    def __init__(self, *, artifacts: Sequence[str] | str, gate: str = gate_names.DATASET_PROVENANCE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artifacts = _as_list(self.task_id, artifacts)
        self.gate = gate

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.provenance import attest_artifacts

        dag_run = context.get("dag_run")
        external = {"run_conf": dict(getattr(dag_run, "conf", None) or {}), "params": dict(context.get("params") or {})}
        with tempfile.TemporaryDirectory(prefix="mlsecops-provenance-") as tmp:
            named = _fetched(self, self.artifacts, Path(tmp))
            return attest_artifacts(
                named, gate=self.gate, context=pipeline, external_parameters=_jsonable(external), warn_only=self.warn_only
            )

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        from airflow_mlsecops.gates.provenance import PROVENANCE_FILE

        if PROVENANCE_FILE not in outcome.statements:
            return {"attestation": None}
        return {"attestation": f"runs:/{recorded.mlflow_run_id}/{recorded.artifact_dir}/{PROVENANCE_FILE}"}


class ProvenanceVerifyOperator(BaseGateOperator):
    """Verify that artifacts are byte for byte what an upstream stage signed, before using them.

    .. code-block:: python

        verify = ProvenanceVerifyOperator(
            task_id="verify_training_data",
            artifacts=["s3://bucket/train.parquet"],
            attestation=sign_data.output["attestation"],
        )

    Rejects (task fails, no retry) when a file changed, is missing or was added, when the
    attestation names none of the artifacts, or when its signature is not from a trusted key
    (``MLSECOPS_TRUSTED_KEYS``, or ``public_keys``).

    :param artifacts: the artifacts about to be used, named as they were signed. (templated)
    :param attestation: where the signed SLSA statement is: a local path, ``s3://`` or ``runs:/``
        URI (the sign operator's XCom ``attestation``). (templated)
    :param public_keys: PEM files or directories of trusted public keys (default: configuration).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "artifacts", "attestation")
    gate_name: ClassVar[str] = gate_names.PROVENANCE_VERIFICATION

    def __init__(
        self, *, artifacts: Sequence[str] | str, attestation: str, public_keys: Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.artifacts = _as_list(self.task_id, artifacts)
        if not attestation:
            raise ValueError(f"{self.task_id}: attestation is required (the signing task's XCom 'attestation')")
        self.attestation = attestation
        self.public_keys = [public_keys] if isinstance(public_keys, str) else list(public_keys) if public_keys else None

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.evidence.keys import load_trusted_keys
        from airflow_mlsecops.gates.base import raising, run_gate
        from airflow_mlsecops.gates.provenance import VERIFY_GATE_NAME, verify_artifacts

        hook = self.evidence_hook()
        with tempfile.TemporaryDirectory(prefix="mlsecops-verify-") as tmp:
            try:
                keys = load_trusted_keys(self.public_keys) if self.public_keys else hook.settings.load_trusted_keys()
                attestation = self.read_input_bytes(str(self.attestation), Path(tmp, "attestation"))
                named = _fetched(self, self.artifacts, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
                return run_gate(VERIFY_GATE_NAME, raising(exc), context=pipeline)
            return verify_artifacts(named, attestation, keys, context=pipeline, warn_only=self.warn_only)


def _fetched(operator: BaseGateOperator, artifacts: Sequence[str], tmp: Path) -> dict[str, str]:
    """Each artifact's name in the evidence (its URI, or its absolute path) and the local copy to hash."""
    from airflow_mlsecops.io.artifacts import subject_name

    return {subject_name(str(a)): str(operator.fetch_input(str(a), tmp / str(i))) for i, a in enumerate(artifacts)}


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
