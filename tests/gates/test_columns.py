"""Column roles (:mod:`airflow_mlsecops.gates.columns`): declared roles, and identifiers recognised conservatively."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.columns import check_role_arguments, column_list, infer_id_reason, resolve_roles


def _loans(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "loan_id": np.arange(1, n + 1),
            "income": rng.lognormal(10.5, 0.4, n).round(2),  # unique floats: a feature all the same
            "purpose": rng.choice(["car", "home"], n),
            "approved": rng.integers(0, 2, n),
        }
    )


def test_a_running_integer_and_an_id_name_are_identifiers_with_their_reasons() -> None:
    frame = _loans()
    frame["row"] = np.arange(10_000, 10_000 + len(frame))[::-1]  # running, descending, no id-like name
    frame["customer_key"] = [f"C{i:06d}" for i in range(len(frame))]
    frame["record"] = [f"r-{i}-x" for i in np.random.default_rng(1).permutation(len(frame))]
    roles = resolve_roles(frame, label_column="approved")
    assert roles.id_columns == ("loan_id", "row", "customer_key", "record")
    assert roles.reason("loan_id") == "name ends in _id and values are unique"
    assert roles.reason("row") == "unique running integer"
    assert roles.reason("customer_key") == "name ends in _key and values are unique"
    assert roles.reason("record") == "string unique per row"
    assert roles.reason("approved") == "declared --label-column"
    assert roles.numerical == ("income",) and roles.categorical == ("purpose",)
    assert roles.label_column == "approved" and roles.reason("income") is None
    assert all(not e.declared for e in roles.excluded if e.role == "id")
    assert roles.to_dict()["excluded"][0] == {
        "column": "approved",
        "role": "label",
        "reason": "declared --label-column",
        "declared": True,
    }


def test_inference_is_conservative() -> None:
    rng = np.random.default_rng(3)
    n = 500
    # A unique float (income), a unique but sparse integer (a balance in cents), an integer id-named
    # column that repeats (several loans per customer), free text unique per row, a small frame.
    assert infer_id_reason(pd.Series(rng.normal(50_000, 9_000, n), name="income")) is None
    assert infer_id_reason(pd.Series(rng.choice(10**9, n, replace=False), name="balance_cents")) is None
    assert infer_id_reason(pd.Series(rng.integers(0, 50, n), name="customer_id")) is None
    assert infer_id_reason(pd.Series([f"great loan number {i}" for i in range(n)], name="comment")) is None
    assert infer_id_reason(pd.Series(range(10), name="loan_id")) is None  # fewer than 20 rows says nothing
    assert infer_id_reason(pd.Series(np.arange(n, dtype=float), name="id")) is None  # floats never
    assert infer_id_reason(pd.Series(pd.date_range("2026-01-01", periods=n, freq="h"), name="event_id")) is None
    # A float column named like an id that holds unique whole numbers (a CSV id with a gap read as float) stays a feature.
    roles = resolve_roles(pd.DataFrame({"income": rng.normal(0, 1, n), "comment": [f"a b {i}" for i in range(n)]}))
    assert roles.id_columns == () and roles.numerical == ("income",) and roles.text == ("comment",)


def test_declared_roles_win_and_features_leave_the_rest_out() -> None:
    frame = _loans()
    frame["score"] = np.linspace(0, 1, len(frame))
    frame["ts"] = pd.date_range("2026-01-01", periods=len(frame), freq="min")
    roles = resolve_roles(frame, id_columns="loan_id", label_column="approved", prediction_column="score", timestamp_column="ts")
    assert roles.reason("loan_id") == "declared --id-column"
    assert roles.reason("score") == "declared --prediction-column" and roles.reason("ts") == "declared --timestamp-column"
    assert roles.features == ("income", "purpose")
    only = resolve_roles(frame, features=["income"], label_column="approved")
    assert only.features == ("income",) and only.id_columns == ()  # no inference among declared features
    assert only.reason("loan_id") == "not in the declared --features"
    assert not resolve_roles(frame, infer=False).id_columns


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id_columns": ["a"], "label_column": "a"}, "given two roles"),
        ({"features": ["a"], "id_columns": "a"}, "in features and in id_columns"),
        ({"features": []}, "features is empty"),
        ({"label_column": ""}, "must be a column name"),
        ({"id_columns": [3]}, "not a column name"),
    ],
)
def test_bad_role_arguments_are_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_role_arguments(**kwargs)  # type: ignore[arg-type]


def test_a_declared_column_the_reference_lacks_is_named() -> None:
    with pytest.raises(ConfigurationError, match="'nope' is declared but the reference has no such column"):
        resolve_roles(_loans(), id_columns=["nope"])
    # a prediction or label the training reference does not have is fine
    assert resolve_roles(_loans(), prediction_column="score", label_column="y").prediction_column == "score"


def test_column_list() -> None:
    assert column_list("a, b,,a", "x") == ["a", "b"]
    assert column_list(None, "x") is None
    with pytest.raises(ConfigurationError):
        column_list(5, "x")  # type: ignore[arg-type]
