"""The membership-inference gate: attack a model with its training rows and held-out rows, record the verdict.

>>> from airflow_mlsecops.gates.membership import evaluate_membership_inference
>>> outcome = evaluate_membership_inference("model/", "train.csv", "holdout.csv",
...                                         label_column="defaulted")          # doctest: +SKIP
>>> outcome.verdict, outcome.result.metrics["attack_auc"]                      # doctest: +SKIP
(<Verdict.PASSED: 'passed'>, 0.507)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.gates.base import GateOutcome, raising, run_gate
from airflow_mlsecops.gates.membership.evaluation import evaluate_membership_on_data
from airflow_mlsecops.gates.membership.options import (
    ATTACKS,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_ADVANTAGE,
    DEFAULT_MAX_ATTACK_AUC,
    DEFAULT_MAX_SAMPLES,
    DEFAULT_MIN_SAMPLES,
    GATE_NAME,
    check_policy,
    parse_attacks,
)

if TYPE_CHECKING:
    from airflow_mlsecops.io.tabular import LoadedTable

_DISTRIBUTIONS = ("scikit-learn", "numpy", "skops")


def evaluate_membership_inference(
    model: str,
    train: str | Path | LoadedTable,
    holdout: str | Path | LoadedTable,
    *,
    label_column: str,
    max_attack_auc: float = DEFAULT_MAX_ATTACK_AUC,
    max_advantage: float = DEFAULT_MAX_ADVANTAGE,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    attacks: Sequence[str] | str | None = None,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    random_state: int = 0,
    feature_columns: Sequence[str] | None = None,
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    model_subject: str | None = None,
) -> GateOutcome:
    """Measure how well black-box attacks tell the model's training rows from held-out rows; reject
    a model that leaks membership beyond the limits.

    The attacks (:mod:`airflow_mlsecops.gates.membership.attacks`) score a balanced sample of
    training and holdout rows; the gate reports each attack's ROC AUC and membership advantage
    (max TPR - FPR) with percentile bootstrap intervals, and rejects when the strongest attack's
    point estimate exceeds ``max_attack_auc`` or ``max_advantage`` (the evidence says whether the
    whole interval lies above). Fewer than ``min_samples`` usable rows on either side is a
    rejection: a missing or tiny holdout never passes.

    :param model: the local path of an MLflow model directory (``sklearn`` flavor) or ``.skops`` file
        (fetch remote ones first and pass the URI as ``model_subject``). It needs ``predict_proba``.
    :param train: the rows the model was trained on (a local CSV/Parquet file or a loaded table).
    :param holdout: rows from the same distribution the model never saw.
    :param label_column: the column with the true labels (in both files).
    :param max_attack_auc: the largest acceptable attack ROC AUC (0.5 = chance), between 0.5 and 1.
    :param max_advantage: the largest acceptable membership advantage, between 0 and 1.
    :param min_samples: the fewest training and holdout rows (each) the attacks may use.
    :param max_samples: at most this many rows per side, drawn at random (``random_state``).
    :param attacks: a subset of :data:`ATTACKS` (default: all); ``calibrated-loss`` fits one
        reference model (a clone of the target) on half of the holdout.
    :param bootstrap: bootstrap rounds of the confidence intervals (seeded by ``random_state``).
    :param random_state: seed of the row sample, the holdout split and the bootstrap.
    :param feature_columns: the model's input columns (default: those it was fitted on, else every column but the label).
    :param trust_pickle: allow loading pickle-based models (they execute code when loaded).
    :param trusted_types: further types allowed in a skops file.
    :param warn_only: report a rejection as ``warned``.
    :param context: the Airflow task running the gate.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    :param model_subject: the name the model is attested under (default: its absolute path).
    """
    judged: dict[str, Any] = {
        "label_column": label_column,
        "max_attack_auc": max_attack_auc,
        "max_advantage": max_advantage,
        "min_samples": min_samples,
        "max_samples": max_samples,
        "attacks": list(ATTACKS) if attacks is None else attacks,
        "bootstrap": bootstrap,
    }
    policy = membership_policy(**judged, random_state=random_state, trust_pickle=trust_pickle, feature_columns=feature_columns)
    evaluate = functools.partial(
        evaluate_membership_on_data,
        model,
        train,
        holdout,
        **judged,
        random_state=random_state,
        feature_columns=feature_columns,
        trust_pickle=trust_pickle,
        trusted_types=trusted_types,
        csv_delimiter=csv_delimiter,
        model_subject=model_subject,
    )
    return run_gate(GATE_NAME, evaluate, policy=policy, warn_only=warn_only, distributions=_DISTRIBUTIONS, context=context)


def membership_policy(
    *,
    label_column: str,
    max_attack_auc: float = DEFAULT_MAX_ATTACK_AUC,
    max_advantage: float = DEFAULT_MAX_ADVANTAGE,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    attacks: Sequence[str] | str | None = None,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    random_state: int = 0,
    trust_pickle: bool = False,
    feature_columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The policy a membership-inference evaluation records (what the run-time policy check reads)."""
    try:
        names = list(parse_attacks(attacks))
    except Exception:  # noqa: BLE001 - recorded as given; the evaluation reports the bad value
        names = [str(attacks)]
    policy: dict[str, Any] = {
        "max_attack_auc": max_attack_auc,
        "max_advantage": max_advantage,
        "min_samples": min_samples,
        "max_samples": max_samples,
        "attacks": names,
        "bootstrap": bootstrap,
        "random_state": random_state,
        "label_column": label_column,
        "trust_pickle": trust_pickle,  # loading a pickle-based model runs code from the file
    }
    if feature_columns is not None:
        policy["feature_columns"] = [str(c) for c in feature_columns]
    return policy


def inputs_unavailable(
    error: BaseException, *, policy: Mapping[str, Any], warn_only: bool = False, context: PipelineContext | None = None
) -> GateOutcome:
    """The error outcome of an evaluation whose model or files could not be fetched (never a pass);
    an invalid policy is reported first, as :func:`evaluate_membership_inference` does."""

    def check() -> None:
        check_policy(
            label_column=policy["label_column"],
            max_attack_auc=policy["max_attack_auc"],
            max_advantage=policy["max_advantage"],
            min_samples=policy["min_samples"],
            max_samples=policy["max_samples"],
            attacks=policy["attacks"],
            bootstrap=policy["bootstrap"],
        )

    return run_gate(
        GATE_NAME, raising(error, check=check), policy=policy, warn_only=warn_only, distributions=_DISTRIBUTIONS, context=context
    )
