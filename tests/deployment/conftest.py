"""A real distributed Airflow for the deployment suite, started once per session, never mocked.

* Airflow: ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and a ``celery worker``,
  each its own process (``LocalAirflow``), CeleryExecutor with the machine's Redis as broker,
  PostgreSQL for Airflow's metadata and Celery's results;
* MLflow: a tracking server on loopback backed by PostgreSQL, its artifacts in S3 (moto_server);
* the evidence ledger on PostgreSQL; the example policy enforced at parse time and at promotion;
* users of Airflow's simple auth manager: ``admin``, the reviewers ``alice`` and ``bob``, the ML
  engineer ``carol``.

Needs ``MLSECOPS_TEST_POSTGRES_URL`` and ``MLSECOPS_TEST_REDIS_URL`` (``.ci/run`` sets both);
without them the suite is skipped and the summary says so. Every database it creates is dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.deployment.local import LocalAirflow, free_port
from tests.conftest import _SKIPPED_SUITES, REPO_ROOT

MODEL_NAME = "credit-risk"
USERS = {"admin": "admin", "alice": "user", "bob": "user", "carol": "user"}
#: A variant of the example DAG that waits only 30 s for an approval (the timeout test).
SHORT_TIMEOUT_DAG = "secure_training_pipeline_short_timeout"
#: A DAG file that sets the platform policy in os.environ: the dag-processor rejects it.
ESCAPE_POLICY_DAG = "escape_platform_policy"


@dataclass(eq=False)
class MemoryWatch(threading.Thread):
    """Samples the RSS of every process of the deployment; keeps the peak of each and of the sum."""

    airflow: LocalAirflow
    interval: float = 2.0
    peak: dict[str, int] = field(default_factory=dict)
    peak_total_airflow: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True)

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            usage = self.airflow.memory_bytes()
            for name, rss in usage.items():
                self.peak[name] = max(self.peak.get(name, 0), rss)
            airflow_total = sum(rss for name, rss in usage.items() if name in self.airflow.components)
            self.peak_total_airflow = max(self.peak_total_airflow, airflow_total)


@dataclass
class Deployment:
    """What the tests talk to."""

    airflow: LocalAirflow
    mlflow_uri: str
    env: dict[str, str]

    @property
    def api(self) -> str:
        return self.airflow.api_url

    def call(self, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One REST call to Airflow's public API as ``user``: (status, JSON body)."""
        return self.airflow.call(user, method, path, body)

    def trigger(self, user: str, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        status, body = self.call(user, "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        assert status == 200, (status, body)
        return str(body["dag_run_id"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        status, body = self.call("admin", "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        assert status == 200, (status, body)
        return {ti["task_id"]: str(ti["state"]) for ti in body["task_instances"]}

    def run_state(self, dag_id: str, run_id: str) -> str:
        status, body = self.call("admin", "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        assert status == 200, (status, body)
        return str(body["state"])

    def wait_for(
        self, dag_id: str, run_id: str, *, task_state: tuple[str, str] | None = None, timeout: float = 900
    ) -> dict[str, str]:
        """Wait until the run ends, or until ``task_state`` = (task, state) holds; return the task states."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.task_states(dag_id, run_id)
            if task_state and states.get(task_state[0]) == task_state[1]:
                return states
            if self.run_state(dag_id, run_id) in ("success", "failed"):
                return states
            time.sleep(3)
        raise AssertionError(f"{dag_id} {run_id} did not get there within {timeout:.0f} s: {self.task_states(dag_id, run_id)}")

    def cli(self, *args: str, user: str | None = None, check: bool = False) -> Any:
        """Run ``mlsecops`` as a user of this deployment would, in a fresh process."""
        import subprocess

        env = dict(self.env)
        if user:
            env["AIRFLOW_API_URL"] = self.api
            env["AIRFLOW_API_USERNAME"] = user
            env["AIRFLOW_API_PASSWORD"] = self.airflow.passwords[user]
        done = subprocess.run(
            [sys.executable, "-m", "airflow_mlsecops.cli", *args], env=env, capture_output=True, text=True, timeout=300
        )
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done


def _postgres_base() -> str | None:
    return os.environ.get("MLSECOPS_TEST_POSTGRES_URL")


def _create_database(base: str, name: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return str(sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False))


def _drop_database(base: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _wait_http(url: str, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (OSError, ValueError):
            time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s:\n{tail}")


def _dags_folder(root: Path) -> Path:
    """The example DAGs, plus a variant of the training pipeline with a 30-second approval timeout."""
    dags = root / "dags"
    shutil.copytree(REPO_ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / f"{SHORT_TIMEOUT_DAG}.py").write_text(
        '"""An Airflow DAG: the example pipeline with a 30-second approval timeout (deployment tests)."""\n'
        "from datetime import timedelta\n\n"
        "from secure_training_pipeline import build_secure_training_pipeline\n\n"
        f"dag = build_secure_training_pipeline(dag_id={SHORT_TIMEOUT_DAG!r}, approval_timeout=timedelta(seconds=30))\n"
    )
    # A hostile author's DAG: it points the platform's policy at a lax file of its own. The
    # dag-processor must reject it (the platform's settings come from the process's start environment).
    (dags / f"{ESCAPE_POLICY_DAG}.py").write_text(
        '"""An Airflow DAG whose author replaces the platform policy with a lax one (must be rejected)."""\n'
        "import os\n\n"
        # The DAG folder is code-scanned by the pipeline: the path is under pytest's temp folder (bandit B108).
        f"os.environ['AIRFLOW__MLSECOPS__POLICY_FILE'] = {str(root / 'lax-policy.yaml')!r}"
        "  # nosec B108: the deployment test's own lax policy file, in pytest's temporary folder\n"
        "from secure_training_pipeline import build_secure_training_pipeline\n\n"
        f"dag = build_secure_training_pipeline(dag_id={ESCAPE_POLICY_DAG!r})\n"
    )
    (root / "lax-policy.yaml").write_text(
        "version: 1\nrules:\n  - name: lax\n    match: {dag_id_pattern: nothing}\n    thresholds: {drift: {drift_share: 1}}\n"
    )
    return dags


# Module scope: the servers stop as soon as the suite is done, not at the end of the whole session.
@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Deployment]:
    base, redis = _postgres_base(), os.environ.get("MLSECOPS_TEST_REDIS_URL")
    if not base or not redis:
        missing = " and ".join(n for n, v in (("MLSECOPS_TEST_POSTGRES_URL", base), ("MLSECOPS_TEST_REDIS_URL", redis)) if not v)
        _SKIPPED_SUITES["deployment"] = f"{missing} not set (.ci/run sets them)"
        pytest.skip(f"deployment suite: {missing} not set")
    assert base is not None and redis is not None
    from airflow_mlsecops.evidence.keys import SigningKey

    started = time.monotonic()
    root = tmp_path_factory.mktemp("deployment")
    tag = uuid.uuid4().hex[:10]
    names = {part: f"mlsecops_{part}_{tag}" for part in ("airflow", "mlflow", "ledger")}
    urls = {part: _create_database(base, name) for part, name in names.items()}
    airflow: LocalAirflow | None = None
    watch: MemoryWatch | None = None
    try:
        # Keys: workers sign with the private key; verifiers trust only the public key.
        key_dir = root / "keys"
        SigningKey.generate("ecdsa-p256").write_pair(key_dir / "signing-key.pem", key_dir / "signing-key.pub.pem")
        s3_port, mlflow_port = free_port(), free_port()
        s3 = f"http://127.0.0.1:{s3_port}"
        bucket = f"mlsecops-{tag}"
        aws = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": s3,
        }
        mlflow_uri = f"http://127.0.0.1:{mlflow_port}"
        policy = REPO_ROOT / "policy" / "mlsecops-policy.yaml"
        ledger_url = urls["ledger"].replace("postgresql://", "postgresql+psycopg2://", 1)
        # As a platform team configures Airflow: the [mlsecops] section and the MLflow connection,
        # nothing in MLSECOPS_* or MLFLOW_TRACKING_URI (MLflow would read that one itself).
        platform = {
            "AIRFLOW__MLSECOPS__HOME": str(root / "mlsecops-home"),
            "AIRFLOW__MLSECOPS__SIGNING_KEY": str(key_dir / "signing-key.pem"),
            "AIRFLOW__MLSECOPS__TRUSTED_KEYS": str(key_dir / "signing-key.pub.pem"),
            "AIRFLOW__MLSECOPS__LEDGER_URL": ledger_url,
            "AIRFLOW__MLSECOPS__POLICY_FILE": str(policy),
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": mlflow_uri}),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
            **aws,
        }
        # A verifier's shell: only the public key, the ledger and the MLflow server.
        verifier = {
            "MLFLOW_TRACKING_URI": mlflow_uri,
            "MLSECOPS_LEDGER_URL": ledger_url,
            "MLSECOPS_TRUSTED_KEYS": str(key_dir / "signing-key.pub.pem"),
            "MLSECOPS_POLICY": str(policy),
        }
        pg = urls["airflow"].replace("postgresql://", "postgresql+psycopg2://", 1)
        airflow = LocalAirflow(
            home=root / "airflow",
            dags_folder=_dags_folder(root),
            users=USERS,
            sql_alchemy_conn=pg,
            executor="CeleryExecutor",
            celery_broker_url=redis,
            celery_result_backend="db+" + pg,
            queue=f"mlsecops-{tag}",
            env=platform,
            parallelism=2,
        )
        base_env = airflow.environment()
        airflow.start_process("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], base_env)
        _wait_http(s3, 60, "moto_server", airflow.home / "logs" / "moto.log")
        import boto3

        s3_client = boto3.client(
            "s3",
            endpoint_url=s3,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3_client.create_bucket(Bucket=bucket)
        airflow.start_process(
            "mlflow-server",
            [
                sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
                "--backend-store-uri", urls["mlflow"], "--artifacts-destination", f"s3://{bucket}/mlflow",
            ],
            {**base_env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        airflow.start()
        _wait_http(f"{mlflow_uri}/health", 120, "the MLflow server", airflow.home / "logs" / "mlflow-server.log")
        airflow.wait_until_ready(timeout=300)
        watch = MemoryWatch(airflow)
        watch.start()
        deployment = Deployment(airflow=airflow, mlflow_uri=mlflow_uri, env={**os.environ, **verifier})
        for dag_id in ("secure_training_pipeline", SHORT_TIMEOUT_DAG):
            _wait_for_dag(deployment, dag_id)
        yield deployment
    finally:
        if watch is not None:
            watch.stopped.set()
            watch.join(timeout=5)
            _report(pytestconfig, watch, time.monotonic() - started)
        if airflow is not None:
            airflow.stop()
        for name in names.values():
            _drop_database(base, name)


def _wait_for_dag(deployment: Deployment, dag_id: str, timeout: float = 180) -> None:
    """The dag-processor parsed ``dag_id`` (under the cluster policy) and it is not paused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = deployment.call("admin", "GET", f"/api/v2/dags/{dag_id}")
        if status == 200:
            return
        time.sleep(2)
    _, errors = deployment.call("admin", "GET", "/api/v2/importErrors")
    raise AssertionError(f"{dag_id} was not parsed within {timeout:.0f} s; import errors: {errors}")


_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("deployment suite")
        for line in _REPORT:
            terminalreporter.write_line(line)


def _report(config: pytest.Config, watch: MemoryWatch, seconds: float) -> None:
    mib = 1024 * 1024
    peaks = ", ".join(f"{name} {rss / mib:.0f}" for name, rss in sorted(watch.peak.items()))
    lines = [
        f"deployment suite: {seconds:.0f} s wall from first server start to teardown",
        f"peak RSS of the Airflow processes together: {watch.peak_total_airflow / mib:.0f} MiB",
        f"peak RSS per process tree (MiB): {peaks}",
    ]
    _REPORT.extend(lines)
    report = os.environ.get("MLSECOPS_DEPLOYMENT_REPORT")
    if report:
        Path(report).write_text(
            json.dumps({"seconds": seconds, "peak_airflow_rss": watch.peak_total_airflow, "peaks": watch.peak})
        )
