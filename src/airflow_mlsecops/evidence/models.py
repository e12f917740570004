"""Typed, frozen records of what a gate decided: :class:`GateResult` and its parts.

A :class:`GateResult` is the unit of evidence. It serialises to plain JSON (``to_dict``) and
back (``from_dict``) without loss, becomes the predicate of an in-toto Statement, and is what the
verifier re-reads years later, so every field has a stable JSON name.

>>> from airflow_mlsecops.evidence.models import GateResult, Verdict, Subject
>>> r = GateResult.create(gate="demo", verdict=Verdict.PASSED,
...                       subjects=[Subject("train.csv", "0" * 64)])
>>> GateResult.from_dict(r.to_dict()) == r
True
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from airflow_mlsecops.exceptions import ConfigurationError

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Verdict(str, enum.Enum):
    """What a gate decided.

    ``WARNED`` means "not a clean pass, not blocking", for one of two reasons, recorded in
    :attr:`GateResult.warned_reason`:

    * ``warn-only`` (:data:`WARNED_WARN_ONLY`): the gate found what would have rejected the input but
      ran in warn-only mode. Promotion never counts it.
    * ``incomplete`` (:data:`WARNED_INCOMPLETE`): nothing was rejected, but a check was not performed
      (no OSV database, no label column, a bound instead of an exact result, a sample of the rows);
      ``details["not_performed"]`` names each one. Promotion counts it only for a gate the promote
      step and the policy accept (``accept_warned``).

    It is never treated as ``PASSED``.
    """

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    WARNED = "warned"

    @property
    def blocks(self) -> bool:
        """Whether this verdict stops the pipeline (``FAILED`` and ``ERROR`` do)."""
        return self in (Verdict.FAILED, Verdict.ERROR)


class Severity(str, enum.Enum):
    """Severity of a finding, ordered from least to most serious."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}

#: Why a result is ``warned``: a check was not performed (nothing rejected).
WARNED_INCOMPLETE = "incomplete"
#: Why a result is ``warned``: warn-only mode turned a rejection into a warning.
WARNED_WARN_ONLY = "warn-only"
WARNED_REASONS = (WARNED_INCOMPLETE, WARNED_WARN_ONLY)


@dataclass(frozen=True)
class Subject:
    """An artifact a gate judged, named and pinned by its SHA-256 digest (an in-toto subject)."""

    name: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigurationError("a subject needs a name")
        if not isinstance(self.sha256, str) or not _SHA256_HEX.fullmatch(self.sha256):
            raise ConfigurationError(f"subject {self.name!r}: sha256 must be 64 lowercase hex digits")

    def to_intoto(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}

    @classmethod
    def from_intoto(cls, data: Mapping[str, Any]) -> Subject:
        return cls(name=str(data["name"]), sha256=str(data["digest"]["sha256"]))


@dataclass(frozen=True)
class Finding:
    """One thing a gate noticed.

    :param id: stable machine identifier, e.g. ``expectation.expect_column_values_to_not_be_null``.
    :param severity: how serious it is.
    :param message: one sentence a reviewer can act on.
    :param location: where (a file, column, row range or byte offset), if it has one.
    :param atlas: MITRE ATLAS technique ids this finding relates to (e.g. ``AML.T0020``).
    :param owasp_ml: OWASP Machine Learning Security Top 10 ids (e.g. ``ML02:2023``).
    :param passed: for checks reported one by one (expectations), whether this check held.
    """

    id: str
    severity: Severity
    message: str
    location: str | None = None
    atlas: tuple[str, ...] = ()
    owasp_ml: tuple[str, ...] = ()
    passed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "message": self.message,
            "location": self.location,
            "atlas": list(self.atlas),
            "owasp_ml": list(self.owasp_ml),
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            id=str(data["id"]),
            severity=Severity(data["severity"]),
            message=str(data["message"]),
            location=data.get("location"),
            atlas=tuple(data.get("atlas", ())),
            owasp_ml=tuple(data.get("owasp_ml", ())),
            passed=bool(data.get("passed", False)),
        )


@dataclass(frozen=True)
class PipelineContext:
    """Where a gate ran inside Airflow. Absent when a gate runs from the CLI."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int = 1
    map_index: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "try_number": self.try_number,
            "map_index": self.map_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineContext:
        return cls(
            dag_id=str(data["dag_id"]),
            run_id=str(data["run_id"]),
            task_id=str(data["task_id"]),
            try_number=int(data.get("try_number", 1)),
            map_index=int(data.get("map_index", -1)),
        )


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class GateResult:
    """The signed unit of evidence: what one gate judged, what it found and what it decided.

    :param gate: the gate's name (``data-validation``, ``dataset-provenance``...).
    :param verdict: the decision.
    :param subjects: each artifact judged, with its SHA-256 digest.
    :param findings: what the gate noticed, passing checks included where it reports per check.
    :param metrics: numbers worth plotting (row counts, shares, scores).
    :param policy: the thresholds and rules the gate applied, exactly as applied.
    :param tool_versions: versions of the libraries that produced the verdict.
    :param started_at: when the gate started (UTC).
    :param finished_at: when it finished (UTC).
    :param context: the Airflow task that ran it, if any.
    :param summary: one line for humans.
    :param warn_only: the gate ran in warn-only mode (a rejection became ``WARNED``).
    :param details: small, gate-specific structured data (capped by the gate).
    :param producer: the code that produced the result: ``{"engine": ..., "operator": ...}``, each a
        :class:`~airflow_mlsecops.evidence.producer.CodeIdentity` dictionary or ``None``. Stamped by
        :func:`~airflow_mlsecops.gates.base.run_gate` (engine) and the gate operator (operator);
        a result made by hand has none. Serialised only when set, so older records read unchanged.
    :param warned_reason: why a ``warned`` result is warned: :data:`WARNED_INCOMPLETE` (a check was
        not performed, ``details["not_performed"]`` names them) or :data:`WARNED_WARN_ONLY`;
        ``None`` for any other verdict. Serialised only when set: an older ``warned`` record has
        none and reads as warn-only (never accepted by promotion).
    """

    gate: str
    verdict: Verdict
    subjects: tuple[Subject, ...] = ()
    findings: tuple[Finding, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    tool_versions: Mapping[str, str] = field(default_factory=dict)
    started_at: datetime = field(default_factory=_utcnow)
    finished_at: datetime = field(default_factory=_utcnow)
    context: PipelineContext | None = None
    summary: str = ""
    warn_only: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    producer: Mapping[str, Any] | None = None
    warned_reason: str | None = None

    @classmethod
    def create(
        cls,
        *,
        gate: str,
        verdict: Verdict,
        subjects: Iterable[Subject] = (),
        findings: Iterable[Finding] = (),
        **kwargs: Any,
    ) -> GateResult:
        """Build a result from any iterables (stored as tuples)."""
        return cls(gate=gate, verdict=verdict, subjects=tuple(subjects), findings=tuple(findings), **kwargs)

    def with_context(self, context: PipelineContext | None) -> GateResult:
        return replace(self, context=context)

    def with_producer(self, *, engine: Mapping[str, Any] | None, operator: Mapping[str, Any] | None) -> GateResult:
        """This result with its producer set (each a ``CodeIdentity.to_dict()``, or ``None``)."""
        return replace(
            self, producer={"engine": dict(engine) if engine else None, "operator": dict(operator) if operator else None}
        )

    @property
    def failed_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.passed)

    @property
    def not_performed(self) -> tuple[str, ...]:
        """The checks the gate did not perform (finding ids, ``details["not_performed"]``); empty when all ran."""
        value = self.details.get("not_performed")
        if not isinstance(value, (list, tuple)):
            return ()
        return tuple(str(v) for v in value)

    @property
    def incomplete(self) -> bool:
        """``warned`` only because checks were not performed: nothing was rejected, and the record names
        what was not checked. A warn-only rejection (or an older ``warned`` record) is never incomplete."""
        return self.verdict is Verdict.WARNED and self.warned_reason == WARNED_INCOMPLETE and bool(self.not_performed)

    @property
    def verdict_label(self) -> str:
        """The verdict as people read it: ``warned (incomplete: a, b)``, ``warned (warn-only)``, ``passed``..."""
        if self.verdict is not Verdict.WARNED:
            return self.verdict.value
        if self.incomplete:
            return f"warned (incomplete, not performed: {', '.join(self.not_performed)})"
        return "warned (warn-only: a rejection that did not block)"

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "gate": self.gate,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "warn_only": self.warn_only,
            "subjects": [s.to_intoto() for s in self.subjects],
            "findings": [f.to_dict() for f in self.findings],
            "metrics": dict(self.metrics),
            "policy": dict(self.policy),
            "tool_versions": dict(self.tool_versions),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "context": self.context.to_dict() if self.context else None,
            "details": dict(self.details),
        }
        if self.producer is not None:
            data["producer"] = _plain(self.producer)
        if self.warned_reason is not None:
            data["warned_reason"] = self.warned_reason
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        try:
            return cls(
                gate=str(data["gate"]),
                verdict=Verdict(data["verdict"]),
                summary=str(data.get("summary", "")),
                warn_only=bool(data.get("warn_only", False)),
                subjects=tuple(Subject.from_intoto(s) for s in data.get("subjects", ())),
                findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
                metrics={str(k): float(v) for k, v in dict(data.get("metrics", {})).items()},
                policy=dict(data.get("policy", {})),
                tool_versions={str(k): str(v) for k, v in dict(data.get("tool_versions", {})).items()},
                started_at=_parse_iso(str(data["started_at"])),
                finished_at=_parse_iso(str(data["finished_at"])),
                context=PipelineContext.from_dict(data["context"]) if data.get("context") else None,
                details=dict(data.get("details", {})),
                producer=_read_producer(data.get("producer")),
                warned_reason=_read_warned_reason(data.get("warned_reason"), data["verdict"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a valid gate result: {exc}") from exc


def _read_warned_reason(value: Any, verdict: Any) -> str | None:
    """A recorded ``warned_reason``: absent stays ``None``; a known reason only, and only on a ``warned`` verdict."""
    if value is None:
        return None
    if value not in WARNED_REASONS:
        raise ValueError(f"warned_reason must be one of {', '.join(WARNED_REASONS)}, not {value!r}")
    if verdict != Verdict.WARNED.value:
        raise ValueError(f"warned_reason {value!r} on a {verdict!r} verdict")
    return str(value)


def _plain(value: Any) -> Any:
    """``value`` with every mapping a ``dict`` (for JSON and for equality after a round trip)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _read_producer(value: Any) -> dict[str, Any] | None:
    """A recorded producer as it was written: absent stays ``None``; anything but a mapping is refused."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"producer must be a mapping, not {type(value).__name__}")
    plain: dict[str, Any] = _plain(value)
    return plain
