"""``ModelScanGateOperator``: reject a model whose files would run code, read files or explode when loaded."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome
    from airflow_mlsecops.gates.model_scan import ScanLimits


class ModelScanGateOperator(BaseGateOperator):
    """Scan a model file or directory before anything loads it (see :mod:`airflow_mlsecops.gates.model_scan`).

    Every file is judged by its content: pickles (plain, joblib, PyTorch, object ``.npy``) by static
    opcode analysis against an allowlist of exact ``module.name`` references, safetensors, skops,
    Keras, ONNX and archives by their own rules. The task fails (no retry) on any finding (a gadget
    such as ``os.system``, an unknown reference, a Lambda layer, a path-traversal member, a
    decompression bomb, an unreadable or unknown file); the evidence (``model_scan_report.json``)
    lists per file its format, verdict, the globals it references and the findings with byte offsets.

    .. code-block:: python

        scan = ModelScanGateOperator(
            task_id="scan_model",
            path="{{ ti.xcom_pull(task_ids='train')['model_uri'] }}",  # models:/churn/3, runs:/..., s3://...
            allow_globals=["mypackage.features.Winsorizer"],
        )
        scan >> register_model

    :param path: a local file or directory, ``s3://`` object or prefix, or MLflow ``models:/`` /
        ``runs:/`` URI (downloaded first, then scanned exactly as stored). (templated)
    :param allow_globals: exact ``module.name`` references to allow on top of the built-in allowlist
        (your own classes); known gadgets are refused when the DAG is parsed.
    :param limits: :class:`~airflow_mlsecops.gates.model_scan.ScanLimits`, or a mapping of its
        fields (e.g. ``{"max_archive_depth": 2}``).
    :param second_opinion: also run modelscan and record its report (never changes the verdict).
    :param allow_model_code: accept an MLflow model whose loading runs code shipped with it (models
        from code, ``code_paths``, a shipped ``loader_module``); it is recorded in the report. Off by
        default: such a model is a critical ``mlflow-model-code`` finding. A policy can forbid it.
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "path")
    gate_name: ClassVar[str] = gate_names.MODEL_SCAN

    def __init__(
        self,
        *,
        path: str | Path,
        allow_globals: Sequence[str] = (),
        limits: ScanLimits | Mapping[str, Any] | None = None,
        second_opinion: bool = False,
        allow_model_code: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_mlsecops.gates._model_scan.allowlist import judge
        from airflow_mlsecops.gates.model_scan import ScanLimits

        if not path:
            raise ValueError(f"{self.task_id}: path is required (a model file, directory or URI)")
        if isinstance(allow_globals, str) or not all(isinstance(name, str) for name in allow_globals):
            raise ValueError(f"{self.task_id}: allow_globals must be a list of exact 'module.name' strings")
        for name in allow_globals:
            if judge(name)[0] == "dangerous":
                raise ValueError(f"{self.task_id}: allow_globals cannot allow {name}: it is a known code-execution gadget")
        if limits is None or isinstance(limits, ScanLimits):
            self.limits = limits or ScanLimits()
        else:
            unknown = set(limits) - set(ScanLimits.__dataclass_fields__)
            if unknown:
                raise ValueError(f"{self.task_id}: unknown scan limits {sorted(unknown)}")
            self.limits = ScanLimits(**dict(limits))
        self.require_flags(second_opinion=second_opinion, allow_model_code=allow_model_code)
        self.path = str(path) if isinstance(path, Path) else path
        self.allow_globals = list(allow_globals)
        self.second_opinion = second_opinion
        self.allow_model_code = allow_model_code

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.base import raising, run_gate
        from airflow_mlsecops.gates.model_scan import GATE_NAME, scan_model
        from airflow_mlsecops.io.artifacts import subject_name

        location = str(self.path)
        with tempfile.TemporaryDirectory(prefix="mlsecops-model-scan-") as tmp:
            try:
                local = self.fetch_input(location, Path(tmp, "artifact"))
            except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
                return run_gate(GATE_NAME, raising(exc), warn_only=self.warn_only, context=pipeline)
            return scan_model(
                str(local),
                warn_only=self.warn_only,
                context=pipeline,
                limits=self.limits,
                allow_globals=self.allow_globals,
                second_opinion=self.second_opinion,
                subject=subject_name(location),
                allow_model_code=self.allow_model_code,
            )
