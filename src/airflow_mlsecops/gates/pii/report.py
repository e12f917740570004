"""What the PII scan gate records: findings, the summary, metrics, ``pii_report.json`` and details.

**Evidence** (``pii_report.json``): per column and type the number and share of rows, and up to
three *masked* samples (``j***@e***.com``, ``**** **** **** 1234``, ``***-**-6789``), high- and
low-confidence hits apart, and the types a column's *name* holds (the name itself is withheld).
Raw values are never written to the report, the findings or the result. With ``max_rows`` a
random sample of rows is scanned, drawn with a seed recorded in the report (``sampling.seed``), the
details and the summary, so a verifier can draw the same rows again; the result's metrics
(``rows_scanned``, ``rows_total``, ``sampled``) say so too. The file's digest always covers the whole file.
A sampled scan is not a pass: finding ``pii-scan.rows-not-scanned`` (severity ``low``) says how many
rows were not looked at, and unless personal data rejects, the verdict is ``warned`` (incomplete).

**Findings**: ``pii.<type>`` (high confidence), ``pii.<type>.low-confidence`` (a loose form, an
obfuscation undone, or a column rule: ``medium`` where not allowed) and ``pii.<type>.column-name``
(a column's name holds it; fails whatever ``allow_columns`` says). Both kinds of values fail the
gate in a column not allowed to hold personal data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, Severity, Subject
from airflow_mlsecops.gates.base import Evaluation, not_performed_finding
from airflow_mlsecops.gates.pii.detectors import find_pii
from airflow_mlsecops.gates.pii.scanning import ColumnPII, TypeHits
from airflow_mlsecops.io.tabular import LoadedTable

if TYPE_CHECKING:
    from airflow_mlsecops.gates.columns import ColumnRoles

GATE_NAME = gate_names.PII_SCAN
REPORT_FILE = "pii_report.json"
#: The finding of a sampled scan: rows outside the sample were not scanned (verdict ``warned``, incomplete).
ROWS_NOT_SCANNED = "pii-scan.rows-not-scanned"

# Data leakage of personal data: a model trained on it can be inverted or made to disclose it.
_OWASP_LEAKAGE = ("ML03:2023",)
_ATLAS_LEAKAGE = ("AML.T0024",)
#: How a verifier draws the same rows again (``numpy``'s default generator, as :func:`.gate._sample_rows` does).
_SAMPLE_HOW = (
    "numpy.random.default_rng(seed).choice(rows_total, rows_scanned, replace=False), sorted; rows_total = the file's rows"
)
#: How a verifier draws the rows of a streamed sample (:func:`.gate.reservoir_rows`).
_RESERVOIR_HOW = (
    "reservoir sampling (algorithm R) over the rows in file order: airflow_mlsecops.gates.pii.reservoir_rows("
    "rows_total, rows_scanned, seed), sorted; rows_total = the rows of every part, in order"
)
_NORMALISATION = (
    "NFKC, format characters (Cf) removed, Unicode dashes and spaces mapped; percent, JSON and HTML escapes "
    "decoded (high confidence); loose forms and obfuscations ([at], (dot), ' at ... dot ') undone (low confidence)"
)
_CRITICAL = frozenset({"credit_card", "us_ssn", "iban"})
_LABELS = {
    "email": "e-mail addresses",
    "phone": "phone numbers",
    "credit_card": "credit card numbers",
    "us_ssn": "US social security numbers",
    "iban": "IBANs",
    "ipv4": "IPv4 addresses",
    "ipv6": "IPv6 addresses",
    "mac_address": "MAC addresses",
}


@dataclass(frozen=True)
class ScanSource:
    """What was scanned: the name shown, the files (one per part when streamed), format and rows.

    :param streamed: :func:`~airflow_mlsecops.io.batches.describe_stream` of a streamed read (``None``: read whole).
    :param engine: ``pandas`` or ``spark``.
    :param sampling: ``random rows`` (a whole file) or ``reservoir`` (a stream, a Spark job).
    """

    name: str
    subjects: list[Subject]
    format: str
    rows_total: int
    streamed: dict[str, Any] | None = None
    engine: str = "pandas"
    sampling: str = "random rows"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_table(cls, table: LoadedTable) -> ScanSource:
        return cls(Path(table.subject.name).name, [table.subject], table.format, len(table.frame))


def _share(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def _finding(column: ColumnPII, pii_type: str, hits: TypeHits, rows: int, kind: str = "high", role: str | None = None) -> Finding:
    """One finding per column, type and kind (``high``, ``low`` confidence, or ``name``).

    In an allowed column a value finding is a passed ``info`` one; elsewhere a failed one,
    ``critical`` for cards, SSNs and IBANs (``medium`` with low confidence). A name finding always fails.
    """
    allowed = column.allowed and kind != "name"
    if kind == "name":
        message = (
            f"the name of column {column.column} holds {_LABELS[pii_type]} ({hits.samples[0]}); "
            "the name is withheld from the evidence"
        )
        finding_id = f"pii.{pii_type}.column-name"
    else:
        share = _share(hits.count, rows)
        message = f"column {column.column!r} holds {_LABELS[pii_type]} in {hits.count} of {rows} scanned rows ({share:.2%})"
        if kind == "low":
            message += " with low confidence (a loose form, an obfuscation undone or a column rule)"
        if allowed:
            message += "; the policy allows this column to hold personal data"
        if role:
            message += f"; it is an identifier column ({role}): scanned all the same"
        finding_id = f"pii.{pii_type}" if kind == "high" else f"pii.{pii_type}.low-confidence"
    atlas: tuple[str, ...] = ()
    owasp_ml: tuple[str, ...] = ()
    if allowed:
        severity = Severity.INFO
    else:
        severity = Severity.CRITICAL if pii_type in _CRITICAL else Severity.HIGH
        if kind == "low":
            severity = Severity.MEDIUM
        atlas, owasp_ml = _ATLAS_LEAKAGE, _OWASP_LEAKAGE
    return Finding(
        id=finding_id,
        severity=severity,
        message=message,
        location=f"column {column.column}",
        atlas=atlas,
        owasp_ml=owasp_ml,
        passed=allowed,
    )


def _findings(column: ColumnPII, rows: int, role: str | None = None) -> list[Finding]:
    return [
        *(_finding(column, t, h, rows, role=role) for t, h in column.hits.items()),
        *(_finding(column, t, h, rows, "low", role=role) for t, h in column.low_hits.items()),
        *(_finding(column, t, h, rows, "name") for t, h in column.name_hits.items()),
    ]


def _blocks(column: ColumnPII) -> bool:
    """Whether the column fails the gate: personal data in a column not allowed to hold it, or in its name."""
    return bool(column.name_hits) or (column.has_pii and not column.allowed)


def _names(columns: Iterable[ColumnPII]) -> str:
    return ", ".join(f"{c.column!r} ({', '.join(c.types_found)})" for c in columns)


def _column_entry(column: ColumnPII, rows: int) -> dict[str, Any]:
    """One column's entry in the report: counts, shares and masked samples per type, and notes."""
    return {
        "allowed": column.allowed,
        "dtype": column.dtype,
        "pii_cells": column.pii_cells,
        "share": round(_share(column.pii_cells, rows), 6),
        "types": {
            t: {
                "count": h.count,
                "share": round(_share(h.count, rows), 6),
                "samples_masked": list(h.samples),
                "confidence": "high",
            }
            for t, h in column.hits.items()
        },
        "types_low_confidence": {
            t: {
                "count": h.count,
                "share": round(_share(h.count, rows), 6),
                "samples_masked": list(h.samples),
                "confidence": "low",
            }
            for t, h in column.low_hits.items()
        },
        "name_holds": {t: h.samples[0] for t, h in column.name_hits.items()},
        "notes": list(column.notes),
    }


def _id_role(roles: ColumnRoles | None, column: str) -> str | None:
    """Why ``column`` is an identifier (``declared --id-column``, ``string unique per row``...), or ``None``."""
    if roles is None or column not in roles.id_columns:
        return None
    return roles.reason(column) or "identifier"


def _evaluation(
    table: LoadedTable | ScanSource,
    columns: list[ColumnPII],
    *,
    rows: int,
    limit: int | None,
    seed: int | None,
    selected: tuple[str, ...],
    allowed: tuple[str, ...],
    elapsed: float,
    roles: ColumnRoles | None = None,
) -> Evaluation:
    """The gate's evaluation from the scan of ``rows`` rows of ``table`` (all, or a random sample).

    :param table: the file as loaded.
    :param columns: what :func:`~airflow_mlsecops.gates.pii.scanning.scan_frame` found per column.
    :param rows: rows scanned.
    :param limit: the ``max_rows`` given, if any.
    :param seed: the seed the sample was drawn with (``None``: every row was scanned).
    :param selected: PII types looked for.
    :param allowed: columns allowed to hold personal data.
    :param elapsed: seconds the scan took.
    :param roles: the column roles (recorded; identifier columns are named in their findings).
    """
    source = table if isinstance(table, ScanSource) else ScanSource.of_table(table)
    total_rows = source.rows_total
    sampled = rows < total_rows
    scanned = [c for c in columns if c.mode != "skipped"]
    with_pii = [c for c in columns if c.has_pii]
    blocking = [c for c in with_pii if _blocks(c)]
    present = {c.column for c in columns}
    withheld_allowed = any(c.allowed and c.name_hits for c in columns)  # allowed by a name that is withheld
    findings = [f for c in with_pii for f in _findings(c, rows, _id_role(roles, c.column))]
    findings.sort(key=lambda f: (f.passed, -f.severity.rank))

    name = source.name
    reservoir = sampled and source.sampling == "reservoir"
    scope = f"{'reservoir' if reservoir else 'random'} {rows} of {total_rows} rows (seed {seed})" if sampled else f"{rows} rows"
    if blocking:
        summary = f"personal data in {len(blocking)} column(s) not allowed to hold it: {_names(blocking)}"
    elif with_pii:
        summary = f"personal data only in allowed column(s): {_names(with_pii)}"
    else:
        summary = f"no personal data ({', '.join(selected)}) found"
    summary += f"; {scope} x {len(scanned)} column(s) of {name} scanned"
    if source.streamed is not None:
        summary += f" (streamed: {source.streamed['parts']} part(s), batches of {source.streamed['batch_rows']} rows)"
    if source.engine != "pandas":
        summary += f" on {source.engine}"

    column_report = {c.column: _column_entry(c, rows) for c in columns if c.has_pii or c.notes}
    sampling = {
        "rows_total": total_rows,
        "rows_scanned": rows,
        "max_rows": limit,
        "sampled": sampled,
        "method": source.sampling if sampled else "every row",
        "seed": seed if sampled else None,
        "how": (_RESERVOIR_HOW if reservoir else _SAMPLE_HOW) if sampled else None,
        "note": f"a random sample of {rows} of {total_rows} rows (seed {seed}) was scanned"
        if sampled
        else "every row was scanned",
    }
    report: dict[str, Any] = {
        "gate": GATE_NAME,
        "subject": source.subjects[0].to_intoto() if len(source.subjects) == 1 else None,
        "subjects": [subject.to_intoto() for subject in source.subjects],
        "format": source.format,
        "engine": source.engine,
        "streamed": source.streamed,
        "column_roles": roles.to_dict() if roles is not None else None,
        "sampling": sampling,
        "types_checked": list(selected),
        "allow_columns": list(allowed),
        "allow_columns_missing": [c for c in allowed if c not in present and not (withheld_allowed and find_pii(c))],
        "columns_scanned": [{"column": c.column, "dtype": c.dtype, "mode": c.mode} for c in scanned],
        "columns_skipped": [{"column": c.column, "dtype": c.dtype} for c in columns if c.mode == "skipped"],
        "columns": column_report,
        "masking": "samples are masked from the normalised value; raw values and names holding PII are never recorded",
        "normalisation": _NORMALISATION,
    }
    pii_cells = sum(c.pii_cells for c in columns)
    not_performed: list[Finding] = []
    if sampled:
        # PII is searched row by row: rows outside the sample were never looked at.
        not_performed.append(
            not_performed_finding(
                ROWS_NOT_SCANNED,
                f"{total_rows - rows} of {total_rows} rows were not scanned: max_rows={limit} scans a random sample "
                f"(seed {seed}), so personal data in the other rows would not be seen",
            )
        )
    return Evaluation(
        passed=not blocking,
        not_performed=[f.id for f in not_performed],
        summary=summary,
        subjects=list(source.subjects),
        findings=[*findings, *not_performed],
        metrics={
            "rows_scanned": float(rows),
            "rows_total": float(total_rows),
            "sampled": 1.0 if sampled else 0.0,
            "columns_scanned": float(len(scanned)),
            "pii_cells": float(pii_cells),
            "pii_columns": float(len(with_pii)),
            "pii_columns_not_allowed": float(len(blocking)),
            "low_confidence_findings": float(sum(len(c.low_hits) for c in columns)),
            "column_names_with_pii": float(sum(1 for c in columns if c.name_hits)),
            "rows_per_second": round(rows / elapsed, 1) if elapsed > 0 else 0.0,
        },
        files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
        details={
            "format": source.format,
            "engine": source.engine,
            "streamed": source.streamed is not None,
            **({"stream": source.streamed} if source.streamed is not None else {}),
            **source.extra,
            "column_roles": roles.to_dict() if roles is not None else None,
            "rows_total": total_rows,
            "rows_scanned": rows,
            "sampled": sampled,
            "max_rows": limit,
            "sample_seed": seed if sampled else None,
            "sampling_method": source.sampling if sampled else "every row",
            "types": list(selected),
            "pii_columns": {c.column: list(c.types_found) for c in with_pii[:100]},
            "columns_not_allowed": [c.column for c in blocking[:100]],
            "allow_columns_missing": report["allow_columns_missing"][:100],
            "numeric_columns_scanned": [c.column for c in scanned if c.mode == "numeric"][:100],
            "columns_skipped": len(report["columns_skipped"]),
        },
    )
