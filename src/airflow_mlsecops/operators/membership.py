"""``MembershipInferenceGateOperator`` and ``TrainingPrivacyGateOperator``: what a model leaks about
its training rows, measured and declared."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.gates.membership.options import (  # imports no numpy/sklearn
    ATTACKS,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_ADVANTAGE,
    DEFAULT_MAX_ATTACK_AUC,
    DEFAULT_MAX_SAMPLES,
    DEFAULT_MIN_SAMPLES,
)
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome


class MembershipInferenceGateOperator(BaseGateOperator):
    """Attack a classifier with its training rows and rows it never saw; reject it when the attack
    tells them apart too well.

    .. code-block:: python

        MembershipInferenceGateOperator(
            task_id="check_membership_inference",
            model="{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}",
            train="{{ ti.xcom_pull(task_ids='train_model')['train'] }}",
            holdout="{{ ti.xcom_pull(task_ids='train_model')['holdout'] }}",
            label_column="defaulted",
            max_attack_auc=0.6,
            max_advantage=0.1,
        )

    Three black-box attacks (loss threshold, confidence threshold, difficulty-calibrated loss; see
    :mod:`airflow_mlsecops.gates.membership.attacks`) score a balanced random sample of training and
    holdout rows. The evidence records each attack's ROC AUC and membership advantage with bootstrap
    intervals (fixed seed), the sample sizes, and ``membership_report.json``; the subjects are the
    model's and both files' digests. A holdout that is the training file, or shares more than 1% of
    its rows with it, is an error; fewer than ``min_samples`` usable rows on either side is a rejection.
    Run the model-scan gate first: this operator loads the model (skops with scikit-learn's trusted
    types; pickles only with ``trust_pickle=True``).

    :param model: an MLflow model directory (``sklearn`` flavor) or ``.skops`` file: a local path or an
        ``s3://``, ``runs:/`` or ``models:/`` URI. (templated)
    :param train: the CSV or Parquet file the model was trained on (local, ``s3://``, ``runs:/``). (templated)
    :param holdout: rows of the same distribution the model never saw. (templated)
    :param label_column: the column with the true labels. (templated)
    :param max_attack_auc: reject when the strongest attack's ROC AUC exceeds this (0.5-1, default 0.6).
    :param max_advantage: reject when the membership advantage exceeds this (0-1, default 0.1).
    :param min_samples: the fewest usable rows per side (default 500).
    :param max_samples: at most this many rows per side, drawn at random (default 10,000).
    :param attacks: a subset of ``loss``, ``confidence``, ``calibrated-loss`` (default: all).
    :param bootstrap: bootstrap rounds of the intervals (default 200).
    :param random_state: seed of the sample, the holdout split and the bootstrap.
    :param feature_columns: the model's input columns (default: those it was fitted on).
    :param trust_pickle: allow pickle-based models (loading them executes code from the file).
    :param trusted_types: further types allowed in a skops file.
    :param csv_delimiter: delimiter of CSV files (default ``,``).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "model", "train", "holdout", "label_column")
    gate_name: ClassVar[str] = gate_names.MEMBERSHIP_INFERENCE

    def __init__(
        self,
        *,
        model: str | Path,
        train: str | Path,
        holdout: str | Path,
        label_column: str,
        max_attack_auc: float = DEFAULT_MAX_ATTACK_AUC,
        max_advantage: float = DEFAULT_MAX_ADVANTAGE,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        attacks: Sequence[str] | None = None,
        bootstrap: int = DEFAULT_BOOTSTRAP,
        random_state: int = 0,
        feature_columns: Sequence[str] | None = None,
        trust_pickle: bool = False,
        trusted_types: Sequence[str] = (),
        csv_delimiter: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = self.task_id
        for name, value in (("model", model), ("train", train), ("holdout", holdout)):
            if not value:
                raise ValueError(f"{task}: {name} is required")
        if not label_column or not isinstance(label_column, str):
            raise ValueError(f"{task}: label_column is required")
        if not _is_number(max_attack_auc) or not 0.5 <= max_attack_auc <= 1:
            raise ValueError(f"{task}: max_attack_auc must be between 0.5 and 1, not {max_attack_auc!r}")
        if not _is_number(max_advantage) or not 0 <= max_advantage <= 1:
            raise ValueError(f"{task}: max_advantage must be between 0 and 1, not {max_advantage!r}")
        for count, number, least in (
            ("min_samples", min_samples, 20),
            ("max_samples", max_samples, 1),
            ("bootstrap", bootstrap, 20),
        ):
            if isinstance(number, bool) or not isinstance(number, int) or number < least:
                raise ValueError(f"{task}: {count} must be an integer of at least {least}, not {number!r}")
        if max_samples < min_samples:
            raise ValueError(f"{task}: max_samples ({max_samples}) is below min_samples ({min_samples})")
        chosen = list(ATTACKS) if attacks is None else ([attacks] if isinstance(attacks, str) else list(attacks))
        unknown = [a for a in chosen if a not in ATTACKS]
        if unknown or not chosen:
            raise ValueError(f"{task}: attacks must be among {', '.join(ATTACKS)}, not {chosen!r}")
        self.require_flags(trust_pickle=trust_pickle)
        self.model = str(model) if isinstance(model, Path) else model
        self.train = str(train) if isinstance(train, Path) else train
        self.holdout = str(holdout) if isinstance(holdout, Path) else holdout
        self.label_column = label_column
        self.max_attack_auc = float(max_attack_auc)
        self.max_advantage = float(max_advantage)
        self.min_samples = min_samples
        self.max_samples = max_samples
        self.attacks = chosen
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.trust_pickle = trust_pickle
        self.trusted_types = [trusted_types] if isinstance(trusted_types, str) else list(trusted_types)
        self.csv_delimiter = csv_delimiter

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.membership import evaluate_membership_inference, inputs_unavailable, membership_policy
        from airflow_mlsecops.io.artifacts import subject_name

        options: dict[str, Any] = {
            "label_column": str(self.label_column),
            "max_attack_auc": self.max_attack_auc,
            "max_advantage": self.max_advantage,
            "min_samples": self.min_samples,
            "max_samples": self.max_samples,
            "attacks": self.attacks,
            "bootstrap": self.bootstrap,
            "random_state": self.random_state,
            "feature_columns": self.feature_columns,
        }
        model = str(self.model)
        with tempfile.TemporaryDirectory(prefix="mlsecops-membership-") as tmp:
            try:
                local = self.fetch_input(model, Path(tmp, "model"))
                train = self.load_input_table(self.train, csv_delimiter=self.csv_delimiter)
                holdout = self.load_input_table(self.holdout, csv_delimiter=self.csv_delimiter)
            except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
                return inputs_unavailable(
                    exc,
                    policy=membership_policy(**options, trust_pickle=self.trust_pickle),
                    warn_only=self.warn_only,
                    context=pipeline,
                )
            return evaluate_membership_inference(
                str(local),
                train,
                holdout,
                **options,
                trust_pickle=self.trust_pickle,
                trusted_types=self.trusted_types,
                warn_only=self.warn_only,
                context=pipeline,
                csv_delimiter=self.csv_delimiter,
                model_subject=subject_name(model),
            )


class TrainingPrivacyGateOperator(BaseGateOperator):
    """Check the differential-privacy guarantee a training run declares against the policy for
    sensitive data.

    .. code-block:: python

        TrainingPrivacyGateOperator(
            task_id="check_training_privacy",
            model="{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}",
            training_run_id="{{ ti.xcom_pull(task_ids='train_model')['mlflow_run_id'] }}",
            training_data=["{{ ti.xcom_pull(task_ids='ingest') }}"],
        )

    The run declares its guarantee with the ``mlsecops.dp.*`` tags
    (:func:`airflow_mlsecops.gates.membership.training_privacy.declare_dp_guarantee`). The platform
    policy's ``sensitive_data`` entry matching ``training_data`` (by name pattern, or ``sha256:``
    digest of a local file) sets ``max_epsilon`` / ``max_delta``; this task's own limits apply to any
    data, and the stricter wins. A model trained on data with a requirement is rejected when the run
    declares no guarantee, an unreadable one, or a weaker one; data not marked sensitive (and no limit
    here) passes with a note. An unreadable run or model is an error, never a pass.

    :param model: the model the run produced (its digest is the evidence's subject): local path or
        ``s3://``, ``runs:/``, ``models:/`` URI. (templated)
    :param training_run_id: the MLflow run that trained it (default: the run of a ``runs:/`` model URI). (templated)
    :param training_data: the files the model was trained on (paths or URIs). (templated)
    :param max_epsilon: this task's limit on the declared epsilon, for any data.
    :param max_delta: this task's limit on the declared delta.
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "model", "training_run_id", "training_data")
    gate_name: ClassVar[str] = gate_names.TRAINING_PRIVACY

    def __init__(
        self,
        *,
        model: str | Path,
        training_data: Sequence[str | Path] | str,
        training_run_id: str | None = None,
        max_epsilon: float | None = None,
        max_delta: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = self.task_id
        if not model:
            raise ValueError(f"{task}: model is required")
        data = [training_data] if isinstance(training_data, (str, Path)) else list(training_data or ())
        if not data or not all(data):
            raise ValueError(f"{task}: training_data must name the files the model was trained on")
        for name, value in (("max_epsilon", max_epsilon), ("max_delta", max_delta)):
            if value is not None and (not _is_number(value) or value < 0):
                raise ValueError(f"{task}: {name} must be a finite number >= 0, not {value!r}")
        self.model = str(model) if isinstance(model, Path) else model
        self.training_run_id = training_run_id
        self.training_data = [str(d) for d in data]
        self.max_epsilon = None if max_epsilon is None else float(max_epsilon)
        self.max_delta = None if max_delta is None else float(max_delta)

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.evidence.digest import sha256_path
        from airflow_mlsecops.evidence.models import Subject
        from airflow_mlsecops.exceptions import GateError
        from airflow_mlsecops.gates.membership.training_privacy import (
            check_training_privacy,
            read_declaration,
            training_privacy_unavailable,
        )
        from airflow_mlsecops.io.artifacts import subject_name
        from airflow_mlsecops.io.locations import is_remote
        from airflow_mlsecops.policy.model import load_configured_policy

        model = str(self.model)
        limits = {"max_epsilon": self.max_epsilon, "max_delta": self.max_delta}
        with tempfile.TemporaryDirectory(prefix="mlsecops-training-privacy-") as tmp:
            try:
                run_id = self.training_run_id or _run_of(model)
                if not run_id:
                    raise GateError(f"training_run_id is required: {model} names no MLflow run")
                declared = read_declaration(self._input_store(), str(run_id))
                model_subject = Subject(subject_name(model), sha256_path(self.fetch_input(model, Path(tmp, "model"))))
                subjects = [
                    Subject(subject_name(d), sha256_path(d)) for d in self.training_data if not is_remote(d) and Path(d).is_file()
                ]
                policy = load_configured_policy()  # apply_policy already failed the task if it is broken
            except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
                return training_privacy_unavailable(exc, **limits, warn_only=self.warn_only, context=pipeline)
            return check_training_privacy(
                declared,
                training_run_id=str(run_id),
                model=model_subject,
                training_data=[subject_name(d) if not is_remote(d) else d for d in self.training_data],
                training_data_sha256=[s.sha256 for s in subjects],
                training_subjects=subjects,
                sensitive_entries=None if policy is None else policy.sensitive_data,
                **limits,
                warn_only=self.warn_only,
                context=pipeline,
            )


def _run_of(model: str) -> str | None:
    """The run id of a ``runs:/<run id>/...`` URI."""
    if model.startswith("runs:/"):
        return model.removeprefix("runs:/").split("/", 1)[0] or None
    return None


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
