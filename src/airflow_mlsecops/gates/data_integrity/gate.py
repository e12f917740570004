"""The data-integrity gate: :func:`check_integrity` reads batch and reference, runs every check, records the result.

**Not detected**: poison that keeps every statistic in range (clean-label attacks, backdoor
triggers in a few rows, feature values moved a little inside the reference range: income x1.1 passes
at the default limits, x1.2 fails), label flips targeted at rows the model is unsure about anyway
(turning a quarter of the defaulters, 5% of the rows, into non-defaulters shows only as label shift), fewer than about 3%
random flips, shifts in the *joint* distribution that leave every marginal unchanged, duplicates of
reference rows, near-copies noisier than the radius (copies with 0.5% relative noise are caught,
2% pass), changes in columns listed in ``ignore_columns``, and anything the reference itself
already contains (it is trusted).

Identifier, timestamp and free-text columns differ between any two batches: list them in
``ignore_columns`` or they fail the shift and range checks.

**Inputs are local.** :func:`check_integrity` reads local files or tables loaded already; the
operator and the CLI load ``s3://``, ``runs:/`` and ``models:/`` data first with
:func:`airflow_mlsecops.io.locations.load_table_at` (the evidence names it by its URI). When that
fails, :func:`inputs_unavailable` records the same ``error`` verdict the gate would.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.data_integrity.distribution import _feature_shift, _out_of_range
from airflow_mlsecops.gates.data_integrity.duplicates import _duplicates, _near_duplicates
from airflow_mlsecops.gates.data_integrity.label_flips import _label_flips
from airflow_mlsecops.gates.data_integrity.labels import _label_checks, _label_reason
from airflow_mlsecops.gates.data_integrity.report import GATE_NAME, _evaluation, _jsonable
from airflow_mlsecops.gates.data_integrity.results import _Check, _skipped
from airflow_mlsecops.gates.data_integrity.schema import _schema
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds, _resolve_thresholds
from airflow_mlsecops.io.locations import local_table, table_name

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlsecops.io.tabular import LoadedTable

# The distributions whose versions the evidence records.
_DISTRIBUTIONS = ("pandas", "numpy", "scipy", "scikit-learn", "cleanlab")


def _read(data: str | Path | LoadedTable, role: str, delimiter: str | None) -> LoadedTable:
    table = local_table(data, csv_delimiter=delimiter)
    if len(table.frame) == 0:
        raise GateError(f"the {role} {table_name(data)} holds a header but no rows")
    if table.frame.columns.duplicated().any():
        raise GateError(f"the {role} {table_name(data)} repeats a column name")
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
) -> list[_Check]:
    """Run every check on two frames (the engine behind :func:`check_integrity`), in :data:`CHECK_IDS` order.

    :param batch: the new training batch.
    :param reference: the trusted reference.
    :param label_column: the label column, or ``None`` to skip the label checks.
    :param thresholds: the limits (defaults if ``None``).
    :param random_state: seed of every sample and model.
    """
    th = thresholds or IntegrityThresholds()
    if label_column is not None and label_column not in batch.columns and label_column not in reference.columns:
        raise ConfigurationError(f"label column {label_column!r} is in neither the batch nor the reference")
    schema, frames = _schema(batch, reference, label_column, th)
    frames.random_state = random_state
    checks = [schema]
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
) -> Evaluation:
    """Read batch and reference, run every check and build the evaluation (what :func:`check_integrity` runs).

    :param data: the new batch: a local CSV or Parquet file, or a table loaded already.
    :param reference: the trusted reference data, same forms.
    :param label_column: the label column, or ``None`` to skip the label checks.
    :param thresholds: :class:`IntegrityThresholds`, a mapping of threshold names to values, or ``None``.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param random_state: seed of every sample and model.
    :raises ConfigurationError: for bad thresholds or a label column in neither file.
    :raises GateError: for an input with no rows or a repeated column name.
    """
    th = _resolve_thresholds(thresholds)
    batch = _read(data, "batch", csv_delimiter)
    ref = _read(reference, "reference", csv_delimiter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        checks = _evaluate(batch.frame, ref.frame, label_column=label_column, thresholds=th, random_state=random_state)
    return _evaluation(checks, batch, ref, label_column=label_column, random_state=random_state, thresholds=th)


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
) -> GateOutcome:
    """Compare the batch at ``data`` with the trusted ``reference`` and reject signs of poisoning.

    Never raises for bad input: a missing, empty, unreadable or malformed file, or bad thresholds,
    give an ``error`` verdict naming the problem.

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
    :returns: the outcome, with ``integrity_report.json`` as its evidence file.
    """
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
        ),
        policy=_policy(table_name(reference), label_column, thresholds, random_state),
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
) -> GateOutcome:
    """The outcome of :func:`check_integrity` when the batch or the reference could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (bad thresholds are reported first, as the gate does).

    :param error: why the data is unavailable.
    :param reference: the reference's location as given; the other parameters as for :func:`check_integrity`.
    """
    return run_gate(
        GATE_NAME,
        raising(error, check=lambda: _resolve_thresholds(thresholds)),
        policy=_policy(str(reference), label_column, thresholds, random_state),
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS,
        context=context,
    )


def _policy(
    reference: str, label_column: str | None, thresholds: IntegrityThresholds | Mapping[str, object] | None, random_state: int
) -> dict[str, Any]:
    """The policy on record; bad thresholds are shown as given (the gate reports them as an error)."""
    try:
        policy_thresholds: dict[str, Any] = _resolve_thresholds(thresholds).to_dict()
    except ConfigurationError:
        given = thresholds if isinstance(thresholds, Mapping) else {"thresholds": repr(thresholds)}
        policy_thresholds = {str(k): _jsonable(v) for k, v in given.items()}
    return {"reference": reference, "label_column": label_column, "random_state": random_state, "thresholds": policy_thresholds}
