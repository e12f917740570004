"""Model monitoring: every day, judge the production batch the champion model scores.

    prepare_batch -> detect_drift             (Evidently: has the population moved away from training?)
                  -> detect_input_anomalies   (off-distribution rows, evasion attempts on the boundary)
                  -> encrypt_batch -> score_encrypted -> decrypt_scores
    encrypted_scoring_enabled ->                (optional: the champion scores the batch encrypted, CKKS)

* ``prepare_batch`` names the batch and the training reference. With the ``data`` param empty it
  writes the generated demo stream (:mod:`airflow_mlsecops.demo.monitoring_data`) to
  ``$MLSECOPS_HOME/monitoring/<run>/``: the ``batch`` param picks ``normal``, ``drifted`` or
  ``attacked`` (crafted against the champion itself). Otherwise ``data`` is the batch (local
  path, ``s3://`` object or MLflow URI) and ``reference`` the training data.
* ``detect_drift`` fails when at least ``drift_share`` of the features drifted; its evidence
  holds Evidently's HTML report.
* ``detect_input_anomalies`` scores every row with the input detector stored inside the model
  (``<model>/input_detector``, fitted when the model was trained) and fails when more than
  ``max_flagged_share`` of the rows are flagged.

* The encrypted-scoring branch (:mod:`airflow_mlsecops.privacy.encrypted_scoring`) runs when the
  ``encrypted_scoring`` param is on and TenSEAL is installed (``pip install 'airflow-mlsecops[he]'``);
  otherwise ``encrypted_scoring_enabled`` short-circuits it (the branch is skipped, the run is not
  failed). ``encrypt_batch`` plays the data owner: it makes a CKKS key, encrypts the batch's
  feature columns and hands over only the public context; ``score_encrypted``
  (:class:`~airflow_mlsecops.operators.encrypted_scoring.EncryptedScoringOperator`) scores the
  ciphertexts with the champion without any secret key and records signed evidence naming the
  encrypted input's digest; ``decrypt_scores`` (the data owner again) decrypts the scores and
  writes ``scores.csv`` with each row's probability of default. Here both sides share one machine to keep
  the demo runnable; in production the data owner runs ``mlsecops he keygen/encrypt/decrypt`` on
  its side and the DAG uses the operator on the files it sends.

The model is named by alias (``models:/credit-risk@champion``); each gate resolves it once, to
the version it points at, records its signed evidence against that version and tags this run's
MLflow run with ``mlsecops.model_name`` / ``mlsecops.model_version``.

**Alerts** use Airflow's own mechanisms: a crossed threshold fails the task (no retry) and
``on_failure_callback`` fires. This DAG ships :func:`~airflow_mlsecops.operators.monitoring.log_alert`,
which writes one ``MLSECOPS ALERT ...`` line to the task log (no network). To notify people, add
a notifier from an Airflow provider next to it, e.g.::

    from airflow.providers.slack.notifications.slack import SlackNotifier      # apache-airflow-providers-slack
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier         # apache-airflow-providers-smtp

    default_args = {
        "on_failure_callback": [
            log_alert,
            SlackNotifier(slack_conn_id="slack_ml", channel="#ml-alerts",
                          text="{{ dag.dag_id }}/{{ ti.task_id }} failed: {{ exception }}"),
            SmtpNotifier(to="ml-oncall@example.com", subject="[mlsecops] {{ ti.task_id }} failed"),
        ],
    }

Demo (no server needed; ``bootstrap_champion`` trains and registers a champion if the alias
does not exist yet)::

    airflow dags test model_monitoring -c '{"batch": "attacked", "bootstrap_champion": true}'
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from airflow_mlsecops.demo.example_data import FEATURES
from airflow_mlsecops.operators.encrypted_scoring import EncryptedScoringOperator
from airflow_mlsecops.operators.monitoring import DriftMonitorOperator, InputAnomalyGateOperator, log_alert

DEFAULT_MODEL = "models:/credit-risk@champion"


@task(multiple_outputs=True)
def prepare_batch(**context) -> dict:
    """Name this run's production batch and training reference (writing the demo stream if asked)."""
    import re

    from airflow_mlsecops.hooks.evidence import EvidenceHook

    params = context["params"]
    hook = EvidenceHook()
    settings = hook.settings
    reference, data = params.get("reference") or "", params.get("data") or ""
    if reference and data:
        return {"reference": reference, "current": data}

    from airflow_mlsecops.demo import monitoring_data

    run_dir = settings.home / "monitoring" / re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    if not reference:
        reference = str(run_dir / "reference.csv")
        monitoring_data.reference_frame().to_csv(reference, index=False)
    if not data:
        kind = params["batch"]
        model = None
        if kind == "attacked" or params.get("bootstrap_champion"):
            model = _champion(params["model_uri"], bool(params.get("bootstrap_champion")), hook.store)
        data = str(run_dir / f"{kind}.csv")
        monitoring_data.production_batch(kind, model=model if kind == "attacked" else None).to_csv(data, index=False)
    return {"reference": reference, "current": data}


@task.short_circuit
def encrypted_scoring_enabled(**context) -> bool:
    """Whether the encrypted-scoring branch runs: the param is on and TenSEAL is importable."""
    import importlib.util
    import logging

    if not context["params"].get("encrypted_scoring"):
        logging.getLogger(__name__).info("Encrypted scoring is off (param encrypted_scoring): the branch is skipped")
        return False
    if importlib.util.find_spec("tenseal") is None:
        logging.getLogger(__name__).warning(
            "Encrypted scoring skipped: TenSEAL is not installed (pip install 'airflow-mlsecops[he]')"
        )
        return False
    return True


@task(multiple_outputs=True)
def encrypt_batch(current: str, **context) -> dict:
    """The data owner's side: a fresh CKKS key, the batch's features encrypted, the public context apart.

    The secret context stays in the data owner's directory (mode 0600); only ``batch.ckks`` and
    ``public.ctx`` go to the scoring side.
    """
    import os

    from airflow_mlsecops.hooks.evidence import EvidenceHook
    from airflow_mlsecops.io.locations import load_table_at
    from airflow_mlsecops.privacy import encrypted_scoring as he

    hook = EvidenceHook()
    owner = _he_dir(hook.settings.home, context["run_id"])
    table = load_table_at(current, store=hook.store)
    key = he.make_context()
    secret = owner / "owner-secret.ctx"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(he.secret_context(key))
    (owner / "public.ctx").write_bytes(he.public_context(key))
    (owner / "batch.ckks").write_bytes(he.encrypt_batch(key, table.frame, FEATURES))
    return {
        "secret_context": str(secret),
        "public_context": str(owner / "public.ctx"),
        "batch": str(owner / "batch.ckks"),
        "scores": str(owner / "scores.ckks"),
    }


@task
def decrypt_scores(secret_context: str, scores: str, batch: str) -> dict:
    """The data owner's side again: decrypt the scores and write ``scores.csv`` (decision value, probability)."""
    from pathlib import Path

    import pandas as pd

    from airflow_mlsecops.privacy import encrypted_scoring as he

    key = he.load_context(Path(secret_context).read_bytes())
    scored = Path(scores).read_bytes()
    values = he.decrypt_scores(key, scored, batch=Path(batch).read_bytes())  # the scores of the batch it sent
    frame = pd.DataFrame({"decision_function": values})
    if he.read_header(scored).get("link") == "logit" and values.ndim == 1:
        frame["probability"] = he.probabilities(values)
    out = Path(scores).with_name("scores.csv")
    frame.to_csv(out, index=False)
    return {"rows": len(frame), "scores": str(out)}


def _he_dir(home, run_id: str):
    import re

    path = home / "monitoring" / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id) / "encrypted"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _champion(model_uri: str, bootstrap: bool, store):
    """Load the champion (training and registering one first if asked and the alias is missing)."""
    import tempfile
    from pathlib import Path

    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.io.artifacts import fetch
    from airflow_mlsecops.io.locations import resolve_model_ref
    from airflow_mlsecops.io.model_loader import load_model

    try:
        ref = resolve_model_ref(model_uri, store)
    except ConfigurationError:
        if not (bootstrap and "@" in model_uri):
            raise
        from airflow_mlsecops.demo.monitoring_data import train_champion

        name, alias = model_uri[len("models:/") :].split("/", 1)[0].split("@", 1)
        train_champion(store=store, name=name, alias=alias)
        ref = resolve_model_ref(model_uri, store)
    with tempfile.TemporaryDirectory(prefix="mlsecops-champion-") as tmp:
        return load_model(fetch(ref.uri, Path(tmp), store)).estimator


with DAG(
    dag_id="model_monitoring",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mlsecops", "monitoring", "example"],
    default_args={"on_failure_callback": log_alert},
    on_failure_callback=log_alert,
    params={
        "model_uri": Param(DEFAULT_MODEL, type="string", description="the model in production (alias or version)"),
        "batch": Param("normal", enum=["normal", "drifted", "attacked"], description="demo batch when data is empty"),
        "data": Param(
            None, type=["null", "string"], description="production batch: path, s3:// or MLflow URI (empty: demo batch)"
        ),
        "reference": Param(None, type=["null", "string"], description="training reference data (empty: the demo training data)"),
        "drift_share": Param(0.25, type="number", exclusiveMinimum=0, maximum=1),
        "max_rows": Param(50_000, type="integer", minimum=2, description="sample larger frames for drift"),
        "max_flagged_share": Param(0.05, type="number", minimum=0, exclusiveMaximum=1),
        "bootstrap_champion": Param(False, type="boolean", description="train and register a demo champion if missing"),
        "encrypted_scoring": Param(
            True, type="boolean", description="also score the batch encrypted (CKKS) when TenSEAL is installed (the he extra)"
        ),
    },
    doc_md=__doc__,
) as dag:
    batch = prepare_batch()
    drift = DriftMonitorOperator(
        task_id="detect_drift",
        reference=batch["reference"],
        current=batch["current"],
        columns=list(FEATURES),
        drift_share="{{ params.drift_share }}",
        max_rows="{{ params.max_rows }}",
        model="{{ params.model_uri }}",
    )
    inputs = InputAnomalyGateOperator(
        task_id="detect_input_anomalies",
        data=batch["current"],
        model="{{ params.model_uri }}",
        max_flagged_share="{{ params.max_flagged_share }}",
    )
    owner = encrypt_batch(batch["current"])
    encrypted_scoring_enabled() >> owner
    scored = EncryptedScoringOperator(
        task_id="score_encrypted",
        encrypted_batch=owner["batch"],
        public_context=owner["public_context"],
        model="{{ params.model_uri }}",
        encrypted_scores=owner["scores"],
    )
    decrypted = decrypt_scores(owner["secret_context"], owner["scores"], owner["batch"])
    scored >> decrypted
