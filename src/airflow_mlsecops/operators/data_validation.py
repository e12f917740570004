"""``DataValidationGateOperator``: a Great Expectations suite as a pipeline gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.io.spark import DEFAULT_CONN_ID as DEFAULT_SPARK_CONN_ID
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome


class DataValidationGateOperator(BaseGateOperator):
    """Validate a data file against a Great Expectations suite; reject the batch if it fails.

    .. code-block:: python

        DataValidationGateOperator(
            task_id="validate_data",
            data="{{ ti.xcom_pull(task_ids='ingest') }}",
            suite="/opt/airflow/dags/suites/training_data.json",
        )

    :param data: the CSV or Parquet file: local path, ``s3://`` object, or ``runs:/`` / ``models:/``
        URI (loaded first, through the evidence hook's MLflow store). A header that repeats a
        column name is an ``error`` verdict: GX would judge the first copy, other loaders keep the
        last. (templated)
    :param suite: the suite in GX's JSON form: a file path (JSON or YAML), a dict or an
        ``ExpectationSuite``. Unknown expectation types and empty suites are refused. (templated)
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param include_unexpected_values: keep GX's sample of offending values in the evidence (off by
        default: they may be personal data).
    :param allow_empty: accept a batch with no rows (the suite still runs; finding
        ``data-validation.empty-batch`` records it). Off by default: an empty batch is an ``error``
        verdict (retried, then the task fails), never a pass.
    :param id_columns: identifier columns (a list or a comma-separated string): each must exist, be
        unique and never missing; identifier-like columns unique in the batch are recognised too and
        must never be missing. (templated)
    :param label_column: the label column; must exist in the batch.
    :param prediction_column: the model's output column (may be absent).
    :param timestamp_column: the time of each row; must exist in the batch.
    :param features: the feature columns; each must exist. Given, no identifier is inferred. (templated)
    :param engine: ``"pandas"`` (default) or ``"spark"``: the same suite through GX's Spark data
        source. With Spark, ``data`` is a local file or directory of part files, or an ``s3://``
        object or prefix, read by Spark itself (``pip install 'airflow-mlsecops[spark]'``, Java 17+).
    :param spark_master: the Spark master URL; default: the connection ``spark_conn_id``, then
        ``[mlsecops] spark_master``, ``MLSECOPS_SPARK_MASTER``, ``local[2]``.
    :param spark_conn_id: Airflow connection (type ``spark``) naming the master in its host and
        session settings in its extra ``{"conf": {...}}``; used only if it exists.
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data", "suite", "id_columns", "features")
    template_fields_renderers: ClassVar[dict[str, str]] = {"suite": "json"}
    gate_name: ClassVar[str] = gate_names.DATA_VALIDATION

    def __init__(
        self,
        *,
        data: str,
        suite: str | Path | Mapping[str, Any] | Any,
        csv_delimiter: str | None = None,
        include_unexpected_values: bool = False,
        allow_empty: bool = False,
        id_columns: Sequence[str] | str | None = None,
        label_column: str | None = None,
        prediction_column: str | None = None,
        timestamp_column: str | None = None,
        features: Sequence[str] | str | None = None,
        engine: str = "pandas",
        spark_master: str | None = None,
        spark_conn_id: str | None = DEFAULT_SPARK_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.require_flags(allow_empty=allow_empty)
        if not data:
            raise ValueError(f"{self.task_id}: data is required")
        if suite is None or (isinstance(suite, (str, Mapping)) and not suite):
            raise ValueError(f"{self.task_id}: suite is required")
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.columns import check_role_arguments
        from airflow_mlsecops.io.spark import check_engine

        try:
            check_engine(engine)
            check_role_arguments(
                id_columns=None if _templated(id_columns) else id_columns,
                label_column=label_column,
                prediction_column=prediction_column,
                timestamp_column=timestamp_column,
                features=None if _templated(features) else features,
            )
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        for name, value in (("spark_master", spark_master), ("spark_conn_id", spark_conn_id)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{self.task_id}: {name} must be a non-empty string or None, not {value!r}")
        self.data = str(data) if isinstance(data, Path) else data
        self.suite = str(suite) if isinstance(suite, Path) else suite
        self.csv_delimiter = csv_delimiter
        self.include_unexpected_values = include_unexpected_values
        self.allow_empty = allow_empty
        self.id_columns = id_columns
        self.label_column = label_column
        self.prediction_column = prediction_column
        self.timestamp_column = timestamp_column
        self.features = features
        self.engine = engine
        self.spark_master = spark_master
        self.spark_conn_id = spark_conn_id

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.data_validation import inputs_unavailable, validate_data

        options: dict[str, Any] = {
            "warn_only": self.warn_only,
            "context": pipeline,
            "include_unexpected_values": self.include_unexpected_values,
            "allow_empty": self.allow_empty,
            "id_columns": self.id_columns,
            "label_column": self.label_column,
            "prediction_column": self.prediction_column,
            "timestamp_column": self.timestamp_column,
            "features": self.features,
            "engine": self.engine,
        }
        if self.engine == "spark":
            # Spark reads the data itself (a file, a directory of parts, an s3:// prefix): nothing is loaded here.
            return validate_data(
                str(self.data),
                self.suite,
                csv_delimiter=self.csv_delimiter,
                spark_master=self.spark_master,
                spark_conn_id=self.spark_conn_id,
                **options,
            )
        try:
            table = self.load_input_table(self.data, csv_delimiter=self.csv_delimiter)
        except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
            return inputs_unavailable(exc, suite=self.suite, **options)
        return validate_data(table, self.suite, csv_delimiter=self.csv_delimiter, **options)


def _templated(value: object) -> bool:
    """Not known when the DAG is parsed (a template or an XCom reference): the gate checks it when the task runs."""
    return not (value is None or isinstance(value, (list, tuple)) or (isinstance(value, str) and "{{" not in value))
