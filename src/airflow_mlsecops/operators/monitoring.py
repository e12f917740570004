"""``DriftMonitorOperator`` and ``InputAnomalyGateOperator``: continuous monitoring of a deployed
model, and :func:`log_alert`, a failure callback that writes one clear alert line.

.. code-block:: python

    from airflow_mlsecops.operators.monitoring import DriftMonitorOperator, InputAnomalyGateOperator, log_alert

    drift = DriftMonitorOperator(
        task_id="detect_drift",
        reference="s3://ml/credit/train.parquet",
        current="s3://ml/credit/scoring/{{ ds }}.parquet",
        columns=["age", "income", "debt_ratio"],
        model="models:/credit-risk@champion",
        on_failure_callback=log_alert,
    )
    inputs = InputAnomalyGateOperator(
        task_id="detect_input_anomalies",
        data="s3://ml/credit/scoring/{{ ds }}.parquet",
        model="models:/credit-risk@champion",      # detector: models:/credit-risk/<version>/input_detector
        max_flagged_share=0.05,
    )

Both record their evidence against the model version: ``models:/<name>@<alias>`` is resolved
once, to the version it points at when the task runs; that version names the model (and the
detector inside it) in the signed evidence, and the pipeline's MLflow run gets the tags
``mlsecops.model_name``, ``mlsecops.model_version`` and ``mlsecops.model_uri``.

The operators fetch their inputs (``s3://``, ``runs:/``, ``models:/``) through the evidence
hook's MLflow store with :mod:`airflow_mlsecops.io.locations` and hand the engines local files;
an input that cannot be fetched is an ``error`` verdict, recorded like any other.

Alerting goes through Airflow's own mechanisms: a crossed threshold fails the task (no retry),
and the DAG's ``on_failure_callback`` tells people (see ``dags/model_monitoring.py``).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
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

ALERT_LOGGER = "airflow_mlsecops.alerts"
TAG_MODEL_NAME = "mlsecops.model_name"
TAG_MODEL_VERSION = "mlsecops.model_version"
TAG_MODEL_URI = "mlsecops.model_uri"


def _number(task_id: str, name: str, value: Any, *, integer: bool = False, optional: bool = False) -> Any:
    """A rendered template (``"0.05"``) or a number, as a number; ``ValueError`` naming the argument."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if optional:
            return None
        raise ValueError(f"{task_id}: {name} is required")
    if isinstance(value, bool):
        raise ValueError(f"{task_id}: {name} must be a number, not {value!r}")
    try:
        number = float(value) if not integer else int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{task_id}: {name} must be {'an integer' if integer else 'a number'}, not {value!r}") from exc
    if integer and isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{task_id}: {name} must be an integer, not {value!r}")
    return number


def _rendered_number(value: Any, *, integer: bool = False) -> Any:
    """A rendered template as a number (``"0.05"`` -> 0.05, ``"None"`` -> None). A value that is not
    a number is passed on unchanged, so the engine rejects it with an ``error`` verdict on record."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        try:
            return int(text) if integer else float(text)
        except ValueError:
            return value
    return value


def _static(value: Any) -> bool:
    """Whether ``value`` is known when the DAG is parsed (not a template, not an XCom reference)."""
    return value is None or isinstance(value, (int, float)) or (isinstance(value, str) and "{{" not in value)


def _known_columns(value: Any) -> Any:
    """Column names known when the DAG is parsed, else ``None`` (a template or XCom reference: the gate checks it)."""
    if isinstance(value, (list, tuple)) or (isinstance(value, str) and "{{" not in value):
        return value
    return None


def _location(value: Any) -> Any:
    """A path as a string; templates and XCom references are left for Airflow to resolve."""
    return str(value) if isinstance(value, Path) else value


def _columns(value: Sequence[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        names = [c.strip() for c in value.split(",") if c.strip()]
        return names or None
    return [str(c) for c in value]


class _ModelTagging(BaseGateOperator):
    """Tags the pipeline's MLflow run with the model version the gate judged against."""

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        from airflow_mlsecops.exceptions import MLSecOpsError

        model = dict(outcome.result.details.get("model") or {})
        if not model:
            return {"model": None}
        tags = {TAG_MODEL_URI: str(model.get("uri"))}
        if model.get("name"):
            tags[TAG_MODEL_NAME] = str(model["name"])
        if model.get("version"):
            tags[TAG_MODEL_VERSION] = str(model["version"])
        try:
            self.evidence_hook().store.log_tags_and_metrics(recorded.mlflow_run_id, tags, {})
        except MLSecOpsError as exc:  # the signed evidence names the version; the tags are a convenience
            self.log.warning("Could not tag MLflow run %s with the model version: %s", recorded.mlflow_run_id, exc)
        return {"model": model}


class DriftMonitorOperator(_ModelTagging):
    """Compare a production batch with the training reference (Evidently); fail on dataset drift.

    The task fails (without retry) when at least ``drift_share`` of the compared columns drifted,
    by Evidently's own per-column tests or because their share of missing values changed. The
    evidence holds ``drift_report.json`` and Evidently's HTML report (``drift_report.html``). See
    :mod:`airflow_mlsecops.gates.drift`.

    .. code-block:: python

        DriftMonitorOperator(
            task_id="detect_drift",
            reference="{{ params.reference }}",
            current="{{ params.data }}",
            columns=["age", "income", "debt_ratio", "credit_lines", "late_payments", "account_age_months"],
            drift_share=0.25,
            max_rows=50_000,
            model="{{ params.model_uri }}",
        )

    :param reference: the training reference: local path, ``s3://`` object, or ``runs:/`` /
        ``models:/`` URI of a CSV or Parquet file. (templated)
    :param current: the production batch, same forms. (templated)
    :param columns: columns to compare: a list or a comma-separated string (default: all; then
        both files must have the same columns). (templated)
    :param drift_share: share of drifted columns at which the dataset counts as drifted; default
        0.25 (Evidently's 0.5 lets two of five heavily drifted columns pass). (templated)
    :param max_rows: sample each frame longer than this (the evidence says so); ``None``
        compares every row. (templated)
    :param random_state: seed of the sampling; ``None`` (default) draws a fresh seed per run and
        records it, so the skipped rows cannot be known in advance. A fixed seed is for reproducing.
    :param max_missing_change: absolute change of a column's share of missing values that counts
        as drift (default 0.05; with a z-test at p < 0.001). (templated)
    :param fail_on_severe_column: one severely drifted column is dataset drift whatever
        ``drift_share`` says (default ``True``).
    :param html: store Evidently's HTML report (~4.6 MiB) with the evidence.
    :param model: the model that scores this batch, e.g. ``models:/credit-risk@champion``:
        recorded (pinned to its version) and tagged on the MLflow run. (templated)
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param allow_empty: accept a current batch with no rows (it passes with finding
        ``drift.empty-batch``). Off by default: an empty batch is an ``error`` verdict (retried,
        then the task fails), never a pass. An empty reference always is.
    :param id_columns: identifier columns (a list or a comma-separated string), never compared;
        identifier-like columns are also recognised. A policy bounds them (``excluded_columns``). (templated)
    :param label_column: the label (target), never compared; a production batch may lack it.
    :param prediction_column: the model's output column, never compared.
    :param timestamp_column: the time of each row, never compared.
    :param features: the feature columns (default: every reference column without another role); a
        feature the batch lacks is finding ``drift.missing-column``. (templated)
    :param batch_rows: read both sides in batches of this many rows and compare a reservoir sample of
        ``max_rows`` rows per side (memory bounded by ``max_rows`` and ``batch_rows``, not the data
        size). Unset: a local directory of part files, an ``s3://`` prefix or a local file of at least
        256 MiB is streamed all the same (batches of 65,536 rows) when ``max_rows`` is set; anything else
        is read in memory. A ``runs:/`` or ``models:/`` file is read whole (named by its URI), then
        sketched in batches. (templated)
    """

    template_fields: Sequence[str] = (
        *BaseGateOperator.template_fields,
        "reference",
        "current",
        "columns",
        "id_columns",
        "features",
        "drift_share",
        "max_rows",
        "max_missing_change",
        "model",
        "batch_rows",
    )
    gate_name: ClassVar[str] = gate_names.DRIFT
    ui_color = "#e0f0ff"

    def __init__(
        self,
        *,
        reference: str | Path,
        current: str | Path,
        columns: Sequence[str] | str | None = None,
        drift_share: float | str = 0.25,
        max_rows: int | str | None = 50_000,
        random_state: int | None = None,
        max_missing_change: float | str = 0.05,
        fail_on_severe_column: bool = True,
        html: bool = True,
        model: str | None = None,
        csv_delimiter: str | None = None,
        allow_empty: bool = False,
        id_columns: Sequence[str] | str | None = None,
        label_column: str | None = None,
        prediction_column: str | None = None,
        timestamp_column: str | None = None,
        features: Sequence[str] | str | None = None,
        batch_rows: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.require_flags(allow_empty=allow_empty, fail_on_severe_column=fail_on_severe_column)
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.columns import check_role_arguments

        try:
            check_role_arguments(
                id_columns=_known_columns(id_columns),
                label_column=label_column,
                prediction_column=prediction_column,
                timestamp_column=timestamp_column,
                features=_known_columns(features),
            )
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        if not reference:
            raise ValueError(f"{self.task_id}: reference is required")
        if not current:
            raise ValueError(f"{self.task_id}: current is required")
        if _static(drift_share):
            share = _number(self.task_id, "drift_share", drift_share)
            if not 0 < share <= 1:
                raise ValueError(f"{self.task_id}: drift_share must be in (0, 1], not {drift_share!r}")
        if _static(max_rows):
            rows = _number(self.task_id, "max_rows", max_rows, integer=True, optional=True)
            if rows is not None and rows < 2:
                raise ValueError(f"{self.task_id}: max_rows must be at least 2 or None, not {max_rows!r}")
        if _static(max_missing_change):
            change = _number(self.task_id, "max_missing_change", max_missing_change)
            if not 0 < change <= 1:
                raise ValueError(f"{self.task_id}: max_missing_change must be in (0, 1], not {max_missing_change!r}")
        if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, int)):
            raise ValueError(f"{self.task_id}: random_state must be an integer or None (a fresh seed per run)")
        if _static(batch_rows):
            batch = _number(self.task_id, "batch_rows", batch_rows, integer=True, optional=True)
            if batch is not None and batch < 1:
                raise ValueError(f"{self.task_id}: batch_rows must be a positive integer or None, not {batch_rows!r}")
            if batch is not None and _static(max_rows) and _number(self.task_id, "max_rows", max_rows, optional=True) is None:
                raise ValueError(f"{self.task_id}: batch_rows streams a sample of max_rows rows; set max_rows too")
        self.reference = _location(reference)
        self.current = _location(current)
        self.columns = columns
        self.drift_share = drift_share
        self.max_rows = max_rows
        self.random_state = random_state
        self.max_missing_change = max_missing_change
        self.fail_on_severe_column = fail_on_severe_column
        self.html = html
        self.model = model
        self.csv_delimiter = csv_delimiter
        self.allow_empty = allow_empty
        self.id_columns = id_columns
        self.label_column = label_column
        self.prediction_column = prediction_column
        self.timestamp_column = timestamp_column
        self.features = features
        self.batch_rows = batch_rows

    def apply_policy(self, context: Context) -> None:
        """The policy's values, except that ``max_rows`` unset stays unset: comparing every row is
        stricter than any floor the policy sets on ``max_rows``, which is not a default to apply."""
        every_row = _rendered_number(self.max_rows, integer=True) is None
        super().apply_policy(context)
        if every_row:
            self.max_rows = None

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.drift import detect_drift, inputs_unavailable

        columns = _columns(self.columns)
        options: dict[str, Any] = {
            "columns": columns,
            "drift_share": _rendered_number(self.drift_share),
            "max_rows": _rendered_number(self.max_rows, integer=True),
            "random_state": self.random_state,
            "max_missing_change": _rendered_number(self.max_missing_change),
            "fail_on_severe_column": self.fail_on_severe_column,
            "warn_only": self.warn_only,
            "context": pipeline,
            "allow_empty": self.allow_empty,
            "id_columns": self.id_columns,
            "label_column": self.label_column,
            "prediction_column": self.prediction_column,
            "timestamp_column": self.timestamp_column,
            "features": self.features,
            "batch_rows": _rendered_number(self.batch_rows, integer=True),
        }
        try:
            model = self.resolve_input_model(self.model) if self.model else None
            reference = self._table_input(self.reference, options)
            current = self._table_input(self.current, options)
        except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
            return inputs_unavailable(exc, **options)
        return detect_drift(reference, current, html=self.html, csv_delimiter=self.csv_delimiter, model=model, **options)

    def _table_input(self, location: str | Path, options: Mapping[str, Any]) -> Any:
        """What the engine reads: a local path or ``s3://`` location it streams itself (as it decides: see
        ``batch_rows``), or a table loaded here (a ``runs:/`` or ``models:/`` file, named by its URI; with
        ``batch_rows`` the engine sketches it in batches, but it is read whole)."""
        from airflow_mlsecops.io.batches import should_stream
        from airflow_mlsecops.io.locations import is_remote

        text = str(location)
        streamable = not is_remote(text) or text.startswith("s3://")
        batch_rows = options["batch_rows"]
        if (
            streamable
            and options["max_rows"] is not None
            and should_stream(text, batch_rows if isinstance(batch_rows, int) else None)
        ):
            return text
        return self.load_input_table(text, csv_delimiter=self.csv_delimiter)


class InputAnomalyGateOperator(_ModelTagging):
    """Score every row of a production batch for off-distribution and boundary-hugging (evasion)
    inputs; fail when more than ``max_flagged_share`` of the rows are flagged, or when more than
    ``max_repeated_share`` of the rows repeat (exactly or nearly) another row (probing).

    The detector is the one fitted at training time (:func:`~airflow_mlsecops.gates.input_detection.fit_detector`),
    stored as ``detector.json`` + ``arrays.npz`` (no pickle). By default it is read from inside the
    model's artifacts: ``<model>/input_detector``. See :mod:`airflow_mlsecops.gates.input_detection`.

    .. code-block:: python

        InputAnomalyGateOperator(
            task_id="detect_input_anomalies",
            data="s3://ml/credit/scoring/{{ ds }}.parquet",
            model="models:/credit-risk@champion",
            max_flagged_share=0.05,
        )

    :param data: the batch: local path, ``s3://`` object, or MLflow URI of a CSV or Parquet file. (templated)
    :param model: the model the detector was calibrated for: ``models:/<name>@<alias>``,
        ``models:/<name>/<version>``, ``runs:/`` URI or a local MLflow model directory. (templated)
    :param detector: the detector directory (local, ``s3://`` prefix or MLflow URI); default
        ``<model>/input_detector``, with an alias pinned to the same version as the model. (templated)
    :param max_flagged_share: the task fails when more than this share of rows is flagged. (templated)
    :param max_repeated_share: the task fails when more than this share of the rows have an exact
        or near copy in the batch (default 0.05). (templated)
    :param near_duplicate_radius: rows closer than this, in training standard deviations, are
        near-duplicates (default 0.05; 0: exact copies only).
    :param max_reported_rows: flagged rows listed with their scores in ``input_anomaly_report.json``.
    :param trust_pickle: load a ``cloudpickle``/``pickle`` model (runs code when loaded); default ``False``.
    :param allow_pickled_model: deprecated alias of ``trust_pickle`` (a ``DeprecationWarning``; giving
        both with different values is a ``ValueError``).
    :param csv_delimiter: delimiter of a CSV batch (default ``,``).
    :param allow_empty: accept a batch with no rows (it passes with finding
        ``input-anomaly.empty-batch`` once the detector and model check out). Off by default: an
        empty batch is an ``error`` verdict (retried, then the task fails), never a pass.
    :param id_columns: identifier columns of the batch (a list or a comma-separated string), never
        scored; identifier-like columns are also recognised. Only the detector's own feature columns
        are scored; a policy bounds the declared ones (``excluded_columns``). (templated)
    :param label_column: the label, never scored; a production batch may lack it.
    :param prediction_column: the model's output column, never scored.
    :param timestamp_column: the time of each row, never scored.
    """

    template_fields: Sequence[str] = (
        *BaseGateOperator.template_fields,
        "data",
        "model",
        "detector",
        "max_flagged_share",
        "max_repeated_share",
        "id_columns",
    )
    gate_name: ClassVar[str] = gate_names.INPUT_ANOMALY
    ui_color = "#ffe8d6"

    def __init__(
        self,
        *,
        data: str | Path,
        model: str | Path | None = None,
        detector: str | Path | None = None,
        max_flagged_share: float | str = 0.05,
        max_repeated_share: float | str = 0.05,
        near_duplicate_radius: float = 0.05,
        max_reported_rows: int = 100,
        trust_pickle: bool | None = None,
        allow_pickled_model: bool | None = None,
        csv_delimiter: str | None = None,
        allow_empty: bool = False,
        id_columns: Sequence[str] | str | None = None,
        label_column: str | None = None,
        prediction_column: str | None = None,
        timestamp_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.columns import check_role_arguments

        try:
            check_role_arguments(
                id_columns=_known_columns(id_columns),
                label_column=label_column,
                prediction_column=prediction_column,
                timestamp_column=timestamp_column,
            )
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        given = {"trust_pickle": trust_pickle, "allow_pickled_model": allow_pickled_model}  # None: not given
        self.require_flags(allow_empty=allow_empty, **{name: flag for name, flag in given.items() if flag is not None})
        if allow_pickled_model is not None:
            warnings.warn(
                f"{self.task_id}: allow_pickled_model is deprecated; use trust_pickle", DeprecationWarning, stacklevel=2
            )
            if trust_pickle is not None and trust_pickle != allow_pickled_model:
                raise ValueError(
                    f"{self.task_id}: trust_pickle={trust_pickle} and its deprecated alias "
                    f"allow_pickled_model={allow_pickled_model} disagree; pass trust_pickle only"
                )
        if not data:
            raise ValueError(f"{self.task_id}: data is required")
        if not model and not detector:
            raise ValueError(f"{self.task_id}: pass model (the detector is read from <model>/input_detector) or detector")
        if _static(max_flagged_share):
            share = _number(self.task_id, "max_flagged_share", max_flagged_share)
            if not 0 <= share < 1:
                raise ValueError(f"{self.task_id}: max_flagged_share must be in [0, 1), not {max_flagged_share!r}")
        if _static(max_repeated_share):
            repeated = _number(self.task_id, "max_repeated_share", max_repeated_share)
            if not 0 <= repeated < 1:
                raise ValueError(f"{self.task_id}: max_repeated_share must be in [0, 1), not {max_repeated_share!r}")
        radius = _number(self.task_id, "near_duplicate_radius", near_duplicate_radius)
        if not 0 <= radius < float("inf"):
            raise ValueError(f"{self.task_id}: near_duplicate_radius must be a finite number >= 0, not {near_duplicate_radius!r}")
        if isinstance(max_reported_rows, bool) or not isinstance(max_reported_rows, int) or max_reported_rows < 0:
            raise ValueError(f"{self.task_id}: max_reported_rows must be a non-negative integer")
        self.data = _location(data)
        self.model = _location(model) if model else None
        self.detector = _location(detector) if detector else None
        self.max_flagged_share = max_flagged_share
        self.max_repeated_share = max_repeated_share
        self.near_duplicate_radius = radius
        self.max_reported_rows = max_reported_rows
        self.trust_pickle = bool(trust_pickle if trust_pickle is not None else allow_pickled_model)
        self.csv_delimiter = csv_delimiter
        self.allow_empty = allow_empty
        self.id_columns = id_columns
        self.label_column = label_column
        self.prediction_column = prediction_column
        self.timestamp_column = timestamp_column

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.input_detection import inputs_unavailable, score_batch

        detector = str(self.detector) if self.detector else None
        model = str(self.model) if self.model else None
        options: dict[str, Any] = {
            "max_flagged_share": _rendered_number(self.max_flagged_share),
            "max_repeated_share": _rendered_number(self.max_repeated_share),
            "near_duplicate_radius": self.near_duplicate_radius,
            "max_reported_rows": self.max_reported_rows,
            "trust_pickle": self.trust_pickle,
            "warn_only": self.warn_only,
            "context": pipeline,
            "allow_empty": self.allow_empty,
            "id_columns": self.id_columns,
            "label_column": self.label_column,
            "prediction_column": self.prediction_column,
            "timestamp_column": self.timestamp_column,
        }
        with tempfile.TemporaryDirectory(prefix="mlsecops-input-") as tmp:
            try:
                table = self.load_input_table(self.data, csv_delimiter=self.csv_delimiter)
                # The model directory holds the detector (<model>/input_detector) unless one is named.
                fetched_model = self.fetch_input_artifact(model, Path(tmp, "model")) if model else None
                fetched_detector = self.fetch_input_artifact(detector, Path(tmp, "detector")) if detector else None
            except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
                return inputs_unavailable(exc, detector_dir=detector, model_uri=model, **options)
            return score_batch(
                table,
                fetched_detector,
                model_uri=fetched_model,
                csv_delimiter=self.csv_delimiter,
                **options,
            )


def log_alert(context: Mapping[str, Any]) -> None:
    """An ``on_failure_callback`` (task or DAG level) that writes one clear alert line, no network.

    The line goes to the ``airflow_mlsecops.alerts`` logger at ERROR level, so the task log (or the
    DAG processor's log) shows it and any log-based alerting can match ``MLSECOPS ALERT``::

        MLSECOPS ALERT model_monitoring/detect_drift run=scheduled__2026-11-26 try=1
            model_uri=models:/credit-risk@champion batch=drifted: gate drift rejected the input: ...

    (one line in the log; wrapped here).

    :param context: the Airflow context Airflow passes to the callback.
    """
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", None) or "?"
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id") or "?"
    params = context.get("params") or {}
    extra = "".join(f" {key}={params[key]}" for key in ("model_uri", "batch", "data") if params.get(key))
    exception, reason = context.get("exception"), context.get("reason")
    task_id = getattr(ti, "task_id", None)
    if exception is None and reason is not None:  # the DAG's callback: the run failed
        text = f"DAG run failed ({reason})" + (f", last failed task {task_id}" if task_id else "")
        where = f"{dag_id} run={run_id}"
    else:
        text = " ".join(str(exception or "failed").split())[:1000]
        try_number = getattr(ti, "try_number", None)
        attempt = f" try={try_number}" if try_number else ""
        where = f"{dag_id}/{task_id} run={run_id}{attempt}" if task_id else f"{dag_id} run={run_id}"
    logging.getLogger(ALERT_LOGGER).error("MLSECOPS ALERT %s%s: %s", where, extra, text)
