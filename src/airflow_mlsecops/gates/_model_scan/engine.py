"""Content detection and recursive scanning of files, archives and compressed streams.

A *part* is any byte stream the scanner judges: a file, a zip or tar member, or what a compressed
stream decompresses to. Its format is decided from its bytes only (never its name), and a part
holding other parts (an archive, a compressed stream) is scanned recursively within
:class:`ScanLimits`. Every problem becomes a finding located at ``<part> @ byte <offset>``, where
``<part>`` names the chain (``archive/data.pkl in model.pt``, ``model.joblib (zlib-decompressed)``).

:class:`Scanner` keeps the recursion (detect, dispatch, record) and the data formats read in place
(text and Keras JSON, NumPy, safetensors, HDF5, ONNX); containers and pickles are scanned by
:mod:`.archives`, :mod:`.compressed` and :mod:`.pickle_judging`, which call back into
:meth:`Scanner.scan_part` for every part they hold.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from airflow_mlsecops.evidence.models import Finding, Severity
from airflow_mlsecops.gates._model_scan.archives import scan_tar, scan_zip
from airflow_mlsecops.gates._model_scan.compressed import DECOMPRESSORS, scan_compressed
from airflow_mlsecops.gates._model_scan.context import ScanLimits
from airflow_mlsecops.gates._model_scan.detect import detect, read_head
from airflow_mlsecops.gates._model_scan.embedded import find_embedded_zips
from airflow_mlsecops.gates._model_scan.formats import (
    FormatError,
    Problem,
    check_safetensors,
    inspect_h5,
    inspect_onnx,
    is_text,
    keras_config_problems,
    looks_like_keras_config,
    read_npy_header,
)
from airflow_mlsecops.gates._model_scan.mlflow_models import (
    MAX_MLMODEL_BYTES,
    looks_like_mlmodel,
    mlmodel_problems,
    parse_mlmodel,
)
from airflow_mlsecops.gates._model_scan.parts import FileReport, Part, byte_source
from airflow_mlsecops.gates._model_scan.pickle_judging import (
    pickle_problems,
    pickle_stream,
    polyglot_probe,
    report_pickles,
    trailing_data_issue,
)
from airflow_mlsecops.gates._model_scan.pickle_results import PickleAnalysis
from airflow_mlsecops.gates._model_scan.pickles import OPCODE_BYTES, analyze_pickle
from airflow_mlsecops.gates._model_scan.source import Budget, LimitExceeded, Truncated

ATLAS = ("AML.T0011.000", "AML.T0010.003")
OWASP = ("ML06:2023",)


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


class Scanner:
    """Scans files; keeps the scan-wide decompression budget and a temporary directory.

    :param limits: the limits.
    :param allow: extra exact ``module.name`` references to allow (gadgets stay critical).
    :param tmpdir: where members that need random access (zip in zip, HDF5, ONNX) are spooled.
    :param allow_model_code: MLflow models that run code shipped with them are recorded, not rejected.
    """

    def __init__(self, limits: ScanLimits, allow: frozenset[str], tmpdir: Path, *, allow_model_code: bool = False) -> None:
        self.limits = limits
        self.allow = allow
        self.allow_model_code = allow_model_code
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

        report.format = self.scan_part(Part(display, opener, size, path=path, model_dir=model_dir), report)
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

    def problem(self, report: FileReport, part: Part, problem: Problem) -> None:
        """Record ``problem`` of ``part`` as a finding (beyond the per-file cap, only counted)."""
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

    def record_part(self, report: FileReport, part: Part, fmt: str, **details: Any) -> None:
        """List ``part`` with its format and ``details`` among the report's parts (the first 1,000)."""
        if len(report.parts) < 1000:
            report.parts.append({"name": part.label, "format": fmt, "bytes": part.size, **details})

    # -- dispatch ------------------------------------------------------------------------------

    def scan_part(self, part: Part, report: FileReport) -> str:
        """Judge ``part`` by its content, recursing into what it holds; returns the format detected."""
        try:
            with part.opener() as fh:
                head = read_head(fh)
        except LimitExceeded as exc:
            self.problem(report, part, Problem("limit", Severity.HIGH, str(exc)))
            return "unknown"
        except Exception as exc:  # noqa: BLE001 - hostile input: any failure to read is a finding, never a pass
            self.problem(report, part, Problem("unreadable", Severity.HIGH, f"cannot be read: {_why(exc)}", kind="unreadable"))
            return "unknown"
        if not head:
            self.problem(
                report, part, Problem("empty", Severity.HIGH, "is empty: not a model file (nothing to judge)", kind="unreadable")
            )
            self.record_part(report, part, "empty")
            return "empty"
        fmt = detect(head, part.size)
        try:
            if fmt is not None and head[0] in OPCODE_BYTES:
                polyglot_probe(self, part, report, fmt)
            result = self._dispatch(fmt, head, part, report)
            if part.path is not None and part.size is not None and fmt != "zip":
                self._embedded_zips(part, report, result)
            return result
        except LimitExceeded as exc:
            self.problem(report, part, Problem("limit", Severity.HIGH, str(exc)))
        except FormatError as exc:
            self.problem(report, part, Problem("invalid", Severity.HIGH, str(exc), exc.offset, kind="unreadable"))
        except Exception as exc:  # noqa: BLE001 - hostile input: any failure to read is a finding, never a pass
            self.problem(
                report,
                part,
                Problem("unreadable", Severity.HIGH, f"cannot be read as {fmt or 'a pickle'}: {_why(exc)}", kind="unreadable"),
            )
        self.record_part(report, part, fmt or "unknown")
        return fmt or "unknown"

    def _dispatch(self, fmt: str | None, head: bytes, part: Part, report: FileReport) -> str:
        if fmt is None:
            return self._scan_untyped(head, part, report)
        if fmt == "zip":
            return scan_zip(self, part, report)
        if fmt == "tar":
            return scan_tar(self, part, report)
        if fmt in DECOMPRESSORS:
            return scan_compressed(self, fmt, part, report)
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
        self.problem(report, part, Problem("unsupported-format", Severity.HIGH, f"is {what}", 0, kind="unreadable"))
        self.record_part(report, part, fmt)
        return fmt

    # -- untyped: pickles, text or unknown -----------------------------------------------------

    def _scan_untyped(self, head: bytes, part: Part, report: FileReport) -> str:
        analyses: list[PickleAnalysis] = []
        if head[0] in OPCODE_BYTES:
            analyses, legacy = pickle_stream(part)
            first = analyses[0]
            # a stream the loaders may read further than the scanner can is a pickle, never text
            if first.complete or first.effects or first.undecidable:
                return report_pickles(self, analyses, legacy, part, report)
        with part.opener() as fh:
            if is_text(byte_source(part, fh)):
                return self._scan_text(head, part, report)
        why = "is not a complete pickle, nor text, nor a format this scanner knows"
        if analyses and analyses[0].error:
            why += f" (read as a pickle: {analyses[0].error} at byte {analyses[0].error_offset})"
        self.problem(report, part, Problem("unknown-format", Severity.HIGH, why, 0, kind="unreadable"))
        self.record_part(report, part, "unknown")
        return "unknown"

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
                        self.problem(report, part, problem)
        details: dict[str, Any] = {}
        if fmt == "text" and looks_like_mlmodel(head) and (part.size or 0) <= MAX_MLMODEL_BYTES:
            with part.opener() as fh:
                mlmodel = parse_mlmodel(fh.read(MAX_MLMODEL_BYTES + 1))
            if mlmodel is not None:
                fmt = "mlflow-mlmodel"
                problems, code = mlmodel_problems(mlmodel, part.model_dir, self.allow_model_code)
                for problem in problems:
                    self.problem(report, part, problem)
                if code:
                    details["model_code"] = code
        self.record_part(report, part, fmt, **details)
        return fmt

    # -- NumPy ---------------------------------------------------------------------------------

    def _scan_npy(self, part: Part, report: FileReport) -> str:
        with part.opener() as fh:
            src = byte_source(part, fh)
            header = read_npy_header(src, self.limits.max_header_bytes)
            if header.hasobject:
                analysis = analyze_pickle(src, joblib=False)
                if analysis.complete:
                    trailing = src.drain()
                    if trailing:
                        analysis.issues.append(trailing_data_issue(analysis.end, trailing))
                for problem in pickle_problems(analysis, self.allow):
                    self.problem(report, part, problem)
                report.globals.update(analysis.globals_count())
                self.record_part(
                    report, part, "npy", dtype=str(header.descr), object_array=True, globals=dict(analysis.globals_count())
                )
                return "npy/pickle"
            expected = header.nbytes
            actual = (part.size - header.header_end) if part.size is not None else src.drain()
        if actual < expected:
            self.problem(
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
            self.problem(
                report,
                part,
                Problem(
                    "trailing-data",
                    Severity.MEDIUM,
                    f"{actual - expected} bytes follow the array data (hidden content for another reader)",
                    header.header_end + expected,
                ),
            )
        self.record_part(report, part, "npy", dtype=str(header.descr), shape=list(header.shape))
        return "npy"

    # -- safetensors, HDF5, ONNX ---------------------------------------------------------------

    def _scan_safetensors(self, part: Part, report: FileReport) -> str:
        if part.size is None:  # a decompressed stream: its size is needed to check the offsets
            part = self.with_path(part)
        assert part.size is not None
        with part.opener() as fh:
            problems, info = check_safetensors(byte_source(part, fh), part.size, self.limits.max_header_bytes)
        for problem in problems:
            self.problem(report, part, problem)
        self.record_part(report, part, "safetensors", **info)
        return "safetensors"

    def _scan_h5(self, part: Part, report: FileReport) -> str:
        part = self.with_path(part)
        assert part.path is not None
        problems, info = inspect_h5(part.path, self.limits.max_json_bytes)
        for problem in problems:
            self.problem(report, part, problem)
        fmt = "keras-h5" if info.get("keras") else "hdf5"
        self.record_part(report, part, fmt, **info)
        return fmt

    def _scan_onnx(self, part: Part, report: FileReport) -> str:
        part = self.with_path(part)
        assert part.path is not None
        problems, info = inspect_onnx(str(part.path), part.model_dir)
        for problem in problems:
            self.problem(report, part, problem)
        if part.model_dir is not None:
            self.external_data.update((part.model_dir / name).resolve() for name in info.get("external_files", ()))
        self.record_part(report, part, "onnx", **info)
        return "onnx"

    # -- archives hidden in other formats -------------------------------------------------------

    def _embedded_zips(self, part: Part, report: FileReport, fmt: str) -> None:
        """Zip archives a zip reader finds in ``part`` (a file of another format): a finding each, members scanned."""
        assert part.path is not None and part.size is not None
        records = find_embedded_zips(part.path, part.size, whole=fmt in ("npy", "safetensors"))
        whole_scanned = False
        for record in records:
            where = "in the last 64 KiB, where zip readers look" if record.in_tail else "inside the data"
            self.problem(
                report,
                part,
                Problem(
                    "polyglot",
                    Severity.HIGH,
                    f"is a {fmt} file that also holds a zip archive (end record at byte {record.eocd}, {where}): "
                    "zip readers such as Keras, skops and torch open it; its members are scanned",
                    record.eocd,
                ),
            )
            if record.start is not None:
                self.scan_part(self._carve(part, record.start, record.end), report)
            elif record.in_tail and not whole_scanned:
                whole_scanned = True  # ZIP64: let zipfile find it from the end, as loaders do
                inner = Part(f"zip archive in {part.label}", part.opener, part.size, path=part.path, depth=part.depth + 1)
                scan_zip(self, inner, report)

    def _carve(self, part: Part, start: int, end: int) -> Part:
        """Bytes ``[start, end)`` of a path-backed ``part`` as a part of their own (spooled), one level deeper."""
        assert part.path is not None
        self._spooled += 1
        target = self.tmpdir / f"part-{self._spooled}"
        with open(part.path, "rb") as src, open(target, "wb") as dst:
            src.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                remaining -= len(chunk)

        def opener() -> BinaryIO:
            return open(target, "rb")

        label = f"zip archive at byte {start} in {part.label}"
        return Part(label, opener, end - start, path=target, depth=part.depth + 1, model_dir=part.model_dir)

    # -- for containers ------------------------------------------------------------------------

    def too_deep(self, part: Part, report: FileReport, what: str) -> bool:
        """True, with a finding, when the container ``part`` is nested as deep as the limit allows."""
        if part.depth >= self.limits.max_archive_depth:
            self.problem(
                report,
                part,
                Problem(
                    "archive-depth",
                    Severity.HIGH,
                    f"is a {what} nested {part.depth} levels deep (limit {self.limits.max_archive_depth}); not opened",
                ),
            )
            self.record_part(report, part, what)
            return True
        return False

    def with_path(self, part: Part) -> Part:
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


def _why(exc: BaseException) -> str:
    known = isinstance(exc, _READ_ERRORS)
    return str(exc) if known and str(exc) else f"{type(exc).__name__}: {exc}"


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
    from airflow_mlsecops.evidence.digest import refuse_unlistable
    from airflow_mlsecops.exceptions import GateError

    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=refuse_unlistable, followlinks=False):
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
