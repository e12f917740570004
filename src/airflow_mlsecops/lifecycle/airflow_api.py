"""Airflow's REST API, as far as approvals need it: log in, list waiting requests, answer one, follow the run.

The responder of an answer sent here is whoever Airflow authenticated (the token's user), never a
name the caller types: Airflow checks the user against the request's ``assigned_users`` (403) and
refuses a second answer (409). This module only talks HTTP (stdlib ``urllib``), imports nothing of
Airflow, and turns every failure into one of our exceptions with a message a reviewer can act on::

    api = AirflowAPI.login("http://127.0.0.1:8080", "alice", os.environ["AIRFLOW_API_PASSWORD"])
    request = api.pending("secure_training_pipeline")[0]
    api.respond(request, "Approve")

Endpoints used (Airflow 3.3): ``POST /auth/token``; ``GET /api/v2/dags/{dag}/dagRuns/{run}/hitlDetails``
(``~`` for any DAG or run); ``GET``/``PATCH .../taskInstances/{task}/{map_index}/hitlDetails``;
``GET .../taskInstances/{task}/xcomEntries/{key}``; ``GET /api/v2/dags/{dag}/dagRuns/{run}`` and
``.../taskInstances``.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlsecops.exceptions import ApprovalRefused, ConfigurationError, MLSecOpsError, StoreUnavailable

#: Seconds one HTTP request may take before the server counts as unreachable.
DEFAULT_TIMEOUT = 30.0
#: Task states in which an answered request is still being processed (the operator has not run again yet).
_MOVING_STATES = frozenset({"", "none", "scheduled", "queued", "running", "restarting", "up_for_retry", "up_for_reschedule"})
_PARKED_STATES = frozenset({"awaiting_input", "deferred"})
_FINISHED_RUN_STATES = frozenset({"success", "failed"})
_PAGE = 100
_NOT_A_RESPONDENT = re.compile(r"User=(?P<name>.*?) \(id=(?P<id>.*?)\) is not a respondent")
_BAD_TOKEN_DETAILS = ("Invalid JWT token", "Token Expired", "Not authenticated")


@dataclass(frozen=True)
class HITLRequest:
    """One human-in-the-loop request as Airflow's REST API shows it (``HITLDetail``)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    body: str | None
    options: tuple[str, ...]
    assigned_users: tuple[str, ...]
    task_state: str
    response_received: bool
    responded_by: str | None = None
    chosen_options: tuple[str, ...] = ()
    request: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def waiting(self) -> bool:
        """True while nobody has answered and the task is parked waiting for an answer."""
        return not self.response_received and self.task_state in _PARKED_STATES

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> HITLRequest:
        ti = data.get("task_instance") or {}
        responder = data.get("responded_by_user") or {}
        return cls(
            dag_id=str(ti.get("dag_id", "")),
            run_id=str(ti.get("dag_run_id", "")),
            task_id=str(ti.get("task_id", "")),
            map_index=int(ti.get("map_index", -1)),
            subject=str(data.get("subject", "")),
            body=data.get("body"),
            options=tuple(data.get("options") or ()),
            assigned_users=tuple(str(u.get("id", "")) for u in data.get("assigned_users") or ()),
            task_state=str(ti.get("state") or ""),
            response_received=bool(data.get("response_received")),
            responded_by=responder.get("name") or responder.get("id"),
            chosen_options=tuple(data.get("chosen_options") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "subject": self.subject,
            "body": self.body,
            "options": list(self.options),
            "assigned_users": list(self.assigned_users),
            "task_state": self.task_state,
            "response_received": self.response_received,
            "responded_by": self.responded_by,
            "chosen_options": list(self.chosen_options),
            "request": dict(self.request) if self.request is not None else None,
        }


@dataclass(frozen=True)
class HITLResponse:
    """What Airflow recorded for an answer: the authenticated responder, not a name the caller chose."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    choice: str
    responded_by: str
    responded_by_id: str
    responded_at: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RunProgress:
    """A DAG run's state, its task states, and the tasks waiting for an answer."""

    state: str
    tasks: Mapping[str, str]
    waiting_for: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "tasks": dict(self.tasks), "waiting_for": list(self.waiting_for)}


def _segment(value: str) -> str:
    """One path segment: run ids hold ``:`` and ``+`` (``manual__2026-01-01T00:00:00+00:00``)."""
    return urllib.parse.quote(value, safe="")


def _detail(raw: bytes) -> str:
    """Airflow's error text: ``{"detail": "..."}`` (a string or a list of validation errors)."""
    try:
        detail = json.loads(raw).get("detail", "")
    except (ValueError, AttributeError):
        return raw.decode("utf-8", "replace").strip()[:300]
    if isinstance(detail, list):
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail)


def check_api_url(url: str) -> str:
    """Return ``url`` without a trailing ``/``; refuse anything but ``http(s)://host[...]``."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigurationError(f"the Airflow API URL must look like http(s)://HOST[:PORT][/PATH], not {url!r}")
    return url.strip().rstrip("/")


def sends_in_clear(url: str) -> bool:
    """True for plain ``http://`` to another machine: a password would cross the network unencrypted."""
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme == "http" and (parsed.hostname or "") not in ("localhost", "127.0.0.1", "::1")


class AirflowAPI:
    """A client of Airflow's REST API authenticated by one bearer token.

    :param base_url: where Airflow's API server answers (``http://HOST:PORT``, plus any base path).
    :param token: a JWT from ``POST /auth/token`` (see :meth:`login`) or ``AIRFLOW_API_TOKEN``.
    :param timeout: seconds each request may take.
    :param username: who logged in, when known (:meth:`login`); Airflow, not this, decides who answers.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT, username: str | None = None) -> None:
        if not token:
            raise ConfigurationError("an empty Airflow API token")
        self.base_url = check_api_url(base_url)
        self.timeout = timeout
        self.username = username
        self._token = token

    @classmethod
    def login(cls, base_url: str, username: str, password: str, *, timeout: float = DEFAULT_TIMEOUT) -> AirflowAPI:
        """Exchange a user name and password for a token at ``POST /auth/token`` (201 ``access_token``)."""
        if not username or not password:
            raise ConfigurationError("logging in to Airflow needs a user name and a password")
        url = check_api_url(base_url)
        status, data = _call(
            url, "POST", "/auth/token", token=None, body={"username": username, "password": password}, timeout=timeout
        )
        if status == 401:
            raise ConfigurationError(
                f"Airflow at {url} did not accept the password of {username!r} ({data}): check the user and password"
            )
        if status >= 400:
            raise _error(url, status, str(data), f"log in as {username!r}")
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise StoreUnavailable(f"{url}/auth/token answered {status} without an access_token: is this Airflow's API server?")
        return cls(url, str(token), timeout=timeout, username=username)

    @property
    def token(self) -> str:
        """The bearer token (to reuse it, e.g. as ``AIRFLOW_API_TOKEN``)."""
        return self._token

    # -- requests --------------------------------------------------------------------------------

    def _get(self, path: str, what: str, query: Mapping[str, Any] | None = None) -> Any:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        status, data = _call(self.base_url, "GET", path, token=self._token, timeout=self.timeout)
        if status >= 400:
            raise _error(self.base_url, status, str(data), what)
        if not isinstance(data, dict):
            raise StoreUnavailable(f"{self.base_url} answered {what!r} with {type(data).__name__}: is this Airflow's API server?")
        return data

    def pending(self, dag_id: str | None = None, run_id: str | None = None, task_id: str | None = None) -> list[HITLRequest]:
        """Requests nobody has answered yet whose task waits for an answer (all DAGs/runs when ``None``)."""
        return [r for r in self.requests(dag_id, run_id, task_id, response_received=False) if r.waiting]

    def requests(
        self,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        *,
        response_received: bool | None = None,
    ) -> list[HITLRequest]:
        """Every request the user may read in ``dag_id``/``run_id``, page by page."""
        path = f"/api/v2/dags/{_segment(dag_id or '~')}/dagRuns/{_segment(run_id or '~')}/hitlDetails"
        query: dict[str, Any] = {"limit": _PAGE}
        if response_received is not None:
            query["response_received"] = str(response_received).lower()
        if task_id:
            query["task_id"] = task_id
        found: list[HITLRequest] = []
        while True:
            page = self._get(path, f"list the approvals of DAG {dag_id or '(any)'}", {**query, "offset": len(found)})
            items = [HITLRequest.from_api(d) for d in page.get("hitl_details", [])]
            found.extend(items)
            if not items or len(found) >= int(page.get("total_entries", 0)):
                return found

    def request(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> HITLRequest:
        """The request of one task instance, answered or not (404: no such task or no request)."""
        data = self._get(self._ti_path(dag_id, run_id, task_id, map_index) + "/hitlDetails", f"find the approval {task_id}")
        return HITLRequest.from_api(data)

    def xcom(self, request: HITLRequest, key: str) -> Any | None:
        """The XCom ``key`` of the request's task (``None`` if it has none)."""
        path = (
            f"/api/v2/dags/{_segment(request.dag_id)}/dagRuns/{_segment(request.run_id)}"
            f"/taskInstances/{_segment(request.task_id)}/xcomEntries/{_segment(key)}"
        )
        query = {"map_index": request.map_index}
        status, data = _call(
            self.base_url, "GET", f"{path}?{urllib.parse.urlencode(query)}", token=self._token, timeout=self.timeout
        )
        if status == 404:
            return None
        if status >= 400:
            raise _error(self.base_url, status, str(data), f"read {key} of {request.task_id}")
        return data.get("value") if isinstance(data, dict) else None

    def respond(self, request: HITLRequest, choice: str) -> HITLResponse:
        """Answer ``request`` with ``choice`` as the token's user; Airflow resumes the waiting task.

        :raises ApprovalRefused: the user is not an assigned reviewer (403) or it was already answered (409).
        """
        where = f"{request.task_id} in DAG {request.dag_id} run {request.run_id}"
        path = self._ti_path(request.dag_id, request.run_id, request.task_id, request.map_index) + "/hitlDetails"
        body = {"chosen_options": [choice], "params_input": {}}
        status, data = _call(self.base_url, "PATCH", path, token=self._token, body=body, timeout=self.timeout)
        if status == 409:
            raise ApprovalRefused(
                f"{where} was already answered{self._answered_by(request)}; Airflow accepts one answer per request"
            )
        if status == 403 and (match := _NOT_A_RESPONDENT.search(str(data))):
            assigned = ", ".join(request.assigned_users) or "none"
            raise ApprovalRefused(
                f"{match['name']} is not one of the reviewers allowed to answer {where} (assigned users: {assigned})"
            )
        if status >= 400:
            raise _error(self.base_url, status, str(data), f"answer {where}", refusal=status == 403)
        responder = data.get("responded_by") or {}
        return HITLResponse(
            dag_id=request.dag_id,
            run_id=request.run_id,
            task_id=request.task_id,
            map_index=request.map_index,
            choice=", ".join(data.get("chosen_options") or [choice]),
            responded_by=str(responder.get("name") or responder.get("id") or ""),
            responded_by_id=str(responder.get("id") or ""),
            responded_at=str(data.get("responded_at") or ""),
        )

    def _answered_by(self, request: HITLRequest) -> str:
        """`` by NAME (CHOICE)`` for a 409 message, or nothing when the request cannot be read."""
        try:
            now = self.request(request.dag_id, request.run_id, request.task_id, request.map_index)
        except MLSecOpsError:
            return ""
        if not now.responded_by:
            return ""
        return f" by {now.responded_by} ({', '.join(now.chosen_options)})"

    def run_progress(self, dag_id: str, run_id: str) -> RunProgress:
        """The run's state, each task's state and the requests waiting in it."""
        run = self._get(f"/api/v2/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}", f"find DAG {dag_id} run {run_id}")
        tasks: dict[str, str] = {}
        path = f"/api/v2/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}/taskInstances"
        while True:
            page = self._get(path, f"list the tasks of DAG {dag_id} run {run_id}", {"limit": _PAGE, "offset": len(tasks)})
            items = page.get("task_instances", [])
            for ti in items:
                name = ti["task_id"] if ti.get("map_index", -1) == -1 else f"{ti['task_id']}[{ti['map_index']}]"
                tasks[name] = str(ti.get("state") or "none")
            if not items or len(tasks) >= int(page.get("total_entries", 0)):
                break
        waiting = tuple(r.task_id for r in self.pending(dag_id, run_id))
        return RunProgress(state=str(run.get("state")), tasks=tasks, waiting_for=waiting)

    def wait_for_run(
        self, dag_id: str, run_id: str, *, answered_task: str | None, timeout: float, poll: float = 1.0
    ) -> RunProgress:
        """Poll until the run finishes, or the answered task has settled and a request waits again.

        A quorum re-opens the same request after each counted answer; another approval task may wait
        downstream. ``answered_task`` is a key of :attr:`RunProgress.tasks` (``task`` or ``task[i]``).
        Returns the last progress seen when ``timeout`` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        while True:
            progress = self.run_progress(dag_id, run_id)
            settled = answered_task is None or progress.tasks.get(answered_task, "none") not in _MOVING_STATES
            if progress.state in _FINISHED_RUN_STATES or (settled and progress.waiting_for) or time.monotonic() >= deadline:
                return progress
            time.sleep(poll)

    @staticmethod
    def _ti_path(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
        return f"/api/v2/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}/taskInstances/{_segment(task_id)}/{map_index}"


def _call(
    base_url: str, method: str, path: str, *, token: str | None, body: Mapping[str, Any] | None = None, timeout: float
) -> tuple[int, Any]:
    """Send one request; return the status and the decoded JSON (or the error detail for >= 400)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        # Unredirected: a redirect to another host must not carry the user's token along.
        req.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:  # nosec B310: base_url passed check_api_url (http/https only)
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _detail(exc.read())
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreUnavailable(f"no Airflow API server at {base_url} ({reason}): check --api-url / AIRFLOW_API_URL") from exc
    try:
        return status, json.loads(raw) if raw else {}
    except ValueError as exc:
        raise StoreUnavailable(f"{base_url}{path.split('?')[0]} did not answer JSON: is this Airflow's API server?") from exc


def _error(base_url: str, status: int, detail: str, action: str, *, refusal: bool = False) -> MLSecOpsError:
    """One of our exceptions for an HTTP error of Airflow's API, saying what to do about it."""
    if status == 401 or (status == 403 and detail in _BAD_TOKEN_DETAILS):
        return ConfigurationError(
            f"Airflow at {base_url} refused the credentials ({detail or status}) trying to {action}: "
            "log in again with --username or set a fresh AIRFLOW_API_TOKEN"
        )
    if status == 403:
        message = f"Airflow at {base_url} does not allow this user to {action} ({detail})"
        return ApprovalRefused(message) if refusal else ConfigurationError(message)
    if status == 404:
        return ConfigurationError(f"cannot {action}: {detail or 'not found'} (Airflow at {base_url})")
    if status in (400, 422):
        return ConfigurationError(f"Airflow at {base_url} refused the request to {action}: {detail}")
    return StoreUnavailable(f"Airflow at {base_url} failed to {action} (HTTP {status}: {detail})")
