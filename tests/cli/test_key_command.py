"""``mlsecops key public REF`` for every kind of reference, and ``mlsecops sign --key REF``:
exit 0 with the PEM, key id and type; exit 2 with one clear line on a bad reference."""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _check_printed(out: str, key: VerifyingKey | SigningKey, reference: str) -> None:
    """The text form: ``#`` lines with key id, type and reference, then a PEM any reader loads."""
    lines = out.splitlines()
    assert lines[:3] == [
        f"# key id: {key.keyid}",
        f"# key type: {key.public_key.key_type if isinstance(key, SigningKey) else key.key_type}",
        f"# reference: {reference}",
    ]
    assert lines[3] == "-----BEGIN PUBLIC KEY-----" and lines[-1] == "-----END PUBLIC KEY-----"
    assert VerifyingKey.from_pem(out.encode()).keyid == key.keyid


@pytest.fixture
def kms_key(aws_endpoint: str) -> dict[str, Any]:
    import boto3

    client = boto3.client("kms")
    metadata = client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    alias = f"alias/mlsecops-cli-{uuid.uuid4().hex[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
    der = client.get_public_key(KeyId=metadata["KeyId"])["PublicKey"]
    return {"reference": f"awskms:///{alias}", "keyid": hashlib.sha256(der).hexdigest(), "arn": metadata["Arn"]}


def test_public_key_of_pem_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = SigningKey.generate("ecdsa-p384")
    key.write_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    for path in (tmp_path / "k.pem", tmp_path / "k.pub.pem"):
        code, out, err = run_cli(capsys, "key", "public", str(path))
        assert (code, err) == (0, "")
        _check_printed(out, key, str(path))
    assert "ecdsa-p384" in out


def test_public_key_of_env_reference_and_of_the_configured_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey.generate("ed25519")
    monkeypatch.setenv("EVIDENCE_PEM", key.private_pem().decode())
    code, out, _ = run_cli(capsys, "key", "public", "env:EVIDENCE_PEM")
    assert code == 0
    _check_printed(out, key, "env:EVIDENCE_PEM")
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", "env:EVIDENCE_PEM")
    code, out, _ = run_cli(capsys, "key", "public")
    assert code == 0
    _check_printed(out, key, "env:EVIDENCE_PEM")


def test_public_key_of_a_kms_key(capsys: pytest.CaptureFixture[str], kms_key: dict[str, Any]) -> None:
    code, out, err = run_cli(capsys, "key", "public", kms_key["reference"])
    assert (code, err) == (0, "")
    exported = VerifyingKey.from_pem(out.encode())
    assert exported.keyid == kms_key["keyid"]
    _check_printed(out, exported, kms_key["reference"])
    code, out, _ = run_cli(capsys, "key", "public", f"awskms:///{kms_key['arn']}", "--json")
    info = json.loads(out)
    assert code == 0 and info["keyid"] == kms_key["keyid"] and info["key_type"] == "ecdsa-p256"
    assert info["reference"] == f"awskms:///{kms_key['arn']}"
    assert VerifyingKey.from_pem(info["public_key_pem"].encode()).keyid == kms_key["keyid"]


@pytest.mark.parametrize(
    ("reference", "said"),
    [
        ("{tmp}/missing.pem", "key file {tmp}/missing.pem does not exist"),
        ("{tmp}", "key file {tmp} is a directory"),
        ("{tmp}/not-a-key.pem", "{tmp}/not-a-key.pem: not a PEM public key"),
        ("env:MLSECOPS_TEST_UNSET", "key reference env:MLSECOPS_TEST_UNSET: the variable MLSECOPS_TEST_UNSET is not set"),
        ("gcpkms://projects/p/keys/k", "key reference gcpkms://projects/p/keys/k: unknown scheme gcpkms:; use a PEM file path"),
        (
            "awskms:alias/x",
            "key reference awskms:alias/x is not an AWS KMS key reference; use awskms:///<key id | key ARN | alias/NAME>",
        ),
    ],
)
def test_bad_references_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: str, said: str
) -> None:
    monkeypatch.delenv("MLSECOPS_TEST_UNSET", raising=False)
    (tmp_path / "not-a-key.pem").write_text("hello\n")
    code, out, err = run_cli(capsys, "key", "public", reference.format(tmp=tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"mlsecops: error: {said.format(tmp=tmp_path)}") and err.count("\n") == 1


def test_kms_problems_exit_2(capsys: pytest.CaptureFixture[str], aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_cli(capsys, "key", "public", "awskms:///alias/no-such-key")
    assert code == 2 and err.startswith("mlsecops: error: awskms:///alias/no-such-key: the KMS key does not exist")
    assert "NotFoundException" in err and "Traceback" not in err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    code, _, err = run_cli(capsys, "key", "public", "awskms:///alias/k")
    assert code == 2 and err.startswith("mlsecops: error: awskms:///alias/k: KMS DescribeKey failed (EndpointConnectionError")
    assert err.count("\n") == 1


def test_no_configured_key_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSECOPS_HOME", str(tmp_path))
    code, _, err = run_cli(capsys, "key", "public")
    assert code == 2 and "no signing key is configured" in err


def test_sign_a_model_with_a_kms_key_and_verify_with_the_exported_pem(
    capsys: pytest.CaptureFixture[str], kms_key: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 4096)
    (model / "config.json").write_text("{}")
    code, out, _ = run_cli(capsys, "key", "public", kms_key["reference"])
    (tmp_path / "kms.pub.pem").write_text(out)
    code, out, err = run_cli(
        capsys, "sign", str(model), "--key", kms_key["reference"], "--signature", str(tmp_path / "m.sig"), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["keyid"] == kms_key["keyid"]
    verify = ("verify-model", str(model), "--signature", str(tmp_path / "m.sig"), "--public-key")
    code, out, err = run_cli(capsys, *verify, str(tmp_path / "kms.pub.pem"))
    assert code == 0 and out.startswith("VERIFIED"), err
    other = tmp_path / "other.pub.pem"
    other.write_bytes(SigningKey.generate().public_key.to_pem())
    code, _, _ = run_cli(capsys, *verify, str(other))
    assert code == 1

    # Without --key: the configured signing key (the same reference in MLSECOPS_SIGNING_KEY).
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", kms_key["reference"])
    code, out, err = run_cli(capsys, "sign", str(model), "--signature", str(tmp_path / "m2.sig"), "--json")
    assert code == 0 and json.loads(out)["keyid"] == kms_key["keyid"], err


def test_sign_keeps_private_key_and_refuses_bad_references(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"m" * 100)
    key = SigningKey.generate()
    key.write_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    code, out, err = run_cli(
        capsys, "sign", str(model), "--private-key", str(tmp_path / "k.pem"), "--signature", str(tmp_path / "s.sig")
    )
    assert code == 0 and key.keyid[:16] in out, err
    code, _, err = run_cli(capsys, "sign", str(model), "--key", "vault:k", "--signature", str(tmp_path / "t.sig"))
    assert code == 2 and "(from --key): unknown scheme vault:" in err
    assert not (tmp_path / "t.sig").exists()
    code, _, err = run_cli(
        capsys,
        "sign",
        str(model),
        "--key",
        str(tmp_path / "k.pem"),
        "--password-env",
        "MLSECOPS_NO_SUCH_VAR",
        "--signature",
        str(tmp_path / "t.sig"),
    )
    assert code == 2 and "--password-env MLSECOPS_NO_SUCH_VAR: that environment variable is unset or empty" in err
