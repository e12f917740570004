"""``RobustnessGateOperator`` as a real Airflow task (``dag.test()``) recording into real MLflow and ledger stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id, run_dag, unique_dag_id

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators.robustness import RobustnessGateOperator"


@pytest.fixture(scope="module")
def credit_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example pipeline's model saved as an MLflow model directory, with its train and test data."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame

    root = tmp_path_factory.mktemp("robustness-operator")
    frame = credit_frame(rows=2000, seed=7)
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[LABEL])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train[list(FEATURES)], train[LABEL])
    mlflow.sklearn.save_model(model, str(root / "model"), pip_requirements=["scikit-learn"])
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    return {"model": str(root / "model"), "train": str(root / "train.csv"), "test": str(root / "test.csv")}


def test_robust_model_passes_and_leaves_verifiable_evidence(
    airflow_db, home: Settings, tmp_path: Path, write_dag, credit_files: dict[str, str]
) -> None:
    dag_id = unique_dag_id("robustness_pass")
    dag = write_dag(
        dag_id,
        f"""
gate = RobustnessGateOperator(
    task_id="robustness", model={credit_files["model"]!r}, data="{{{{ params.data }}}}", label_column="defaulted",
    epsilon=0.01, min_robust_accuracy=0.7,
)

@task
def downstream(summary: dict) -> str:
    assert summary["verdict"] == "passed", summary
    assert summary["metrics"]["robust_accuracy"] >= 0.7
    return summary["verdict"]

downstream(gate.output)
""",
        header=HEADER,
        params={"data": credit_files["test"]},
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "success", {t: str(ti.state) for t, ti in tis.items()}
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.run_tags(run_id)["mlsecops.gate.robustness.verdict"] == "passed"
    local = store.download_dir(run_id, "mlsecops/evidence/robustness/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["gate"] == "robustness" and result["details"]["method"] == "linear-exact"
    assert result["details"]["exactness"] == "exact"
    report = json.loads((local / "robustness_report.json").read_text())
    assert report["samples"] == 500 and set(report["per_class"]) == {"0", "1"}
    verified = verify_run(run_id, settings=home)
    assert verified.ok, [c.to_dict() for c in verified.failures]
    assert verified.gates["robustness/try-1"]["gate"] == "robustness"
    subjects = {c.name: c.status.value for c in verified.checks if c.name.startswith("subject:")}
    assert subjects == {f"subject:{Path(credit_files['model']).absolute()}": "ok", f"subject:{credit_files['test']}": "ok"}


def test_model_from_mlflow_fails_at_large_epsilon_without_retry(
    airflow_db, home: Settings, tmp_path: Path, write_dag, credit_files: dict[str, str]
) -> None:
    dag_id = unique_dag_id("robustness_fail")
    dag = write_dag(
        dag_id,
        f"""
@task
def train(**context) -> str:
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    frame = pd.read_csv({credit_files["train"]!r})
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame[list(FEATURES)], frame[LABEL])
    hook = EvidenceHook()
    run_id = hook.pipeline_run_id(dag_id=context["dag"].dag_id, run_id=context["run_id"])
    # Through the hook's store, as in a real worker: no global tracking URI, no active run.
    model_id = hook.store.log_model(
        run_id,
        lambda path, mlflow_model: mlflow.sklearn.save_model(
            model, str(path), mlflow_model=mlflow_model, pip_requirements=["scikit-learn"]
        ),
    )
    return f"models:/{{model_id}}"

RobustnessGateOperator(
    task_id="robustness", model=train(), data={credit_files["test"]!r}, label_column="defaulted",
    epsilon=0.5, min_robust_accuracy=0.7, retries=2, retry_delay=timedelta(seconds=0),
)
""",
        header=HEADER,
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert str(tis["train"].state) == "success"
    assert str(tis["robustness"].state) == "failed" and tis["robustness"].try_number == 1
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    local = store.download_dir(run_id, "mlsecops/evidence/robustness/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["verdict"] == "failed"
    [finding] = [f for f in result["findings"] if not f["passed"]]
    assert finding["id"] == "robustness.accuracy" and "is below the required 0.7" in finding["message"]
    assert result["subjects"][0]["name"].startswith("models:/")
    verified = verify_run(run_id, settings=home)
    assert verified.ok, [c.to_dict() for c in verified.failures]
    model_check = [c for c in verified.checks if c.name.startswith("subject:models:/")]
    assert [c.status.value for c in model_check] == ["ok"]  # the stored model re-hashes to the judged digest


def test_a_model_that_cannot_be_fetched_is_a_recorded_error_with_the_policy(
    airflow_db, home: Settings, tmp_path: Path, write_dag, credit_files: dict[str, str]
) -> None:
    dag_id = unique_dag_id("robustness_unfetchable")
    dag = write_dag(
        dag_id,
        f"""
RobustnessGateOperator(
    task_id="robustness", model="models:/no-such-model/1", data={credit_files["test"]!r}, label_column="defaulted",
    epsilon=0.05, min_robust_accuracy=0.7,
)
""",
        header=HEADER,
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed" and str(tis["robustness"].state) == "failed"
    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    local = store.download_dir(run_id, "mlsecops/evidence/robustness/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    assert result["verdict"] == "error" and result["findings"][0]["id"] == "gate.could-not-run"
    assert result["policy"]["epsilon"] == 0.05 and result["policy"]["label_column"] == "defaulted"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epsilon": 0}, "epsilon must be a positive number"),
        ({"epsilon": -0.1}, "epsilon must be a positive number"),
        ({"epsilon": True}, "epsilon must be a positive number"),
        ({"min_robust_accuracy": 1.2}, "min_robust_accuracy must be between 0 and 1"),
        ({"min_robust_accuracy": -0.1}, "min_robust_accuracy must be between 0 and 1"),
        ({"method": "carlini"}, "method must be one of"),
        ({"norm": "1"}, "norm must be one of"),
        ({"label_column": ""}, "label_column is required"),
        ({"model": ""}, "model is required"),
        ({"max_samples": 0}, "max_samples must be a positive integer"),
        ({"epsilon_scale": "range"}, "epsilon_scale must be one of"),
        ({"max_accuracy_drop": 2}, "max_accuracy_drop must be between 0 and 1"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict, message: str) -> None:
    from airflow_mlsecops.operators.robustness import RobustnessGateOperator

    arguments = {
        "task_id": "robustness",
        "model": "/nowhere/model",
        "data": "/nowhere/test.csv",
        "label_column": "y",
        "epsilon": 0.1,
        "min_robust_accuracy": 0.7,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        RobustnessGateOperator(**arguments)


def test_operator_does_no_io_when_built() -> None:
    from airflow_mlsecops.operators.robustness import RobustnessGateOperator

    op = RobustnessGateOperator(
        task_id="robustness",
        model="models:/m-123",
        data="s3://bucket/test.parquet",
        label_column="y",
        epsilon=0.1,
        min_robust_accuracy=0.5,
    )
    assert op.template_fields[-3:] == ("model", "data", "label_column")
    assert op.gate_name == "robustness"
