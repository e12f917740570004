"""SLSA provenance: sign, then verify before use; every way the bytes can drift is caught."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.dsse import Envelope, sign_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.models import PipelineContext, Verdict
from airflow_mlsecops.evidence.slsa import SLSA_PROVENANCE_V1, parse_provenance
from airflow_mlsecops.exceptions import VerificationError
from airflow_mlsecops.gates.provenance import PROVENANCE_FILE, attest_artifacts, verify_artifacts


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "sub" / "weights.bin").write_bytes(os.urandom(2048))
    return {"data": data, "model": model}


def _sign(artifacts: dict[str, Path], key: SigningKey, **kwargs) -> bytes:
    outcome = attest_artifacts([str(p) for p in artifacts.values()], **kwargs)
    assert outcome.result.verdict is Verdict.PASSED
    return sign_envelope(outcome.statements[PROVENANCE_FILE], key).to_json()


def _verify(artifacts: dict[str, Path], attestation: bytes, key: SigningKey):
    return verify_artifacts([str(p) for p in artifacts.values()], attestation, {key.keyid: key.public_key}).result


def test_statement_is_slsa_v1_with_builder_parameters_and_per_file_subjects(artifacts, key) -> None:
    ctx = PipelineContext("dag", "manual__1", "sign", try_number=2)
    outcome = attest_artifacts(
        [str(p) for p in artifacts.values()],
        context=ctx,
        external_parameters={"run_conf": {"rows": 10}},
        resolved_dependencies=[{"uri": "s3://raw/x.csv", "digest": {"sha256": "0" * 64}}],
    )
    statement = json.loads(outcome.statements[PROVENANCE_FILE])
    assert statement["predicateType"] == SLSA_PROVENANCE_V1
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"dag_id": "dag", "task_id": "sign", "run_conf": {"rows": 10}}
    assert build["internalParameters"]["try_number"] == 2
    assert build["resolvedDependencies"][0]["uri"] == "s3://raw/x.csv"
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "airflow://dag/sign" and run["metadata"]["invocationId"] == "manual__1"
    names = sorted(s["name"] for s in statement["subject"])
    model = str(artifacts["model"].absolute())
    assert names == sorted([str(artifacts["data"].absolute()), f"{model}/MLmodel", f"{model}/sub/weights.bin"])


def test_unchanged_artifacts_verify(artifacts, key) -> None:
    result = _verify(artifacts, _sign(artifacts, key), key)
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.metrics["files"] == 3


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (lambda a: (a["model"] / "sub" / "weights.bin").write_bytes(b"swapped"), "provenance.changed"),
        (lambda a: (a["model"] / "MLmodel").unlink(), "provenance.missing"),
        (lambda a: (a["model"] / "backdoor.pkl").write_bytes(b"cos\nsystem\n"), "provenance.added"),
        (lambda a: a["data"].write_text("a,b\n1,3\n"), "provenance.changed"),
    ],
)
def test_any_drift_rejects_and_names_the_file(artifacts, key, change, finding) -> None:
    attestation = _sign(artifacts, key)
    change(artifacts)
    result = _verify(artifacts, attestation, key)
    assert result.verdict is Verdict.FAILED
    assert [f.id for f in result.failed_findings] == [finding]
    assert result.failed_findings[0].location


def test_untrusted_signer_and_tampered_attestation_reject(artifacts, key) -> None:
    attestation = _sign(artifacts, key)
    other = SigningKey.generate()
    result = verify_artifacts([str(artifacts["data"])], attestation, {other.keyid: other.public_key}).result
    assert result.verdict is Verdict.FAILED and "untrusted key" in result.summary

    envelope = json.loads(attestation)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "f" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    result = _verify(artifacts, json.dumps(envelope).encode(), key)
    assert result.verdict is Verdict.FAILED and "signature" in result.summary


def test_garbage_attestation_rejects(artifacts, key) -> None:
    result = _verify(artifacts, b"not json at all", key)
    assert result.verdict is Verdict.FAILED
    assert result.failed_findings[0].id == "provenance.attestation"


def test_artifact_not_named_by_the_attestation_rejects(artifacts, key, tmp_path: Path) -> None:
    attestation = _sign({"data": artifacts["data"]}, key)
    other = tmp_path / "other.csv"
    other.write_text("x\n")
    result = verify_artifacts([str(other)], attestation, {key.keyid: key.public_key}).result
    assert result.verdict is Verdict.FAILED
    assert result.failed_findings[0].id == "provenance.not-attested"


def test_file_attested_as_directory_rejects(artifacts, key, tmp_path: Path) -> None:
    attestation = _sign({"model": artifacts["model"]}, key)
    artifacts["model"].rename(tmp_path / "moved")
    (tmp_path / "model").write_text("now a file")
    result = _verify({"model": tmp_path / "model"}, attestation, key)
    assert result.verdict is Verdict.FAILED and result.failed_findings[0].id == "provenance.kind"


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs/path", "a/../../b", "a\\\\b"])
def test_path_traversal_in_subject_names_is_refused(path: str, key) -> None:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "m", "digest": {"sha256": "0" * 64}, "annotations": {"mlsecops.artifact": "m", "mlsecops.path": path}}
        ],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {},
    }
    with pytest.raises(VerificationError, match="escapes"):
        parse_provenance(json.dumps(statement).encode())


def test_symlink_out_of_the_tree_is_an_error_not_followed(artifacts, key, tmp_path: Path) -> None:
    attestation = _sign({"model": artifacts["model"]}, key)
    secret = tmp_path / "secret"
    secret.write_text("outside")
    (artifacts["model"] / "link").symlink_to(secret)
    outcome = verify_artifacts([str(artifacts["model"])], attestation, {key.keyid: key.public_key})
    assert outcome.result.verdict is Verdict.ERROR
    assert "symbolic link" in outcome.result.summary


def test_envelope_roundtrip_is_standard_dsse(artifacts, key) -> None:
    envelope = Envelope.from_json(_sign(artifacts, key))
    assert envelope.payload_type == "application/vnd.in-toto+json"
    assert envelope.signatures[0].keyid == key.keyid
