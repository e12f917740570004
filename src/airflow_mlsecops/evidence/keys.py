"""Signing and verification keys: ECDSA P-256 by default (as OpenSSF model signing and AWS KMS use),
ECDSA P-384 and Ed25519 accepted.

Keys load from PEM files or PEM text (for example from an environment variable or a secrets
backend). Key material is never logged or put into an error message; keys are named by their
key id, the SHA-256 of the public key's DER SubjectPublicKeyInfo.

>>> from airflow_mlsecops.evidence.keys import SigningKey
>>> key = SigningKey.generate()
>>> key.public_key.verify(key.sign(b"data"), b"data")  # raises SignatureInvalid on mismatch
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from airflow_mlsecops.exceptions import KeyLoadError, SignatureInvalid

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "ed25519")
_CURVES: dict[str, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm]]] = {
    "secp256r1": (ec.SECP256R1, hashes.SHA256),
    "secp384r1": (ec.SECP384R1, hashes.SHA384),
}


def _key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _check_public_type(public_key: object, origin: str) -> PublicKey:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return public_key
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in _CURVES:
            raise KeyLoadError(f"{origin}: ECDSA curve {public_key.curve.name} is not supported; use P-256 or P-384")
        return public_key
    raise KeyLoadError(
        f"{origin}: {type(public_key).__name__.lstrip('_')} keys are not supported; use ECDSA P-256 (default), P-384 or Ed25519"
    )


@dataclass(frozen=True)
class VerifyingKey:
    """A public key trusted to verify evidence signatures.

    :param key: the public key.
    :param origin: where it came from (a file path, an environment variable), for reports that say
        which keys were trusted and why; not part of the key's identity.
    """

    key: PublicKey
    origin: str = field(default="", compare=False)

    @cached_property
    def keyid(self) -> str:
        return _key_id(self.key)

    @property
    def key_type(self) -> str:
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            return "ed25519"
        return "ecdsa-p256" if self.key.curve.name == "secp256r1" else "ecdsa-p384"

    def verify(self, signature: bytes, data: bytes) -> None:
        """Return ``None`` if ``signature`` is valid for ``data``; raise :class:`SignatureInvalid` otherwise."""
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
            else:
                hash_cls = _CURVES[self.key.curve.name][1]
                self.key.verify(signature, data, ec.ECDSA(hash_cls()))
        except InvalidSignature as exc:
            raise SignatureInvalid(f"signature does not verify with key {self.keyid[:16]}") from exc

    def to_pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @classmethod
    def from_pem(cls, pem: bytes, *, origin: str = "public key") -> VerifyingKey:
        try:
            loaded = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            # A private key given where a public key belongs: accept it, use its public half.
            try:
                private = serialization.load_pem_private_key(pem, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise KeyLoadError(f"{origin}: not a PEM public key") from exc
            loaded = private.public_key()
        return cls(_check_public_type(loaded, origin), origin=origin)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> VerifyingKey:
        return cls.from_pem(_read_key_file(Path(path)), origin=str(path))


@dataclass(frozen=True)
class SigningKey:
    """A private key that signs evidence. ``repr`` never shows key material."""

    key: PrivateKey

    def __repr__(self) -> str:
        return f"SigningKey(type={self.public_key.key_type}, keyid={self.keyid[:16]})"

    @cached_property
    def public_key(self) -> VerifyingKey:
        return VerifyingKey(self.key.public_key(), origin="the signing key")

    @cached_property
    def keyid(self) -> str:
        return self.public_key.keyid

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        hash_cls = _CURVES[self.key.curve.name][1]
        return self.key.sign(data, ec.ECDSA(hash_cls()))

    @classmethod
    def generate(cls, key_type: str = "ecdsa-p256") -> SigningKey:
        if key_type == "ecdsa-p256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if key_type == "ecdsa-p384":
            return cls(ec.generate_private_key(ec.SECP384R1()))
        if key_type == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        raise KeyLoadError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")

    @classmethod
    def from_pem(cls, pem: bytes, *, password: bytes | None = None, origin: str = "signing key") -> SigningKey:
        try:
            loaded = serialization.load_pem_private_key(pem, password=password)
        except TypeError as exc:
            # cryptography says "Password was not given but private key is encrypted" and the reverse.
            raise KeyLoadError(f"{origin}: {exc}") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyLoadError(f"{origin}: not a PEM private key (or wrong password)") from exc
        _check_public_type(loaded.public_key(), origin)
        return cls(loaded)  # type: ignore[arg-type]  # narrowed by _check_public_type

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, password: bytes | None = None) -> SigningKey:
        return cls.from_pem(_read_key_file(Path(path)), password=password, origin=str(path))

    def private_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    def write_pair(self, private_path: Path, public_path: Path, *, password: bytes | None = None) -> None:
        """Write the private key (mode 0600, never overwriting) and its public half."""
        private_path.parent.mkdir(parents=True, exist_ok=True)
        public_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise KeyLoadError(f"{private_path} already exists; refusing to overwrite a key") from exc
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.private_pem(password))
        public_path.write_bytes(self.public_key.to_pem())


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyLoadError(f"key file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise KeyLoadError(f"key file {path} is a directory") from exc
    except OSError as exc:
        raise KeyLoadError(f"key file {path} cannot be read: {exc.strerror}") from exc


def load_trusted_keys(paths: Iterable[str | os.PathLike[str]]) -> dict[str, VerifyingKey]:
    """Load public keys from PEM files, or from the ``*.pub.pem`` files of a directory, keyed by key
    id; each key's ``origin`` is the file it was read from."""
    keys: dict[str, VerifyingKey] = {}
    for raw in paths:
        path = Path(raw)
        files = sorted(p for p in path.iterdir() if p.name.endswith(".pub.pem") and p.is_file()) if path.is_dir() else [path]
        for file in files:
            key = VerifyingKey.from_file(file)
            keys[key.keyid] = key
    return keys
