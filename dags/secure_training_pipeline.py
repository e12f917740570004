"""Secure training pipeline: every stage passes a security gate and leaves signed evidence in MLflow.

    ingest -> validate_data -> check_integrity -> scan_pii -> sign_training_data
      -> verify_training_data -> train_model -> scan_model -> check_robustness -> build_sbom
      -> sign_model -> attest_model -> register_model -> approve_model -> promote_model

* data: Great Expectations suite (``suites/training_data.json``), integrity and poisoning checks
  against the shipped trusted reference (``data/credit_reference.csv``), a PII scan, then a signed
  SLSA provenance of the batch that is verified again right before training;
* model: trained on exactly the verified bytes and logged to the pipeline's MLflow run with its
  input-anomaly detector; scanned for unsafe serialisation, evaluated under adversarial
  perturbation, described by a CycloneDX ML-BOM, signed in the OpenSSF model-signing format and
  attested, then registered as ``credit-risk``;
* approval: reviewers ``alice`` or ``bob`` approve in the Airflow UI (*Required actions*) or with
  ``mlsecops approve``; the DAG run's triggering user and the model's author may not;
* promotion: the ``champion`` alias moves only if every signature, digest and gate verifies at
  that moment, and the approval covers this exact model.

Run it with ``make demo`` (or ``mlsecops demo --approve-as alice``); trigger it in Airflow with
the conf ``{"rows": 5000, "seed": 7}``. The SBOM gate checks vulnerabilities against an offline
OSV database when the ``osv_db`` param names one (the PyPI export of osv.dev); without it the
example records "vulnerability check not performed" as a visible finding instead of failing, which
a production policy should not allow (``require_vulnerability_check=True``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param, task

from airflow_mlsecops.operators import (
    DataIntegrityGateOperator,
    DataValidationGateOperator,
    ModelApprovalGateOperator,
    ModelScanGateOperator,
    ModelSignOperator,
    PIIScanGateOperator,
    PromoteModelOperator,
    ProvenanceSignOperator,
    ProvenanceVerifyOperator,
    RegisterModelOperator,
    RobustnessGateOperator,
    SBOMGateOperator,
)

HERE = Path(__file__).parent
SUITE = HERE / "suites" / "training_data.json"
REFERENCE = HERE / "data" / "credit_reference.csv"
MODEL_NAME = "credit-risk"
MODEL_URI = "{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}"


@task
def ingest(**context) -> str:
    """Write this run's training batch and return its path."""
    import re

    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.demo.example_data import credit_frame

    params = context["params"]
    run_dir = Settings.from_env().home / "data" / re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "train.csv"
    credit_frame(rows=int(params["rows"]), seed=int(params["seed"])).to_csv(path, index=False)
    return str(path)


@task
def train_model(data_path: str, verified: dict, **context) -> dict:
    """Train on the batch the provenance gate verified, refusing a batch that changed since."""
    import getpass
    import re

    import mlflow
    import pandas as pd
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL
    from airflow_mlsecops.evidence.digest import sha256_file
    from airflow_mlsecops.gates.input_detection import fit_detector, log_detector_to_model
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    signed_digest = {s["name"]: s["digest"]["sha256"] for s in verified["subjects"]}[str(Path(data_path).absolute())]
    if sha256_file(data_path) != signed_digest:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{data_path} changed after it was signed; refusing to train on it")
    frame = pd.read_csv(data_path)
    x_train, x_test, y_train, y_test = train_test_split(
        frame[list(FEATURES)], frame[LABEL], test_size=0.25, random_state=0, stratify=frame[LABEL]
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    metrics = {
        "accuracy": float(accuracy_score(y_test, model.predict(x_test))),
        "roc_auc": float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])),
    }
    holdout = Path(data_path).with_name("holdout.csv")
    x_test.assign(**{LABEL: y_test}).to_csv(holdout, index=False)

    hook = EvidenceHook()
    run_id = hook.pipeline_run_id(dag_id=context["dag"].dag_id, run_id=context["run_id"])
    mlflow.set_tracking_uri(hook.settings.tracking_uri)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(metrics)
        mlflow.log_param("training_data_sha256", signed_digest)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x_test.head(3),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"],
        )
    # The input-anomaly detector travels inside the model, so signing the model covers it too.
    detector = fit_detector(x_train, model=model, feature_columns=list(FEATURES))
    log_detector_to_model(detector, info.model_id, tracking_uri=hook.settings.tracking_uri)
    author = re.sub(r"[^A-Za-z0-9_.@-]", "_", getpass.getuser())
    return {
        "model_uri": f"models:/{info.model_id}",
        "mlflow_run_id": run_id,
        "holdout": str(holdout),
        "author": author,
        **metrics,
    }


with DAG(
    dag_id="secure_training_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["mlsecops", "example", "production-model"],
    params={
        "rows": Param(5000, type="integer", minimum=100),
        "seed": Param(7, type="integer"),
        "osv_db": Param("", type="string", description="OSV PyPI database directory or zip for the SBOM gate"),
    },
    doc_md=__doc__,
) as dag:
    data = ingest()
    validate = DataValidationGateOperator(task_id="validate_data", data=data, suite=str(SUITE))
    integrity = DataIntegrityGateOperator(
        task_id="check_integrity", data=data, reference=str(REFERENCE), label_column="defaulted"
    )
    pii = PIIScanGateOperator(task_id="scan_pii", data=data)
    sign_data = ProvenanceSignOperator(task_id="sign_training_data", artifacts=[data])
    verify_data = ProvenanceVerifyOperator(
        task_id="verify_training_data", artifacts=[data], attestation=sign_data.output["attestation"]
    )
    trained = train_model(data, verify_data.output)

    scan = ModelScanGateOperator(task_id="scan_model", path=MODEL_URI)
    robustness = RobustnessGateOperator(
        task_id="check_robustness",
        model=MODEL_URI,
        data="{{ ti.xcom_pull(task_ids='train_model')['holdout'] }}",
        label_column="defaulted",
        epsilon=0.1,
        epsilon_scale="std",
        min_robust_accuracy=0.6,
    )
    sbom = SBOMGateOperator(
        task_id="build_sbom",
        model=MODEL_URI,
        datasets=sign_data.output["subjects"],
        osv_db="{{ params.osv_db }}",
        require_vulnerability_check=False,
    )
    sign_model = ModelSignOperator(task_id="sign_model", path=MODEL_URI)
    attest_model = ProvenanceSignOperator(task_id="attest_model", artifacts=[MODEL_URI], gate="model-provenance")
    register = RegisterModelOperator(
        task_id="register_model",
        model_uri=MODEL_URI,
        name=MODEL_NAME,
        expected_sha256="{{ ti.xcom_pull(task_ids='attest_model', key='subjects')[0]['digest']['sha256'] }}",
    )
    approve = ModelApprovalGateOperator(
        task_id="approve_model",
        model_uri="{{ ti.xcom_pull(task_ids='register_model', key='model_uri') }}",
        reviewers=["alice", "bob"],
        required_approvals=1,
        model_author="{{ ti.xcom_pull(task_ids='train_model')['author'] }}",
        title="Promote credit-risk to champion?",
    )
    promote = PromoteModelOperator(
        task_id="promote_model",
        name=MODEL_NAME,
        version="{{ ti.xcom_pull(task_ids='register_model', key='version') }}",
        alias="champion",
        required_gates=(
            "data-validation",
            "data-integrity",
            "pii-scan",
            "dataset-provenance",
            "provenance-verification",
            "model-scan",
            "robustness",
            "sbom",
            "model-signing",
            "model-provenance",
        ),
    )

    validate >> integrity >> pii >> sign_data
    trained >> scan >> robustness >> sbom >> sign_model >> attest_model >> register >> approve >> promote
