"""Typical evidence, built with the project's own types: a data-validation gate result of six
expectations, its in-toto statement (~2 KiB canonical JSON) and a 5 KiB GX report file."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.evidence.statement import GateStatement

_EXPECTATIONS = (
    ('expect_column_values_to_not_be_null({"column": "age"})', "age"),
    ('expect_column_values_to_be_between({"column": "age", "max_value": 100, "min_value": 18})', "age"),
    ('expect_column_values_to_be_between({"column": "income", "min_value": 0})', "income"),
    ('expect_column_values_to_be_between({"column": "debt_ratio", "max_value": 5, "min_value": 0})', "debt_ratio"),
    ('expect_column_values_to_be_in_set({"column": "defaulted", "value_set": [0, 1]})', "defaulted"),
    ('expect_column_mean_to_be_between({"column": "defaulted", "max_value": 0.6, "min_value": 0.05})', "defaulted"),
)


def gate_result(task_id: str = "validate_data", *, findings: int = 6) -> GateResult:
    """A passed data-validation result as :func:`validate_data` produces it (fixed timestamps)."""
    items = [_EXPECTATIONS[i % len(_EXPECTATIONS)] for i in range(findings)]
    return GateResult.create(
        gate="data-validation",
        verdict=Verdict.PASSED,
        subjects=[Subject("/opt/airflow/data/manual__2026-01-01/train.parquet", "5e" * 32)],
        findings=[
            Finding(
                id=f"expectation.{call.split('(', 1)[0]}",
                severity=Severity.INFO,
                message=f"{call} holds",
                location=f"column {column}",
                passed=True,
            )
            for call, column in items
        ],
        metrics={"rows": 1_000_000.0, "expectations": float(findings), "expectations_failed": 0.0, "success_percent": 100.0},
        policy={"suite": "/opt/airflow/dags/suites/training_data.json", "result_format": "SUMMARY"},
        tool_versions={"airflow-mlsecops": "0.1.0", "great-expectations": "1.24.1", "pandas": "2.3.3"},
        started_at=datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc),
        finished_at=datetime(2026, 1, 1, 12, 0, 1, tzinfo=timezone.utc),
        context=PipelineContext(dag_id="secure_training_pipeline", run_id="manual__2026-01-01T00:00:00+00:00", task_id=task_id),
        summary=f"{findings}/{findings} expectations hold on 1000000 rows of train.parquet",
        details={"suite_name": "credit_training_data", "format": "parquet", "result_format": "SUMMARY"},
    )


def statement_payload(min_bytes: int = 2048) -> bytes:
    """The canonical in-toto statement of :func:`gate_result`, at least ``min_bytes`` long (~2 KiB)."""
    for findings in range(1, 200):
        statement = GateStatement(
            result=gate_result(findings=findings),
            evidence_files={"gx_validation_result.json": "ab" * 32, "result.json": "cd" * 32},
        )
        payload = statement.to_payload()
        if len(payload) >= min_bytes:
            return payload
    raise AssertionError("unreachable")


def gx_report(size: int = 5 * 1024) -> bytes:
    """A GX-validation-result-like JSON document of exactly ``size`` bytes."""
    results = []
    doc: dict[str, object] = {"success": True, "statistics": {"evaluated_expectations": 6}, "results": results}
    i = 0
    while len(json.dumps(doc, indent=2).encode()) < size - 400:
        call, column = _EXPECTATIONS[i % len(_EXPECTATIONS)]
        results.append({"success": True, "expectation_config": {"type": call.split("(", 1)[0], "kwargs": {"column": column}}})
        i += 1
    raw = json.dumps(doc, indent=2).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"
