"""The Spark engine reaches the same verdicts, on the same expectations, as pandas on the same files.

Needs pyspark and Java 17+ (``MLSECOPS_TEST_SPARK=1``; the ``spark`` fixture skips otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.data_validation import validate_data

pytestmark = pytest.mark.slow

SUITE = {
    "name": "loans",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "income"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0, "max_value": 1e6}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "approved", "value_set": [0, 1]}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "approved", "min_value": 0.2, "max_value": 0.8}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}},
    ],
}
ROLES = {"id_columns": ["loan_id"], "label_column": "approved"}


def _frame(rows: int = 60, *, bad: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "loan_id": list(range(5000, 5000 + rows)),
            "code": [f"C{i:04d}" for i in range(rows)],
            "income": [1200.25 + 17 * i for i in range(rows)],
            "approved": [i % 2 for i in range(rows)],
        }
    )
    if bad:
        frame.loc[rows - 1, "loan_id"] = 5000  # a repeated identifier
        frame.loc[5, "income"] = -40.0
        frame.loc[7, "approved"] = 2
    return frame


def _failed(outcome: Any) -> list[str]:
    return sorted(f"{f.id}@{f.location}" for f in outcome.result.failed_findings)


def _both(path: Path, spark: Any, suite: dict[str, Any] = SUITE, **options: Any) -> tuple[Any, Any]:
    pandas_outcome = validate_data(str(path), suite, **ROLES, **options)
    spark_outcome = validate_data(str(path), suite, engine="spark", **ROLES, **options)
    return pandas_outcome, spark_outcome


def test_a_passing_csv_passes_on_both_engines_with_the_same_evidence(tmp_path: Path, spark: Any) -> None:
    path = tmp_path / "loans.csv"
    _frame().to_csv(path, index=False)
    on_pandas, on_spark = _both(path, spark)
    assert on_pandas.result.verdict is Verdict.PASSED, on_pandas.result.summary
    assert on_spark.result.verdict is Verdict.PASSED, on_spark.result.summary
    assert [f.id for f in on_spark.result.findings] and _failed(on_spark) == _failed(on_pandas) == []
    assert on_spark.result.subjects == on_pandas.result.subjects
    assert on_spark.result.subjects[0].sha256 == sha256_file(path)
    # the same identifiers (declared and inferred: "code" is a string unique per row) on both engines
    assert on_spark.result.details["column_roles"]["id_columns"] == on_pandas.result.details["column_roles"]["id_columns"]
    assert on_spark.result.details["column_roles"]["id_columns"] == ["loan_id", "code"]
    assert (
        on_spark.result.metrics["rows"] == 60
        and on_spark.result.metrics["expectations"] == on_pandas.result.metrics["expectations"]
    )
    spark_details = on_spark.result.details["spark"]
    assert spark_details["master"].startswith("local") and spark_details["snapshot"] is True
    assert spark_details["read_after_hash"] is False
    assert on_spark.result.details["engine"] == "spark" and "pyspark" in on_spark.result.tool_versions
    assert on_spark.result.policy["engine"] == "spark"


def test_a_failing_parquet_fails_on_both_engines_on_the_same_expectations(tmp_path: Path, spark: Any) -> None:
    path = tmp_path / "loans.parquet"
    _frame(bad=True).to_parquet(path, index=False)
    on_pandas, on_spark = _both(path, spark)
    assert on_pandas.result.verdict is Verdict.FAILED and on_spark.result.verdict is Verdict.FAILED
    assert (
        _failed(on_spark)
        == _failed(on_pandas)
        == [
            "column-role.expect_column_values_to_be_unique@column loan_id",
            "expectation.expect_column_values_to_be_between@column income",
            "expectation.expect_column_values_to_be_in_set@column approved",
        ]
    )
    unique = next(f for f in on_spark.result.failed_findings if f.id.endswith("to_be_unique"))
    assert "2 of 60 values unexpected" in unique.message
    raw = json.loads(on_spark.files["gx_validation_result.json"])
    assert all("partial_unexpected_list" not in (r.get("result") or {}) for r in raw["results"])


def test_a_directory_of_csv_parts_is_one_batch_with_a_digest_per_part(tmp_path: Path, spark: Any) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = _frame(bad=True)
    frame.iloc[:30].to_csv(folder / "part-0.csv", index=False)
    frame.iloc[30:].to_csv(folder / "part-1.csv", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / "notes.json").write_text('{"not": "data"}')  # not a part: neither hashed nor read
    on_spark = validate_data(str(folder), SUITE, engine="spark", **ROLES)
    assert on_spark.result.verdict is Verdict.FAILED
    assert [s.sha256 for s in on_spark.result.subjects] == [
        sha256_file(folder / "part-0.csv"),
        sha256_file(folder / "part-1.csv"),
    ]
    assert on_spark.result.metrics["rows"] == 60
    single = tmp_path / "all.csv"
    frame.to_csv(single, index=False)
    assert _failed(on_spark) == _failed(validate_data(str(single), SUITE, **ROLES))


def test_a_missing_label_and_a_failing_suite_column_are_findings_on_spark(tmp_path: Path, spark: Any) -> None:
    path = tmp_path / "nolabel.csv"
    _frame().drop(columns=["approved"]).to_csv(path, index=False)
    suite = {"name": "s", "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "income"}}]}
    on_pandas, on_spark = _both(path, spark, suite)
    assert on_spark.result.verdict is Verdict.FAILED
    assert _failed(on_spark) == _failed(on_pandas) == ["column-role.expect_column_to_exist@column approved"]


def test_spark_refuses_what_it_cannot_judge(tmp_path: Path, spark: Any) -> None:
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("loan_id,income,income\n1,2,3\n")
    outcome = validate_data(str(repeated), SUITE, engine="spark")
    assert outcome.result.verdict is Verdict.ERROR and "income" in outcome.result.summary
    header_only = tmp_path / "empty.csv"
    header_only.write_text("loan_id,income,approved\n")
    empty = validate_data(str(header_only), SUITE, engine="spark")
    assert empty.result.verdict is Verdict.ERROR and "holds no rows" in empty.result.summary
    folder = tmp_path / "mixed"
    folder.mkdir()
    _frame().to_csv(folder / "a.csv", index=False)
    _frame().rename(columns={"income": "salary"}).to_csv(folder / "b.csv", index=False)
    mixed = validate_data(str(folder), SUITE, engine="spark")
    assert mixed.result.verdict is Verdict.ERROR and "must share their columns" in mixed.result.summary
