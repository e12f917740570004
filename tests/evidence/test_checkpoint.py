"""Signed ledger checkpoints: a cut tail, a rewritten prefix, another ledger, an untrusted or renamed
checkpoint are all caught; verification walks only from the checkpoint; S3 Object Lock holds them.

Attacks are made as an attacker would: with real SQL, after dropping the append-only triggers, or by
copying the ledger's first rows into a new database file.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.checkpoint import (
    CHECKPOINT_PAYLOAD_TYPE,
    LedgerCheckpoint,
    verify_ledger,
    write_checkpoint,
)
from airflow_mlsecops.evidence.checkpoint_store import open_checkpoint_store
from airflow_mlsecops.evidence.dsse import Envelope, sign_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.ledger import TABLE_NAME, EvidenceLedger, LedgerEntry, ledger_table
from airflow_mlsecops.evidence.statement import canonical_json
from airflow_mlsecops.exceptions import (
    CheckpointMismatch,
    ConfigurationError,
    LedgerIntegrityError,
    SignatureInvalid,
    StoreUnavailable,
    VerificationError,
)

NO_STORE = Settings.from_env({})


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def trusted(signer: SigningKey) -> dict[str, Any]:
    return {signer.keyid: signer.public_key}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EvidenceLedger]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    ledger = EvidenceLedger(url)
    yield ledger
    ledger.dispose()


def _fill(ledger: EvidenceLedger, signer: SigningKey, n: int, start: int = 1) -> list[LedgerEntry]:
    entries = []
    for i in range(start, start + n):
        payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "n": i}).encode()
        envelope = sign_envelope(payload, signer).to_json().decode()
        entries.append(ledger.append(envelope_json=envelope, gate="data-validation", mlflow_run_id=f"run-{i % 3}"))
    return entries


def _execute(ledger: EvidenceLedger, sql: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(sql))


def _drop_triggers(ledger: EvidenceLedger) -> None:
    """What an attacker with DDL rights on the ledger database does first."""
    if ledger.engine.dialect.name == "sqlite":
        _execute(ledger, f"DROP TRIGGER {TABLE_NAME}_no_update")
        _execute(ledger, f"DROP TRIGGER {TABLE_NAME}_no_delete")
    else:
        _execute(ledger, f"DROP TRIGGER {TABLE_NAME}_no_change ON {TABLE_NAME}")


def _rewrite_from(ledger: EvidenceLedger, seq: int, **changes: Any) -> None:
    """Change row ``seq`` and re-chain every row after it, as the ledger would have hashed them."""
    rows = [e for e in ledger.entries() if e.seq >= seq]
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq >= {seq}")
    prev = ledger.entry_at(seq - 1).entry_hash if seq > 1 else "0" * 64  # type: ignore[union-attr]
    with ledger.engine.begin() as conn:
        for index, row in enumerate(rows):
            draft = LedgerEntry(**{**row.__dict__, **(changes if index == 0 else {}), "prev_hash": prev})
            forged = LedgerEntry(**{**draft.__dict__, "entry_hash": draft.computed_hash()})
            conn.execute(ledger_table.insert().values(**forged.__dict__))
            prev = forged.entry_hash


def _checkpoints(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


# --- writing ---------------------------------------------------------------------------------------


def test_write_signs_size_head_and_ledger_identity(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted) -> None:
    entries = _fill(ledger, signer, 5)
    written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    cp = written.checkpoint
    assert (cp.size, cp.head_hash, cp.ledger_id, cp.keyid) == (5, entries[-1].entry_hash, entries[0].entry_hash, signer.keyid)
    assert written.stored.location == str(tmp_path / "cp" / cp.name) and not written.stored.locked
    assert written.verification.checkpoint is None and written.verification.rows_walked == 5  # first one: full walk
    raw = Path(written.stored.location).read_bytes()
    envelope = Envelope.from_json(raw)
    assert envelope.payload_type == CHECKPOINT_PAYLOAD_TYPE
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "mlsecops-evidence-ledger", "digest": {"sha256": entries[-1].entry_hash}}]
    assert statement["predicate"]["size"] == 5
    assert Path(written.stored.location).stat().st_mode & 0o222 == 0  # read-only
    assert verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=written.stored.location).checkpoint


def test_write_walks_only_from_the_previous_checkpoint(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path) -> None:
    store = str(tmp_path / "cp")
    _fill(ledger, signer, 6)
    first = write_checkpoint(ledger, settings=NO_STORE, to=store, signer=signer, trusted_keys={})
    _fill(ledger, signer, 3, start=7)
    second = write_checkpoint(ledger, settings=NO_STORE, to=store, signer=signer, trusted_keys={})
    assert second.verification.checkpoint is not None
    assert second.verification.checkpoint.checkpoint == first.checkpoint
    assert (second.verification.start_seq, second.verification.rows_walked) == (6, 4)  # rows 6..9
    assert second.checkpoint.size == 9
    assert _checkpoints(tmp_path / "cp") == sorted([first.checkpoint.name, second.checkpoint.name])


def test_a_broken_chain_is_never_signed(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path) -> None:
    _fill(ledger, signer, 4)
    _drop_triggers(ledger)
    _execute(ledger, f"UPDATE {TABLE_NAME} SET gate = 'forged' WHERE seq = 2")
    with pytest.raises(LedgerIntegrityError, match="seq=2"):
        write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    assert _checkpoints(tmp_path / "cp") == []


def test_a_cut_tail_is_never_signed_over_the_checkpoint_before(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path
) -> None:
    store = str(tmp_path / "cp")
    _fill(ledger, signer, 5)
    first = write_checkpoint(ledger, settings=NO_STORE, to=store, signer=signer, trusted_keys={})
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq > 3")
    with pytest.raises(CheckpointMismatch, match="its tail was cut"):
        write_checkpoint(ledger, settings=NO_STORE, to=store, signer=signer, trusted_keys={})
    _execute(ledger, f"DELETE FROM {TABLE_NAME}")  # an empty ledger is not a fresh one when a checkpoint exists
    with pytest.raises(CheckpointMismatch, match=r"ledger has 0 entries, .* records 5"):
        write_checkpoint(ledger, settings=NO_STORE, to=store, signer=signer, trusted_keys={})
    assert _checkpoints(tmp_path / "cp") == [first.checkpoint.name]


def test_an_empty_ledger_writes_nothing_and_a_missing_store_is_a_configuration_error(tmp_path: Path, signer: SigningKey) -> None:
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'empty.db'}")
    assert write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={}) is None
    assert _checkpoints(tmp_path / "cp") == []
    with pytest.raises(ConfigurationError, match="no checkpoint store"):
        write_checkpoint(ledger, settings=NO_STORE, signer=signer, trusted_keys={})
    with pytest.raises(ConfigurationError, match="unknown checkpoint store scheme 'gs'"):
        write_checkpoint(ledger, settings=NO_STORE, to="gs://bucket/x", signer=signer, trusted_keys={})
    with pytest.raises(ConfigurationError, match="needs an S3 bucket with Object Lock"):
        _fill(ledger, signer, 1)
        write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={}, retention_days=3)


def test_a_local_checkpoint_is_never_overwritten(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path) -> None:
    _fill(ledger, signer, 2)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={}, now=now)
    before = Path(written.stored.location).read_bytes()
    with pytest.raises(StoreUnavailable, match="never overwritten"):
        write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={}, now=now)
    assert Path(written.stored.location).read_bytes() == before
    assert _checkpoints(tmp_path / "cp") == [written.checkpoint.name]  # no temporary file left behind


# --- verifying against a checkpoint -----------------------------------------------------------------


def test_a_cut_tail_is_caught(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted) -> None:
    _fill(ledger, signer, 7)
    written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    assert ledger.verify_chain().entries == 7
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq > 4")
    assert ledger.verify_chain().entries == 4  # the chain alone cannot tell
    with pytest.raises(CheckpointMismatch) as caught:
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))
    stamp = written.checkpoint.signed_at_text
    assert f"ledger has 4 entries, the checkpoint of {stamp} signed by {signer.keyid[:16]} records 7: its tail was cut" in str(
        caught.value
    )


def test_a_cut_tail_refilled_to_the_same_length_is_caught(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    """The attacker cuts the tail and appends their own rows until the ledger is as long again."""
    _fill(ledger, signer, 6)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq > 3")
    _fill(ledger, SigningKey.generate(), 4, start=100)
    assert ledger.verify_chain().entries == 7
    with pytest.raises(CheckpointMismatch, match=r"differs from the checkpoint of .* at seq 6"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))


def test_a_prefix_copied_into_a_new_database_is_caught(tmp_path: Path, signer: SigningKey, trusted) -> None:
    """No trigger to drop: the attacker copies the first rows into a fresh database file and points
    the platform at it (or swaps the file)."""
    ledger_db = tmp_path / "ledger.db"
    ledger = EvidenceLedger(f"sqlite:///{ledger_db}")
    _fill(ledger, signer, 8)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    ledger.dispose()
    copy_db = tmp_path / "copy.db"
    EvidenceLedger(f"sqlite:///{copy_db}").dispose()  # same schema and triggers
    with sqlite3.connect(copy_db) as conn:
        conn.execute("ATTACH DATABASE ? AS genuine", (str(ledger_db),))
        conn.execute(f"INSERT INTO {TABLE_NAME} SELECT * FROM genuine.{TABLE_NAME} WHERE seq <= 5")
    conn.close()
    shutil.move(copy_db, ledger_db)
    cut = EvidenceLedger(f"sqlite:///{ledger_db}", create=False)
    assert cut.verify_chain().entries == 5
    with pytest.raises(CheckpointMismatch, match=r"ledger has 5 entries, .* records 8: its tail was cut"):
        verify_ledger(cut, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))


def test_verification_walks_only_from_the_checkpoint(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted) -> None:
    _fill(ledger, signer, 10)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    _fill(ledger, signer, 3, start=11)
    result = verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))
    assert (result.entries, result.start_seq, result.rows_walked) == (13, 10, 4)  # the anchor row and 3 after it
    assert result.checkpoint is not None and result.checkpoint.checkpoint.size == 10
    assert "walked 4 row(s) from seq 10; agrees with the checkpoint of" in result.describe()
    # A run's older entries: walk from them (they are re-hashed, and chain into the signed head).
    assert (
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"), from_seq=4).rows_walked
        == 10
    )
    full = verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"), full=True)
    assert (full.start_seq, full.rows_walked, full.checkpoint is not None) == (1, 13, True)


def test_a_rewritten_row_before_the_checkpoint_is_caught_at_the_anchor(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    """Row 3 changed and every later row re-chained: the chain verifies, the anchor's hash does not."""
    _fill(ledger, signer, 8)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    _rewrite_from(ledger, 3, gate="forged-gate")
    assert ledger.verify_chain().entries == 8
    with pytest.raises(CheckpointMismatch, match="at seq 8: ledger row seq=8 hashes to"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))


def test_a_row_changed_in_place_before_the_checkpoint_is_caught_from_its_seq(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    """Row 3 changed without re-chaining: the incremental walk does not read it (by design); a walk
    from the row a caller relies on (``from_seq``, what ``verify_run`` passes) or ``full`` does."""
    _fill(ledger, signer, 8)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    _drop_triggers(ledger)
    _execute(ledger, f"UPDATE {TABLE_NAME} SET mlflow_run_id = 'run-x' WHERE seq = 3")
    cp = str(tmp_path / "cp")
    assert verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=cp).rows_walked == 1
    with pytest.raises(LedgerIntegrityError, match="seq=3: its contents no longer match its hash"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=cp, from_seq=3)
    with pytest.raises(LedgerIntegrityError, match="seq=3"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=cp, full=True)


def test_a_row_deleted_before_the_checkpoint_is_caught_without_reading_it(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    """The incremental walk does not read row 3, but a gap before the checkpoint shows in the count."""
    _fill(ledger, signer, 8)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq = 3")
    with pytest.raises(CheckpointMismatch, match=r"ledger has 7 entries up to seq 8, .* records 8: 1 were deleted"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))


def test_a_checkpoint_of_another_ledger_is_refused(tmp_path: Path, signer: SigningKey, trusted) -> None:
    ledger_a = EvidenceLedger(f"sqlite:///{tmp_path / 'a.db'}")
    ledger_b = EvidenceLedger(f"sqlite:///{tmp_path / 'b.db'}")
    _fill(ledger_a, signer, 3)
    _fill(ledger_b, signer, 5)
    write_checkpoint(ledger_a, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    with pytest.raises(CheckpointMismatch, match="a checkpoint of another ledger"):
        verify_ledger(ledger_b, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))
    with pytest.raises(CheckpointMismatch, match="a checkpoint of another ledger"):
        write_checkpoint(ledger_b, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})


def test_a_checkpoint_signed_by_an_untrusted_key_is_refused(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    _fill(ledger, signer, 3)
    attacker = SigningKey.generate()
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=attacker, trusted_keys={})
    with pytest.raises(SignatureInvalid, match="is not trusted: signed by an untrusted key"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))
    with pytest.raises(SignatureInvalid, match="no trusted public keys"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys={}, checkpoint=str(tmp_path / "cp"))


def test_the_signing_time_must_lie_inside_the_keys_validity(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path) -> None:
    """A key rotated out (``not_after``) no longer vouches for checkpoints signed after that time."""
    from airflow_mlsecops.evidence.keys import VerifyingKey

    _fill(ledger, signer, 2)
    written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    signed = written.checkpoint.signed_at
    valid = VerifyingKey(signer.public_key.key, not_before=signed - timedelta(days=1), not_after=signed + timedelta(days=1))
    assert verify_ledger(
        ledger, settings=NO_STORE, trusted_keys={signer.keyid: valid}, checkpoint=str(tmp_path / "cp")
    ).checkpoint
    rotated_out = VerifyingKey(signer.public_key.key, not_after=signed - timedelta(hours=1))
    with pytest.raises(SignatureInvalid, match="the checkpoint's own signing time"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys={signer.keyid: rotated_out}, checkpoint=str(tmp_path / "cp"))


def test_a_forged_newest_checkpoint_fails_without_falling_back(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    """An older genuine checkpoint is never used when the newest does not verify."""
    _fill(ledger, signer, 4)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    _fill(ledger, signer, 2, start=5)
    # Someone with a key of their own (and the store's contents trusted) writes the newest one.
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=SigningKey.generate(), trusted_keys=trusted)
    with pytest.raises(SignatureInvalid, match="checkpoint-000000000006-"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))


def test_a_checkpoint_renamed_to_look_newer_is_refused(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    """A genuine old checkpoint copied under a newer name must not hide the real newest one."""
    _fill(ledger, signer, 3)
    old = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    _fill(ledger, signer, 3, start=4)
    write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    later = datetime.now(timezone.utc) + timedelta(days=1)
    fake = LedgerCheckpoint(**{**old.checkpoint.__dict__, "size": 99, "signed_at": later})
    shutil.copy(old.stored.location, tmp_path / "cp" / fake.name)
    with pytest.raises(VerificationError, match="is named for another checkpoint"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "cp"))


def test_an_edited_checkpoint_is_refused(ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted) -> None:
    _fill(ledger, signer, 5)
    written = write_checkpoint(ledger, settings=NO_STORE, to=str(tmp_path / "cp"), signer=signer, trusted_keys={})
    path = Path(written.stored.location)
    data = json.loads(path.read_bytes())
    statement = json.loads(Envelope.from_json(path.read_bytes()).payload)
    statement["predicate"]["size"] = 2  # make a cut tail pass
    data["payload"] = __import__("base64").b64encode(canonical_json(statement)).decode()
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(path))


def test_the_configured_store_is_used_and_an_empty_one_means_a_full_walk(
    ledger: EvidenceLedger, signer: SigningKey, tmp_path: Path, trusted
) -> None:
    _fill(ledger, signer, 3)
    store = tmp_path / "cp"
    settings = Settings.from_env({"MLSECOPS_LEDGER_CHECKPOINTS": str(store)})
    with pytest.raises(ConfigurationError, match="does not exist"):
        verify_ledger(ledger, settings=settings, trusted_keys=trusted)
    store.mkdir()
    result = verify_ledger(ledger, settings=settings, trusted_keys=trusted)
    assert result.checkpoint is None and result.rows_walked == 3 and "no checkpoint at" in result.note
    write_checkpoint(ledger, settings=settings, signer=signer, trusted_keys={})
    _fill(ledger, signer, 1, start=4)
    result = verify_ledger(ledger, settings=settings, trusted_keys=trusted)
    assert result.checkpoint is not None and (result.start_seq, result.rows_walked) == (3, 2)
    with pytest.raises(ConfigurationError, match="elsewhere does not exist"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(tmp_path / "elsewhere"))
    missing = store / "checkpoint-000000000003-20261201T000000.000000Z.dsse.json"
    with pytest.raises(ConfigurationError, match="no ledger checkpoint at"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=str(missing))
    assert verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted).note.startswith("no checkpoint store configured")


# --- S3 with Object Lock (moto_server) ----------------------------------------------------------------


@pytest.fixture
def locked_bucket(aws_endpoint: str) -> str:
    from airflow_mlsecops.io.artifacts import s3_client

    bucket = f"mlsecops-lock-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return bucket


def test_s3_object_lock_keeps_the_checkpoint_and_a_cut_tail_is_caught(
    ledger: EvidenceLedger, signer: SigningKey, locked_bucket: str, trusted
) -> None:
    from botocore.exceptions import ClientError

    from airflow_mlsecops.io.artifacts import s3_client

    client = s3_client()
    client.put_object_lock_configuration(
        Bucket=locked_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}},
        },
    )
    _fill(ledger, signer, 6)
    uri = f"s3://{locked_bucket}/prod/ledger"
    written = write_checkpoint(ledger, settings=NO_STORE, to=uri, signer=signer, trusted_keys={})
    assert written.stored.locked and written.stored.retention.startswith("COMPLIANCE until ")
    assert written.stored.retention.endswith("(bucket default)")
    key = f"prod/ledger/{written.checkpoint.name}"
    version = written.stored.location.split("?versionId=")[1]
    head = client.head_object(Bucket=locked_bucket, Key=key, VersionId=version)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc) + timedelta(days=29)
    # The store refuses to delete the locked version (moto enforces COMPLIANCE retention)...
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version)
    # ...and a delete marker does not hide it from the verifier.
    client.delete_object(Bucket=locked_bucket, Key=key)

    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq > 2")
    with pytest.raises(
        CheckpointMismatch, match=f"ledger has 2 entries, .* records 6: its tail was cut \\(s3://{locked_bucket}/"
    ):
        verify_ledger(ledger, settings=Settings.from_env({"MLSECOPS_LEDGER_CHECKPOINTS": uri}), trusted_keys=trusted)


def test_s3_retention_days_sets_compliance_mode(ledger: EvidenceLedger, signer: SigningKey, locked_bucket: str, trusted) -> None:
    from airflow_mlsecops.io.artifacts import s3_client

    _fill(ledger, signer, 2)
    uri = f"s3://{locked_bucket}/cp"
    no_default = write_checkpoint(ledger, settings=NO_STORE, to=uri, signer=signer, trusted_keys={})
    assert no_default.stored.locked and "(365 days: the bucket has no default retention)" in no_default.stored.retention
    asked = write_checkpoint(ledger, settings=NO_STORE, to=uri, signer=signer, trusted_keys={}, retention_days=7)
    assert asked.stored.locked and asked.stored.retention.endswith("(7 days as asked)")
    head = s3_client().head_object(Bucket=locked_bucket, Key=f"cp/{asked.checkpoint.name}")
    assert timedelta(days=6) < head["ObjectLockRetainUntilDate"] - datetime.now(timezone.utc) <= timedelta(days=7)
    result = verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=uri)
    assert result.checkpoint is not None and result.checkpoint.checkpoint == asked.checkpoint


def test_s3_without_object_lock(ledger: EvidenceLedger, signer: SigningKey, s3_bucket: str, trusted) -> None:
    _fill(ledger, signer, 2)
    uri = f"s3://{s3_bucket}/cp"
    with pytest.raises(ConfigurationError, match="has no Object Lock, so a retention of 5 days cannot be set"):
        write_checkpoint(ledger, settings=NO_STORE, to=uri, signer=signer, trusted_keys={}, retention_days=5)
    written = write_checkpoint(ledger, settings=NO_STORE, to=uri, signer=signer, trusted_keys={})
    assert not written.stored.locked and written.stored.retention == ""
    assert verify_ledger(
        ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint=written.stored.location.split("?")[0]
    ).checkpoint


def test_s3_unreachable_bucket_is_a_store_error(aws_endpoint: str, signer: SigningKey, tmp_path: Path, trusted) -> None:
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'l.db'}")
    _fill(ledger, signer, 1)
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        verify_ledger(ledger, settings=NO_STORE, trusted_keys=trusted, checkpoint="s3://no-such-bucket-here/cp")
    store, single = open_checkpoint_store("s3://b/p/checkpoint-000000000001-20261201T000000.000000Z.dsse.json")
    assert single is not None and store.location == "s3://b/p"
