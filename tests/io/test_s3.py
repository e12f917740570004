"""Data and artifacts on an S3-compatible server (``MLSECOPS_TEST_S3_ENDPOINT``; moto_server in CI)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
from airflow_mlsecops.evidence.dsse import sign_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.data_validation import validate_data
from airflow_mlsecops.gates.provenance import PROVENANCE_FILE, attest_artifacts, verify_artifacts
from airflow_mlsecops.io.artifacts import download_s3, fetch, s3_client
from airflow_mlsecops.io.locations import load_table_at
from airflow_mlsecops.io.tabular import load_table

pytestmark = pytest.mark.s3

SUITE = {"name": "s", "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}]}


def _put(bucket: str, key: str, data: bytes) -> str:
    s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def test_csv_and_parquet_load_from_s3_with_digest(s3_bucket: str) -> None:
    csv_uri = _put(s3_bucket, "data/train.csv", b"x\n1\n2\n")
    buffer = io.BytesIO()
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(buffer)
    parquet_uri = _put(s3_bucket, "data/train.parquet", buffer.getvalue())
    csv = load_table(csv_uri)
    assert csv.subject.name == csv_uri and len(csv.frame) == 2
    assert load_table(parquet_uri).format == "parquet"
    result = validate_data(load_table_at(parquet_uri), SUITE).result
    assert result.verdict is Verdict.PASSED
    assert result.subjects[0].name == parquet_uri and result.subjects[0].sha256 == load_table(parquet_uri).subject.sha256


def test_missing_object_and_bucket_are_clear_errors(s3_bucket: str) -> None:
    from airflow_mlsecops.gates.data_validation import inputs_unavailable

    with pytest.raises(GateError, match="cannot be read from S3") as missing:
        load_table_at(f"s3://{s3_bucket}/nope.csv")
    outcome = inputs_unavailable(missing.value, suite=SUITE)
    assert outcome.result.verdict is Verdict.ERROR and "cannot be read from S3" in outcome.result.summary
    with pytest.raises(GateError, match="cannot be read from S3"):
        load_table("s3://no-such-bucket-mlsecops/x.csv")


def test_data_gates_name_an_s3_table_by_its_uri_and_digest(s3_bucket: str, tmp_path: Path) -> None:
    """The caller loads s3:// data (io.locations); every data engine names it by its URI and the digest of its bytes."""
    import hashlib

    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    from airflow_mlsecops.gates.data_integrity import check_integrity
    from airflow_mlsecops.gates.pii import scan_pii
    from airflow_mlsecops.gates.robustness import evaluate_robustness

    frame = credit_frame(rows=600, seed=3)
    body = frame.to_csv(index=False).encode()
    reference_body = credit_frame(rows=1500, seed=4).to_csv(index=False).encode()
    uri, reference_uri = _put(s3_bucket, "data/batch.csv", body), _put(s3_bucket, "data/reference.csv", reference_body)
    expected = [(uri, hashlib.sha256(body).hexdigest())]
    expected_reference = (reference_uri, hashlib.sha256(reference_body).hexdigest())
    model_dir = tmp_path / "model"
    model = LogisticRegression(max_iter=500).fit(frame[list(FEATURES)], frame[LABEL])
    mlflow.sklearn.save_model(model, str(model_dir), pip_requirements=["scikit-learn"])

    pii = scan_pii(load_table_at(uri)).result
    integrity = check_integrity(load_table_at(uri), load_table_at(reference_uri), label_column=LABEL).result
    robustness = evaluate_robustness(str(model_dir), load_table_at(uri), label_column=LABEL, epsilon=0.01, min_robust_accuracy=0)
    assert pii.verdict is Verdict.PASSED and [(s.name, s.sha256) for s in pii.subjects] == expected
    assert integrity.verdict is not Verdict.ERROR, integrity.summary
    assert [(s.name, s.sha256) for s in integrity.subjects] == [*expected, expected_reference]
    assert integrity.policy["reference"] == reference_uri
    assert robustness.verdict is Verdict.PASSED, robustness.result.summary
    assert [(s.name, s.sha256) for s in robustness.result.subjects[1:]] == expected


def test_rewriting_the_object_in_s3_is_caught_before_use(s3_bucket: str, tmp_path: Path) -> None:
    key = SigningKey.generate()
    uri = _put(s3_bucket, "train.csv", b"x\n1\n2\n")
    local = fetch(uri, tmp_path / "a")
    attestation = sign_envelope(attest_artifacts({uri: str(local)}).statements[PROVENANCE_FILE], key).to_json()

    again = fetch(uri, tmp_path / "b")
    assert verify_artifacts({uri: str(again)}, attestation, {key.keyid: key.public_key}).result.verdict is Verdict.PASSED
    _put(s3_bucket, "train.csv", b"x\n1\n3\n")  # someone rewrites the file between stages
    changed = fetch(uri, tmp_path / "c")
    result = verify_artifacts({uri: str(changed)}, attestation, {key.keyid: key.public_key}).result
    assert result.verdict is Verdict.FAILED
    assert result.failed_findings[0].id == "provenance.changed"


def test_prefix_is_an_artifact_directory(s3_bucket: str, tmp_path: Path) -> None:
    _put(s3_bucket, "model/MLmodel", b"flavors: {}\n")
    _put(s3_bucket, "model/weights/w.bin", b"\x00" * 100)
    root = download_s3(f"s3://{s3_bucket}/model/", tmp_path)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["MLmodel", "weights/w.bin"]
    outcome = attest_artifacts({f"s3://{s3_bucket}/model/": str(root)})
    manifest = json.loads(outcome.files["manifest.json"])
    assert len(manifest[f"s3://{s3_bucket}/model/"]) == 2
    with pytest.raises(GateError, match="holds no objects"):
        download_s3(f"s3://{s3_bucket}/empty/", tmp_path / "e")
