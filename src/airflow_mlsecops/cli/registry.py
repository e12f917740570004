"""``mlsecops rollback``, ``verify-model-version`` and ``registry guard``: the MLflow Model Registry, bound to the evidence."""

from __future__ import annotations

import argparse
from typing import Any

from airflow_mlsecops.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    add_store_options,
    apply_store_options,
    print_json,
)


def cmd_rollback(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.rollback import rollback

    settings = Settings.from_env()
    store = MLflowEvidenceStore.from_settings(settings)
    record = rollback(store, name=args.model, alias=args.alias, settings=settings, force=args.force, reason=args.reason)
    data = record.to_dict() if hasattr(record, "to_dict") else dict(record.__dict__)
    if args.json:
        print_json(data)
    else:
        print(f"{args.model}@{args.alias}: rolled back to version {data.get('to_version')} (was {data.get('from_version')})")
    return EXIT_OK


def cmd_verify_model_version(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.version_verification import verify_model_alias, verify_model_version

    settings = Settings.from_env()
    store = MLflowEvidenceStore.from_settings(settings)
    name, at, alias = str(args.name).partition("@")
    if at:
        if args.version is not None:
            raise ConfigurationError(f"give NAME@ALIAS or NAME VERSION, not both ({args.name} {args.version})")
        result = verify_model_alias(store, name=name, alias=alias, settings=settings)
        shown = f"{name}@{alias} (version {result.version})"
    else:
        if args.version is None:
            raise ConfigurationError("give the version to verify (NAME VERSION) or an alias (NAME@ALIAS)")
        result = verify_model_version(store, name=name, version=str(args.version), settings=settings)
        shown = f"{name} version {result.version}"
    if args.json:
        print_json(result.to_dict())
    elif result.ok:
        print(f"VERIFIED: {shown} has a valid evidence chain")
    else:
        print(f"NOT VERIFIED: {shown}")
        for problem in result.problems:
            print(f"  - {problem}")
    if not args.json:
        print(_trusted_keys_line(result.trusted_keys))
    return EXIT_OK if result.ok else EXIT_REJECTED


def cmd_registry_guard(args: argparse.Namespace) -> int:
    """Exit 0: every protected alias verifies; 1: one moved without a signed promotion (alert); 2: no check."""
    apply_store_options(args)
    import sys

    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.models import Verdict
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.alias_guard import ACTION_NONE, guard_aliases

    settings = Settings.from_env()
    store = MLflowEvidenceStore.from_settings(settings)
    report = guard_aliases(store, models=args.model or None, restore=args.restore, settings=settings)
    if args.json:
        print_json(report.to_dict())
    else:
        if report.findings:
            print(f"ALERT: {len(report.findings)} protected alias(es) moved or set without a valid signed promotion")
            for finding in report.findings:
                print(f"  - {finding.name}@{finding.alias} on version {finding.version}")
                for problem in finding.problems:
                    print(f"      {problem}")
                hint = " (rerun with --restore to move it back)" if finding.action == ACTION_NONE else ""
                print(f"    action: {finding.action}" + (f" -> version {finding.moved_to}" if finding.moved_to else "") + hint)
                if finding.action_detail:
                    print(f"    {finding.action_detail}")
        if report.verdict is Verdict.PASSED:
            print(f"VERIFIED: {report.outcome.result.summary}")
        elif report.verdict is Verdict.ERROR:
            print(f"NOT CHECKED: {report.outcome.result.summary}")
        print(f"guarded: {report.source or 'nothing'}; {len(report.checked)} alias(es) checked")
        if report.evidence:
            print(f"evidence: {report.evidence}")
    if report.recording_error:
        print(f"mlsecops: error: the guard's evidence could not be recorded: {report.recording_error}", file=sys.stderr)
    if report.verdict is Verdict.ERROR:
        print(f"mlsecops: error: {report.error}", file=sys.stderr)
        return EXIT_ERROR
    if report.verdict is not Verdict.PASSED:
        return EXIT_REJECTED
    return EXIT_OK if report.recording_error is None else EXIT_ERROR


def _trusted_keys_line(keys: list[dict[str, str]]) -> str:
    if not keys:
        return "trusted keys: none configured (set MLSECOPS_TRUSTED_KEYS, or MLSECOPS_HOME to trust its keys/ folder)"
    described = (f"{k['keyid'][:16]}... ({k['key_type']}) from {k['source']}, valid {k['validity']}" for k in keys)
    return "trusted keys: " + "; ".join(described)


def add_registry_parsers(sub: Any) -> None:
    """Add ``rollback``, ``verify-model-version`` and ``registry guard``."""
    p = sub.add_parser("rollback", help="move an alias back to its previous holder, with signed evidence")
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument("--alias", default="champion")
    p.add_argument("--force", action="store_true", help="roll back even if the previous holder's evidence chain is broken")
    p.add_argument("--reason", help="why (recorded in the evidence)")
    add_store_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser(
        "verify-model-version",
        help="check that a registered model version (NAME VERSION) or an alias's holder (NAME@ALIAS) has a valid evidence chain",
    )
    p.add_argument("name", help="the registered model, or NAME@ALIAS for the version that holds the alias now")
    p.add_argument("version", nargs="?", help="the version (not with NAME@ALIAS)")
    add_store_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_model_version)

    p = sub.add_parser("registry", help="watch the MLflow Model Registry: aliases of protected models")
    rsub = p.add_subparsers(dest="registry_command", required=True, metavar="SUBCOMMAND")
    g = rsub.add_parser(
        "guard",
        help="find aliases of protected models moved without a signed promotion (exit 1), and with --restore move them back",
        description="Verify every alias of the protected models (--model patterns, else the platform policy's match.models). "
        "Exit 0: all verified; 1: an alias moved or was set without a valid signed promotion (alert); 2: could not check. "
        "With --restore each broken alias goes back to the last version whose signed promotion verifies, or is deleted.",
    )
    g.add_argument(
        "--model",
        action="append",
        metavar="PATTERN",
        help="registered model name or shell pattern (repeatable; default: the platform policy's match.models)",
    )
    g.add_argument("--restore", action="store_true", help="move each broken alias back to its last verified holder, or delete it")
    add_store_options(g)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_registry_guard)
