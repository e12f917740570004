"""``DataIntegrityGateOperator``: reject a training batch that shows signs of poisoning or corruption."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome


class DataIntegrityGateOperator(BaseGateOperator):
    """Compare a new training batch with a trusted reference; fail the task on signs of poisoning.

    The checks (schema, non-finite numbers, spreadsheet formulas, label shift, class set,
    duplicates, near-duplicates, out-of-range values, feature shift, label flips) and their
    thresholds are described in
    :mod:`airflow_mlsecops.gates.data_integrity`. The evidence holds one finding per check, the
    measured values as metrics and ``integrity_report.json`` with the suspect rows.

    .. code-block:: python

        DataIntegrityGateOperator(
            task_id="check_integrity",
            data="{{ ti.xcom_pull(task_ids='ingest') }}",
            reference="s3://ml-data/credit/reference.parquet",
            label_column="defaulted",
            thresholds={"max_duplicate_share": 0.02, "max_feature_shift.income": 0.2},
        )

    :param data: the new batch (CSV or Parquet): local path, ``s3://`` object, or ``runs:/`` /
        ``models:/`` URI (loaded first, through the evidence hook's MLflow store); a header that
        repeats a column name is an ``error`` verdict. (templated)
    :param reference: the trusted reference data, same forms. (templated)
    :param label_column: the label column; without it the label checks are reported as skipped.
    :param thresholds: threshold names and values (see
        :class:`~airflow_mlsecops.gates.data_integrity.IntegrityThresholds`); checked when the DAG
        is parsed, so an unknown name or a bad value fails the DAG file, not the run.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param random_state: seed of the samples and the model, so a rerun reaches the same verdict.
    :param allow_empty: accept a batch with no rows (no check runs; finding
        ``data-integrity.empty-batch`` records it). Off by default: an empty batch is an ``error``
        verdict (retried, then the task fails), never a pass. An empty reference always is.
    :param id_columns: identifier columns (a list or a comma-separated string): not compared as
        features, checked for repeated and missing values; identifier-like columns are also recognised
        (:mod:`airflow_mlsecops.gates.columns`). A policy may bound them (``excluded_columns``). (templated)
    :param prediction_column: the model's output column, never compared as a feature.
    :param timestamp_column: the time of each row, never compared as a feature.
    :param features: the feature columns (default: every column without another role). (templated)
    :param batch_rows: read batch and reference in frames of at most this many rows, one pass each, so the
        worker's memory depends on it, not on the data (see
        :mod:`airflow_mlsecops.gates.data_integrity.streaming` for which checks are exact and which run
        on a sample). ``data`` and ``reference`` may then also be a directory of part files or an
        ``s3://`` prefix ending in ``/``; ``runs:/`` and ``models:/`` files are not streamed (an
        ``error`` verdict). Without it, a file of 256 MB or more, a directory or a prefix is streamed
        anyway, in frames of 65,536 rows.
    :param sample_rows: rows of each side's uniform sample on the streamed path (default 100,000).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data", "reference", "id_columns", "features")
    gate_name: ClassVar[str] = gate_names.DATA_INTEGRITY

    def __init__(
        self,
        *,
        data: str | Path,
        reference: str | Path,
        label_column: str | None = None,
        thresholds: Mapping[str, Any] | None = None,
        csv_delimiter: str | None = None,
        random_state: int = 0,
        allow_empty: bool = False,
        id_columns: Sequence[str] | str | None = None,
        prediction_column: str | None = None,
        timestamp_column: str | None = None,
        features: Sequence[str] | str | None = None,
        batch_rows: int | None = None,
        sample_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.require_flags(allow_empty=allow_empty)
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.data_integrity import IntegrityThresholds

        if not data:
            raise ValueError(f"{self.task_id}: data is required")
        if not reference:
            raise ValueError(f"{self.task_id}: reference is required")
        if label_column is not None and (not isinstance(label_column, str) or not label_column):
            raise ValueError(f"{self.task_id}: label_column must be a column name")
        if isinstance(random_state, bool) or not isinstance(random_state, int):
            raise ValueError(f"{self.task_id}: random_state must be an integer")
        from airflow_mlsecops.gates.columns import check_role_arguments
        from airflow_mlsecops.gates.data_integrity.gate import check_stream_arguments

        try:
            check_stream_arguments(batch_rows, sample_rows)
            IntegrityThresholds.from_mapping(thresholds)
            check_role_arguments(
                id_columns=None if _templated(id_columns) else id_columns,
                label_column=label_column,
                prediction_column=prediction_column,
                timestamp_column=timestamp_column,
                features=None if _templated(features) else features,
            )
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        self.data = str(data) if isinstance(data, Path) else data
        self.reference = str(reference) if isinstance(reference, Path) else reference
        self.label_column = label_column
        self.thresholds = dict(thresholds or {})
        self.csv_delimiter = csv_delimiter
        self.random_state = random_state
        self.allow_empty = allow_empty
        self.id_columns = id_columns
        self.prediction_column = prediction_column
        self.timestamp_column = timestamp_column
        self.features = features
        self.batch_rows = batch_rows
        self.sample_rows = sample_rows

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.data_integrity import check_integrity, inputs_unavailable

        options: dict[str, Any] = {
            "label_column": self.label_column,
            "thresholds": self.thresholds,
            "warn_only": self.warn_only,
            "context": pipeline,
            "random_state": self.random_state,
            "allow_empty": self.allow_empty,
            "id_columns": self.id_columns,
            "prediction_column": self.prediction_column,
            "timestamp_column": self.timestamp_column,
            "features": self.features,
            "batch_rows": self.batch_rows,
            "sample_rows": self.sample_rows,
        }
        if self._streamed():
            # Read in frames by the engine itself (local files, directories, s3:// objects and prefixes).
            remote = [str(x) for x in (self.data, self.reference) if str(x).startswith(("runs:/", "models:/"))]
            if remote:
                from airflow_mlsecops.exceptions import ConfigurationError

                error = ConfigurationError(
                    f"{remote[0]} cannot be streamed (batch_rows): copy it to a file, a directory or an s3:// location"
                )
                return inputs_unavailable(error, reference=str(self.reference), **options)
            return check_integrity(str(self.data), str(self.reference), csv_delimiter=self.csv_delimiter, **options)
        try:
            data = self.load_input_table(self.data, csv_delimiter=self.csv_delimiter)
            reference = self.load_input_table(self.reference, csv_delimiter=self.csv_delimiter)
        except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
            return inputs_unavailable(exc, reference=str(self.reference), **options)
        return check_integrity(data, reference, csv_delimiter=self.csv_delimiter, **options)

    def _streamed(self) -> bool:
        """Whether the engine reads the inputs in frames: ``batch_rows`` given, or an input that is large."""
        from airflow_mlsecops.io.batches import should_stream

        if self.batch_rows is not None:
            return True
        locations = [str(x) for x in (self.data, self.reference)]
        if any(x.startswith(("runs:/", "models:/")) for x in locations):
            return False  # loaded whole through the MLflow store, as before
        return any(should_stream(x, None) for x in locations)


def _templated(value: object) -> bool:
    """Not known when the DAG is parsed (a template or an XCom reference): the gate checks it when the task runs."""
    return not (value is None or isinstance(value, (list, tuple)) or (isinstance(value, str) and "{{" not in value))
