"""Column kinds and values, the frames every check shares, and the ``integrity.schema`` check.

``integrity.schema``
    Columns added to or removed from the batch, and columns whose kind changed (integer, float,
    bool, datetime, string). A float column whose values are all whole numbers still matches an
    integer reference column (a CSV integer column with a missing value is read as float); an
    integer batch column matches a float reference column. The other checks run on the shared
    columns of unchanged kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_mlsecops.gates.columns import ColumnRoles
from airflow_mlsecops.gates.data_integrity.results import _Check, _judged
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_NUMERIC_KINDS = ("integer", "float", "datetime", "timedelta")
_FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max: scikit-learn's trees compute in float32


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


def _unrepresentable(values: np.ndarray) -> np.ndarray:
    """Where numeric values are infinite or too large for float32 (the forest's input type): present, not usable."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        return ~np.isnan(values) & ~(np.abs(values) <= _FLOAT32_MAX)


def _model_values(series: pd.Series, kind: str) -> np.ndarray:
    """Numeric feature values every model and statistic can take: non-finite and unrepresentable values become NaN."""
    import numpy as np

    values = _numeric(series, kind)
    values[_unrepresentable(values)] = np.nan
    return values


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
    """Category keys, ``None`` where the value is missing.

    Computed once per distinct value where that is safe: a column of text is its own keys, a column of
    one number or bool dtype maps its distinct values (an ``object`` column mixing ``True`` and ``1``,
    which compare equal, is mapped value by value).
    """
    import numpy as np
    import pandas as pd
    from pandas.api.types import infer_dtype

    mask = series.isna()
    if series.dtype == object and infer_dtype(series, skipna=True) in ("string", "empty"):
        keys = series.astype(object)
    elif series.dtype != object and not isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        table = np.array([_key(u) for u in uniques] + [None], dtype=object)  # code -1 (missing): the last, None
        keys = pd.Series(table[codes], index=series.index, dtype=object)
    else:
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
    shared: list[str]  # shared, not ignored, not excluded by role: label and features and kind-changed columns
    thresholds: IntegrityThresholds
    random_state: int
    roles: ColumnRoles | None = None
    ids: list[str] | None = None  # identifier columns in the batch (checked for uniqueness and missing values)


def _schema(
    batch: pd.DataFrame,
    reference: pd.DataFrame,
    label: str | None,
    th: IntegrityThresholds,
    roles: ColumnRoles | None = None,
) -> tuple[_Check, _Frames]:
    check, features, shared, ids = _schema_of(
        [str(c) for c in batch.columns],
        [str(c) for c in reference.columns],
        ref_kind=lambda column: _kind(reference[column]),
        batch_kind=lambda column: _kind(batch[column]),
        compatible=lambda column, ref_kind: _compatible(ref_kind, batch[column]),
        label=label,
        th=th,
        roles=roles,
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
        roles=roles,
        ids=ids,
    )
    return check, frames


def _schema_of(
    batch_columns: list[str],
    reference_columns: list[str],
    *,
    ref_kind: Callable[[str], str],
    batch_kind: Callable[[str], str],
    compatible: Callable[[str, str], bool],
    label: str | None,
    th: IntegrityThresholds,
    roles: ColumnRoles | None,
) -> tuple[_Check, list[_Feature], list[str], list[str]]:
    """``integrity.schema`` from the two column lists and each column's kind (whole frames or streamed
    statistics alike): the check, the comparable features, the shared columns and the batch's identifier columns."""
    ignored = set(th.ignore_columns)
    # Columns with a role other than feature or label are not compared; a label or such a column
    # absent from the batch is no schema change (a production batch carries no label).
    by_role = set(roles.excluded_names) - {label} if roles is not None else set()
    if roles is not None:
        by_role |= {c for c in (roles.prediction_column, roles.timestamp_column) if c}
    ref_all = [c for c in reference_columns if c not in ignored]
    batch_all = [c for c in batch_columns if c not in ignored]
    ref_cols = [c for c in ref_all if c not in by_role]
    batch_cols = [c for c in batch_all if c not in by_role]
    removed = [c for c in ref_cols if c not in batch_cols and c != label]
    added = [c for c in batch_cols if c not in ref_cols and c != label]
    shared = [c for c in ref_cols if c in batch_cols]
    absent_by_role = [c for c in ref_all if c not in batch_all and (c in by_role or c == label)]
    changed: list[dict[str, str]] = []
    features: list[_Feature] = []
    for column in shared:
        kind = ref_kind(column)
        if not compatible(column, kind):
            changed.append({"column": column, "reference": kind, "batch": batch_kind(column)})
            continue
        if column != label:
            features.append(_Feature(column, kind, kind in _NUMERIC_KINDS))
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
    if by_role:
        message += f" ({len(by_role)} column(s) excluded by role: {', '.join(sorted(by_role)[:6])})"
    if absent_by_role:
        message += f"; absent from the batch, not a feature: {', '.join(absent_by_role[:6])}"
    check = _judged(
        "integrity.schema",
        violated=violated,
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
            "columns_excluded_by_role": sorted(c for c in by_role if c in ref_all or c in batch_all),
            "columns_absent_from_batch_by_role": absent_by_role,
            "columns_compared": [f.name for f in features],
            "column_kinds": {f.name: f.kind for f in features},
        },
    )
    ids = [c for c in (roles.id_columns if roles is not None else ()) if c in batch_all]
    return check, features, shared, ids
