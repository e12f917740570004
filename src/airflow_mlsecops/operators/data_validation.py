"""``DataValidationGateOperator``: a Great Expectations suite as a pipeline gate."""

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
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data", "suite")
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.require_flags(allow_empty=allow_empty)
        if not data:
            raise ValueError(f"{self.task_id}: data is required")
        if suite is None or (isinstance(suite, (str, Mapping)) and not suite):
            raise ValueError(f"{self.task_id}: suite is required")
        self.data = str(data) if isinstance(data, Path) else data
        self.suite = str(suite) if isinstance(suite, Path) else suite
        self.csv_delimiter = csv_delimiter
        self.include_unexpected_values = include_unexpected_values
        self.allow_empty = allow_empty

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.data_validation import inputs_unavailable, validate_data

        options: dict[str, Any] = {
            "warn_only": self.warn_only,
            "context": pipeline,
            "include_unexpected_values": self.include_unexpected_values,
            "allow_empty": self.allow_empty,
        }
        try:
            table = self.load_input_table(self.data, csv_delimiter=self.csv_delimiter)
        except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
            return inputs_unavailable(exc, suite=self.suite, **options)
        return validate_data(table, self.suite, csv_delimiter=self.csv_delimiter, **options)
