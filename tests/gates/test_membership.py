"""The membership-inference gate on real scikit-learn models saved as real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.membership import REPORT_FILE, evaluate_membership_inference, roc_statistics

KNN_TYPES = ["sklearn.metrics._dist_metrics.EuclideanDistance64", "sklearn.neighbors._kd_tree.KDTree"]


def save(model: object, path: Path) -> str:
    import skops.io as sio

    sio.dump(model, path)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """800 training rows, 1,100 holdout rows, and three models trained on the training rows."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import LinearSVC

    root = tmp_path_factory.mktemp("membership")
    frame = credit_frame(rows=1900, seed=11)
    train, holdout = frame.iloc[:800], frame.iloc[800:]
    train.to_csv(root / "train.csv", index=False)
    holdout.to_csv(root / "holdout.csv", index=False)
    X, y = train[list(FEATURES)], train[LABEL]
    return {
        "root": str(root),
        "train": str(root / "train.csv"),
        "holdout": str(root / "holdout.csv"),
        "regularised": save(LogisticRegression(C=0.01, max_iter=1000).fit(X, y), root / "logreg.skops"),
        "forest": save(RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y), root / "forest.skops"),
        "knn": save(KNeighborsClassifier(n_neighbors=1).fit(X, y), root / "knn.skops"),
        "svc": save(LinearSVC().fit(X, y), root / "svc.skops"),
    }


def run(files: dict[str, str], model: str, **kwargs):
    options = {"train": files["train"], "holdout": files["holdout"], "label_column": LABEL, **kwargs}
    train, holdout = options.pop("train"), options.pop("holdout")
    return evaluate_membership_inference(model, train, holdout, **options)


def test_a_regularised_model_passes_with_its_numbers_samples_and_subjects(files: dict[str, str]) -> None:
    outcome = run(files, files["regularised"])
    result = outcome.result
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.metrics["attack_auc"] <= 0.6 and result.metrics["advantage"] <= 0.1
    assert result.metrics["members"] == result.metrics["non_members"] == 800
    assert {a["attack"] for a in result.details["attacks"]} == {"loss", "confidence", "calibrated-loss"}
    calibrated = next(a for a in result.details["attacks"] if a["attack"] == "calibrated-loss")
    assert calibrated["members"] == calibrated["non_members"] == 550  # half the holdout trains the reference model
    for attack in result.details["attacks"]:
        low, high = attack["auc_ci"]
        assert low <= attack["auc"] <= high
    assert [s.sha256 for s in result.subjects] == [sha256_path(files[k]) for k in ("regularised", "train", "holdout")]
    assert result.policy["max_attack_auc"] == 0.6 and result.policy["bootstrap"] == 200
    assert result.details["bootstrap_seed"] == 0
    report = json.loads(outcome.files[REPORT_FILE])
    assert report["holdout"]["digest"]["sha256"] == sha256_path(files["holdout"])
    assert report["ci_above_threshold"] == {"attack_auc": False, "advantage": False}


def test_a_memorising_forest_fails_and_says_the_interval_lies_above(files: dict[str, str]) -> None:
    result = run(files, files["forest"]).result
    assert result.verdict is Verdict.FAILED
    failed = {f.id: f.message for f in result.failed_findings}
    assert set(failed) == {"membership.attack-auc", "membership.advantage"}
    assert "exceeds the limit 0.6; the whole interval lies above it" in failed["membership.attack-auc"]
    assert result.details["ci_above_threshold"]["attack_auc"] is True
    assert result.metrics["attack_auc"] > 0.7


def test_a_one_nearest_neighbour_model_fails_through_the_loss_attack(files: dict[str, str]) -> None:
    result = run(files, files["knn"], trusted_types=KNN_TYPES, attacks=["loss"]).result
    assert result.verdict is Verdict.FAILED
    # Every training row is its own neighbour (loss 0); a holdout row has loss 0 only when its neighbour's label is right.
    assert result.metrics["auc_loss"] > 0.6 and result.metrics["advantage_loss"] > 0.2


def test_a_stricter_limit_rejects_what_a_looser_one_passes(files: dict[str, str]) -> None:
    loose = run(files, files["regularised"], max_attack_auc=1.0, max_advantage=1.0).result
    auc = loose.metrics["attack_auc"]
    strict = run(files, files["regularised"], max_attack_auc=0.5, max_advantage=1.0).result
    assert loose.verdict is Verdict.PASSED
    assert strict.verdict is Verdict.FAILED if auc > 0.5 else Verdict.PASSED


def test_the_same_seed_gives_the_same_intervals_and_another_seed_does_not(files: dict[str, str]) -> None:
    first = run(files, files["regularised"], attacks=["loss"], bootstrap=50).result.metrics
    again = run(files, files["regularised"], attacks=["loss"], bootstrap=50).result.metrics
    other = run(files, files["regularised"], attacks=["loss"], bootstrap=50, random_state=1).result.metrics
    assert first == again
    assert first["auc_loss_ci_low"] != other["auc_loss_ci_low"]


def test_a_missing_label_column_is_an_error(files: dict[str, str]) -> None:
    outcome = run(files, files["regularised"], label_column="no_such_column")
    assert outcome.verdict is Verdict.ERROR
    assert "label column 'no_such_column' is not in" in outcome.result.summary


def test_a_model_without_predict_proba_is_an_error(files: dict[str, str]) -> None:
    outcome = run(files, files["svc"])
    assert outcome.verdict is Verdict.ERROR
    assert "has no predict_proba" in outcome.result.summary


def test_the_training_file_passed_as_holdout_is_an_error(files: dict[str, str], tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    copy.write_bytes(Path(files["train"]).read_bytes())
    outcome = run(files, files["forest"], holdout=str(copy))
    assert outcome.verdict is Verdict.ERROR
    assert "same digest as the training data" in outcome.result.summary


def test_a_holdout_that_shares_training_rows_is_an_error(files: dict[str, str], tmp_path: Path) -> None:
    import pandas as pd

    train, holdout = pd.read_csv(files["train"]), pd.read_csv(files["holdout"])
    mixed = tmp_path / "mixed.csv"
    pd.concat([holdout.iloc[:1000], train.iloc[:100]]).to_csv(mixed, index=False)
    outcome = run(files, files["forest"], holdout=str(mixed))
    assert outcome.verdict is Verdict.ERROR
    assert "shares 100 of its 1100 rows with the training data" in outcome.result.summary


def test_a_few_shared_rows_are_left_out_and_noted(files: dict[str, str], tmp_path: Path) -> None:
    import pandas as pd

    train, holdout = pd.read_csv(files["train"]), pd.read_csv(files["holdout"])
    mixed = tmp_path / "mixed.csv"
    pd.concat([holdout, train.iloc[:5]]).to_csv(mixed, index=False)
    result = run(files, files["regularised"], holdout=str(mixed), attacks=["loss"]).result
    assert result.verdict is Verdict.PASSED
    assert "5 holdout row(s) identical to a training row were left out" in result.details["notes"]


def test_a_too_small_or_empty_holdout_never_passes(files: dict[str, str], tmp_path: Path) -> None:
    import pandas as pd

    holdout = pd.read_csv(files["holdout"])
    small, empty = tmp_path / "small.csv", tmp_path / "empty.csv"
    holdout.iloc[:300].to_csv(small, index=False)
    holdout.iloc[:0].to_csv(empty, index=False)
    for path in (small, empty):
        result = run(files, files["regularised"], holdout=str(path)).result
        assert result.verdict is Verdict.FAILED, path
        assert [f.id for f in result.failed_findings] == ["membership.sample-size"]
    missing = run(files, files["regularised"], holdout=str(tmp_path / "missing.csv"))
    assert missing.verdict is Verdict.ERROR


def test_a_holdout_too_small_to_calibrate_is_warned_incomplete(files: dict[str, str], tmp_path: Path) -> None:
    import pandas as pd

    holdout = tmp_path / "h.csv"
    pd.read_csv(files["holdout"]).iloc[:700].to_csv(holdout, index=False)
    result = run(files, files["regularised"], holdout=str(holdout)).result
    assert result.verdict is Verdict.WARNED and result.warned_reason == "incomplete"
    assert list(result.not_performed) == ["membership.calibrated-attack-not-performed"]


@pytest.mark.parametrize("bad", [{"max_attack_auc": 0.3}, {"max_advantage": 2}, {"min_samples": 5}, {"attacks": ["shadow"]}])
def test_bad_arguments_are_an_error_before_anything_is_loaded(files: dict[str, str], bad: dict) -> None:
    outcome = run(files, "/nonexistent/model", **bad)
    assert outcome.verdict is Verdict.ERROR
    assert "nonexistent" not in outcome.result.summary


def test_roc_statistics_agree_with_scikit_learn_including_ties() -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = np.r_[np.ones(60), np.zeros(40)]
        scores = rng.integers(0, 8, 100).astype(float) + labels * rng.random()
        stats = roc_statistics(scores, labels)
        fpr, tpr, _ = roc_curve(labels, scores)
        assert stats.auc == pytest.approx(roc_auc_score(labels, scores))
        assert stats.advantage == pytest.approx(max(0.0, float(np.max(tpr - fpr))))
