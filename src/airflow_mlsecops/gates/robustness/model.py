"""What the robustness engine reads from a scikit-learn model: pipeline steps, affine scalers, class indices."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.io.model_loader import quiet_warnings

if TYPE_CHECKING:
    import numpy as np


def pipeline_steps(estimator: Any) -> tuple[list[Any], Any]:
    """Preprocessing steps and the final estimator (a plain model has no steps)."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps]
        return steps[:-1], steps[-1]
    return [], estimator


def describe_model(estimator: Any) -> str:
    """``Pipeline(StandardScaler -> LogisticRegression)`` or the class name of a plain model."""
    pre, final = pipeline_steps(estimator)
    if not pre and final is estimator:
        return type(estimator).__name__
    return (
        "Pipeline("
        + " -> ".join(type(s).__name__ if s not in (None, "passthrough") else "passthrough" for s in [*pre, final])
        + ")"
    )


def feature_count(estimator: Any) -> int | None:
    """How many input features the model (or its first pipeline step) was fitted on; None if unknown."""
    n = getattr(estimator, "n_features_in_", None)
    if n is None:
        pre, final = pipeline_steps(estimator)
        n = getattr(pre[0] if pre else final, "n_features_in_", None)
    return int(n) if n is not None else None


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


def affine_prefix(estimator: Any, n: int) -> tuple[np.ndarray, np.ndarray, Any] | None:
    """Fold the preprocessing steps into one diagonal affine map ``a * x + c``; None if one is not affine."""
    import numpy as np

    pre, final = pipeline_steps(estimator)
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


class ClassIndexPredictor:
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
        with quiet_warnings():
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

        pre, final = pipeline_steps(self.estimator)
        if type(final) not in (RandomForestClassifier, ExtraTreesClassifier) or getattr(final, "n_outputs_", 1) != 1:
            return False
        n_classes = len(final.classes_)
        trees = [t.tree_ for t in final.estimators_]
        preprocess = self.estimator[:-1] if pre else None

        def fast(Xq: np.ndarray) -> np.ndarray:
            Z = Xq
            if preprocess is not None:
                with quiet_warnings():
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
