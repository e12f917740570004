"""The data-integrity gate: :func:`check_integrity` reads batch and reference, runs every check, records the result.

**Not detected**: poison that keeps every statistic in range (clean-label attacks, backdoor
triggers in a few rows, feature values moved a little inside the reference range: income x1.1 passes
at the default limits, x1.2 fails), label flips chosen among rows the model is unsure about anyway,
random flips below about 5% of a 2,000-row batch (9 of 10 batches with 5% were caught) and
targeted flips (one class relabelled) below about 3%, flips of more than half of a class (the
class-set and label-shift checks see those), shifts in the *joint* distribution that leave every
marginal unchanged, duplicates of reference rows, near-copies noisier than the radius (copies with
0.5% relative noise are caught, 2% pass), changes in columns listed in ``ignore_columns`` (except
infinite numbers and spreadsheet formulas, judged in every column), formulas behind characters a
spreadsheet may fold into ``=`` (the full-width equals sign U+FF1D), and anything the reference itself already
contains (it is trusted).

Identifier, timestamp and free-text columns differ between any two batches: list them in
``ignore_columns`` or they fail the shift and range checks.

**Skipped checks are not a pass**: without a label column the label checks (label shift, class
set, label flips) are skipped, as is a check with no comparable column; each is a finding
(``integrity.<check>``, severity ``low``, ``skipped: <reason>``) and, when nothing failed, the
verdict is ``warned`` (incomplete) with ``details["not_performed"]`` naming them, never ``passed``.

**Empty inputs**: a batch with no rows (a header-only CSV, a zero-row Parquet file) is an ``error``
verdict, never a pass, unless ``allow_empty=True``: then no check runs, every check is reported as
skipped and finding ``data-integrity.empty-batch`` says why (verdict ``warned``, incomplete). An empty reference is always an
``error`` (:mod:`airflow_mlsecops.gates.empty_data`).

**Inputs are local.** :func:`check_integrity` reads local files or tables loaded already; the
operator and the CLI load ``s3://``, ``runs:/`` and ``models:/`` data first with
:func:`airflow_mlsecops.io.locations.load_table_at` (the evidence names it by its URI). When that
fails, :func:`inputs_unavailable` records the same ``error`` verdict the gate would.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.columns import (
    ColumnRoles,
    check_role_arguments,
    declared_exclusions,
    declared_roles,
    resolve_roles,
)
from airflow_mlsecops.gates.data_integrity.cells import _formula_injection, _non_finite
from airflow_mlsecops.gates.data_integrity.distribution import _feature_shift, _out_of_range
from airflow_mlsecops.gates.data_integrity.duplicates import _duplicates, _identifiers, _near_duplicates
from airflow_mlsecops.gates.data_integrity.label_flips import _label_flips
from airflow_mlsecops.gates.data_integrity.labels import _label_checks, _label_reason
from airflow_mlsecops.gates.data_integrity.report import GATE_NAME, _evaluation, _Input, _jsonable
from airflow_mlsecops.gates.data_integrity.results import CHECK_IDS, _Check, _skipped
from airflow_mlsecops.gates.data_integrity.schema import _schema
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds, _resolve_thresholds
from airflow_mlsecops.gates.empty_data import (
    allow_empty_policy,
    check_allow_empty,
    emptiness,
    empty_batch_error,
    empty_batch_finding,
    empty_reference_error,
)
from airflow_mlsecops.io.locations import local_table, table_name
from airflow_mlsecops.io.tabular import duplicate_columns_error, repeated_labels

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlsecops.io.tabular import LoadedTable

# The distributions whose versions the evidence records.
_DISTRIBUTIONS = ("pandas", "numpy", "scipy", "scikit-learn", "cleanlab")


def _read(data: str | Path | LoadedTable, role: str, delimiter: str | None, *, allow_empty: bool = False) -> LoadedTable:
    """One input, its column labels as strings; an empty one is an error unless it is a batch and ``allow_empty``."""
    table = local_table(data, csv_delimiter=delimiter)
    empty = emptiness(table.frame)
    if empty and role == "reference":
        raise empty_reference_error(f"the reference {table_name(data)}", empty)
    if empty and not allow_empty:
        raise empty_batch_error(f"the {role} {table_name(data)}", empty)
    repeated = repeated_labels(table.frame.columns)
    if repeated:
        raise duplicate_columns_error(f"the {role} {table_name(data)}", repeated)
    frame = table.frame.copy(deep=False)  # the caller's table keeps its column labels
    frame.columns = [str(c) for c in frame.columns]
    return dataclasses.replace(table, frame=frame)


def _evaluate(
    batch: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    label_column: str | None = None,
    thresholds: IntegrityThresholds | None = None,
    random_state: int = 0,
    roles: ColumnRoles | None = None,
) -> list[_Check]:
    """Run every check on two frames (the engine behind :func:`check_integrity`), in :data:`CHECK_IDS` order.

    :param batch: the new training batch.
    :param reference: the trusted reference.
    :param label_column: the label column, or ``None`` to skip the label checks.
    :param thresholds: the limits (defaults if ``None``).
    :param random_state: seed of every sample and model.
    :param roles: the column roles (:func:`~airflow_mlsecops.gates.columns.resolve_roles`); ``None``
        infers them from the reference with only the label declared.
    """
    th = thresholds or IntegrityThresholds()
    if label_column is not None and label_column not in batch.columns and label_column not in reference.columns:
        raise ConfigurationError(f"label column {label_column!r} is in neither the batch nor the reference")
    if roles is None:
        roles = resolve_roles(reference, label_column=label_column, ignore=th.ignore_columns)
    schema, frames = _schema(batch, reference, label_column, th, roles)
    frames.random_state = random_state
    checks = [schema, _identifiers(frames), _non_finite(frames), _formula_injection(frames)]
    reason = _label_reason(label_column, batch, reference, th.ignore_columns)
    labelled = reason is None and frames.label is not None
    if labelled:
        checks.extend(_label_checks(frames))
    else:
        checks.extend([_skipped("integrity.label_shift", str(reason)), _skipped("integrity.class_set", str(reason))])
    checks.append(_duplicates(frames))
    checks.append(_near_duplicates(frames))
    checks.append(_out_of_range(frames))
    checks.append(_feature_shift(frames))
    if labelled:
        checks.append(_label_flips(frames))
    else:
        checks.append(_skipped("integrity.label_flips", str(reason)))
    return checks


def _evaluate_files(
    data: str | Path | LoadedTable,
    reference: str | Path | LoadedTable,
    *,
    label_column: str | None,
    thresholds: IntegrityThresholds | Mapping[str, object] | None,
    csv_delimiter: str | None,
    random_state: int,
    allow_empty: bool = False,
    roles: Mapping[str, Any] | None = None,
    batch_rows: int | None = None,
    sample_rows: int | None = None,
) -> Evaluation:
    """Read batch and reference, run every check and build the evaluation (what :func:`check_integrity` runs).

    :param data: the new batch: a local CSV or Parquet file, or a table loaded already.
    :param reference: the trusted reference data, same forms.
    :param label_column: the label column, or ``None`` to skip the label checks.
    :param thresholds: :class:`IntegrityThresholds`, a mapping of threshold names to values, or ``None``.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param random_state: seed of every sample and model.
    :param allow_empty: accept a batch with no rows: no check runs, the evaluation says so.
    :param roles: the declared column roles (``id_columns``, ``prediction_column``, ``timestamp_column``,
        ``features``), as for :func:`~airflow_mlsecops.gates.columns.resolve_roles`.
    :param batch_rows: read both inputs in frames of this many rows (:mod:`.streaming`); ``None`` streams
        only what :func:`~airflow_mlsecops.io.batches.should_stream` calls large.
    :param sample_rows: rows of each side's uniform sample on the streamed path.
    :raises ConfigurationError: for bad thresholds, a bad ``allow_empty``, a label column in neither file,
        bad column roles or a bad ``batch_rows`` / ``sample_rows``.
    :raises GateError: for an empty reference, an empty batch (unless allowed) or a repeated column name
        (named; also two labels with the same text, such as ``1`` and ``"1"``).
    """
    th = _resolve_thresholds(thresholds)
    check_allow_empty(allow_empty)
    check_stream_arguments(batch_rows, sample_rows)
    if _streams(data, reference, batch_rows):
        return _evaluate_streams(
            data,
            reference,
            label_column=label_column,
            th=th,
            csv_delimiter=csv_delimiter,
            random_state=random_state,
            allow_empty=allow_empty,
            roles=roles,
            batch_rows=batch_rows,
            sample_rows=sample_rows,
        )
    batch = _read(data, "batch", csv_delimiter, allow_empty=allow_empty)
    ref = _read(reference, "reference", csv_delimiter)
    column_roles = resolve_roles(ref.frame, label_column=label_column, ignore=th.ignore_columns, **dict(roles or {}))
    empty = emptiness(batch.frame)
    if empty:
        return _empty_batch(batch, ref, empty, label_column=label_column, random_state=random_state, thresholds=th)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        checks = _evaluate(
            batch.frame, ref.frame, label_column=label_column, thresholds=th, random_state=random_state, roles=column_roles
        )
    return _evaluation(
        checks, batch, ref, label_column=label_column, random_state=random_state, thresholds=th, roles=column_roles
    )


def _streams(data: object, reference: object, batch_rows: int | None) -> bool:
    """Whether to read the inputs in batches: asked to, or a location :func:`should_stream` calls large.

    :raises ConfigurationError: ``batch_rows`` with a table loaded already (only a location can be streamed).
    """
    from airflow_mlsecops.io.batches import should_stream

    locations = [str(x) for x in (data, reference) if isinstance(x, (str, Path))]
    if batch_rows is not None:
        if len(locations) < 2:
            raise ConfigurationError("batch_rows needs the batch and the reference as locations, not tables loaded already")
        return True
    return any(should_stream(location, None) for location in locations) and len(locations) == 2


def check_stream_arguments(batch_rows: object, sample_rows: object) -> None:
    """``batch_rows`` and ``sample_rows`` checked: ``None`` or a positive integer (``sample_rows`` at least 100).

    :raises ConfigurationError: naming the bad value.
    """
    for name, value, low in (("batch_rows", batch_rows, 1), ("sample_rows", sample_rows, 100)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ConfigurationError(f"{name} must be an integer of at least {low}, not {value!r}")


def _evaluate_streams(
    data: str | Path | LoadedTable,
    reference: str | Path | LoadedTable,
    *,
    label_column: str | None,
    th: IntegrityThresholds,
    csv_delimiter: str | None,
    random_state: int,
    allow_empty: bool,
    roles: Mapping[str, Any] | None,
    batch_rows: int | None,
    sample_rows: int | None,
) -> Evaluation:
    """The streamed path (:mod:`.streaming`): both inputs read in frames, one pass each."""
    from airflow_mlsecops.gates.data_integrity.streaming import DEFAULT_SAMPLE_ROWS, evaluate_streams
    from airflow_mlsecops.io.artifacts import subject_name
    from airflow_mlsecops.io.batches import DEFAULT_BATCH_ROWS, TableStream

    size = int(batch_rows or DEFAULT_BATCH_ROWS)
    batch_stream = TableStream(str(data), batch_rows=size, csv_delimiter=csv_delimiter)
    ref_stream = TableStream(str(reference), batch_rows=size, csv_delimiter=csv_delimiter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = evaluate_streams(
            batch_stream,
            ref_stream,
            batch_name=subject_name(str(data)),
            ref_name=subject_name(str(reference)),
            label_column=label_column,
            th=th,
            random_state=random_state,
            roles=roles,
            sample_rows=int(sample_rows or DEFAULT_SAMPLE_ROWS),
            allow_empty=allow_empty,
        )
    if isinstance(result, tuple):
        batch, ref, _, empty = result
        return _empty_batch(batch, ref, empty, label_column=label_column, random_state=random_state, thresholds=th)
    evaluation = _evaluation(
        result.checks,
        result.batch,
        result.reference,
        label_column=label_column,
        random_state=random_state,
        thresholds=th,
        roles=result.roles,
        sampled=result.sampled,
    )
    evaluation.details["stream"]["memory"] = result.memory
    return evaluation


def _empty_batch(
    batch_table: LoadedTable | _Input,
    ref: LoadedTable | _Input,
    empty: str,
    *,
    label_column: str | None,
    random_state: int,
    thresholds: IntegrityThresholds,
) -> Evaluation:
    """The evaluation of an empty batch that ``allow_empty`` accepts: every check skipped, a finding that says why."""
    batch = _Input.of(batch_table)
    what = f"the batch {Path(batch.name.rstrip('/')).name}"
    reason = f"{what} {empty} (accepted because allow_empty=True)"
    checks = [_skipped(check_id, reason) for check_id in CHECK_IDS]
    evaluation = _evaluation(checks, batch, ref, label_column=label_column, random_state=random_state, thresholds=thresholds)
    finding = empty_batch_finding(GATE_NAME, what, empty)
    evaluation.findings.insert(0, finding)
    evaluation.not_performed = [finding.id]  # it says why every check was skipped
    evaluation.summary = f"empty batch accepted (allow_empty=True): {what} {empty}, no integrity check ran"
    return evaluation


def check_integrity(
    data: str | Path | LoadedTable,
    reference: str | Path | LoadedTable,
    *,
    label_column: str | None = None,
    thresholds: IntegrityThresholds | Mapping[str, object] | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    random_state: int = 0,
    allow_empty: bool = False,
    id_columns: Sequence[str] | str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    batch_rows: int | None = None,
    sample_rows: int | None = None,
) -> GateOutcome:
    """Compare the batch at ``data`` with the trusted ``reference`` and reject signs of poisoning.

    Never raises for bad input: a missing, empty, unreadable or malformed file, or bad thresholds,
    give an ``error`` verdict naming the problem. A batch with no rows is never a pass unless
    ``allow_empty=True``; an empty reference never is.

    :param data: the new batch: a local CSV or Parquet file, or a table loaded already
        (:func:`airflow_mlsecops.io.locations.load_table_at` loads ``s3://``, ``runs:/`` and
        ``models:/`` files and names them by their URI).
    :param reference: the trusted reference data, same forms.
    :param label_column: the label column; without it the label checks are reported as skipped.
    :param thresholds: :class:`IntegrityThresholds` or a mapping of threshold names to values.
    :param warn_only: report a rejection as ``warned`` instead of failing.
    :param context: the Airflow task running the gate, if any.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param random_state: seed of the samples and the model, so the verdict is reproducible.
    :param allow_empty: accept a batch with no rows (no check runs; finding
        ``data-integrity.empty-batch`` records it). Off by default: an ``error`` verdict.
    :param id_columns: identifier columns (a list or a comma-separated string): not compared as
        features, checked for repeated and missing values (``integrity.identifiers``). Identifier-like
        columns not declared are recognised (:mod:`airflow_mlsecops.gates.columns`).
    :param prediction_column: the model's output column, never compared as a feature.
    :param timestamp_column: the time of each row, never compared as a feature.
    :param features: the feature columns; given, every other column (but the label) is left out and
        no identifier is inferred. A feature absent from the batch is a schema change.
    :param batch_rows: read both inputs in frames of at most this many rows, each in one pass, so memory
        depends on it rather than on the data (:mod:`.streaming`: which checks are exact, which run on a
        sample). Without it, a file of 256 MB or more, a directory of part files or an ``s3://`` prefix is
        streamed anyway (:func:`~airflow_mlsecops.io.batches.should_stream`), in frames of 65,536 rows.
    :param sample_rows: rows of each side's uniform sample on the streamed path (default 100,000, at
        least ``label_flip_max_rows``).
    :returns: the outcome, with ``integrity_report.json`` as its evidence file; ``details["column_roles"]``
        holds the column roles and each excluded column with its reason; a streamed run adds
        ``details["stream"]`` (parts, rows, bytes, batch size) and ``details["sampled"]`` (the checks
        that ran on a sample, how it was drawn and how large).
    """
    roles = declared_roles(
        id_columns=id_columns, prediction_column=prediction_column, timestamp_column=timestamp_column, features=features
    )
    policy = _policy(table_name(reference), label_column, thresholds, random_state, allow_empty, roles)
    policy.update(_stream_policy(batch_rows, sample_rows))
    return run_gate(
        GATE_NAME,
        functools.partial(
            _evaluate_files,
            data,
            reference,
            label_column=label_column,
            thresholds=thresholds,
            csv_delimiter=csv_delimiter,
            random_state=random_state,
            allow_empty=allow_empty,
            roles=roles,
            batch_rows=batch_rows,
            sample_rows=sample_rows,
        ),
        policy=policy,
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS,
        context=context,
    )


def inputs_unavailable(
    error: Exception,
    *,
    reference: str | Path,
    label_column: str | None = None,
    thresholds: IntegrityThresholds | Mapping[str, object] | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    random_state: int = 0,
    allow_empty: bool = False,
    id_columns: Sequence[str] | str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    batch_rows: int | None = None,
    sample_rows: int | None = None,
) -> GateOutcome:
    """The outcome of :func:`check_integrity` when the batch or the reference could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (bad thresholds are reported first, as the gate does).

    :param error: why the data is unavailable.
    :param reference: the reference's location as given; the other parameters as for :func:`check_integrity`.
    """
    roles = declared_roles(
        id_columns=id_columns, prediction_column=prediction_column, timestamp_column=timestamp_column, features=features
    )

    def check() -> None:
        _resolve_thresholds(thresholds)
        check_allow_empty(allow_empty)
        check_role_arguments(label_column=label_column, **roles)
        check_stream_arguments(batch_rows, sample_rows)

    policy = _policy(str(reference), label_column, thresholds, random_state, allow_empty, roles)
    policy.update(_stream_policy(batch_rows, sample_rows))
    return run_gate(
        GATE_NAME,
        raising(error, check=check),
        policy=policy,
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS,
        context=context,
    )


def _policy(
    reference: str,
    label_column: str | None,
    thresholds: IntegrityThresholds | Mapping[str, object] | None,
    random_state: int,
    allow_empty: object,
    roles: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The policy on record; bad thresholds are shown as given (the gate reports them as an error)."""
    try:
        policy_thresholds: dict[str, Any] = _resolve_thresholds(thresholds).to_dict()
    except ConfigurationError:
        given = thresholds if isinstance(thresholds, Mapping) else {"thresholds": repr(thresholds)}
        policy_thresholds = {str(k): _jsonable(v) for k, v in given.items()}
    ignored = policy_thresholds.get("ignore_columns")
    return {
        "reference": reference,
        "label_column": label_column,
        # the label checks (label shift, class set, label flips) can run: a label column is named, not ignored
        "has_label_column": bool(label_column) and label_column not in (ignored if isinstance(ignored, list) else ()),
        "random_state": random_state,
        "thresholds": policy_thresholds,
        "allow_empty": allow_empty_policy(allow_empty),
        **{key: _jsonable(value) for key, value in (roles or {}).items()},
        # the columns the DAG declared out of the feature checks by a role (the label has its own checks)
        "excluded_columns": declared_exclusions(roles),
        "compare_all_features": not (roles or {}).get("features"),
    }


def _stream_policy(batch_rows: object, sample_rows: object) -> dict[str, Any]:
    """``batch_rows`` / ``sample_rows`` on record when given (a bad value as given: the gate reports it)."""
    given = {"batch_rows": batch_rows, "sample_rows": sample_rows}
    return {k: v if isinstance(v, int) else str(v) for k, v in given.items() if v is not None}
