"""One check's result (:class:`_Check`), the order the checks run in, and how results are worded.

Every check gives one :class:`~airflow_mlsecops.evidence.models.Finding`, with ``passed=True`` when
the measured value is within its threshold, severity ``high`` when it is not, and severity ``info``
with ``passed=False`` and a message starting ``skipped:`` when it cannot run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import Finding, Severity

if TYPE_CHECKING:
    import numpy as np

CHECK_IDS = (
    "integrity.schema",
    "integrity.identifiers",
    "integrity.non_finite",
    "integrity.formula_injection",
    "integrity.label_shift",
    "integrity.class_set",
    "integrity.duplicates",
    "integrity.near_duplicates",
    "integrity.out_of_range",
    "integrity.feature_shift",
    "integrity.label_flips",
)
_ATLAS_POISONING = ("AML.T0020",)
_OWASP_POISONING = ("ML02:2023",)


@dataclass
class _Check:
    """One check's result: its status, the value measured against its threshold, and the suspect rows.

    ``rows`` holds the first suspect rows (0-based positions in the batch), ``rows_total`` how many
    there are; ``metrics`` go to the result's metrics, ``report`` to the check's entry in the report.
    """

    id: str
    status: str  # "passed", "failed", "skipped"
    message: str
    value: float | None = None
    threshold: float | None = None
    location: str | None = None
    rows: list[int] = field(default_factory=list)
    rows_total: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def finding(self) -> Finding:
        violated = self.status == "failed"
        return Finding(
            id=self.id,
            severity=Severity.HIGH if violated else Severity.LOW if self.status == "skipped" else Severity.INFO,
            message=self.message,
            location=self.location,
            atlas=_ATLAS_POISONING if self.id != "integrity.schema" or violated else (),
            owasp_ml=_OWASP_POISONING if self.id != "integrity.schema" or violated else (),
            passed=self.status == "passed",
        )

    def summary(self, cap: int) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "value": self.value, "threshold": self.threshold}
        if self.rows_total:
            out["rows_total"] = self.rows_total
            out["rows"] = self.rows[:cap]
        return out


def _judged(
    check_id: str,
    *,
    violated: bool,
    message: str,
    value: float,
    threshold: float,
    location: str | None,
    metrics: dict[str, float],
    report: dict[str, Any],
    rows: Sequence[int] | np.ndarray = (),
    cap: int = 0,
    total: int | None = None,
) -> _Check:
    """The result of a check that ran: ``failed`` if ``violated``, else ``passed``.

    :param rows: every suspect row; the first ``cap`` are kept and ``rows_total`` counts them all.
    :param cap: how many suspect rows to keep (``max_rows_reported``).
    :param total: how many suspect rows there are when ``rows`` holds only the first ones (a streamed batch).
    """
    return _Check(
        id=check_id,
        status="failed" if violated else "passed",
        message=message,
        value=value,
        threshold=threshold,
        location=location,
        rows=[int(r) for r in rows[:cap]],
        rows_total=len(rows) if total is None else total,
        metrics=metrics,
        report=report,
    )


def _skipped(check_id: str, reason: str) -> _Check:
    """The result of a check that could not run, with the reason."""
    return _Check(id=check_id, status="skipped", message=f"skipped: {reason}", report={"reason": reason})


def _pct(share: float) -> str:
    return f"{share * 100:.2f}%"


def _rows_text(rows: Sequence[int] | np.ndarray, limit: int = 8, total: int | None = None) -> str | None:
    """``rows 3, 17 and 40 more``: the first ``limit`` suspect rows and how many others (``None`` if none);
    ``total`` is their number when ``rows`` holds only the first ones."""
    count = len(rows) if total is None else total
    if not len(rows) or not count:
        return None
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {count - min(limit, len(rows))} more" if count > limit else ""
    return f"rows {shown}{more}"


def _by_column(rows_per_column: Mapping[str, int]) -> tuple[str, str | None]:
    """``(": income 12, age 3", "income")``: the six columns with the most suspect rows, most first,
    as a message suffix, and the column with the most (``("", None)`` when there is none)."""
    ranked = sorted(rows_per_column.items(), key=lambda kv: -kv[1])
    if not ranked:
        return "", None
    return ": " + ", ".join(f"{name} {count}" for name, count in ranked[:6]), ranked[0][0]


def _column_rows_location(column: str | None, rows: Sequence[int] | np.ndarray, total: int | None = None) -> str | None:
    """``column income, rows 3, 17 and 40 more``: where a finding points (``None`` if nowhere)."""
    return (f"column {column}, " if column else "") + (_rows_text(rows, total=total) or "") or None
