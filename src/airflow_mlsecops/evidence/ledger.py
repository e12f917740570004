"""A tamper-evident, append-only evidence ledger in any SQLAlchemy database.

Each entry holds a signed DSSE envelope and a hash chained to the entry before it::

    entry_hash = sha256(canonical_json({seq, created_at, kind, gate, dag_id, run_id, task_id,
                                        mlflow_run_id, envelope_sha256, ref_seq, prev_hash}))

Changing, removing or inserting any row breaks the chain from that row on, and
:meth:`EvidenceLedger.verify_chain` says which row. Database triggers refuse UPDATE and DELETE on
SQLite and PostgreSQL as a second line of defence (an administrator can drop them; the chain still
tells). Concurrent writers (several Celery workers) are serialised by the primary key on ``seq``:
the loser of a race retries on the new head.

SQLite by default (``sqlite:///<MLSECOPS_HOME>/ledger.db``); any SQLAlchemy URL by configuration,
e.g. ``postgresql+psycopg2://user@host/db``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from airflow_mlsecops.evidence.statement import canonical_json
from airflow_mlsecops.exceptions import (
    CheckpointMismatch,
    ConfigurationError,
    LedgerIntegrityError,
    StoreUnavailable,
)

GENESIS_HASH = "0" * 64
TABLE_NAME = "mlsecops_evidence_ledger"
KIND_ATTESTATION = "attestation"
KIND_RECORDING_FAILED = "recording-failed"

_metadata = sa.MetaData()
ledger_table = sa.Table(
    TABLE_NAME,
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("gate", sa.String(200), nullable=False),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("task_id", sa.String(250)),
    sa.Column("mlflow_run_id", sa.String(64), index=True),
    sa.Column("envelope", sa.Text, nullable=False),
    sa.Column("envelope_sha256", sa.String(64), nullable=False),
    sa.Column("ref_seq", sa.Integer),
    sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
)

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE_NAME}_no_update BEFORE UPDATE ON {TABLE_NAME}
        BEGIN SELECT RAISE(ABORT, 'the mlsecops evidence ledger is append-only'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE_NAME}_no_delete BEFORE DELETE ON {TABLE_NAME}
        BEGIN SELECT RAISE(ABORT, 'the mlsecops evidence ledger is append-only'); END""",
    # INSERT OR REPLACE deletes the conflicting row without firing the DELETE trigger: refuse it.
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE_NAME}_no_replace BEFORE INSERT ON {TABLE_NAME}
        WHEN EXISTS (SELECT 1 FROM {TABLE_NAME} WHERE seq = NEW.seq OR prev_hash = NEW.prev_hash
                     OR entry_hash = NEW.entry_hash)
        BEGIN SELECT RAISE(ABORT, 'the mlsecops evidence ledger is append-only'); END""",
]
_POSTGRES_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION {TABLE_NAME}_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'the mlsecops evidence ledger is append-only'; END; $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE TRIGGER {TABLE_NAME}_no_change BEFORE UPDATE OR DELETE ON {TABLE_NAME}
        FOR EACH ROW EXECUTE FUNCTION {TABLE_NAME}_append_only()""",
    f"""CREATE OR REPLACE TRIGGER {TABLE_NAME}_no_truncate BEFORE TRUNCATE ON {TABLE_NAME}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE_NAME}_append_only()""",
]


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    created_at: str
    kind: str
    gate: str
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    mlflow_run_id: str | None
    envelope: str
    envelope_sha256: str
    ref_seq: int | None
    prev_hash: str
    entry_hash: str

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "created_at": self.created_at,
            "kind": self.kind,
            "gate": self.gate,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "mlflow_run_id": self.mlflow_run_id,
            "envelope_sha256": self.envelope_sha256,
            "ref_seq": self.ref_seq,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.hashed_fields())).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """What :meth:`EvidenceLedger.verify_chain` established.

    ``entries`` is the ledger's size (the head's seq), ``rows_walked`` how many rows were read and
    re-hashed, from ``start_seq`` to the head (all of them in a full walk). Two reports are equal
    when they describe the same ledger (size and head), however much of it was walked.
    """

    entries: int
    head_hash: str
    rows_walked: int = field(default=0, compare=False)
    start_seq: int = field(default=1, compare=False)


@dataclass(frozen=True)
class ChainAnchor:
    """A trusted point of the chain, e.g. from a signed checkpoint: the row ``seq`` must carry
    exactly ``entry_hash``. Every row before it is chained into that hash."""

    seq: int
    entry_hash: str


class EvidenceLedger:
    """Append-only, hash-chained store of signed envelopes.

    :param url: a SQLAlchemy database URL.
    :param create: create the table (and its append-only triggers) if missing.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        try:
            sa_url = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise ConfigurationError(f"ledger URL {url!r} is not a SQLAlchemy URL") from exc
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if sa_url.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}
            # A "file:" URI (uri=true) is not a path: making its folder would make "./file:/..."
            if sa_url.database and sa_url.database != ":memory:" and not sa_url.query.get("uri"):
                try:
                    Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigurationError(f"ledger URL {url!r}: cannot create its directory ({exc.strerror})") from exc
        try:
            self.engine: Engine = sa.create_engine(sa_url, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigurationError(f"cannot open ledger database {sa_url.render_as_string(hide_password=True)}: {exc}") from exc
        self._display_url = sa_url.render_as_string(hide_password=True)
        if create:
            self.create_schema()

    def __repr__(self) -> str:
        return f"EvidenceLedger({self._display_url})"

    def _schema_complete(self) -> bool:
        """Table and append-only triggers exist already (then nothing is created, so workers
        can run with only SELECT and INSERT on the table)."""
        backend = self.engine.dialect.name
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(TABLE_NAME):
                return False
            if backend == "postgresql":
                query = "SELECT count(*) FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) AND tgname LIKE :p"
                found = conn.execute(sa.text(query), {"t": TABLE_NAME, "p": f"{TABLE_NAME}_no_%"}).scalar_one()
                return int(found) >= 2
            if backend == "sqlite":
                query = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
                return int(conn.execute(sa.text(query), {"t": TABLE_NAME}).scalar_one()) >= len(_SQLITE_TRIGGERS)
            return True

    def create_schema(self) -> None:
        backend = self.engine.dialect.name
        try:
            if self._schema_complete():
                return
        except OperationalError as exc:
            raise StoreUnavailable(f"ledger database {self._display_url} is unreachable: {exc.orig}") from exc
        except SQLAlchemyError:
            pass  # fall through to creation, which reports its own error
        try:
            with self.engine.begin() as conn:
                if backend == "postgresql":
                    # Serialise first-time creation across workers.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(872351)"))
                if backend == "sqlite":
                    # IF NOT EXISTS: two workers creating a new ledger at once must not race.
                    conn.execute(CreateTable(ledger_table, if_not_exists=True))
                    for index in ledger_table.indexes:
                        conn.execute(CreateIndex(index, if_not_exists=True))
                else:
                    _metadata.create_all(conn, checkfirst=True)
                triggers = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(backend, [])
                for ddl in triggers:
                    conn.execute(sa.text(ddl))
        except OperationalError as exc:
            raise StoreUnavailable(f"ledger database {self._display_url} is unreachable: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot create the ledger table in {self._display_url}: {exc}") from exc

    def append(
        self,
        *,
        envelope_json: str,
        gate: str,
        kind: str = KIND_ATTESTATION,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        mlflow_run_id: str | None = None,
        ref_seq: int | None = None,
        attempts: int = 50,
    ) -> LedgerEntry:
        """Append one entry on top of the current head and return it."""
        envelope_sha256 = hashlib.sha256(envelope_json.encode("utf-8")).hexdigest()
        for attempt in range(attempts):
            try:
                with self.engine.begin() as conn:
                    head = conn.execute(
                        sa.select(ledger_table.c.seq, ledger_table.c.entry_hash).order_by(ledger_table.c.seq.desc()).limit(1)
                    ).first()
                    seq, prev_hash = (head.seq + 1, head.entry_hash) if head else (1, GENESIS_HASH)
                    draft = LedgerEntry(
                        seq=seq,
                        created_at=datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                        kind=kind,
                        gate=gate,
                        dag_id=dag_id,
                        run_id=run_id,
                        task_id=task_id,
                        mlflow_run_id=mlflow_run_id,
                        envelope=envelope_json,
                        envelope_sha256=envelope_sha256,
                        ref_seq=ref_seq,
                        prev_hash=prev_hash,
                        entry_hash="",
                    )
                    entry = LedgerEntry(**{**draft.__dict__, "entry_hash": draft.computed_hash()})
                    conn.execute(ledger_table.insert().values(**entry.__dict__))
                return entry
            except IntegrityError as exc:
                # Another writer took this seq: retry on the new head. If the head did not move, the
                # row itself is invalid (e.g. a NOT NULL column): retrying cannot help.
                if self._head_seq() == seq - 1:
                    raise StoreUnavailable(f"the ledger refused the entry: {exc.orig}") from exc
                time.sleep(min(0.005 * (attempt + 1), 0.1))
            except OperationalError as exc:
                if "locked" in str(exc.orig) and attempt < attempts - 1:
                    time.sleep(0.05)
                    continue
                raise StoreUnavailable(f"ledger database {self._display_url} is unreachable: {exc.orig}") from exc
            except SQLAlchemyError as exc:
                raise StoreUnavailable(f"cannot append to the ledger in {self._display_url}: {exc}") from exc
        raise StoreUnavailable(f"could not append to the ledger after {attempts} attempts (heavy contention)")

    def _head_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(ledger_table.c.seq), 0))).scalar_one())

    def _rows(self, where: Any = None) -> Iterator[LedgerEntry]:
        query = sa.select(ledger_table).order_by(ledger_table.c.seq)
        if where is not None:
            query = query.where(where)
        try:
            with self.engine.connect() as conn:
                for row in conn.execute(query):
                    yield LedgerEntry(**row._mapping)
        except OperationalError as exc:
            raise StoreUnavailable(f"ledger database {self._display_url} is unreachable: {exc.orig}") from exc

    def entries(self) -> list[LedgerEntry]:
        return list(self._rows())

    def entries_for_mlflow_run(self, mlflow_run_id: str) -> list[LedgerEntry]:
        return list(self._rows(ledger_table.c.mlflow_run_id == mlflow_run_id))

    def entry_at(self, seq: int) -> LedgerEntry | None:
        """The row ``seq``, or None when the ledger has no such row."""
        return next(iter(self._rows(ledger_table.c.seq == seq)), None)

    def head_seq(self) -> int:
        """The highest seq in the ledger (0 when empty)."""
        try:
            return self._head_seq()
        except OperationalError as exc:
            raise StoreUnavailable(f"ledger database {self._display_url} is unreachable: {exc.orig}") from exc

    def count_up_to(self, seq: int) -> int:
        """How many rows have a seq of at most ``seq`` (an index count: no row is read)."""
        query = sa.select(sa.func.count()).select_from(ledger_table).where(ledger_table.c.seq <= seq)
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one())
        except OperationalError as exc:
            raise StoreUnavailable(f"ledger database {self._display_url} is unreachable: {exc.orig}") from exc

    def verify_chain(self, *, anchor: ChainAnchor | None = None, from_seq: int | None = None) -> ChainReport:
        """Walk the chain; raise :class:`LedgerIntegrityError` naming the first bad row.

        Without arguments the whole chain is walked from the genesis. With ``anchor`` (a trusted
        seq and hash, e.g. of a signed checkpoint) only the anchor row and the rows after it are
        read: the anchor row must still hash to exactly the anchored hash, and each later row must
        chain to it. Rows before the anchor are not read; their hashes are chained into the
        anchor's, so rewriting any of them (and re-chaining) changes the anchor row's hash.

        :param anchor: the trusted point to walk from.
        :param from_seq: start the walk at this row instead (at most ``anchor.seq``; 1 walks the
            whole chain and still checks the anchor). Rows from here on are re-hashed, so a row
            whose contents were changed without re-chaining is caught too. Use it for the rows a
            caller is about to rely on, e.g. a run's entries.
        :raises CheckpointMismatch: the anchor row is missing or carries another hash.
        :raises LedgerIntegrityError: a row is missing, changed or does not link to the one before.
        """
        start = 1 if anchor is None else anchor.seq
        if from_seq is not None:
            if from_seq < 1:
                raise ConfigurationError(f"from_seq must be at least 1, not {from_seq}")
            start = min(start, from_seq) if anchor is not None else from_seq
        expected_seq, prev_hash, count = start, GENESIS_HASH if start == 1 else None, 0
        anchor_seen = anchor is None
        for entry in self._rows(ledger_table.c.seq >= start if start > 1 else None):
            if entry.seq != expected_seq:
                raise LedgerIntegrityError(f"ledger row seq={expected_seq} is missing (next row found is seq={entry.seq})")
            if prev_hash is not None and entry.prev_hash != prev_hash:
                raise LedgerIntegrityError(f"ledger row seq={entry.seq} does not link to the row before it")
            if hashlib.sha256(entry.envelope.encode("utf-8")).hexdigest() != entry.envelope_sha256:
                raise LedgerIntegrityError(f"ledger row seq={entry.seq}: the stored envelope was changed")
            if entry.computed_hash() != entry.entry_hash:
                raise LedgerIntegrityError(f"ledger row seq={entry.seq}: its contents no longer match its hash")
            if anchor is not None and entry.seq == anchor.seq:
                if entry.entry_hash != anchor.entry_hash:
                    raise CheckpointMismatch(
                        f"ledger row seq={entry.seq} hashes to {entry.entry_hash[:16]}..., the anchor records "
                        f"{anchor.entry_hash[:16]}...: a row up to seq={entry.seq} was rewritten"
                    )
                anchor_seen = True
            prev_hash, expected_seq, count = entry.entry_hash, expected_seq + 1, count + 1
        if anchor is not None and not anchor_seen:
            raise CheckpointMismatch(
                f"the ledger has {self.head_seq()} entries, the anchor records {anchor.seq}: its tail was cut"
            )
        if count == 0 and start > 1:
            raise LedgerIntegrityError(f"ledger row seq={start} is missing (the ledger ends before it)")
        return ChainReport(entries=expected_seq - 1, head_hash=prev_hash or GENESIS_HASH, rows_walked=count, start_seq=start)

    def dispose(self) -> None:
        self.engine.dispose()
