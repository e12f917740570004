"""What the membership-inference gate accepts: its attacks, defaults, and the check of a policy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.exceptions import ConfigurationError

GATE_NAME = gate_names.MEMBERSHIP_INFERENCE
#: ``loss`` and ``confidence``: global thresholds (Yeom et al. 2018; Salem et al. 2019);
#: ``calibrated-loss``: per-example difficulty calibration against a reference model (Watson et al. 2022).
LOSS, CONFIDENCE, CALIBRATED_LOSS = "loss", "confidence", "calibrated-loss"
ATTACKS = (LOSS, CONFIDENCE, CALIBRATED_LOSS)
REPORT_FILE = "membership_report.json"
DEFAULT_MAX_ATTACK_AUC = 0.6
DEFAULT_MAX_ADVANTAGE = 0.1
#: Below ~500 rows per side the advantage of a model that leaks nothing is often above 0.1 by chance
#: (the two-sample Kolmogorov-Smirnov 95% critical value is 1.36 * sqrt(2 / n): 0.086 at n = 500).
DEFAULT_MIN_SAMPLES = 500
DEFAULT_MAX_SAMPLES = 10_000
DEFAULT_BOOTSTRAP = 200
CONFIDENCE_LEVEL = 0.95
#: A holdout sharing more than this share of its rows with the training data is not a holdout.
MAX_OVERLAP_SHARE = 0.01


def parse_attacks(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"loss,confidence"`` or a list -> a tuple of known attack names (``None``: every attack)."""
    if value is None:
        return ATTACKS
    items = [p.strip() for p in value.split(",")] if isinstance(value, str) else [str(p).strip() for p in value]
    names = tuple(dict.fromkeys(p for p in items if p))
    unknown = [n for n in names if n not in ATTACKS]
    if unknown or not names:
        raise ConfigurationError(
            f"attacks must name at least one of {', '.join(ATTACKS)}; unknown: {', '.join(unknown) or 'none given'}"
        )
    return names


def check_policy(
    *,
    label_column: str,
    max_attack_auc: float,
    max_advantage: float,
    min_samples: int,
    max_samples: int,
    attacks: Sequence[str],
    bootstrap: int,
) -> None:
    """Refuse arguments that cannot define the gate.

    :raises ConfigurationError: naming the argument.
    """

    def fraction(name: str, value: Any, low: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigurationError(f"{name} must be a number, not {value!r}")
        if not low <= float(value) <= 1.0:
            raise ConfigurationError(f"{name} must be between {low:g} and 1, not {value!r}")

    def positive_int(name: str, value: Any, least: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigurationError(f"{name} must be an integer of at least {least}, not {value!r}")

    if not isinstance(label_column, str) or not label_column:
        raise ConfigurationError("label_column is required")
    fraction("max_attack_auc", max_attack_auc, 0.5)
    fraction("max_advantage", max_advantage, 0.0)
    positive_int("min_samples", min_samples, 20)
    positive_int("max_samples", max_samples)
    if max_samples < min_samples:
        raise ConfigurationError(f"max_samples ({max_samples}) is below min_samples ({min_samples}): the gate could never pass")
    positive_int("bootstrap", bootstrap, 20)
    parse_attacks(attacks)
