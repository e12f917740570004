"""Column roles of a tabular data set: identifiers, label, prediction, timestamp and features.

The data gates compare *features*. An identifier (a running ``loan_id``), a timestamp, the model's
prediction and the label differ between any two batches by design; compared as features they fail
every range and shift check. :func:`resolve_roles` takes the roles a DAG declares and infers
identifier-like columns it did not declare, from the trusted reference:

- a name that says identifier (``id``, ``*_id``, ``*_key``, ``uuid``, ``*_uuid``) *and* values unique per row;
- an integer column whose values are unique and (nearly) consecutive: a running number;
- a string column unique per row whose values hold no whitespace (codes, UUIDs; free text stays a feature).

Inference is conservative: a float column is never taken for an identifier (a unique income is a
feature), nor a column of fewer than :data:`MIN_ROWS_TO_INFER` rows, nor a column that repeats
values. Every column left out carries its reason in :attr:`ColumnRoles.excluded`.

>>> import pandas as pd
>>> frame = pd.DataFrame({"loan_id": range(1, 101), "income": [1000.5 + i for i in range(100)], "approved": [0, 1] * 50})
>>> roles = resolve_roles(frame, label_column="approved")
>>> roles.id_columns, roles.numerical
(('loan_id',), ('income',))
>>> roles.reason("loan_id"), roles.reason("approved")
('name ends in _id and values are unique', 'declared --label-column')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

#: Fewer rows than this and no column is inferred to be an identifier (uniqueness means little).
MIN_ROWS_TO_INFER = 20
#: An integer column is a running number when its range spans at most this many times its row count.
MAX_RUNNING_SPAN = 1.1
_ID_NAME = re.compile(r"^(id|uuid|guid|key|pk)$|(_|-)(id|uuid|guid|key|pk)$|[a-z](Id|ID|Uuid|UUID|Key)$")
_MAX_ID_LENGTH = 64

ROLE_ID = "id"
ROLE_LABEL = "label"
ROLE_PREDICTION = "prediction"
ROLE_TIMESTAMP = "timestamp"
ROLE_NOT_A_FEATURE = "not a feature"


@dataclass(frozen=True)
class ExcludedColumn:
    """A column the distribution checks leave out, its role and why."""

    column: str
    role: str
    reason: str
    declared: bool

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "role": self.role, "reason": self.reason, "declared": self.declared}


@dataclass(frozen=True)
class ColumnRoles:
    """What each column of a data set is; :func:`resolve_roles` builds it."""

    id_columns: tuple[str, ...] = ()
    label_column: str | None = None
    prediction_column: str | None = None
    timestamp_column: str | None = None
    numerical: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    excluded: tuple[ExcludedColumn, ...] = ()
    features_declared: bool = False

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature column, in the reference's order within each kind."""
        return self.numerical + self.categorical + self.text

    @property
    def excluded_names(self) -> frozenset[str]:
        return frozenset(e.column for e in self.excluded)

    def reason(self, column: str) -> str | None:
        """Why ``column`` is left out of the distribution checks, or ``None`` if it is compared."""
        return next((e.reason for e in self.excluded if e.column == column), None)

    def summary_text(self) -> str:
        """``excluded: loan_id (id: unique running integer), approved (label: declared)`` or ``""``."""
        if not self.excluded:
            return ""
        return (
            "excluded: "
            + ", ".join(f"{e.column} ({e.role}: {e.reason})" for e in self.excluded[:8])
            + (", ..." if len(self.excluded) > 8 else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_columns": list(self.id_columns),
            "label_column": self.label_column,
            "prediction_column": self.prediction_column,
            "timestamp_column": self.timestamp_column,
            "features": {"numerical": list(self.numerical), "categorical": list(self.categorical), "text": list(self.text)},
            "features_declared": self.features_declared,
            "excluded": [e.to_dict() for e in self.excluded],
        }


def column_list(value: str | Iterable[str] | None, name: str) -> list[str] | None:
    """A list of column names from a list or a comma-separated string; ``None`` stays ``None``.

    :raises ConfigurationError: for something else, or a name that is not a non-empty string.
    """
    if value is None:
        return None
    if isinstance(value, str):
        items = [c.strip() for c in value.split(",") if c.strip()]
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        items = list(value)
    else:
        raise ConfigurationError(f"{name} must be a list of column names or a comma-separated string, not {value!r}")
    bad = [c for c in items if not isinstance(c, str) or not c.strip()]
    if bad:
        raise ConfigurationError(f"{name} holds {bad[0]!r}, not a column name")
    return list(dict.fromkeys(c.strip() for c in items))


def _single(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a column name, not {value!r}")
    return value.strip()


def declared_roles(
    *,
    id_columns: str | Sequence[str] | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """The roles given, as keyword arguments of :func:`resolve_roles` and :func:`check_role_arguments`:
    only those given (so the policy on record stays as it was without them), name lists as lists."""
    given = {
        "id_columns": id_columns,
        "label_column": label_column,
        "prediction_column": prediction_column,
        "timestamp_column": timestamp_column,
        "features": features,
    }
    return {key: list(value) if isinstance(value, (list, tuple)) else value for key, value in given.items() if value is not None}


def check_role_arguments(
    *,
    id_columns: str | Sequence[str] | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: str | Sequence[str] | None = None,
) -> None:
    """Validate the role arguments without data (an operator's ``__init__``, the policy on record).

    :raises ConfigurationError: for a malformed name or one column given two roles.
    """
    ids = column_list(id_columns, "id_columns") or []
    feats = column_list(features, "features")
    singles = {
        "label_column": _single(label_column, "label_column"),
        "prediction_column": _single(prediction_column, "prediction_column"),
        "timestamp_column": _single(timestamp_column, "timestamp_column"),
    }
    roles: dict[str, str] = {}
    for role, names in (("id_columns", ids), *((k, [v] if v else []) for k, v in singles.items())):
        for column in names:
            if column in roles:
                raise ConfigurationError(f"column {column!r} is given two roles: {roles[column]} and {role}")
            roles[column] = role
    if feats is not None:
        if not feats:
            raise ConfigurationError("features is empty; name the feature columns or leave it unset to use every other column")
        clash = [c for c in feats if c in roles]
        if clash:
            raise ConfigurationError(f"column {clash[0]!r} is in features and in {roles[clash[0]]}")


def _kind(series: pd.Series) -> str:
    from pandas.api import types as pdt

    if pdt.is_bool_dtype(series.dtype):
        return "categorical"
    if pdt.is_numeric_dtype(series.dtype) or pdt.is_datetime64_any_dtype(series.dtype) or pdt.is_timedelta64_dtype(series.dtype):
        return "numerical"
    values = series.dropna()
    many = len(values) >= MIN_ROWS_TO_INFER and values.nunique() > 0.5 * len(values)
    if many and values.astype(str).str.contains(r"\s").mean() > 0.5:
        return "text"
    return "categorical"


def infer_id_reason(series: pd.Series) -> str | None:
    """Why ``series`` looks like an identifier, or ``None`` when it may be a feature (the conservative answer)."""
    from pandas.api import types as pdt

    values = series.dropna()
    if len(values) < MIN_ROWS_TO_INFER or pdt.is_bool_dtype(series.dtype) or pdt.is_float_dtype(series.dtype):
        return None
    if pdt.is_datetime64_any_dtype(series.dtype) or pdt.is_timedelta64_dtype(series.dtype):
        return None
    if not values.is_unique:
        return None
    name = str(series.name)
    if _ID_NAME.search(name):
        if name.lower() in {"id", "uuid", "guid", "key", "pk"}:
            return f"name is {name} and values are unique"
        if "_" in name or "-" in name:
            return f"name ends in _{re.split('[_-]', name)[-1].lower()} and values are unique"
        return "name says identifier and values are unique"
    if pdt.is_integer_dtype(series.dtype):
        span = int(values.max()) - int(values.min()) + 1
        if span <= MAX_RUNNING_SPAN * len(values):
            return "unique running integer"
        return None
    if series.dtype == object or pdt.is_string_dtype(series.dtype):
        text = values.astype(str)
        if not text.str.contains(r"\s").any() and int(text.str.len().max()) <= _MAX_ID_LENGTH:
            return "string unique per row"
    return None


def resolve_roles(
    reference: pd.DataFrame,
    *,
    id_columns: str | Sequence[str] | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: str | Sequence[str] | None = None,
    ignore: Iterable[str] = (),
    infer: bool = True,
) -> ColumnRoles:
    """The role of each column of ``reference`` (the trusted data): the declared ones, then inferred identifiers.

    :param reference: the trusted reference frame (column labels as strings).
    :param id_columns: identifier columns (list or comma-separated string): checked for uniqueness, not compared.
    :param label_column: the label (target); the label checks judge it, the feature checks do not.
    :param prediction_column: the model's output column, never compared as a feature.
    :param timestamp_column: the time of each row, never compared as a feature.
    :param features: the feature columns; given, every other column is left out (reason ``not in features``)
        and no identifier is inferred among them.
    :param ignore: columns the caller drops altogether (not reported here).
    :param infer: infer identifier-like columns that were not declared.
    :raises ConfigurationError: for malformed names, a column with two roles, or a declared column missing
        from the reference (the label may be missing: a reference without labels has no label checks).
    """
    check_role_arguments(
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=features,
    )
    ids = column_list(id_columns, "id_columns") or []
    feats = column_list(features, "features")
    label, prediction, timestamp = (
        _single(label_column, "label_column"),
        _single(prediction_column, "prediction_column"),
        _single(timestamp_column, "timestamp_column"),
    )
    every = [str(c) for c in reference.columns]
    columns = [c for c in every if c not in set(ignore)]
    # the label, prediction and timestamp may be absent from the reference (a training set has no predictions)
    declared_missing = [c for c in [*ids, *(feats or [])] if c not in every]
    ids = [c for c in ids if c in columns]  # an ignored column is not judged at all
    if declared_missing:
        raise ConfigurationError(f"column {declared_missing[0]!r} is declared but the reference has no such column")
    excluded: list[ExcludedColumn] = []
    excluded += [ExcludedColumn(c, ROLE_ID, "declared --id-column", True) for c in ids]
    for role, column in ((ROLE_LABEL, label), (ROLE_PREDICTION, prediction), (ROLE_TIMESTAMP, timestamp)):
        if column and column in columns:
            excluded.append(ExcludedColumn(column, role, f"declared --{role}-column", True))
    taken = {e.column for e in excluded}
    inferred_ids: list[str] = []
    kinds: dict[str, list[str]] = {"numerical": [], "categorical": [], "text": []}
    for column in columns:
        if column in taken:
            continue
        if feats is not None:
            if column not in feats:
                excluded.append(ExcludedColumn(column, ROLE_NOT_A_FEATURE, "not in the declared --features", True))
                continue
        elif infer:
            why = infer_id_reason(reference[column])
            if why is not None:
                excluded.append(ExcludedColumn(column, ROLE_ID, why, False))
                inferred_ids.append(column)
                continue
        kinds[_kind(reference[column])].append(column)
    if inferred_ids and not any(kinds.values()):
        # Every remaining column looks like an identifier: a data set of ids alone makes no sense, so the
        # guess is dropped and they are compared as features (fail closed: compare rather than skip).
        excluded = [e for e in excluded if e.column not in set(inferred_ids)]
        for column in inferred_ids:
            kinds[_kind(reference[column])].append(column)
        inferred_ids = []
    return ColumnRoles(
        id_columns=tuple(ids + inferred_ids),
        label_column=label,
        prediction_column=prediction,
        timestamp_column=timestamp,
        numerical=tuple(kinds["numerical"]),
        categorical=tuple(kinds["categorical"]),
        text=tuple(kinds["text"]),
        excluded=tuple(excluded),
        features_declared=feats is not None,
    )


#: The roles a policy's ``excluded_columns`` bounds in data-integrity (the label keeps its own checks there).
EXCLUDING_ROLES = ("id_columns", "prediction_column", "timestamp_column")


def declared_exclusions(roles: Mapping[str, Any] | None, keys: Sequence[str] = EXCLUDING_ROLES) -> list[str]:
    """The columns declared out of the feature checks by the roles named in ``keys``, in the order declared
    (what policy ``excluded_columns`` bounds); a malformed value is shown as given (the gate reports the error)."""
    out: list[str] = []
    for key in keys:
        try:
            names = column_list((roles or {}).get(key), key) or []
        except ConfigurationError:
            names = [repr((roles or {}).get(key))]
        out.extend(n for n in names if n not in out)
    return out
