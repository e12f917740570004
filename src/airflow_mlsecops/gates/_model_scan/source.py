"""A buffered, forward-only byte reader that skips payloads without reading them (when it can seek),
and a counting wrapper that enforces decompression limits."""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from airflow_mlsecops.exceptions import LimitExceeded, Truncated

CHUNK = 1 << 20
#: The longest text line (a protocol-0 opcode argument) the scanner reads; CPython has no limit, so a
#: longer line is never "not a pickle": the analysis reports it as a stream it cannot read (rejected).
MAX_LINE = 16 << 20


class LineTooLong(Truncated):
    """A text line longer than the scanner reads (not the end of the stream)."""


class ByteSource:
    """Read a binary stream forward with absolute offsets; skip payloads by seeking when possible.

    :param raw: the stream, positioned where reading starts.
    :param size: total size of the stream from its start, if known (lets seeks detect truncation).
    :param seekable: ``raw.seek(n, 1)`` is cheap (a regular file).
    :param start: the offset of ``raw``'s current position (reported offsets start there).
    """

    __slots__ = ("_raw", "_seekable", "_size", "base", "buf", "pos")

    def __init__(self, raw: BinaryIO, *, size: int | None = None, seekable: bool = False, start: int = 0) -> None:
        self._raw = raw
        self._seekable = seekable
        self._size = size
        self.buf = b""
        self.pos = 0
        self.base = start

    @classmethod
    def from_bytes(cls, data: bytes, start: int = 0) -> ByteSource:
        src = cls(io.BytesIO(b""), size=start + len(data), start=start)
        src.buf = bytes(data)
        return src

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte to read."""
        return self.base + self.pos

    @property
    def size(self) -> int | None:
        return self._size

    def fill(self, n: int) -> bool:
        """Make at least ``n`` unread bytes available in :attr:`buf`; False if the stream ends first."""
        have = len(self.buf) - self.pos
        if have >= n:
            return True
        parts = [self.buf[self.pos :]] if have else []
        self.base += self.pos
        self.pos = 0
        want = max(n - have, CHUNK)
        got = have
        while got < n:
            chunk = self._raw.read(want)
            if not chunk:
                self.buf = b"".join(parts)
                return False
            parts.append(chunk)
            got += len(chunk)
            want = max(n - got, CHUNK)
        self.buf = b"".join(parts) if len(parts) != 1 else parts[0]
        return True

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or :class:`Truncated`."""
        if len(self.buf) - self.pos < n and not self.fill(n):
            raise Truncated(f"stream ends at byte {self.base + len(self.buf)}, {n} bytes needed at byte {self.offset}")
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return data

    def peek(self, n: int) -> bytes:
        """Up to ``n`` unread bytes, without consuming them."""
        self.fill(n)
        return self.buf[self.pos : self.pos + n]

    def at_eof(self) -> bool:
        return not self.fill(1)

    def readline(self, limit: int = MAX_LINE, *, partial: bool = False) -> bytes:
        """Bytes up to and including the next ``\\n`` (which must come within ``limit`` bytes).

        :param partial: at the end of the stream, return the rest (without a ``\\n``) instead of
            raising :class:`Truncated` (what ``pickle._Unpickler``'s ``readline`` does).
        :raises LineTooLong: no ``\\n`` within ``limit`` bytes.
        """
        searched = self.pos
        while True:
            idx = self.buf.find(b"\n", searched)
            if idx >= 0:
                line = self.buf[self.pos : idx + 1]
                self.pos = idx + 1
                return line
            have = len(self.buf) - self.pos
            if have >= limit:
                raise LineTooLong(f"no line end within {limit} bytes at byte {self.offset}")
            if not self.fill(have + 1):
                if partial:
                    rest = self.buf[self.pos :]
                    self.pos = len(self.buf)
                    return rest
                raise Truncated(f"stream ends inside a text line at byte {self.offset}")
            searched = self.pos + have

    def skip(self, n: int) -> None:
        """Move ``n`` bytes forward (seeking over them if possible), or :class:`Truncated`."""
        have = len(self.buf) - self.pos
        if n <= have:
            self.pos += n
            return
        remaining = n - have
        self.base += len(self.buf)
        self.buf = b""
        self.pos = 0
        if self._seekable and self._size is not None:
            if self.base + remaining > self._size:
                self.base = self._size
                raise Truncated(f"a {n}-byte payload runs past the end of the stream ({self._size} bytes)")
            self._raw.seek(remaining, os.SEEK_CUR)
            self.base += remaining
            return
        while remaining:
            chunk = self._raw.read(min(remaining, 4 * CHUNK))
            if not chunk:
                raise Truncated(f"a {n}-byte payload runs past the end of the stream (at byte {self.base})")
            remaining -= len(chunk)
            self.base += len(chunk)

    def drain(self) -> int:
        """Consume the rest of the stream; return how many bytes were left."""
        count = len(self.buf) - self.pos
        self.base += len(self.buf)
        self.buf = b""
        self.pos = 0
        if self._seekable and self._size is not None:
            count += max(self._size - self.base, 0)
            self.base = max(self._size, self.base)
            return count
        while True:
            chunk = self._raw.read(4 * CHUNK)
            if not chunk:
                return count
            count += len(chunk)
            self.base += len(chunk)


class Budget:
    """Bytes produced by decompression across one scan, shared by every stream of the scan."""

    def __init__(self, max_total: int) -> None:
        self.max_total = max_total
        self.used = 0


class LimitedStream(io.RawIOBase):
    """Count what a decompressing stream yields; stop at the ratio and total-size limits.

    :param inner: the decompressing stream.
    :param compressed_size: bytes of compressed input behind it (the ratio's denominator).
    :param budget: the scan-wide total.
    :param max_ratio: largest allowed output/input ratio once ``ratio_min_bytes`` were produced.
    :param what: how to name the stream in the error.
    :param also_close: the stream under ``inner``, closed with it (decompressors leave it open).
    """

    def __init__(
        self,
        inner: BinaryIO,
        *,
        compressed_size: int,
        budget: Budget,
        max_ratio: float,
        ratio_min_bytes: int,
        what: str,
        also_close: BinaryIO | None = None,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._also_close = also_close
        self._compressed = max(compressed_size, 1)
        self._budget = budget
        self._max_ratio = max_ratio
        self._ratio_min = ratio_min_bytes
        self._what = what
        self.produced = 0

    def readable(self) -> bool:
        return True

    def _count(self, n: int) -> None:
        self.produced += n
        self._budget.used += n
        if self._budget.used > self._budget.max_total:
            raise LimitExceeded(
                f"{self._what}: decompressed data exceeds the scan's total limit of {self._budget.max_total} bytes"
            )
        if self.produced > self._ratio_min and self.produced / self._compressed > self._max_ratio:
            raise LimitExceeded(
                f"{self._what}: expands more than {self._max_ratio:g}x ({self._compressed} compressed bytes "
                f"gave over {self.produced} bytes): a decompression bomb"
            )

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            chunks: list[bytes] = []
            while True:
                chunk = self.read(CHUNK)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        data = self._inner.read(size)
        self._count(len(data))
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
            if self._also_close is not None:
                self._also_close.close()
        finally:
            super().close()
