"""The ``integrity.label_flips`` check: labels that disagree with a calibrated model of the trusted reference.

``integrity.label_flips``
    Random forests are fitted on the *trusted reference* (at most ``label_flip_max_rows`` sampled
    rows) in ``5`` stratified folds; each forest predicts the reference rows it did not see, and a
    Platt calibrator (a logistic regression on the logit of the forest's probability, one per
    class) is fitted on those out-of-fold predictions. Each batch row (the same cap) is scored by
    one fold's forest, drawn at random, and calibrated the same way: batch rows and held-out
    reference rows are then treated alike, so on a clean batch the probabilities are as calibrated
    as on the reference's own held-out rows. Two estimates are judged, each with its test:

    * the share ``e`` of *randomly* flipped labels, by maximum likelihood under ``P(label) = (1 - e)
      p(label) + e (1 - p(label)) / (K - 1)``, tested with a likelihood-ratio test against none;
    * the share of labels *moved away from one class* (targeted flips such as defaulters relabelled
      as non-defaulters, which leave ``e`` near 0): per class, the expected count (the sum of its
      calibrated probabilities) minus the observed count, over the rows scored; a one-sided z-test
      whose variance includes the reference's calibration (Bonferroni over the classes).

    The check's value is the larger share; it fails when a share is over ``max_label_flip_share``
    and its test is significant at ``significance``. The suspect rows are the estimated number of
    flipped rows of a significant estimate (none otherwise), most suspicious first by cleanlab's
    self-confidence label-quality score (for targeted flips: among rows not labelled with the class
    that lost rows).

    Why calibration: the uncalibrated forest of the earlier version was overconfident on rows it
    had not seen, which the mixture model reads as flips: on clean batches of the demo's credit
    data it estimated 0-2.7% flipped (limit 3%) with p-values down to 1e-6, and cleanlab's
    ``find_label_issues`` flagged 11-13% of every clean batch (the label is itself a noisy draw:
    about 1 row in 5 disagrees with the best possible prediction, which confident learning counts
    as label issues). Calibrated, no clean batch failed and none had rows listed (14 batches of 1,000
    and 5,000 rows; the smallest p-value was about 0.01, against ``significance=0.001``), while
    5/10/20% random and targeted flips of 2,000-row batches were caught
    (``python -m benchmarks --only integrity``). Why the reference and not the batch: a model
    fitted on the batch itself (cross-validated) learns the flipped labels it should expose.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_mlsecops.gates.data_integrity.results import _Check, _judged, _pct, _rows_text, _skipped
from airflow_mlsecops.gates.data_integrity.schema import _Frames, _keys, _model_values

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_FOREST_TREES = 100
_FOREST_MIN_LEAF = 50  # smoother leaves calibrate better: 9 of 10 batches with 5% random flips caught, 8 with 5
_FOLDS = 5
_PROBABILITY_FLOOR = 1e-3
_MODEL = (
    f"{_FOLDS} RandomForestClassifier(n_estimators={_FOREST_TREES}, min_samples_leaf={_FOREST_MIN_LEAF}) fitted on "
    "reference folds, Platt-calibrated on their out-of-fold predictions"
)


def _model_matrix(frame: pd.DataFrame, frames: _Frames) -> np.ndarray:
    """The features as a finite float matrix (missing and non-finite values are NaN, which the forest treats as missing)."""
    import numpy as np

    columns = []
    for feature in frames.features:
        if feature.numeric:
            columns.append(_model_values(frame[feature.name], feature.kind))
        else:
            categories = sorted(set(_keys(frames.reference[feature.name]).dropna()))
            lookup: dict[str | None, float] = {c: float(i) for i, c in enumerate(categories)}
            lookup[None] = -2.0  # missing; an unseen category is -1
            codes = [lookup.get(k, -1.0) for k in _keys(frame[feature.name])]
            columns.append(np.asarray(codes, dtype=float))
    return np.column_stack(columns)


def _sample_positions(n: int, cap: int, seed: int) -> np.ndarray:
    import numpy as np

    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def _flip_share(p_label: np.ndarray, classes: int) -> tuple[float, float]:
    """Maximum-likelihood share of randomly flipped labels and the likelihood-ratio test's p-value against none."""
    import numpy as np
    from scipy.optimize import minimize_scalar
    from scipy.stats import chi2

    p = np.clip(p_label, _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)
    other = (1 - p) / (classes - 1)

    def negative_log_likelihood(share: float) -> float:
        return float(-np.sum(np.log((1 - share) * p + share * other)))

    upper = (classes - 1) / classes
    best = minimize_scalar(negative_log_likelihood, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-5})
    share = float(best.x) if negative_log_likelihood(float(best.x)) < negative_log_likelihood(0.0) else 0.0
    statistic = max(0.0, 2 * (negative_log_likelihood(0.0) - negative_log_likelihood(share)))
    p_value = 1.0 if share == 0.0 else float(0.5 * chi2.sf(statistic, 1))
    return share, p_value


def _directed_share(batch_probs: np.ndarray, y_batch: np.ndarray, ref_probs: np.ndarray) -> tuple[float, float, int]:
    """The largest share of rows missing from one class against the calibrated expectation, its p-value, the class.

    Per class: ``(expected - observed) / rows``, tested one-sided with the batch's Bernoulli variance
    plus the variance of the reference's calibrated mean; the p-value is Bonferroni-corrected over
    the classes.
    """
    import numpy as np
    from scipy.stats import norm

    n, n_ref = len(y_batch), len(ref_probs)
    classes = batch_probs.shape[1]
    best = (0.0, 1.0, 0)
    for c in range(classes):
        p, q = batch_probs[:, c], ref_probs[:, c]
        deficit = float((p.sum() - np.sum(y_batch == c)) / n)
        variance = float(np.sum(p * (1 - p)) / n**2 + np.sum(q * (1 - q)) / n_ref**2)
        if deficit <= 0 or variance <= 0:
            continue
        p_value = min(1.0, float(norm.sf(deficit / np.sqrt(variance))) * classes)
        if deficit > best[0]:
            best = (deficit, p_value, c)
    return best


@dataclass
class _Scores:
    """Calibrated class probabilities of the reference's held-out rows and of the batch rows."""

    reference: np.ndarray
    batch: np.ndarray
    folds: int


def _calibrated_scores(x_ref: np.ndarray, y_ref: np.ndarray, x_batch: np.ndarray, classes: int, seed: int) -> _Scores:
    """Out-of-fold forests on the reference, Platt calibration fitted on their held-out predictions,
    each batch row scored by one fold's forest drawn at random and calibrated alike."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    folds = max(2, min(_FOLDS, int(np.bincount(y_ref, minlength=classes).min())))
    raw_ref = np.zeros((len(y_ref), classes))
    raw_batch = np.zeros((len(x_batch), classes))
    assignment = np.random.default_rng(seed + 2).integers(0, folds, len(x_batch))
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x_ref, y_ref)
    for fold, (train, held_out) in enumerate(splits):
        model = RandomForestClassifier(
            n_estimators=_FOREST_TREES,
            min_samples_leaf=_FOREST_MIN_LEAF,
            n_jobs=min(4, os.cpu_count() or 1),
            random_state=seed + fold,
        )
        model.fit(x_ref[train], y_ref[train])
        model.set_params(n_jobs=1)  # threads add tree probabilities in completion order: not bit-for-bit reproducible
        raw_ref[np.ix_(held_out, model.classes_)] = model.predict_proba(x_ref[held_out])
        mine = np.flatnonzero(assignment == fold)
        if len(mine):
            raw_batch[np.ix_(mine, model.classes_)] = model.predict_proba(x_batch[mine])

    def logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)
        return np.log(p / (1 - p))

    calibrated_ref = np.zeros_like(raw_ref)
    calibrated_batch = np.zeros_like(raw_batch)
    for c in range(1 if classes == 2 else 0, classes):
        calibrator = LogisticRegression(C=1e4).fit(logit(raw_ref[:, c])[:, None], (y_ref == c).astype(int))
        calibrated_ref[:, c] = calibrator.predict_proba(logit(raw_ref[:, c])[:, None])[:, 1]
        calibrated_batch[:, c] = calibrator.predict_proba(logit(raw_batch[:, c])[:, None])[:, 1]
    if classes == 2:
        calibrated_ref[:, 0], calibrated_batch[:, 0] = 1 - calibrated_ref[:, 1], 1 - calibrated_batch[:, 1]
    else:
        calibrated_ref /= calibrated_ref.sum(axis=1, keepdims=True)
        calibrated_batch /= calibrated_batch.sum(axis=1, keepdims=True)
    return _Scores(reference=calibrated_ref, batch=calibrated_batch, folds=folds)


def _suspects(probs: np.ndarray, labels: np.ndarray, count: int, away_from: int | None) -> np.ndarray:
    """The ``count`` rows whose labels cleanlab's self-confidence score trusts least (0-based positions in ``labels``);
    with ``away_from``, only rows labelled otherwise (candidates for a flip away from that class)."""
    import numpy as np
    from cleanlab.rank import get_label_quality_scores

    if count <= 0:
        return np.array([], dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = np.asarray(get_label_quality_scores(labels, probs, method="self_confidence"), dtype=float)
    candidates = np.arange(len(labels)) if away_from is None else np.flatnonzero(labels != away_from)
    order = candidates[np.argsort(scores[candidates], kind="stable")]
    return order[:count]


def _label_flips(frames: _Frames) -> _Check:
    import numpy as np

    th = frames.thresholds
    check_id = "integrity.label_flips"
    assert frames.label is not None
    if not frames.features:
        return _skipped(check_id, "no comparable feature column to learn the labels from")
    ref_keys = _keys(frames.reference[frames.label])
    counts = ref_keys.value_counts()
    learnable = sorted(str(c) for c, n in counts.items() if n >= th.label_flip_min_class_rows)
    if len(learnable) < 2:
        return _skipped(
            check_id,
            f"the reference needs two classes with at least {th.label_flip_min_class_rows} rows each "
            f"(it has {', '.join(f'{c!r}: {n}' for c, n in counts.items()) or 'no labelled rows'})",
        )
    index = {c: i for i, c in enumerate(learnable)}
    ref_rows = np.flatnonzero(ref_keys.isin(learnable).to_numpy())
    ref_rows = ref_rows[_sample_positions(len(ref_rows), th.label_flip_max_rows, frames.random_state)]
    batch_keys = _keys(frames.batch[frames.label])
    scorable = np.flatnonzero(batch_keys.isin(learnable).to_numpy())
    batch_rows = scorable[_sample_positions(len(scorable), th.label_flip_max_rows, frames.random_state + 1)]
    if len(batch_rows) == 0:
        return _skipped(check_id, "no batch row carries a class the reference model knows")

    y_ref = ref_keys.iloc[ref_rows].map(index).to_numpy(dtype=int)
    y_batch = batch_keys.iloc[batch_rows].map(index).to_numpy(dtype=int)
    scores = _calibrated_scores(
        _model_matrix(frames.reference.iloc[ref_rows], frames),
        y_ref,
        _model_matrix(frames.batch.iloc[batch_rows], frames),
        len(learnable),
        frames.random_state,
    )
    rows_scored = len(batch_rows)
    share, p_value = _flip_share(scores.batch[np.arange(rows_scored), y_batch], len(learnable))
    directed, directed_p, lost_class = _directed_share(scores.batch, y_batch, scores.reference)
    random_violated = share > th.max_label_flip_share and p_value < th.significance
    directed_violated = directed > th.max_label_flip_share and directed_p < th.significance
    violated = random_violated or directed_violated
    value = max(share, directed)
    # Suspects are listed only for an estimate that is significant: on a clean batch, none.
    listed = max(share if p_value < th.significance else 0.0, directed if directed_p < th.significance else 0.0)
    targeted = directed_p < th.significance and directed >= listed
    flagged = _suspects(scores.batch, y_batch, round(listed * rows_scored), lost_class if targeted else None)
    suspects = batch_rows[flagged]
    sampled = len(batch_rows) < len(scorable) or len(ref_rows) < int(ref_keys.isin(learnable).sum())
    message = (
        f"an estimated {_pct(share)} of {rows_scored} labels are randomly flipped (p={p_value:.2g}) and "
        f"{_pct(directed)} moved away from class {learnable[lost_class]!r} (p={directed_p:.2g}) with respect to a "
        f"calibrated model of the reference (limit {_pct(th.max_label_flip_share)} each)"
    )
    if len(suspects):
        message += f"; the {len(suspects)} most suspicious rows by cleanlab's label-quality score are listed"
    for over, significant, what in (
        (share > th.max_label_flip_share, random_violated, "random"),
        (directed > th.max_label_flip_share, directed_violated, "targeted"),
    ):
        if over and not significant:
            message += f"; the {what} estimate is not significant at {th.significance:g}"
    if sampled:
        message += (
            f" (sampled: model fitted on {len(ref_rows)} reference rows, {rows_scored} of {len(scorable)} batch rows scored)"
        )
    return _judged(
        check_id,
        violated=violated,
        message=message,
        value=value,
        threshold=th.max_label_flip_share,
        location=_rows_text(suspects),
        rows=suspects,
        cap=th.max_rows_reported,
        metrics={
            "label_flip_share": value,
            "label_flip_random_share": share,
            "label_flip_p_value": p_value,
            "label_flip_targeted_share": directed,
            "label_flip_targeted_p_value": directed_p,
            "label_issue_share": len(suspects) / rows_scored,
        },
        report={
            "estimated_flip_share": share,
            "p_value": p_value,
            "estimated_targeted_flip_share": directed,
            "targeted_p_value": directed_p,
            "targeted_class": learnable[lost_class],
            "model": _MODEL,
            "folds": scores.folds,
            "classes": learnable,
            "reference_rows_used": len(ref_rows),
            "batch_rows_scored": rows_scored,
            "batch_rows_scorable": len(scorable),
            "sampled": sampled,
            "row_cap": th.label_flip_max_rows,
            "suspects_listed": len(suspects),
            "suspect_ranking": "cleanlab self_confidence",
        },
    )
