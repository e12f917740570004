"""Exact tests for evidence/trust.py written from surviving mutants (tests/mutation/README.md).

Each pins one decision or message no other test checked: where a problem sits in a trust file,
which problems are listed and in which order, ``env:`` references and their origins, missing
references, the JSON reader, and keys listed without a revocation.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.keys import SigningKey, SigningTime, load_trusted_keys
from airflow_mlsecops.evidence.trust import _parse_time, load_trust_anchors, load_trust_file, statement_signing_time
from airflow_mlsecops.exceptions import KeyLoadError


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    key = SigningKey.generate()
    (tmp_path / "a.pub.pem").write_bytes(key.public_key.to_pem())
    return key


def _refusal(tmp_path: Path, text: str, name: str = "trust.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(KeyLoadError) as caught:
        load_trust_file(path)
    prefix = f"trust file {path}"
    message = str(caught.value)
    assert message.startswith(prefix)
    return message[len(prefix) :]


# ------------------------------------------------------------------------------ schema messages
def test_problems_are_listed_by_where_they_are(tmp_path: Path, key: SigningKey) -> None:
    assert _refusal(tmp_path, "version: 2\nkeys:\n  - key: a.pub.pem\n    not_before: x\n") == (
        ": keys[0] (a.pub.pem).not_before: 'x' is not a time like 2026-06-30T00:00:00Z (RFC 3339, with a time zone); "
        "version: must be 1 (the trust file format), not 2"
    )
    assert _refusal(tmp_path, "keys:\n  - key: ''\n") == ": the top level: missing 'version'; keys[0] ().key: is empty"


def test_at_most_eight_problems_are_listed(tmp_path: Path, key: SigningKey) -> None:
    text = (
        "version: 1\nkeys:\n  - key: a.pub.pem\n    not_before: 1\n    not_after: 2\n    revoked_at: 3\n"
        "  - key: ''\n  - key: 4\n  - {}\n  - key: a\n    reason: 5\n  - 7\n  - key: b\n    z: 1\n"
    )
    assert _refusal(tmp_path, text) == (
        ": keys[0] (a.pub.pem): 'reason' is required with 'revoked_at'; keys[0] (a.pub.pem).not_after: must be text; "
        "keys[0] (a.pub.pem).not_before: must be text; keys[0] (a.pub.pem).revoked_at: must be text; "
        "keys[1] ().key: is empty; keys[2].key: must be text; keys[3]: missing 'key'; "
        "keys[4] (a): 'revoked_at' is required with 'reason'"
    )


def test_a_time_of_the_wrong_type_is_named_as_such(tmp_path: Path, key: SigningKey) -> None:
    assert _refusal(tmp_path, "version: 1\nkeys:\n  - key: a.pub.pem\n    not_before: 5\n") == (
        ": keys[0] (a.pub.pem).not_before: must be text"
    )


def test_an_impossible_time_without_a_zone_is_not_called_naive(tmp_path: Path, key: SigningKey) -> None:
    assert _refusal(tmp_path, "version: 1\nkeys:\n  - key: a.pub.pem\n    not_before: 2026-13-01T00:00:00\n") == (
        ": keys[0] (a.pub.pem).not_before: '2026-13-01T00:00:00' is not a time like 2026-06-30T00:00:00Z "
        "(RFC 3339, with a time zone)"
    )


def test_a_well_formed_but_impossible_time_names_entry_and_field(tmp_path: Path, key: SigningKey) -> None:
    assert _refusal(tmp_path, "version: 1\nkeys:\n  - key: a.pub.pem\n    not_after: 2026-02-30T00:00:00Z\n") == (
        ": keys[0] (a.pub.pem): not_after '2026-02-30T00:00:00Z' is not a valid time: day is out of range for month"
    )


def test_an_entry_that_is_not_a_mapping(tmp_path: Path, key: SigningKey) -> None:
    assert _refusal(tmp_path, "version: 1\nkeys:\n  - a.pub.pem\n") == ": keys[0]: must be a mapping"


def test_every_unknown_field_is_named(tmp_path: Path, key: SigningKey) -> None:
    assert _refusal(tmp_path, "version: 1\nkeys:\n  - key: a.pub.pem\n    x: 1\n    y: 2\n") == (
        ": keys[0] (a.pub.pem): unknown field 'x', 'y'; expected key, not_before, not_after, revoked_at, reason"
    )
    assert _refusal(tmp_path, "{}\n") == ": the top level: missing 'version', 'keys'"


def test_parse_time_refuses_a_naive_time_itself() -> None:
    with pytest.raises(KeyLoadError) as caught:
        _parse_time("2026-01-01T00:00:00", "here", "not_before")
    assert str(caught.value) == "here: not_before '2026-01-01T00:00:00' has no time zone"


# ------------------------------------------------------------------------------ reading
def test_a_json_trust_file_is_read_as_json_whatever_the_case_of_its_suffix(tmp_path: Path, key: SigningKey) -> None:
    # A trailing comma: valid YAML flow mapping, invalid JSON.
    message = _refusal(tmp_path, '{"version": 1, "keys": [{"key": "a.pub.pem"}],}', "trust.JSON")
    assert message == " is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 47 (char 46)"


def test_unreadable_trust_files_say_why(tmp_path: Path) -> None:
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(KeyLoadError) as caught:
        load_trust_file(folder)
    assert str(caught.value) == f"trust file {folder} cannot be read: Is a directory"
    binary = tmp_path / "u.yaml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(KeyLoadError) as caught:
        load_trust_file(binary)
    assert str(caught.value) == (
        f"trust file {binary} cannot be read: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    )


# ------------------------------------------------------------------------------ entries
def test_entry_origins_without_a_source_and_no_reason_without_revocation(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text("version: 1\nkeys:\n  - key: a.pub.pem\n")
    loaded = load_trust_file(path)[key.keyid]
    assert loaded.origin == f"a.pub.pem in {path}"
    assert loaded.revocation_reason == ""
    # ...so the same key trusted plainly elsewhere has the same validity and merges.
    assert set(load_trusted_keys([path, tmp_path / "a.pub.pem"])) == {key.keyid}


def test_an_env_entry_that_is_not_set_names_the_trust_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSECOPS_TEST_UNSET_KEY", raising=False)
    path = tmp_path / "trust.yaml"
    assert _refusal(tmp_path, "version: 1\nkeys:\n  - key: env:MLSECOPS_TEST_UNSET_KEY\n") == (
        ": keys[0] (env:MLSECOPS_TEST_UNSET_KEY): key reference env:MLSECOPS_TEST_UNSET_KEY "
        f"(from {path}): the variable MLSECOPS_TEST_UNSET_KEY is not set"
    )


@pytest.mark.parametrize("scheme", ["gs", "gs:x"])
def test_an_unknown_scheme_is_named_by_its_first_part(tmp_path: Path, scheme: str) -> None:
    first = scheme.split(":")[0]
    assert _refusal(tmp_path, f"version: 1\nkeys:\n  - key: '{scheme}:k'\n") == (
        f": keys[0] ({scheme}:k): unknown scheme {first}:; use a PEM file path, env:VAR or "
        "awskms:///<key id | key ARN | alias/NAME>"
    )


def test_a_one_letter_prefix_is_a_path_not_a_scheme(tmp_path: Path, key: SigningKey) -> None:
    (tmp_path / "c:a.pub.pem").write_bytes(key.public_key.to_pem())
    path = tmp_path / "trust.yaml"
    path.write_text("version: 1\nkeys:\n  - key: 'c:a.pub.pem'\n")
    assert list(load_trust_file(path)) == [key.keyid]


# ------------------------------------------------------------------------------ load_trust_anchors
def test_env_references_are_trusted_with_their_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate()
    monkeypatch.setenv("MLSECOPS_TEST_ANCHOR", key.public_key.to_pem().decode())
    loaded = load_trust_anchors(["env:MLSECOPS_TEST_ANCHOR"], source="MLSECOPS_TRUSTED_KEYS")
    assert list(loaded) == [key.keyid]
    assert loaded[key.keyid].origin == "env:MLSECOPS_TEST_ANCHOR (MLSECOPS_TRUSTED_KEYS)"
    assert load_trust_anchors(["env:MLSECOPS_TEST_ANCHOR"])[key.keyid].origin == "env:MLSECOPS_TEST_ANCHOR"
    monkeypatch.delenv("MLSECOPS_TEST_ANCHOR")
    with pytest.raises(KeyLoadError) as caught:
        load_trust_anchors(["env:MLSECOPS_TEST_ANCHOR"], source="S")
    assert str(caught.value) == "key reference env:MLSECOPS_TEST_ANCHOR (from S): the variable MLSECOPS_TEST_ANCHOR is not set"


def test_a_missing_default_reference_is_skipped_and_the_rest_still_load(tmp_path: Path, key: SigningKey) -> None:
    missing = str(tmp_path / "nothing-here")
    loaded = load_trust_anchors([missing, str(tmp_path / "a.pub.pem")])
    assert list(loaded) == [key.keyid] and loaded[key.keyid].origin == str(tmp_path / "a.pub.pem")
    with pytest.raises(KeyLoadError) as caught:
        load_trust_anchors([missing], explicit=True)
    assert str(caught.value) == f"trusted key path {missing} does not exist (from the caller)"
    with pytest.raises(KeyLoadError) as caught:
        load_trust_anchors([missing], source="MLSECOPS_TRUSTED_KEYS", explicit=True)
    assert str(caught.value) == f"trusted key path {missing} does not exist (from MLSECOPS_TRUSTED_KEYS)"


def test_statement_signing_time_is_the_finish_time_and_says_so() -> None:
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert statement_signing_time(moment) == SigningTime(moment, "the signed statement's finish time", True)
