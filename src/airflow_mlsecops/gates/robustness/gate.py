"""The robustness gate: measure a model on a data file and record the verdict with its evidence.

A runnable example (the inputs are local: fetch remote models and data first, see :func:`evaluate_robustness`):

>>> from airflow_mlsecops.gates.robustness import evaluate_robustness
>>> outcome = evaluate_robustness("model/", "test.csv", label_column="defaulted",
...                               epsilon=0.1, min_robust_accuracy=0.7)     # doctest: +SKIP
>>> outcome.verdict, outcome.result.details["method"]                     # doctest: +SKIP
(<Verdict.PASSED: 'passed'>, 'linear-exact')
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.gates.base import GateOutcome, raising, run_gate
from airflow_mlsecops.gates.robustness.art_attacks import art_version
from airflow_mlsecops.gates.robustness.evaluation import evaluate_model_on_data
from airflow_mlsecops.gates.robustness.options import ART_DISTRIBUTION, ATTACK_MAX_SAMPLES, GATE_NAME, NOISE_DRAWS, check_policy

if TYPE_CHECKING:
    from airflow_mlsecops.io.tabular import LoadedTable

# The policy entries check_policy validates (the others need no check).
_POLICY_CHECKED = (
    "label_column",
    "epsilon",
    "min_robust_accuracy",
    "max_accuracy_drop",
    "method",
    "max_samples",
    "norm",
    "epsilon_scale",
    "attack_max_samples",
)


def evaluate_robustness(
    model: str,
    data: str | Path | LoadedTable,
    *,
    label_column: str,
    epsilon: float,
    min_robust_accuracy: float,
    max_accuracy_drop: float | None = None,
    method: str = "auto",
    max_samples: int = 2000,
    feature_columns: Sequence[str] | None = None,
    norm: str = "inf",
    random_state: int = 0,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    epsilon_scale: str = "input",
    allow_bounds: bool = False,
    attack_max_samples: int = ATTACK_MAX_SAMPLES,
    max_iter: int | None = None,
    noise_draws: int = NOISE_DRAWS,
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    csv_delimiter: str | None = None,
    model_subject: str | None = None,
) -> GateOutcome:
    """Measure a classifier's accuracy under attack on a data file and reject it below a threshold.

    Run the model-scan gate before this one: this gate loads the model (see
    :func:`airflow_mlsecops.io.model_loader.load_model` for what it refuses to load) and judges its
    behaviour, not the safety of its file.

    :param model: the local path of an MLflow model directory (``sklearn`` flavor) or ``.skops`` file.
        Fetch an ``s3://``, ``runs:/`` or ``models:/`` URI first with :func:`airflow_mlsecops.io.artifacts.fetch`
        and pass the URI as ``model_subject``.
    :param data: a local CSV or Parquet file with the features and the label, or a table loaded
        already (:func:`airflow_mlsecops.io.locations.load_table_at` loads ``s3://``, ``runs:/`` and
        ``models:/`` files and names them by their URI).
    :param label_column: the column holding the true labels.
    :param epsilon: the attacker's budget: the radius of the L-inf (or L2) ball around each sample, in
        the model's input units (or in standard deviations with ``epsilon_scale="std"``).
    :param min_robust_accuracy: the least acceptable robust accuracy, between 0 and 1.
    :param max_accuracy_drop: the largest acceptable ``clean - robust`` accuracy, if any.
    :param method: one of :data:`METHODS`; ``auto`` picks the exact method for linear models.
    :param max_samples: evaluate at most this many rows, drawn at random (``random_state``).
    :param feature_columns: the model's input columns (default: the columns it was fitted on, else
        every column but the label).
    :param norm: ``inf`` or ``2``.
    :param random_state: seed of the row sample, the noise and ART.
    :param warn_only: report a rejection as ``warned`` instead of failing.
    :param context: the Airflow task running the gate.
    :param epsilon_scale: ``input`` (epsilon in input units) or ``std`` (in standard deviations of
        each feature, measured on the usable rows of ``data``).
    :param allow_bounds: accept a ``noise`` bound: the verdict is then ``warned`` (incomplete,
        finding ``robustness.not-measured-exactly``), never ``passed``; by default a bound is rejected.
    :param attack_max_samples: at most this many rows for ``hopskipjump`` and ``pgd`` (slow per sample).
    :param max_iter: iterations of ``pgd`` / ``hopskipjump`` (default 10).
    :param noise_draws: random perturbations tried per sample.
    :param trust_pickle: allow loading pickle-based models (they execute code when loaded).
    :param trusted_types: further types allowed in a skops file.
    :param csv_delimiter: delimiter of a CSV data file (default ``,``).
    :param model_subject: the name the model is attested under (default: its absolute path); the
        original URI when the caller fetched the model.
    """
    # What the policy records is what the evaluation judges by: one mapping serves both.
    judged: dict[str, Any] = {
        "label_column": label_column,
        "epsilon": epsilon,
        "min_robust_accuracy": min_robust_accuracy,
        "max_accuracy_drop": max_accuracy_drop,
        "method": method,
        "max_samples": max_samples,
        "feature_columns": feature_columns,
        "norm": norm,
        "random_state": random_state,
        "epsilon_scale": epsilon_scale,
        "allow_bounds": allow_bounds,
        "attack_max_samples": attack_max_samples,
    }
    policy = robustness_policy(**judged, trust_pickle=trust_pickle)
    evaluate = functools.partial(
        evaluate_model_on_data,
        model,
        data,
        **judged,
        max_iter=max_iter,
        noise_draws=noise_draws,
        trust_pickle=trust_pickle,
        trusted_types=trusted_types,
        csv_delimiter=csv_delimiter,
        model_subject=model_subject,
    )
    return run_gate(GATE_NAME, evaluate, policy=policy, warn_only=warn_only, distributions=_distributions(), context=context)


def robustness_policy(
    *,
    label_column: str,
    epsilon: float,
    min_robust_accuracy: float,
    max_accuracy_drop: float | None = None,
    method: str = "auto",
    max_samples: int = 2000,
    feature_columns: Sequence[str] | None = None,
    norm: str = "inf",
    random_state: int = 0,
    epsilon_scale: str = "input",
    allow_bounds: bool = False,
    attack_max_samples: int = ATTACK_MAX_SAMPLES,
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """The policy a robustness evaluation records (what the run-time policy check reads).

    The parameters are those of :func:`evaluate_robustness`.
    """
    policy: dict[str, Any] = {
        "epsilon": epsilon,
        "epsilon_scale": epsilon_scale,
        "norm": norm,
        "min_robust_accuracy": min_robust_accuracy,
        "max_accuracy_drop": max_accuracy_drop,
        "method": method,
        "allow_bounds": allow_bounds,
        "max_samples": max_samples,
        "attack_max_samples": attack_max_samples,
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
    """The error outcome of an evaluation whose model or data could not be fetched, recorded as the gate would record it.

    An invalid policy is reported first, as :func:`evaluate_robustness` does; otherwise ``error``
    becomes the gate's error verdict (never a pass).

    :param error: why the evaluation could not start (usually from :func:`airflow_mlsecops.io.artifacts.fetch`
        or :func:`airflow_mlsecops.io.locations.load_table_at`).
    :param policy: the evaluation's policy, from :func:`robustness_policy`.
    :param warn_only: as for :func:`evaluate_robustness` (an error is never downgraded to a warning).
    :param context: the Airflow task running the gate.
    """

    def check() -> None:
        check_policy(**{name: policy[name] for name in _POLICY_CHECKED})

    return run_gate(
        GATE_NAME,
        raising(error, check=check),
        policy=policy,
        warn_only=warn_only,
        distributions=_distributions(),
        context=context,
    )


def _distributions() -> list[str]:
    """The distributions whose versions the evidence records."""
    distributions = ["scikit-learn", "numpy", "skops"]
    if art_version() is not None:
        distributions.append(ART_DISTRIBUTION)
    return distributions
