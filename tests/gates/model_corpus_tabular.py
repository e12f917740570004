"""Corpus samples of issue 11: benign tabular models real teams save with joblib (scikit-learn
``ColumnTransformer`` pipelines and bundles of pandas values), with several random seeds of data,
in the compressions joblib writes. Called by :func:`tests.gates.model_corpus.build_corpus`.
"""

from __future__ import annotations

from pathlib import Path

from tests.gates.model_corpus import Sample

SEEDS = (0, 1, 2, 3)
COMPRESSIONS = ((0, "joblib", "joblib"), ("gzip", "joblib.gz", "gzip/joblib"), ("lzma", "joblib.xz", "lzma/joblib"))


def tabular_pipeline(seed: int):
    """A fitted ``ColumnTransformer`` (scaler + one-hot) -> ``LogisticRegression`` on random data, and its frame."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["paris", "lyon", "nice", "lille", "brest"], n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    label = (frame["age"] + rng.normal(0, 5, n) > 40).astype(int)
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"])]
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))]).fit(frame, label), frame


def pandas_bundle(seed: int) -> dict:
    """What a training script keeps beside a model: timestamps, periods, categoricals, indexes, frames."""
    import pandas as pd

    model, frame = tabular_pipeline(seed)
    return {
        "model": model,
        "trained_at": pd.Timestamp("2024-01-02 03:04:05", tz="UTC") + pd.Timedelta(seed, "h"),
        "naive": pd.Timestamp("2024-01-02") + pd.Timedelta(seed, "D"),
        "window": pd.Timedelta("3D"),
        "period": pd.Period("2024-01", freq="M"),
        "missing": [pd.NaT, pd.NA],
        "categories": pd.Categorical(frame["city"].head(10)),
        "index": pd.Index([1, 2, 3]),
        "dates": pd.date_range("2024-01-01", periods=5, freq="D"),
        "months": pd.period_range("2024-01", periods=3, freq="M"),
        "sample": frame.head(20).assign(
            day=pd.date_range("2024-01-01", periods=20),
            n=pd.array(range(20), dtype="Int64"),
            c=lambda f: f["city"].astype("category"),
        ),
        "series": frame["age"].head(5),
    }


def write_tabular(benign: Path) -> list[Sample]:
    """Write the benign tabular samples under ``benign`` and describe them."""
    import joblib

    samples: list[Sample] = []
    for seed in SEEDS:
        model, _ = tabular_pipeline(seed)
        bundle = pandas_bundle(seed)
        for compress, ext, fmt in COMPRESSIONS:
            for kind, value in (("column_transformer", model), ("pandas_bundle", bundle)):
                name = f"{kind}_s{seed}.{ext}"
                joblib.dump(value, benign / name, compress=(compress, 3) if compress else 0)
                samples.append(Sample(f"benign/{name}", False, fmt))
    return samples
