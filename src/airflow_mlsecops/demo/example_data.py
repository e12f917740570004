"""The synthetic credit-risk data set the example DAG trains on (generated, never downloaded), and
how the example logs its model to MLflow (:func:`log_example_model`).

>>> from airflow_mlsecops.demo.example_data import credit_frame
>>> credit_frame(rows=100, seed=1).shape
(100, 7)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

FEATURES = ("age", "income", "debt_ratio", "credit_lines", "late_payments", "account_age_months")
LABEL = "defaulted"


def credit_frame(rows: int = 5000, seed: int = 7) -> pd.DataFrame:
    """A deterministic, learnable credit-default table: six features and a 0/1 label."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    income = np.round(rng.lognormal(mean=10.6, sigma=0.5, size=rows), 2)
    debt_ratio = np.round(np.clip(rng.gamma(2.0, 0.2, rows), 0, 5), 4)
    credit_lines = rng.poisson(4, rows)
    late_payments = rng.poisson(0.6, rows)
    account_age = rng.integers(1, 360, rows)
    logit = -2.2 + 1.8 * debt_ratio + 0.7 * late_payments - 0.00002 * (income - 40000) - 0.01 * (age - 45) - 0.002 * account_age
    defaulted = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio,
            "credit_lines": credit_lines,
            "late_payments": late_payments,
            "account_age_months": account_age,
            LABEL: defaulted,
        }
    )


def log_example_model(
    store: MLflowEvidenceStore,
    mlflow_run_id: str,
    model: Any,
    *,
    input_example: pd.DataFrame | None = None,
    params: Mapping[str, str] | None = None,
    metrics: Mapping[str, float] | None = None,
    author: str | None = None,
    training_data: Sequence[str] = (),
) -> str:
    """Log a fitted scikit-learn model as an MLflow model of ``mlflow_run_id``; its ``models:/<model id>`` URI.

    The files are what ``mlflow.sklearn.log_model`` writes (skops serialisation, ``MLmodel``,
    pinned ``requirements.txt``, the input example), logged through ``store``'s own client
    (:meth:`~airflow_mlsecops.io.mlflow_store.MLflowEvidenceStore.log_model`): nothing reads or sets
    MLflow's process-global tracking URI or active run, so a task in a fresh process logs to the
    configured store. Pinned requirements also spare MLflow's requirement inference (a subprocess).

    :param store: the MLflow store of the pipeline run.
    :param mlflow_run_id: the run that trained the model (it lists the model among its outputs).
    :param model: the fitted estimator.
    :param input_example: a few input rows stored with the model.
    :param params: run and model parameters (e.g. the training data's digest).
    :param metrics: evaluation metrics, logged on the run and linked to the model.
    :param author: the person who trained it: the logged model's ``mlflow.user`` tag.
    :param training_data: SHA-256 digests of the data it was trained on (the bytes it parsed, e.g.
        from :func:`~airflow_mlsecops.io.tabular.load_verified_table`): logged as the parameter
        ``training_data_sha256``, which registration records and promotion matches against the
        data gates' evidence.
    """
    import mlflow.sklearn
    import pandas as pd
    import sklearn

    from airflow_mlsecops.lifecycle.training_data import training_data_params

    requirements = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"]
    if training_data:
        params = {**dict(params or {}), **training_data_params(*training_data)}

    def save(path: Path, mlflow_model: Any) -> None:
        mlflow.sklearn.save_model(
            model, str(path), mlflow_model=mlflow_model, pip_requirements=requirements, input_example=input_example
        )

    model_id = store.log_model(
        mlflow_run_id,
        save,
        name="model",
        params=params,
        metrics=metrics,
        tags={"mlflow.user": author} if author else None,
    )
    return f"models:/{model_id}"
