"""``mlsecops approve | reject | approvals`` against a real Airflow API server.

Once per module: ``airflow db migrate`` on a fresh SQLite home, ``airflow api-server`` with the simple
auth manager (admin, and alice and bob with the USER role) on a free loopback port, and
``airflow dags test`` of a DAG whose approval tasks are assigned to alice only. ``dags test`` parks
them in ``awaiting_input`` and resumes each one when the API server records an answer. Each test
answers its own task, so the tests do not depend on their order.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.lifecycle.airflow_api import AirflowAPI

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "approvals_through_the_api"
_TASKS = ("listed", "refused_for_bob", "answered_twice", "answered_with_token", "answered_in_database", "invalid_option")
_DAG = f"""
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG

ALICE = [{{"id": "alice", "name": "alice"}}]
TABLE = "| gate | verdict |\\n| {{}} | passed |"


class WithRequest(ApprovalOperator):
    def execute(self, context):
        request = {{"model_uri": "models:/m/1", "excluded": {{"bob": "authored the model"}}}}
        context["ti"].xcom_push(key="mlsecops_approval_request", value=request)
        return super().execute(context)


with DAG(dag_id={DAG_ID!r}, schedule=None, start_date=datetime(2026, 1, 1)):
    for name in {_TASKS!r}:
        ApprovalOperator(task_id=name, subject=f"Approve {{name}}?", body=TABLE.format(name), assigned_users=ALICE)
    ApprovalOperator(task_id="rejected_with_wait", subject="Reject me", assigned_users=ALICE) >> EmptyOperator(task_id="after")
    # Like ModelApprovalGateOperator: the request (XCom) says who may not approve; bob is still assigned.
    WithRequest(task_id="bob_wrote_the_model", subject="Approve?", assigned_users=ALICE + [{{"id": "bob", "name": "bob"}}])
"""
_WAITING = len(_TASKS) + 2


@dataclass(frozen=True)
class Airflow:
    url: str
    passwords: dict[str, str]
    run_id: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(processes: list[subprocess.Popen[bytes]], grace: float = 3) -> None:
    """Stop processes started in their own sessions, with everything they started: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            # SIGKILL goes to the group even when its leader has exited: a child may outlive it.
            if process.poll() is None or sig == signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
            time.sleep(0.1)


def _until(condition, what: str, timeout: float, process: subprocess.Popen[bytes], log: Path):
    """Poll ``condition`` until it is truthy; fail at once, with the log's tail, if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what} (exit {process.poll()})\n--- {log}\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("airflow-api")
    (home / "dags").mkdir()
    (home / "dags" / f"{DAG_ID}.py").write_text(_DAG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLSECOPS_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,alice:user,bob:user",
        AIRFLOW__API_AUTH__JWT_SECRET="approval-cli-tests",
    )
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_log, run_log = home / "api-server.log", home / "dags-test.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command, log in (
            (["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], server_log),
            (["dags", "test", DAG_ID], run_log),
        ):
            with open(log, "wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "airflow", *command],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as reply:
                    return reply.status == 200
            except OSError:
                return False

        _until(healthy, f"the API server at {url}", 180, processes[0], server_log)
        passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        admin = AirflowAPI.login(url, "admin", passwords["admin"])
        pending = _until(
            lambda: (found := admin.pending(DAG_ID)) and len(found) == _WAITING and found,
            f"{_WAITING} approvals waiting in {DAG_ID}",
            180,
            processes[1],
            run_log,
        )
        yield Airflow(url=url, passwords=passwords, run_id=pending[0].run_id, env=env)
    finally:
        _stop(processes)


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str, **env: str) -> tuple[int, str, str]:
    """Run ``mlsecops ARGV`` in this process with only ``env`` of the AIRFLOW_API_* variables set."""
    for name in ("AIRFLOW_API_URL", "AIRFLOW_API_TOKEN", "AIRFLOW_API_USERNAME", "AIRFLOW_API_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _answer(airflow: Airflow, command: str, task: str, *extra: str) -> list[str]:
    return [command, "--dag-id", DAG_ID, "--run-id", airflow.run_id, "--task-id", task, *extra]


def test_lists_the_waiting_requests_with_their_body_and_reviewers(airflow: Airflow, monkeypatch, capsys) -> None:
    code, out, _ = _cli(
        monkeypatch,
        capsys,
        "approvals",
        "--api-url",
        airflow.url,
        "--username",
        "bob",
        "--json",
        AIRFLOW_API_PASSWORD=airflow.passwords["bob"],
    )
    assert code == 0
    listed = {r["task_id"]: r for r in json.loads(out)}
    assert {"listed", "refused_for_bob"} <= set(listed)
    assert listed["listed"]["assigned_users"] == ["alice"]
    assert listed["listed"]["body"] == "| gate | verdict |\n| listed | passed |"
    assert listed["listed"]["run_id"] == airflow.run_id and listed["listed"]["task_state"] == "awaiting_input"

    code, out, _ = _cli(monkeypatch, capsys, "approvals", "--dag-id", DAG_ID, AIRFLOW_API_URL=airflow.url,
                        AIRFLOW_API_USERNAME="alice", AIRFLOW_API_PASSWORD=airflow.passwords["alice"])  # fmt: skip
    assert code == 0
    assert f"{DAG_ID} {airflow.run_id} listed: Approve listed?" in out
    assert "  assigned users: alice" in out and "  | listed | passed |" in out


def test_alice_approves_and_airflow_records_her_as_the_responder(airflow: Airflow, monkeypatch, capsys) -> None:
    code, out, err = _cli(
        monkeypatch, capsys, *_answer(airflow, "approve", "answered_twice", "--username", "alice", "--json"),
        AIRFLOW_API_URL=airflow.url, AIRFLOW_API_PASSWORD=airflow.passwords["alice"],
    )  # fmt: skip
    assert code == 0, err
    response = json.loads(out)["response"]
    assert (response["responded_by"], response["responded_by_id"], response["choice"]) == ("alice", "alice", "Approve")
    assert response["task_id"] == "answered_twice" and response["responded_at"]
    assert "embedded demo" not in err

    # A second answer: Airflow says 409; the message names who answered first. Exit 1: refused.
    code, _, err = _cli(
        monkeypatch, capsys, *_answer(airflow, "reject", "answered_twice", "--username", "alice"),
        AIRFLOW_API_URL=airflow.url, AIRFLOW_API_PASSWORD=airflow.passwords["alice"],
    )  # fmt: skip
    assert code == 1
    assert "answered_twice" in err and "was already answered by alice (Approve)" in err


def test_a_user_who_is_not_assigned_is_refused_by_airflow(airflow: Airflow, monkeypatch, capsys) -> None:
    code, _, err = _cli(
        monkeypatch, capsys, *_answer(airflow, "approve", "refused_for_bob", "--username", "bob"),
        AIRFLOW_API_URL=airflow.url, AIRFLOW_API_PASSWORD=airflow.passwords["bob"],
    )  # fmt: skip
    assert code == 1
    assert "bob is not one of the reviewers allowed to answer refused_for_bob" in err
    assert "(assigned users: alice)" in err
    admin = AirflowAPI.login(airflow.url, "admin", airflow.passwords["admin"])
    assert not admin.request(DAG_ID, airflow.run_id, "refused_for_bob").response_received


def test_a_token_from_the_environment_identifies_the_responder(airflow: Airflow, monkeypatch, capsys) -> None:
    token = AirflowAPI.login(airflow.url, "alice", airflow.passwords["alice"]).token
    code, out, err = _cli(
        monkeypatch, capsys, *_answer(airflow, "approve", "answered_with_token"),
        AIRFLOW_API_URL=airflow.url, AIRFLOW_API_TOKEN=token,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith(f"alice chose Approve for answered_with_token in {DAG_ID} {airflow.run_id}")


def test_reject_and_wait_follows_the_run_through_the_api(airflow: Airflow, monkeypatch, capsys) -> None:
    code, out, err = _cli(
        monkeypatch, capsys, *_answer(airflow, "reject", "rejected_with_wait", "--username", "alice", "--wait", "120", "--json"),
        AIRFLOW_API_URL=airflow.url, AIRFLOW_API_PASSWORD=airflow.passwords["alice"],
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["response"]["choice"] == "Reject"
    # dags test resumed the task: ApprovalOperator succeeds on Reject and skips its downstream.
    assert result["run"]["tasks"]["rejected_with_wait"] == "success"
    assert result["run"]["tasks"]["after"] == "skipped"
    assert result["run"]["state"] == "running" and "listed" in result["run"]["waiting_for"]


def test_wrong_password_and_bad_token_are_clear(airflow: Airflow, monkeypatch, capsys) -> None:
    code, _, err = _cli(
        monkeypatch, capsys, "approvals", "--api-url", airflow.url, "--username", "alice", AIRFLOW_API_PASSWORD="wrong"
    )
    assert code == 2
    assert f"Airflow at {airflow.url} did not accept the password of 'alice'" in err

    code, _, err = _cli(monkeypatch, capsys, "approvals", "--api-url", airflow.url, AIRFLOW_API_TOKEN="not-a-token")
    assert code == 2
    assert "refused the credentials (Invalid JWT token)" in err and "AIRFLOW_API_TOKEN" in err


def test_an_invalid_option_and_an_unknown_task_are_configuration_errors(airflow: Airflow) -> None:
    alice = AirflowAPI.login(airflow.url, "alice", airflow.passwords["alice"])
    request = alice.request(DAG_ID, airflow.run_id, "invalid_option")
    with pytest.raises(ConfigurationError, match=r"Invalid options \['Maybe'\]"):
        alice.respond(request, "Maybe")
    with pytest.raises(ConfigurationError, match="cannot find the approval no_such_task: The Task Instance"):
        alice.request(DAG_ID, airflow.run_id, "no_such_task")


def test_as_is_refused_when_an_api_url_is_configured(airflow: Airflow, monkeypatch, capsys) -> None:
    for argv, env in (
        (["--api-url", airflow.url], {}),
        ([], {"AIRFLOW_API_URL": airflow.url}),
    ):
        code, _, err = _cli(
            monkeypatch, capsys, *_answer(airflow, "approve", "listed", "--as", "alice", *argv),
            AIRFLOW_API_PASSWORD=airflow.passwords["alice"], **env,
        )  # fmt: skip
        assert code == 2
        assert "--as is refused when an Airflow API URL is configured" in err
        assert "the responder is the user you log in as" in err
    admin = AirflowAPI.login(airflow.url, "admin", airflow.passwords["admin"])
    assert not admin.request(DAG_ID, airflow.run_id, "listed").response_received


def test_missing_credentials_and_unreachable_server(airflow: Airflow, monkeypatch, capsys) -> None:
    code, _, err = _cli(monkeypatch, capsys, "approvals", "--api-url", airflow.url)
    assert code == 2
    assert f"no credentials for Airflow at {airflow.url}: set AIRFLOW_API_TOKEN, or give --username" in err

    # No password in the environment and no terminal to prompt on.
    code, _, err = _cli(monkeypatch, capsys, "approvals", "--api-url", airflow.url, "--username", "alice")
    assert code == 2
    assert "no password for 'alice': set AIRFLOW_API_PASSWORD or run in a terminal" in err

    closed = f"http://127.0.0.1:{_free_port()}"
    code, _, err = _cli(monkeypatch, capsys, *_answer(airflow, "approve", "listed", "--api-url", closed), AIRFLOW_API_TOKEN="t")
    assert code == 2
    assert f"no Airflow API server at {closed}" in err


def test_without_an_api_url_the_embedded_demo_path_trusts_as_and_says_so(airflow: Airflow) -> None:
    """The embedded demo writes Airflow's database directly (here: the same SQLite the server uses)."""
    command = [
        sys.executable,
        "-m",
        "airflow_mlsecops.cli",
        *_answer(airflow, "approve", "answered_in_database", "--as", "alice"),
    ]
    done = subprocess.run(command, env=airflow.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "writing the embedded demo's Airflow database directly and trusting --as alice" in done.stderr
    assert "not for a deployment" in done.stderr
    assert "alice chose Approve for answered_in_database" in done.stdout
    admin = AirflowAPI.login(airflow.url, "admin", airflow.passwords["admin"])
    assert admin.request(DAG_ID, airflow.run_id, "answered_in_database").responded_by == "alice"

    # Without --as (and without an API URL) there is nobody to answer as.
    done = subprocess.run(command[:-2], env=airflow.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--as USER is only for the embedded demo" in done.stderr


def test_a_user_the_request_bars_is_refused_before_answering(airflow: Airflow, monkeypatch, capsys) -> None:
    """bob is assigned but authored the model: the CLI refuses him without recording an answer."""
    code, out, _ = _cli(
        monkeypatch, capsys, "approvals", "--dag-id", DAG_ID, "--username", "alice",
        AIRFLOW_API_URL=airflow.url, AIRFLOW_API_PASSWORD=airflow.passwords["alice"],
    )  # fmt: skip
    assert code == 0
    assert "bob_wrote_the_model: Approve?\n  assigned users: alice, bob\n  may not approve: bob (authored the model)" in out

    code, _, err = _cli(
        monkeypatch, capsys, *_answer(airflow, "approve", "bob_wrote_the_model", "--username", "bob"),
        AIRFLOW_API_URL=airflow.url, AIRFLOW_API_PASSWORD=airflow.passwords["bob"],
    )  # fmt: skip
    assert code == 1
    assert "bob may not approve models:/m/1: authored the model (separation of duties)" in err
    admin = AirflowAPI.login(airflow.url, "admin", airflow.passwords["admin"])
    assert not admin.request(DAG_ID, airflow.run_id, "bob_wrote_the_model").response_received


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    """Read a pty until ``marker`` appears or it closes; fail after ``timeout`` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {marker!r} after {timeout} s; got {seen[-2000:]!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_the_password_is_prompted_for_on_the_terminal_and_not_echoed(airflow: Airflow) -> None:
    argv = [sys.executable, "-m", "airflow_mlsecops.cli", "approvals", "--dag-id", DAG_ID, "--username", "alice", "--json"]
    env = {**airflow.env, "AIRFLOW_API_URL": airflow.url}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, as in a reviewer's shell
        try:
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)  # never go on running pytest in the child
    try:
        prompt = _read_until(fd, b"Airflow password for alice at " + airflow.url.encode() + b": ", 60)
        assert b"Airflow password for alice" in prompt
        os.write(fd, airflow.passwords["alice"].encode() + b"\n")
        rest = _read_until(fd, b"\x00never", 60)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, rest
    assert airflow.passwords["alice"].encode() not in rest
    assert b'"task_id": "listed"' in rest
