"""Exact tests for evidence/ledger.py written from surviving mutants (tests/mutation/README.md)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from airflow_mlsecops.evidence.ledger import TABLE_NAME, EvidenceLedger
from airflow_mlsecops.exceptions import ConfigurationError, StoreUnavailable


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

    def before(conn, cursor, statement, *rest) -> None:
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
