"""``mlsecops policy``: check DAG files against a policy in CI, print the schema, validate a policy.

* ``mlsecops policy check [--policy P] DAGS_DIR [--json]``: parse every DAG file with Airflow's
  ``DagBag`` (no scheduler, no database) and judge each DAG with the same engine as the cluster
  policy (rules chosen by the DAG's id, tags and owners and by the registered models it registers
  or promotes; plus the checks every policy makes: gate operator classes, trigger rules, empty
  mapped gates, model names known before the run). Exit 0: every DAG complies; 1: at least one
  violation; 2: the check could not run or is incomplete (broken or missing policy, missing
  folder, a DAG file that does not import).
* ``mlsecops policy schema``: print the policy's JSON Schema.
* ``mlsecops policy validate [--policy P] [--json]``: validate a policy file; print its digest and rules.

Without ``--policy`` the configured policy is used (``$MLSECOPS_POLICY``, else
``$MLSECOPS_HOME/policy.yaml``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_mlsecops.exceptions import ConfigurationError

EXIT_OK, EXIT_VIOLATIONS, EXIT_ERROR = 0, 1, 2


def add_policy_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``policy check|schema|validate`` to the ``mlsecops`` sub-command parsers."""
    p = subparsers.add_parser("policy", help="policy as code: check DAGs against the policy, print its schema")
    psub = p.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")

    cp = psub.add_parser(
        "check", help="judge every DAG in a folder against the policy (exit 0 compliant, 1 violations, 2 could not run)"
    )
    cp.add_argument("dags_dir", metavar="DAGS_DIR", help="folder (or single file) of DAG files")
    cp.add_argument("--policy", metavar="FILE", help="the policy file (default: $MLSECOPS_POLICY or $MLSECOPS_HOME/policy.yaml)")
    cp.add_argument("--json", action="store_true", help="print one JSON object")
    cp.set_defaults(func=cmd_policy_check)

    sp = psub.add_parser("schema", help="print the policy file's JSON Schema")
    sp.set_defaults(func=cmd_policy_schema)

    vp = psub.add_parser("validate", help="validate a policy file and show its rules and digest (exit 0 valid, 2 invalid)")
    vp.add_argument("--policy", metavar="FILE", help="the policy file (default: $MLSECOPS_POLICY or $MLSECOPS_HOME/policy.yaml)")
    vp.add_argument("--json", action="store_true", help="print one JSON object")
    vp.set_defaults(func=cmd_policy_validate)
    return p


def _policy_path(args: argparse.Namespace) -> Path:
    from airflow_mlsecops.policy.model import configured_policy_path

    if getattr(args, "policy", None):
        return Path(args.policy)
    path = configured_policy_path()
    if path is None:
        raise ConfigurationError("no policy given: pass --policy FILE or set MLSECOPS_POLICY")
    return path


def _load(args: argparse.Namespace) -> Any:
    """The policy, or ``None`` after printing why it cannot be used."""
    from airflow_mlsecops.policy.model import PolicyError, load_policy

    try:
        return load_policy(_policy_path(args))
    except PolicyError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": "policy", **exc.to_dict()}, indent=2, sort_keys=True))
        else:
            print(f"mlsecops: the policy cannot be used ({len(exc.issues)} problem(s)):", file=sys.stderr)
            for issue in exc.issues:
                print(f"  {issue.render(exc.source)}", file=sys.stderr)
        return None


def cmd_policy_schema(args: argparse.Namespace) -> int:
    from airflow_mlsecops.policy.model import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def cmd_policy_validate(args: argparse.Namespace) -> int:
    policy = _load(args)
    if policy is None:
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"ok": True, "policy": policy.to_dict()}, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"policy {policy.source} is valid: {len(policy.rules)} rule(s), sha256 {policy.digest}")
    for rule in policy.rules:
        print(f"  rule '{rule.name}' (line {rule.line}): DAGs with {rule.match.describe()}")
        for step in ("register", "promote"):
            gates = rule.gates_for(step)
            if gates:
                print(f"    before {step}: {', '.join(gates)}")
        for gate, values in rule.thresholds.items():
            shown = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in values.items())
            print(f"    {gate}: {shown}")
        if rule.approval.values():
            shown = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in rule.approval.values().items())
            print(f"    approval: {shown}")
        if rule.trusted_keys:
            print(f"    trusted keys: {', '.join(rule.trusted_keys)}")
    return EXIT_OK


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (``sys.stdout`` and file descriptor 1) to stderr."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):  # no real stdout (e.g. captured)
        fd = saved = -1
    try:
        if saved >= 0:
            os.dup2(sys.stderr.fileno(), fd)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved >= 0:
            os.dup2(saved, fd)
            os.close(saved)


def collect_dags(dags_dir: Path, tampered: dict[str, str] | None = None) -> tuple[list[Any], dict[str, str]]:
    """Parse the DAG files under ``dags_dir`` with Airflow's ``DagBag``, this package's own cluster
    policy turned off (it is what is being run here). Returns (DAGs, import errors by file).

    :param tampered: filled with DAG id -> why, for each DAG whose file changed a platform setting
        in ``os.environ`` while it ran (the change is undone before the next file).
    """
    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlsecops.config import check_platform_environment, restore_platform_environment
    from airflow_mlsecops.policy.cluster_policy import suspended

    def note_tampering(dag: Any) -> None:
        try:
            check_platform_environment()
        except ConfigurationError as exc:
            if tampered is not None:
                tampered[str(dag.dag_id)] = str(exc)
            restore_platform_environment()

    # Airflow logs (import tracebacks included) to stdout: they go to stderr here, so that stdout
    # holds only the report (``--json`` is exactly one JSON object).
    with suspended(note_tampering), _stdout_to_stderr():
        bag = DagBag(dag_folder=str(dags_dir), collect_dags=True)
    dags = sorted(bag.dags.values(), key=lambda d: d.dag_id)
    base = dags_dir if dags_dir.is_dir() else dags_dir.parent
    errors: dict[str, str] = {}
    for path, error in sorted(bag.import_errors.items()):
        try:
            shown = Path(path).relative_to(base).as_posix()
        except ValueError:
            shown = str(path)
        errors[shown] = str(error).strip()
    return dags, errors


def cmd_policy_check(args: argparse.Namespace) -> int:
    dags_dir = Path(args.dags_dir)
    if not dags_dir.exists():
        raise ConfigurationError(f"{dags_dir}: no such folder or file")
    policy = _load(args)
    if policy is None:
        return EXIT_ERROR

    from airflow_mlsecops.policy.airflow_dag import dag_info
    from airflow_mlsecops.policy.engine import Violation, evaluate

    tampered: dict[str, str] = {}
    dags, import_errors = collect_dags(dags_dir, tampered)
    results: list[dict[str, Any]] = []
    for dag in dags:
        info = dag_info(dag)
        rules = policy.matching(info.dag_id, info.tags, info.owners, info.models)
        violations = evaluate(policy, info)
        if info.dag_id in tampered:
            violations.insert(
                0,
                Violation(
                    rule="platform-settings",
                    dag_id=info.dag_id,
                    kind="platform-environment",
                    message=f"DAG {info.dag_id} changes the platform's settings when its file runs: {tampered[info.dag_id]}",
                ),
            )
        results.append(
            {
                "dag_id": info.dag_id,
                "fileloc": info.fileloc,
                "rules": [r.name for r in rules],
                "compliant": not violations,
                "violations": [v.to_dict() for v in violations],
            }
        )
    n_bad = sum(1 for r in results if not r["compliant"])
    code = EXIT_ERROR if import_errors else EXIT_VIOLATIONS if n_bad else EXIT_OK
    if args.json:
        print(
            json.dumps(
                {
                    "ok": code == EXIT_OK,
                    "exit_code": code,
                    "policy": {"source": policy.source, "digest": policy.digest, "rules": [r.name for r in policy.rules]},
                    "dags_dir": str(dags_dir),
                    "dags": results,
                    "import_errors": import_errors,
                },
                indent=2,
                sort_keys=True,
            )
        )
        return code
    print(f"policy {policy.source} (sha256 {policy.digest[:16]}..., {len(policy.rules)} rule(s)) on {dags_dir}")
    width = max([len(r["dag_id"]) for r in results] + [8])
    for r in results:
        if r["compliant"]:
            why = f"rules: {', '.join(r['rules'])}" if r["rules"] else "no rule applies"
            print(f"  ok         {r['dag_id']:<{width}}  {why}")
        else:
            print(f"  VIOLATION  {r['dag_id']:<{width}}  {len(r['violations'])} violation(s)")
            for v in r["violations"]:
                print(f"      - {v['message']}")
    for path, error in import_errors.items():
        last = error.strip().splitlines()[-1] if error.strip() else "import error"
        print(f"  ERROR      {path}: does not import, so it was not checked: {last}")
    print()
    summary = f"{len(results)} DAG(s): {len(results) - n_bad} compliant, {n_bad} with violations"
    if import_errors:
        summary += f"; {len(import_errors)} file(s) could not be imported"
    print(("COMPLIANT: " if code == EXIT_OK else "NOT COMPLIANT: " if code == EXIT_VIOLATIONS else "INCOMPLETE: ") + summary)
    return code


__all__ = ["add_policy_parser", "cmd_policy_check", "cmd_policy_schema", "cmd_policy_validate", "collect_dags"]
