"""The data validation gate (Great Expectations) on real files: passes, rejections, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.data_validation import load_suite_spec, validate_data

SUITE = {
    "name": "people",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0, "max_value": 120}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": [0, 1]}},
    ],
}


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    path = tmp_path / "good.csv"
    pd.DataFrame({"age": [20, 35, 50, 64], "label": [0, 1, 1, 0]}).to_csv(path, index=False)
    return path


def test_passing_suite_records_digest_and_summary_evidence(good_csv: Path) -> None:
    outcome = validate_data(str(good_csv), SUITE)
    result = outcome.result
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.subjects[0].name == str(good_csv.absolute())
    assert result.subjects[0].sha256 == sha256_file(good_csv)
    assert [f.passed for f in result.findings] == [True, True, True]
    assert result.metrics["rows"] == 4 and result.metrics["expectations_failed"] == 0
    gx = json.loads(outcome.files["gx_validation_result.json"])
    assert gx["success"] is True
    assert "great-expectations" in result.tool_versions


def test_failing_expectation_rejects_and_names_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"age": [20, 250, None, 64], "label": [0, 1, 2, 0]}).to_csv(path, index=False)
    result = validate_data(str(path), SUITE).result
    assert result.verdict is Verdict.FAILED
    failed = {f.id: f for f in result.failed_findings}
    assert set(failed) == {
        "expectation.expect_column_values_to_not_be_null",
        "expectation.expect_column_values_to_be_between",
        "expectation.expect_column_values_to_be_in_set",
    }
    assert failed["expectation.expect_column_values_to_be_in_set"].location == "column label"
    assert "1 of 4 values unexpected" in failed["expectation.expect_column_values_to_be_in_set"].message
    assert all("ML02:2023" in f.owasp_ml for f in failed.values())
    assert result.metrics["expectations_failed"] == 3


def test_summary_result_never_carries_every_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    pd.DataFrame({"age": list(range(200, 20200)), "label": [0] * 20000}).to_csv(path, index=False)
    outcome = validate_data(str(path), SUITE)
    assert outcome.result.verdict is Verdict.FAILED
    assert len(outcome.files["gx_validation_result.json"]) < 64 * 1024


def test_warn_only_turns_rejection_into_visible_warning(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"age": [20, 250], "label": [0, 1]}).to_csv(path, index=False)
    result = validate_data(str(path), SUITE, warn_only=True).result
    assert result.verdict is Verdict.WARNED
    assert result.warn_only is True
    assert not result.verdict.blocks


def test_parquet_is_detected_by_content_not_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"  # a Parquet file with a misleading name
    pd.DataFrame({"age": [20, 30], "label": [0, 1]}).to_parquet(path)
    outcome = validate_data(str(path), SUITE)
    assert outcome.result.verdict is Verdict.PASSED
    assert outcome.result.details["format"] == "parquet"


def test_unknown_expectation_type_is_refused_not_dropped(good_csv: Path) -> None:
    suite = {"name": "s", "expectations": [*SUITE["expectations"], {"type": "expect_column_to_be_lovely", "kwargs": {}}]}
    with pytest.raises(ConfigurationError, match="expect_column_to_be_lovely"):
        load_suite_spec(suite)
    result = validate_data(str(good_csv), suite).result
    assert result.verdict is Verdict.ERROR
    assert "expect_column_to_be_lovely" in result.summary


@pytest.mark.parametrize("suite", [{"name": "empty", "expectations": []}, {"name": "none"}])
def test_empty_suite_is_an_error(good_csv: Path, suite: dict) -> None:
    result = validate_data(str(good_csv), suite).result
    assert result.verdict is Verdict.ERROR
    assert "empty suite" in result.summary


def test_suite_from_json_and_yaml_files(tmp_path: Path, good_csv: Path) -> None:
    json_path = tmp_path / "suite.json"
    json_path.write_text(json.dumps(SUITE))
    yaml_path = tmp_path / "suite.yaml"
    yaml_path.write_text(
        "name: people\nexpectations:\n  - type: expect_column_values_to_not_be_null\n    kwargs: {column: age}\n"
    )
    assert validate_data(str(good_csv), str(json_path)).result.verdict is Verdict.PASSED
    assert validate_data(str(good_csv), yaml_path).result.verdict is Verdict.PASSED


def test_suite_object_from_great_expectations(good_csv: Path) -> None:
    from great_expectations.core.expectation_suite import ExpectationSuite

    assert validate_data(str(good_csv), ExpectationSuite(**SUITE)).result.verdict is Verdict.PASSED


def test_missing_suite_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_suite_spec(tmp_path / "nope.json")


def test_column_named_by_suite_but_absent_is_a_failed_finding(tmp_path: Path) -> None:
    path = tmp_path / "no_label.csv"
    pd.DataFrame({"age": [20, 30]}).to_csv(path, index=False)
    result = validate_data(str(path), SUITE).result
    assert result.verdict is Verdict.FAILED
    finding = next(f for f in result.findings if f.location == "column label")
    assert not finding.passed
    assert "could not be evaluated" in finding.message and "label" in finding.message


BAD_INPUTS = {
    "missing": (None, "does not exist"),
    "empty": (b"", "is empty"),
    "ragged": (b"age,label\n1,0\n2,1,9,9\n3,0\n", "not well-formed CSV"),
    "not-utf8": (b"age,label\n\xff\xfe\x00,1\n", "not valid UTF-8"),
    "semicolons": (b"age;label\n20;0\n30;1\n", "delimiter"),
    "header-only-blank": (b"\n\n", "holds no columns"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_an_error_with_a_clear_message(tmp_path: Path, case: str) -> None:
    content, message = BAD_INPUTS[case]
    path = tmp_path / f"{case}.csv"
    if content is not None:
        path.write_bytes(content)
    outcome = validate_data(str(path), SUITE)
    assert outcome.result.verdict is Verdict.ERROR
    assert message in outcome.result.summary
    assert outcome.error is not None


def test_directory_instead_of_file_is_an_error(tmp_path: Path) -> None:
    result = validate_data(str(tmp_path), SUITE).result
    assert result.verdict is Verdict.ERROR
    assert "not a regular file" in result.summary


def test_explicit_delimiter_reads_semicolon_file(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_bytes(b"age;label\n20;0\n30;1\n")
    assert validate_data(str(path), SUITE, csv_delimiter=";").result.verdict is Verdict.PASSED


def test_offending_values_stay_out_of_the_evidence_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "emails.csv"
    pd.DataFrame({"age": [20, 731], "label": [0, 1]}).to_csv(path, index=False)
    outcome = validate_data(str(path), SUITE)
    evidence = outcome.files["gx_validation_result.json"].decode()
    assert outcome.result.verdict is Verdict.FAILED
    # the value as a JSON number (a timestamp such as "...T012122.731690Z" may hold the digits)
    assert not re.search(r"(?<![\d.])731(?!\d)", evidence) and "partial_unexpected_list" not in evidence
    assert '"unexpected_count": 1' in evidence
    kept = validate_data(str(path), SUITE, include_unexpected_values=True).files["gx_validation_result.json"].decode()
    assert "731" in kept


REMOTE_DATA = ("s3://bucket/train.csv", "runs:/0123/data/train.csv", "models:/credit-risk/3/train.csv")


@pytest.mark.parametrize("location", REMOTE_DATA)
def test_engine_reads_only_local_data(location: str) -> None:
    """Remote data is the caller's to load (io.locations.load_table_at): the engine refuses it, naming it."""
    result = validate_data(location, SUITE).result
    assert result.verdict is Verdict.ERROR
    assert f"{location} is not a local path; load it first" in result.summary


def test_a_loaded_table_gives_the_same_evidence_as_its_file(good_csv: Path) -> None:
    from airflow_mlsecops.io.locations import load_table_at

    from_file, from_table = validate_data(str(good_csv), SUITE).result, validate_data(load_table_at(str(good_csv)), SUITE).result
    assert from_table.verdict is Verdict.PASSED
    assert from_table.subjects == from_file.subjects and from_table.summary == from_file.summary
    assert from_table.policy == from_file.policy


def test_inputs_unavailable_records_the_gates_error_verdict_and_policy(tmp_path: Path) -> None:
    from airflow_mlsecops.exceptions import GateError
    from airflow_mlsecops.gates.data_validation import GATE_NAME, inputs_unavailable

    missing = GateError("s3://bucket/train.csv cannot be read from S3 (NoSuchKey)")
    gone = inputs_unavailable(missing, suite=SUITE, include_unexpected_values=True, warn_only=True)
    assert gone.verdict is Verdict.ERROR and gone.result.gate == GATE_NAME and gone.error is missing
    assert gone.result.summary == "could not run: s3://bucket/train.csv cannot be read from S3 (NoSuchKey)"
    same = validate_data(str(tmp_path / "nonexistent.csv"), SUITE, include_unexpected_values=True)
    assert gone.result.policy == same.result.policy and gone.result.tool_versions == same.result.tool_versions
    # A bad suite is reported first, as the gate itself does.
    bad = inputs_unavailable(GateError("unreachable"), suite={"name": "empty", "expectations": []})
    assert bad.verdict is Verdict.ERROR and "holds no expectations" in bad.result.summary


# ----------------------------------------------------------------------------- empty batches
# No data to check is never a pass ("6/6 expectations hold on 0 rows" was): an error verdict, as for
# a zero-byte file, unless the caller allows empty batches explicitly.


def _empty_inputs(tmp_path: Path) -> dict[str, str]:
    header = tmp_path / "header.csv"
    header.write_text("age,label\n")
    parquet = tmp_path / "empty.parquet"
    pd.DataFrame({"age": pd.Series([], dtype="int64"), "label": pd.Series([], dtype="int64")}).to_parquet(parquet)
    no_columns = tmp_path / "no-columns.parquet"
    pd.DataFrame(index=["a", "b"]).to_parquet(no_columns)
    return {"header-only CSV": str(header), "zero-row Parquet": str(parquet), "no-column Parquet": str(no_columns)}


@pytest.mark.parametrize("kind", ["header-only CSV", "zero-row Parquet", "no-column Parquet"])
@pytest.mark.parametrize("warn_only", [False, True])
def test_an_empty_batch_is_never_a_pass(tmp_path: Path, kind: str, warn_only: bool) -> None:
    outcome = validate_data(_empty_inputs(tmp_path)[kind], SUITE, warn_only=warn_only)
    result = outcome.result
    assert result.verdict is Verdict.ERROR, result.summary
    assert "no data to check is never a pass" in result.summary and "allow_empty=True" in result.summary
    assert "holds no rows" in result.summary or "holds no columns" in result.summary
    assert result.policy["allow_empty"] is False
    assert [f.id for f in result.findings] == ["data-validation.empty-batch"]
    assert outcome.error is not None


def test_a_loaded_empty_table_is_never_a_pass(tmp_path: Path) -> None:
    from airflow_mlsecops.io.locations import load_table_at

    table = load_table_at(_empty_inputs(tmp_path)["header-only CSV"])
    assert validate_data(table, SUITE).verdict is Verdict.ERROR


def test_allow_empty_accepts_an_empty_batch_visibly(tmp_path: Path) -> None:
    outcome = validate_data(_empty_inputs(tmp_path)["header-only CSV"], SUITE, allow_empty=True)
    result = outcome.result
    # Expectations hold vacuously on zero rows: accepted, but warned (incomplete), never passed.
    assert result.verdict is Verdict.WARNED and result.incomplete, result.summary
    assert result.not_performed == ("data-validation.empty-batch",)
    assert result.policy["allow_empty"] is True
    (empty,) = [f for f in result.findings if f.id == "data-validation.empty-batch"]
    assert not empty.passed and "allow_empty=True" in empty.message
    assert "empty batch accepted" in result.summary and result.metrics["rows"] == 0


def test_allow_empty_still_runs_the_suite(tmp_path: Path) -> None:
    """allow_empty lifts the gate's own rule only: a suite that asks for rows still rejects."""
    suite = {
        "name": "rows",
        "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}],
    }
    result = validate_data(_empty_inputs(tmp_path)["header-only CSV"], suite, allow_empty=True).result
    assert result.verdict is Verdict.FAILED


@pytest.mark.parametrize("value", ["true", 1, None])
def test_allow_empty_must_be_a_bool(good_csv: Path, value: object) -> None:
    outcome = validate_data(str(good_csv), SUITE, allow_empty=value)  # type: ignore[arg-type]
    assert outcome.verdict is Verdict.ERROR and "allow_empty must be True or False" in outcome.result.summary
    assert isinstance(outcome.error, ConfigurationError)
