"""Exact tests for evidence/ledger.py written from surviving mutants (tests/mutation/README.md)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from airflow_mlsecops.evidence.ledger import TABLE_NAME, ChainAnchor, EvidenceLedger, ledger_table
from airflow_mlsecops.exceptions import CheckpointMismatch, ConfigurationError, LedgerIntegrityError, StoreUnavailable


def test_every_read_of_an_unreachable_ledger_names_the_database() -> None:
    pytest.importorskip("psycopg2")
    ledger = EvidenceLedger("postgresql+psycopg2://postgres@127.0.0.1:1/x", create=False)
    reads = {
        "count_up_to": lambda: ledger.count_up_to(3),
        "head_seq": ledger.head_seq,
        "entry_at": lambda: ledger.entry_at(1),
    }
    for name, read in reads.items():
        with pytest.raises(StoreUnavailable) as caught:
            read()
        message = str(caught.value)
        assert message.startswith("ledger database postgresql+psycopg2://postgres@127.0.0.1:1/x is unreachable: "), name
        assert "127.0.0.1" in message.split(" is unreachable: ", 1)[1], name  # the driver's own reason follows


def test_a_seq_that_is_not_in_the_ledger_has_no_entry(tmp_path: Path) -> None:
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert ledger.entry_at(1) is None
        ledger.append(envelope_json="{}", gate="g")
        assert ledger.entry_at(1) is not None
        assert ledger.entry_at(2) is None
    finally:
        ledger.dispose()


def test_a_row_the_database_refuses_is_not_retried_as_contention(tmp_path: Path) -> None:
    """An IntegrityError while the head did not move is the row itself (here a NULL gate): refused at once."""
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            ledger.append(envelope_json="{}", gate=None)  # type: ignore[arg-type]  # the point: NOT NULL
        assert str(caught.value).startswith("the ledger refused the entry: NOT NULL constraint failed")
        assert ledger.head_seq() == 0
    finally:
        ledger.dispose()


# --- opening a ledger: URLs, folders, the schema (mutants of __init__, _schema_complete, create_schema) ----


def test_opening_messages_are_exact(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EvidenceLedger("not a url")
    assert str(caught.value) == "ledger URL 'not a url' is not a SQLAlchemy URL"
    with pytest.raises(ConfigurationError) as caught:
        EvidenceLedger("nosuchdb://host/db")
    assert str(caught.value) == "cannot open ledger database nosuchdb://host/db: Can't load plugin: sqlalchemy.dialects:nosuchdb"
    (tmp_path / "home").write_text("a file, not a folder")
    url = f"sqlite:///{tmp_path / 'home' / 'ledger.db'}"
    with pytest.raises(ConfigurationError) as caught:
        EvidenceLedger(url)
    assert str(caught.value) == f"ledger URL {url!r}: cannot create its directory (File exists)"


def test_sqlite_ledgers_make_their_folders_and_may_live_in_memory(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "ledger.db"
    ledger = EvidenceLedger(f"sqlite:///{nested}")
    ledger.append(envelope_json="{}", gate="g")
    again = EvidenceLedger(f"sqlite:///{nested}")  # the folder exists now: opened, not refused
    assert again.head_seq() == 1 and nested.is_file()
    for opened in (ledger, again):
        opened.dispose()
    for url in ("sqlite://", "sqlite:///:memory:"):
        memory = EvidenceLedger(url)
        assert memory.head_seq() == 0
        memory.dispose()
    assert not (tmp_path / ":memory:").exists()


def test_repr_hides_the_password() -> None:
    pytest.importorskip("psycopg2")
    ledger = EvidenceLedger("postgresql+psycopg2://postgres:s3cret@127.0.0.1:1/x", create=False)
    assert repr(ledger) == "EvidenceLedger(postgresql+psycopg2://postgres:***@127.0.0.1:1/x)"
    with pytest.raises(StoreUnavailable) as caught:
        ledger.create_schema()
    assert str(caught.value).startswith("ledger database postgresql+psycopg2://postgres:***@127.0.0.1:1/x is unreachable: ")


def _statements(ledger: EvidenceLedger) -> list[str]:
    seen: list[str] = []
    sa.event.listen(ledger.engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


def _ddl(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(("CREATE", "SELECT PG_ADVISORY"))]


def test_a_complete_sqlite_ledger_is_opened_without_creating_anything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    EvidenceLedger(url).dispose()
    ledger = EvidenceLedger(url, create=False)
    seen = _statements(ledger)
    ledger.create_schema()
    assert _ddl(seen) == []
    ledger.dispose()


def test_a_sqlite_ledger_missing_a_trigger_gets_it_back(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    EvidenceLedger(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP TRIGGER {TABLE_NAME}_no_delete")
    ledger = EvidenceLedger(f"sqlite:///{path}")
    try:
        ledger.append(envelope_json="{}", gate="g")
        with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(f"DELETE FROM {TABLE_NAME}")
        assert ledger.head_seq() == 1
    finally:
        ledger.dispose()


# --- PostgreSQL: the schema check, creation rights, a concurrent writer ---------------------------


@pytest.mark.postgres
def test_a_complete_postgres_ledger_is_opened_without_creating_anything(postgres_url: str) -> None:
    EvidenceLedger(postgres_url).dispose()
    ledger = EvidenceLedger(postgres_url, create=False)
    seen = _statements(ledger)
    ledger.create_schema()
    assert _ddl(seen) == []
    ledger.dispose()


@pytest.mark.postgres
def test_a_postgres_ledger_missing_its_triggers_gets_them_back(postgres_url: str) -> None:
    first = EvidenceLedger(postgres_url)
    with first.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TRIGGER {TABLE_NAME}_no_change ON {TABLE_NAME}"))
        conn.execute(sa.text(f"DROP TRIGGER {TABLE_NAME}_no_truncate ON {TABLE_NAME}"))
    first.dispose()
    ledger = EvidenceLedger(postgres_url)
    try:
        ledger.append(envelope_json="{}", gate="g")
        with pytest.raises(sa.exc.InternalError, match="append-only"), ledger.engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {TABLE_NAME}"))
    finally:
        ledger.dispose()


@pytest.fixture
def reader_url(postgres_url: str) -> Iterator[tuple[str, str]]:
    """``(owner_url, url of a role that may only use the schema)``."""
    import uuid

    owner = sa.create_engine(postgres_url)
    schema = postgres_url.split("search_path%3D", 1)[1]
    role = f"mlsecops_reader_{uuid.uuid4().hex[:8]}"
    with owner.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
    base = sa.engine.make_url(postgres_url.split("?", 1)[0]).set(username=role)
    try:
        yield postgres_url, f"{base.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        owner.dispose()


@pytest.mark.postgres
def test_a_role_that_may_not_create_or_insert_gets_clear_errors(reader_url: tuple[str, str]) -> None:
    owner_url, url = reader_url
    with pytest.raises(StoreUnavailable) as caught:
        EvidenceLedger(url)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    assert str(caught.value).startswith(f"cannot create the ledger table in {shown}: (psycopg2.errors.InsufficientPrivilege)")
    owner = EvidenceLedger(owner_url)
    schema = owner_url.split("search_path%3D", 1)[1]
    role = sa.engine.make_url(url).username
    with owner.engine.begin() as conn:
        conn.execute(sa.text(f'GRANT SELECT ON "{schema}".{TABLE_NAME} TO "{role}"'))
    reader = EvidenceLedger(url)  # complete: nothing to create
    try:
        with pytest.raises(StoreUnavailable) as caught:
            reader.append(envelope_json="{}", gate="g")
        assert str(caught.value).startswith(f"cannot append to the ledger in {shown}: (psycopg2.errors.InsufficientPrivilege)")
        assert reader.head_seq() == 0
    finally:
        reader.dispose()
        with owner.engine.begin() as conn:
            conn.execute(sa.text(f'REVOKE ALL ON "{schema}".{TABLE_NAME} FROM "{role}"'))
        owner.dispose()


def _writer_before_first_insert(ledger: EvidenceLedger, other: EvidenceLedger, times: int) -> list[int]:
    """Let ``other`` append a row just before each of ``ledger``'s next ``times`` INSERTs (a real
    concurrent writer taking the seq that ``ledger`` read as free)."""
    taken: list[int] = []

    def before(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith("INSERT") and len(taken) < times:
            taken.append(other.append(envelope_json=json.dumps({"other": len(taken)}), gate="other").seq)

    sa.event.listen(ledger.engine, "before_cursor_execute", before)
    return taken


@pytest.mark.postgres
def test_an_append_that_loses_its_seq_to_another_writer_retries_on_the_new_head(postgres_url: str) -> None:
    ledger, other = EvidenceLedger(postgres_url), EvidenceLedger(postgres_url)
    try:
        ledger.append(envelope_json="{}", gate="first")
        taken = _writer_before_first_insert(ledger, other, 2)
        entry = ledger.append(envelope_json='{"mine": 1}', gate="mine")
        assert taken == [2, 3] and entry.seq == 4 and entry.gate == "mine"
        assert entry.prev_hash == other.entry_at(3).entry_hash  # type: ignore[union-attr]
        assert ledger.verify_chain().entries == 4
    finally:
        ledger.dispose()
        other.dispose()


@pytest.mark.postgres
def test_an_append_that_keeps_losing_gives_up_after_its_attempts(postgres_url: str) -> None:
    ledger, other = EvidenceLedger(postgres_url), EvidenceLedger(postgres_url)
    try:
        taken = _writer_before_first_insert(ledger, other, 3)
        with pytest.raises(StoreUnavailable) as caught:
            ledger.append(envelope_json="{}", gate="mine", attempts=3)
        assert str(caught.value) == "could not append to the ledger after 3 attempts (heavy contention)"
        assert taken == [1, 2, 3] and ledger.head_seq() == 3
    finally:
        ledger.dispose()
        other.dispose()


# --- second pass (session 17): survivors of the SQLite-only run re-run with PostgreSQL ---------------


def test_a_sqlite_ledger_waits_30_seconds_for_a_busy_database(tmp_path: Path) -> None:
    """Concurrent workers share one SQLite file: each connection waits up to 30 s for a lock."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = EvidenceLedger(url)
    try:
        assert ledger.url == url
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        ledger.dispose()


def test_a_url_that_cannot_be_opened_is_shown_without_its_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        EvidenceLedger("nosuchdb://user:s3cret@host/db")
    message = "cannot open ledger database nosuchdb://user:***@host/db: Can't load plugin: sqlalchemy.dialects:nosuchdb"
    assert str(caught.value) == message


def test_a_read_only_sqlite_ledger_cannot_be_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database opens (the schema check reads it) but refuses the CREATE: an OperationalError of the creation."""
    monkeypatch.chdir(tmp_path)  # were the URI read as a path, a "file:" folder would appear here
    path = tmp_path / "ledger.db"
    sqlite3.connect(path).close()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with pytest.raises(StoreUnavailable) as caught:
        EvidenceLedger(url)
    shown = f"sqlite:///file%3A{path}?mode=ro&uri=true"  # as SQLAlchemy renders it
    assert str(caught.value) == f"ledger database {shown} is unreachable: attempt to write a readonly database"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]  # a URI is not a folder to make


def _forged_row(seq: int, prev_hash: str, entry_hash: str) -> dict[str, object]:
    return {
        "seq": seq,
        "created_at": "2026-01-01T00:00:00Z",
        "kind": "attestation",
        "gate": "forged",
        "envelope": "{}",
        "envelope_sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "prev_hash": prev_hash,
        "entry_hash": entry_hash,
    }


def test_a_row_inserted_before_the_genesis_breaks_the_chain(tmp_path: Path) -> None:
    """INSERT is allowed (workers need it): a row with seq 0 added in front of the chain must not be skipped."""
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        ledger.append(envelope_json="{}", gate="g")
        assert ledger.verify_chain().entries == 1
        with ledger.engine.begin() as conn:
            conn.execute(ledger_table.insert().values(**_forged_row(0, "f" * 64, "e" * 64)))
        with pytest.raises(LedgerIntegrityError) as caught:
            ledger.verify_chain()
        assert str(caught.value) == "ledger row seq=1 is missing (next row found is seq=0)"
    finally:
        ledger.dispose()


def test_an_anchor_mismatch_names_both_hashes_to_16_characters(tmp_path: Path) -> None:
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        ledger.append(envelope_json="{}", gate="g")
        second = ledger.append(envelope_json="{}", gate="h")
        with pytest.raises(CheckpointMismatch) as caught:
            ledger.verify_chain(anchor=ChainAnchor(seq=2, entry_hash="0123456789abcdef" + "9" * 48))
        assert str(caught.value) == (
            f"ledger row seq=2 hashes to {second.entry_hash[:16]}..., the anchor records 0123456789abcdef...: "
            "a row up to seq=2 was rewritten"
        )
    finally:
        ledger.dispose()


# SQLite "database is locked": the append retries after 0.05 s, up to its attempts. The tests shorten
# the wait of each statement (PRAGMA busy_timeout on the ledger's connections) and hold the write lock
# from a second connection (BEGIN IMMEDIATE), so each INSERT fails at once with "database is locked".


def _inserts(ledger: EvidenceLedger) -> list[str]:
    """The INSERTs sent by ``ledger`` from now on (each attempt of an append sends one)."""
    inserts: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    sa.event.listen(ledger.engine, "before_cursor_execute", seen)
    return inserts


def _locked_sqlite_ledger(path: Path) -> tuple[EvidenceLedger, sqlite3.Connection, list[str]]:
    ledger = EvidenceLedger(f"sqlite:///{path}")
    sa.event.listen(ledger.engine, "connect", lambda dbapi, record: dbapi.execute("PRAGMA busy_timeout = 1"))
    ledger.engine.dispose()  # the connection of create_schema waits 30 s: open new ones
    inserts = _inserts(ledger)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return ledger, holder, inserts


def test_a_locked_sqlite_ledger_is_retried_until_the_lock_is_released(tmp_path: Path) -> None:
    ledger, holder, inserts = _locked_sqlite_ledger(tmp_path / "ledger.db")

    def release_before_the_third_insert(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith("INSERT") and len(inserts) == 3 and holder.in_transaction:
            holder.rollback()

    sa.event.listen(ledger.engine, "before_cursor_execute", release_before_the_third_insert)
    try:
        entry = ledger.append(envelope_json="{}", gate="g", attempts=5)
        assert entry.seq == 1 and len(inserts) == 3
        assert ledger.verify_chain().entries == 1
    finally:
        holder.close()
        ledger.dispose()


def test_a_sqlite_ledger_that_stays_locked_gives_up_after_its_attempts(tmp_path: Path) -> None:
    ledger, holder, inserts = _locked_sqlite_ledger(tmp_path / "ledger.db")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            ledger.append(envelope_json="{}", gate="g", attempts=3)
        assert str(caught.value) == f"ledger database sqlite:///{tmp_path / 'ledger.db'} is unreachable: database is locked"
        assert len(inserts) == 3
        inserts.clear()
        with pytest.raises(StoreUnavailable) as caught:
            ledger.append(envelope_json="{}", gate="g")  # the default budget
        assert str(caught.value) == f"ledger database sqlite:///{tmp_path / 'ledger.db'} is unreachable: database is locked"
        assert len(inserts) == 50
    finally:
        holder.close()
        ledger.dispose()


@pytest.mark.postgres
def test_a_postgres_ledger_survives_a_dropped_connection(postgres_url: str) -> None:
    """The pooled connection is checked before use: a server-side disconnect (a restart, an idle
    timeout) costs a reconnect, not a failed append."""
    ledger = EvidenceLedger(postgres_url)
    killer = sa.create_engine(postgres_url)
    try:
        ledger.append(envelope_json="{}", gate="g")
        with ledger.engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        pool = ledger.engine.pool
        assert isinstance(pool, sa.pool.QueuePool) and pool.checkedin() == 1  # the only pooled connection is the one ended below
        with killer.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one() is True
        with killer.connect() as conn:
            for _ in range(100):
                if not conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar_one():
                    break
                time.sleep(0.05)
        assert ledger.append(envelope_json="{}", gate="h").seq == 2
        assert ledger.verify_chain().entries == 2
    finally:
        ledger.dispose()
        killer.dispose()


@pytest.mark.postgres
def test_a_postgres_error_that_is_not_a_lock_is_not_retried(postgres_url: str) -> None:
    """Only SQLite's "database is locked" is retried: a PostgreSQL lock timeout (an OperationalError
    too) is reported at once, after one INSERT."""
    ledger = EvidenceLedger(postgres_url)
    holder = sa.create_engine(postgres_url)

    def short_lock_timeout(dbapi: Any, record: object) -> None:
        with dbapi.cursor() as cursor:
            cursor.execute("SET lock_timeout = 100")
        dbapi.commit()  # kept for the session, not undone by the first rollback

    sa.event.listen(ledger.engine, "connect", short_lock_timeout)
    ledger.engine.dispose()
    inserts = _inserts(ledger)
    shown = sa.engine.make_url(postgres_url).render_as_string(hide_password=True)
    try:
        with holder.connect() as lock:
            lock.execute(sa.text(f"LOCK TABLE {TABLE_NAME} IN EXCLUSIVE MODE"))
            with pytest.raises(StoreUnavailable) as caught:
                ledger.append(envelope_json="{}", gate="g", attempts=3)
            lock.rollback()
        assert str(caught.value).startswith(f"ledger database {shown} is unreachable: canceling statement due to lock timeout")
        assert len(inserts) == 1
        assert ledger.head_seq() == 0
    finally:
        ledger.dispose()
        holder.dispose()


class _ThirdBackendDialect(SQLiteDialect_pysqlite):
    """SQLite's driver under another dialect name: a backend the ledger has no triggers for."""

    name = "mlsecopsother"
    supports_statement_cache = True


def test_a_backend_without_triggers_is_created_once_and_then_only_read(tmp_path: Path) -> None:
    """On a database other than SQLite and PostgreSQL the table is created without triggers; once
    it exists, opening the ledger again only reads (a worker may have no CREATE right)."""
    sa.dialects.registry.register("mlsecopsother", __name__, "_ThirdBackendDialect")
    url = f"mlsecopsother:///{tmp_path / 'ledger.db'}"
    ledger = EvidenceLedger(url)
    try:
        assert ledger.engine.dialect.name == "mlsecopsother"
        assert ledger.append(envelope_json="{}", gate="g").seq == 1
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").scalar() == 0
    finally:
        ledger.dispose()
    again = EvidenceLedger(url, create=False)
    seen = _statements(again)
    commits: list[object] = []
    sa.event.listen(again.engine, "commit", commits.append)
    try:
        again.create_schema()
        assert seen == [f'PRAGMA main.table_info("{TABLE_NAME}")'] and commits == []
        assert again.verify_chain().entries == 1
    finally:
        again.dispose()


@pytest.mark.postgres
def test_first_creation_on_postgres_waits_for_the_creation_lock(postgres_url: str) -> None:
    """Workers creating a new ledger at once are serialised by an advisory lock: while another one
    holds it, creation waits (here until a 200 ms lock timeout) and creates nothing."""
    url = f"{postgres_url}%20-clock_timeout%3D200"
    holder = sa.create_engine(postgres_url)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    try:
        with holder.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(872351)"))
            try:
                with pytest.raises(StoreUnavailable) as caught:
                    EvidenceLedger(url)
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(872351)"))
            assert not sa.inspect(conn).has_table(TABLE_NAME)
        assert str(caught.value).startswith(f"ledger database {shown} is unreachable: canceling statement due to lock timeout")
        ledger = EvidenceLedger(url)  # the lock is free: created
        assert ledger.head_seq() == 0
        ledger.dispose()
    finally:
        holder.dispose()
