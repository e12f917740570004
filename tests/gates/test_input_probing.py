"""Repeated and near-duplicate inputs in a batch (issue 21): each copy looks ordinary to the per-row
scores, so before finding ``input.repeated`` a batch that was 20% one input passed the gate. Real
detector, real MLflow sklearn model, real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.demo.example_data import FEATURES
from airflow_mlsecops.demo.monitoring_data import drifted_batch, fit_example_model, normal_batch, reference_frame
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.input_detection import (
    DETECTOR_ARTIFACT_PATH,
    REPORT_FILE,
    find_repeats,
    fit_detector,
    inputs_unavailable,
    save_detector,
    score_batch,
)

REPEATS = 200  # of 1,000 rows: the 20%


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's champion (StandardScaler + LogisticRegression) saved with its detector inside."""
    import mlflow.sklearn
    import sklearn

    model, x_train = fit_example_model(reference_frame())
    detector = fit_detector(x_train, model=model, feature_columns=FEATURES)
    path = tmp_path_factory.mktemp("model") / "model"
    mlflow.sklearn.save_model(model, str(path), pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    save_detector(detector, path / DETECTOR_ARTIFACT_PATH)
    return {"model": model, "x_train": x_train, "detector": detector, "model_dir": str(path)}


def _with_repeats(rows: pd.DataFrame, tmp_path: Path, name: str) -> str:
    """A clean 1,000-row batch whose first ``len(rows)`` rows are replaced by ``rows``."""
    batch = normal_batch().astype("float64")
    batch.iloc[: len(rows)] = rows[list(FEATURES)].to_numpy(dtype=float)
    path = tmp_path / name
    batch.sample(frac=1.0, random_state=5).to_csv(path, index=False)  # spread the copies over the batch
    return str(path)


def _corner(x_train: pd.DataFrame) -> pd.DataFrame:
    """One input at the 90th percentile of every feature: inside the training ranges."""
    corner = x_train[list(FEATURES)].quantile(0.9)
    return pd.DataFrame([corner.to_dict()] * REPEATS)


def _not_flagged_by_the_scores(trained: dict[str, Any], rows: pd.DataFrame) -> None:
    """The evasion's premise: the per-row scores see nothing wrong with these rows."""
    flags = trained["detector"].flags(rows[list(FEATURES)].astype(float), trained["model"])
    assert not np.any(list(flags.values())), {name: int(hit.sum()) for name, hit in flags.items()}


def test_identical_rows_at_an_in_range_corner_fail(trained: dict[str, Any], tmp_path: Path) -> None:
    rows = _corner(trained["x_train"])
    _not_flagged_by_the_scores(trained, rows)
    outcome = score_batch(_with_repeats(rows, tmp_path, "corner.csv"), None, model_uri=trained["model_dir"])
    result = outcome.result
    assert result.verdict is Verdict.FAILED, result.summary
    assert result.metrics["flagged_share"] <= 0.05  # the per-row scores alone pass it (the old verdict)
    assert result.metrics["duplicate_rows"] == REPEATS - 1 and result.metrics["repeated_share"] == pytest.approx(0.2)
    (repeated,) = [f for f in result.findings if f.id == "input.repeated"]
    assert not repeated.passed and repeated.severity.value == "high"
    assert f"{REPEATS} of 1000 rows (20.0%) repeat another input" in repeated.message
    assert f"up to {REPEATS} of one input" in repeated.message
    assert repeated.atlas == ("AML.T0043",) and repeated.owasp_ml == ("ML01:2023",)
    assert "200 rows (20.0%) repeat another input of the batch (policy: at most 5.0%)" in result.summary
    report = json.loads(outcome.files[REPORT_FILE])["repeated"]
    assert report["duplicate_rows"] == REPEATS - 1 and report["largest_group"] == REPEATS
    assert len(report["row_indices"]) == 100  # capped at max_reported_rows
    assert result.policy["max_repeated_share"] == 0.05 and result.policy["near_duplicate_radius"] == 0.05


def test_repeats_of_one_ordinary_input_fail(trained: dict[str, Any], tmp_path: Path) -> None:
    one = normal_batch(seed=40).iloc[[3]]
    rows = pd.concat([one] * REPEATS, ignore_index=True)
    _not_flagged_by_the_scores(trained, rows)
    outcome = score_batch(_with_repeats(rows, tmp_path, "replay.csv"), None, model_uri=trained["model_dir"])
    assert outcome.verdict is Verdict.FAILED, outcome.result.summary
    assert outcome.result.metrics["near_duplicate_rows"] == REPEATS


def test_near_duplicates_with_jitter_fail(trained: dict[str, Any], tmp_path: Path) -> None:
    """Small variations of one input (a probe searching around it) are not exact copies, but are near."""
    rng = np.random.default_rng(3)
    one = normal_batch(seed=41).iloc[[0]].astype(float)
    jitter = rng.normal(0.0, 0.005, (REPEATS, len(FEATURES))) * trained["detector"].scale  # 0.005 std per feature
    rows = pd.DataFrame(one.to_numpy() + jitter, columns=list(FEATURES))
    _not_flagged_by_the_scores(trained, rows)
    outcome = score_batch(_with_repeats(rows, tmp_path, "jitter.csv"), None, model_uri=trained["model_dir"])
    result = outcome.result
    assert result.verdict is Verdict.FAILED, result.summary
    assert result.metrics["duplicate_rows"] == 0 and result.metrics["near_duplicate_rows"] >= REPEATS
    # Exact copies only (radius 0): the same batch passes, which is why the radius exists.
    exact = score_batch(
        _with_repeats(rows, tmp_path, "jitter.csv"), None, model_uri=trained["model_dir"], near_duplicate_radius=0
    )
    assert exact.verdict is Verdict.PASSED, exact.result.summary
    assert exact.result.policy["near_duplicate_radius"] == 0


def test_a_looser_max_repeated_share_is_recorded_and_applied(trained: dict[str, Any], tmp_path: Path) -> None:
    path = _with_repeats(_corner(trained["x_train"]), tmp_path, "corner.csv")
    loose = score_batch(path, None, model_uri=trained["model_dir"], max_repeated_share=0.25)
    assert loose.verdict is Verdict.PASSED, loose.result.summary
    (repeated,) = [f for f in loose.result.findings if f.id == "input.repeated"]
    assert repeated.passed and repeated.severity.value == "low"
    assert loose.result.policy["max_repeated_share"] == 0.25
    assert score_batch(path, None, model_uri=trained["model_dir"], warn_only=True).verdict is Verdict.WARNED


def test_clean_batches_have_no_repeats(trained: dict[str, Any], tmp_path: Path) -> None:
    """Quiet on clean data: the demo's batches (10 seeds, and the drifted population) hold no near-duplicate."""
    detector = trained["detector"]
    for seed in range(11, 21):
        for batch in (normal_batch(seed=seed), drifted_batch(seed=seed)):
            repeats = find_repeats(detector.matrix(batch), detector.scale, 0.05)
            assert repeats.near_duplicate_rows == 0 and repeats.duplicate_rows == 0, seed
    path = tmp_path / "normal.csv"
    normal_batch().to_csv(path, index=False)
    outcome = score_batch(str(path), None, model_uri=trained["model_dir"])
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert outcome.result.metrics["repeated_share"] == 0.0
    assert "input.repeated" not in {f.id for f in outcome.result.findings}


def test_find_repeats_counts_copies_and_skips_non_finite_rows() -> None:
    x = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [5.0, 5.0], [5.0, 5.04], [np.nan, 2.0], [9.0, 9.0]])
    scale = np.array([1.0, 1.0])
    repeats = find_repeats(x, scale, 0.05)
    assert repeats.rows == 7 and repeats.duplicate_rows == 2 and repeats.largest_group == 3
    assert repeats.near_duplicate.tolist() == [True, True, True, True, True, False, False]
    assert repeats.share == pytest.approx(5 / 7)
    # The radius is in training standard deviations: the same pair is far apart when a feature's scale is small.
    assert find_repeats(x, np.array([1.0, 0.1]), 0.05).near_duplicate_rows == 3
    assert find_repeats(x, scale, 0.0).near_duplicate_rows == 3
    assert find_repeats(x[:1], scale, 0.05).near_duplicate_rows == 0


def test_bad_repeat_arguments_are_error_verdicts(trained: dict[str, Any], tmp_path: Path) -> None:
    from airflow_mlsecops.exceptions import GateError

    path = tmp_path / "batch.csv"
    normal_batch(rows=50).to_csv(path, index=False)
    for kwargs, text in (
        ({"max_repeated_share": 1.0}, "max_repeated_share must be a number in [0, 1)"),
        ({"max_repeated_share": True}, "max_repeated_share must be"),
        ({"near_duplicate_radius": -0.1}, "near_duplicate_radius must be a finite number >= 0"),
        ({"near_duplicate_radius": float("nan")}, "near_duplicate_radius must be"),
    ):
        outcome = score_batch(str(path), None, model_uri=trained["model_dir"], **kwargs)
        assert outcome.verdict is Verdict.ERROR and text in outcome.result.summary, outcome.result.summary
        gone = inputs_unavailable(GateError("unreachable"), model_uri="m", **kwargs)
        assert gone.verdict is Verdict.ERROR and text in gone.result.summary
