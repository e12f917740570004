"""``mlsecops demo``: run the example secure training pipeline and print what happened and what to do next.

The run waits for a reviewer in the background after the demo has printed its result;
``mlsecops demo --stop`` ends it (the demo prints that command next to the approve/reject ones).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, EXIT_REJECTED, mlsecops_command, print_json
from airflow_mlsecops.exceptions import ConfigurationError


def cmd_demo_stop(args: argparse.Namespace) -> int:
    """Stop the demo run waiting in the background in ``$MLSECOPS_HOME``; say what, or that none was."""
    from airflow_mlsecops.demo.run import demo_home, stop_background_run

    home = demo_home()
    stopped = stop_background_run(home)
    if args.json:
        print_json(
            {"home": str(home), "stopped": None if stopped is None else {**vars(stopped), "pid_file": str(stopped.pid_file)}}
        )
    elif stopped is None:
        print(f"mlsecops demo: no demo run is waiting in the background in {home}: nothing to stop")
    else:
        print(f"mlsecops demo: stopped the demo run waiting in the background: {stopped.describe()}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    if args.stop:
        return cmd_demo_stop(args)
    from airflow_mlsecops.demo.run import check_reviewers, next_steps, run_demo

    if args.approve_as and args.reject_as:
        raise ConfigurationError("give --approve-as or --reject-as, not both")
    check_reviewers(args.approve_as, args.reject_as)
    conf = {"rows": args.rows, "seed": args.seed}
    echo = None if args.json else (lambda msg: print(f"mlsecops demo: {msg}", flush=True))
    result = run_demo(
        dags_folder=Path(args.dags_folder),
        conf=conf,
        echo=echo,
        approve_as=args.approve_as,
        reject_as=args.reject_as,
        approval_timeout=args.approval_timeout,
    )
    if args.json:
        data = result.to_dict()
        if result.state == "awaiting_approval":
            data["commands"] = dict(zip(("approve", "reject", "stop"), waiting_commands(result, mlsecops_command()), strict=True))
        print_json(data)
    else:
        print()
        print(f"DAG {result.dag_id} run {result.run_id}: {result.state} in {result.seconds:.0f} s")
        for task, state in sorted(result.tasks.items()):
            verdict = result.gates.get(task) if state not in ("awaiting_input", "None", "none") else None
            shown = "not run yet" if state in ("None", "none") else state
            print(f"  {task:<22} {shown:<14} {('gate verdict: ' + verdict) if verdict else ''}")
        print(f"evidence: MLflow run {result.mlflow_run_id} in {result.tracking_uri}")
        print(f"verification: {'VERIFIED' if result.verified else 'NOT VERIFIED'}")
        for failure in result.verification_failures:
            print(f"  - {failure['scope']}: {failure['check']}: {failure['detail']}")
        if result.approval:
            a = result.approval
            print(
                f"approval: {a['decision']}"
                + (f" by {a['responded_by']} at {a['responded_at']}" if a.get("responded_by") else "")
            )
        if result.promoted:
            p = result.promoted
            print(f"promoted: {p['model']} version {p['version']} is now @{p['alias']}")
        elif result.state != "awaiting_approval":
            print("promoted: nothing")
        print()
        if result.state == "awaiting_approval":
            task = result.waiting_for[0]["task_id"] if result.waiting_for else "approve_model"
            minutes = f"{args.approval_timeout / 60:.0f} min"
            print(f"The run is waiting for a reviewer at {task}: it keeps waiting in the background ({minutes} at most).")
            print("Approve or reject it here, or stop it:")
            for line in waiting_commands(result, mlsecops_command()):
                print(f"  {line}")
            print("The DAG run's triggering user and the model's author may not approve (separation of duties).")
            print("(--as answers through the demo's own Airflow database; in a real Airflow, `make airflow`,")
            print(" Airflow authenticates the reviewer: Browse > Required actions.)")
            print()
        for line in next_steps(result, mlsecops_command()):
            print(f"  {line}")
    return EXIT_OK if result.ok else EXIT_REJECTED


def waiting_commands(result: Any, mlsecops: str = "mlsecops") -> list[str]:
    """The commands that answer the demo's waiting run (as a reviewer) or stop it."""
    from airflow_mlsecops.demo.accounts import REVIEWERS

    home = f"MLSECOPS_HOME={result.home} {mlsecops}"
    run = f"--dag-id {result.dag_id} --run-id '{result.run_id}'"
    approver, rejecter = REVIEWERS[0], REVIEWERS[-1]
    return [
        f"{home} approve {run} --as {approver} --wait 600",
        f"{home} reject  {run} --as {rejecter} --wait 600",
        f"{home} demo --stop",
    ]


def add_demo_parser(sub: Any) -> None:
    """Add ``demo``."""
    from airflow_mlsecops.demo.accounts import REVIEWERS

    p = sub.add_parser("demo", help="run the example secure training pipeline end to end (embedded default)")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--dags-folder", default="dags", help="folder holding the example DAG (default: ./dags)")
    p.add_argument("--rows", type=int, default=5000, help="rows of generated training data")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    p.add_argument(
        "--approve-as",
        metavar="USER",
        help=f"answer the approval as this reviewer ({' or '.join(REVIEWERS)}): Approve, and run to the end",
    )
    p.add_argument("--reject-as", metavar="USER", help="answer the approval as this reviewer: Reject")
    p.add_argument("--approval-timeout", type=float, default=3600, help="seconds the run waits in the background for a reviewer")
    p.add_argument(
        "--stop",
        action="store_true",
        help="stop the demo run waiting in the background in $MLSECOPS_HOME (says so if none is); starts nothing",
    )
    p.set_defaults(func=cmd_demo)
