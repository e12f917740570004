"""The byte streams a scan judges (:class:`Part`) and what it finds in each file (:class:`FileReport`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from airflow_mlsecops.evidence.models import Finding
from airflow_mlsecops.gates._model_scan.source import ByteSource


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


def byte_source(part: Part, fh: BinaryIO) -> ByteSource:
    """A reader of ``fh`` (opened from ``part``) that seeks over payloads when the part is a regular file."""
    return ByteSource(fh, size=part.size, seekable=part.path is not None)
