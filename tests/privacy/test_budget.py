"""The privacy budget ledger on SQLite and PostgreSQL: spends are atomic, concurrent spends never pass the total."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from airflow_mlsecops.exceptions import ConfigurationError, StoreUnavailable
from airflow_mlsecops.privacy.budget import SPENDS_TABLE_NAME, TABLE_NAME, BudgetLedger, dataset_key, to_micro

KEY = dataset_key("loans", "sha256:" + "ab" * 32)


def test_spends_add_up_exactly_and_stop_at_the_total(tmp_path: Path) -> None:
    ledger = BudgetLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    granted = [ledger.spend([KEY], 0.1, total=1.0, gate="drift").granted for _ in range(11)]
    assert granted == [True] * 10 + [False]  # ten releases of 0.1 are exactly 1.0
    assert ledger.spent(KEY) == 1.0
    refused = ledger.spend([KEY], 0.1, total=1.0)
    assert not refused.granted and refused.spent == {KEY: 1.0}
    # a larger total (the policy changed) lets it go on; the history is kept
    assert ledger.spend([KEY], 0.5, total=2.0).granted and ledger.spent(KEY) == 1.5
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {SPENDS_TABLE_NAME}")).scalar_one() == 11
    # persistent: a new ledger on the same database sees it
    assert BudgetLedger(f"sqlite:///{tmp_path / 'ledger.db'}").spent(KEY) == 1.5
    assert ledger.spent("never@sha256:00") == 0.0


def test_a_spend_over_several_data_sets_is_all_or_none(tmp_path: Path) -> None:
    ledger = BudgetLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    other = dataset_key("loans", "cd" * 32)
    assert ledger.spend([other], 0.9, total=1.0).granted
    spend = ledger.spend([KEY, other], 0.5, total=1.0)
    assert not spend.granted and spend.spent == {KEY: 0.0, other: 0.9}
    assert ledger.spent(KEY) == 0.0  # rolled back with the refusal
    assert ledger.spend([KEY, other], 0.1, total=1.0).spent == {KEY: 0.1, other: 1.0}


def test_micro_epsilon_rounds_up() -> None:
    assert to_micro(0.1) == 100_000 and to_micro(1e-7) == 1 and to_micro(2.0) == 2_000_000


def test_bad_urls_are_named() -> None:
    with pytest.raises(ConfigurationError, match="not a SQLAlchemy URL"):
        BudgetLedger("no url at all")
    with pytest.raises(StoreUnavailable, match="unreachable"):
        BudgetLedger("postgresql+psycopg2://nobody@127.0.0.1:1/none")


def _race_threads(url: str, workers: int = 8, attempts: int = 10) -> list[bool]:
    ledgers = [BudgetLedger(url) for _ in range(workers)]
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def spend(ledger: BudgetLedger) -> None:
        start.wait()
        for _ in range(attempts):
            granted = ledger.spend([KEY], 0.5, total=10.0, gate="race").granted
            with lock:
                results.append(granted)

    threads = [threading.Thread(target=spend, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_threads_on_sqlite_never_pass_the_total(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    results = _race_threads(url)
    assert len(results) == 80 and sum(results) == 20
    assert BudgetLedger(url).spent(KEY) == 10.0


def _spend_in_process(url: str, attempts: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = BudgetLedger(url)
    queue.put([ledger.spend([KEY], 0.5, total=10.0, gate="race").granted for _ in range(attempts)])


@pytest.mark.slow
def test_concurrent_processes_on_sqlite_never_pass_the_total(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    BudgetLedger(url)  # the tables exist before the race
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_spend_in_process, args=(url, 10, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    results = [granted for _ in processes for granted in queue.get(timeout=120)]
    for process in processes:
        process.join(timeout=30)
    assert len(results) == 40 and sum(results) == 20
    assert BudgetLedger(url).spent(KEY) == 10.0


def test_concurrent_threads_on_postgresql_never_pass_the_total(postgres_url: str) -> None:
    results = _race_threads(postgres_url)
    assert len(results) == 80 and sum(results) == 20
    ledger = BudgetLedger(postgres_url)
    assert ledger.spent(KEY) == 10.0
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {SPENDS_TABLE_NAME}")).scalar_one() == 20
        assert conn.execute(sa.text(f"SELECT count(*) FROM {TABLE_NAME}")).scalar_one() == 1


@pytest.mark.slow
def test_concurrent_processes_on_postgresql_never_pass_the_total(postgres_url: str) -> None:
    BudgetLedger(postgres_url)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_spend_in_process, args=(postgres_url, 10, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    results = [granted for _ in processes for granted in queue.get(timeout=120)]
    for process in processes:
        process.join(timeout=30)
    assert len(results) == 40 and sum(results) == 20
    assert BudgetLedger(postgres_url).spent(KEY) == 10.0
