"""OpenSSF model-signing format: real files, real keys, the real ``model_signing`` CLI (no mocks).

Interoperability is checked both ways: our bundles verify with ``model_signing verify key`` and
bundles from ``model_signing sign key`` verify with our own verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.digest import sha256_file, sha256_path
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
from airflow_mlsecops.evidence.model_signing import (
    BUNDLE_MEDIA_TYPE,
    PREDICATE_TYPE,
    public_key_hint,
    sign_model,
    verify_model,
)
from airflow_mlsecops.exceptions import DigestMismatch, GateError, KeyLoadError, SignatureInvalid
from tests.evidence.model_signing_fixtures import make_model

MODEL_SIGNING_CLI = Path(sys.executable).parent / "model_signing"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    assert MODEL_SIGNING_CLI.exists(), "the OpenSSF model_signing CLI is a dev dependency (pip install model-signing)"
    return subprocess.run([str(MODEL_SIGNING_CLI), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def trusted(key: SigningKey) -> dict[str, VerifyingKey]:
    return {key.keyid: key.public_key}


def _key_files(key: SigningKey, where: Path) -> tuple[Path, Path]:
    private, public = where / f"{key.keyid[:8]}.pem", where / f"{key.keyid[:8]}.pub.pem"
    if not private.exists():
        key.write_pair(private, public)
    return private, public


def _statement(bundle: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))


# ----------------------------------------------------------------------------- round trips and format


def test_round_trip_directory(tmp_path: Path, key: SigningKey, trusted: dict[str, VerifyingKey]) -> None:
    model = make_model(tmp_path)
    bundle = sign_model(model, key)
    signature = verify_model(model, bundle, trusted)
    assert dict(signature.files) == {p: sha256_file(model / p) for p in ("a/b", "a.txt", "config.json", "weights.bin")}
    ordered = ("a/b", "a.txt", "config.json", "weights.bin")  # OpenSSF orders by path components
    assert signature.model_digest == hashlib.sha256(b"".join(bytes.fromhex(signature.files[p]) for p in ordered)).hexdigest()
    assert signature.keyid == key.keyid and signature.key_type == "ecdsa-p256"
    assert signature.bundle_sha256 == hashlib.sha256(bundle).hexdigest()
    (model / ".git" / "HEAD").write_text("changed: git files are ignored, as OpenSSF does\n")
    verify_model(model, bundle, trusted)
    shutil.rmtree(model / ".git")
    assert signature.tree_sha256 == sha256_path(model)  # the gate subject agrees with the provenance digest


def test_round_trip_single_file(tmp_path: Path, key: SigningKey, trusted: dict[str, VerifyingKey]) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(os.urandom(4096))
    signature = verify_model(model, sign_model(model, key), trusted)
    assert dict(signature.files) == {".": sha256_file(model)}
    assert signature.model_name == "model.safetensors"
    assert signature.tree_sha256 == sha256_file(model)


def test_bundle_is_a_sigstore_v03_bundle_with_the_openssf_statement(tmp_path: Path, key: SigningKey) -> None:
    model = make_model(tmp_path)
    bundle = json.loads(sign_model(model, key))
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json" == BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"] == {
        "publicKey": {"hint": hashlib.sha256(key.public_key.to_pem()).hexdigest()},
        "tlogEntries": [],
    }
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert len(envelope["signatures"]) == 1
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0" == PREDICATE_TYPE
    assert statement["subject"][0]["name"] == "model"
    serialization = statement["predicate"]["serialization"]
    assert serialization == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"],
    }
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == ["a/b", "a.txt", "config.json", "weights.bin"]
    assert all(r["algorithm"] == "sha256" for r in statement["predicate"]["resources"])


# ----------------------------------------------------------------------------- interoperability


@pytest.mark.parametrize(("kind", "key_type"), [("dir", "ecdsa-p256"), ("file", "ecdsa-p256"), ("dir", "ecdsa-p384")])
@pytest.mark.slow
def test_interoperates_with_the_openssf_cli_both_ways(tmp_path: Path, kind: str, key_type: str) -> None:
    key = SigningKey.generate(key_type)
    private, public = _key_files(key, tmp_path)
    if kind == "dir":
        model = make_model(tmp_path)
    else:
        model = tmp_path / "model.onnx"
        model.write_bytes(os.urandom(10_000))

    ours = tmp_path / "ours.sig"
    ours.write_bytes(sign_model(model, key))
    done = _cli("verify", "key", str(model), "--signature", str(ours), "--public_key", str(public))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verification succeeded" in done.stdout

    theirs = tmp_path / "theirs.sig"
    done = _cli("sign", "key", str(model), "--private_key", str(private), "--signature", str(theirs))
    assert done.returncode == 0, done.stdout + done.stderr
    signature = verify_model(model, theirs.read_bytes(), {key.keyid: key.public_key})
    assert signature.keyid == key.keyid
    # Same model, same key type: the same manifest and model digest on both sides.
    assert _statement(theirs.read_bytes())["predicate"]["resources"] == _statement(ours.read_bytes())["predicate"]["resources"]
    assert signature.model_digest == verify_model(model, ours.read_bytes(), {key.keyid: key.public_key}).model_digest

    if kind == "dir":  # and both reject the same tampering
        (model / "a" / "b").write_bytes(b"tampered")
        done = _cli("verify", "key", str(model), "--signature", str(ours), "--public_key", str(public))
        assert done.returncode == 1 and "a/b" in done.stderr
        with pytest.raises(DigestMismatch, match="a/b changed since it was signed"):
            verify_model(model, theirs.read_bytes(), {key.keyid: key.public_key})


def test_signature_inside_the_model_is_left_out_on_both_sides(tmp_path: Path, key: SigningKey) -> None:
    _, public = _key_files(key, tmp_path)
    model = make_model(tmp_path)
    sig = model / "model.sig"
    sig.write_bytes(sign_model(model, key, signature_path=sig))
    assert "model.sig" in _statement(sig.read_bytes())["predicate"]["serialization"]["ignore_paths"]
    verify_model(model, sig.read_bytes(), {key.keyid: key.public_key})
    done = _cli("verify", "key", str(model), "--signature", str(sig), "--public_key", str(public))
    assert done.returncode == 0, done.stderr


def test_an_openssf_signature_of_an_empty_directory_is_refused(tmp_path: Path, key: SigningKey) -> None:
    private, _ = _key_files(key, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    sig = tmp_path / "empty.sig"
    done = _cli("sign", "key", str(empty), "--private_key", str(private), "--signature", str(sig))
    assert done.returncode == 0, "model_signing 1.1.1 signs an empty directory; if this changes, keep the refusal below"
    with pytest.raises(SignatureInvalid, match="covers no file"):
        verify_model(empty, sig.read_bytes(), {key.keyid: key.public_key})


# ----------------------------------------------------------------------------- refusals when signing


def test_an_empty_directory_is_refused(tmp_path: Path, key: SigningKey) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(GateError, match=r"holds no files.*refusing to sign an empty model"):
        sign_model(empty, key)
    (empty / ".gitignore").write_text("*.pyc\n")  # only ignored files: still empty
    with pytest.raises(GateError, match="refusing to sign an empty model"):
        sign_model(empty, key)


def test_ed25519_keys_are_refused_clearly(tmp_path: Path) -> None:
    model = make_model(tmp_path)
    ed = SigningKey.generate("ed25519")
    with pytest.raises(KeyLoadError, match="ed25519, but OpenSSF model signing needs an ECDSA key"):
        sign_model(model, ed)
    ecdsa = SigningKey.generate()
    with pytest.raises(SignatureInvalid, match="no trusted ECDSA public key"):
        verify_model(model, sign_model(model, ecdsa), {ed.keyid: ed.public_key})


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_symbolic_links_are_refused_when_signing(tmp_path: Path, key: SigningKey, target: str) -> None:
    model = make_model(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the model")
    (model / "link.bin").symlink_to(secret if target == "outside" else model / "weights.bin")
    expected = "link.bin is a symbolic link pointing outside the model" if target == "outside" else "link.bin is a symbolic link"
    with pytest.raises(GateError, match=expected):
        sign_model(model, key)


# ----------------------------------------------------------------------------- tampering is caught and named


def _edit_statement(bundle: bytes, edit: Callable[[dict], None]) -> bytes:
    data = json.loads(bundle)
    statement = json.loads(base64.b64decode(data["dsseEnvelope"]["payload"]))
    edit(statement)
    data["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(data).encode()


def _flip_signature(bundle: bytes) -> bytes:
    data = json.loads(bundle)
    sig = bytearray(base64.b64decode(data["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-3] ^= 0x01
    data["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(data).encode()


def _change_digest(statement: dict) -> None:
    statement["predicate"]["resources"][0]["digest"] = "0" * 64


def _byte_changed(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    with open(model / "weights.bin", "r+b") as fh:
        fh.seek(1000)
        old = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([old[0] ^ 0xFF]))
    return bundle


def _file_added(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    (model / "a" / "backdoor.py").write_text("import os\n")
    return bundle


def _file_removed(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    (model / "config.json").unlink()
    return bundle


def _file_renamed(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    (model / "config.json").rename(model / "config.yaml")
    return bundle


def _symlink_out(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    (tmp / "elsewhere.bin").write_bytes((model / "weights.bin").read_bytes())
    (model / "weights.bin").unlink()
    (model / "weights.bin").symlink_to(tmp / "elsewhere.bin")
    return bundle


def _untrusted_key(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    return sign_model(model, SigningKey.generate())


def _payload_tampered(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    return _edit_statement(bundle, _change_digest)


def _signature_tampered(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    return _flip_signature(bundle)


def _other_model(tmp: Path, model: Path, bundle: bytes, key: SigningKey) -> bytes:
    other = tmp / "other-model"
    other.mkdir()
    (other / "model.pkl").write_bytes(b"another model")
    (other / "MLmodel").write_text("flavors: {}\n")
    return sign_model(other, key)


@pytest.mark.parametrize(
    ("tamper", "error", "message"),
    [
        (_byte_changed, DigestMismatch, r"weights\.bin changed since it was signed"),
        (_file_added, DigestMismatch, r"a/backdoor\.py was added after signing"),
        (_file_removed, DigestMismatch, r"config\.json is missing \(it was signed\)"),
        (_file_renamed, DigestMismatch, r"config\.json was renamed to config\.yaml after signing"),
        (_symlink_out, DigestMismatch, r"weights\.bin is a symbolic link pointing outside the model"),
        (_untrusted_key, SignatureInvalid, r"signed by an untrusted key \(public key hint"),
        (_payload_tampered, SignatureInvalid, r"does not verify with trusted key .*altered"),
        (_signature_tampered, SignatureInvalid, r"does not verify with trusted key"),
        (_other_model, DigestMismatch, r"which is for model 'other-model'.*another model's signature"),
    ],
    ids=[
        "byte-changed",
        "file-added",
        "file-removed",
        "file-renamed",
        "symlink-out-of-tree",
        "untrusted-key",
        "payload-tampered",
        "signature-tampered",
        "bundle-of-another-model",
    ],
)
def test_verification_fails_and_names_what(
    tmp_path: Path,
    key: SigningKey,
    trusted: dict[str, VerifyingKey],
    tamper: Callable[[Path, Path, bytes, SigningKey], bytes],
    error: type[Exception],
    message: str,
) -> None:
    model = make_model(tmp_path)
    bundle = sign_model(model, key)
    verify_model(model, bundle, trusted)
    tampered = tamper(tmp_path, model, bundle, key)
    with pytest.raises(error, match=message):
        verify_model(model, tampered, trusted)


def test_a_forged_hint_or_missing_hint_does_not_help(tmp_path: Path, key: SigningKey, trusted: dict[str, VerifyingKey]) -> None:
    model = make_model(tmp_path)
    attacker = SigningKey.generate()
    data = json.loads(sign_model(model, attacker))
    data["verificationMaterial"]["publicKey"]["hint"] = public_key_hint(key.public_key)
    with pytest.raises(SignatureInvalid, match="does not verify with trusted key"):
        verify_model(model, json.dumps(data).encode(), trusted)
    del data["verificationMaterial"]["publicKey"]["hint"]
    with pytest.raises(SignatureInvalid, match=r"no trusted key .* verifies"):
        verify_model(model, json.dumps(data).encode(), trusted)
    # An older bundle without a hint, from a trusted key, still verifies (as OpenSSF accepts it).
    genuine = json.loads(sign_model(model, key))
    genuine["verificationMaterial"]["publicKey"] = {}
    assert verify_model(model, json.dumps(genuine).encode(), trusted).keyid == key.keyid


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b"{not json", "not valid JSON"),
        (lambda b: b.replace(b"bundle.v0.3", b"bundle.v0.1"), "media type"),
        (
            lambda b: json.dumps(
                {**json.loads(b), "verificationMaterial": {"certificate": {"rawBytes": "AA=="}, "tlogEntries": []}}
            ).encode(),
            "not signed with a key",
        ),
    ],
    ids=["not-json", "media-type", "certificate-bundle"],
)
def test_malformed_bundles_are_refused(
    tmp_path: Path, key: SigningKey, trusted: dict[str, VerifyingKey], edit: Callable[[bytes], bytes], message: str
) -> None:
    model = make_model(tmp_path)
    with pytest.raises(SignatureInvalid, match=message):
        verify_model(model, edit(sign_model(model, key)), trusted)
