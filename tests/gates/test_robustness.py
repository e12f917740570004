"""The robustness gate on real models and real data: exactness checked by brute force, ART, files."""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
from airflow_mlsecops.evidence.digest import sha256_file, sha256_path
from airflow_mlsecops.evidence.models import Severity, Verdict
from airflow_mlsecops.gates.robustness import (
    GATE_NAME,
    REPORT_FILE,
    evaluate_robustness,
    linear_form,
    robust_accuracy,
    select_method,
)


@pytest.fixture(scope="module")
def credit() -> dict:
    """The example DAG's model: StandardScaler + LogisticRegression on the synthetic credit data."""
    frame = credit_frame(rows=3000, seed=7)
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[LABEL])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train[list(FEATURES)], train[LABEL])
    return {
        "model": model,
        "train": train,
        "test": test.reset_index(drop=True),
        "std": frame[list(FEATURES)].std(ddof=0).to_numpy(),
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("robustness")


@pytest.fixture(scope="module")
def saved(credit: dict, workdir: Path) -> dict:
    """The credit model as an MLflow model directory (skops, MLflow's default) and its test data as CSV."""
    import mlflow.sklearn

    model_dir = workdir / "credit-model"
    mlflow.sklearn.save_model(credit["model"], str(model_dir), pip_requirements=["scikit-learn"])
    data = workdir / "test.csv"
    credit["test"].to_csv(data, index=False)
    return {"model": str(model_dir), "data": str(data)}


def _corners(n: int) -> np.ndarray:
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


def _brute_force_robust(model, X: np.ndarray, y: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Robust iff correct at every corner of the box: exact for any arg-max of linear scores (convex regions)."""
    frame = pd.DataFrame(X, columns=getattr(model, "feature_names_in_", None))
    robust = np.asarray(model.predict(frame)) == y
    for corner in _corners(X.shape[1]):
        shifted = pd.DataFrame(X + corner * radius, columns=frame.columns)
        robust &= np.asarray(model.predict(shifted)) == y
    return robust


# --------------------------------------------------------------------------------------------
# The exact linear worst case
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [0.1, 0.3])
@pytest.mark.parametrize("units", ["input", "std"])
def test_linear_exact_equals_brute_force_and_its_worst_case_flips_exactly_the_reported_samples(
    credit: dict, epsilon: float, units: str
) -> None:
    model, test = credit["model"], credit["test"].iloc[:400]
    X, y = test[list(FEATURES)].to_numpy(float), test[LABEL].to_numpy()
    scale = credit["std"] if units == "std" else np.ones(len(FEATURES))
    m = robust_accuracy(model, test[list(FEATURES)], y, epsilon=epsilon, method="linear-exact", scale=scale)
    assert (m.method, m.exactness, m.samples) == ("linear-exact", "exact", 400)

    assert np.array_equal(m.robust, _brute_force_robust(model, X, y, epsilon * scale))

    # The worst case of a binary linear model is x' = x - eps*sign(w) for class 1 (+ for class 0), w in input units.
    w = model[-1].coef_[0] / model[0].scale_
    toward_other_class = np.where(y == model.classes_[1], -1.0, 1.0)[:, None]
    assert np.allclose(m.adversarial, X + toward_other_class * epsilon * scale * np.sign(w))
    at_worst = model.predict(pd.DataFrame(m.adversarial, columns=list(FEATURES)))
    assert np.array_equal(at_worst == y, m.robust)  # flips exactly the non-robust, none of the robust
    assert m.flipped.tolist() == np.flatnonzero(m.clean_correct & (at_worst != y)).tolist()
    assert m.robust_accuracy <= m.clean_accuracy


MULTICLASS_MODELS = {
    "logreg+standard": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    "linearsvc": lambda: LinearSVC(max_iter=20000),
    "ridge+minmax": lambda: make_pipeline(MinMaxScaler(), RidgeClassifier()),
    "sgd+robust+maxabs": lambda: make_pipeline(RobustScaler(), MaxAbsScaler(), SGDClassifier(random_state=0)),
}


@pytest.mark.parametrize("name", sorted(MULTICLASS_MODELS))
def test_linear_exact_multiclass_equals_brute_force(name: str) -> None:
    X, y = load_iris(return_X_y=True)
    model = MULTICLASS_MODELS[name]().fit(X, y)
    assert linear_form(model, X) is not None
    assert select_method(model)[0] == "linear-exact"
    for epsilon in (0.05, 0.2):
        m = robust_accuracy(model, X, y, epsilon=epsilon, method="auto")
        assert m.method == "linear-exact"
        assert np.array_equal(m.robust, _brute_force_robust(model, X, y, np.full(4, epsilon)))
        assert np.array_equal(model.predict(m.adversarial) == y, m.robust)
        assert np.all(np.abs(m.adversarial - X).max(axis=1) <= epsilon + 1e-12)


def test_linear_exact_l2_worst_case_is_on_the_sphere_and_flips_exactly(credit: dict) -> None:
    model, test = credit["model"], credit["test"]
    X, y = test[list(FEATURES)].to_numpy(float), test[LABEL].to_numpy()
    scale = credit["std"]
    m = robust_accuracy(model, test[list(FEATURES)], y, epsilon=0.3, method="linear-exact", norm="2", scale=scale)
    distance = np.sqrt((((m.adversarial - X) / scale) ** 2).sum(axis=1))
    assert np.allclose(distance, 0.3)
    at_worst = model.predict(pd.DataFrame(m.adversarial, columns=list(FEATURES)))
    assert np.array_equal(at_worst == y, m.robust)
    # The L2 ball lies inside the L-inf box of the same radius: never less robust than L-inf.
    box = robust_accuracy(model, test[list(FEATURES)], y, epsilon=0.3, method="linear-exact", scale=scale)
    assert m.robust_accuracy >= box.robust_accuracy


def test_non_linear_models_are_not_folded() -> None:
    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    assert linear_form(forest) is None
    assert select_method(forest, art_available=False)[0] == "noise"
    assert "install the robustness extra" in select_method(forest, art_available=False)[1]
    assert select_method(forest, art_available=True)[0] == "hopskipjump"
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert select_method(linear, art_available=False)[0] == "linear-exact"
    with pytest.raises(Exception, match="needs a linear classifier"):
        robust_accuracy(forest, X, y, epsilon=0.1, method="linear-exact")


# --------------------------------------------------------------------------------------------
# ART and the noise bound
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [0.1, 0.3])
def test_linear_exact_matches_art_fgsm_with_true_labels(credit: dict, epsilon: float) -> None:
    pytest.importorskip("art")
    from art.attacks.evasion import FastGradientMethod
    from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression

    model, test = credit["model"], credit["test"]
    X, y = test[list(FEATURES)].to_numpy(float), test[LABEL].to_numpy()
    exact = robust_accuracy(model, test[list(FEATURES)], y, epsilon=epsilon, method="linear-exact")

    scaler, logreg = model[0], model[-1]
    classifier = ScikitlearnLogisticRegression(model=logreg, preprocessing=(scaler.mean_, scaler.scale_))
    x_adv = FastGradientMethod(classifier, norm=np.inf, eps=epsilon).generate(X.astype(np.float32), y=np.eye(2)[y])
    clean = model.predict(pd.DataFrame(X, columns=list(FEATURES))) == y
    art_robust = clean & (model.predict(pd.DataFrame(x_adv.astype(float), columns=list(FEATURES))) == y)
    assert abs(art_robust.mean() - exact.robust_accuracy) <= 0.002

    ours = robust_accuracy(model, test[list(FEATURES)], y, epsilon=epsilon, method="fgsm")
    assert (ours.method, ours.exactness) == ("fgsm", "attack")
    assert ours.art_version
    assert abs(ours.robust_accuracy - exact.robust_accuracy) <= 0.002
    assert np.array_equal(ours.robust, exact.robust)


def test_noise_is_only_an_upper_bound(credit: dict) -> None:
    model, test = credit["model"], credit["test"]
    for epsilon, norm in ((0.1, "inf"), (0.3, "inf"), (0.3, "2")):
        exact = robust_accuracy(model, test[list(FEATURES)], test[LABEL], epsilon=epsilon, method="linear-exact", norm=norm)
        noise = robust_accuracy(model, test[list(FEATURES)], test[LABEL], epsilon=epsilon, method="noise", norm=norm)
        assert noise.exactness == "bound"
        assert noise.robust_accuracy >= exact.robust_accuracy
        assert not np.any(exact.robust & ~noise.robust)  # every truly robust sample survives the noise too
    # With 30 features random corners are far from the worst case: the bound is loose.
    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    std = X.std(axis=0)
    exact = robust_accuracy(model, X, y, epsilon=0.2, method="linear-exact", scale=std)
    noise = robust_accuracy(model, X, y, epsilon=0.2, method="noise", scale=std)
    assert noise.robust_accuracy >= exact.robust_accuracy + 0.05


def test_random_forest_is_attacked_with_hopskipjump_and_every_flip_has_a_witness(credit: dict) -> None:
    pytest.importorskip("art")
    train, test = credit["train"], credit["test"].iloc[:30]
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(train[list(FEATURES)], train[LABEL])
    X, y = test[list(FEATURES)].to_numpy(float), test[LABEL].to_numpy()
    scale = credit["std"]
    m = robust_accuracy(forest, test[list(FEATURES)], y, epsilon=0.5, method="auto", scale=scale, max_iter=3)
    assert (m.method, m.exactness) == ("hopskipjump", "attack")
    assert m.art_version and m.samples == 30
    assert m.robust_accuracy <= m.clean_accuracy
    noise = robust_accuracy(forest, test[list(FEATURES)], y, epsilon=0.5, method="noise", scale=scale)
    assert m.robust_accuracy <= noise.robust_accuracy  # the attack also tries the noise draws
    flipped = m.flipped
    assert max(m.witnesses.values()) <= len(flipped) <= sum(m.witnesses.values())
    at_witness = forest.predict(pd.DataFrame(m.adversarial[flipped], columns=list(FEATURES)))
    assert np.all(at_witness != y[flipped])
    assert np.all(np.abs((m.adversarial - X) / scale).max(axis=1) <= 0.5 + 1e-9)
    untouched = m.robust
    assert np.array_equal(m.adversarial[untouched], X[untouched])


def test_kernel_svc_with_string_labels_is_attacked_with_pgd(credit: dict) -> None:
    pytest.importorskip("art")
    from sklearn.svm import SVC

    train, test = credit["train"].iloc[:600], credit["test"].iloc[:40]
    labels = {0: "repaid", 1: "defaulted"}
    svc = make_pipeline(StandardScaler(), SVC()).fit(train[list(FEATURES)], train[LABEL].map(labels))
    X, y = test[list(FEATURES)].to_numpy(float), test[LABEL].map(labels).to_numpy()
    scale = credit["std"]
    m = robust_accuracy(svc, test[list(FEATURES)], y, epsilon=0.5, method="auto", scale=scale)
    assert (m.method, m.exactness) == ("pgd", "attack")
    assert 0 < m.robust_accuracy < m.clean_accuracy
    flipped = m.flipped
    assert np.all(svc.predict(pd.DataFrame(m.adversarial[flipped], columns=list(FEATURES))) != y[flipped])
    assert np.all(np.abs((m.adversarial - X) / scale).max(axis=1) <= 0.5 + 1e-9)
    assert set(m.per_class()) == {"repaid", "defaulted"}


# --------------------------------------------------------------------------------------------
# The gate, on files
# --------------------------------------------------------------------------------------------


def _gate(saved: dict, **kwargs):
    options = {"label_column": LABEL, "epsilon": 0.01, "min_robust_accuracy": 0.7}
    options.update(kwargs)
    return evaluate_robustness(options.pop("model", saved["model"]), options.pop("data", saved["data"]), **options)


def test_robust_model_passes_with_evidence(saved: dict) -> None:
    outcome = _gate(saved)
    result = outcome.result
    assert outcome.verdict is Verdict.PASSED, result.summary
    assert result.gate == GATE_NAME
    assert set(result.metrics) >= {"clean_accuracy", "robust_accuracy", "accuracy_drop", "epsilon", "samples"}
    assert result.metrics["samples"] == 750 and result.metrics["epsilon"] == 0.01
    assert result.details["method"] == "linear-exact" and result.details["exactness"] == "exact"
    assert result.details["norm"] == "inf" and result.details["model_format"] == "mlflow/skops"
    assert "art_version" not in result.details
    [finding] = result.findings
    assert finding.id == "robustness.accuracy" and finding.passed and finding.severity.value == "info"
    model_subject, data_subject = result.subjects
    assert model_subject.name == str(Path(saved["model"]).absolute())
    assert model_subject.sha256 == sha256_path(saved["model"])
    assert data_subject.sha256 == sha256_file(saved["data"])
    report = json.loads(outcome.files[REPORT_FILE])
    assert report["exactness"] == "exact" and report["samples"] == 750
    assert set(report["per_class"]) == {"0", "1"}
    assert report["feature_radius"] == dict.fromkeys(FEATURES, 0.01)


def test_model_below_the_threshold_fails_with_a_clear_finding(saved: dict, credit: dict) -> None:
    outcome = _gate(saved, epsilon=0.5, max_samples=500)
    result = outcome.result
    assert outcome.verdict is Verdict.FAILED
    [finding] = result.failed_findings
    assert finding.id == "robustness.accuracy" and finding.severity.value == "high"
    assert finding.atlas == ("AML.T0015", "AML.T0043") and finding.owasp_ml == ("ML01:2023",)
    assert "is below the required 0.7" in finding.message and "linear-exact" in finding.message
    assert result.metrics["robust_accuracy"] < 0.7 < result.metrics["clean_accuracy"]
    report = json.loads(outcome.files[REPORT_FILE])
    assert report["flipped"]["count"] == result.metrics["flipped_samples"] > 0
    rows = report["flipped"]["rows"]
    assert len(rows) == min(100, report["flipped"]["count"]) and report["flipped"]["truncated"] == (
        len(rows) < report["flipped"]["count"]
    )
    # The reported rows are the ones that flip: correct when clean, wrong at the exact worst case.
    test = credit["test"]
    m = robust_accuracy(
        credit["model"], test[list(FEATURES)].iloc[rows], test[LABEL].iloc[rows], epsilon=0.5, method="linear-exact"
    )
    assert m.clean_correct.all() and not m.robust.any()


def test_warn_only_and_accuracy_drop(saved: dict) -> None:
    assert _gate(saved, epsilon=0.5, warn_only=True).verdict is Verdict.WARNED
    outcome = _gate(saved, epsilon=0.1, min_robust_accuracy=0.5, max_accuracy_drop=0.001)
    assert outcome.verdict is Verdict.FAILED
    assert [f.id for f in outcome.result.failed_findings] == ["robustness.accuracy-drop"]
    assert _gate(saved, epsilon=0.1, min_robust_accuracy=0.5, max_accuracy_drop=0.5).verdict is Verdict.PASSED


def test_a_noise_bound_cannot_pass_unless_the_policy_allows_bounds(saved: dict) -> None:
    outcome = _gate(saved, method="noise")
    assert outcome.verdict is Verdict.FAILED
    [finding] = outcome.result.failed_findings
    assert finding.id == "robustness.method" and "not measured exactly" in finding.message
    assert outcome.result.details["exactness"] == "bound"
    # allow_bounds accepts the bound, but an exact result was not measured: warned (incomplete), never passed.
    allowed = _gate(saved, method="noise", allow_bounds=True)
    assert allowed.verdict is Verdict.WARNED and allowed.result.incomplete
    assert allowed.result.not_performed == ("robustness.not-measured-exactly",)
    [note] = allowed.result.failed_findings
    assert note.id == "robustness.not-measured-exactly" and note.severity is Severity.LOW
    assert "from above" in note.message and "allow_bounds=True" in note.message
    # A bound below the threshold is a sound rejection, whatever the policy says about bounds.
    low = _gate(saved, method="noise", epsilon=0.5, allow_bounds=True)
    assert low.verdict is Verdict.FAILED and "upper bound is below" in low.result.failed_findings[0].message


def test_epsilon_in_standard_deviations(saved: dict, credit: dict) -> None:
    outcome = _gate(saved, epsilon=0.2, epsilon_scale="std", min_robust_accuracy=0.0)
    test = credit["test"]
    std = test[list(FEATURES)].to_numpy(float).std(axis=0)
    radius = outcome.result.details["feature_radius"]
    assert radius == pytest.approx({f: 0.2 * s for f, s in zip(FEATURES, std, strict=True)})
    direct = robust_accuracy(credit["model"], test[list(FEATURES)], test[LABEL], epsilon=0.2, method="linear-exact", scale=std)
    assert outcome.result.metrics["robust_accuracy"] == pytest.approx(direct.robust_accuracy)
    plain = _gate(saved, epsilon=0.2, min_robust_accuracy=0.0)
    assert plain.result.metrics["robust_accuracy"] != outcome.result.metrics["robust_accuracy"]


def test_tree_model_from_mlflow_is_checked_then_attacked_on_a_capped_sample(credit: dict, saved: dict, workdir: Path) -> None:
    pytest.importorskip("art")
    import mlflow.sklearn

    train = credit["train"]
    forest = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(train[list(FEATURES)], train[LABEL])
    model_dir = workdir / "forest"
    mlflow.sklearn.save_model(
        forest, str(model_dir), pip_requirements=["scikit-learn"], skops_trusted_types=["sklearn.tree._tree.Tree"]
    )
    outcome = _gate(
        saved, model=str(model_dir), epsilon=0.3, epsilon_scale="std", min_robust_accuracy=0.0, attack_max_samples=30, max_iter=2
    )
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    details = outcome.result.details
    assert details["method"] == "hopskipjump" and details["exactness"] == "attack" and details["art_version"]
    assert details["trees_checked"] == 10 and details["samples_available"] == 750
    assert outcome.result.metrics["samples"] == 30


def test_a_tree_with_out_of_range_children_is_refused(saved: dict, workdir: Path, credit: dict) -> None:
    import skops.io as sio

    train = credit["train"]
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(train[list(FEATURES)], train[LABEL])
    state = tree.tree_.__getstate__()
    state["nodes"]["left_child"][0] = 10**6
    tree.tree_.__setstate__(state)
    path = workdir / "crafted.skops"
    sio.dump(tree, path)
    outcome = _gate(saved, model=str(path))
    assert outcome.verdict is Verdict.ERROR
    assert "child index is out of range" in outcome.result.summary


@pytest.fixture(scope="module")
def pickled(credit: dict, workdir: Path) -> str:
    path = workdir / "model.pkl"
    path.write_bytes(pickle.dumps(credit["model"]))
    return str(path)


def test_pickles_are_refused_unless_trusted(saved: dict, pickled: str) -> None:
    refused = _gate(saved, model=pickled)
    assert refused.verdict is Verdict.ERROR and "trust_pickle=True" in refused.result.summary
    trusted = _gate(saved, model=pickled, trust_pickle=True)
    assert trusted.verdict is Verdict.PASSED and trusted.result.details["model_format"] == "pkl"


def _regressor_dir(workdir: Path, credit: dict) -> str:
    import mlflow.sklearn

    path = workdir / "regressor"
    if not path.exists():
        train = credit["train"]
        mlflow.sklearn.save_model(
            LinearRegression().fit(train[list(FEATURES)], train[LABEL]), str(path), pip_requirements=["scikit-learn"]
        )
    return str(path)


def _pyfunc_only_dir(workdir: Path) -> str:
    path = workdir / "pyfunc-only"
    path.mkdir(exist_ok=True)
    (path / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n")
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("label", "label column 'no_such_label' is not in"),
        ("model-missing", "does not exist"),
        ("regressor", "unsupported model type LinearRegression"),
        ("pyfunc", "has no sklearn flavor"),
        ("no-mlmodel", "without an MLmodel file"),
        ("unknown-file", "unsupported model file"),
        ("epsilon", "epsilon must be a positive number"),
        ("threshold", "min_robust_accuracy must be a number between 0 and 1"),
        ("method", "unknown robustness method"),
        ("labels-unknown", "none of the labels in column 'outcome'"),
        ("linear-exact-on-forest", "needs a linear classifier"),
    ],
)
def test_bad_inputs_are_error_verdicts_with_a_clear_message(
    case: str, message: str, saved: dict, workdir: Path, credit: dict, tmp_path: Path
) -> None:
    kwargs: dict = {}
    if case == "label":
        kwargs["label_column"] = "no_such_label"
    elif case == "model-missing":
        kwargs["model"] = str(tmp_path / "absent")
    elif case == "regressor":
        kwargs["model"] = _regressor_dir(workdir, credit)
    elif case == "pyfunc":
        kwargs["model"] = _pyfunc_only_dir(workdir)
    elif case == "no-mlmodel":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "model.skops").write_bytes(b"x")
        kwargs["model"] = str(tmp_path / "empty")
    elif case == "unknown-file":
        kwargs["model"] = saved["data"]
    elif case == "epsilon":
        kwargs["epsilon"] = 0.0
    elif case == "threshold":
        kwargs["min_robust_accuracy"] = 1.5
    elif case == "method":
        kwargs["method"] = "cw"
    elif case == "labels-unknown":
        path = tmp_path / "relabelled.csv"
        frame = credit["test"].drop(columns=[LABEL])
        frame.assign(outcome=np.where(credit["test"][LABEL] == 1, "yes", "no")).to_csv(path, index=False)
        kwargs.update(data=str(path), label_column="outcome")
    elif case == "linear-exact-on-forest":
        import skops.io as sio

        train = credit["train"]
        forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(train[list(FEATURES)], train[LABEL])
        path = tmp_path / "forest.skops"
        sio.dump(forest, path)
        kwargs.update(model=str(path), method="linear-exact")
    outcome = _gate(saved, **kwargs)
    assert outcome.verdict is Verdict.ERROR, outcome.result.summary
    assert message in outcome.result.summary
    assert outcome.result.findings[0].id in ("gate.could-not-run", "gate.internal-error")


def test_the_evaluation_runs_without_run_gate_and_names_a_fetched_model_by_its_uri(saved: dict) -> None:
    from airflow_mlsecops.gates.robustness import evaluate_model_on_data

    evaluation = evaluate_model_on_data(
        saved["model"], saved["data"], label_column=LABEL, epsilon=0.01, min_robust_accuracy=0.7, model_subject="runs:/abc/model"
    )
    assert evaluation.passed and evaluation.details["method"] == "linear-exact"
    model_subject, data_subject = evaluation.subjects
    assert model_subject.name == "runs:/abc/model" and model_subject.sha256 == sha256_path(Path(saved["model"]))
    assert data_subject.name == str(Path(saved["data"]).absolute())
    report = json.loads(evaluation.files[REPORT_FILE])
    assert report["model"]["name"] == "runs:/abc/model"
    default = _gate(saved).result.subjects[0]
    assert default.name == str(Path(saved["model"]).absolute()) and default.sha256 == model_subject.sha256


@pytest.mark.parametrize("uri", ["runs:/abc/model", "models:/credit/1", "s3://bucket/model/"])
def test_the_engine_refuses_remote_models_it_would_have_to_fetch(saved: dict, uri: str) -> None:
    outcome = _gate(saved, model=uri)
    assert outcome.verdict is Verdict.ERROR
    assert "reads local paths; fetch remote models first" in outcome.result.summary


@pytest.mark.parametrize("uri", ["runs:/abc/data/test.csv", "models:/credit/1/test.csv", "s3://bucket/test.csv"])
def test_the_engine_refuses_remote_data_it_would_have_to_load(saved: dict, uri: str) -> None:
    outcome = _gate(saved, data=uri)
    assert outcome.verdict is Verdict.ERROR
    assert f"{uri} is not a local path; load it first" in outcome.result.summary


def test_a_loaded_table_gives_the_same_evidence_as_its_file(saved: dict) -> None:
    from airflow_mlsecops.io.locations import load_table_at

    from_file, from_table = _gate(saved), _gate(saved, data=load_table_at(saved["data"]))
    assert from_table.verdict is Verdict.PASSED
    assert from_table.result.subjects == from_file.result.subjects
    assert from_table.files[REPORT_FILE] == from_file.files[REPORT_FILE]


def test_a_model_that_cannot_be_fetched_is_an_error_verdict_with_the_policy(saved: dict) -> None:
    from airflow_mlsecops.exceptions import GateError
    from airflow_mlsecops.gates.robustness import inputs_unavailable, robustness_policy

    policy = robustness_policy(label_column=LABEL, epsilon=0.01, min_robust_accuracy=0.7, feature_columns=list(FEATURES))
    assert policy == _gate(saved, feature_columns=list(FEATURES)).result.policy
    outcome = inputs_unavailable(GateError("s3://bucket/model cannot be read from S3 (NoSuchKey)"), policy=policy, warn_only=True)
    assert outcome.verdict is Verdict.ERROR and outcome.result.gate == GATE_NAME
    assert "cannot be read from S3" in outcome.result.summary and outcome.result.policy == policy
    bad = robustness_policy(label_column=LABEL, epsilon=0.0, min_robust_accuracy=0.7)
    outcome = inputs_unavailable(GateError("unreachable"), policy=bad)
    assert outcome.verdict is Verdict.ERROR and "epsilon must be a positive number" in outcome.result.summary
