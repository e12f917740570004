"""The exact worst case of a linear classifier (after affine scalers) over an L-inf or L2 ball.

For a linear decision function ``w.x + b`` the worst case over the L-inf ball is
``|w.x + b| - eps*||w||_1`` (L2: ``eps*||w||_2``); for ``k`` classes (arg-max of linear scores), a
sample of class ``c`` is robust iff ``(w_c - w_k).x + (b_c - b_k) - eps*||w_c - w_k||_1 > 0`` for
every ``k != c``. The folded form is checked against the model's ``decision_function`` before it is
trusted (:func:`linear_form`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.robustness.measurement import LinearForm
from airflow_mlsecops.gates.robustness.model import ClassIndexPredictor, affine_prefix, feature_count
from airflow_mlsecops.io.model_loader import quiet_warnings

if TYPE_CHECKING:
    import numpy as np


def linear_form(estimator: Any, X: np.ndarray | None = None) -> LinearForm | None:
    """The linear score function of a (pipeline ending in a) linear classifier, in input units.

    Returns None when the model is not linear, or when ``X`` is given and the folded form does not
    reproduce the model's ``decision_function`` and ``predict`` on it (the safety check that makes
    ``linear-exact`` trustworthy for models it was not written for).
    """
    import numpy as np
    from sklearn.svm import SVC, NuSVC

    n = feature_count(estimator)
    if n is None:
        return None
    prefix = affine_prefix(estimator, n)
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

    model = ClassIndexPredictor(estimator)
    with quiet_warnings():
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


def _dual_norm(v: np.ndarray, norm: str) -> np.ndarray:
    import numpy as np

    return np.asarray(np.abs(v).sum(axis=-1) if norm == "inf" else np.sqrt((v * v).sum(axis=-1)))


def exact_linear_robustness(
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
