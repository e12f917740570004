"""Group ``spark``: the data validation gate on Spark ``local[2]`` vs on pandas, as the data grows.

One Parquet file of N rows x 10 columns (a running ``loan_id``, six floats, three small integers),
one suite of 7 expectations plus the identifier checks of ``id_columns=["loan_id"]`` (unique, not
null, exists), validated by :func:`~airflow_mlsecops.gates.data_validation.validate_data` with
``engine="pandas"`` and ``engine="spark"``. Each variant runs in a fresh interpreter
(``python -m benchmarks.spark --variant ...``), so imports, the JVM start and memory are its own:

* time: the whole ``validate_data`` call (hash, read, validate), and for Spark also the session
  start (JVM), measured apart;
* peak RSS: of the Python process (``ru_maxrss``) and, for Spark, of the JVM, which in local mode
  is the driver and runs the executors' tasks (``VmHWM`` from ``/proc``) - the sum is what the
  worker needs.

Full run: 1M and 10M rows; ``--quick``: 100k and 1M. The machine has 2 cores: ``local[2]`` uses both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import REPO_ROOT, Row, bench_env, last_json_line, run_timed, tmp_root

GROUP = "spark"
SUITE: dict[str, Any] = {
    "name": "bench_spark",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "income"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 18, "max_value": 100}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "debt_ratio", "min_value": 0, "max_value": 5}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "defaulted", "value_set": [0, 1]}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "defaulted", "min_value": 0.05, "max_value": 0.6}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ],
}


def _write(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(16)
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(1, rows + 1, dtype="int64"),
            "income": rng.lognormal(10, 0.5, rows),
            "age": rng.integers(18, 90, rows),
            "debt_ratio": rng.uniform(0, 2, rows),
            "balance": rng.normal(5000, 2000, rows),
            "score": rng.uniform(300, 850, rows),
            "rate": rng.uniform(0.01, 0.3, rows),
            "term": rng.integers(1, 5, rows) * 12,
            "region": rng.integers(0, 20, rows),
            "defaulted": (rng.uniform(0, 1, rows) < 0.2).astype("int64"),
        }
    )
    frame.to_parquet(path, index=False, row_group_size=1_000_000)


def _jvm_peak_bytes(session: Any) -> int:
    """Peak RSS (VmHWM) of the JVM behind ``session`` (the driver in local mode), 0 if unknown."""
    try:
        pid = session.sparkContext._gateway.proc.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except Exception:  # a measurement, not a check
        return 0
    return 0


def _variant(engine: str, path: str) -> dict[str, Any]:
    """One measurement in this (fresh) process; the JSON line the parent reads."""
    start = time.perf_counter()
    from airflow_mlsecops.gates.data_validation import validate_data

    out: dict[str, Any] = {"engine": engine}
    session = None
    if engine == "spark":
        from airflow_mlsecops.io.spark import spark_session

        t = time.perf_counter()
        session = spark_session("local[2]", app_name="mlsecops-bench")
        session.sparkContext.setLogLevel("ERROR")
        out["session_s"] = time.perf_counter() - t
    t = time.perf_counter()
    outcome = validate_data(path, SUITE, id_columns=["loan_id"], engine=engine)
    out["validate_s"] = time.perf_counter() - t
    out["verdict"] = outcome.verdict.value
    out["summary"] = outcome.result.summary
    out["python_peak_bytes"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    out["jvm_peak_bytes"] = _jvm_peak_bytes(session) if session is not None else 0
    out["total_s"] = time.perf_counter() - start
    if session is not None:
        session.stop()
    return out


def run(quick: bool) -> list[Row]:
    sizes = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    tmp = tmp_root()
    work = tmp / "spark"
    work.mkdir(parents=True, exist_ok=True)
    env = bench_env(tmp)
    env.pop("MLSECOPS_SPARK_MASTER", None)
    rows: list[Row] = []
    load = os.getloadavg()[0]
    for n in sizes:
        path = work / f"loans-{n}.parquet"
        if not path.exists():
            _write(path, n)
        size_mb = path.stat().st_size / 1e6
        results: dict[str, dict[str, Any]] = {}
        for engine in ("pandas", "spark"):
            cmd = [sys.executable, "-m", "benchmarks.spark", "--variant", engine, "--path", str(path)]
            try:
                done = run_timed(cmd, env=env, cwd=REPO_ROOT, timeout=1500)
                results[engine] = {**last_json_line(done.stdout), "process_s": done.wall, "cpu_s": done.cpu}
            except Exception as exc:  # reported as an error row
                results[engine] = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
        rows.extend(_rows(n, size_mb, results, load))
    return rows


def _rows(n: int, size_mb: float, results: dict[str, dict[str, Any]], load: float) -> list[Row]:
    pandas, spark = results["pandas"], results["spark"]
    label = f"{n / 1e6:g}M rows x 10 cols"
    if "error" in pandas or "error" in spark:
        message = "; ".join(f"{k}: {v['error']}" for k, v in results.items() if "error" in v)
        measured = "; ".join(
            f"{k} measured: validate {v['validate_s']:.1f} s, peak RSS {v['python_peak_bytes'] / 1024**2:,.0f} MB, {v['verdict']}"
            for k, v in results.items()
            if "error" not in v
        )
        return [
            Row(
                group=GROUP,
                name=f"validate {label}: Spark vs pandas",
                unit="",
                ours=None,
                error=f"{message} ({measured})" if measured else message,
            )
        ]
    verdicts = f"verdicts pandas={pandas['verdict']} spark={spark['verdict']}"
    mb = 1024**2
    return [
        Row(
            group=GROUP,
            name=f"validate {label}: Spark local[2] vs pandas (validate_data only)",
            unit="ms",
            ours=spark["validate_s"] * 1e3,
            peer=pandas["validate_s"] * 1e3,
            peer_label="engine=pandas (GX pandas)",
            runs=1,
            notes=f"{size_mb:.0f} MB Parquet, 7 expectations + 3 id checks; Spark session start {spark['session_s']:.1f} s "
            f"not included; {verdicts}; load avg {load:.1f}",
        ),
        Row(
            group=GROUP,
            name=f"validate {label}: Spark vs pandas, whole fresh process",
            unit="ms",
            ours=spark["process_s"] * 1e3,
            peer=pandas["process_s"] * 1e3,
            peer_label="engine=pandas, fresh process",
            runs=1,
            notes=f"imports + JVM start + validate; CPU s: spark {spark['cpu_s']:.1f} (python side + JVM once exited) "
            f"vs pandas {pandas['cpu_s']:.1f}",
        ),
        Row(
            group=GROUP,
            name=f"peak RSS {label}: Spark (python + JVM driver) vs pandas",
            unit="MB",
            ours=(spark["python_peak_bytes"] + spark["jvm_peak_bytes"]) / mb,
            peer=pandas["python_peak_bytes"] / mb,
            peer_label="engine=pandas python process",
            runs=1,
            notes=f"spark: python {spark['python_peak_bytes'] / mb:,.0f} MB + JVM {spark['jvm_peak_bytes'] / mb:,.0f} MB "
            "(default driver memory 1g)",
        ),
    ]


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one variant of the spark benchmark group, in this process")
    parser.add_argument("--variant", choices=("pandas", "spark"), required=True)
    parser.add_argument("--path", required=True)
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    print(json.dumps(_variant(args.variant, args.path)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
