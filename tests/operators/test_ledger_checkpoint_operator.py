"""``LedgerCheckpointOperator`` and ``PromoteModelOperator(checkpoint_to=...)`` in real Airflow DAG
runs: a checkpoint is written and verifies; a cut ledger tail fails the task without writing one."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.checkpoint import verify_ledger
from airflow_mlsecops.evidence.ledger import TABLE_NAME, EvidenceLedger
from tests.helpers import run_dag, run_dag_states, unique_dag_id

pytestmark = pytest.mark.airflow
HEADER = "from airflow_mlsecops.operators import LedgerCheckpointOperator"


def _append(settings: Settings, n: int) -> None:
    ledger = EvidenceLedger(settings.ledger_url)
    for i in range(n):
        ledger.append(envelope_json=json.dumps({"n": i, "nonce": uuid.uuid4().hex}), gate="data-validation")
    ledger.dispose()


def test_operator_arguments_are_checked_when_the_dag_is_parsed() -> None:
    from airflow_mlsecops.operators import LedgerCheckpointOperator, PromoteModelOperator

    op = LedgerCheckpointOperator(task_id="cp", to="s3://audit/ledger", retention_days=30)
    assert (op.to, op.retention_days) == ("s3://audit/ledger", 30) and "to" in op.template_fields
    with pytest.raises(ValueError, match="checkpoint location must be"):
        LedgerCheckpointOperator(task_id="cp1", to="  ")
    with pytest.raises(ValueError, match="retention_days must be a whole number"):
        LedgerCheckpointOperator(task_id="cp2", retention_days=0)
    with pytest.raises(ValueError, match="retention_days must be a whole number"):
        LedgerCheckpointOperator(task_id="cp3", retention_days=True)
    with pytest.raises(ValueError, match="checkpoint location must be"):
        PromoteModelOperator(task_id="p", name="m", version="1", checkpoint_to="")
    assert PromoteModelOperator(task_id="p2", name="m", version="1", checkpoint_to="default").checkpoint_to == "default"


def test_the_operator_writes_a_checkpoint_and_refuses_a_cut_tail(
    airflow_db, home: Settings, tmp_path: Path, write_dag, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "checkpoints"
    _append(home, 6)
    dag = write_dag(
        unique_dag_id("ledger_checkpoint"), f"LedgerCheckpointOperator(task_id='checkpoint', to={str(store)!r})", header=HEADER
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "success", {t: str(ti.state) for t, ti in tis.items()}
    summary = tis["checkpoint"].xcom_pull(task_ids="checkpoint")
    (written,) = store.iterdir()
    assert summary["written"] is True and summary["location"] == str(written) and summary["size"] == 6
    assert summary["locked"] is False and summary["rows_walked"] == 6
    ledger = EvidenceLedger(home.ledger_url, create=False)
    result = verify_ledger(ledger, settings=home, trusted_keys=home.load_trusted_keys(), checkpoint=str(store))
    assert result.checkpoint is not None and result.checkpoint.checkpoint.size == 6

    # An attacker cuts the tail: the next scheduled checkpoint fails, without retry, and signs nothing.
    with sqlite3.connect(home.home / "ledger.db") as conn:
        conn.execute(f"DROP TRIGGER {TABLE_NAME}_no_delete")
        conn.execute(f"DELETE FROM {TABLE_NAME} WHERE seq > 2")
    conn.close()
    dag_run, states = run_dag_states(dag)
    assert dag_run.state == "failed" and states["checkpoint"] == "failed", states
    assert list(store.iterdir()) == [written]


def test_the_operator_uses_the_configured_store(
    airflow_db, home: Settings, tmp_path: Path, write_dag, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "configured"
    monkeypatch.setenv("MLSECOPS_LEDGER_CHECKPOINTS", str(store))
    _append(home, 2)
    dag = write_dag(unique_dag_id("ledger_checkpoint_cfg"), "LedgerCheckpointOperator(task_id='checkpoint')", header=HEADER)
    dag_run, states = run_dag_states(dag)
    assert dag_run.state == "success", states
    assert [p.name.startswith("checkpoint-000000000002-") for p in store.iterdir()] == [True]


@pytest.mark.slow
def test_promotion_writes_a_checkpoint(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    from tests.operators.test_registry_operators import GATES, _dag_source, _training_data
    from tests.operators.test_registry_operators import HEADER as REGISTRY_HEADER

    store = tmp_path / "checkpoints"
    data, suite = _training_data(tmp_path)
    source = _dag_source(data, suite, "credit", GATES).replace(
        "    required_approvals=0,\n", f"    required_approvals=0,\n    checkpoint_to={str(store)!r},\n"
    )
    assert "checkpoint_to=" in source
    dag_run, tis = run_dag(write_dag(unique_dag_id("promote_checkpoint"), source, header=REGISTRY_HEADER))
    assert dag_run.state == "success", {t: str(ti.state) for t, ti in tis.items()}
    summary = tis["promote_model"].xcom_pull(task_ids="promote_model", key="ledger_checkpoint")
    (written,) = store.iterdir()
    ledger = EvidenceLedger(home.ledger_url, create=False)
    # The checkpoint covers the promotion's own ledger entry: it is the head.
    assert summary["written"] is True and summary["size"] == ledger.head_seq()
    assert summary["location"] == str(written)
