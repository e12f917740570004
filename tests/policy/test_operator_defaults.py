"""Operators take the policy's thresholds at run time where the DAG set none or a weaker one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

POLICY = """\
version: 1
rules:
  - name: strict
    match:
      dag_id_pattern: ".*"
    required_gates:
      promote: [robustness]
    thresholds:
      robustness:
        min_robust_accuracy: 0.8
        max_accuracy_drop: 0.1
      pii-scan:
        types: [email, credit_card]
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    monkeypatch.setenv("MLSECOPS_POLICY", str(path))
    return path


def _dag_and(operator_factory):
    from airflow.sdk import DAG

    with DAG(dag_id="policy_defaults", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        op = operator_factory()
    return dag, op


def test_weaker_or_missing_thresholds_take_the_policy_value(policy: Path) -> None:
    from airflow_mlsecops.operators import PIIScanGateOperator, RobustnessGateOperator

    dag, robust = _dag_and(
        lambda: RobustnessGateOperator(
            task_id="r", model="m", data="d.csv", label_column="y", epsilon=0.1, min_robust_accuracy=0.5
        )
    )
    robust.apply_policy({"dag": dag})
    assert robust.min_robust_accuracy == 0.8  # weaker DAG value raised to the policy's
    assert robust.max_accuracy_drop == 0.1  # unset: the policy's
    dag, pii = _dag_and(lambda: PIIScanGateOperator(task_id="p", data="d.csv", types=["ipv4"]))
    pii.apply_policy({"dag": dag})
    assert set(pii.types) == {"ipv4", "email", "credit_card"}
    dag, everything = _dag_and(lambda: PIIScanGateOperator(task_id="p", data="d.csv"))
    everything.apply_policy({"dag": dag})
    assert everything.types is None  # all types is already stricter than the policy's list


def test_stricter_dag_values_are_kept(policy: Path) -> None:
    from airflow_mlsecops.operators import RobustnessGateOperator

    dag, robust = _dag_and(
        lambda: RobustnessGateOperator(
            task_id="r", model="m", data="d.csv", label_column="y", epsilon=0.1, min_robust_accuracy=0.9, max_accuracy_drop=0.05
        )
    )
    robust.apply_policy({"dag": dag})
    assert (robust.min_robust_accuracy, robust.max_accuracy_drop) == (0.9, 0.05)


def test_a_broken_policy_fails_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlsecops.operators import RobustnessGateOperator

    broken = tmp_path / "policy.yaml"
    broken.write_text("version: 1\nrules: []\n")
    monkeypatch.setenv("MLSECOPS_POLICY", str(broken))
    dag, robust = _dag_and(
        lambda: RobustnessGateOperator(
            task_id="r", model="m", data="d.csv", label_column="y", epsilon=0.1, min_robust_accuracy=0.5
        )
    )
    with pytest.raises(AirflowFailException, match="policy cannot be used"):
        robust.apply_policy({"dag": dag})
