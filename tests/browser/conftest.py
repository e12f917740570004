"""A real Airflow (``mlsecops airflow``: api-server, scheduler, dag-processor, triggerer and an MLflow
UI, each its own process) driven by a real browser: Playwright for Python with Debian's Chromium.

Chromium comes from ``MLSECOPS_TEST_CHROMIUM`` (``.ci/run`` installs it and sets it); Playwright's
own browser download is never used. Without Chromium or the ``playwright`` package the suite is
skipped and the summary at the end says so. Every test here is ``slow`` (``make test-fast`` leaves
the suite out).

``MLSECOPS_SAVE_SCREENSHOTS=1`` copies the screenshots the tests take into ``docs/images/`` (the
README shows them); they are always written to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.deployment.local import LocalAirflow
from tests.conftest import _SKIPPED_SUITES, REPO_ROOT
from tests.mlsecops_airflow import start_mlsecops_airflow

DAG_ID = "secure_training_pipeline"
APPROVAL_TASK = "approve_model"
#: The logins ``mlsecops airflow`` creates: the reviewers alice and bob, the ML engineer carol.
USERS = dict.fromkeys(("admin", "alice", "bob", "carol"), "user")
#: Small enough for the README, large enough to read: a laptop browser window.
VIEWPORT = {"width": 1280, "height": 900}
#: Chromium must stay offline and quiet: no updates, sync, field trials or GPU in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
]
SCREENSHOTS = REPO_ROOT / "docs" / "images"


@dataclass
class Deployment:
    """``mlsecops airflow`` as its user runs it, and a way to call its REST API as any of its users."""

    process: subprocess.Popen[str]
    airflow: LocalAirflow  # the same home and port (not started here): passwords and REST calls
    output: list[str]

    @property
    def url(self) -> str:
        return self.airflow.api_url

    @property
    def passwords(self) -> dict[str, str]:
        return self.airflow.passwords

    def call(self, user: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
        return self.airflow.call(user, method, path, body)

    def task_states(self, run_id: str) -> dict[str, str]:
        quoted = urllib.parse.quote(run_id, safe="")
        status, body = self.call("admin", "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances?limit=100")
        assert status == 200, body
        return {t["task_id"]: str(t["state"]) for t in body["task_instances"]}

    def run_state(self, run_id: str) -> str:
        quoted = urllib.parse.quote(run_id, safe="")
        status, body = self.call("admin", "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}")
        assert status == 200, body
        return str(body["state"])

    def log_tail(self, component: str, lines: int = 40) -> str:
        return self.airflow.log_tail(component, lines)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable, or the whole suite is skipped (and the summary says why)."""
    path = os.environ.get("MLSECOPS_TEST_CHROMIUM")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if not path or not Path(path).exists():
        _SKIPPED_SUITES["browser"] = "MLSECOPS_TEST_CHROMIUM is not set or playwright is missing (.ci/run installs Chromium)"
        pytest.skip("browser suite: no Chromium (MLSECOPS_TEST_CHROMIUM) or no playwright")
    return path


@pytest.fixture(scope="module")
def deployment(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """``mlsecops airflow`` with the example DAGs, its users and an MLflow UI; stopped (its whole
    process group) afterwards."""
    home = tmp_path_factory.mktemp("browser") / "home"
    process, output, port = start_mlsecops_airflow(home)
    airflow = LocalAirflow(home=home / "airflow-local", dags_folder=REPO_ROOT / "dags", users=USERS, port=port)
    try:
        yield Deployment(process, airflow, output)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # stops every component and the MLflow UI
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def login(browser: Any, deployment: Deployment, user: str) -> Any:
    """A new browser page logged in as ``user`` through Airflow's own login form."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{deployment.url}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", deployment.passwords[user])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{deployment.url}/")
    return page


def save_screenshot(page: Any, tmp_path: Path, name: str, *, publish: bool = True) -> Path:
    """A PNG of what the page shows in the viewport (``tmp_path``), copied into ``docs/images``
    when ``MLSECOPS_SAVE_SCREENSHOTS=1`` and ``publish`` (the README shows it)."""
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, "the screenshot is blank"
    if publish and os.environ.get("MLSECOPS_SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / name)
    return path
