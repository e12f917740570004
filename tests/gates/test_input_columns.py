"""Column roles of the input-anomaly gate: the detector is fitted and applied on feature columns only,
records them, and a batch that lacks one is rejected with a finding; identifiers, the label, the
prediction and the timestamp are never scored and the evidence says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.demo.example_data import FEATURES, LABEL
from airflow_mlsecops.demo.monitoring_data import fit_example_model, normal_batch, reference_frame
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.input_detection import (
    DETECTOR_FILE,
    REPORT_FILE,
    detector_features,
    fit_detector,
    load_detector,
    save_detector,
    score_batch,
)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A detector fitted (distance scores only, fast) on training data that also holds an id, the label and a timestamp."""
    train = reference_frame(rows=2_000)
    train.insert(0, "loan_id", range(1, len(train) + 1))
    train["scored_at"] = "2026-11-26"
    detector = fit_detector(train, label_column=LABEL, timestamp_column="scored_at", knn_reference_size=500)
    directory = save_detector(detector, tmp_path_factory.mktemp("detector") / "input_detector")
    return {"train": train, "detector": detector, "directory": directory, "root": directory.parent}


def test_the_detector_is_fitted_on_features_only_and_records_them(fitted: dict[str, Any]) -> None:
    detector = fitted["detector"]
    assert detector.feature_columns == FEATURES  # no loan_id, label or timestamp
    excluded = {e["column"]: e for e in detector.column_roles["excluded"]}
    assert excluded["loan_id"]["role"] == "id" and not excluded["loan_id"]["declared"]
    assert excluded[LABEL]["reason"] == "declared --label-column" and excluded["scored_at"]["role"] == "timestamp"
    doc = json.loads((fitted["directory"] / DETECTOR_FILE).read_text())
    assert doc["feature_columns"] == list(FEATURES) and doc["column_roles"]["excluded"] == detector.column_roles["excluded"]
    assert load_detector(fitted["directory"]).column_roles == detector.column_roles


def test_explicit_features_win_and_roles_must_not_clash() -> None:
    train = reference_frame(rows=500)
    assert detector_features(train, ["income", "age"])[0] == ("income", "age")  # the order given: the model's
    with pytest.raises(ConfigurationError, match="'income' is in features and in id_columns"):
        detector_features(train, ["income", "age"], id_columns=["income"])
    text = train.assign(region="north")
    with pytest.raises(ConfigurationError, match="'region' is not numeric"):
        detector_features(text, label_column=LABEL)


def test_a_batch_with_an_id_and_no_label_is_scored_on_the_features(fitted: dict[str, Any], tmp_path: Path) -> None:
    batch = normal_batch(rows=400)
    batch.insert(0, "loan_id", range(700_001, 700_401))  # a range the training data never saw: not scored
    batch["prediction"] = 0
    batch.to_csv(tmp_path / "batch.csv", index=False)
    outcome = score_batch(str(tmp_path / "batch.csv"), fitted["directory"], prediction_column="prediction")
    result = outcome.result
    assert result.verdict is Verdict.PASSED, result.summary
    roles = result.details["column_roles"]
    assert roles["features"] == list(FEATURES) and roles["label_column"] == LABEL
    excluded = {e["column"]: e for e in roles["excluded"]}
    assert set(excluded) == {"loan_id", "prediction"}
    assert excluded["loan_id"]["reason"].startswith("left out when the detector was fitted")
    assert excluded["prediction"] == {
        "column": "prediction",
        "role": "prediction",
        "reason": "declared --prediction-column",
        "declared": True,
    }
    assert "not scored: loan_id (id), prediction (prediction)" in result.summary
    assert json.loads(outcome.files[REPORT_FILE])["column_roles"] == roles
    assert result.policy["excluded_columns"] == ["prediction"] and result.policy["prediction_column"] == "prediction"
    # An unknown extra column is left out and named, never scored.
    batch.assign(note="x").to_csv(tmp_path / "extra.csv", index=False)
    extra = score_batch(str(tmp_path / "extra.csv"), fitted["directory"])
    note = next(e for e in extra.result.details["column_roles"]["excluded"] if e["column"] == "note")
    assert extra.verdict is Verdict.PASSED and note["reason"] == "not a feature of the input detector"


def test_a_missing_feature_is_a_finding_and_a_declared_feature_is_refused(fitted: dict[str, Any], tmp_path: Path) -> None:
    normal_batch(rows=200).drop(columns=["debt_ratio"]).to_csv(tmp_path / "narrow.csv", index=False)
    narrow = score_batch(str(tmp_path / "narrow.csv"), fitted["directory"])
    assert narrow.verdict is Verdict.FAILED and narrow.error is None
    (finding,) = narrow.result.findings
    assert finding.id == "input.missing-column" and "'debt_ratio'" in finding.message and finding.severity.value == "high"
    assert json.loads(narrow.files[REPORT_FILE])["scored"] is False
    warned = score_batch(str(tmp_path / "narrow.csv"), fitted["directory"], warn_only=True)
    assert warned.verdict is Verdict.WARNED
    normal_batch(rows=200).to_csv(tmp_path / "batch.csv", index=False)
    clash = score_batch(str(tmp_path / "batch.csv"), fitted["directory"], id_columns="income")
    assert clash.verdict is Verdict.ERROR and "fitted on it as a feature" in clash.result.summary


def test_an_older_detector_without_roles_still_loads(fitted: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    older = tmp_path / "older"
    shutil.copytree(fitted["directory"], older)
    doc = json.loads((older / DETECTOR_FILE).read_text())
    del doc["column_roles"]
    (older / DETECTOR_FILE).write_text(json.dumps(doc))
    assert load_detector(older).column_roles == {}
    model, x_train = fit_example_model(reference_frame(rows=500))
    assert fit_detector(x_train, model=model, feature_columns=FEATURES, noise_draws=0).feature_columns == FEATURES
