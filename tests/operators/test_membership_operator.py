"""``MembershipInferenceGateOperator`` and ``TrainingPrivacyGateOperator`` as real Airflow tasks
(``dag.test()``) recording into real MLflow and ledger stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id, run_dag, unique_dag_id

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators import MembershipInferenceGateOperator, TrainingPrivacyGateOperator"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A regularised and a memorising model (skops files), their training rows and a holdout."""
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("membership-operator")
    frame = credit_frame(rows=1900, seed=5)
    train, holdout = frame.iloc[:800], frame.iloc[800:]
    train.to_csv(root / "loans-train.csv", index=False)
    holdout.to_csv(root / "holdout.csv", index=False)
    X, y = train[list(FEATURES)], train[LABEL]
    sio.dump(LogisticRegression(C=0.01, max_iter=1000).fit(X, y), root / "logreg.skops")
    sio.dump(RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y), root / "forest.skops")
    return {k: str(root / v) for k, v in {"train": "loans-train.csv", "holdout": "holdout.csv"}.items()} | {
        "regularised": str(root / "logreg.skops"),
        "forest": str(root / "forest.skops"),
    }


def test_a_regularised_model_passes_and_a_memorising_one_fails(
    airflow_db, home: Settings, tmp_path: Path, write_dag, files: dict[str, str]
) -> None:
    dag_id = unique_dag_id("membership")
    dag = write_dag(
        dag_id,
        f"""
for name, model in (("regularised", {files["regularised"]!r}), ("memorising", {files["forest"]!r})):
    MembershipInferenceGateOperator(
        task_id=name, model=model, train={files["train"]!r}, holdout="{{{{ params.holdout }}}}", label_column="defaulted",
        bootstrap=50,
    )
""",
        header=HEADER,
        params={"holdout": files["holdout"]},
    )
    _, tis = run_dag(dag)
    assert {t: str(ti.state) for t, ti in tis.items()} == {"regularised": "success", "memorising": "failed"}
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    tags = store.run_tags(run_id)
    assert tags["mlsecops.gate.regularised.verdict"] == "passed"
    assert tags["mlsecops.gate.memorising.verdict"] == "failed"
    local = store.download_dir(run_id, "mlsecops/evidence/memorising/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["gate"] == "membership-inference" and result["metrics"]["attack_auc"] > 0.6
    report = json.loads((local / "membership_report.json").read_text())
    assert report["bootstrap_rounds"] == 50 and report["ci_above_threshold"]["attack_auc"] is True
    verified = verify_run(run_id, settings=home)
    assert verified.ok, [c.to_dict() for c in verified.failures]
    subjects = {c.name for c in verified.checks if c.name.startswith("subject:") and c.scope == "regularised/try-1"}
    assert subjects == {f"subject:{files[k]}" for k in ("regularised", "train", "holdout")}


def test_a_model_on_sensitive_data_needs_a_declared_guarantee(
    airflow_db, home: Settings, tmp_path: Path, write_dag, files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_mlsecops.gates.membership.training_privacy import declare_dp_guarantee

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\n"
        "rules:\n"
        "  - name: nothing-here\n"
        "    match: {dag_id_pattern: '^no-such-dag$'}\n"
        "    required_gates: {promote: [model-scan]}\n"
        "sensitive_data:\n"
        "  - name: loans\n"
        "    match: ['*/loans-*.csv']\n"
        "    training: {max_epsilon: 4, max_delta: 1.0e-5}\n"
    )
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    private = store.create_run(experiment_name="training", run_name="dp")
    declare_dp_guarantee(private, epsilon=2.0, delta=1e-6, mechanism="dp-sgd", library="opacus==1.5.2", store=store)
    plain = store.create_run(experiment_name="training", run_name="plain")
    dag_id = unique_dag_id("training_privacy")
    dag = write_dag(
        dag_id,
        f"""
for name, run in (("declared", {private!r}), ("undeclared", {plain!r})):
    TrainingPrivacyGateOperator(
        task_id=name, model={files["regularised"]!r}, training_run_id=run, training_data=[{files["train"]!r}],
    )
TrainingPrivacyGateOperator(task_id="not_sensitive", model={files["regularised"]!r}, training_run_id={plain!r},
                            training_data=[{files["holdout"]!r}])
""",
        header=HEADER,
    )
    _, tis = run_dag(dag)
    states = {t: str(ti.state) for t, ti in tis.items()}
    assert states == {"declared": "success", "undeclared": "failed", "not_sensitive": "success"}
    run_id = pipeline_run_id(home, dag_id)
    local = store.download_dir(run_id, "mlsecops/evidence/undeclared/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["gate"] == "training-privacy" and result["details"]["sensitive_data"] == "loans"
    assert [f["id"] for f in result["findings"]] == ["training-privacy.no-guarantee"]
    assert store.run_tags(run_id)["mlsecops.gate.declared.verdict"] == "passed"


def test_bad_arguments_fail_when_the_dag_is_parsed() -> None:
    from airflow_mlsecops.operators import MembershipInferenceGateOperator, TrainingPrivacyGateOperator

    base = {"task_id": "t", "model": "m", "train": "a.csv", "holdout": "b.csv", "label_column": "y"}
    for bad in (
        {"max_attack_auc": 0.4},
        {"max_advantage": 1.5},
        {"min_samples": 5},
        {"attacks": ["shadow"]},
        {"trust_pickle": "no"},
    ):
        with pytest.raises(ValueError, match="t: "):
            MembershipInferenceGateOperator(**{**base, **bad})
    with pytest.raises(ValueError, match="training_data"):
        TrainingPrivacyGateOperator(task_id="t", model="m", training_data=[])
    with pytest.raises(ValueError, match="max_epsilon"):
        TrainingPrivacyGateOperator(task_id="t", model="m", training_data=["a.csv"], max_epsilon=-1)
