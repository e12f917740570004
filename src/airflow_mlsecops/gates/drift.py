"""Drift gate: compare a production batch with the training reference using Evidently.

>>> from airflow_mlsecops.gates.drift import detect_drift
>>> outcome = detect_drift("train.parquet", "batch-2026-11-26.csv")   # doctest: +SKIP
>>> outcome.verdict, outcome.result.metrics["drifted_share"]            # doctest: +SKIP
(<Verdict.FAILED: 'failed'>, 0.3333333333333333)

Runnable as it stands (needs Evidently; ~10 s the first time, most of it importing Evidently)::

    import tempfile
    from pathlib import Path
    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.gates.drift import detect_drift

    tmp = Path(tempfile.mkdtemp())
    credit_frame(rows=2000, seed=1).to_csv(tmp / "reference.csv", index=False)
    shifted = credit_frame(rows=2000, seed=2)
    shifted["income"] *= 1.6
    shifted["debt_ratio"] += 0.3
    shifted["age"] += 12
    shifted["late_payments"] += 2
    shifted.to_csv(tmp / "current.csv", index=False)
    outcome = detect_drift(str(tmp / "reference.csv"), str(tmp / "current.csv"))
    print(outcome.verdict.value, outcome.result.summary)

**How.** Evidently 0.7 runs ``Report([DataDriftPreset(drift_share=...)], include_tests=True)`` on
the two frames. Column types are inferred once, from the reference, and applied to both frames,
so a batch cannot change how a column is compared. Evidently picks the method per column: above
1,000 reference rows normed Wasserstein distance (numeric) or Jensen-Shannon distance
(categorical, and integers with at most 10 distinct values), threshold 0.1, *higher* means drift;
at 1,000 rows or fewer the K-S (numeric) or chi-square (categorical) p-value, threshold 0.05,
*lower* means drift. A column's values drifted when Evidently's own test for it failed (the
gate reads the score only to tell a *severe* drift, below). A column Evidently could not type (datetimes,
mixed objects) is not compared by Evidently; the evidence names it (finding
``drift.column-not-checked``, severity ``low``), and the verdict is then ``warned`` (incomplete:
``details["not_performed"]``), never ``passed``.

**Missing values.** Evidently compares the values that are present, so a batch in which 45% of
the incomes are missing looks like the reference. The gate adds its own test on every compared
column, on every row (never sampled): the share of missing values changed when the absolute
change is at least ``max_missing_change`` (default 0.05) *and* a two-sided two-proportion z-test
gives a p-value below :data:`MISSING_SIGNIFICANCE` (0.001; it keeps a few missing values in a
small batch from counting). A column whose missing share changed counts as drifted (finding
``drift.missing-share``), in either direction.

**Verdict.** The dataset drifted when at least ``drift_share`` (default 0.25, not Evidently's
0.5, which lets two of five heavily drifted columns pass) of the compared columns drifted, by
values or missing share, or when one column drifted *severely* (``fail_on_severe_column``): a
distance at least twice its threshold, a p-value 1,000 times below it, or a missing share that
moved by 0.2 or more. On the demo data one clean 1,000-row batch in 30 has one column just over
Evidently's threshold (0.107 against 0.1), none has two or a severe one.

**Sampling.** Evidently's time grows with the row count (6-9 s at 100k rows x 20 columns on a
2-core machine; users report hours at millions of rows). With ``max_rows`` (default 50,000) a
frame longer than that is sampled down to ``max_rows`` rows without replacement. The seed is
drawn afresh for every run (``random_state=None``, the default), so whoever writes the batch
cannot know which rows will be left out and place a shift there; the seed used is in the
evidence (``sampling.random_state``, ``sampling.seed_source``), and passing it back as
``random_state`` reproduces the comparison. A fixed ``random_state`` makes the skipped rows
predictable (``seed_source: fixed``); use it to reproduce, not in production. The evidence says
what was sampled: metrics ``rows_reference`` / ``rows_current`` (rows in the files),
``rows_reference_compared`` / ``rows_current_compared``, ``sampled_reference`` /
``sampled_current`` (1.0 when sampled), the details, the summary and ``drift_report.json``. The
subjects' digests always cover the whole files. ``max_rows=None`` compares every row.

**Evidence.** ``drift_report.json`` (Evidently's snapshot trimmed to what a reviewer needs: the
dataset test, per-column method, score, threshold and status, the missing shares, and the
sampling) and, with ``html=True``, Evidently's self-contained ``drift_report.html`` (about 4.6
MiB). Findings: ``drift.column`` per column whose values drifted (location ``column <name>``),
``drift.missing-share`` per column whose missing share changed, ``drift.dataset`` for the
dataset-level verdict. Bad input (a missing or empty file, columns that differ between the frames,
a column that is numeric in one frame and not the other, a column with no values) is an ``error``
verdict with a message that names the problem.

**Empty batches.** A current batch with no rows (a header-only CSV, a zero-row Parquet file) is an
``error`` verdict, never "no drift", unless ``allow_empty=True``: then Evidently does not run, the
gate passes with finding ``drift.empty-batch`` and the report says ``"empty_batch": true``. An empty
reference is always an ``error`` (:mod:`airflow_mlsecops.gates.empty_data`).

**Inputs are local.** The engine reads local files or tables loaded already; the operator and
the CLI fetch ``s3://``, ``runs:/`` and ``models:/`` data first with
:func:`airflow_mlsecops.io.locations.load_table_at` (which names a file stored in MLflow by its
URI) and pin the model's alias with :func:`airflow_mlsecops.io.locations.resolve_model_ref`. When
that fails, :func:`inputs_unavailable` records the same ``error`` verdict the gate would.
"""

from __future__ import annotations

import functools
import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.columns import ColumnRoles, check_role_arguments, column_list, declared_exclusions, resolve_roles
from airflow_mlsecops.gates.empty_data import (
    allow_empty_policy,
    check_allow_empty,
    emptiness,
    empty_batch_error,
    empty_batch_finding,
    empty_reference_error,
)
from airflow_mlsecops.io.locations import ModelRef, local_table, parse_model_ref

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlsecops.io.tabular import LoadedTable

GATE_NAME = gate_names.DRIFT
HTML_FILE = "drift_report.html"
JSON_FILE = "drift_report.json"
DEFAULT_MAX_ROWS = 50_000
#: The dataset drifted when at least this share of the compared columns drifted (Evidently's is 0.5).
DEFAULT_DRIFT_SHARE = 0.25
#: A column's missing share changed when it moved by at least this much (absolute) ...
DEFAULT_MAX_MISSING_CHANGE = 0.05
#: ... and the two-proportion z-test's p-value is below this.
MISSING_SIGNIFICANCE = 0.001
#: A column drifted *severely* (and fails the dataset on its own, ``fail_on_severe_column``) when
#: Evidently's distance is at least this many times its threshold (normed Wasserstein, Jensen-Shannon) ...
SEVERE_DISTANCE_FACTOR = 2.0
#: ... or its p-value is below its threshold times this (K-S, chi-square) ...
SEVERE_P_VALUE_FACTOR = 1e-3
#: ... or its share of missing values moved by at least this much (absolute).
SEVERE_MISSING_CHANGE = 0.2
#: Per-column entries kept in the result's ``details`` (the JSON report keeps all of them).
MAX_COLUMNS_IN_DETAILS = 50

# Model skewing (OWASP ML08) and Erode ML Model Integrity (ATLAS AML.T0031): a production
# population that moved away from the training data degrades the model, by accident or on purpose.
_OWASP_SKEWING = ("ML08:2023",)
_ATLAS_ERODE = ("AML.T0031",)
_FAIL, _SUCCESS = "FAIL", "SUCCESS"


# --------------------------------------------------------------------------------------------
# The gate


def _check_arguments(
    drift_share: float,
    max_rows: int | None,
    allow_empty: object = False,
    random_state: int | None = None,
    max_missing_change: float = DEFAULT_MAX_MISSING_CHANGE,
    fail_on_severe_column: object = True,
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


def _select_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | str | None, roles: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str], ColumnRoles]:
    """The feature columns to compare, the features the current batch lacks, and the column roles.

    ``columns`` given (and no ``features``): exactly those are the features. Otherwise the features are the
    reference's columns without a role (identifiers declared or recognised, label, prediction, timestamp).
    Every name in ``columns`` must then be a feature. A label, prediction or timestamp absent from the
    current batch is not compared and no problem; a feature absent from it is a finding (the caller's).

    :raises ConfigurationError: for an empty ``columns``, a column given two roles, or a ``columns`` entry
        that is not a feature.
    :raises GateError: for a column the reference lacks, or a current batch with none of the features.
    """
    wanted = column_list(columns, "columns")
    if wanted is not None and not wanted:
        raise ConfigurationError("columns is empty; name the columns to compare or pass None for all of them")
    missing_ref = [c for c in wanted or () if c not in reference.columns]
    if missing_ref:
        raise GateError(f"the reference data has no column {', '.join(map(repr, missing_ref[:10]))}")
    kwargs = dict(roles or {})
    if wanted is not None and kwargs.get("features") is None:
        for role in ("id_columns", "label_column", "prediction_column", "timestamp_column"):
            clash = [c for c in column_list(kwargs.get(role), role) or () if c in wanted]
            if clash:
                raise ConfigurationError(f"column {clash[0]!r} is in columns but not a feature (declared in {role})")
        kwargs["features"] = wanted
    column_roles = resolve_roles(reference, **kwargs)
    if wanted is not None:
        not_features = [c for c in wanted if c not in column_roles.features]
        if not_features:
            raise ConfigurationError(
                f"column {not_features[0]!r} is in columns but not a feature ({column_roles.reason(not_features[0])})"
            )
    features = [c for c in (str(c) for c in reference.columns) if c in column_roles.features]
    selected = [c for c in features if c in current.columns]
    absent = [c for c in features if c not in current.columns]
    if not selected:
        raise GateError(
            f"the current data has no column {', '.join(map(repr, absent[:10]))}: it shares no feature with the reference"
        )
    return selected, absent, column_roles


def _check_frames(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], names: tuple[str, str], *, allow_empty: bool = False
) -> None:
    import pandas as pd

    nothing = emptiness(reference)
    if nothing:
        raise empty_reference_error(f"the reference {names[0]}", nothing)
    nothing = emptiness(current)
    if nothing and not allow_empty:
        raise empty_batch_error(f"the current batch {names[1]}", nothing)
    for label, frame, name in (("reference", reference, names[0]), ("current batch", current, names[1])):
        if len(frame) == 0:
            continue  # an empty current batch that allow_empty accepts: it has no values to judge
        empty = [c for c in columns if frame[c].isna().all()]
        if empty:
            raise GateError(f"column {empty[0]!r} of the {label} {name} holds no values; drift cannot be measured")
    for column in columns if len(current) else ():
        ref_numeric = pd.api.types.is_numeric_dtype(reference[column]) and not pd.api.types.is_bool_dtype(reference[column])
        cur_numeric = pd.api.types.is_numeric_dtype(current[column]) and not pd.api.types.is_bool_dtype(current[column])
        if ref_numeric != cur_numeric:
            raise GateError(
                f"column {column!r} is {reference[column].dtype} in the reference but {current[column].dtype} "
                "in the current batch; the batch does not have the training schema"
            )


@dataclass(frozen=True)
class MissingShare:
    """The gate's own test on one column: did the share of missing values change?"""

    column: str
    reference_share: float
    current_share: float
    p_value: float
    max_change: float

    @property
    def change(self) -> float:
        return self.current_share - self.reference_share

    @property
    def drifted(self) -> bool:
        return abs(self.change) >= self.max_change and self.p_value < MISSING_SIGNIFICANCE

    @property
    def severe(self) -> bool:
        return self.drifted and abs(self.change) >= SEVERE_MISSING_CHANGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "reference_share": self.reference_share,
            "current_share": self.current_share,
            "change": self.change,
            "p_value": self.p_value,
            "drift_when": f"|change| >= {self.max_change:g} and p_value < {MISSING_SIGNIFICANCE:g}",
            "drifted": self.drifted,
            "severe": self.severe,
        }


def two_proportion_p_value(hits_a: int, rows_a: int, hits_b: int, rows_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when the pooled share is 0 or 1)."""
    pooled = (hits_a + hits_b) / (rows_a + rows_b)
    variance = pooled * (1.0 - pooled) * (1.0 / rows_a + 1.0 / rows_b)
    if variance <= 0.0:
        return 1.0
    z = abs(hits_a / rows_a - hits_b / rows_b) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2.0))


def _missing_shares(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str], max_change: float
) -> list[MissingShare]:
    """The missing-share test of every column, on every row of both frames."""
    ref_missing, cur_missing = reference[list(columns)].isna().sum(), current[list(columns)].isna().sum()
    out = []
    for column in columns:
        ref_hits, cur_hits = int(ref_missing[column]), int(cur_missing[column])
        out.append(
            MissingShare(
                column=column,
                reference_share=ref_hits / len(reference),
                current_share=cur_hits / len(current),
                p_value=two_proportion_p_value(ref_hits, len(reference), cur_hits, len(current)),
                max_change=max_change,
            )
        )
    return out


def _sample(frame: pd.DataFrame, max_rows: int | None, random_state: int) -> tuple[pd.DataFrame, bool]:
    if max_rows is None or len(frame) <= max_rows:
        return frame, False
    return frame.sample(n=max_rows, random_state=random_state, replace=False).sort_index(), True


def _lower_means_drift(method: str) -> bool:
    return "p_value" in method.replace("-", "_").replace(" ", "_").lower()


def _run_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, drift_share: float, html: bool
) -> tuple[dict[str, Any], bytes]:
    from airflow_mlsecops.config import telemetry_off

    telemetry_off()  # DO_NOT_TRACK: Evidently reads it when imported
    import warnings

    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_ds = Dataset.from_pandas(reference)
            # Types come from the reference and hold for both: a batch cannot retype a column.
            cur_ds = Dataset.from_pandas(current, data_definition=ref_ds.data_definition)
            snapshot = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True).run(cur_ds, ref_ds)
            raw = json.loads(snapshot.json())
            page = snapshot.get_html_str(as_iframe=False).encode("utf-8") if html else b""
    except Exception as exc:
        raise GateError(f"Evidently could not compare the frames: {type(exc).__name__}: {exc}") from exc
    return raw, page


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's verdict on one column."""

    column: str
    method: str
    score: float
    threshold: float
    status: str
    description: str

    @property
    def drifted(self) -> bool:
        return self.status == _FAIL

    @property
    def severe(self) -> bool:
        """Drifted far past the threshold: a distance at least twice it, or a p-value 1,000 times below it."""
        if not self.drifted or math.isnan(self.score):
            return False
        if _lower_means_drift(self.method):
            return self.score < self.threshold * SEVERE_P_VALUE_FACTOR
        return self.score >= self.threshold * SEVERE_DISTANCE_FACTOR

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "method": self.method,
            "score": self.score,
            "threshold": self.threshold,
            "drift_when": "score below threshold" if _lower_means_drift(self.method) else "score at or above threshold",
            "status": self.status,
            "drifted": self.drifted,
            "severe": self.severe,
        }


def _parse_snapshot(raw: dict[str, Any]) -> tuple[list[ColumnDrift], dict[str, Any]]:
    """Per-column results and the dataset-level test, read from Evidently's own statuses."""
    metrics = {m.get("id"): m for m in raw.get("metrics", [])}
    columns: list[ColumnDrift] = []
    dataset: dict[str, Any] | None = None
    for test in raw.get("tests", []):
        params = dict((test.get("metric_config") or {}).get("params") or {})
        kind = str(params.get("type", ""))
        metric = metrics.get((test.get("metric_config") or {}).get("metric_id"), {})
        status = str(test.get("status", ""))
        if kind.endswith(":ValueDrift"):
            value = metric.get("value")
            columns.append(
                ColumnDrift(
                    column=str(params.get("column")),
                    method=str(params.get("method")),
                    score=float(value) if isinstance(value, (int, float)) else float("nan"),
                    threshold=float(params.get("threshold", float("nan"))),
                    status=status,
                    description=str(test.get("description", "")),
                )
            )
        elif kind.endswith(":DriftedColumnsCount"):
            value = dict(metric.get("value") or {})
            dataset = {
                "status": status,
                "name": test.get("name"),
                "description": test.get("description"),
                "drifted_columns": int(value.get("count", 0)),
                "drifted_share": float(value.get("share", 0.0)),
            }
    if dataset is None:
        raise GateError("Evidently's report holds no dataset drift test; cannot reach a verdict")
    broken = [c for c in columns if c.status not in (_FAIL, _SUCCESS)]
    if dataset["status"] not in (_FAIL, _SUCCESS) or broken:
        what = f"column {broken[0].column!r}: {broken[0].status}" if broken else f"dataset test: {dataset['status']}"
        raise GateError(f"Evidently could not evaluate a drift test ({what})")
    return columns, dataset


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _policy(
    columns: Sequence[str] | None,
    drift_share: float,
    max_rows: int | None,
    random_state: int | None,
    allow_empty: object,
    max_missing_change: float = DEFAULT_MAX_MISSING_CHANGE,
    fail_on_severe_column: object = True,
    roles: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
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
        "excluded_columns": declared_exclusions(roles, ("id_columns", "label_column", "prediction_column", "timestamp_column")),
        # no column left out by the DAG (identifiers and other roles aside: the evidence names them)
        "compare_all_columns": columns is None and not (roles or {}).get("features"),
        "method": "Evidently DataDriftPreset defaults (per-column test statuses) and the missing-share test",
        "allow_empty": allow_empty_policy(allow_empty),
    }


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
) -> GateOutcome:
    """Compare the ``current`` batch with the ``reference`` data; fail if the dataset drifted.

    :param reference: the training reference: a local CSV or Parquet file, or a table loaded
        already (:func:`airflow_mlsecops.io.locations.load_table_at` loads ``s3://``, ``runs:/``
        and ``models:/`` files and names them by their URI).
    :param current: the production batch, same forms.
    :param columns: the columns to compare (default: every feature column, see ``features``). A
        comma-separated string is accepted. Each must be a feature, not an identifier or the label.
    :param drift_share: the dataset drifted when at least this share of the compared columns
        drifted (by Evidently's test of their values or by the missing-share test); default 0.25.
    :param max_rows: sample each frame longer than this down to ``max_rows`` rows for Evidently
        (the missing-share test reads every row); ``None`` compares every row.
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
    :returns: the outcome; ``outcome.files`` holds ``drift_report.json`` (and the HTML report);
        ``details["column_roles"]`` names every column left out and why.
    """
    roles = _roles(id_columns, label_column, prediction_column, timestamp_column, features)
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
    )
    return run_gate(
        GATE_NAME,
        evaluate,
        policy=_policy(
            columns, drift_share, max_rows, random_state, allow_empty, max_missing_change, fail_on_severe_column, roles
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
) -> GateOutcome:
    """The outcome of :func:`detect_drift` when its inputs could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (an invalid argument is reported first, as the gate does).

    :param error: why the inputs are unavailable.
    """
    roles = _roles(id_columns, label_column, prediction_column, timestamp_column, features)

    def check() -> None:
        _check_arguments(drift_share, max_rows, allow_empty, random_state, max_missing_change, fail_on_severe_column)
        check_role_arguments(**roles)

    return run_gate(
        GATE_NAME,
        raising(error, check=check),
        policy=_policy(
            columns, drift_share, max_rows, random_state, allow_empty, max_missing_change, fail_on_severe_column, roles
        ),
        warn_only=warn_only,
        distributions=("evidently", "pandas"),
        context=context,
    )


def _roles(
    id_columns: Sequence[str] | str | None,
    label_column: str | None,
    prediction_column: str | None,
    timestamp_column: str | None,
    features: Sequence[str] | str | None,
) -> dict[str, Any]:
    """The declared roles as keyword arguments of :func:`resolve_roles` (only those given)."""
    given = {
        "id_columns": id_columns,
        "label_column": label_column,
        "prediction_column": prediction_column,
        "timestamp_column": timestamp_column,
        "features": features,
    }
    return {key: list(value) if isinstance(value, (list, tuple)) else value for key, value in given.items() if value is not None}


def _empty_batch(
    ref_table: LoadedTable,
    cur_table: LoadedTable,
    reference_rows: int,
    nothing: str,
    *,
    drift_share: float,
    model_ref: ModelRef | None,
) -> Evaluation:
    """The evaluation of an empty current batch that ``allow_empty`` accepts: nothing compared, a finding that says so."""
    what = f"the current batch {Path(cur_table.subject.name).name}"
    report: dict[str, Any] = {
        "gate": GATE_NAME,
        "reference": ref_table.subject.name,
        "current": cur_table.subject.name,
        "drift_share": drift_share,
        "empty_batch": True,
        "note": f"{what} {nothing}: nothing was compared (allow_empty=True)",
    }
    details: dict[str, Any] = {"empty_batch": True, "formats": {"reference": ref_table.format, "current": cur_table.format}}
    if model_ref is not None:
        report["model"] = details["model"] = model_ref.to_dict()
    finding = empty_batch_finding(GATE_NAME, what, nothing)
    return Evaluation(
        passed=True,
        not_performed=[finding.id],
        summary=f"empty batch accepted (allow_empty=True): {what} {nothing}, nothing was compared",
        subjects=[ref_table.subject, cur_table.subject],
        findings=[finding],
        metrics={"columns": 0.0, "rows_reference": float(reference_rows), "rows_current": 0.0, "dataset_drift": 0.0},
        files={JSON_FILE: json.dumps(report, indent=2, sort_keys=True, default=str).encode("utf-8")},
        details=details,
    )


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
) -> Evaluation:
    """What the drift gate found: the body :func:`detect_drift` runs (same parameters)."""
    _check_arguments(drift_share, max_rows, allow_empty, random_state, max_missing_change, fail_on_severe_column)
    model_ref = model if isinstance(model, ModelRef) else parse_model_ref(str(model)) if model else None
    ref_table = local_table(reference, csv_delimiter=csv_delimiter)
    cur_table = local_table(current, csv_delimiter=csv_delimiter)
    ref_name, cur_name = Path(ref_table.subject.name).name, Path(cur_table.subject.name).name
    selected, absent, column_roles = _select_columns(ref_table.frame, cur_table.frame, columns, roles)
    if absent and emptiness(cur_table.frame):
        raise GateError(f"the current data has no column {', '.join(map(repr, absent[:10]))}")
    ref_frame, cur_frame = ref_table.frame[selected], cur_table.frame[selected]
    _check_frames(ref_frame, cur_frame, selected, (ref_name, cur_name), allow_empty=allow_empty)
    nothing = emptiness(cur_frame)
    if nothing:
        return _empty_batch(ref_table, cur_table, len(ref_frame), nothing, drift_share=drift_share, model_ref=model_ref)
    seed = secrets.randbelow(2**32) if random_state is None else random_state  # fresh: nobody knows it before the run
    ref_used, ref_sampled = _sample(ref_frame, max_rows, seed)
    cur_used, cur_sampled = _sample(cur_frame, max_rows, seed)
    missing = _missing_shares(ref_frame, cur_frame, selected, max_missing_change)

    started = time.perf_counter()
    raw, page = _run_evidently(ref_used, cur_used, float(drift_share), html)
    seconds = time.perf_counter() - started
    column_results, evidently_dataset = _parse_snapshot(raw)

    checked = {c.column for c in column_results}
    not_checked = [c for c in selected if c not in checked]
    drifted = [c for c in column_results if c.drifted]
    missing_drifted = [m for m in missing if m.drifted]
    drifted_names = sorted({c.column for c in drifted} | {m.column for m in missing_drifted}, key=selected.index)
    # Every selected column got the missing-share test; those Evidently typed got its test too.
    drifted_share = len(drifted_names) / len(selected)
    severe = sorted({c.column for c in drifted if c.severe} | {m.column for m in missing_drifted if m.severe}, key=selected.index)
    share_drift = drifted_share >= drift_share  # Evidently's own comparison (its test: share < drift_share)
    dataset_drift = share_drift or (fail_on_severe_column and bool(severe))
    dataset = {
        "drifted_columns": len(drifted_names),
        "compared_columns": len(selected),
        "drifted_share": drifted_share,
        "drifted": drifted_names,
        "severe": severe,
        "status": _FAIL if dataset_drift else _SUCCESS,
        "rule": f"dataset drift when drifted columns / compared columns >= {drift_share:g}"
        + (" or any column drifted severely" if fail_on_severe_column else ""),
        "evidently": evidently_dataset,
    }
    sampling = {
        "max_rows": max_rows,
        "random_state": seed,
        "seed_source": "fresh per run" if random_state is None else "fixed (random_state given)",
        "rows_reference": len(ref_frame),
        "rows_current": len(cur_frame),
        "rows_reference_compared": len(ref_used),
        "rows_current_compared": len(cur_used),
        "sampled_reference": ref_sampled,
        "sampled_current": cur_sampled,
    }

    findings = _findings(drifted, missing_drifted, not_checked, ref_frame, dataset_drift=dataset_drift)
    findings.extend(_absent_findings(absent, cur_name, column_roles))
    share_text = f"{len(drifted_names)} of {len(selected)} columns ({drifted_share:.0%})"
    findings.append(
        Finding(
            id="drift.dataset",
            severity=Severity.HIGH if dataset_drift else Severity.INFO,
            message=(
                f"dataset drift: {share_text} drifted, at or above the drift share {drift_share:g}"
                if share_drift
                else f"dataset drift: {share_text} drifted, below the drift share {drift_share:g}, but "
                f"{', '.join(map(repr, severe))} drifted severely"
                if dataset_drift
                else f"no dataset drift: {share_text} drifted, below the drift share {drift_share:g}"
            ),
            atlas=_ATLAS_ERODE if dataset_drift else (),
            owasp_ml=_OWASP_SKEWING if dataset_drift else (),
            passed=not dataset_drift,
        )
    )

    from airflow_mlsecops.gates.base import tool_versions

    report: dict[str, Any] = {
        "gate": GATE_NAME,
        "reference": ref_table.subject.name,
        "current": cur_table.subject.name,
        "drift_share": drift_share,
        "dataset": dataset,
        "columns": [c.to_dict() for c in column_results],
        "missing_shares": [m.to_dict() for m in missing],
        "columns_not_checked": not_checked,
        "features_missing_from_current": absent,
        "column_roles": column_roles.to_dict(),
        "sampling": sampling,
        "evidently_seconds": round(seconds, 3),
        "evidently_version": tool_versions("evidently")["evidently"],
        "evidently_tests": [
            {"name": t.get("name"), "description": t.get("description"), "status": t.get("status")} for t in raw.get("tests", [])
        ],
    }
    if model_ref is not None:
        report["model"] = model_ref.to_dict()
    files = {JSON_FILE: json.dumps(report, indent=2, sort_keys=True, default=str).encode("utf-8")}
    if html:
        files[HTML_FILE] = page

    summary = (
        f"{'dataset drift' if dataset_drift else 'no dataset drift'}: {share_text} drifted "
        f"(policy: drift at >= {drift_share:g}) between {ref_name} ({len(ref_frame)} rows) "
        f"and {cur_name} ({len(cur_frame)} rows)"
    )
    if drifted_names:
        summary += f"; drifted: {', '.join(drifted_names[:8])}{', ...' if len(drifted_names) > 8 else ''}"
    if severe:
        summary += f"; severely: {', '.join(severe[:8])}{', ...' if len(severe) > 8 else ''}"
    if missing_drifted:
        summary += f"; missing share changed in {len(missing_drifted)} column(s)"
    if ref_sampled or cur_sampled:
        summary += f"; sampled to {max_rows} rows (seed {seed})"
    if not_checked:
        summary += f"; {len(not_checked)} column(s) not compared"
    if absent:
        summary = f"feature column(s) missing from the current batch: {', '.join(absent[:8])}; " + summary
    if column_roles.excluded:
        summary += "; " + column_roles.summary_text()
    details: dict[str, Any] = {
        "dataset_test": dataset["rule"],
        "evidently_dataset_test": evidently_dataset["description"],
        "columns": [c.to_dict() for c in column_results[:MAX_COLUMNS_IN_DETAILS]],
        "columns_truncated": len(column_results) > MAX_COLUMNS_IN_DETAILS,
        "missing_share_changed": [m.to_dict() for m in missing_drifted[:MAX_COLUMNS_IN_DETAILS]],
        "columns_not_checked": not_checked[:MAX_COLUMNS_IN_DETAILS],
        "features_missing_from_current": absent,
        "column_roles": column_roles.to_dict(),
        "sampling": sampling,
        "formats": {"reference": ref_table.format, "current": cur_table.format},
        "html_report": html,
    }
    if model_ref is not None:
        details["model"] = model_ref.to_dict()
    return Evaluation(
        passed=not dataset_drift and not absent,
        # A column Evidently could not compare is a check not performed: warned (incomplete) unless drift rejects.
        not_performed=["drift.column-not-checked"] if not_checked else [],
        summary=summary,
        subjects=[ref_table.subject, cur_table.subject],
        findings=findings,
        metrics={
            "columns": float(len(selected)),
            "drifted_columns": float(len(drifted_names)),
            "drifted_share": float(drifted_share),
            "value_drifted_columns": float(len(drifted)),
            "missing_share_drifted_columns": float(len(missing_drifted)),
            "severely_drifted_columns": float(len(severe)),
            "dataset_drift": 1.0 if dataset_drift else 0.0,
            "features_missing": float(len(absent)),
            "columns_excluded": float(len(column_roles.excluded)),
            "rows_reference": float(len(ref_frame)),
            "rows_current": float(len(cur_frame)),
            "rows_reference_compared": float(len(ref_used)),
            "rows_current_compared": float(len(cur_used)),
            "sampled_reference": 1.0 if ref_sampled else 0.0,
            "sampled_current": 1.0 if cur_sampled else 0.0,
            "evidently_seconds": round(seconds, 3),
        },
        files=files,
        details=details,
    )


def _findings(
    drifted: Sequence[ColumnDrift],
    missing_drifted: Sequence[MissingShare],
    not_checked: Sequence[str],
    ref_frame: pd.DataFrame,
    *,
    dataset_drift: bool,
) -> list[Finding]:
    """The per-column findings: values drifted (Evidently), missing share changed, not compared."""
    findings: list[Finding] = [
        Finding(
            id="drift.column",
            severity=Severity.HIGH if dataset_drift else Severity.MEDIUM,
            message=(
                f"column {c.column!r} drifted: {c.method} score {_fmt(c.score)}, threshold {_fmt(c.threshold)} "
                f"({'lower' if _lower_means_drift(c.method) else 'higher'} means drift)"
            ),
            location=f"column {c.column}",
            atlas=_ATLAS_ERODE,
            owasp_ml=_OWASP_SKEWING,
        )
        for c in drifted
    ]
    findings.extend(
        Finding(
            id="drift.missing-share",
            severity=Severity.HIGH if dataset_drift else Severity.MEDIUM,
            message=(
                f"column {m.column!r}: missing values {m.current_share:.1%} of the batch, {m.reference_share:.1%} of the "
                f"reference (change {m.change:+.1%}, at least {m.max_change:.1%}; z-test p {m.p_value:.2g})"
            ),
            location=f"column {m.column}",
            atlas=_ATLAS_ERODE,
            owasp_ml=_OWASP_SKEWING,
        )
        for m in missing_drifted
    )
    findings.extend(
        Finding(
            id="drift.column-not-checked",
            severity=Severity.LOW,
            message=f"column {name!r} was not compared by Evidently: it could not infer a type it tests for drift "
            f"({ref_frame[name].dtype}); only its missing share was tested",
            location=f"column {name}",
        )
        for name in not_checked
    )
    return findings


def _absent_findings(absent: Sequence[str], current: str, roles: ColumnRoles) -> list[Finding]:
    """Finding ``drift.missing-column`` per feature the current batch lacks: the batch does not have the training schema."""
    hint = "" if roles.label_column else "; if it is the label, pass label_column (--label-column) and it is not compared"
    return [
        Finding(
            id="drift.missing-column",
            severity=Severity.HIGH,
            message=f"feature column {name!r} of the reference is missing from the current batch {current}{hint}",
            location=f"column {name}",
            atlas=_ATLAS_ERODE,
            owasp_ml=_OWASP_SKEWING,
        )
        for name in absent
    ]
