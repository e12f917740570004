"""``pii-stream``: the PII scan of a CSV read in batches against the same scan reading the whole file.

Rows: for 1M and 10M rows x 10 columns (``--quick``: 100k and 1M), a CSV written into the bench
tmp directory (mostly clean data: ids, amounts, dates, codes, short text; one row in 20,000 carries an
e-mail address, an SSN or a card number), scanned by ``scan_pii`` twice, each in a fresh interpreter:

* ours: ``batch_rows=65536`` (bounded memory; :mod:`airflow_mlsecops.gates.pii.streaming`);
* peer: the in-memory path (``load_table``: the file read once, parsed by pandas, scanned whole;
  handed over as a path, a file of 256 MiB or more would be streamed too).

Reported: rows per CPU second end to end (read, hash, scan, evidence; ``time.process_time`` of the
child, all threads: wall time on a shared machine measures the other jobs) with the wall time in the
notes, and peak RSS (``ru_maxrss`` of the child).
Both must agree on the verdict and on every finding's id and count; a row says so, or fails.
The memory target: ten times the rows costs the streamed scan at most 1.5x the peak RSS.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Row, Target, bench_env, error_row, last_json_line, python_cmd, run_timed, tmp_root

GROUP = "pii-stream"
BATCH_ROWS = 65_536
#: One row in this many holds personal data.
PII_EVERY = 20_000

_CHILD = """
import json, resource, sys, time
from airflow_mlsecops.gates.pii import scan_pii
from airflow_mlsecops.io.tabular import load_table
import pandas, pyarrow.csv  # loaded before the clock starts
path, batch = sys.argv[1], sys.argv[2]
start, cpu = time.perf_counter(), time.process_time()
# the in-memory path: the file read once, parsed by pandas, scanned whole (a file of 256 MiB or more
# handed over as a path would be streamed)
outcome = scan_pii(load_table(path) if batch == "none" else path, batch_rows=None if batch == "none" else int(batch))
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
result = outcome.result
print(json.dumps({
    "seconds": elapsed,
    "cpu_seconds": cpu,
    "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "verdict": result.verdict.value,
    "findings": sorted([f.id, f.message] for f in result.findings),
    "rows": result.details.get("rows_scanned"),
    "streamed": result.details.get("streamed"),
}))
"""


def _write_csv(path: Path, rows: int, seed: int = 16) -> int:
    """10 columns, mostly clean; returns the rows holding personal data."""
    done = path.with_suffix(".rows")
    if path.exists() and done.exists() and done.read_text().split() == [str(rows), str(seed)]:
        return rows // PII_EVERY + (1 if rows % PII_EVERY > 11 else 0)  # written already (a rerun in the same tmp)
    rng = random.Random(seed)
    pii = ["ann.smith@example.com", "123-45-6789", "4111 1111 1111 1111"]
    cities = ["Oslo", "Lima", "Pune", "Quito", "Accra", "Hanoi"]
    plans = ["free", "pro", "team", "enterprise"]
    words = ["late delivery", "asked for refund", "happy", "renewal due", "n/a", "upgrade"]
    with_pii = 0
    with path.open("w", buffering=1 << 20) as fh:
        fh.write("id,customer_ref,amount,score,created,city,plan,sku,comment,flag\n")
        lines = []
        for i in range(rows):
            comment = rng.choice(words)
            if i % PII_EVERY == 11:
                comment = f"contact {pii[(i // PII_EVERY) % 3]}"
                with_pii += 1
            lines.append(
                f"{i},C{rng.randrange(10**8):08d},{rng.random() * 500:.2f},{rng.random():.4f},"
                f"2026-{1 + i % 12:02d}-{1 + i % 28:02d},"
                f"{rng.choice(cities)},{rng.choice(plans)},SKU-{rng.randrange(10**5):05d},{comment},{i % 2 == 0}\n"
            )
            if len(lines) >= 50_000:
                fh.writelines(lines)
                lines.clear()
        fh.writelines(lines)
    done.write_text(f"{rows} {seed}")
    return with_pii


def _measure(path: Path, batch: str, timeout: float) -> dict[str, Any]:
    env = bench_env(tmp_root())
    done = run_timed([*python_cmd(_CHILD), str(path), batch], env=env, timeout=timeout)
    data = last_json_line(done.stdout)
    data["cpu"] = done.cpu
    return data


def run(quick: bool) -> list[Row]:
    sizes = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    work = tmp_root() / "pii-stream"
    work.mkdir(parents=True, exist_ok=True)
    out: list[Row] = []
    peaks: dict[int, float] = {}
    for rows in sizes:
        path = work / f"customers-{rows}.csv"
        start = time.perf_counter()
        with_pii = _write_csv(path, rows)
        written = time.perf_counter() - start
        size_mib = path.stat().st_size / 2**20
        label = f"{rows / 1e6:g}M" if rows >= 10**6 else f"{rows // 1000}k"
        timeout = 3600.0
        try:
            ours = _measure(path, str(BATCH_ROWS), timeout)
        except Exception as exc:  # reported as an error row
            out.append(error_row(GROUP, f"streamed scan, {label} rows", str(exc)[-500:]))
            continue
        try:
            peer: dict[str, Any] | None = _measure(path, "none", timeout)
            peer_error = ""
        except Exception as exc:  # the in-memory path may not fit: reported, the streamed row stands
            peer, peer_error = None, str(exc)[-300:]
        same = peer is not None and peer["verdict"] == ours["verdict"] and peer["findings"] == ours["findings"]
        if peer is not None and not same:
            out.append(
                error_row(
                    GROUP,
                    f"streamed vs in-memory findings, {label} rows",
                    f"streamed {ours['verdict']} {ours['findings']} != in memory {peer['verdict']} {peer['findings']}",
                )
            )
        peaks[rows] = ours["rss_kib"] / 1024
        common = (
            f"{label} rows x 10 columns CSV ({size_mib:,.0f} MiB, written in {written:.0f} s), PII in {with_pii} rows; "
            f"verdict {ours['verdict']}, {len(ours['findings'])} findings"
            + ("; the same verdict and findings (ids, counts) on both paths" if same else f"; in-memory path: {peer_error}")
        )
        out.append(
            Row(
                group=GROUP,
                name=f"scan_pii streamed (batch_rows={BATCH_ROWS}), {label} rows",
                unit="rows/s",
                ours=rows / ours["cpu_seconds"],
                peer=rows / peer["cpu_seconds"] if peer else None,
                peer_label="scan_pii in memory (pandas read_csv of the whole file)",
                runs=1,
                notes=(
                    f"{common}; rows per CPU second of the scan (read, hash, scan, evidence; all threads), "
                    f"the machine being shared; wall s: streamed {ours['seconds']:.0f}, "
                    f"in memory {peer['seconds'] if peer else float('nan'):.0f}"
                ),
                samples={"ours_s": [ours["seconds"]], "peer_s": [peer["seconds"]] if peer else []},
            )
        )
        out.append(
            Row(
                group=GROUP,
                name=f"peak RSS, {label} rows",
                unit="MiB",
                ours=ours["rss_kib"] / 1024,
                peer=peer["rss_kib"] / 1024 if peer else None,
                peer_label="scan_pii in memory",
                runs=1,
                notes="ru_maxrss of a fresh interpreter per variant",
            )
        )
    small, large = sizes
    if small in peaks and large in peaks:
        out.append(
            Row(
                group=GROUP,
                name=f"streamed peak RSS growth, {large // small}x rows",
                unit="x",
                ours=peaks[large] / peaks[small],
                target=Target("abs", "<=", 1.5),
                runs=1,
                notes=f"peak RSS {peaks[small]:,.0f} MiB at {small:,} rows, {peaks[large]:,.0f} MiB at {large:,} rows",
            )
        )
    (work / "result.json").write_text(json.dumps([r.to_json() for r in out], indent=2))
    return out
