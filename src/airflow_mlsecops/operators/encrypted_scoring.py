"""``EncryptedScoringOperator``: score a data owner's encrypted batch with a linear model, never decrypting it.

It is a step with signed evidence rather than a security gate: it rejects nothing. It runs
through :class:`~airflow_mlsecops.operators.base.BaseGateOperator` (as model registration does)
so its record is signed, chained in the ledger and verified with the pipeline's other evidence
under the name ``encrypted-scoring``, which no policy can require. Its verdict is ``passed`` when
the encrypted scores were computed and written and ``error`` on anything else (fail closed: the
task fails, retried per ``retries``). See :mod:`airflow_mlsecops.privacy.encrypted_scoring`.
"""

from __future__ import annotations

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


class EncryptedScoringOperator(BaseGateOperator):
    """Score an encrypted production batch (CKKS) with a linear model; write the encrypted scores.

    The data owner encrypts the batch and sends the public context (no secret key); this task
    computes ``w·x + b`` on the ciphertexts and writes the encrypted scores, which only the data
    owner can decrypt. A context that holds the secret key is refused, as is any model that is
    not linear (see :func:`~airflow_mlsecops.privacy.encrypted_scoring.linear_parts`).

    .. code-block:: python

        EncryptedScoringOperator(
            task_id="score_encrypted",
            encrypted_batch="s3://partner-drop/credit/{{ ds }}/batch.ckks",
            public_context="s3://partner-drop/credit/public.ctx",
            model="models:/credit-risk@champion",
            encrypted_scores="s3://partner-drop/credit/{{ ds }}/scores.ckks",
        )

    The evidence (``encrypted_scoring.json``) names the encrypted input, the public context, the
    scores and the model (alias pinned to its version) by SHA-256, with the CKKS parameters, the
    row count, the model's type and the features used; it never holds a plaintext value.
    XCom: ``encrypted_scores`` (where the scores are), ``encrypted_scores_sha256``, ``model_uri``
    (pinned), ``model_version`` and the keys every gate returns (``verdict``, ``evidence``...).

    :param encrypted_batch: the batch from :func:`~airflow_mlsecops.privacy.encrypted_scoring.encrypt_batch`:
        local path, ``s3://`` object or MLflow URI. (templated)
    :param public_context: the data owner's public context (``public_context()``), same forms. (templated)
    :param model: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/`` URI, ``s3://``
        prefix or local MLflow model directory / ``.skops`` file. (templated)
    :param encrypted_scores: where to write the encrypted scores: a local path or ``s3://bucket/key``. (templated)
    :param trust_pickle: load a pickle-based model (runs code from the file); default ``False``.
    :param trusted_types: further types allowed in a skops file.
    """

    template_fields: Sequence[str] = (
        *BaseGateOperator.template_fields,
        "encrypted_batch",
        "public_context",
        "model",
        "encrypted_scores",
    )
    gate_name: ClassVar[str] = gate_names.ENCRYPTED_SCORING
    ui_color = "#e8e0ff"

    def __init__(
        self,
        *,
        encrypted_batch: str | Path | Any,
        public_context: str | Path | Any,
        model: str | Path,
        encrypted_scores: str | Path | Any,
        trust_pickle: bool = False,
        trusted_types: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("warn_only", False)
        super().__init__(**kwargs)
        if self.warn_only:
            raise ValueError(f"{self.task_id}: encrypted scoring rejects nothing, so warn_only has no meaning here")
        for name, value in (
            ("encrypted_batch", encrypted_batch),
            ("public_context", public_context),
            ("model", model),
            ("encrypted_scores", encrypted_scores),
        ):
            if value is None or (isinstance(value, (str, Path)) and not str(value).strip()):
                raise ValueError(f"{self.task_id}: {name} is required (a path or URI)")
        out = (
            str(encrypted_scores) if isinstance(encrypted_scores, Path) else encrypted_scores
        )  # a string, a template or an XComArg
        if isinstance(out, str) and "{{" not in out and ":/" in out and not out.startswith(("s3://", "file://")):
            raise ValueError(f"{self.task_id}: encrypted_scores must be a local path or s3://bucket/key, not {out!r}")
        self.require_flags(trust_pickle=trust_pickle)
        self.encrypted_batch = str(encrypted_batch) if isinstance(encrypted_batch, Path) else encrypted_batch
        self.public_context = str(public_context) if isinstance(public_context, Path) else public_context
        self.model = str(model) if isinstance(model, Path) else model
        self.encrypted_scores = out
        self.trust_pickle = trust_pickle
        self.trusted_types = [trusted_types] if isinstance(trusted_types, str) else list(trusted_types)

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        import tempfile

        from airflow_mlsecops.evidence.digest import sha256_path
        from airflow_mlsecops.io.artifacts import subject_name
        from airflow_mlsecops.io.model_loader import load_model, quiet_warnings
        from airflow_mlsecops.privacy.encrypted_scoring import evaluate_encrypted_scoring, inputs_unavailable

        with tempfile.TemporaryDirectory(prefix="mlsecops-he-") as tmp:
            try:
                batch = self.read_input_bytes(str(self.encrypted_batch), Path(tmp, "batch"))
                public = self.read_input_bytes(str(self.public_context), Path(tmp, "context"))
                artifact = self.fetch_input_artifact(str(self.model), Path(tmp, "model"))
                with quiet_warnings():
                    estimator = load_model(
                        artifact.path, trust_pickle=self.trust_pickle, trusted_types=self.trusted_types
                    ).estimator
                model_digest = sha256_path(artifact.path)
            except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
                return inputs_unavailable(exc, context=pipeline)
            return evaluate_encrypted_scoring(
                batch,
                public,
                estimator,
                write_output=self._write_output,
                input_name=subject_name(str(self.encrypted_batch)),
                context_name=subject_name(str(self.public_context)),
                model_subject=(artifact.ref.uri, model_digest),
                model_ref=artifact.ref.to_dict(),
                context=pipeline,
            )

    def _write_output(self, data: bytes) -> str:
        """Write the encrypted scores to :attr:`encrypted_scores`; return the name the evidence gives them."""
        from airflow_mlsecops.exceptions import GateError
        from airflow_mlsecops.io.artifacts import s3_client, subject_name

        output = str(self.encrypted_scores)
        if output.startswith("s3://"):
            bucket, _, key = output[len("s3://") :].partition("/")
            if not bucket or not key or key.endswith("/"):
                raise GateError(f"{output} is not an s3://bucket/key object URI")
            try:
                s3_client().put_object(Bucket=bucket, Key=key, Body=data)
            except Exception as exc:
                raise GateError(f"the encrypted scores cannot be written to {output}: {exc}") from exc
            return output
        path = Path(output[len("file://") :] if output.startswith("file://") else output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as exc:
            raise GateError(f"the encrypted scores cannot be written to {path}: {exc}") from exc
        return subject_name(str(path))

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        details = outcome.result.details
        ref = details.get("model_ref") or {}
        return {
            "encrypted_scores": details.get("output"),
            "encrypted_scores_sha256": details.get("output_sha256"),
            "model_uri": ref.get("uri"),
            "model_version": ref.get("version"),
        }
