"""Compressed streams (gzip, bz2, xz, lzma, zlib, lz4): decompressed within the scan's limits and scanned."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_mlsecops.evidence.models import Severity
from airflow_mlsecops.gates._model_scan.formats import Problem
from airflow_mlsecops.gates._model_scan.parts import FileReport, Part
from airflow_mlsecops.gates._model_scan.source import LimitedStream

if TYPE_CHECKING:
    from airflow_mlsecops.gates._model_scan.context import ScanContext


class _ZlibReader(io.RawIOBase):
    """A zlib stream (joblib's ``compress='zlib'``), concatenated streams included, read forward."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._dec = zlib.decompressobj()
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        size = 1 << 20 if size is None or size < 0 else size
        while len(self._pending) < size and not self._done:
            if self._dec.unconsumed_tail:
                chunk = self._dec.unconsumed_tail
            elif self._dec.eof:
                chunk = self._dec.unused_data or self._raw.read(1 << 20)
                if not chunk:
                    self._done = True
                    break
                self._dec = zlib.decompressobj()
            else:
                chunk = self._raw.read(1 << 20)
                if not chunk:
                    raise EOFError("zlib stream ended before its end marker (truncated)")
            self._pending += self._dec.decompress(chunk, 1 << 22)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _lz4_open(raw: BinaryIO) -> Any:
    import lz4.frame

    return lz4.frame.LZ4FrameFile(raw, mode="rb")


def _gzip_open(raw: BinaryIO) -> Any:
    return gzip.GzipFile(fileobj=raw, mode="rb")


def _bz2_open(raw: BinaryIO) -> Any:
    return bz2.BZ2File(raw, mode="rb")


def _xz_open(raw: BinaryIO) -> Any:
    return lzma.LZMAFile(raw, mode="rb", format=lzma.FORMAT_XZ)


def _lzma_open(raw: BinaryIO) -> Any:
    return lzma.LZMAFile(raw, mode="rb", format=lzma.FORMAT_ALONE)


# Each takes the compressed stream and returns the decompressed one (which does not close it).
DECOMPRESSORS: dict[str, Callable[[BinaryIO], Any]] = {
    "gzip": _gzip_open,
    "bz2": _bz2_open,
    "xz": _xz_open,
    "lzma": _lzma_open,
    "zlib": _ZlibReader,
    "lz4": _lz4_open,
}


def scan_compressed(scanner: ScanContext, fmt: str, part: Part, report: FileReport) -> str:
    """Scan what the ``fmt`` stream ``part`` decompresses to, as a part one level deeper."""
    if scanner.too_deep(part, report, fmt):
        return fmt
    try:
        decompressor = DECOMPRESSORS[fmt]
        if fmt == "lz4":
            import lz4.frame  # noqa: F401 - fail here, not mid-stream
    except ImportError:
        scanner.problem(
            report,
            part,
            Problem("cannot-inspect", Severity.HIGH, "is lz4-compressed and the lz4 package is not installed", kind="unreadable"),
        )
        return fmt
    outer = part
    compressed = part.size if part.size is not None else scanner.limits.max_total_uncompressed_bytes

    def opener() -> BinaryIO:
        raw = outer.opener()
        return LimitedStream(  # type: ignore[return-value]
            decompressor(raw),
            also_close=raw,
            compressed_size=compressed,
            budget=scanner.budget,
            max_ratio=scanner.limits.max_compression_ratio,
            ratio_min_bytes=scanner.limits.ratio_min_bytes,
            what=f"{outer.label} ({fmt})",
        )

    inner = Part(f"{part.label} ({fmt}-decompressed)", opener, None, depth=part.depth + 1)
    scanner.record_part(report, part, fmt)
    return f"{fmt}/{scanner.scan_part(inner, report)}"
