"""DSSE envelopes: the exact JSON form and the refusal listing several out-of-window signatures.

Written from the mutants of ``evidence/dsse.py`` that survived (tests/mutation/README.md):
``Envelope.to_json``'s ``sort_keys`` and the separator of the message naming every signature made
outside its key's validity window.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from airflow_mlsecops.evidence.dsse import Envelope, sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SignatureInvalid, SigningKey, VerifyingKey

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_envelope_json_is_sorted_indented_and_ends_with_a_newline() -> None:
    key = SigningKey.generate("ed25519")
    envelope = sign_envelope(b'{"b": 1}', key, payload_type="application/x-test")
    sig = base64.b64encode(envelope.signatures[0].sig).decode()
    assert (
        envelope.to_json()
        == (
            "{\n"
            f'  "payload": "{base64.b64encode(envelope.payload).decode()}",\n'
            '  "payloadType": "application/x-test",\n'
            '  "signatures": [\n'
            "    {\n"
            f'      "keyid": "{key.keyid}",\n'
            f'      "sig": "{sig}"\n'
            "    }\n"
            "  ]\n"
            "}\n"
        ).encode()
    )
    assert Envelope.from_json(envelope.to_json()) == envelope


def test_every_out_of_window_signature_is_named_in_the_refusal() -> None:
    first, second = SigningKey.generate("ed25519"), SigningKey.generate("ed25519")
    payload = json.dumps({"x": 1}).encode()
    one, two = sign_envelope(payload, first), sign_envelope(payload, second)
    envelope = replace(one, signatures=one.signatures + two.signatures)
    trusted = {
        first.keyid: VerifyingKey(first.public_key.key, not_after=T0),
        second.keyid: VerifyingKey(second.public_key.key, not_before=datetime(2026, 7, 1, tzinfo=timezone.utc)),
    }
    signed_at = datetime(2026, 6, 15, tzinfo=timezone.utc)
    with pytest.raises(SignatureInvalid) as raised:
        verify_envelope(envelope, trusted, signed_at=signed_at)
    assert str(raised.value) == (
        f"key {first.keyid[:16]} expired at 2026-06-01T00:00:00Z (rotated out): the signing time is 2026-06-15T00:00:00Z; "
        f"key {second.keyid[:16]} is not valid before 2026-07-01T00:00:00Z: the signing time is 2026-06-15T00:00:00Z"
    )
    # one key in its window is enough, whichever signature comes first
    trusted[second.keyid] = VerifyingKey(second.public_key.key, not_before=T0)
    assert verify_envelope(envelope, trusted, signed_at=signed_at).keyid == second.keyid
