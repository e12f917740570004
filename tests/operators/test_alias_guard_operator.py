"""``AliasGuardOperator`` in real Airflow DAG runs: a hand-moved alias fails the task (so its
``on_failure_callback`` alerts) and is moved back; the next run passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.lifecycle.alias_guard import ALIAS_GUARD
from airflow_mlsecops.lifecycle.model_registry import REGISTRY_EXPERIMENT, tag_history
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import run_dag_states, unique_dag_id
from tests.lifecycle.test_registry import build_pipeline, promote_allowing, register

HEADER = "from pathlib import Path\nfrom airflow_mlsecops.operators import AliasGuardOperator"


def test_operator_arguments_are_checked_when_the_dag_is_parsed() -> None:
    from airflow_mlsecops.operators import AliasGuardOperator

    assert AliasGuardOperator.gate_name == ALIAS_GUARD
    guard = AliasGuardOperator(task_id="guard", models="credit-*")
    assert guard.models == ["credit-*"] and guard.restore is True and guard.experiment_name == REGISTRY_EXPERIMENT
    with pytest.raises(ValueError, match="no warn-only mode"):
        AliasGuardOperator(task_id="g1", warn_only=True)
    with pytest.raises(ValueError, match="restore must be True or False"):
        AliasGuardOperator(task_id="g2", restore="false")
    with pytest.raises(ValueError, match="models must name"):
        AliasGuardOperator(task_id="g3", models=[""])


@pytest.mark.slow
def test_a_hand_moved_alias_fails_the_task_alerts_and_is_moved_back(
    airflow_db, home: Settings, tmp_path: Path, write_dag
) -> None:
    first = build_pipeline(home, tmp_path, seed=1)
    v1 = register(first, "credit")
    promote_allowing(first.store, name="credit", version=v1, alias="champion", settings=home)
    second = build_pipeline(home, tmp_path, seed=2)
    v2 = register(second, "credit")
    store = first.store
    store.client.set_registered_model_alias("credit", "champion", v2)  # what a @task calling MlflowClient does

    alert = tmp_path / "alert.txt"
    dag_id = unique_dag_id("alias_guard")
    dag = write_dag(
        dag_id,
        f"""
def alert(context):
    Path({str(alert)!r}).write_text(str(context.get("exception")))

AliasGuardOperator(task_id="guard", models=["credit"], restore=True, on_failure_callback=alert)
""",
        header=HEADER,
    )
    dag_run, states = run_dag_states(dag)
    assert dag_run.state == "failed" and states["guard"] == "failed", states
    assert alert.exists() and "credit@champion" in alert.read_text()
    assert {a: str(v) for a, v in store.client.get_registered_model("credit").aliases.items()} == {"champion": v1}
    assert store.client.get_registered_model("credit").tags[tag_history("champion")] == f'["{v1}"]'

    # The guard's verdict is signed evidence of the DAG run, in experiment mlsecops-registry.
    experiment = store.client.get_experiment_by_name(REGISTRY_EXPERIMENT)
    (run,) = store.client.search_runs([experiment.experiment_id], filter_string=f"tags.`mlsecops.dag_id` = '{dag_id}'")
    report = verify_run(run.info.run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    (result,) = report.results.values()
    assert result.gate == ALIAS_GUARD and result.verdict is Verdict.FAILED
    assert [(f["alias"], f["version"], f["action"], f["moved_to"]) for f in result.details["findings"]] == [
        ("champion", v2, "restored", v1)
    ]
    assert result.producer["operator"]["name"] == "airflow_mlsecops.operators.alias_guard.AliasGuardOperator"

    dag_run, states = run_dag_states(dag)
    assert dag_run.state == "success", states
