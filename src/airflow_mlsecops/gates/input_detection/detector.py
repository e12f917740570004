"""The fitted input detector and its four scores (higher = more suspicious).

Each row gets every score the detector was calibrated with:

``knn``
    mean Euclidean distance to the ``knn_k`` nearest rows of a reference sample of the training
    data, in standardised units (off-distribution inputs).
``mahalanobis``
    Mahalanobis distance to the training mean under the training covariance (off-distribution
    inputs, including combinations of values that are each plausible alone).
``confidence``
    ``1 - (p_top1 - p_top2)`` of the model's ``predict_proba``: 1 on the decision boundary
    (boundary-hugging evasion: the attacker stops as soon as the label flips).
``instability``
    share of ``noise_draws`` noisy copies of the row (seeded Gaussian noise of ``noise_scale``
    training standard deviations per feature) whose predicted class differs from the row's: a
    row on the boundary flips about half the time, an ordinary row almost never.

Distance scores catch off-distribution inputs but not small evasion steps; the model scores catch
boundary-hugging attacks; the gate uses both kinds. A row is flagged when any of its scores exceeds
its threshold. A row with a missing or infinite feature value gets ``inf`` (off-distribution).

The detector keeps the model's probabilities on ``2 * features + 1`` synthetic probe inputs (the
training mean, and the mean plus or minus one standard deviation per feature):
:meth:`InputDetector.check_model` refuses a different model than the one it was calibrated with,
so a detector cannot silently judge a batch for a model that replaced its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError, GateError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DISTANCE_SCORES = ("knn", "mahalanobis")
MODEL_SCORES = ("confidence", "instability")
SCORE_KINDS = {"knn": "distance", "mahalanobis": "distance", "confidence": "model", "instability": "model"}
_CHUNK = 2048


@dataclass(frozen=True, eq=False)
class InputDetector:
    """A fitted input detector: standardisation, distance references, calibrated thresholds.

    Build it with :func:`~airflow_mlsecops.gates.input_detection.fit_detector`; store it with
    :func:`~airflow_mlsecops.gates.input_detection.save_detector` and read it back with
    :func:`~airflow_mlsecops.gates.input_detection.load_detector`. Arrays are float64;
    ``knn_reference`` is empty when the kNN score is off, ``probe_inputs`` / ``probe_proba`` are
    empty when no model was given.

    :param feature_columns: the model's input columns, in order.
    :param mean: per-feature mean of the training rows used to fit.
    :param scale: per-feature standard deviation (1 where a feature is constant).
    :param precision: inverse covariance of the standardised training rows.
    :param knn_reference: standardised training rows for the kNN score.
    :param knn_k: neighbours averaged by the kNN score.
    :param thresholds: score name -> calibrated threshold (a row is flagged above it).
    :param target_fpr: share of held-out training rows the thresholds were allowed to flag.
    :param noise_scale: standard deviations of noise of the instability score.
    :param noise_draws: noisy copies per row of the instability score.
    :param random_state: seed of the split, the sample and the noise.
    :param probe_inputs: synthetic inputs the model's probabilities were recorded on.
    :param probe_proba: the model's probabilities on ``probe_inputs``.
    :param model_classes: the model's ``classes_`` (JSON scalars).
    :param calibration: how the thresholds were found (rows, quantile, held-out shares).
    :param column_roles: the training data's columns left out of the fit and why
        (:meth:`airflow_mlsecops.gates.columns.ColumnRoles.to_dict`; empty for a detector stored before).
    """

    feature_columns: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    precision: np.ndarray
    knn_reference: np.ndarray
    knn_k: int
    thresholds: Mapping[str, float]
    target_fpr: float
    noise_scale: float
    noise_draws: int
    random_state: int
    probe_inputs: np.ndarray
    probe_proba: np.ndarray
    model_classes: tuple[Any, ...] = ()
    calibration: Mapping[str, Any] = field(default_factory=dict)
    column_roles: Mapping[str, Any] = field(default_factory=dict)

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(self.thresholds)

    @property
    def uses_model(self) -> bool:
        """Whether scoring needs the model (confidence / instability scores)."""
        return any(name in MODEL_SCORES for name in self.thresholds)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature columns of ``frame`` as a float64 matrix (NaN where a value is missing)."""
        return feature_matrix(frame, self.feature_columns)

    def scores(self, frame: pd.DataFrame, model: Any = None) -> dict[str, np.ndarray]:
        """Every calibrated score of every row of ``frame`` (rows with a non-finite value get ``inf``).

        :param frame: the rows to score; must hold :attr:`feature_columns`.
        :param model: the fitted model, needed when :attr:`uses_model`.
        """
        import numpy as np

        x = self.matrix(frame)
        finite = np.isfinite(x).all(axis=1)
        out: dict[str, np.ndarray] = {}
        raw = compute_scores(self, x[finite], model, self.score_names)
        for name in self.score_names:
            full = np.full(len(x), np.inf)
            full[finite] = raw[name]
            out[name] = full
        return out

    def flags(self, frame: pd.DataFrame, model: Any = None) -> dict[str, np.ndarray]:
        """Score name -> boolean array: the rows whose score exceeds its threshold."""
        return {name: values > self.thresholds[name] for name, values in self.scores(frame, model).items()}

    def check_model(self, model: Any) -> None:
        """Refuse a model whose probabilities on the probe inputs differ from the calibrated ones."""
        import numpy as np

        if not self.uses_model:
            return
        if not hasattr(model, "predict_proba"):
            raise GateError("the model has no predict_proba; the detector's confidence scores need it")
        proba = predict_proba(model, self.probe_inputs, self.feature_columns)
        if proba.shape != self.probe_proba.shape or not np.allclose(proba, self.probe_proba, rtol=1e-6, atol=1e-9):
            delta = float(np.max(np.abs(proba - self.probe_proba))) if proba.shape == self.probe_proba.shape else float("nan")
            raise GateError(
                "the model is not the one this input detector was calibrated with: its probabilities on the "
                f"detector's probe inputs differ (max difference {delta:.3g}); refit the detector for this model"
            )


def feature_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``columns`` of ``frame`` as a float64 matrix (NaN where missing).

    :raises GateError: a column is missing or not numeric.
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GateError(f"the data has no column {', '.join(map(repr, missing[:10]))} (the detector's features)")
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise GateError(f"column {bad[0]!r} is {frame[bad[0]].dtype}, not numeric; the detector scores numeric features only")
    return np.ascontiguousarray(frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan))


def predict_proba(model: Any, x: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """The model's ``predict_proba`` on the rows of ``x`` (given to it as a frame with ``columns``)."""
    import numpy as np
    import pandas as pd

    if len(x) == 0:
        return np.zeros((0, 0))
    return np.asarray(model.predict_proba(pd.DataFrame(x, columns=list(columns))), dtype=np.float64)


def _knn_scores(z: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    import numpy as np

    out = np.empty(len(z))
    ref_sq = np.einsum("ij,ij->i", reference, reference)
    k = min(k, len(reference))
    for start in range(0, len(z), _CHUNK):
        block = z[start : start + _CHUNK]
        d2 = np.einsum("ij,ij->i", block, block)[:, None] + ref_sq[None, :] - 2.0 * block @ reference.T
        np.maximum(d2, 0.0, out=d2)
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]
        out[start : start + len(block)] = np.sqrt(nearest).mean(axis=1)
    return out


def _mahalanobis_scores(z: np.ndarray, precision: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, precision, z), 0.0))


def _margin(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``1 - (p_top1 - p_top2)`` per row, and the index of the top class."""
    import numpy as np

    top = np.argmax(proba, axis=1)
    if proba.shape[1] < 2:
        return np.zeros(len(proba)), top
    two = np.partition(proba, proba.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (two[:, 1] - two[:, 0]), top


def compute_scores(detector: InputDetector, x: np.ndarray, model: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The scores ``names`` of the (finite) rows of ``x``; the model scores need ``model``."""
    import numpy as np

    z = (x - detector.mean) / detector.scale
    out: dict[str, np.ndarray] = {}
    if "knn" in names:
        out["knn"] = _knn_scores(z, detector.knn_reference, detector.knn_k) if len(z) else np.zeros(0)
    if "mahalanobis" in names:
        out["mahalanobis"] = _mahalanobis_scores(z, detector.precision)
    if any(name in MODEL_SCORES for name in names):
        if model is None:
            raise ConfigurationError("this input detector was calibrated with a model's confidence scores; pass the model")
        if len(x) == 0:
            out.update({name: np.zeros(0) for name in MODEL_SCORES if name in names})
            return out
        proba = predict_proba(model, x, detector.feature_columns)
        margin, top = _margin(proba)
        if "confidence" in names:
            out["confidence"] = margin
        if "instability" in names:
            out["instability"] = _instability(detector, model, x, proba, top)
    return out


def _instability(detector: InputDetector, model: Any, x: np.ndarray, proba: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Share of ``noise_draws`` noisy copies of each row whose predicted class differs from the row's."""
    import numpy as np

    rng = np.random.default_rng(detector.random_state)
    draws = detector.noise_draws
    flips = np.zeros(len(x))
    step = max(1, 500_000 // max(1, draws))  # stack the noisy copies of up to ~500k rows per predict call
    for start in range(0, len(x), step):
        block = x[start : start + step]
        noise = rng.standard_normal((draws, *block.shape)) * (detector.noise_scale * detector.scale)
        noisy = (block[None, :, :] + noise).reshape(-1, block.shape[1])
        p = predict_proba(model, noisy, detector.feature_columns).reshape(draws, len(block), -1)
        flips[start : start + len(block)] = (np.argmax(p, axis=2) != top[start : start + len(block)][None, :]).mean(axis=0)
    return flips
