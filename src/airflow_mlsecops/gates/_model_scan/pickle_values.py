"""The symbolic values the pickle analyser (:mod:`.pickles`) pushes instead of the objects an unpickler builds.

Strings and small numbers are kept as themselves; everything else is a stand-in: an opaque payload
(:data:`BYTES`, :data:`LONG_STR`...), a :class:`Global` reference, the :class:`Obj` a call would
return, a :class:`Persistent` id or a :class:`SymSet` under construction. :func:`describe` names
any of them in a finding.
"""

from __future__ import annotations

from typing import Any


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
        if func.ref in ("copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"):
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
