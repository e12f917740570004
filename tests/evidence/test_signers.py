"""Key references: a PEM path, ``env:VAR`` and ``awskms:///...`` name a signer and its public key;
anything else is refused with the forms that work. The scheme table is the one place a new kind of
key (another KMS, an HSM) is added: callers load it through the same settings."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from airflow_mlsecops import config
from airflow_mlsecops.config import Layer, Settings
from airflow_mlsecops.evidence.dsse import sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
from airflow_mlsecops.evidence.kms import AwsKmsSigner
from airflow_mlsecops.evidence.signers import SCHEMES, KeyScheme, Signer, load_public_key, load_signer, supported_forms
from airflow_mlsecops.exceptions import KeyLoadError

FORMS = r"use a PEM file path, env:VAR \(a PEM private key in the variable VAR\) or awskms:///<key id \| key ARN \| alias/NAME>"


@pytest.fixture
def pem_pair(tmp_path: Path) -> tuple[SigningKey, Path, Path]:
    key = SigningKey.generate()
    key.write_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    return key, tmp_path / "k.pem", tmp_path / "k.pub.pem"


def test_pem_path_names_a_signer_and_its_public_key(pem_pair: tuple[SigningKey, Path, Path]) -> None:
    key, private, public = pem_pair
    signer = load_signer(str(private))
    assert isinstance(signer, Signer) and signer.keyid == key.keyid
    key.public_key.verify(signer.sign(b"x"), b"x")
    assert load_public_key(str(private)).keyid == key.keyid  # the public half of a private key file
    assert load_public_key(str(public)).keyid == key.keyid
    with pytest.raises(KeyLoadError, match=r"k\.pub\.pem: not a PEM private key"):
        load_signer(str(public))  # a public key cannot sign


def test_env_reference_names_a_pem_key_in_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate("ed25519")
    monkeypatch.setenv("SIGNING_PEM", key.private_pem().decode())
    monkeypatch.setenv("PUBLIC_PEM", key.public_key.to_pem().decode())
    signer = load_signer("env:SIGNING_PEM", origin="MLSECOPS_SIGNING_KEY")
    assert signer.keyid == key.keyid
    assert load_public_key("env:SIGNING_PEM").keyid == key.keyid
    public = load_public_key("env:PUBLIC_PEM", origin="MLSECOPS_TRUSTED_KEYS")
    assert public.keyid == key.keyid and public.origin == "env:PUBLIC_PEM (from MLSECOPS_TRUSTED_KEYS)"


def test_env_reference_problems_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_PEM", raising=False)
    monkeypatch.setenv("NOT_A_PEM", "hello")
    with pytest.raises(
        KeyLoadError,
        match=r"^signing key reference env:NO_SUCH_PEM \(from MLSECOPS_SIGNING_KEY\): the variable NO_SUCH_PEM is not set$",
    ):
        load_signer("env:NO_SUCH_PEM", origin="MLSECOPS_SIGNING_KEY")
    with pytest.raises(KeyLoadError, match=r"env:: name the variable, as env:VAR"):
        load_public_key("env:")
    with pytest.raises(KeyLoadError, match=r"env:NOT_A_PEM: not a PEM private key"):
        load_signer("env:NOT_A_PEM")
    with pytest.raises(KeyLoadError, match=r"env:NOT_A_PEM: not a PEM public key"):
        load_public_key("env:NOT_A_PEM")


@pytest.mark.parametrize(
    "reference", ["gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "pkcs11:token=t", "hashivault://k", "ENV2:X"]
)
def test_unknown_scheme_is_refused_listing_the_forms(reference: str) -> None:
    scheme, ref = re.escape(reference.partition(":")[0]), re.escape(reference)
    with pytest.raises(
        KeyLoadError, match=rf"^signing key reference {ref} \(from \[mlsecops\] signing_key\): unknown scheme {scheme}:; {FORMS}$"
    ):
        load_signer(reference, origin="[mlsecops] signing_key")
    with pytest.raises(KeyLoadError, match=rf"^key reference {ref}: unknown scheme {scheme}:; {FORMS}$"):
        load_public_key(reference)


def test_scheme_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate()
    monkeypatch.setenv("SIGNING_PEM", key.private_pem().decode())
    assert load_signer("ENV:SIGNING_PEM").keyid == key.keyid


def test_paths_that_look_like_nothing_else_are_read_as_files(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match=r"^key file C:\\keys\\k\.pem does not exist$"):
        load_signer("C:\\keys\\k.pem")  # a drive letter, not a scheme
    with pytest.raises(KeyLoadError, match=rf"^key file {tmp_path}/missing\.pem does not exist$"):
        load_public_key(str(tmp_path / "missing.pem"))
    for blank in ("", "  "):
        with pytest.raises(KeyLoadError, match=r"is empty; use a PEM file path"):
            load_signer(blank)


def test_every_configured_scheme_has_a_loader() -> None:
    """config decides what is a reference (not a path); signers must know how to load each."""
    assert set(config.KEY_REFERENCE_SCHEMES) == set(SCHEMES)
    assert supported_forms().startswith("a PEM file path, env:VAR")


def test_a_new_scheme_is_one_table_entry_and_callers_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering a scheme (here a test one backed by a local key) makes it work through the
    settings every caller signs with: no caller changes."""
    backing = SigningKey.generate()
    made: list[tuple[str, str]] = []

    def signer(reference: str, password: bytes | None, origin: str) -> Signer:
        made.append((reference, origin))
        return backing

    monkeypatch.setattr(config, "KEY_REFERENCE_SCHEMES", (*config.KEY_REFERENCE_SCHEMES, "testkms"))
    monkeypatch.setitem(SCHEMES, "testkms", KeyScheme("testkms", "testkms://KEY", signer, lambda r, o: backing.public_key))
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", "testkms://projects/k")
    settings = Settings.from_env()
    assert settings.signing_key_ref == "testkms://projects/k"
    envelope = sign_envelope(b"{}", settings.load_signing_key())
    verify_envelope(envelope, {backing.keyid: load_public_key("testkms://projects/k")})
    assert made == [("testkms://projects/k", "MLSECOPS_SIGNING_KEY")]
    assert "testkms://KEY" in supported_forms()


def test_settings_load_references_from_env_and_airflow_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = SigningKey.generate()
    monkeypatch.setenv("SIGNING_PEM", key.private_pem().decode())
    from_env = Settings.from_layers([Layer.from_env({"MLSECOPS_SIGNING_KEY": "env:SIGNING_PEM", "MLSECOPS_HOME": str(tmp_path)})])
    assert from_env.load_signing_key().keyid == key.keyid
    from_airflow = Settings.from_layers([Layer("airflow", {"signing_key": "env:SIGNING_PEM", "home": str(tmp_path)})])
    assert from_airflow.signing_key_ref == "env:SIGNING_PEM"
    assert from_airflow.load_signing_key().keyid == key.keyid
    broken = Settings.from_layers([Layer("airflow", {"signing_key": "awskms:alias/x", "home": str(tmp_path)})])
    with pytest.raises(KeyLoadError, match=r"awskms:alias/x \(from \[mlsecops\] signing_key\) is not an AWS KMS key reference"):
        broken.load_signing_key()


def test_kms_reference_in_every_setting_names_the_same_key(aws_endpoint: str, tmp_path: Path) -> None:
    """``awskms:///...`` in MLSECOPS_SIGNING_KEY and in ``[mlsecops] signing_key``: the same KMS signer."""
    import boto3

    client = boto3.client("kms")
    key_id = client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    alias = f"alias/mlsecops-settings-{uuid.uuid4().hex[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=key_id)
    reference = f"awskms:///{alias}"
    signers = [
        Settings.from_layers(
            [Layer.from_env({"MLSECOPS_SIGNING_KEY": reference, "MLSECOPS_HOME": str(tmp_path)})]
        ).load_signing_key(),
        Settings.from_layers([Layer("airflow", {"signing_key": reference, "home": str(tmp_path)})]).load_signing_key(),
    ]
    assert all(isinstance(s, AwsKmsSigner) for s in signers)
    assert signers[0].keyid == signers[1].keyid == load_public_key(reference).keyid
    assert signers[1].public_key.origin == f"{reference} (from [mlsecops] signing_key)"
    exported = VerifyingKey.from_pem(signers[0].public_key.to_pem())
    verify_envelope(sign_envelope(b"{}", signers[1]), {exported.keyid: exported})
