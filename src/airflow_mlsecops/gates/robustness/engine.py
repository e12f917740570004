"""The pure robustness engine: pick a method for a model and measure its accuracy under attack.

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
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.robustness.art_attacks import art_attack, art_differentiable, art_version
from airflow_mlsecops.gates.robustness.linear import exact_linear_robustness, linear_form
from airflow_mlsecops.gates.robustness.measurement import RobustnessMeasurement
from airflow_mlsecops.gates.robustness.model import ClassIndexPredictor, describe_model, feature_count
from airflow_mlsecops.gates.robustness.noise import noise_flips
from airflow_mlsecops.gates.robustness.options import EXACTNESS, INSTALL_HINT, METHODS, NOISE_DRAWS, NORMS

if TYPE_CHECKING:
    import numpy as np


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
        if art_available and art_differentiable(estimator):
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
    if method in ("fgsm", "pgd") and not art_differentiable(estimator):
        raise ConfigurationError(
            f"method {method} needs a model ART can differentiate (LogisticRegression, SVC or LinearSVC, "
            f"optionally after affine scalers); {name} is not one: use hopskipjump or auto"
        )
    return method, f"requested: {method}"


def _check_inputs(epsilon: float, norm: str, scale: np.ndarray, n_features: int) -> None:
    import numpy as np

    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon <= 0:
        raise ConfigurationError(f"epsilon must be a positive number, not {epsilon!r}")
    if norm not in NORMS:
        raise ConfigurationError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if scale.shape != (n_features,) or not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ConfigurationError(f"scale must be {n_features} finite non-negative numbers (one per feature)")


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
    expected = feature_count(estimator)
    if expected is not None and expected != n:
        raise ConfigurationError(f"the model expects {expected} features, X has {n}")
    scale_arr = np.ones(n) if scale is None else np.asarray(scale, dtype=float)
    _check_inputs(epsilon, norm, scale_arr, n)
    if isinstance(noise_draws, bool) or not isinstance(noise_draws, int) or noise_draws < 0:
        raise ConfigurationError(f"noise_draws must be a non-negative integer, not {noise_draws!r}")
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1):
        raise ConfigurationError(f"max_iter must be a positive integer, not {max_iter!r}")

    model = ClassIndexPredictor(estimator)
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
        robust, adversarial = exact_linear_robustness(form, Xa, idx, clean_correct, float(epsilon), norm, scale_arr)
        # Re-check with the model's own predict: the worst-case input of a robust sample must not flip,
        # that of a non-robust one must. Disagreement only at exact ties (numerically zero margins).
        at_worst = model.label_index(model.predict(adversarial)) == idx
        disagree = int(np.sum(clean_correct & (at_worst != robust)))
        witnesses = {"exact": int(np.sum(clean_correct & ~robust))}
        if disagree:
            notes.append(f"{disagree} sample(s) lie numerically on the decision boundary at the worst case")
        notes.append("exact worst case over the whole ball (linear decision function)")
    else:
        noise_flip, noise_witness = noise_flips(
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
            attack_flip, attack_witness = art_attack(
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
