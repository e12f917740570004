"""Content detection and recursive scanning of files, archives and compressed streams.

A *part* is any byte stream the scanner judges: a file, a zip or tar member, or what a compressed
stream decompresses to. Its format is decided from its bytes only (never its name), and a part
holding other parts (an archive, a compressed stream) is scanned recursively within
:class:`ScanLimits`. Every problem becomes a finding located at ``<part> @ byte <offset>``, where
``<part>`` names the chain (``archive/data.pkl in model.pt``, ``model.joblib (zlib-decompressed)``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from airflow_mlsecops.evidence.models import Finding, Severity
from airflow_mlsecops.gates._model_scan.allowlist import judge
from airflow_mlsecops.gates._model_scan.formats import (
    NPY_MAGIC,
    FormatError,
    Problem,
    check_safetensors,
    hdf5_at,
    inspect_h5,
    inspect_onnx,
    is_text,
    keras_config_problems,
    looks_like_keras_config,
    looks_like_onnx,
    looks_like_safetensors,
    read_npy_header,
)
from airflow_mlsecops.gates._model_scan.pickles import (
    OPCODE_BYTES,
    TORCH_LEGACY_MAGIC,
    PickleAnalysis,
    analyze_pickle,
)
from airflow_mlsecops.gates._model_scan.source import Budget, ByteSource, LimitedStream, LimitExceeded, Truncated

HEAD = 1 << 16
ATLAS = ("AML.T0011.000", "AML.T0010.003")
OWASP = ("ML06:2023",)


@dataclass(frozen=True)
class ScanLimits:
    """Limits that keep a hostile file from exhausting the scanner. Exceeding one is a finding.

    :param max_total_uncompressed_bytes: bytes that decompression (compressed zip/tar members,
        gzip/zlib/bz2/xz/lzma/lz4 streams, joblib compression) may produce in one scan: 8 GiB.
        Stored (uncompressed) zip members and plain files do not count.
    :param max_compression_ratio: largest expansion of one compressed member or stream (declared
        and actual): 200x. Zero-filled data reaches ~1000x with deflate; real model files stay far
        below 100x.
    :param ratio_min_bytes: the ratio is only judged for members/streams larger than this: 16 MiB
        (a small file may compress arbitrarily well).
    :param max_archive_depth: containers inside containers (zip in zip, tar in gzip, compressed
        joblib in zip count one level each): 4.
    :param max_members: members of one zip or tar archive: 10,000.
    :param max_files: files in a scanned directory: 100,000.
    :param max_header_bytes: a safetensors or ``.npy`` header: 100 MiB (as the safetensors library).
    :param max_json_bytes: a Keras configuration or a JSON file checked for one: 64 MiB.
    :param max_findings_per_file: findings listed per file (the rest are counted): 100.
    """

    max_total_uncompressed_bytes: int = 8 << 30
    max_compression_ratio: float = 200.0
    ratio_min_bytes: int = 16 << 20
    max_archive_depth: int = 4
    max_members: int = 10_000
    max_files: int = 100_000
    max_header_bytes: int = 100 << 20
    max_json_bytes: int = 64 << 20
    max_findings_per_file: int = 100

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"ScanLimits.{name} must be a positive number, not {value!r}")


@dataclass
class Part:
    """A byte stream to judge."""

    label: str
    opener: Callable[[], BinaryIO]
    size: int | None
    path: Path | None = None  # a regular file holding exactly these bytes (random access)
    depth: int = 0
    model_dir: Path | None = None  # for ONNX external data of a top-level file


@dataclass
class FileReport:
    """What the scan found in one file of the scanned path (the unit of ``model_scan_report.json``)."""

    path: str
    size: int
    format: str = "unknown"
    globals: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    unreadable: bool = False
    insecure: bool = False
    parts: list[dict[str, Any]] = field(default_factory=list)
    dropped_findings: int = 0

    @property
    def verdict(self) -> str:
        return "failed" if self.insecure else "error" if self.unreadable else "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "bytes": self.size,
            "format": self.format,
            "verdict": self.verdict,
            "globals": dict(sorted(self.globals.items())),
            "findings": [f.to_dict() for f in self.findings],
            "findings_not_listed": self.dropped_findings,
            "parts": self.parts,
        }


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
_DECOMPRESSORS: dict[str, Callable[[BinaryIO], Any]] = {
    "gzip": _gzip_open,
    "bz2": _bz2_open,
    "xz": _xz_open,
    "lzma": _lzma_open,
    "zlib": _ZlibReader,
    "lz4": _lz4_open,
}

_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    Truncated,
)


def detect(head: bytes, size: int | None) -> str | None:
    """The container or data format ``head`` (the first bytes) announces, or None (pickle/text/unknown)."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if hdf5_at(head) is not None:
        return "hdf5"
    if head[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[:2] == b"\x5d\x00" and len(head) >= 13:
        return "lzma"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0 and not head[1] & 0x20:
        return "zlib"
    if head.startswith(b"ZF"):
        return "joblib-zfile"
    if head.startswith((b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd")):
        return "unsupported-archive"
    if _is_tar(head):
        return "tar"
    if looks_like_safetensors(head, size):
        return "safetensors"
    if looks_like_onnx(head):
        return "onnx"
    return None


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    try:
        stored = int(head[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(head[:148]) + 256 + sum(head[156:512])


def _unsafe_member_name(name: str) -> str | None:
    if "\x00" in name:
        return "has a NUL byte in its name"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return "has an absolute path"
    if ".." in posix.split("/"):
        return "climbs out of the extraction directory with '..'"
    return None


_TORCH_STORAGE = re.compile(r"^([^/]+/)?data/[^/]+$")


def _zip_kind(names: set[str]) -> str:
    prefixes = {n.split("/", 1)[0] for n in names if n.endswith("/data.pkl") and n.count("/") == 1}
    if prefixes and any(f"{p}/version" in names or f"{p}/.data/version" in names for p in prefixes):
        return "pytorch"
    if "schema.json" in names:
        return "skops"
    if "config.json" in names and ({"metadata.json", "model.weights.h5", "model.weights.npz"} & names):
        return "keras"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


class Scanner:
    """Scans files; keeps the scan-wide decompression budget and a temporary directory.

    :param limits: the limits.
    :param allow: extra exact ``module.name`` references to allow (gadgets stay critical).
    :param tmpdir: where members that need random access (zip in zip, HDF5, ONNX) are spooled.
    """

    def __init__(self, limits: ScanLimits, allow: frozenset[str], tmpdir: Path) -> None:
        self.limits = limits
        self.allow = allow
        self.tmpdir = tmpdir
        self.budget = Budget(limits.max_total_uncompressed_bytes)
        self._spooled = 0
        self.external_data: set[Path] = set()  # files ONNX models in the scanned tree keep tensors in

    # -- entry ---------------------------------------------------------------------------------

    def scan_file(self, path: Path, display: str, model_dir: Path | None) -> FileReport:
        size = path.stat().st_size
        report = FileReport(path=display, size=size)

        def opener() -> BinaryIO:
            return open(path, "rb")

        report.format = self._scan(Part(display, opener, size, path=path, model_dir=model_dir), report)
        return report

    def settle_external_data(self, files: list[Path], reports: list[FileReport]) -> None:
        """Raw tensor files an ONNX model of the same tree names as external data are data, not unknown.

        Only a file whose sole findings say "unknown format" is settled: a pickle or any other
        format found in such a file is still judged as what it is.
        """
        for file, report in zip(files, reports, strict=True):
            if (
                file.resolve() in self.external_data
                and report.findings
                and all(f.id == "model-scan.unknown-format" for f in report.findings)
                and not report.dropped_findings
            ):
                report.findings.clear()
                report.unreadable = False
                report.format = "onnx-external-data"
                report.parts = [{"name": report.path, "format": "onnx-external-data", "bytes": report.size}]

    # -- recording -----------------------------------------------------------------------------

    def _problem(self, report: FileReport, part: Part, problem: Problem) -> None:
        if problem.kind == "unreadable":
            report.unreadable = True
        else:
            report.insecure = True
        if len(report.findings) >= self.limits.max_findings_per_file:
            report.dropped_findings += 1
            return
        location = part.label if problem.offset is None else f"{part.label} @ byte {problem.offset}"
        report.findings.append(
            Finding(
                id=f"model-scan.{problem.code}",
                severity=problem.severity,
                message=f"{part.label}: {problem.message}",
                location=location,
                atlas=ATLAS,
                owasp_ml=OWASP,
            )
        )

    def _record_part(self, report: FileReport, part: Part, fmt: str, **details: Any) -> None:
        if len(report.parts) < 1000:
            report.parts.append({"name": part.label, "format": fmt, "bytes": part.size, **details})

    # -- dispatch ------------------------------------------------------------------------------

    def _scan(self, part: Part, report: FileReport) -> str:
        try:
            with part.opener() as fh:
                head = _read_head(fh)
        except LimitExceeded as exc:
            self._problem(report, part, Problem("limit", Severity.HIGH, str(exc)))
            return "unknown"
        except Exception as exc:  # noqa: BLE001 - hostile input: any failure to read is a finding, never a pass
            self._problem(report, part, Problem("unreadable", Severity.HIGH, f"cannot be read: {_why(exc)}", kind="unreadable"))
            return "unknown"
        if not head:
            self._problem(
                report, part, Problem("empty", Severity.HIGH, "is empty: not a model file (nothing to judge)", kind="unreadable")
            )
            self._record_part(report, part, "empty")
            return "empty"
        fmt = detect(head, part.size)
        try:
            if fmt is not None and head[0] in OPCODE_BYTES:
                self._polyglot_probe(part, report, fmt)
            return self._dispatch(fmt, head, part, report)
        except LimitExceeded as exc:
            self._problem(report, part, Problem("limit", Severity.HIGH, str(exc)))
        except FormatError as exc:
            self._problem(report, part, Problem("invalid", Severity.HIGH, str(exc), exc.offset, kind="unreadable"))
        except Exception as exc:  # noqa: BLE001 - hostile input: any failure to read is a finding, never a pass
            self._problem(
                report,
                part,
                Problem("unreadable", Severity.HIGH, f"cannot be read as {fmt or 'a pickle'}: {_why(exc)}", kind="unreadable"),
            )
        self._record_part(report, part, fmt or "unknown")
        return fmt or "unknown"

    def _dispatch(self, fmt: str | None, head: bytes, part: Part, report: FileReport) -> str:
        if fmt is None:
            return self._scan_untyped(head, part, report)
        if fmt == "zip":
            return self._scan_zip(part, report)
        if fmt == "tar":
            return self._scan_tar(part, report)
        if fmt in _DECOMPRESSORS:
            return self._scan_compressed(fmt, part, report)
        if fmt == "npy":
            return self._scan_npy(part, report)
        if fmt == "safetensors":
            return self._scan_safetensors(part, report)
        if fmt == "hdf5":
            return self._scan_h5(part, report)
        if fmt == "onnx":
            return self._scan_onnx(part, report)
        what = {
            "joblib-zfile": "a joblib < 0.10 compressed file ('ZF'), which this scanner does not read",
            "unsupported-archive": "a 7z, RAR or zstd archive, which this scanner does not read",
        }[fmt]
        self._problem(report, part, Problem("unsupported-format", Severity.HIGH, f"is {what}", 0, kind="unreadable"))
        self._record_part(report, part, fmt)
        return fmt

    # -- pickles -------------------------------------------------------------------------------

    def _source(self, part: Part, fh: BinaryIO) -> ByteSource:
        return ByteSource(fh, size=part.size, seekable=part.path is not None)

    def _scan_untyped(self, head: bytes, part: Part, report: FileReport) -> str:
        analyses: list[PickleAnalysis] = []
        if head[0] in OPCODE_BYTES:
            analyses, legacy = self._pickle_stream(part)
            first = analyses[0]
            if first.complete or first.effects:
                return self._report_pickles(analyses, legacy, part, report)
        with part.opener() as fh:
            if is_text(self._source(part, fh)):
                return self._scan_text(head, part, report)
        if part.path is not None and zipfile.is_zipfile(part.path):
            self._problem(
                report,
                part,
                Problem("polyglot", Severity.HIGH, "has a zip archive appended to data of an unknown format", 0),
            )
            return self._scan_zip(part, report)
        why = "is not a complete pickle, nor text, nor a format this scanner knows"
        if analyses and analyses[0].error:
            why += f" (read as a pickle: {analyses[0].error} at byte {analyses[0].error_offset})"
        self._problem(report, part, Problem("unknown-format", Severity.HIGH, why, 0, kind="unreadable"))
        self._record_part(report, part, "unknown")
        return "unknown"

    def _pickle_stream(self, part: Part) -> tuple[list[PickleAnalysis], bool]:
        """Every pickle in the stream, one after another (joblib-aware); True for a legacy torch file.

        Bytes after the last pickle that are not a pickle become a trailing-data issue, except in a
        legacy ``torch.save`` file, where raw tensor storage follows its five pickles.
        """
        with part.opener() as fh:
            src = self._source(part, fh)
            first = analyze_pickle(src)
            analyses = [first]
            legacy = False
            if first.complete and type(first.result) is int and first.result == TORCH_LEGACY_MAGIC:
                for _ in range(4):  # protocol version, system info, the model, storage keys
                    nxt = analyze_pickle(src)
                    analyses.append(nxt)
                    if not nxt.complete:
                        break
                legacy = analyses[-1].complete
            elif first.complete:
                while src.fill(1):
                    start = src.offset
                    if src.buf[src.pos] in OPCODE_BYTES:
                        nxt = analyze_pickle(src)
                        if nxt.complete or nxt.effects:
                            analyses.append(nxt)
                            if nxt.complete:
                                continue
                            break
                    trailing = src.offset - start + src.drain()
                    first.issues.append(_trailing(start, trailing))
                    break
        if any(a.joblib_arrays for a in analyses):
            # pickle.load reads the same bytes without joblib's array handling: judge that reading too.
            with part.opener() as fh:
                plain = analyze_pickle(self._source(part, fh), joblib=False)
            for ref, seen in plain.refs.items():
                if ref not in first.refs:
                    seen.note = "read only by pickle.load, in bytes joblib.load skips as array data"
                    first.refs[ref] = seen
                    first.calls[ref] += plain.calls.get(ref, 0)
            for issue in plain.issues:
                if issue.kind != "nested":
                    issue.detail += " (when read by pickle.load instead of joblib.load)"
                    first.issues.append(issue)
        return analyses, legacy

    def _report_pickles(self, analyses: list[PickleAnalysis], legacy: bool, part: Part, report: FileReport) -> str:
        first = analyses[0]
        joblib = any(a.joblib_arrays for a in analyses)
        fmt = "joblib" if joblib else "torch-legacy" if legacy else "pickle"
        part_globals: Counter[str] = Counter()
        for analysis in analyses:
            for problem in self._pickle_problems(analysis):
                self._problem(report, part, problem)
            part_globals.update(analysis.globals_count())
        report.globals.update(part_globals)
        self._record_part(
            report,
            part,
            fmt,
            protocol=first.protocol,
            pickles=len(analyses),
            opcodes=sum(a.opcodes for a in analyses),
            globals=dict(sorted(part_globals.items())),
            **({"joblib_arrays": sum(a.joblib_arrays for a in analyses)} if joblib else {}),
        )
        return fmt

    def _pickle_problems(self, analysis: PickleAnalysis) -> Iterator[Problem]:
        for ref, seen in analysis.refs.items():
            status, what = judge(ref, self.allow)
            if status == "allowed":
                continue
            times = f" ({seen.count} references)" if seen.count > 1 else ""
            calls = analysis.calls.get(ref, 0)
            called = f" and call it {calls} time(s)" if calls else ""
            alias = f" (written as {seen.written_as})" if seen.written_as else ""
            alias += f" ({seen.note})" if seen.note else ""
            if status == "dangerous":
                yield Problem(
                    "pickle-gadget",
                    Severity.CRITICAL,
                    f"pickle references {ref}{alias}{times}, a known code-execution gadget: {what}; loading the "
                    f"file would import it{called}",
                    seen.offset,
                )
            else:
                yield Problem(
                    "pickle-unknown-global",
                    Severity.HIGH,
                    f"pickle references {ref}{alias}{times}, which is not on the allowlist of what model files "
                    f"use; loading the file would import it{called}",
                    seen.offset,
                )
        grouped: dict[tuple[str, str], list[Any]] = {}
        for issue in analysis.issues:
            if issue.kind == "nested":
                continue
            entry = grouped.setdefault((issue.kind, issue.detail), [issue, 0])
            entry[1] += 1
        for (kind, detail), (issue, count) in grouped.items():
            severity = Severity(issue.severity)
            more = f" ({count} times)" if count > 1 else ""
            code = kind if kind == "trailing-data" else f"pickle-{kind}"
            yield Problem(code, severity, detail + more, issue.offset, kind="security")
        if not analysis.complete:
            yield Problem(
                "pickle-malformed",
                Severity.HIGH,
                f"pickle does not parse: {analysis.error}; an unpickler would run everything before this point",
                analysis.error_offset,
                kind="unreadable",
            )

    def _polyglot_probe(self, part: Part, report: FileReport, fmt: str) -> None:
        """A file of another format that also starts with pickle opcodes doing imports or calls."""
        with part.opener() as fh:
            probe = analyze_pickle(self._source(part, fh), joblib=False)
        if not probe.effects:
            return
        self._problem(
            report,
            part,
            Problem("polyglot", Severity.HIGH, f"is a {fmt} file that also starts with a pickle which imports or calls", 0),
        )
        for problem in self._pickle_problems(probe):
            if problem.code != "pickle-malformed":
                self._problem(report, part, problem)
        report.globals.update(probe.globals_count())

    # -- text ----------------------------------------------------------------------------------

    def _scan_text(self, head: bytes, part: Part, report: FileReport) -> str:
        fmt = "text"
        stripped = head.lstrip()
        maybe_keras = b'"class_name"' in head  # a Keras config names its top class in the first bytes
        small = part.size is not None and part.size <= 1 << 20
        if stripped[:1] == b"{" and (maybe_keras or small) and (part.size or 0) <= self.limits.max_json_bytes:
            with part.opener() as fh:
                data = fh.read(self.limits.max_json_bytes + 1)
            try:
                value = json.loads(data.decode("utf-8-sig"))
            except (ValueError, RecursionError):
                value = None
            if value is not None:
                fmt = "json"
                if looks_like_keras_config(value):
                    fmt = "keras-config"
                    for problem in keras_config_problems(value):
                        self._problem(report, part, problem)
        self._record_part(report, part, fmt)
        return fmt

    # -- NumPy ---------------------------------------------------------------------------------

    def _scan_npy(self, part: Part, report: FileReport) -> str:
        with part.opener() as fh:
            src = self._source(part, fh)
            header = read_npy_header(src, self.limits.max_header_bytes)
            if header.hasobject:
                analysis = analyze_pickle(src, joblib=False)
                if analysis.complete:
                    trailing = src.drain()
                    if trailing:
                        analysis.issues.append(_trailing(analysis.end, trailing))
                for problem in self._pickle_problems(analysis):
                    self._problem(report, part, problem)
                report.globals.update(analysis.globals_count())
                self._record_part(
                    report, part, "npy", dtype=str(header.descr), object_array=True, globals=dict(analysis.globals_count())
                )
                return "npy/pickle"
            expected = header.nbytes
            actual = (part.size - header.header_end) if part.size is not None else src.drain()
        if actual < expected:
            self._problem(
                report,
                part,
                Problem(
                    "npy-truncated",
                    Severity.HIGH,
                    f"array of shape {header.shape} needs {expected} data bytes but the file holds {actual}",
                    header.header_end,
                    kind="unreadable",
                ),
            )
        elif actual > expected:
            self._problem(
                report,
                part,
                Problem(
                    "trailing-data",
                    Severity.MEDIUM,
                    f"{actual - expected} bytes follow the array data (hidden content for another reader)",
                    header.header_end + expected,
                ),
            )
        self._record_part(report, part, "npy", dtype=str(header.descr), shape=list(header.shape))
        return "npy"

    # -- safetensors, HDF5, ONNX ---------------------------------------------------------------

    def _scan_safetensors(self, part: Part, report: FileReport) -> str:
        if part.size is None:  # a decompressed stream: its size is needed to check the offsets
            part = self._with_path(part)
        assert part.size is not None
        with part.opener() as fh:
            problems, info = check_safetensors(self._source(part, fh), part.size, self.limits.max_header_bytes)
        for problem in problems:
            self._problem(report, part, problem)
        self._record_part(report, part, "safetensors", **info)
        return "safetensors"

    def _scan_h5(self, part: Part, report: FileReport) -> str:
        part = self._with_path(part)
        assert part.path is not None
        problems, info = inspect_h5(part.path, self.limits.max_json_bytes)
        for problem in problems:
            self._problem(report, part, problem)
        fmt = "keras-h5" if info.get("keras") else "hdf5"
        self._record_part(report, part, fmt, **info)
        return fmt

    def _scan_onnx(self, part: Part, report: FileReport) -> str:
        part = self._with_path(part)
        assert part.path is not None
        problems, info = inspect_onnx(str(part.path), part.model_dir)
        for problem in problems:
            self._problem(report, part, problem)
        if part.model_dir is not None:
            self.external_data.update((part.model_dir / name).resolve() for name in info.get("external_files", ()))
        self._record_part(report, part, "onnx", **info)
        return "onnx"

    # -- containers ----------------------------------------------------------------------------

    def _too_deep(self, part: Part, report: FileReport, what: str) -> bool:
        if part.depth >= self.limits.max_archive_depth:
            self._problem(
                report,
                part,
                Problem(
                    "archive-depth",
                    Severity.HIGH,
                    f"is a {what} nested {part.depth} levels deep (limit {self.limits.max_archive_depth}); not opened",
                ),
            )
            self._record_part(report, part, what)
            return True
        return False

    def _scan_compressed(self, fmt: str, part: Part, report: FileReport) -> str:
        if self._too_deep(part, report, fmt):
            return fmt
        try:
            decompressor = _DECOMPRESSORS[fmt]
            if fmt == "lz4":
                import lz4.frame  # noqa: F401 - fail here, not mid-stream
        except ImportError:
            self._problem(
                report,
                part,
                Problem(
                    "cannot-inspect", Severity.HIGH, "is lz4-compressed and the lz4 package is not installed", kind="unreadable"
                ),
            )
            return fmt
        outer = part
        compressed = part.size if part.size is not None else self.limits.max_total_uncompressed_bytes

        def opener() -> BinaryIO:
            raw = outer.opener()
            return LimitedStream(  # type: ignore[return-value]
                decompressor(raw),
                also_close=raw,
                compressed_size=compressed,
                budget=self.budget,
                max_ratio=self.limits.max_compression_ratio,
                ratio_min_bytes=self.limits.ratio_min_bytes,
                what=f"{outer.label} ({fmt})",
            )

        inner = Part(f"{part.label} ({fmt}-decompressed)", opener, None, depth=part.depth + 1)
        self._record_part(report, part, fmt)
        return f"{fmt}/{self._scan(inner, report)}"

    def _with_path(self, part: Part) -> Part:
        """The part backed by a regular file (spooled into the scan's temporary directory if needed)."""
        if part.path is not None:
            return part
        self._spooled += 1
        target = self.tmpdir / f"part-{self._spooled}"
        size = 0
        with part.opener() as src, open(target, "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
                size += len(chunk)

        def opener() -> BinaryIO:
            return open(target, "rb")

        return Part(part.label, opener, size, path=target, depth=part.depth, model_dir=part.model_dir)

    def _scan_zip(self, part: Part, report: FileReport) -> str:
        if self._too_deep(part, report, "zip archive"):
            return "zip"
        part = self._with_path(part)
        assert part.path is not None
        try:
            zf = zipfile.ZipFile(part.path)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
            self._problem(
                report, part, Problem("zip-invalid", Severity.HIGH, f"is not a readable zip archive: {exc}", kind="unreadable")
            )
            self._record_part(report, part, "zip")
            return "zip"
        with zf:
            infos = zf.infolist()
            if len(infos) > self.limits.max_members:
                self._problem(
                    report,
                    part,
                    Problem(
                        "archive-members",
                        Severity.HIGH,
                        f"holds {len(infos)} members (limit {self.limits.max_members}); not opened",
                    ),
                )
                self._record_part(report, part, "zip", members=len(infos))
                return "zip"
            skip = self._zip_structure(zf, infos, part, report)
            names = {i.filename for i in infos if not i.is_dir()}
            kind = _zip_kind(names)
            if kind == "skops":
                self._skops(part, report)
            if kind == "pytorch":
                self._torchscript(names, part, report)
            self._record_part(report, part, kind if kind != "zip" else "zip", members=len(infos))
            for info in infos:
                if info.is_dir() or info.filename in skip:
                    continue
                if kind == "pytorch" and _TORCH_STORAGE.match(info.filename):
                    continue  # raw tensor storage: read with frombuffer, never unpickled
                self._scan(self._zip_member(zf, info, part), report)
        return {"pytorch": "pytorch-zip", "zip": "zip"}.get(kind, kind)

    def _zip_member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, part: Part) -> Part:
        label = f"{info.filename} in {part.label}"
        limits = self.limits

        def opener() -> BinaryIO:
            stream: BinaryIO = zf.open(info)  # type: ignore[assignment]
            if info.compress_type == zipfile.ZIP_STORED:
                return stream
            return LimitedStream(  # type: ignore[return-value]
                stream,
                compressed_size=info.compress_size,
                budget=self.budget,
                max_ratio=limits.max_compression_ratio,
                ratio_min_bytes=limits.ratio_min_bytes,
                what=label,
            )

        return Part(label, opener, info.file_size, depth=part.depth + 1)

    def _zip_structure(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], part: Part, report: FileReport) -> set[str]:
        """Names, links, encryption, declared sizes, ratios and overlaps. Returns members not to open."""
        skip: set[str] = set()
        seen: set[str] = set()
        declared = 0
        limits = self.limits
        for info in infos:
            name = info.filename
            why = _unsafe_member_name(name)
            if why:
                self._problem(
                    report,
                    part,
                    Problem(
                        "archive-traversal", Severity.CRITICAL, f"member {name!r} {why}: extracting it writes outside the target"
                    ),
                )
            if name in seen:
                self._problem(
                    report,
                    part,
                    Problem(
                        "archive-duplicate",
                        Severity.HIGH,
                        f"holds two members named {name!r}: readers disagree on which one counts",
                    ),
                )
            seen.add(name)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                self._problem(report, part, Problem("archive-link", Severity.HIGH, f"member {name!r} is a symbolic link"))
                skip.add(name)
            if info.flag_bits & 0x1:
                self._problem(
                    report,
                    part,
                    Problem(
                        "archive-encrypted",
                        Severity.HIGH,
                        f"member {name!r} is encrypted and cannot be inspected",
                        kind="unreadable",
                    ),
                )
                skip.add(name)
            if info.compress_type != zipfile.ZIP_STORED:
                declared += info.file_size
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > limits.ratio_min_bytes and ratio > limits.max_compression_ratio:
                    self._problem(
                        report,
                        part,
                        Problem(
                            "archive-bomb",
                            Severity.HIGH,
                            f"member {name!r} declares {info.file_size} bytes from {info.compress_size} compressed "
                            f"({ratio:.0f}x, limit {limits.max_compression_ratio:g}x): a decompression bomb; not opened",
                        ),
                    )
                    skip.add(name)
            elif info.file_size != info.compress_size:
                self._problem(
                    report,
                    part,
                    Problem(
                        "archive-size-mismatch",
                        Severity.HIGH,
                        f"stored member {name!r} declares {info.file_size} bytes but occupies {info.compress_size}",
                        kind="unreadable",
                    ),
                )
                skip.add(name)
        if self.budget.used + declared > limits.max_total_uncompressed_bytes:
            self._problem(
                report,
                part,
                Problem(
                    "archive-bomb",
                    Severity.HIGH,
                    f"members declare {declared} uncompressed bytes, over the scan's limit of "
                    f"{limits.max_total_uncompressed_bytes}; not opened",
                ),
            )
            skip.update(i.filename for i in infos)
        self._zip_overlaps(zf, infos, part, report)
        return skip

    def _zip_overlaps(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], part: Part, report: FileReport) -> None:
        """Members whose data overlap (the non-recursive zip bomb) or whose local header lies."""
        assert part.path is not None
        spans = []
        with open(part.path, "rb") as fh:
            for info in infos:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if len(local) < 30 or local[:4] != b"PK\x03\x04":
                    self._problem(
                        report,
                        part,
                        Problem(
                            "zip-invalid",
                            Severity.HIGH,
                            f"member {info.filename!r} has no local header",
                            info.header_offset,
                            kind="unreadable",
                        ),
                    )
                    continue
                name_len = int.from_bytes(local[26:28], "little")
                extra_len = int.from_bytes(local[28:30], "little")
                start = info.header_offset
                end = start + 30 + name_len + extra_len + info.compress_size
                spans.append((start, end, info.filename))
        spans.sort()
        for (_s1, e1, n1), (s2, _e2, n2) in itertools.pairwise(spans):
            if s2 < e1:
                self._problem(
                    report,
                    part,
                    Problem(
                        "archive-overlap",
                        Severity.HIGH,
                        f"members {n1!r} and {n2!r} share bytes (an overlapping-entry zip bomb or a forged archive)",
                        s2,
                    ),
                )

    def _skops(self, part: Part, report: FileReport) -> None:
        assert part.path is not None
        try:
            from skops.io import get_untrusted_types

            untrusted = get_untrusted_types(file=part.path)
        except ImportError:
            self._problem(
                report,
                part,
                Problem("cannot-inspect", Severity.HIGH, "is a skops file and skops is not installed", kind="unreadable"),
            )
            return
        except Exception as exc:  # noqa: BLE001 - skops raises many kinds for malformed schemas
            self._problem(
                report,
                part,
                Problem(
                    "skops-invalid",
                    Severity.HIGH,
                    f"skops cannot read its schema: {type(exc).__name__}: {exc}",
                    kind="unreadable",
                ),
            )
            return
        for name in untrusted:
            status, what = judge(name, self.allow)
            if status == "dangerous":
                self._problem(
                    report,
                    part,
                    Problem("skops-untrusted-type", Severity.CRITICAL, f"skops schema names {name}, a known gadget: {what}"),
                )
            else:
                self._problem(
                    report,
                    part,
                    Problem(
                        "skops-untrusted-type",
                        Severity.HIGH,
                        f"skops schema names the untrusted type {name}; loading it needs trusted=[...] and runs its code",
                    ),
                )
        report.globals.update({f"skops:{name}": 1 for name in untrusted})

    def _torchscript(self, names: set[str], part: Part, report: FileReport) -> None:
        code = sorted(n for n in names if re.match(r"^[^/]+/code/", n))
        if code:
            self._problem(
                report,
                part,
                Problem(
                    "torchscript",
                    Severity.MEDIUM,
                    f"is a TorchScript archive ({len(code)} code files, e.g. {code[0]!r}); TorchScript programs are not analysed",
                    kind="unreadable",
                ),
            )

    def _scan_tar(self, part: Part, report: FileReport) -> str:
        if self._too_deep(part, report, "tar archive"):
            return "tar"
        part = self._with_path(part)
        assert part.path is not None
        with tarfile.open(part.path, mode="r:") as tf:
            count = 0
            while True:
                member = tf.next()
                if member is None:
                    break
                count += 1
                if count > self.limits.max_members:
                    self._problem(
                        report,
                        part,
                        Problem(
                            "archive-members",
                            Severity.HIGH,
                            f"holds more than {self.limits.max_members} members; the rest were not opened",
                        ),
                    )
                    break
                why = _unsafe_member_name(member.name)
                if why:
                    self._problem(
                        report,
                        part,
                        Problem(
                            "archive-traversal",
                            Severity.CRITICAL,
                            f"member {member.name!r} {why}: extracting it writes outside the target",
                        ),
                    )
                if member.issym() or member.islnk():
                    target = member.linkname
                    escapes = _unsafe_member_name(target) or target.startswith("/")
                    self._problem(
                        report,
                        part,
                        Problem(
                            "archive-link",
                            Severity.CRITICAL if escapes else Severity.HIGH,
                            f"member {member.name!r} is a link to {target!r}",
                        ),
                    )
                    continue
                if member.isdir():
                    continue
                if not member.isfile():
                    self._problem(
                        report, part, Problem("archive-special", Severity.HIGH, f"member {member.name!r} is a device or FIFO")
                    )
                    continue
                label = f"{member.name} in {part.label}"

                def opener(member: tarfile.TarInfo = member) -> BinaryIO:
                    stream = tf.extractfile(member)
                    assert stream is not None
                    return stream  # type: ignore[return-value]

                self._scan(Part(label, opener, member.size, depth=part.depth + 1), report)
        self._record_part(report, part, "tar", members=count)
        return "tar"


def _trailing(offset: int, count: int) -> Any:
    from airflow_mlsecops.gates._model_scan.pickles import Issue

    return Issue(
        "trailing-data",
        f"{count} bytes after the pickle's STOP are not a pickle (content hidden from pickle.load, read by other loaders)",
        offset,
        "medium",
    )


def _why(exc: BaseException) -> str:
    known = isinstance(exc, _READ_ERRORS)
    return str(exc) if known and str(exc) else f"{type(exc).__name__}: {exc}"


def _read_head(fh: BinaryIO) -> bytes:
    parts = []
    got = 0
    while got < HEAD:
        chunk = fh.read(HEAD - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@contextmanager
def scan_tmpdir() -> Iterator[Path]:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="mlsecops-model-scan-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def walk_files(root: Path, max_files: int) -> list[Path]:
    """Regular files under ``root`` in a stable order; a symbolic link is an error (as for digests)."""
    from airflow_mlsecops.exceptions import GateError

    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in (*dirnames, *filenames):
            if os.path.islink(os.path.join(dirpath, name)):
                raise GateError(f"{os.path.join(dirpath, name)} is a symbolic link; refusing to follow it")
        for name in sorted(filenames):
            full = Path(dirpath, name)
            if not full.is_file():
                raise GateError(f"{full} is not a regular file (device, FIFO or socket)")
            files.append(full)
            if len(files) > max_files:
                raise LimitExceeded(f"{root} holds more than {max_files} files")
    return files
