"""``mlsecops approvals``, ``approve`` and ``reject``: answer Airflow's human-in-the-loop approval from a shell.

With an Airflow API URL (``--api-url`` or ``AIRFLOW_API_URL``) they talk to Airflow's REST API and the
responder is the user Airflow authenticates: a token from ``AIRFLOW_API_TOKEN``, or ``--username``
(or ``AIRFLOW_API_USERNAME``) with the password from ``AIRFLOW_API_PASSWORD`` or a prompt. ``--as``
is refused there. Without one, they write the embedded demo's Airflow database directly and trust
``--as USER`` (``mlsecops demo`` prints such commands); a note on stderr says so every time.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.cli._common import EXIT_OK, print_json
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.lifecycle.approval import REQUEST_XCOM_KEY

if TYPE_CHECKING:
    from airflow_mlsecops.lifecycle.airflow_api import AirflowAPI, HITLRequest

API_URL_ENV = "AIRFLOW_API_URL"
TOKEN_ENV = "AIRFLOW_API_TOKEN"
USERNAME_ENV = "AIRFLOW_API_USERNAME"
PASSWORD_ENV = "AIRFLOW_API_PASSWORD"
_REQUEST_KEY = REQUEST_XCOM_KEY


def _api_url(args: argparse.Namespace) -> str | None:
    return args.api_url or os.environ.get(API_URL_ENV) or None


def _airflow_env(args: argparse.Namespace) -> None:
    """Point Airflow at the embedded default's database unless AIRFLOW_HOME says otherwise."""
    from airflow_mlsecops.config import Settings

    if args.username:
        raise ConfigurationError(f"--username logs in to Airflow's API server: give --api-url (or set {API_URL_ENV}) too")
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = str(Settings.from_env().home / "airflow")


def _password(username: str, url: str) -> str:
    """The password from ``AIRFLOW_API_PASSWORD`` or a prompt; never from the command line."""
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise ConfigurationError(f"no password for {username!r}: set {PASSWORD_ENV} or run in a terminal to be prompted")
    import getpass

    password = getpass.getpass(f"Airflow password for {username} at {url}: ")
    if not password:
        raise ConfigurationError(f"no password given for {username!r}")
    return password


def _client(url: str, args: argparse.Namespace) -> AirflowAPI:
    """Log in as ``--username``, else use ``AIRFLOW_API_TOKEN``, else log in as ``AIRFLOW_API_USERNAME``."""
    from airflow_mlsecops.lifecycle.airflow_api import AirflowAPI, sends_in_clear

    token = os.environ.get(TOKEN_ENV)
    username = args.username or (None if token else os.environ.get(USERNAME_ENV))
    if username:
        password = _password(username, url)
        if sends_in_clear(url):
            print(f"mlsecops: warning: sending {username}'s password to {url} without TLS", file=sys.stderr)
        return AirflowAPI.login(url, username, password)
    if token:
        return AirflowAPI(url, token)
    raise ConfigurationError(
        f"no credentials for Airflow at {url}: set {TOKEN_ENV}, or give --username (password from {PASSWORD_ENV} or a prompt)"
    )


# -- approvals -----------------------------------------------------------------------------------


def _print_request(request: HITLRequest) -> None:
    print(f"{request.dag_id} {request.run_id} {request.task_id}: {request.subject}")
    print(f"  assigned users: {', '.join(request.assigned_users) or '(anyone allowed to answer in this DAG)'}")
    excluded = (request.request or {}).get("excluded") or {}
    if excluded:
        print("  may not approve: " + "; ".join(f"{user} ({why})" for user, why in sorted(excluded.items())))
    if request.body:
        print("  " + "\n  ".join(request.body.splitlines()))


def cmd_approvals(args: argparse.Namespace) -> int:
    url = _api_url(args)
    if url:
        api = _client(url, args)
        pending = [_with_request(api, r) for r in api.pending(args.dag_id, args.run_id)]
        where = f"DAG {args.dag_id}" if args.dag_id else f"any DAG you may read at {api.base_url}"
        if args.json:
            print_json([p.to_dict() for p in pending])
        elif not pending:
            print(f"no approval is waiting in {where}")
        for request in [] if args.json else pending:
            _print_request(request)
        return EXIT_OK
    if not args.dag_id:
        raise ConfigurationError(f"give --dag-id (or --api-url / {API_URL_ENV} to list every DAG's approvals)")
    _airflow_env(args)
    from airflow_mlsecops.lifecycle.hitl import pending_approvals

    waiting = pending_approvals(args.dag_id, args.run_id)
    if args.json:
        print_json([p.to_dict() for p in waiting])
    elif not waiting:
        print(f"no approval is waiting in DAG {args.dag_id}")
    else:
        for p in waiting:
            print(f"{p.dag_id} {p.run_id} {p.task_id}: {p.subject}")
            if p.assigned_users:
                print(f"  reviewers: {', '.join(p.assigned_users)}")
            if p.body:
                print("  " + "\n  ".join(p.body.splitlines()))
    return EXIT_OK


def _with_request(api: AirflowAPI, request: HITLRequest) -> HITLRequest:
    """``request`` with the operator's approval request (digests, who may not approve) when it has one."""
    from dataclasses import replace

    try:
        value = api.xcom(request, _REQUEST_KEY)
    except ConfigurationError:
        return request  # a role that may not read XComs still sees the request's body
    return replace(request, request=value) if isinstance(value, dict) else request


# -- approve / reject ----------------------------------------------------------------------------


def _target(api: AirflowAPI, args: argparse.Namespace) -> HITLRequest:
    """The one request to answer: ``--task-id``'s, else the only one waiting in the run."""
    if args.task_id:
        return api.request(args.dag_id, args.run_id, args.task_id, args.map_index)
    waiting = api.pending(args.dag_id, args.run_id)
    if len(waiting) > 1:
        raise ConfigurationError(f"several approvals are waiting ({', '.join(r.task_id for r in waiting)}); pass --task-id")
    if not waiting:
        answered = [r for r in api.requests(args.dag_id, args.run_id) if r.response_received]
        done = "; ".join(f"{r.task_id} was answered by {r.responded_by} ({', '.join(r.chosen_options)})" for r in answered)
        raise ConfigurationError(
            f"no approval is waiting in DAG {args.dag_id} run {args.run_id}" + (f" ({done})" if done else "")
        )
    return waiting[0]


def _refuse_barred_user(api: AirflowAPI, target: HITLRequest, username: str) -> None:
    """Refuse, before answering, a user the request names as barred (separation of duties).

    Only a courtesy: the operator refuses such an approval anyway (and re-opens the request), and
    Airflow answers 403 when the user is not assigned. It saves a recorded answer that cannot count.
    """
    from airflow_mlsecops.exceptions import ApprovalRefused

    try:
        request = api.xcom(target, _REQUEST_KEY)
    except ConfigurationError:
        return  # e.g. a role that may answer but not read XComs: Airflow and the operator still decide
    excluded = request.get("excluded") if isinstance(request, dict) else None
    if isinstance(excluded, dict) and username in excluded:
        model = request.get("model_uri", "this model") if isinstance(request, dict) else "this model"
        raise ApprovalRefused(f"{username} may not approve {model}: {excluded[username]} (separation of duties)")


def _respond_through_api(url: str, args: argparse.Namespace, approve: bool) -> dict[str, Any]:
    from airflow_mlsecops.lifecycle.approval import APPROVE, REJECT

    if args.as_user:
        raise ConfigurationError(
            f"--as is refused when an Airflow API URL is configured ({url}): the responder is the user you log in as "
            f"(--username, or {TOKEN_ENV}); Airflow checks that user against the reviewers"
        )
    api = _client(url, args)
    target = _target(api, args)
    if approve and api.username:
        _refuse_barred_user(api, target, api.username)
    response = api.respond(target, APPROVE if approve else REJECT)
    result: dict[str, Any] = {"response": response.to_dict(), "api_url": api.base_url}
    if args.wait:
        answered = response.task_id if response.map_index == -1 else f"{response.task_id}[{response.map_index}]"
        progress = api.wait_for_run(args.dag_id, args.run_id, answered_task=answered, timeout=args.wait)
        result["run"] = progress.to_dict()
    return result


def _respond_in_database(args: argparse.Namespace, approve: bool) -> dict[str, Any]:
    if not args.as_user:
        raise ConfigurationError(
            f"say where Airflow's API server is (--api-url or {API_URL_ENV}) and log in as yourself; "
            "--as USER is only for the embedded demo's database"
        )
    _airflow_env(args)
    print(
        f"mlsecops: note: no Airflow API URL (--api-url / {API_URL_ENV}): writing the embedded demo's Airflow "
        f"database directly and trusting --as {args.as_user}. This path is for the embedded demo only, "
        "not for a deployment.",
        file=sys.stderr,
    )
    from airflow_mlsecops.lifecycle.hitl import respond, wait_for_run

    written = respond(dag_id=args.dag_id, run_id=args.run_id, user=args.as_user, approve=approve, task_id=args.task_id)
    result: dict[str, Any] = {"response": written}
    if args.wait:
        result["run"] = wait_for_run(args.dag_id, args.run_id, timeout=args.wait)
    return result


def _respond(args: argparse.Namespace, approve: bool) -> int:
    url = _api_url(args)
    result = _respond_through_api(url, args, approve) if url else _respond_in_database(args, approve)
    if args.json:
        print_json(result)
        return EXIT_OK
    written = result["response"]
    print(f"{written['responded_by']} chose {written['choice']} for {written['task_id']} in {args.dag_id} {args.run_id}")
    if "run" in result:
        run = result["run"]
        waiting = f", waiting for more responses in {', '.join(run['waiting_for'])}" if run["waiting_for"] else ""
        print(f"DAG run state: {run['state']}{waiting}")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    return _respond(args, approve=True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _respond(args, approve=False)


def _add_api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api-url",
        metavar="URL",
        help=f"Airflow's API server, e.g. http://127.0.0.1:8080 (default: ${API_URL_ENV}); "
        "without one, the embedded demo's database is used",
    )
    p.add_argument(
        "--username",
        help=f"log in to Airflow as this user (default: ${USERNAME_ENV} when ${TOKEN_ENV} is unset); "
        f"password from ${PASSWORD_ENV} or a prompt",
    )


def add_approval_parsers(sub: Any) -> None:
    """Add ``approve``, ``reject`` and ``approvals``."""
    for name, func, what in (("approve", cmd_approve, "approve"), ("reject", cmd_reject, "reject")):
        p = sub.add_parser(name, help=f"{what} a model waiting for human approval (Airflow human-in-the-loop)")
        p.add_argument("--dag-id", required=True)
        p.add_argument("--run-id", required=True)
        _add_api_options(p)
        p.add_argument(
            "--as",
            dest="as_user",
            metavar="USER",
            help="embedded demo only: the reviewer answering (refused with --api-url, where the user comes from the login)",
        )
        p.add_argument("--task-id", help="the approval task, if the run has several waiting")
        p.add_argument("--map-index", type=int, default=-1, help="the mapped task's index (with --task-id)")
        p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="then wait up to SECONDS for the run to go on")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("approvals", help="list approvals waiting for an answer")
    p.add_argument("--dag-id", help="the DAG (required without --api-url; with it, default: every DAG)")
    p.add_argument("--run-id")
    _add_api_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_approvals)
