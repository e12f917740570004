"""Helpers the test modules share: running a DAG with ``dag.test()``, finding the MLflow run that
holds a DAG run's evidence, writing small data files, and a reviewer that answers approvals.

Fixtures live in ``conftest.py``; these are plain functions and classes that tests call.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_RUN_ID, MLflowEvidenceStore


def unique_dag_id(prefix: str) -> str:
    """A DAG id no other test uses (dag.test() keeps every run in one session database)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def run_dag(dag: Any, **test_kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``dag`` with ``dag.test()``; return the DAG run and its task instances by task id."""
    dag_run = dag.test(**test_kwargs)
    return dag_run, {ti.task_id: ti for ti in dag_run.get_task_instances()}


def run_dag_states(dag: Any, **test_kwargs: Any) -> tuple[Any, dict[str, str]]:
    """Run ``dag`` with ``dag.test()``; return the DAG run and each task's state as a string."""
    dag_run, tis = run_dag(dag, **test_kwargs)
    return dag_run, {task_id: str(ti.state) for task_id, ti in tis.items()}


def pipeline_run_id(where: Settings | MLflowEvidenceStore, dag_id: str, *, run_id: str | None = None) -> str:
    """The one MLflow run that holds the evidence of ``dag_id`` (of its DAG run ``run_id`` if given)."""
    store = where if isinstance(where, MLflowEvidenceStore) else MLflowEvidenceStore(where.tracking_uri, where.artifact_root)
    experiment = store.client.get_experiment_by_name(dag_id)
    assert experiment is not None, f"no MLflow experiment for DAG {dag_id}"
    tag, value = (TAG_RUN_ID, run_id) if run_id is not None else (TAG_DAG_ID, dag_id)
    runs = store.client.search_runs([experiment.experiment_id], filter_string=f"tags.`{tag}` = '{value}'")
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0].info.run_id


def write_csv(tmp_path: Path, columns: Mapping[str, Sequence[Any]] | Sequence[Any], name: str | None = None) -> str:
    """Write a CSV file (``columns`` by name, or one column ``x`` of values) and return its path."""
    import pandas as pd

    frame = pd.DataFrame(columns if isinstance(columns, Mapping) else {"x": list(columns)})
    path = tmp_path / (name or f"data-{uuid.uuid4().hex[:6]}.csv")
    frame.to_csv(path, index=False)
    return str(path)


class Reviewer(threading.Thread):
    """Answers each waiting approval in turn, as ``mlsecops approve`` / ``reject`` would.

    Start it before ``dag.test()``: it polls for a waiting request, answers the next of
    ``answers`` (``(user, approve)``), and stops when the answers run out or after ``timeout``
    seconds. ``outcomes`` holds what each answer returned or raised; ``errors`` only what raised.
    Import ``airflow.models.*`` in the test module before the thread starts, so the two threads
    never race on a half-imported module.
    """

    def __init__(
        self,
        dag_id: str,
        answers: Sequence[tuple[str, bool]],
        before_each: Callable[[str], None] | None = None,
        *,
        timeout: float = 300,
    ) -> None:
        super().__init__(daemon=True)
        self.dag_id, self.answers, self.before_each, self.timeout = dag_id, list(answers), before_each, timeout
        self.outcomes: list[object] = []

    @property
    def errors(self) -> list[BaseException]:
        return [o for o in self.outcomes if isinstance(o, BaseException)]

    def run(self) -> None:
        from airflow_mlsecops.lifecycle.hitl import pending_approvals, respond

        deadline = time.monotonic() + self.timeout
        while self.answers and time.monotonic() < deadline:
            try:
                pending = pending_approvals(self.dag_id)
            except Exception as exc:  # surfaced through self.outcomes
                self.outcomes.append(exc)
                return
            if not pending:
                time.sleep(0.3)
                continue
            user, approve = self.answers.pop(0)
            if self.before_each:
                self.before_each(user)
            try:
                self.outcomes.append(respond(dag_id=self.dag_id, run_id=pending[0].run_id, user=user, approve=approve))
            except Exception as exc:
                if _transient(exc):  # dag.test() writes the same SQLite database: try the answer again
                    self.answers.insert(0, (user, approve))
                    time.sleep(1.0)
                    continue
                self.outcomes.append(exc)
            time.sleep(0.5)


def _transient(exc: BaseException) -> bool:
    """A database error that a retry can heal (SQLite's lock while another thread writes)."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return "database is locked" in text or "operationalerror" in text


def run_dag_with_reviewer(dag: Any, reviewer: Reviewer, **test_kwargs: Any) -> tuple[Any, dict[str, str]]:
    """Run ``dag`` with ``dag.test()`` while ``reviewer`` answers its approvals; return the run and task states."""
    reviewer.start()
    try:
        return run_dag_states(dag, **test_kwargs)
    finally:
        reviewer.join(timeout=5)
