"""Maintainer tool: regenerate the scikit-learn part of the model scanner's allowlist.

It fits every scikit-learn estimator that fits with default parameters on a small data set (plus
meta-estimators, pipelines and searches built by hand), pickles each one with protocols 0-5,
cloudpickle and joblib (uncompressed and compressed), loads those pickles back through
``pickle._Unpickler`` with ``find_class`` hooked, and prints every ``module.name`` that was looked
up. Only pickles this tool made itself are loaded. The output goes, reviewed, into
:data:`airflow_mlsecops.gates._model_scan.allowlist.SKLEARN`::

    python -m airflow_mlsecops.gates._model_scan.build_allowlist > /tmp/sklearn_refs.txt

Names outside ``sklearn.`` are printed in a second section: they must already be in the hand-kept
groups of the allowlist (numpy, scipy, builtins...) or be reviewed before they are added.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _effective(proto: int, module: str, name: str) -> str:
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def references_of(obj: Any, seen: Counter[str]) -> None:
    """Pickle ``obj`` every way models are saved and count the names loading it looks up."""
    import cloudpickle
    import joblib

    unpickler: Any = pickle._Unpickler  # the pure-Python one: find_class is patchable
    original = unpickler.find_class

    def find_class(self: Any, module: str, name: str) -> Any:
        seen[_effective(self.proto, module, name)] += 1
        return original(self, module, name)

    unpickler.find_class = find_class
    try:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            unpickler(io.BytesIO(pickle.dumps(obj, protocol=proto))).load()
        unpickler(io.BytesIO(cloudpickle.dumps(obj))).load()
        with tempfile.TemporaryDirectory() as tmp:
            for compress in (0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("lz4", 3)):
                path = Path(tmp, "m.joblib")
                joblib.dump(obj, path, compress=compress)
                joblib.load(path)
    finally:
        unpickler.find_class = original


def fitted_estimators() -> Iterator[Any]:
    """Every estimator this tool can fit: all of ``all_estimators()`` that fit with defaults, and more."""
    import numpy as np
    from sklearn.datasets import make_classification, make_regression
    from sklearn.utils import all_estimators

    rng = np.random.RandomState(0)
    Xc, yc = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    Xr, yr = make_regression(120, 6, random_state=0)
    Xpos = np.abs(Xc)
    texts = ["the cat sat", "a dog ran", "the dog sat down", "cats and dogs"] * 10
    ytext = [0, 1, 1, 0] * 10
    for name, cls in all_estimators():
        for X, y in ((Xc, yc), (Xpos, yc), (Xr, yr), (texts, ytext)):
            try:
                est = cls()
                if name in ("MultiTaskElasticNet", "MultiTaskLasso", "MultiTaskElasticNetCV", "MultiTaskLassoCV"):
                    est.fit(X, np.c_[y, y])
                else:
                    est.fit(X, y)
            except Exception:  # noqa: BLE001 - an estimator that needs parameters is built by hand below
                continue
            yield est
            break
    from sklearn.base import is_classifier

    Xb, yb = make_classification(120, 6, n_informative=4, n_classes=2, random_state=0)
    for _name, cls in all_estimators(type_filter="classifier"):
        try:
            est = cls()
            if is_classifier(est):
                yield est.fit(Xb, yb)
        except Exception:  # noqa: BLE001 - needs parameters
            continue
    yield from _hand_built(Xc, yc, Xr, yr, rng)
    yield from _losses(Xb, yb, Xr, yr)


def _losses(Xb: Any, yb: Any, Xr: Any, yr: Any) -> Iterator[Any]:
    """Estimators whose fitted state holds a loss object: one per loss they offer."""
    import numpy as np
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.linear_model import GammaRegressor, SGDClassifier, SGDRegressor, TweedieRegressor

    ypos = np.abs(yr) + 1.0
    for loss in ("log_loss", "exponential"):
        yield GradientBoostingClassifier(n_estimators=3, loss=loss).fit(Xb, yb)
    for loss in ("squared_error", "absolute_error", "huber", "quantile"):
        yield GradientBoostingRegressor(n_estimators=3, loss=loss).fit(Xr, yr)
    for loss in ("squared_error", "absolute_error", "gamma", "poisson", "quantile"):
        kwargs = {"quantile": 0.5} if loss == "quantile" else {}
        yield HistGradientBoostingRegressor(max_iter=3, loss=loss, **kwargs).fit(Xr, ypos)
    yield HistGradientBoostingClassifier(max_iter=3).fit(Xb, yb)
    for loss in ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error", "huber"):
        yield SGDClassifier(loss=loss, max_iter=5).fit(Xb, yb)
    for loss in ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"):
        yield SGDRegressor(loss=loss, max_iter=5).fit(Xr, yr)
    for power in (0, 1, 1.5, 2, 3):
        yield TweedieRegressor(power=power).fit(Xr, ypos)
    yield GammaRegressor().fit(Xr, ypos)


def _hand_built(Xc: Any, yc: Any, Xr: Any, yr: Any, rng: Any) -> Iterator[Any]:
    import numpy as np
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import (
        AdaBoostClassifier,
        BaggingClassifier,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        IsolationForest,
        RandomForestClassifier,
        RandomForestRegressor,
        StackingClassifier,
        StackingRegressor,
        VotingClassifier,
        VotingRegressor,
    )
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.feature_selection import RFE, SelectFromModel
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.DataFrame(
        {
            "num": rng.normal(size=120),
            "cat": rng.choice(["a", "b", "c"], size=120),
            "other": rng.choice(["x", "y"], size=120),
        }
    )
    column = ColumnTransformer(
        [("num", StandardScaler(), ["num"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["cat", "other"])]
    )
    yield Pipeline([("prep", column), ("clf", LogisticRegression(max_iter=200))]).fit(frame, yc)
    yield make_pipeline(OrdinalEncoder(), SimpleImputer(), RandomForestClassifier(n_estimators=5)).fit(frame, yc)
    yield make_pipeline(StandardScaler(), SVC(probability=True)).fit(Xc, yc)
    for est in (
        GradientBoostingClassifier(n_estimators=5),
        HistGradientBoostingClassifier(max_iter=5),
        HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]),
        MLPClassifier(max_iter=20),
        VotingClassifier([("lr", LogisticRegression()), ("dt", DecisionTreeClassifier())], voting="soft"),
        StackingClassifier([("lr", LogisticRegression()), ("dt", DecisionTreeClassifier())]),
        BaggingClassifier(n_estimators=3),
        AdaBoostClassifier(n_estimators=3),
        CalibratedClassifierCV(LogisticRegression()),
        OneVsRestClassifier(LogisticRegression()),
        OneVsOneClassifier(SVC()),
        GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2),
        RandomizedSearchCV(RandomForestClassifier(n_estimators=3), {"max_depth": [2, 3]}, n_iter=2, cv=2),
        KNeighborsClassifier(algorithm="kd_tree"),
        KNeighborsClassifier(algorithm="ball_tree"),
        SelectFromModel(RandomForestClassifier(n_estimators=3)),
        RFE(LogisticRegression(), n_features_to_select=3),
        FeatureUnion([("a", StandardScaler()), ("b", SimpleImputer())]),
    ):
        yield est.fit(Xc, yc)
    Xint = np.abs(Xc).astype(int)
    yield make_pipeline(OneHotEncoder(), LogisticRegression()).fit(Xint, yc)
    yield NearestNeighbors(algorithm="kd_tree").fit(Xc)
    yield IsolationForest(n_estimators=5).fit(Xc)
    for est in (
        GradientBoostingRegressor(n_estimators=5),
        HistGradientBoostingRegressor(max_iter=5),
        RandomForestRegressor(n_estimators=5),
        MLPRegressor(max_iter=20),
        VotingRegressor([("lr", LinearRegression()), ("r", Ridge())]),
        StackingRegressor([("lr", LinearRegression()), ("r", Ridge())]),
        TransformedTargetRegressor(regressor=LinearRegression(), func=np.log1p, inverse_func=np.expm1),
        MultiOutputRegressor(Ridge()),
    ):
        target = np.abs(yr) if isinstance(est, TransformedTargetRegressor) else yr
        target = np.c_[yr, yr] if isinstance(est, MultiOutputRegressor) else target
        yield est.fit(Xr, target)
    texts = ["the cat sat", "a dog ran", "the dog sat down", "cats and dogs"] * 10
    yield make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [0, 1, 1, 0] * 10)
    yield CountVectorizer(ngram_range=(1, 2)).fit(texts)


def main() -> None:
    warnings.filterwarnings("ignore")
    seen: Counter[str] = Counter()
    count = 0
    for est in fitted_estimators():
        try:
            references_of(est, seen)
        except Exception as exc:  # noqa: BLE001 - report and go on: the tool lists what it could check
            print(f"# skipped {type(est).__name__}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        count += 1
    import sklearn

    print(f"# {count} fitted estimators, scikit-learn {sklearn.__version__}")
    print("# sklearn")
    for ref in sorted(r for r in seen if r.startswith("sklearn.")):
        print(f'    "{ref}",')
    print("# other")
    for ref in sorted(r for r in seen if not r.startswith("sklearn.")):
        print(f'    "{ref}",')


if __name__ == "__main__":
    main()
