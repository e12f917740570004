"""The evidence hook reads its MLflow store from an Airflow Connection: real ``Connection`` objects,
real lookups (environment and Airflow's database), and gate tasks run with ``dag.test()``."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from airflow.sdk import Connection

from airflow_mlsecops.config import Settings
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.hooks.evidence import EvidenceHook, connection_store_options
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.provider import CONNECTION_EXTRAS, get_provider_info
from tests.helpers import pipeline_run_id, run_dag, unique_dag_id, write_csv


def _conn(**fields: object) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(
        conn_id=str(fields.pop("conn_id", "store")),
        conn_type=str(fields.pop("conn_type", "mlflow")),
        extra=json.dumps(extra) if extra is not None else None,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("fields", "tracking_uri"),
    [
        ({"host": "mlflow.internal", "port": 5000}, "http://mlflow.internal:5000"),
        ({"host": "mlflow.example.com", "schema": "https"}, "https://mlflow.example.com"),
        ({"host": "https://mlflow.example.com/prefix/", "port": 8443}, "https://mlflow.example.com:8443/prefix"),
        ({"host": "http://localhost:5000", "port": 5000, "conn_type": "http"}, "http://localhost:5000"),
        ({"host": "ignored", "extra": {"tracking_uri": "sqlite:////srv/mlflow.db"}}, "sqlite:////srv/mlflow.db"),
        ({"host": "sqlite:////srv/mlflow.db"}, "sqlite:////srv/mlflow.db"),
    ],
)
def test_connection_fields_name_the_tracking_uri(fields: dict, tracking_uri: str) -> None:
    assert connection_store_options(_conn(**fields))["tracking_uri"] == tracking_uri


def test_connection_extras_name_the_rest_of_the_store() -> None:
    conn = _conn(
        host="mlflow",
        extra={
            "registry_uri": "postgresql://db/registry",
            "artifact_root": "/srv/art",
            "ui_url": "https://ui",
            "tracking_uri": "",
        },
    )
    assert connection_store_options(conn) == {
        "tracking_uri": "http://mlflow",
        "registry_uri": "postgresql://db/registry",
        "artifact_root": "/srv/art",
        "mlflow_ui_url": "https://ui",
    }
    # The UI's older form prefixes extra fields with the connection type.
    prefixed = _conn(host="mlflow", extra={"extra__mlflow__registry_uri": "sqlite:///r.db"})
    assert connection_store_options(prefixed)["registry_uri"] == "sqlite:///r.db"
    # Every extra the UI form offers is one the hook reads.
    form = get_provider_info()["connection-types"][0]["conn-fields"]
    assert set(form) == set(CONNECTION_EXTRAS)
    for key in form:
        assert connection_store_options(_conn(host="h", extra={key: "x://y"}))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": "mlflow", "login": "alice", "password": "s3cret"}, "MLFLOW_TRACKING_USERNAME"),
        ({"host": "mlflow", "extra": {"registry-uri": "x"}}, "unknown extra 'registry-uri'"),
        ({"extra": {"registry_uri": "sqlite:///r.db"}}, "names no tracking server"),
        ({"host": "mlflow", "schema": "ftp"}, "schema must be http or https"),
    ],
)
def test_a_connection_that_cannot_be_used_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        connection_store_options(_conn(**fields))


def test_an_explicit_conn_id_must_exist_the_default_may_not(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'env.db'}")
    with pytest.raises(ConfigurationError, match=r"MLflow connection 'evidence_store' is not defined"):
        EvidenceHook(mlflow_conn_id="evidence_store").settings  # noqa: B018
    assert EvidenceHook().settings.tracking_uri == f"sqlite:///{tmp_path / 'env.db'}"
    assert EvidenceHook(mlflow_conn_id=None).settings.source_of("tracking_uri") == "MLFLOW_TRACKING_URI"

    monkeypatch.setenv("AIRFLOW_CONN_EVIDENCE_STORE", json.dumps({"conn_type": "mlflow", "host": "mlflow", "schema": "https"}))
    settings = EvidenceHook(mlflow_conn_id="evidence_store").settings
    assert settings.tracking_uri == settings.registry_uri == settings.mlflow_ui_url == "https://mlflow"
    assert settings.source_of("tracking_uri") == "connection 'evidence_store'"


def test_test_connection_answers_for_a_real_store(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": home.tracking_uri}))
    assert EvidenceHook().test_connection() == (True, "the MLflow store answered")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": "127.0.0.1", "port": 9}))
    ok, message = EvidenceHook().test_connection()
    assert not ok and "Connection refused" in message


@pytest.mark.airflow
def test_evidence_lands_in_the_store_the_connection_names(
    airflow_db, home: Settings, tmp_path: Path, write_dag, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.models import Connection as ConnectionModel
    from airflow.utils.session import create_session

    other = tmp_path / "connection-store"
    other.mkdir()
    shutil.copy(home.home / "mlflow.db", other / "mlflow.db")  # an initialised, empty MLflow store
    other_uri = f"sqlite:///{other / 'mlflow.db'}"
    conn_id = f"evidence_{uuid.uuid4().hex[:8]}"
    extra = {"tracking_uri": other_uri, "artifact_root": str(other / "artifacts")}
    with create_session() as session:
        session.add(ConnectionModel(conn_id=conn_id, conn_type="mlflow", extra=json.dumps(extra)))

    dag_id = unique_dag_id("connection_store")
    data = write_csv(tmp_path, [1, 2, 3])
    dag = write_dag(
        dag_id,
        f"""
ProvenanceSignOperator(task_id="sign", artifacts=[{data!r}], mlflow_conn_id={conn_id!r})
ProvenanceSignOperator(task_id="sign_unknown_store", artifacts=[{data!r}], mlflow_conn_id="no_such_store",
                       retries=2, retry_delay=timedelta(seconds=0))
""",
    )
    try:
        _, tis = run_dag(dag)
    finally:
        with create_session() as session:
            session.query(ConnectionModel).filter(ConnectionModel.conn_id == conn_id).delete()
    assert str(tis["sign"].state) == "success"
    # An explicitly named connection that does not exist fails the task at once, without retry.
    assert str(tis["sign_unknown_store"].state) == "failed" and tis["sign_unknown_store"].try_number == 1
    logged = "".join(capfd.readouterr())
    assert "the evidence store is not configured, so no gate runs: MLflow connection 'no_such_store' is not defined" in logged

    store = MLflowEvidenceStore(other_uri, other / "artifacts")
    run_id = pipeline_run_id(store, dag_id)
    assert store.run_tags(run_id)["mlsecops.gate.sign.verdict"] == "passed"
    assert MLflowEvidenceStore(home.tracking_uri).client.get_experiment_by_name(dag_id) is None  # not in the env's store
    report = verify_run(run_id, settings=home, store=store)
    assert report.ok, [c.to_dict() for c in report.failures]
