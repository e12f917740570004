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
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data", "allow_columns")
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
        try:
            self.types: list[str] | None = None if types is None else list(resolve_types(types))
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        self.data = str(data) if isinstance(data, Path) else data
        self.allow_columns = allow_columns if isinstance(allow_columns, str) else list(allow_columns)
        self.max_rows = max_rows
        self.csv_delimiter = csv_delimiter
        self.allow_empty = allow_empty

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
        }
        try:
            table = self.load_input_table(self.data, csv_delimiter=self.csv_delimiter)
        except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
            return inputs_unavailable(exc, **options)
        return scan_pii(table, csv_delimiter=self.csv_delimiter, **options)
