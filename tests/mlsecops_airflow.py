"""Start ``mlsecops airflow`` (``make airflow``) as its user does, for the suites that drive it: the
command's own tests (tests/cli/test_airflow_command.py) and the browser suite (tests/browser)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_mlsecops.deployment.local import free_port
from tests.conftest import REPO_ROOT


def start_mlsecops_airflow(home: Path, *, timeout: float = 300) -> tuple[subprocess.Popen[str], list[str], int]:
    """``mlsecops airflow`` on free ports with ``MLSECOPS_HOME=home`` (none of the caller's Airflow, MLSecOps
    or MLflow tracking settings), read until it says it is ready: ``(process, output lines, API port)``.
    The test fails (and the process group is killed) when it does not get ready within ``timeout``."""
    port, mlflow_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "MLSECOPS_", "MLFLOW_TRACKING"))}
    env["MLSECOPS_HOME"] = str(home)
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_mlsecops.cli", "airflow", "--port", str(port), "--mlflow-port", str(mlflow_port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Ctrl-C stops all of it." in line:
            break
    if "Airflow is ready" not in "".join(output):
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("mlsecops airflow did not get ready:\n" + "".join(output))
    return process, output, port
