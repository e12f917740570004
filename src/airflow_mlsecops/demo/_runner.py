"""Runs one example DAG with ``dag.test()`` in the background (used by ``mlsecops demo``).

Two processes, so that the run can always be stopped:

* the **supervisor** (this module without ``--worker``): small, imports no Airflow. It writes the
  pid file, starts the worker in its own process group, and stops that whole group on SIGTERM,
  SIGINT or SIGHUP, or when ``--timeout`` seconds have passed without the run ending. It removes the
  pid file when it ends, however the run ended.
* the **worker** (``--worker=SUPERVISOR_PID``): runs ``dag.test()`` with the environment prepared
  by the demo, its log lines going to the demo's log file instead of the user's terminal.
  ``dag.test()`` keeps the run alive while the human-in-the-loop task waits, so the worker outlives
  ``mlsecops demo`` when the demo stops at the approval and finishes the run once someone answers
  (``mlsecops approve``).

Why not one process: every task that ``dag.test()`` runs in-process installs Airflow's own SIGTERM
handler (it calls the operator's ``on_kill`` and carries on), so after the first task a single
process would ignore SIGTERM, and operators may use SIGALRM for their own timeouts. The supervisor
owns the signals; the worker is stopped from outside: SIGINT to its process group (it marks its
DAG run failed and ends), SIGKILL for whatever is left a few seconds later. If the supervisor itself
is killed outright, the worker notices within a second and ends its group.

    python -m airflow_mlsecops.demo._runner --pid-file PID --result RESULT_JSON --conf CONF_JSON \
        --timeout SECONDS DAG_FILE DAG_ID
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

#: The module's name: what ``mlsecops demo --stop`` looks for in a process's command line.
RUNNER_MODULE = "airflow_mlsecops.demo._runner"
#: Seconds the worker's process group gets between SIGINT and SIGKILL.
TERM_GRACE_SECONDS = 3.0
#: The signals that stop a background run.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def runner_command(
    *, dag_file: Path, dag_id: str, result_path: Path, pid_file: Path, conf: dict[str, object], timeout: float
) -> list[str]:
    """The command line that starts a supervised background run (as ``mlsecops demo`` starts it)."""
    return [
        sys.executable,
        "-m",
        RUNNER_MODULE,
        "--pid-file",
        str(pid_file),
        "--result",
        str(result_path),
        "--conf",
        json.dumps(conf),
        "--timeout",
        str(timeout),
        str(dag_file),
        dag_id,
    ]


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if it does not exist.

    Recorded in the pid file and compared before a stop, so a pid reused by another process after
    the run ended is never signalled.
    """
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _write_json(path: Path, data: dict[str, object]) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data, indent=2))
    partial.replace(path)


def _remove_own_pid_file(pid_file: Path) -> None:
    """Remove the pid file if it still names this process (a newer run may have replaced it)."""
    try:
        if json.loads(pid_file.read_text()).get("pid") == os.getpid():
            pid_file.unlink()
    except (OSError, ValueError):
        pass


class _StopRequested(Exception):
    """A stop signal arrived; carries its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_process_group(leader: subprocess.Popen[bytes], grace: float = TERM_GRACE_SECONDS) -> None:
    """Stop the process group ``leader`` leads, and anything it started that left the group.

    SIGINT first: the worker ends ``dag.test()`` and marks its run failed (SIGTERM would only call
    the current operator's ``on_kill``); SIGKILL for whatever is left after ``grace`` seconds.
    """
    import psutil

    try:
        descendants = psutil.Process(leader.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    for signum in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(leader.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
        for child in descendants:
            try:
                child.send_signal(signum)
            except psutil.Error:
                pass
        try:
            leader.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        _gone, alive = psutil.wait_procs(descendants, timeout=grace if signum == signal.SIGINT else 5)
        if not alive:
            return
        descendants = alive


def supervise(args: argparse.Namespace) -> int:
    """Start the worker, wait for it, stop it on a signal or at the timeout; return an exit code."""
    pid_file, result_path = Path(args.pid_file), Path(args.result)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        raise _StopRequested(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)
    worker: subprocess.Popen[bytes] | None = None
    try:
        record: dict[str, object] = {
            "pid": os.getpid(),
            "started": process_start_time(os.getpid()),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dag_id": args.dag_id,
            "dag_file": args.dag_file,
            "result": str(result_path),
            "timeout": args.timeout,
        }
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        _write_json(pid_file, record)
        command = [
            sys.executable,
            "-m",
            RUNNER_MODULE,
            f"--worker={os.getpid()}",
            "--result",
            str(result_path),
            "--conf",
            args.conf,
        ]
        # Its own process group: stopping the worker stops everything it started, and only that.
        worker = subprocess.Popen([*command, args.dag_file, args.dag_id], start_new_session=True)
        deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                stop_process_group(worker)
                _write_json(result_path, {"dag_id": args.dag_id, "state": "timed_out", "tasks": {}})
                print(f"gave up after {args.timeout:g} s without a decision", file=sys.stderr, flush=True)
                return 1
            try:
                return worker.wait(timeout=min(remaining, 1.0) if remaining is not None else 1.0)
            except subprocess.TimeoutExpired:
                continue
    except _StopRequested as stop:
        # Ignore further stop signals while stopping: a second Ctrl-C must not leave the worker behind.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        if worker is not None:
            stop_process_group(worker)
        _write_json(result_path, {"dag_id": args.dag_id, "state": "stopped", "signal": str(stop), "tasks": {}})
        print(f"stopped by {stop}", file=sys.stderr, flush=True)
        return 128 + stop.signum
    finally:
        _remove_own_pid_file(pid_file)


def _end_when_orphaned(supervisor_pid: int) -> None:
    """End this process group when the supervisor is gone (it was killed outright)."""
    while os.getppid() == supervisor_pid:
        time.sleep(1)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _fail_unfinished_runs(dag_id: str, since: datetime) -> None:
    """Mark the runs of ``dag_id`` this worker started, and their unfinished tasks, failed.

    Best effort: the run is stopped either way; this only keeps Airflow's database truthful.
    """
    try:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState, State, TaskInstanceState

        with create_session() as session:
            runs = (
                session.query(DagRun)
                .filter(DagRun.dag_id == dag_id, DagRun.state == DagRunState.RUNNING, DagRun.start_date >= since)
                .all()
            )
            for run in runs:
                for ti in run.get_task_instances(session=session):
                    if ti.state is not None and ti.state not in State.finished:
                        ti.state = TaskInstanceState.FAILED
                        ti.end_date = datetime.now(timezone.utc)
                run.set_state(DagRunState.FAILED)
                print(f"stopped: marked DAG run {run.run_id} and its unfinished tasks failed", flush=True)
    except Exception as exc:  # noqa: BLE001 - stopping must go on whatever the database says
        print(f"stopped: could not mark the DAG run failed ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)


def work(args: argparse.Namespace) -> int:
    """Run the DAG with ``dag.test()`` and write what happened to the result file."""
    import importlib.util

    threading.Thread(target=_end_when_orphaned, args=(args.worker,), daemon=True).start()
    dag_file, dag_id, result_path = args.dag_file, args.dag_id, Path(args.result)
    spec = importlib.util.spec_from_file_location(f"mlsecops_demo_{Path(dag_file).stem}", dag_file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {dag_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id and hasattr(v, "test"))
    started = datetime.now(timezone.utc)
    try:
        dag_run = dag.test(run_conf=json.loads(args.conf))
    except KeyboardInterrupt:
        # Stopped by the supervisor (SIGINT): record that this run will not go on, so no reviewer is
        # asked to approve it, then end at once (dag.test() leaves threads that would delay the exit).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _fail_unfinished_runs(dag_id, started)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signal.SIGINT)
    tasks = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    _write_json(result_path, {"dag_id": dag_id, "run_id": dag_run.run_id, "state": str(dag_run.state), "tasks": tasks})
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {RUNNER_MODULE}", description=__doc__)
    # ``--worker=SUPERVISOR_PID``: run the DAG; end when that supervisor is gone.
    parser.add_argument("--worker", type=int, metavar="SUPERVISOR_PID", help=argparse.SUPPRESS)
    parser.add_argument("--pid-file", help="where the supervisor records its pid (removed when it ends)")
    parser.add_argument("--result", required=True, help="JSON file the run's outcome is written to")
    parser.add_argument("--conf", default="{}", help="the DAG run's conf, as JSON")
    parser.add_argument("--timeout", type=float, default=0, help="seconds before giving up (0: never)")
    parser.add_argument("dag_file")
    parser.add_argument("dag_id")
    args = parser.parse_args(argv)
    if args.worker is not None:
        return work(args)
    if not args.pid_file:
        parser.error("--pid-file is required")
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
