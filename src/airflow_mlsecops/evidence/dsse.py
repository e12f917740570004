"""DSSE (Dead Simple Signing Envelope) v1: sign and verify a payload with its type bound in.

The wire format is the one in-toto, Sigstore and OpenSSF model signing use::

    {"payloadType": "...", "payload": "<base64>", "signatures": [{"keyid": "...", "sig": "<base64>"}]}

The signature covers PAE(payloadType, payload), never the bare payload, so a payload cannot be
replayed under another type. :func:`verify_envelope` returns the payload only if a signature from a
trusted key verifies, and raises otherwise: there is no boolean to forget to check.

A trusted key with a validity window or a revocation (from a trust file) also needs the signing
time: ``verify_envelope(envelope, keys, signed_at=...)`` accepts its signature only when that time
lies inside the key's window and before its revocation; without a time such a key refuses.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_mlsecops.evidence.keys import SigningTime, VerifyingKey
from airflow_mlsecops.evidence.signers import Signer
from airflow_mlsecops.exceptions import SignatureInvalid, VerificationError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in self.signatures],
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Envelope:
        try:
            sigs = tuple(
                Signature(keyid=str(s.get("keyid", "")), sig=base64.b64decode(s["sig"], validate=True))
                for s in data["signatures"]
            )
            return cls(
                payload_type=str(data["payloadType"]),
                payload=base64.b64decode(data["payload"], validate=True),
                signatures=sigs,
            )
        except (KeyError, TypeError, AttributeError, binascii.Error, ValueError) as exc:
            raise VerificationError(f"malformed DSSE envelope: {exc}") from exc

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise VerificationError(f"DSSE envelope is not valid JSON: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise VerificationError("DSSE envelope must be a JSON object")
        return cls.from_dict(data)


def sign_envelope(payload: bytes, key: Signer, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    signature = Signature(keyid=key.keyid, sig=key.sign(pae(payload_type, payload)))
    return Envelope(payload_type=payload_type, payload=payload, signatures=(signature,))


def verify_envelope(
    envelope: Envelope,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
    signed_at: SigningTime | datetime | None = None,
) -> VerifyingKey:
    """Return the trusted key whose signature verifies; raise :class:`SignatureInvalid` if none does.

    A signature whose keyid names no trusted key is ignored, never trusted; a keyid that names a
    trusted key must verify with exactly that key. A key with a validity window or a revocation
    counts only if ``signed_at`` lies inside its window and before its revocation
    (:meth:`VerifyingKey.check_signing_time`); an unknown ``signed_at`` is a refusal for such a key.
    Keys without window or revocation ignore ``signed_at``.

    :param signed_at: when the envelope was signed, as the verifier knows it (a ledger row's time);
        a bare ``datetime`` counts as independent of the signer.
    """
    if envelope.payload_type != payload_type:
        raise SignatureInvalid(f"unexpected payload type {envelope.payload_type!r}")
    if not trusted_keys:
        raise SignatureInvalid("no trusted public keys are configured, so no signature can be accepted")
    if not envelope.signatures:
        raise SignatureInvalid("envelope carries no signature")
    message = pae(envelope.payload_type, envelope.payload)
    untrusted: list[str] = []
    out_of_window: list[str] = []
    for signature in envelope.signatures:
        key = trusted_keys.get(signature.keyid)
        if key is None:
            untrusted.append(signature.keyid[:16] or "<none>")
            continue
        key.verify(signature.sig, message)  # raises SignatureInvalid
        try:
            key.check_signing_time(signed_at)
        except SignatureInvalid as exc:
            out_of_window.append(str(exc))  # another signature may still come from a valid key
            continue
        return key
    if out_of_window:
        raise SignatureInvalid("; ".join(out_of_window))
    raise SignatureInvalid(f"signed by an untrusted key ({', '.join(untrusted)}); trust its public key to accept it")
