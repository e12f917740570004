"""Column roles in the data validation gate: the expectations the gate adds to the user's suite.

* every declared identifier, label, timestamp and feature column must exist in the batch
  (``expect_column_to_exist``): a training batch without its label is a finding, not a pass;
* every identifier column, declared or inferred (:func:`~airflow_mlsecops.gates.columns.resolve_roles`),
  must be unique per row and never missing (``expect_column_values_to_be_unique``,
  ``expect_column_values_to_not_be_null``).

The prediction column may be absent (a training batch has no predictions). The expectations run
in the same Great Expectations validation as the suite; each carries ``meta.mlsecops_role`` and
its finding id starts with ``column-role.``. One already in the suite (same type, same kwargs) is
not added twice.

Identifiers are inferred from the batch itself (there is no trusted reference here), so only a
column that is unique in this batch can be inferred: a repeated identifier is caught for
*declared* identifier columns. Declare them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_mlsecops.gates.columns import (
    _ID_NAME,
    _MAX_ID_LENGTH,
    MAX_RUNNING_SPAN,
    MIN_ROWS_TO_INFER,
    ROLE_ID,
    ROLE_LABEL,
    ROLE_NOT_A_FEATURE,
    ROLE_PREDICTION,
    ROLE_TIMESTAMP,
    ColumnRoles,
    ExcludedColumn,
    column_list,
)

ROLE_META_KEY = "mlsecops_role"
FINDING_PREFIX = "column-role."
ROLE_FEATURE = "feature"
ROLE_KEYS = ("id_columns", "label_column", "prediction_column", "timestamp_column", "features")


@dataclass(frozen=True)
class RolePlan:
    """The roles of the batch's columns, the expectations they add, and the declared columns it lacks."""

    roles: ColumnRoles
    expectations: tuple[dict[str, Any], ...]
    missing: tuple[str, ...]
    already_in_suite: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.roles.to_dict(),
            "missing_from_batch": list(self.missing),
            "expectations_added": [
                {"type": e["type"], "column": e["kwargs"]["column"], "role": e["meta"][ROLE_META_KEY]} for e in self.expectations
            ],
            "already_in_suite": list(self.already_in_suite),
        }


def _expectation(kind: str, column: str, role: str) -> dict[str, Any]:
    return {"type": kind, "kwargs": {"column": column}, "meta": {ROLE_META_KEY: role}}


def plan_roles(columns: Sequence[str], declared: Mapping[str, Any], suite: Mapping[str, Any], infer: Any) -> RolePlan:
    """Resolve the roles of a batch with ``columns`` and the expectations they add to ``suite``.

    :param declared: the declared roles (:func:`~airflow_mlsecops.gates.columns.declared_roles`), checked already.
    :param infer: ``infer(**kwargs) -> ColumnRoles``: the engine's role resolver, called with the
        declared roles of the columns present (missing ones are findings, not configuration errors).
    """
    present = set(columns)
    ids = column_list(declared.get("id_columns"), "id_columns") or []
    feats = column_list(declared.get("features"), "features")
    expected: list[tuple[str, str]] = [(c, ROLE_ID) for c in ids]
    for key, role in (("label_column", ROLE_LABEL), ("timestamp_column", ROLE_TIMESTAMP)):
        if declared.get(key):
            expected.append((str(declared[key]).strip(), role))
    expected += [(c, ROLE_FEATURE) for c in feats or []]
    kwargs = dict(declared)
    if "id_columns" in kwargs:
        kwargs["id_columns"] = [c for c in ids if c in present]
    if feats is not None:
        kept = [c for c in feats if c in present]
        kwargs["features"] = kept or None  # none present: every column is compared, and nothing is inferred
    roles: ColumnRoles = infer(**kwargs, infer=bool(feats is None or kwargs["features"]))
    planned = [_expectation("expect_column_to_exist", column, role) for column, role in expected]
    for column in roles.id_columns:
        planned.append(_expectation("expect_column_values_to_be_unique", column, ROLE_ID))
        planned.append(_expectation("expect_column_values_to_not_be_null", column, ROLE_ID))
    in_suite = {(str(e.get("type")), repr(sorted(dict(e.get("kwargs") or {}).items()))) for e in suite.get("expectations", [])}
    added, already = [], []
    for item in planned:
        if (item["type"], repr(sorted(item["kwargs"].items()))) in in_suite:
            already.append(f"{item['type']}({item['kwargs']['column']})")
        elif item not in added:
            added.append(item)
    missing = tuple(column for column, _ in expected if column not in present)
    return RolePlan(roles=roles, expectations=tuple(added), missing=missing, already_in_suite=tuple(already))


# ----------------------------------------------------------------------------- roles of a Spark DataFrame


def spark_roles(frame: Any, *, infer: bool = True, ignore: Sequence[str] = (), **declared: Any) -> ColumnRoles:
    """:func:`~airflow_mlsecops.gates.columns.resolve_roles` for a Spark DataFrame: the same rules and
    reasons, computed with one aggregation over the candidate columns (integers and strings) instead
    of pandas; the rest of the data never leaves Spark. Features are classed by Spark type (strings
    as categorical: free text is not told apart here)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    ids = column_list(declared.get("id_columns"), "id_columns") or []
    feats = column_list(declared.get("features"), "features")
    singles = {
        role: declared.get(key)
        for key, role in (
            ("label_column", ROLE_LABEL),
            ("prediction_column", ROLE_PREDICTION),
            ("timestamp_column", ROLE_TIMESTAMP),
        )
    }
    types = {f.name: f.dataType for f in frame.schema.fields if f.name not in set(ignore)}
    excluded = [ExcludedColumn(c, ROLE_ID, "declared --id-column", True) for c in ids if c in types]
    for role, column in singles.items():
        if column and column in types:
            excluded.append(ExcludedColumn(column, role, f"declared --{role}-column", True))
    taken = {e.column for e in excluded}
    integral = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
    candidates = [
        c for c, t in types.items() if c not in taken and feats is None and infer and isinstance(t, (*integral, T.StringType))
    ]
    stats: dict[str, Any] = {}
    if candidates:
        aggs = []
        for i, column in enumerate(candidates):
            col = F.col(f"`{column}`")
            aggs += [F.count(col).alias(f"n{i}"), F.countDistinct(col).alias(f"d{i}")]
            if isinstance(types[column], T.StringType):
                aggs += [F.max(F.length(col)).alias(f"l{i}"), F.max(col.rlike(r"\s").cast("int")).alias(f"w{i}")]
            else:
                aggs += [F.min(col).alias(f"lo{i}"), F.max(col).alias(f"hi{i}")]
        stats = frame.agg(F.count(F.lit(1)).alias("rows"), *aggs).collect()[0].asDict()
    kinds: dict[str, list[str]] = {"numerical": [], "categorical": [], "text": []}
    inferred: list[str] = []
    for column, dtype in types.items():
        if column in taken:
            continue
        if feats is not None and column not in feats:
            excluded.append(ExcludedColumn(column, ROLE_NOT_A_FEATURE, "not in the declared --features", True))
            continue
        why = _spark_id_reason(column, dtype, candidates, stats) if column in candidates else None
        if why is not None:
            excluded.append(ExcludedColumn(column, ROLE_ID, why, False))
            inferred.append(column)
            continue
        kinds[_spark_kind(dtype)].append(column)
    if inferred and not any(kinds.values()):  # as resolve_roles: a data set of identifiers alone is compared
        excluded = [e for e in excluded if e.column not in set(inferred)]
        for column in inferred:
            kinds[_spark_kind(types[column])].append(column)
        inferred = []
    return ColumnRoles(
        id_columns=tuple([c for c in ids if c in types] + inferred),
        label_column=singles[ROLE_LABEL],
        prediction_column=singles[ROLE_PREDICTION],
        timestamp_column=singles[ROLE_TIMESTAMP],
        numerical=tuple(kinds["numerical"]),
        categorical=tuple(kinds["categorical"]),
        text=tuple(kinds["text"]),
        excluded=tuple(excluded),
        features_declared=feats is not None,
    )


def _spark_kind(dtype: Any) -> str:
    from pyspark.sql import types as T

    numeric = isinstance(dtype, (T.NumericType, T.DateType, T.TimestampType, T.TimestampNTZType, T.DayTimeIntervalType))
    return "numerical" if numeric and not isinstance(dtype, T.BooleanType) else "categorical"


def _spark_id_reason(column: str, dtype: Any, candidates: Sequence[str], stats: Mapping[str, Any]) -> str | None:
    """The reason :func:`~airflow_mlsecops.gates.columns.infer_id_reason` would give, from Spark aggregates."""
    import re

    from pyspark.sql import types as T

    i = candidates.index(column)
    count, distinct = int(stats[f"n{i}"] or 0), int(stats[f"d{i}"] or 0)
    if count < MIN_ROWS_TO_INFER or distinct != count:
        return None
    if not isinstance(dtype, T.StringType) and count < int(stats["rows"]):
        return None  # an integer column with missing values is float in pandas, and floats are never identifiers
    if _ID_NAME.search(column):
        if column.lower() in {"id", "uuid", "guid", "key", "pk"}:
            return f"name is {column} and values are unique"
        if "_" in column or "-" in column:
            return f"name ends in _{re.split('[_-]', column)[-1].lower()} and values are unique"
        return "name says identifier and values are unique"
    if isinstance(dtype, T.StringType):
        return "string unique per row" if not stats[f"w{i}"] and int(stats[f"l{i}"] or 0) <= _MAX_ID_LENGTH else None
    span = int(stats[f"hi{i}"]) - int(stats[f"lo{i}"]) + 1
    return "unique running integer" if span <= MAX_RUNNING_SPAN * count else None
