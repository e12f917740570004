"""The DP evidence engine on real gate outcomes (Great Expectations, the integrity and PII gates on real
files): statistics noised through OpenDP or withheld, the verdict exact, the budget enforced, the noise real."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.demo.example_data import LABEL, credit_frame
from airflow_mlsecops.evidence.models import Finding, GateResult, Severity, Subject, Verdict
from airflow_mlsecops.gates.base import GateOutcome
from airflow_mlsecops.privacy.budget import BudgetLedger, dataset_key
from airflow_mlsecops.privacy.dp_evidence import (
    GATE_STATISTICS,
    MemoryBudget,
    protect,
    release,
    sensitive_datasets,
)
from airflow_mlsecops.privacy.sensitive import EvidencePrivacy, parse_sensitive_data

ROWS, NULL_AGES, DUPLICATES = 800, 40, 60
SUITE = {
    "name": "loans",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100, "max_value": 1000000}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": LABEL, "min_value": 0.0, "max_value": 0.9}},
    ],
}
ENTRIES = parse_sensitive_data(
    [{"name": "loans", "match": ["*/loans*.csv"], "evidence": {"epsilon_per_release": 1.0, "total_epsilon": 3.0}}]
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("dp")
    batch = credit_frame(rows=ROWS - DUPLICATES, seed=3)
    batch = pd.concat([batch, batch.iloc[:DUPLICATES]], ignore_index=True)
    batch["age"] = batch["age"].astype("float")
    batch.loc[np.arange(100, 100 + NULL_AGES * 5, 5), "age"] = np.nan
    batch["email"] = [f"client{i}@bank.example" if i % 10 == 0 else "n/a" for i in range(len(batch))]
    paths = {"loans": root / "loans-2026.csv", "reference": root / "reference.csv"}
    batch.to_csv(paths["loans"], index=False)
    credit_frame(rows=2000, seed=7).to_csv(paths["reference"], index=False)
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def validation(files: dict[str, str]) -> GateOutcome:
    from airflow_mlsecops.gates.data_validation import validate_data

    return validate_data(files["loans"], SUITE)


@pytest.fixture(scope="module")
def integrity(files: dict[str, str]) -> GateOutcome:
    from airflow_mlsecops.gates.data_integrity.gate import check_integrity

    return check_integrity(files["loans"], files["reference"], label_column=LABEL)


def _released(outcome: GateOutcome, *, per: float = 1.0, total: float = 100.0, budget: Any = None) -> GateOutcome:
    return release(
        outcome,
        EvidencePrivacy(per, total),
        budget if budget is not None else MemoryBudget(),
        datasets=[dataset_key("loans", outcome.result.subjects[0].sha256)],
        sensitive_name="loans",
    )


def _text(result: GateResult) -> str:
    """Everything a reader sees of a result but the released numbers."""
    return " ".join([result.summary, *(f.message for f in result.findings), *(str(f.location) for f in result.findings)])


def test_validation_statistics_are_released_and_the_verdict_is_exact(validation: GateOutcome) -> None:
    exact = validation.result
    assert exact.verdict is Verdict.FAILED and exact.metrics["rows"] == ROWS
    assert f"{NULL_AGES} of {ROWS}" in _text(exact) and "gx_validation_result.json" in validation.files
    out = _released(validation)
    result = out.result
    # the decision is exact and complete
    assert result.verdict is exact.verdict and result.warned_reason == exact.warned_reason
    assert [(f.id, f.severity, f.passed) for f in result.findings] == [(f.id, f.severity, f.passed) for f in exact.findings]
    assert result.subjects == exact.subjects and result.policy == exact.policy
    # nothing exact is written: no file, no count in the texts, the GX sample of offending rows gone
    assert out.files == {}
    assert f"{NULL_AGES} of" not in _text(result) and str(ROWS) not in result.summary
    assert "expect_column_values_to_not_be_null" in _text(result) and "does not hold" in _text(result)
    record = result.details["dp_release"]
    assert record["epsilon"] == 1.0 and record["delta"] == 0.0 and record["library"].startswith("opendp 0.")
    fields = {f["field"]: f for f in record["fields"]}
    assert set(fields) == {"metrics/rows", "details/unexpected_counts"}
    assert math.isclose(sum(f["epsilon"] for f in fields.values()), 1.0)
    assert "files/gx_validation_result.json" in record["withheld"]
    assert isinstance(result.metrics["rows"], float) and result.metrics["expectations"] == exact.metrics["expectations"]
    counts = result.details["unexpected_counts"]
    # one row is unexpected at most once per expectation that counts rows: L1 sensitivity = their number
    assert fields["details/unexpected_counts"]["sensitivity"] == len(counts) >= 2
    assert counts["2:expect_column_values_to_not_be_null"].keys() == {"age"}
    assert all(isinstance(n, int) and n >= 0 for inner in counts.values() for n in inner.values())
    assert record["budget"] == {"spent": 1.0, "total": 100.0, "dataset": f"loans@sha256:{exact.subjects[0].sha256}"}
    # the released result is still a valid gate result
    assert GateResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_integrity_withholds_row_positions_and_unknown_statistics(integrity: GateOutcome) -> None:
    exact = integrity.result
    duplicates = exact.details["checks"]["integrity.duplicates"]
    assert duplicates["rows_total"] == DUPLICATES and duplicates["rows"]
    result = _released(integrity).result
    assert result.verdict is exact.verdict is Verdict.FAILED
    record = result.details["dp_release"]
    released = result.details["checks"]["integrity.duplicates"]
    assert "rows" not in released and released["status"] == "failed" and released["threshold"] == duplicates["threshold"]
    assert isinstance(released["rows_total"], int)
    assert "details/checks/integrity.duplicates/rows/*" in record["withheld"]
    assert {"metrics/label_tvd", "metrics/feature_shift_max", "files/integrity_report.json"} <= set(record["withheld"])
    assert "label_tvd" not in result.metrics and "label_shift_p_value" not in result.metrics
    # a check value repeats its metric: released once, copied for free
    assert result.details["checks"]["integrity.duplicates"].get("value") is None or "metrics/duplicate_share" in {
        f["field"] for f in record["fields"]
    }
    copies = [f for f in record["fields"] if f["kind"] == "copy"]
    assert copies and all(f["epsilon"] == 0.0 for f in copies)
    for copy in copies:
        path = copy["field"].split("/")[1:]
        value: Any = result.details
        for part in path:
            value = value[part]
        assert value == result.metrics[copy["of"].split("/", 1)[1]]
    # row positions are gone from the finding locations too
    assert all(f.location is None or f.location.startswith("column") for f in result.findings)
    assert "repeat an earlier row" not in _text(result)


def test_pii_counts_per_column_are_a_noised_histogram(files: dict[str, str]) -> None:
    from airflow_mlsecops.gates.pii.gate import scan_pii

    exact = scan_pii(files["loans"])
    assert exact.result.verdict is Verdict.FAILED
    result = _released(exact).result
    assert result.verdict is Verdict.FAILED and [f.id for f in result.failed_findings] == [
        f.id for f in exact.result.failed_findings
    ]
    assert result.details["pii_columns"] == exact.result.details["pii_columns"]  # which columns: the findings say it
    counts = result.details["pii_counts"]
    assert set(counts) == {"email"} and set(counts["email"]) == {"email"}
    assert isinstance(counts["email"]["email"], int)
    assert "pii_cells" not in result.metrics and "rows_per_second" not in result.metrics
    assert "files/pii_report.json" in result.details["dp_release"]["withheld"]
    assert "@" not in json.dumps(result.to_dict()).replace("@sha256", "")  # no masked sample either


def test_a_field_the_table_does_not_know_is_withheld_never_copied(validation: GateOutcome) -> None:
    import dataclasses

    exact = validation.result
    planted = dataclasses.replace(
        exact,
        details={**exact.details, "mean_income": 48211.5, "ages": [23, 45]},
        metrics={**exact.metrics, "income_p99": 151000.0},
    )
    result = _released(dataclasses.replace(validation, result=planted)).result
    assert "mean_income" not in result.details and "ages" not in result.details and "income_p99" not in result.metrics
    assert {"details/mean_income", "details/ages/*", "metrics/income_p99"} <= set(result.details["dp_release"]["withheld"])


def test_a_gate_the_table_does_not_know_keeps_its_verdict_and_nothing_else() -> None:
    result = GateResult.create(
        gate="membership-inference",
        verdict=Verdict.WARNED,
        warned_reason="incomplete",
        subjects=[Subject("/data/loans-1.csv", "a" * 64)],
        findings=[Finding("mi.auc", Severity.HIGH, "attack AUC 0.81 on 1,204 rows", location="rows 1-20")],
        metrics={"auc": 0.81, "rows": 1204.0},
        details={"not_performed": ["mi.shadow"], "auc_ci": [0.79, 0.83]},
        summary="attack AUC 0.81; INCOMPLETE, not performed: mi.shadow",
    )
    out = _released(GateOutcome(result=result, files={"report.json": b"{}"})).result
    assert out.verdict is Verdict.WARNED and out.incomplete and out.not_performed == ("mi.shadow",)
    assert out.metrics == {} and set(out.details) == {"not_performed", "dp_release"}
    assert "0.81" not in _text(out) and "1,204" not in _text(out) and out.findings[0].location is None
    assert out.summary.endswith("INCOMPLETE, not performed: mi.shadow")
    assert out.details["dp_release"]["fields"] == [] and out.details["dp_release"]["budget"]["spent"] is None


def test_the_budget_runs_out_and_then_statistics_are_withheld_with_the_verdict_unchanged(validation: GateOutcome) -> None:
    budget = MemoryBudget()
    records = [_released(validation, per=1.0, total=3.0, budget=budget).result for _ in range(4)]
    assert [r.details["dp_release"]["budget"]["spent"] for r in records[:3]] == [1.0, 2.0, 3.0]
    last = records[3]
    assert last.verdict is validation.result.verdict and [f.id for f in last.findings] == [
        f.id for f in validation.result.findings
    ]
    assert last.details["dp_release"]["refused"] == "budget exhausted: 3.0 of 3.0 spent"
    assert "rows" not in last.metrics and "unexpected_counts" not in last.details
    assert {"metrics/rows", "details/unexpected_counts"} <= set(last.details["dp_release"]["withheld"])
    assert "budget exhausted" in last.summary


def test_the_noise_is_real_and_has_the_laplace_scale() -> None:
    """A count released at epsilon e has discrete Laplace noise of scale 1/e: E|noise| = 2r/(1-r^2), r = exp(-e)."""
    rows = 5000
    result = GateResult.create(
        gate="data-validation",
        verdict=Verdict.PASSED,
        subjects=[Subject("/d/loans.csv", "b" * 64)],
        metrics={"rows": float(rows)},
    )
    outcome = GateOutcome(result=result)
    for epsilon in (0.5, 2.0):
        budget = MemoryBudget()
        released = [_released(outcome, per=epsilon, total=1e6, budget=budget).result.metrics["rows"] for _ in range(1000)]
        errors = np.abs(np.asarray(released) - rows)
        r = math.exp(-epsilon)
        expected = 2 * r / (1 - r * r)
        assert len(set(released)) > 3
        assert abs(errors.mean() - expected) < 0.15 * expected + 0.02, (epsilon, errors.mean(), expected)
        assert abs(float(np.mean(released)) - rows) < 6 * math.sqrt(2 * r) / (1 - r) / math.sqrt(len(released)) + 0.05


def test_two_releases_differ(validation: GateOutcome) -> None:
    releases = {_released(validation).result.metrics["rows"] for _ in range(6)}
    assert len(releases) > 1


def test_which_results_are_sensitive_by_name_or_digest() -> None:
    digest = "c" * 64
    by_digest = parse_sensitive_data(
        [
            {"name": "loans", "match": ["*/loans*.csv"], "evidence": {"epsilon_per_release": 0.5, "total_epsilon": 5}},
            {"name": "pinned", "match": [f"sha256:{digest}"], "evidence": {"epsilon_per_release": 0.25, "total_epsilon": 2}},
            {"name": "training-only", "match": ["*/iris*.csv"], "training": {"max_epsilon": 8}},
        ]
    )

    def result(*subjects: Subject) -> GateResult:
        return GateResult.create(gate="drift", verdict=Verdict.PASSED, subjects=subjects)

    found = sensitive_datasets(by_digest, result(Subject("/d/loans-1.csv", "a" * 64), Subject("/d/ref.csv", digest)))
    assert found is not None
    entry, keys = found
    assert entry.evidence is not None and entry.evidence.epsilon_per_release == 0.25 and entry.evidence.total_epsilon == 2
    assert keys == [f"loans@sha256:{'a' * 64}", f"pinned@sha256:{digest}"]
    assert sensitive_datasets(by_digest, result(Subject("/d/other.csv", "d" * 64))) is None
    assert sensitive_datasets(by_digest, result(Subject("/d/iris.csv", "d" * 64))) is None  # no evidence block


def test_protect_spends_from_the_ledger_database_and_fails_closed_without_it(validation: GateOutcome, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    spent = [protect(validation, ENTRIES, url).result.details["dp_release"]["budget"]["spent"] for _ in range(4)]
    assert spent == [1.0, 2.0, 3.0, 3.0]
    key = dataset_key("loans", validation.result.subjects[0].sha256)
    assert BudgetLedger(url).spent(key) == 3.0
    unreachable = protect(validation, ENTRIES, "postgresql+psycopg2://nobody@127.0.0.1:1/none").result
    assert unreachable.details["dp_release"]["refused"].startswith("privacy budget unavailable")
    assert "rows" not in unreachable.metrics and unreachable.verdict is validation.result.verdict
    not_sensitive = parse_sensitive_data(
        [{"name": "x", "match": ["*/nothing.csv"], "evidence": {"epsilon_per_release": 1, "total_epsilon": 1}}]
    )
    assert protect(validation, not_sensitive, url) is validation


def test_the_table_names_only_gates_that_exist() -> None:
    from airflow_mlsecops import gate_names

    assert set(GATE_STATISTICS) <= set(gate_names.POLICY_GATES)


@pytest.mark.slow
def test_drift_per_column_scores_are_noised_and_the_drift_flags_exact(files: dict[str, str]) -> None:
    from airflow_mlsecops.gates.drift import detect_drift

    exact = detect_drift(files["reference"], files["loans"], html=False, label_column=LABEL, random_state=1)
    result = _released(exact, per=2.0).result
    assert result.verdict is exact.result.verdict
    columns, exact_columns = result.details["columns"], exact.result.details["columns"]
    flags = ("column", "method", "threshold", "drifted", "severe", "status")
    assert [{k: c[k] for k in flags} for c in columns] == [{k: c[k] for k in flags} for c in exact_columns]
    assert all(0.0 <= c["score"] <= 1.0 for c in columns)
    record = result.details["dp_release"]
    scores = [f for f in record["fields"] if f["kind"] == "score"]
    assert len(scores) == len(exact_columns) and all(f["scale"] >= 1 / f["epsilon"] for f in scores)
    assert {"details/evidently_dataset_test", "files/drift_report.json"} <= set(record["withheld"])
    assert result.details["sampling"]["rows_current"] == result.metrics["rows_current"]
    assert result.metrics["drifted_columns"] == exact.result.metrics["drifted_columns"]
