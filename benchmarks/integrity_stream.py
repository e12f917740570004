"""The data-integrity gate on 1M and 10M rows x 10 columns (``--quick``: 100k and 1M): rows/s and peak RSS,
streamed (``batch_rows=65536``) against the in-memory path (the peer).

The batch: a Parquet file (row groups of 65,536 rows) of 8 normal float features, one categorical text
column of 5 values and a 0/1 label, drawn from the same distribution as the reference (a Parquet file of
200,000 rows; ``--quick``: 50,000), so the gate has every check to do (label flips included). Each
variant runs once in a fresh interpreter, which reports its wall-clock time for ``check_integrity``, its
peak resident set size (``ru_maxrss``) and the peak right after importing pandas, scipy, scikit-learn and
pyarrow (the floor every variant pays). A variant that takes longer than its budget (the 10M in-memory
run: 900 s) is reported as timed out, with the time it was given.

Targets: the streamed path's peak RSS at the larger size is at most 1.5x its peak at the smaller size
(10x the rows). Throughput has no target: informational.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import REPO_ROOT, Row, Target, tmp_root

GROUP = "integrity-stream"
BATCH_ROWS = 65_536
FEATURES = 8
_TIMEOUT_S = {"small": 600, "large": 900}

_CHILD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy, pandas, pyarrow, pyarrow.parquet, scipy.stats, sklearn.ensemble  # the floor every variant pays
floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from airflow_mlsecops.gates.data_integrity import check_integrity
batch, reference, batch_rows = sys.argv[1], sys.argv[2], (int(sys.argv[3]) or None)
start = time.perf_counter()
outcome = check_integrity(batch, reference, label_column="label", batch_rows=batch_rows)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_kb": usage.ru_maxrss, "floor_kb": floor,
    "verdict": outcome.verdict.value,
    "failed": sorted(f.id for f in outcome.result.failed_findings if f.severity.value == "high"),
    "not_performed": outcome.result.details.get("not_performed", []),
    "error": str(outcome.error) if outcome.error else None,
    "hash_bytes": outcome.result.details.get("stream", {}).get("memory", {}).get("row_hashes_bytes"),
}))
"""


def _write(path: Path, rows: int, seed: int) -> None:
    """A Parquet file of ``rows`` rows written in row groups (the generator never holds the whole table)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, rows, BATCH_ROWS):
            n = min(BATCH_ROWS, rows - start)
            x = rng.normal(size=(n, FEATURES))
            logit = x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2]
            columns: dict[str, Any] = {f"f{i}": x[:, i] for i in range(FEATURES)}
            columns["segment"] = rng.choice(np.array(["retail", "smb", "corporate", "public", "other"]), n)
            columns["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=BATCH_ROWS)
    finally:
        if writer is not None:
            writer.close()


def _variant(batch: Path, reference: Path, batch_rows: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-c", _CHILD, str(batch), str(reference), str(batch_rows)]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout, "seconds": time.perf_counter() - start}
    if done.returncode != 0:
        return {"failed": f"exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _mb(kb: float) -> float:
    return kb / 1024


def run(quick: bool) -> list[Row]:
    tmp = tmp_root() / "integrity-stream"
    tmp.mkdir(parents=True, exist_ok=True)
    small, large = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    reference = tmp / "reference.parquet"
    _write(reference, 50_000 if quick else 200_000, seed=1)
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for size, budget in ((small, _TIMEOUT_S["small"]), (large, _TIMEOUT_S["large"])):
        batch = tmp / f"batch-{size}.parquet"
        _write(batch, size, seed=2)
        results["streamed", size] = _variant(batch, reference, BATCH_ROWS, budget)
        print(f"integrity-stream: streamed {size:,}: {results['streamed', size]}", file=sys.stderr, flush=True)
        results["in-memory", size] = _variant(batch, reference, 0, budget)
        print(f"integrity-stream: in-memory {size:,}: {results['in-memory', size]}", file=sys.stderr, flush=True)
        batch.unlink()
    rows: list[Row] = []
    for size in (small, large):
        ours, peer = results["streamed", size], results["in-memory", size]
        notes = (
            f"streamed: {_describe(ours)}; in-memory: {_describe(peer)}; 10 columns (8 float, 1 text, label), "
            f"batch_rows={BATCH_ROWS}, Parquet"
        )
        rows.append(
            Row(
                group=GROUP,
                name=f"integrity rows/s, {size:,} rows",
                unit="k rows/s",
                ours=size / ours["seconds"] / 1000 if "peak_kb" in ours else None,
                peer=size / peer["seconds"] / 1000 if "peak_kb" in peer else None,
                peer_label="in-memory path (pandas, whole file)",
                runs=1,
                notes=notes,
                error=None if "peak_kb" in ours else f"streamed run: {_describe(ours)}",
            )
        )
        rows.append(
            Row(
                group=GROUP,
                name=f"integrity peak RSS, {size:,} rows",
                unit="MB",
                ours=_mb(ours["peak_kb"]) if "peak_kb" in ours else None,
                peer=_mb(peer["peak_kb"]) if "peak_kb" in peer else None,
                peer_label="in-memory path (pandas, whole file)",
                runs=1,
                notes=f"floor after imports: {_mb(ours.get('floor_kb', 0)):.0f} MB; {notes}",
                error=None if "peak_kb" in ours else f"streamed run: {_describe(ours)}",
            )
        )
    a, b = results["streamed", small], results["streamed", large]
    growth = b["peak_kb"] / a["peak_kb"] if "peak_kb" in a and "peak_kb" in b else None
    rows.append(
        Row(
            group=GROUP,
            name=f"streamed peak RSS, {large:,} / {small:,} rows",
            unit="x",
            ours=growth,
            target=Target("abs", "<=", 1.5, "x"),
            runs=1,
            notes="10x the rows; the exact duplicate check's row hashes grow by 8 bytes a distinct row "
            f"({(b.get('hash_bytes') or 0) / 2**20:.0f} MB at {large:,})",
            error=None if growth is not None else "a streamed run did not finish",
        )
    )
    return rows


def _describe(result: dict[str, Any]) -> str:
    if "timeout" in result:
        return f"timed out after {result['timeout']:.0f} s"
    if "failed" in result:
        return str(result["failed"])
    extra = f", not performed: {', '.join(result['not_performed'])}" if result.get("not_performed") else ""
    return (
        f"{result['seconds']:.0f} s ({result.get('cpu_s', 0):.0f} s CPU), peak {_mb(result['peak_kb']):.0f} MB, "
        f"verdict {result['verdict']}{extra}"
    )
