"""Secure training pipeline: every stage passes a security gate and leaves signed evidence in MLflow.

    ingest -> validate_data -> sign_training_data -> train_model -> sign_model

* ``ingest`` writes the (synthetic, generated) training batch to ``$MLSECOPS_HOME/data/<run>/``;
* ``validate_data`` runs the Great Expectations suite ``suites/training_data.json``;
* ``sign_training_data`` hashes the batch and signs its manifest;
* ``train_model`` trains a scikit-learn model on exactly the signed bytes and logs it to the
  pipeline's MLflow run;
* ``sign_model`` fetches the model back from MLflow and signs its file manifest, so a later swap
  in the store is caught by ``mlsecops verify``.

Run it with ``make demo`` (or ``mlsecops demo``); trigger it in Airflow with the conf
``{"rows": 5000, "seed": 7}``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param, task

from airflow_mlsecops.operators import DataValidationGateOperator, ProvenanceSignOperator

SUITE = Path(__file__).parent / "suites" / "training_data.json"


@task
def ingest(**context) -> str:
    """Write this run's training batch and return its path."""
    import re

    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.example_data import credit_frame

    params = context["params"]
    run_dir = Settings.from_env().home / "data" / re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "train.csv"
    credit_frame(rows=int(params["rows"]), seed=int(params["seed"])).to_csv(path, index=False)
    return str(path)


@task
def train_model(data_path: str, signed: dict, **context) -> dict:
    """Train on the batch the provenance gate signed, refusing a batch that changed since."""
    import mlflow
    import pandas as pd
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.evidence.digest import sha256_file
    from airflow_mlsecops.example_data import FEATURES, LABEL
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    signed_digest = {s["name"]: s["digest"]["sha256"] for s in signed["subjects"]}[str(Path(data_path).absolute())]
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
    return {"model_uri": f"models:/{info.model_id}", "mlflow_run_id": run_id, **metrics}


with DAG(
    dag_id="secure_training_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["mlsecops", "example"],
    params={"rows": Param(5000, type="integer", minimum=100), "seed": Param(7, type="integer")},
    doc_md=__doc__,
) as dag:
    data = ingest()
    validate = DataValidationGateOperator(task_id="validate_data", data=data, suite=str(SUITE))
    sign_data = ProvenanceSignOperator(task_id="sign_training_data", artifacts=[data], gate="dataset-provenance")
    trained = train_model(data, sign_data.output)
    sign_model = ProvenanceSignOperator(task_id="sign_model", artifacts=[trained["model_uri"]], gate="model-provenance")
    validate >> sign_data
