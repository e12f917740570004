"""Secure training pipeline: every stage passes a security gate and leaves signed evidence in MLflow.

    ingest -> validate_data -> check_integrity -> scan_pii -> sign_training_data
      -> verify_training_data -> train_model (after scan_code) -> check_training_environment -> scan_model
      -> check_robustness -> check_membership_inference -> build_sbom
      -> sign_model -> attest_model -> register_model -> approve_model -> promote_model

* data: Great Expectations suite (``suites/training_data.json``), integrity and poisoning checks
  against the shipped trusted reference (``data/credit_reference.csv``), a PII scan, then a signed
  SLSA provenance of the batch that is verified again right before training;
* code: before training, ``scan_code`` runs bandit and a secret scan on this DAG folder and the
  training module (:mod:`airflow_mlsecops.demo.example_data`); an issue of medium or high severity,
  a hard-coded credential or a ``# nosec`` without a reason stops the run;
* model: trained on exactly the verified bytes (read once, checked against the digest the
  provenance gate verified, parsed from that copy) and logged to the pipeline's MLflow run with its
  input-anomaly detector and the digest of its training data (``training_data_sha256``, recorded
  again by the registration; promotion requires every required data gate to have judged it);
  its training environment checked (the packages installed in the training worker: vulnerable ones,
  and versions the model declares differently or not at all), scanned for unsafe serialisation,
  evaluated under adversarial perturbation, attacked for membership inference (can its training rows
  be told from the held-out ones?), described by a CycloneDX ML-BOM, signed in the OpenSSF
  model-signing format and attested, then registered as ``credit-risk``;
* author: the person who triggered the DAG run (the ``author`` param only for a run nobody
  triggered, e.g. a scheduled one; neither fails ``train_model``). It is the ``mlflow.user`` of the
  pipeline's MLflow run and the model author of the approval, never the worker's OS user;
* approval: the reviewers of :data:`airflow_mlsecops.demo.accounts.REVIEWERS` (``alice``, ``bob``)
  approve in the Airflow UI (*Required actions*) or with ``mlsecops approve`` within 24 hours
  (the task fails on timeout); the DAG run's triggering user and the model's author may not;
* promotion: the ``champion`` alias moves only if every signature, digest and gate verifies at
  that moment, and the approval covers this exact model.

Every MLflow call goes through a client built from the configured tracking and registry URI: no
task depends on an earlier one having run in the same process, as each runs in its own under a
real Airflow.

Run it with ``make demo`` (or ``mlsecops demo --approve-as alice``); trigger it in Airflow with
the defaults or the conf ``{"rows": 5000, "seed": 7}``. The SBOM gate checks vulnerabilities
against an offline OSV database when the ``osv_db`` param names one (the PyPI export of osv.dev);
without it the example records "vulnerability check not performed" as a visible finding instead
of failing, which a production policy should not allow (``require_vulnerability_check=True``).

Another DAG file can build a variant (another ``dag_id``, a shorter approval timeout) with
:func:`build_secure_training_pipeline`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

import airflow_mlsecops
from airflow_mlsecops.demo.accounts import REVIEWERS
from airflow_mlsecops.operators import (
    CodeScanGateOperator,
    DataIntegrityGateOperator,
    DataValidationGateOperator,
    MembershipInferenceGateOperator,
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
    TrainingEnvironmentGateOperator,
)

HERE = Path(__file__).parent
SUITE = HERE / "suites" / "training_data.json"
REFERENCE = HERE / "data" / "credit_reference.csv"
#: The code that trains the model, scanned before it runs (with this DAG folder).
TRAINING_MODULE = Path(airflow_mlsecops.__file__).parent / "demo" / "example_data.py"
MODEL_NAME = "credit-risk"
MODEL_URI = "{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}"
DAG_ID = "secure_training_pipeline"
APPROVAL_TIMEOUT = timedelta(hours=24)


@task
def ingest(**context) -> str:
    """Write this run's training batch and return its path."""
    import re

    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    params = context["params"]
    run_dir = EvidenceHook().settings.home / "data" / re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "train.csv"
    credit_frame(rows=int(params["rows"]), seed=int(params["seed"])).to_csv(path, index=False)
    return str(path)


def model_author(context: Any) -> str:
    """The person the model is attributed to: the DAG run's triggering user, else the ``author`` param.

    The triggering user always wins, so whoever triggers a run cannot name someone else as the
    author and then approve the model; the param serves runs nobody triggered (scheduled ones).
    Never the worker's OS user (``root`` in a container says nothing about who trained it).

    :raises AirflowFailException: neither is known.
    """
    dag_run = context.get("dag_run")
    triggered_by = str(getattr(dag_run, "triggering_user_name", None) or "").strip()
    if triggered_by:
        return triggered_by
    given = str((context.get("params") or {}).get("author") or "").strip()
    if given:
        return given
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(
        "train_model: the model needs an author (a person, for separation of duties): this DAG run "
        "has no triggering user, so set the 'author' param (e.g. in the schedule's conf)"
    )


@task
def train_model(data_path: str, verified: dict, **context) -> dict:
    """Train on the batch the provenance gate verified, refusing a batch that changed since.

    The batch is read once and parsed from the bytes whose digest was checked
    (:func:`~airflow_mlsecops.io.tabular.load_verified_table`), so a swap after the check cannot
    reach the model; that digest is logged with the model as the data it was trained on.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, log_example_model
    from airflow_mlsecops.exceptions import DigestMismatch
    from airflow_mlsecops.gates.input_detection import fit_detector, log_detector_to_model
    from airflow_mlsecops.hooks.evidence import EvidenceHook
    from airflow_mlsecops.io.tabular import load_verified_table

    signed_digest = {s["name"]: s["digest"]["sha256"] for s in verified["subjects"]}[str(Path(data_path).absolute())]
    try:
        frame = load_verified_table(data_path, sha256=signed_digest).frame
    except DigestMismatch as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{data_path} changed after it was signed; refusing to train on it: {exc}") from exc
    author = model_author(context)
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
    # The rows the model was fitted on, for the membership-inference gate (train.csv also holds the holdout).
    train_split = Path(data_path).with_name("train_split.csv")
    x_train.assign(**{LABEL: y_train}).to_csv(train_split, index=False)

    # Only the configured store's own client: this task may run in a fresh process on any worker.
    hook = EvidenceHook()
    store = hook.store
    run_id = hook.pipeline_run_id(dag_id=context["dag"].dag_id, run_id=context["run_id"])
    store.log_tags_and_metrics(run_id, {"mlflow.user": author}, {})  # "Created by" in the MLflow UI
    model_uri = log_example_model(
        store,
        run_id,
        model,
        input_example=x_test.head(3),
        training_data=[signed_digest],
        metrics=metrics,
        author=author,
    )
    # The input-anomaly detector travels inside the model, so signing the model covers it too.
    detector = fit_detector(x_train, model=model, feature_columns=list(FEATURES))
    log_detector_to_model(detector, model_uri.removeprefix("models:/"), store=store)
    return {
        "model_uri": model_uri,
        "mlflow_run_id": run_id,
        "holdout": str(holdout),
        "train_split": str(train_split),
        "author": author,
        "training_data_sha256": signed_digest,
        **metrics,
    }


def build_secure_training_pipeline(dag_id: str = DAG_ID, approval_timeout: timedelta | None = APPROVAL_TIMEOUT) -> DAG:
    """The secure training pipeline as a DAG named ``dag_id``.

    Another DAG file builds a variant with ``from secure_training_pipeline import
    build_secure_training_pipeline`` (the DAGs folder is on ``sys.path``) and assigns the result to a
    module-level name there.

    :param dag_id: the DAG's id.
    :param approval_timeout: how long ``approve_model`` waits for reviewers before it fails
        (nothing is promoted, the timeout is recorded as evidence); ``None`` waits forever.
    """
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["mlsecops", "example", "production-model"],
        params={
            "rows": Param(5000, type="integer", minimum=100, description="rows of the generated training batch"),
            "seed": Param(7, type="integer", description="seed of the generated training batch"),
            "osv_db": Param(
                None,
                type=["null", "string"],
                description="OSV PyPI database directory or zip for the SBOM gate (empty: no vulnerability check)",
            ),
            "author": Param(
                None,
                type=["null", "string"],
                description="the model's author when the run has no triggering user (a scheduled run); "
                "a triggered run's author is always the user who triggered it",
            ),
        },
        doc_md=__doc__,
        # Built inside a function: without this, a DAG file that imports this module to build a
        # variant would also collect this module's own DAG as one of its DAGs.
        auto_register=False,
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
        scan_code = CodeScanGateOperator(task_id="scan_code", paths=[str(HERE), str(TRAINING_MODULE)])
        scan_code >> trained

        # Runs in the training worker's own environment (same image and queue as train_model): it
        # lists what importlib.metadata sees there and compares it with the model's requirements.
        environment = TrainingEnvironmentGateOperator(
            task_id="check_training_environment",
            model=MODEL_URI,
            osv_db="{{ params.osv_db or '' }}",  # unset renders "", not "None"
            require_vulnerability_check=False,  # the offline demo: "not performed" is recorded as warned
        )
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
        # Privacy leakage: can black-box attacks tell the training rows from the held-out ones? The demo's
        # holdout is small (a quarter of the batch), so the advantage limit leaves room for chance
        # (the evidence names the chance level at the sample size used).
        membership = MembershipInferenceGateOperator(
            task_id="check_membership_inference",
            model=MODEL_URI,
            train="{{ ti.xcom_pull(task_ids='train_model')['train_split'] }}",
            holdout="{{ ti.xcom_pull(task_ids='train_model')['holdout'] }}",
            label_column="defaulted",
            max_attack_auc=0.6,
            max_advantage=0.2,
            min_samples=150,
        )
        sbom = SBOMGateOperator(
            task_id="build_sbom",
            model=MODEL_URI,
            datasets=sign_data.output["subjects"],
            osv_db="{{ params.osv_db or '' }}",  # unset renders "", not "None"
            require_vulnerability_check=False,
        )
        sign_model = ModelSignOperator(task_id="sign_model", path=MODEL_URI)
        attest_model = ProvenanceSignOperator(task_id="attest_model", artifacts=[MODEL_URI], gate="model-provenance")
        register = RegisterModelOperator(
            task_id="register_model",
            model_uri=MODEL_URI,
            name=MODEL_NAME,
            expected_sha256="{{ ti.xcom_pull(task_ids='attest_model', key='subjects')[0]['digest']['sha256'] }}",
            training_data="{{ ti.xcom_pull(task_ids='train_model')['training_data_sha256'] }}",
        )
        approve = ModelApprovalGateOperator(
            task_id="approve_model",
            model_uri="{{ ti.xcom_pull(task_ids='register_model', key='model_uri') }}",
            reviewers=list(REVIEWERS),
            required_approvals=1,
            model_author="{{ ti.xcom_pull(task_ids='train_model')['author'] }}",
            title="Promote credit-risk to champion?",
            compare_alias="champion",  # the request compares the model with the current champion
            response_timeout=approval_timeout,
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
                "membership-inference",
                "sbom",
                "training-environment",
                "model-signing",
                "model-provenance",
            ),
            # Offline without an OSV database the SBOM and training-environment gates record warned
            # (vulnerability check not performed): accept that here; the platform policy must accept it
            # too (accept_warned). A production DAG drops this line.
            accept_warned=("sbom", "training-environment"),
        )

        validate >> integrity >> pii >> sign_data
        (
            trained
            >> environment
            >> scan
            >> robustness
            >> membership
            >> sbom
            >> sign_model
            >> attest_model
            >> register
            >> approve
            >> promote
        )
    return dag


dag = build_secure_training_pipeline()
