"""Sizing joblib's raw array blocks: the element count of a symbolic shape and the numpy dtype it names.

joblib writes each numpy array as a ``NumpyArrayWrapper`` followed by the array's raw bytes; the
pickle analyser (:mod:`.pickles`) skips exactly as many bytes as ``joblib.load`` would read, so the
count and dtype are computed here the way joblib and numpy compute them.
"""

from __future__ import annotations

from typing import Any

from airflow_mlsecops.gates._model_scan.pickle_values import Global, Obj, describe


def shape_count(shape: Any) -> int | None:
    """joblib's element count: the int64 product of the dims (None when it would fail or overflow)."""
    if not isinstance(shape, (tuple, list)):
        return None
    count = 1
    for dim in shape:
        if isinstance(dim, bool):
            dim = int(dim)
        if not isinstance(dim, int) or not -(2**63) <= dim < 2**63:
            return None
        count *= dim
    if not 0 <= count < 2**63:
        return None
    return count


def rebuild_dtype(value: Any, depth: int = 0) -> Any:
    """Build, with numpy, the dtype a pickled ``numpy.dtype(...)`` call and its BUILD state describe.

    Only plain values reach numpy (strings, ints, tuples, dicts and dtypes rebuilt the same way);
    the copy flag is forced on so numpy's shared dtype singletons are never modified.
    """
    import numpy as np

    if depth > 16:
        raise ValueError("dtype nesting too deep")
    if isinstance(value, Obj) and isinstance(value.func, Global) and value.func.ref == "numpy.dtype":
        if value.dtype is not None:
            return value.dtype
        args = value.args if isinstance(value.args, tuple) else ()
        if not args or not isinstance(args[0], str):
            raise ValueError("numpy.dtype without a type string")
        align = bool(args[1]) if len(args) > 1 and isinstance(args[1], (bool, int)) else False
        dtype = np.dtype(args[0], align, True)
        state = (value.fields or {}).get("__state__")
        if state is not None:
            dtype.__setstate__(_plain(state, depth + 1))  # type: ignore[attr-defined]
        value.dtype = dtype
        return dtype
    raise ValueError(f"not a numpy dtype: {describe(value)}")


def _plain(value: Any, depth: int) -> Any:
    if isinstance(value, (str, int, float, bytes)) or value is None:
        return value
    if isinstance(value, tuple):
        return tuple(_plain(v, depth) for v in value)
    if isinstance(value, list):
        return [_plain(v, depth) for v in value]
    if isinstance(value, dict):
        return {_plain(k, depth): _plain(v, depth) for k, v in value.items()}
    if isinstance(value, Obj):
        return rebuild_dtype(value, depth)
    raise ValueError(f"cannot use {describe(value)} in a dtype")
