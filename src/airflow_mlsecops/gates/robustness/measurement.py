"""The typed results of the robustness engine: a measurement per sample, and a linear model's score function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, eq=False)
class RobustnessMeasurement:
    """Accuracy of a classifier under bounded perturbations of its inputs, per sample.

    :param method: the method that produced the numbers (never ``auto``).
    :param exactness: ``exact`` (the true worst case), ``attack`` (an upper bound on robust
        accuracy found by an attack) or ``bound`` (an upper bound from random noise).
    :param norm: ``inf`` or ``2``.
    :param epsilon: the radius, in units of ``scale``.
    :param scale: per-feature multiplier of ``epsilon`` (ones for input units): feature ``j`` may move
        by ``epsilon * scale[j]`` (L-inf) or the perturbation ``d`` satisfies ``||d / scale||_2 <= epsilon``.
    :param labels: the true label of each sample.
    :param clean_correct: whether the model classifies each unperturbed sample correctly.
    :param robust: whether each sample is classified correctly everywhere in its ball (as far as
        the method can tell: exactly, or not disproved by the attack / the noise).
    :param adversarial: per sample, the perturbed input the method ended with: the exact worst case
        for ``linear-exact`` (for every sample), the witness that flips the sample for the others
        (the sample itself when nothing was found).
    :param art_version: version of ART when it ran.
    :param seconds: wall time of the measurement.
    :param notes: what a reviewer should know about how the number was obtained.
    :param witnesses: how many samples each technique flipped (``attack`` / ``noise``).
    """

    method: str
    exactness: str
    norm: str
    epsilon: float
    scale: np.ndarray
    labels: np.ndarray
    clean_correct: np.ndarray
    robust: np.ndarray
    adversarial: np.ndarray
    art_version: str | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    witnesses: Mapping[str, int] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return len(self.labels)

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.mean()) if self.samples else 0.0

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.mean()) if self.samples else 0.0

    @property
    def accuracy_drop(self) -> float:
        return self.clean_accuracy - self.robust_accuracy

    @property
    def flipped(self) -> np.ndarray:
        """Positions (in the evaluated sample) of samples correct when clean but not robust."""
        import numpy as np

        return np.flatnonzero(self.clean_correct & ~self.robust)

    def per_class(self) -> dict[str, dict[str, float]]:
        """Samples, clean and robust accuracy per true label."""
        import numpy as np

        out: dict[str, dict[str, float]] = {}
        for label in sorted(set(self.labels.tolist()), key=str):
            mask = self.labels == label
            n = int(mask.sum())
            out[str(label)] = {
                "samples": float(n),
                "clean_accuracy": float(self.clean_correct[mask].mean()) if n else 0.0,
                "robust_accuracy": float(self.robust[mask].mean()) if n else 0.0,
                "flipped": float(np.sum(self.clean_correct[mask] & ~self.robust[mask])),
            }
        return out


@dataclass(frozen=True, eq=False)
class LinearForm:
    """Class scores ``X @ W.T + b`` in the model's input space; the prediction is their arg-max."""

    W: np.ndarray  # (k, n_features)
    b: np.ndarray  # (k,)
    classes: np.ndarray
