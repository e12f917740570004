"""What the static pickle analyser (:mod:`.pickles`) reports about one pickle stream."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RefSeen:
    """Where and how often a ``module.name`` reference appears."""

    count: int
    offset: int
    opcode: str
    written_as: str | None = None  # the name as written when protocol < 3 renamed it
    note: str | None = None


@dataclass
class Issue:
    """Something a static analysis flags beyond the references themselves."""

    kind: str  # dynamic-global | call-non-global | build-on-global | extension | ambiguous | nested
    detail: str
    offset: int
    severity: str = "high"


@dataclass
class PickleAnalysis:
    """What one pickle stream (up to its ``STOP``) references and does."""

    start: int
    protocol: int = 0
    complete: bool = False
    end: int = 0
    error: str | None = None
    error_offset: int | None = None
    refs: dict[str, RefSeen] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)
    effects: int = 0  # imports and calls the unpickler would perform
    opcodes: int = 0
    joblib_arrays: int = 0
    joblib_array_bytes: int = 0
    persistent_ids: int = 0
    result: Any = None
    #: why the stream cannot be read the way every CPython loader reads it (loaders disagree, or a
    #: scanner limit was hit): such a stream is judged as a pickle, never as text, and is rejected
    undecidable: str | None = None
    #: byte spans of joblib object-array blocks (nested pickles joblib reads with a fresh unpickler)
    nested_spans: list[tuple[int, int]] = field(default_factory=list)

    def globals_count(self) -> Counter[str]:
        return Counter({ref: seen.count for ref, seen in self.refs.items()})

    def merge(self, other: PickleAnalysis, *, keep_errors: bool = True) -> None:
        for ref, seen in other.refs.items():
            mine = self.refs.get(ref)
            if mine is None:
                self.refs[ref] = RefSeen(seen.count, seen.offset, seen.opcode, seen.written_as)
            else:
                mine.count += seen.count
        self.calls.update(other.calls)
        self.issues.extend(other.issues)
        self.effects += other.effects
        self.opcodes += other.opcodes
        self.joblib_arrays += other.joblib_arrays
        self.joblib_array_bytes += other.joblib_array_bytes
        self.persistent_ids += other.persistent_ids
        self.nested_spans.extend(other.nested_spans)
        self.undecidable = self.undecidable or other.undecidable
        if keep_errors and other.error and not self.error:
            self.error, self.error_offset = other.error, other.error_offset
