"""``mlsecops approvals``, ``approve`` and ``reject``: answer Airflow's human-in-the-loop approval from a shell."""

from __future__ import annotations

import argparse
import os
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, print_json


def _airflow_env(args: argparse.Namespace) -> None:
    """Point Airflow at the embedded default's database unless AIRFLOW_HOME says otherwise."""
    from airflow_mlsecops.config import Settings

    os.environ.setdefault("AIRFLOW_HOME", str(Settings.from_env().home / "airflow"))


def cmd_approvals(args: argparse.Namespace) -> int:
    _airflow_env(args)
    from airflow_mlsecops.lifecycle.hitl import pending_approvals

    pending = pending_approvals(args.dag_id, args.run_id)
    if args.json:
        print_json([p.to_dict() for p in pending])
    elif not pending:
        print(f"no approval is waiting in DAG {args.dag_id}")
    else:
        for p in pending:
            print(f"{p.dag_id} {p.run_id} {p.task_id}: {p.subject}")
            if p.assigned_users:
                print(f"  reviewers: {', '.join(p.assigned_users)}")
            if p.body:
                print("  " + "\n  ".join(p.body.splitlines()))
    return EXIT_OK


def _respond(args: argparse.Namespace, approve: bool) -> int:
    _airflow_env(args)
    from airflow_mlsecops.lifecycle.hitl import respond, wait_for_run

    written = respond(dag_id=args.dag_id, run_id=args.run_id, user=args.as_user, approve=approve, task_id=args.task_id)
    result: dict[str, Any] = {"response": written}
    if args.wait:
        result["run"] = wait_for_run(args.dag_id, args.run_id, timeout=args.wait)
    if args.json:
        print_json(result)
    else:
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


def add_approval_parsers(sub: Any) -> None:
    """Add ``approve``, ``reject`` and ``approvals``."""
    for name, func, what in (("approve", cmd_approve, "approve"), ("reject", cmd_reject, "reject")):
        p = sub.add_parser(name, help=f"{what} a model waiting for human approval (Airflow human-in-the-loop)")
        p.add_argument("--dag-id", required=True)
        p.add_argument("--run-id", required=True)
        p.add_argument("--as", dest="as_user", required=True, metavar="USER", help="the reviewer answering")
        p.add_argument("--task-id", help="the approval task, if the run has several waiting")
        p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="then wait up to SECONDS for the run to go on")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("approvals", help="list approvals waiting in a DAG")
    p.add_argument("--dag-id", required=True)
    p.add_argument("--run-id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_approvals)
