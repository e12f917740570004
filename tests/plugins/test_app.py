"""The MLSecOps page and API, served by a real Airflow API server with the plugin (SQLite), never mocked.

One module-scoped server: ``airflow api-server`` alone (no scheduler is needed to serve pages), in
multi-team mode so the simple auth manager can refuse one DAG and allow another. Its DAG
``mlsecops_plugin_ml`` lives in a bundle owned by the team ``mlteam``. Users:

* ``admin`` (admin): every DAG;
* ``alice`` (viewer, team ``mlteam``): reads the ML team's DAG;
* ``eve`` (viewer, team ``ops``): reads DAGs, but not the ML team's (403 on its evidence);
* ``nobody`` (no role): authenticated, allowed nothing.

Real evidence (two signed gates: a dataset attestation and a model in MLflow) is recorded for a run
of that DAG into the MLflow store and ledger the server reads (``MLSECOPS_HOME``).
"""

from __future__ import annotations

import json
import shutil
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.deployment.local import LocalAirflow
from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_RUN_ID
from tests.conftest import _template_mlflow_db

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DAG_ID = "mlsecops_plugin_ml"
RUN_ID = "manual__2026-12-04T04:00:00+00:00"
USERS = {"admin": "admin", "alice": "viewer:mlteam", "eve": "viewer:ops", "nobody": ""}
PREFIX = "/mlsecops"
MODEL = "credit-risk"


@dataclass
class Server:
    airflow: LocalAirflow
    settings: Settings
    mlflow_run_id: str
    artifact_dir: Path

    def get(self, path: str, *, user: str | None = None, cookie: bool = False) -> tuple[int, dict[str, str], bytes]:
        """GET ``path``: with ``user``'s token as a bearer header, or as the UI's ``_token`` cookie."""
        headers: dict[str, str] = {}
        if user is not None:
            token = self.airflow.token(user)
            headers["Cookie" if cookie else "Authorization"] = f"_token={token}" if cookie else f"Bearer {token}"
        request = urllib.request.Request(f"{self.airflow.api_url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

    def json(self, path: str, user: str | None = None) -> tuple[int, Any]:
        code, _, body = self.get(path, user=user)
        return code, json.loads(body or b"null")


def _evidence_path(dag_id: str = DAG_ID, run_id: str = RUN_ID) -> str:
    return f"{PREFIX}/api/v1/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/evidence"


def _page_path(dag_id: str = DAG_ID, run_id: str = RUN_ID) -> str:
    return f"{PREFIX}/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def _record_evidence(settings: Settings, root: Path) -> str:
    """Two signed gates of one DAG run, recorded as the operators record them; the MLflow run id."""
    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.provenance import attest_artifacts
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

    data = root / "train.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    recorder = EvidenceRecorder.from_settings(settings)
    outcome = attest_artifacts([str(data)], context=PipelineContext(DAG_ID, RUN_ID, "sign_data"))
    first = recorder.record(outcome.result, experiment_name=DAG_ID, files=outcome.files)
    model_dir = root / "model"
    model_dir.mkdir()
    (model_dir / "model.skops").write_bytes(b"weights" * 100)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    recorder.store.client.log_artifacts(first.mlflow_run_id, str(model_dir), artifact_path="model")
    uri = f"runs:/{first.mlflow_run_id}/model"
    model_outcome = attest_artifacts(
        {uri: str(model_dir)}, gate="model-provenance", context=PipelineContext(DAG_ID, RUN_ID, "sign_model")
    )
    recorder.record(model_outcome.result, experiment_name=DAG_ID, files=model_outcome.files)
    # A registered model whose version this DAG run registered (the tags the registration writes).
    client = recorder.store.client
    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, uri, run_id=first.mlflow_run_id, tags={TAG_DAG_ID: DAG_ID, TAG_RUN_ID: RUN_ID})
    client.set_registered_model_alias(MODEL, "champion", version.version)
    return first.mlflow_run_id


@contextmanager
def running_server(root: Path) -> Iterator[Server]:
    """Record the evidence below ``root``, start the API server, yield it, stop it."""
    home = root / "mlsecops"
    home.mkdir()
    shutil.copy(_template_mlflow_db(), home / "mlflow.db")
    settings = Settings.from_env({"MLSECOPS_HOME": str(home)})
    settings.generate_key_pair()
    settings = Settings.from_env({"MLSECOPS_HOME": str(home)})
    mlflow_run_id = _record_evidence(settings, root)

    dags = root / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(
        textwrap.dedent(
            f'''
            """An Airflow DAG of the ML team (the plugin's permission tests)."""
            from airflow.providers.standard.operators.empty import EmptyOperator
            from airflow.sdk import DAG

            with DAG({DAG_ID!r}, schedule=None):
                EmptyOperator(task_id="noop")
            '''
        )
    )
    bundles = [
        {
            "name": "ml-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(dags)},
            "team_name": "mlteam",
        }
    ]
    airflow = LocalAirflow(
        home=root / "airflow",
        dags_folder=dags,
        users=USERS,
        env={
            "MLSECOPS_HOME": str(home),
            "AIRFLOW__CORE__MULTI_TEAM": "True",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        },
    )
    try:
        airflow.home.mkdir(parents=True, exist_ok=True)
        airflow._write_passwords()
        airflow.migrate()
        for team in ("mlteam", "ops"):
            done = airflow.airflow("teams", "create", team)
            assert done.returncode == 0, done.stderr[-2000:]
        done = airflow.airflow("dags", "reserialize")
        assert done.returncode == 0, done.stderr[-2000:]
        airflow.start_process("api-server", airflow._command("api-server"))
        airflow.wait_until_ready(timeout=240)
        artifact_dir = (
            Path(settings_store_artifact_uri(settings, mlflow_run_id).removeprefix("file://")) / "mlsecops" / "evidence"
        )
        yield Server(airflow, settings, mlflow_run_id, artifact_dir)
    finally:
        airflow.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("plugin")) as running:
        yield running


def settings_store_artifact_uri(settings: Settings, mlflow_run_id: str) -> str:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    return str(MLflowEvidenceStore.from_settings(settings).client.get_run(mlflow_run_id).info.artifact_uri)


# ------------------------------------------------------------------------------------------ auth
@pytest.mark.parametrize(
    "path",
    [
        _evidence_path(),
        _page_path(),
        f"{PREFIX}/",
        f"{PREFIX}/api/v1/dagRuns",
        f"{PREFIX}/api/v1/models/credit-risk",
        f"{PREFIX}/models/credit-risk",
    ],
)
def test_every_route_refuses_a_request_without_a_token(server: Server, path: str) -> None:
    code, _, body = server.get(path)
    assert code == 401, body
    assert b"verified" not in body


@pytest.mark.parametrize("path", [f"{PREFIX}/docs", f"{PREFIX}/openapi.json", f"{PREFIX}/redoc"])
def test_the_app_serves_no_open_schema_or_docs(server: Server, path: str) -> None:
    code, _, _ = server.get(path)
    assert code == 404


def test_a_forged_token_is_refused(server: Server) -> None:
    request = urllib.request.Request(
        f"{server.airflow.api_url}{_evidence_path()}", headers={"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.e30.x"}
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=60)
    assert error.value.code in (401, 403)
    assert b"gates" not in error.value.read()


@pytest.mark.parametrize("path", [_evidence_path(), _page_path()])
def test_a_user_of_another_team_gets_403_on_the_dag(server: Server, path: str) -> None:
    code, _, body = server.get(path, user="eve")
    assert code == 403, body
    assert b"sign_data" not in body


@pytest.mark.parametrize("path", [_evidence_path(), _page_path(), f"{PREFIX}/api/v1/models/credit-risk"])
def test_a_user_without_a_role_gets_403(server: Server, path: str) -> None:
    code, _, body = server.get(path, user="nobody")
    assert code == 403, body


def test_the_index_lists_only_runs_of_dags_the_user_may_read(server: Server) -> None:
    code, body = server.json(f"{PREFIX}/api/v1/dagRuns", user="alice")
    assert code == 200, body
    assert {"dag_id": DAG_ID, "run_id": RUN_ID, "mlflow_run_id": server.mlflow_run_id} in body["dag_runs"]
    code, body = server.json(f"{PREFIX}/api/v1/dagRuns", user="eve")
    assert code == 200, body
    assert body["dag_runs"] == []


def test_the_index_page_opens_with_the_ui_cookie(server: Server) -> None:
    code, headers, body = server.get(f"{PREFIX}/", user="alice", cookie=True)
    assert code == 200, body
    assert headers["content-type"].startswith("text/html")
    assert RUN_ID.encode() in body


def test_the_plugin_registers_its_app_and_views_with_airflow(server: Server) -> None:
    code, body = server.airflow.call("admin", "GET", "/api/v2/plugins")
    assert code == 200, body
    (plugin,) = [p for p in body["plugins"] if p["name"] == "mlsecops"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == [PREFIX]
    views = {v["url_route"]: v for v in plugin["external_views"]}
    assert views["mlsecops"]["destination"] == "nav"
    assert views["mlsecops-evidence"]["destination"] == "dag_run"
    assert views["mlsecops-evidence"]["href"] == f"{PREFIX}/dags/{{DAG_ID}}/dagRuns/{{RUN_ID}}"


def test_a_dag_run_without_evidence_is_404_not_verified(server: Server) -> None:
    code, body = server.json(_evidence_path(run_id="manual__never"), user="admin")
    assert code == 404, body
    assert body["verified"] is False


# ------------------------------------------------------------------------------------------ evidence
def test_the_evidence_of_a_dag_run_verifies(server: Server) -> None:
    code, body = server.json(_evidence_path(), user="alice")
    assert code == 200, body
    assert body["verified"] is True, body["failures"]
    assert body["failures"] == []
    assert body["mlflow_run_id"] == server.mlflow_run_id
    gates = json.dumps(body["gates"])
    assert "sign_data" in gates and "sign_model" in gates


def test_the_dag_run_page_opens_in_a_browser_session(server: Server) -> None:
    """The UI's iframe sends no Authorization header, only the ``_token`` cookie set at login."""
    code, headers, body = server.get(_page_path(), user="alice", cookie=True)
    assert code == 200, body
    assert headers["content-type"].startswith("text/html")
    assert "script-src" not in headers["content-security-policy"]
    assert b"sign_data" in body


def test_one_tampered_evidence_file_is_reported_on_the_next_request(server: Server) -> None:
    """Evidence is re-verified on every request: one changed byte of a gate's result turns the chain
    unverified on the next GET, and the original bytes verify again."""
    path = server.artifact_dir / "sign_data" / "try-1" / "result.json"
    original = path.read_bytes()
    raw = bytearray(original)
    index = raw.index(b'"') + 1
    raw[index] = ord("X") if raw[index] != ord("X") else ord("Y")
    path.write_bytes(bytes(raw))
    try:
        code, body = server.json(_evidence_path(), user="admin")
        assert code == 200, body
        assert body["verified"] is False
        assert any("sign_data" in json.dumps(f) for f in body["failures"]), body["failures"]
        code, _, page = server.get(_page_path(), user="admin")
        assert code == 200 and b"sign_data" in page
    finally:
        path.write_bytes(original)
    code, body = server.json(_evidence_path(), user="admin")
    assert body["verified"] is True, body["failures"]


# ------------------------------------------------------------------------------------------ models
def test_a_model_is_shown_to_a_reader_of_the_dag_that_registered_it(server: Server) -> None:
    code, body = server.json(f"{PREFIX}/api/v1/models/{MODEL}", user="alice")
    assert code == 200, body
    assert body["name"] == MODEL
    assert body["aliases"] == {"champion": "1"}
    assert [(v["version"], v["dag_id"], v["dag_run_id"]) for v in body["versions"]] == [("1", DAG_ID, RUN_ID)]


def test_a_model_is_refused_to_a_user_who_cannot_read_its_dag(server: Server) -> None:
    for path in (f"{PREFIX}/api/v1/models/{MODEL}", f"{PREFIX}/models/{MODEL}"):
        code, _, body = server.get(path, user="eve")
        assert code == 403, body
        assert b"champion" not in body


def test_an_unknown_model_is_404(server: Server) -> None:
    code, body = server.json(f"{PREFIX}/api/v1/models/no-such-model", user="admin")
    assert code == 404, body


def test_the_model_page_opens_in_a_browser_session(server: Server) -> None:
    code, headers, body = server.get(f"{PREFIX}/models/{MODEL}", user="alice", cookie=True)
    assert code == 200, body
    assert headers["content-type"].startswith("text/html")
    assert b"champion" in body
