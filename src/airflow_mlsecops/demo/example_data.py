"""The synthetic credit-risk data set the example DAG trains on (generated, never downloaded).

>>> from airflow_mlsecops.demo.example_data import credit_frame
>>> credit_frame(rows=100, seed=1).shape
(100, 7)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

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
