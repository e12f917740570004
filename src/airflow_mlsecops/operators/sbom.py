"""``SBOMGateOperator``: the ML-BOM of a model and a dependency-vulnerability check as a pipeline gate."""

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
    from airflow_mlsecops.lifecycle.recorder import RecordedEvidence


class SBOMGateOperator(BaseGateOperator):
    """Write a CycloneDX 1.6 ML-BOM of a model and reject it when its packages are vulnerable.

    .. code-block:: python

        sbom = SBOMGateOperator(
            task_id="sbom",
            model="{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}",   # models:/..., runs:/... or a directory
            datasets=sign_data.output["subjects"],                               # the signed training data
            model_metrics={"accuracy": 0.93},
            osv_db="/opt/airflow/osv/PyPI/all.zip",
        )

    The BOM (``bom.cdx.json``) and the vulnerability report (``vulnerabilities.json``) are recorded
    as signed evidence with the verdict; the task's XCom return value carries ``bom``, the
    ``runs:/`` URI of the BOM. Without an OSV database (and without an available online check) the
    check is *not performed* and the task fails, unless ``require_vulnerability_check=False``.
    A ``models:/``, ``runs:/`` or ``s3://`` model is fetched first (through the evidence hook's
    MLflow store) and recorded under its URI; a model that cannot be fetched is an ``error`` verdict.
    See :mod:`airflow_mlsecops.gates.sbom.gate` for the rules.

    :param model: an MLflow model directory or file, ``s3://``, ``runs:/`` or ``models:/`` URI. (templated)
    :param python: list the packages of this interpreter instead of the model's ``requirements.txt``. (templated)
    :param osv_db: OSV PyPI export (``all.zip`` or its unpacked directory). (templated)
    :param online: also query OSV through pip-audit, if pip-audit is installed.
    :param datasets: training data sets: dicts ``{"name", "sha256", "uri"}``, in-toto subjects
        ``{"name", "digest": {"sha256"}}`` (a provenance task's ``subjects``), or ``NAME=SHA256``. (templated)
    :param model_metrics: performance metrics for the model card. (templated)
    :param fail_on: severities that reject the model (``critical``, ``high``, ``medium``, ``low``,
        ``unknown``; a list or a comma-separated string). Default: critical, high, unknown.
    :param require_vulnerability_check: fail when the vulnerability check could not be performed.
    :param model_card: extra CycloneDX ``modelCard`` fields (e.g. ``considerations``). (templated)
    """

    template_fields: Sequence[str] = (
        *BaseGateOperator.template_fields,
        "model",
        "python",
        "osv_db",
        "datasets",
        "model_metrics",
        "model_card",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"datasets": "json", "model_metrics": "json", "model_card": "json"}
    gate_name: ClassVar[str] = gate_names.SBOM

    def __init__(
        self,
        *,
        model: str | Path,
        python: str | None = None,
        osv_db: str | Path | None = None,
        online: bool = False,
        datasets: Sequence[Mapping[str, Any] | str] | Mapping[str, Any] | Any = (),
        model_metrics: Mapping[str, float] | Any | None = None,
        fail_on: Sequence[str] | str | None = None,
        require_vulnerability_check: bool = True,
        model_card: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.sbom import DEFAULT_FAIL_ON, parse_fail_on

        super().__init__(**kwargs)
        if not model:
            raise ValueError(f"{self.task_id}: model is required (a model directory or a models:/ or runs:/ URI)")
        try:
            self.fail_on = parse_fail_on(DEFAULT_FAIL_ON if fail_on is None else fail_on)
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        self.require_flags(online=online, require_vulnerability_check=require_vulnerability_check)
        self.model = str(model) if isinstance(model, Path) else model
        self.python = python
        self.osv_db = str(osv_db) if isinstance(osv_db, Path) else osv_db
        self.online = online
        self.datasets = list(datasets) if isinstance(datasets, tuple) else datasets
        self.model_metrics = model_metrics
        self.require_vulnerability_check = require_vulnerability_check
        self.model_card = model_card

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.sbom import build_and_check_sbom, inputs_unavailable
        from airflow_mlsecops.io.artifacts import subject_name

        location = str(self.model)
        with tempfile.TemporaryDirectory(prefix="mlsecops-sbom-") as tmp:
            try:
                local = self.fetch_input(location, Path(tmp, "model"))
            except Exception as exc:  # noqa: BLE001 - an error verdict, recorded with the gate's policy, never a pass
                return inputs_unavailable(
                    exc,
                    fail_on=self.fail_on,
                    require_vulnerability_check=self.require_vulnerability_check,
                    osv_db=self.osv_db or None,
                    online=self.online,
                    python=self.python or None,
                    warn_only=self.warn_only,
                    context=pipeline,
                )
            return build_and_check_sbom(
                str(local),
                subject=subject_name(location),
                python=self.python or None,
                osv_db=self.osv_db or None,
                online=self.online,
                datasets=self.datasets or (),
                model_metrics=self.model_metrics or None,
                fail_on=self.fail_on,
                require_vulnerability_check=self.require_vulnerability_check,
                warn_only=self.warn_only,
                context=pipeline,
                model_card=self.model_card or None,
            )

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        from airflow_mlsecops.gates.sbom import BOM_FILE

        if BOM_FILE not in outcome.files:
            return {"bom": None}
        return {"bom": f"runs:/{recorded.mlflow_run_id}/{recorded.artifact_dir}/{BOM_FILE}"}
