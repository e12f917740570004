"""``mlsecops demo``: run the example pipeline end to end on the embedded default.

Everything lives under ``$MLSECOPS_HOME`` (default ``./.mlsecops``): Airflow's SQLite database
(``airflow/``), the MLflow SQLite store and artifacts, the evidence ledger, a demo signing key
(created on first use) and the generated data. No server is needed.

The run itself is a background process (``demo/_runner.py``) that keeps waiting at the approval
after the demo has printed its result. It is a good citizen: SIGTERM stops it and everything it
started; Ctrl-C or SIGTERM of ``mlsecops demo`` before it has printed its result stops it too; its
pid file (``$MLSECOPS_HOME/demo-run.pid``) lets ``mlsecops demo --stop`` find and stop it; and a new
demo in the same home stops a previous run that still waits (one waiting run per home: two would
hold twice the memory and contend for the same SQLite databases).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import SIGNING_KEY_FILE, Settings, pin_platform_environment, telemetry_off
from airflow_mlsecops.demo._runner import RUNNER_MODULE, runner_command
from airflow_mlsecops.demo.accounts import REVIEWERS
from airflow_mlsecops.exceptions import ConfigurationError, MLSecOpsError
from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_PREFIX, TAG_RUN_ID, MLflowEvidenceStore

DEFAULT_DAG_ID = "secure_training_pipeline"
#: The background run's pid file, under ``$MLSECOPS_HOME``. Written and removed by the runner.
PID_FILE = "demo-run.pid"
#: Seconds ``stop_background_run`` waits for the runner to end before killing it outright.
STOP_WAIT_SECONDS = 15.0


def demo_home() -> Path:
    """The demo's home: ``$MLSECOPS_HOME``, default ``./.mlsecops``, as an absolute path."""
    return Path(os.environ.get("MLSECOPS_HOME") or ".mlsecops").expanduser().absolute()


def check_reviewers(approve_as: str | None, reject_as: str | None, reviewers: tuple[str, ...] = REVIEWERS) -> None:
    """Refuse an answer the example DAG would refuse, before anything starts.

    The example DAG lets only its reviewers answer; any other name would start a run that then
    waits for an hour for an answer that never comes.
    """
    for option, name in (("--approve-as", approve_as), ("--reject-as", reject_as)):
        if name is not None and name not in reviewers:
            raise ConfigurationError(
                f"{option} {name!r}: not a reviewer of the example DAG; its reviewers are {', '.join(reviewers)}"
            )


@dataclass(frozen=True)
class BackgroundRun:
    """A demo run waiting in the background, as its pid file describes it."""

    pid: int
    dag_id: str
    run_id: str | None
    started_at: str
    pid_file: Path

    def describe(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        return f"{self.dag_id}{run} (pid {self.pid}, started {self.started_at})"


def _is_our_runner(pid: int, pid_file: Path, started: object) -> bool:
    """Whether ``pid`` is the demo runner that wrote ``pid_file`` (never a reused pid)."""
    import psutil

    try:
        process = psutil.Process(pid)
        cmdline, created, status = process.cmdline(), process.create_time(), process.status()
    except psutil.Error:
        return False
    if status == psutil.STATUS_ZOMBIE or RUNNER_MODULE not in cmdline or str(pid_file) not in cmdline:
        return False
    return not isinstance(started, int | float) or abs(created - started) < 1.0


def _ended(process: Any, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` (a ``psutil.Process``) to end; a zombie has ended."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def find_background_run(home: Path) -> BackgroundRun | None:
    """The demo run of ``home`` that is still alive, or None. A stale pid file is removed."""
    pid_file = home / PID_FILE
    try:
        record = json.loads(pid_file.read_text())
        pid = int(record["pid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        pid_file.unlink(missing_ok=True)
        return None
    if not _is_our_runner(pid, pid_file, record.get("started")):
        pid_file.unlink(missing_ok=True)
        return None
    return BackgroundRun(
        pid=pid,
        dag_id=str(record.get("dag_id") or DEFAULT_DAG_ID),
        run_id=record.get("run_id"),
        started_at=str(record.get("started_at") or "?"),
        pid_file=pid_file,
    )


def stop_background_run(home: Path, wait: float = STOP_WAIT_SECONDS) -> BackgroundRun | None:
    """Stop the demo run of ``home`` if one is alive; return what was stopped, or None.

    SIGTERM to the runner, which stops its worker's whole process group; if the runner has not
    ended after ``wait`` seconds it is killed, and its worker ends itself once its runner is gone.
    """
    import psutil

    run = find_background_run(home)
    if run is None:
        return None
    try:
        process = psutil.Process(run.pid)
        process.terminate()
        if not _ended(process, wait):
            process.kill()
            _ended(process, 5)
    except psutil.NoSuchProcess:
        pass
    except psutil.Error as exc:
        raise ConfigurationError(f"cannot stop the demo run {run.describe()}: {exc}") from exc
    find_background_run(home)  # removes the pid file if the runner could not
    return run


def _note_run_id(pid_file: Path, pid: int, run_id: str) -> None:
    """Add the DAG run's id to the runner's pid file, so ``--stop`` can say which run it stopped."""
    try:
        record = json.loads(pid_file.read_text())
        if record.get("pid") != pid or record.get("run_id") == run_id:
            return
        record["run_id"] = run_id
        partial = pid_file.with_name(f".{pid_file.name}.demo.tmp")
        partial.write_text(json.dumps(record, indent=2))
        partial.replace(pid_file)
    except (OSError, ValueError):
        pass


def _stop_runner(runner: subprocess.Popen[bytes], wait: float = STOP_WAIT_SECONDS) -> bool:
    """Stop the background run this demo started (SIGTERM, then SIGKILL); True if it was alive."""
    if runner.poll() is not None:
        return False
    runner.terminate()
    try:
        runner.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait(timeout=5)
    return True


@contextmanager
def _interrupted_by_signals() -> Iterator[None]:
    """Treat SIGTERM and SIGHUP (a closed terminal) like Ctrl-C while the demo runs, so each stops
    the background run and the database migration alike; Ctrl-C itself even if it was ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C too when started in the background, where a shell starts commands with SIGINT ignored
    # (Python then never raises KeyboardInterrupt): CI runs this test that way.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass
class DemoResult:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str]
    mlflow_run_id: str | None
    tracking_uri: str
    gates: dict[str, str]
    verified: bool
    verification_failures: list[dict[str, str]]
    log_file: str
    home: str
    dags_folder: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    approval: dict[str, Any] | None = None
    promoted: dict[str, Any] | None = None
    waiting_for: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Verified evidence, and the run ended as designed: promoted, waiting for a reviewer, or
        stopped by a recorded rejection."""
        rejected = self.state == "failed" and (self.approval or {}).get("decision") == "rejected"
        return self.verified and (self.state in ("success", "awaiting_approval") or rejected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "tasks": self.tasks,
            "mlflow_run_id": self.mlflow_run_id,
            "tracking_uri": self.tracking_uri,
            "gates": self.gates,
            "verified": self.verified,
            "verification_failures": self.verification_failures,
            "log_file": self.log_file,
            "home": self.home,
            "dags_folder": self.dags_folder,
            "seconds": round(self.seconds, 1),
            "notes": self.notes,
            "approval": self.approval,
            "promoted": self.promoted,
            "waiting_for": [{k: v for k, v in w.items() if k != "body"} for w in self.waiting_for],
        }


def prepare_environment(dags_folder: Path) -> tuple[Settings, dict[str, str], list[str]]:
    """Point Airflow and MLflow at ``$MLSECOPS_HOME``; create the demo key if none is configured."""
    telemetry_off()
    notes: list[str] = []
    home = demo_home()
    os.environ["MLSECOPS_HOME"] = str(home)
    pin_platform_environment()  # the demo is the platform here: its own settings are the platform's
    settings = Settings.from_env()
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    env.setdefault("PYTHONWARNINGS", "ignore")
    example_policy = dags_folder.parent / "policy" / "mlsecops-policy.yaml"
    if "MLSECOPS_POLICY" not in env and example_policy.is_file():
        # The demo runs under the example platform policy: enforced at parse time (cluster policy)
        # and at promotion, and its digest is in every evidence record.
        env["MLSECOPS_POLICY"] = str(example_policy)
        notes.append(f"enforcing the example policy {example_policy}")
    if not settings.signing_key_configured:
        key = settings.generate_key_pair()
        notes.append(f"created a demo signing key {settings.keys_dir / SIGNING_KEY_FILE} (key id {key.keyid[:16]})")
        settings = Settings.from_env()
    return settings, env, notes


def _migrate(env: dict[str, str], log: Any) -> None:
    import importlib.metadata

    marker = Path(env["AIRFLOW_HOME"], f".mlsecops-migrated-{importlib.metadata.version('apache-airflow')}")
    if marker.exists():
        return
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise ConfigurationError(f"`airflow db migrate` failed (exit {done.returncode}); see {log.name}")
    marker.touch()


def _latest_run(dag_id: str, since: datetime) -> tuple[str, str, dict[str, str]] | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.start_date >= since)
            .order_by(DagRun.start_date.desc())
            .first()
        )
        if run is None:
            return None
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        return run.run_id, str(run.state), tasks


def run_demo(
    *,
    dags_folder: Path,
    dag_id: str = DEFAULT_DAG_ID,
    conf: dict[str, Any] | None = None,
    echo: Callable[[str], None] | None = None,
    approve_as: str | None = None,
    reject_as: str | None = None,
    approval_timeout: float = 3600,
) -> DemoResult:
    """Run the example DAG; stop at the approval unless ``approve_as``/``reject_as`` answers it.

    When it stops at the approval, the run keeps waiting in the background (``mlsecops demo
    --stop`` ends it); if the demo is interrupted (Ctrl-C, SIGTERM, SIGHUP) or fails before it
    returns, the run is stopped.
    """
    check_reviewers(approve_as, reject_as)
    with _interrupted_by_signals():
        return _run_demo(
            dags_folder=dags_folder,
            dag_id=dag_id,
            conf=conf,
            echo=echo,
            approve_as=approve_as,
            reject_as=reject_as,
            approval_timeout=approval_timeout,
        )


def _run_demo(
    *,
    dags_folder: Path,
    dag_id: str,
    conf: dict[str, Any] | None,
    echo: Callable[[str], None] | None,
    approve_as: str | None,
    reject_as: str | None,
    approval_timeout: float,
) -> DemoResult:
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    dag_file = dags_folder / f"{dag_id}.py"
    if not dag_file.is_file():
        raise ConfigurationError(f"example DAG {dag_file} not found; run the demo from the project's root or pass --dags-folder")
    say = echo or (lambda _msg: None)
    previous = stop_background_run(demo_home())
    settings, env, notes = prepare_environment(dags_folder.absolute())
    if previous is not None:
        notes.insert(0, f"stopped the previous demo run, which was still waiting: {previous.describe()}")
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AIRFLOW", "MLFLOW", "MLSECOPS"))})
    pin_platform_environment()  # before any DAG file is read: a DAG cannot change these afterwards
    for note in notes:
        say(note)
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    log_path = logs / f"demo-{stamp}.log"
    result_path = logs / f"demo-{stamp}.json"
    with open(log_path, "w") as log:
        say(f"preparing Airflow's database in {env['AIRFLOW_HOME']} ...")
        _migrate(env, log)
    say(f"running {dag_id} with dag.test() (log: {log_path}) ...")
    pid_file = settings.home / PID_FILE
    command = runner_command(
        dag_file=dag_file.absolute(),
        dag_id=dag_id,
        result_path=result_path,
        pid_file=pid_file,
        conf=conf or {},
        timeout=approval_timeout,
    )
    started_runner: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "a") as log:
            # Its own session: when the demo stops at the approval, this run keeps waiting for a
            # reviewer (a Ctrl-C in the user's terminal afterwards does not reach it).
            runner = started_runner = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        run_id, state, tasks, waiting = _watch(
            runner,
            dag_id=dag_id,
            since=started_at,
            answer=(approve_as or reject_as, approve_as is not None),
            say=say,
            on_run=lambda run_id: _note_run_id(pid_file, runner.pid, run_id),
        )
        if runner.poll() is not None:
            run_id, state, tasks = _finished(runner, result_path, log_path, run_id, tasks)
        else:
            state = "awaiting_approval"
        return _report(
            settings,
            dag_id=dag_id,
            run_id=run_id,
            state=state,
            tasks=tasks,
            waiting=waiting,
            log_path=log_path,
            dags_folder=dags_folder,
            seconds=time.monotonic() - started,
            notes=notes,
        )
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM, SIGHUP) or failed before the user saw how to answer or stop the
        # run: do not leave it waiting unseen.
        if started_runner is not None and _stop_runner(started_runner):
            print(f"mlsecops demo: stopped the background run (pid {started_runner.pid})", file=sys.stderr, flush=True)
        raise


def _watch(
    runner: subprocess.Popen[bytes],
    *,
    dag_id: str,
    since: datetime,
    answer: tuple[str | None, bool],
    say: Callable[[str], None],
    on_run: Callable[[str], None],
) -> tuple[str, str, dict[str, str], list[Any]]:
    """Follow the run until it ends or waits for a reviewer; answer once if ``answer`` names one.

    Returns the run id, its state, its task states and the pending approvals.
    """
    from airflow_mlsecops.lifecycle.hitl import pending_approvals, respond

    user, approve = answer
    answered = False
    waiting: list[Any] = []
    run_id, state = "", "running"
    tasks: dict[str, str] = {}
    while True:
        finished = runner.poll() is not None
        latest = _latest_run(dag_id, since)
        if latest:
            run_id, state, tasks = latest
            on_run(run_id)
            waiting = pending_approvals(dag_id, run_id)
        if finished:
            break
        if waiting:
            if answered:
                pass  # another response is needed (quorum): the demo answers once, then reports
            elif user:
                say(f"answering {waiting[0].task_id} as {user}: {'Approve' if approve else 'Reject'}")
                respond(dag_id=dag_id, run_id=run_id, user=user, approve=approve)
                answered = True
                waiting = []
                time.sleep(1)
                continue
            if not answered:
                break
        time.sleep(1)
    return run_id, state, tasks, waiting


def _finished(
    runner: subprocess.Popen[bytes], result_path: Path, log_path: Path, run_id: str, tasks: dict[str, str]
) -> tuple[str, str, dict[str, str]]:
    """The outcome of a run whose runner has ended, from the result file it wrote."""
    if not result_path.exists():
        raise ConfigurationError(f"the example DAG could not be run (exit {runner.returncode}); see {log_path}")
    run = json.loads(result_path.read_text())
    if run["state"] == "stopped":
        raise ConfigurationError(f"the demo's run was stopped ({run.get('signal')}) before it finished; see {log_path}")
    if runner.returncode != 0 and run["state"] != "timed_out":
        raise ConfigurationError(f"the example DAG could not be run (exit {runner.returncode}); see {log_path}")
    return run.get("run_id", run_id), run["state"], run.get("tasks") or tasks


def _report(
    settings: Settings,
    *,
    dag_id: str,
    run_id: str,
    state: str,
    tasks: dict[str, str],
    waiting: list[Any],
    log_path: Path,
    dags_folder: Path,
    seconds: float,
    notes: list[str],
) -> DemoResult:
    """Find the run's evidence, verify it, and describe the outcome."""
    store = MLflowEvidenceStore.from_settings(settings)
    mlflow_run_id = None
    with store.errors("cannot find the demo's MLflow run"):
        experiment = store.client.get_experiment_by_name(dag_id)
        if experiment is not None and run_id:
            found = store.client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{TAG_DAG_ID}` = '{dag_id}' and tags.`{TAG_RUN_ID}` = '{run_id}'",
            )
            mlflow_run_id = found[0].info.run_id if found else None
    gates: dict[str, str] = {}
    verified, failures = False, []
    approval: dict[str, Any] | None = None
    if mlflow_run_id:
        tags = store.run_tags(mlflow_run_id)
        gates = {
            key[len(TAG_PREFIX) : -len(".verdict")]: value
            for key, value in sorted(tags.items())
            if key.startswith(TAG_PREFIX) and key.endswith(".verdict")
        }
        from airflow_mlsecops.lifecycle.verification import verify_run

        try:
            report = verify_run(mlflow_run_id, settings=settings, store=store)
            verified, failures = report.ok, [c.to_dict() for c in report.failures]
            approval = _approval_summary(report.results)
        except MLSecOpsError as exc:
            failures = [{"scope": "run", "check": "verify", "status": "failed", "detail": str(exc)}]
    if state == "awaiting_approval":
        approval = {"decision": "pending", "responded_by": None, "responded_at": None}
    return DemoResult(
        dag_id=dag_id,
        run_id=run_id,
        state=state,
        tasks=tasks,
        mlflow_run_id=mlflow_run_id,
        tracking_uri=settings.tracking_uri,
        gates=gates,
        verified=verified,
        verification_failures=failures,
        log_file=str(log_path),
        home=str(settings.home),
        dags_folder=str(dags_folder.absolute()),
        seconds=seconds,
        notes=notes,
        approval=approval,
        promoted=_promoted(store, run_id) if state == "success" else None,
        waiting_for=[w.to_dict() for w in waiting] if state == "awaiting_approval" else [],
    )


def _approval_summary(results: dict[str, Any]) -> dict[str, Any] | None:
    decisions = [r for _, r in sorted(results.items()) if r.gate == gate_names.MODEL_APPROVAL]
    if not decisions:
        return None
    final = decisions[-1]
    details = final.details
    approvals = details.get("approvals") or []
    by = details.get("rejected_by") or (approvals[-1] if approvals else None)
    return {
        "decision": details.get("decision"),
        "responded_by": (by or {}).get("name"),
        "responded_at": (by or {}).get("responded_at") or final.finished_at.isoformat(),
        "approvals": [a.get("name") for a in approvals],
    }


def _promoted(
    store: MLflowEvidenceStore, run_id: str, name: str = "credit-risk", alias: str = "champion"
) -> dict[str, Any] | None:
    from airflow_mlsecops.exceptions import ConfigurationError as _Missing

    try:
        with store.errors("cannot read the registry"):
            version = store.client.get_model_version_by_alias(name, alias)
    except (_Missing, MLSecOpsError):
        return None
    if version.tags.get("mlsecops.run_id") != run_id:
        return None
    return {"model": name, "version": str(version.version), "alias": alias}


def next_steps(result: DemoResult, mlsecops: str = "mlsecops") -> list[str]:
    """The commands that take the user on from the demo; ``mlsecops`` is how the CLI is called again.

    The real Airflow is ``make airflow`` (``mlsecops airflow``), the command the README gives: it
    sets up the example DAGs, the policy and the reviewers' logins itself, so nothing is to be
    copied by hand.
    """
    home = Path(result.home)
    env = f"MLSECOPS_HOME={home}" + (
        f" MLSECOPS_POLICY={os.environ['MLSECOPS_POLICY']}" if os.environ.get("MLSECOPS_POLICY") else ""
    )
    airflow_env = "" if home == Path(".mlsecops").absolute() else f"MLSECOPS_HOME={home} "
    return [
        f"verify the evidence again:  {env} {mlsecops} verify --mlflow-run-id {result.mlflow_run_id}",
        f"open the MLflow UI:         mlflow ui --backend-store-uri {result.tracking_uri} --port 5000",
        f"run it in a real Airflow:   {airflow_env}make airflow   (from the project's root: scheduler, API server "
        "and UI with the reviewers' logins; Ctrl-C stops it)",
    ]
