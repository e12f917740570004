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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.data_integrity.results import (
    _by_column,
    _Check,
    _column_rows_location,
    _judged,
    _pct,
    _skipped,
)
from airflow_mlsecops.gates.data_integrity.schema import _Frames, _keys, _model_values, _numeric, _unrepresentable

if TYPE_CHECKING:
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


def _out_of_range(frames: _Frames) -> _Check:
    import numpy as np

    th = frames.thresholds
    if not frames.features:
        return _skipped("integrity.out_of_range", "batch and reference share no comparable feature column")
    any_out = np.zeros(len(frames.batch), dtype=bool)
    per_feature: dict[str, dict[str, Any]] = {}
    for feature in frames.features:
        if feature.numeric:
            ref_values = _model_values(frames.reference[feature.name], feature.kind)
            values = _numeric(frames.batch[feature.name], feature.kind)
            non_finite = _unrepresentable(values)  # integrity.non_finite judges these, not this check
            values[non_finite] = np.nan
            finite = ref_values[~np.isnan(ref_values)]
            if not len(finite):
                per_feature[feature.name] = {"skipped": "the reference has no finite values"}
                continue
            low, high = float(finite.min()), float(finite.max())
            spread = high - low or max(abs(high), 1.0)
            lo, hi = low - th.range_tolerance * spread, high + th.range_tolerance * spread
            missing = np.isnan(values) & ~non_finite
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
    counted_text, worst = _by_column(counted)
    violated = share > th.max_out_of_range_share
    message = (
        f"{len(rows)} of {len(frames.batch)} rows ({_pct(share)}) hold a value outside the reference's range "
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
        location=_column_rows_location(worst, rows),
        rows=rows,
        cap=th.max_rows_reported,
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
