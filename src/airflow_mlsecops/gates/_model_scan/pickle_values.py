"""The symbolic values the pickle analyser (:mod:`.pickles`) pushes instead of the objects an unpickler builds.

Strings and small numbers are kept as themselves; everything else is a stand-in: an opaque payload
(:data:`BYTES`, :data:`LONG_STR`...), a :class:`Global` reference, the :class:`Obj` a call would
return, a :class:`Persistent` id or a :class:`SymSet` under construction. :func:`describe` names
any of them in a finding.
"""

from __future__ import annotations

from typing import Any

from airflow_mlsecops.gates._model_scan.allowlist import ALLOWED


class _Opaque:
    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


BYTES = _Opaque("bytes")
LONG_STR = _Opaque("long string")
BIG_INT = _Opaque("big integer")
BUFFER = _Opaque("out-of-band buffer")
FROZENSET = _Opaque("frozenset")


class Global:
    """A ``module.name`` reference (what ``find_class`` would import and return)."""

    __slots__ = ("offset", "ref")

    def __init__(self, ref: str, offset: int) -> None:
        self.ref = ref
        self.offset = offset

    def __repr__(self) -> str:
        return self.ref


#: Allow-listed callables that make an instance of the class given as their first argument, without
#: running its ``__init__`` (``copyreg``, and pandas' index reconstructors, which call ``cls.__new__``).
CLASS_FIRST = frozenset(
    {
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.indexes.datetimes._new_DatetimeIndex",
    }
)


class Obj:
    """What a call would return: ``func(*args)`` (``kind`` is the opcode that called it)."""

    __slots__ = ("args", "dtype", "fields", "func", "kind", "offset")

    def __init__(self, func: Any, args: Any, kind: str, offset: int) -> None:
        self.func = func
        self.args = args
        self.kind = kind
        self.offset = offset
        self.fields: dict[str, Any] | None = None
        self.dtype: Any = None  # the numpy dtype this describes, once rebuilt (reset by BUILD)

    def class_ref(self) -> str | None:
        """The class this object is an instance of, when the call makes one we can name."""
        func = self.func
        if not isinstance(func, Global):
            return None
        if func.ref in CLASS_FIRST:
            first = self.args[0] if isinstance(self.args, tuple) and self.args else None
            return first.ref if isinstance(first, Global) else None
        return func.ref

    def __repr__(self) -> str:
        return f"<result of {describe(self.func)}>"


class Persistent:
    __slots__ = ("pid",)

    def __init__(self, pid: Any) -> None:
        self.pid = pid


class SymSet(list[Any]):
    """A set under construction (``EMPTY_SET`` / ``ADDITEMS``)."""


def describe(value: Any) -> str:
    prefix = ""
    for _ in range(3):  # results of results of calls: name the first few, not a hostile chain
        if not isinstance(value, Obj):
            break
        prefix += "the result of calling "
        value = value.func
    else:
        return prefix + "a chain of calls"
    if isinstance(value, Global):
        return prefix + value.ref
    if prefix:
        return prefix + describe(value)
    if isinstance(value, Persistent):
        return "a persistent-id object"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"a {type(value).__name__ if not isinstance(value, _Opaque) else value.kind}"


#: Values of these types are never called nor imported by name: an unpickler given one raises.
_PLAIN = (int, float, complex, bytes, bytearray, tuple, list, dict, type(None))
_NOT_STR_OPAQUE = (BYTES, BIG_INT, BUFFER, FROZENSET)
_DATA = (str, _Opaque, *_PLAIN)  # every opaque stand-in is data too (bytes, long strings, big ints...)

#: Allow-listed classes named in lower case (every allow-listed name in CamelCase is a class too).
_LOWERCASE_CLASSES = frozenset(
    {
        *(f"builtins.{n}" for n in ("bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int")),
        *(f"builtins.{n}" for n in ("list", "object", "range", "set", "slice", "tuple")),
        "collections.defaultdict",
        "collections.deque",
        *(f"datetime.{n}" for n in ("date", "datetime", "time", "timedelta", "timezone")),
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.matrix",
        *(r for r in ALLOWED if r.startswith("scipy.sparse.") and r.endswith(("_array", "_matrix"))),
    }
)
#: Allow-listed classes: calling one (directly or through ``copyreg``) makes an instance of it, never a ``str``.
INSTANCE_CLASSES = frozenset(r for r in ALLOWED if r.rpartition(".")[2][:1].isupper()) | (_LOWERCASE_CLASSES & ALLOWED)


def never_exact_str(value: Any) -> bool:
    """True when ``value`` stands for an object that is certainly not of type ``str`` (``STACK_GLOBAL`` rejects it).

    Unknown results (of a function that may return a string), long strings and persistent ids are not.
    """
    if isinstance(value, str):
        return False
    if isinstance(value, _PLAIN) or any(value is v for v in _NOT_STR_OPAQUE):
        return True
    if isinstance(value, Global):
        return value.ref in ALLOWED  # an allow-listed class or function, never a module-level string
    if isinstance(value, Obj):
        return value.kind == "joblib-array" or value.class_ref() in INSTANCE_CLASSES
    return False


def never_callable(value: Any) -> bool:
    """True when ``value`` stands for plain data no unpickler can call (``REDUCE``, ``NEWOBJ``, ``OBJ`` raise)."""
    return isinstance(value, _DATA)
