"""Property-based tests (hypothesis) of the evidence format, where the input space has no useful edge:

* DSSE pre-authentication encoding: decodes back to exactly what was encoded, so two different
  (payload type, payload) pairs never share signed bytes;
* DSSE envelopes: JSON round trip, and a signature binds both payload and payload type;
* manifest digests: independent of the order files are listed or written in, and changed by any
  rename or content swap;
* the ledger: any sequence of appends and verifications leaves a valid chain, and any one edited row
  is found.

Examples are few and deterministic (``derandomize``): the same cases run in CI every time, with no
example database written, and no per-example deadline (SQLite and ECDSA timings vary on a shared
machine).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_mlsecops.evidence.digest import FileEntry, manifest_digest, sha256_path
from airflow_mlsecops.evidence.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, pae, sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.ledger import TABLE_NAME, EvidenceLedger
from airflow_mlsecops.exceptions import LedgerIntegrityError, SignatureInvalid, VerificationError

#: Registered here (tests/conftest.py is shared): deterministic, bounded, no example database.
settings.register_profile(
    "mlsecops-evidence",
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
DETERMINISTIC = settings.get_profile("mlsecops-evidence")


def decode_pae(encoded: bytes) -> tuple[str, bytes]:
    """The inverse of DSSE PAE, written from the specification (``DSSEv1 SP LEN(type) SP type SP
    LEN(body) SP body``), not from the code under test."""
    assert encoded.startswith(b"DSSEv1 ")
    rest = encoded[len(b"DSSEv1 ") :]
    type_len, _, rest = rest.partition(b" ")
    assert type_len.isdigit() and (type_len == b"0" or not type_len.startswith(b"0"))
    n = int(type_len)
    payload_type, rest = rest[:n], rest[n:]
    assert rest[:1] == b" "
    body_len, _, body = rest[1:].partition(b" ")
    assert body_len.isdigit() and (body_len == b"0" or not body_len.startswith(b"0"))
    assert len(body) == int(body_len), "the body length does not match: the encoding is ambiguous"
    return payload_type.decode("utf-8"), body


payload_types = st.text(max_size=40)
payloads = st.binary(max_size=300)


@DETERMINISTIC
@given(payload_type=payload_types, payload=payloads)
def test_pae_decodes_back_to_what_was_encoded(payload_type: str, payload: bytes) -> None:
    assert decode_pae(pae(payload_type, payload)) == (payload_type, payload)


@DETERMINISTIC
@given(a=st.tuples(payload_types, payloads), b=st.tuples(payload_types, payloads))
def test_pae_is_injective(a: tuple[str, bytes], b: tuple[str, bytes]) -> None:
    """Different (type, payload) pairs never produce the same signed bytes (a signature over one can
    never be presented for the other)."""
    assert (pae(*a) == pae(*b)) == (a == b)


@DETERMINISTIC
@given(payload=payloads, split=st.integers(min_value=0, max_value=300))
def test_pae_resists_moving_bytes_between_type_and_payload(payload: bytes, split: int) -> None:
    """The classic ambiguity of plain concatenation: ``type + payload`` split at another point."""
    joined = INTOTO_PAYLOAD_TYPE.encode() + payload
    split = min(split, len(joined))
    try:
        other_type = joined[:split].decode("utf-8")
    except UnicodeDecodeError:
        return
    if (other_type, joined[split:]) != (INTOTO_PAYLOAD_TYPE, payload):
        assert pae(other_type, joined[split:]) != pae(INTOTO_PAYLOAD_TYPE, payload)


keyids = st.text(max_size=70)
signatures = st.lists(st.builds(Signature, keyid=keyids, sig=st.binary(max_size=80)), max_size=3).map(tuple)


@DETERMINISTIC
@given(payload_type=payload_types, payload=payloads, sigs=signatures)
def test_envelope_json_round_trip(payload_type: str, payload: bytes, sigs: tuple[Signature, ...]) -> None:
    envelope = Envelope(payload_type=payload_type, payload=payload, signatures=sigs)
    assert Envelope.from_json(envelope.to_json()) == envelope
    assert Envelope.from_dict(envelope.to_dict()) == envelope


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@settings(DETERMINISTIC, max_examples=25)
@given(payload=payloads, flip=st.integers(min_value=0), other_type=payload_types)
def test_a_signature_binds_payload_and_payload_type(key: SigningKey, payload: bytes, flip: int, other_type: str) -> None:
    trusted = {key.keyid: key.public_key}
    envelope = sign_envelope(payload, key)
    assert verify_envelope(Envelope.from_json(envelope.to_json()), trusted).keyid == key.keyid
    if payload:
        index = flip % len(payload)
        changed = payload[:index] + bytes([payload[index] ^ 0x01]) + payload[index + 1 :]
        with pytest.raises(SignatureInvalid):
            verify_envelope(Envelope(envelope.payload_type, changed, envelope.signatures), trusted)
    if other_type != INTOTO_PAYLOAD_TYPE:
        # Claiming another type with the same signature: refused by type, and by the signature too.
        with pytest.raises(SignatureInvalid):
            verify_envelope(Envelope(other_type, payload, envelope.signatures), trusted, payload_type=other_type)


@DETERMINISTIC
@given(payload_type=payload_types, payload=payloads, sigs=signatures)
def test_envelope_json_is_canonical(payload_type: str, payload: bytes, sigs: tuple[Signature, ...]) -> None:
    """One envelope, one byte form (sorted keys, two-space indent, a final newline): the ledger and the
    uniqueness check compare envelope bytes, so the form must not drift."""
    envelope = Envelope(payload_type=payload_type, payload=payload, signatures=sigs)
    raw = envelope.to_json()
    assert raw == (json.dumps(json.loads(raw), indent=2, sort_keys=True) + "\n").encode("utf-8")
    assert raw.endswith(b"}\n") and b'\n  "payload": ' in raw


@DETERMINISTIC
@given(
    payload=payloads.filter(bool), sig=st.binary(min_size=1, max_size=40), junk=st.sampled_from(list("!*@# \n")), data=st.data()
)
def test_envelope_base64_is_strict(payload: bytes, sig: bytes, junk: str, data: st.DataObject) -> None:
    """A character outside the base64 alphabet in the payload or a signature is refused, never skipped:
    lax decoding would let many byte forms stand for one signed envelope."""
    document = Envelope("t", payload, (Signature("k", sig),)).to_dict()
    field = data.draw(st.sampled_from(["payload", "sig"]))
    text = document["payload"] if field == "payload" else document["signatures"][0]["sig"]
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    changed = text[:at] + junk + text[at:]
    if field == "payload":
        document["payload"] = changed
    else:
        document["signatures"][0]["sig"] = changed
    with pytest.raises(VerificationError, match=r"^malformed DSSE envelope: "):
        Envelope.from_dict(document)


def test_envelope_errors_name_the_problem_exactly(key: SigningKey) -> None:
    with pytest.raises(VerificationError) as not_json:
        Envelope.from_json(b"{")
    assert str(not_json.value) == "DSSE envelope is not valid JSON: JSONDecodeError"
    with pytest.raises(VerificationError) as not_object:
        Envelope.from_json(b"[]")
    assert str(not_object.value) == "DSSE envelope must be a JSON object"
    envelope = sign_envelope(b"{}", key)
    with pytest.raises(SignatureInvalid) as no_keys:
        verify_envelope(envelope, {})
    assert str(no_keys.value) == "no trusted public keys are configured, so no signature can be accepted"
    with pytest.raises(SignatureInvalid) as unsigned:
        verify_envelope(Envelope(envelope.payload_type, envelope.payload, ()), {key.keyid: key.public_key})
    assert str(unsigned.value) == "envelope carries no signature"
    other = SigningKey.generate()
    foreign = Envelope(envelope.payload_type, envelope.payload, (*envelope.signatures, Signature("", b"x")))
    with pytest.raises(SignatureInvalid) as untrusted:
        verify_envelope(foreign, {other.keyid: other.public_key})
    assert str(untrusted.value) == (f"signed by an untrusted key ({key.keyid[:16]}, <none>); trust its public key to accept it")


# ----------------------------------------------------------------------------- manifests
file_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..")
)
trees = st.dictionaries(
    st.lists(file_names, min_size=1, max_size=3).map("/".join), st.binary(max_size=64), min_size=1, max_size=6
).filter(
    # no path may be both a file and a folder of another path
    lambda t: not any(a != b and b.startswith(a + "/") for a, b in itertools.permutations(t, 2))
)


def _write_tree(root: Path, files: dict[str, bytes], order: list[str]) -> Path:
    root.mkdir()
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    return root


@DETERMINISTIC
@given(files=trees, data=st.data())
def test_manifest_digest_ignores_listing_and_writing_order(files: dict[str, bytes], data: st.DataObject) -> None:
    entries = [FileEntry(name, len(content), hashlib.sha256(content).hexdigest()) for name, content in files.items()]
    shuffled = data.draw(st.permutations(entries))
    assert manifest_digest(shuffled) == manifest_digest(entries)
    order_a, order_b = sorted(files), data.draw(st.permutations(sorted(files)))
    with tempfile.TemporaryDirectory() as tmp:
        first = sha256_path(_write_tree(Path(tmp, "a"), files, order_a))
        second = sha256_path(_write_tree(Path(tmp, "b"), files, list(order_b)))
    assert first == second == manifest_digest(entries)


@DETERMINISTIC
@given(files=trees, data=st.data())
def test_manifest_digest_changes_on_any_rename(files: dict[str, bytes], data: st.DataObject) -> None:
    old = data.draw(st.sampled_from(sorted(files)))
    new = data.draw(file_names.filter(lambda n: n not in files and not any(k.startswith(n + "/") for k in files)))
    renamed = {new if name == old else name: content for name, content in files.items()}
    with tempfile.TemporaryDirectory() as tmp:
        before = sha256_path(_write_tree(Path(tmp, "a"), files, sorted(files)))
        after = sha256_path(_write_tree(Path(tmp, "b"), renamed, sorted(renamed)))
    assert before != after


@DETERMINISTIC
@given(files=trees.filter(lambda t: len(set(t.values())) >= 2), data=st.data())
def test_manifest_digest_changes_when_contents_swap_names(files: dict[str, bytes], data: st.DataObject) -> None:
    a, b = data.draw(st.lists(st.sampled_from(sorted(files)), min_size=2, max_size=2, unique=True))
    if files[a] == files[b]:
        return
    swapped = {**files, a: files[b], b: files[a]}
    entries = lambda tree: [FileEntry(n, len(c), hashlib.sha256(c).hexdigest()) for n, c in tree.items()]  # noqa: E731
    assert manifest_digest(entries(files)) != manifest_digest(entries(swapped))


# ----------------------------------------------------------------------------- ledger
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=40), st.sampled_from(["run-a", "run-b", None])),
        st.tuples(st.just("verify"), st.none(), st.none()),
    ),
    min_size=1,
    max_size=12,
)


@settings(DETERMINISTIC, max_examples=15)
@given(ops=operations, data=st.data())
def test_ledger_chain_under_any_append_and_verify_sequence(ops: list, data: st.DataObject) -> None:
    """A fresh SQLite ledger per example: every verification in between sees exactly the rows
    appended so far, linked in order; then editing any one row's envelope (triggers dropped, as an
    attacker with DDL rights would) is named by the chain walk."""
    with tempfile.TemporaryDirectory() as tmp:
        ledger = EvidenceLedger(f"sqlite:///{Path(tmp, 'ledger.db')}")
        try:
            appended: list[str] = []
            for op, body, mlflow_run in ops:
                if op == "append":
                    envelope = f'{{"payload": "{body.hex()}"}}'
                    entry = ledger.append(envelope_json=envelope, gate="g", mlflow_run_id=mlflow_run)
                    assert entry.seq == len(appended) + 1
                    appended.append(envelope)
                else:
                    assert ledger.verify_chain().entries == len(appended)
            report = ledger.verify_chain()
            assert report.entries == len(appended) == ledger.head_seq()
            assert [e.envelope for e in ledger.entries()] == appended
            assert all(e.prev_hash == p.entry_hash for p, e in itertools.pairwise(ledger.entries()))
            if not appended:
                return
            seq = data.draw(st.integers(min_value=1, max_value=len(appended)))
            with ledger.engine.begin() as conn:
                conn.execute(sa.text(f"DROP TRIGGER {TABLE_NAME}_no_update"))
                conn.execute(sa.text(f"UPDATE {TABLE_NAME} SET envelope = envelope || ' ' WHERE seq = :s"), {"s": seq})
            with pytest.raises(LedgerIntegrityError, match=f"seq={seq}"):
                ledger.verify_chain()
        finally:
            ledger.dispose()
