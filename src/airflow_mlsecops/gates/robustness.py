"""Adversarial robustness gate: accuracy under a bounded input perturbation, rejected below a threshold.

The gate measures *robust accuracy*: the share of samples that the model classifies correctly and
that stay correctly classified for every input within distance ``epsilon`` (L-inf or L2) of the
sample. It then rejects the model when that share is below ``min_robust_accuracy`` (or when the
drop from clean accuracy exceeds ``max_accuracy_drop``).

A runnable example on the synthetic credit data (no files, no MLflow)::

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
    from airflow_mlsecops.gates.robustness import robust_accuracy

    frame = credit_frame(rows=2000, seed=7)
    X, y = frame[list(FEATURES)], frame[LABEL].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    m = robust_accuracy(model, X, y, epsilon=0.1, method="auto")
    print(m.method, m.exactness, round(m.clean_accuracy, 3), round(m.robust_accuracy, 3))
    # linear-exact exact 0.812 0.789

The gate on files (an MLflow model directory or ``models:/`` / ``runs:/`` URI, a CSV or Parquet file):

>>> from airflow_mlsecops.gates.robustness import evaluate_robustness
>>> outcome = evaluate_robustness("model/", "test.csv", label_column="defaulted",
...                               epsilon=0.1, min_robust_accuracy=0.7)     # doctest: +SKIP
>>> outcome.verdict, outcome.result.details["method"]                     # doctest: +SKIP
(<Verdict.PASSED: 'passed'>, 'linear-exact')

**Units of epsilon.** ``epsilon`` is in the units of the model's *input* features (the raw columns
of the data file, before any scaler inside the model's pipeline): at ``epsilon=0.1`` an attacker may
move ``income`` by 0.1 dollars and ``debt_ratio`` by 0.1. With ``epsilon_scale="std"`` it is in
standard deviations of each feature instead (measured on the usable rows of the data file): feature
``j`` may move by ``epsilon * std_j``. The evidence lists the radius of every feature.

**Methods** (``method``), and what the number they produce means (``exactness`` in the evidence):

``linear-exact`` (``exact``)
    For a linear decision function ``w.x + b`` (a linear classifier, alone or after affine scalers:
    ``StandardScaler``, ``MinMaxScaler`` without clipping, ``MaxAbsScaler``, ``RobustScaler``, folded
    into ``w`` in input units), the worst case over the L-inf ball is ``|w.x + b| - eps*||w||_1``
    (L2: ``eps*||w||_2``). For ``k`` classes (arg-max of linear scores), a sample of class ``c`` is
    robust iff ``(w_c - w_k).x + (b_c - b_k) - eps*||w_c - w_k||_1 > 0`` for every ``k != c``. This is
    the exact worst case, computed in microseconds; the worst-case input itself is returned and
    re-checked with the model's own ``predict``. LogisticRegression, LinearSVC, SGDClassifier,
    RidgeClassifier, Perceptron and binary linear-kernel SVC qualify; the folded form is checked
    against the model's ``decision_function`` before it is trusted.
``fgsm`` / ``pgd`` (``attack``)
    IBM ART's Fast Gradient Method / Projected Gradient Descent, with the *true* labels, for
    models whose loss gradient ART computes: LogisticRegression, SVC and LinearSVC, alone or after
    affine scalers. An attack finds adversarial inputs; it does not prove there are none, so its
    robust accuracy is an upper bound (its accuracy drop a lower bound).
``hopskipjump`` (``attack``)
    ART's decision-based HopSkipJump for any classifier (tree ensembles...), started from the
    nearest sample the model puts in another class, on at most ``attack_max_samples`` samples.
    An upper bound on robust accuracy, as above; typically looser than a gradient attack.
``noise`` (``bound``)
    ``noise_draws`` random corners of the L-inf box (random directions on the L2 sphere) per
    sample. Random noise rarely hits the worst case: only an upper bound on robust accuracy, often
    a loose one. A ``bound`` never passes the gate unless ``allow_bounds=True``; a bound *below* the
    threshold is a sound rejection.
``auto``
    ``linear-exact`` when the model is linear (through its pipeline); else, with the robustness extra
    installed (``pip install 'airflow-mlsecops[robustness]'``), ``pgd`` for kernel SVCs and
    ``hopskipjump`` for everything else; else ``noise``, which then cannot pass on its own.

Attack methods also try the noise draws; every sample counted as flipped has a witness input
inside the ball that the model's own ``predict`` misclassifies (re-checked in float64).

**Loading models safely.** A model is a local path or URI (``s3://``, ``runs:/``, ``models:/``) of
an MLflow model directory with the ``sklearn`` flavor, or a ``.skops`` file. skops files are loaded
with skops' default trusted types (scikit-learn's own) plus ``trusted_types``; the allow-list an
MLmodel file carries is ignored, since the model itself wrote it. ``sklearn.tree._tree.Tree`` (which
skops does not trust, because a crafted tree can make ``predict`` read out of bounds) is accepted
after every tree's node arrays are checked (child and feature indices in range). Pickle-based
formats (an MLflow directory saved as pickle/cloudpickle, a ``.pkl``/``.joblib`` file) execute code
when loaded and are refused unless ``trust_pickle=True``. **Run the model-scan gate before this one**:
this gate judges behaviour, not whether a file is safe to load.

Evidence: metrics ``clean_accuracy``, ``robust_accuracy``, ``accuracy_drop``, ``epsilon``,
``samples``; details ``method``, ``exactness``, ``norm``, ``art_version`` (when ART ran); the file
``robustness_report.json`` with per-class robust accuracy and the (capped) row numbers of the
samples that flip. Subjects: the model (file or directory digest) and the data file.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import pickle
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate
from airflow_mlsecops.io.artifacts import fetch, subject_name
from airflow_mlsecops.io.tabular import load_table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

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
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck")
TREE_TYPE = "sklearn.tree._tree.Tree"

_ATLAS = ("AML.T0015", "AML.T0043")  # Evade ML Model; Craft Adversarial Data
_OWASP = ("ML01:2023",)  # Input Manipulation Attack
_DEFAULT_ITER = {"pgd": 10, "hopskipjump": 10}


# --------------------------------------------------------------------------------------------
# The measurement
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Model introspection
# --------------------------------------------------------------------------------------------


def _steps(estimator: Any) -> tuple[list[Any], Any]:
    """Preprocessing steps and the final estimator (a plain model has no steps)."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps]
        return steps[:-1], steps[-1]
    return [], estimator


def describe_model(estimator: Any) -> str:
    """``Pipeline(StandardScaler -> LogisticRegression)`` or the class name of a plain model."""
    pre, final = _steps(estimator)
    if not pre and final is estimator:
        return type(estimator).__name__
    return (
        "Pipeline("
        + " -> ".join(type(s).__name__ if s not in (None, "passthrough") else "passthrough" for s in [*pre, final])
        + ")"
    )


def _affine_step(step: Any, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(a, c)`` with ``step.transform(x) == a * x + c`` elementwise, or None if it is not affine."""
    import numpy as np
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

    ones, zeros = np.ones(n), np.zeros(n)
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return ones, zeros
    if type(step) is StandardScaler:
        a = 1.0 / np.asarray(step.scale_, float) if step.with_std and step.scale_ is not None else ones
        c = -np.asarray(step.mean_, float) * a if step.with_mean and step.mean_ is not None else zeros
        return a, c
    if type(step) is MinMaxScaler:
        if step.clip:
            return None
        return np.asarray(step.scale_, float), np.asarray(step.min_, float)
    if type(step) is MaxAbsScaler:
        return 1.0 / np.asarray(step.scale_, float), zeros
    if type(step) is RobustScaler:
        a = 1.0 / np.asarray(step.scale_, float) if step.with_scaling and step.scale_ is not None else ones
        c = -np.asarray(step.center_, float) * a if step.with_centering and step.center_ is not None else zeros
        return a, c
    return None


def _affine_prefix(estimator: Any, n: int) -> tuple[np.ndarray, np.ndarray, Any] | None:
    """Fold the preprocessing steps into one diagonal affine map ``a * x + c``; None if one is not affine."""
    import numpy as np

    pre, final = _steps(estimator)
    a, c = np.ones(n), np.zeros(n)
    for step in pre:
        folded = _affine_step(step, n)
        if folded is None:
            return None
        sa, sc = folded
        if sa.shape != (n,) or sc.shape != (n,):
            return None
        a, c = a * sa, c * sa + sc
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(c)):
        return None
    return a, c, final


def linear_form(estimator: Any, X: np.ndarray | None = None) -> LinearForm | None:
    """The linear score function of a (pipeline ending in a) linear classifier, in input units.

    Returns None when the model is not linear, or when ``X`` is given and the folded form does not
    reproduce the model's ``decision_function`` and ``predict`` on it (the safety check that makes
    ``linear-exact`` trustworthy for models it was not written for).
    """
    import numpy as np
    from sklearn.svm import SVC, NuSVC

    n = _n_features(estimator)
    if n is None:
        return None
    prefix = _affine_prefix(estimator, n)
    if prefix is None:
        return None
    a, c, final = prefix
    coef, intercept = getattr(final, "coef_", None), getattr(final, "intercept_", None)
    classes = getattr(final, "classes_", None)
    if coef is None or intercept is None or classes is None or not hasattr(final, "decision_function"):
        return None
    if hasattr(coef, "toarray"):
        coef = coef.toarray()
    coef, intercept, classes = (
        np.atleast_2d(np.asarray(coef, float)),
        np.atleast_1d(np.asarray(intercept, float)),
        np.asarray(classes),
    )
    if isinstance(final, (SVC, NuSVC)) and (len(classes) != 2 or getattr(final, "kernel", None) != "linear"):
        return None  # one-vs-one voting is not an arg-max of linear scores
    if coef.shape[1] != n or len(classes) < 2:
        return None
    if len(classes) == 2 and coef.shape[0] == 1:
        w = coef[0] * a
        W = np.vstack([np.zeros(n), w])
        b = np.array([0.0, float(intercept[0] + coef[0] @ c)])
    elif coef.shape[0] == len(classes) and intercept.shape[0] == len(classes):
        W = coef * a
        b = intercept + coef @ c
    else:
        return None
    form = LinearForm(W=W, b=b, classes=classes)
    if X is not None and len(X) and not _linear_form_agrees(estimator, form, X):
        return None
    return form


def _linear_form_agrees(estimator: Any, form: LinearForm, X: np.ndarray) -> bool:
    import numpy as np

    model = _Model(estimator)
    with _quiet():
        decision = np.asarray(estimator.decision_function(model.frame(X)), float)
        predicted = np.asarray(estimator.predict(model.frame(X)))
    scores = X @ form.W.T + form.b
    mine = scores[:, 1] - scores[:, 0] if len(form.classes) == 2 else scores
    if decision.shape != mine.shape:
        return False
    tol = 1e-6 * (1.0 + np.abs(decision))
    if not np.all(np.abs(decision - mine) <= tol):
        return False
    argmax = np.where(mine > 0, 1, 0) if len(form.classes) == 2 else scores.argmax(axis=1)
    ambiguous = _near_tie(scores)
    return bool(np.all((form.classes[argmax] == predicted) | ambiguous))


def _near_tie(scores: np.ndarray) -> np.ndarray:
    import numpy as np

    top2 = np.sort(scores, axis=1)[:, -2:]
    return np.asarray(np.abs(top2[:, 1] - top2[:, 0]) <= 1e-9 * (1.0 + np.abs(top2[:, 1])))


def _n_features(estimator: Any) -> int | None:
    n = getattr(estimator, "n_features_in_", None)
    if n is None:
        pre, final = _steps(estimator)
        n = getattr(pre[0] if pre else final, "n_features_in_", None)
    return int(n) if n is not None else None


def _art_differentiable(estimator: Any) -> bool:
    """ART computes loss gradients for LogisticRegression, SVC and LinearSVC (after affine scalers)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC, LinearSVC

    n = _n_features(estimator)
    if n is None:
        return False
    prefix = _affine_prefix(estimator, n)
    if prefix is None:
        return False
    final = prefix[2]
    if type(final) is SVC:
        return final.kernel in ("linear", "poly", "rbf", "sigmoid")
    return type(final) in (LogisticRegression, LinearSVC)


def art_version() -> str | None:
    """ART's version when the robustness extra is installed (without importing it), else None."""
    if importlib.util.find_spec("art") is None:
        return None
    try:
        return importlib.metadata.version(ART_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def select_method(
    estimator: Any, method: str = "auto", *, art_available: bool | None = None, X: np.ndarray | None = None
) -> tuple[str, str]:
    """The method ``auto`` resolves to for ``estimator``, and why.

    :param method: a method of :data:`METHODS`; anything but ``auto`` is returned as it is (after a
        check that it can run on this model).
    :param art_available: whether ART may be used (default: whether it is installed).
    :param X: samples on which a linear model's folded form must reproduce its decision function
        (see :func:`linear_form`); without them the model's structure alone decides.
    :raises ConfigurationError: for an unknown method, or one that cannot run on this model.
    """
    if method not in METHODS:
        raise ConfigurationError(f"unknown robustness method {method!r}; use one of {', '.join(METHODS)}")
    if art_available is None:
        art_available = art_version() is not None
    linear = linear_form(estimator, X) is not None
    name = describe_model(estimator)
    if method == "auto":
        if linear:
            return "linear-exact", f"{name} is linear in its inputs: the exact worst case is computed"
        if art_available and _art_differentiable(estimator):
            return "pgd", f"{name} is differentiable: ART's projected gradient descent with the true labels"
        if art_available:
            return "hopskipjump", f"{name} is not differentiable: ART's decision-based HopSkipJump attack"
        return "noise", (
            f"{name} is not linear and ART is not installed: random noise only bounds robust accuracy "
            f"from above; install the robustness extra ({INSTALL_HINT})"
        )
    if method == "linear-exact" and not linear:
        raise ConfigurationError(
            f"method linear-exact needs a linear classifier (optionally after affine scalers) whose folded form "
            f"reproduces its decision_function; {name} is not one"
        )
    if method in ("fgsm", "pgd", "hopskipjump") and not art_available:
        raise ConfigurationError(f"method {method} needs IBM's Adversarial Robustness Toolbox: {INSTALL_HINT}")
    if method in ("fgsm", "pgd") and not _art_differentiable(estimator):
        raise ConfigurationError(
            f"method {method} needs a model ART can differentiate (LogisticRegression, SVC or LinearSVC, "
            f"optionally after affine scalers); {name} is not one: use hopskipjump or auto"
        )
    return method, f"requested: {method}"


# --------------------------------------------------------------------------------------------
# Prediction helpers
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence feature-name and ART import warnings while we call into sklearn and ART."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


class _Model:
    """Predicts class indices from a float array, naming the columns when the model was fitted on a frame."""

    def __init__(self, estimator: Any) -> None:
        import numpy as np

        self.estimator = estimator
        names = getattr(estimator, "feature_names_in_", None)
        self.columns: list[str] | None = [str(c) for c in names] if names is not None else None
        self.classes = np.asarray(getattr(estimator, "classes_", []))
        self._index = {cls: i for i, cls in enumerate(self.classes.tolist())}
        self._fast: Callable[[np.ndarray], np.ndarray] | None = None

    def frame(self, X: np.ndarray) -> Any:
        if self.columns is None:
            return X
        import pandas as pd

        return pd.DataFrame(X, columns=self.columns)

    def predict(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        if len(X) == 0:
            return np.asarray([], dtype=self.classes.dtype)
        with _quiet():
            return np.asarray(self.estimator.predict(self.frame(X)))

    def label_index(self, labels: np.ndarray) -> np.ndarray:
        """Class index of each label (-1 for a label the model does not know)."""
        import numpy as np

        return np.array([self._index.get(v, -1) for v in labels.tolist()], dtype=int)

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        """Class indices; a faster path for forests (attacks call this thousands of times)."""
        if self._fast is not None:
            return self._fast(X)
        return self.label_index(self.predict(X))

    def enable_fast_path(self, X: np.ndarray) -> bool:
        """Use a joblib-free forest predictor if it agrees with ``predict`` on ``X``."""
        import numpy as np
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        pre, final = _steps(self.estimator)
        if type(final) not in (RandomForestClassifier, ExtraTreesClassifier) or getattr(final, "n_outputs_", 1) != 1:
            return False
        n_classes = len(final.classes_)
        trees = [t.tree_ for t in final.estimators_]
        preprocess = self.estimator[:-1] if pre else None

        def fast(Xq: np.ndarray) -> np.ndarray:
            Z = Xq
            if preprocess is not None:
                with _quiet():
                    Z = np.asarray(preprocess.transform(self.frame(Xq)))
            Z32 = np.ascontiguousarray(Z, dtype=np.float32)
            total = np.zeros((len(Z32), n_classes))
            for tree in trees:
                proba = tree.predict(Z32)[:, :n_classes]
                norm = proba.sum(axis=1, keepdims=True)
                norm[norm == 0.0] = 1.0
                total += proba / norm
            return np.asarray(total.argmax(axis=1))

        try:
            agrees = bool(np.array_equal(fast(X), self.label_index(self.predict(X))))
        except Exception:  # noqa: BLE001 - the fast path is an optimisation; the model's own predict is the truth
            agrees = False
        if agrees:
            self._fast = fast
        return agrees


def _dual_norm(v: np.ndarray, norm: str) -> np.ndarray:
    import numpy as np

    return np.asarray(np.abs(v).sum(axis=-1) if norm == "inf" else np.sqrt((v * v).sum(axis=-1)))


def _check_inputs(epsilon: float, norm: str, scale: np.ndarray, n_features: int) -> None:
    import numpy as np

    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon <= 0:
        raise ConfigurationError(f"epsilon must be a positive number, not {epsilon!r}")
    if norm not in NORMS:
        raise ConfigurationError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if scale.shape != (n_features,) or not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ConfigurationError(f"scale must be {n_features} finite non-negative numbers (one per feature)")


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


def _exact_linear(
    form: LinearForm, X: np.ndarray, idx: np.ndarray, clean_correct: np.ndarray, epsilon: float, norm: str, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact robustness of an arg-max of linear scores, and the worst-case input of every sample."""
    import numpy as np

    W, b = form.W, form.b
    Wz = W * scale  # weights per unit of the (scaled) perturbation
    pair = Wz[:, None, :] - Wz[None, :, :]  # (k, k, n): w_c - w_k
    penalty = epsilon * _dual_norm(pair, norm)  # (k, k)
    scores = X @ W.T + b
    known = idx >= 0
    c = np.where(known, idx, 0)
    rows = np.arange(len(X))
    margins = scores[rows, c][:, None] - scores  # (N, k): s_c - s_k
    worst = margins - penalty[c]  # worst-case margin against every other class
    worst[rows, c] = np.inf
    k_star = worst.argmin(axis=1)
    robust = known & clean_correct & (worst[rows, k_star] > 0)
    direction = pair[c, k_star]  # (N, n) in scaled units
    if norm == "inf":
        delta_z = -epsilon * np.sign(direction)
    else:
        length = np.sqrt((direction * direction).sum(axis=1, keepdims=True))
        delta_z = -epsilon * np.divide(direction, length, out=np.zeros_like(direction), where=length > 0)
    delta_z[~known] = 0.0
    return robust, X + delta_z * scale


def _noise(
    model: _Model,
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


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """ART draws from numpy's global generator: seed it for reproducibility, then restore it."""
    import numpy as np

    state = np.random.get_state()
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        np.random.set_state(state)


def _import_art() -> None:
    """Import ART quietly (it warns that PyTorch is missing and logs at INFO; it writes ~/.art/config.json)."""
    with _quiet():
        logging.getLogger("art").setLevel(logging.WARNING)
        import art.attacks.evasion
        import art.estimators.classification
        import art.estimators.classification.scikitlearn  # noqa: F401


def _art_attack(
    model: _Model,
    X: np.ndarray,
    idx: np.ndarray,
    attack: np.ndarray,
    epsilon: float,
    norm: str,
    scale: np.ndarray,
    method: str,
    max_iter: int | None,
    random_state: int,
    predicted: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run an ART attack on the samples in ``attack``; return flip flags and witnesses (input units).

    The attack runs in scaled coordinates ``z = x / scale`` so that one scalar epsilon is the radius
    of every feature; features with scale 0 are masked out (never perturbed).
    """
    import numpy as np

    _import_art()
    from art.attacks.evasion import FastGradientMethod, HopSkipJump, ProjectedGradientDescent

    flipped = np.zeros(len(X), bool)
    witness = X.copy()
    rows = np.flatnonzero(attack)
    if not len(rows):
        return flipped, witness
    live = scale > 0
    unit = np.where(live, scale, 1.0)
    z = X[rows] / unit
    k = len(model.classes)
    onehot = np.eye(k, dtype=np.float32)[idx[rows]]
    art_norm: float = np.inf if norm == "inf" else 2
    mask = np.broadcast_to(live.astype(np.float32), z.shape).copy()
    z32 = z.astype(np.float32)
    with _quiet(), _seeded_global_numpy(random_state):
        if method in ("fgsm", "pgd"):
            from art.estimators.classification.scikitlearn import SklearnClassifier

            n = X.shape[1]
            prefix = _affine_prefix(model.estimator, n)
            if prefix is None:  # pragma: no cover - select_method checked it
                raise GateError(f"{describe_model(model.estimator)} cannot be differentiated by ART")
            a, c, final = prefix
            gain = a * unit  # model input = gain * z + c = (z - sub) / div
            if np.any(gain == 0):
                raise GateError("a scaler maps a feature to a constant; ART cannot differentiate through it")
            classifier = SklearnClassifier(model=_art_view(final, k), preprocessing=(-c / gain, 1.0 / gain))
            if method == "fgsm":
                attacker: Any = FastGradientMethod(classifier, norm=art_norm, eps=epsilon, targeted=False, batch_size=512)
            else:
                iters = max_iter or _DEFAULT_ITER["pgd"]
                attacker = ProjectedGradientDescent(
                    classifier,
                    norm=art_norm,
                    eps=epsilon,
                    eps_step=2.5 * epsilon / iters,
                    max_iter=iters,
                    targeted=False,
                    num_random_init=0,
                    batch_size=512,
                    verbose=False,
                )
            z_adv = attacker.generate(z32, y=onehot, mask=mask)
        else:
            from art.estimators.classification import BlackBoxClassifier

            model.enable_fast_path(X)

            def predict(zz: np.ndarray) -> np.ndarray:
                return np.asarray(np.eye(k, dtype=np.float32)[model.predict_index(np.asarray(zz, float) * unit)])

            z_all = X / unit
            lo = (z_all.min(axis=0) - 2 * epsilon - 1e-6).astype(np.float32)
            hi = (z_all.max(axis=0) + 2 * epsilon + 1e-6).astype(np.float32)
            classifier = BlackBoxClassifier(predict, input_shape=(X.shape[1],), nb_classes=k, clip_values=(lo, hi))
            init = _nearest_other_class(z_all, predicted, rows, idx, norm, live)
            attacker = HopSkipJump(
                classifier,
                norm=art_norm,
                max_iter=max_iter or _DEFAULT_ITER["hopskipjump"],
                max_eval=500,
                init_eval=20,
                init_size=100,
                batch_size=256,
                verbose=False,
            )
            z_adv = attacker.generate(z32, y=onehot, x_adv_init=init, mask=mask if not live.all() else None)
    delta = (np.asarray(z_adv, float) - z32.astype(float)) * live
    if norm == "inf":
        delta = np.clip(delta, -epsilon, epsilon)
    else:
        length = np.sqrt((delta * delta).sum(axis=1, keepdims=True))
        delta = delta * np.minimum(1.0, epsilon / np.maximum(length, 1e-300))
    candidate = X[rows] + delta * unit
    hit = model.label_index(model.predict(candidate)) != idx[rows]  # the model's own predict, never the fast path
    flipped[rows[hit]] = True
    witness[rows[hit]] = candidate[hit]
    return flipped, witness


def _art_view(final: Any, k: int) -> Any:
    """A shallow copy of ``final`` whose labels are class indices, as ART's sklearn wrappers assume.

    ART one-hot encodes ``predict``'s output as indices (string or non-contiguous labels break it)
    and reads SVC's ``probability`` flag, which scikit-learn 1.9 turned into a truthy
    ``"deprecated"`` default. Gradients are unaffected: they come from the fitted coefficients.
    """
    import copy

    import numpy as np
    from sklearn.svm import SVC

    view = copy.copy(final)
    view.classes_ = np.arange(k)
    if isinstance(view, SVC) and view.probability is not True:
        view.probability = False
    return view


def _nearest_other_class(
    z_all: np.ndarray, predicted: np.ndarray, rows: np.ndarray, idx: np.ndarray, norm: str, live: np.ndarray
) -> np.ndarray:
    """For each attacked sample, the nearest sample the model puts in another class (HopSkipJump's start).

    A sample with no such neighbour starts from itself, which makes HopSkipJump search at random.
    """
    import numpy as np

    init = z_all[rows].astype(np.float32)
    zl = z_all * live
    chunk = max(1, int(4_000_000 // max(1, z_all.size)))
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        diff = np.abs(zl[part][:, None, :] - zl[None, :, :])
        dist = diff.max(axis=2) if norm == "inf" else np.sqrt((diff * diff).sum(axis=2))
        dist[predicted[None, :] == idx[part][:, None]] = np.inf
        best = dist.argmin(axis=1)
        found = np.isfinite(dist[np.arange(len(part)), best])
        init[start : start + chunk][found] = z_all[best[found]].astype(np.float32)
    return init


# --------------------------------------------------------------------------------------------
# The pure, reusable engine
# --------------------------------------------------------------------------------------------


def robust_accuracy(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    epsilon: float,
    method: str,
    norm: str = "inf",
    random_state: int = 0,
    scale: Sequence[float] | np.ndarray | None = None,
    max_iter: int | None = None,
    noise_draws: int = NOISE_DRAWS,
) -> RobustnessMeasurement:
    """Measure the accuracy of a fitted classifier when every input may move within ``epsilon``.

    Pure: no I/O, no sampling (pass the rows to evaluate). Deterministic for a given ``random_state``.

    :param estimator: a fitted scikit-learn classifier or pipeline.
    :param X: the samples (array or DataFrame with the model's feature columns), numeric.
    :param y: their true labels. Attacks always use these, never the model's predictions.
    :param epsilon: the radius, in the model's input units (times ``scale``).
    :param method: one of :data:`METHODS` (``auto`` picks as described in the module docstring).
    :param norm: ``inf`` or ``2``.
    :param random_state: seed of the noise draws and of ART's random choices.
    :param scale: per-feature multiplier of ``epsilon`` (default: ones, i.e. input units). A zero
        freezes the feature.
    :param max_iter: iterations of ``pgd`` / ``hopskipjump`` (default 10).
    :param noise_draws: random perturbations tried per sample by ``noise`` (and by the attacks).
    :raises ConfigurationError: for invalid arguments or a method that cannot run on this model.
    """
    import numpy as np

    started = time.perf_counter()
    names = getattr(estimator, "feature_names_in_", None)
    if hasattr(X, "columns") and names is not None:
        missing = [str(c) for c in names if c not in X.columns]
        if missing:
            raise ConfigurationError(f"X lacks feature column(s) the model was fitted on: {', '.join(missing)}")
        X = X[list(names)]  # the model's column order
    Xa = np.asarray(X, dtype=float)
    labels = np.asarray(y)
    if Xa.ndim != 2 or labels.ndim != 1 or len(Xa) != len(labels):
        raise ConfigurationError("X must be 2-D and y 1-D with one label per row of X")
    if not np.all(np.isfinite(Xa)):
        raise ConfigurationError("X holds missing or infinite values")
    if not hasattr(estimator, "classes_") or not hasattr(estimator, "predict"):
        raise ConfigurationError(f"{type(estimator).__name__} is not a fitted classifier (no classes_)")
    n = Xa.shape[1]
    expected = _n_features(estimator)
    if expected is not None and expected != n:
        raise ConfigurationError(f"the model expects {expected} features, X has {n}")
    scale_arr = np.ones(n) if scale is None else np.asarray(scale, dtype=float)
    _check_inputs(epsilon, norm, scale_arr, n)
    if isinstance(noise_draws, bool) or not isinstance(noise_draws, int) or noise_draws < 0:
        raise ConfigurationError(f"noise_draws must be a non-negative integer, not {noise_draws!r}")
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1):
        raise ConfigurationError(f"max_iter must be a positive integer, not {max_iter!r}")

    model = _Model(estimator)
    resolved, reason = select_method(estimator, method, X=Xa)
    notes = [reason]
    idx = model.label_index(labels)
    predicted = model.predict(Xa)
    clean_correct = (idx >= 0) & (model.label_index(predicted) == idx)
    witnesses: dict[str, int] = {}
    version: str | None = None

    if resolved == "linear-exact":
        form = linear_form(estimator, Xa)
        if form is None:  # pragma: no cover - select_method checked it on the same samples
            raise ConfigurationError(f"{describe_model(estimator)}: linear-exact cannot be trusted for this model")
        robust, adversarial = _exact_linear(form, Xa, idx, clean_correct, float(epsilon), norm, scale_arr)
        # Re-check with the model's own predict: the worst-case input of a robust sample must not flip,
        # that of a non-robust one must. Disagreement only at exact ties (numerically zero margins).
        at_worst = model.label_index(model.predict(adversarial)) == idx
        disagree = int(np.sum(clean_correct & (at_worst != robust)))
        witnesses = {"exact": int(np.sum(clean_correct & ~robust))}
        if disagree:
            notes.append(f"{disagree} sample(s) lie numerically on the decision boundary at the worst case")
        notes.append("exact worst case over the whole ball (linear decision function)")
    else:
        noise_flip, noise_witness = _noise(
            model, Xa, idx, clean_correct, float(epsilon), norm, scale_arr, noise_draws, random_state
        )
        robust = clean_correct & ~noise_flip
        adversarial = noise_witness
        witnesses = {"noise": int(noise_flip.sum())}
        if resolved == "noise":
            notes.append(
                f"{noise_draws} random {'corners of the L-inf box' if norm == 'inf' else 'points on the L2 sphere'} "
                "per sample: an upper bound on robust accuracy, not the worst case"
            )
        else:
            version = art_version()
            attack_flip, attack_witness = _art_attack(
                model,
                Xa,
                idx,
                clean_correct,
                float(epsilon),
                norm,
                scale_arr,
                resolved,
                max_iter,
                random_state,
                model.label_index(predicted),
            )
            witnesses["attack"] = int(attack_flip.sum())
            adversarial = np.where(attack_flip[:, None], attack_witness, adversarial)
            robust = clean_correct & ~noise_flip & ~attack_flip
            notes.append(
                f"ART {resolved} attack with the true labels (plus {noise_draws} noise draws): an upper bound on robust "
                "accuracy; a stronger attack may find more"
            )
    return RobustnessMeasurement(
        method=resolved,
        exactness=EXACTNESS[resolved],
        norm=norm,
        epsilon=float(epsilon),
        scale=scale_arr,
        labels=labels,
        clean_correct=clean_correct,
        robust=robust,
        adversarial=adversarial,
        art_version=version,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        witnesses=witnesses,
    )


# --------------------------------------------------------------------------------------------
# Loading models without executing them
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """A model loaded from disk and how: ``mlflow/skops``, ``skops``, ``mlflow/pickle``, ``pickle``..."""

    estimator: Any
    format: str


def load_model(path: str | os.PathLike[str], *, trust_pickle: bool = False, trusted_types: Sequence[str] = ()) -> LoadedModel:
    """Load a scikit-learn model from an MLflow model directory or a ``.skops`` file.

    skops files are loaded with skops' default trusted types plus ``trusted_types`` (never with
    the allow-list an MLmodel file carries: the model wrote that itself); decision trees are
    accepted after their node arrays are checked (:func:`validate_trees`). Pickle-based files are
    refused unless ``trust_pickle`` is set, since loading them runs code from the file. Run the
    model-scan gate first either way.

    :param path: an MLflow model directory (with an ``MLmodel`` file and the ``sklearn`` flavor), a
        ``.skops`` file, or (with ``trust_pickle``) a ``.pkl`` / ``.joblib`` file.
    :param trust_pickle: allow pickle, cloudpickle and joblib files, which execute code when loaded.
    :param trusted_types: further types (``module.Class``) you reviewed and allow in a skops file.
    :raises GateError: the model cannot be loaded, or only by trusting what was not trusted.
    """
    root = Path(path)
    if not root.exists():
        raise GateError(f"model {root} does not exist")
    if root.is_dir():
        return _load_mlflow_dir(root, trust_pickle=trust_pickle, trusted_types=trusted_types)
    suffix = root.suffix.lower()
    if suffix == ".skops":
        return LoadedModel(_load_skops(root, trusted_types), "skops")
    if suffix in PICKLE_SUFFIXES:
        return LoadedModel(_load_pickle(root, "joblib" if suffix == ".joblib" else "pickle", trust_pickle), suffix[1:])
    raise GateError(
        f"model {root}: unsupported model file {root.name!r}; expected an MLflow model directory or a .skops file "
        "(or a pickle with trust_pickle=True)"
    )


def _load_mlflow_dir(root: Path, *, trust_pickle: bool, trusted_types: Sequence[str]) -> LoadedModel:
    import yaml

    mlmodel = root / "MLmodel"
    if not mlmodel.is_file():
        raise GateError(f"model {root} is a directory without an MLmodel file; expected an MLflow model directory")
    try:
        spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GateError(f"{mlmodel} cannot be read: {exc}") from exc
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    if not isinstance(flavors, dict) or not isinstance(flavors.get("sklearn"), dict):
        names = sorted(flavors) if isinstance(flavors, dict) else []
        raise GateError(
            f"unsupported model type: {root} has no sklearn flavor (flavors: {', '.join(names) or 'none'}); "
            "the robustness gate evaluates scikit-learn classifiers"
        )
    conf = flavors["sklearn"]
    name = str(conf.get("pickled_model") or "")
    file = (root / name).resolve()
    if not name or root.resolve() not in file.parents or not file.is_file():
        raise GateError(f"{mlmodel} names a model file {name!r} that is not a file inside the model directory")
    fmt = str(conf.get("serialization_format") or "pickle")
    if fmt == "skops":
        return LoadedModel(_load_skops(file, trusted_types), "mlflow/skops")
    if fmt in ("pickle", "cloudpickle"):
        return LoadedModel(_load_pickle(file, fmt, trust_pickle), f"mlflow/{fmt}")
    raise GateError(f"{mlmodel}: unknown serialization format {fmt!r}")


def _load_skops(file: Path, trusted_types: Sequence[str]) -> Any:
    import skops.io as sio

    try:
        untrusted = [str(t) for t in sio.get_untrusted_types(file=file)]
    except Exception as exc:
        raise GateError(f"{file} is not a readable skops file: {type(exc).__name__}: {exc}") from exc
    allowed = {*trusted_types, TREE_TYPE}
    refused = [t for t in untrusted if t not in allowed]
    if refused:
        raise GateError(
            f"{file} references types skops does not trust: {', '.join(refused)}. Review them and pass "
            "trusted_types=[...] only if they are safe to load"
        )
    try:
        with _quiet():
            return sio.load(file, trusted=[t for t in untrusted if t in allowed])
    except Exception as exc:
        raise GateError(f"{file} cannot be loaded with skops: {type(exc).__name__}: {exc}") from exc


def _load_pickle(file: Path, fmt: str, trust_pickle: bool) -> Any:
    if not trust_pickle:
        raise GateError(
            f"{file} is a {fmt} file: loading it executes code from the file. Refusing without trust_pickle=True "
            "(run the model-scan gate first, or save the model with skops)"
        )
    try:
        with _quiet():
            if fmt == "joblib":
                import joblib

                return joblib.load(file)
            if fmt == "cloudpickle":
                import cloudpickle

                with open(file, "rb") as fh:
                    return cloudpickle.load(fh)
            with open(file, "rb") as fh:
                return pickle.load(fh)
    except Exception as exc:
        raise GateError(f"{file} cannot be unpickled: {type(exc).__name__}: {exc}") from exc


def validate_trees(estimator: Any) -> int:
    """Check the node arrays of every decision tree in ``estimator``; return how many were checked.

    scikit-learn indexes tree nodes and features without bounds checks, so a crafted tree (from a
    skops or pickle file) could make ``predict`` read out of bounds. Each tree must have
    ``node_count <= capacity``, children that come after their parent and inside the tree (which also
    rules out cycles), split features inside ``[0, n_features_in_)`` and a value array of its shape.

    :raises GateError: naming the first malformed tree.
    """
    import numpy as np
    from sklearn.tree._tree import Tree

    checked = 0
    seen: set[int] = set()

    def check(tree: Any, owner: Any, where: str) -> None:
        n_features = getattr(owner, "n_features_in_", None)
        n, capacity = int(tree.node_count), int(tree.capacity)
        if n_features is None or int(tree.n_features) != int(n_features):
            raise GateError(f"{where}: the tree's feature count does not match its estimator")
        if not 0 < n <= capacity:
            raise GateError(f"{where}: node_count {n} is outside the tree's storage ({capacity} nodes)")
        left, right, feature = tree.children_left, tree.children_right, tree.feature
        nodes = np.arange(n)
        leaf = left == -1
        if np.any(leaf != (right == -1)):
            raise GateError(f"{where}: a node has exactly one child")
        inner = ~leaf
        for child in (left, right):
            if np.any(child[inner] <= nodes[inner]) or np.any(child[inner] >= n):
                raise GateError(f"{where}: a child index is out of range or points backwards")
        if np.any(feature[inner] < 0) or np.any(feature[inner] >= int(n_features)):
            raise GateError(f"{where}: a split feature index is out of range")
        if tree.value.shape[0] != n:
            raise GateError(f"{where}: the value array does not match the node count")

    def visit(obj: Any, where: str, depth: int) -> None:
        nonlocal checked
        if depth > 64 or id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, np.generic)):
            return
        seen.add(id(obj))
        if isinstance(obj, Tree):
            raise GateError(f"{where}: a decision tree outside an estimator's tree_ attribute cannot be checked")
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                for i, item in enumerate(obj.ravel().tolist()):
                    visit(item, f"{where}[{i}]", depth + 1)
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            for i, item in enumerate(obj):
                visit(item, f"{where}[{i}]", depth + 1)
            return
        if isinstance(obj, dict):
            for key, item in obj.items():
                visit(item, f"{where}[{key!r}]", depth + 1)
            return
        attributes = getattr(obj, "__dict__", None)
        if not isinstance(attributes, dict):
            return
        for name, item in attributes.items():
            if name == "tree_" and isinstance(item, Tree):
                check(item, obj, f"{where}.tree_")
                checked += 1
                seen.add(id(item))
            else:
                visit(item, f"{where}.{name}", depth + 1)

    visit(estimator, type(estimator).__name__, 0)
    return checked


# --------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------


def _check_policy(
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


def _check_classifier(estimator: Any) -> None:
    from sklearn.base import is_classifier

    if not hasattr(estimator, "predict") or not is_classifier(estimator) or not hasattr(estimator, "classes_"):
        raise GateError(
            f"unsupported model type {describe_model(estimator)}: the robustness gate measures fitted scikit-learn "
            "classifiers (accuracy under attack is undefined for regressors and transformers)"
        )


def _prepare(
    frame: pd.DataFrame, label_column: str, feature_columns: Sequence[str] | None, estimator: Any, data: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[str], int]:
    """Features (in the model's order), labels and row numbers of the usable rows; rows dropped."""
    import numpy as np
    from pandas.api.types import is_numeric_dtype

    columns = [str(c) for c in frame.columns]
    if label_column not in columns:
        raise GateError(f"label column {label_column!r} is not in {data} (columns: {', '.join(columns[:30])})")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        features = [str(c) for c in names]
        if feature_columns is not None and set(map(str, feature_columns)) != set(features):
            raise GateError(
                f"feature_columns {list(feature_columns)} differ from the columns the model was fitted on: {features}"
            )
    elif feature_columns is not None:
        features = [str(c) for c in feature_columns]
    else:
        features = [c for c in columns if c != label_column]
    if label_column in features:
        raise GateError(f"the label column {label_column!r} cannot also be a feature")
    missing = [c for c in features if c not in columns]
    if missing:
        raise GateError(f"{data} lacks the feature column(s) {', '.join(missing)}")
    n_expected = _n_features(estimator)
    if n_expected is not None and n_expected != len(features):
        raise GateError(f"the model expects {n_expected} features, {len(features)} were selected: {', '.join(features)}")
    for c in features:
        if not is_numeric_dtype(frame[c]):
            raise GateError(f"feature {c!r} is not numeric ({frame[c].dtype}); input perturbations are defined for numbers")
    X = frame[features].astype(float)
    usable = np.isfinite(X.to_numpy()).all(axis=1) & frame[label_column].notna().to_numpy()
    rows = np.flatnonzero(usable)
    if not len(rows):
        raise GateError(f"{data} holds no row with a label and finite values in every feature")
    return X.iloc[rows].reset_index(drop=True), frame[label_column].to_numpy()[rows], rows, features, int(len(frame) - len(rows))


def evaluate_robustness(
    model: str,
    data: str,
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
    store: MLflowEvidenceStore | None = None,
    csv_delimiter: str | None = None,
) -> GateOutcome:
    """Measure a classifier's accuracy under attack on a data file and reject it below a threshold.

    Run the model-scan gate before this one: this gate loads the model (see :func:`load_model` for
    what it refuses to load) and judges its behaviour, not the safety of its file.

    :param model: an MLflow model directory (``sklearn`` flavor) or ``.skops`` file: a local path or an
        ``s3://``, ``runs:/`` or ``models:/`` URI.
    :param data: path or ``s3://`` URI of a CSV or Parquet file with the features and the label.
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
    :param allow_bounds: let a ``noise`` bound pass; by default only an exact result or an attack can.
    :param attack_max_samples: at most this many rows for ``hopskipjump`` and ``pgd`` (slow per sample).
    :param max_iter: iterations of ``pgd`` / ``hopskipjump`` (default 10).
    :param noise_draws: random perturbations tried per sample.
    :param trust_pickle: allow loading pickle-based models (they execute code when loaded).
    :param trusted_types: further types allowed in a skops file.
    :param store: the MLflow store to fetch ``runs:/`` / ``models:/`` models from (default: configuration).
    :param csv_delimiter: delimiter of a CSV data file (default ``,``).
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
    }
    if feature_columns is not None:
        policy["feature_columns"] = [str(c) for c in feature_columns]

    def body() -> Evaluation:
        import numpy as np

        _check_policy(
            label_column=label_column,
            epsilon=epsilon,
            min_robust_accuracy=min_robust_accuracy,
            max_accuracy_drop=max_accuracy_drop,
            method=method,
            max_samples=max_samples,
            norm=norm,
            epsilon_scale=epsilon_scale,
            attack_max_samples=attack_max_samples,
        )
        location = str(model)
        with tempfile.TemporaryDirectory(prefix="mlsecops-robustness-") as tmp:
            local = fetch(location, Path(tmp, "model"), store)
            digest = sha256_path(local)
            loaded = load_model(local, trust_pickle=trust_pickle, trusted_types=trusted_types)
            if sha256_path(local) != digest:
                raise GateError(f"model {location} changed while it was being loaded; refusing to judge a moving target")
        model_subject = Subject(subject_name(location), digest)
        estimator = loaded.estimator
        _check_classifier(estimator)
        trees = validate_trees(estimator)
        table = load_table(data, csv_delimiter=csv_delimiter)
        X_all, y_all, rows, features, dropped = _prepare(table.frame, label_column, feature_columns, estimator, data)
        known = _Model(estimator).label_index(y_all) >= 0
        if not known.any():
            raise GateError(
                f"none of the labels in column {label_column!r} is a class the model predicts "
                f"(model classes: {[str(c) for c in np.asarray(estimator.classes_).tolist()][:20]})"
            )
        scale = X_all.to_numpy().std(axis=0) if epsilon_scale == "std" else np.ones(len(features))
        resolved, reason = select_method(estimator, method, X=X_all.to_numpy())
        cap = min(max_samples, attack_max_samples) if resolved in ("hopskipjump", "pgd") else max_samples
        order = np.random.default_rng(random_state).permutation(len(rows))
        chosen = np.sort(order[:cap])
        measured = robust_accuracy(
            estimator,
            X_all.iloc[chosen],
            y_all[chosen],
            epsilon=float(epsilon),
            method=resolved,
            norm=norm,
            random_state=random_state,
            scale=scale,
            max_iter=max_iter,
            noise_draws=noise_draws,
        )
        notes = [reason, *measured.notes[1:]]
        if len(chosen) < len(rows):
            notes.append(f"{len(chosen)} of {len(rows)} usable rows evaluated, drawn at random (seed {random_state})")
        if dropped:
            notes.append(f"{dropped} row(s) without a label or with a missing/infinite feature were skipped")
        flipped_rows = rows[chosen[measured.flipped]]
        units = "input units" if epsilon_scale == "input" else "standard deviations"
        norm_name = "L-inf" if norm == "inf" else "L2"
        robust, clean, drop = measured.robust_accuracy, measured.clean_accuracy, measured.accuracy_drop
        how = {EXACT: "exact worst case", ATTACK: "attack: an upper bound", BOUND: "noise: an upper bound"}[measured.exactness]
        findings: list[Finding] = []
        meets = robust >= min_robust_accuracy
        accuracy_message = (
            f"robust accuracy {robust:.3f} at epsilon {epsilon:g} ({norm_name}, {units}) "
            f"{'meets' if meets else 'is below'} the required {min_robust_accuracy:g} "
            f"(clean accuracy {clean:.3f}, drop {drop:.3f}; {measured.method}, {how}; {measured.samples} samples, "
            f"{len(flipped_rows)} flipped)"
        )
        if not meets and measured.exactness == BOUND:
            accuracy_message += "; even this upper bound is below the threshold, so the true value is too"
        findings.append(_finding("robustness.accuracy", accuracy_message, meets))
        drop_ok = max_accuracy_drop is None or drop <= max_accuracy_drop
        if max_accuracy_drop is not None:
            findings.append(
                _finding(
                    "robustness.accuracy-drop",
                    f"accuracy drops by {drop:.3f} under attack ({clean:.3f} -> {robust:.3f}); "
                    f"the policy allows {max_accuracy_drop:g}",
                    drop_ok,
                )
            )
        method_ok = measured.exactness != BOUND or allow_bounds or not (meets and drop_ok)
        if measured.exactness == BOUND and meets and drop_ok:
            if allow_bounds:
                message = "robustness not measured exactly: noise only bounds robust accuracy from above; accepted by policy"
            elif method == "auto":
                message = (
                    f"robustness not measured exactly; install the robustness extra ({INSTALL_HINT}): random noise only "
                    f"bounds robust accuracy from above, and a bound cannot pass unless the policy sets allow_bounds"
                )
            else:
                message = (
                    "robustness not measured exactly: method noise only bounds robust accuracy from above; use an exact "
                    "method or an attack, or set allow_bounds to accept a bound"
                )
            findings.append(_finding("robustness.method", message, method_ok))
        passed = meets and drop_ok and method_ok
        radius = {f: float(epsilon) * float(s) for f, s in zip(features, scale.tolist(), strict=False)}
        details: dict[str, Any] = {
            "method": measured.method,
            "exactness": measured.exactness,
            "norm": norm,
            "epsilon_scale": epsilon_scale,
            "method_reason": reason,
            "model_type": describe_model(estimator),
            "model_format": loaded.format,
            "features": features[:200],
            "feature_radius": dict(list(radius.items())[:200]),
            "samples_available": len(rows),
            "rows_skipped": dropped,
            "witnesses": dict(measured.witnesses),
            "notes": notes,
            "seconds": round(measured.seconds, 4),
        }
        if trees:
            details["trees_checked"] = trees
        if measured.art_version:
            details["art_version"] = measured.art_version
        report = {
            "gate": GATE_NAME,
            "model": model_subject.to_intoto(),
            "data": table.subject.to_intoto(),
            "model_type": details["model_type"],
            "method": measured.method,
            "exactness": measured.exactness,
            "norm": norm,
            "epsilon": float(epsilon),
            "epsilon_scale": epsilon_scale,
            "feature_radius": radius,
            "samples": measured.samples,
            "samples_available": len(rows),
            "clean_accuracy": clean,
            "robust_accuracy": robust,
            "accuracy_drop": drop,
            "per_class": measured.per_class(),
            "flipped": {
                "count": len(flipped_rows),
                "rows": [int(r) for r in flipped_rows[:MAX_REPORTED_ROWS]],
                "truncated": len(flipped_rows) > MAX_REPORTED_ROWS,
                "row_numbering": "0-based position among the data rows of the file (header excluded)",
            },
            "witnesses": dict(measured.witnesses),
            "art_version": measured.art_version,
            "notes": notes,
        }
        summary = (
            f"robust accuracy {robust:.3f} (clean {clean:.3f}) at epsilon {epsilon:g} {norm_name} ({units}) on "
            f"{measured.samples} samples; {measured.method} ({measured.exactness})"
        )
        return Evaluation(
            passed=passed,
            summary=summary,
            subjects=[model_subject, table.subject],
            findings=findings,
            metrics={
                "clean_accuracy": clean,
                "robust_accuracy": robust,
                "accuracy_drop": drop,
                "epsilon": float(epsilon),
                "samples": float(measured.samples),
                "flipped_samples": float(len(flipped_rows)),
            },
            files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
            details=details,
        )

    distributions = ["scikit-learn", "numpy", "skops"]
    if art_version() is not None:
        distributions.append(ART_DISTRIBUTION)
    return run_gate(GATE_NAME, body, policy=policy, warn_only=warn_only, distributions=distributions, context=context)


def _finding(identifier: str, message: str, passed: bool) -> Finding:
    if passed:
        return Finding(id=identifier, severity=Severity.INFO, message=message, passed=True)
    return Finding(id=identifier, severity=Severity.HIGH, message=message, atlas=_ATLAS, owasp_ml=_OWASP, passed=False)
