"""The plugin app's pure helpers: what it shows of a store URI, which DAGs guard a model."""

from __future__ import annotations

import pytest

from airflow_mlsecops.plugins.app import _dag_ids_in
from airflow_mlsecops.review.view import redact_uri


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql+psycopg2://mlflow:s3cret@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
        ("https://token@mlflow.example.com/", "https://***@mlflow.example.com/"),
        ("https://mlflow.example.com", "https://mlflow.example.com"),
        ("sqlite:////opt/airflow/mlsecops/mlflow.db", "sqlite:////opt/airflow/mlsecops/mlflow.db"),
        ("", ""),
    ],
)
def test_a_store_uri_is_shown_without_its_credentials(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert "s3cret" not in (redact_uri(uri) or "") and "token" not in (redact_uri(uri) or "")


def test_every_dag_that_touched_a_model_guards_it() -> None:
    review = {
        "name": "m",
        "versions": [{"version": "1", "dag_id": "train_a"}, {"version": "2", "dag_id": "train_b", "tags": {"dag_id": "x"}}],
        "promotions": [{"dag_id": "promote"}, {"dag_id": None}, {"dag_id": ""}],
    }
    assert sorted(_dag_ids_in(review)) == ["promote", "train_a", "train_b", "x"]
    assert list(_dag_ids_in({"name": "m", "versions": []})) == []
