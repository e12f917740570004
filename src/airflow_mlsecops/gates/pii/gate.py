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

**Column roles** (``id_columns``, ``label_column``, ``prediction_column``, ``timestamp_column``,
``features``; :mod:`airflow_mlsecops.gates.columns`) exclude nothing from the scan: an identifier
column can hold SSNs. They are recorded (``details["column_roles"]``, the report), and a finding
in an identifier column says so.

**Larger than memory**: with ``batch_rows`` (or for a directory of part files, or a file of at
least 256 MiB) the data set is read in batches of ``batch_rows`` rows
(:class:`~airflow_mlsecops.io.batches.TableStream`, every part hashed as it is read) and scanned
batch by batch (:mod:`.streaming`): the same counts, samples and verdict as the whole file in memory.
``max_rows`` on a stream draws a reservoir sample (:func:`~.streaming.reservoir_rows`).
``engine="spark"`` runs the scan on a Spark session (:mod:`.spark`).

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
from airflow_mlsecops.gates.columns import ColumnRoles, check_role_arguments, declared_roles, resolve_roles
from airflow_mlsecops.gates.empty_data import (
    allow_empty_policy,
    check_allow_empty,
    emptiness,
    empty_batch_error,
    empty_batch_finding,
)
from airflow_mlsecops.gates.pii.columns import _columns
from airflow_mlsecops.gates.pii.detectors import resolve_types
from airflow_mlsecops.gates.pii.report import GATE_NAME, ScanSource, _evaluation
from airflow_mlsecops.gates.pii.scanning import CARD_ID_MIN_CANDIDATES, PHONE_COLUMN_MIN_SHARE, finish_columns, observe_frame
from airflow_mlsecops.io.locations import is_remote, local_table

if TYPE_CHECKING:
    from airflow_mlsecops.gates.pii.state import ColumnState
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


def _batch_rows(batch_rows: Any) -> int | None:
    """``batch_rows`` checked: ``None`` (the reader decides) or a positive integer."""
    if batch_rows is None:
        return None
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, numbers.Integral) or batch_rows < 1:
        raise ConfigurationError(f"batch_rows must be a positive integer, not {batch_rows!r}")
    return int(batch_rows)


def _check_arguments(
    types: Sequence[str] | str | None,
    max_rows: Any,
    allow_empty: object = False,
    roles: dict[str, Any] | None = None,
    batch_rows: Any = None,
    engine: Any = "pandas",
) -> tuple[tuple[str, ...], int | None]:
    """The selected types and the row limit, checked, and ``allow_empty``, the roles, ``batch_rows`` and
    ``engine`` (a :class:`ConfigurationError` otherwise)."""
    from airflow_mlsecops.io.spark import check_engine

    selected, limit = resolve_types(types), _row_limit(max_rows)
    check_allow_empty(allow_empty)
    check_role_arguments(**(roles or {}))
    _batch_rows(batch_rows)
    if not isinstance(engine, str):
        raise ConfigurationError(f"engine must be a string, not {engine!r}")
    check_engine(engine)
    return selected, limit


def _column_roles(frame: Any, roles: dict[str, Any]) -> ColumnRoles:
    """The roles of ``frame``'s columns (declared, identifiers inferred); the label may be absent."""
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    return resolve_roles(frame, **roles)


def _scan_file(
    data: str | Path | LoadedTable,
    *,
    allowed: tuple[str, ...],
    types: Sequence[str] | str | None,
    max_rows: int | None,
    csv_delimiter: str | None,
    allow_empty: bool = False,
    sample_seed: int | None = None,
    roles: dict[str, Any] | None = None,
    batch_rows: int | None = None,
    engine: str = "pandas",
    spark_master: str | None = None,
) -> Evaluation:
    """Read the file, scan it (or a random sample of ``max_rows`` rows) and build the evaluation (what :func:`scan_pii` runs).

    :param data: a local CSV or Parquet file (or a directory of part files), or a table loaded already.
    :param allowed: columns the policy allows to hold personal data.
    :param types: PII types to look for (default: all of :data:`~airflow_mlsecops.gates.pii.detectors.PII_TYPES`).
    :param max_rows: scan a random sample of ``max_rows`` rows.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param allow_empty: accept a file with no rows to scan (or no columns).
    :param sample_seed: the seed of the sample (default: a new one, recorded).
    :param roles: the declared column roles (recorded; nothing is left out of the scan).
    :param batch_rows: read in batches of this many rows (:mod:`.streaming`).
    :param engine: ``pandas`` or ``spark`` (:mod:`.spark`, on ``spark_master``).
    :raises ConfigurationError: for an unknown or empty type selection, a bad ``max_rows``,
        ``sample_seed``, ``allow_empty``, roles, ``batch_rows`` or ``engine``.
    :raises GateError: for a file with no rows to scan, unless ``allow_empty``.
    """
    from airflow_mlsecops.io.tabular import LoadedTable

    roles = roles or {}
    selected, limit = _check_arguments(types, max_rows, allow_empty, roles, batch_rows, engine)
    seed = _seed(sample_seed)
    scan = functools.partial(_judge, selected=selected, allowed=allowed, limit=limit, allow_empty=allow_empty, roles=roles)
    if engine == "spark":
        from airflow_mlsecops.gates.pii.spark import scan_with_spark

        seed = secrets.randbits(32) if limit is not None and seed is None else seed
        found = scan_with_spark(
            _location(data, "engine='spark'"), selected, limit=limit, seed=seed, csv_delimiter=csv_delimiter, master=spark_master
        )
        return scan(found.source, found.states, found.first, found.rows_scanned, found.elapsed, seed=seed)
    if not isinstance(data, LoadedTable):
        from airflow_mlsecops.io.batches import should_stream

        location = str(data)
        if (not is_remote(location) or location.startswith("s3://")) and should_stream(location, batch_rows):
            return _scan_streamed(location, selected, limit, seed, csv_delimiter, batch_rows, scan)
    table = local_table(data, csv_delimiter=csv_delimiter)
    total_rows = len(table.frame)
    frame = table.frame
    if limit is not None and limit < total_rows:
        seed = secrets.randbits(32) if seed is None else seed
        frame = table.frame.iloc[sample_rows(total_rows, limit, seed)]
    else:
        seed = None
    import pyarrow.compute  # noqa: F401 - imported before the clock starts

    started = time.perf_counter()
    states = observe_frame(frame, selected)
    return scan(ScanSource.of_table(table), states, table.frame, len(frame), time.perf_counter() - started, seed=seed)


def _location(data: str | Path | LoadedTable, what: str) -> str:
    """The path of ``data`` for an engine that reads the file itself."""
    from airflow_mlsecops.io.tabular import LoadedTable

    if isinstance(data, LoadedTable):
        raise ConfigurationError(f"{what} reads the data set itself: pass its path, not a table loaded already")
    return str(data)


def _scan_streamed(
    location: str,
    selected: tuple[str, ...],
    limit: int | None,
    seed: int | None,
    csv_delimiter: str | None,
    batch_rows: int | None,
    scan: Any,
) -> Evaluation:
    """Scan ``location`` batch by batch (:mod:`.streaming`)."""
    from airflow_mlsecops.gates.pii.streaming import scan_stream
    from airflow_mlsecops.io.batches import DEFAULT_BATCH_ROWS, TableStream, describe_stream

    stream = TableStream(location, batch_rows=batch_rows or DEFAULT_BATCH_ROWS, csv_delimiter=csv_delimiter)
    if limit is not None:
        seed = secrets.randbits(32) if seed is None else seed
    found = scan_stream(stream, selected, limit=limit, seed=seed)
    source = ScanSource(
        name=Path(location.rstrip("/")).name,
        subjects=list(stream.subjects),
        format="+".join(sorted(stream.formats)) or "csv",
        rows_total=stream.rows,
        streamed=describe_stream(stream),
        sampling="reservoir",
    )
    return scan(source, found.states, found.first, found.rows_scanned, found.elapsed, seed=seed)


def _withheld(roles: ColumnRoles, withheld: dict[str, str]) -> ColumnRoles:
    """``roles`` with every column name that holds personal data replaced by its ``#n (name withheld)`` label."""
    if not withheld:
        return roles
    import dataclasses

    def name(column: str | None) -> str | None:
        return None if column is None else withheld.get(column, column)

    def names(columns: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(withheld.get(c, c) for c in columns)

    return dataclasses.replace(
        roles,
        id_columns=names(roles.id_columns),
        label_column=name(roles.label_column),
        prediction_column=name(roles.prediction_column),
        timestamp_column=name(roles.timestamp_column),
        numerical=names(roles.numerical),
        categorical=names(roles.categorical),
        text=names(roles.text),
        excluded=tuple(dataclasses.replace(e, column=withheld.get(e.column, e.column)) for e in roles.excluded),
    )


def _judge(
    source: ScanSource,
    states: list[ColumnState],
    first: Any,
    rows: int,
    elapsed: float,
    *,
    seed: int | None,
    selected: tuple[str, ...],
    allowed: tuple[str, ...],
    limit: int | None,
    allow_empty: bool,
    roles: dict[str, Any],
) -> Evaluation:
    """The evaluation of what a scan saw (whole file, stream or Spark): the column rules, findings, evidence.

    :param first: the data set's first rows (the whole frame in memory): the columns and their roles.
    """
    import pandas as pd

    what = f"the batch {source.name}"
    empty = emptiness(pd.DataFrame(index=range(min(rows, 1)), columns=first.columns))
    if empty and not allow_empty:
        raise empty_batch_error(what, empty)
    columns = finish_columns(states, allow_columns=allowed, types=selected)
    withheld = {state.name: column.column for state, column in zip(states, columns, strict=True) if column.name_hits}
    evaluation = _evaluation(
        source,
        columns,
        rows=rows,
        limit=limit,
        seed=seed if rows < source.rows_total else None,
        selected=selected,
        allowed=allowed,
        elapsed=elapsed,
        roles=_withheld(_column_roles(first, roles), withheld),
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
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    batch_rows: int | None = None,
    engine: str = "pandas",
    spark_master: str | None = None,
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
    :param id_columns: identifier columns (a list or ``"a,b"``); with ``label_column``,
        ``prediction_column``, ``timestamp_column`` and ``features``, the column roles of
        :mod:`airflow_mlsecops.gates.columns`. Every column is scanned whatever its role; the roles
        are recorded (``details["column_roles"]``) and a finding in an identifier column says so.
    :param batch_rows: read the data set in batches of this many rows (bounded memory, same
        findings); a directory of part files, an ``s3://`` prefix ending in ``/`` and a file of at
        least 256 MiB are read in batches anyway (of 65,536 rows unless given).
    :param engine: ``pandas`` (default) or ``spark``: the scan runs as a Spark job on ``spark_master``
        (default ``MLSECOPS_SPARK_MASTER``, else ``local[2]``); ``data`` is then a path Spark reads.
    :param spark_master: the Spark master URL for ``engine="spark"``.
    """
    allowed = _columns(allow_columns)
    roles = declared_roles(
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=features,
    )
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
            roles=roles,
            batch_rows=batch_rows,
            engine=engine,
            spark_master=spark_master,
        ),
        policy=_policy(allowed, types, max_rows, allow_empty, roles, batch_rows, engine),
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
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    batch_rows: int | None = None,
    engine: str = "pandas",
) -> GateOutcome:
    """The outcome of :func:`scan_pii` when its data could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (an unknown type or a bad ``max_rows`` is reported
    first, as the gate does).

    :param error: why the data is unavailable.
    :param allow_columns: as for :func:`scan_pii`; the other parameters too.
    """
    allowed = _columns(allow_columns)
    roles = declared_roles(
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=features,
    )
    return run_gate(
        GATE_NAME,
        raising(error, check=lambda: _check_arguments(types, max_rows, allow_empty, roles, batch_rows, engine)),
        policy=_policy(allowed, types, max_rows, allow_empty, roles, batch_rows, engine),
        warn_only=warn_only,
        distributions=("pandas", "pyarrow"),
        context=context,
    )


def _policy(
    allowed: tuple[str, ...],
    types: Sequence[str] | str | None,
    max_rows: Any,
    allow_empty: object,
    roles: dict[str, Any] | None = None,
    batch_rows: Any = None,
    engine: Any = "pandas",
) -> dict[str, Any]:
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
        "column_roles": {key: list(value) if isinstance(value, (list, tuple)) else value for key, value in (roles or {}).items()},
        "roles_exclude": "nothing: every column is scanned whatever its role",
        "batch_rows": batch_rows if batch_rows is None or isinstance(batch_rows, int) else str(batch_rows),
        "engine": engine if isinstance(engine, str) else str(engine),
    }
