"""Exact tests for evidence/checkpoint.py written from surviving mutants (tests/mutation/README.md).

The JSON that ``mlsecops evidence checkpoint`` and ``verify-ledger --json`` print is built by the
``to_dict`` methods: every field is pinned here, for a first checkpoint (a full walk) and a second
one (a walk from the first).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.checkpoint import (
    CHECKPOINT_PAYLOAD_TYPE,
    LedgerCheckpoint,
    parse_checkpoint,
    verify_ledger,
    write_checkpoint,
)
from airflow_mlsecops.evidence.dsse import Envelope, sign_envelope
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
from airflow_mlsecops.evidence.ledger import TABLE_NAME, EvidenceLedger, ledger_table
from airflow_mlsecops.exceptions import CheckpointMismatch, ConfigurationError, SignatureInvalid, VerificationError

NO_STORE = Settings.from_env({})


def _fill(ledger: EvidenceLedger, signer: SigningKey, first: int, last: int) -> None:
    for i in range(first, last + 1):
        payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "n": i}).encode()
        ledger.append(envelope_json=sign_envelope(payload, signer).to_json().decode(), gate="g", mlflow_run_id="r")


def test_written_and_verified_checkpoints_as_json(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _fill(ledger, signer, 1, 3)
        store = str(tmp_path / "cp")
        first = write_checkpoint(ledger, settings=NO_STORE, to=store, signer=signer, trusted_keys={})
        assert first is not None
        cp = first.checkpoint
        assert first.to_dict() == {
            "location": str(tmp_path / "cp" / cp.name),
            "locked": False,
            "retention": "",
            "size": 3,
            "head_hash": cp.head_hash,
            "ledger_id": cp.ledger_id,
            "signed_at": cp.signed_at_text,
            "keyid": signer.keyid,
            "verification": {
                "verified": True,
                "entries": 3,
                "head_hash": cp.head_hash,
                "rows_walked": 3,
                "start_seq": 1,
                "checkpoint": None,
                "note": f"no checkpoint at {store} yet: walked the whole chain",
            },
        }
        _fill(ledger, signer, 4, 5)
        checked = verify_ledger(ledger, settings=NO_STORE, trusted_keys={signer.keyid: signer.public_key}, checkpoint=store)
        head = ledger.entry_at(5)
        assert head is not None
        assert checked.to_dict() == {
            "verified": True,
            "entries": 5,
            "head_hash": head.entry_hash,
            "rows_walked": 3,
            "start_seq": 3,
            "checkpoint": {
                "location": first.stored.location,
                "size": 3,
                "head_hash": cp.head_hash,
                "ledger_id": cp.ledger_id,
                "signed_at": cp.signed_at_text,
                "keyid": signer.keyid,
            },
            "note": "",
        }
    finally:
        ledger.dispose()


def test_configured_single_checkpoint_and_store_are_used_with_the_walk_start(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    trusted = {signer.keyid: signer.public_key}
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _fill(ledger, signer, 1, 4)
        store = tmp_path / "cp"
        written = write_checkpoint(ledger, settings=NO_STORE, to=str(store), signer=signer, trusted_keys={})
        assert written is not None
        _fill(ledger, signer, 5, 6)
        newer = write_checkpoint(ledger, settings=NO_STORE, to=str(store), signer=signer, trusted_keys={})
        assert newer is not None
        # ledger_checkpoints naming one (older) checkpoint file: that one, not the store's newest.
        single = replace(NO_STORE, ledger_checkpoints=written.stored.location)
        checked = verify_ledger(ledger, settings=single, trusted_keys=trusted, from_seq=2)
        assert checked.checkpoint is not None and checked.checkpoint.location == written.stored.location
        assert checked.checkpoint.checkpoint.size == 4
        assert (checked.start_seq, checked.rows_walked) == (2, 5)
        # ledger_checkpoints naming the store: its newest checkpoint, and full=True walks from the genesis.
        in_store = replace(NO_STORE, ledger_checkpoints=str(store))
        full = verify_ledger(ledger, settings=in_store, trusted_keys=trusted, full=True)
        assert full.checkpoint is not None and (full.start_seq, full.rows_walked) == (1, 6)
        head = ledger.entry_at(6)
        assert head is not None
        assert full.describe() == (
            f"6 entries, head {head.entry_hash[:16]}...; walked 6 row(s) from seq 1; agrees with "
            f"{newer.checkpoint.describe()} at seq 6 ({newer.stored.location})"
        )
        walked = verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted)
        assert walked.describe() == (
            f"6 entries, head {head.entry_hash[:16]}...; walked 6 row(s) from seq 1; "
            "no checkpoint store configured (ledger_checkpoints): walked the whole chain"
        )
    finally:
        ledger.dispose()


def test_a_renamed_single_checkpoint_and_an_empty_store_are_refused_exactly(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    trusted = {signer.keyid: signer.public_key}
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _fill(ledger, signer, 1, 2)
        written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
        assert written is not None
        renamed = tmp_path / "other" / written.checkpoint.name.replace("0000", "9999", 1)
        renamed.parent.mkdir()
        renamed.write_bytes(Path(written.stored.location).read_bytes())
        with pytest.raises(VerificationError) as caught:
            verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(renamed))
        assert str(caught.value) == f"ledger checkpoint {renamed} is named for another checkpoint ({written.checkpoint.name})"
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(ConfigurationError) as refused:
            verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(empty))
        assert str(refused.value) == f"no ledger checkpoint at {empty}"
    finally:
        ledger.dispose()


def test_a_signed_statement_of_another_kind_is_not_a_checkpoint(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _fill(ledger, signer, 1, 1)
        written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
        assert written is not None
        statement = written.checkpoint.statement()
        assert LedgerCheckpoint.from_payload(json.dumps(statement).encode()) == written.checkpoint
        for field, value in (("predicateType", "https://slsa.dev/provenance/v1"), ("_type", "https://example/Statement")):
            with pytest.raises(VerificationError) as caught:
                LedgerCheckpoint.from_payload(json.dumps({**statement, field: value}).encode())
            assert str(caught.value) == "not a ledger checkpoint statement"
    finally:
        ledger.dispose()


def _ledger_with_checkpoint(tmp_path: Path, name: str, signer: SigningKey, rows: int) -> tuple[EvidenceLedger, str]:
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / name}")
    _fill(ledger, signer, 1, rows)
    written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / f"{name}-cp"), signer=signer, trusted_keys={})
    assert written is not None
    return ledger, written.stored.location


def _sql(ledger: EvidenceLedger, *statements: str) -> None:
    with ledger.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def test_another_ledger_deleted_rows_and_a_missing_first_row_are_named_exactly(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    trusted = {signer.keyid: signer.public_key}
    ledger, location = _ledger_with_checkpoint(tmp_path, "a.db", signer, 3)
    other, _ = _ledger_with_checkpoint(tmp_path, "b.db", signer, 3)
    try:
        cp = LedgerCheckpoint.from_payload(Envelope.from_json(Path(location).read_bytes()).payload)
        first_of_other = other.entry_at(1)
        assert first_of_other is not None
        with pytest.raises(CheckpointMismatch) as caught:
            verify_ledger(other, settings=NO_STORE, trusted_keys=trusted, checkpoint=location)
        assert str(caught.value) == (
            f"{cp.describe()} is of ledger {cp.ledger_id[:16]} (its first entry's hash); this ledger's first entry is "
            f"{first_of_other.entry_hash[:16]}: a checkpoint of another ledger, or this ledger was rewritten from its "
            f"start ({location})"
        )
        # Rows deleted before the checkpoint (after dropping the append-only trigger, as an attacker would).
        _sql(ledger, f"DROP TRIGGER {TABLE_NAME}_no_delete", f"DELETE FROM {TABLE_NAME} WHERE seq = 2")
        with pytest.raises(CheckpointMismatch) as caught:
            verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=location)
        assert str(caught.value) == f"ledger has 2 entries up to seq 3, {cp.describe()} records 3: 1 were deleted ({location})"
        # The first row gone too, rows at seq 0 and -1 keeping the count: the first entry is "none".
        third = ledger.entry_at(3)
        assert third is not None
        with ledger.engine.begin() as conn:
            triggers = conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars().all()
        _sql(ledger, *(f"DROP TRIGGER {name}" for name in triggers), f"DELETE FROM {TABLE_NAME} WHERE seq = 1")
        with ledger.engine.begin() as conn:
            for seq in (0, -1):
                conn.execute(
                    ledger_table.insert().values(
                        **{**third.__dict__, "seq": seq, "prev_hash": f"{seq + 5:064x}", "entry_hash": f"{seq + 2:064x}"}
                    )
                )
        with pytest.raises(CheckpointMismatch) as caught:
            verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=location)
        assert str(caught.value) == (
            f"{cp.describe()} is of ledger {cp.ledger_id[:16]} (its first entry's hash); this ledger's first entry is "
            f"none: a checkpoint of another ledger, or this ledger was rewritten from its start ({location})"
        )
    finally:
        ledger.dispose()
        other.dispose()


_BAD_HASHES = "malformed ledger checkpoint: hashes are not sha256 hex, or the subject is not the head"


def _statement(signer: SigningKey, **predicate: object) -> dict:
    head = "ab" * 32
    base = {
        "ledger": {"genesis_entry_sha256": "cd" * 32},
        "size": 3,
        "head_entry_sha256": head,
        "signed_at": "2026-01-01T00:00:00.000000Z",
        "signer_keyid": signer.keyid,
    }
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "mlsecops-evidence-ledger", "digest": {"sha256": head}}],
        "predicateType": LedgerCheckpoint(
            ledger_id="cd" * 32, size=1, head_hash=head, signed_at=datetime.now(timezone.utc), keyid=""
        ).statement()["predicateType"],
        "predicate": {**base, **predicate},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 0}, "malformed ledger checkpoint: size 0"),
        ({"size": True}, "malformed ledger checkpoint: size True"),
        ({"size": "3"}, "malformed ledger checkpoint: size '3'"),
        ({"signed_at": "2026-01-01T00:00:00"}, "malformed ledger checkpoint: signed_at has no time zone"),
        ({"ledger": {"genesis_entry_sha256": "not hex"}}, _BAD_HASHES),
        ({"head_entry_sha256": "ef" * 32}, _BAD_HASHES),
        ({"ledger": None}, "malformed ledger checkpoint statement (TypeError: 'NoneType' object is not subscriptable)"),
    ],
)
def test_malformed_checkpoint_statements_are_refused_exactly(change: dict, message: str) -> None:
    payload = json.dumps(_statement(SigningKey.generate(), **change)).encode()
    with pytest.raises(VerificationError) as caught:
        LedgerCheckpoint.from_payload(payload)
    assert str(caught.value) == message


def test_parse_checkpoint_names_the_location_payload_type_and_signer() -> None:
    signer, other = SigningKey.generate(), SigningKey.generate()
    trusted = {signer.keyid: replace(signer.public_key, origin="k.pem")}
    good = json.dumps(_statement(signer)).encode()
    parsed = parse_checkpoint(
        sign_envelope(good, signer, CHECKPOINT_PAYLOAD_TYPE).to_json(), location="cp-1", trusted_keys=trusted
    )
    assert (parsed.location, parsed.key_origin, parsed.checkpoint.size) == ("cp-1", "k.pem", 3)
    with pytest.raises(VerificationError) as caught:
        parse_checkpoint(sign_envelope(good, signer).to_json(), location="cp-1", trusted_keys=trusted)
    assert (
        str(caught.value)
        == "ledger checkpoint cp-1 cannot be used: payload type 'application/vnd.in-toto+json' is not a ledger checkpoint's"
    )
    named_other = json.dumps(_statement(signer, signer_keyid=other.keyid)).encode()
    with pytest.raises(SignatureInvalid) as refused:
        parse_checkpoint(
            sign_envelope(named_other, signer, CHECKPOINT_PAYLOAD_TYPE).to_json(), location="cp-1", trusted_keys=trusted
        )
    assert str(refused.value) == f"ledger checkpoint cp-1 names signer {other.keyid[:16]} but was signed by {signer.keyid[:16]}"


def test_a_checkpoint_by_a_revoked_key_is_refused_whatever_time_it_states(tmp_path: Path) -> None:
    """The checkpoint's signing time is the signer's own word: it cannot place a signature before a revocation."""
    signer = SigningKey.generate()
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _fill(ledger, signer, 1, 2)
        before = datetime.now(timezone.utc) - timedelta(days=2)
        written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={}, now=before)
        assert written is not None and written.checkpoint.signed_at == before
        revoked = VerifyingKey(signer.public_key.key, revoked_at=before + timedelta(days=1), revocation_reason="stolen")
        with pytest.raises(SignatureInvalid) as caught:
            verify_ledger(ledger, settings=NO_STORE, trusted_keys={signer.keyid: revoked}, checkpoint=written.stored.location)
        assert "the checkpoint's own signing time is " in str(caught.value)
        assert "cannot show the signature was made before the revocation" in str(caught.value)
    finally:
        ledger.dispose()


# --- write_checkpoint's store, folder and first walk (mutants of write_checkpoint, _make_directory, _full_walk) --


def test_write_checkpoint_needs_a_store_folder_and_says_so_exactly(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _fill(ledger, signer, 1, 2)
        with pytest.raises(ConfigurationError) as caught:
            write_checkpoint(ledger, settings=NO_STORE, signer=signer, trusted_keys={})
        assert str(caught.value) == (
            "no checkpoint store: pass --to DIR|s3://bucket/prefix, or set [mlsecops] ledger_checkpoints "
            "or MLSECOPS_LEDGER_CHECKPOINTS"
        )
        written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
        assert written is not None
        single = str(written.stored.location)
        with pytest.raises(ConfigurationError) as caught:
            write_checkpoint(ledger, settings=NO_STORE, to=single, signer=signer, trusted_keys={})
        assert str(caught.value) == f"{single} names one checkpoint; write to its folder or prefix instead"
        (tmp_path / "file").write_text("not a folder")
        bad = tmp_path / "file" / "cp"
        with pytest.raises(ConfigurationError) as caught:
            write_checkpoint(ledger, settings=NO_STORE, to=str(bad), signer=signer, trusted_keys={})
        assert str(caught.value) == f"cannot create the checkpoint directory {bad}: Not a directory"
    finally:
        ledger.dispose()


def test_the_first_checkpoint_walks_the_whole_chain_into_nested_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # signed_at is UTC whatever the local zone
    time.tzset()
    signer = SigningKey.generate()
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        store = tmp_path / "a" / "b" / "cp"
        assert write_checkpoint(ledger, settings=NO_STORE, to=str(store), signer=signer, trusted_keys={}) is None
        assert store.is_dir() and list(store.iterdir()) == []  # an empty ledger: nothing written
        _fill(ledger, signer, 1, 3)
        configured = replace(NO_STORE, ledger_checkpoints=str(store))
        at = datetime(2026, 12, 4, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        written = write_checkpoint(ledger, settings=configured, signer=signer, now=at)  # trusted keys: the settings'''s (none)
        assert written is not None
        verification = written.verification
        assert verification.note == f"no checkpoint at {store} yet: walked the whole chain"
        assert (verification.entries, verification.rows_walked, verification.start_seq) == (3, 3, 1)
        assert verification.head_hash == ledger.entry_at(3).entry_hash  # type: ignore[union-attr]
        assert written.checkpoint.signed_at == datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
        assert written.checkpoint.signed_at.utcoffset() == timedelta(0)
        assert written.checkpoint.ledger_id == ledger.entry_at(1).entry_hash  # type: ignore[union-attr]
        assert [p.name for p in store.iterdir()] == [written.checkpoint.name]
    finally:
        ledger.dispose()
        monkeypatch.undo()
        time.tzset()


class _RewrittenAfterTheWalk(EvidenceLedger):
    """A ledger whose first row another process deletes (triggers dropped) just after the chain walk."""

    def verify_chain(self, **kwargs):  # type: ignore[no-untyped-def]
        report = super().verify_chain(**kwargs)
        _sql(self, f"DROP TRIGGER IF EXISTS {TABLE_NAME}_no_delete", f"DELETE FROM {TABLE_NAME} WHERE seq = 1")
        return report


def test_a_first_row_deleted_during_the_checkpoint_is_refused_exactly(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    ledger = _RewrittenAfterTheWalk(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _fill(ledger, signer, 1, 2)
        with pytest.raises(CheckpointMismatch) as caught:
            write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
        assert str(caught.value) == "the ledger's first entry disappeared while it was being checkpointed"
        assert list((tmp_path / "cp").iterdir()) == []
    finally:
        ledger.dispose()
