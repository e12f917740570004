"""The hash-chained evidence ledger on SQLite and PostgreSQL: chain, triggers, tampering, concurrency, errors.

Every test that takes ``ledger_url`` runs on both databases; the PostgreSQL run is skipped when
MLSECOPS_TEST_POSTGRES_URL is unset (see tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_mlsecops.evidence.dsse import Envelope, sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.ledger import (
    GENESIS_HASH,
    KIND_RECORDING_FAILED,
    TABLE_NAME,
    ChainAnchor,
    ChainReport,
    EvidenceLedger,
    LedgerEntry,
    ledger_table,
)
from airflow_mlsecops.exceptions import (
    CheckpointMismatch,
    ConfigurationError,
    LedgerIntegrityError,
    SignatureInvalid,
    StoreUnavailable,
)

from ._ledger_worker import append_many

ROWS = 5


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'ledger.db'}"  # the parent directory is created by the ledger
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[EvidenceLedger]:
    ledger = EvidenceLedger(ledger_url)
    yield ledger
    ledger.dispose()


def _envelope(signer: SigningKey, i: int) -> str:
    payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "n": i}).encode()
    return sign_envelope(payload, signer).to_json().decode()


def _fill(ledger: EvidenceLedger, signer: SigningKey, n: int = ROWS) -> list[LedgerEntry]:
    return [
        ledger.append(
            envelope_json=_envelope(signer, i),
            gate="data-validation",
            dag_id="train_model",
            run_id="manual__1",
            task_id=f"task-{i}",
            mlflow_run_id="run-a" if i % 2 else "run-b",
        )
        for i in range(1, n + 1)
    ]


def _execute(ledger: EvidenceLedger, sql: str, **params: Any) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def _drop_triggers(ledger: EvidenceLedger) -> None:
    """What an attacker with DDL rights does first."""
    if ledger.engine.dialect.name == "sqlite":
        _execute(ledger, f"DROP TRIGGER {TABLE_NAME}_no_update")
        _execute(ledger, f"DROP TRIGGER {TABLE_NAME}_no_delete")
    else:
        _execute(ledger, f"DROP TRIGGER {TABLE_NAME}_no_change ON {TABLE_NAME}")


def _insert(ledger: EvidenceLedger, entry: LedgerEntry) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(ledger_table.insert().values(**entry.__dict__))


def _forge(entry: LedgerEntry, **changes: Any) -> LedgerEntry:
    """A copy of ``entry`` with changes, its envelope digest and entry hash recomputed as the ledger would."""
    draft = LedgerEntry(**{**entry.__dict__, **changes})
    if "envelope" in changes:
        draft = LedgerEntry(**{**draft.__dict__, "envelope_sha256": hashlib.sha256(draft.envelope.encode()).hexdigest()})
    return LedgerEntry(**{**draft.__dict__, "entry_hash": draft.computed_hash()})


# --- append and read -------------------------------------------------------------------------------


def test_append_builds_a_valid_chain(ledger: EvidenceLedger, signer: SigningKey) -> None:
    assert ledger.verify_chain() == ChainReport(entries=0, head_hash=GENESIS_HASH)
    appended = _fill(ledger, signer)
    stored = ledger.entries()
    assert stored == appended
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert stored[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.entry_hash
    for entry in stored:
        assert entry.envelope_sha256 == hashlib.sha256(entry.envelope.encode()).hexdigest()
        # entry_hash, recomputed here from the documented field list, without the package's helper.
        fields = {k: getattr(entry, k) for k in ("seq", "created_at", "kind", "gate", "dag_id", "run_id", "task_id")}
        fields.update(
            mlflow_run_id=entry.mlflow_run_id,
            envelope_sha256=entry.envelope_sha256,
            ref_seq=entry.ref_seq,
            prev_hash=entry.prev_hash,
        )
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert entry.entry_hash == hashlib.sha256(canonical).hexdigest()
    assert ledger.verify_chain() == ChainReport(entries=ROWS, head_hash=stored[-1].entry_hash)
    # What each row says of its origin is what the writer gave, and its time is UTC ("Z"), which the
    # trust windows of keys compare against (a naive or local time would shift every window).
    assert [(e.dag_id, e.run_id, e.task_id, e.gate) for e in stored] == [
        ("train_model", "manual__1", f"task-{i}", "data-validation") for i in range(1, ROWS + 1)
    ]
    for entry in stored:
        assert entry.created_at.endswith("Z") and "+" not in entry.created_at
        written = datetime.fromisoformat(entry.created_at.replace("Z", "+00:00"))
        assert written.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - written) < timedelta(minutes=5)


def test_stored_envelopes_are_byte_identical_and_still_verify(ledger: EvidenceLedger, signer: SigningKey) -> None:
    text = _envelope(signer, 42)
    ledger.append(envelope_json=text, gate="g")
    (entry,) = ledger.entries()
    assert entry.envelope == text
    verify_envelope(Envelope.from_json(entry.envelope), {signer.keyid: signer.public_key})


def test_recording_failed_entries_chain_too(ledger: EvidenceLedger, signer: SigningKey) -> None:
    first = ledger.append(envelope_json=_envelope(signer, 1), gate="g", mlflow_run_id="run-x")
    failure = ledger.append(envelope_json="{}", gate="g", kind=KIND_RECORDING_FAILED, ref_seq=first.seq, mlflow_run_id="run-x")
    assert (failure.kind, failure.ref_seq) == (KIND_RECORDING_FAILED, 1)
    assert ledger.verify_chain().entries == 2


def test_reopening_keeps_the_chain(ledger_url: str, signer: SigningKey) -> None:
    first = EvidenceLedger(ledger_url)
    _fill(first, signer, 2)
    first.dispose()
    second = EvidenceLedger(ledger_url)  # create_schema again: must be idempotent
    assert second.append(envelope_json=_envelope(signer, 3), gate="g").seq == 3
    assert second.verify_chain().entries == 3
    second.dispose()


def test_entries_for_mlflow_run(ledger: EvidenceLedger, signer: SigningKey) -> None:
    _fill(ledger, signer)
    ledger.append(envelope_json=_envelope(signer, 99), gate="no-run")
    assert [e.seq for e in ledger.entries_for_mlflow_run("run-a")] == [1, 3, 5]
    assert [e.seq for e in ledger.entries_for_mlflow_run("run-b")] == [2, 4]
    assert ledger.entries_for_mlflow_run("run-c") == []
    assert ledger.entries_for_mlflow_run("run-") == []  # an exact match, not a prefix
    assert len(ledger.entries()) == ROWS + 1


# --- append-only triggers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE {TABLE_NAME} SET envelope = 'x' WHERE seq = 2",
        f"UPDATE {TABLE_NAME} SET task_id = 'evil' WHERE seq = 2",
        f"UPDATE {TABLE_NAME} SET seq = seq + 100",
        f"DELETE FROM {TABLE_NAME} WHERE seq = 2",
        f"DELETE FROM {TABLE_NAME}",
    ],
    ids=["update-envelope", "update-task", "renumber", "delete-one", "delete-all"],
)
def test_triggers_refuse_update_and_delete(ledger: EvidenceLedger, signer: SigningKey, sql: str) -> None:
    before = _fill(ledger, signer)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        _execute(ledger, sql)
    assert ledger.entries() == before
    assert ledger.verify_chain().entries == ROWS


def test_reopening_the_ledger_reinstalls_dropped_triggers(ledger_url: str, signer: SigningKey) -> None:
    ledger = EvidenceLedger(ledger_url)
    _fill(ledger, signer, 2)
    _drop_triggers(ledger)
    ledger.dispose()
    again = EvidenceLedger(ledger_url)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        _execute(again, f"DELETE FROM {TABLE_NAME} WHERE seq = 1")
    again.dispose()


def test_sqlite_insert_or_replace_is_refused(tmp_path: Path, signer: SigningKey) -> None:
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    last = _fill(ledger, signer)[-1]
    forged = _forge(last, envelope=_envelope(SigningKey.generate(), 666))
    columns = ", ".join(forged.__dict__)
    values = ", ".join(f":{name}" for name in forged.__dict__)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            _execute(ledger, f"INSERT OR REPLACE INTO {TABLE_NAME} ({columns}) VALUES ({values})", **forged.__dict__)
    finally:
        ledger.dispose()


@pytest.mark.postgres
def test_postgres_truncate_is_refused(postgres_url: str, signer: SigningKey) -> None:
    ledger = EvidenceLedger(postgres_url)
    _fill(ledger, signer)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            _execute(ledger, f"TRUNCATE {TABLE_NAME}")
    finally:
        ledger.dispose()


# --- tampering by someone who first drops the triggers ---------------------------------------------


def test_tamper_one_character_of_an_envelope(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entry = _fill(ledger, signer)[2]
    i = entry.envelope.index('"sig": "') + 12
    changed = entry.envelope[:i] + ("A" if entry.envelope[i] != "A" else "B") + entry.envelope[i + 1 :]
    assert len(changed) == len(entry.envelope) and changed != entry.envelope
    _drop_triggers(ledger)
    _execute(ledger, f"UPDATE {TABLE_NAME} SET envelope = :e WHERE seq = 3", e=changed)
    with pytest.raises(LedgerIntegrityError, match=r"ledger row seq=3: the stored envelope was changed"):
        ledger.verify_chain()


def test_tamper_envelope_and_its_digest(ledger: EvidenceLedger, signer: SigningKey) -> None:
    _fill(ledger, signer)
    other = _envelope(signer, 1000)  # validly signed, but not what row 3 recorded
    _drop_triggers(ledger)
    _execute(
        ledger,
        f"UPDATE {TABLE_NAME} SET envelope = :e, envelope_sha256 = :d WHERE seq = 3",
        e=other,
        d=hashlib.sha256(other.encode()).hexdigest(),
    )
    with pytest.raises(LedgerIntegrityError, match=r"ledger row seq=3: its contents no longer match its hash"):
        ledger.verify_chain()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("task_id", "task-evil"),
        ("gate", "other-gate"),
        ("dag_id", "other_dag"),
        ("run_id", "manual__2"),
        ("mlflow_run_id", "run-z"),
        ("kind", KIND_RECORDING_FAILED),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("ref_seq", 1),
        ("entry_hash", "f" * 64),
    ],
)
def test_tamper_a_hashed_column(ledger: EvidenceLedger, signer: SigningKey, column: str, value: Any) -> None:
    _fill(ledger, signer)
    _drop_triggers(ledger)
    _execute(ledger, f"UPDATE {TABLE_NAME} SET {column} = :v WHERE seq = 3", v=value)
    with pytest.raises(LedgerIntegrityError, match=r"ledger row seq=3: its contents no longer match its hash"):
        ledger.verify_chain()


def test_tamper_prev_hash(ledger: EvidenceLedger, signer: SigningKey) -> None:
    _fill(ledger, signer)
    _drop_triggers(ledger)
    _execute(ledger, f"UPDATE {TABLE_NAME} SET prev_hash = :v WHERE seq = 3", v="e" * 64)
    with pytest.raises(LedgerIntegrityError, match=r"ledger row seq=3 does not link to the row before it"):
        ledger.verify_chain()


@pytest.mark.parametrize("seq", [1, 3], ids=["first", "middle"])
def test_tamper_delete_a_row(ledger: EvidenceLedger, signer: SigningKey, seq: int) -> None:
    _fill(ledger, signer)
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq = :s", s=seq)
    with pytest.raises(LedgerIntegrityError, match=rf"ledger row seq={seq} is missing \(next row found is seq={seq + 1}\)"):
        ledger.verify_chain()


def test_tamper_rewrite_a_middle_row_with_a_recomputed_hash(ledger: EvidenceLedger, signer: SigningKey) -> None:
    """A fully consistent forged row still breaks the link of the row after it, which is the row named."""
    entries = _fill(ledger, signer)
    forged = _forge(entries[2], task_id="task-evil", envelope=_envelope(SigningKey.generate(), 3))
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq = 3")
    _insert(ledger, forged)
    with pytest.raises(LedgerIntegrityError, match=r"ledger row seq=4 does not link to the row before it"):
        ledger.verify_chain()


@pytest.mark.parametrize(
    ("recompute", "message"),
    [
        ("nothing", r"ledger row seq=5: the stored envelope was changed"),
        ("envelope digest", r"ledger row seq=5: its contents no longer match its hash"),
    ],
)
def test_tamper_replace_the_last_row_without_recomputing(
    ledger: EvidenceLedger, signer: SigningKey, recompute: str, message: str
) -> None:
    last = _fill(ledger, signer)[-1]
    other = _envelope(SigningKey.generate(), 5)
    forged = LedgerEntry(**{**last.__dict__, "envelope": other})
    if recompute == "envelope digest":
        forged = LedgerEntry(**{**forged.__dict__, "envelope_sha256": hashlib.sha256(other.encode()).hexdigest()})
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq = 5")
    _insert(ledger, forged)
    with pytest.raises(LedgerIntegrityError, match=message):
        ledger.verify_chain()


def test_tamper_replace_the_last_row_with_recomputed_hashes_is_not_detected(ledger: EvidenceLedger, signer: SigningKey) -> None:
    """What the chain cannot catch: the head has no anchor outside the database.

    Deleting the last row and inserting a forged one whose envelope digest and entry hash are
    recomputed leaves a chain that verifies. Only the head hash differs, so only a head recorded
    elsewhere (or the signature check of the envelope itself) reveals it.
    """
    entries = _fill(ledger, signer)
    genuine_head = ledger.verify_chain()
    attacker = SigningKey.generate()
    forged = _forge(entries[-1], envelope=_envelope(attacker, 5), task_id="task-forged")
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq = 5")
    _insert(ledger, forged)

    report = ledger.verify_chain()  # does not raise
    assert report.entries == genuine_head.entries == ROWS
    assert report.head_hash == forged.entry_hash != genuine_head.head_hash
    assert ledger.entries()[-1].envelope == forged.envelope
    assert ledger.entries()[-1].task_id == "task-forged"
    # The envelope signature is what still tells, because the attacker does not hold a trusted key...
    with pytest.raises(SignatureInvalid):
        verify_envelope(Envelope.from_json(forged.envelope), {signer.keyid: signer.public_key})


def test_tamper_replay_of_a_genuine_envelope_in_a_forged_last_row_is_not_detected(
    ledger: EvidenceLedger, signer: SigningKey
) -> None:
    """...but a genuine, validly signed envelope replayed into a forged row passes both checks."""
    entries = _fill(ledger, signer)
    forged = _forge(entries[-1], envelope=entries[0].envelope, mlflow_run_id="run-a")
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq = 5")
    _insert(ledger, forged)
    assert ledger.verify_chain().entries == ROWS
    verify_envelope(Envelope.from_json(ledger.entries()[-1].envelope), {signer.keyid: signer.public_key})


def test_tamper_truncate_the_tail_is_not_detected(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entries = _fill(ledger, signer)
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq >= 4")
    assert ledger.verify_chain() == ChainReport(entries=3, head_hash=entries[2].entry_hash)


def test_tamper_rewrite_every_row_from_the_middle_on_is_not_detected(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entries = _fill(ledger, signer)
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME} WHERE seq >= 3")
    prev = entries[1].entry_hash
    for entry in entries[2:]:
        forged = _forge(entry, prev_hash=prev, task_id=f"{entry.task_id}-rewritten")
        _insert(ledger, forged)
        prev = forged.entry_hash
    report = ledger.verify_chain()
    assert report.entries == ROWS
    assert report.head_hash != entries[-1].entry_hash


# --- incremental verification from a trusted anchor (a signed checkpoint) ----------------------------


def test_verify_chain_from_an_anchor_reads_only_the_anchor_and_later_rows(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entries = _fill(ledger, signer, 8)
    full = ledger.verify_chain()
    assert (full.rows_walked, full.start_seq) == (8, 1)
    report = ledger.verify_chain(anchor=ChainAnchor(seq=6, entry_hash=entries[5].entry_hash))
    assert report == full  # the same ledger: size and head
    assert (report.rows_walked, report.start_seq) == (3, 6)  # rows 6, 7, 8
    at_head = ledger.verify_chain(anchor=ChainAnchor(seq=8, entry_hash=entries[7].entry_hash))
    assert at_head.rows_walked == 1
    earlier = ledger.verify_chain(anchor=ChainAnchor(seq=6, entry_hash=entries[5].entry_hash), from_seq=2)
    assert (earlier.rows_walked, earlier.start_seq) == (7, 2)
    assert ledger.verify_chain(from_seq=5).rows_walked == 4
    with pytest.raises(ConfigurationError, match="from_seq must be at least 1"):
        ledger.verify_chain(from_seq=0)


def test_verify_chain_refuses_an_anchor_the_ledger_does_not_carry(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entries = _fill(ledger, signer)
    with pytest.raises(CheckpointMismatch, match=r"ledger row seq=3 hashes to .*, the anchor records"):
        ledger.verify_chain(anchor=ChainAnchor(seq=3, entry_hash=entries[2].prev_hash))
    with pytest.raises(CheckpointMismatch, match=f"the ledger has {ROWS} entries, the anchor records 9: its tail was cut"):
        ledger.verify_chain(anchor=ChainAnchor(seq=9, entry_hash=entries[-1].entry_hash))


def test_verify_chain_from_an_anchor_still_catches_later_rows(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entries = _fill(ledger, signer)
    _drop_triggers(ledger)
    _execute(ledger, f"UPDATE {TABLE_NAME} SET task_id = 'forged' WHERE seq = 4")
    with pytest.raises(LedgerIntegrityError, match="seq=4: its contents no longer match its hash"):
        ledger.verify_chain(anchor=ChainAnchor(seq=2, entry_hash=entries[1].entry_hash))
    # The anchor row itself is re-hashed, not only compared.
    _execute(ledger, f"UPDATE {TABLE_NAME} SET task_id = 'forged' WHERE seq = 2")
    with pytest.raises(LedgerIntegrityError, match="seq=2: its contents no longer match its hash"):
        ledger.verify_chain(anchor=ChainAnchor(seq=2, entry_hash=entries[1].entry_hash))


# --- concurrency -----------------------------------------------------------------------------------

WORKERS, PER_WORKER = 4, 25


@pytest.mark.slow
def test_concurrent_appends_from_several_processes(ledger_url: str) -> None:
    EvidenceLedger(ledger_url).dispose()  # table exists before the race (see test_concurrent_first_creation_on_sqlite)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    processes = [ctx.Process(target=append_many, args=(ledger_url, w, PER_WORKER, barrier, results)) for w in range(WORKERS)]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert [error for _, _, error in outcomes if error] == []
    assert [process.exitcode for process in processes] == [0] * WORKERS

    total = WORKERS * PER_WORKER
    seqs = sorted(seq for _, worker_seqs, _ in outcomes for seq in worker_seqs)
    assert seqs == list(range(1, total + 1))  # every append got its own seq, none lost
    ledger = EvidenceLedger(ledger_url, create=False)
    try:
        entries = ledger.entries()
        assert [e.seq for e in entries] == list(range(1, total + 1))
        assert sorted(e.task_id for e in entries) == sorted(f"w{w}-{i}" for w in range(WORKERS) for i in range(PER_WORKER))
        report = ledger.verify_chain()
        assert report == ChainReport(entries=total, head_hash=entries[-1].entry_hash)
        for w in range(WORKERS):  # each worker's own entries are in its order
            assert [e.task_id for e in ledger.entries_for_mlflow_run(f"run-{w}")] == [f"w{w}-{i}" for i in range(PER_WORKER)]
    finally:
        ledger.dispose()


def test_concurrent_first_creation_on_sqlite(tmp_path: Path) -> None:
    """Two workers open a new ledger at once; the other's CREATE lands between our check and our CREATE.

    The interleaving is made deterministic with a real second ledger creating the real table from a
    SQLAlchemy hook that fires just before our CREATE TABLE reaches the database.
    """
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ours, theirs = EvidenceLedger(url, create=False), EvidenceLedger(url, create=False)
    fired: list[str] = []

    @sa.event.listens_for(ours.engine, "before_cursor_execute")
    def _other_worker_creates_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("CREATE TABLE") and not fired:
            fired.append(statement)
            theirs.create_schema()

    try:
        ours.create_schema()
        assert fired, "the hook never saw a CREATE TABLE"
        ours.append(envelope_json="{}", gate="g")
        assert ours.verify_chain().entries == 1
    finally:
        ours.dispose()
        theirs.dispose()


# --- configuration and reachability ----------------------------------------------------------------


def test_unreachable_database_is_store_unavailable() -> None:
    pytest.importorskip("psycopg2")
    url = "postgresql+psycopg2://postgres:s3cret-pw@127.0.0.1:1/x"
    with pytest.raises(StoreUnavailable, match="is unreachable") as info:
        EvidenceLedger(url)
    message = str(info.value)
    assert "127.0.0.1:1" in message
    assert "s3cret-pw" not in message
    assert "postgres:***@" in message


def test_unreachable_database_without_create() -> None:
    pytest.importorskip("psycopg2")
    ledger = EvidenceLedger("postgresql+psycopg2://postgres@127.0.0.1:1/x", create=False)
    assert "127.0.0.1:1" in repr(ledger)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        ledger.entries()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        ledger.verify_chain()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        ledger.entries_for_mlflow_run("run")
    with pytest.raises(StoreUnavailable, match="unreachable"):
        ledger.append(envelope_json="{}", gate="g", attempts=2)


def test_sqlite_database_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="unreachable"):
        EvidenceLedger(f"sqlite:///{tmp_path}")  # a directory, not a database file


@pytest.mark.parametrize("url", ["not a url", "", "ledger.db", "/var/lib/ledger.db"])
def test_non_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a SQLAlchemy URL"):
        EvidenceLedger(url)


def test_unknown_database_dialect_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot open ledger database nosuchdb://"):
        EvidenceLedger("nosuchdb://host/db")


def test_sqlite_parent_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "home").write_text("not a directory")
    with pytest.raises((ConfigurationError, StoreUnavailable)):
        EvidenceLedger(f"sqlite:///{tmp_path / 'home' / 'ledger.db'}")


def test_postgres_workers_can_run_with_only_select_and_insert(postgres_url: str) -> None:
    """Once the table and triggers exist, opening the ledger creates nothing: a least-privilege
    role (SELECT, INSERT) can append, and cannot change what is there."""
    import uuid

    import sqlalchemy as sa

    owner = EvidenceLedger(postgres_url)
    owner.append(envelope_json="{}", gate="g")
    schema = postgres_url.split("search_path%3D", 1)[1]
    role = f"mlsecops_writer_{uuid.uuid4().hex[:8]}"
    with owner.engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(sa.text(f'GRANT SELECT, INSERT ON "{schema}".mlsecops_evidence_ledger TO "{role}"'))
    base = sa.engine.make_url(postgres_url.split("?", 1)[0]).set(username=role)
    writer_url = f"{base.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"
    try:
        writer = EvidenceLedger(writer_url)
        writer.append(envelope_json='{"a": 1}', gate="g2")
        assert writer.verify_chain().entries == 2
        with pytest.raises(sa.exc.ProgrammingError), writer.engine.begin() as conn:
            conn.execute(sa.text("UPDATE mlsecops_evidence_ledger SET gate = 'x'"))
        writer.dispose()
    finally:
        with owner.engine.begin() as conn:
            conn.execute(sa.text(f'REVOKE ALL ON "{schema}".mlsecops_evidence_ledger FROM "{role}"'))
            conn.execute(sa.text(f'REVOKE ALL ON SCHEMA "{schema}" FROM "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        owner.dispose()


# --- verify_chain's walk: where it starts (mutation testing found these unguarded) -----------------------


def test_the_first_row_must_link_to_the_genesis(ledger: EvidenceLedger, signer: SigningKey) -> None:
    """A ledger rebuilt so that its first row links to something other than the genesis (e.g. the
    tail of another ledger renumbered, every hash recomputed) is refused at row 1."""
    entries = _fill(ledger, signer)
    _drop_triggers(ledger)
    _execute(ledger, f"DELETE FROM {TABLE_NAME}")
    prev = "f" * 64
    for entry in entries:
        forged = _forge(entry, prev_hash=prev)
        _insert(ledger, forged)
        prev = forged.entry_hash
    with pytest.raises(LedgerIntegrityError, match=r"ledger row seq=1 does not link to the row before it"):
        ledger.verify_chain()


def test_a_walk_from_a_row_after_the_anchor_still_starts_at_the_anchor(ledger: EvidenceLedger, signer: SigningKey) -> None:
    """``from_seq`` later than the anchor does not skip the anchor: the walk starts at the anchor row
    and checks its hash (a rewritten anchor row is caught even when the caller's rows come later)."""
    entries = _fill(ledger, signer)
    anchor = ChainAnchor(seq=2, entry_hash="0" * 63 + "1")
    with pytest.raises(CheckpointMismatch, match=r"ledger row seq=2 hashes to .* the anchor records 0000000000000000"):
        ledger.verify_chain(anchor=anchor, from_seq=4)
    report = ledger.verify_chain(anchor=ChainAnchor(seq=2, entry_hash=entries[1].entry_hash), from_seq=4)
    assert (report.start_seq, report.rows_walked, report.entries) == (2, len(entries) - 1, len(entries))


def test_a_walk_from_beyond_the_head_says_the_row_is_missing(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entries = _fill(ledger, signer)
    with pytest.raises(
        LedgerIntegrityError, match=rf"ledger row seq={len(entries) + 1} is missing \(the ledger ends before it\)"
    ):
        ledger.verify_chain(from_seq=len(entries) + 1)
    report = ledger.verify_chain(from_seq=2)
    assert (report.start_seq, report.rows_walked, report.entries) == (2, len(entries) - 1, len(entries))


def test_a_walk_from_an_anchor_reads_only_the_rows_from_the_anchor_on(ledger: EvidenceLedger, signer: SigningKey) -> None:
    entries = _fill(ledger, signer)
    report = ledger.verify_chain(anchor=ChainAnchor(seq=len(entries), entry_hash=entries[-1].entry_hash))
    assert (report.start_seq, report.rows_walked, report.head_hash) == (len(entries), 1, entries[-1].entry_hash)
    whole = ledger.verify_chain()
    assert (whole.start_seq, whole.rows_walked, whole.head_hash) == (1, len(entries), entries[-1].entry_hash)


def test_a_walk_from_the_second_row_of_a_one_row_ledger_says_it_is_missing(ledger: EvidenceLedger, signer: SigningKey) -> None:
    _fill(ledger, signer, 1)
    with pytest.raises(LedgerIntegrityError, match=r"ledger row seq=2 is missing \(the ledger ends before it\)"):
        ledger.verify_chain(from_seq=2)
