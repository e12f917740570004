"""``CodeScanGateOperator``: reject pipeline code with security issues (bandit) or hard-coded secrets (detect-secrets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome


class CodeScanGateOperator(BaseGateOperator):
    """Scan the code that builds a model (the DAG folder, the training module) before it runs.

    Bandit's static analysis runs on every Python file (every test, no configuration file), and
    detect-secrets on the Python and configuration files (YAML, JSON, INI, ``.env``...). The task
    fails (without retry) on an issue whose severity and confidence are in ``fail_on_severity`` and
    ``fail_on_confidence``, on any hard-coded credential, and on a ``# nosec`` comment that names no
    test or gives no reason. Known-safe code is accepted only by an inline ``# nosec B603: <reason>``
    on the flagged line; the evidence (``code_scan_report.json``) lists every one with its reason,
    every issue with ``file:line``, test id and CWE, and every secret's type, location and
    fingerprint (never its value). The subjects are the scanned files' SHA-256 digests. A path that
    does not exist, a binary or unreadable file or a syntax error is an ``error`` verdict. See
    :mod:`airflow_mlsecops.gates.code_scan`.

    .. code-block:: python

        scan_code = CodeScanGateOperator(
            task_id="scan_code",
            paths=[str(Path(__file__).parent), "/opt/pipelines/churn/training"],
            fail_on_severity=["high", "medium"],
        )
        scan_code >> train

    :param paths: local files and directories to scan (one path or a list). (templated)
    :param fail_on_severity: bandit severities that reject (``high``, ``medium``, ``low``; default
        high and medium). Lower ones are recorded as passed findings.
    :param fail_on_confidence: bandit confidences that reject (default high and medium).
    :param scan_secrets: look for hard-coded credentials (default ``True``).
    :param max_suppressions: most accepted ``# nosec`` comments allowed (default ``None``: no limit).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "paths")
    gate_name: ClassVar[str] = gate_names.CODE_SCAN

    def __init__(
        self,
        *,
        paths: Sequence[str | Path] | str | Path,
        fail_on_severity: Sequence[str] | str | None = None,
        fail_on_confidence: Sequence[str] | str | None = None,
        scan_secrets: bool = True,
        max_suppressions: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.require_flags(scan_secrets=scan_secrets)
        from airflow_mlsecops.exceptions import ConfigurationError
        from airflow_mlsecops.gates.code_scan import DEFAULT_FAIL_ON_CONFIDENCE, DEFAULT_FAIL_ON_SEVERITY, parse_levels

        listed = [paths] if isinstance(paths, (str, Path)) else list(paths or ())
        if not listed or not all(isinstance(p, (str, Path)) and str(p).strip() for p in listed):
            raise ValueError(f"{self.task_id}: paths must name at least one file or directory")
        if max_suppressions is not None and (
            isinstance(max_suppressions, bool) or not isinstance(max_suppressions, int) or max_suppressions < 0
        ):
            raise ValueError(f"{self.task_id}: max_suppressions must be an integer of 0 or more, not {max_suppressions!r}")
        try:
            self.fail_on_severity = list(
                parse_levels(fail_on_severity, what="fail_on_severity", default=DEFAULT_FAIL_ON_SEVERITY)
            )
            self.fail_on_confidence = list(
                parse_levels(fail_on_confidence, what="fail_on_confidence", default=DEFAULT_FAIL_ON_CONFIDENCE)
            )
        except ConfigurationError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from exc
        self.paths = [str(p) for p in listed]
        self.scan_secrets = scan_secrets
        self.max_suppressions = max_suppressions

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.code_scan import scan_code

        return scan_code(
            self.paths,
            fail_on_severity=self.fail_on_severity,
            fail_on_confidence=self.fail_on_confidence,
            scan_secrets=self.scan_secrets,
            max_suppressions=self.max_suppressions,
            warn_only=self.warn_only,
            context=pipeline,
        )
