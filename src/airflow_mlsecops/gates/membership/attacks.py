"""Black-box membership-inference attacks and their statistics: per-example scores, ROC AUC,
membership advantage (max TPR - FPR) and bootstrap confidence intervals.

Every attack gives each example a score; higher means "more likely a training member":

* ``loss`` (Yeom et al., "Privacy Risk in Machine Learning: Analyzing the Connection to
  Overfitting", CSF 2018): the negative cross-entropy loss of the true label. A global threshold on
  it is Yeom's attack; its best threshold gives the membership advantage.
* ``confidence`` (Salem et al., "ML-Leaks", NDSS 2019, the threshold variant): the model's highest
  class probability, which needs no label.
* ``calibrated-loss`` (Watson et al., "On the Importance of Difficulty Calibration in Membership
  Inference Attacks", ICLR 2022): the target's loss minus the loss of a *reference* model trained
  the same way on data the target never saw (half of the holdout), so an example that is easy for
  any model no longer looks like a member. No shadow models, one reference fit.

All functions here are pure numpy (imported inside them).

>>> import numpy as np
>>> stats = roc_statistics(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0]))
>>> stats.auc, stats.advantage
(1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Probabilities are clipped here before the log, so a confident miss has a finite loss.
PROBABILITY_FLOOR = 1e-12


@dataclass(frozen=True)
class RocStatistics:
    """ROC AUC and membership advantage (the largest TPR - FPR over thresholds) of one score."""

    auc: float
    advantage: float


@dataclass(frozen=True)
class AttackResult:
    """One attack's statistics, with percentile bootstrap intervals at ``confidence``."""

    attack: str
    auc: float
    auc_ci: tuple[float, float]
    advantage: float
    advantage_ci: tuple[float, float]
    members: int
    non_members: int

    def to_dict(self) -> dict[str, object]:
        return {
            "attack": self.attack,
            "auc": self.auc,
            "auc_ci": list(self.auc_ci),
            "advantage": self.advantage,
            "advantage_ci": list(self.advantage_ci),
            "members": self.members,
            "non_members": self.non_members,
        }


def true_label_loss(probabilities: np.ndarray, label_index: np.ndarray) -> np.ndarray:
    """Cross-entropy loss of each example's true class (``-log p[y]``, probabilities floored)."""
    import numpy as np

    chosen = probabilities[np.arange(len(label_index)), label_index]
    return np.asarray(-np.log(np.clip(chosen, PROBABILITY_FLOOR, 1.0)), dtype=float)


def loss_scores(probabilities: np.ndarray, label_index: np.ndarray) -> np.ndarray:
    """Yeom's score: the negative loss (a member has a low loss)."""
    return -true_label_loss(probabilities, label_index)


def confidence_scores(probabilities: np.ndarray) -> np.ndarray:
    """The threshold attack on confidence: the highest class probability."""
    import numpy as np

    return np.asarray(probabilities.max(axis=1), dtype=float)


def calibrated_loss_scores(target_loss: np.ndarray, reference_loss: np.ndarray) -> np.ndarray:
    """Watson et al.'s difficulty-calibrated score: how much lower the target's loss is than the reference's."""
    return reference_loss - target_loss


def roc_statistics(scores: np.ndarray, members: np.ndarray) -> RocStatistics:
    """ROC AUC (ties count half) and the membership advantage ``max(TPR - FPR)`` of ``scores``.

    :param scores: one score per example, higher meaning "member".
    :param members: 1 for a training member, 0 for a held-out example; both must occur.
    """
    import numpy as np

    labels = np.asarray(members, dtype=float)
    positives, negatives = float(labels.sum()), float(len(labels) - labels.sum())
    if positives == 0 or negatives == 0:
        raise ValueError("ROC statistics need members and non-members")
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    ranked, ordered = np.asarray(scores, dtype=float)[order], labels[order]
    true_pos, false_pos = np.cumsum(ordered), np.cumsum(1.0 - ordered)
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]  # one ROC point per distinct score
    tpr = np.r_[0.0, true_pos[last_of_tie] / positives]
    fpr = np.r_[0.0, false_pos[last_of_tie] / negatives]
    auc = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))
    return RocStatistics(auc=auc, advantage=float(max(0.0, np.max(tpr - fpr))))


def chance_advantage(members: int, non_members: int) -> float:
    """The advantage a score that carries no membership signal exceeds only 5% of the time: the
    two-sample Kolmogorov-Smirnov critical value ``1.358 * sqrt((m + n) / (m n))`` (asymptotic).

    >>> round(chance_advantage(500, 500), 3)
    0.086
    """
    import math

    return 1.358 * math.sqrt((members + non_members) / (members * non_members))


def evaluate_attack(
    attack: str,
    member_scores: np.ndarray,
    non_member_scores: np.ndarray,
    *,
    rounds: int,
    seed: int,
    confidence: float,
) -> AttackResult:
    """Point estimates on the balanced sample and percentile bootstrap intervals.

    Members and non-members are resampled separately (a stratified bootstrap), ``rounds`` times,
    from ``numpy.random.default_rng(seed)``: the same seed gives the same intervals.
    """
    import numpy as np

    m, n = len(member_scores), len(non_member_scores)
    scores = np.r_[member_scores, non_member_scores]
    labels = np.r_[np.ones(m), np.zeros(n)]
    point = roc_statistics(scores, labels)
    rng = np.random.default_rng(seed)
    aucs, advantages = np.empty(rounds), np.empty(rounds)
    for i in range(rounds):
        drawn = np.r_[rng.integers(0, m, m), m + rng.integers(0, n, n)]
        stats = roc_statistics(scores[drawn], labels)
        aucs[i], advantages[i] = stats.auc, stats.advantage
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = tail, 100.0 - tail
    return AttackResult(
        attack=attack,
        auc=point.auc,
        auc_ci=(float(np.percentile(aucs, low)), float(np.percentile(aucs, high))),
        advantage=point.advantage,
        advantage_ci=(float(np.percentile(advantages, low)), float(np.percentile(advantages, high))),
        members=m,
        non_members=n,
    )
