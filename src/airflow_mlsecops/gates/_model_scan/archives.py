"""Zip and tar archives: structure checks (names, links, bombs, overlaps), PyTorch, skops and Keras zips, members.

Every member is scanned by content as a part one level deeper; raw tensor storage in a PyTorch zip
(``data/N``) is the only member not opened.
"""

from __future__ import annotations

import itertools
import re
import stat
import tarfile
import zipfile
from typing import TYPE_CHECKING, BinaryIO

from airflow_mlsecops.evidence.models import Severity
from airflow_mlsecops.gates._model_scan.allowlist import judge
from airflow_mlsecops.gates._model_scan.formats import Problem
from airflow_mlsecops.gates._model_scan.parts import FileReport, Part
from airflow_mlsecops.gates._model_scan.source import LimitedStream

if TYPE_CHECKING:
    from airflow_mlsecops.gates._model_scan.context import ScanContext


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


def scan_zip(scanner: ScanContext, part: Part, report: FileReport) -> str:
    """Check a zip archive's structure, then scan its members; returns the format (``pytorch-zip``, ``keras``...)."""
    if scanner.too_deep(part, report, "zip archive"):
        return "zip"
    part = scanner.with_path(part)
    assert part.path is not None
    try:
        zf = zipfile.ZipFile(part.path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        scanner.problem(
            report, part, Problem("zip-invalid", Severity.HIGH, f"is not a readable zip archive: {exc}", kind="unreadable")
        )
        scanner.record_part(report, part, "zip")
        return "zip"
    with zf:
        infos = zf.infolist()
        if len(infos) > scanner.limits.max_members:
            scanner.problem(
                report,
                part,
                Problem(
                    "archive-members",
                    Severity.HIGH,
                    f"holds {len(infos)} members (limit {scanner.limits.max_members}); not opened",
                ),
            )
            scanner.record_part(report, part, "zip", members=len(infos))
            return "zip"
        skip = _zip_structure(scanner, zf, infos, part, report)
        names = {i.filename for i in infos if not i.is_dir()}
        kind = _zip_kind(names)
        if kind == "skops":
            _skops(scanner, part, report)
        if kind == "pytorch":
            _torchscript(scanner, names, part, report)
        scanner.record_part(report, part, kind if kind != "zip" else "zip", members=len(infos))
        for info in infos:
            if info.is_dir() or info.filename in skip:
                continue
            if kind == "pytorch" and _TORCH_STORAGE.match(info.filename):
                continue  # raw tensor storage: read with frombuffer, never unpickled
            scanner.scan_part(_zip_member(scanner, zf, info, part), report)
    return {"pytorch": "pytorch-zip", "zip": "zip"}.get(kind, kind)


def _zip_member(scanner: ScanContext, zf: zipfile.ZipFile, info: zipfile.ZipInfo, part: Part) -> Part:
    label = f"{info.filename} in {part.label}"
    limits = scanner.limits

    def opener() -> BinaryIO:
        stream: BinaryIO = zf.open(info)  # type: ignore[assignment]
        if info.compress_type == zipfile.ZIP_STORED:
            return stream
        return LimitedStream(  # type: ignore[return-value]
            stream,
            compressed_size=info.compress_size,
            budget=scanner.budget,
            max_ratio=limits.max_compression_ratio,
            ratio_min_bytes=limits.ratio_min_bytes,
            what=label,
        )

    return Part(label, opener, info.file_size, depth=part.depth + 1)


def _zip_structure(
    scanner: ScanContext, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], part: Part, report: FileReport
) -> set[str]:
    """Names, links, encryption, declared sizes, ratios and overlaps. Returns members not to open."""
    skip: set[str] = set()
    seen: set[str] = set()
    declared = 0
    limits = scanner.limits
    for info in infos:
        name = info.filename
        why = _unsafe_member_name(name)
        if why:
            scanner.problem(
                report,
                part,
                Problem(
                    "archive-traversal", Severity.CRITICAL, f"member {name!r} {why}: extracting it writes outside the target"
                ),
            )
        if name in seen:
            scanner.problem(
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
            scanner.problem(report, part, Problem("archive-link", Severity.HIGH, f"member {name!r} is a symbolic link"))
            skip.add(name)
        if info.flag_bits & 0x1:
            scanner.problem(
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
                scanner.problem(
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
            scanner.problem(
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
    if scanner.budget.used + declared > limits.max_total_uncompressed_bytes:
        scanner.problem(
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
    _zip_overlaps(scanner, zf, infos, part, report)
    return skip


def _zip_overlaps(
    scanner: ScanContext, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], part: Part, report: FileReport
) -> None:
    """Members whose data overlap (the non-recursive zip bomb) or whose local header lies."""
    assert part.path is not None
    spans = []
    with open(part.path, "rb") as fh:
        for info in infos:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                scanner.problem(
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
            scanner.problem(
                report,
                part,
                Problem(
                    "archive-overlap",
                    Severity.HIGH,
                    f"members {n1!r} and {n2!r} share bytes (an overlapping-entry zip bomb or a forged archive)",
                    s2,
                ),
            )


def _skops(scanner: ScanContext, part: Part, report: FileReport) -> None:
    assert part.path is not None
    try:
        from skops.io import get_untrusted_types

        untrusted = get_untrusted_types(file=part.path)
    except ImportError:
        scanner.problem(
            report,
            part,
            Problem("cannot-inspect", Severity.HIGH, "is a skops file and skops is not installed", kind="unreadable"),
        )
        return
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds for malformed schemas
        scanner.problem(
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
        status, what = judge(name, scanner.allow)
        if status == "dangerous":
            scanner.problem(
                report,
                part,
                Problem("skops-untrusted-type", Severity.CRITICAL, f"skops schema names {name}, a known gadget: {what}"),
            )
        else:
            scanner.problem(
                report,
                part,
                Problem(
                    "skops-untrusted-type",
                    Severity.HIGH,
                    f"skops schema names the untrusted type {name}; loading it needs trusted=[...] and runs its code",
                ),
            )
    report.globals.update({f"skops:{name}": 1 for name in untrusted})


def _torchscript(scanner: ScanContext, names: set[str], part: Part, report: FileReport) -> None:
    code = sorted(n for n in names if re.match(r"^[^/]+/code/", n))
    if code:
        scanner.problem(
            report,
            part,
            Problem(
                "torchscript",
                Severity.MEDIUM,
                f"is a TorchScript archive ({len(code)} code files, e.g. {code[0]!r}); TorchScript programs are not analysed",
                kind="unreadable",
            ),
        )


def scan_tar(scanner: ScanContext, part: Part, report: FileReport) -> str:
    """Check a tar archive's member names and types, then scan its regular files."""
    if scanner.too_deep(part, report, "tar archive"):
        return "tar"
    part = scanner.with_path(part)
    assert part.path is not None
    with tarfile.open(part.path, mode="r:") as tf:
        count = 0
        while True:
            member = tf.next()
            if member is None:
                break
            count += 1
            if count > scanner.limits.max_members:
                scanner.problem(
                    report,
                    part,
                    Problem(
                        "archive-members",
                        Severity.HIGH,
                        f"holds more than {scanner.limits.max_members} members; the rest were not opened",
                    ),
                )
                break
            why = _unsafe_member_name(member.name)
            if why:
                scanner.problem(
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
                scanner.problem(
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
                scanner.problem(
                    report, part, Problem("archive-special", Severity.HIGH, f"member {member.name!r} is a device or FIFO")
                )
                continue
            label = f"{member.name} in {part.label}"

            def opener(member: tarfile.TarInfo = member) -> BinaryIO:
                stream = tf.extractfile(member)
                assert stream is not None
                return stream  # type: ignore[return-value]

            scanner.scan_part(Part(label, opener, member.size, depth=part.depth + 1), report)
    scanner.record_part(report, part, "tar", members=count)
    return "tar"
