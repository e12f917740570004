"""``TrainingEnvironmentGateOperator``: the packages installed where the model was trained, as a gate."""

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


class TrainingEnvironmentGateOperator(BaseGateOperator):
    """Record the training environment as a CycloneDX BOM; reject vulnerable packages and packages the
    model declares at another version than was installed (or needs without declaring).

    .. code-block:: python

        environment = TrainingEnvironmentGateOperator(
            task_id="check_training_environment",
            model="{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}",
            osv_db="/opt/airflow/osv/PyPI/all.zip",
            queue="training",            # the training task's queue: the same worker image
        )

    **Run it where the model was trained.** Without ``site_packages`` or ``freeze`` the task lists
    what :mod:`importlib.metadata` sees in its own interpreter, so it describes the training
    environment only when it runs on the same worker image (queue, pool, Kubernetes pod template or
    ``executor_config``) as the training task. A ``site_packages`` directory or a ``pip freeze`` file
    saved by the training task describes another environment instead.

    The BOM (``environment.cdx.json``) and the report (``environment-report.json``: every difference
    with package, declared and installed version) are recorded as signed evidence; the subjects are
    the model's digest and the BOM's. The XCom return value carries ``bom``, the BOM's ``runs:/``
    URI. Without an OSV database the vulnerability check is *not performed*: the task fails, or with
    ``require_vulnerability_check=False`` the verdict is ``warned`` (incomplete), never ``passed``.
    See :mod:`airflow_mlsecops.gates.environment.gate` for the rules.

    :param model: an MLflow model directory or file, ``s3://``, ``runs:/`` or ``models:/`` URI. (templated)
    :param site_packages: a ``site-packages`` directory to read instead of the worker's interpreter. (templated)
    :param freeze: a ``pip freeze`` file to read instead (not with ``site_packages``). (templated)
    :param osv_db: OSV PyPI export (``all.zip`` or its unpacked directory). (templated)
    :param fail_on: vulnerability severities that reject (``critical``, ``high``, ``medium``, ``low``,
        ``unknown``; a list or a comma-separated string). Default: critical, high, unknown.
    :param require_vulnerability_check: fail when the vulnerability check could not be performed.
    :param fail_on_mismatch: reject declared-versus-installed version mismatches and declared packages
        that were not installed.
    :param fail_on_undeclared: reject packages the model needs but does not declare.
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "model", "site_packages", "freeze", "osv_db")
    gate_name: ClassVar[str] = gate_names.TRAINING_ENVIRONMENT

    def __init__(
        self,
        *,
        model: str | Path,
        site_packages: str | Path | None = None,
        freeze: str | Path | None = None,
        osv_db: str | Path | None = None,
        fail_on: Sequence[str] | str | None = None,
        require_vulnerability_check: bool = True,
        fail_on_mismatch: bool = True,
        fail_on_undeclared: bool = True,
        **kwargs: Any,
    ) -> None:
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.sbom import DEFAULT_FAIL_ON, parse_fail_on

        super().__init__(**kwargs)
        if not model:
            raise ValueError(f"{self.task_id}: model is required (a model directory or a models:/ or runs:/ URI)")
        if site_packages and freeze:
            raise ValueError(f"{self.task_id}: give site_packages or freeze, not both")
        try:
            self.fail_on = parse_fail_on(DEFAULT_FAIL_ON if fail_on is None else fail_on)
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        self.require_flags(
            require_vulnerability_check=require_vulnerability_check,
            fail_on_mismatch=fail_on_mismatch,
            fail_on_undeclared=fail_on_undeclared,
        )
        self.model = str(model) if isinstance(model, Path) else model
        self.site_packages = str(site_packages) if isinstance(site_packages, Path) else site_packages
        self.freeze = str(freeze) if isinstance(freeze, Path) else freeze
        self.osv_db = str(osv_db) if isinstance(osv_db, Path) else osv_db
        self.require_vulnerability_check = require_vulnerability_check
        self.fail_on_mismatch = fail_on_mismatch
        self.fail_on_undeclared = fail_on_undeclared

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.environment import check_training_environment, inputs_unavailable
        from airflow_mlsecops.io.artifacts import subject_name

        options: dict[str, Any] = {
            "site_packages": self.site_packages or None,
            "freeze": self.freeze or None,
            "osv_db": self.osv_db or None,
            "fail_on": self.fail_on,
            "require_vulnerability_check": self.require_vulnerability_check,
            "fail_on_mismatch": self.fail_on_mismatch,
            "fail_on_undeclared": self.fail_on_undeclared,
        }
        location = str(self.model)
        with tempfile.TemporaryDirectory(prefix="mlsecops-environment-") as tmp:
            try:
                local = self.fetch_input(location, Path(tmp, "model"))
            except Exception as exc:  # noqa: BLE001 - an error verdict, recorded with the gate's policy, never a pass
                return inputs_unavailable(exc, warn_only=self.warn_only, context=pipeline, **options)
            return check_training_environment(
                str(local), subject=subject_name(location), warn_only=self.warn_only, context=pipeline, **options
            )

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        from airflow_mlsecops.gates.environment import BOM_FILE

        if BOM_FILE not in outcome.files:
            return {"bom": None}
        return {"bom": f"runs:/{recorded.mlflow_run_id}/{recorded.artifact_dir}/{BOM_FILE}"}
