"""The REST client's transport and parsing, without Airflow: real loopback sockets and HTTP servers.

What Airflow answers (401, 403, 404, 409, 400) is tested against a real Airflow API server in
``tests/cli/test_approval_cli.py``; here: what a client must do whatever the server is — refuse odd
URLs, encode run ids, fail closed on a dead, silent or foreign server, keep the token off redirects.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_mlsecops.exceptions import ConfigurationError, StoreUnavailable
from airflow_mlsecops.lifecycle.airflow_api import AirflowAPI, HITLRequest, check_api_url, sends_in_clear

RUN_ID = "manual__2026-01-01T00:00:00+00:00"


class _Server:
    """A loopback HTTP server answering each path from ``routes`` and recording what it received."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.received: list[tuple[str, str, str | None]] = []  # method, path, Authorization
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.received.append((self.command, self.path, self.headers.get("Authorization")))
                status, headers, body = server.routes.get(self.path.split("?")[0], (404, {}, b'{"detail": "nope"}'))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _hitl(task_id: str, *, state: str = "awaiting_input", answered: bool = False) -> dict:
    return {
        "options": ["Approve", "Reject"],
        "subject": f"Approve {task_id}?",
        "body": "evidence",
        "assigned_users": [{"id": "alice", "name": "Alice"}],
        "response_received": answered,
        "responded_by_user": {"id": "alice", "name": "Alice"} if answered else None,
        "chosen_options": ["Approve"] if answered else None,
        "task_instance": {"dag_id": "d", "dag_run_id": RUN_ID, "task_id": task_id, "map_index": -1, "state": state},
    }


@pytest.mark.parametrize("url", ["", "localhost:8080", "ftp://host/", "file:///etc/passwd", "http://"])
def test_odd_api_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="must look like http"):
        check_api_url(url)


def test_api_url_keeps_its_base_path() -> None:
    assert check_api_url(" https://airflow.example/base/ ") == "https://airflow.example/base"


def test_plain_http_is_flagged_unless_it_stays_on_this_machine() -> None:
    assert sends_in_clear("http://airflow.example:8080")
    assert not sends_in_clear("https://airflow.example")
    assert not any(sends_in_clear(u) for u in ("http://127.0.0.1:8080", "http://localhost:8080/base", "http://[::1]:8080"))


def test_credentials_are_checked_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="empty Airflow API token"):
        AirflowAPI("http://127.0.0.1:1", "")
    with pytest.raises(ConfigurationError, match="needs a user name and a password"):
        AirflowAPI.login("http://127.0.0.1:1", "alice", "")


def test_run_ids_are_encoded_as_one_path_segment(server: _Server) -> None:
    base = f"/api/v2/dags/d/dagRuns/{RUN_ID.replace(':', '%3A').replace('+', '%2B')}"
    server.routes[f"{base}/taskInstances/approve/-1/hitlDetails"] = (200, {}, json.dumps(_hitl("approve")).encode())
    request = AirflowAPI(server.url, "t").request("d", RUN_ID, "approve")
    assert (request.run_id, request.task_id, request.assigned_users, request.waiting) == (RUN_ID, "approve", ("alice",), True)
    assert server.received == [("GET", f"{base}/taskInstances/approve/-1/hitlDetails", "Bearer t")]


def test_pending_keeps_only_unanswered_requests_whose_task_waits(server: _Server) -> None:
    """A request whose task timed out (failed) or was answered is not waiting, whatever the filter says."""
    details = [_hitl("waits"), _hitl("timed_out", state="failed"), _hitl("answered", state="scheduled", answered=True)]
    body = json.dumps({"hitl_details": details, "total_entries": 3}).encode()
    server.routes["/api/v2/dags/~/dagRuns/~/hitlDetails"] = (200, {}, body)
    assert [r.task_id for r in AirflowAPI(server.url, "t").pending()] == ["waits"]
    assert "response_received=false" in server.received[0][1]
    answered = HITLRequest.from_api(details[2])
    assert (answered.responded_by, answered.chosen_options, answered.waiting) == ("Alice", ("Approve",), False)


def test_nobody_listening_is_a_clear_store_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(StoreUnavailable, match=f"no Airflow API server at {url} .*Connection refused"):
        AirflowAPI(url, "t").pending()


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=f"no Airflow API server at {url}"):
            AirflowAPI(url, "t", timeout=0.5).pending()
        assert time.monotonic() - started < 5


def test_a_server_that_is_not_airflow_is_refused(server: _Server) -> None:
    server.routes["/api/v2/dags/~/dagRuns/~/hitlDetails"] = (200, {"Content-Type": "text/html"}, b"<html>UI</html>")
    with pytest.raises(StoreUnavailable, match="did not answer JSON: is this Airflow's API server"):
        AirflowAPI(server.url, "t").pending()
    server.routes["/auth/token"] = (201, {}, b"{}")
    with pytest.raises(StoreUnavailable, match="without an access_token"):
        AirflowAPI.login(server.url, "alice", "pw")


def test_server_errors_fail_closed(server: _Server) -> None:
    server.routes["/api/v2/dags/d/dagRuns/r/hitlDetails"] = (500, {}, b'{"detail": "database is locked"}')
    with pytest.raises(StoreUnavailable, match=r"HTTP 500: database is locked"):
        AirflowAPI(server.url, "t").pending("d", "r")


def test_the_token_does_not_follow_a_redirect(server: _Server) -> None:
    """A redirect (to another host, or anywhere) must not carry the reviewer's bearer token along."""
    other = _Server()
    try:
        path = "/api/v2/dags/d/dagRuns/r/hitlDetails"
        server.routes[path] = (307, {"Location": f"{other.url}{path}"}, b"")
        other.routes[path] = (200, {}, json.dumps({"hitl_details": [], "total_entries": 0}).encode())
        assert AirflowAPI(server.url, "secret-token").pending("d", "r") == []
        assert server.received[0][2] == "Bearer secret-token"
        assert other.received and other.received[0][2] is None
    finally:
        other.httpd.shutdown()
        other.httpd.server_close()
