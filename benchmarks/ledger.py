"""Row 5: the evidence ledger on SQLite (a file in the temp dir) and on PostgreSQL (when
``MLSECOPS_TEST_POSTGRES_URL`` is set; a private schema, dropped afterwards).

* append rate (entries/s, one committed transaction per entry, real signed envelopes) vs a plain
  SQLAlchemy insert of the same rows into an identical table, without chaining;
* ``verify_chain`` rate over 2,000 entries vs a plain ``SELECT`` of the same rows (the read cost
  without re-hashing).

Appends are measured in alternating blocks (ours, plain, ours, ...) and the median block rate is
reported. The chain is topped up to 2,000 entries through the project's own ``append`` with
durability relaxed for the top-up only (SQLite ``synchronous=OFF``, PostgreSQL
``synchronous_commit=off``), which the verify rate does not depend on.

Signed checkpoints (SQLite, a local checkpoint directory), on a ledger of 100,000 entries (10,000
with ``--quick``) inserted in bulk with the ledger's own hashing and ``synchronous=OFF``:

* checkpoint write (ms): verify the chain from the previous checkpoint, sign, write and fsync;
* checkpoint verify (ms): read the newest checkpoint, check its signature, walk from it to the head;
* verification from a checkpoint 1,000 entries behind the head vs a full ``verify_chain`` (ms).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from benchmarks._common import Row, alternate, error_row, median, paired_ratio, tmp_root

GROUP = "ledger"
POSTGRES_ENV = "MLSECOPS_TEST_POSTGRES_URL"


@contextmanager
def _postgres_schema(base: str) -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"mlsecops_bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(base)
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _relaxed(url: str) -> Any:
    """The same ledger through an engine whose commits do not wait for the disk (top-up only)."""
    import sqlalchemy as sa

    from airflow_mlsecops.evidence.ledger import EvidenceLedger

    ledger = EvidenceLedger(url, create=False)
    dialect = ledger.engine.dialect.name
    ledger.engine.dispose()

    @sa.event.listens_for(ledger.engine, "connect")
    def _no_sync(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA synchronous=OFF" if dialect == "sqlite" else "SET synchronous_commit = off")
        cursor.close()
        if dialect != "sqlite":
            dbapi_conn.commit()

    return ledger


def _bench_backend(label: str, url: str, *, quick: bool) -> list[Row]:
    import sqlalchemy as sa

    from airflow_mlsecops.evidence.dsse import sign_envelope
    from airflow_mlsecops.evidence.keys import SigningKey
    from airflow_mlsecops.evidence.ledger import EvidenceLedger, ledger_table
    from benchmarks._fixtures import statement_payload

    blocks, per_block = (3, 15) if quick else (6, 40)
    chain_size = 500 if quick else 2000
    envelope_json = sign_envelope(statement_payload(), SigningKey.generate()).to_json().decode("utf-8")
    envelope_sha = hashlib.sha256(envelope_json.encode("utf-8")).hexdigest()
    fields = {
        "gate": "data-validation",
        "dag_id": "secure_training_pipeline",
        "run_id": "manual__2026-01-01T00:00:00+00:00",
        "task_id": "validate_data",
        "mlflow_run_id": uuid.uuid4().hex,
    }

    ledger = EvidenceLedger(url)
    plain_md = sa.MetaData()
    plain_table = ledger_table.to_metadata(plain_md, name="bench_plain_ledger")
    plain_engine = sa.create_engine(url)
    plain_md.create_all(plain_engine)
    plain_seq = 0

    def ours_block() -> None:
        for _ in range(per_block):
            ledger.append(envelope_json=envelope_json, **fields)

    def plain_block() -> None:
        nonlocal plain_seq
        for _ in range(per_block):
            plain_seq += 1
            with plain_engine.begin() as conn:
                conn.execute(
                    plain_table.insert().values(
                        seq=plain_seq,
                        created_at=datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                        kind="attestation",
                        envelope=envelope_json,
                        envelope_sha256=envelope_sha,
                        ref_seq=None,
                        prev_hash=os.urandom(32).hex(),
                        entry_hash=os.urandom(32).hex(),
                        **fields,
                    )
                )

    try:
        ours_block()  # warm-up: connections, statement caches
        plain_block()
        rates: dict[str, list[float]] = {"ours": [], "plain": []}
        for i in range(blocks):
            for name, fn in alternate(i, (("ours", ours_block), ("plain", plain_block))):
                start = time.perf_counter()
                fn()
                rates[name].append(per_block / (time.perf_counter() - start))

        relaxed = _relaxed(url)
        try:
            have = ledger.verify_chain().entries
            for _ in range(chain_size - have):
                relaxed.append(envelope_json=envelope_json, **fields)
        finally:
            relaxed.dispose()

        def plain_select() -> int:
            with ledger.engine.connect() as conn:
                return len(conn.execute(sa.select(ledger_table).order_by(ledger_table.c.seq)).all())

        verify_rates: dict[str, list[float]] = {"ours": [], "plain": []}
        report = ledger.verify_chain()  # warm-up
        if report.entries != chain_size:
            raise RuntimeError(f"expected {chain_size} entries, found {report.entries}")
        for i in range(3 if quick else 5):
            for name, fn in alternate(i, (("ours", ledger.verify_chain), ("plain", plain_select))):
                start = time.perf_counter()
                fn()
                verify_rates[name].append(chain_size / (time.perf_counter() - start))
    finally:
        ledger.dispose()
        plain_engine.dispose()

    return [
        Row(
            group=GROUP,
            name=f"ledger append, {label}",
            unit="entries/s",
            ours=median(rates["ours"]),
            peer=median(rates["plain"]),
            ratio=paired_ratio(rates["ours"], rates["plain"]),
            peer_label="plain SQLAlchemy insert, no chain",
            runs=blocks,
            notes=f"{per_block} appends per block, one transaction each, {len(envelope_json)} B envelopes",
        ),
        Row(
            group=GROUP,
            name=f"ledger verify_chain, {label}, {chain_size:,} entries",
            unit="entries/s",
            ours=median(verify_rates["ours"]),
            peer=median(verify_rates["plain"]),
            ratio=paired_ratio(verify_rates["ours"], verify_rates["plain"]),
            peer_label="plain SELECT of the same rows",
            runs=3 if quick else 5,
            notes="re-hashes every envelope and entry; the peer only reads",
        ),
    ]


def _bulk_fill(url: str, count: int, envelope_json: str) -> None:
    """``count`` correctly chained entries (hashed as :meth:`EvidenceLedger.append` does), inserted in
    one transaction with ``synchronous=OFF``: a large ledger in seconds instead of minutes."""
    import sqlalchemy as sa

    from airflow_mlsecops.evidence.ledger import GENESIS_HASH, EvidenceLedger, LedgerEntry, ledger_table

    envelope_sha = hashlib.sha256(envelope_json.encode("utf-8")).hexdigest()
    EvidenceLedger(url).dispose()
    engine = sa.create_engine(url)
    prev, batch = GENESIS_HASH, []
    with engine.begin() as conn:
        conn.execute(sa.text("PRAGMA synchronous=OFF"))
        for seq in range(1, count + 1):
            draft = LedgerEntry(
                seq=seq,
                created_at=datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                kind="attestation",
                gate="data-validation",
                dag_id="secure_training_pipeline",
                run_id=f"scheduled__{seq}",
                task_id="validate_data",
                mlflow_run_id=uuid.uuid4().hex,
                envelope=envelope_json,
                envelope_sha256=envelope_sha,
                ref_seq=None,
                prev_hash=prev,
                entry_hash="",
            )
            entry = LedgerEntry(**{**draft.__dict__, "entry_hash": draft.computed_hash()})
            batch.append(entry.__dict__)
            prev = entry.entry_hash
            if len(batch) == 5000:
                conn.execute(ledger_table.insert(), batch)
                batch = []
        if batch:
            conn.execute(ledger_table.insert(), batch)
    engine.dispose()


def _bench_checkpoints(*, quick: bool) -> list[Row]:
    import shutil

    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.checkpoint import verify_ledger, write_checkpoint
    from airflow_mlsecops.evidence.dsse import sign_envelope
    from airflow_mlsecops.evidence.keys import SigningKey
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from benchmarks._fixtures import statement_payload

    size = 10_000 if quick else 100_000
    behind = 1_000
    runs = 3 if quick else 5
    key = SigningKey.generate()
    trusted = {key.keyid: key.public_key}
    settings = Settings.from_env({})
    envelope_json = sign_envelope(statement_payload(), key).to_json().decode("utf-8")
    url = f"sqlite:///{tmp_root() / 'ledger-checkpoint-bench.db'}"
    start = time.perf_counter()
    _bulk_fill(url, size - behind, envelope_json)
    build_s = time.perf_counter() - start
    ledger = EvidenceLedger(url, create=False)
    store = tmp_root() / "ledger-checkpoints"
    try:
        # The checkpoint 1,000 entries behind the head, then those entries (through the ledger's append).
        write_checkpoint(ledger, settings=settings, to=str(store), signer=key, trusted_keys=trusted)
        relaxed = _relaxed(url)
        try:
            for _ in range(behind):
                relaxed.append(envelope_json=envelope_json, gate="data-validation")
        finally:
            relaxed.dispose()

        incremental: list[float] = []
        full: list[float] = []
        walked = 0
        for i in range(runs):
            for name in alternate(i, ("incremental", "full")):
                t0 = time.perf_counter()
                if name == "incremental":
                    walked = verify_ledger(ledger, settings=settings, trusted_keys=trusted, checkpoint=str(store)).rows_walked
                    incremental.append((time.perf_counter() - t0) * 1000)
                else:
                    entries = ledger.verify_chain().entries
                    full.append((time.perf_counter() - t0) * 1000)
        if entries != size or walked != behind + 1:
            raise RuntimeError(f"expected {size} entries and {behind + 1} rows walked, found {entries} and {walked}")

        # Steady state of a scheduled checkpoint: one new entry since the previous checkpoint.
        shutil.rmtree(store)
        write_checkpoint(ledger, settings=settings, to=str(store), signer=key, trusted_keys=trusted)
        writes: list[float] = []
        verifies: list[float] = []
        for _ in range(runs * 2):
            ledger.append(envelope_json=envelope_json, gate="data-validation")
            t0 = time.perf_counter()
            write_checkpoint(ledger, settings=settings, to=str(store), signer=key, trusted_keys=trusted)
            writes.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            verify_ledger(ledger, settings=settings, trusted_keys=trusted, checkpoint=str(store))
            verifies.append((time.perf_counter() - t0) * 1000)
    finally:
        ledger.dispose()
    label = f"SQLite, {size:,} entries"
    return [
        Row(
            group=GROUP,
            name=f"ledger checkpoint write, local directory, {label}",
            unit="ms",
            ours=median(writes),
            runs=len(writes),
            notes="verify from the previous checkpoint (2 rows), sign ECDSA P-256, atomic write + fsync; "
            f"{len(writes)} checkpoints in the directory by the end",
        ),
        Row(
            group=GROUP,
            name=f"ledger checkpoint verify, local directory, {label}",
            unit="ms",
            ours=median(verifies),
            runs=len(verifies),
            notes="list, read and verify the newest checkpoint's signature, check the ledger's first entry, walk to the head",
        ),
        Row(
            group=GROUP,
            name=f"ledger verify from a checkpoint {behind:,} entries behind, {label}",
            unit="ms",
            ours=median(incremental),
            peer=median(full),
            ratio=paired_ratio(incremental, full),
            peer_label="full verify_chain",
            runs=runs,
            notes=f"walks {walked:,} rows instead of {size:,}; ledger built in {build_s:.1f} s (bulk insert, synchronous=OFF)",
        ),
    ]


def run(quick: bool) -> list[Row]:
    rows = _bench_backend("SQLite", f"sqlite:///{tmp_root() / 'ledger-bench.db'}", quick=quick)
    try:
        rows.extend(_bench_checkpoints(quick=quick))
    except Exception as exc:
        rows.append(error_row(GROUP, "ledger checkpoints, SQLite", f"{type(exc).__name__}: {str(exc)[:300]}"))
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        rows.append(error_row(GROUP, "ledger append/verify, PostgreSQL", f"skipped: {POSTGRES_ENV} is not set"))
        return rows
    try:
        with _postgres_schema(base) as url:
            rows.extend(_bench_backend("PostgreSQL", url, quick=quick))
    except Exception as exc:
        rows.append(error_row(GROUP, "ledger append/verify, PostgreSQL", f"{type(exc).__name__}: {str(exc)[:300]}"))
    return rows
