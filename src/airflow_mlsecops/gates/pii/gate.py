"""The PII scan gate: :func:`scan_pii` reads a file, scans it and rejects personal data where the policy forbids it.

**Not detected**: names, postal addresses, dates of birth (a date column cannot be told apart from
any other date without its meaning), national IDs other than US SSNs, passport and driving-licence
numbers, free-form account numbers. Boolean, date/time and other non-text, non-numeric columns are
not scanned; numeric columns are scanned for card and phone numbers only.

**Sampling**: with ``max_rows`` below the file's row count, a *random* sample of ``max_rows`` rows
is scanned (not the first rows: personal data placed after them would never be seen). Each run
draws a new seed (``secrets``) unless ``sample_seed`` is given; the seed is in the report
(``sampling.seed``, with how the rows are drawn), the details and the summary, so a verifier
re-draws the same rows with :func:`sample_rows`. The rows outside the sample were not scanned:
finding ``pii-scan.rows-not-scanned``, and the verdict is ``warned`` (incomplete) unless personal
data rejects, never ``passed``.

**Empty inputs**: a file with no rows to scan (a header-only CSV, a zero-row Parquet file) or no
columns is an ``error`` verdict, never "no personal data found", unless ``allow_empty=True``
(then finding ``pii-scan.empty-batch`` records it; :mod:`airflow_mlsecops.gates.empty_data`).

**Inputs are local.** :func:`scan_pii` reads a local file or a table loaded already; the operator
and the CLI load ``s3://``, ``runs:/`` and ``models:/`` data first with
:func:`airflow_mlsecops.io.locations.load_table_at` (the evidence names it by its URI). When that
fails, :func:`inputs_unavailable` records the same ``error`` verdict the gate would.
"""

from __future__ import annotations

import functools
import numbers
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.empty_data import (
    allow_empty_policy,
    check_allow_empty,
    emptiness,
    empty_batch_error,
    empty_batch_finding,
)
from airflow_mlsecops.gates.pii.columns import _columns
from airflow_mlsecops.gates.pii.detectors import resolve_types
from airflow_mlsecops.gates.pii.report import GATE_NAME, _evaluation
from airflow_mlsecops.gates.pii.scanning import CARD_ID_MIN_CANDIDATES, PHONE_COLUMN_MIN_SHARE, scan_frame
from airflow_mlsecops.io.locations import local_table

if TYPE_CHECKING:
    from airflow_mlsecops.io.tabular import LoadedTable


def _row_limit(max_rows: Any) -> int | None:
    """``max_rows`` checked: ``None`` (every row) or a positive integer."""
    if max_rows is None:
        return None
    if isinstance(max_rows, bool) or not isinstance(max_rows, numbers.Integral) or max_rows < 1:
        raise ConfigurationError(f"max_rows must be a positive integer, not {max_rows!r}")
    return int(max_rows)


def _seed(sample_seed: Any) -> int | None:
    """``sample_seed`` checked: ``None`` (a new seed per run) or a non-negative integer."""
    if sample_seed is None:
        return None
    if isinstance(sample_seed, bool) or not isinstance(sample_seed, numbers.Integral) or sample_seed < 0:
        raise ConfigurationError(f"sample_seed must be a non-negative integer, not {sample_seed!r}")
    return int(sample_seed)


def sample_rows(rows_total: int, rows_scanned: int, seed: int) -> Any:
    """The row positions a scan with ``max_rows=rows_scanned`` and seed ``seed`` reads (sorted numpy array).

    What a verifier runs to re-draw the sample a report names (``sampling.seed``).

    :param rows_total: rows in the file.
    :param rows_scanned: rows in the sample.
    :param seed: the seed from the report.
    """
    import numpy as np

    return np.sort(np.random.default_rng(seed).choice(rows_total, rows_scanned, replace=False))


def _check_arguments(
    types: Sequence[str] | str | None, max_rows: Any, allow_empty: object = False
) -> tuple[tuple[str, ...], int | None]:
    """The selected types and the row limit, checked, and ``allow_empty`` (a :class:`ConfigurationError` otherwise)."""
    selected, limit = resolve_types(types), _row_limit(max_rows)
    check_allow_empty(allow_empty)
    return selected, limit


def _scan_file(
    data: str | Path | LoadedTable,
    *,
    allowed: tuple[str, ...],
    types: Sequence[str] | str | None,
    max_rows: int | None,
    csv_delimiter: str | None,
    allow_empty: bool = False,
    sample_seed: int | None = None,
) -> Evaluation:
    """Read the file, scan it (or a random sample of ``max_rows`` rows) and build the evaluation (what :func:`scan_pii` runs).

    :param data: a local CSV or Parquet file, or a table loaded already.
    :param allowed: columns the policy allows to hold personal data.
    :param types: PII types to look for (default: all of :data:`~airflow_mlsecops.gates.pii.detectors.PII_TYPES`).
    :param max_rows: scan a random sample of ``max_rows`` rows.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param allow_empty: accept a file with no rows to scan (or no columns).
    :param sample_seed: the seed of the sample (default: a new one, recorded).
    :raises ConfigurationError: for an unknown or empty type selection, a bad ``max_rows``,
        ``sample_seed`` or ``allow_empty``.
    :raises GateError: for a file with no rows to scan, unless ``allow_empty``.
    """
    selected, limit = _check_arguments(types, max_rows, allow_empty)
    seed = _seed(sample_seed)
    table = local_table(data, csv_delimiter=csv_delimiter)
    total_rows = len(table.frame)
    frame = table.frame
    if limit is not None and limit < total_rows:
        seed = secrets.randbits(32) if seed is None else seed
        frame = table.frame.iloc[sample_rows(total_rows, limit, seed)]
    else:
        seed = None
    rows = len(frame)
    what = f"the batch {Path(table.subject.name).name}"
    empty = emptiness(frame)  # the rows scanned: none when the file has none
    if empty and not allow_empty:
        raise empty_batch_error(what, empty)
    import pyarrow.compute  # noqa: F401 - imported before the clock starts

    started = time.perf_counter()
    columns = scan_frame(frame, allow_columns=allowed, types=selected)
    elapsed = time.perf_counter() - started
    evaluation = _evaluation(
        table, columns, rows=rows, limit=limit, seed=seed, selected=selected, allowed=allowed, elapsed=elapsed
    )
    if empty:
        finding = empty_batch_finding(GATE_NAME, what, empty)
        evaluation.findings.insert(0, finding)
        evaluation.not_performed.append(finding.id)
        evaluation.summary = f"empty batch accepted (allow_empty=True): {what} {empty}, nothing was scanned"
    return evaluation


def scan_pii(
    data: str | Path | LoadedTable,
    *,
    allow_columns: Sequence[str] | str = (),
    types: Sequence[str] | str | None = None,
    max_rows: int | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    allow_empty: bool = False,
    sample_seed: int | None = None,
) -> GateOutcome:
    """Scan the data file at ``data`` for personal data in columns not allowed to hold it.

    The verdict is ``failed`` if a column outside ``allow_columns`` holds any of the selected
    types, ``passed`` otherwise; PII in allowed columns is reported as passed ``info`` findings.
    An unreadable file, a file with no rows to scan (unless ``allow_empty``), an unknown type or a
    bad ``max_rows`` is an ``error`` verdict.

    :param data: a local CSV or Parquet file, or a table loaded already
        (:func:`airflow_mlsecops.io.locations.load_table_at` loads ``s3://``, ``runs:/`` and
        ``models:/`` files and names them by their URI).
    :param allow_columns: columns the policy allows to hold personal data (names, or ``"a,b"``).
    :param types: PII types to look for (default: all of :data:`PII_TYPES`).
    :param max_rows: scan a random sample of ``max_rows`` rows (visible in metrics, details, summary
        and report, with the seed). The file's digest still covers the whole file.
    :param warn_only: report a rejection as ``warned`` instead of failing.
    :param context: the Airflow task running the gate, if any.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param allow_empty: accept a file with no rows (or no columns): it passes with finding
        ``pii-scan.empty-batch``. Off by default: an ``error`` verdict, never a pass.
    :param sample_seed: the seed of the ``max_rows`` sample, to re-draw the rows a report names
        (default: a new random seed per run, so the rows scanned cannot be predicted).
    """
    allowed = _columns(allow_columns)
    return run_gate(
        GATE_NAME,
        functools.partial(
            _scan_file,
            data,
            allowed=allowed,
            types=types,
            max_rows=max_rows,
            csv_delimiter=csv_delimiter,
            allow_empty=allow_empty,
            sample_seed=sample_seed,
        ),
        policy=_policy(allowed, types, max_rows, allow_empty),
        warn_only=warn_only,
        distributions=("pandas", "pyarrow"),
        context=context,
    )


def inputs_unavailable(
    error: Exception,
    *,
    allow_columns: Sequence[str] | str = (),
    types: Sequence[str] | str | None = None,
    max_rows: int | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    allow_empty: bool = False,
) -> GateOutcome:
    """The outcome of :func:`scan_pii` when its data could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (an unknown type or a bad ``max_rows`` is reported
    first, as the gate does).

    :param error: why the data is unavailable.
    :param allow_columns: as for :func:`scan_pii`; the other parameters too.
    """
    allowed = _columns(allow_columns)
    return run_gate(
        GATE_NAME,
        raising(error, check=lambda: _check_arguments(types, max_rows, allow_empty)),
        policy=_policy(allowed, types, max_rows, allow_empty),
        warn_only=warn_only,
        distributions=("pandas", "pyarrow"),
        context=context,
    )


def _policy(allowed: tuple[str, ...], types: Sequence[str] | str | None, max_rows: Any, allow_empty: object) -> dict[str, Any]:
    """The policy on record; a bad ``types`` or ``max_rows`` is shown as given (the gate reports it as an error)."""
    try:
        policy_types: Any = list(resolve_types(types))
    except ConfigurationError:
        policy_types = list(types) if types is not None and not isinstance(types, str) else types
    return {
        "types": policy_types,
        "allow_columns": list(allowed),
        "max_rows": int(max_rows) if isinstance(max_rows, numbers.Integral) else max_rows if max_rows is None else str(max_rows),
        "numeric_columns": "credit_card and phone",
        "sampling": "random rows, a new seed per run unless given (max_rows)",
        "low_confidence": "fails where not allowed (finding pii.<type>.low-confidence, medium)",
        "column_names": "scanned; a name holding personal data fails",
        "card_identifier_column": {
            "min_candidates": CARD_ID_MIN_CANDIDATES,
            "rule": "Luhn-valid count within chance (10% + 3 sd): reported with low confidence, never hidden",
        },
        "phone_bare_numbers": {"min_share": PHONE_COLUMN_MIN_SHARE, "high_when_column_named": "phone, mobile, tel, ..."},
        "allow_empty": allow_empty_policy(allow_empty),
    }
