"""``mlsecops gate`` on data as users have it (issue 16): a directory of part files read in batches
(``--batch-rows``), an identifier column, a production batch without its label, declared roles."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import LABEL, credit_frame


def run_cli(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*args, "--json"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


@pytest.fixture
def loans(tmp_path: Path) -> dict[str, Path]:
    """A loan book with a running ``loan_id``: a trusted reference, a batch split into a CSV and a Parquet
    part, and a production batch without the label."""
    reference = credit_frame(rows=1500, seed=5)
    reference.insert(0, "loan_id", range(10_000, 11_500))
    batch = credit_frame(rows=1200, seed=6)
    batch.insert(0, "loan_id", range(20_000, 21_200))
    parts = tmp_path / "batch"
    parts.mkdir()
    batch.iloc[:700].to_csv(parts / "part-0.csv", index=False)
    batch.iloc[700:].to_parquet(parts / "part-1.parquet", index=False)
    paths = {"reference": tmp_path / "reference.csv", "parts": parts, "production": tmp_path / "production.csv"}
    reference.to_csv(paths["reference"], index=False)
    batch.drop(columns=[LABEL]).to_csv(paths["production"], index=False)
    return paths


def test_integrity_reads_a_directory_of_parts_in_batches_and_excludes_the_id(capsys, home: Settings, loans) -> None:
    code, result = run_cli(
        capsys, "gate", "data-integrity", "--data", str(loans["parts"]), "--reference", str(loans["reference"]),
        "--label-column", LABEL, "--batch-rows", "256",
    )  # fmt: skip
    assert code == 0 and result["verdict"] == "passed", result["summary"]
    assert "streamed" in result["summary"] and "loan_id (id: name ends in _id and values are unique)" in result["summary"]
    assert sorted(Path(s["name"]).name for s in result["subjects"]) == ["part-0.csv", "part-1.parquet", "reference.csv"]


def test_pii_scans_parts_in_batches_and_finds_an_email_in_the_second(capsys, home: Settings, loans) -> None:
    code, result = run_cli(capsys, "gate", "pii", "--data", str(loans["parts"]), "--batch-rows", "300", "--id-column", "loan_id")
    assert code == 0 and result["verdict"] == "passed", result["summary"]
    part = pd.read_parquet(loans["parts"] / "part-1.parquet")
    part["note"] = ""
    part.loc[part.index[-1], "note"] = "mail jane.doe@example.com"
    part.to_parquet(loans["parts"] / "part-1.parquet", index=False)
    first = pd.read_csv(loans["parts"] / "part-0.csv")
    first["note"] = ""
    first.to_csv(loans["parts"] / "part-0.csv", index=False)
    code, result = run_cli(capsys, "gate", "pii", "--data", str(loans["parts"]), "--batch-rows", "300")
    assert code == 1 and result["verdict"] == "failed"
    assert any(f["id"].startswith("pii.email") for f in result["findings"]), result["findings"]
    assert "jane.doe@example.com" not in json.dumps(result)


def test_drift_takes_a_production_batch_without_the_label(capsys, home: Settings, loans) -> None:
    code, result = run_cli(
        capsys, "gate", "drift", "--reference", str(loans["reference"]), "--current", str(loans["production"]),
        "--label-column", LABEL, "--batch-rows", "400",
    )  # fmt: skip
    assert code == 0 and result["verdict"] == "passed", result["summary"]
    assert "streamed" in result["summary"] and "loan_id (id" in result["summary"]


def test_a_declared_id_that_repeats_fails_data_validation(capsys, home: Settings, loans, tmp_path: Path) -> None:
    suite = tmp_path / "suite.json"
    suite.write_text(
        json.dumps({"name": "loans", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "age"}}]})
    )
    code, result = run_cli(
        capsys, "gate", "data-validation", "--data", str(loans["reference"]), "--suite", str(suite), "--id-column", "loan_id"
    )
    assert code == 0 and result["verdict"] == "passed", result["summary"]
    frame = pd.read_csv(loans["reference"])
    frame.loc[5, "loan_id"] = frame.loc[4, "loan_id"]
    frame.to_csv(loans["reference"], index=False)
    code, result = run_cli(
        capsys, "gate", "data-validation", "--data", str(loans["reference"]), "--suite", str(suite), "--id-column", "loan_id"
    )
    assert code == 1 and result["verdict"] == "failed"
    assert any("expect_column_values_to_be_unique" in f["id"] for f in result["findings"]), result["findings"]
