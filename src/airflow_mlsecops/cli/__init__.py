"""``mlsecops``: run gates, verify evidence, manage keys, run the demo.

Exit codes, the same for every command: ``0`` passed / verified, ``1`` a gate rejected its input or
evidence failed verification, ``2`` the command could not run (bad arguments, missing key,
unreachable store). Errors print one clear line; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from airflow_mlsecops.cli._common import EXIT_ERROR, EXIT_REJECTED
from airflow_mlsecops.exceptions import GateRejected, MLSecOpsError, VerificationError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlsecops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", "-v", action="store_true", help="show tracebacks and passing findings")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Each command group lives in its own module; the order here is the order of ``--help``.
    from airflow_mlsecops.cli.airflow import add_airflow_parser
    from airflow_mlsecops.cli.approval import add_approval_parsers
    from airflow_mlsecops.cli.demo import add_demo_parser
    from airflow_mlsecops.cli.encrypted import add_parsers as add_encrypted_parsers
    from airflow_mlsecops.cli.evidence import add_evidence_parsers, add_verify_artifact_parser
    from airflow_mlsecops.cli.gate import add_gate_parsers
    from airflow_mlsecops.cli.keys import add_key_parsers
    from airflow_mlsecops.cli.policy import add_policy_parser
    from airflow_mlsecops.cli.registry import add_registry_parsers
    from airflow_mlsecops.cli.report import add_report_parser
    from airflow_mlsecops.cli.signing import add_signing_parsers

    add_evidence_parsers(sub)
    add_gate_parsers(sub)
    add_verify_artifact_parser(sub)
    add_signing_parsers(sub)
    add_key_parsers(sub)
    add_approval_parsers(sub)
    add_registry_parsers(sub)
    add_report_parser(sub)
    add_policy_parser(sub)
    add_encrypted_parsers(sub)
    add_demo_parser(sub)
    add_airflow_parser(sub)
    return parser


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("airflow-mlsecops")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _quiet_libraries() -> None:
    """Keep MLflow's and alembic's INFO lines (``Creating initial MLflow database tables...``) off the
    CLI's stderr, where they would bury the one line that matters; ``--verbose`` keeps them."""
    import logging
    import os

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is first imported
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from airflow_mlsecops.config import pin_platform_environment

    pin_platform_environment()  # what the CLI was started with; nothing it loads (a DAG file) may change it
    if not args.verbose:
        _quiet_libraries()
    try:
        return int(args.func(args))
    except (VerificationError, GateRejected) as exc:
        print(f"mlsecops: {exc}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_REJECTED
    except MLSecOpsError as exc:
        print(f"mlsecops: error: {exc}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mlsecops: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - never a bare traceback for the user; never a pass
        print(f"mlsecops: internal error ({type(exc).__name__}: {exc}); rerun with --verbose for details", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_ERROR
