"""Checks of the batch's features against the reference's distribution, and the two-sample statistics they share.

``integrity.out_of_range``
    Share of batch rows with a numeric feature outside the reference's ``[min, max]`` (of its finite
    values) widened by ``range_tolerance`` of the range on each side, a category the reference never
    had, or a missing value in a feature the reference never misses. Infinite values are not counted
    here: ``integrity.non_finite`` judges them.
``integrity.feature_shift``
    Per feature, the two-sample Kolmogorov-Smirnov statistic (numeric; missing values count as a
    value above all others, so a jump in missingness shows) or the total variation distance of
    category shares (categorical), each against its own threshold; the worst is reported.

The total variation distance and the chi-square test of homogeneity serve the label-shift check too.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.data_integrity.results import (
    _by_column,
    _Check,
    _column_rows_location,
    _judged,
    _pct,
    _skipped,
)
from airflow_mlsecops.gates.data_integrity.schema import (
    _Feature,
    _Frames,
    _keys,
    _model_values,
    _numeric,
    _unrepresentable,
)
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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


@dataclass
class _Range:
    """What the reference allows in one feature: a numeric range of its finite values, or its categories;
    and whether it ever misses a value (``complete``: a missing batch value is then out of range)."""

    numeric: bool
    complete: bool
    low: float | None = None  # None: the reference has no finite value
    high: float | None = None
    categories: set[str] | None = None


def _numeric_range(ref_values: np.ndarray) -> _Range:
    """The :class:`_Range` of a numeric reference column (model values: non-finite ones are NaN)."""
    import numpy as np

    finite = ref_values[~np.isnan(ref_values)]
    if not len(finite):
        return _Range(numeric=True, complete=False)
    return _Range(numeric=True, complete=len(finite) == len(ref_values), low=float(finite.min()), high=float(finite.max()))


def _reference_ranges(frames: _Frames) -> dict[str, _Range]:
    """Each feature's :class:`_Range` from the whole reference frame."""
    ranges: dict[str, _Range] = {}
    for feature in frames.features:
        if feature.numeric:
            ranges[feature.name] = _numeric_range(_model_values(frames.reference[feature.name], feature.kind))
        else:
            ref_keys = _keys(frames.reference[feature.name])
            ranges[feature.name] = _Range(numeric=False, complete=not ref_keys.isna().any(), categories=set(ref_keys.dropna()))
    return ranges


def _out_of_range_rows(
    batch: pd.DataFrame, features: list[_Feature], ranges: Mapping[str, _Range], th: IntegrityThresholds
) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """Where ``batch`` (a whole batch or one chunk of it) leaves the reference's ranges, and per feature the
    allowed range, ``rows_out``, ``missing_where_reference_never_is`` and ``unseen_categories`` (counts)."""
    import numpy as np

    any_out = np.zeros(len(batch), dtype=bool)
    per_feature: dict[str, dict[str, Any]] = {}
    for feature in features:
        allowed = ranges[feature.name]
        if feature.numeric:
            if allowed.low is None or allowed.high is None:
                per_feature[feature.name] = {"skipped": "the reference has no finite values"}
                continue
            values = _numeric(batch[feature.name], feature.kind)
            non_finite = _unrepresentable(values)  # integrity.non_finite judges these, not this check
            values[non_finite] = np.nan
            low, high = allowed.low, allowed.high
            spread = high - low or max(abs(high), 1.0)
            lo, hi = low - th.range_tolerance * spread, high + th.range_tolerance * spread
            missing = np.isnan(values) & ~non_finite
            out = (values < lo) | (values > hi)
            if allowed.complete:
                out |= missing
            info: dict[str, Any] = {"allowed": [lo, hi], "reference_range": [low, high]}
        else:
            keys = _keys(batch[feature.name])
            missing = keys.isna().to_numpy()
            out = ~keys.isin(allowed.categories or set()).to_numpy() & ~missing
            if allowed.complete:
                out |= missing
            unseen = keys[out & ~missing].value_counts()
            info = {"unseen_categories": {str(k): int(v) for k, v in unseen.items()}}
        info["rows_out"] = int(out.sum())
        info["missing_where_reference_never_is"] = int((out & missing).sum())
        per_feature[feature.name] = info
        any_out |= out
    return any_out, per_feature


def _merge_out_of_range(total: dict[str, dict[str, Any]], part: Mapping[str, dict[str, Any]]) -> None:
    """Add one chunk's per-feature counts to the running totals (unseen categories: the 1,000 most frequent kept)."""
    for name, info in part.items():
        into = total.get(name)
        if into is None:
            total[name] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in info.items()}
            continue
        for key in ("rows_out", "missing_where_reference_never_is"):
            if key in info:
                into[key] += info[key]
        if "unseen_categories" in info:
            merged = into["unseen_categories"]
            for category, count in info["unseen_categories"].items():
                merged[category] = merged.get(category, 0) + count
            if len(merged) > 1000:
                into["unseen_categories"] = dict(sorted(merged.items(), key=lambda kv: -kv[1])[:1000])


def _out_of_range(frames: _Frames) -> _Check:
    import numpy as np

    if not frames.features:
        return _skipped("integrity.out_of_range", "batch and reference share no comparable feature column")
    mask, per_feature = _out_of_range_rows(frames.batch, frames.features, _reference_ranges(frames), frames.thresholds)
    rows = np.flatnonzero(mask)
    return _out_of_range_result(rows, len(rows), len(frames.batch), per_feature, frames.thresholds)


def _out_of_range_result(
    rows: Sequence[int] | np.ndarray, count: int, total: int, per_feature: dict[str, dict[str, Any]], th: IntegrityThresholds
) -> _Check:
    """``integrity.out_of_range`` from the first suspect rows, their number ``count`` of ``total`` and per-feature counts."""
    for info in per_feature.values():
        if "unseen_categories" in info:
            ranked = sorted(info["unseen_categories"].items(), key=lambda kv: -kv[1])[:10]
            info["unseen_categories"] = dict(ranked)
    share = count / total
    counted = {name: info["rows_out"] for name, info in per_feature.items() if info.get("rows_out")}
    counted_text, worst = _by_column(counted)
    violated = share > th.max_out_of_range_share
    message = (
        f"{count} of {total} rows ({_pct(share)}) hold a value outside the reference's range "
        f"(widened by {th.range_tolerance:g} of it), an unseen category or an unexpected missing value "
        f"(limit {_pct(th.max_out_of_range_share)})"
    )
    message += counted_text
    return _judged(
        "integrity.out_of_range",
        violated=violated,
        message=message,
        value=share,
        threshold=th.max_out_of_range_share,
        location=_column_rows_location(worst, rows, count),
        rows=rows,
        cap=th.max_rows_reported,
        metrics={"out_of_range_share": share},
        report={"features": per_feature},
        total=count,
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
    return _judged(
        "integrity.feature_shift",
        violated=bool(violated),
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
