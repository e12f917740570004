"""What the robustness gate accepts: its methods, norms, epsilon scales and defaults, and the check of a policy."""

from __future__ import annotations

import math
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.exceptions import ConfigurationError

GATE_NAME = gate_names.ROBUSTNESS
METHODS = ("auto", "linear-exact", "noise", "fgsm", "pgd", "hopskipjump")
NORMS = ("inf", "2")
EPSILON_SCALES = ("input", "std")
EXACT, ATTACK, BOUND = "exact", "attack", "bound"
EXACTNESS = {"linear-exact": EXACT, "fgsm": ATTACK, "pgd": ATTACK, "hopskipjump": ATTACK, "noise": BOUND}
REPORT_FILE = "robustness_report.json"
NOISE_DRAWS = 10
ATTACK_MAX_SAMPLES = 200
MAX_REPORTED_ROWS = 100
ART_DISTRIBUTION = "adversarial-robustness-toolbox"
INSTALL_HINT = "pip install 'airflow-mlsecops[robustness]'"


def check_policy(
    *,
    label_column: str,
    epsilon: float,
    min_robust_accuracy: float,
    max_accuracy_drop: float | None,
    method: str,
    max_samples: int,
    norm: str,
    epsilon_scale: str,
    attack_max_samples: int,
) -> None:
    def fraction(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ConfigurationError(f"{name} must be a number between 0 and 1, not {value!r}")

    def positive_int(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive integer, not {value!r}")

    if not isinstance(label_column, str) or not label_column:
        raise ConfigurationError("label_column is required")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon <= 0:
        raise ConfigurationError(f"epsilon must be a positive number, not {epsilon!r}")
    fraction("min_robust_accuracy", min_robust_accuracy)
    if max_accuracy_drop is not None:
        fraction("max_accuracy_drop", max_accuracy_drop)
    if method not in METHODS:
        raise ConfigurationError(f"unknown robustness method {method!r}; use one of {', '.join(METHODS)}")
    if norm not in NORMS:
        raise ConfigurationError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if epsilon_scale not in EPSILON_SCALES:
        raise ConfigurationError(f"epsilon_scale must be one of {', '.join(EPSILON_SCALES)}, not {epsilon_scale!r}")
    positive_int("max_samples", max_samples)
    positive_int("attack_max_samples", attack_max_samples)
