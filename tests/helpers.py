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


#: How a reviewer's answer reaches Airflow: ``cli`` is ``mlsecops approve --as`` (lifecycle.hitl.respond,
#: which refuses separation-of-duties violations before writing), ``rest`` is Airflow's own route
#: behind ``PATCH .../hitlDetails`` (the UI and REST API path, which knows nothing of them).
CLI, REST = "cli", "rest"


def respond_through_airflow_rest_route(*, dag_id: str, run_id: str, user: str, approve: bool) -> dict[str, Any]:
    """Answer the waiting approval the way Airflow's UI and REST API do: call Airflow's own route function
    (``update_hitl_detail``, behind ``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails``)
    with a real database session and the authenticated user, as FastAPI would after authorising the call.

    Nothing of this package runs before the response is written: only Airflow's own checks (409 for a
    second answer, 403 outside ``assigned_users``, 400 for an unknown option) stand between the user
    and the operator's tally.
    """
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    from airflow_mlsecops.lifecycle.approval import APPROVE, REJECT
    from airflow_mlsecops.lifecycle.hitl import pending_approvals

    waiting = pending_approvals(dag_id, run_id)
    assert len(waiting) == 1, waiting
    with create_session() as session:
        response = update_hitl_detail(
            dag_id=dag_id,
            dag_run_id=run_id,
            task_id=waiting[0].task_id,
            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[APPROVE if approve else REJECT]),
            user=SimpleAuthManagerUser(username=user, role="admin"),
            session=session,
            map_index=waiting[0].map_index,
        )
        return response.model_dump(mode="json")


class Reviewer(threading.Thread):
    """Answers each waiting approval in turn, as ``mlsecops approve`` / ``reject`` or Airflow's REST API would.

    Start it before ``dag.test()``: it polls for a waiting request, answers the next of
    ``answers`` (``(user, approve)`` through ``via``, or ``(user, approve, via)``), and stops when
    the answers run out or after ``timeout`` seconds. ``outcomes`` holds what each answer returned
    or raised; ``errors`` only what raised (``before_each`` included): :func:`run_dag_with_reviewer`
    fails the test on any error and on answers never given. A test expecting a refusal catches it
    in ``before_each``. Import ``airflow.models.*`` in the test module before the thread starts, so
    the two threads never race on a half-imported module.
    """

    def __init__(
        self,
        dag_id: str,
        answers: Sequence[tuple[str, bool] | tuple[str, bool, str]],
        before_each: Callable[[str], None] | None = None,
        *,
        timeout: float = 300,
        via: str = CLI,
    ) -> None:
        super().__init__(daemon=True)
        self.dag_id, self.before_each, self.timeout = dag_id, before_each, timeout
        self.answers: list[tuple[str, bool, str]] = [(a[0], a[1], a[2] if len(a) > 2 else via) for a in answers]  # type: ignore[misc]
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
                if _transient(exc):  # dag.test() writes the same SQLite database: look again
                    time.sleep(1.0)
                    continue
                self.outcomes.append(exc)
                return
            if not pending:
                time.sleep(0.3)
                continue
            user, approve, via = self.answers.pop(0)
            answer = respond if via == CLI else respond_through_airflow_rest_route
            try:
                if self.before_each:
                    self.before_each(user)
                self.outcomes.append(answer(dag_id=self.dag_id, run_id=pending[0].run_id, user=user, approve=approve))
            except BaseException as exc:  # pytest's assertion failures in before_each included
                if _transient(exc):  # dag.test() writes the same SQLite database: try the answer again
                    self.answers.insert(0, (user, approve, via))
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
        outcome = run_dag_states(dag, **test_kwargs)
    finally:
        reviewer.join(timeout=5)
    # An exception in the reviewer thread is invisible to pytest: surface it here, with what it answered.
    assert not reviewer.errors, f"the reviewer raised {reviewer.errors!r}; all outcomes: {reviewer.outcomes!r}"
    assert not reviewer.answers, f"answers never given (no approval was waiting): {reviewer.answers}"
    return outcome
