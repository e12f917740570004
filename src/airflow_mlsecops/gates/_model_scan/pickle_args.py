"""The text arguments of protocol-0 opcodes, decoded exactly as each of CPython's two unpicklers decodes them.

``pickle.load`` / ``pickle.loads`` (and ``numpy.load``, ``pandas.read_pickle``, ``torch.load`` with
``weights_only=False``) use the C unpickler (``Modules/_pickle.c``); ``joblib.load`` uses the
pure-Python one (``pickle._Unpickler``). They read the same argument differently: the C ``INT``
goes through ``strtol(s, &end, 0)`` (so ``010`` is octal 8, ``+1`` is ``True``, and everything after
a NUL byte is ignored), the Python one through ``int(s, 0)`` (``010`` is an error); the C ``FLOAT``
allows no whitespace or underscores, the Python ``float()`` does. Each ``c_*`` function here
returns what the C unpickler pushes, each ``py_*`` what the Python one pushes; both raise
:class:`ArgumentRejected` where that unpickler raises. The rules were checked by experiment
against ``pickle.loads`` and ``pickle._loads`` (see ``tests/gates/test_model_scan_fuzz.py``).

``line`` is always the opcode's argument line without its ``\\n`` (a line cut by the end of the
stream is an error for both unpicklers, except where :mod:`.pickles` says otherwise).
"""

from __future__ import annotations

import math
import re

_C_SPACE = b" \t\n\v\f\r"  # isspace() in the C locale
_DIGITS = {8: b"01234567", 10: b"0123456789", 16: b"0123456789abcdefABCDEF"}
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1  # a C long on the 64-bit platforms CPython runs models on
_SSIZE_MAX = (1 << 63) - 1
# what PyOS_string_to_double accepts: no whitespace, no underscores, no hex
_C_FLOAT = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf(?:inity)?|nan))")


class ArgumentRejected(Exception):
    """The unpickler raises on this argument."""


def _c_string(data: bytes) -> bytes:
    """What C code sees of a buffer: everything before the first NUL byte."""
    nul = data.find(b"\x00")
    return data if nul < 0 else data[:nul]


def _int_literal(data: bytes, base: int) -> int:
    """``PyLong_FromString(s, NULL, base)``: Python's integer-literal rules (``int(s, base)`` on bytes)."""
    try:
        return int(data, base)
    except ValueError:
        raise ArgumentRejected(f"invalid literal for int() with base {base}: {data[:40]!r}") from None


def _strtol(s: bytes) -> tuple[int, int] | None:
    """glibc ``strtol(s, &end, 0)``: (value, end index); None if it converted nothing or overflowed."""
    i, n = 0, len(s)
    while i < n and s[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and s[i] in b"+-":
        negative = s[i] == 0x2D
        i += 1
    base = 10
    if i < n and s[i] == 0x30:
        if i + 2 < n and s[i + 1] in b"xX" and s[i + 2] in _DIGITS[16]:
            base, i = 16, i + 2
        else:
            base = 8
    start = i
    digits = _DIGITS[base]
    while i < n and s[i] in digits:
        i += 1
    if i == start:
        return None
    value = int(s[start:i], base)
    value = -value if negative else value
    if not _LONG_MIN <= value <= _LONG_MAX:
        return None  # errno = ERANGE
    return value, i


def c_int(line: bytes) -> int:
    """``load_int`` of ``_pickle.c``: strtol base 0, then PyLong_FromString on failure; ``True``/``False`` for 2-byte 0/1."""
    if not line:
        raise ArgumentRejected("pickle data was truncated (empty INT line)")
    s = _c_string(line)
    converted = _strtol(s)
    if converted is None and not s:
        converted = (0, 0)  # nothing converted and *endptr == '\0': strtol's 0 is accepted
    if converted is not None and converted[1] == len(s):
        value = converted[0]
        if len(line) == 2 and value in (0, 1):
            return bool(value)
        return value
    return _int_literal(s if len(s) < len(line) else line + b"\n", 0)


def py_int(line: bytes) -> int:
    """``load_int`` of ``pickle._Unpickler``."""
    data = line + b"\n"
    if data == b"00\n":
        return False
    if data == b"01\n":
        return True
    return _int_literal(data, 0)


def c_long(line: bytes) -> int:
    """``load_long`` of ``_pickle.c``: an ``L`` before the newline is cut, the rest is PyLong_FromString base 0."""
    if not line:
        raise ArgumentRejected("pickle data was truncated (empty LONG line)")
    data = line[:-1] if line[-1] == 0x4C else line + b"\n"
    return _int_literal(_c_string(data), 0)


def py_long(line: bytes) -> int:
    """``load_long`` of ``pickle._Unpickler``."""
    if line and line[-1] == 0x4C:
        line = line[:-1]
    return _int_literal(line, 0)


def c_float(line: bytes) -> float:
    """``load_float`` of ``_pickle.c``: PyOS_string_to_double, which must stop at the newline or a NUL."""
    if not line:
        raise ArgumentRejected("pickle data was truncated (empty FLOAT line)")
    s = _c_string(line)
    match = _C_FLOAT.match(s)
    if match is None or match.end() != len(s):
        raise ArgumentRejected(f"could not convert string to float: {s[:40]!r}")
    value = float(match.group())
    if math.isinf(value) and b"inf" not in s.lower():
        raise ArgumentRejected(f"could not convert string to float (overflow): {s[:40]!r}")
    return value


def py_float(line: bytes) -> float:
    """``load_float`` of ``pickle._Unpickler``: ``float()`` (whitespace and underscores allowed)."""
    try:
        return float(line)
    except ValueError:
        raise ArgumentRejected(f"could not convert string to float: {line[:40]!r}") from None


def c_index(line: bytes) -> int:
    """A ``GET`` / ``PUT`` memo index in ``_pickle.c``: PyLong_FromString base 10, then a Py_ssize_t."""
    if not line:
        raise ArgumentRejected("pickle data was truncated (empty memo index)")
    value = _int_literal(_c_string(line + b"\n"), 10)
    if not -_SSIZE_MAX - 1 <= value <= _SSIZE_MAX:
        raise ArgumentRejected("memo index too large to convert to C ssize_t")
    return value


def py_index(line: bytes) -> int:
    """A ``GET`` / ``PUT`` memo index in ``pickle._Unpickler``: ``int(line)``."""
    return _int_literal(line, 10)


def same(a: object, b: object) -> bool:
    """Whether two decoded values are the same value (``True`` and ``1`` are; ``nan`` equals ``nan``)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) in (int, bool, float) and type(b) in (int, bool, float) and a == b
