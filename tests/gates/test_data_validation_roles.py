"""Column roles in the data validation gate: identifiers checked beyond the suite, declared columns must exist."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.data_validation import validate_data

SUITE = {
    "name": "loans",
    "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0}}],
}


def _loans(tmp_path: Path, *, rows: int = 40, repeat_id: bool = False, missing_id: bool = False, drop: str | None = None) -> Path:
    frame = pd.DataFrame(
        {
            "loan_id": list(range(1000, 1000 + rows)),
            "income": [1000.5 + 3 * i for i in range(rows)],
            "approved": [i % 2 for i in range(rows)],
            "ts": [f"2026-01-{1 + i % 28:02d}" for i in range(rows)],
        }
    )
    if repeat_id:
        frame.loc[rows - 1, "loan_id"] = frame.loc[0, "loan_id"]
    if missing_id:
        frame["loan_id"] = frame["loan_id"].astype("object")
        frame.loc[3, "loan_id"] = None
    if drop:
        frame = frame.drop(columns=[drop])
    path = tmp_path / "loans.csv"
    frame.to_csv(path, index=False)
    return path


def _failed(outcome: object) -> set[str]:
    return {f"{f.id}@{f.location}" for f in outcome.result.failed_findings}  # type: ignore[attr-defined]


def test_a_declared_identifier_is_checked_unique_and_present_beyond_the_suite(tmp_path: Path) -> None:
    clean = validate_data(str(_loans(tmp_path)), SUITE, id_columns=["loan_id"], label_column="approved")
    assert clean.result.verdict is Verdict.PASSED, clean.result.summary
    added = clean.result.details["column_roles"]["expectations_added"]
    assert {"type": "expect_column_values_to_be_unique", "column": "loan_id", "role": "id"} in added
    assert {"type": "expect_column_values_to_not_be_null", "column": "loan_id", "role": "id"} in added
    assert {"type": "expect_column_to_exist", "column": "approved", "role": "label"} in added
    assert clean.result.metrics["role_expectations"] == len(added)
    gx = json.loads(clean.files["gx_validation_result.json"])
    assert any(r["expectation_config"]["meta"].get("mlsecops_role") == "id" for r in gx["results"])

    repeated = validate_data(str(_loans(tmp_path, repeat_id=True)), SUITE, id_columns="loan_id")
    assert repeated.result.verdict is Verdict.FAILED
    assert _failed(repeated) == {"column-role.expect_column_values_to_be_unique@column loan_id"}
    assert "added by the gate for the id column" in repeated.result.failed_findings[0].message
    assert "2 of 40 values unexpected" in repeated.result.failed_findings[0].message


def test_an_identifier_with_a_missing_value_fails(tmp_path: Path) -> None:
    outcome = validate_data(str(_loans(tmp_path, missing_id=True)), SUITE, id_columns=["loan_id"])
    assert outcome.result.verdict is Verdict.FAILED
    assert "column-role.expect_column_values_to_not_be_null@column loan_id" in _failed(outcome)


def test_an_inferred_identifier_is_checked_and_named_with_its_reason(tmp_path: Path) -> None:
    path = _loans(tmp_path)
    frame = pd.read_csv(path)
    # A missing value makes an integer column float in pandas (never inferred): codes stay text.
    frame["loan_id"] = [f"L-{i}" for i in range(len(frame))]
    frame.loc[3, "loan_id"] = None
    frame.to_csv(path, index=False)
    outcome = validate_data(str(path), SUITE)
    roles = outcome.result.details["column_roles"]
    assert roles["id_columns"] == ["loan_id"]
    assert roles["excluded"][0] == {
        "column": "loan_id",
        "role": "id",
        "reason": "name ends in _id and values are unique",
        "declared": False,
    }
    assert _failed(outcome) == {"column-role.expect_column_values_to_not_be_null@column loan_id"}


def test_declared_features_turn_inference_off(tmp_path: Path) -> None:
    outcome = validate_data(str(_loans(tmp_path, missing_id=True)), SUITE, features=["income", "loan_id"])
    assert outcome.result.verdict is Verdict.PASSED, outcome.result.summary
    assert outcome.result.details["column_roles"]["id_columns"] == []


@pytest.mark.parametrize(
    ("role", "column"), [("label_column", "approved"), ("timestamp_column", "ts"), ("id_columns", "loan_id")]
)
def test_a_declared_column_missing_from_the_batch_is_a_finding(tmp_path: Path, role: str, column: str) -> None:
    outcome = validate_data(str(_loans(tmp_path, drop=column)), SUITE, **{role: column})
    assert outcome.result.verdict is Verdict.FAILED, outcome.result.summary
    assert _failed(outcome) == {f"column-role.expect_column_to_exist@column {column}"}
    assert outcome.result.details["column_roles"]["missing_from_batch"] == [column]
    assert f"missing from the batch: {column}" in outcome.result.summary


def test_a_missing_prediction_column_is_no_finding(tmp_path: Path) -> None:
    outcome = validate_data(str(_loans(tmp_path)), SUITE, prediction_column="score")
    assert outcome.result.verdict is Verdict.PASSED, outcome.result.summary


def test_an_expectation_already_in_the_suite_is_not_added_twice(tmp_path: Path) -> None:
    unique = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "loan_id"}}
    suite = {**SUITE, "expectations": [*SUITE["expectations"], unique]}
    outcome = validate_data(str(_loans(tmp_path, repeat_id=True)), suite, id_columns="loan_id")
    roles = outcome.result.details["column_roles"]
    assert roles["already_in_suite"] == ["expect_column_values_to_be_unique(loan_id)"]
    assert _failed(outcome) == {"expectation.expect_column_values_to_be_unique@column loan_id"}


def test_bad_roles_are_an_error_and_the_declared_roles_are_on_record(tmp_path: Path) -> None:
    path = str(_loans(tmp_path))
    clash = validate_data(path, SUITE, id_columns=["loan_id"], label_column="loan_id")
    assert clash.result.verdict is Verdict.ERROR
    assert "two roles" in clash.result.summary
    outcome = validate_data(path, SUITE, id_columns="loan_id", label_column="approved")
    assert outcome.result.policy["id_columns"] == "loan_id" and outcome.result.policy["label_column"] == "approved"
    assert "id_columns" not in validate_data(path, SUITE).result.policy


def test_unknown_engine_is_an_error(tmp_path: Path) -> None:
    outcome = validate_data(str(_loans(tmp_path)), SUITE, engine="dask")
    assert outcome.result.verdict is Verdict.ERROR
    assert "unknown engine 'dask'" in outcome.result.summary
