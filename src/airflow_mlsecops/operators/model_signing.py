"""``ModelSignOperator`` and ``ModelVerifyOperator``: sign a model in the OpenSSF model-signing
format where it is trained, verify it where it is deployed.

.. code-block:: python

    sign = ModelSignOperator(task_id="sign_model", path="{{ ti.xcom_pull('train')['model_uri'] }}")
    verify = ModelVerifyOperator(
        task_id="verify_model",
        path="{{ ti.xcom_pull('train')['model_uri'] }}",
        signature=sign.output["signature"],
    )
    sign >> verify

The signature (``model.sig``, a Sigstore bundle v0.3) is recorded as the signing gate's evidence
in MLflow and also verifies with ``model_signing verify key MODEL --signature model.sig
--public_key KEY.pub``. See :mod:`airflow_mlsecops.evidence.model_signing` for the format and the checks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome
    from airflow_mlsecops.lifecycle.recorder import RecordedEvidence


def _is_local(location: str) -> bool:
    """A local path (``file://`` allowed), as opposed to an MLflow or object-store URI."""
    if location.startswith("file://"):
        return True
    return "://" not in location and not location.startswith(("runs:/", "models:/"))


def _local_path(location: str) -> str:
    return location[len("file://") :] if location.startswith("file://") else location


def _guarded(gate: str, pipeline: PipelineContext, run: Callable[[], GateOutcome], *, warn_only: bool = False) -> GateOutcome:
    """``run()``, or an ``error`` verdict (recorded, retried, never a pass, whatever ``warn_only`` says) when
    its inputs could not be prepared."""
    from airflow_mlsecops.gates.base import raising, run_gate

    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
        return run_gate(gate, raising(exc), context=pipeline, warn_only=warn_only)


class ModelSignOperator(BaseGateOperator):
    """Sign every file of a model with the configured ECDSA key, in the OpenSSF model-signing format.

    The task's XCom return value adds ``signature`` (the ``runs:/`` URI of the recorded
    ``model.sig``, which :class:`ModelVerifyOperator` takes) and ``signature_sha256``.

    ``warn_only=True`` is refused (``ValueError`` when the DAG is parsed): signing rejects nothing,
    so there is no rejection to turn into a warning. It signs the model (``passed``) or could not
    (``error``: no key, an unreadable model), and an error is never softened.

    :param path: the model: a local file or directory, or an MLflow ``models:/`` / ``runs:/`` URI
        (downloaded and signed exactly as stored). (templated)
    :param signature_path: also write the signature to this local file; if it lies inside the
        model directory it is left out of the signature, as OpenSSF does. (templated)
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "path", "signature_path")
    gate_name: ClassVar[str] = gate_names.MODEL_SIGNING
    ui_color = "#d8f3dc"

    def __init__(self, *, path: str, signature_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.warn_only:
            raise ValueError(
                f"{self.task_id}: warn_only=True means nothing for model signing: it signs the model or cannot "
                "(an error verdict, which warn-only mode never softens); remove warn_only"
            )
        if not path:
            raise ValueError(f"{self.task_id}: path must name a model file, directory or MLflow URI")
        self.path = path
        self.signature_path = signature_path

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.model_signing import GATE_NAME, sign_gate
        from airflow_mlsecops.io.artifacts import subject_name

        location = str(self.path)
        with tempfile.TemporaryDirectory(prefix="mlsecops-model-sign-") as tmp:

            def run() -> GateOutcome:
                key = self.evidence_hook().settings.load_signing_key()
                local = self.fetch_input(location, Path(tmp, "model"))
                return sign_gate(
                    local,
                    key,
                    name=subject_name(location),
                    signature_path=str(self.signature_path) if self.signature_path else None,
                    context=pipeline,
                )

            return _guarded(GATE_NAME, pipeline, run)

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        from airflow_mlsecops.evidence.model_signing import SIGNATURE_FILE

        bundle = outcome.files.get(SIGNATURE_FILE)
        if bundle is None:
            return {"signature": None, "signature_sha256": None}
        return {
            "signature": f"runs:/{recorded.mlflow_run_id}/{recorded.artifact_dir}/{SIGNATURE_FILE}",
            "signature_sha256": outcome.result.details.get("bundle_sha256"),
        }


class ModelVerifyOperator(BaseGateOperator):
    """Verify a model against its OpenSSF model signature before it is used.

    Rejects (task fails, no retry) when a file changed, is missing, was added or renamed, when a
    symbolic link or special file is present, or when the signature is not from a trusted key
    (``MLSECOPS_TRUSTED_KEYS``, or ``public_keys``), is altered or is for another model. With
    ``warn_only=True`` such a rejection is recorded as ``warned`` and the task succeeds (promotion
    never counts it as passed). A missing model or signature is an error verdict (retried), never a
    pass, with or without ``warn_only``.

    :param path: the model, as signed: local file or directory, or ``models:/`` / ``runs:/`` URI.
        (templated)
    :param signature: the signature: a local path, ``s3://`` or ``runs:/`` URI (the sign
        operator's XCom ``signature``), or a ``model.sig`` written by ``model_signing sign key``.
        (templated)
    :param public_keys: PEM files or directories of trusted public keys (default: configuration).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "path", "signature")
    gate_name: ClassVar[str] = gate_names.MODEL_SIGNATURE_VERIFICATION
    ui_color = "#d8f3dc"

    def __init__(self, *, path: str, signature: str, public_keys: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not path:
            raise ValueError(f"{self.task_id}: path must name a model file, directory or MLflow URI")
        if not signature:
            raise ValueError(f"{self.task_id}: signature is required (the signing task's XCom 'signature')")
        self.path = path
        self.signature = signature
        self.public_keys = [public_keys] if isinstance(public_keys, str) else list(public_keys) if public_keys else None

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.evidence.keys import load_trusted_keys
        from airflow_mlsecops.gates.model_signing import VERIFY_GATE_NAME, verify_gate
        from airflow_mlsecops.io.artifacts import subject_name

        hook = self.evidence_hook()
        location, signature = str(self.path), str(self.signature)
        with tempfile.TemporaryDirectory(prefix="mlsecops-model-verify-") as tmp:

            def run() -> GateOutcome:
                keys = load_trusted_keys(self.public_keys) if self.public_keys else hook.settings.load_trusted_keys()
                bundle = self.read_input_bytes(signature, Path(tmp, "signature"))
                local = self.fetch_input(location, Path(tmp, "model"))
                return verify_gate(
                    local,
                    bundle,
                    keys,
                    name=subject_name(location),
                    signature_path=_local_path(signature) if _is_local(signature) else None,
                    context=pipeline,
                    warn_only=self.warn_only,
                )

            return _guarded(VERIFY_GATE_NAME, pipeline, run, warn_only=self.warn_only)

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        details = outcome.result.details
        return {"model_digest": details.get("model_digest"), "signer_keyid": details.get("signer_keyid")}
