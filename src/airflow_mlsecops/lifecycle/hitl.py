"""Answer a pending approval by writing Airflow's database directly: the embedded demo's path only.

``mlsecops demo`` runs the example DAG with ``dag.test()`` on an embedded SQLite Airflow with no API
server, so ``mlsecops approve --as USER`` (without ``--api-url``) and ``mlsecops demo --approve-as``
answer through here. The person at the terminal is trusted to be ``USER``: anyone who can write the
database can answer as any reviewer, so this is never the path of a deployment. With an Airflow API
URL configured, ``mlsecops approve`` refuses ``--as`` and answers through
:mod:`airflow_mlsecops.lifecycle.airflow_api`, where the responder is the user Airflow authenticated.

It mirrors the public REST endpoint
``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails``: lock the
task instance and its request, refuse a second answer (409 there), refuse users outside
``assigned_users`` (403 there), write the response and resume the waiting task with
``handle_event_submit``. It uses Airflow internals (``airflow.models.hitl``,
``airflow.models.trigger.handle_event_submit``) that may change between releases.

Separation of duties is checked here too, before anything is written, so trying to approve as the
run's triggering user or the model's author is refused with a clear message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from airflow_mlsecops.exceptions import ApprovalRefused, ConfigurationError
from airflow_mlsecops.lifecycle.approval import APPROVE, REJECT, REQUEST_XCOM_KEY, ApprovalRequest

_REQUEST_KEY = REQUEST_XCOM_KEY


@dataclass(frozen=True)
class PendingApproval:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    body: str | None
    assigned_users: list[str]
    request: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pending_query(session: Any, dag_id: str, run_id: str | None, task_id: str | None) -> list[Any]:
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    query = (
        select(TI)
        .options(joinedload(TI.hitl_detail))
        .where(TI.dag_id == dag_id, TI.state.in_([TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED]))
    )
    if run_id:
        query = query.where(TI.run_id == run_id)
    if task_id:
        query = query.where(TI.task_id == task_id)
    return [ti for ti in session.scalars(query).unique() if ti.hitl_detail is not None and not ti.hitl_detail.response_received]


def _request_of(session: Any, ti: Any) -> dict[str, Any] | None:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.scalar(
        select(XComModel).where(
            XComModel.dag_id == ti.dag_id,
            XComModel.run_id == ti.run_id,
            XComModel.task_id == ti.task_id,
            XComModel.key == _REQUEST_KEY,
        )
    )
    if row is None:
        return None
    value = row.value
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return value if isinstance(value, dict) else None


def pending_approvals(dag_id: str, run_id: str | None = None) -> list[PendingApproval]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            PendingApproval(
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                task_id=ti.task_id,
                map_index=ti.map_index,
                subject=ti.hitl_detail.subject,
                body=ti.hitl_detail.body,
                assigned_users=[u["id"] for u in (ti.hitl_detail.assignees or [])],
                request=_request_of(session, ti),
            )
            for ti in _pending_query(session, dag_id, run_id, None)
        ]


def respond(*, dag_id: str, run_id: str, user: str, approve: bool, task_id: str | None = None) -> dict[str, Any]:
    """Answer the pending approval of ``dag_id``/``run_id`` as ``user``; return what was written."""
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if not user:
        raise ConfigurationError("say who is answering: --as USER")
    with create_session() as session:
        pending = _pending_query(session, dag_id, run_id, task_id)
        if not pending:
            raise ConfigurationError(
                f"no approval is waiting in DAG {dag_id} run {run_id}" + (f" task {task_id}" if task_id else "")
            )
        if len(pending) > 1:
            names = ", ".join(ti.task_id for ti in pending)
            raise ConfigurationError(f"several approvals are waiting ({names}); pass --task-id")
        ti = session.get(TI, pending[0].id, with_for_update={"of": TI})
        if ti is None:
            raise ConfigurationError(f"the task instance of {pending[0].task_id} disappeared")
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
        if detail is None:
            raise ConfigurationError(f"{ti.task_id} has no human-in-the-loop request")
        if detail.response_received:
            raise ApprovalRefused(f"{ti.task_id} was already answered by {detail.responded_by_user_name}")
        raw_request = _request_of(session, ti)
        if raw_request and approve:
            request = ApprovalRequest.from_dict(raw_request)
            if user in request.excluded:
                raise ApprovalRefused(
                    f"{user} may not approve {request.model_uri}: {request.excluded[user]} (separation of duties)"
                )
        assigned = {u["id"] for u in (detail.assignees or [])}
        if assigned and user not in assigned:
            raise ApprovalRefused(f"{user} is not one of the reviewers of {ti.task_id} ({', '.join(sorted(assigned))})")
        detail.responded_by = {"id": user, "name": user}
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = [APPROVE if approve else REJECT]
        detail.params_input = {}
        session.add(detail)
        if str(ti.state) in ("awaiting_input", "deferred"):
            handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
        return {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "choice": detail.chosen_options[0],
            "responded_by": user,
            "responded_at": detail.responded_at.isoformat(),
        }


def wait_for_run(dag_id: str, run_id: str, *, timeout: float, poll: float = 1.0) -> dict[str, Any]:
    """Wait until the DAG run finishes or waits for another answer; return its state and task states."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    deadline = time.monotonic() + timeout
    while True:
        with create_session() as session:
            run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
            if run is None:
                raise ConfigurationError(f"DAG {dag_id} has no run {run_id}")
            tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
            state = str(run.state)
            waiting = list(_pending_query(session, dag_id, run_id, None))
        if state in ("success", "failed") or waiting or time.monotonic() > deadline:
            return {"state": state, "tasks": tasks, "waiting_for": [ti.task_id for ti in waiting]}
        time.sleep(poll)
