"""``mlsecops airflow`` (``make airflow``) as its user runs it: a real local Airflow, every component
its own process, the example DAG triggered with its default parameters (in the UI when a browser is
available), the run waiting at the approval with the triggering user left out of the reviewers,
and Ctrl-C stopping all of it.

The browser part needs Chromium (``MLSECOPS_TEST_CHROMIUM``, which ``.ci/run`` sets) and the
``playwright`` package; without them it is skipped and the summary says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_mlsecops.deployment.local import LocalAirflow
from tests.conftest import _SKIPPED_SUITES, REPO_ROOT
from tests.mlsecops_airflow import start_mlsecops_airflow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAG_ID = "secure_training_pipeline"


@dataclass
class Running:
    process: subprocess.Popen[str]
    airflow: LocalAirflow  # the same home and port, not started here: passwords and REST calls
    output: list[str]

    @property
    def url(self) -> str:
        return self.airflow.api_url

    @property
    def passwords(self) -> dict[str, str]:
        return self.airflow.passwords

    def call(self, user: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
        return self.airflow.call(user, method, path, body)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("airflow-command") / "home"
    process, output, port = start_mlsecops_airflow(home)
    users = dict.fromkeys(("admin", "alice", "bob", "carol"), "user")
    yield Running(
        process, LocalAirflow(home=home / "airflow-local", dags_folder=REPO_ROOT / "dags", users=users, port=port), output
    )
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def _latest_run(running: Running) -> dict:
    status, body = running.call("admin", "GET", f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=1")
    assert status == 200, body
    return body["dag_runs"][0] if body["dag_runs"] else {}


def test_it_prints_the_url_the_logins_and_the_policy(running: Running) -> None:
    text = "".join(running.output)
    assert running.url in text
    for user in ("admin", "alice", "bob", "carol"):
        assert f"    {user} " in text and running.passwords[user] in text
    assert "mlsecops-policy.yaml (enforced at parse time and at promotion)" in text
    status, errors = running.call("admin", "GET", "/api/v2/importErrors")
    assert status == 200 and errors["total_entries"] == 0, errors


def test_trigger_form_in_the_ui_works_with_the_default_params(running: Running) -> None:
    chromium = os.environ.get("MLSECOPS_TEST_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if not chromium:
        _SKIPPED_SUITES["browser"] = "MLSECOPS_TEST_CHROMIUM is not set or playwright is missing (.ci/run installs Chromium)"
        pytest.skip("browser suite: no Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{running.url}/")
            page.fill("input[name=username]", "carol")
            page.fill("input[name=password]", running.passwords["carol"])
            page.keyboard.press("Enter")
            page.wait_for_url(f"{running.url}/")
            page.goto(f"{running.url}/dags/{DAG_ID}")
            page.get_by_role("button", name="Trigger").first.click()
            submit = page.get_by_role("dialog").get_by_role("button", name="Trigger")
            assert submit.is_enabled()  # every param is valid as given
            submit.click()
            deadline = time.monotonic() + 30
            while not _latest_run(running) and time.monotonic() < deadline:
                time.sleep(1)
        finally:
            browser.close()
    run = _latest_run(running)
    assert run["triggering_user_name"] == "carol"
    assert run["conf"] == {"rows": 5000, "seed": 7, "osv_db": None, "author": None}


def test_a_run_goes_to_the_approval_without_its_author_among_the_reviewers(running: Running) -> None:
    run = _latest_run(running)
    if not run:  # no browser: trigger through the REST API with the same defaults
        status, run = running.call("carol", "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})
        assert status == 200, run
    run_id = urllib.parse.quote(run["dag_run_id"], safe="")
    deadline = time.monotonic() + 600
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        _, body = running.call("admin", "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        states = {t["task_id"]: str(t["state"]) for t in body["task_instances"]}
        if states.get("approve_model") == "awaiting_input" or "failed" in states.values():
            break
        time.sleep(3)
    assert states.get("approve_model") == "awaiting_input", states
    status, detail = running.call(
        "alice", "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_model/-1/hitlDetails"
    )
    assert status == 200, detail
    assert sorted(u["id"] for u in detail["assigned_users"]) == ["alice", "bob"]
    assert "carol (triggered this DAG run)" in detail["body"]
    approve = {"chosen_options": ["Approve"], "params_input": {}}
    status, _ = running.call(
        "carol", "PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_model/-1/hitlDetails", approve
    )
    assert status == 403


def test_ctrl_c_stops_all_of_it(running: Running) -> None:
    import psutil

    tree = psutil.Process(running.process.pid).children(recursive=True)
    assert len(tree) >= 5  # api-server, scheduler, dag-processor, triggerer, MLflow UI
    os.killpg(running.process.pid, signal.SIGINT)
    assert running.process.wait(timeout=90) == 0
    time.sleep(1)
    left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [p.cmdline() for p in left]
