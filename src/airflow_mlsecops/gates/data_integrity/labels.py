"""Checks of the label column: ``integrity.label_shift`` and ``integrity.class_set``.

``integrity.label_shift``
    Total variation distance (half the L1 distance) between the class shares of batch and reference.
``integrity.class_set``
    Classes in the batch that the reference never had, and reference classes absent from the batch
    (counted only if the batch is large enough to expect at least 5 rows of that class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_mlsecops.gates.data_integrity.distribution import _class_shares, _contingency_p, _tvd
from airflow_mlsecops.gates.data_integrity.results import _Check, _judged, _pct, _rows_text, _skipped
from airflow_mlsecops.gates.data_integrity.schema import _Frames, _keys
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_MIN_EXPECTED_ROWS = 5  # a reference class counts as missing only if the batch should hold this many of it


def _label_reason(label: str | None, batch: pd.DataFrame, reference: pd.DataFrame, ignored: Sequence[str]) -> str | None:
    if label is None:
        return "no label column was given (label_column)"
    if label in ignored:
        return f"the label column {label!r} is in ignore_columns"
    if label not in reference.columns:
        return f"the label column {label!r} is missing from the reference"
    if label not in batch.columns:
        return f"the label column {label!r} is missing from the batch (a production batch without labels)"
    return None


def _label_checks(frames: _Frames) -> list[_Check]:
    import numpy as np

    assert frames.label is not None
    batch_keys = _keys(frames.batch[frames.label])
    batch_counts, ref_counts = _class_shares(batch_keys), _class_shares(_keys(frames.reference[frames.label]))
    new = sorted(set(batch_counts) - set(ref_counts))
    new_rows = np.flatnonzero(batch_keys.isin(new).to_numpy()) if new else np.array([], dtype=int)
    return _label_results(
        batch_counts, ref_counts, int(batch_keys.isna().sum()), new_rows, len(new_rows), frames.label, frames.thresholds
    )


def _label_results(
    batch_counts: dict[str, int],
    ref_counts: dict[str, int],
    missing_labels: int,
    new_rows: Sequence[int] | np.ndarray,
    new_rows_count: int,
    label: str,
    th: IntegrityThresholds,
) -> list[_Check]:
    """``integrity.label_shift`` and ``integrity.class_set`` from the class counts of batch and reference, the
    batch rows without a label and the first batch rows of a class the reference never had (``new_rows_count`` in all)."""
    labelled_batch, labelled_ref = sum(batch_counts.values()), sum(ref_counts.values())
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
    shift = _judged(
        "integrity.label_shift",
        violated=shift_violated,
        message=message,
        value=tvd,
        threshold=th.max_label_shift,
        location=f"column {label}",
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
    class_set = _judged(
        "integrity.class_set",
        violated=violated,
        message=message,
        value=float(len(new) + len(missing)),
        threshold=float(th.max_new_classes + th.max_missing_classes),
        location=_rows_text(new_rows, total=new_rows_count) or f"column {label}",
        rows=new_rows,
        cap=th.max_rows_reported,
        total=new_rows_count,
        metrics={"new_classes": float(len(new)), "missing_classes": float(len(missing))},
        report={"new_classes": new, "missing_classes": missing, "absent_but_rare": rare},
    )
    return [shift, class_set]
