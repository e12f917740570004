"""What the data-integrity gate records: the summary, metrics, ``integrity_report.json`` and details.

**Evidence**: ``integrity_report.json`` holds every check's value, threshold, per-feature
statistics and the suspect rows (0-based row positions in the batch as loaded: for a CSV file the
data row number, header excluded; the first ``max_rows_reported`` per check); ``details`` holds the same per check without
the per-feature tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Subject
from airflow_mlsecops.gates.base import Evaluation
from airflow_mlsecops.gates.columns import ColumnRoles
from airflow_mlsecops.gates.data_integrity.results import CHECK_IDS, _Check
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds
from airflow_mlsecops.io.tabular import LoadedTable

GATE_NAME = gate_names.DATA_INTEGRITY
REPORT_FILE = "integrity_report.json"


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars become Python numbers, NaN and infinities become strings)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass(frozen=True)
class _Input:
    """One input as the evidence names it: a file loaded whole, or a data set streamed part by part."""

    name: str
    subjects: tuple[Subject, ...]
    format: str
    rows: int
    columns: int
    stream: Mapping[str, Any] | None = None  # describe_stream() of a streamed input

    @classmethod
    def of(cls, table: LoadedTable | _Input) -> _Input:
        if isinstance(table, _Input):
            return table
        return cls(table.subject.name, (table.subject,), table.format, len(table.frame), len(table.frame.columns))


def _table_summary(table: _Input) -> dict[str, Any]:
    """Name, digest, format and size of one input, as the report lists it (a streamed one: every part)."""
    out: dict[str, Any] = {
        "name": table.name,
        "sha256": table.subjects[0].sha256 if len(table.subjects) == 1 else None,
        "format": table.format,
        "rows": table.rows,
        "columns": table.columns,
    }
    if table.stream is not None:
        out["stream"] = dict(table.stream)
        out["parts"] = [{"name": s.name, "sha256": s.sha256} for s in table.subjects]
    return out


def _evaluation(
    checks: list[_Check],
    batch_table: LoadedTable | _Input,
    ref_table: LoadedTable | _Input,
    *,
    label_column: str | None,
    random_state: int,
    thresholds: IntegrityThresholds,
    roles: ColumnRoles | None = None,
    sampled: Mapping[str, Any] | None = None,
) -> Evaluation:
    """The gate's evaluation from its checks: failed checks first in the findings, canonical order in the report.

    :param checks: every check's result, as :func:`~airflow_mlsecops.gates.data_integrity.gate._evaluate` returns them.
    :param batch: the batch as loaded.
    :param ref: the reference as loaded.
    :param label_column: the label column given, if any.
    :param random_state: the seed the checks used.
    :param thresholds: the limits the checks applied.
    :param roles: the column roles the checks used.
    :param sampled: for a streamed batch, how each check that works on a sample drew it (``details["sampled"]``).
    """
    th = thresholds
    batch, ref = _Input.of(batch_table), _Input.of(ref_table)
    order = {"failed": 0, "skipped": 1, "passed": 2}
    checks = sorted(checks, key=lambda c: (order[c.status], CHECK_IDS.index(c.id)))
    failed = [c.id.split(".", 1)[1] for c in checks if c.status == "failed"]
    skipped = [c.id.split(".", 1)[1] for c in checks if c.status == "skipped"]
    ran = len(checks) - len(skipped)
    name, ref_name = Path(batch.name.rstrip("/")).name, Path(ref.name.rstrip("/")).name
    if failed:
        summary = f"{len(failed)} of {ran} integrity checks failed ({', '.join(failed)})"
    else:
        summary = f"all {ran} integrity checks passed"
    summary += f" on {batch.rows} rows of {name} against {ref.rows} rows of {ref_name}"
    if batch.stream is not None:
        summary += f" (streamed in batches of {batch.stream['batch_rows']:,} rows"
        if sampled:
            summary += "; sampled: " + ", ".join(sorted(c.split(".", 1)[1] for c in sampled))
        summary += ")"
    if skipped:
        summary += f"; skipped: {', '.join(skipped)}"
    if roles is not None and roles.excluded:
        summary += "; " + roles.summary_text()
    metrics: dict[str, float] = {
        "rows": float(batch.rows),
        "reference_rows": float(ref.rows),
        "checks_failed": float(len(failed)),
        "checks_skipped": float(len(skipped)),
    }
    for check in checks:
        metrics.update({k: float(v) for k, v in check.metrics.items() if math.isfinite(float(v))})
    canonical = sorted(checks, key=lambda c: CHECK_IDS.index(c.id))
    report = {
        "gate": GATE_NAME,
        "summary": summary,
        "batch": _table_summary(batch),
        "reference": _table_summary(ref),
        "label_column": label_column,
        "random_state": random_state,
        "thresholds": th.to_dict(),
        "column_roles": roles.to_dict() if roles is not None else None,
        "row_numbering": "0-based row position in the batch as loaded (for CSV: data row number, header excluded)"
        + ("; streamed: counted across the parts in the order listed" if batch.stream is not None else ""),
        "checks": [
            {
                "id": c.id,
                "status": c.status,
                "value": c.value,
                "threshold": c.threshold,
                "message": c.message,
                "rows_total": c.rows_total,
                "rows": c.rows[: th.max_rows_reported],
                **c.report,
            }
            for c in canonical
        ],
    }
    details = {
        "format": batch.format,
        "reference_format": ref.format,
        "label_column": label_column,
        "random_state": random_state,
        "checks": {c.id: c.summary(th.max_rows_reported) for c in canonical},
    }
    if roles is not None:
        details["column_roles"] = roles.to_dict()
    if batch.stream is not None:
        details["stream"] = {"batch": dict(batch.stream), "reference": dict(ref.stream or {})}
        details["sampled"] = dict(sampled or {})
        report["sampled"] = dict(sampled or {})
    return Evaluation(
        passed=not failed,
        # A skipped check (no label column, no comparable column, an empty batch) is not a pass: warned, incomplete.
        not_performed=[c.id for c in checks if c.status == "skipped"],
        summary=summary,
        subjects=[*batch.subjects, *ref.subjects],
        findings=[c.finding() for c in checks],
        metrics=metrics,
        files={REPORT_FILE: json.dumps(_jsonable(report), indent=2, sort_keys=True).encode("utf-8")},
        details=_jsonable(details),
    )
