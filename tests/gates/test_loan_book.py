"""Issue 16 as a new user meets it: a loan book with a running ``loan_id``, a label ``approved`` and
production batches without the label, through ``mlsecops gate data-integrity`` and ``mlsecops gate drift``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import GateResult, Verdict
from airflow_mlsecops.gates.data_integrity import check_integrity
from airflow_mlsecops.policy.model import load_policy
from airflow_mlsecops.policy.runtime import check_evidence_against_policy


def _loans(n: int, start: int, seed: int, *, label: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.5, 0.4, n).round(2)
    debt = rng.uniform(0, 0.8, n).round(3)
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(start, start + n),  # a running id: every batch's ids lie above the reference's
            "income": income,
            "debt_ratio": debt,
            "purpose": rng.choice(["car", "home", "education", "business"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "term_months": rng.choice([12, 24, 36, 60], n),
            "approved": ((income > 30_000) & (debt < 0.5)).astype(int),
        }
    )
    return frame if label else frame.drop(columns="approved")


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("loans")
    frames = {
        "train": _loans(3000, 1, 1),
        "batch": _loans(1000, 3001, 2),
        "production": _loans(1000, 4001, 3, label=False),
        "no_income": _loans(1000, 5001, 4, label=False).drop(columns="income"),
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = str(root / f"{name}.csv")
        frame.to_csv(paths[name], index=False)
    return paths


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    try:
        code = main(["gate", *args, "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert out, err
    return code, json.loads(out)


def test_a_clean_labelled_batch_with_an_id_passes_integrity(book: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(
        capsys, "data-integrity", "--data", book["batch"], "--reference", book["train"], "--label-column", "approved"
    )
    assert (code, report["verdict"]) == (0, "passed"), report["summary"]
    assert "loan_id (id: name ends in _id and values are unique)" in report["summary"]
    ids = next(f for f in report["findings"] if f["id"] == "integrity.identifiers")
    assert ids["passed"] and "every identifier is present and unique (loan_id)" in ids["message"]


def test_a_production_batch_goes_through_integrity_and_drift_with_the_id_excluded_in_the_evidence(
    book: dict[str, str], capsys: pytest.CaptureFixture[str], home: Settings, tmp_path: Path
) -> None:
    attestation = tmp_path / "integrity.json"
    code, report = _run(
        capsys,
        "data-integrity",
        "--data",
        book["production"],
        "--reference",
        book["train"],
        "--label-column",
        "approved",
        "--attestation",
        str(attestation),
    )
    # The label checks cannot run without labels: not performed, so warned (incomplete), exit 0; nothing failed.
    assert (code, report["verdict"], report["warned_reason"]) == (0, "warned", "incomplete"), report["summary"]
    assert set(report["not_performed"]) == {"integrity.label_shift", "integrity.class_set", "integrity.label_flips"}
    assert not [f for f in report["findings"] if not f["passed"] and not f["message"].startswith("skipped:")]
    evidence = json.loads((Path(report["attestation_files"]) / "integrity_report.json").read_text())
    roles = evidence["column_roles"]
    assert roles["id_columns"] == ["loan_id"] and roles["features"]["numerical"] == ["income", "debt_ratio", "term_months"]
    assert {"column": "loan_id", "role": "id", "reason": "name ends in _id and values are unique", "declared": False} in roles[
        "excluded"
    ]
    schema = next(c for c in evidence["checks"] if c["id"] == "integrity.schema")
    assert schema["columns_absent_from_batch_by_role"] == ["approved"] and "loan_id" not in schema["columns_compared"]

    attestation = tmp_path / "drift.json"
    code, report = _run(
        capsys,
        "drift",
        "--reference",
        book["train"],
        "--current",
        book["production"],
        "--label-column",
        "approved",
        "--random-state",
        "1",
        "--attestation",
        str(attestation),
    )
    assert (code, report["verdict"]) == (0, "passed"), report["summary"]  # a label absent from the batch: no warning
    assert report["metrics"]["columns"] == 4 and report["metrics"]["columns_excluded"] == 2
    evidence = json.loads((Path(report["attestation_files"]) / "drift_report.json").read_text())
    compared = {c["column"] for c in evidence["columns"]}
    assert compared == {"income", "debt_ratio", "purpose", "term_months"}
    assert [e["column"] for e in evidence["column_roles"]["excluded"]] == ["approved", "loan_id"]


def test_a_feature_missing_from_the_batch_is_a_finding(book: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(
        capsys, "data-integrity", "--data", book["no_income"], "--reference", book["train"], "--label-column", "approved"
    )
    assert (code, report["verdict"]) == (1, "failed")
    schema = next(f for f in report["findings"] if f["id"] == "integrity.schema")
    assert not schema["passed"] and "missing from the batch: income" in schema["message"]
    code, report = _run(
        capsys, "drift", "--reference", book["train"], "--current", book["no_income"], "--label-column", "approved"
    )
    assert (code, report["verdict"]) == (1, "failed")
    missing = [f for f in report["findings"] if f["id"] == "drift.missing-column"]
    assert [f["location"] for f in missing] == ["column income"]


def test_repeated_ids_fail_integrity(book: dict[str, str], tmp_path: Path) -> None:
    batch = pd.read_csv(book["batch"])
    batch.loc[10:14, "loan_id"] = batch.loc[0:4, "loan_id"].to_numpy()  # five rows replayed under old ids
    path = tmp_path / "replayed.csv"
    batch.to_csv(path, index=False)
    outcome = check_integrity(str(path), book["train"], label_column="approved")
    assert outcome.verdict is Verdict.FAILED
    finding = next(f for f in outcome.result.findings if f.id == "integrity.identifiers")
    assert not finding.passed and "loan_id: 5 repeated, 0 missing" in finding.message


def test_a_declared_id_that_is_a_policy_feature_is_a_violation(
    book: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nrules:\n  - name: loans\n    match: {tags: [loans]}\n"
        "    required_gates: {promote: [drift]}\n"
        "    thresholds:\n      drift: {columns: [income, debt_ratio], excluded_columns: [loan_id, approved]}\n"
    )
    loaded = load_policy(str(policy))

    def drift_result(*extra: str) -> GateResult:
        from airflow_mlsecops.gates.drift import detect_drift

        options = dict(zip(extra[::2], extra[1::2], strict=True))
        return detect_drift(
            book["train"], book["production"], html=False, random_state=1, label_column="approved", **options
        ).result

    honest = drift_result("id_columns", "loan_id")
    assert honest.verdict is Verdict.PASSED
    assert not check_evidence_against_policy({"drift/try-1": honest}, dag_id="d", tags=["loans"], policy=loaded)
    hidden = drift_result("id_columns", "income")  # income declared an id: the gate would not compare it
    assert "income" not in {c["column"] for c in hidden.details["columns"]}
    violations = check_evidence_against_policy({"drift/try-1": hidden}, dag_id="d", tags=["loans"], policy=loaded)
    assert violations and "excluded_columns" in str(violations[0])
