"""The small generated "production" stream of the monitoring demo, and a champion model to monitor.

Everything is generated from :mod:`airflow_mlsecops.demo.example_data` with a seed; no data file is
committed or downloaded.

>>> from airflow_mlsecops.demo.monitoring_data import production_batch
>>> production_batch("normal", rows=200).shape
(200, 6)

Batches (:data:`BATCHES`), each without the label (production data has none yet):

``normal``
    the training distribution, a different seed.
``drifted``
    a population that moved but stays inside the training ranges: younger applicants with newer
    accounts, lower incomes, higher debt ratios and more late payments. The drift gate rejects
    it; the input-anomaly gate passes it (its rows are ordinary, only their mix changed).
``attacked``
    a normal batch in which :data:`ATTACK_SHARE` of the rows are evasion attempts and
    :data:`OUTLIER_SHARE` are gross off-distribution rows (:func:`attacked_batch`). The
    input-anomaly gate rejects it (the evasion rows sit on the decision boundary, the outliers lie
    off the training distribution), and so does the drift gate: the outliers move ``income`` and
    ``debt_ratio`` far past Evidently's threshold, which makes them severely drifted columns.

The evasion is the exact minimal L-inf step for a linear model: applicants the model refuses
(predicted class 1, default) move along ``-sign(w)`` just across the decision boundary (to
0.01 logit past it, p = 0.4975: the stopping point of boundary attacks such as HopSkipJump), in the
model's own standardised input space, changing only the continuous features (``income``,
``debt_ratio``) so every row still looks valid (integer counts stay integers). Models that are not
a (scaler +) linear classifier are attacked with a boundary search instead (bisection towards the
nearest accepted row).

:func:`train_champion` trains the example model, logs it to MLflow with its input detector inside
its artifacts (``input_detector/``), registers a version and points an alias at it: the set-up the
monitoring DAG expects (``models:/credit-risk@champion``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

BATCHES = ("normal", "drifted", "attacked")
REFERENCE_ROWS = 5000
REFERENCE_SEED = 7  # the training pipeline's default seed: the reference is its training data
BATCH_ROWS = 1000
BATCH_SEED = 11
ATTACK_SHARE = 0.08
OUTLIER_SHARE = 0.01
#: Features the evasion may change (continuous, self-declared values).
MUTABLE_FEATURES = ("income", "debt_ratio")
MODEL_NAME = "credit-risk"
CHAMPION_ALIAS = "champion"


@dataclass(frozen=True)
class AttackedBatch:
    """An attacked batch and which of its rows were attacked (0-based positions).

    :param frame: the batch (feature columns only).
    :param evasion_rows: rows moved across the decision boundary.
    :param outlier_rows: rows set far off the training distribution.
    :param method: ``linear-linf`` or ``boundary-search``.
    """

    frame: pd.DataFrame
    evasion_rows: tuple[int, ...] = ()
    outlier_rows: tuple[int, ...] = ()
    method: str = "linear-linf"
    details: dict[str, Any] = field(default_factory=dict)


def reference_frame(rows: int = REFERENCE_ROWS, seed: int = REFERENCE_SEED) -> pd.DataFrame:
    """The training reference (features and label), as the training pipeline generates it."""
    return credit_frame(rows=rows, seed=seed)


def normal_batch(rows: int = BATCH_ROWS, seed: int = BATCH_SEED) -> pd.DataFrame:
    """A production batch from the training distribution (features only)."""
    return credit_frame(rows=rows, seed=seed)[list(FEATURES)]


def drifted_batch(rows: int = BATCH_ROWS, seed: int = BATCH_SEED) -> pd.DataFrame:
    """A production batch from a population that moved, inside the training ranges."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed + 1000)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 46, rows),
            "income": np.round(rng.lognormal(mean=10.35, sigma=0.45, size=rows), 2),
            "debt_ratio": np.round(np.clip(rng.gamma(2.6, 0.2, rows), 0, 5), 4),
            "credit_lines": rng.poisson(3, rows),
            "late_payments": rng.poisson(0.9, rows),
            "account_age": rng.integers(1, 150, rows),
        }
    ).rename(columns={"account_age": "account_age_months"})[list(FEATURES)]


def _linear_parts(model: Any) -> tuple[np.ndarray, float, np.ndarray, np.ndarray] | None:
    """``(w, b, mean, scale)`` with ``f(x) = w . (x - mean) / scale + b`` for a (scaler +) linear binary model."""
    import numpy as np

    steps = list(getattr(model, "steps", [("model", model)]))
    estimator = steps[-1][1]
    coef = getattr(estimator, "coef_", None)
    if coef is None or np.ndim(coef) != 2 or np.shape(coef)[0] != 1 or len(steps) > 2:
        return None
    d = np.shape(coef)[1]
    mean, scale = np.zeros(d), np.ones(d)
    if len(steps) == 2:
        scaler = steps[0][1]
        if not hasattr(scaler, "scale_") or type(scaler).__name__ != "StandardScaler":
            return None
        mean = np.asarray(scaler.mean_ if scaler.mean_ is not None else mean, dtype=float)
        scale = np.asarray(scaler.scale_ if scaler.scale_ is not None else scale, dtype=float)
    return np.asarray(coef[0], dtype=float), float(np.ravel(estimator.intercept_)[0]), mean, scale


def evade_linear(model: Any, x: np.ndarray, mutable: np.ndarray, margin: float = 0.01) -> np.ndarray | None:
    """The exact minimal L-inf step (in the model's standardised space, on ``mutable`` features only)
    that moves each row of ``x`` to logit ``-margin``; ``None`` if ``model`` is not linear."""
    import numpy as np

    parts = _linear_parts(model)
    if parts is None:
        return None
    w, b, mean, scale = parts
    z = (x - mean) / scale
    logit = z @ w + b
    direction = -np.sign(w) * mutable
    norm = float(np.abs(w * mutable).sum())
    if norm == 0:
        raise ValueError("the model gives no weight to the mutable features; they cannot move a prediction")
    delta = np.maximum(logit + margin, 0.0) / norm
    return (z + delta[:, None] * direction[None, :]) * scale + mean


def evade_search(model: Any, x: np.ndarray, anchors: np.ndarray, mutable: np.ndarray, steps: int = 40) -> np.ndarray:
    """Model-agnostic boundary search on the ``mutable`` features: for each row, the nearest anchor
    whose mutable values (with the row's other values) the model accepts, then bisection along the
    segment to the first point just across the boundary. Rows with no such anchor are returned as they are.
    """
    import numpy as np
    import pandas as pd

    def accepted(points: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(pd.DataFrame(points, columns=list(FEATURES)))) == 0

    anchors = anchors[:500]
    scale = anchors.std(axis=0) + 1e-12
    target = x.copy()
    found = np.zeros(len(x), dtype=bool)
    for i, row in enumerate(x):
        candidates = np.repeat(row[None, :], len(anchors), axis=0)
        candidates[:, mutable] = anchors[:, mutable]
        ok = accepted(candidates)
        if ok.any():
            d2 = ((((candidates - row) / scale) ** 2)[:, mutable]).sum(axis=1)
            target[i] = candidates[np.flatnonzero(ok)[np.argmin(d2[ok])]]
            found[i] = True
    lo, hi = np.zeros(len(x)), np.where(found, 1.0, 0.0)
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = accepted(x + mid[:, None] * (target - x))
        hi = np.where(ok & found, mid, hi)
        lo = np.where(ok & found, lo, mid)
    return x + hi[:, None] * (target - x)


def attacked_batch(
    model: Any,
    rows: int = BATCH_ROWS,
    seed: int = BATCH_SEED,
    *,
    attack_share: float = ATTACK_SHARE,
    outlier_share: float = OUTLIER_SHARE,
    mutable: Sequence[str] = MUTABLE_FEATURES,
    margin: float = 0.01,
) -> AttackedBatch:
    """A normal batch in which some rows are evasion attempts against ``model`` and a few are off-distribution.

    :param model: the fitted model under attack (``predict``; a (StandardScaler +) linear binary
        classifier is attacked exactly).
    :param rows: rows in the batch.
    :param seed: seed of the batch and of the attack.
    :param attack_share: share of rows that are evasion attempts: applicants the model refuses,
        moved just across the boundary.
    :param outlier_share: share of rows set far off the training distribution.
    :param mutable: the features the attacker may change.
    :param margin: how far past the boundary an evasion goes, in logits (linear models).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed + 2000)
    batch = normal_batch(rows, seed).astype(dict.fromkeys(mutable, "float64")).reset_index(drop=True)
    n_attack = round(rows * attack_share)
    n_outlier = round(rows * outlier_share)
    if n_attack + n_outlier > rows:
        raise ValueError("attack_share + outlier_share must not exceed 1")
    columns = list(FEATURES)
    mask = np.array([c in mutable for c in columns])
    chosen = rng.choice(rows, size=n_attack + n_outlier, replace=False)
    evasion_rows, outlier_rows = np.sort(chosen[:n_attack]), np.sort(chosen[n_attack:])

    # The attackers: applicants the model refuses, drawn from a pool of the same population.
    pool = credit_frame(rows=max(20 * n_attack, 2000), seed=seed + 3000)[columns]
    refused = pool[np.asarray(model.predict(pool)) == 1].to_numpy(dtype=float)
    if len(refused) < n_attack:
        raise ValueError(f"only {len(refused)} refused applicants to attack with; lower attack_share")
    attackers = refused[rng.choice(len(refused), size=n_attack, replace=False)]
    moved = evade_linear(model, attackers, mask, margin)
    method = "linear-linf"
    if moved is None:
        anchors = pool[np.asarray(model.predict(pool)) == 0].to_numpy(dtype=float)
        moved = evade_search(model, attackers, anchors, mask)
        method = "boundary-search"
    values = batch.to_numpy(dtype=float)
    values[evasion_rows] = moved

    outliers = values[outlier_rows].copy()
    outliers[:, columns.index("income")] = np.round(rng.uniform(1.5e6, 5e6, len(outliers)), 2)
    outliers[:, columns.index("debt_ratio")] = np.round(rng.uniform(3.5, 5.0, len(outliers)), 4)
    outliers[:, columns.index("late_payments")] = rng.integers(9, 20, len(outliers))
    values[outlier_rows] = outliers

    frame = pd.DataFrame(values, columns=columns)
    for column in columns:
        if column not in mutable:
            frame[column] = frame[column].round().astype("int64")
    flipped = float(np.mean(np.asarray(model.predict(frame.iloc[evasion_rows])) == 0)) if n_attack else 1.0
    return AttackedBatch(
        frame=frame,
        evasion_rows=tuple(int(i) for i in evasion_rows),
        outlier_rows=tuple(int(i) for i in outlier_rows),
        method=method,
        details={"evasion_success_rate": flipped, "mutable_features": list(mutable), "margin": margin},
    )


def production_batch(kind: str, model: Any = None, rows: int = BATCH_ROWS, seed: int = BATCH_SEED) -> pd.DataFrame:
    """The batch named ``kind`` (one of :data:`BATCHES`); ``attacked`` needs the model under attack.

    :param kind: ``normal``, ``drifted`` or ``attacked``.
    :param model: the fitted model (for ``attacked``).
    :param rows: rows in the batch.
    :param seed: seed of the batch.
    """
    if kind == "normal":
        return normal_batch(rows, seed)
    if kind == "drifted":
        return drifted_batch(rows, seed)
    if kind == "attacked":
        if model is None:
            raise ValueError("the attacked batch is crafted against a model; pass it")
        return attacked_batch(model, rows, seed).frame
    raise ValueError(f"unknown batch {kind!r}; choose from {', '.join(BATCHES)}")


def fit_example_model(frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """The training pipeline's model (StandardScaler + LogisticRegression) and its training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, _, y_train, _ = train_test_split(
        frame[list(FEATURES)], frame[LABEL], test_size=0.25, random_state=0, stratify=frame[LABEL]
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    return model, x_train


def train_champion(
    tracking_uri: str | None = None,
    *,
    store: MLflowEvidenceStore | None = None,
    name: str = MODEL_NAME,
    alias: str = CHAMPION_ALIAS,
    rows: int = REFERENCE_ROWS,
    seed: int = REFERENCE_SEED,
    experiment_name: str = "credit-risk-training",
) -> dict[str, str]:
    """Train the example model, log it with its input detector, register a version, set ``alias``.

    This is what the training pipeline does for monitoring: the detector is fitted on the training
    rows and stored inside the logged model's artifacts under ``input_detector/``
    (:func:`~airflow_mlsecops.gates.input_detection.log_detector_to_model`) before anything signs
    the model. Every MLflow call goes through the store's own client (never MLflow's
    process-global URIs). Returns ``model_uri`` (``models:/<name>@<alias>``), ``version``,
    ``model_id``, ``run_id``.

    :param tracking_uri: MLflow tracking (and registry) URI, when no ``store`` is given.
    :param store: the MLflow store; default: ``tracking_uri``, else the configured one.
    :param name: registered model name.
    :param alias: the alias to point at the new version.
    :param rows: training rows generated.
    :param seed: seed of the training data.
    :param experiment_name: MLflow experiment of the training run.
    """
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.demo.example_data import log_example_model
    from airflow_mlsecops.gates.input_detection import fit_detector, log_detector_to_model
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.registration import create_model_version

    if store is None:
        settings = Settings.from_env()
        store = (
            MLflowEvidenceStore(tracking_uri, settings.artifact_root)
            if tracking_uri
            else MLflowEvidenceStore.from_settings(settings)
        )
    model, x_train = fit_example_model(reference_frame(rows, seed))
    run_id = store.create_run(experiment_name=experiment_name, run_name=f"train {name}")
    model_uri = log_example_model(store, run_id, model)
    model_id = model_uri.removeprefix("models:/")
    detector = fit_detector(x_train, model=model, feature_columns=FEATURES)
    log_detector_to_model(detector, model_id, store=store)
    with store.errors(f"cannot finish MLflow run {run_id}"):
        store.client.set_terminated(run_id)
    version = create_model_version(store, model_uri, name, description=f"demo champion trained by {__name__}")
    with store.errors(f"cannot set alias {alias!r} of {name}"):
        store.client.set_registered_model_alias(name, alias, version)
    return {"model_uri": f"models:/{name}@{alias}", "version": version, "model_id": model_id, "run_id": run_id}
