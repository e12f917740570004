"""The PII scan gate: :func:`scan_pii` reads a file, scans it and rejects personal data where the policy forbids it.

**Not detected**: names, postal addresses, dates of birth (a date column cannot be told apart from
any other date without its meaning), national IDs other than US SSNs, passport and driving-licence
numbers, free-form account numbers. Boolean, date/time and other non-text, non-numeric columns are
not scanned; numeric columns are scanned for card numbers only.
"""

from __future__ import annotations

import functools
import numbers
import time
from collections.abc import Sequence
from typing import Any

from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate
from airflow_mlsecops.gates.pii.columns import _columns
from airflow_mlsecops.gates.pii.detectors import resolve_types
from airflow_mlsecops.gates.pii.report import GATE_NAME, _evaluation
from airflow_mlsecops.gates.pii.scanning import CARD_ID_MIN_CANDIDATES, CARD_ID_MIN_VALID_SHARE, scan_frame
from airflow_mlsecops.io.tabular import load_table


def _row_limit(max_rows: Any) -> int | None:
    """``max_rows`` checked: ``None`` (every row) or a positive integer."""
    if max_rows is None:
        return None
    if isinstance(max_rows, bool) or not isinstance(max_rows, numbers.Integral) or max_rows < 1:
        raise ConfigurationError(f"max_rows must be a positive integer, not {max_rows!r}")
    return int(max_rows)


def _scan_file(
    data: str,
    *,
    allowed: tuple[str, ...],
    types: Sequence[str] | str | None,
    max_rows: int | None,
    csv_delimiter: str | None,
) -> Evaluation:
    """Read the file, scan its first ``max_rows`` rows and build the evaluation (what :func:`scan_pii` runs).

    :param data: path or ``s3://`` URI of a CSV or Parquet file.
    :param allowed: columns the policy allows to hold personal data.
    :param types: PII types to look for (default: all of :data:`~airflow_mlsecops.gates.pii.detectors.PII_TYPES`).
    :param max_rows: scan only the first ``max_rows`` rows.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :raises ConfigurationError: for an unknown or empty type selection or a bad ``max_rows``.
    """
    selected = resolve_types(types)
    limit = _row_limit(max_rows)
    table = load_table(data, csv_delimiter=csv_delimiter)
    total_rows = len(table.frame)
    frame = table.frame if limit is None or limit >= total_rows else table.frame.iloc[:limit]
    rows = len(frame)
    import pyarrow.compute  # noqa: F401 - imported before the clock starts

    started = time.perf_counter()
    columns = scan_frame(frame, allow_columns=allowed, types=selected)
    elapsed = time.perf_counter() - started
    return _evaluation(table, columns, rows=rows, limit=limit, selected=selected, allowed=allowed, elapsed=elapsed)


def scan_pii(
    data: str,
    *,
    allow_columns: Sequence[str] | str = (),
    types: Sequence[str] | str | None = None,
    max_rows: int | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
) -> GateOutcome:
    """Scan the data file at ``data`` for personal data in columns not allowed to hold it.

    The verdict is ``failed`` if a column outside ``allow_columns`` holds any of the selected
    types, ``passed`` otherwise; PII in allowed columns is reported as passed ``info`` findings.
    An unreadable file, an unknown type or a bad ``max_rows`` is an ``error`` verdict.

    :param data: path or ``s3://`` URI of a CSV or Parquet file.
    :param allow_columns: columns the policy allows to hold personal data (names, or ``"a,b"``).
    :param types: PII types to look for (default: all of :data:`PII_TYPES`).
    :param max_rows: scan only the first ``max_rows`` rows (visible in metrics, details, summary
        and report). The file's digest still covers the whole file.
    :param warn_only: report a rejection as ``warned`` instead of failing.
    :param context: the Airflow task running the gate, if any.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    """
    allowed = _columns(allow_columns)
    try:
        policy_types: Any = list(resolve_types(types))
    except ConfigurationError:
        policy_types = list(types) if types is not None and not isinstance(types, str) else types
    policy = {
        "types": policy_types,
        "allow_columns": list(allowed),
        "max_rows": int(max_rows) if isinstance(max_rows, numbers.Integral) else max_rows if max_rows is None else str(max_rows),
        "numeric_columns": "credit_card only",
        "card_identifier_column": {"min_candidates": CARD_ID_MIN_CANDIDATES, "min_valid_share": CARD_ID_MIN_VALID_SHARE},
    }

    return run_gate(
        GATE_NAME,
        functools.partial(_scan_file, data, allowed=allowed, types=types, max_rows=max_rows, csv_delimiter=csv_delimiter),
        policy=policy,
        warn_only=warn_only,
        distributions=("pandas", "pyarrow"),
        context=context,
    )
