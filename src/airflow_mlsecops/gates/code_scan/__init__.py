"""Code scan gate: static analysis (bandit) and a secret scan (detect-secrets) of pipeline code.

>>> from airflow_mlsecops.gates.code_scan import scan_code
>>> outcome = scan_code(["dags/", "src/training/"])            # doctest: +SKIP
>>> outcome.verdict                                               # doctest: +SKIP
<Verdict.FAILED: 'failed'>
>>> [(f.id, f.location) for f in outcome.result.failed_findings]  # doctest: +SKIP
[('code.B602', 'src/training/fetch.py:12'), ('secret.aws-access-key', 'dags/settings.yaml:3')]

Known-safe code is accepted only through an inline comment naming the bandit test and the
reason (``# nosec B603: argv is a fixed list``); the evidence lists every one.

Where things live:

* :mod:`.gate` - :func:`scan_code`: the thresholds, the verdict, findings and ``code_scan_report.json``.
* :mod:`.files` - which files are read, and what is refused (missing, binary, unreadable, syntax errors).
* :mod:`.static` - bandit through its Python API, every test on, failing closed.
* :mod:`.suppressions` - ``# nosec B602: <reason>`` comments: accepted or refused.
* :mod:`.credentials` - detect-secrets: plugins, filters, fingerprints (never values).

No Airflow import; bandit and detect-secrets are imported when a scan runs.
"""

from airflow_mlsecops.gates.code_scan.files import CONFIG_SUFFIXES, SKIPPED_DIRS, CodeScanInputError
from airflow_mlsecops.gates.code_scan.gate import (
    DEFAULT_FAIL_ON_CONFIDENCE,
    DEFAULT_FAIL_ON_SEVERITY,
    GATE_NAME,
    LEVELS,
    REPORT_FILE,
    code_scan_policy,
    levels_from,
    parse_levels,
    policy_levels,
    scan_code,
)
from airflow_mlsecops.gates.code_scan.suppressions import MIN_REASON_CHARS, Suppression, parse_comment

__all__ = [
    "CONFIG_SUFFIXES",
    "DEFAULT_FAIL_ON_CONFIDENCE",
    "DEFAULT_FAIL_ON_SEVERITY",
    "GATE_NAME",
    "LEVELS",
    "MIN_REASON_CHARS",
    "REPORT_FILE",
    "SKIPPED_DIRS",
    "CodeScanInputError",
    "Suppression",
    "code_scan_policy",
    "levels_from",
    "parse_comment",
    "parse_levels",
    "policy_levels",
    "scan_code",
]
