"""Signing and verification keys: ECDSA P-256 by default (as OpenSSF model signing and AWS KMS use),
ECDSA P-384 and Ed25519 accepted.

Keys load from PEM files or PEM text (for example from an environment variable or a secrets
backend). Key material is never logged or put into an error message; keys are named by their
key id, the SHA-256 of the public key's DER SubjectPublicKeyInfo.

A trusted key may carry a validity window and a revocation (from a trust file, see
:mod:`airflow_mlsecops.evidence.trust`): it then verifies only signatures made inside
``[not_before, not_after)`` and before ``revoked_at``, and only when the signing time is known
(:meth:`VerifyingKey.check_signing_time`, :class:`SigningTime`).

>>> from airflow_mlsecops.evidence.keys import SigningKey
>>> key = SigningKey.generate()
>>> key.public_key.verify(key.sign(b"data"), b"data")  # raises SignatureInvalid on mismatch
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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


#: How far in the future a signing time that the signer states may lie (clocks of workers and
#: verifiers differ by a little); beyond it the time is refused as made up.
CLOCK_SKEW = timedelta(minutes=5)


def format_time(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with a ``Z``, for messages and reports."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class SigningTime:
    """When a signature was made, as far as a verifier can tell, and how it knows.

    :param at: the time (timezone-aware).
    :param source: what the time is, for messages (``the ledger time of seq 12``).
    :param independent: the time comes from a record the signer cannot write on its own (the
        hash-chained ledger). ``False`` for a time the signer itself states (a signed statement's
        timestamp) or the time of verification: such a time cannot show that a signature predates
        a revocation, since whoever holds a revoked key can sign any time they like.
    """

    at: datetime
    source: str = "the signing time"
    independent: bool = True


@dataclass(frozen=True)
class VerifyingKey:
    """A public key trusted to verify evidence signatures.

    :param key: the public key.
    :param origin: where it came from (a file path, an environment variable, a trust file entry and
        the setting that named it), for reports that say which keys were trusted and why; not part
        of the key's identity.
    :param not_before: signatures made before this time do not verify (a key rotated in).
    :param not_after: signatures made at or after this time do not verify (a key rotated out: it
        still verifies what it signed before).
    :param revoked_at: signatures made at or after this time do not verify, nor any whose signing
        time is not :attr:`SigningTime.independent` (a stolen key can sign any time it likes).
    :param revocation_reason: why the key was revoked, for messages.

    The window and revocation are not part of the key's identity (equality and hashing ignore them).
    """

    key: PublicKey
    origin: str = field(default="", compare=False)
    not_before: datetime | None = field(default=None, compare=False)
    not_after: datetime | None = field(default=None, compare=False)
    revoked_at: datetime | None = field(default=None, compare=False)
    revocation_reason: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("not_before", "not_after", "revoked_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise KeyLoadError(f"{self.origin or 'trusted key'}: {name} {moment.isoformat()} has no time zone")
        if self.not_before is not None and self.not_after is not None and self.not_after <= self.not_before:
            raise KeyLoadError(
                f"{self.origin or 'trusted key'}: not_after {format_time(self.not_after)} is not after "
                f"not_before {format_time(self.not_before)}"
            )

    @property
    def time_limited(self) -> bool:
        """The key has a validity window or a revocation: a signature verifies only with a known signing time."""
        return self.not_before is not None or self.not_after is not None or self.revoked_at is not None

    @property
    def validity(self) -> str:
        """The key's window and revocation in words (``always``, ``from ... until ...``, ``revoked at ...``)."""
        parts = []
        if self.not_before is not None and self.not_after is not None:
            parts.append(f"from {format_time(self.not_before)} until {format_time(self.not_after)}")
        elif self.not_before is not None:
            parts.append(f"from {format_time(self.not_before)}")
        elif self.not_after is not None:
            parts.append(f"until {format_time(self.not_after)}")
        if self.revoked_at is not None:
            reason = f" ({self.revocation_reason})" if self.revocation_reason else ""
            parts.append(f"revoked at {format_time(self.revoked_at)}{reason}")
        return "; ".join(parts) or "always"

    def check_signing_time(self, signed_at: SigningTime | datetime | None, *, now: datetime | None = None) -> None:
        """Return ``None`` if this key may have made a signature at ``signed_at``; raise
        :class:`SignatureInvalid` naming the key and why not otherwise.

        A key without window or revocation accepts any time, an unknown one included. A key with
        either refuses an unknown time (fail closed), a time outside ``[not_before, not_after)``,
        a time at or after ``revoked_at``, and, once revoked, any time that is not
        :attr:`SigningTime.independent`. A time the signer states may not lie in the future
        (beyond :data:`CLOCK_SKEW`).

        :param signed_at: when the signature was made (a bare ``datetime`` counts as independent).
        :param now: the current time (default: the clock), for the revocation and future checks.
        """
        if not self.time_limited:
            return
        name = f"key {self.keyid[:16]}"
        if signed_at is None:
            raise SignatureInvalid(
                f"{name} is trusted only {self.validity}, and the signing time is unknown: the signature cannot be "
                "placed inside the key's validity, so it is refused"
            )
        when = signed_at if isinstance(signed_at, SigningTime) else SigningTime(signed_at)
        if when.at.tzinfo is None:
            raise SignatureInvalid(f"{name}: {when.source} {when.at.isoformat()} has no time zone, so it is refused")
        current = now or datetime.now(timezone.utc)
        stated = f"{when.source} is {format_time(when.at)}"
        if self.revoked_at is not None:
            reason = f" ({self.revocation_reason})" if self.revocation_reason else ""
            revoked = f"{name} was revoked at {format_time(self.revoked_at)}{reason}"
            if when.at >= self.revoked_at:
                raise SignatureInvalid(f"{revoked}: {stated}, not before it")
            if not when.independent and self.revoked_at <= current:
                raise SignatureInvalid(
                    f"{revoked}; {stated}, but that time cannot show the signature was made before the revocation "
                    "(whoever holds the key can sign any time)"
                )
        if self.not_before is not None and when.at < self.not_before:
            raise SignatureInvalid(f"{name} is not valid before {format_time(self.not_before)}: {stated}")
        if self.not_after is not None and when.at >= self.not_after:
            raise SignatureInvalid(f"{name} expired at {format_time(self.not_after)} (rotated out): {stated}")
        if not when.independent and when.at > current + CLOCK_SKEW:
            raise SignatureInvalid(f"{name}: {stated}, which is in the future")

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
    id; each key's ``origin`` is the file it was read from. A trust file (``*.yaml``, ``*.yml``,
    ``*.json``) among ``paths`` is read by :func:`airflow_mlsecops.evidence.trust.load_trust_anchors`
    (windows and revocations included)."""
    keys: dict[str, VerifyingKey] = {}
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() in TRUST_FILE_SUFFIXES:
            from airflow_mlsecops.evidence.trust import load_trust_anchors

            for keyid, key in load_trust_anchors([str(path)], explicit=True).items():
                keys[keyid] = merge_key(keys.get(keyid), key)
            continue
        files = sorted(p for p in path.iterdir() if p.name.endswith(".pub.pem") and p.is_file()) if path.is_dir() else [path]
        for file in files:
            key = VerifyingKey.from_file(file)
            keys[key.keyid] = merge_key(keys.get(key.keyid), key)
    return keys


#: Suffixes of trust files (keys with validity windows and revocations) among trust anchors.
TRUST_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def same_validity(first: VerifyingKey, second: VerifyingKey) -> bool:
    """Whether two entries of one key give it the same window and revocation."""
    return (first.not_before, first.not_after, first.revoked_at, first.revocation_reason) == (
        second.not_before,
        second.not_after,
        second.revoked_at,
        second.revocation_reason,
    )


def merge_key(known: VerifyingKey | None, key: VerifyingKey) -> VerifyingKey:
    """One key listed twice: the first listing, if both give the same validity; refused otherwise
    (which window would hold is not for the loader to guess: a revocation must never be lost)."""
    if known is None:
        return key
    if not same_validity(known, key):
        raise KeyLoadError(
            f"key {key.keyid[:16]} is trusted twice with different validity: {known.validity} "
            f"({known.origin or 'given by the caller'}) and {key.validity} ({key.origin or 'given by the caller'}); "
            "list it once, with its window and revocation in one entry"
        )
    return known
