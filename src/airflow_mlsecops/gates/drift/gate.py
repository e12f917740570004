"""The drift gate's entry points: :func:`detect_drift` and :func:`inputs_unavailable`."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.columns import check_role_arguments, declared_exclusions, declared_roles
from airflow_mlsecops.gates.drift.columns import ROLE_KEYS, check_frames, select_columns
from airflow_mlsecops.gates.drift.comparison import missing_counts, missing_shares, sample
from airflow_mlsecops.gates.drift.report import Compared, empty_batch, judge
from airflow_mlsecops.gates.drift.thresholds import (
    DEFAULT_DRIFT_SHARE,
    DEFAULT_MAX_MISSING_CHANGE,
    DEFAULT_MAX_ROWS,
    GATE_NAME,
    MISSING_SIGNIFICANCE,
    SEVERE_DISTANCE_FACTOR,
    SEVERE_MISSING_CHANGE,
    SEVERE_P_VALUE_FACTOR,
)
from airflow_mlsecops.gates.empty_data import allow_empty_policy, check_allow_empty, emptiness
from airflow_mlsecops.io.locations import ModelRef, local_table, parse_model_ref

if TYPE_CHECKING:
    from airflow_mlsecops.io.tabular import LoadedTable


def _check_arguments(
    drift_share: float,
    max_rows: int | None,
    allow_empty: object = False,
    random_state: int | None = None,
    max_missing_change: float = DEFAULT_MAX_MISSING_CHANGE,
    fail_on_severe_column: object = True,
    batch_rows: int | None = None,
) -> None:
    check_allow_empty(allow_empty)
    if not isinstance(fail_on_severe_column, bool):
        raise ConfigurationError(f"fail_on_severe_column must be True or False, not {fail_on_severe_column!r}")
    if isinstance(drift_share, bool) or not isinstance(drift_share, (int, float)) or not 0 < drift_share <= 1:
        raise ConfigurationError(f"drift_share must be a number in (0, 1], not {drift_share!r}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 2):
        raise ConfigurationError(f"max_rows must be an integer of at least 2, or None, not {max_rows!r}")
    if random_state is not None and (
        isinstance(random_state, bool) or not isinstance(random_state, int) or not 0 <= random_state < 2**32
    ):
        raise ConfigurationError(f"random_state must be an integer in [0, 2**32) or None (a fresh seed), not {random_state!r}")
    if (
        isinstance(max_missing_change, bool)
        or not isinstance(max_missing_change, (int, float))
        or not 0 < max_missing_change <= 1
    ):
        raise ConfigurationError(f"max_missing_change must be a number in (0, 1], not {max_missing_change!r}")
    if batch_rows is not None:
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ConfigurationError(f"batch_rows must be a positive integer or None (read in memory), not {batch_rows!r}")
        if max_rows is None:
            raise ConfigurationError(
                "batch_rows streams the data and compares a sample of max_rows rows per side; max_rows=None "
                "(compare every row) needs every row in memory: set max_rows, or leave batch_rows unset"
            )


def _policy(
    columns: Sequence[str] | None,
    drift_share: float,
    max_rows: int | None,
    random_state: int | None,
    allow_empty: object,
    max_missing_change: float = DEFAULT_MAX_MISSING_CHANGE,
    fail_on_severe_column: object = True,
    roles: Mapping[str, Any] | None = None,
    batch_rows: int | None = None,
) -> dict[str, Any]:
    policy = {
        **{key: list(value) if isinstance(value, (list, tuple)) else value for key, value in (roles or {}).items()},
        "drift_share": drift_share,
        "max_rows": max_rows,
        "random_state": random_state,  # None: a fresh seed per run (the evidence's sampling names it)
        "max_missing_change": max_missing_change,
        "missing_significance": MISSING_SIGNIFICANCE,
        "fail_on_severe_column": fail_on_severe_column,
        "severe_when": (
            f"distance >= {SEVERE_DISTANCE_FACTOR:g} x threshold, p-value < {SEVERE_P_VALUE_FACTOR:g} x threshold, "
            f"or |missing share change| >= {SEVERE_MISSING_CHANGE:g}"
        ),
        "columns": list(columns) if columns is not None and not isinstance(columns, str) else columns,
        # the columns the DAG declared out of the comparison by a role (recognised identifiers: the evidence)
        "excluded_columns": declared_exclusions(roles, ROLE_KEYS),
        # no column left out by the DAG (identifiers and other roles aside: the evidence names them)
        "compare_all_columns": columns is None and not (roles or {}).get("features"),
        "method": "Evidently DataDriftPreset defaults (per-column test statuses) and the missing-share test",
        "allow_empty": allow_empty_policy(allow_empty),
    }
    if batch_rows is not None:
        policy["batch_rows"] = batch_rows  # streamed: a reservoir sample of max_rows rows per side
    return policy


def detect_drift(
    reference: str | Path | LoadedTable,
    current: str | Path | LoadedTable,
    *,
    columns: Sequence[str] | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    random_state: int | None = None,
    max_missing_change: float = DEFAULT_MAX_MISSING_CHANGE,
    fail_on_severe_column: bool = True,
    html: bool = True,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    model: str | ModelRef | None = None,
    allow_empty: bool = False,
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    batch_rows: int | None = None,
) -> GateOutcome:
    """Compare the ``current`` batch with the ``reference`` data; fail if the dataset drifted.

    :param reference: the training reference: a local CSV or Parquet file, or a table loaded
        already (:func:`airflow_mlsecops.io.locations.load_table_at` loads ``s3://``, ``runs:/``
        and ``models:/`` files and names them by their URI). Streamed (see ``batch_rows``): also a
        directory of part files or an ``s3://`` object or prefix.
    :param current: the production batch, same forms.
    :param columns: the columns to compare (default: every feature column, see ``features``). A
        comma-separated string is accepted. Each must be a feature, not an identifier or the label.
    :param drift_share: the dataset drifted when at least this share of the compared columns
        drifted (by Evidently's test of their values or by the missing-share test); default 0.25.
    :param max_rows: sample each frame longer than this down to ``max_rows`` rows for Evidently
        (the missing-share test reads every row); ``None`` compares every row (in memory).
    :param random_state: seed of the sampling; ``None`` (default) draws a fresh one per run,
        recorded in the evidence. A fixed seed makes the skipped rows predictable.
    :param max_missing_change: a column's share of missing values changed (and the column counts
        as drifted) when it moved by at least this much, absolute (and the z-test agrees).
    :param fail_on_severe_column: one severely drifted column (see :data:`SEVERE_DISTANCE_FACTOR`)
        is dataset drift whatever ``drift_share`` says. On by default.
    :param html: add Evidently's HTML report (``drift_report.html``, ~4.6 MiB) to the evidence.
    :param warn_only: report drift as ``warned`` instead of rejecting.
    :param context: the Airflow task that runs the gate, if any.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param model: the model that scores this batch, only recorded in the evidence: a
        :class:`~airflow_mlsecops.io.locations.ModelRef` pinned by
        :func:`~airflow_mlsecops.io.locations.resolve_model_ref`, or a location without an alias.
    :param allow_empty: accept a current batch with no rows: it passes with finding
        ``drift.empty-batch`` (Evidently does not run). Off by default: an ``error`` verdict. An
        empty reference is an ``error`` either way.
    :param id_columns: identifier columns (a list or a comma-separated string), never compared;
        identifier-like columns not declared are recognised (:mod:`airflow_mlsecops.gates.columns`).
    :param label_column: the label (target), never compared; a production batch may lack it.
    :param prediction_column: the model's output column, never compared.
    :param timestamp_column: the time of each row, never compared.
    :param features: the feature columns (default: every reference column without another role). A
        feature absent from the current batch is finding ``drift.missing-column`` (rejects).
    :param batch_rows: read both sides in batches of this many rows
        (:class:`~airflow_mlsecops.io.batches.TableStream`) and compare a reservoir sample of
        ``max_rows`` rows per side: memory depends on ``max_rows`` and ``batch_rows``, not on the data
        size. ``None`` (default): streamed only when a location given as a path is a directory, an
        ``s3://`` prefix or a file of at least 256 MiB (:func:`~airflow_mlsecops.io.batches.should_stream`)
        and ``max_rows`` is set; otherwise read in memory.
    :returns: the outcome; ``outcome.files`` holds ``drift_report.json`` (and the HTML report);
        ``details["column_roles"]`` names every column left out and why; ``details["streamed"]`` what was streamed.
    """
    roles = declared_roles(
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=features,
    )
    evaluate = functools.partial(
        _evaluate,
        reference,
        current,
        columns=columns,
        drift_share=drift_share,
        max_rows=max_rows,
        random_state=random_state,
        max_missing_change=max_missing_change,
        fail_on_severe_column=fail_on_severe_column,
        html=html,
        csv_delimiter=csv_delimiter,
        model=model,
        allow_empty=allow_empty,
        roles=roles,
        batch_rows=batch_rows,
    )
    return run_gate(
        GATE_NAME,
        evaluate,
        policy=_policy(
            columns,
            drift_share,
            max_rows,
            random_state,
            allow_empty,
            max_missing_change,
            fail_on_severe_column,
            roles,
            batch_rows,
        ),
        warn_only=warn_only,
        distributions=("evidently", "pandas"),
        context=context,
    )


def inputs_unavailable(
    error: Exception,
    *,
    columns: Sequence[str] | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    random_state: int | None = None,
    max_missing_change: float = DEFAULT_MAX_MISSING_CHANGE,
    fail_on_severe_column: bool = True,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    allow_empty: bool = False,
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    batch_rows: int | None = None,
) -> GateOutcome:
    """The outcome of :func:`detect_drift` when its inputs could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (an invalid argument is reported first, as the gate does).

    :param error: why the inputs are unavailable.
    """
    roles = declared_roles(
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=features,
    )

    def check() -> None:
        _check_arguments(drift_share, max_rows, allow_empty, random_state, max_missing_change, fail_on_severe_column, batch_rows)
        check_role_arguments(**roles)

    return run_gate(
        GATE_NAME,
        raising(error, check=check),
        policy=_policy(
            columns,
            drift_share,
            max_rows,
            random_state,
            allow_empty,
            max_missing_change,
            fail_on_severe_column,
            roles,
            batch_rows,
        ),
        warn_only=warn_only,
        distributions=("evidently", "pandas"),
        context=context,
    )


def _streams(data: str | Path | LoadedTable, batch_rows: int | None) -> bool:
    from airflow_mlsecops.io.batches import should_stream
    from airflow_mlsecops.io.tabular import LoadedTable

    return not isinstance(data, LoadedTable) and should_stream(str(data), batch_rows)


def _evaluate(
    reference: str | Path | LoadedTable,
    current: str | Path | LoadedTable,
    *,
    columns: Sequence[str] | None,
    drift_share: float,
    max_rows: int | None,
    random_state: int | None,
    html: bool,
    csv_delimiter: str | None,
    model: str | ModelRef | None,
    allow_empty: bool = False,
    max_missing_change: float = DEFAULT_MAX_MISSING_CHANGE,
    fail_on_severe_column: bool = True,
    roles: Mapping[str, Any] | None = None,
    batch_rows: int | None = None,
) -> Evaluation:
    """What the drift gate found: the body :func:`detect_drift` runs (same parameters)."""
    _check_arguments(drift_share, max_rows, allow_empty, random_state, max_missing_change, fail_on_severe_column, batch_rows)
    model_ref = model if isinstance(model, ModelRef) else parse_model_ref(str(model)) if model else None
    seed = secrets.randbelow(2**32) if random_state is None else random_state  # fresh: nobody knows it before the run
    seed_source = "fresh per run" if random_state is None else "fixed (random_state given)"
    if max_rows is not None and (batch_rows is not None or _streams(reference, None) or _streams(current, None)):
        from airflow_mlsecops.gates.drift.streaming import compare_streamed

        compared = compare_streamed(
            reference,
            current,
            columns=columns,
            roles=roles,
            size=max_rows,
            seed=seed,
            seed_source=seed_source,
            batch_rows=batch_rows,
            csv_delimiter=csv_delimiter,
            max_missing_change=max_missing_change,
            allow_empty=allow_empty,
        )
    else:
        compared = _compare_in_memory(
            reference,
            current,
            columns=columns,
            roles=roles,
            max_rows=max_rows,
            seed=seed,
            seed_source=seed_source,
            csv_delimiter=csv_delimiter,
            max_missing_change=max_missing_change,
            allow_empty=allow_empty,
        )
    if compared.rows_current == 0:
        return empty_batch(
            (compared.reference_name, compared.current_name),
            compared.subjects,
            compared.formats,
            compared.rows_reference,
            emptiness(compared.current) or "has no rows",
            drift_share=drift_share,
            model_ref=model_ref,
            streamed=compared.streamed,
        )
    return judge(compared, drift_share=drift_share, fail_on_severe_column=fail_on_severe_column, html=html, model_ref=model_ref)


def _compare_in_memory(
    reference: str | Path | LoadedTable,
    current: str | Path | LoadedTable,
    *,
    columns: Sequence[str] | None,
    roles: Mapping[str, Any] | None,
    max_rows: int | None,
    seed: int,
    seed_source: str,
    csv_delimiter: str | None,
    max_missing_change: float,
    allow_empty: bool,
) -> Compared:
    """Both frames read whole; Evidently compares up to ``max_rows`` rows of each (sampled)."""
    ref_table = local_table(reference, csv_delimiter=csv_delimiter)
    cur_table = local_table(current, csv_delimiter=csv_delimiter)
    names = Path(ref_table.subject.name).name, Path(cur_table.subject.name).name
    selected, absent, column_roles = select_columns(ref_table.frame, list(cur_table.frame.columns), columns, roles)
    if absent and emptiness(cur_table.frame):
        raise GateError(f"the current data has no column {', '.join(map(repr, absent[:10]))}")
    ref_frame, cur_frame = ref_table.frame[selected], cur_table.frame[selected]
    check_frames(ref_frame, cur_frame, selected, names, allow_empty=allow_empty)
    ref_used, ref_sampled = sample(ref_frame, max_rows, seed)
    cur_used, cur_sampled = sample(cur_frame, max_rows, seed)
    missing = (
        missing_shares(
            (missing_counts(ref_frame, selected), len(ref_frame)),
            (missing_counts(cur_frame, selected), len(cur_frame)),
            selected,
            max_missing_change,
        )
        if len(cur_frame)
        else []
    )
    sampling = {
        "max_rows": max_rows,
        "random_state": seed,
        "seed_source": seed_source,
        "rows_reference": len(ref_frame),
        "rows_current": len(cur_frame),
        "rows_reference_compared": len(ref_used),
        "rows_current_compared": len(cur_used),
        "sampled_reference": ref_sampled,
        "sampled_current": cur_sampled,
    }
    return Compared(
        reference_name=ref_table.subject.name,
        current_name=cur_table.subject.name,
        subjects=[ref_table.subject, cur_table.subject],
        formats={"reference": ref_table.format, "current": cur_table.format},
        selected=selected,
        absent=absent,
        column_roles=column_roles,
        reference=ref_used,
        current=cur_used,
        missing=missing,
        rows_reference=len(ref_frame),
        rows_current=len(cur_frame),
        sampling=sampling,
    )
