"""``RobustnessGateOperator``: reject a model whose accuracy under a bounded input attack is too low."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.gates.robustness import ATTACK_MAX_SAMPLES, EPSILON_SCALES, METHODS, NORMS  # imports no numpy/sklearn
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome


class RobustnessGateOperator(BaseGateOperator):
    """Measure a classifier's accuracy under attack on a data set; reject it below a threshold.

    Run the model-scan gate before this one: this operator loads the model (skops with
    scikit-learn's own trusted types; pickles only with ``trust_pickle=True``) and judges its
    behaviour, not the safety of its file. See :mod:`airflow_mlsecops.gates.robustness` for the
    methods and what their numbers mean.

    .. code-block:: python

        RobustnessGateOperator(
            task_id="robustness",
            model="{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}",
            data="{{ ti.xcom_pull(task_ids='ingest') }}",
            label_column="defaulted",
            epsilon=0.1,
            min_robust_accuracy=0.7,
        )

    The evidence says which method produced the number and whether it is ``exact``, an ``attack``
    (an upper bound on robust accuracy) or a noise ``bound`` (which only passes with
    ``allow_bounds=True``), and holds ``robustness_report.json``.

    :param model: an MLflow model directory with the ``sklearn`` flavor or a ``.skops`` file: a local
        path or an ``s3://``, ``runs:/`` or ``models:/`` URI (fetched from the pipeline's MLflow
        store). (templated)
    :param data: the CSV or Parquet file with the features and the label: local path, ``s3://``
        object, or ``runs:/`` / ``models:/`` URI (loaded first, through the evidence hook's MLflow
        store). (templated)
    :param label_column: the column with the true labels. (templated)
    :param epsilon: the attacker's budget per sample, in the model's input units (or standard
        deviations with ``epsilon_scale="std"``); must be positive.
    :param min_robust_accuracy: the least acceptable robust accuracy, between 0 and 1.
    :param max_accuracy_drop: the largest acceptable clean minus robust accuracy, if any.
    :param method: ``auto`` (default), ``linear-exact``, ``noise``, ``fgsm``, ``pgd`` or ``hopskipjump``.
    :param max_samples: evaluate at most this many rows (drawn at random with ``random_state``).
    :param feature_columns: the model's input columns (default: those it was fitted on).
    :param norm: ``inf`` (default) or ``2``.
    :param epsilon_scale: ``input`` (default) or ``std``.
    :param allow_bounds: let a noise bound pass the gate.
    :param attack_max_samples: at most this many rows for ``hopskipjump`` and ``pgd``.
    :param trust_pickle: allow pickle-based models (loading them executes code from the file).
    :param trusted_types: further types allowed in a skops file.
    :param random_state: seed of the row sample, the noise and the attacks.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "model", "data", "label_column")
    gate_name: ClassVar[str] = gate_names.ROBUSTNESS

    def __init__(
        self,
        *,
        model: str | Path,
        data: str | Path,
        label_column: str,
        epsilon: float,
        min_robust_accuracy: float,
        max_accuracy_drop: float | None = None,
        method: str = "auto",
        max_samples: int = 2000,
        feature_columns: Sequence[str] | None = None,
        norm: str = "inf",
        epsilon_scale: str = "input",
        allow_bounds: bool = False,
        attack_max_samples: int = ATTACK_MAX_SAMPLES,
        trust_pickle: bool = False,
        trusted_types: Sequence[str] = (),
        random_state: int = 0,
        csv_delimiter: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = self.task_id
        if not model:
            raise ValueError(f"{task}: model is required")
        if not data:
            raise ValueError(f"{task}: data is required")
        if not label_column or not isinstance(label_column, str):
            raise ValueError(f"{task}: label_column is required")
        if not _is_number(epsilon) or not epsilon > 0:
            raise ValueError(f"{task}: epsilon must be a positive number, not {epsilon!r}")
        if not _is_number(min_robust_accuracy) or not 0 <= min_robust_accuracy <= 1:
            raise ValueError(f"{task}: min_robust_accuracy must be between 0 and 1, not {min_robust_accuracy!r}")
        if max_accuracy_drop is not None and (not _is_number(max_accuracy_drop) or not 0 <= max_accuracy_drop <= 1):
            raise ValueError(f"{task}: max_accuracy_drop must be between 0 and 1, not {max_accuracy_drop!r}")
        if method not in METHODS:
            raise ValueError(f"{task}: method must be one of {', '.join(METHODS)}, not {method!r}")
        if norm not in NORMS:
            raise ValueError(f"{task}: norm must be one of {', '.join(NORMS)}, not {norm!r}")
        if epsilon_scale not in EPSILON_SCALES:
            raise ValueError(f"{task}: epsilon_scale must be one of {', '.join(EPSILON_SCALES)}, not {epsilon_scale!r}")
        for name, value in (("max_samples", max_samples), ("attack_max_samples", attack_max_samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{task}: {name} must be a positive integer, not {value!r}")
        self.require_flags(allow_bounds=allow_bounds, trust_pickle=trust_pickle)
        self.model = str(model) if isinstance(model, Path) else model
        self.data = str(data) if isinstance(data, Path) else data
        self.label_column = label_column
        self.epsilon = float(epsilon)
        self.min_robust_accuracy = float(min_robust_accuracy)
        self.max_accuracy_drop = None if max_accuracy_drop is None else float(max_accuracy_drop)
        self.method = method
        self.max_samples = max_samples
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.norm = norm
        self.epsilon_scale = epsilon_scale
        self.allow_bounds = allow_bounds
        self.attack_max_samples = attack_max_samples
        self.trust_pickle = trust_pickle
        self.trusted_types = [trusted_types] if isinstance(trusted_types, str) else list(trusted_types)
        self.random_state = random_state
        self.csv_delimiter = csv_delimiter

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        import tempfile

        from airflow_mlsecops.gates.robustness import evaluate_robustness, inputs_unavailable, robustness_policy
        from airflow_mlsecops.io.artifacts import subject_name

        options: dict[str, Any] = {
            "label_column": str(self.label_column),
            "epsilon": self.epsilon,
            "min_robust_accuracy": self.min_robust_accuracy,
            "max_accuracy_drop": self.max_accuracy_drop,
            "method": self.method,
            "max_samples": self.max_samples,
            "feature_columns": self.feature_columns,
            "norm": self.norm,
            "random_state": self.random_state,
            "epsilon_scale": self.epsilon_scale,
            "allow_bounds": self.allow_bounds,
            "attack_max_samples": self.attack_max_samples,
        }
        model = str(self.model)
        with tempfile.TemporaryDirectory(prefix="mlsecops-robustness-") as tmp:
            try:
                local = self.fetch_input(model, Path(tmp, "model"))
                data = self.load_input_table(self.data, csv_delimiter=self.csv_delimiter)
            except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded, never a pass
                return inputs_unavailable(
                    exc,
                    policy=robustness_policy(**options, trust_pickle=self.trust_pickle),
                    warn_only=self.warn_only,
                    context=pipeline,
                )
            return evaluate_robustness(
                str(local),
                data,
                **options,
                warn_only=self.warn_only,
                context=pipeline,
                trust_pickle=self.trust_pickle,
                trusted_types=self.trusted_types,
                csv_delimiter=self.csv_delimiter,
                model_subject=subject_name(model),
            )


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
