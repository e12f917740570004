"""Start a real Airflow on this machine, every component its own process.

``LocalAirflow`` runs what a deployment runs: ``airflow api-server``, ``scheduler``,
``dag-processor`` and ``triggerer`` (and, with the CeleryExecutor, ``celery worker``) as separate
processes, each in its own process group, logging to ``$AIRFLOW_HOME/logs/<component>.log``.
``mlsecops airflow`` (``make airflow``) uses it on the embedded default (SQLite, LocalExecutor);
the deployment test suite uses it with PostgreSQL, Redis and Celery workers.

Users come from Airflow's simple auth manager. Their passwords are generated here (``secrets``)
and written to the manager's password file (mode 0600) before the API server starts, so the
caller knows them without reading logs.

Nothing here imports Airflow: it only starts ``python -m airflow ...`` and talks HTTP.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from airflow_mlsecops.exceptions import ConfigurationError

#: The components of a scheduler-based Airflow 3 deployment, in start order.
CORE_COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
CELERY_WORKER = "celery-worker"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
#: Seconds a connection to the embedded SQLite metadata database waits for another writer's lock.
SQLITE_LOCK_TIMEOUT_S = 60


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalAirflow:
    """A real Airflow: its settings, its processes and its users.

    :param home: ``AIRFLOW_HOME`` (created).
    :param dags_folder: the DAG files the dag-processor parses.
    :param users: login name -> simple auth manager role (``viewer``, ``user``, ``op``, ``admin``).
    :param sql_alchemy_conn: Airflow's metadata database (default: SQLite under ``home``).
    :param executor: ``LocalExecutor`` or ``CeleryExecutor``.
    :param celery_broker_url: the Celery broker (Redis), for the CeleryExecutor.
    :param celery_result_backend: Celery's result backend (``db+postgresql://...``).
    :param queue: the Celery queue of this deployment's tasks (unique, so two deployments sharing
        a broker never run each other's tasks).
    :param port: the API server's port (default: a free one).
    :param env: more environment for every component (``MLSECOPS_*``, MLflow, AWS settings).
    :param parallelism: task slots of the executor (and each Celery worker's concurrency).
    """

    home: Path
    dags_folder: Path
    users: Mapping[str, str]
    sql_alchemy_conn: str | None = None
    executor: str = "LocalExecutor"
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    queue: str = "default"
    port: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 2
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    _logs: list[IO[bytes]] = field(default_factory=list, init=False)
    _secrets: dict[str, str] = field(default_factory=dict, init=False)
    _tokens: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).absolute()
        self.dags_folder = Path(self.dags_folder).absolute()
        if self.executor == "CeleryExecutor" and not self.celery_broker_url:
            raise ConfigurationError("the CeleryExecutor needs a broker URL (Redis)")
        if not self.port:
            self.port = free_port()

    # ------------------------------------------------------------------ settings
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def components(self) -> tuple[str, ...]:
        return CORE_COMPONENTS + ((CELERY_WORKER,) if self.executor == "CeleryExecutor" else ())

    def _secret(self, name: str) -> str:
        """A random secret shared by every component (kept in ``home`` so a restart reuses it)."""
        if name not in self._secrets:
            path = self.home / ".secrets.json"
            stored = json.loads(path.read_text()) if path.exists() else {}
            if name not in stored:
                stored[name] = secrets.token_urlsafe(32)
                path.write_text(json.dumps(stored))
                path.chmod(0o600)
            self._secrets[name] = stored[name]
        return self._secrets[name]

    def environment(self) -> dict[str, str]:
        """The environment every component (and the Airflow CLI) runs with."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                # One bundle, the DAGs folder (whatever bundles the calling environment names).
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                    [
                        {
                            "name": "dags-folder",
                            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                            "kwargs": {"path": str(self.dags_folder)},
                        }
                    ]
                ),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in self.users.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / PASSWORDS_FILE),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": self._secret("api_secret_key"),
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt_secret"),
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                # Parse new and changed DAG files within seconds, not minutes.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONWARNINGS": "ignore",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
            }
        )
        if self.sql_alchemy_conn:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.sql_alchemy_conn
        else:
            # Scheduler, dag-processor, triggerer, API server and task processes all write to one
            # file: wait up to a minute for its lock (sqlite3's default, 5 s, failed requests with
            # "database is locked" on a busy 2-core machine).
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{self.home / 'airflow.db'}?timeout={SQLITE_LOCK_TIMEOUT_S}"
        if self.executor == "CeleryExecutor":
            env["AIRFLOW__CELERY__BROKER_URL"] = str(self.celery_broker_url)
            if self.celery_result_backend:
                env["AIRFLOW__CELERY__RESULT_BACKEND"] = self.celery_result_backend
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.parallelism)
        env.update(self.env)
        return env

    def _write_passwords(self) -> None:
        path = self.home / PASSWORDS_FILE
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for user in self.users:
            stored.setdefault(user, secrets.token_urlsafe(12))
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)

    @property
    def passwords(self) -> dict[str, str]:
        """Each user's password (generated on :meth:`start`)."""
        path = self.home / PASSWORDS_FILE
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        return {user: stored[user] for user in self.users if user in stored}

    # ------------------------------------------------------------------ lifecycle
    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command with this deployment's settings."""
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def migrate(self) -> None:
        """Create or upgrade Airflow's metadata database."""
        done = self.airflow("db", "migrate", timeout=600)
        if done.returncode != 0:
            raise ConfigurationError(f"`airflow db migrate` failed (exit {done.returncode}): {done.stderr[-2000:]}")

    def _command(self, component: str) -> list[str]:
        base = [sys.executable, "-m", "airflow"]
        if component == "api-server":
            return [*base, "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        if component == CELERY_WORKER:
            return [*base, "celery", "worker", "--queues", self.queue, "--concurrency", str(self.parallelism)]
        return [*base, component]

    def start(self, components: Sequence[str] | None = None) -> None:
        """Migrate the database, then start each component as its own process group."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self._write_passwords()
        self.migrate()
        env = self.environment()
        for component in components or self.components:
            self.start_process(component, self._command(component), env)

    def start_process(self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start one more process beside Airflow (an MLflow server...), stopped and measured with it."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        log = open(self.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (closed by stop())
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, component: str, lines: int = 30) -> str:
        path = self.home / "logs" / f"{component}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def health(self) -> dict[str, Any] | None:
        """``GET /api/v2/monitor/health`` (no login needed), or None while the API server is down."""
        return api_health(self.api_url)

    def _dead(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    def wait_until_ready(self, timeout: float = 240) -> float:
        """Wait until the API server answers and the scheduler, dag-processor and triggerer heartbeat
        (and a Celery worker said it is ready); return the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            dead = self._dead()
            if dead:
                raise ConfigurationError(
                    f"Airflow's {dead[0]} exited (code {self.processes[dead[0]].returncode}):\n{self.log_tail(dead[0])}"
                )
            health = self.health()
            healthy = health is not None and all(
                (health.get(key) or {}).get("status") == "healthy" for key in self._health_keys()
            )
            if healthy and self._worker_ready():
                return time.monotonic() - started
            time.sleep(1)
        raise ConfigurationError(f"Airflow was not ready within {timeout:.0f} s; health: {self.health()}")

    def _health_keys(self) -> tuple[str, ...]:
        keys = ["metadatabase"]
        for component, key in (("scheduler", "scheduler"), ("triggerer", "triggerer"), ("dag-processor", "dag_processor")):
            if component in self.processes:
                keys.append(key)
        return tuple(keys)

    def _worker_ready(self) -> bool:
        if CELERY_WORKER not in self.processes:
            return True
        return " ready." in self.log_tail(CELERY_WORKER, lines=200)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM every component's process group, then SIGKILL what is left."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ measurements
    def memory_bytes(self) -> dict[str, int]:
        """Resident memory (RSS) of each component with all its child processes."""
        return {name: process_tree_memory(proc.pid) for name, proc in self.processes.items()}

    # ------------------------------------------------------------------ REST
    def token(self, user: str) -> str:
        """A JWT for ``user`` from ``POST /auth/token`` (one login per user and object)."""
        if user not in self._tokens:
            body = json.dumps({"username": user, "password": self.passwords[user]}).encode()
            request = urllib.request.Request(
                f"{self.api_url}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310: api_url is http://127.0.0.1:PORT of this deployment
                self._tokens[user] = str(json.load(response)["access_token"])
        return self._tokens[user]

    def call(self, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One call to Airflow's REST API logged in as ``user``: (HTTP status, the JSON answer, or
        the text of an error that is not JSON)."""
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {self.token(user)}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # nosec B310: api_url is http://127.0.0.1:PORT of this deployment
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text.decode(errors="replace")


def process_tree_memory(pid: int, kind: str = "rss") -> int:
    """Bytes of memory of a process and all its descendants: ``rss``, or ``pss`` (pages shared by
    forked children counted once; reads /proc/*/smaps, slower). Processes gone meanwhile count 0."""
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in tree:
        try:
            info = process.memory_full_info() if kind == "pss" else process.memory_info()
            total += int(getattr(info, kind))
        except psutil.Error:
            pass
    return total


def api_health(api_url: str) -> dict[str, Any] | None:
    """Airflow's ``GET /api/v2/monitor/health`` (no login needed), or None while nothing answers."""
    url = f"{api_url}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # nosec B310: LocalDeployment.api_url, http://127.0.0.1:PORT
            return dict(json.load(response))
    except (OSError, ValueError):
        return None


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is not None and sig == signal.SIGTERM:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


__all__ = ["CELERY_WORKER", "CORE_COMPONENTS", "LocalAirflow", "api_health", "free_port", "process_tree_memory"]
