"""Exact tests for evidence/keys.py written from surviving mutants (tests/mutation/README.md).

Each test pins one decision or message a mutant changed without any other test noticing: a key
listed twice with different validity (a revocation must never be lost), a missing trust file, the
boundaries of a key's window, and the exact refusal messages.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_mlsecops.evidence.keys import (
    CLOCK_SKEW,
    SigningKey,
    SigningTime,
    VerifyingKey,
    _check_public_type,
    format_time,
    load_trusted_keys,
    merge_key,
)
from airflow_mlsecops.exceptions import KeyLoadError, SignatureInvalid

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _pem(path: Path, key: SigningKey) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.public_key.to_pem())
    return path


def _revoking_trust_file(path: Path, pem: str) -> Path:
    path.write_text(f"version: 1\nkeys:\n  - key: {pem}\n    revoked_at: 2026-03-02T10:00:00Z\n    reason: stolen\n")
    return path


# ------------------------------------------------------------------------------ load_trusted_keys
def test_a_key_revoked_in_a_trust_file_and_trusted_plainly_elsewhere_is_refused(tmp_path: Path) -> None:
    key = SigningKey.generate()
    plain = _pem(tmp_path / "keys" / "a.pub.pem", key)
    trust = _revoking_trust_file(tmp_path / "trust.yaml", "keys/a.pub.pem")
    for order in ([trust, plain], [plain, trust]):
        with pytest.raises(KeyLoadError) as caught:
            load_trusted_keys(order)
        first, second = (
            (str(plain), f"keys/a.pub.pem in {trust}") if order[0] == plain else (f"keys/a.pub.pem in {trust}", str(plain))
        )
        first_validity, second_validity = (
            ("always", "revoked at 2026-03-02T10:00:00Z (stolen)")
            if order[0] == plain
            else ("revoked at 2026-03-02T10:00:00Z (stolen)", "always")
        )
        assert str(caught.value) == (
            f"key {key.keyid[:16]} is trusted twice with different validity: {first_validity} ({first}) and "
            f"{second_validity} ({second}); list it once, with its window and revocation in one entry"
        )


def test_the_same_key_in_two_trust_files_with_different_validity_is_refused(tmp_path: Path) -> None:
    key = SigningKey.generate()
    _pem(tmp_path / "a.pub.pem", key)
    one = _revoking_trust_file(tmp_path / "one.yaml", "a.pub.pem")
    two = tmp_path / "two.yaml"
    two.write_text("version: 1\nkeys:\n  - key: a.pub.pem\n")
    with pytest.raises(KeyLoadError, match="is trusted twice with different validity"):
        load_trusted_keys([one, two])


def test_the_same_plain_key_in_two_directories_is_refused_once_one_differs(tmp_path: Path) -> None:
    """Two plain PEM files of one key merge (same validity); the first listing wins."""
    key = SigningKey.generate()
    first = _pem(tmp_path / "a" / "k.pub.pem", key)
    _pem(tmp_path / "b" / "k.pub.pem", key)
    keys = load_trusted_keys([tmp_path / "a", tmp_path / "b"])
    assert list(keys) == [key.keyid] and keys[key.keyid].origin == str(first)


def test_a_trust_file_does_not_end_the_list(tmp_path: Path) -> None:
    listed, plain = SigningKey.generate(), SigningKey.generate()
    _pem(tmp_path / "a.pub.pem", listed)
    trust = tmp_path / "trust.yaml"
    trust.write_text("version: 1\nkeys:\n  - key: a.pub.pem\n")
    after = _pem(tmp_path / "dir" / "b.pub.pem", plain)
    assert set(load_trusted_keys([trust, after.parent])) == {listed.keyid, plain.keyid}


def test_a_missing_trust_file_is_an_error_not_an_empty_trust(tmp_path: Path) -> None:
    missing = tmp_path / "trust.yaml"
    with pytest.raises(KeyLoadError) as caught:
        load_trusted_keys([missing])
    assert str(caught.value) == f"trusted key path {missing} does not exist (from the caller)"


# ------------------------------------------------------------------------------ merge_key
def test_merge_key_names_unnamed_origins_as_the_caller() -> None:
    key = SigningKey.generate().public_key.key
    plain = VerifyingKey(key)
    revoked = VerifyingKey(key, revoked_at=T0, revocation_reason="stolen")
    with pytest.raises(KeyLoadError) as caught:
        merge_key(plain, revoked)
    keyid = plain.keyid
    assert str(caught.value) == (
        f"key {keyid[:16]} is trusted twice with different validity: always (given by the caller) and "
        "revoked at 2026-01-01T00:00:00Z (stolen) (given by the caller); "
        "list it once, with its window and revocation in one entry"
    )
    named = VerifyingKey(key, origin="x.pem")
    with pytest.raises(KeyLoadError) as caught:
        merge_key(named, VerifyingKey(key, origin="y.pem", not_before=T0))
    assert f"always (x.pem) and from {format_time(T0)} (y.pem);" in str(caught.value)


# ------------------------------------------------------------------------------ VerifyingKey window
def test_a_window_must_be_non_empty_and_its_message_is_exact() -> None:
    key = SigningKey.generate().public_key.key
    with pytest.raises(KeyLoadError) as caught:
        VerifyingKey(key, not_before=T0, not_after=T0)
    assert str(caught.value) == "trusted key: not_after 2026-01-01T00:00:00Z is not after not_before 2026-01-01T00:00:00Z"
    later = T0 + timedelta(days=1)
    with pytest.raises(KeyLoadError) as caught:
        VerifyingKey(key, origin="k.pem", not_before=later, not_after=T0)
    assert str(caught.value) == "k.pem: not_after 2026-01-01T00:00:00Z is not after not_before 2026-01-02T00:00:00Z"
    assert VerifyingKey(key, not_before=T0, not_after=T0 + timedelta(microseconds=1)).time_limited


def test_a_naive_time_is_refused_with_an_exact_message() -> None:
    key = SigningKey.generate().public_key.key
    with pytest.raises(KeyLoadError) as caught:
        VerifyingKey(key, revoked_at=datetime(2026, 1, 1))  # the point: no time zone
    assert str(caught.value) == "trusted key: revoked_at 2026-01-01T00:00:00 has no time zone"
    with pytest.raises(KeyLoadError) as caught:
        VerifyingKey(key, origin="k.pem", not_after=datetime(2026, 1, 1))
    assert str(caught.value) == "k.pem: not_after 2026-01-01T00:00:00 has no time zone"


def test_a_revocation_at_this_very_moment_refuses_a_self_stated_time() -> None:
    key = VerifyingKey(SigningKey.generate().public_key.key, revoked_at=T0)
    name = f"key {key.keyid[:16]}"
    stated = SigningTime(T0 - timedelta(days=1), "the statement's time", independent=False)
    with pytest.raises(SignatureInvalid) as caught:
        key.check_signing_time(stated, now=T0)
    assert str(caught.value) == (
        f"{name} was revoked at 2026-01-01T00:00:00Z; the statement's time is 2025-12-31T00:00:00Z, but that time "
        "cannot show the signature was made before the revocation (whoever holds the key can sign any time)"
    )
    key.check_signing_time(stated, now=T0 - timedelta(microseconds=1))  # not yet revoked: accepted


def test_a_revocation_without_a_reason_adds_nothing_to_the_message() -> None:
    key = VerifyingKey(SigningKey.generate().public_key.key, revoked_at=T0)
    with pytest.raises(SignatureInvalid) as caught:
        key.check_signing_time(T0, now=T0)
    assert str(caught.value) == (
        f"key {key.keyid[:16]} was revoked at 2026-01-01T00:00:00Z: the signing time is 2026-01-01T00:00:00Z, not before it"
    )


def test_a_self_stated_time_exactly_at_the_skew_limit_is_accepted() -> None:
    key = VerifyingKey(SigningKey.generate().public_key.key, not_before=T0)
    key.check_signing_time(SigningTime(T0 + CLOCK_SKEW, independent=False), now=T0)
    with pytest.raises(SignatureInvalid, match="which is in the future"):
        key.check_signing_time(SigningTime(T0 + CLOCK_SKEW + timedelta(microseconds=1), independent=False), now=T0)


def test_an_unknown_signing_time_message_is_exact() -> None:
    key = VerifyingKey(SigningKey.generate().public_key.key, not_before=T0)
    with pytest.raises(SignatureInvalid) as caught:
        key.check_signing_time(None)
    assert str(caught.value) == (
        f"key {key.keyid[:16]} is trusted only from 2026-01-01T00:00:00Z, and the signing time is unknown: the "
        "signature cannot be placed inside the key's validity, so it is refused"
    )


def test_a_bad_signature_names_sixteen_hex_digits_of_the_key() -> None:
    key = SigningKey.generate()
    with pytest.raises(SignatureInvalid) as caught:
        key.public_key.verify(key.sign(b"a"), b"b")
    assert str(caught.value) == f"signature does not verify with key {key.keyid[:16]}"


def test_format_time_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert format_time(datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9)))) == "2026-01-01T00:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


# ------------------------------------------------------------------------------ loading
def test_default_origins_name_the_kind_of_key() -> None:
    with pytest.raises(KeyLoadError) as caught:
        VerifyingKey.from_pem(b"garbage")
    assert str(caught.value) == "public key: not a PEM public key"
    assert VerifyingKey.from_pem(SigningKey.generate().public_key.to_pem()).origin == "public key"
    with pytest.raises(KeyLoadError) as caught:
        SigningKey.from_pem(b"garbage")
    assert str(caught.value) == "signing key: not a PEM private key (or wrong password)"


def test_an_unsupported_type_is_named_without_leading_underscores_only() -> None:
    class _XKey_:  # the name is the point: underscores on both sides, an X after the first
        pass

    with pytest.raises(KeyLoadError) as caught:
        _check_public_type(_XKey_(), "k.pem")
    assert str(caught.value) == "k.pem: XKey_ keys are not supported; use ECDSA P-256 (default), P-384 or Ed25519"


def test_an_unsupported_curve_in_a_public_pem_names_its_origin() -> None:
    public = ec.generate_private_key(ec.SECP521R1()).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyLoadError) as caught:
        VerifyingKey.from_pem(pem, origin="k.pem")
    assert str(caught.value) == "k.pem: ECDSA curve secp521r1 is not supported; use P-256 or P-384"


def test_an_unknown_key_type_lists_the_choices() -> None:
    with pytest.raises(KeyLoadError) as caught:
        SigningKey.generate("rsa")
    assert str(caught.value) == "unknown key type 'rsa'; choose one of ecdsa-p256, ecdsa-p384, ed25519"


def test_an_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / ("k" * 300)  # a name too long for the file system: an OSError that is not "not found"
    with pytest.raises(KeyLoadError) as caught:
        VerifyingKey.from_file(path)
    assert str(caught.value) == f"key file {path} cannot be read: File name too long"


def test_write_pair_makes_missing_folders_and_accepts_existing_ones(tmp_path: Path) -> None:
    key = SigningKey.generate()
    key.write_pair(tmp_path / "a" / "b" / "k.pem", tmp_path / "c" / "d" / "k.pub.pem")
    key.write_pair(tmp_path / "a" / "b" / "k2.pem", tmp_path / "a" / "b" / "k2.pub.pem")
    assert VerifyingKey.from_file(tmp_path / "c" / "d" / "k.pub.pem") == key.public_key
    assert SigningKey.from_file(tmp_path / "a" / "b" / "k2.pem").keyid == key.keyid
