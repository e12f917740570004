"""``mlsecops report``: one self-contained HTML audit report of a model's or a run's evidence.

    mlsecops report credit@champion -o report.html
    mlsecops report credit 3 -o report.html
    mlsecops report --mlflow-run-id 3f2a... -o report.html

The evidence is re-verified while the report is made. Exit 0: written and verified; 1: written, but
the evidence does NOT verify (the report says so at the top); 2: nothing written (unknown model,
version or run, unreachable store, unwritable file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, EXIT_REJECTED, add_store_options, apply_store_options
from airflow_mlsecops.exceptions import ConfigurationError


def _version_of(store: Any, name: str, alias: str | None, version: str | None) -> Any:
    """The registered version named by ``NAME@ALIAS`` or ``NAME VERSION`` (``ConfigurationError`` when unknown)."""
    client = store.client
    what = f"{name}@{alias}" if alias else f"{name} version {version}"
    try:
        with store.errors(f"cannot read registered model {name!r}"):
            client.get_registered_model(name)
    except ConfigurationError as exc:
        raise ConfigurationError(f"unknown registered model {name!r} ({exc})") from exc
    try:
        with store.errors(f"cannot read {what}"):
            return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, str(version))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{what} does not exist ({exc})") from exc


def cmd_report(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.model_registry import TAG_PIPELINE_RUN_ID
    from airflow_mlsecops.review.html import render_html
    from airflow_mlsecops.review.view import ModelReview, model_review, run_review

    settings = Settings.from_env()
    ledger = settings.ledger_url
    if ledger.startswith("sqlite:///") and not Path(ledger[len("sqlite:///") :]).exists():
        raise ConfigurationError(f"no evidence ledger at {ledger}; set MLSECOPS_LEDGER_URL or --ledger-url")
    store = MLflowEvidenceStore.from_settings(settings)
    model: ModelReview | None = None
    model_uri = None
    title = None
    if args.mlflow_run_id:
        if args.model:
            raise ConfigurationError("give NAME@ALIAS, NAME VERSION or --mlflow-run-id, not both")
        run_id = str(args.mlflow_run_id)
        title = f"Evidence of MLflow run {run_id}"
    else:
        if not args.model:
            raise ConfigurationError("give the model (NAME@ALIAS or NAME VERSION) or --mlflow-run-id RUN")
        name, at, alias = str(args.model).partition("@")
        if at and args.version is not None:
            raise ConfigurationError(f"give NAME@ALIAS or NAME VERSION, not both ({args.model} {args.version})")
        if not at and args.version is None:
            raise ConfigurationError("give the version (NAME VERSION) or an alias (NAME@ALIAS)")
        if not name or (at and not alias):
            raise ConfigurationError(f"{args.model!r} is not NAME@ALIAS")
        version = _version_of(store, name, alias or None, args.version)
        run = dict(version.tags or {}).get(TAG_PIPELINE_RUN_ID)
        if not run:
            raise ConfigurationError(
                f"{name} version {version.version} names no pipeline run (tag {TAG_PIPELINE_RUN_ID}): "
                "it was not registered through the registration gate, so there is no evidence to report"
            )
        run_id = str(run)
        model_uri = f"models:/{name}/{version.version}"
        model = model_review(name, settings=settings, store=store)
        title = f"Audit report: {name} version {version.version}" + (f" (@{alias})" if alias else "")
    review = run_review(run_id, settings=settings, store=store, model_uri=model_uri, compare_alias=args.compare_alias)
    page = render_html(review, title=title, model=model)
    output = Path(args.output)
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write the report to {output}: {exc}") from exc
    gates = len(review.gates)
    if review.verified:
        print(f"VERIFIED: {gates} gate(s), {review.checks.get('ok', 0)} checks passed; report written to {output}")
        return EXIT_OK
    print(f"NOT VERIFIED: {len(review.failures)} check(s) failed; report written to {output}")
    for failure in review.failures:
        print(f"  - {failure['scope']}: {failure['check']}: {failure['detail']}")
    return EXIT_REJECTED


def add_report_parser(sub: Any) -> None:
    """Add ``report``."""
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML audit report (opens offline) of a model's or a run's evidence",
        description="Re-verify the evidence and write it as one HTML file: the verification result, every gate "
        "with its metrics and findings, the approvals, the digests and the keys that signed them. "
        "Exit 0: verified; 1: written but NOT VERIFIED; 2: nothing written.",
    )
    p.add_argument("model", nargs="?", help="NAME@ALIAS, or NAME followed by VERSION")
    p.add_argument("version", nargs="?", help="the registered version (not with NAME@ALIAS)")
    p.add_argument("--mlflow-run-id", help="report the evidence of this MLflow run instead of a registered model")
    p.add_argument("-o", "--output", required=True, help="the HTML file to write")
    p.add_argument("--compare-alias", help="compare with the version that holds this alias (e.g. champion)")
    add_store_options(p)
    p.set_defaults(func=cmd_report)
