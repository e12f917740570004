"""``PIIScanGateOperator``: reject a batch that carries personal data in columns not allowed to hold it."""

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


class PIIScanGateOperator(BaseGateOperator):
    """Scan a data file for personal data (e-mail, phone, card numbers, SSNs, IBANs, IP and MAC addresses).

    The task fails (without retry) if a column outside ``allow_columns`` holds any of the checked
    types, with high or low confidence (``pii.<type>.low-confidence``: loose forms, obfuscations),
    or if a column's name holds personal data; personal data in allowed columns is recorded as
    passed findings. Cells are normalised first (Unicode, escapes, obfuscations). The evidence
    (``pii_report.json``) holds counts, shares and masked samples, never a raw value. See
    :mod:`airflow_mlsecops.gates.pii` for what is and is not detected.

    .. code-block:: python

        PIIScanGateOperator(
            task_id="pii_scan",
            data="{{ ti.xcom_pull(task_ids='ingest') }}",
            allow_columns=["customer_email"],
            types=["email", "phone", "credit_card", "us_ssn", "iban"],
            max_rows=1_000_000,
        )

    :param data: the CSV or Parquet file: local path, ``s3://`` object, or ``runs:/`` / ``models:/``
        URI (loaded first, through the evidence hook's MLflow store). (templated)
    :param allow_columns: columns the policy allows to hold personal data: a list of names or a
        comma-separated string. (templated)
    :param types: PII types to look for (default: all of
        :data:`~airflow_mlsecops.gates.pii.PII_TYPES`); an unknown name is refused when the DAG is parsed.
    :param max_rows: scan a random sample of ``max_rows`` rows, drawn with a new seed each run (not
        settable here, so the rows scanned cannot be predicted); the evidence says the scan was
        sampled and records the seed (``sampling.seed``) for a verifier to re-draw the same rows.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param allow_empty: accept a file with no rows (it passes with finding
        ``pii-scan.empty-batch``). Off by default: an empty file is an ``error`` verdict (retried,
        then the task fails), never a pass.
    :param id_columns: identifier columns (a list or a comma-separated string); with
        ``label_column``, ``prediction_column``, ``timestamp_column`` and ``features`` the column
        roles (:mod:`airflow_mlsecops.gates.columns`). Nothing is left out of the scan: an
        identifier column can hold SSNs. The roles are recorded (``details["column_roles"]``) and a
        finding in an identifier column says so. (templated: ``id_columns``, ``features``)
    :param batch_rows: read the data in batches of this many rows (memory bounded by the batch,
        the same findings as reading it whole). A directory of part files, an ``s3://`` prefix
        ending in ``/`` and a file of at least 256 MiB are read in batches anyway; each part is
        hashed as it is read. ``max_rows`` on a stream draws a reservoir sample.
    :param engine: ``pandas`` (default) or ``spark``: the scan runs as a Spark job (the data is
        a local or shared-filesystem path Spark reads; executors need ``airflow-mlsecops``).
    :param spark_master: the Spark master URL (default: ``MLSECOPS_SPARK_MASTER``, else ``local[2]``).
    """

    template_fields: Sequence[str] = (
        *BaseGateOperator.template_fields,
        "data",
        "allow_columns",
        "id_columns",
        "features",
        "spark_master",
    )
    gate_name: ClassVar[str] = gate_names.PII_SCAN

    def __init__(
        self,
        *,
        data: str | Path,
        allow_columns: Sequence[str] | str = (),
        types: Sequence[str] | str | None = None,
        max_rows: int | None = None,
        csv_delimiter: str | None = None,
        allow_empty: bool = False,
        id_columns: Sequence[str] | str | None = None,
        label_column: str | None = None,
        prediction_column: str | None = None,
        timestamp_column: str | None = None,
        features: Sequence[str] | str | None = None,
        batch_rows: int | None = None,
        engine: str = "pandas",
        spark_master: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.require_flags(allow_empty=allow_empty)
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.pii import resolve_types

        if not data:
            raise ValueError(f"{self.task_id}: data is required")
        if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
            raise ValueError(f"{self.task_id}: max_rows must be a positive integer, not {max_rows!r}")
        if not isinstance(allow_columns, str) and not all(isinstance(name, str) for name in allow_columns):
            raise ValueError(f"{self.task_id}: allow_columns must be column names (strings) or one comma-separated string")
        if batch_rows is not None and (isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1):
            raise ValueError(f"{self.task_id}: batch_rows must be a positive integer, not {batch_rows!r}")
        from airflow_mlsecops.gates.columns import check_role_arguments
        from airflow_mlsecops.io.spark import check_engine

        try:
            self.types: list[str] | None = None if types is None else list(resolve_types(types))
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
        if engine == "spark" and not isinstance(data, (str, Path)):
            raise ValueError(f"{self.task_id}: engine='spark' reads a path")
        self.data = str(data) if isinstance(data, Path) else data
        self.allow_columns = allow_columns if isinstance(allow_columns, str) else list(allow_columns)
        self.max_rows = max_rows
        self.csv_delimiter = csv_delimiter
        self.allow_empty = allow_empty
        self.id_columns = id_columns
        self.label_column = label_column
        self.prediction_column = prediction_column
        self.timestamp_column = timestamp_column
        self.features = features
        self.batch_rows = batch_rows
        self.engine = engine
        self.spark_master = spark_master

    def apply_policy(self, context: Context) -> None:
        """The policy's values, except that ``max_rows`` unset stays unset: scanning every row is
        stricter than any floor the policy sets on ``max_rows``, which is not a default to apply."""
        every_row = self.max_rows is None
        super().apply_policy(context)
        if every_row:
            self.max_rows = None

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.pii import inputs_unavailable, scan_pii

        options: dict[str, Any] = {
            "allow_columns": self.allow_columns,
            "types": self.types,
            "max_rows": self.max_rows,
            "warn_only": self.warn_only,
            "context": pipeline,
            "allow_empty": self.allow_empty,
            "id_columns": self.id_columns,
            "label_column": self.label_column,
            "prediction_column": self.prediction_column,
            "timestamp_column": self.timestamp_column,
            "features": self.features,
            "batch_rows": self.batch_rows,
            "engine": self.engine,
        }
        if self.engine == "spark" or self._streamed():
            # read by the gate itself: in batches (every part hashed as read) or by Spark
            return scan_pii(self.data, csv_delimiter=self.csv_delimiter, spark_master=self.spark_master, **options)
        try:
            table = self.load_input_table(self.data, csv_delimiter=self.csv_delimiter)
        except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
            return inputs_unavailable(exc, **options)
        return scan_pii(table, csv_delimiter=self.csv_delimiter, **options)

    def _streamed(self) -> bool:
        """Whether the gate reads ``data`` in batches itself: a local path or ``s3://`` data it streams."""
        from airflow_mlsecops.io.batches import should_stream
        from airflow_mlsecops.io.locations import is_remote

        location = str(self.data)
        if is_remote(location) and not location.startswith("s3://"):
            return False  # runs:/ and models:/ are loaded through the MLflow store
        try:
            return should_stream(location, self.batch_rows)
        except OSError:
            return False


def _templated(value: object) -> bool:
    """Not known when the DAG is parsed (a template or an XCom reference): the gate checks it when the task runs."""
    return not (value is None or isinstance(value, (list, tuple)) or (isinstance(value, str) and "{{" not in value))
