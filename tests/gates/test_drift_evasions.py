"""Drift the gate used to miss (issue 21), with real Evidently on real files: a shift placed in the
rows a fixed sampling seed skips, a jump in missing values, and two of five heavily drifted
columns under Evidently's default share. Each test passed the old gate; clean batches stay quiet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.demo.example_data import FEATURES
from airflow_mlsecops.demo.monitoring_data import drifted_batch, normal_batch, reference_frame
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.drift import JSON_FILE, detect_drift, two_proportion_p_value

FIVE = list(FEATURES)[:5]  # the five columns


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("drift-evasions") / "reference.csv"
    reference_frame()[list(FEATURES)].to_csv(path, index=False)
    return str(path)


def _write(frame: pd.DataFrame, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def _columns(outcome: object, key: str = "columns") -> dict[str, dict[str, object]]:
    report = json.loads(outcome.files[JSON_FILE])  # type: ignore[attr-defined]
    return {c["column"]: c for c in report[key]}


# ----------------------------------------------------------------------------- predictable sampling
def _shifted_where_seed_zero_skips(tmp_path: Path) -> str:
    """3,000 clean rows; the 1,000 that ``sample(n=2000, random_state=0)`` leaves out are heavily shifted."""
    batch = normal_batch(rows=3000, seed=31).astype({"income": "float64", "debt_ratio": "float64"})
    skipped = batch.index.difference(batch.sample(n=2000, random_state=0).index)
    batch.loc[skipped, "income"] *= 3
    batch.loc[skipped, "debt_ratio"] += 1.0
    batch.loc[skipped, "age"] += 25
    batch.loc[skipped, "credit_lines"] += 6
    batch.loc[skipped, "late_payments"] += 4
    batch.loc[skipped, "account_age_months"] += 200
    return _write(batch, tmp_path, "shift-in-skipped-rows.csv")


def test_a_shift_in_the_rows_a_fixed_seed_skips_is_caught(reference: str, tmp_path: Path) -> None:
    current = _shifted_where_seed_zero_skips(tmp_path)
    # The evasion: with the old fixed seed the attacker knows which rows are compared.
    fixed = detect_drift(reference, current, max_rows=2000, random_state=0, html=False)
    assert fixed.verdict is Verdict.PASSED and fixed.result.metrics["drifted_columns"] == 0, fixed.result.summary
    assert fixed.result.details["sampling"]["seed_source"] == "fixed (random_state given)"

    # The default: a fresh seed per run, so a third of any sample is shifted.
    seeds = set()
    for _ in range(2):
        outcome = detect_drift(reference, current, max_rows=2000, html=False)
        result = outcome.result
        assert result.verdict is Verdict.FAILED, result.summary
        assert result.metrics["drifted_columns"] == len(FEATURES) and result.metrics["sampled_current"] == 1.0
        sampling = json.loads(outcome.files[JSON_FILE])["sampling"]
        assert sampling["seed_source"] == "fresh per run" and sampling == result.details["sampling"]
        assert f"sampled to 2000 rows (seed {sampling['random_state']})" in result.summary
        assert result.policy["random_state"] is None  # what the DAG asked for: a fresh seed
        seeds.add(sampling["random_state"])
    assert len(seeds) == 2


def test_the_recorded_seed_reproduces_the_comparison(reference: str, tmp_path: Path) -> None:
    current = _shifted_where_seed_zero_skips(tmp_path)
    first = detect_drift(reference, current, max_rows=2000, html=False)
    seed = first.result.details["sampling"]["random_state"]
    again = detect_drift(reference, current, max_rows=2000, html=False, random_state=seed)
    assert again.result.details["sampling"]["random_state"] == seed
    assert _columns(again) == _columns(first)  # same rows compared, same scores


def test_random_state_must_be_a_seed_or_none(reference: str) -> None:
    for bad in (-1, 2**32, 1.5, True, "7"):
        outcome = detect_drift(reference, reference, html=False, random_state=bad)  # type: ignore[arg-type]
        assert outcome.verdict is Verdict.ERROR and "random_state must be an integer" in outcome.result.summary


# ----------------------------------------------------------------------------- missing values
def test_a_jump_in_missing_incomes_is_drift(reference: str, tmp_path: Path) -> None:
    batch = normal_batch(seed=32).astype({"income": "float64"})
    batch.loc[batch.sample(frac=0.45, random_state=2).index, "income"] = np.nan
    outcome = detect_drift(reference, _write(batch, tmp_path, "missing.csv"), columns=FIVE, html=False)
    result = outcome.result
    assert result.verdict is Verdict.FAILED, result.summary
    # Evidently compares the incomes that are present: to it the column has not moved.
    assert _columns(outcome)["income"]["status"] == "SUCCESS"
    (finding,) = [f for f in result.findings if f.id == "drift.missing-share"]
    assert finding.location == "column income" and not finding.passed
    assert "missing values 45.0% of the batch, 0.0% of the reference (change +45.0%" in finding.message
    assert result.metrics["drifted_columns"] == 1 and result.metrics["missing_share_drifted_columns"] == 1
    missing = _columns(outcome, "missing_shares")
    assert missing["income"]["drifted"] is True and missing["income"]["severe"] is True
    assert missing["income"]["current_share"] == pytest.approx(0.45) and missing["income"]["p_value"] < 1e-12
    assert {name for name, m in missing.items() if m["drifted"]} == {"income"}
    assert "income" in result.summary and "missing share changed in 1 column(s)" in result.summary
    assert result.policy["max_missing_change"] == 0.05


def test_missing_values_that_disappear_are_drift_too(tmp_path: Path) -> None:
    """A change in either direction: a reference with 30% missing incomes, a batch with none."""
    reference = reference_frame()[list(FEATURES)].astype({"income": "float64"})
    reference.loc[reference.sample(frac=0.3, random_state=4).index, "income"] = np.nan
    outcome = detect_drift(_write(reference, tmp_path, "ref.csv"), _write(normal_batch(seed=33), tmp_path, "b.csv"), html=False)
    assert outcome.verdict is Verdict.FAILED, outcome.result.summary
    assert _columns(outcome, "missing_shares")["income"]["change"] == pytest.approx(-0.3)


def test_a_few_missing_values_are_not_drift(reference: str, tmp_path: Path) -> None:
    """Below ``max_missing_change``, or not significant in a small batch: quiet."""
    batch = normal_batch(seed=34).astype({"income": "float64"})
    batch.loc[batch.index[:30], "income"] = np.nan  # 3%: under the 5-point change
    outcome = detect_drift(reference, _write(batch, tmp_path, "few.csv"), html=False)
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert "drift.missing-share" not in {f.id for f in outcome.result.findings}
    stricter = detect_drift(reference, _write(batch, tmp_path, "few.csv"), html=False, max_missing_change=0.02)
    assert [f.location for f in stricter.result.findings if f.id == "drift.missing-share"] == ["column income"]
    # The z-test keeps one missing value in a 10-row batch (10%) from counting when the reference has 8% missing.
    assert two_proportion_p_value(400, 5000, 1, 10) > 0.001
    assert two_proportion_p_value(0, 5000, 0, 10) == 1.0
    bad = detect_drift(reference, reference, html=False, max_missing_change=0)
    assert bad.verdict is Verdict.ERROR and "max_missing_change must be a number in (0, 1]" in bad.result.summary


# ----------------------------------------------------------------------------- the default share
def _two_of_five_shifted(tmp_path: Path) -> str:
    batch = normal_batch(seed=35).astype({"income": "float64"})
    batch["income"] *= 1.8
    batch["age"] += 15
    return _write(batch, tmp_path, "two-of-five.csv")


def test_two_of_five_heavily_drifted_columns_fail_by_default(reference: str, tmp_path: Path) -> None:
    current = _two_of_five_shifted(tmp_path)
    old = detect_drift(reference, current, columns=FIVE, html=False, drift_share=0.5, fail_on_severe_column=False)
    assert old.verdict is Verdict.PASSED and old.result.metrics["drifted_columns"] == 2, old.result.summary
    outcome = detect_drift(reference, current, columns=FIVE, html=False)
    result = outcome.result
    assert result.verdict is Verdict.FAILED, result.summary
    assert result.policy["drift_share"] == 0.25 and result.policy["fail_on_severe_column"] is True
    (dataset,) = [f for f in result.findings if f.id == "drift.dataset"]
    assert dataset.message == "dataset drift: 2 of 5 columns (40%) drifted, at or above the drift share 0.25"


def test_one_severely_drifted_column_fails_on_its_own(reference: str, tmp_path: Path) -> None:
    batch = normal_batch(seed=36).astype({"income": "float64"})
    batch["income"] *= 1.8
    current = _write(batch, tmp_path, "one.csv")
    outcome = detect_drift(reference, current, html=False)
    result = outcome.result
    assert result.verdict is Verdict.FAILED, result.summary
    assert _columns(outcome)["income"]["severe"] is True and result.metrics["severely_drifted_columns"] == 1
    (dataset,) = [f for f in result.findings if f.id == "drift.dataset"]
    assert "1 of 6 columns (17%) drifted, below the drift share 0.25, but 'income' drifted severely" in dataset.message
    share_only = detect_drift(reference, current, html=False, fail_on_severe_column=False)
    assert share_only.verdict is Verdict.PASSED, share_only.result.summary
    assert [f.location for f in share_only.result.findings if f.id == "drift.column"] == ["column income"]
    flag = detect_drift(reference, current, html=False, fail_on_severe_column="no")  # type: ignore[arg-type]
    assert flag.verdict is Verdict.ERROR and "fail_on_severe_column must be True or False" in flag.result.summary


# ----------------------------------------------------------------------------- quiet on clean data
@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_clean_batches_stay_quiet(reference: str, tmp_path: Path, seed: int) -> None:
    outcome = detect_drift(reference, _write(normal_batch(seed=seed), tmp_path, "clean.csv"), html=False)
    result = outcome.result
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.metrics["severely_drifted_columns"] == 0 and result.metrics["missing_share_drifted_columns"] == 0
    assert result.metrics["drifted_columns"] <= 1


def test_the_demo_drifted_batch_still_fails(reference: str, tmp_path: Path) -> None:
    outcome = detect_drift(reference, _write(drifted_batch(), tmp_path, "drifted.csv"), html=False)
    assert outcome.verdict is Verdict.FAILED and outcome.result.metrics["drifted_columns"] >= 4, outcome.result.summary
