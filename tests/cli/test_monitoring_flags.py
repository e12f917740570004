"""The drift and input-anomaly gates' newer thresholds on the command line (``mlsecops gate drift``,
``mlsecops gate input-anomaly``): each flag reaches the gate and changes its verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.cli import main


class Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> Done:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse refuses bad arguments with exit 2
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


@pytest.fixture
def missing_incomes(tmp_path: Path) -> tuple[str, str]:
    """A reference and a batch alike except that 45% of the batch's incomes are missing."""
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"income": rng.normal(50, 10, 3000), "age": rng.normal(40, 8, 3000)})
    current = pd.DataFrame({"income": rng.normal(50, 10, 1000), "age": rng.normal(40, 8, 1000)})
    current.loc[:449, "income"] = np.nan
    ref, cur = tmp_path / "reference.csv", tmp_path / "current.csv"
    reference.to_csv(ref, index=False)
    current.to_csv(cur, index=False)
    return str(ref), str(cur)


def test_a_jump_in_missing_values_fails_and_the_flags_that_allow_it_reach_the_gate(
    missing_incomes: tuple[str, str], run_cli
) -> None:
    ref, cur = missing_incomes
    rejected = run_cli(
        "gate", "drift", "--reference", ref, "--current", cur, "--max-rows", "500", "--random-state", "7", "--json"
    )
    assert rejected.returncode == 1, rejected.stderr
    report = json.loads(rejected.stdout)
    assert {f["id"] for f in report["findings"]} >= {"drift.missing-share", "drift.dataset"}
    assert "sampled to 500 rows (seed 7)" in report["summary"]

    tolerant = run_cli(
        "gate", "drift", "--reference", ref, "--current", cur, "--max-missing-change", "0.6", "--no-fail-on-severe-column"
    )
    assert tolerant.returncode == 0, tolerant.stdout + tolerant.stderr
    assert "0 of 2 columns" in tolerant.stdout


def test_the_sampling_seed_reproduces_a_recorded_comparison(missing_incomes: tuple[str, str], run_cli) -> None:
    ref, cur = missing_incomes
    runs = [
        json.loads(
            run_cli(
                "gate", "drift", "--reference", ref, "--current", cur, "--max-rows", "300", "--random-state", "11", "--json"
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0]["metrics"] == {**runs[1]["metrics"], "evidently_seconds": runs[0]["metrics"]["evidently_seconds"]}
    assert run_cli("gate", "drift", "--reference", ref, "--current", cur, "--random-state", "-1").returncode == 2


def test_input_anomaly_flags_are_validated_before_anything_runs(tmp_path: Path, run_cli) -> None:
    data = tmp_path / "batch.csv"
    data.write_text("a\n1\n")
    done = run_cli("gate", "input-anomaly", "--data", str(data), "--max-repeated-share", "oops")
    assert done.returncode == 2 and "--max-repeated-share" in done.stderr
