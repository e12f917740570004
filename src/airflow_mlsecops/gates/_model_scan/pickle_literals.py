"""Handlers of the pickle opcodes that decode a literal (number, string, bytes) from their argument.

:class:`LiteralOpcodes` is a base class of the pickle analyser's machine (:mod:`.pickles`): each
handler reads its opcode's argument from the stream and pushes the value, or a stand-in
(:data:`~.pickle_values.BYTES`, :data:`~.pickle_values.LONG_STR`, :data:`~.pickle_values.BIG_INT`)
for a payload too large to keep, which is then skipped without being read.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Callable
from struct import unpack
from typing import Any

from airflow_mlsecops.exceptions import PickleError
from airflow_mlsecops.gates._model_scan.pickle_values import BIG_INT, BYTES, LONG_STR
from airflow_mlsecops.gates._model_scan.source import ByteSource

_SMALL = 256  # strings up to this many bytes keep their value; bytes up to 64


class LiteralOpcodes:
    """The literal opcodes of the symbolic unpickler, and the helpers that read opcode arguments."""

    src: ByteSource
    stack: list[Any]

    # -- reading arguments -----------------------------------------------------------------------

    def _line(self) -> bytes:
        return self.src.readline()[:-1]

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
        self.stack.append(float(self._line()))

    def op_int(self, offset: int) -> None:
        data = self._line()
        self.stack.append(False if data == b"00" else True if data == b"01" else int(data, 0))

    def op_binint(self, offset: int) -> None:
        self.stack.append(unpack("<i", self.src.read(4))[0])

    def op_binint1(self, offset: int) -> None:
        self.stack.append(self.src.read(1)[0])

    def op_binint2(self, offset: int) -> None:
        self.stack.append(unpack("<H", self.src.read(2))[0])

    def op_long(self, offset: int) -> None:
        val = self._line()
        if val and val[-1] == 0x4C:  # L
            val = val[:-1]
        self.stack.append(int(val, 0))

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
        self.stack.append(codecs.escape_decode(data)[0].decode("latin-1"))

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
        self.stack.append(str(self._line(), "raw-unicode-escape"))

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
