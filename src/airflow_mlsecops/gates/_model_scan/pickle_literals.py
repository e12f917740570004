"""Handlers of the pickle opcodes that decode a literal (number, string, bytes) from their argument.

:class:`LiteralOpcodes` is a base class of the pickle analyser's machine (:mod:`.pickles`): each
handler reads its opcode's argument from the stream and pushes the value, or a stand-in
(:data:`~.pickle_values.BYTES`, :data:`~.pickle_values.LONG_STR`, :data:`~.pickle_values.BIG_INT`)
for a payload too large to keep, which is then skipped without being read.

Text arguments (``INT``, ``LONG``, ``FLOAT``, and the ``GET`` / ``PUT`` indices in :mod:`.pickles`) are
decoded by both of CPython's unpicklers' rules (:mod:`.pickle_args`): where both raise, the stream
is broken for every loader (:class:`PickleError`); where they disagree (``I010`` is 8 for
``pickle.load`` and an error for ``joblib.load``), the analysis goes on with the value a loader reads
and records a ``loader-dependent`` issue, so the file is rejected and never mistaken for text.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Callable
from struct import unpack
from typing import Any

from airflow_mlsecops.exceptions import PickleError
from airflow_mlsecops.gates._model_scan import pickle_args
from airflow_mlsecops.gates._model_scan.pickle_args import ArgumentRejected
from airflow_mlsecops.gates._model_scan.pickle_results import Issue, PickleAnalysis
from airflow_mlsecops.gates._model_scan.pickle_values import BIG_INT, BYTES, LONG_STR
from airflow_mlsecops.gates._model_scan.source import ByteSource

_SMALL = 256  # strings up to this many bytes keep their value; bytes up to 64


class LiteralOpcodes:
    """The literal opcodes of the symbolic unpickler, and the helpers that read opcode arguments."""

    src: ByteSource
    stack: list[Any]
    out: PickleAnalysis

    # -- reading arguments -----------------------------------------------------------------------

    def _line(self) -> bytes:
        return self.src.readline()[:-1]

    def _decide(
        self,
        opcode: str,
        line: bytes,
        c_read: Callable[[bytes], Any],
        py_read: Callable[[bytes], Any],
        offset: int,
    ) -> Any:
        """The value both unpicklers read from ``line``; where they disagree, the one a loader reads, and an issue."""
        try:
            c_value: Any = c_read(line)
        except ArgumentRejected as exc:
            c_value = exc
        try:
            py_value: Any = py_read(line)
        except ArgumentRejected as exc:
            py_value = exc
        c_failed, py_failed = isinstance(c_value, ArgumentRejected), isinstance(py_value, ArgumentRejected)
        if c_failed and py_failed:
            raise PickleError(f"{opcode} argument {line[:40]!r}: {c_value}", offset)
        if not c_failed and not py_failed and pickle_args.same(c_value, py_value):
            return c_value
        c_says = "an error" if c_failed else repr(c_value)
        py_says = "an error" if py_failed else repr(py_value)
        self.out.undecidable = self.out.undecidable or f"{opcode} argument {line[:40]!r} read differently by the loaders"
        self.out.issues.append(
            Issue(
                "loader-dependent",
                f"{opcode} argument {line[:40]!r} is {c_says} for pickle.load (C unpickler) but {py_says} for "
                "joblib.load (pure-Python unpickler): a stream written to be read differently by different loaders",
                offset,
            )
        )
        return py_value if c_failed else c_value

    def _push_str(self, data: bytes | None, size: int, decode: Callable[[bytes], str]) -> None:
        if data is None:
            self.stack.append(LONG_STR)
            return
        try:
            self.stack.append(decode(data))
        except UnicodeDecodeError as exc:
            raise PickleError(f"invalid string payload: {exc.reason}", self.src.offset - size) from None

    def _payload(self, size: int, keep: int) -> bytes | None:
        if size <= keep:
            return self.src.read(size)
        self.src.skip(size)
        return None

    # -- literal opcodes -------------------------------------------------------------------------

    def op_float(self, offset: int) -> None:
        self.stack.append(self._decide("FLOAT", self._line(), pickle_args.c_float, pickle_args.py_float, offset))

    def op_int(self, offset: int) -> None:
        self.stack.append(self._decide("INT", self._line(), pickle_args.c_int, pickle_args.py_int, offset))

    def op_binint(self, offset: int) -> None:
        self.stack.append(unpack("<i", self.src.read(4))[0])

    def op_binint1(self, offset: int) -> None:
        self.stack.append(self.src.read(1)[0])

    def op_binint2(self, offset: int) -> None:
        self.stack.append(unpack("<H", self.src.read(2))[0])

    def op_long(self, offset: int) -> None:
        self.stack.append(self._decide("LONG", self._line(), pickle_args.c_long, pickle_args.py_long, offset))

    def op_long1(self, offset: int) -> None:
        n = self.src.read(1)[0]
        self.stack.append(int.from_bytes(self.src.read(n), "little", signed=True))

    def op_long4(self, offset: int) -> None:
        (n,) = unpack("<i", self.src.read(4))
        if n < 0:
            raise PickleError("LONG pickle has negative byte count", offset)
        data = self._payload(n, 64)
        self.stack.append(BIG_INT if data is None else int.from_bytes(data, "little", signed=True))

    def op_none(self, offset: int) -> None:
        self.stack.append(None)

    def op_newtrue(self, offset: int) -> None:
        self.stack.append(True)

    def op_newfalse(self, offset: int) -> None:
        self.stack.append(False)

    def op_string(self, offset: int) -> None:
        data = self._line()
        if len(data) >= 2 and data[0] == data[-1] and data[0] in b"\"'":
            data = data[1:-1]
        else:
            raise PickleError("the STRING opcode argument must be quoted", offset)
        try:
            decoded = codecs.escape_decode(data)[0]
        except ValueError as exc:  # the same decoder as both unpicklers': they raise too
            raise PickleError(f"invalid STRING escape: {exc}", offset) from None
        # the unpicklers decode with their ``encoding`` (ASCII by default, UTF-8 in torch.load, latin-1 in
        # pandas' fallback); latin-1 never fails, and a non-ASCII name is never on the allowlist either way
        self.stack.append(decoded.decode("latin-1"))

    def op_binstring(self, offset: int) -> None:
        (n,) = unpack("<i", self.src.read(4))
        if n < 0:
            raise PickleError("BINSTRING pickle has negative byte count", offset)
        self._push_str(self._payload(n, _SMALL), n, lambda b: b.decode("latin-1"))

    def op_short_binstring(self, offset: int) -> None:
        n = self.src.read(1)[0]
        self.stack.append(self.src.read(n).decode("latin-1"))

    def op_binbytes(self, offset: int) -> None:
        (n,) = unpack("<I", self.src.read(4))
        data = self._payload(n, 64)
        self.stack.append(BYTES if data is None else data)

    def op_short_binbytes(self, offset: int) -> None:
        n = self.src.read(1)[0]
        data = self._payload(n, 64)
        self.stack.append(BYTES if data is None else data)

    def op_binbytes8(self, offset: int) -> None:
        (n,) = unpack("<Q", self.src.read(8))
        if n > sys.maxsize:
            raise PickleError("BINBYTES8 exceeds system's maximum size", offset)
        data = self._payload(n, 64)
        self.stack.append(BYTES if data is None else data)

    def op_bytearray8(self, offset: int) -> None:
        (n,) = unpack("<Q", self.src.read(8))
        if n > sys.maxsize:
            raise PickleError("BYTEARRAY8 exceeds system's maximum size", offset)
        self.src.skip(n)
        self.stack.append(BYTES)

    def op_unicode(self, offset: int) -> None:
        try:
            self.stack.append(str(self._line(), "raw-unicode-escape"))
        except UnicodeDecodeError as exc:  # the same decoder as both unpicklers'
            raise PickleError(f"invalid UNICODE argument: {exc.reason}", offset) from None

    def op_binunicode(self, offset: int) -> None:
        (n,) = unpack("<I", self.src.read(4))
        self._push_str(self._payload(n, _SMALL), n, lambda b: str(b, "utf-8", "surrogatepass"))

    def op_short_binunicode(self, offset: int) -> None:
        n = self.src.read(1)[0]
        self._push_str(self.src.read(n), n, lambda b: str(b, "utf-8", "surrogatepass"))

    def op_binunicode8(self, offset: int) -> None:
        (n,) = unpack("<Q", self.src.read(8))
        if n > sys.maxsize:
            raise PickleError("BINUNICODE8 exceeds system's maximum size", offset)
        self._push_str(self._payload(n, _SMALL), n, lambda b: str(b, "utf-8", "surrogatepass"))

    def op_binfloat(self, offset: int) -> None:
        self.stack.append(unpack(">d", self.src.read(8))[0])
