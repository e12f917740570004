"""Shared fixtures. Real parts only: SQLite and PostgreSQL databases, MLflow stores, Airflow's own
``dag.test()``. Suites that need a server find it through an environment variable that ``.ci/run``
sets; without it they are skipped and the summary at the end says which and why.

* ``MLSECOPS_TEST_POSTGRES_URL``: SQLAlchemy URL of a PostgreSQL database (each test gets its own schema).
* ``MLSECOPS_TEST_MLFLOW_URI``: URL of a running MLflow tracking server.
* ``MLSECOPS_TEST_S3_ENDPOINT``: URL of an S3-compatible server (``.ci/run`` starts moto_server).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Airflow reads its configuration when first imported: point it at a private home first.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlsecops-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parents[1] / "dags")
# dag.test() in Airflow 3.3 runs the serialized DAG of a bundle: tests write their DAG files into a
# second bundle beside the example DAGs (see ``write_dag``).
TEST_DAGS = _SESSION_DIR / "test_dags"
TEST_DAGS.mkdir()
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": "example-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": os.environ["AIRFLOW__CORE__DAGS_FOLDER"]},
        },
        {
            "name": "test-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(TEST_DAGS)},
        },
    ]
)
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
for _name in (
    "MLSECOPS_SIGNING_KEY",
    "MLSECOPS_SIGNING_KEY_PEM",
    "MLSECOPS_TRUSTED_KEYS",
    "MLSECOPS_LEDGER_URL",
    "MLSECOPS_POLICY",
    "MLSECOPS_REGISTRY_URI",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
):
    os.environ.pop(_name, None)

import pytest  # noqa: E402

from airflow_mlsecops import config as _config  # noqa: E402
from airflow_mlsecops.config import Settings  # noqa: E402

# In-process tests set the platform's variables with monkeypatch.setenv: here the live environment
# counts as the platform's. ``pinned_platform_environment`` turns the real rule back on, and every
# subprocess (CLI, Airflow) applies it for real.
_config._trust_live_environment = True

REPO_ROOT = Path(__file__).parents[1]
_SKIPPED_SUITES: dict[str, str] = {}


def _template_mlflow_db() -> Path:
    """An initialised MLflow SQLite store, made once and copied per test (migrations take seconds)."""
    template = _SESSION_DIR / "mlflow-template.db"
    if not template.exists():
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()
    return template


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh embedded default: MLflow SQLite store, SQLite ledger and a signing key pair."""
    root = tmp_path / "home"
    root.mkdir()
    shutil.copy(_template_mlflow_db(), root / "mlflow.db")
    monkeypatch.setenv("MLSECOPS_HOME", str(root))
    # Not MLFLOW_TRACKING_URI: MLflow reads it too, and exporting it hid a process-global-state bug
    # from every in-process test (the store defaults to $MLSECOPS_HOME/mlflow.db anyway).
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLSECOPS_LEDGER_URL", raising=False)
    # mlflow.set_registry_uri() (called by code under test) writes this into os.environ.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    settings = Settings.from_env()
    settings.generate_key_pair()
    return Settings.from_env()


@pytest.fixture
def pinned_platform_environment() -> Iterator[None]:
    """The platform's environment as it is now, fixed as in a real process: a later change of a
    platform variable in ``os.environ`` (by a DAG file) is refused, as it is in Airflow."""
    _config.pin_platform_environment()
    _config._trust_live_environment = False
    try:
        yield
    finally:
        _config._trust_live_environment = True
        _config._pinned_environment = None


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database (SQLite), migrated once per session."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return Path(os.environ["AIRFLOW_HOME"])


def load_dag_file(path: Path, dag_id: str):
    spec = importlib.util.spec_from_file_location(f"test_dag_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id and hasattr(v, "test"))


@pytest.fixture
def write_dag():
    """Write a DAG file into the test bundle and return the loaded DAG (ready for ``dag.test()``).

    ``source`` is the body of a ``with DAG(...) as dag:`` block; ``dag_id`` must be unique.
    """

    def _write(dag_id: str, source: str, header: str = "", params: dict | None = None):
        path = TEST_DAGS / f"{dag_id}.py"
        body = "\n".join("    " + line if line.strip() else "" for line in source.strip("\n").splitlines())
        path.write_text(
            "from datetime import datetime, timedelta\n"
            "from airflow.sdk import DAG, task\n"
            "from airflow_mlsecops.operators import DataValidationGateOperator, ProvenanceSignOperator\n"
            f"{header}\n"
            f"with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), params={params or {}!r}) as dag:\n"
            f"{body}\n"
        )
        return load_dag_file(path, dag_id)

    return _write


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of its own, dropped afterwards."""
    base = os.environ.get("MLSECOPS_TEST_POSTGRES_URL")
    if not base:
        _SKIPPED_SUITES["postgres"] = "MLSECOPS_TEST_POSTGRES_URL is not set (.ci/run sets it)"
        pytest.skip("PostgreSQL suite: MLSECOPS_TEST_POSTGRES_URL is not set")
    import sqlalchemy as sa

    schema = f"mlsecops_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def mlflow_server_uri() -> str:
    uri = os.environ.get("MLSECOPS_TEST_MLFLOW_URI")
    if not uri:
        _SKIPPED_SUITES["mlflow_server"] = "MLSECOPS_TEST_MLFLOW_URI is not set (.ci/run starts a server and sets it)"
        pytest.skip("MLflow server suite: MLSECOPS_TEST_MLFLOW_URI is not set")
    return uri


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3-compatible server named by ``MLSECOPS_TEST_S3_ENDPOINT``."""
    endpoint = os.environ.get("MLSECOPS_TEST_S3_ENDPOINT")
    if not endpoint:
        _SKIPPED_SUITES["s3"] = "MLSECOPS_TEST_S3_ENDPOINT is not set (.ci/run starts moto_server and sets it)"
        pytest.skip("S3 suite: MLSECOPS_TEST_S3_ENDPOINT is not set")
    monkeypatch.setenv("MLSECOPS_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from airflow_mlsecops.io.artifacts import s3_client

    bucket = f"mlsecops-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def aws_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    """The loopback moto_server (KMS, S3) named by ``MLSECOPS_TEST_S3_ENDPOINT``, made boto3's default
    endpoint (``AWS_ENDPOINT_URL``) with test credentials and region for this test."""
    endpoint = os.environ.get("MLSECOPS_TEST_S3_ENDPOINT")
    if not endpoint:
        _SKIPPED_SUITES["s3"] = "MLSECOPS_TEST_S3_ENDPOINT is not set (.ci/run starts moto_server and sets it)"
        pytest.skip("AWS suite (moto_server: KMS, S3): MLSECOPS_TEST_S3_ENDPOINT is not set")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("MLSECOPS_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint


@pytest.fixture(scope="session")
def spark():
    """A Spark session on ``local[2]`` (pyspark and Java 17+); ``.ci/run`` sets ``MLSECOPS_TEST_SPARK``
    when Java is installed. One JVM per test process, stopped at the end of the session."""
    if not os.environ.get("MLSECOPS_TEST_SPARK"):
        _SKIPPED_SUITES["spark"] = "MLSECOPS_TEST_SPARK is not set (.ci/run sets it when Java 17+ and pyspark are installed)"
        pytest.skip("Spark suite: MLSECOPS_TEST_SPARK is not set")
    from airflow_mlsecops.io.spark import spark_session

    session = spark_session("local[2]", app_name="mlsecops-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


#: Fixtures that make a test need more than this process: a migrated Airflow database (real task
#: runs) or a server. Tests that use one are marked, so ``make test-fast`` can leave them out.
_FIXTURE_MARKS = {
    "airflow_db": "airflow",
    "postgres_url": "postgres",
    "mlflow_server_uri": "mlflow_server",
    "s3_bucket": "s3",
    "aws_endpoint": "s3",
    "spark": "spark",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, mark in _FIXTURE_MARKS.items():
            if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(mark) is None:
                item.add_marker(getattr(pytest.mark, mark))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SKIPPED_SUITES:
        terminalreporter.section("suites skipped on this machine")
        for suite, reason in sorted(_SKIPPED_SUITES.items()):
            terminalreporter.write_line(f"{suite}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
