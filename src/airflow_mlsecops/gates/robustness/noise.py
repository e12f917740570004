"""Random-noise bounds: corners of the L-inf box or points on the L2 sphere; an upper bound on robust accuracy only."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from airflow_mlsecops.gates.robustness.model import ClassIndexPredictor


def noise_flips(
    model: ClassIndexPredictor,
    X: np.ndarray,
    idx: np.ndarray,
    candidates: np.ndarray,
    epsilon: float,
    norm: str,
    scale: np.ndarray,
    draws: int,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip flags and witnesses from random corners (L-inf) or sphere points (L2) of each ball."""
    import numpy as np

    rng = np.random.default_rng(random_state)
    flipped = np.zeros(len(X), bool)
    witness = X.copy()
    live = scale > 0
    for _ in range(max(0, draws)):
        todo = np.flatnonzero(candidates & ~flipped)
        if not len(todo):
            break
        if norm == "inf":
            delta_z = rng.choice(np.array([-1.0, 1.0]), size=(len(todo), X.shape[1])) * epsilon
        else:
            g = rng.standard_normal((len(todo), X.shape[1])) * live
            length = np.sqrt((g * g).sum(axis=1, keepdims=True))
            delta_z = epsilon * np.divide(g, length, out=np.zeros_like(g), where=length > 0)
        trial = X[todo] + delta_z * scale
        hit = model.predict_index(trial) != idx[todo]
        flipped[todo[hit]] = True
        witness[todo[hit]] = trial[hit]
    return flipped, witness
