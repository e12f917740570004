"""IBM's Adversarial Robustness Toolbox (ART): FGSM and PGD for differentiable models, HopSkipJump for the rest.

ART is an optional extra (``pip install 'airflow-mlsecops[robustness]'``), imported only when an attack runs.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.robustness.model import ClassIndexPredictor, affine_prefix, describe_model, feature_count
from airflow_mlsecops.gates.robustness.options import ART_DISTRIBUTION
from airflow_mlsecops.io.model_loader import quiet_warnings

if TYPE_CHECKING:
    import numpy as np

_DEFAULT_ITERATIONS = {"pgd": 10, "hopskipjump": 10}


def art_differentiable(estimator: Any) -> bool:
    """ART computes loss gradients for LogisticRegression, SVC and LinearSVC (after affine scalers)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC, LinearSVC

    n = feature_count(estimator)
    if n is None:
        return False
    prefix = affine_prefix(estimator, n)
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
    with quiet_warnings():
        logging.getLogger("art").setLevel(logging.WARNING)
        import art.attacks.evasion
        import art.estimators.classification
        import art.estimators.classification.scikitlearn  # noqa: F401


def art_attack(
    model: ClassIndexPredictor,
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
    with quiet_warnings(), _seeded_global_numpy(random_state):
        if method in ("fgsm", "pgd"):
            from art.estimators.classification.scikitlearn import SklearnClassifier

            n = X.shape[1]
            prefix = affine_prefix(model.estimator, n)
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
                iters = max_iter or _DEFAULT_ITERATIONS["pgd"]
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
                max_iter=max_iter or _DEFAULT_ITERATIONS["hopskipjump"],
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
