"""The one safe model loader: scikit-learn models from MLflow directories and skops files, pickles only when trusted.

A model is a local MLflow model directory with the ``sklearn`` flavor or a ``.skops`` file (fetch remote
locations first with :func:`airflow_mlsecops.io.artifacts.fetch`). skops files are loaded with skops'
default trusted types (scikit-learn's own) plus ``trusted_types``; the allow-list an MLmodel file carries
is ignored, since the model itself wrote it. ``sklearn.tree._tree.Tree`` (which skops does not trust,
because a crafted tree can make ``predict`` read out of bounds) is accepted here and must be checked with
:func:`validate_trees` once loaded. Pickle-based formats execute code when loaded and are refused unless
``trust_pickle=True``. Run the model-scan gate first either way::

    from airflow_mlsecops.io.model_loader import load_model, validate_trees

    loaded = load_model("model/")            # an MLflow model directory saved with skops
    validate_trees(loaded.estimator)
    print(loaded.format)                      # mlflow/skops
"""

from __future__ import annotations

import contextlib
import os
import pickle
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_mlsecops.exceptions import GateError

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck")
TREE_TYPE = "sklearn.tree._tree.Tree"


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence the user, future and runtime warnings sklearn, skops and ART print (feature names, versions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


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
            "only scikit-learn models can be loaded"
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
        with quiet_warnings():
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
        with quiet_warnings():
            if fmt == "joblib":
                import joblib

                return joblib.load(file)
            if fmt == "cloudpickle":
                import cloudpickle

                with open(file, "rb") as fh:
                    return cloudpickle.load(fh)
            with open(file, "rb") as fh:
                return pickle.load(fh)  # nosec B301: only with trust_pickle=True (refused above otherwise)
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
