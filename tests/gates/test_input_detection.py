"""The input-anomaly gate: a detector fitted on training data, stored without pickle, scoring real
batches with a real MLflow sklearn model: normal passes, the attacked batch is flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from airflow_mlsecops.demo.example_data import FEATURES
from airflow_mlsecops.demo.monitoring_data import attacked_batch, drifted_batch, fit_example_model, normal_batch, reference_frame
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.input_detection import (
    ARRAYS_FILE,
    DETECTOR_ARTIFACT_PATH,
    DETECTOR_FILE,
    GATE_NAME,
    REPORT_FILE,
    fit_detector,
    inputs_unavailable,
    load_detector,
    save_detector,
    score_batch,
)
from airflow_mlsecops.io.locations import LocalArtifact, ModelRef


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    model, x_train = fit_example_model(reference_frame())
    return {"model": model, "x_train": x_train, "detector": fit_detector(x_train, model=model, feature_columns=FEATURES)}


@pytest.fixture(scope="module")
def model_dir(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sklearn model directory (skops) with its detector inside, as the training pipeline stores it."""
    import mlflow.sklearn
    import sklearn

    path = tmp_path_factory.mktemp("model") / "model"
    mlflow.sklearn.save_model(trained["model"], str(path), pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    save_detector(trained["detector"], path / DETECTOR_ARTIFACT_PATH)
    return path


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(positive)), np.zeros(len(negative))], np.r_[positive, negative]))


def test_detector_round_trip_uses_no_pickle(trained: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    detector = trained["detector"]
    directory = save_detector(detector, tmp_path / "detector")
    assert sorted(p.name for p in directory.iterdir()) == [ARRAYS_FILE, DETECTOR_FILE]
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
        assert all(npz[name].dtype == np.float64 for name in npz.files)
    doc = json.loads((directory / DETECTOR_FILE).read_text())
    assert doc["feature_columns"] == list(FEATURES)
    assert set(doc["thresholds"]) == {"knn", "mahalanobis", "confidence", "instability"}

    def no_pickle(*args: object, **kwargs: object) -> None:
        raise AssertionError("the detector must load without unpickling anything")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    loaded = load_detector(directory)
    monkeypatch.undo()
    assert loaded.thresholds == detector.thresholds and loaded.feature_columns == detector.feature_columns
    for name in ("mean", "scale", "precision", "knn_reference", "probe_inputs", "probe_proba"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(detector, name))
    batch = normal_batch(rows=300)
    before, after = detector.scores(batch, trained["model"]), loaded.scores(batch, trained["model"])
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_tampered_or_pickled_detector_files_are_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    directory = save_detector(trained["detector"], tmp_path / "detector")
    with np.load(directory / ARRAYS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}

    arrays["mean"] = arrays["mean"] + 1.0  # a shifted centre hides outliers; the JSON's digest catches it
    np.savez(directory / ARRAYS_FILE, **arrays)
    with pytest.raises(GateError, match="'mean' does not match the SHA-256"):
        load_detector(directory)

    arrays["mean"] = np.array([object()] * len(FEATURES), dtype=object)
    np.savez(directory / ARRAYS_FILE, **arrays)  # an object array is a pickle inside the .npy
    with pytest.raises(GateError, match=r"cannot be read safely|expected float64"):
        load_detector(directory)

    (directory / DETECTOR_FILE).write_text('{"format": "something else"}')
    with pytest.raises(GateError, match="is not a airflow-mlsecops/input-detector/v1 document"):
        load_detector(directory)
    with pytest.raises(GateError, match=r"detector\.json is missing"):
        load_detector(tmp_path / "nowhere")


def test_scores_separate_attacks_from_normal_rows(trained: dict[str, Any]) -> None:
    """Distance scores catch off-distribution rows, model scores catch boundary-hugging evasion."""
    detector, model = trained["detector"], trained["model"]
    attack = attacked_batch(model)
    assert attack.method == "linear-linf" and attack.details["evasion_success_rate"] == 1.0
    scores = detector.scores(attack.frame, model)
    evasion, outlier = np.array(attack.evasion_rows), np.array(attack.outlier_rows)
    clean = np.setdiff1d(np.arange(len(attack.frame)), np.r_[evasion, outlier])
    assert _auc(scores["confidence"][evasion], scores["confidence"][clean]) > 0.95
    assert _auc(scores["instability"][evasion], scores["instability"][clean]) > 0.95
    assert _auc(scores["mahalanobis"][outlier], scores["mahalanobis"][clean]) > 0.99
    assert _auc(scores["knn"][outlier], scores["knn"][clean]) > 0.99
    # Distance alone does not see the evasion: its rows look like ordinary applicants.
    assert _auc(scores["mahalanobis"][evasion], scores["mahalanobis"][clean]) < 0.9
    flags = detector.flags(attack.frame, model)
    flagged = np.any(list(flags.values()), axis=0)
    assert flagged[evasion].all() and flagged[outlier].all()
    assert flagged[clean].mean() < 0.03
    for batch in (normal_batch(seed=21), drifted_batch(seed=21)):
        assert np.any(list(detector.flags(batch, model).values()), axis=0).mean() < 0.04


def test_normal_batch_passes_and_attacked_batch_fails(trained: dict[str, Any], model_dir: Path, tmp_path: Path) -> None:
    normal, attacked = tmp_path / "normal.csv", tmp_path / "attacked.parquet"
    normal_batch().to_csv(normal, index=False)
    attack = attacked_batch(trained["model"])
    attack.frame.to_parquet(attacked, index=False)

    passed = score_batch(str(normal), None, model_uri=str(model_dir))
    assert passed.error is None, passed.error
    assert passed.verdict is Verdict.PASSED, passed.result.summary
    assert passed.result.gate == GATE_NAME == "input-anomaly"
    assert [s.name for s in passed.result.subjects] == [str(normal), str(model_dir / DETECTOR_ARTIFACT_PATH), str(model_dir)]
    assert passed.result.metrics["flagged_share"] <= 0.05

    failed = score_batch(str(attacked), str(model_dir / DETECTOR_ARTIFACT_PATH), model_uri=str(model_dir), max_reported_rows=30)
    result = failed.result
    assert result.verdict is Verdict.FAILED, result.summary
    assert result.metrics["flagged_share"] > 0.08 and result.metrics["rows"] == 1000
    findings = {f.id: f for f in result.findings}
    assert set(findings) == {"input.off_distribution", "input.boundary"}
    for finding in findings.values():
        assert finding.atlas == ("AML.T0015", "AML.T0043") and finding.owasp_ml == ("ML01:2023",) and not finding.passed
    assert "decision boundary" in findings["input.boundary"].message
    report = json.loads(failed.files[REPORT_FILE])
    assert report["flagged_rows"] == result.metrics["flagged_rows"]
    assert report["flagged_rows_truncated"] is True and len(report["flagged_row_indices"]) == 30
    assert set(report["scores"]) == {"knn", "mahalanobis", "confidence", "instability"}
    assert all(s["threshold"] > 0 and 0 <= s["flagged_share"] <= 1 for s in report["scores"].values())
    everything = score_batch(str(attacked), None, model_uri=str(model_dir), max_reported_rows=1000)
    listed = set(json.loads(everything.files[REPORT_FILE])["flagged_row_indices"])
    assert set(attack.evasion_rows) | set(attack.outlier_rows) <= listed
    assert score_batch(str(attacked), None, model_uri=str(model_dir), warn_only=True).verdict is Verdict.WARNED


def test_rows_with_missing_values_are_flagged(trained: dict[str, Any]) -> None:
    batch = normal_batch(rows=50).astype("float64")
    batch.loc[3, "income"] = float("nan")
    batch.loc[7, "debt_ratio"] = float("inf")
    flags = trained["detector"].flags(batch, trained["model"])
    assert all(flags[name][3] and flags[name][7] for name in flags)


def test_bad_inputs_are_error_verdicts(trained: dict[str, Any], model_dir: Path, tmp_path: Path) -> None:
    import mlflow.sklearn
    import sklearn

    data = tmp_path / "batch.csv"
    normal_batch(rows=100).to_csv(data, index=False)

    def error(*args: Any, **kwargs: Any) -> str:
        outcome = score_batch(*args, **kwargs)
        assert outcome.verdict is Verdict.ERROR, outcome.result.summary
        return outcome.result.summary

    assert "does not exist" in error(str(tmp_path / "missing.csv"), None, model_uri=str(model_dir))
    assert "does not exist" in error(str(data), str(tmp_path / "no-detector"), model_uri=str(model_dir))
    assert "pass model_uri" in error(str(data), str(model_dir / DETECTOR_ARTIFACT_PATH))
    assert "pass the detector directory" in error(str(data), None)
    assert "max_flagged_share must be" in error(str(data), None, model_uri=str(model_dir), max_flagged_share=1.5)
    narrow = tmp_path / "narrow.csv"
    normal_batch(rows=10).drop(columns=["income"]).to_csv(narrow, index=False)
    # A feature of the detector missing from the batch is a finding that rejects, not an error: nothing is scored.
    lacking = score_batch(str(narrow), None, model_uri=str(model_dir))
    assert lacking.verdict is Verdict.FAILED and lacking.error is None, lacking.result.summary
    assert [(f.id, f.location) for f in lacking.result.findings] == [("input.missing-column", "column income")]
    assert "no row was scored" in lacking.result.summary and lacking.result.details["features_missing_from_batch"] == ["income"]

    # A pickled model runs code when it is loaded: refused unless explicitly allowed.
    pickled = tmp_path / "pickled"
    mlflow.sklearn.save_model(
        trained["model"],
        str(pickled),
        serialization_format="cloudpickle",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    save_detector(trained["detector"], pickled / DETECTOR_ARTIFACT_PATH)
    refused = error(str(data), None, model_uri=str(pickled))
    assert "is a cloudpickle file" in refused and "Refusing without trust_pickle=True" in refused
    assert score_batch(str(data), None, model_uri=str(pickled), trust_pickle=True).verdict is Verdict.PASSED

    # A detector calibrated for another model is refused: its probe probabilities differ.
    other_model, _ = fit_example_model(reference_frame(rows=2000, seed=99))
    other = tmp_path / "other"
    mlflow.sklearn.save_model(other_model, str(other), pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    assert "not the one this input detector was calibrated with" in error(
        str(data), str(model_dir / DETECTOR_ARTIFACT_PATH), model_uri=str(other)
    )


def test_fit_refuses_bad_parameters(trained: dict[str, Any]) -> None:
    x_train = trained["x_train"]
    with pytest.raises(ConfigurationError, match="target_fpr"):
        fit_detector(x_train, feature_columns=FEATURES, target_fpr=0.7)
    with pytest.raises(ConfigurationError, match="at least 40"):
        fit_detector(x_train.head(30), feature_columns=FEATURES)
    with pytest.raises(ConfigurationError, match="no column 'nope'"):
        fit_detector(x_train, feature_columns=["nope"])
    distance_only = fit_detector(x_train, feature_columns=FEATURES, knn_reference_size=0)
    assert set(distance_only.thresholds) == {"mahalanobis"} and not distance_only.uses_model
    assert distance_only.knn_reference.shape == (0, len(FEATURES))


def test_attack_on_a_non_linear_model_uses_a_boundary_search() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from airflow_mlsecops.demo.example_data import LABEL

    train = reference_frame(rows=3000)
    forest = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(train[list(FEATURES)], train[LABEL])
    attack = attacked_batch(forest, rows=400, attack_share=0.05)
    assert attack.method == "boundary-search"
    assert attack.details["evasion_success_rate"] == 1.0
    assert len(attack.evasion_rows) == 20 and len(attack.outlier_rows) == 4
    moved = attack.frame.iloc[list(attack.evasion_rows)]
    assert (moved[["age", "credit_lines", "late_payments"]] % 1 == 0).all().all()  # only income and debt_ratio moved


def test_fetched_inputs_are_named_by_their_pinned_location(model_dir: Path, tmp_path: Path) -> None:
    """What the operator passes after fetching: the evidence names the pinned version, the digests cover the local bytes."""
    from airflow_mlsecops.evidence.digest import sha256_path
    from airflow_mlsecops.io.locations import local_table

    data = tmp_path / "batch.csv"
    normal_batch(rows=200).to_csv(data, index=False)
    ref = ModelRef(
        requested="models:/credit-risk@champion", uri="models:/credit-risk/3", name="credit-risk", version="3", alias="champion"
    )
    outcome = score_batch(local_table(str(data)), None, model_uri=LocalArtifact(ref=ref, path=model_dir))
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    subjects = [(s.name, s.sha256) for s in outcome.result.subjects]
    assert subjects[1:] == [
        ("models:/credit-risk/3/input_detector", sha256_path(model_dir / DETECTOR_ARTIFACT_PATH)),
        ("models:/credit-risk/3", sha256_path(model_dir)),
    ]
    assert outcome.result.policy["model"] == "models:/credit-risk@champion" and outcome.result.policy["detector"] is None
    assert outcome.result.details["model"] == ref.to_dict()
    assert json.loads(outcome.files[REPORT_FILE])["detector"]["location"] == "models:/credit-risk/3/input_detector"


def test_engine_reads_only_local_inputs(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "batch.csv"
    normal_batch(rows=50).to_csv(data, index=False)
    for kwargs in (
        {"data": "s3://bucket/batch.csv", "detector_dir": None, "model_uri": str(model_dir)},
        {"data": str(data), "detector_dir": "runs:/0123/input_detector", "model_uri": str(model_dir)},
        {"data": str(data), "detector_dir": None, "model_uri": "models:/credit-risk@champion"},
    ):
        outcome = score_batch(**kwargs)
        assert outcome.verdict is Verdict.ERROR and "is not a local path" in outcome.result.summary


def test_inputs_unavailable_records_the_gates_error_verdict_and_policy(tmp_path: Path) -> None:
    gone = inputs_unavailable(
        GateError("cannot download models:/credit-risk/3"), model_uri="models:/credit-risk@champion", max_flagged_share=0.1
    )
    assert gone.verdict is Verdict.ERROR and gone.result.gate == GATE_NAME
    assert gone.result.summary == "could not run: cannot download models:/credit-risk/3"
    same = score_batch(str(tmp_path / "missing.csv"), None, model_uri="models:/credit-risk@champion", max_flagged_share=0.1)
    assert gone.result.policy == same.result.policy and gone.result.tool_versions == same.result.tool_versions
    bad = inputs_unavailable(GateError("unreachable"), detector_dir="d", max_flagged_share=1.5)
    assert bad.verdict is Verdict.ERROR and "max_flagged_share must be" in bad.result.summary


# ----------------------------------------------------------------------------- empty batches
# No data to check is never a pass: an empty batch is an error verdict unless allow_empty=True.


def _empty(tmp_path: Path, kind: str) -> str:
    if kind == "csv":
        path = tmp_path / "empty.csv"
        path.write_text(",".join(FEATURES) + "\n")
    else:
        path = tmp_path / "empty.parquet"
        normal_batch(rows=20).iloc[:0].to_parquet(path)
    return str(path)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("warn_only", [False, True])
def test_an_empty_batch_is_never_a_pass(model_dir: Path, tmp_path: Path, kind: str, warn_only: bool) -> None:
    outcome = score_batch(_empty(tmp_path, kind), None, model_uri=str(model_dir), warn_only=warn_only)
    result = outcome.result
    assert result.verdict is Verdict.ERROR, result.summary
    assert "holds no rows: no data to check is never a pass" in result.summary and "allow_empty=True" in result.summary
    assert result.policy["allow_empty"] is False


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_allow_empty_accepts_an_empty_batch_visibly(model_dir: Path, tmp_path: Path, kind: str) -> None:
    outcome = score_batch(_empty(tmp_path, kind), None, model_uri=str(model_dir), allow_empty=True)
    result = outcome.result
    assert result.verdict is Verdict.WARNED and result.incomplete, result.summary  # nothing scored: never passed
    assert result.not_performed == ("input-anomaly.empty-batch",)
    assert result.policy["allow_empty"] is True
    assert [(f.id, f.passed) for f in result.findings] == [("input-anomaly.empty-batch", False)]
    assert result.summary.startswith("empty batch accepted (allow_empty=True)")
    assert result.metrics["rows"] == 0 and len(result.subjects) == 3  # the detector and the model are still named
    assert json.loads(outcome.files[REPORT_FILE])["rows"] == 0


def test_allow_empty_still_checks_the_detector_and_the_columns(model_dir: Path, tmp_path: Path) -> None:
    empty = _empty(tmp_path, "csv")
    missing = score_batch(empty, str(tmp_path / "no-detector"), model_uri=str(model_dir), allow_empty=True)
    assert missing.verdict is Verdict.ERROR and "does not exist" in missing.result.summary
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("age,debt_ratio\n")
    wrong = score_batch(str(narrow), None, model_uri=str(model_dir), allow_empty=True)
    assert wrong.verdict is Verdict.FAILED and {f.id for f in wrong.result.findings} == {"input.missing-column"}
    assert set(wrong.result.details["features_missing_from_batch"]) == set(FEATURES) - {"age", "debt_ratio"}


def test_allow_empty_must_be_a_bool(model_dir: Path, tmp_path: Path) -> None:
    outcome = score_batch(_empty(tmp_path, "csv"), None, model_uri=str(model_dir), allow_empty="true")  # type: ignore[arg-type]
    assert outcome.verdict is Verdict.ERROR and "allow_empty must be True or False" in outcome.result.summary
    gone = inputs_unavailable(GateError("unreachable"), detector_dir="d", allow_empty="true")  # type: ignore[arg-type]
    assert "allow_empty must be True or False" in gone.result.summary
