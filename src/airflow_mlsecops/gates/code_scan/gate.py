"""The code scan gate: :func:`scan_code` runs bandit and detect-secrets on pipeline code and configuration.

**Verdict.** The gate fails when

* bandit raises an issue whose severity is in ``fail_on_severity`` *and* whose confidence is in
  ``fail_on_confidence`` (default: medium and high for both) and no accepted ``# nosec`` comment
  covers it (finding ``code.<test id>``, e.g. ``code.B602``);
* a ``# nosec`` comment is refused: no test id, no reason, malformed (``code.nosec-without-reason``...,
  :mod:`.suppressions`);
* more comments were accepted than ``max_suppressions`` allows (``code.too-many-suppressions``);
* with ``scan_secrets`` (default on) a credential is found (``secret.<type>``, e.g.
  ``secret.aws-access-key``, ``secret.private-key``): always, whatever the thresholds say.

Issues below the thresholds and accepted suppressions are recorded as passed findings.

**Evidence.** ``code_scan_report.json``: every file with its SHA-256 and kind, every issue
(test id and name, severity, confidence, CWE, ``file:line``, message), every ``# nosec`` comment
(accepted or refused, with its reason), every secret (type, ``file:line``, fingerprint), the
bandit tests and detect-secrets plugins that ran. The subjects are the scanned files. No code is
copied into the evidence, and a secret's value never is (bandit's messages that quote a string are
replaced; any value the secret scan found is redacted from every message).

**Errors** (an ``error`` verdict, never a pass; finding ``code-scan.<reason>``): a path that does not
exist (``missing-path``), a file that cannot be read (``unreadable-file``), a binary file
(``binary-file``), a Python syntax error (``syntax-error``), nothing to scan (``no-files``), a
scanner failure (``scanner-failed``), a bad threshold (``gate.could-not-run``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, not_performed_finding, run_gate
from airflow_mlsecops.gates.code_scan.files import PYTHON, CodeScanInputError, Collected, collect_files
from airflow_mlsecops.gates.code_scan.suppressions import Suppression, find_suppressions

GATE_NAME = gate_names.CODE_SCAN
REPORT_FILE = "code_scan_report.json"
#: bandit's levels, most serious first.
LEVELS = ("high", "medium", "low")
DEFAULT_FAIL_ON_SEVERITY = ("high", "medium")
DEFAULT_FAIL_ON_CONFIDENCE = ("high", "medium")

_SEVERITY = {"low": Severity.LOW, "medium": Severity.MEDIUM, "high": Severity.HIGH}
_OWASP = ("ML06:2023",)  # AI supply chain: the code that builds the model
_ATLAS_SECRET = ("AML.T0055",)  # Unsecured Credentials
_REDACTED = "<redacted>"


def parse_levels(value: Sequence[str] | str | None, *, what: str, default: Sequence[str]) -> tuple[str, ...]:
    """Bandit levels as a list (``["high", "medium"]``) or a comma-separated string, most serious first.

    >>> parse_levels("medium, high", what="fail_on_severity", default=())
    ('high', 'medium')
    """
    if value is None:
        return tuple(default)
    items = [p.strip().lower() for p in value.split(",")] if isinstance(value, str) else [str(v).strip().lower() for v in value]
    items = [i for i in items if i]
    unknown = sorted(set(items) - set(LEVELS))
    if unknown or not items:
        shown = ", ".join(unknown) if unknown else "nothing"
        raise ConfigurationError(f"{what}: {shown} is not a list of bandit levels ({', '.join(LEVELS)})")
    return tuple(level for level in LEVELS if level in items)


def policy_levels(value: Any, what: str) -> Any:
    """A level list as the policy check compares it: unset is the default, levels are normalised,
    anything else (a template known only at run time, a bad value) is returned as it is and
    does not comply."""
    default = DEFAULT_FAIL_ON_SEVERITY if what == "fail_on_severity" else DEFAULT_FAIL_ON_CONFIDENCE
    if value is not None and not isinstance(value, (str, list, tuple)):
        return value
    try:
        return list(parse_levels(value, what=what, default=default))
    except ConfigurationError:
        return value


def levels_from(minimum: str) -> tuple[str, ...]:
    """``"medium"`` -> ``("high", "medium")``: a level and every more serious one."""
    if minimum not in LEVELS:
        raise ConfigurationError(f"{minimum!r} is not a bandit level ({', '.join(LEVELS)})")
    return LEVELS[: LEVELS.index(minimum) + 1]


def _check_max(max_suppressions: Any) -> int | None:
    if max_suppressions is None:
        return None
    if isinstance(max_suppressions, bool) or not isinstance(max_suppressions, int) or max_suppressions < 0:
        raise ConfigurationError(f"max_suppressions must be an integer of 0 or more, or None, not {max_suppressions!r}")
    return max_suppressions


def code_scan_policy(
    fail_on_severity: Sequence[str] | str | None = None,
    fail_on_confidence: Sequence[str] | str | None = None,
    scan_secrets: bool = True,
    max_suppressions: int | None = None,
) -> dict[str, Any]:
    """The thresholds as the gate records them (``GateResult.policy``), normalised; bad values are recorded as given."""
    try:
        severity: Any = list(parse_levels(fail_on_severity, what="fail_on_severity", default=DEFAULT_FAIL_ON_SEVERITY))
    except ConfigurationError:
        severity = fail_on_severity
    try:
        confidence: Any = list(parse_levels(fail_on_confidence, what="fail_on_confidence", default=DEFAULT_FAIL_ON_CONFIDENCE))
    except ConfigurationError:
        confidence = fail_on_confidence
    return {
        "fail_on_severity": severity,
        "fail_on_confidence": confidence,
        "scan_secrets": scan_secrets,
        "max_suppressions": max_suppressions,
    }


def scan_code(
    paths: Sequence[str | Path] | str | Path,
    *,
    fail_on_severity: Sequence[str] | str | None = None,
    fail_on_confidence: Sequence[str] | str | None = None,
    scan_secrets: bool = True,
    max_suppressions: int | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
) -> GateOutcome:
    """Scan the Python and configuration files under ``paths``; see the module docstring for the verdict.

    :param paths: files and directories (local).
    :param fail_on_severity: bandit severities that reject (default high, medium).
    :param fail_on_confidence: bandit confidences that reject (default high, medium); an issue rejects
        when both its severity and its confidence are listed.
    :param scan_secrets: also look for credentials (a found one always rejects).
    :param max_suppressions: most accepted ``# nosec`` comments allowed (``None``: no limit).
    :param warn_only: report a rejection as ``warned``.
    """
    given = [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]

    def body() -> Evaluation:
        if not isinstance(scan_secrets, bool):
            raise ConfigurationError(f"scan_secrets must be True or False, not {scan_secrets!r}")
        severities = parse_levels(fail_on_severity, what="fail_on_severity", default=DEFAULT_FAIL_ON_SEVERITY)
        confidences = parse_levels(fail_on_confidence, what="fail_on_confidence", default=DEFAULT_FAIL_ON_CONFIDENCE)
        limit = _check_max(max_suppressions)
        collected = collect_files(given)
        if not scan_secrets and not any(f.kind == PYTHON for f in collected.files):
            raise CodeScanInputError(
                "no Python files to analyse and the secret scan is off: nothing would be checked", "no-files"
            )
        return _evaluate(collected, severities, confidences, scan_secrets, limit)

    return run_gate(
        GATE_NAME,
        body,
        policy=code_scan_policy(fail_on_severity, fail_on_confidence, scan_secrets, max_suppressions),
        warn_only=warn_only,
        distributions=("bandit", "detect-secrets"),
        context=context,
    )


def _evaluate(
    collected: Collected,
    severities: tuple[str, ...],
    confidences: tuple[str, ...],
    scan_secrets: bool,
    limit: int | None,
) -> Evaluation:
    from airflow_mlsecops.gates.code_scan.credentials import plugin_names
    from airflow_mlsecops.gates.code_scan.credentials import scan_secrets as find_secrets
    from airflow_mlsecops.gates.code_scan.static import run_bandit

    files = collected.files
    issues, test_count = run_bandit(files)
    secrets, values = find_secrets(files) if scan_secrets else ([], {})
    every_value = sorted({v for vs in values.values() for v in vs}, key=len, reverse=True)

    def redact(text: str) -> str:
        for value in every_value:
            text = text.replace(value, _REDACTED)
        return text

    comments: list[Suppression] = []
    for source in files:
        if source.kind == PYTHON:
            comments.extend(find_suppressions(source.path.read_bytes(), file=source.name))
    accepted = {(s.file, s.line): s for s in comments if s.accepted}
    used: dict[tuple[str, int], int] = {}

    findings: list[Finding] = []
    issue_rows: list[dict[str, Any]] = []
    failing_issues = below = suppressed = 0
    for issue in issues:
        counted = issue.severity in severities and issue.confidence in confidences
        cover = next(
            (
                accepted[(issue.file, n)]
                for n in sorted({issue.line, *issue.lines})
                if (issue.file, n) in accepted and issue.test_id in accepted[(issue.file, n)].test_ids
            ),
            None,
        )
        cwe = f"CWE-{issue.cwe}" if issue.cwe else "no CWE"
        message = redact(f"{issue.test_name}: {issue.message} ({cwe}, severity {issue.severity}, confidence {issue.confidence})")
        row: dict[str, Any] = {
            "id": f"code.{issue.test_id}",
            "test_id": issue.test_id,
            "test_name": issue.test_name,
            "severity": issue.severity,
            "confidence": issue.confidence,
            "cwe": issue.cwe,
            "file": issue.file,
            "line": issue.line,
            "column": issue.column,
            "message": redact(issue.message),
        }
        if cover is not None:
            used[(cover.file, cover.line)] = used.get((cover.file, cover.line), 0) + 1
            suppressed += 1
            row["status"] = "suppressed"
            row["suppression"] = f"{cover.file}:{cover.line}"
            message += f"; accepted by '# nosec' at {cover.file}:{cover.line}: {redact(cover.reason)}"
        elif counted:
            failing_issues += 1
            row["status"] = "failed"
        else:
            below += 1
            row["status"] = "below-threshold"
            message += "; below the thresholds"
        issue_rows.append(row)
        findings.append(
            Finding(
                id=row["id"],
                severity=_SEVERITY.get(issue.severity, Severity.HIGH),
                message=message,
                location=issue.location,
                owasp_ml=_OWASP,
                passed=row["status"] != "failed",
            )
        )

    refused = [s for s in comments if not s.accepted]
    for s in refused:
        what = {
            "nosec-without-test-id": "names no bandit test (it would hide every finding of the line)",
            "nosec-without-reason": f"gives no reason (write '# nosec {', '.join(s.test_ids) or 'B000'}: <why it is safe>')",
            "nosec-malformed": "is not of the form '# nosec B602: <reason>' (test ids, then the reason)",
        }[s.problem or "nosec-malformed"]
        findings.append(
            Finding(
                id=f"code.{s.problem}",
                severity=Severity.MEDIUM,
                message=f"a '# nosec' comment {what}; nothing is suppressed by it",
                location=f"{s.file}:{s.line}",
                owasp_ml=_OWASP,
            )
        )
    suppression_rows = []
    for s in comments:
        row = {**s.to_dict(), "reason": redact(s.reason), "status": "accepted" if s.accepted else "refused"}
        if s.accepted:
            row["suppressed"] = used.get((s.file, s.line), 0)
            if not row["suppressed"]:
                findings.append(
                    Finding(
                        id="code.nosec-unused",
                        severity=Severity.INFO,
                        message=f"'# nosec {', '.join(s.test_ids)}' suppresses nothing on this line (stale?)",
                        location=f"{s.file}:{s.line}",
                        passed=True,
                    )
                )
        suppression_rows.append(row)
    n_accepted = sum(1 for s in comments if s.accepted)
    if limit is not None and n_accepted > limit:
        findings.append(
            Finding(
                id="code.too-many-suppressions",
                severity=Severity.MEDIUM,
                message=f"{n_accepted} '# nosec' comments are accepted; the policy allows at most {limit}",
                owasp_ml=_OWASP,
            )
        )
    for secret in secrets:
        findings.append(
            Finding(
                id=f"secret.{secret.slug}",
                severity=Severity.CRITICAL,
                message=f"hard-coded credential ({secret.type}), fingerprint {secret.fingerprint}; the value is withheld: "
                "remove it from the code and rotate it",
                location=secret.location,
                atlas=_ATLAS_SECRET,
                owasp_ml=_OWASP,
            )
        )

    failed = [f for f in findings if not f.passed]
    passed = not failed
    python_files = sum(1 for f in files if f.kind == PYTHON)
    parts = [f"{len(files)} files ({python_files} Python)", f"{failing_issues} issues at or above the thresholds"]
    if scan_secrets:
        parts.append(f"{len(secrets)} secrets")
    parts.append(f"{n_accepted} accepted suppressions")
    if refused:
        parts.append(f"{len(refused)} refused")
    summary = ("passed: " if passed else "rejected: ") + ", ".join(parts)
    report = {
        "gate": GATE_NAME,
        "thresholds": {
            "fail_on_severity": list(severities),
            "fail_on_confidence": list(confidences),
            "scan_secrets": scan_secrets,
            "max_suppressions": limit,
        },
        "files": [{"name": f.name, "sha256": f.sha256, "kind": f.kind, "lines": f.lines} for f in files],
        "not_read": collected.not_read,
        "issues": issue_rows,
        "suppressions": suppression_rows,
        "secrets": [s.to_dict() for s in secrets] if scan_secrets else None,
        "tools": {
            "bandit": {"tests": test_count, "configuration": "none (every test on, nosec decided by the gate)"},
            "detect-secrets": {"plugins": plugin_names()} if scan_secrets else None,
        },
    }
    data = json.dumps(report, indent=2, sort_keys=True).encode("utf-8")
    for value in every_value:  # belt and braces: a value must never reach the evidence
        data = data.replace(json.dumps(value)[1:-1].encode("utf-8"), _REDACTED.encode("utf-8"))
    evaluation = Evaluation(
        passed=passed,
        summary=summary,
        subjects=[Subject(name=f.name, sha256=f.sha256) for f in files],
        findings=findings,
        metrics={
            "files_scanned": float(len(files)),
            "python_files": float(python_files),
            "lines_scanned": float(sum(f.lines for f in files)),
            "issues_failed": float(failing_issues),
            "issues_below_threshold": float(below),
            "issues_suppressed": float(suppressed),
            "suppressions_accepted": float(n_accepted),
            "suppressions_refused": float(len(refused)),
            "secrets_found": float(len(secrets)),
        },
        files={REPORT_FILE: data},
        details={
            "report": REPORT_FILE,
            "suppressions": [r for r in suppression_rows if r["status"] == "accepted"],
            "failed_findings": len(failed),
        },
    )
    if not scan_secrets:  # a check that did not run is never a pass: the verdict reads warned (incomplete)
        evaluation.skip(
            not_performed_finding(
                "code-scan.secret-scan-not-performed",
                "the secret scan was switched off (scan_secrets=False): hard-coded credentials were not looked for",
            )
        )
    return evaluation
