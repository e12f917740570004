"""Data and artifacts on an S3-compatible server (``MLSECOPS_TEST_S3_ENDPOINT``; moto_server in CI)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.evidence.dsse import sign_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.data_validation import validate_data
from airflow_mlsecops.gates.provenance import PROVENANCE_FILE, attest_artifacts, verify_artifacts
from airflow_mlsecops.io.artifacts import download_s3, fetch, s3_client
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
    assert validate_data(parquet_uri, SUITE).result.verdict is Verdict.PASSED


def test_missing_object_and_bucket_are_clear_errors(s3_bucket: str) -> None:
    outcome = validate_data(f"s3://{s3_bucket}/nope.csv", SUITE)
    assert outcome.result.verdict is Verdict.ERROR and "cannot be read from S3" in outcome.result.summary
    with pytest.raises(GateError, match="cannot be read from S3"):
        load_table("s3://no-such-bucket-mlsecops/x.csv")


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
