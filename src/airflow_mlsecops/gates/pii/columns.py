"""Which columns are scanned and how: the allow list, a column's scan mode, a text column as an Arrow array.

Text columns (object, string, categorical) are scanned for every selected type; integer and float
columns for card and phone numbers only; boolean, date/time and other columns are not scanned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def _columns(allow_columns: Iterable[str] | str) -> tuple[str, ...]:
    """The allow list as distinct, stripped names in the order given (``"a, b"`` or a list)."""
    if isinstance(allow_columns, str):
        allow_columns = allow_columns.split(",")
    return tuple(dict.fromkeys(str(name).strip() for name in allow_columns if str(name).strip()))


def _column_mode(column: pd.Series) -> str:
    """How a column is scanned: ``text``, ``numeric`` (card and phone numbers) or ``skipped``."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "skipped"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return "text"
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return "numeric"
    return "skipped"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def _text_array(column: pd.Series) -> Any:
    """The column as an Arrow string array (nulls for missing values; other objects stringified)."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is None or not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        values = [None if _is_missing(v) else v if isinstance(v, str) else str(v) for v in column.to_numpy(dtype=object)]
        array = pa.array(values, type=pa.large_string())
    return array
