"""``python -m benchmarks [--quick] [--only NAME ...]``: run the benchmark groups, print one table and
write the rows to ``benchmarks/results/latest.json``.

Each group runs in a fresh subprocess (``--child``), sharing one temporary directory that is
deleted at the end. Exit status 1 if a group crashed; an unmet target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import GROUPS
from benchmarks._common import REPO_ROOT, TMP_ENV, Row, apply_env, bench_env, error_row, fmt_value

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
MODULES = {
    "import": "imports",
    "dagparse": "dagparse",
    "signing": "signing",
    "hashing": "hashing",
    "ledger": "ledger",
    "kms": "kms",
    "recording": "recording",
    "validation": "validation",
    "drift": "drift",
    "pii": "pii",
    "integrity": "integrity",
    "modelscan": "modelscan",
    "codescan": "code_scan",
    "modelsign": "modelsign",
    "airflow": "airflow",
    "pii-stream": "pii_stream",
    "integrity-stream": "integrity_stream",
    "spark": "spark",
    "membership": "membership",
    "dp-evidence": "dp_evidence",
    "encrypted-scoring": "encrypted_scoring",
}
GROUP_TIMEOUT_S = 280
# Groups that start servers: a real Airflow takes a minute or more per start.
GROUP_TIMEOUTS_S = {
    "airflow": 600,
    "drift": 600,
    "pii": 600,
    "codescan": 900,
    # 10M rows on the in-memory path take minutes and several GB; Spark starts a JVM per run.
    "pii-stream": 1800,
    "integrity-stream": 1800,
    "spark": 1800,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmark groups, print one table, write the rows to benchmarks/results/latest.json.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repetitions (a smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this group (repeatable or comma-separated): {', '.join(GROUPS)}",
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the rows (default {RESULTS})")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [name for name in only if name not in GROUPS]
    if unknown:
        parser.error(f"unknown group {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    args.groups = [g for g in GROUPS if g in only] if only else list(GROUPS)
    return args


def _child(group: str, out: Path, quick: bool) -> int:
    apply_env(Path(os.environ[TMP_ENV]))
    module = importlib.import_module(f"benchmarks.{MODULES[group]}")
    rows: list[Row] = module.run(quick)
    out.write_text(json.dumps([row.to_json() for row in rows], indent=2), encoding="utf-8")
    return 0


def _run_group(group: str, tmp: Path, quick: bool) -> tuple[list[Row], float, bool]:
    out, log = tmp / f"{group}.rows.json", tmp / f"{group}.log"
    cmd = [sys.executable, "-m", "benchmarks", "--child", group, "--out", str(out)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    with open(log, "wb") as fh:
        try:
            done = subprocess.run(
                cmd,
                env=bench_env(tmp),
                cwd=REPO_ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=GROUP_TIMEOUTS_S.get(group, GROUP_TIMEOUT_S),
            )
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    elapsed = time.perf_counter() - start
    if code == 0 and out.exists():
        return [Row.from_json(item) for item in json.loads(out.read_text(encoding="utf-8"))], elapsed, True
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-12:]
    reason = f"timed out after {GROUP_TIMEOUTS_S.get(group, GROUP_TIMEOUT_S)} s" if code is None else f"exited {code}"
    print(f"bench: group {group} {reason}:\n    " + "\n    ".join(tail), file=sys.stderr)
    return [error_row(group, f"{group} (group failed)", f"{reason}: {tail[-1] if tail else ''}"[:300])], elapsed, False


def _met_text(row: Row) -> str:
    if row.error:
        return "skip" if row.error.startswith("skipped") else "ERROR"
    return {True: "yes", False: "NO", None: "-"}[row.met]


def render(rows: list[Row]) -> str:
    header = ["#", "benchmark", "ours", "peer (same run)", "ratio", "target", "met?"]
    table = [
        [
            str(i),
            row.name,
            fmt_value(row.ours, row.unit) if not row.error else "-",
            fmt_value(row.peer, row.unit) if row.peer is not None and not row.error else "-",
            f"{row.ratio:.2f}x" if row.ratio is not None and not row.error else "-",
            row.target.describe() if row.target else "-",
            _met_text(row),
        ]
        for i, row in enumerate(rows, 1)
    ]
    widths = [max(len(line[c]) for line in [header, *table]) for c in range(len(header))]
    right = {0, 2, 3, 4}

    def fmt(line: list[str]) -> str:
        return " | ".join(
            cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(line, widths, strict=True))
        )

    out = [fmt(header), "-+-".join("-" * w for w in widths), *(fmt(line) for line in table), ""]
    out.append(
        "ours/peer: medians of the repetitions. ratio: median of the per-round ours/peer ratios (both sides of a"
        " round run back to back, which cancels load drift), so it can differ from the ratio of the two medians."
    )
    for i, row in enumerate(rows, 1):
        detail = row.error or "; ".join(part for part in (f"peer: {row.peer_label}" if row.peer_label else "", row.notes) if part)
        detail = " ".join(detail.split())
        out.append(f"[{i}] {detail}" + (f" (median of {row.runs})" if row.runs and not row.error else ""))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        return _child(args.child, args.out, args.quick)

    started = datetime.now(timezone.utc)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="mlsecops-bench-"))
    rows: list[Row] = []
    timings: dict[str, float] = {}
    ok = True
    try:
        for group in args.groups:
            print(f"bench: {group} ...", file=sys.stderr, flush=True)
            group_rows, elapsed, group_ok = _run_group(group, tmp, args.quick)
            rows.extend(group_rows)
            timings[group] = round(elapsed, 1)
            ok = ok and group_ok
            print(f"bench: {group} done in {elapsed:.1f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - start

    print(render(rows))
    print(f"\nbench: {len(rows)} rows from {len(args.groups)} group(s) in {total:.0f} s{' (--quick)' if args.quick else ''}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "started_at": started.isoformat().replace("+00:00", "Z"),
                "duration_s": round(total, 1),
                "group_seconds": timings,
                "quick": args.quick,
                "groups": args.groups,
                "host": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
                },
                "rows": [row.to_json() for row in rows],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"bench: rows written to {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
