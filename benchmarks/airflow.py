"""Rows: a real local Airflow. ``mlsecops airflow``'s ``LocalAirflow`` (api-server, scheduler,
dag-processor, triggerer, each its own process, SQLite, LocalExecutor, the example DAGs under the
example policy) against ``airflow standalone`` (the same four components, Airflow's own launcher)
on the same DAGs folder and task slots: seconds from start to every component healthy, and the
proportional set size (PSS: forked children's shared pages counted once) of all their processes
once ready, and its peak while the example DAGs are parsed (sampled every 0.5 s).

The deployment suite (``tests/deployment``, Celery + PostgreSQL) reports its own wall time and peak
memory in the test summary; it needs PostgreSQL and Redis and takes minutes, so it is not a row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import REPO_ROOT, Row, bench_env, median, tmp_root

GROUP = "airflow"
DAGS = REPO_ROOT / "dags"
POLICY = REPO_ROOT / "policy" / "mlsecops-policy.yaml"
SETTLE_S = 20.0  # after ready: the dag-processor parses the example DAGs


def _tree_pss(pids: list[int]) -> int:
    from airflow_mlsecops.deployment.local import process_tree_memory

    return sum(process_tree_memory(pid, "pss") for pid in pids)


def _healthy(url: str) -> bool:
    from airflow_mlsecops.deployment.local import api_health

    health = api_health(url) or {}
    components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((health.get(k) or {}).get("status") == "healthy" for k in components)


def _settle(pids: list[int]) -> tuple[int, int]:
    """(RSS right after ready, peak RSS over the next SETTLE_S seconds)."""
    at_ready = peak = _tree_pss(pids)
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        peak = max(peak, _tree_pss(pids))
        time.sleep(0.5)
    return at_ready, peak


def _ours(root: Path) -> tuple[float, int, int]:
    from airflow_mlsecops.deployment.local import LocalAirflow

    env = {"AIRFLOW__MLSECOPS__HOME": str(root / "home"), "AIRFLOW__MLSECOPS__POLICY_FILE": str(POLICY)}
    airflow = LocalAirflow(home=root / "airflow", dags_folder=DAGS, users={"admin": "admin"}, env=env)
    started = time.monotonic()
    try:
        airflow.start()
        airflow.wait_until_ready(timeout=240)
        seconds = time.monotonic() - started
        at_ready, peak = _settle([p.pid for p in airflow.processes.values()])
        return seconds, at_ready, peak
    finally:
        airflow.stop()


def _standalone(root: Path) -> tuple[float, int, int]:
    from airflow_mlsecops.deployment.local import free_port

    port = free_port()
    env = bench_env(root)
    env.update(
        {
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__PARALLELISM": "2",  # as LocalAirflow's default: same number of task slots
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__MLSECOPS__HOME": str(root / "home"),
            "AIRFLOW__MLSECOPS__POLICY_FILE": str(POLICY),
            # standalone starts each component as `airflow ...` from PATH
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    (root / "airflow").mkdir(parents=True, exist_ok=True)
    log = open(root / "standalone.log", "wb")  # noqa: SIM115 (closed below)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = started + 240
        while not _healthy(f"http://127.0.0.1:{port}"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"airflow standalone did not get ready: see {root / 'standalone.log'}")
            time.sleep(1)
        seconds = time.monotonic() - started
        at_ready, peak = _settle([process.pid])
        return seconds, at_ready, peak
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


def run(quick: bool) -> list[Row]:
    rounds = 1  # a start costs a minute or more; the group runs within its timeout
    results: dict[str, list[tuple[float, int, int]]] = {"ours": [], "peer": []}
    base = tmp_root() / GROUP
    for i in range(rounds):
        for name, start in (("ours", _ours), ("peer", _standalone)) if i % 2 == 0 else (("peer", _standalone), ("ours", _ours)):
            results[name].append(start(base / f"{name}-{i}"))
    mib = 1024 * 1024
    peer_label = "airflow standalone, same DAGs and policy"
    notes = f"{rounds} start(s) each, alternating; fresh SQLite database each time (migration included)"

    def col(name: str, k: int, scale: float = 1.0) -> float:
        return median([r[k] / scale for r in results[name]])

    return [
        Row(GROUP, "real local Airflow: start to all components healthy", "s", col("ours", 0), col("peer", 0),
            peer_label=peer_label, runs=rounds, notes=notes),
        Row(GROUP, "real local Airflow: PSS of all processes when ready", "MiB", col("ours", 1, mib), col("peer", 1, mib),
            peer_label=peer_label, runs=rounds, notes="api-server, scheduler, dag-processor, triggerer and their children"),
        Row(GROUP, f"real local Airflow: peak PSS in the {SETTLE_S:.0f} s after ready", "MiB", col("ours", 2, mib),
            col("peer", 2, mib), peer_label=peer_label, runs=rounds, notes="while the example DAGs are parsed"),
    ]  # fmt: skip
