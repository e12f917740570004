"""Run in spawned processes by test_ledger's concurrency test (a helper, not a test module).

It lives in its own small module so that a spawned child imports only this and the ledger.
"""

from __future__ import annotations

from typing import Any


def append_many(url: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    """Open the ledger, wait for every other worker, then append ``count`` entries as fast as possible."""
    try:
        from airflow_mlsecops.evidence.ledger import EvidenceLedger

        ledger = EvidenceLedger(url)
        barrier.wait(timeout=60)
        seqs = [
            ledger.append(
                envelope_json=f'{{"worker":{worker},"i":{i}}}',
                gate="concurrency",
                task_id=f"w{worker}-{i}",
                mlflow_run_id=f"run-{worker}",
            ).seq
            for i in range(count)
        ]
        ledger.dispose()
        results.put((worker, seqs, None))
    except BaseException as exc:  # report every failure to the parent, which asserts on it
        results.put((worker, [], f"{type(exc).__name__}: {exc}"))
