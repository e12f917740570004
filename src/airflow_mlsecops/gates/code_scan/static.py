"""Static analysis with bandit's Python API (``BanditManager``), every test on, no configuration file.

:func:`run_bandit` scans the Python files :func:`~.files.collect_files` read and returns every
issue bandit raised (its own ``# nosec`` handling off: :mod:`.suppressions` decides what a comment
accepts). It fails closed: a file bandit skipped, an error logged by one of its tests (a crashed
test would otherwise be a silent miss), or a test set missing one of bandit's tests is a
:class:`~.files.CodeScanInputError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow_mlsecops.gates.code_scan.files import CodeScanInputError, SourceFile

#: Messages of tests that quote the string they flag: a hard-coded password would be copied into
#: the evidence. They get a fixed message instead.
_QUOTING_TESTS = {
    "B105": "possible hard-coded password string (the value is withheld)",
    "B106": "possible hard-coded password passed as an argument (the value is withheld)",
    "B107": "possible hard-coded password as an argument default (the value is withheld)",
}


@dataclass(frozen=True)
class Issue:
    """One bandit issue, without the code snippet bandit attaches (it may quote a secret)."""

    test_id: str
    test_name: str
    severity: str  # low, medium, high
    confidence: str  # low, medium, high
    cwe: int | None
    file: str
    line: int
    lines: tuple[int, ...]
    column: int
    message: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _bandit_errors() -> Iterator[_ErrorLog]:
    handler = _ErrorLog()
    logger = logging.getLogger("bandit")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _check_test_set(manager: Any) -> int:
    """Every bandit test (plugins and the blacklist) is in the test set; the number of test ids."""
    from bandit.core import extension_loader

    ids: set[str] = set()
    for tests in manager.b_ts.tests.values():
        for test in tests:
            ids.add(test._test_id)
            for entries in (getattr(test, "_config", None) or {}).values() if test._test_id == "B001" else ():
                ids.update(entry["id"] for entry in entries)
    expected = set(extension_loader.MANAGER.plugins_by_id) | set(extension_loader.MANAGER.blacklist_by_id)
    missing = sorted(expected - ids)
    if missing:
        raise CodeScanInputError(f"bandit's test set leaves out {', '.join(missing)}: no test may be skipped", "tests-skipped")
    return len(ids - {"B001"})


def bandit_test_count() -> int:
    """How many bandit tests a scan runs (plugins plus blacklist entries)."""
    from bandit.core import config, manager

    return _check_test_set(manager.BanditManager(config.BanditConfig(), "file", ignore_nosec=True, quiet=True))


def run_bandit(files: Sequence[SourceFile]) -> tuple[list[Issue], int]:
    """Bandit's issues in ``files`` (Python files only) and the number of tests that ran.

    :raises CodeScanInputError: bandit skipped a file or one of its tests failed.
    """
    from bandit.core import config, manager

    python = [f for f in files if f.kind == "python"]
    by_path = {str(f.path): f for f in python}
    bandit = manager.BanditManager(config.BanditConfig(), "file", ignore_nosec=True, quiet=True)
    tests = _check_test_set(bandit)
    if not python:
        return [], tests
    bandit.files_list = list(by_path)
    with _bandit_errors() as errors:
        bandit.run_tests()
    if bandit.skipped:
        name, why = bandit.skipped[0]
        shown = by_path[name].name if name in by_path else name
        raise CodeScanInputError(f"{shown}: bandit could not scan it ({why})", "scanner-failed")
    if errors.messages:
        raise CodeScanInputError(f"bandit reported an error: {errors.messages[0]}", "scanner-failed")
    issues = []
    for found in bandit.results:
        source = by_path[found.fname]
        test_id = str(found.test_id)
        cwe = getattr(getattr(found, "cwe", None), "id", None)
        issues.append(
            Issue(
                test_id=test_id,
                test_name=str(found.test),
                severity=str(found.severity).lower(),
                confidence=str(found.confidence).lower(),
                cwe=int(cwe) if cwe else None,
                file=source.name,
                line=int(found.lineno),
                lines=tuple(int(n) for n in (found.linerange or [found.lineno])),
                column=int(found.col_offset or 0),
                message=_QUOTING_TESTS.get(test_id, str(found.text)),
            )
        )
    issues.sort(key=lambda i: (i.file, i.line, i.test_id))
    return issues, tests
