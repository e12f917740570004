"""Checks for repeated rows: ``integrity.identifiers``, ``integrity.duplicates`` and ``integrity.near_duplicates``.

``integrity.identifiers``
    Identifier columns (declared with ``id_columns`` or recognised, see
    :mod:`airflow_mlsecops.gates.columns`) are not compared as features; in the batch every
    identifier must be present and unique. Any repeated or missing identifier fails the check (a
    replayed or hand-inserted row). Without identifier columns the check passes with nothing to do.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.data_integrity.results import _Check, _judged, _pct, _rows_text, _skipped
from airflow_mlsecops.gates.data_integrity.schema import _Frames, _keys, _model_values, _numeric
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_MISSING_SENTINEL = 1e9


def _reference_sample(frames: _Frames, size: int) -> pd.DataFrame:
    import numpy as np

    reference = frames.reference
    if len(reference) <= size:
        return reference
    rng = np.random.default_rng(frames.random_state)
    return reference.iloc[np.sort(rng.choice(len(reference), size, replace=False))]


def _identifiers(frames: _Frames) -> _Check:
    import numpy as np

    th = frames.thresholds
    ids = frames.ids or []
    if not ids:
        return _judged(
            "integrity.identifiers",
            violated=False,
            message="no identifier column in the batch: nothing to check",
            value=0.0,
            threshold=0.0,
            location=None,
            metrics={"identifier_problems": 0.0},
            report={"id_columns": []},
        )
    bad = np.zeros(len(frames.batch), dtype=bool)
    per_column: dict[str, dict[str, int]] = {}
    for column in ids:
        series = frames.batch[column]
        missing = series.isna().to_numpy()
        repeated = (series.duplicated(keep="first") & ~series.isna()).to_numpy()
        per_column[column] = {"missing": int(missing.sum()), "repeated": int(repeated.sum())}
        bad |= missing | repeated
    rows = np.flatnonzero(bad)
    return _identifiers_result(rows, len(rows), len(frames.batch), ids, per_column, th)


def _identifiers_result(
    rows: Sequence[int] | np.ndarray,
    count: int,
    total: int,
    ids: list[str],
    per_column: dict[str, dict[str, int]],
    th: IntegrityThresholds,
) -> _Check:
    """``integrity.identifiers`` from the first rows with a repeated or missing identifier (``count`` of ``total`` in all)."""
    problems = [
        f"{column}: {info['repeated']} repeated, {info['missing']} missing"
        for column, info in per_column.items()
        if info["missing"] or info["repeated"]
    ]
    message = (
        f"{count} of {total} rows have a repeated or missing identifier ({'; '.join(problems)})"
        if count
        else f"every identifier is present and unique ({', '.join(ids)})"
    )
    return _judged(
        "integrity.identifiers",
        violated=bool(count),
        message=message,
        value=float(count),
        threshold=0.0,
        location=(
            f"column {next(c for c, i in per_column.items() if i['missing'] or i['repeated'])}, "
            + str(_rows_text(rows, total=count))
        )
        if count
        else None,
        rows=rows,
        cap=th.max_rows_reported,
        metrics={"identifier_problems": float(count)},
        report={"id_columns": ids, "columns": per_column},
        total=count,
    )


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
    ref_sample = _reference_sample(frames, len(batch))[columns]
    ref_share = float(ref_sample.duplicated(keep="first").mean())
    pairs: list[list[int]] = []
    if len(rows):
        codes = pd.util.hash_pandas_object(batch, index=False).to_numpy()
        _, first_index, inverse = np.unique(codes, return_index=True, return_inverse=True)
        first = first_index[inverse]
        pairs = [[int(r), int(first[r])] for r in rows[: th.max_rows_reported]]
    return _duplicates_result(rows, len(rows), len(batch), ref_share, len(ref_sample), pairs, th)


def _duplicates_result(
    rows: Sequence[int] | np.ndarray,
    count: int,
    total: int,
    ref_share: float,
    ref_rows: int,
    pairs: list[list[int]],
    th: IntegrityThresholds,
    how: str | None = None,
) -> _Check:
    """``integrity.duplicates`` from the first repeated rows (``count`` of ``total`` in all), the reference's
    share in ``ref_rows`` sampled rows and the first ``[row, first_row]`` pairs; ``how`` says how rows were compared."""
    share = count / total
    excess = share - ref_share
    violated = excess > th.max_duplicate_share
    message = (
        f"{count} of {total} rows ({_pct(share)}) repeat an earlier row exactly; the reference has {_pct(ref_share)}, "
        f"excess {_pct(excess)} (limit {_pct(th.max_duplicate_share)})"
    )
    report: dict[str, Any] = {
        "batch_share": share,
        "reference_share": ref_share,
        "reference_rows_sampled": ref_rows,
        "pairs": pairs,
    }
    if how:
        report["method"] = how
    return _judged(
        "integrity.duplicates",
        violated=violated,
        message=message,
        value=excess,
        threshold=th.max_duplicate_share,
        location=_rows_text(rows, total=count),
        rows=rows,
        cap=th.max_rows_reported,
        metrics={"duplicate_share": share, "duplicate_excess": excess},
        report=report,
        total=count,
    )


def _feature_matrix(frame: pd.DataFrame, frames: _Frames, radius: float) -> np.ndarray:
    """Features standardised by the reference; categorical features folded into one exact-match axis."""
    import numpy as np
    import pandas as pd

    columns: list[np.ndarray] = []
    categorical: list[pd.Series] = []
    for feature in frames.features:
        if feature.numeric:
            ref_values = _model_values(frames.reference[feature.name], feature.kind)
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
    return _judged(
        "integrity.near_duplicates",
        violated=violated,
        message=message,
        value=excess,
        threshold=th.max_near_duplicate_share,
        location=_rows_text(rows),
        rows=rows,
        cap=th.max_rows_reported,
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
