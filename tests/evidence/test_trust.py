"""Trust anchors: trust files (windows, revocations, strict validation), key validity at a signing
time, and its use by every verifier that does not need a ledger (DSSE, provenance, model signing)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.digest import file_manifest
from airflow_mlsecops.evidence.dsse import sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningKey, SigningTime, VerifyingKey, load_trusted_keys
from airflow_mlsecops.evidence.model_signing import sign_model, verify_model
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.evidence.slsa import build_provenance
from airflow_mlsecops.evidence.trust import (
    ledger_signing_time,
    load_trust_anchors,
    load_trust_file,
    trust_file_schema,
)
from airflow_mlsecops.exceptions import KeyLoadError, SignatureInvalid
from airflow_mlsecops.gates.provenance import attest_artifacts, verify_artifacts
from tests.evidence.model_signing_fixtures import make_model

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1","subject":[]}'


def _at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _pub(tmp_path: Path, name: str, key: SigningKey | None = None) -> SigningKey:
    key = key or SigningKey.generate()
    path = tmp_path / "keys" / f"{name}.pub.pem"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(key.public_key.to_pem())
    return key


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The brief's example: an old key rotated out, a new one from env:, a revoked one."""
    old, new, leaked = _pub(tmp_path, "2025"), SigningKey.generate(), _pub(tmp_path, "leaked")
    monkeypatch.setenv("MLSECOPS_TEST_NEW_KEY", new.public_key.to_pem().decode())
    trust = _write(
        tmp_path / "trust.yaml",
        """
version: 1
keys:
  - key: keys/2025.pub.pem        # relative to this file
    not_before: 2025-01-01T00:00:00Z
    not_after: 2026-06-30T00:00:00Z
  - key: env:MLSECOPS_TEST_NEW_KEY
    not_before: 2026-06-01T00:00:00+02:00
  - key: keys/leaked.pub.pem
    revoked_at: 2026-03-02T10:00:00Z
    reason: laptop stolen
""",
    )
    return {"old": old, "new": new, "leaked": leaked, "trust": trust}


# ----------------------------------------------------------------------------- loading trust files
def test_trust_file_gives_each_key_its_window_revocation_and_origin(rotation: dict, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path.parent)  # relative key paths are relative to the trust file, not the working directory
    keys = load_trust_anchors([str(rotation["trust"])], source="MLSECOPS_TRUSTED_KEYS", explicit=True)
    old, new, leaked = (keys[rotation[n].keyid] for n in ("old", "new", "leaked"))
    assert old.origin == f"keys/2025.pub.pem in {rotation['trust']} (MLSECOPS_TRUSTED_KEYS)"
    assert (old.not_before, old.not_after, old.revoked_at) == (
        datetime(2025, 1, 1, tzinfo=timezone.utc),
        datetime(2026, 6, 30, tzinfo=timezone.utc),
        None,
    )
    assert old.validity == "from 2025-01-01T00:00:00Z until 2026-06-30T00:00:00Z"
    assert new.origin == f"env:MLSECOPS_TEST_NEW_KEY in {rotation['trust']} (MLSECOPS_TRUSTED_KEYS)"
    assert new.validity == "from 2026-05-31T22:00:00Z" and new.not_after is None
    assert leaked.revoked_at == datetime(2026, 3, 2, 10, tzinfo=timezone.utc)
    assert leaked.revocation_reason == "laptop stolen"
    assert leaked.validity == "revoked at 2026-03-02T10:00:00Z (laptop stolen)"


def test_json_trust_file_reads_the_same(tmp_path: Path) -> None:
    key = _pub(tmp_path, "a")
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"version": 1, "keys": [{"key": "keys/a.pub.pem", "not_after": "2026-06-30T00:00:00Z"}]}))
    loaded = load_trust_file(path)
    assert loaded[key.keyid].not_after == datetime(2026, 6, 30, tzinfo=timezone.utc)


def test_settings_load_a_trust_file_with_plain_keys_beside_it(rotation: dict, tmp_path: Path, monkeypatch) -> None:
    plain = SigningKey.generate()
    (tmp_path / "plain.pem").write_bytes(plain.public_key.to_pem())
    import os

    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", os.pathsep.join([str(rotation["trust"]), str(tmp_path / "plain.pem")]))
    keys = Settings.from_env().load_trusted_keys()
    assert set(keys) == {rotation[n].keyid for n in ("old", "new", "leaked")} | {plain.keyid}
    assert keys[plain.keyid].validity == "always" and not keys[plain.keyid].time_limited
    assert keys[plain.keyid].origin == f"{tmp_path / 'plain.pem'} (MLSECOPS_TRUSTED_KEYS)"
    assert keys[rotation["old"].keyid].origin.endswith("(MLSECOPS_TRUSTED_KEYS)")


def test_key_file_list_accepts_a_trust_file(rotation: dict) -> None:
    """``load_trusted_keys`` (operators' and the CLI's ``--public-key``) reads trust files too, windows included."""
    keys = load_trusted_keys([rotation["trust"]])
    assert keys[rotation["leaked"].keyid].revoked_at is not None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "version: 1\nkeys:\n  - key: keys/a.pub.pem\n    expires: 2026-01-01T00:00:00Z\n",
            r"keys\[0\] \(keys/a.pub.pem\): unknown field 'expires'",
        ),
        ("version: 1\nowner: me\nkeys:\n  - key: keys/a.pub.pem\n", r"the top level: unknown field 'owner'"),
        (
            "version: 1\nkeys:\n  - key: keys/a.pub.pem\n    not_after: 2026-06-30T00:00:00\n",
            r"keys\[0\] \(keys/a.pub.pem\).not_after: '2026-06-30T00:00:00' has no time zone",
        ),
        (
            "version: 1\nkeys:\n  - key: keys/a.pub.pem\n    not_after: 2026-06-30\n",
            r"not_after: '2026-06-30' is not a time like",
        ),
        (
            "version: 1\nkeys:\n"
            "  - key: keys/a.pub.pem\n    not_before: 2026-06-30T00:00:00Z\n    not_after: 2026-06-30T00:00:00Z\n",
            r"keys\[0\] \(keys/a.pub.pem\): not_after 2026-06-30T00:00:00Z is not after not_before",
        ),
        ("version: 2\nkeys:\n  - key: keys/a.pub.pem\n", r"version: must be 1"),
        ("version: 1\nkeys: []\n", r"keys: lists no key"),
        ("keys:\n  - key: keys/a.pub.pem\n", r"missing 'version'"),
        (
            "version: 1\nkeys:\n  - key: keys/a.pub.pem\n    revoked_at: 2026-01-01T00:00:00Z\n",
            r"'reason' is required with 'revoked_at'",
        ),
        ("version: 1\nkeys:\n  - key: keys/a.pub.pem\n    reason: why\n", r"'revoked_at' is required with 'reason'"),
        (
            "version: 1\nkeys:\n  - key: keys/missing.pub.pem\n",
            r"keys\[0\] \(keys/missing.pub.pem\): key file .*missing.pub.pem does not exist",
        ),
        ("version: 1\nkeys:\n  - key: keys\n", r"keys\[0\] \(keys\): .*is a directory"),
        (
            "version: 1\nkeys:\n"
            "  - key: keys/a.pub.pem\n    not_after: 2026-06-30T00:00:00Z\n    not_after: 2027-06-30T00:00:00Z\n",
            r"field 'not_after' is given twice",
        ),
        ("version: 1\nkeys: [\n", r"is not valid YAML"),
        (
            "version: 1\nkeys:\n  - key: env:MLSECOPS_TEST_UNSET_VARIABLE\n",
            r"keys\[0\] \(env:MLSECOPS_TEST_UNSET_VARIABLE\): .*is not set",
        ),
        ("version: 1\nkeys:\n  - key: nope:thing\n", r"keys\[0\] \(nope:thing\): unknown scheme nope:"),
    ],
)
def test_invalid_trust_file_is_refused_naming_file_and_entry(tmp_path: Path, body: str, expected: str) -> None:
    _pub(tmp_path, "a")
    path = _write(tmp_path / "trust.yaml", body)
    with pytest.raises(KeyLoadError, match=expected) as caught:
        load_trust_anchors([str(path)], source="MLSECOPS_TRUSTED_KEYS", explicit=True)
    assert f"trust file {path}" in str(caught.value)


def test_json_trust_file_with_a_field_twice_is_refused(tmp_path: Path) -> None:
    _pub(tmp_path, "a")
    path = _write(tmp_path / "trust.json", '{"version": 1, "version": 1, "keys": [{"key": "keys/a.pub.pem"}]}')
    with pytest.raises(KeyLoadError, match="field 'version' is given twice"):
        load_trust_file(path)


def test_one_key_twice_with_conflicting_windows_is_refused(tmp_path: Path) -> None:
    _pub(tmp_path, "a")
    (tmp_path / "copy.pem").write_bytes((tmp_path / "keys/a.pub.pem").read_bytes())
    path = _write(
        tmp_path / "trust.yaml",
        "version: 1\nkeys:\n  - key: keys/a.pub.pem\n    not_after: 2026-06-30T00:00:00Z\n"
        "  - key: copy.pem\n    revoked_at: 2026-03-02T10:00:00Z\n    reason: stolen\n",
    )
    with pytest.raises(KeyLoadError, match=r"keys\[1\] \(copy.pem\): the same key as keys\[0\] \(keys/a.pub.pem\)"):
        load_trust_file(path)


def test_one_key_twice_with_the_same_window_is_one_key(tmp_path: Path) -> None:
    key = _pub(tmp_path, "a")
    path = _write(tmp_path / "trust.yaml", "version: 1\nkeys:\n  - key: keys/a.pub.pem\n  - key: keys/a.pub.pem\n")
    assert list(load_trust_file(path)) == [key.keyid]


def test_a_key_trusted_plainly_and_revoked_in_a_trust_file_is_refused(tmp_path: Path) -> None:
    """A revocation must never be lost to the same key listed elsewhere without it."""
    _pub(tmp_path, "a")
    path = _write(
        tmp_path / "trust.yaml",
        "version: 1\nkeys:\n  - key: keys/a.pub.pem\n    revoked_at: 2026-03-02T10:00:00Z\n    reason: x\n",
    )
    with pytest.raises(KeyLoadError, match="trusted twice with different validity"):
        load_trust_anchors([str(tmp_path / "keys"), str(path)], source="MLSECOPS_TRUSTED_KEYS")


def test_schema_is_strict_json_schema() -> None:
    from jsonschema import Draft202012Validator

    schema = trust_file_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False and schema["$defs"]["key"]["additionalProperties"] is False


def test_window_is_not_part_of_the_key_identity(rotation: dict) -> None:
    plain = rotation["old"].public_key
    windowed = replace(plain, not_after=T0, origin="elsewhere")
    assert windowed == plain and windowed.keyid == plain.keyid


def test_key_refuses_a_naive_window() -> None:
    with pytest.raises(KeyLoadError, match="has no time zone"):
        replace(SigningKey.generate().public_key, not_after=datetime(2026, 1, 1))


# ----------------------------------------------------------------------------- validity at a signing time
@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate()


def test_window_bounds_are_half_open(signer: SigningKey) -> None:
    key = replace(signer.public_key, not_before=_at(0), not_after=_at(10))
    key.check_signing_time(_at(0))
    key.check_signing_time(_at(10) - timedelta(microseconds=1))
    with pytest.raises(SignatureInvalid, match=rf"key {signer.keyid[:16]} expired at 2026-01-11T00:00:00Z \(rotated out\)"):
        key.check_signing_time(_at(10))
    with pytest.raises(SignatureInvalid, match=rf"key {signer.keyid[:16]} is not valid before 2026-01-01T00:00:00Z"):
        key.check_signing_time(_at(-1))


def test_unknown_signing_time_is_refused_only_by_a_time_limited_key(signer: SigningKey) -> None:
    signer.public_key.check_signing_time(None)  # no window: as before
    for limited in (
        replace(signer.public_key, not_after=_at(10)),
        replace(signer.public_key, revoked_at=_at(10), revocation_reason="x"),
    ):
        with pytest.raises(SignatureInvalid, match="the signing time is unknown"):
            limited.check_signing_time(None)


def test_revoked_key_accepts_only_independent_times_before_the_revocation(signer: SigningKey) -> None:
    key = replace(signer.public_key, revoked_at=_at(5), revocation_reason="laptop stolen")
    key.check_signing_time(SigningTime(_at(4), "the ledger time of seq 3"), now=_at(6))
    with pytest.raises(SignatureInvalid, match=r"revoked at 2026-01-06T00:00:00Z \(laptop stolen\): the ledger time of seq 9"):
        key.check_signing_time(SigningTime(_at(5), "the ledger time of seq 9"), now=_at(6))
    stated = SigningTime(_at(4), "the time the attestation states", independent=False)
    with pytest.raises(SignatureInvalid, match="cannot show the signature was made before the revocation"):
        key.check_signing_time(stated, now=_at(6))
    key.check_signing_time(stated, now=_at(4.5))  # the revocation is still to come: the stated time is believed


def test_stated_time_in_the_future_is_refused(signer: SigningKey) -> None:
    key = replace(signer.public_key, not_before=_at(0))
    with pytest.raises(SignatureInvalid, match="in the future"):
        key.check_signing_time(SigningTime(_at(3), "the stated time", independent=False), now=_at(2))
    key.check_signing_time(SigningTime(_at(2) + timedelta(minutes=4), "the stated time", independent=False), now=_at(2))


def test_naive_signing_time_is_refused(signer: SigningKey) -> None:
    with pytest.raises(SignatureInvalid, match="no time zone"):
        replace(signer.public_key, not_after=_at(1)).check_signing_time(datetime(2026, 1, 1))


@given(
    not_before=st.one_of(st.none(), st.integers(-1000, 1000)),
    length=st.integers(1, 1000),
    bounded_after=st.booleans(),
    revoked=st.one_of(st.none(), st.integers(-1000, 2000)),
    signed=st.integers(-2000, 2000),
)
def test_signing_time_verifies_exactly_inside_the_window(
    not_before: int | None, length: int, bounded_after: bool, revoked: int | None, signed: int
) -> None:
    """Property: an independent signing time is accepted iff not_before <= t < not_after and t < revoked_at."""
    start = _at(not_before / 24) if not_before is not None else None
    end = (start or T0) + timedelta(hours=length) if bounded_after else None
    revoked_at = _at(revoked / 24) if revoked is not None else None
    key = VerifyingKey(
        _KEY.public_key.key, not_before=start, not_after=end, revoked_at=revoked_at, revocation_reason="r" if revoked_at else ""
    )
    moment = _at(signed / 24)
    inside = (start is None or moment >= start) and (end is None or moment < end) and (revoked_at is None or moment < revoked_at)
    try:
        key.check_signing_time(moment, now=_at(100))
    except SignatureInvalid:
        assert not inside
    else:
        assert inside


_KEY = SigningKey.generate()


# ----------------------------------------------------------------------------- DSSE with a signing time
def test_verify_envelope_applies_the_window(signer: SigningKey) -> None:
    envelope = sign_envelope(PAYLOAD, signer)
    rotated = {signer.keyid: replace(signer.public_key, not_after=_at(10))}
    assert verify_envelope(envelope, rotated, signed_at=_at(9)).keyid == signer.keyid
    with pytest.raises(SignatureInvalid, match=rf"key {signer.keyid[:16]} expired at"):
        verify_envelope(envelope, rotated, signed_at=_at(11))
    with pytest.raises(SignatureInvalid, match="signing time is unknown"):
        verify_envelope(envelope, rotated)
    assert verify_envelope(envelope, {signer.keyid: signer.public_key}).keyid == signer.keyid  # no window: as before


def test_a_valid_second_signature_wins_over_an_expired_first(signer: SigningKey) -> None:
    other = SigningKey.generate()
    first = sign_envelope(PAYLOAD, signer)
    second = sign_envelope(PAYLOAD, other)
    both = replace(first, signatures=first.signatures + second.signatures)
    trusted = {
        signer.keyid: replace(signer.public_key, not_after=_at(1)),
        other.keyid: replace(other.public_key, not_before=_at(1)),
    }
    assert verify_envelope(both, trusted, signed_at=_at(2)).keyid == other.keyid
    assert verify_envelope(both, trusted, signed_at=_at(0)).keyid == signer.keyid
    with pytest.raises(SignatureInvalid, match="expired at"):
        verify_envelope(replace(first, signatures=first.signatures), trusted, signed_at=_at(2))


def test_ledger_signing_time_reads_the_row_time() -> None:
    signed = ledger_signing_time("2026-03-02T09:59:59.123456Z", 7)
    assert signed is not None and signed.independent
    assert signed.at == datetime(2026, 3, 2, 9, 59, 59, 123456, tzinfo=timezone.utc)
    assert signed.source == "the ledger time of seq 7"
    assert ledger_signing_time("not a time", 7) is None
    assert ledger_signing_time("2026-03-02T09:59:59", 7) is None  # no zone: unknown, so a windowed key refuses


# ----------------------------------------------------------------------------- dataset provenance
def _attestation(tmp_path: Path, signer: SigningKey, *, finished: datetime | None) -> tuple[Path, bytes]:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    payload = build_provenance(
        {str(data): file_manifest(data)}, artifact_is_file={str(data): True}, builder_id="test", finished_on=finished
    )
    return data, sign_envelope(payload, signer).to_json()


def test_provenance_uses_the_stated_time_for_a_rotated_key(tmp_path: Path, signer: SigningKey) -> None:
    now = datetime.now(timezone.utc)
    data, attestation = _attestation(tmp_path, signer, finished=now - timedelta(days=2))
    rotated = {signer.keyid: replace(signer.public_key, not_after=now - timedelta(days=1))}
    assert verify_artifacts([str(data)], attestation, rotated).result.verdict is Verdict.PASSED
    expired = {signer.keyid: replace(signer.public_key, not_after=now - timedelta(days=3))}
    outcome = verify_artifacts([str(data)], attestation, expired)
    assert outcome.result.verdict is Verdict.FAILED
    assert "expired at" in outcome.result.summary and "finishedOn" in outcome.result.summary


def test_provenance_of_a_revoked_key_needs_an_independent_time(tmp_path: Path, signer: SigningKey) -> None:
    now = datetime.now(timezone.utc)
    data, attestation = _attestation(tmp_path, signer, finished=now - timedelta(days=2))
    revoked = {signer.keyid: replace(signer.public_key, revoked_at=now - timedelta(days=1), revocation_reason="stolen")}
    outcome = verify_artifacts([str(data)], attestation, revoked)
    assert outcome.result.verdict is Verdict.FAILED
    assert "cannot show the signature was made before the revocation" in outcome.result.summary
    passed = verify_artifacts([str(data)], attestation, revoked, signed_at=now - timedelta(days=2))
    assert passed.result.verdict is Verdict.PASSED
    late = verify_artifacts([str(data)], attestation, revoked, signed_at=now)
    assert late.result.verdict is Verdict.FAILED and "revoked at" in late.result.summary


def test_provenance_without_a_stated_time_is_refused_by_a_windowed_key(tmp_path: Path, signer: SigningKey) -> None:
    data, attestation = _attestation(tmp_path, signer, finished=None)
    windowed = {signer.keyid: replace(signer.public_key, not_before=_at(-400))}
    outcome = verify_artifacts([str(data)], attestation, windowed)
    assert outcome.result.verdict is Verdict.FAILED and "signing time is unknown" in outcome.result.summary
    assert verify_artifacts([str(data)], attestation, {signer.keyid: signer.public_key}).result.verdict is Verdict.PASSED


def test_provenance_made_by_the_gate_verifies_inside_the_window(tmp_path: Path, signer: SigningKey) -> None:
    """The sign gate states finishedOn; a key rotated in before it verifies, one rotated in after does not."""
    data = tmp_path / "x.csv"
    data.write_text("x\n1\n")
    outcome = attest_artifacts([str(data)])
    resigned = sign_envelope(outcome.statements["provenance.slsa.dsse.json"], signer).to_json()
    now = datetime.now(timezone.utc)
    ok = {signer.keyid: replace(signer.public_key, not_before=now - timedelta(hours=1))}
    assert verify_artifacts([str(data)], resigned, ok).result.verdict is Verdict.PASSED
    later = {signer.keyid: replace(signer.public_key, not_before=now + timedelta(hours=1))}
    assert "is not valid before" in verify_artifacts([str(data)], resigned, later).result.summary


# ----------------------------------------------------------------------------- model signing (no signing time in the bundle)
def test_model_signature_needs_the_key_valid_now(tmp_path: Path) -> None:
    key = SigningKey.generate()
    model = make_model(tmp_path / "model")
    bundle = sign_model(model, key)
    now = datetime.now(timezone.utc)
    current = {key.keyid: replace(key.public_key, not_before=now - timedelta(days=1), not_after=now + timedelta(days=1))}
    assert verify_model(model, bundle, current).keyid == key.keyid
    rotated = {key.keyid: replace(key.public_key, not_after=now - timedelta(minutes=1))}
    with pytest.raises(
        SignatureInvalid, match=r"expired at .* the time of verification \(a model signature carries no signing time\)"
    ):
        verify_model(model, bundle, rotated)
    # ... unless the caller knows when it was signed from a record the signer cannot write alone
    assert verify_model(model, bundle, rotated, signed_at=now - timedelta(days=1)).keyid == key.keyid
    revoked = {key.keyid: replace(key.public_key, revoked_at=now - timedelta(minutes=1), revocation_reason="stolen")}
    with pytest.raises(SignatureInvalid, match=r"revoked at .*\(stolen\)"):
        verify_model(model, bundle, revoked)
    not_yet = {key.keyid: replace(key.public_key, not_before=now + timedelta(days=1))}
    with pytest.raises(SignatureInvalid, match="is not valid before"):
        verify_model(model, bundle, not_yet)
