"""Signers: whatever produces evidence signatures, named by a reference.

A :class:`Signer` has a key id, a public key and a ``sign`` method; callers (DSSE envelopes, model
signing, the recorder) depend on nothing else, so a key held in a KMS or an HSM signs exactly like a
PEM file. References:

* a PEM file path (``/secrets/signing-key.pem``);
* ``env:VAR``: a PEM private key in the environment variable ``VAR``.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from airflow_mlsecops.config import is_key_reference
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
from airflow_mlsecops.exceptions import KeyLoadError


@runtime_checkable
class Signer(Protocol):
    """Signs bytes with one key. ``keyid`` is the SHA-256 of the public key's DER SubjectPublicKeyInfo."""

    @property
    def keyid(self) -> str: ...

    @property
    def public_key(self) -> VerifyingKey: ...

    def sign(self, data: bytes) -> bytes: ...


def signer_from_pem(pem: bytes, *, password: bytes | None = None, origin: str = "signing key") -> Signer:
    return SigningKey.from_pem(pem, password=password, origin=origin)


def load_signer(reference: str, *, password: bytes | None = None, origin: str = "") -> Signer:
    """The signer a reference names.

    :raises KeyLoadError: an unknown scheme, a missing or unreadable key, a key that cannot sign.
    """
    where = f" (from {origin})" if origin and origin != "default" else ""
    if is_key_reference(reference):
        scheme, _, rest = reference.partition(":")
        if scheme.lower() == "env":
            value = os.environ.get(rest)
            if not value:
                raise KeyLoadError(f"signing key reference {reference}{where}: the variable {rest} is not set")
            return signer_from_pem(value.encode("utf-8"), password=password, origin=f"{reference}{where}")
        raise KeyLoadError(f"signing key reference {reference}{where}: the scheme {scheme}: is not supported yet")
    scheme, sep, _ = reference.partition(":")
    if sep and scheme.isalpha() and len(scheme) > 1:
        raise KeyLoadError(
            f"signing key reference {reference}{where}: unknown scheme {scheme}:; use a PEM file path, env:VAR "
            "or awskms:///<key id | key ARN | alias/NAME>"
        )
    return SigningKey.from_file(reference, password=password)


def load_public_key(reference: str, *, origin: str = "") -> VerifyingKey:
    """The public key of the key a reference names (a PEM file with a public or private key,
    ``env:VAR``, a KMS key), with ``origin`` naming the reference.

    :raises KeyLoadError: an unknown scheme, a missing key, a key that is not a signing key.
    """
    where = f" (from {origin})" if origin and origin != "default" else ""
    if is_key_reference(reference):
        scheme, _, rest = reference.partition(":")
        if scheme.lower() == "env":
            value = os.environ.get(rest)
            if not value:
                raise KeyLoadError(f"key reference {reference}{where}: the variable {rest} is not set")
            return VerifyingKey.from_pem(value.encode("utf-8"), origin=f"{reference}{where}")
        raise KeyLoadError(f"key reference {reference}{where}: the scheme {scheme}: is not supported yet")
    return VerifyingKey.from_file(reference)
