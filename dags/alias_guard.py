"""Alias guard: every 10 minutes, check that each alias of a protected model rests on a signed promotion.

    guard_aliases   (AliasGuardOperator, restore=True)

Open-source MLflow has no alias permissions, so a ``@task`` that calls ``MlflowClient`` directly,
a DAG with no mlsecops operator at all, or a person in the MLflow UI can give ``@champion`` to any
version. This DAG finds that within 10 minutes:

* **what is protected**: the registered models the platform policy names (each rule's
  ``match.models``, with its ``match.aliases``); set the ``models`` param (comma-separated shell
  patterns, e.g. ``credit-*``) to guard others by hand;
* **what is checked**: per alias, the version holding it is the one the latest signed promotion or
  rollback named, a signed promotion attestation of that version's digest exists, and the gates and
  approval it required still verify;
* **what is done**: a broken alias goes back to the last version whose signed promotion verifies
  (an earlier one with a signed ``model-rollback``), or is deleted when none does, and the
  registered model is tagged ``mlsecops.alias_guard.<alias>``. Turn ``restore`` off to alert only;
* **the alert**: the task fails (no retry) and ``on_failure_callback`` fires. This DAG uses
  :func:`~airflow_mlsecops.operators.monitoring.log_alert` (one ``MLSECOPS ALERT`` line in the task
  log); add a Slack or SMTP notifier next to it as in the ``model_monitoring`` DAG.

The guard's own evidence (gate ``alias-guard``) is signed and kept in MLflow experiment
``mlsecops-registry``. The same check from a shell or a cron job: ``mlsecops registry guard --restore``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_mlsecops.operators.alias_guard import AliasGuardOperator
from airflow_mlsecops.operators.monitoring import log_alert

with DAG(
    dag_id="alias_guard",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=9),
    tags=["mlsecops", "registry", "example"],
    default_args={"on_failure_callback": log_alert, "retries": 1, "retry_delay": timedelta(minutes=1)},
    params={
        "models": Param(
            None,
            type=["null", "string"],
            description="comma-separated registered model names or shell patterns (empty: the platform policy's match.models)",
        ),
    },
    doc_md=__doc__,
) as dag:
    AliasGuardOperator(task_id="guard_aliases", models="{{ params.models or '' }}", restore=True)
