"""Data integrity and poisoning gate: compare a new training batch with a trusted reference.

>>> from airflow_mlsecops.gates.data_integrity import check_integrity
>>> outcome = check_integrity("batch.csv", "reference.csv", label_column="defaulted")   # doctest: +SKIP
>>> outcome.verdict                                                                    # doctest: +SKIP
<Verdict.FAILED: 'failed'>
>>> [f.id for f in outcome.result.failed_findings]                                     # doctest: +SKIP
['integrity.duplicates']

A runnable round trip on the synthetic credit data set (a few seconds)::

    import tempfile
    from pathlib import Path

    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.gates.data_integrity import check_integrity

    tmp = Path(tempfile.mkdtemp())
    credit_frame(rows=5000, seed=7).to_csv(tmp / "reference.csv", index=False)
    batch = credit_frame(rows=2000, seed=8)
    batch.to_csv(tmp / "batch.csv", index=False)
    print(check_integrity(str(tmp / "batch.csv"), str(tmp / "reference.csv"), label_column="defaulted").verdict)
    # Verdict.PASSED
    poisoned = batch.assign(income=batch["income"] * 3)
    poisoned.to_csv(tmp / "poisoned.csv", index=False)
    outcome = check_integrity(str(tmp / "poisoned.csv"), str(tmp / "reference.csv"), label_column="defaulted")
    print(outcome.verdict, [f.id for f in outcome.result.failed_findings])
    # Verdict.FAILED ['integrity.out_of_range', 'integrity.feature_shift', 'integrity.label_flips']
    # (tripled incomes also break the reference's link between income and default: the labels look flipped)

**Checks** (one :class:`~airflow_mlsecops.evidence.models.Finding` each, in this order, with
``passed=True`` when the measured value is within its threshold, severity ``high`` when it is not,
and severity ``info`` with ``passed=False`` and a message starting ``skipped:`` when it cannot run):

``integrity.schema``
    Columns added to or removed from the batch, and columns whose kind changed (integer, float,
    bool, datetime, string). A float column whose values are all whole numbers still matches an
    integer reference column (a CSV integer column with a missing value is read as float); an
    integer batch column matches a float reference column. The other checks run on the shared
    columns of unchanged kind.
``integrity.label_shift``
    Total variation distance (half the L1 distance) between the class shares of batch and reference.
``integrity.class_set``
    Classes in the batch that the reference never had, and reference classes absent from the batch
    (counted only if the batch is large enough to expect at least 5 rows of that class).
``integrity.duplicates``
    Share of batch rows that repeat an earlier row exactly (all shared columns, label included), in
    excess of the same share in a same-size sample of the reference. Reports ``[row, first_row]``.
``integrity.near_duplicates``
    Share of the remaining batch rows that are within ``near_duplicate_radius`` of an earlier row on
    every feature (Chebyshev distance on features standardised by the reference's mean and
    standard deviation; categorical features and missingness must match exactly), again in excess
    of the reference's share. How: exact feature vectors are collapsed with a sort; a KD-tree over
    the distinct vectors finds each one's nearest other vector (``O(n log n)``); vectors within the
    radius are joined into groups (connected components) and every row of a group but its first is
    a near-duplicate. A row with the same features as an earlier row but a different label is a
    near-duplicate too (a classic flipped-copy injection).
``integrity.out_of_range``
    Share of batch rows with a numeric feature outside the reference's ``[min, max]`` widened by
    ``range_tolerance`` of the range on each side, a category the reference never had, or a missing
    value in a feature the reference never misses.
``integrity.feature_shift``
    Per feature, the two-sample Kolmogorov-Smirnov statistic (numeric; missing values count as a
    value above all others, so a jump in missingness shows) or the total variation distance of
    category shares (categorical), each against its own threshold; the worst is reported.
``integrity.label_flips``
    A random forest is fitted on the *trusted reference* (at most ``label_flip_max_rows`` sampled
    rows) and predicts class probabilities for the batch (the same cap). The share of flipped
    labels ``e`` is estimated by maximum likelihood under the model ``P(label) = (1 - e) p(label)
    + e (1 - p(label)) / (K - 1)``: about 0 for a clean batch, about the flipped share for a batch
    with randomly flipped labels. cleanlab's ``find_label_issues`` on the same probabilities
    names the suspect rows, most suspicious first.

    Why the reference and not the batch: a forest fitted on the batch itself (cross-validated,
    out-of-fold) learns the flipped labels it should expose. On the credit data set (whose label is
    itself a noisy draw: about 1 row in 5 disagrees with the best possible prediction) it estimated
    0.01-0.04 flipped for clean batches and 0.02-0.05 with 5% flipped, which no threshold separates;
    fitted on the reference it estimates 0.00-0.02 and 0.03-0.07 (2000-5000 rows). Row by row,
    cleanlab flags about 60% of the flipped rows at a precision near 0.2 (0.4 among the 50 it
    ranks first): the label's own noise hides the rest, which is why the verdict rests on the
    estimated share rather than on a count of flagged rows. With 5% of labels flipped the check
    failed 10 of 10 batches of 2000 rows, 6 of 10 of 1000 rows and none of 300 rows (not
    significant); it failed none of 40 clean batches of 300-5000 rows.

**Small samples**: a shift statistic (label shift, feature shift) or the estimated flip share over
its threshold is a violation only if it is also significant at ``significance`` (chi-square test of
homogeneity, KS test, likelihood-ratio test), so a batch of a few hundred rows is not rejected
for sampling noise. ``significance=1`` judges on the threshold alone.

**Evidence**: ``integrity_report.json`` holds every check's value, threshold, per-feature
statistics and the suspect rows (0-based row positions in the batch as loaded: for a CSV file the
data row number, header excluded; the first ``max_rows_reported`` per check); ``details`` holds the same per check without
the per-feature tables.

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
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate
from airflow_mlsecops.io.tabular import LoadedTable, load_table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

GATE_NAME = gate_names.DATA_INTEGRITY
REPORT_FILE = "integrity_report.json"
CHECK_IDS = (
    "integrity.schema",
    "integrity.label_shift",
    "integrity.class_set",
    "integrity.duplicates",
    "integrity.near_duplicates",
    "integrity.out_of_range",
    "integrity.feature_shift",
    "integrity.label_flips",
)
_ATLAS_POISONING = ("AML.T0020",)
_OWASP_POISONING = ("ML02:2023",)
_NUMERIC_KINDS = ("integer", "float", "datetime", "timedelta")
_MIN_EXPECTED_ROWS = 5  # a reference class counts as missing only if the batch should hold this many of it
_FOREST_TREES = 100
_FOREST_MIN_LEAF = 5
_PROBABILITY_FLOOR = 1e-3
_MISSING_SENTINEL = 1e9

_FEATURE_SHIFT_PREFIX = "max_feature_shift."


@dataclass(frozen=True)
class IntegrityThresholds:
    """The limits of the data integrity gate. Every share is a fraction (``0.01`` is 1%).

    :param max_schema_changes: columns added, removed or changing kind that are tolerated.
        Default ``0``.
    :param max_label_shift: largest total variation distance between the class shares of batch and
        reference. Default ``0.05``.
    :param max_new_classes: classes the reference never had that may appear in the batch. Default ``0``.
    :param max_missing_classes: reference classes that may be absent from the batch. Default ``0``.
    :param max_duplicate_share: largest share of exact duplicate rows in the batch, in excess of the
        share in a same-size reference sample. Default ``0.01``.
    :param max_near_duplicate_share: largest share of near-duplicate rows, in excess of the
        reference's share. Default ``0.01``.
    :param near_duplicate_radius: two rows are near-duplicates when every numeric feature differs by
        at most this many reference standard deviations and categorical features are equal.
        Default ``0.01``.
    :param max_out_of_range_share: largest share of rows with a value outside the reference's range
        (or an unseen category, or a missing value the reference never has). Default ``0.01``.
    :param range_tolerance: the reference range ``[min, max]`` is widened by this fraction of
        ``max - min`` on each side. Default ``0.05``.
    :param max_feature_shift: largest KS statistic (numeric) or total variation distance
        (categorical) of any feature. Default ``0.1``.
    :param feature_shift_overrides: per-feature limits replacing ``max_feature_shift``; in
        :meth:`from_mapping` also given as ``max_feature_shift.<column>=<value>``. Default none.
    :param max_label_flip_share: largest estimated share of labels flipped with respect to a model
        fitted on the reference. Default ``0.03``.
    :param label_flip_max_rows: rows sampled from each of reference (to fit the model) and batch (to
        score) for the label-flip check; the evidence says how many were used. Default ``50000``.
    :param label_flip_min_class_rows: a reference class needs this many rows to be learnt; the check
        is skipped unless two classes have them. Default ``20``.
    :param significance: a shift or flip statistic over its threshold is a violation only if its
        test's p-value is below this (``1`` judges on thresholds alone). Default ``0.001``.
    :param ignore_columns: columns not judged at all (identifiers, timestamps, free text); a
        comma-separated string is accepted. Default none.
    :param max_rows_reported: suspect rows listed per check in the evidence. Default ``100``.
    """

    max_schema_changes: int = 0
    max_label_shift: float = 0.05
    max_new_classes: int = 0
    max_missing_classes: int = 0
    max_duplicate_share: float = 0.01
    max_near_duplicate_share: float = 0.01
    near_duplicate_radius: float = 0.01
    max_out_of_range_share: float = 0.01
    range_tolerance: float = 0.05
    max_feature_shift: float = 0.1
    feature_shift_overrides: Mapping[str, float] = field(default_factory=dict)
    max_label_flip_share: float = 0.03
    label_flip_max_rows: int = 50_000
    label_flip_min_class_rows: int = 20
    significance: float = 0.001
    ignore_columns: tuple[str, ...] = ()
    max_rows_reported: int = 100

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "feature_shift_overrides":
                if not isinstance(value, Mapping):
                    raise ConfigurationError("feature_shift_overrides must map column names to limits")
                checked = {str(k): _number(f"{_FEATURE_SHIFT_PREFIX}{k}", v, 0.0, 1.0) for k, v in value.items()}
                object.__setattr__(self, spec.name, checked)
            elif spec.name == "ignore_columns":
                object.__setattr__(self, spec.name, _columns(value))
            elif spec.name in _INT_LIMITS:
                low, high = _INT_LIMITS[spec.name]
                object.__setattr__(self, spec.name, _integer(spec.name, value, low, high))
            else:
                low_f, high_f = _FLOAT_LIMITS[spec.name]
                object.__setattr__(self, spec.name, _number(spec.name, value, low_f, high_f))
        if self.significance <= 0:
            raise ConfigurationError("threshold significance must be above 0 (1 judges on thresholds alone)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> IntegrityThresholds:
        """Build thresholds from ``{name: value}`` (defaults for the rest).

        Values may be strings (``"0.05"``) as they come from a command line.
        ``max_feature_shift.<column>`` sets one feature's limit.

        :param values: the thresholds to change, or ``None`` for all defaults.
        :raises ConfigurationError: naming an unknown key or a value out of range.
        """
        if values is None:
            return cls()
        if isinstance(values, IntegrityThresholds):
            return values
        if not isinstance(values, Mapping):
            raise ConfigurationError(f"thresholds must be a mapping of name to value, not {type(values).__name__}")
        known = {spec.name for spec in fields(cls)}
        kwargs: dict[str, Any] = {}
        overrides: dict[str, object] = {}
        for raw_key, value in values.items():
            key = str(raw_key).strip()
            if key.startswith(_FEATURE_SHIFT_PREFIX) and len(key) > len(_FEATURE_SHIFT_PREFIX):
                overrides[key[len(_FEATURE_SHIFT_PREFIX) :]] = value
            elif key == "feature_shift_overrides":
                if not isinstance(value, Mapping):
                    raise ConfigurationError("feature_shift_overrides must map column names to limits")
                overrides.update({str(k): v for k, v in value.items()})
            elif key in known:
                kwargs[key] = value
            else:
                raise ConfigurationError(
                    f"unknown data-integrity threshold {key!r}; known: {', '.join(sorted(known - {'feature_shift_overrides'}))}"
                    f", {_FEATURE_SHIFT_PREFIX}<column>"
                )
        if overrides:
            kwargs["feature_shift_overrides"] = overrides
        return cls(**kwargs)

    def feature_limit(self, column: str) -> float:
        """The shift limit of ``column``: its override or ``max_feature_shift``."""
        return float(self.feature_shift_overrides.get(column, self.max_feature_shift))

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as JSON-ready policy."""
        out: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            out[spec.name] = dict(value) if isinstance(value, Mapping) else list(value) if isinstance(value, tuple) else value
        return out


_INT_LIMITS: dict[str, tuple[int, int | None]] = {
    "max_schema_changes": (0, None),
    "max_new_classes": (0, None),
    "max_missing_classes": (0, None),
    "label_flip_max_rows": (100, None),
    "label_flip_min_class_rows": (2, None),
    "max_rows_reported": (0, 10_000),
}
_FLOAT_LIMITS: dict[str, tuple[float, float | None]] = {
    "max_label_shift": (0.0, 1.0),
    "max_duplicate_share": (0.0, 1.0),
    "max_near_duplicate_share": (0.0, 1.0),
    "near_duplicate_radius": (0.0, None),
    "max_out_of_range_share": (0.0, 1.0),
    "range_tolerance": (0.0, None),
    "max_feature_shift": (0.0, 1.0),
    "max_label_flip_share": (0.0, 1.0),
    "significance": (0.0, 1.0),
}


def _number(name: str, value: object, low: float, high: float | None) -> float:
    if isinstance(value, bool):
        raise ConfigurationError(f"threshold {name} must be a number, not {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(f"threshold {name} must be a number, not {value!r}") from None
    if math.isnan(number) or number < low or (high is not None and number > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigurationError(f"threshold {name} must be {bounds}, not {value!r}")
    return number


def _integer(name: str, value: object, low: int, high: int | None) -> int:
    number = _number(name, value, float(low), float(high) if high is not None else None)
    if not number.is_integer():
        raise ConfigurationError(f"threshold {name} must be a whole number, not {value!r}")
    return int(number)


def _columns(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (Sequence, set, frozenset)):
        return tuple(str(part) for part in value)
    raise ConfigurationError(f"ignore_columns must be a list of column names or a comma-separated string, not {value!r}")


# --------------------------------------------------------------------------------------------------
# Results of single checks


@dataclass
class _Check:
    id: str
    status: str  # "passed", "failed", "skipped"
    message: str
    value: float | None = None
    threshold: float | None = None
    location: str | None = None
    rows: list[int] = field(default_factory=list)
    rows_total: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def finding(self) -> Finding:
        violated = self.status == "failed"
        return Finding(
            id=self.id,
            severity=Severity.HIGH if violated else Severity.INFO,
            message=self.message,
            location=self.location,
            atlas=_ATLAS_POISONING if self.id != "integrity.schema" or violated else (),
            owasp_ml=_OWASP_POISONING if self.id != "integrity.schema" or violated else (),
            passed=self.status == "passed",
        )

    def summary(self, cap: int) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "value": self.value, "threshold": self.threshold}
        if self.rows_total:
            out["rows_total"] = self.rows_total
            out["rows"] = self.rows[:cap]
        return out


def _skipped(check_id: str, reason: str) -> _Check:
    return _Check(id=check_id, status="skipped", message=f"skipped: {reason}", report={"reason": reason})


def _pct(share: float) -> str:
    return f"{share * 100:.2f}%"


def _rows_text(rows: Sequence[int], total: int, limit: int = 8) -> str | None:
    if not total:
        return None
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {total - min(limit, len(rows))} more" if total > min(limit, len(rows)) else ""
    return f"rows {shown}{more}"


# --------------------------------------------------------------------------------------------------
# Column kinds and values


def _kind(series: pd.Series) -> str:
    from pandas.api import types as pdt

    if pdt.is_bool_dtype(series.dtype):
        return "bool"
    if pdt.is_integer_dtype(series.dtype):
        return "integer"
    if pdt.is_float_dtype(series.dtype):
        return "float"
    if pdt.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    if pdt.is_timedelta64_dtype(series.dtype):
        return "timedelta"
    return "string"


def _compatible(ref_kind: str, batch: pd.Series) -> bool:
    batch_kind = _kind(batch)
    if batch_kind == ref_kind or (ref_kind == "float" and batch_kind == "integer"):
        return True
    values = batch.dropna()
    if ref_kind == "integer" and batch_kind == "float":
        import numpy as np

        return bool(np.all(np.mod(values.to_numpy(dtype=float), 1.0) == 0))
    if ref_kind == "bool" and batch_kind == "string":
        return bool(values.map(lambda v: isinstance(v, bool)).all())
    return False


def _numeric(series: pd.Series, kind: str) -> np.ndarray:
    """Numeric feature values as float64 with NaN for missing (datetimes in seconds)."""
    import numpy as np

    if kind == "datetime":
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        raw = series.to_numpy(dtype="datetime64[ns]")
        out = raw.astype("int64").astype(float) / 1e9
        out[np.isnat(raw)] = np.nan
        return out
    if kind == "timedelta":
        return series.dt.total_seconds().to_numpy(dtype=float)
    return series.to_numpy(dtype=float, na_value=np.nan)


def _key(value: object) -> str:
    """A class or category as a comparable string (``1``, ``1.0`` and ``"1"`` are one class, ``True`` another)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return _key(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _keys(series: pd.Series) -> pd.Series:
    """Category keys, ``None`` where the value is missing."""
    mask = series.isna()
    keys = series.astype(object).map(_key)
    return keys.where(~mask, None) if bool(mask.any()) else keys


@dataclass
class _Feature:
    name: str
    kind: str  # kind in the reference
    numeric: bool


@dataclass
class _Frames:
    batch: pd.DataFrame
    reference: pd.DataFrame
    label: str | None  # present in both
    features: list[_Feature]
    shared: list[str]  # shared, not ignored: label and features and kind-changed columns
    thresholds: IntegrityThresholds
    random_state: int


# --------------------------------------------------------------------------------------------------
# The checks


def _schema(batch: pd.DataFrame, reference: pd.DataFrame, label: str | None, th: IntegrityThresholds) -> tuple[_Check, _Frames]:
    ignored = set(th.ignore_columns)
    ref_cols = [str(c) for c in reference.columns if str(c) not in ignored]
    batch_cols = [str(c) for c in batch.columns if str(c) not in ignored]
    removed = [c for c in ref_cols if c not in batch_cols]
    added = [c for c in batch_cols if c not in ref_cols]
    shared = [c for c in ref_cols if c in batch_cols]
    changed: list[dict[str, str]] = []
    features: list[_Feature] = []
    for column in shared:
        ref_kind = _kind(reference[column])
        if not _compatible(ref_kind, batch[column]):
            changed.append({"column": column, "reference": ref_kind, "batch": _kind(batch[column])})
            continue
        if column != label:
            features.append(_Feature(column, ref_kind, ref_kind in _NUMERIC_KINDS))
    count = len(added) + len(removed) + len(changed)
    problems = []
    if removed:
        problems.append(f"missing from the batch: {', '.join(removed)}")
    if added:
        problems.append(f"not in the reference: {', '.join(added)}")
    if changed:
        problems.append("kind changed: " + ", ".join(f"{c['column']} ({c['reference']} -> {c['batch']})" for c in changed))
    violated = count > th.max_schema_changes
    if count:
        message = f"{count} schema change(s) (limit {th.max_schema_changes}): " + "; ".join(problems)
        if violated:
            message += "; the other checks ran on the shared columns"
    else:
        message = f"the batch has the reference's {len(ref_cols)} columns with the same kinds"
    if ignored:
        message += f" ({len(ignored)} column(s) ignored)"
    check = _Check(
        id="integrity.schema",
        status="failed" if violated else "passed",
        message=message,
        value=float(count),
        threshold=float(th.max_schema_changes),
        location=f"column {(removed + added + [c['column'] for c in changed])[0]}" if count else None,
        metrics={"schema_changes": float(count)},
        report={
            "columns_removed": removed,
            "columns_added": added,
            "kind_changed": changed,
            "columns_ignored": sorted(ignored),
            "columns_compared": [f.name for f in features],
            "column_kinds": {f.name: f.kind for f in features},
        },
    )
    frames = _Frames(
        batch=batch,
        reference=reference,
        # a label whose kind changed (0/1 -> "yes"/"no") is still compared class by class
        label=label if label is not None and label in shared else None,
        features=features,
        shared=shared,
        thresholds=th,
        random_state=0,
    )
    return check, frames


def _label_reason(label: str | None, batch: pd.DataFrame, reference: pd.DataFrame, ignored: Sequence[str]) -> str | None:
    if label is None:
        return "no label column was given (label_column)"
    if label in ignored:
        return f"the label column {label!r} is in ignore_columns"
    if label not in reference.columns:
        return f"the label column {label!r} is missing from the reference"
    if label not in batch.columns:
        return f"the label column {label!r} is missing from the batch"
    return None


def _class_shares(keys: pd.Series) -> dict[str, int]:
    counts = keys.dropna().value_counts(sort=False)
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))}


def _contingency_p(a: Mapping[str, int], b: Mapping[str, int]) -> float:
    """p-value of the chi-square test of homogeneity of two count tables (1.0 if undefined)."""
    import numpy as np
    from scipy.stats import chi2_contingency

    categories = sorted(set(a) | set(b))
    table = np.array([[a.get(c, 0) for c in categories], [b.get(c, 0) for c in categories]], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def _tvd(a: Mapping[str, int], b: Mapping[str, int]) -> float:
    total_a, total_b = sum(a.values()), sum(b.values())
    if not total_a or not total_b:
        return 0.0
    return 0.5 * sum(abs(a.get(c, 0) / total_a - b.get(c, 0) / total_b) for c in set(a) | set(b))


def _label_checks(frames: _Frames) -> list[_Check]:
    th = frames.thresholds
    assert frames.label is not None
    batch_keys = _keys(frames.batch[frames.label])
    ref_keys = _keys(frames.reference[frames.label])
    batch_counts, ref_counts = _class_shares(batch_keys), _class_shares(ref_keys)
    labelled_batch, labelled_ref = sum(batch_counts.values()), sum(ref_counts.values())
    missing_labels = int(batch_keys.isna().sum())
    if not labelled_batch or not labelled_ref:
        where = "batch" if not labelled_batch else "reference"
        reason = f"the {where} has no labelled rows"
        return [_skipped("integrity.label_shift", reason), _skipped("integrity.class_set", reason)]

    tvd = _tvd(batch_counts, ref_counts)
    p_value = _contingency_p(batch_counts, ref_counts)
    shift_violated = tvd > th.max_label_shift and p_value < th.significance
    shares = ", ".join(
        f"{c}: {_pct(batch_counts.get(c, 0) / labelled_batch)} vs {_pct(ref_counts.get(c, 0) / labelled_ref)}"
        for c in sorted(set(batch_counts) | set(ref_counts))[:10]
    )
    message = (
        f"class shares differ by total variation distance {tvd:.4f} (limit {th.max_label_shift:g}, p={p_value:.2g}): {shares}"
    )
    if tvd > th.max_label_shift and not shift_violated:
        message += f"; not significant at {th.significance:g} on {labelled_batch} rows"
    if missing_labels:
        message += f"; {missing_labels} batch row(s) have no label"
    shift = _Check(
        id="integrity.label_shift",
        status="failed" if shift_violated else "passed",
        message=message,
        value=tvd,
        threshold=th.max_label_shift,
        location=f"column {frames.label}",
        metrics={"label_tvd": tvd, "label_shift_p_value": p_value, "labels_missing": float(missing_labels)},
        report={
            "batch_counts": batch_counts,
            "reference_counts": ref_counts,
            "p_value": p_value,
            "batch_rows_without_label": missing_labels,
        },
    )

    new = sorted(set(batch_counts) - set(ref_counts))
    absent = sorted(set(ref_counts) - set(batch_counts))
    expected = {c: ref_counts[c] / labelled_ref * labelled_batch for c in absent}
    missing = [c for c in absent if expected[c] >= _MIN_EXPECTED_ROWS]
    rare = [c for c in absent if c not in missing]
    import numpy as np

    new_rows = np.flatnonzero(batch_keys.isin(new).to_numpy()) if new else np.array([], dtype=int)
    violated = len(new) > th.max_new_classes or len(missing) > th.max_missing_classes
    parts = []
    if new:
        parts.append("new in the batch: " + ", ".join(f"{c!r} ({batch_counts[c]} rows)" for c in new[:10]))
    if missing:
        parts.append("absent from the batch: " + ", ".join(f"{c!r} (expected ~{expected[c]:.0f} rows)" for c in missing[:10]))
    if rare:
        parts.append(f"too rare to be expected in this batch: {', '.join(repr(c) for c in rare[:10])}")
    if parts:
        message = (
            f"{len(new)} new class(es) (limit {th.max_new_classes}), {len(missing)} missing (limit {th.max_missing_classes}): "
            + "; ".join(parts)
        )
    else:
        message = f"the batch has the reference's {len(ref_counts)} classes"
    class_set = _Check(
        id="integrity.class_set",
        status="failed" if violated else "passed",
        message=message,
        value=float(len(new) + len(missing)),
        threshold=float(th.max_new_classes + th.max_missing_classes),
        location=_rows_text(new_rows.tolist(), len(new_rows)) or f"column {frames.label}",
        rows=[int(r) for r in new_rows[: th.max_rows_reported]],
        rows_total=len(new_rows),
        metrics={"new_classes": float(len(new)), "missing_classes": float(len(missing))},
        report={"new_classes": new, "missing_classes": missing, "absent_but_rare": rare},
    )
    return [shift, class_set]


def _reference_sample(frames: _Frames, size: int) -> pd.DataFrame:
    import numpy as np

    reference = frames.reference
    if len(reference) <= size:
        return reference
    rng = np.random.default_rng(frames.random_state)
    return reference.iloc[np.sort(rng.choice(len(reference), size, replace=False))]


def _duplicates(frames: _Frames) -> _Check:
    import numpy as np
    import pandas as pd

    th = frames.thresholds
    columns = frames.shared
    if not columns:
        return _skipped("integrity.duplicates", "batch and reference share no column")
    batch = frames.batch[columns]
    mask = batch.duplicated(keep="first").to_numpy()
    rows = np.flatnonzero(mask)
    share = len(rows) / len(batch)
    ref_sample = _reference_sample(frames, len(batch))[columns]
    ref_share = float(ref_sample.duplicated(keep="first").mean())
    excess = share - ref_share
    pairs: list[list[int]] = []
    if len(rows):
        codes = pd.util.hash_pandas_object(batch, index=False).to_numpy()
        _, first_index, inverse = np.unique(codes, return_index=True, return_inverse=True)
        first = first_index[inverse]
        pairs = [[int(r), int(first[r])] for r in rows[: th.max_rows_reported]]
    violated = excess > th.max_duplicate_share
    message = (
        f"{len(rows)} of {len(batch)} rows ({_pct(share)}) repeat an earlier row exactly; the reference has {_pct(ref_share)}, "
        f"excess {_pct(excess)} (limit {_pct(th.max_duplicate_share)})"
    )
    return _Check(
        id="integrity.duplicates",
        status="failed" if violated else "passed",
        message=message,
        value=excess,
        threshold=th.max_duplicate_share,
        location=_rows_text(rows.tolist(), len(rows)),
        rows=[int(r) for r in rows[: th.max_rows_reported]],
        rows_total=len(rows),
        metrics={"duplicate_share": share, "duplicate_excess": excess},
        report={"batch_share": share, "reference_share": ref_share, "reference_rows_sampled": len(ref_sample), "pairs": pairs},
    )


def _feature_matrix(frame: pd.DataFrame, frames: _Frames, radius: float) -> np.ndarray:
    """Features standardised by the reference; categorical features folded into one exact-match axis."""
    import numpy as np
    import pandas as pd

    columns: list[np.ndarray] = []
    categorical: list[pd.Series] = []
    for feature in frames.features:
        if feature.numeric:
            ref_values = _numeric(frames.reference[feature.name], feature.kind)
            finite = ref_values[np.isfinite(ref_values)]
            mean = float(finite.mean()) if len(finite) else 0.0
            std = float(finite.std()) if len(finite) > 1 else 0.0
            values = (_numeric(frame[feature.name], feature.kind) - mean) / (std if std > 0 else 1.0)
            values[~np.isfinite(values)] = _MISSING_SENTINEL
            columns.append(values)
        else:
            categorical.append(_keys(frame[feature.name]).fillna("\x00<missing>"))
    if categorical:
        codes = pd.MultiIndex.from_arrays(categorical).factorize()[0] if len(categorical) > 1 else categorical[0].factorize()[0]
        columns.append(codes.astype(float) * max(4.0 * radius, 1.0))
    return np.column_stack(columns) if columns else np.zeros((len(frame), 0))


def _near_groups(matrix: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows within ``radius`` (Chebyshev) of an earlier row, and that earlier row (the group's first)."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import KDTree

    n = len(matrix)
    if n < 2:
        return np.array([], dtype=int), np.array([], dtype=int)
    unique, inverse = np.unique(matrix, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(unique) >= 2:
        distance, index = KDTree(unique, metric="chebyshev").query(unique, k=2)
        close = distance[:, 1] <= radius
        source = np.flatnonzero(close)
        graph = coo_matrix((np.ones(len(source)), (source, index[close, 1])), shape=(len(unique), len(unique)))
        _, component = connected_components(graph, directed=False)
    else:
        component = np.zeros(len(unique), dtype=int)
    row_component = component[inverse]
    # rows are in file order, so the first row of a component is its earliest
    components, first = np.unique(row_component, return_index=True)
    first_of_row = first[np.searchsorted(components, row_component)]
    flagged = np.flatnonzero(first_of_row != np.arange(n))
    return flagged, first_of_row[flagged]


def _near_duplicates(frames: _Frames) -> _Check:
    import numpy as np

    th = frames.thresholds
    if not frames.features:
        return _skipped("integrity.near_duplicates", "batch and reference share no comparable feature column")

    def scan(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
        keep = np.flatnonzero(~frame[frames.shared].duplicated(keep="first").to_numpy())
        matrix = _feature_matrix(frame.iloc[keep], frames, th.near_duplicate_radius)
        flagged, partner = _near_groups(matrix, th.near_duplicate_radius)
        return keep[flagged], keep[partner], len(frame)

    rows, partners, total = scan(frames.batch)
    ref_rows, _, ref_total = scan(_reference_sample(frames, len(frames.batch)))
    share = len(rows) / total
    ref_share = len(ref_rows) / ref_total if ref_total else 0.0
    excess = share - ref_share
    violated = excess > th.max_near_duplicate_share
    message = (
        f"{len(rows)} of {total} rows ({_pct(share)}) are within {th.near_duplicate_radius:g} reference standard deviations "
        f"of an earlier row on every feature; the reference has {_pct(ref_share)}, excess {_pct(excess)} "
        f"(limit {_pct(th.max_near_duplicate_share)})"
    )
    return _Check(
        id="integrity.near_duplicates",
        status="failed" if violated else "passed",
        message=message,
        value=excess,
        threshold=th.max_near_duplicate_share,
        location=_rows_text(rows.tolist(), len(rows)),
        rows=[int(r) for r in rows[: th.max_rows_reported]],
        rows_total=len(rows),
        metrics={"near_duplicate_share": share, "near_duplicate_excess": excess},
        report={
            "batch_share": share,
            "reference_share": ref_share,
            "reference_rows_sampled": ref_total,
            "radius": th.near_duplicate_radius,
            "features": [f.name for f in frames.features],
            "pairs": [
                [int(r), int(p)] for r, p in zip(rows[: th.max_rows_reported], partners[: th.max_rows_reported], strict=True)
            ],
        },
    )


def _out_of_range(frames: _Frames) -> _Check:
    import numpy as np

    th = frames.thresholds
    if not frames.features:
        return _skipped("integrity.out_of_range", "batch and reference share no comparable feature column")
    any_out = np.zeros(len(frames.batch), dtype=bool)
    per_feature: dict[str, dict[str, Any]] = {}
    for feature in frames.features:
        if feature.numeric:
            ref_values = _numeric(frames.reference[feature.name], feature.kind)
            values = _numeric(frames.batch[feature.name], feature.kind)
            finite = ref_values[~np.isnan(ref_values)]
            if not len(finite):
                per_feature[feature.name] = {"skipped": "the reference has no values"}
                continue
            low, high = float(finite.min()), float(finite.max())
            spread = high - low or max(abs(high), 1.0)
            lo, hi = low - th.range_tolerance * spread, high + th.range_tolerance * spread
            missing = np.isnan(values)
            out = (values < lo) | (values > hi)
            if len(finite) == len(ref_values):
                out |= missing
            info: dict[str, Any] = {"allowed": [lo, hi], "reference_range": [low, high]}
        else:
            ref_keys = _keys(frames.reference[feature.name])
            keys = _keys(frames.batch[feature.name])
            seen = set(ref_keys.dropna())
            missing = keys.isna().to_numpy()
            out = ~keys.isin(seen).to_numpy() & ~missing
            if not ref_keys.isna().any():
                out |= missing
            unseen = keys[out & ~missing].value_counts().head(10)
            info = {"unseen_categories": {str(k): int(v) for k, v in unseen.items()}}
        info["rows_out"] = int(out.sum())
        info["missing_where_reference_never_is"] = int((out & missing).sum())
        per_feature[feature.name] = info
        any_out |= out
    rows = np.flatnonzero(any_out)
    share = len(rows) / len(frames.batch)
    counted = {name: info["rows_out"] for name, info in per_feature.items() if info.get("rows_out")}
    worst = max(counted, key=lambda name: counted[name]) if counted else None
    violated = share > th.max_out_of_range_share
    message = (
        f"{len(rows)} of {len(frames.batch)} rows ({_pct(share)}) hold a value outside the reference's range "
        f"(widened by {th.range_tolerance:g} of it), an unseen category or an unexpected missing value "
        f"(limit {_pct(th.max_out_of_range_share)})"
    )
    if counted:
        message += ": " + ", ".join(f"{name} {count}" for name, count in sorted(counted.items(), key=lambda kv: -kv[1])[:6])
    return _Check(
        id="integrity.out_of_range",
        status="failed" if violated else "passed",
        message=message,
        value=share,
        threshold=th.max_out_of_range_share,
        location=(f"column {worst}, " if worst else "") + (_rows_text(rows.tolist(), len(rows)) or "") or None,
        rows=[int(r) for r in rows[: th.max_rows_reported]],
        rows_total=len(rows),
        metrics={"out_of_range_share": share},
        report={"features": per_feature},
    )


def _feature_shift(frames: _Frames) -> _Check:
    import numpy as np
    from scipy.stats import ks_2samp

    th = frames.thresholds
    if not frames.features:
        return _skipped("integrity.feature_shift", "batch and reference share no comparable feature column")
    per_feature: dict[str, dict[str, Any]] = {}
    for feature in frames.features:
        limit = th.feature_limit(feature.name)
        if feature.numeric:
            ref_values = _numeric(frames.reference[feature.name], feature.kind)
            values = _numeric(frames.batch[feature.name], feature.kind)
            ref_values = np.where(np.isnan(ref_values), np.inf, ref_values)  # missing sorts above every value
            values = np.where(np.isnan(values), np.inf, values)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                test = ks_2samp(values, ref_values)
            statistic, p_value, method = float(test.statistic), float(test.pvalue), "ks"
        else:
            a = _class_shares(_keys(frames.batch[feature.name]).fillna("<missing>"))
            b = _class_shares(_keys(frames.reference[feature.name]).fillna("<missing>"))
            statistic, p_value, method = _tvd(a, b), _contingency_p(a, b), "tvd"
        per_feature[feature.name] = {
            "statistic": statistic,
            "method": method,
            "p_value": p_value,
            "limit": limit,
            "violated": bool(statistic > limit and p_value < th.significance),
        }
    worst = max(per_feature, key=lambda name: per_feature[name]["statistic"] / max(per_feature[name]["limit"], 1e-12))
    violated = [name for name, info in per_feature.items() if info["violated"]]
    info = per_feature[worst]
    label = "KS statistic" if info["method"] == "ks" else "total variation distance"
    if violated:
        message = f"{len(violated)} of {len(per_feature)} features shifted: " + ", ".join(
            f"{name} {per_feature[name]['method'].upper()} {per_feature[name]['statistic']:.3f} "
            f"(limit {per_feature[name]['limit']:g})"
            for name in sorted(violated, key=lambda n: -per_feature[n]["statistic"])[:6]
        )
        if any(f.name in violated and not f.numeric and _high_cardinality(frames.reference[f.name]) for f in frames.features):
            message += "; an identifier-like column belongs in ignore_columns"
    else:
        message = (
            f"no feature shifted: the largest is {worst} with {label} {info['statistic']:.3f} "
            f"(limit {info['limit']:g}, p={info['p_value']:.2g})"
        )
    worst_shown = sorted(violated, key=lambda n: -per_feature[n]["statistic"])[0] if violated else worst
    return _Check(
        id="integrity.feature_shift",
        status="failed" if violated else "passed",
        message=message,
        value=float(per_feature[worst_shown]["statistic"]),
        threshold=float(per_feature[worst_shown]["limit"]),
        location=f"column {worst_shown}",
        metrics={
            "feature_shift_max": max(float(v["statistic"]) for v in per_feature.values()),
            "features_shifted": float(len(violated)),
        },
        report={"worst": worst_shown, "features": per_feature, "significance": th.significance},
    )


def _high_cardinality(series: pd.Series) -> bool:
    return series.nunique(dropna=True) > 0.5 * max(len(series), 1)


def _model_matrix(frame: pd.DataFrame, frames: _Frames) -> np.ndarray:
    import numpy as np

    columns = []
    for feature in frames.features:
        if feature.numeric:
            columns.append(_numeric(frame[feature.name], feature.kind))
        else:
            categories = sorted(set(_keys(frames.reference[feature.name]).dropna()))
            lookup: dict[str | None, float] = {c: float(i) for i, c in enumerate(categories)}
            lookup[None] = -2.0  # missing; an unseen category is -1
            codes = [lookup.get(k, -1.0) for k in _keys(frame[feature.name])]
            columns.append(np.asarray(codes, dtype=float))
    return np.column_stack(columns)


def _sample_positions(n: int, cap: int, seed: int) -> np.ndarray:
    import numpy as np

    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def _flip_share(p_label: np.ndarray, classes: int) -> tuple[float, float]:
    """Maximum-likelihood share of flipped labels and the likelihood-ratio test's p-value against none."""
    import numpy as np
    from scipy.optimize import minimize_scalar
    from scipy.stats import chi2

    p = np.clip(p_label, _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)
    other = (1 - p) / (classes - 1)

    def negative_log_likelihood(share: float) -> float:
        return float(-np.sum(np.log((1 - share) * p + share * other)))

    upper = (classes - 1) / classes
    best = minimize_scalar(negative_log_likelihood, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-5})
    share = float(best.x) if negative_log_likelihood(float(best.x)) < negative_log_likelihood(0.0) else 0.0
    statistic = max(0.0, 2 * (negative_log_likelihood(0.0) - negative_log_likelihood(share)))
    p_value = 1.0 if share == 0.0 else float(0.5 * chi2.sf(statistic, 1))
    return share, p_value


def _label_flips(frames: _Frames) -> _Check:
    import numpy as np

    th = frames.thresholds
    check_id = "integrity.label_flips"
    assert frames.label is not None
    if not frames.features:
        return _skipped(check_id, "no comparable feature column to learn the labels from")
    ref_keys = _keys(frames.reference[frames.label])
    counts = ref_keys.value_counts()
    learnable = sorted(str(c) for c, n in counts.items() if n >= th.label_flip_min_class_rows)
    if len(learnable) < 2:
        return _skipped(
            check_id,
            f"the reference needs two classes with at least {th.label_flip_min_class_rows} rows each "
            f"(it has {', '.join(f'{c!r}: {n}' for c, n in counts.items()) or 'no labelled rows'})",
        )
    index = {c: i for i, c in enumerate(learnable)}
    ref_rows = np.flatnonzero(ref_keys.isin(learnable).to_numpy())
    ref_rows = ref_rows[_sample_positions(len(ref_rows), th.label_flip_max_rows, frames.random_state)]
    batch_keys = _keys(frames.batch[frames.label])
    scorable = np.flatnonzero(batch_keys.isin(learnable).to_numpy())
    batch_rows = scorable[_sample_positions(len(scorable), th.label_flip_max_rows, frames.random_state + 1)]
    if len(batch_rows) == 0:
        return _skipped(check_id, "no batch row carries a class the reference model knows")

    from sklearn.ensemble import RandomForestClassifier

    reference = frames.reference.iloc[ref_rows]
    batch = frames.batch.iloc[batch_rows]
    y_ref = ref_keys.iloc[ref_rows].map(index).to_numpy(dtype=int)
    y_batch = batch_keys.iloc[batch_rows].map(index).to_numpy(dtype=int)
    model = RandomForestClassifier(
        n_estimators=_FOREST_TREES,
        min_samples_leaf=_FOREST_MIN_LEAF,
        n_jobs=min(4, os.cpu_count() or 1),
        random_state=frames.random_state,
    )
    model.fit(_model_matrix(reference, frames), y_ref)
    model.set_params(n_jobs=1)  # threads add tree probabilities in completion order: not bit-for-bit reproducible
    probabilities = np.zeros((len(batch_rows), len(learnable)))
    probabilities[:, model.classes_] = model.predict_proba(_model_matrix(batch, frames))
    share, p_value = _flip_share(probabilities[np.arange(len(y_batch)), y_batch], len(learnable))

    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        present = np.unique(y_batch)
        if len(present) >= 2:
            ranked = find_label_issues(y_batch, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
        else:
            ranked = np.array([], dtype=int)
    suspects = batch_rows[np.asarray(ranked, dtype=int)]
    over = share > th.max_label_flip_share
    violated = over and p_value < th.significance
    sampled = len(batch_rows) < len(scorable) or len(ref_rows) < int(ref_keys.isin(learnable).sum())
    message = (
        f"an estimated {_pct(share)} of {len(batch_rows)} labels disagree with a model of the reference "
        f"(limit {_pct(th.max_label_flip_share)}, p={p_value:.2g}); cleanlab flags {len(suspects)} rows "
        f"({_pct(len(suspects) / len(batch_rows))}) as likely mislabelled, most suspicious first"
    )
    if len(present) < 2:
        message += " (cleanlab needs two classes in the batch)"
    if over and not violated:
        message += f"; not significant at {th.significance:g}"
    if sampled:
        message += (
            f" (sampled: model fitted on {len(ref_rows)} reference rows, {len(batch_rows)} of {len(scorable)} batch rows scored)"
        )
    return _Check(
        id=check_id,
        status="failed" if violated else "passed",
        message=message,
        value=share,
        threshold=th.max_label_flip_share,
        location=_rows_text(suspects.tolist(), len(suspects)),
        rows=[int(r) for r in suspects[: th.max_rows_reported]],
        rows_total=len(suspects),
        metrics={"label_flip_share": share, "label_flip_p_value": p_value, "label_issue_share": len(suspects) / len(batch_rows)},
        report={
            "estimated_flip_share": share,
            "p_value": p_value,
            "model": (
                f"RandomForestClassifier(n_estimators={_FOREST_TREES}, min_samples_leaf={_FOREST_MIN_LEAF}) "
                "fitted on the reference"
            ),
            "classes": learnable,
            "reference_rows_used": len(ref_rows),
            "batch_rows_scored": len(batch_rows),
            "batch_rows_scorable": len(scorable),
            "sampled": sampled,
            "row_cap": th.label_flip_max_rows,
            "cleanlab_flagged": len(suspects),
            "cleanlab_ranking": "self_confidence",
        },
    )


# --------------------------------------------------------------------------------------------------
# The gate


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars become Python numbers, NaN and infinities become strings)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _read(location: str, role: str, delimiter: str | None) -> LoadedTable:
    table = load_table(location, csv_delimiter=delimiter)
    if len(table.frame) == 0:
        raise GateError(f"the {role} {location} holds a header but no rows")
    if table.frame.columns.duplicated().any():
        raise GateError(f"the {role} {location} repeats a column name")
    table.frame.columns = [str(c) for c in table.frame.columns]
    return table


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
    if reason is None and frames.label is not None:
        checks.extend(_label_checks(frames))
    else:
        checks.extend([_skipped("integrity.label_shift", str(reason)), _skipped("integrity.class_set", str(reason))])
    checks.append(_duplicates(frames))
    checks.append(_near_duplicates(frames))
    checks.append(_out_of_range(frames))
    checks.append(_feature_shift(frames))
    if reason is None and frames.label is not None:
        checks.append(_label_flips(frames))
    else:
        checks.append(_skipped("integrity.label_flips", str(reason)))
    return checks


def check_integrity(
    data: str,
    reference: str,
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

    :param data: path or ``s3://`` URI of the new batch (CSV or Parquet).
    :param reference: path or ``s3://`` URI of the trusted reference data (CSV or Parquet).
    :param label_column: the label column; without it the label checks are reported as skipped.
    :param thresholds: :class:`IntegrityThresholds` or a mapping of threshold names to values.
    :param warn_only: report a rejection as ``warned`` instead of failing.
    :param context: the Airflow task running the gate, if any.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param random_state: seed of the samples and the model, so the verdict is reproducible.
    :returns: the outcome, with ``integrity_report.json`` as its evidence file.
    """

    def resolve() -> IntegrityThresholds:
        if isinstance(thresholds, IntegrityThresholds):
            return thresholds
        return IntegrityThresholds.from_mapping(thresholds)

    try:
        policy_thresholds: dict[str, Any] = resolve().to_dict()
    except ConfigurationError:  # reported by body() as an error verdict; the policy shows what was given
        given = thresholds if isinstance(thresholds, Mapping) else {"thresholds": repr(thresholds)}
        policy_thresholds = {str(k): _jsonable(v) for k, v in given.items()}

    def body() -> Evaluation:
        th = resolve()
        batch = _read(data, "batch", csv_delimiter)
        ref = _read(reference, "reference", csv_delimiter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            checks = _evaluate(batch.frame, ref.frame, label_column=label_column, thresholds=th, random_state=random_state)
        order = {"failed": 0, "skipped": 1, "passed": 2}
        checks.sort(key=lambda c: (order[c.status], CHECK_IDS.index(c.id)))
        failed = [c.id.split(".", 1)[1] for c in checks if c.status == "failed"]
        skipped = [c.id.split(".", 1)[1] for c in checks if c.status == "skipped"]
        ran = len(checks) - len(skipped)
        name, ref_name = Path(batch.subject.name).name, Path(ref.subject.name).name
        if failed:
            summary = f"{len(failed)} of {ran} integrity checks failed ({', '.join(failed)})"
        else:
            summary = f"all {ran} integrity checks passed"
        summary += f" on {len(batch.frame)} rows of {name} against {len(ref.frame)} rows of {ref_name}"
        if skipped:
            summary += f"; skipped: {', '.join(skipped)}"
        metrics: dict[str, float] = {
            "rows": float(len(batch.frame)),
            "reference_rows": float(len(ref.frame)),
            "checks_failed": float(len(failed)),
            "checks_skipped": float(len(skipped)),
        }
        for check in checks:
            metrics.update({k: float(v) for k, v in check.metrics.items() if math.isfinite(float(v))})
        canonical = sorted(checks, key=lambda c: CHECK_IDS.index(c.id))
        report = {
            "gate": GATE_NAME,
            "summary": summary,
            "batch": {
                "name": batch.subject.name,
                "sha256": batch.subject.sha256,
                "format": batch.format,
                "rows": len(batch.frame),
                "columns": len(batch.frame.columns),
            },
            "reference": {
                "name": ref.subject.name,
                "sha256": ref.subject.sha256,
                "format": ref.format,
                "rows": len(ref.frame),
                "columns": len(ref.frame.columns),
            },
            "label_column": label_column,
            "random_state": random_state,
            "thresholds": th.to_dict(),
            "row_numbering": "0-based row position in the batch as loaded (for CSV: data row number, header excluded)",
            "checks": [
                {
                    "id": c.id,
                    "status": c.status,
                    "value": c.value,
                    "threshold": c.threshold,
                    "message": c.message,
                    "rows_total": c.rows_total,
                    "rows": c.rows[: th.max_rows_reported],
                    **c.report,
                }
                for c in canonical
            ],
        }
        details = {
            "format": batch.format,
            "reference_format": ref.format,
            "label_column": label_column,
            "random_state": random_state,
            "checks": {c.id: c.summary(th.max_rows_reported) for c in canonical},
        }
        return Evaluation(
            passed=not failed,
            summary=summary,
            subjects=[batch.subject, ref.subject],
            findings=[c.finding() for c in checks],
            metrics=metrics,
            files={REPORT_FILE: json.dumps(_jsonable(report), indent=2, sort_keys=True).encode("utf-8")},
            details=_jsonable(details),
        )

    return run_gate(
        GATE_NAME,
        body,
        policy={
            "reference": reference,
            "label_column": label_column,
            "random_state": random_state,
            "thresholds": policy_thresholds,
        },
        warn_only=warn_only,
        distributions=("pandas", "numpy", "scipy", "scikit-learn", "cleanlab"),
        context=context,
    )
