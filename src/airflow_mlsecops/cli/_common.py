"""What every ``mlsecops`` command shares: exit codes, JSON output, the store options."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def apply_store_options(args: argparse.Namespace) -> None:
    if getattr(args, "tracking_uri", None):
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    if getattr(args, "ledger_url", None):
        os.environ["MLSECOPS_LEDGER_URL"] = args.ledger_url
    if getattr(args, "trusted_key", None):
        os.environ["MLSECOPS_TRUSTED_KEYS"] = os.pathsep.join(args.trusted_key)
    from airflow_mlsecops.config import pin_platform_environment

    pin_platform_environment()  # the flags are the platform's settings for this command
    # A CLI user wants a clear answer about an unreachable server, not minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or the embedded SQLite store)")
    parser.add_argument("--ledger-url", help="SQLAlchemy URL of the evidence ledger (default: $MLSECOPS_LEDGER_URL)")


def mlsecops_command() -> str:
    """How to call this CLI again: ``mlsecops`` when it is on PATH, else its full path (a venv)."""
    import shutil

    found = shutil.which("mlsecops")
    local = Path(sys.executable).with_name("mlsecops")
    if found and Path(found).resolve() == local.resolve():
        return "mlsecops"
    return str(local) if local.exists() else "mlsecops"
