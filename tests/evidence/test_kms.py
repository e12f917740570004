"""The AWS KMS signer against a real moto_server on loopback (``aws_endpoint``): what it signs
verifies locally with ``cryptography``, keys that cannot sign evidence are refused, an unreachable
KMS fails closed, and a signer failing mid-way records nothing.

moto differs from real KMS in one documented way: with ``MessageType=DIGEST`` it hashes the digest
again. The signer sends DIGEST for messages over 4,096 bytes, as real KMS requires; the tests check
the request is the one real KMS expects, and that the signer refuses moto's answer (fail closed).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.dsse import sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import VerifyingKey
from airflow_mlsecops.evidence.kms import RAW_MESSAGE_LIMIT, AwsKmsReference, AwsKmsSigner
from airflow_mlsecops.evidence.ledger import EvidenceLedger
from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.evidence.signers import Signer, load_public_key, load_signer
from airflow_mlsecops.exceptions import KeyLoadError, SignerUnavailable
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from tests.kms_server import start_kms_server


def _client(endpoint: str | None = None) -> Any:
    import boto3

    return boto3.client("kms", endpoint_url=endpoint)


def _create_key(key_spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY", *, endpoint: str | None = None) -> dict[str, Any]:
    """A fresh KMS key with a fresh alias: its metadata plus ``Alias``."""
    client = _client(endpoint)
    metadata = client.create_key(KeySpec=key_spec, KeyUsage=usage)["KeyMetadata"]
    alias = f"alias/mlsecops-test-{uuid.uuid4().hex[:10]}"
    client.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
    return {**metadata, "Alias": alias}


@pytest.fixture
def kms_key(aws_endpoint: str) -> dict[str, Any]:
    return _create_key()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _CapturedSign:
    """What the signer's boto3 client sent to KMS ``Sign`` and what came back (botocore's own events)."""

    def __init__(self, signer: AwsKmsSigner) -> None:
        self.params: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        events = signer.client.meta.events
        events.register("provide-client-params.kms.Sign", lambda params, **_: self.params.append(dict(params)))
        events.register("after-call.kms.Sign", lambda parsed, **_: self.responses.append(dict(parsed)))


def test_raw_signature_verifies_locally_with_cryptography(kms_key: dict[str, Any]) -> None:
    signer = load_signer(f"awskms:///{kms_key['Alias']}", origin="MLSECOPS_SIGNING_KEY")
    assert isinstance(signer, Signer)
    data = b"evidence bytes " * 100
    signature = signer.sign(data)
    der = _client().get_public_key(KeyId=kms_key["KeyId"])["PublicKey"]
    public = serialization.load_der_public_key(der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, data, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature if not
    with pytest.raises(InvalidSignature):
        public.verify(signature, data + b"!", ec.ECDSA(hashes.SHA256()))


def test_keyid_is_sha256_of_the_public_key_der(kms_key: dict[str, Any]) -> None:
    signer = load_signer(f"awskms:///{kms_key['Alias']}")
    der = _client().get_public_key(KeyId=kms_key["KeyId"])["PublicKey"]
    assert signer.keyid == hashlib.sha256(der).hexdigest()
    assert signer.public_key.key_type == "ecdsa-p256"
    assert signer.public_key.origin == f"awskms:///{kms_key['Alias']}"


def test_dsse_envelope_signed_by_kms_verifies_with_the_pem_public_key(kms_key: dict[str, Any]) -> None:
    """A verifier without KMS access trusts the exported PEM: the envelope verifies like a PEM key's."""
    signer = load_signer(f"awskms:///{kms_key['KeyId']}")
    exported = VerifyingKey.from_pem(signer.public_key.to_pem(), origin="exported")
    envelope = sign_envelope(b'{"_type": "https://in-toto.io/Statement/v1"}', signer)
    verify_envelope(envelope, {exported.keyid: exported})
    assert envelope.signatures[0].keyid == exported.keyid


@pytest.mark.parametrize("form", ["key id", "key ARN", "alias", "alias ARN"])
def test_every_reference_form_names_the_same_key(kms_key: dict[str, Any], form: str) -> None:
    alias_arn = kms_key["Arn"].split(":key/")[0] + ":" + kms_key["Alias"]
    key = {"key id": kms_key["KeyId"], "key ARN": kms_key["Arn"], "alias": kms_key["Alias"], "alias ARN": alias_arn}[form]
    signer = load_signer(f"awskms:///{key}")
    assert isinstance(signer, AwsKmsSigner) and signer.key_arn == kms_key["Arn"]
    assert load_public_key(f"awskms:///{key}").keyid == signer.keyid
    signer.public_key.verify(signer.sign(b"x"), b"x")


@pytest.mark.parametrize(
    ("key_spec", "usage", "said"),
    [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "is an ENCRYPT_DECRYPT key"),
        ("RSA_2048", "SIGN_VERIFY", "is an RSA_2048 key"),
        ("ECC_SECG_P256K1", "SIGN_VERIFY", "is an ECC_SECG_P256K1 key"),
        ("ECC_NIST_P384", "SIGN_VERIFY", "is an ECC_NIST_P384 key"),
    ],
)
def test_key_that_cannot_sign_evidence_is_refused(aws_endpoint: str, key_spec: str, usage: str, said: str) -> None:
    key = _create_key(key_spec, usage)
    reference = f"awskms:///{key['Alias']}"
    with pytest.raises(KeyLoadError, match=rf"^{reference} \(from MLSECOPS_SIGNING_KEY\): .*{said}"):
        load_signer(reference, origin="MLSECOPS_SIGNING_KEY")
    with pytest.raises(KeyLoadError, match=said):
        load_public_key(reference)


def test_disabled_and_pending_deletion_keys_are_refused(aws_endpoint: str) -> None:
    disabled, deleted = _create_key(), _create_key()
    _client().disable_key(KeyId=disabled["KeyId"])
    _client().schedule_key_deletion(KeyId=deleted["KeyId"], PendingWindowInDays=7)
    with pytest.raises(KeyLoadError, match=r"is Disabled, not Enabled: it cannot sign"):
        load_signer(f"awskms:///{disabled['Alias']}")
    with pytest.raises(KeyLoadError, match=r"is PendingDeletion, not Enabled"):
        load_signer(f"awskms:///{deleted['KeyId']}")


def test_missing_key_is_refused_naming_it(aws_endpoint: str) -> None:
    with pytest.raises(KeyLoadError, match=r"awskms:///alias/no-such-key: the KMS key does not exist .*NotFoundException"):
        load_signer("awskms:///alias/no-such-key")


def test_unreachable_kms_is_signer_unavailable(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(SignerUnavailable, match=r"awskms:///alias/k: KMS DescribeKey failed \(EndpointConnectionError"):
        load_signer("awskms:///alias/k")
    # awskms://HOST:PORT/KEY sends to https://HOST:PORT, whatever AWS_ENDPOINT_URL says.
    with pytest.raises(SignerUnavailable, match=rf"https://127\.0\.0\.1:{port}/"):
        load_public_key(f"awskms://127.0.0.1:{port}/alias/k")


def test_no_credentials_is_signer_unavailable(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(SignerUnavailable, match=r"no AWS credentials found \(NoCredentialsError\)"):
        load_signer("awskms:///alias/k")


def test_no_region_is_a_configuration_error_unless_the_arn_has_one(
    kms_key: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(KeyLoadError, match=r"no AWS region is configured"):
        load_signer(f"awskms:///{kms_key['Alias']}")
    signer = load_signer(f"awskms:///{kms_key['Arn']}")  # the ARN names us-east-1
    signer.public_key.verify(signer.sign(b"x"), b"x")


def test_message_up_to_4096_bytes_is_sent_raw(kms_key: dict[str, Any]) -> None:
    signer = AwsKmsSigner(f"awskms:///{kms_key['Alias']}")
    sent = _CapturedSign(signer)
    data = b"r" * RAW_MESSAGE_LIMIT
    signer.public_key.verify(signer.sign(data), data)
    assert [(p["MessageType"], p["Message"], p["KeyId"]) for p in sent.params] == [("RAW", data, kms_key["Arn"])]


def test_longer_message_is_sent_as_its_digest_and_moto_answer_is_refused(
    private_moto: tuple[subprocess.Popen[bytes], str],
) -> None:
    """Over 4,096 bytes the signer sends ``MessageType=DIGEST`` with SHA-256(data): what real KMS
    needs, and real KMS signs that digest as the message's hash (so the signature verifies over the
    data). Stock moto hashes the digest once more; the signer's local verification catches it."""
    kms_key = _create_key(endpoint=private_moto[1])
    signer = AwsKmsSigner(f"awskms:///{kms_key['Alias']}", origin="MLSECOPS_SIGNING_KEY")
    sent = _CapturedSign(signer)
    data = os.urandom(RAW_MESSAGE_LIMIT + 1)
    digest = hashlib.sha256(data).digest()
    with pytest.raises(
        SignerUnavailable,
        match=r"returned a signature that does not verify over the 4097-byte message \(sent as MessageType=DIGEST\)",
    ):
        signer.sign(data)
    assert [(p["MessageType"], p["Message"], p["SigningAlgorithm"]) for p in sent.params] == [("DIGEST", digest, "ECDSA_SHA_256")]

    # moto's answer is a valid ECDSA signature over SHA-256(SHA-256(data)): the digest hashed again.
    returned = sent.responses[0]["Signature"]
    raw_public = signer.public_key.key
    assert isinstance(raw_public, ec.EllipticCurvePublicKey)
    raw_public.verify(returned, digest, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        raw_public.verify(returned, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))

    # What real KMS computes for DIGEST (the digest used as the hash, no second hashing) verifies
    # with the signer's own check over the data: the same ECDSA arithmetic, shown with a local key.
    local = ec.generate_private_key(ec.SECP256R1())
    like_kms = local.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    VerifyingKey(local.public_key()).verify(like_kms, data)


def test_longer_message_signed_as_aws_kms_signs_digests_verifies(monkeypatch: pytest.MonkeyPatch, aws_endpoint: str) -> None:
    """Against moto with AWS's documented ``Sign`` semantics (tests/kms_server.py): the DIGEST
    signature of a 10 KiB message verifies over the message, locally and in a DSSE envelope; a RAW
    request over 4,096 bytes is what AWS refuses, and the signer never sends one."""
    process, endpoint = start_kms_server(faithful=True)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        kms_key = _create_key(endpoint=endpoint)
        signer = AwsKmsSigner(f"awskms:///{kms_key['Alias']}")
        sent = _CapturedSign(signer)
        data = os.urandom(10 * 1024)
        signer.public_key.verify(signer.sign(data), data)
        assert [p["MessageType"] for p in sent.params] == ["DIGEST"]
        envelope = sign_envelope(data, signer)
        assert verify_envelope(envelope, {signer.keyid: signer.public_key}).keyid == signer.keyid
        with pytest.raises(Exception, match="too long"):
            signer.client.sign(KeyId=kms_key["Arn"], Message=data, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    finally:
        process.kill()
        process.wait(timeout=10)


# ---------------------------------------------------------------- a signer failing half-way records nothing


@pytest.fixture
def private_moto(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    process, endpoint = start_kms_server(faithful=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield process, endpoint
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_signer_failing_after_load_records_nothing(
    home: Settings, tmp_path: Path, private_moto: tuple[subprocess.Popen[bytes], str]
) -> None:
    """KMS reachable when the signer is made, gone when evidence is signed: SignerUnavailable, and
    neither the ledger nor the MLflow run gains anything (the recorder signs before it writes)."""
    process, endpoint = private_moto
    key = _create_key(endpoint=endpoint)
    signer = load_signer(f"awskms:///{key['Alias']}")
    ledger = EvidenceLedger(home.ledger_url)
    recorder = EvidenceRecorder(signing_key=signer, ledger=ledger, store=MLflowEvidenceStore.from_settings(home))
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    first = recorder.record(
        attest_artifacts([str(data)], context=PipelineContext("dag", "run-1", "sign_data")).result, experiment_name="dag"
    )
    assert first.keyid == signer.keyid and ledger.head_seq() == first.ledger_seq
    artifact_root = Path(recorder.store.client.get_run(first.mlflow_run_id).info.artifact_uri.removeprefix("file://"))
    artifacts_before = sorted(p.relative_to(artifact_root) for p in artifact_root.rglob("*"))
    assert artifacts_before
    tags_before = recorder.store.client.get_run(first.mlflow_run_id).data.tags

    process.kill()
    process.wait(timeout=10)
    outcome = attest_artifacts([str(data)], context=PipelineContext("dag", "run-1", "sign_again"))
    with pytest.raises(SignerUnavailable, match=r"KMS Sign failed \((EndpointConnectionError|ConnectionClosedError)"):
        recorder.record(outcome.result, experiment_name="dag")
    assert ledger.head_seq() == first.ledger_seq
    assert [e.seq for e in ledger.entries()] == [first.ledger_seq]
    assert sorted(p.relative_to(artifact_root) for p in artifact_root.rglob("*")) == artifacts_before
    assert recorder.store.client.get_run(first.mlflow_run_id).data.tags == tags_before


def test_reference_parsing() -> None:
    plain = AwsKmsReference.parse("awskms:///alias/evidence")
    assert (plain.key, plain.endpoint, plain.region) == ("alias/evidence", None, None)
    hosted = AwsKmsReference.parse("awskms://kms.eu-west-1.amazonaws.com:443/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert hosted.endpoint == "https://kms.eu-west-1.amazonaws.com:443"
    arn = AwsKmsReference.parse("awskms:///arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert arn.region == "eu-central-1"
    with pytest.raises(KeyLoadError, match=r"awskms:///alias/x \(three slashes\)"):
        AwsKmsReference.parse("awskms://alias/x")
    for bad in ("awskms:///", "awskms:///alias/", "awskms:///key id", "awskms:alias/x", "awskms:///arn:aws:s3:::bucket"):
        with pytest.raises(
            KeyLoadError, match=r"is not an AWS KMS key reference; use awskms:///<key id \| key ARN \| alias/NAME>"
        ):
            AwsKmsReference.parse(bad)
