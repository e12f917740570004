"""Which columns the drift gate compares (column roles), and the checks on the two frames before it does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.columns import ColumnRoles, column_list, resolve_roles
from airflow_mlsecops.gates.empty_data import emptiness, empty_batch_error, empty_reference_error

if TYPE_CHECKING:
    import pandas as pd

ROLE_KEYS = ("id_columns", "label_column", "prediction_column", "timestamp_column")


def select_columns(
    reference: pd.DataFrame,
    current_columns: Sequence[str],
    columns: Sequence[str] | str | None,
    roles: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[str], ColumnRoles]:
    """The feature columns to compare, the features the current batch lacks, and the column roles.

    ``columns`` given (and no ``features``): exactly those are the features. Otherwise the features are the
    reference's columns without a role (identifiers declared or recognised, label, prediction, timestamp).
    Every name in ``columns`` must then be a feature. A label, prediction or timestamp absent from the
    current batch is not compared and no problem; a feature absent from it is a finding (the caller's).

    :param reference: the reference rows the roles are resolved on (all of them, or the first streamed batch).
    :param current_columns: the current batch's columns.
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
        for role in ROLE_KEYS:
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
    present = {str(c) for c in current_columns}
    features = [c for c in (str(c) for c in reference.columns) if c in column_roles.features]
    selected = [c for c in features if c in present]
    absent = [c for c in features if c not in present]
    if not selected:
        raise GateError(
            f"the current data has no column {', '.join(map(repr, absent[:10]))}: it shares no feature with the reference"
        )
    return selected, absent, column_roles


def check_frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    names: tuple[str, str],
    *,
    allow_empty: bool = False,
    values: tuple[Mapping[str, int], Mapping[str, int]] | None = None,
) -> None:
    """Refuse frames the comparison cannot judge: empty, a column without values, a column numeric in one only.

    :param reference: the reference rows (all, or a streamed sample).
    :param current: the current batch's rows (all, or a streamed sample).
    :param values: for samples, the values present per column counted over every row of each side
        (otherwise counted on the frames).
    """
    import pandas as pd

    nothing = emptiness(reference)
    if nothing:
        raise empty_reference_error(f"the reference {names[0]}", nothing)
    nothing = emptiness(current)
    if nothing and not allow_empty:
        raise empty_batch_error(f"the current batch {names[1]}", nothing)
    for index, (label, frame, name) in enumerate((("reference", reference, names[0]), ("current batch", current, names[1]))):
        if len(frame) == 0:
            continue  # an empty current batch that allow_empty accepts: it has no values to judge
        if values is not None:
            empty = [c for c in columns if values[index][c] == 0]
        else:
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
