"""``mlsecops demo``: run the example secure training pipeline and print what happened and what to do next."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, EXIT_REJECTED, mlsecops_command, print_json
from airflow_mlsecops.exceptions import ConfigurationError


def cmd_demo(args: argparse.Namespace) -> int:
    from airflow_mlsecops.demo.run import next_steps, run_demo

    if args.approve_as and args.reject_as:
        raise ConfigurationError("give --approve-as or --reject-as, not both")
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
        print_json(result.to_dict())
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
            print(f"The run is waiting for a reviewer at {task} (it keeps waiting in the background).")
            print("Approve or reject it in the Airflow UI (Browse > Required actions), or here:")
            home = f"MLSECOPS_HOME={result.home} {mlsecops_command()}"
            print(f"  {home} approve --dag-id {result.dag_id} --run-id '{result.run_id}' --as alice --wait 600")
            print(f"  {home} reject  --dag-id {result.dag_id} --run-id '{result.run_id}' --as bob --wait 600")
            print("The DAG run's triggering user and the model's author may not approve (separation of duties).")
            print()
        for line in next_steps(result, mlsecops_command()):
            print(f"  {line}")
    return EXIT_OK if result.ok else EXIT_REJECTED


def add_demo_parser(sub: Any) -> None:
    """Add ``demo``."""
    p = sub.add_parser("demo", help="run the example secure training pipeline end to end (embedded default)")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--dags-folder", default="dags", help="folder holding the example DAG (default: ./dags)")
    p.add_argument("--rows", type=int, default=5000, help="rows of generated training data")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    p.add_argument("--approve-as", metavar="USER", help="answer the approval as this reviewer (Approve) and run to the end")
    p.add_argument("--reject-as", metavar="USER", help="answer the approval as this reviewer (Reject)")
    p.add_argument("--approval-timeout", type=float, default=3600, help="seconds the run waits in the background for a reviewer")
    p.set_defaults(func=cmd_demo)
