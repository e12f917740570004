"""What a scan's parts share: the :class:`ScanLimits`, and :class:`ScanContext`, the view of the
running scanner that the format modules (archives, compressed streams, pickles) call back into.

The engine (:class:`~airflow_mlsecops.gates._model_scan.engine.Scanner`) implements the context; the
format modules type against this protocol, so none of them imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_mlsecops.gates._model_scan.formats import Problem
    from airflow_mlsecops.gates._model_scan.parts import FileReport, Part
    from airflow_mlsecops.gates._model_scan.source import Budget


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


class ScanContext(Protocol):
    """The running scan, as the format modules see it."""

    limits: ScanLimits
    allow: frozenset[str]
    budget: Budget

    def problem(self, report: FileReport, part: Part, problem: Problem) -> None:
        """Record ``problem`` found in ``part`` of ``report``'s file."""

    def record_part(self, report: FileReport, part: Part, fmt: str, **details: Any) -> None:
        """Record that ``part`` was judged as format ``fmt``."""

    def scan_part(self, part: Part, report: FileReport) -> str:
        """Scan a nested part (an archive member, a decompressed stream); return its format."""

    def too_deep(self, part: Part, report: FileReport, what: str) -> bool:
        """Whether ``part`` is nested deeper than the limits allow (recorded as a problem)."""

    def with_path(self, part: Part) -> Part:
        """``part`` spooled to a regular file if it needs random access."""
