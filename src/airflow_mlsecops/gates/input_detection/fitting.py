"""Fitting an input detector on the training data and calibrating its thresholds.

The thresholds are calibrated on a held-out share of the training data (``calibration_share``) so
that at most ``target_fpr`` of the held-out rows are flagged by any score (1% by default): the
budget is split evenly between the two kinds of score (distance, model), and within a kind one
common quantile holds for every score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.input_detection.detector import (
    SCORE_KINDS,
    InputDetector,
    compute_scores,
    feature_matrix,
    predict_proba,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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


def detector_features(
    train: pd.DataFrame,
    feature_columns: Sequence[str] | str | None = None,
    *,
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns a detector is fitted on, and the column roles of ``train`` (what was left out and why).

    ``feature_columns`` given: exactly those (none may be given another role). Otherwise every column of
    ``train`` without a role: declared identifiers, label, prediction and timestamp are left out, and so
    are identifiers recognised from their values (:func:`airflow_mlsecops.gates.columns.resolve_roles`).

    :raises ConfigurationError: a column given two roles, a declared column ``train`` lacks, no feature
        left, or (features inferred) a feature that is not numeric (the detector scores numbers only).
    """
    from airflow_mlsecops.gates.columns import resolve_roles

    roles = resolve_roles(
        train,
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=list(feature_columns)
        if feature_columns is not None and not isinstance(feature_columns, str)
        else feature_columns,
    )
    if feature_columns is not None:
        wanted = [str(c) for c in train.columns if str(c) in set(roles.features)]
        order = list(feature_columns) if not isinstance(feature_columns, str) else [c.strip() for c in feature_columns.split(",")]
        columns = tuple(c for c in order if c in wanted)  # the order given: the model's input order
    else:
        columns = tuple(str(c) for c in train.columns if str(c) in set(roles.features))
        if roles.categorical or roles.text:
            bad = (roles.categorical + roles.text)[0]
            raise ConfigurationError(
                f"column {bad!r} is not numeric; the input detector scores numeric features only: "
                "pass feature_columns, or declare the column's role"
            )
    if not columns:
        raise ConfigurationError("no feature column is left to fit the input detector on")
    return columns, roles.to_dict()


def fit_detector(
    train: pd.DataFrame,
    *,
    model: Any = None,
    feature_columns: Sequence[str] | None = None,
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
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
    :param feature_columns: the model's input columns, in order (default: every column of ``train``
        without a role, see below; the detector stores them and refuses a batch that lacks one).
    :param id_columns: identifier columns, never fitted on (identifier-like columns are also recognised).
    :param label_column: the label, never fitted on.
    :param prediction_column: the model's output column, never fitted on.
    :param timestamp_column: the time of each row, never fitted on.
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

    if feature_columns is not None:
        given = [feature_columns] if isinstance(feature_columns, str) else list(feature_columns)
        if not given or len(set(given)) != len(given):
            raise ConfigurationError("feature_columns must name at least one column, each once")
        missing = [c for c in given if c not in train.columns]
        if missing:
            raise ConfigurationError(f"cannot fit the input detector: the data has no column {missing[0]!r}")
    columns, column_roles = detector_features(
        train,
        feature_columns,
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
    )
    if not 0 < target_fpr < 0.5:
        raise ConfigurationError(f"target_fpr must be in (0, 0.5), not {target_fpr!r}")
    if not 0 < calibration_share < 1:
        raise ConfigurationError(f"calibration_share must be in (0, 1), not {calibration_share!r}")
    if knn_reference_size < 0 or knn_k < 1 or noise_draws < 0 or noise_scale <= 0:
        raise ConfigurationError("knn_reference_size and noise_draws must be >= 0, knn_k >= 1 and noise_scale > 0")
    if model is not None and not hasattr(model, "predict_proba"):
        raise ConfigurationError(f"the model ({type(model).__name__}) has no predict_proba; the confidence scores need it")
    try:
        x_all = feature_matrix(train, columns)
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
        probe_proba = predict_proba(model, probe_inputs, columns)
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
        column_roles=column_roles,
    )
    held_out = compute_scores(draft, x_cal, model, names)
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
