"""What every gate engine shares: timing, verdict mapping, warn-only mode, fail-closed errors.

A gate engine is a function that does its checks inside :func:`run_gate`::

    def my_gate(path: str) -> GateOutcome:
        def body() -> Evaluation:
            ...  # raise GateError for unreadable input
            return Evaluation(passed=..., summary=..., subjects=[...], findings=[...])
        return run_gate("my-gate", body, policy={"threshold": 0.1})

:func:`run_gate` turns any exception into an ``error`` verdict (never a pass), keeps the
exception for the caller to log or re-raise, and turns ``failed`` into ``warned`` in warn-only mode.

**A check that did not run is never a pass.** A body that could not perform a check (no OSV
database, no label column, a bound instead of an exact result, a sample of the rows) records a
finding saying what and why (:func:`not_performed_finding`) and names it in
``Evaluation.not_performed``. If nothing was rejected, the verdict is then ``warned`` with
``warned_reason="incomplete"`` and ``details["not_performed"]`` listing those checks; promotion
counts it only where the promote step and the policy accept it (``accept_warned``). A rejection
stays ``failed`` (or warn-only ``warned``): an incomplete check never hides one.

The result names its engine (``result.producer["engine"]``): the function that called
:func:`run_gate`, as a :class:`~airflow_mlsecops.evidence.producer.CodeIdentity`. It is always the
caller, never an argument: code outside the package that calls :func:`run_gate` is named as what
it is, and promotion refuses its evidence unless the policy allows it by name.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import Any

from airflow_mlsecops.evidence.models import (
    WARNED_INCOMPLETE,
    WARNED_WARN_ONLY,
    Finding,
    GateResult,
    PipelineContext,
    Severity,
    Subject,
    Verdict,
)
from airflow_mlsecops.exceptions import MLSecOpsError


@dataclass
class Evaluation:
    """What a gate body found; :func:`run_gate` turns it into a signed-ready result.

    ``not_performed``: ids of findings (made with :func:`not_performed_finding`) naming checks the
    body could not perform; a passing evaluation with any becomes ``warned`` (incomplete).
    """

    passed: bool
    summary: str
    subjects: list[Subject] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    statements: dict[str, bytes] = field(default_factory=dict)
    not_performed: list[str] = field(default_factory=list)

    def skip(self, finding: Finding) -> None:
        """Record that a check was not performed: add ``finding`` (see :func:`not_performed_finding`) and name it."""
        self.findings.append(finding)
        if finding.id not in self.not_performed:
            self.not_performed.append(finding.id)


def not_performed_finding(
    finding_id: str, message: str, *, severity: Severity = Severity.LOW, location: str | None = None
) -> Finding:
    """The finding of a check that was not performed: ``finding_id`` (``sbom.vulnerability-check-not-performed``),
    severity ``low`` (``info`` at most ``low``), never passed; ``message`` says what was not checked and why."""
    if severity.rank > Severity.LOW.rank:
        raise ValueError("a check that was not performed is reported at severity info or low; a rejection is a failed check")
    return Finding(id=finding_id, severity=severity, message=message, location=location, passed=False)


@dataclass(frozen=True)
class GateOutcome:
    """A gate's result, the evidence files to record with it, and the error if it could not run.

    ``statements`` are further in-toto statement payloads (e.g. SLSA provenance) that the recorder
    signs with the same key and stores as DSSE envelopes under the given file names.
    """

    result: GateResult
    files: Mapping[str, bytes] = field(default_factory=dict)
    error: BaseException | None = None
    statements: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict


def tool_versions(*distributions: str) -> dict[str, str]:
    versions = {"airflow-mlsecops": _version("airflow-mlsecops")}
    for name in distributions:
        versions[name] = _version(name)
    return versions


@cache  # importlib.metadata scans every installed distribution: ~1 ms a lookup
def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _error_finding(gate: str, error: MLSecOpsError) -> str:
    """The finding id of an error verdict: the error's own (``<gate>.empty-batch``), else ``gate.could-not-run``."""
    finding = getattr(error, "finding", None)
    return f"{gate}.{finding}" if isinstance(finding, str) and finding else "gate.could-not-run"


def raising(error: BaseException, *, check: Callable[[], object] | None = None) -> Callable[[], Evaluation]:
    """A gate body for inputs that could not be fetched or loaded: run ``check`` (the gate's own
    argument check, so a bad argument is still reported first), then raise ``error``.

    ``run_gate(GATE_NAME, raising(exc, check=...), policy=...)`` records the gate's ``error``
    verdict with the gate's policy, never a pass.
    """

    def body() -> Evaluation:
        if check is not None:
            check()
        raise error

    return body


def run_gate(
    gate: str,
    body: Callable[[], Evaluation],
    *,
    policy: Mapping[str, Any] | None = None,
    warn_only: bool = False,
    distributions: Iterable[str] = (),
    context: PipelineContext | None = None,
) -> GateOutcome:
    """Run ``body`` and wrap what it found (or why it could not run) into a :class:`GateOutcome`.

    The result's ``producer`` names the engine: the function that called this one.
    """
    from airflow_mlsecops.evidence.producer import CodeIdentity

    engine = CodeIdentity.of(sys._getframe(1)).to_dict()
    started = datetime.now(timezone.utc)
    error: BaseException | None = None
    warned_reason: str | None = None
    try:
        evaluation = body()
        not_performed = list(dict.fromkeys(str(i) for i in evaluation.not_performed))
        if not_performed:
            evaluation.details = {**evaluation.details, "not_performed": not_performed}
        if not evaluation.passed:
            verdict = Verdict.WARNED if warn_only else Verdict.FAILED
            warned_reason = WARNED_WARN_ONLY if warn_only else None
        elif not_performed:
            verdict, warned_reason = Verdict.WARNED, WARNED_INCOMPLETE
            listed = ", ".join(not_performed[:6]) + (f" and {len(not_performed) - 6} more" if len(not_performed) > 6 else "")
            evaluation.summary = f"{evaluation.summary}; INCOMPLETE, not performed: {listed}"
        else:
            verdict = Verdict.PASSED
    except MLSecOpsError as exc:
        error = exc
        evaluation = Evaluation(
            passed=False,
            summary=f"could not run: {exc}",
            findings=[Finding(id=_error_finding(gate, exc), severity=Severity.HIGH, message=str(exc))],
        )
        verdict = Verdict.ERROR
    except Exception as exc:  # noqa: BLE001 - an unexpected failure is an error verdict, never a pass
        error = exc
        evaluation = Evaluation(
            passed=False,
            summary=f"internal error: {type(exc).__name__}: {exc}",
            findings=[Finding(id="gate.internal-error", severity=Severity.HIGH, message=f"{type(exc).__name__}: {exc}")],
        )
        verdict = Verdict.ERROR
    result = GateResult.create(
        gate=gate,
        verdict=verdict,
        subjects=evaluation.subjects,
        findings=evaluation.findings,
        metrics=evaluation.metrics,
        policy=dict(policy or {}),
        tool_versions=tool_versions(*distributions),
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        context=context,
        summary=evaluation.summary,
        warn_only=warn_only,
        details=evaluation.details,
        warned_reason=warned_reason,
    ).with_producer(engine=engine, operator=None)
    return GateOutcome(result=result, files=evaluation.files, error=error, statements=evaluation.statements)
