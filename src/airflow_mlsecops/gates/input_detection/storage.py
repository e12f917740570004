"""Saving and loading an input detector as two plain files, and storing it inside the logged model.

:func:`save_detector` writes the detector so it is signed, scanned and verified like the model and
never unpickled::

    input_detector/detector.json   columns, thresholds, parameters, shapes and SHA-256 of each array
    input_detector/arrays.npz      float64 arrays only (loaded with allow_pickle=False)

**Where it lives.** The training pipeline stores the detector *inside the logged model's
artifacts*, under ``input_detector/`` (:func:`log_detector_to_model`), before the model is signed:
one registry version (``models:/credit-risk/3``) then names the model and its detector, the
model's signature and provenance cover both, and the monitoring DAG finds it at
``<model uri>/input_detector``. The kNN reference sample holds up to ``knn_reference_size``
standardised training rows (invertible with the stored mean and scale): pass
``knn_reference_size=0`` if training rows must not travel with the model; Mahalanobis keeps only
the mean and covariance.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.base import tool_versions
from airflow_mlsecops.gates.input_detection.detector import MODEL_SCORES, SCORE_KINDS, InputDetector

if TYPE_CHECKING:
    import numpy as np

    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

DETECTOR_FILE = "detector.json"
ARRAYS_FILE = "arrays.npz"
#: Where the training pipeline stores the detector inside the logged model's artifacts.
DETECTOR_ARTIFACT_PATH = "input_detector"
DETECTOR_FORMAT = "airflow-mlsecops/input-detector/v1"
ARRAY_NAMES = ("mean", "scale", "precision", "knn_reference", "probe_inputs", "probe_proba")
#: A detector file larger than this is refused before it is parsed.
MAX_DETECTOR_BYTES = 256 * 1024 * 1024


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
        "column_roles": dict(detector.column_roles),
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
    column_roles = doc.get("column_roles", {})  # absent from a detector stored before column roles
    if not isinstance(classes, list) or not isinstance(calibration, dict) or not isinstance(column_roles, dict):
        raise GateError(f"{origin}: model_classes must be a list, calibration and column_roles objects")
    if len(set(columns)) != len(columns):
        raise GateError(f"{origin}: feature_columns names a column twice")
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
        column_roles=column_roles,
    )


def log_detector_to_model(
    detector: InputDetector,
    model_id: str,
    *,
    store: MLflowEvidenceStore | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Store ``detector`` inside a logged MLflow model's artifacts, under ``input_detector/``.

    Call it right after the model is logged and before it is signed, so the model's signature and
    provenance cover the detector too. Returns ``models:/<model id>/input_detector``. The files go
    through the store's own client: MLflow's process-global tracking URI is never read, so this
    works in a task process of its own.

    :param detector: the fitted detector.
    :param model_id: the logged model's id (``models:/<model id>``).
    :param store: the MLflow store holding the model (default: ``tracking_uri``, else the one
        configured in the environment, :class:`~airflow_mlsecops.config.Settings`).
    :param tracking_uri: the MLflow tracking URI, when no ``store`` is given.
    """
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    if store is None:
        store = MLflowEvidenceStore(tracking_uri) if tracking_uri else MLflowEvidenceStore.from_settings(Settings.from_env())
    with tempfile.TemporaryDirectory(prefix="mlsecops-detector-") as tmp:
        save_detector(detector, tmp)
        store.log_model_files(model_id, tmp, artifact_path=DETECTOR_ARTIFACT_PATH)
    return f"models:/{model_id}/{DETECTOR_ARTIFACT_PATH}"
