"""Row 1: what importing the operators costs a DAG file, on top of ``import airflow.sdk``.

Two probes, each run in fresh interpreters with warm ``.pyc`` (one warm-up run first), alternated
so that machine noise hits both alike:

* baseline: ``import airflow.sdk; from airflow.sdk import BaseOperator``
* ours: the same, then ``from airflow_mlsecops.operators import DataValidationGateOperator,
  ProvenanceSignOperator`` (the ``from`` import touches both lazy attributes).

The parent times each whole interpreter (start to exit), as wall-clock and as user+sys CPU time
(the latter hardly moves when other jobs share the machine); each row is the difference of the
medians. Each probe also reports the in-process time of its second step, its peak RSS and which
heavy modules it left in ``sys.modules``.
"""

from __future__ import annotations

from benchmarks._common import (
    Row,
    Target,
    alternate,
    bench_env,
    last_json_line,
    median,
    paired_diff,
    paired_ratio,
    python_cmd,
    run_timed,
    tmp_root,
)

GROUP = "import"
TARGET_MS = 150.0
HEAVY = ("mlflow", "great_expectations", "evidently", "sklearn", "pandas", "boto3")
# Banned at module level by the project's lint config too; reported, not counted.
ALSO_WATCHED = ("numpy", "pyarrow", "scipy", "botocore", "skops", "yaml", "sqlalchemy", "cryptography")

BASELINE = "import airflow.sdk\nfrom airflow.sdk import BaseOperator\n"
OURS = "from airflow_mlsecops.operators import DataValidationGateOperator, ProvenanceSignOperator\n"

_PROBE = """\
import json, resource, sys, time
_t0 = time.perf_counter()
{baseline}
_t1 = time.perf_counter()
{extra}
_t2 = time.perf_counter()
print(json.dumps({{
    "baseline_ms": (_t1 - _t0) * 1e3,
    "extra_ms": (_t2 - _t1) * 1e3,
    "heavy": [m for m in {heavy!r} if m in sys.modules],
    "also": [m for m in {also!r} if m in sys.modules],
    "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}}))
"""


def probe(extra: str) -> str:
    return _PROBE.format(baseline=BASELINE, extra=extra or "pass", heavy=HEAVY, also=ALSO_WATCHED)


def run(quick: bool) -> list[Row]:
    runs = 3 if quick else 7
    env = bench_env(tmp_root())
    base_code, ours_code = probe(""), probe(OURS)
    run_timed(python_cmd(ours_code), env=env)  # warm-up: writes any missing .pyc (covers the baseline's modules too)

    wall: dict[str, list[float]] = {"baseline": [], "ours": []}
    cpu: dict[str, list[float]] = {"baseline": [], "ours": []}
    inproc: list[float] = []
    reports: dict[str, dict] = {}
    for i in range(runs):
        for name, code in alternate(i, (("baseline", base_code), ("ours", ours_code))):
            timed = run_timed(python_cmd(code), env=env)
            report = last_json_line(timed.stdout)
            wall[name].append(timed.wall * 1e3)
            cpu[name].append(timed.cpu * 1e3)
            reports[name] = report
            if name == "ours":
                inproc.append(report["extra_ms"])

    base_wall, ours_wall = median(wall["baseline"]), median(wall["ours"])
    base_cpu, ours_cpu = median(cpu["baseline"]), median(cpu["ours"])
    heavy_after = reports["ours"]["heavy"]
    heavy_base = reports["baseline"]["heavy"]
    new_also = sorted(set(reports["ours"]["also"]) - set(reports["baseline"]["also"]))
    rss = f"peak RSS {reports['baseline']['maxrss_kib'] / 1024:.0f} -> {reports['ours']['maxrss_kib'] / 1024:.0f} MiB"
    target = Target("abs", "<", TARGET_MS, "ms")
    return [
        Row(
            group=GROUP,
            name="import operators on top of airflow.sdk (wall)",
            unit="ms",
            ours=paired_diff(wall["ours"], wall["baseline"]),
            peer=base_wall,
            peer_label="import airflow.sdk alone",
            ratio=paired_ratio(wall["ours"], wall["baseline"]),
            target=target,
            runs=runs,
            notes=(
                f"whole fresh interpreters, warm .pyc; ours = median of per-pair differences; medians "
                f"{base_wall:.0f} -> {ours_wall:.0f} ms (diff {ours_wall - base_wall:+.0f}); "
                f"ratio = (sdk + operators) / sdk; {rss}"
            ),
            samples={"baseline_wall_ms": wall["baseline"], "ours_wall_ms": wall["ours"]},
        ),
        Row(
            group=GROUP,
            name="import operators on top of airflow.sdk (CPU)",
            unit="ms",
            ours=paired_diff(cpu["ours"], cpu["baseline"]),
            peer=base_cpu,
            peer_label="import airflow.sdk alone",
            ratio=paired_ratio(cpu["ours"], cpu["baseline"]),
            target=target,
            runs=runs,
            notes=(
                f"same interpreters, user+sys CPU time (robust to a busy machine); medians {base_cpu:.0f} -> "
                f"{ours_cpu:.0f} ms (diff {ours_cpu - base_cpu:+.0f})"
            ),
            samples={"baseline_cpu_ms": cpu["baseline"], "ours_cpu_ms": cpu["ours"]},
        ),
        Row(
            group=GROUP,
            name="import operators on top of airflow.sdk (in-process)",
            unit="ms",
            ours=median(inproc),
            target=target,
            runs=runs,
            notes="perf_counter around the operators import inside the same interpreters (exact, no teardown)",
            samples={"ours_inprocess_ms": inproc},
        ),
        Row(
            group=GROUP,
            name="heavy modules imported at parse",
            unit="count",
            ours=float(len(heavy_after)),
            peer=float(len(heavy_base)),
            peer_label="import airflow.sdk alone",
            target=Target("abs", "==", 0),
            runs=runs,
            notes=(
                f"checked {', '.join(HEAVY)}: found {', '.join(heavy_after) or 'none'}; "
                f"also newly imported from ({', '.join(ALSO_WATCHED)}): {', '.join(new_also) or 'none'}"
            ),
        ),
    ]
