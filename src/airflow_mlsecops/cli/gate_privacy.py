"""``mlsecops gate membership-inference`` and ``mlsecops gate training-privacy``: the privacy gates outside Airflow.

.. code-block:: console

    $ mlsecops gate membership-inference --model model/ --train train.csv --holdout holdout.csv --label-column defaulted
    membership-inference: PASSED - membership inference: attack AUC 0.519 (calibrated-loss), advantage 0.063 ...
    $ mlsecops gate training-privacy --model model/ --run-id 3f2a... --training-data data/loans.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import apply_store_options
from airflow_mlsecops.cli.gate import _add_gate_output, _split_list, finish_gate


def cmd_gate_membership_inference(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.membership import evaluate_membership_inference, inputs_unavailable, membership_policy
    from airflow_mlsecops.io.artifacts import fetch, subject_name
    from airflow_mlsecops.io.locations import load_table_at

    options: dict[str, Any] = {
        "label_column": args.label_column,
        "max_attack_auc": args.max_attack_auc,
        "max_advantage": args.max_advantage,
        "min_samples": args.min_samples,
        "max_samples": args.max_samples,
        "attacks": _split_list(args.attacks),
        "bootstrap": args.bootstrap,
        "random_state": args.seed,
    }
    with tempfile.TemporaryDirectory(prefix="mlsecops-membership-") as tmp:
        try:
            local = fetch(args.model, Path(tmp, "model"))
            train = load_table_at(args.train, csv_delimiter=args.delimiter)
            holdout = load_table_at(args.holdout, csv_delimiter=args.delimiter)
        except Exception as exc:  # noqa: BLE001 - inputs that cannot be fetched are an error verdict, never a pass
            policy = membership_policy(**options, trust_pickle=args.trust_pickle)
            return finish_gate(args, inputs_unavailable(exc, policy=policy, warn_only=args.warn_only))
        outcome = evaluate_membership_inference(
            str(local),
            train,
            holdout,
            **options,
            trust_pickle=args.trust_pickle,
            warn_only=args.warn_only,
            csv_delimiter=args.delimiter,
            model_subject=subject_name(args.model),
        )
        return finish_gate(args, outcome)


def cmd_gate_training_privacy(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.digest import sha256_path
    from airflow_mlsecops.evidence.models import Subject
    from airflow_mlsecops.gates.membership.training_privacy import (
        check_training_privacy,
        read_declaration,
        training_privacy_unavailable,
    )
    from airflow_mlsecops.io.artifacts import fetch, subject_name
    from airflow_mlsecops.io.locations import is_remote
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.policy.model import load_configured_policy, load_policy

    limits = {"max_epsilon": args.max_epsilon, "max_delta": args.max_delta}
    data = [d for item in args.training_data for d in _split_list(item) or []]
    with tempfile.TemporaryDirectory(prefix="mlsecops-training-privacy-") as tmp:
        try:
            store = MLflowEvidenceStore.from_settings(Settings.from_env())
            declared = read_declaration(store, args.run_id)
            model = Subject(subject_name(args.model), sha256_path(fetch(args.model, Path(tmp, "model"), store)))
            subjects = [Subject(subject_name(d), sha256_path(d)) for d in data if not is_remote(d) and Path(d).is_file()]
            policy = load_policy(args.policy) if args.policy else load_configured_policy()
        except Exception as exc:  # noqa: BLE001 - an unreadable run or model is an error verdict, never a pass
            return finish_gate(args, training_privacy_unavailable(exc, **limits, warn_only=args.warn_only))
        outcome = check_training_privacy(
            declared,
            training_run_id=args.run_id,
            model=model,
            training_data=[d if is_remote(d) else subject_name(d) for d in data],
            training_data_sha256=[s.sha256 for s in subjects],
            training_subjects=subjects,
            sensitive_entries=None if policy is None else policy.sensitive_data,
            **limits,
            warn_only=args.warn_only,
        )
        return finish_gate(args, outcome)


def add_privacy_gate_parsers(gsub: Any) -> None:
    """Add ``gate membership-inference`` and ``gate training-privacy`` to the ``gate`` subcommands."""
    from airflow_mlsecops.gates.membership.options import (
        DEFAULT_BOOTSTRAP,
        DEFAULT_MAX_ADVANTAGE,
        DEFAULT_MAX_ATTACK_AUC,
        DEFAULT_MAX_SAMPLES,
        DEFAULT_MIN_SAMPLES,
    )

    gp = gsub.add_parser(
        "membership-inference", help="how well black-box attacks tell training rows from held-out rows (privacy leakage)"
    )
    gp.add_argument("--model", required=True, help="MLflow model directory, .skops file or URI (needs predict_proba)")
    gp.add_argument("--train", required=True, help="the rows the model was trained on (CSV/Parquet, local, s3://, runs:/)")
    gp.add_argument("--holdout", required=True, help="rows of the same distribution the model never saw")
    gp.add_argument("--label-column", required=True)
    gp.add_argument(
        "--max-attack-auc",
        type=float,
        default=DEFAULT_MAX_ATTACK_AUC,
        help=f"reject above this attack ROC AUC (default {DEFAULT_MAX_ATTACK_AUC})",
    )
    gp.add_argument(
        "--max-advantage",
        type=float,
        default=DEFAULT_MAX_ADVANTAGE,
        help=f"reject above this membership advantage, max TPR-FPR (default {DEFAULT_MAX_ADVANTAGE})",
    )
    gp.add_argument(
        "--min-samples", type=int, default=DEFAULT_MIN_SAMPLES, help=f"fewest rows per side (default {DEFAULT_MIN_SAMPLES})"
    )
    gp.add_argument(
        "--max-samples", type=int, default=DEFAULT_MAX_SAMPLES, help=f"most rows per side (default {DEFAULT_MAX_SAMPLES})"
    )
    gp.add_argument("--attacks", help="comma-separated: loss, confidence, calibrated-loss (default: all)")
    gp.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help=f"bootstrap rounds (default {DEFAULT_BOOTSTRAP})")
    gp.add_argument("--seed", type=int, default=0, help="seed of the sample, the holdout split and the bootstrap (default 0)")
    gp.add_argument("--trust-pickle", action="store_true", help="allow a pickle-based model (loading it runs code)")
    gp.add_argument("--delimiter", help="CSV delimiter (default ',')")
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_membership_inference)

    gp = gsub.add_parser(
        "training-privacy", help="the DP guarantee a training run declares, against the policy for sensitive data"
    )
    gp.add_argument("--model", required=True, help="the model the run produced (its digest is the subject)")
    gp.add_argument("--run-id", required=True, help="the MLflow run that trained the model (its mlsecops.dp.* tags are read)")
    gp.add_argument(
        "--training-data", action="append", required=True, metavar="PATH", help="a file the model was trained on (repeatable)"
    )
    gp.add_argument("--policy", help="policy file with a sensitive_data section (default: the configured policy)")
    gp.add_argument("--max-epsilon", type=float, help="reject a declared epsilon above this, for any data")
    gp.add_argument("--max-delta", type=float, help="reject a declared delta above this, for any data")
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_training_privacy)
