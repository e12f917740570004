"""Input anomaly gate: flag production rows that are off the training distribution or crafted to
sit on the model's decision boundary (evasion attacks).

At training time, :func:`fit_detector` fits an :class:`InputDetector` on the training data and
:func:`save_detector` stores it as two plain files, so it is signed, scanned and verified like the
model and never unpickled::

    input_detector/detector.json   columns, thresholds, parameters, shapes and SHA-256 of each array
    input_detector/arrays.npz      float64 arrays only (loaded with allow_pickle=False)

In production, :func:`score_batch` scores every row of a batch and fails the gate when the share
of flagged rows exceeds ``max_flagged_share``. Runnable as it stands (scikit-learn only, a few
seconds)::

    import tempfile
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
    from airflow_mlsecops.gates.input_detection import fit_detector, load_detector, save_detector

    train = credit_frame(rows=4000, seed=7)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train[list(FEATURES)], train[LABEL])
    detector = fit_detector(train, model=model, feature_columns=FEATURES)
    directory = save_detector(detector, tempfile.mkdtemp())
    batch = credit_frame(rows=1000, seed=8)
    flags = load_detector(directory).flags(batch, model=model)      # score name -> rows above threshold
    print(f"{sum(flags.values()).astype(bool).mean():.1%} of the rows flagged")   # about 1%

**Scores** (each row gets all that the detector was calibrated with; higher = more suspicious):

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
its threshold. The thresholds are calibrated on a held-out share of the training data
(``calibration_share``) so that at most ``target_fpr`` of the held-out rows are flagged by any
score (1% by default): the budget is split evenly between the two kinds, and within a kind one
common quantile holds for every score. A row with a missing or infinite feature value is flagged
as off-distribution.

The detector also keeps the model's probabilities on ``2 * features + 1`` synthetic probe inputs
(the training mean, and the mean plus or minus one standard deviation per feature). Scoring with
a different model than the one it was calibrated with is refused, so a detector cannot silently
judge a batch for a model that replaced its own.

**Where it lives.** The training pipeline stores the detector *inside the logged model's
artifacts*, under ``input_detector/`` (:func:`log_detector_to_model`), before the model is signed:
one registry version (``models:/credit-risk/3``) then names the model and its detector, the
model's signature and provenance cover both, and the monitoring DAG finds it at
``<model uri>/input_detector``. The kNN reference sample holds up to ``knn_reference_size``
standardised training rows (invertible with the stored mean and scale): pass
``knn_reference_size=0`` if training rows must not travel with the model; Mahalanobis keeps only
the mean and covariance.

**Evidence**: ``input_anomaly_report.json`` (per-score thresholds, flagged counts and shares,
score quantiles, the flagged rows' 0-based positions in the batch and their scores, capped at
``max_reported_rows``); metrics ``rows``, ``flagged_rows``, ``flagged_share`` and a share per
score; findings ``input.off_distribution`` and ``input.boundary``.

Measured on the example credit data (logistic regression; 1,000-row batches, 10 seeds; default
``target_fpr=0.01``): normal batches flag 1.0% of rows (at most 1.7%), the drifted batch 2.2%.
Evasion rows that stop 0.01 logit past the boundary (p = 0.4975) are all flagged (AUC:
confidence 0.998, instability 0.995, kNN 0.83, Mahalanobis 0.82), and so are all gross
off-distribution rows (AUC 1.0 for both distance scores). The cliff is steep: at 0.05 logit past
the boundary the confidence AUC is still 0.99, but only ~4% of those rows clear the thresholds,
because 1.1% of ordinary rows are as close to the boundary; catching them costs a higher
``target_fpr``. Evasion that goes well past the boundary with in-distribution values (a confident,
ordinary-looking input) is not seen, nor is a slow population shift (the drift gate's job).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate, tool_versions
from airflow_mlsecops.gates.drift import ModelRef, default_store, load_table_any, resolve_model_ref
from airflow_mlsecops.io.artifacts import fetch, subject_name

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

GATE_NAME = gate_names.INPUT_ANOMALY
REPORT_FILE = "input_anomaly_report.json"
DETECTOR_FILE = "detector.json"
ARRAYS_FILE = "arrays.npz"
#: Where the training pipeline stores the detector inside the logged model's artifacts.
DETECTOR_ARTIFACT_PATH = "input_detector"
DETECTOR_FORMAT = "airflow-mlsecops/input-detector/v1"
DISTANCE_SCORES = ("knn", "mahalanobis")
MODEL_SCORES = ("confidence", "instability")
SCORE_KINDS = {"knn": "distance", "mahalanobis": "distance", "confidence": "model", "instability": "model"}
ARRAY_NAMES = ("mean", "scale", "precision", "knn_reference", "probe_inputs", "probe_proba")
MAX_REPORTED_ROWS = 100
#: A detector file larger than this is refused before it is parsed.
MAX_DETECTOR_BYTES = 256 * 1024 * 1024

# Evasion (ATLAS Evade ML Model, Craft Adversarial Data; OWASP ML01 Input Manipulation).
_ATLAS_EVASION = ("AML.T0015", "AML.T0043")
_OWASP_INPUT = ("ML01:2023",)
_CHUNK = 2048


@dataclass(frozen=True, eq=False)
class InputDetector:
    """A fitted input detector: standardisation, distance references, calibrated thresholds.

    Build it with :func:`fit_detector`; store it with :func:`save_detector` and read it back with
    :func:`load_detector`. Arrays are float64; ``knn_reference`` is empty when the kNN score is off,
    ``probe_inputs`` / ``probe_proba`` are empty when no model was given.

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

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(self.thresholds)

    @property
    def uses_model(self) -> bool:
        """Whether scoring needs the model (confidence / instability scores)."""
        return any(name in MODEL_SCORES for name in self.thresholds)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature columns of ``frame`` as a float64 matrix (NaN where a value is missing)."""
        return _feature_matrix(frame, self.feature_columns)

    def scores(self, frame: pd.DataFrame, model: Any = None) -> dict[str, np.ndarray]:
        """Every calibrated score of every row of ``frame`` (rows with a non-finite value get ``inf``).

        :param frame: the rows to score; must hold :attr:`feature_columns`.
        :param model: the fitted model, needed when :attr:`uses_model`.
        """
        import numpy as np

        x = self.matrix(frame)
        finite = np.isfinite(x).all(axis=1)
        out: dict[str, np.ndarray] = {}
        raw = _compute_scores(self, x[finite], model, self.score_names)
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
        proba = _predict_proba(model, self.probe_inputs, self.feature_columns)
        if proba.shape != self.probe_proba.shape or not np.allclose(proba, self.probe_proba, rtol=1e-6, atol=1e-9):
            delta = float(np.max(np.abs(proba - self.probe_proba))) if proba.shape == self.probe_proba.shape else float("nan")
            raise GateError(
                "the model is not the one this input detector was calibrated with: its probabilities on the "
                f"detector's probe inputs differ (max difference {delta:.3g}); refit the detector for this model"
            )


# --------------------------------------------------------------------------------------------
# Scores


def _feature_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    import numpy as np
    import pandas as pd

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GateError(f"the data has no column {', '.join(map(repr, missing[:10]))} (the detector's features)")
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise GateError(f"column {bad[0]!r} is {frame[bad[0]].dtype}, not numeric; the detector scores numeric features only")
    return np.ascontiguousarray(frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan))


def _predict_proba(model: Any, x: np.ndarray, columns: Sequence[str]) -> np.ndarray:
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


def _compute_scores(detector: InputDetector, x: np.ndarray, model: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
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
        proba = _predict_proba(model, x, detector.feature_columns)
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
        p = _predict_proba(model, noisy, detector.feature_columns).reshape(draws, len(block), -1)
        flips[start : start + len(block)] = (np.argmax(p, axis=2) != top[start : start + len(block)][None, :]).mean(axis=0)
    return flips


# --------------------------------------------------------------------------------------------
# Fitting


def _common_quantile(scores: Mapping[str, np.ndarray], budget: float) -> tuple[dict[str, float], float]:
    """One quantile for all ``scores`` such that at most ``budget`` of the rows exceed any threshold."""
    import numpy as np

    def at(q: float) -> tuple[dict[str, float], float]:
        thresholds = {name: float(np.quantile(values, q)) for name, values in scores.items()}
        flagged = np.zeros(len(next(iter(scores.values()))), dtype=bool)
        for name, values in scores.items():
            flagged |= values > thresholds[name]
        return thresholds, float(flagged.mean())

    lo, hi = 1.0 - budget, 1.0
    thresholds, share = at(lo)
    if share <= budget:
        return thresholds, lo
    for _ in range(40):
        mid = (lo + hi) / 2
        if at(mid)[1] <= budget:
            hi = mid
        else:
            lo = mid
    return at(hi)[0], hi


def _calibrate(scores: Mapping[str, np.ndarray], target_fpr: float) -> tuple[dict[str, float], dict[str, float], float]:
    """Thresholds such that at most ``target_fpr`` of the rows are flagged by any score.

    The budget is split evenly between the kinds of score (distance, model) so that neither kind
    starves the other; within a kind, one common quantile holds for every score. Returns the
    thresholds, the quantile per kind and the share of rows flagged overall.
    """
    import numpy as np

    kinds: dict[str, dict[str, np.ndarray]] = {}
    for name, values in scores.items():
        kinds.setdefault(SCORE_KINDS[name], {})[name] = values
    thresholds: dict[str, float] = {}
    quantiles: dict[str, float] = {}
    for kind, members in kinds.items():
        found, quantiles[kind] = _common_quantile(members, target_fpr / len(kinds))
        thresholds.update(found)
    flagged = np.zeros(len(next(iter(scores.values()))), dtype=bool)
    for name, values in scores.items():
        flagged |= values > thresholds[name]
    return {name: thresholds[name] for name in scores}, quantiles, float(flagged.mean())


def fit_detector(
    train: pd.DataFrame,
    *,
    model: Any = None,
    feature_columns: Sequence[str],
    target_fpr: float = 0.01,
    calibration_share: float = 0.25,
    knn_reference_size: int = 2000,
    knn_k: int = 5,
    noise_scale: float = 0.1,
    noise_draws: int = 16,
    random_state: int = 0,
) -> InputDetector:
    """Fit an input detector on the training data (and calibrate it for ``model``).

    :param train: the training rows (extra columns, such as the label, are ignored).
    :param model: the fitted classifier (with ``predict_proba``) the batches will be scored by;
        without it the detector has distance scores only.
    :param feature_columns: the model's input columns, in order.
    :param target_fpr: share of held-out training rows allowed to be flagged (the detector's
        false-positive rate on data like the training data).
    :param calibration_share: share of the rows held out to calibrate the thresholds.
    :param knn_reference_size: training rows kept for the kNN score (0 turns the kNN score off).
    :param knn_k: neighbours averaged by the kNN score.
    :param noise_scale: noise of the instability score, in training standard deviations.
    :param noise_draws: noisy copies per row of the instability score (0 turns it off).
    :param random_state: seed of the split, the kNN sample and the noise.
    :raises ConfigurationError: bad parameters, too few rows, non-numeric features, a model
        without ``predict_proba``.
    """
    import numpy as np

    columns = tuple(str(c) for c in feature_columns)
    if not columns or len(set(columns)) != len(columns):
        raise ConfigurationError("feature_columns must name at least one column, each once")
    if not 0 < target_fpr < 0.5:
        raise ConfigurationError(f"target_fpr must be in (0, 0.5), not {target_fpr!r}")
    if not 0 < calibration_share < 1:
        raise ConfigurationError(f"calibration_share must be in (0, 1), not {calibration_share!r}")
    if knn_reference_size < 0 or knn_k < 1 or noise_draws < 0 or noise_scale <= 0:
        raise ConfigurationError("knn_reference_size and noise_draws must be >= 0, knn_k >= 1 and noise_scale > 0")
    if model is not None and not hasattr(model, "predict_proba"):
        raise ConfigurationError(f"the model ({type(model).__name__}) has no predict_proba; the confidence scores need it")
    try:
        x_all = _feature_matrix(train, columns)
    except GateError as exc:
        raise ConfigurationError(f"cannot fit the input detector: {exc}") from exc
    finite = np.isfinite(x_all).all(axis=1)
    x_all = x_all[finite]
    if len(x_all) < 40:
        raise ConfigurationError(f"an input detector needs at least 40 complete training rows, got {len(x_all)}")

    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(x_all))
    n_cal = max(20, round(len(x_all) * calibration_share))
    x_cal, x_fit = x_all[order[:n_cal]], x_all[order[n_cal:]]
    mean = x_fit.mean(axis=0)
    scale = x_fit.std(axis=0)
    scale[~(scale > 0)] = 1.0
    z_fit = (x_fit - mean) / scale
    cov = np.atleast_2d(np.cov(z_fit, rowvar=False)) + 1e-6 * np.eye(len(columns))
    precision = np.linalg.pinv(cov)
    knn_n = min(knn_reference_size, len(z_fit))
    knn_reference = z_fit[rng.choice(len(z_fit), size=knn_n, replace=False)] if knn_n else np.zeros((0, len(columns)))

    names = [*(["knn"] if knn_n else []), "mahalanobis"]
    probe_inputs = np.zeros((0, len(columns)))
    probe_proba = np.zeros((0, 0))
    classes: tuple[Any, ...] = ()
    if model is not None:
        names.append("confidence")
        if noise_draws:
            names.append("instability")
        eye = np.eye(len(columns)) * scale
        probe_inputs = np.vstack([mean, mean + eye, mean - eye])
        probe_proba = _predict_proba(model, probe_inputs, columns)
        classes = tuple(c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", ()))

    draft = InputDetector(
        feature_columns=columns,
        mean=mean,
        scale=scale,
        precision=precision,
        knn_reference=np.ascontiguousarray(knn_reference),
        knn_k=int(knn_k),
        thresholds=dict.fromkeys(names, math.inf),
        target_fpr=float(target_fpr),
        noise_scale=float(noise_scale),
        noise_draws=int(noise_draws),
        random_state=int(random_state),
        probe_inputs=probe_inputs,
        probe_proba=probe_proba,
        model_classes=classes,
    )
    held_out = _compute_scores(draft, x_cal, model, names)
    thresholds, quantiles, share = _calibrate(held_out, target_fpr)
    calibration = {
        "rows_fit": len(x_fit),
        "rows_calibration": len(x_cal),
        "rows_dropped_non_finite": int((~finite).sum()),
        "quantile_per_kind": quantiles,
        "held_out_flagged_share": share,
        "held_out_share_per_score": {n: float((held_out[n] > thresholds[n]).mean()) for n in names},
    }
    return InputDetector(**{**draft.__dict__, "thresholds": thresholds, "calibration": calibration})


# --------------------------------------------------------------------------------------------
# Files (no pickle)


def _array_digest(array: np.ndarray) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f8").tobytes()).hexdigest()


def save_detector(detector: InputDetector, directory: str | Path) -> Path:
    """Write ``detector.json`` and ``arrays.npz`` (float64 only) into ``directory``; return it.

    :param detector: the fitted detector.
    :param directory: created if needed; existing detector files in it are replaced.
    """
    import numpy as np

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.ascontiguousarray(getattr(detector, name), dtype="<f8") for name in ARRAY_NAMES}
    doc = {
        "format": DETECTOR_FORMAT,
        "feature_columns": list(detector.feature_columns),
        "thresholds": {name: float(value) for name, value in detector.thresholds.items()},
        "score_kinds": {name: SCORE_KINDS[name] for name in detector.thresholds},
        "target_fpr": detector.target_fpr,
        "knn_k": detector.knn_k,
        "noise_scale": detector.noise_scale,
        "noise_draws": detector.noise_draws,
        "random_state": detector.random_state,
        "model_classes": list(detector.model_classes),
        "calibration": dict(detector.calibration),
        "arrays": {name: {"shape": list(a.shape), "dtype": "float64", "sha256": _array_digest(a)} for name, a in arrays.items()},
        "created_with": tool_versions("numpy", "scikit-learn"),
    }
    savez: Any = np.savez  # (numpy's stub types **arrays against its allow_pickle keyword)
    with open(target / ARRAYS_FILE, "wb") as fh:
        savez(fh, **arrays)
    (target / DETECTOR_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def _finite_number(doc: Mapping[str, Any], key: str, origin: str) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GateError(f"{origin}: {key!r} must be a finite number")
    return float(value)


def load_detector(directory: str | Path) -> InputDetector:
    """Read a detector written by :func:`save_detector`, checking every file against the JSON.

    Arrays are loaded with ``allow_pickle=False``; each must be float64 with the shape and SHA-256
    that ``detector.json`` records, so the two files cannot be mixed or edited independently.

    :param directory: the directory holding ``detector.json`` and ``arrays.npz``.
    :raises GateError: a missing, oversized, malformed or inconsistent detector.
    """
    import numpy as np

    root = Path(directory)
    origin = f"input detector {root}"
    meta_path, arrays_path = root / DETECTOR_FILE, root / ARRAYS_FILE
    for path in (meta_path, arrays_path):
        if not path.is_file():
            raise GateError(f"{origin}: {path.name} is missing (expected {DETECTOR_FILE} and {ARRAYS_FILE})")
        if path.stat().st_size > MAX_DETECTOR_BYTES:
            raise GateError(f"{origin}: {path.name} is larger than {MAX_DETECTOR_BYTES} bytes")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GateError(f"{origin}: {DETECTOR_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != DETECTOR_FORMAT:
        raise GateError(f"{origin}: {DETECTOR_FILE} is not a {DETECTOR_FORMAT} document")
    columns = doc.get("feature_columns")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise GateError(f"{origin}: feature_columns must be a non-empty list of names")
    thresholds = doc.get("thresholds")
    if not isinstance(thresholds, dict) or not thresholds or set(thresholds) - set(SCORE_KINDS):
        raise GateError(f"{origin}: thresholds must map score names ({', '.join(SCORE_KINDS)}) to numbers")
    thresholds = {name: _finite_number(thresholds, name, origin) for name in thresholds}
    declared = doc.get("arrays")
    if not isinstance(declared, dict) or set(declared) != set(ARRAY_NAMES):
        raise GateError(f"{origin}: 'arrays' must describe exactly {', '.join(ARRAY_NAMES)}")

    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            if set(npz.files) != set(ARRAY_NAMES):
                raise GateError(f"{origin}: {ARRAYS_FILE} holds {sorted(npz.files)}, expected {sorted(ARRAY_NAMES)}")
            for name in ARRAY_NAMES:
                array = npz[name]
                spec = declared[name] if isinstance(declared[name], dict) else {}
                if array.dtype != np.dtype("<f8"):
                    raise GateError(f"{origin}: array {name!r} is {array.dtype}, expected float64")
                if list(array.shape) != spec.get("shape"):
                    raise GateError(
                        f"{origin}: array {name!r} has shape {list(array.shape)}, {DETECTOR_FILE} says {spec.get('shape')}"
                    )
                if _array_digest(array) != spec.get("sha256"):
                    raise GateError(f"{origin}: array {name!r} does not match the SHA-256 in {DETECTOR_FILE}")
                arrays[name] = array
    except GateError:
        raise
    except (ValueError, OSError, KeyError) as exc:  # object arrays (pickle) are refused here too
        raise GateError(f"{origin}: {ARRAYS_FILE} cannot be read safely: {exc}") from exc

    d = len(columns)
    shapes_ok = (
        arrays["mean"].shape == (d,)
        and arrays["scale"].shape == (d,)
        and arrays["precision"].shape == (d, d)
        and arrays["knn_reference"].ndim == 2
        and arrays["knn_reference"].shape[1] == d
        and arrays["probe_inputs"].ndim == 2
        and arrays["probe_inputs"].shape[1] == d
        and arrays["probe_proba"].ndim == 2
        and arrays["probe_proba"].shape[0] == arrays["probe_inputs"].shape[0]
    )
    if not shapes_ok:
        raise GateError(f"{origin}: array shapes do not fit {d} feature columns")
    if not all(np.isfinite(a).all() for a in arrays.values()) or not (arrays["scale"] > 0).all():
        raise GateError(f"{origin}: arrays hold non-finite values or a non-positive scale")
    if "knn" in thresholds and len(arrays["knn_reference"]) == 0:
        raise GateError(f"{origin}: a knn threshold without a kNN reference sample")
    if any(n in MODEL_SCORES for n in thresholds) and len(arrays["probe_inputs"]) == 0:
        raise GateError(f"{origin}: model score thresholds without the model's probe probabilities")
    knn_k, draws = doc.get("knn_k"), doc.get("noise_draws")
    if isinstance(knn_k, bool) or not isinstance(knn_k, int) or knn_k < 1:
        raise GateError(f"{origin}: knn_k must be a positive integer")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 0 or ("instability" in thresholds and draws == 0):
        raise GateError(f"{origin}: noise_draws must be a non-negative integer (positive with an instability score)")
    seed = doc.get("random_state")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GateError(f"{origin}: random_state must be a non-negative integer")
    classes = doc.get("model_classes", [])
    calibration = doc.get("calibration", {})
    if not isinstance(classes, list) or not isinstance(calibration, dict):
        raise GateError(f"{origin}: model_classes must be a list and calibration an object")
    return InputDetector(
        feature_columns=tuple(columns),
        mean=arrays["mean"],
        scale=arrays["scale"],
        precision=arrays["precision"],
        knn_reference=arrays["knn_reference"],
        knn_k=knn_k,
        thresholds=thresholds,
        target_fpr=_finite_number(doc, "target_fpr", origin),
        noise_scale=_finite_number(doc, "noise_scale", origin),
        noise_draws=draws,
        random_state=seed,
        probe_inputs=arrays["probe_inputs"],
        probe_proba=arrays["probe_proba"],
        model_classes=tuple(classes),
        calibration=calibration,
    )


def log_detector_to_model(detector: InputDetector, model_id: str, *, tracking_uri: str | None = None) -> str:
    """Store ``detector`` inside a logged MLflow model's artifacts, under ``input_detector/``.

    Call it right after ``mlflow.sklearn.log_model`` and before the model is signed, so the
    model's signature and provenance cover the detector too. Returns ``models:/<model id>/input_detector``.

    :param detector: the fitted detector.
    :param model_id: the logged model's id (``info.model_id`` of ``log_model``).
    :param tracking_uri: the MLflow tracking URI (default: MLflow's current one).
    """
    from airflow_mlsecops.config import telemetry_off

    telemetry_off()
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="mlsecops-detector-") as tmp:
        save_detector(detector, tmp)
        MlflowClient(tracking_uri=tracking_uri).log_model_artifacts(model_id, tmp, artifact_path=DETECTOR_ARTIFACT_PATH)
    return f"models:/{model_id}/{DETECTOR_ARTIFACT_PATH}"


# --------------------------------------------------------------------------------------------
# The gate


def load_sklearn_model(path: Path | str, *, allow_pickled_model: bool = False) -> Any:
    """Load an MLflow sklearn model directory, refusing pickle-based formats unless allowed.

    :param path: a local MLflow model directory (with ``MLmodel``).
    :param allow_pickled_model: also load ``cloudpickle`` / ``pickle`` models (code runs on load).
    """
    import yaml

    path = Path(path)
    mlmodel = path / "MLmodel"
    if not mlmodel.is_file():
        raise GateError(f"{path} is not an MLflow model directory (no MLmodel file)")
    try:
        flavors = dict((yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors") or {})
    except (yaml.YAMLError, UnicodeDecodeError, AttributeError) as exc:
        raise GateError(f"{mlmodel} cannot be parsed: {exc}") from exc
    flavor = flavors.get("sklearn")
    if not isinstance(flavor, dict):
        raise GateError(f"{path} has no sklearn flavor; this gate loads scikit-learn models")
    fmt = str(flavor.get("serialization_format", "cloudpickle"))
    if fmt != "skops" and not allow_pickled_model:
        raise GateError(
            f"{path} is serialised as {fmt!r}, which runs code when loaded; log it as skops (MLflow's default) "
            "or pass allow_pickled_model=True"
        )
    from airflow_mlsecops.config import telemetry_off

    telemetry_off()
    import mlflow.sklearn

    try:
        return mlflow.sklearn.load_model(str(path))
    except Exception as exc:
        raise GateError(f"the model at {path} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def _summary_stats(values: np.ndarray) -> dict[str, float | None]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": float(np.quantile(finite, 0.5)),
        "p99": float(np.quantile(finite, 0.99)),
        "max": float(finite.max()),
    }


def score_batch(
    data: str,
    detector_dir: str | None,
    *,
    model_uri: str | None = None,
    max_flagged_share: float = 0.05,
    max_reported_rows: int = MAX_REPORTED_ROWS,
    allow_pickled_model: bool = False,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    store: MLflowEvidenceStore | None = None,
) -> GateOutcome:
    """Score every row of the batch at ``data``; fail if too many rows are flagged.

    :param data: the production batch: local path, ``s3://`` object, or ``runs:/`` /
        ``models:/`` URI of a CSV or Parquet file holding the detector's feature columns.
    :param detector_dir: directory of ``detector.json`` + ``arrays.npz``: local, ``s3://``
        prefix, or MLflow URI (``models:/credit-risk/3/input_detector``). ``None``: the detector
        inside the model, ``<model_uri>/input_detector``, read from the same pinned version.
    :param model_uri: the model the detector was calibrated for: a local MLflow model directory
        or an MLflow URI; ``models:/<name>@<alias>`` is resolved once, to the version it points
        at, and that version is what the evidence names. Required when the detector has
        confidence scores.
    :param max_flagged_share: the gate fails when more than this share of rows is flagged.
    :param max_reported_rows: flagged rows listed (with their scores) in the report.
    :param allow_pickled_model: load a ``cloudpickle`` / ``pickle`` model (runs code on load).
    :param warn_only: report a failing batch as ``warned`` instead of rejecting.
    :param context: the Airflow task that runs the gate, if any.
    :param csv_delimiter: delimiter of a CSV batch (default ``,``).
    :param store: the MLflow store for MLflow URIs (default: the configured one).
    """
    policy = {
        "max_flagged_share": max_flagged_share,
        "detector": detector_dir,
        "model": model_uri,
        "rule": "a row is flagged when any score exceeds its calibrated threshold",
    }

    def body() -> Evaluation:
        import numpy as np

        if (
            isinstance(max_flagged_share, bool)
            or not isinstance(max_flagged_share, (int, float))
            or not 0 <= max_flagged_share < 1
        ):
            raise ConfigurationError(f"max_flagged_share must be a number in [0, 1), not {max_flagged_share!r}")
        if isinstance(max_reported_rows, bool) or not isinstance(max_reported_rows, int) or max_reported_rows < 0:
            raise ConfigurationError(f"max_reported_rows must be a non-negative integer, not {max_reported_rows!r}")
        table = load_table_any(data, store=store, csv_delimiter=csv_delimiter)
        if len(table.frame) == 0:
            raise GateError(f"{data} holds no rows")
        subjects = [table.subject]
        model_ref: ModelRef | None = None
        with tempfile.TemporaryDirectory(prefix="mlsecops-input-") as tmp:
            needs_store = any(str(loc).startswith(("runs:/", "models:/")) for loc in (detector_dir, model_uri) if loc)
            mlflow_store = default_store(store) if needs_store else store
            if model_uri:
                model_ref = resolve_model_ref(str(model_uri), mlflow_store)
            if detector_dir:
                detector_location = resolve_model_ref(str(detector_dir), mlflow_store).uri
            elif model_ref is not None:
                detector_location = f"{model_ref.uri.rstrip('/')}/{DETECTOR_ARTIFACT_PATH}"
            else:
                raise ConfigurationError("pass the detector directory, or the model whose artifacts hold it (input_detector/)")
            detector_path = fetch(detector_location, Path(tmp, "detector"), mlflow_store)
            if not detector_path.is_dir():
                raise GateError(f"{detector_location} is not a directory holding {DETECTOR_FILE} and {ARRAYS_FILE}")
            detector = load_detector(detector_path)
            subjects.append(Subject(subject_name(detector_location), sha256_path(detector_path)))
            model = None
            if detector.uses_model:
                if model_ref is None:
                    raise ConfigurationError(
                        "this input detector was calibrated with a model's confidence scores; "
                        "pass model_uri (the model it was fitted for)"
                    )
                model_path = fetch(model_ref.uri, Path(tmp, "model"), mlflow_store)
                subjects.append(Subject(subject_name(model_ref.uri), sha256_path(model_path)))
                model = load_sklearn_model(model_path, allow_pickled_model=allow_pickled_model)
                detector.check_model(model)
            scores = detector.scores(table.frame, model)

        rows = len(table.frame)
        flags = {name: values > detector.thresholds[name] for name, values in scores.items()}
        off = np.zeros(rows, dtype=bool)
        boundary = np.zeros(rows, dtype=bool)
        for name, hit in flags.items():
            if SCORE_KINDS[name] == "distance":
                off |= hit
            else:
                boundary |= hit
        non_finite = ~np.isfinite(detector.matrix(table.frame)).all(axis=1)
        off |= non_finite
        flagged = off | boundary
        flagged_rows = int(flagged.sum())
        flagged_share = flagged_rows / rows
        passed = flagged_share <= max_flagged_share
        indices = np.flatnonzero(flagged)

        per_score = {
            name: {
                "kind": SCORE_KINDS[name],
                "threshold": detector.thresholds[name],
                "flagged_rows": int(hit.sum()),
                "flagged_share": float(hit.mean()),
                **_summary_stats(scores[name]),
            }
            for name, hit in flags.items()
        }
        listed = [
            {
                "row": int(i),
                "reasons": [name for name in flags if flags[name][i]] + (["non_finite"] if non_finite[i] else []),
                "scores": {name: (float(scores[name][i]) if np.isfinite(scores[name][i]) else None) for name in scores},
            }
            for i in indices[:max_reported_rows]
        ]
        report: dict[str, Any] = {
            "gate": GATE_NAME,
            "data": table.subject.name,
            "rows": rows,
            "flagged_rows": flagged_rows,
            "flagged_share": flagged_share,
            "max_flagged_share": max_flagged_share,
            "off_distribution_rows": int(off.sum()),
            "boundary_rows": int(boundary.sum()),
            "non_finite_rows": int(non_finite.sum()),
            "scores": per_score,
            "row_index": "0-based position of the row in the batch file (header excluded)",
            "flagged_row_indices": [int(i) for i in indices[:max_reported_rows]],
            "flagged_rows_truncated": flagged_rows > max_reported_rows,
            "flagged": listed,
            "detector": {
                "location": detector_location,
                "feature_columns": list(detector.feature_columns),
                "target_fpr": detector.target_fpr,
                "calibration": dict(detector.calibration),
            },
            "model": model_ref.to_dict() if model_ref else None,
        }

        findings: list[Finding] = []
        severity = Severity.LOW if passed else Severity.HIGH
        if off.any():
            rules = " or ".join(f"{name} > {detector.thresholds[name]:.4g}" for name in flags if SCORE_KINDS[name] == "distance")
            extra = f", {int(non_finite.sum())} with missing or infinite values" if non_finite.any() else ""
            findings.append(
                Finding(
                    id="input.off_distribution",
                    severity=severity,
                    message=f"{int(off.sum())} of {rows} rows ({off.mean():.1%}) lie off the training distribution "
                    f"({rules}{extra})",
                    location=_rows_location(np.flatnonzero(off)),
                    atlas=_ATLAS_EVASION,
                    owasp_ml=_OWASP_INPUT,
                    passed=passed,
                )
            )
        if boundary.any():
            rules = " or ".join(f"{name} > {detector.thresholds[name]:.4g}" for name in flags if SCORE_KINDS[name] == "model")
            findings.append(
                Finding(
                    id="input.boundary",
                    severity=severity,
                    message=f"{int(boundary.sum())} of {rows} rows ({boundary.mean():.1%}) sit on the model's decision boundary "
                    f"or flip under small noise ({rules}): the signature of evasion attacks",
                    location=_rows_location(np.flatnonzero(boundary)),
                    atlas=_ATLAS_EVASION,
                    owasp_ml=_OWASP_INPUT,
                    passed=passed,
                )
            )
        name = Path(table.subject.name).name
        summary = (
            f"{flagged_rows} of {rows} rows ({flagged_share:.1%}) of {name} flagged as anomalous input "
            f"(policy: at most {max_flagged_share:.1%}): {int(off.sum())} off-distribution, "
            f"{int(boundary.sum())} on the decision boundary"
        )
        metrics = {
            "rows": float(rows),
            "flagged_rows": float(flagged_rows),
            "flagged_share": flagged_share,
            "off_distribution_share": float(off.mean()),
            "boundary_share": float(boundary.mean()),
            "non_finite_rows": float(non_finite.sum()),
            **{f"share_{n}": float(hit.mean()) for n, hit in flags.items()},
        }
        details: dict[str, Any] = {
            "thresholds": dict(detector.thresholds),
            "scores": list(detector.score_names),
            "flagged_row_indices": [int(i) for i in indices[:20]],
            "flagged_rows_truncated": flagged_rows > 20,
            "detector": detector_location,
            "target_fpr": detector.target_fpr,
        }
        if model_ref is not None:
            details["model"] = model_ref.to_dict()
        return Evaluation(
            passed=passed,
            summary=summary,
            subjects=subjects,
            findings=findings,
            metrics=metrics,
            files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
            details=details,
        )

    return run_gate(
        GATE_NAME,
        body,
        policy=policy,
        warn_only=warn_only,
        distributions=("numpy", "scikit-learn", "mlflow"),
        context=context,
    )


def _rows_location(indices: np.ndarray, cap: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:cap])
    return f"rows {shown}{', ...' if len(indices) > cap else ''}"
