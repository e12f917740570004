"""``mlsecops demo``: its background run is a good citizen.

Real processes only: the runner is started as the demo starts it, stopped with real signals, and
the full demo runs the example DAG to the human approval in a home of its own.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from airflow_mlsecops.cli import build_parser, main
from airflow_mlsecops.demo._runner import runner_command
from airflow_mlsecops.demo.accounts import REVIEWERS
from airflow_mlsecops.demo.run import PID_FILE, stop_background_run
from tests.conftest import REPO_ROOT, TEST_DAGS

#: A DAG that waits like the example DAG (a task, then a human approval) and leaves two processes
#: behind: one in the worker's process group, one in a session of its own.
WAITING_DAG = """
from datetime import datetime
import subprocess
from airflow.sdk import DAG, task
from airflow.providers.standard.operators.hitl import ApprovalOperator

with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    @task
    def start_helpers():
        subprocess.Popen(["sleep", "600"])
        subprocess.Popen(["sleep", "601"], start_new_session=True)

    start_helpers() >> ApprovalOperator(task_id="approve", subject="go on?")
"""


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@dataclass
class WaitingRunner:
    """A background run started as ``mlsecops demo`` starts it, parked at its approval."""

    process: subprocess.Popen[bytes]
    pid_file: Path
    result: Path
    log: Path

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def start_waiting_runner(tmp_path: Path, pid_file: Path) -> WaitingRunner:
    """Start the runner on ``WAITING_DAG`` and wait until it waits at the approval."""
    dag_id = f"demo_runner_{uuid.uuid4().hex[:8]}"
    dag_file = TEST_DAGS / f"{dag_id}.py"
    dag_file.write_text(WAITING_DAG.format(dag_id=dag_id))
    result, log = tmp_path / f"{dag_id}.json", tmp_path / f"{dag_id}.log"
    command = runner_command(dag_file=dag_file, dag_id=dag_id, result_path=result, pid_file=pid_file, conf={}, timeout=600)
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    runner = WaitingRunner(process, pid_file, result, log)

    def waiting() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        return "Waiting for Human-in-the-loop input" in log.read_text() and len(runner.descendants()) >= 3

    _wait_for(waiting, 240, f"the runner to wait at the approval (log: {log})")
    return runner


@pytest.fixture
def waiting_runner(airflow_db: Path, tmp_path: Path) -> Iterator[WaitingRunner]:
    runner = start_waiting_runner(tmp_path, tmp_path / PID_FILE)
    processes = [psutil.Process(runner.process.pid), *runner.descendants()]
    yield runner
    for process in processes:  # whatever the test left running
        if _alive(process):
            process.kill()
    runner.process.wait(timeout=10)


def test_unknown_reviewer_is_refused_before_anything_starts(capsys, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("MLSECOPS_HOME", str(home))
    for option in ("--approve-as", "--reject-as"):
        started = time.monotonic()
        code = main(["demo", option, "mallory"])
        _, err = capsys.readouterr()
        assert code == 2
        assert f"{option} 'mallory': not a reviewer of the example DAG; its reviewers are alice, bob" in err
        assert time.monotonic() - started < 5
    assert not home.exists()  # no Airflow database, no key, no log, no run


def test_stop_with_nothing_running_says_so(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLSECOPS_HOME", str(tmp_path))
    assert main(["demo", "--stop"]) == 0
    assert f"no demo run is waiting in the background in {tmp_path}: nothing to stop" in capsys.readouterr().out
    assert main(["demo", "--stop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"home": str(tmp_path), "stopped": None}


def test_stop_never_signals_a_process_that_is_not_the_runner(capsys, tmp_path: Path, monkeypatch) -> None:
    """A stale pid file naming a live process that is not our runner (here: this test) is only removed."""
    monkeypatch.setenv("MLSECOPS_HOME", str(tmp_path))
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        for pid in (os.getpid(), bystander.pid):
            (tmp_path / PID_FILE).write_text(json.dumps({"pid": pid, "dag_id": "secure_training_pipeline"}))
            assert main(["demo", "--stop"]) == 0
            assert "nothing to stop" in capsys.readouterr().out
            assert not (tmp_path / PID_FILE).exists()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.slow
def test_sigterm_stops_the_background_run_and_everything_it_started(waiting_runner: WaitingRunner) -> None:
    record = json.loads(waiting_runner.pid_file.read_text())
    assert record["pid"] == waiting_runner.process.pid
    processes = [psutil.Process(waiting_runner.process.pid), *waiting_runner.descendants()]
    assert len(processes) >= 4  # runner, worker (dag.test), two helper processes
    started = time.monotonic()
    waiting_runner.process.send_signal(signal.SIGTERM)
    assert waiting_runner.process.wait(timeout=10) == 128 + signal.SIGTERM
    seconds = time.monotonic() - started
    print(f"\nthe background run ended {seconds:.1f} s after SIGTERM")
    assert seconds < 6
    _wait_for(lambda: not any(_alive(p) for p in processes), 3, "every process of the run to end")
    assert not waiting_runner.pid_file.exists()
    assert json.loads(waiting_runner.result.read_text())["state"] == "stopped"
    # Airflow's database no longer shows a run waiting for a reviewer that will never go on.
    from airflow_mlsecops.lifecycle.hitl import pending_approvals

    dag_id = json.loads(waiting_runner.result.read_text())["dag_id"]
    assert _run_states(dag_id) == ("failed", {"start_helpers": "success", "approve": "failed"})
    assert pending_approvals(dag_id) == []


def _run_states(dag_id: str) -> tuple[str, dict[str, str]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        (run,) = session.query(DagRun).filter(DagRun.dag_id == dag_id).all()
        return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


def _clean_env(home: Path) -> dict[str, str]:
    """The environment of a user running ``make demo``: none of the test session's Airflow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLSECOPS", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    env["MLSECOPS_HOME"] = str(home)
    return env


def _printed_command(out: str, verb: str) -> str:
    found = [line.strip() for line in out.splitlines() if re.match(rf"\s+MLSECOPS_HOME=\S+ \S+ {re.escape(verb)}(\s|$)", line)]
    assert len(found) == 1, out
    return found[0]


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.timeout(900)
def test_demo_waits_prints_how_to_answer_or_stop_and_stop_ends_it(airflow_db: Path, tmp_path: Path) -> None:
    """The full demo, once: it replaces a previous waiting run, stops at the approval, prints commands
    that parse, and its printed ``demo --stop`` ends the run and everything it started."""
    home = tmp_path / "home"
    home.mkdir()
    previous = start_waiting_runner(tmp_path, home / PID_FILE)
    try:
        _check_demo(home, tmp_path, previous)
    finally:  # a failed assertion leaves no run behind
        stop_background_run(home)
        if previous.process.poll() is None:
            previous.process.kill()
            previous.process.wait()


def _check_demo(home: Path, tmp_path: Path, previous: WaitingRunner) -> None:
    started = time.monotonic()
    demo = subprocess.run(
        [str(Path(sys.executable).with_name("mlsecops")), "demo"],
        cwd=REPO_ROOT,
        env=_clean_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds_to_approval = time.monotonic() - started
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert "stopped the previous demo run, which was still waiting: demo_runner_" in out
    assert previous.process.wait(timeout=5) == 128 + signal.SIGTERM

    assert "awaiting_approval" in out and "verification: VERIFIED" in out
    approve, reject, stop = (_printed_command(out, verb) for verb in ("approve", "reject", "demo --stop"))
    run_id = re.search(r"--run-id '([^']+)'", approve)
    assert run_id is not None
    parser = build_parser()
    for command, reviewer in ((approve, REVIEWERS[0]), (reject, REVIEWERS[-1])):
        args = parser.parse_args(shlex.split(command)[2:])
        assert (args.dag_id, args.run_id) == ("secure_training_pipeline", run_id.group(1))
        assert reviewer in command
    assert "make airflow" in out and "airflow standalone" not in out

    record = json.loads((home / PID_FILE).read_text())
    assert record["run_id"] == run_id.group(1)
    runner = psutil.Process(record["pid"])
    processes = [runner, *runner.children(recursive=True)]
    rss_mb = sum(p.memory_info().rss for p in processes) / 2**20
    print(f"\nmlsecops demo: {seconds_to_approval:.0f} s to the approval; background run RSS {rss_mb:.0f} MB")

    started = time.monotonic()
    stopped = subprocess.run(stop, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the demo run waiting in the background: secure_training_pipeline run {run_id.group(1)}" in stopped.stdout
    seconds = time.monotonic() - started
    print(f"mlsecops demo --stop: {seconds:.1f} s")
    assert seconds < 10
    _wait_for(lambda: not any(_alive(p) for p in processes), 3, "every process of the run to end")
    assert not (home / PID_FILE).exists()
    log = Path(re.search(r"\(log: (\S+)\)", out).group(1)).read_text()  # type: ignore[union-attr]
    assert f"stopped: marked DAG run {run_id.group(1)} and its unfinished tasks failed" in log

    again = subprocess.run(stop, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to stop" in again.stdout

    # Ctrl-C of a demo that is starting its run (SIGINT to its terminal's process group) stops the run too.
    demo_again = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlsecops")), "demo"],
        cwd=REPO_ROOT,
        env=_clean_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(lambda: (home / PID_FILE).exists(), 120, "the second demo to start its run")
    runner = psutil.Process(json.loads((home / PID_FILE).read_text())["pid"])
    _wait_for(lambda: bool(runner.children()), 30, "the runner to start its worker")
    processes = [runner, *runner.children(recursive=True)]
    os.killpg(demo_again.pid, signal.SIGINT)
    _, err = demo_again.communicate(timeout=30)
    assert demo_again.returncode == 2, err
    assert f"stopped the background run (pid {runner.pid})" in err and "interrupted" in err
    _wait_for(lambda: not any(_alive(p) for p in processes), 3, "every process of the interrupted run to end")
    assert not (home / PID_FILE).exists()
