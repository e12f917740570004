"""Signers: whatever produces evidence signatures, named by a reference.

A :class:`Signer` has a key id, a public key and a ``sign`` method; callers (DSSE envelopes, model
signing, the recorder) depend on nothing else, so a key held in a KMS or an HSM signs exactly like a
PEM file. References:

* a PEM file path (``/secrets/signing-key.pem``);
* ``env:VAR``: a PEM private key in the environment variable ``VAR``;
* ``awskms:///<key id | key ARN | alias/NAME>``: an AWS KMS key (:mod:`airflow_mlsecops.evidence.kms`);
  the private key never leaves KMS.

Each scheme is one :class:`KeyScheme` in :data:`SCHEMES` (a signer factory and a public-key factory):
another remote signer (GCP KMS, Azure Key Vault, PKCS#11) is one more entry there (and its name in
:data:`airflow_mlsecops.config.KEY_REFERENCE_SCHEMES`), with no change to any caller.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class KeyScheme:
    """One kind of key reference, ``<name>:...``.

    :param name: the scheme, lower case (``awskms``).
    :param form: how a reference looks, for messages (``awskms:///<key id | key ARN | alias/NAME>``).
    :param signer: ``(reference, password, origin) -> Signer``; ``origin`` names the setting.
    :param public_key: ``(reference, origin) -> VerifyingKey``, without needing the right to sign.
    """

    name: str
    form: str
    signer: Callable[[str, bytes | None, str], Signer]
    public_key: Callable[[str, str], VerifyingKey]


def _where(origin: str) -> str:
    return f" (from {origin})" if origin and origin != "default" else ""


def _env_pem(reference: str, origin: str, what: str) -> bytes:
    variable = reference.partition(":")[2]
    if not variable:
        raise KeyLoadError(f"{what} {reference}{_where(origin)}: name the variable, as env:VAR")
    value = os.environ.get(variable)
    if not value:
        raise KeyLoadError(f"{what} {reference}{_where(origin)}: the variable {variable} is not set")
    return value.encode("utf-8")


def _env_signer(reference: str, password: bytes | None, origin: str) -> Signer:
    return signer_from_pem(
        _env_pem(reference, origin, "signing key reference"), password=password, origin=f"{reference}{_where(origin)}"
    )


def _env_public_key(reference: str, origin: str) -> VerifyingKey:
    return VerifyingKey.from_pem(_env_pem(reference, origin, "key reference"), origin=f"{reference}{_where(origin)}")


def _awskms_signer(reference: str, password: bytes | None, origin: str) -> Signer:
    del password  # a KMS key has none; a configured password belongs to a PEM key
    from airflow_mlsecops.evidence.kms import AwsKmsSigner

    return AwsKmsSigner(reference, origin=origin)


def _awskms_public_key(reference: str, origin: str) -> VerifyingKey:
    from airflow_mlsecops.evidence.kms import load_public_key as kms_public_key

    return kms_public_key(reference, origin=origin)


#: The key reference schemes, by name. A scheme listed in ``config.KEY_REFERENCE_SCHEMES`` but not
#: here is refused with the list of supported forms.
SCHEMES: dict[str, KeyScheme] = {
    "env": KeyScheme("env", "env:VAR (a PEM private key in the variable VAR)", _env_signer, _env_public_key),
    "awskms": KeyScheme("awskms", "awskms:///<key id | key ARN | alias/NAME>", _awskms_signer, _awskms_public_key),
}


def supported_forms() -> str:
    """The reference forms, for messages: ``a PEM file path, env:VAR (...) or awskms:///...``."""
    forms = ["a PEM file path", *(scheme.form for scheme in SCHEMES.values())]
    return ", ".join(forms[:-1]) + " or " + forms[-1]


#: ``scheme:`` as RFC 3986 spells it, at least two characters: ``C:\\keys\\k.pem`` is a Windows path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def _scheme_of(reference: str, origin: str, what: str) -> KeyScheme | None:
    """The scheme ``reference`` names, or None for a file path.

    :raises KeyLoadError: a ``word:`` prefix that is no supported scheme (not read as a file name:
        a typo in a scheme must not turn into "file not found" or, worse, a file of that name).
    """
    scheme = reference.partition(":")[0]
    if is_key_reference(reference) or _SCHEME.match(reference):
        known = SCHEMES.get(scheme.lower())
        if known is None:
            raise KeyLoadError(f"{what} {reference}{_where(origin)}: unknown scheme {scheme}:; use {supported_forms()}")
        return known
    return None


def signer_from_pem(pem: bytes, *, password: bytes | None = None, origin: str = "signing key") -> Signer:
    return SigningKey.from_pem(pem, password=password, origin=origin)


def load_signer(reference: str, *, password: bytes | None = None, origin: str = "") -> Signer:
    """The signer a reference names (a PEM file path, ``env:VAR``, ``awskms:///...``).

    :param password: the password of an encrypted PEM key (ignored by remote signers).
    :param origin: the setting that named the reference, for messages.
    :raises KeyLoadError: an unknown scheme, a missing or unreadable key, a key that cannot sign.
    :raises SignerUnavailable: a remote signer (KMS) cannot be reached or refuses.
    """
    reference = reference.strip()
    if not reference:
        raise KeyLoadError(f"signing key reference{_where(origin)} is empty; use {supported_forms()}")
    scheme = _scheme_of(reference, origin, "signing key reference")
    if scheme is not None:
        return scheme.signer(reference, password, origin)
    return SigningKey.from_file(reference, password=password)


def load_public_key(reference: str, *, origin: str = "") -> VerifyingKey:
    """The public key of the key a reference names (a PEM file with a public or private key,
    ``env:VAR``, a KMS key), with ``origin`` naming the reference.

    :raises KeyLoadError: an unknown scheme, a missing key, a key that is not a signing key.
    :raises SignerUnavailable: a KMS holding the key cannot be reached or refuses.
    """
    reference = reference.strip()
    if not reference:
        raise KeyLoadError(f"key reference{_where(origin)} is empty; use {supported_forms()}")
    scheme = _scheme_of(reference, origin, "key reference")
    if scheme is not None:
        return scheme.public_key(reference, origin)
    return VerifyingKey.from_file(reference)
