"""DSSE v1 envelopes: PAE, sign/verify, tampering, trust, malformed input, interoperability."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_mlsecops.evidence.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, pae, sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import KEY_TYPES, SigningKey, VerifyingKey
from airflow_mlsecops.exceptions import SignatureInvalid, VerificationError

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1","subject":[]}'


@pytest.fixture(scope="module", params=KEY_TYPES)
def key(request: pytest.FixtureRequest) -> SigningKey:
    return SigningKey.generate(request.param)


def _trust(*keys: SigningKey) -> dict[str, VerifyingKey]:
    return {k.keyid: k.public_key for k in keys}


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", b"") == b"DSSEv1 3 t\xc3\xa9 0 "
    assert pae("", b"\x00\xff") == b"DSSEv1 0  2 \x00\xff"


def test_sign_verify_round_trip(key: SigningKey) -> None:
    envelope = sign_envelope(PAYLOAD, key)
    assert envelope.payload_type == INTOTO_PAYLOAD_TYPE
    assert envelope.signatures[0].keyid == key.keyid
    assert verify_envelope(envelope, _trust(key)) == key.public_key
    parsed = Envelope.from_json(envelope.to_json())
    assert parsed == envelope
    assert verify_envelope(parsed, _trust(key)).keyid == key.keyid


def test_wire_format() -> None:
    key = SigningKey.generate()
    raw = sign_envelope(PAYLOAD, key).to_json()
    data = json.loads(raw)
    assert set(data) == {"payloadType", "payload", "signatures"}
    assert data["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(data["payload"], validate=True) == PAYLOAD
    assert [set(s) for s in data["signatures"]] == [{"keyid", "sig"}]
    assert data["signatures"][0]["keyid"] == key.keyid


def test_custom_payload_type_round_trip() -> None:
    key = SigningKey.generate()
    envelope = sign_envelope(b"hello", key, payload_type="text/plain")
    assert verify_envelope(envelope, _trust(key), payload_type="text/plain") == key.public_key
    with pytest.raises(SignatureInvalid, match="unexpected payload type 'text/plain'"):
        verify_envelope(envelope, _trust(key))


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_flipping_any_payload_byte_breaks_the_signature(key: SigningKey) -> None:
    envelope = sign_envelope(PAYLOAD, key)
    trusted = _trust(key)
    for index in range(len(PAYLOAD)):
        tampered = replace(envelope, payload=_flip(PAYLOAD, index))
        with pytest.raises(SignatureInvalid):
            verify_envelope(tampered, trusted)


def test_flipping_any_signature_byte_breaks_the_signature(key: SigningKey) -> None:
    envelope = sign_envelope(PAYLOAD, key)
    trusted = _trust(key)
    sig = envelope.signatures[0].sig
    for index in range(len(sig)):
        for bit in (0x01, 0x80):
            bad = sig[:index] + bytes([sig[index] ^ bit]) + sig[index + 1 :]
            tampered = replace(envelope, signatures=(Signature(key.keyid, bad),))
            with pytest.raises(SignatureInvalid):
                verify_envelope(tampered, trusted)
    for bad in (b"", sig[:-1], sig + b"\x00"):
        with pytest.raises(SignatureInvalid):
            verify_envelope(replace(envelope, signatures=(Signature(key.keyid, bad),)), trusted)


def test_tampering_with_the_wire_form_is_detected(key: SigningKey) -> None:
    """Tamper with the wire form (as an attacker editing envelope.json would)."""
    data = json.loads(sign_envelope(PAYLOAD, key).to_json())
    data["payload"] = base64.b64encode(PAYLOAD.replace(b"[]", b"[1]")).decode()
    with pytest.raises(SignatureInvalid):
        verify_envelope(Envelope.from_json(json.dumps(data)), _trust(key))


def test_payload_type_is_bound_into_the_signature() -> None:
    key = SigningKey.generate()
    envelope = sign_envelope(PAYLOAD, key)
    relabelled = replace(envelope, payload_type="application/json")
    with pytest.raises(SignatureInvalid, match="unexpected payload type"):
        verify_envelope(relabelled, _trust(key))
    # Even a verifier that expects the new type refuses: PAE covers the type.
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_envelope(relabelled, _trust(key), payload_type="application/json")


def test_untrusted_signer_is_refused() -> None:
    signer, trusted = SigningKey.generate(), SigningKey.generate()
    envelope = sign_envelope(PAYLOAD, signer)
    with pytest.raises(SignatureInvalid, match="untrusted key") as info:
        verify_envelope(envelope, _trust(trusted))
    assert signer.keyid[:16] in str(info.value)


def test_untrusted_signer_claiming_a_trusted_keyid_is_refused() -> None:
    signer, trusted = SigningKey.generate(), SigningKey.generate()
    envelope = sign_envelope(PAYLOAD, signer)
    forged = replace(envelope, signatures=(Signature(trusted.keyid, envelope.signatures[0].sig),))
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_envelope(forged, _trust(trusted))


def test_no_trusted_keys_means_nothing_verifies() -> None:
    key = SigningKey.generate()
    with pytest.raises(SignatureInvalid, match="no trusted public keys"):
        verify_envelope(sign_envelope(PAYLOAD, key), {})


def test_envelope_without_signatures_is_refused() -> None:
    key = SigningKey.generate()
    envelope = replace(sign_envelope(PAYLOAD, key), signatures=())
    with pytest.raises(SignatureInvalid, match="no signature"):
        verify_envelope(envelope, _trust(key))
    with pytest.raises(SignatureInvalid, match="no signature"):
        verify_envelope(Envelope.from_dict({**envelope.to_dict(), "signatures": []}), _trust(key))


def test_a_trusted_signature_among_untrusted_ones_verifies() -> None:
    stranger, trusted = SigningKey.generate(), SigningKey.generate("ed25519")
    first = sign_envelope(PAYLOAD, stranger)
    second = sign_envelope(PAYLOAD, trusted)
    both = replace(first, signatures=first.signatures + second.signatures)
    assert verify_envelope(both, _trust(trusted)).keyid == trusted.keyid


def _valid_dict() -> dict[str, Any]:
    return sign_envelope(PAYLOAD, SigningKey.generate()).to_dict()


def _with(**changes: Any) -> dict[str, Any]:
    data = _valid_dict()
    for name, value in changes.items():
        if value is None:
            del data[name]
        else:
            data[name] = value
    return data


def _sig(**changes: Any) -> dict[str, Any]:
    data = _valid_dict()
    data["signatures"][0].update(changes)
    if changes.get("sig") is None:
        del data["signatures"][0]["sig"]
    return data


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe\x00{", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"envelope"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(json.dumps(_with(payloadType=None)), id="no-payload-type"),
        pytest.param(json.dumps(_with(payload=None)), id="no-payload"),
        pytest.param(json.dumps(_with(signatures=None)), id="no-signatures"),
        pytest.param(json.dumps(_with(signatures=5)), id="signatures-not-a-list"),
        pytest.param(json.dumps(_with(signatures="abc")), id="signatures-a-string"),
        pytest.param(json.dumps(_with(signatures=[None])), id="signature-null"),
        pytest.param(json.dumps(_sig(sig=None)), id="signature-without-sig"),
        pytest.param(json.dumps(_sig(sig="***not base64***")), id="sig-bad-base64"),
        pytest.param(json.dumps(_sig(sig=12)), id="sig-a-number"),
        pytest.param(json.dumps(_with(payload="eyJh!!")), id="payload-bad-base64"),
        pytest.param(json.dumps(_with(payload="eyJhIjo")), id="payload-bad-padding"),
        pytest.param(json.dumps(_with(payload="\u00e9t\u00e9")), id="payload-non-ascii"),
        pytest.param(json.dumps(_with(payload=["a"])), id="payload-a-list"),
    ],
)
def test_malformed_envelope_is_a_verification_error(raw: bytes | str) -> None:
    with pytest.raises(VerificationError):
        Envelope.from_json(raw)


def test_malformed_envelope_error_is_not_a_signature_error() -> None:
    with pytest.raises(VerificationError) as info:
        Envelope.from_json(json.dumps(_with(payload="***")))
    assert not isinstance(info.value, SignatureInvalid)
    assert "malformed DSSE envelope" in str(info.value)


def test_deeply_nested_json_is_a_verification_error() -> None:
    with pytest.raises(VerificationError):
        Envelope.from_json(b"[" * 100_000 + b"]" * 100_000)


def test_missing_keyid_is_tolerated_but_never_trusted() -> None:
    key = SigningKey.generate()
    data = sign_envelope(PAYLOAD, key).to_dict()
    del data["signatures"][0]["keyid"]
    envelope = Envelope.from_dict(data)
    assert envelope.signatures[0].keyid == ""
    with pytest.raises(SignatureInvalid, match="untrusted key"):
        verify_envelope(envelope, _trust(key))


def _independent_pae(payload_type: str, payload: bytes) -> bytes:
    """PAE written from the DSSE v1 protocol text, without the package's helper."""
    t = payload_type.encode("utf-8")
    return b" ".join([b"DSSEv1", str(len(t)).encode("ascii"), t, str(len(payload)).encode("ascii"), payload])


def test_our_envelope_verifies_with_an_independent_check() -> None:
    key = SigningKey.generate("ecdsa-p256")
    wire = json.loads(sign_envelope(PAYLOAD, key).to_json())
    public_pem = key.public_key.to_pem()

    public = serialization.load_pem_public_key(public_pem)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    payload = base64.standard_b64decode(wire["payload"])
    sig = base64.standard_b64decode(wire["signatures"][0]["sig"])
    assert sig[0] == 0x30  # a DER SEQUENCE (r, s), as Sigstore and OpenSSF model signing expect
    message = _independent_pae(wire["payloadType"], payload)
    public.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(sig, payload, ec.ECDSA(hashes.SHA256()))  # the bare payload is not what was signed
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert wire["signatures"][0]["keyid"] == hashlib.sha256(der).hexdigest()


def test_an_independently_made_envelope_verifies_with_ours() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    verifying = VerifyingKey.from_pem(public_pem)
    payload_type = "application/vnd.in-toto+json"
    sig = private.sign(_independent_pae(payload_type, PAYLOAD), ec.ECDSA(hashes.SHA256()))
    wire = {
        "payloadType": payload_type,
        "payload": base64.b64encode(PAYLOAD).decode(),
        "signatures": [{"keyid": verifying.keyid, "sig": base64.b64encode(sig).decode()}],
    }
    assert verify_envelope(Envelope.from_json(json.dumps(wire)), {verifying.keyid: verifying}) == verifying
