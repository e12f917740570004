"""Exact tests for lifecycle/verification.py written from surviving mutants (tests/mutation/README.md).

The report's JSON form is what ``mlsecops verify --json`` prints and what CI jobs read: every key
is pinned. A report with no checks verifies nothing and says so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.exceptions import VerificationError
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import Check, Status, VerificationReport, _SubjectHasher


def test_report_json_names_every_field() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    report.add("run", "ledger-chain", Status.OK, "3 entries")
    report.add("train/try-1", "signature", Status.FAILED, "no trusted key")
    report.gates = {"train/try-1": {"gate": "data-validation", "verdict": "passed", "keyid": "ab"}}
    report.trusted_keys = [{"keyid": "ab", "key_type": "ecdsa-p256", "source": "k.pem", "validity": "always"}]
    failed = {"scope": "train/try-1", "check": "signature", "status": "failed", "detail": "no trusted key"}
    assert report.to_dict() == {
        "mlflow_run_id": "run-1",
        "tracking_uri": "sqlite:///mlflow.db",
        "verified": False,
        "trusted_keys": [{"keyid": "ab", "key_type": "ecdsa-p256", "source": "k.pem", "validity": "always"}],
        "gates": {"train/try-1": {"gate": "data-validation", "verdict": "passed", "keyid": "ab"}},
        "checks": [{"scope": "run", "check": "ledger-chain", "status": "ok", "detail": "3 entries"}, failed],
        "failures": [failed],
    }
    assert Check("s", "n", Status.OK).to_dict() == {"scope": "s", "check": "n", "status": "ok", "detail": ""}


def test_a_report_without_checks_is_not_verified_and_says_so() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    assert not report.ok
    with pytest.raises(VerificationError) as caught:
        report.raise_if_failed()
    assert str(caught.value) == "evidence did not verify:\n  nothing was verified"
    report.add("run", "ledger-chain", Status.FAILED, "seq=2 broken")
    report.add("t/try-1", "file:a.json", Status.FAILED, "digest differs")
    with pytest.raises(VerificationError) as caught:
        report.raise_if_failed()
    assert (
        str(caught.value) == "evidence did not verify:\n  run: ledger-chain: seq=2 broken\n  t/try-1: file:a.json: digest differs"
    )


def test_subjects_that_are_not_files_are_skipped_with_the_reason(tmp_path: Path) -> None:
    hasher = _SubjectHasher(None, tmp_path)  # type: ignore[arg-type]  # no MLflow-stored subject here
    assert hasher.check("mlsecops-gate-result:data-validation", "ab" * 32) == (
        Status.SKIPPED,
        "no input was read; the statement is about the result itself",
    )
    assert hasher.check("s3://bucket/model.pkl", "ab" * 32) == (
        Status.SKIPPED,
        "stored outside MLflow; re-hash it where it lives with `mlsecops verify-artifact`",
    )
    assert hasher.check("relative/model.pkl", "ab" * 32) == (Status.SKIPPED, "not reachable from here")
    local = tmp_path / "model.pkl"
    local.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert hasher.check(f"file://{local}", digest) == (Status.OK, f"sha256 {digest[:16]}... matches")
    assert hasher.check(str(local), "ab" * 32) == (
        Status.FAILED,
        f"sha256 is {digest[:16]}..., the attestation says {'ab' * 8}...",
    )


@pytest.mark.parametrize("uri", ["models:/no-such-model/1", "runs:/0123456789abcdef0123456789abcdef/model"])
def test_an_mlflow_subject_that_cannot_be_fetched_fails(home: Settings, tmp_path: Path, uri: str) -> None:
    """A models:/ or runs:/ subject is fetched from MLflow and re-hashed; one that cannot be fetched
    is a failure (never skipped as "not reachable")."""
    hasher = _SubjectHasher(MLflowEvidenceStore(home.tracking_uri, home.artifact_root), tmp_path)
    status, detail = hasher.check(uri, "ab" * 32)
    assert status is Status.FAILED
    assert detail.startswith("could not be re-hashed: ")
