"""From what was compared to the drift gate's verdict, findings, metrics and ``drift_report.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import Finding, Severity, Subject
from airflow_mlsecops.gates.base import Evaluation
from airflow_mlsecops.gates.columns import ColumnRoles
from airflow_mlsecops.gates.drift.comparison import (
    ColumnDrift,
    MissingShare,
    fmt,
    lower_means_drift,
    parse_snapshot,
    run_evidently,
)
from airflow_mlsecops.gates.drift.thresholds import (
    ATLAS_ERODE,
    FAIL,
    GATE_NAME,
    HTML_FILE,
    JSON_FILE,
    MAX_COLUMNS_IN_DETAILS,
    OWASP_SKEWING,
    SUCCESS,
)
from airflow_mlsecops.gates.empty_data import empty_batch_finding

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlsecops.io.locations import ModelRef


@dataclass(frozen=True)
class Compared:
    """What the gate read and what Evidently compares: the input of :func:`judge`.

    :param reference_name: how the report names the reference (its URI, path or location).
    :param current_name: how the report names the current batch.
    :param subjects: the attested inputs (one per file or part), digests over every byte read.
    :param formats: ``{"reference": ..., "current": ...}``.
    :param selected: the compared feature columns, in the reference's order.
    :param absent: features the current batch lacks.
    :param column_roles: every column's role and why it was left out.
    :param reference: the reference rows Evidently compares (all, or a sample).
    :param current: the current rows Evidently compares (all, or a sample).
    :param missing: the missing-share test of every selected column (counted on every row).
    :param rows_reference: rows of the reference.
    :param rows_current: rows of the current batch.
    :param sampling: how the compared rows were chosen (the evidence's ``sampling``).
    :param streamed: for a streamed read, what was streamed (``details["streamed"]``); else ``None``.
    """

    reference_name: str
    current_name: str
    subjects: list[Subject]
    formats: dict[str, str]
    selected: list[str]
    absent: list[str]
    column_roles: ColumnRoles
    reference: pd.DataFrame
    current: pd.DataFrame
    missing: list[MissingShare]
    rows_reference: int
    rows_current: int
    sampling: dict[str, Any]
    streamed: dict[str, Any] | None = field(default=None)

    @property
    def short_names(self) -> tuple[str, str]:
        from pathlib import Path

        return Path(self.reference_name.rstrip("/")).name, Path(self.current_name.rstrip("/")).name


def judge(
    compared: Compared,
    *,
    drift_share: float,
    fail_on_severe_column: bool,
    html: bool,
    model_ref: ModelRef | None,
) -> Evaluation:
    """Run Evidently on the compared rows and reach the verdict (see the package docstring)."""
    selected, missing, sampling = compared.selected, compared.missing, compared.sampling
    ref_name, cur_name = compared.short_names
    started = time.perf_counter()
    raw, page = run_evidently(compared.reference, compared.current, float(drift_share), html)
    seconds = time.perf_counter() - started
    column_results, evidently_dataset = parse_snapshot(raw)

    checked = {c.column for c in column_results}
    not_checked = [c for c in selected if c not in checked]
    drifted = [c for c in column_results if c.drifted]
    missing_drifted = [m for m in missing if m.drifted]
    drifted_names = sorted({c.column for c in drifted} | {m.column for m in missing_drifted}, key=selected.index)
    # Every selected column got the missing-share test; those Evidently typed got its test too.
    drifted_share = len(drifted_names) / len(selected)
    severe = sorted({c.column for c in drifted if c.severe} | {m.column for m in missing_drifted if m.severe}, key=selected.index)
    share_drift = drifted_share >= drift_share  # Evidently's own comparison (its test: share < drift_share)
    dataset_drift = share_drift or (fail_on_severe_column and bool(severe))
    dataset = {
        "drifted_columns": len(drifted_names),
        "compared_columns": len(selected),
        "drifted_share": drifted_share,
        "drifted": drifted_names,
        "severe": severe,
        "status": FAIL if dataset_drift else SUCCESS,
        "rule": f"dataset drift when drifted columns / compared columns >= {drift_share:g}"
        + (" or any column drifted severely" if fail_on_severe_column else ""),
        "evidently": evidently_dataset,
    }

    findings = _findings(drifted, missing_drifted, not_checked, compared.reference, dataset_drift=dataset_drift)
    findings.extend(absent_findings(compared.absent, cur_name, compared.column_roles))
    share_text = f"{len(drifted_names)} of {len(selected)} columns ({drifted_share:.0%})"
    findings.append(
        Finding(
            id="drift.dataset",
            severity=Severity.HIGH if dataset_drift else Severity.INFO,
            message=(
                f"dataset drift: {share_text} drifted, at or above the drift share {drift_share:g}"
                if share_drift
                else f"dataset drift: {share_text} drifted, below the drift share {drift_share:g}, but "
                f"{', '.join(map(repr, severe))} drifted severely"
                if dataset_drift
                else f"no dataset drift: {share_text} drifted, below the drift share {drift_share:g}"
            ),
            atlas=ATLAS_ERODE if dataset_drift else (),
            owasp_ml=OWASP_SKEWING if dataset_drift else (),
            passed=not dataset_drift,
        )
    )

    from airflow_mlsecops.gates.base import tool_versions

    report: dict[str, Any] = {
        "gate": GATE_NAME,
        "reference": compared.reference_name,
        "current": compared.current_name,
        "drift_share": drift_share,
        "dataset": dataset,
        "columns": [c.to_dict() for c in column_results],
        "missing_shares": [m.to_dict() for m in missing],
        "columns_not_checked": not_checked,
        "features_missing_from_current": compared.absent,
        "column_roles": compared.column_roles.to_dict(),
        "sampling": sampling,
        "evidently_seconds": round(seconds, 3),
        "evidently_version": tool_versions("evidently")["evidently"],
        "evidently_tests": [
            {"name": t.get("name"), "description": t.get("description"), "status": t.get("status")} for t in raw.get("tests", [])
        ],
    }
    if compared.streamed is not None:
        report["streamed"] = compared.streamed
    if model_ref is not None:
        report["model"] = model_ref.to_dict()
    files = {JSON_FILE: json.dumps(report, indent=2, sort_keys=True, default=str).encode("utf-8")}
    if html:
        files[HTML_FILE] = page

    ref_sampled, cur_sampled = bool(sampling["sampled_reference"]), bool(sampling["sampled_current"])
    summary = (
        f"{'dataset drift' if dataset_drift else 'no dataset drift'}: {share_text} drifted "
        f"(policy: drift at >= {drift_share:g}) between {ref_name} ({compared.rows_reference} rows) "
        f"and {cur_name} ({compared.rows_current} rows)"
    )
    if drifted_names:
        summary += f"; drifted: {', '.join(drifted_names[:8])}{', ...' if len(drifted_names) > 8 else ''}"
    if severe:
        summary += f"; severely: {', '.join(severe[:8])}{', ...' if len(severe) > 8 else ''}"
    if missing_drifted:
        summary += f"; missing share changed in {len(missing_drifted)} column(s)"
    if compared.streamed is not None:
        summary += (
            f"; streamed in batches of {sampling['batch_rows']} rows, compared a reservoir sample of up to "
            f"{sampling['max_rows']} rows per side (seed {sampling['random_state']})"
        )
    elif ref_sampled or cur_sampled:
        summary += f"; sampled to {sampling['max_rows']} rows (seed {sampling['random_state']})"
    if not_checked:
        summary += f"; {len(not_checked)} column(s) not compared"
    if compared.absent:
        summary = f"feature column(s) missing from the current batch: {', '.join(compared.absent[:8])}; " + summary
    if compared.column_roles.excluded:
        summary += "; " + compared.column_roles.summary_text()
    details: dict[str, Any] = {
        "dataset_test": dataset["rule"],
        "evidently_dataset_test": evidently_dataset["description"],
        "columns": [c.to_dict() for c in column_results[:MAX_COLUMNS_IN_DETAILS]],
        "columns_truncated": len(column_results) > MAX_COLUMNS_IN_DETAILS,
        "missing_share_changed": [m.to_dict() for m in missing_drifted[:MAX_COLUMNS_IN_DETAILS]],
        "columns_not_checked": not_checked[:MAX_COLUMNS_IN_DETAILS],
        "features_missing_from_current": compared.absent,
        "column_roles": compared.column_roles.to_dict(),
        "sampling": sampling,
        "formats": compared.formats,
        "html_report": html,
    }
    if compared.streamed is not None:
        details["streamed"] = compared.streamed
    if model_ref is not None:
        details["model"] = model_ref.to_dict()
    metrics = {
        "columns": float(len(selected)),
        "drifted_columns": float(len(drifted_names)),
        "drifted_share": float(drifted_share),
        "value_drifted_columns": float(len(drifted)),
        "missing_share_drifted_columns": float(len(missing_drifted)),
        "severely_drifted_columns": float(len(severe)),
        "dataset_drift": 1.0 if dataset_drift else 0.0,
        "features_missing": float(len(compared.absent)),
        "columns_excluded": float(len(compared.column_roles.excluded)),
        "rows_reference": float(compared.rows_reference),
        "rows_current": float(compared.rows_current),
        "rows_reference_compared": float(len(compared.reference)),
        "rows_current_compared": float(len(compared.current)),
        "sampled_reference": 1.0 if ref_sampled else 0.0,
        "sampled_current": 1.0 if cur_sampled else 0.0,
        "evidently_seconds": round(seconds, 3),
    }
    if compared.streamed is not None:
        metrics["streamed"] = 1.0
    return Evaluation(
        passed=not dataset_drift and not compared.absent,
        # A column Evidently could not compare is a check not performed: warned (incomplete) unless drift rejects.
        not_performed=["drift.column-not-checked"] if not_checked else [],
        summary=summary,
        subjects=compared.subjects,
        findings=findings,
        metrics=metrics,
        files=files,
        details=details,
    )


def _findings(
    drifted: Sequence[ColumnDrift],
    missing_drifted: Sequence[MissingShare],
    not_checked: Sequence[str],
    ref_frame: pd.DataFrame,
    *,
    dataset_drift: bool,
) -> list[Finding]:
    """The per-column findings: values drifted (Evidently), missing share changed, not compared."""
    findings: list[Finding] = [
        Finding(
            id="drift.column",
            severity=Severity.HIGH if dataset_drift else Severity.MEDIUM,
            message=(
                f"column {c.column!r} drifted: {c.method} score {fmt(c.score)}, threshold {fmt(c.threshold)} "
                f"({'lower' if lower_means_drift(c.method) else 'higher'} means drift)"
            ),
            location=f"column {c.column}",
            atlas=ATLAS_ERODE,
            owasp_ml=OWASP_SKEWING,
        )
        for c in drifted
    ]
    findings.extend(
        Finding(
            id="drift.missing-share",
            severity=Severity.HIGH if dataset_drift else Severity.MEDIUM,
            message=(
                f"column {m.column!r}: missing values {m.current_share:.1%} of the batch, {m.reference_share:.1%} of the "
                f"reference (change {m.change:+.1%}, at least {m.max_change:.1%}; z-test p {m.p_value:.2g})"
            ),
            location=f"column {m.column}",
            atlas=ATLAS_ERODE,
            owasp_ml=OWASP_SKEWING,
        )
        for m in missing_drifted
    )
    findings.extend(
        Finding(
            id="drift.column-not-checked",
            severity=Severity.LOW,
            message=f"column {name!r} was not compared by Evidently: it could not infer a type it tests for drift "
            f"({ref_frame[name].dtype}); only its missing share was tested",
            location=f"column {name}",
        )
        for name in not_checked
    )
    return findings


def absent_findings(absent: Sequence[str], current: str, roles: ColumnRoles) -> list[Finding]:
    """Finding ``drift.missing-column`` per feature the current batch lacks: the batch does not have the training schema."""
    hint = "" if roles.label_column else "; if it is the label, pass label_column (--label-column) and it is not compared"
    return [
        Finding(
            id="drift.missing-column",
            severity=Severity.HIGH,
            message=f"feature column {name!r} of the reference is missing from the current batch {current}{hint}",
            location=f"column {name}",
            atlas=ATLAS_ERODE,
            owasp_ml=OWASP_SKEWING,
        )
        for name in absent
    ]


def empty_batch(
    names: tuple[str, str],
    subjects: list[Subject],
    formats: dict[str, str],
    reference_rows: int,
    nothing: str,
    *,
    drift_share: float,
    model_ref: ModelRef | None,
    streamed: dict[str, Any] | None = None,
) -> Evaluation:
    """The evaluation of an empty current batch that ``allow_empty`` accepts: nothing compared, a finding that says so.

    :param names: how the report names the reference and the current batch.
    """
    from pathlib import Path

    what = f"the current batch {Path(names[1].rstrip('/')).name}"
    report: dict[str, Any] = {
        "gate": GATE_NAME,
        "reference": names[0],
        "current": names[1],
        "drift_share": drift_share,
        "empty_batch": True,
        "note": f"{what} {nothing}: nothing was compared (allow_empty=True)",
    }
    details: dict[str, Any] = {"empty_batch": True, "formats": formats}
    if streamed is not None:
        report["streamed"] = details["streamed"] = streamed
    if model_ref is not None:
        report["model"] = details["model"] = model_ref.to_dict()
    finding = empty_batch_finding(GATE_NAME, what, nothing)
    return Evaluation(
        passed=True,
        not_performed=[finding.id],
        summary=f"empty batch accepted (allow_empty=True): {what} {nothing}, nothing was compared",
        subjects=subjects,
        findings=[finding],
        metrics={"columns": 0.0, "rows_reference": float(reference_rows), "rows_current": 0.0, "dataset_drift": 0.0},
        files={JSON_FILE: json.dumps(report, indent=2, sort_keys=True, default=str).encode("utf-8")},
        details=details,
    )
