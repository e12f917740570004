"""Signing and verification keys: types, key ids, files on disk, refusals."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from airflow_mlsecops.evidence.keys import KEY_TYPES, SigningKey, VerifyingKey, load_trusted_keys
from airflow_mlsecops.exceptions import ConfigurationError, KeyLoadError, SignatureInvalid

DATA = b"the bytes a gate signs"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_generate_sign_verify(key_type: str) -> None:
    key = SigningKey.generate(key_type)
    assert key.public_key.key_type == key_type
    signature = key.sign(DATA)
    assert key.public_key.verify(signature, DATA) is None
    with pytest.raises(SignatureInvalid, match=key.keyid[:16]):
        key.public_key.verify(signature, DATA + b"!")
    other = SigningKey.generate(key_type)
    with pytest.raises(SignatureInvalid):
        other.public_key.verify(signature, DATA)


def test_default_key_type_is_p256() -> None:
    key = SigningKey.generate()
    assert isinstance(key.key, ec.EllipticCurvePrivateKey)
    assert key.key.curve.name == "secp256r1"


@pytest.mark.parametrize(
    ("key_type", "hash_cls"), [("ecdsa-p256", hashes.SHA256), ("ecdsa-p384", hashes.SHA384), ("ed25519", None)]
)
def test_signatures_verify_with_cryptography_directly(key_type: str, hash_cls: type[hashes.HashAlgorithm] | None) -> None:
    """ECDSA P-256 signs with SHA-256 and P-384 with SHA-384 (DER signatures); Ed25519 is pure."""
    key = SigningKey.generate(key_type)
    public = serialization.load_pem_public_key(key.public_key.to_pem())
    signature = key.sign(DATA)
    if hash_cls is None:
        assert isinstance(public, ed25519.Ed25519PublicKey)
        assert len(signature) == 64
        public.verify(signature, DATA)
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, DATA, ec.ECDSA(hash_cls()))


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_key_id_is_sha256_of_the_spki_der(key_type: str) -> None:
    key = SigningKey.generate(key_type)
    der = key.key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    expected = hashlib.sha256(der).hexdigest()
    assert key.keyid == expected
    assert key.public_key.keyid == expected
    # The id survives PEM serialisation of either half.
    assert VerifyingKey.from_pem(key.public_key.to_pem()).keyid == expected
    assert SigningKey.from_pem(key.private_pem()).keyid == expected


def test_unknown_key_type_is_refused() -> None:
    with pytest.raises(KeyLoadError, match="unknown key type 'rsa'"):
        SigningKey.generate("rsa")


def test_write_pair_private_key_is_0600_and_loads_back(tmp_path: Path) -> None:
    key = SigningKey.generate()
    private, public = tmp_path / "keys" / "signing-key.pem", tmp_path / "pub" / "signing-key.pub.pem"
    old_umask = os.umask(0)  # a permissive umask must not widen the private key's mode
    try:
        key.write_pair(private, public)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert SigningKey.from_file(private).keyid == key.keyid
    assert VerifyingKey.from_file(public).keyid == key.keyid


def test_write_pair_refuses_to_overwrite(tmp_path: Path) -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    first.write_pair(private, public)
    before = private.read_bytes()
    with pytest.raises(KeyLoadError, match="already exists; refusing to overwrite"):
        second.write_pair(private, tmp_path / "other.pub.pem")
    assert private.read_bytes() == before
    assert SigningKey.from_file(private).keyid == first.keyid


def test_encrypted_private_key_needs_its_password(tmp_path: Path) -> None:
    key = SigningKey.generate("ecdsa-p384")
    private = tmp_path / "k.pem"
    key.write_pair(private, tmp_path / "k.pub.pem", password=b"correct horse")
    assert private.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")

    with pytest.raises(KeyLoadError, match="encrypted") as no_password:
        SigningKey.from_file(private)
    assert str(private) in str(no_password.value)
    with pytest.raises(KeyLoadError, match="wrong password"):
        SigningKey.from_file(private, password=b"battery staple")
    assert SigningKey.from_file(private, password=b"correct horse").keyid == key.keyid


def test_password_for_an_unencrypted_key_is_a_clear_error() -> None:
    pem = SigningKey.generate().private_pem()
    with pytest.raises(KeyLoadError, match="not encrypted"):
        SigningKey.from_pem(pem, password=b"pw")


def test_rsa_private_key_is_refused_naming_rsa(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(KeyLoadError, match="RSA") as info:
        SigningKey.from_pem(pem, origin="rsa.pem")
    message = str(info.value)
    assert "not supported" in message
    assert "P-256" in message
    assert "rsa.pem" in message
    assert pem.decode().splitlines()[1] not in message  # no key material in the message


def test_rsa_public_key_is_refused_naming_rsa(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    path = tmp_path / "rsa.pub.pem"
    path.write_bytes(
        rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyLoadError, match="RSA"):
        VerifyingKey.from_file(path)
    with pytest.raises(KeyLoadError, match="RSA"):
        load_trusted_keys([tmp_path])


def test_unsupported_curve_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP521R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyLoadError, match="secp521r1 is not supported"):
        SigningKey.from_pem(pem)
    with pytest.raises(KeyLoadError, match="secp521r1 is not supported"):
        VerifyingKey.from_pem(pem)


@pytest.mark.parametrize("loader", [SigningKey.from_file, VerifyingKey.from_file], ids=["signing", "verifying"])
def test_missing_directory_and_garbage_files_are_key_load_errors(loader: Callable[[Path], object], tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="does not exist"):
        loader(tmp_path / "absent.pem")
    with pytest.raises(KeyLoadError, match="is a directory"):
        loader(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyLoadError, match="not a PEM"):
        loader(garbage)
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    with pytest.raises(KeyLoadError):
        loader(empty)


def test_key_load_error_is_a_configuration_error() -> None:
    assert issubclass(KeyLoadError, ConfigurationError)


def test_public_key_given_as_signing_key_is_refused() -> None:
    with pytest.raises(KeyLoadError, match="not a PEM private key"):
        SigningKey.from_pem(SigningKey.generate().public_key.to_pem())


def test_verifying_key_accepts_a_private_pem_and_keeps_only_its_public_half() -> None:
    key = SigningKey.generate("ed25519")
    verifying = VerifyingKey.from_pem(key.private_pem())
    assert verifying.keyid == key.keyid
    assert isinstance(verifying.key, ed25519.Ed25519PublicKey)
    verifying.verify(key.sign(DATA), DATA)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_repr_shows_no_key_material(key_type: str) -> None:
    key = SigningKey.generate(key_type)
    text = repr(key)
    assert text == str(key)
    assert text == f"SigningKey(type={key_type}, keyid={key.keyid[:16]})"
    pem_lines = key.private_pem().decode().splitlines()[1:-1]
    assert all(line[:20] not in text for line in pem_lines)
    if isinstance(key.key, ec.EllipticCurvePrivateKey):
        assert str(key.key.private_numbers().private_value) not in text
    raw = key.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert raw.hex()[-32:] not in text


def test_load_trusted_keys_reads_only_pub_pem_files_of_a_directory(tmp_path: Path) -> None:
    alice, bob, secret = SigningKey.generate(), SigningKey.generate("ed25519"), SigningKey.generate()
    (tmp_path / "alice.pub.pem").write_bytes(alice.public_key.to_pem())
    (tmp_path / "bob.pub.pem").write_bytes(bob.public_key.to_pem())
    # None of these is read: a private key, garbage under other names, a directory named like a key.
    (tmp_path / "signing-key.pem").write_bytes(secret.private_pem())
    (tmp_path / "carol.pem").write_bytes(SigningKey.generate().public_key.to_pem())
    (tmp_path / "notes.txt").write_text("not a key")
    (tmp_path / "old.pub.pem.bak").write_text("not a key")
    (tmp_path / "nested.pub.pem").mkdir()
    (tmp_path / "nested.pub.pem" / "dave.pub.pem").write_bytes(SigningKey.generate().public_key.to_pem())

    keys = load_trusted_keys([tmp_path])
    assert set(keys) == {alice.keyid, bob.keyid}
    assert keys[bob.keyid].key_type == "ed25519"


def test_load_trusted_keys_mixes_files_and_directories(tmp_path: Path) -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate("ecdsa-p384")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "alice.pub.pem").write_bytes(alice.public_key.to_pem())
    (tmp_path / "bob.pem").write_bytes(bob.public_key.to_pem())  # an explicit file need not end in .pub.pem
    keys = load_trusted_keys([tmp_path / "dir", str(tmp_path / "bob.pem")])
    assert set(keys) == {alice.keyid, bob.keyid}
    assert load_trusted_keys([]) == {}


def test_load_trusted_keys_does_not_skip_a_broken_pub_pem(tmp_path: Path) -> None:
    (tmp_path / "broken.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyLoadError, match=r"broken\.pub\.pem"):
        load_trusted_keys([tmp_path])
    with pytest.raises(KeyLoadError, match="does not exist"):
        load_trusted_keys([tmp_path / "missing.pub.pem"])


# ----------------------------------------------------------------------------- where trust comes from (issue 11, item 10)
def test_trust_comes_from_configuration_never_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.exceptions import KeyLoadError

    for name in ("MLSECOPS_HOME", "MLSECOPS_TRUSTED_KEYS", "MLSECOPS_SIGNING_KEY", "MLSECOPS_SIGNING_KEY_PEM"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    (work / ".mlsecops" / "keys").mkdir(parents=True)
    planted = SigningKey.generate()
    (work / ".mlsecops" / "keys" / "planted.pub.pem").write_bytes(planted.public_key.to_pem())
    monkeypatch.chdir(work)
    settings = Settings.from_env()
    assert settings.trusted_key_paths == () and settings.trust_source == ""
    assert settings.load_trusted_keys() == {}

    # MLSECOPS_HOME set by the user: its keys/ folder is trusted, and each key says where it came from.
    monkeypatch.setenv("MLSECOPS_HOME", str(work / ".mlsecops"))
    keys = Settings.from_env().load_trusted_keys()
    assert list(keys) == [planted.keyid]
    assert keys[planted.keyid].origin == f"{work / '.mlsecops' / 'keys' / 'planted.pub.pem'} (MLSECOPS_HOME)"

    # MLSECOPS_TRUSTED_KEYS wins over the home, and a missing path is an error, not an empty trust.
    other = SigningKey.generate()
    (tmp_path / "other.pub.pem").write_bytes(other.public_key.to_pem())
    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(tmp_path / "other.pub.pem"))
    keys = Settings.from_env().load_trusted_keys()
    assert list(keys) == [other.keyid] and keys[other.keyid].origin.endswith("(MLSECOPS_TRUSTED_KEYS)")
    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(tmp_path / "missing.pub.pem"))
    with pytest.raises(KeyLoadError, match="does not exist"):
        Settings.from_env().load_trusted_keys()

    # The signing side with no key configured still fails, clearly.
    monkeypatch.delenv("MLSECOPS_TRUSTED_KEYS")
    monkeypatch.setenv("MLSECOPS_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(KeyLoadError, match="no signing key is configured"):
        Settings.from_env().load_signing_key()


def test_a_key_origin_is_not_part_of_its_identity() -> None:
    key = SigningKey.generate().public_key
    again = VerifyingKey.from_pem(key.to_pem(), origin="somewhere else")
    assert again == key and again.keyid == key.keyid and again.origin == "somewhere else"
