"""Human approval through Airflow's own HITL mechanism, run for real with ``dag.test()``.

A reviewer thread answers the waiting task the way ``mlsecops approve`` does (the same code path),
while ``dag.test()`` keeps the run alive.
"""

from __future__ import annotations

import uuid
from pathlib import Path

# The reviewer thread queries Airflow's models while dag.test() runs in the main thread: import them
# here first, so the two threads never race on a half-imported module.
import airflow.models.dagrun
import airflow.models.hitl
import airflow.models.taskinstance
import airflow.models.trigger
import airflow.models.xcom
import airflow.triggers.base  # noqa: F401
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import Reviewer, pipeline_run_id, run_dag_with_reviewer

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators import ModelApprovalGateOperator"


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "weights.bin").write_bytes(b"\x01" * 512)
    return model


def _source(model: Path, **approval_kwargs) -> str:
    kwargs = ", ".join(f"{k}={v!r}" for k, v in {"model_author": "carol", **approval_kwargs}.items())
    return f"""
sign = ProvenanceSignOperator(task_id="sign_model", artifacts=[{str(model)!r}], gate="model-provenance")
approve = ModelApprovalGateOperator(task_id="approve_model", model_uri={str(model)!r}, {kwargs})

@task
def promote(decision: dict) -> str:
    return decision["decision"]

sign >> approve
promote(approve.output)
"""


def _decisions(settings: Settings, dag_id: str) -> tuple[object, list[dict]]:
    report = verify_run(pipeline_run_id(settings, dag_id), settings=settings)
    final = [r for s, r in sorted(report.results.items()) if r.gate == "model-approval"]
    return report, [{"verdict": r.verdict.value, **r.details} for r in final]


def test_approval_by_a_reviewer_lets_the_pipeline_go_on(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = f"approve_ok_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, _source(_model(tmp_path), reviewers=["alice", "bob"]), header=HEADER)
    dag_run, states = run_dag_with_reviewer(dag, Reviewer(dag_id, [("alice", True)]))
    assert dag_run.state == "success", states
    report, decisions = _decisions(home, dag_id)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert decisions[-1]["decision"] == "approved" and decisions[-1]["verdict"] == "passed"
    assert [a["id"] for a in decisions[-1]["approvals"]] == ["alice"]
    gates = sorted(g["gate"] for g in report.gates.values())
    assert gates == ["model-approval", "model-approval-request", "model-approval-response", "model-provenance"]


def test_rejection_fails_closed_and_is_recorded(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = f"approve_reject_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, _source(_model(tmp_path)), header=HEADER)
    dag_run, states = run_dag_with_reviewer(dag, Reviewer(dag_id, [("bob", False)]))
    assert dag_run.state == "failed"
    assert states["approve_model"] == "failed" and states["promote"] == "upstream_failed"
    _, decisions = _decisions(home, dag_id)
    assert decisions[-1]["decision"] == "rejected" and decisions[-1]["rejected_by"]["id"] == "bob"


def test_separation_of_duties_and_quorum(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    """The author's approval (given through the UI path, bypassing the CLI check) is recorded and
    not counted; a second approval by the same reviewer does not count twice; quorum needs two."""
    from airflow_mlsecops.lifecycle.hitl import ApprovalRefused, pending_approvals, respond

    dag_id = f"approve_quorum_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, _source(_model(tmp_path), required_approvals=2), header=HEADER)

    refusals: list[str] = []

    def cli_refuses_the_author(user: str) -> None:
        if user == "carol":
            pending = pending_approvals(dag_id)[0]
            with pytest.raises(ApprovalRefused, match="separation of duties") as info:
                respond(dag_id=dag_id, run_id=pending.run_id, user="carol", approve=True)
            refusals.append(str(info.value))

    # carol (the author) is refused by the CLI before anything is written; alice answers twice,
    # which counts once; bob's approval completes the quorum of two.
    answers = [("carol", True), ("alice", True), ("alice", True), ("bob", True)]
    reviewer = Reviewer(dag_id, answers, before_each=cli_refuses_the_author)
    dag_run, states = run_dag_with_reviewer(dag, reviewer)
    assert refusals and "authored the model" in refusals[0]
    assert dag_run.state == "success", states
    _, decisions = _decisions(home, dag_id)
    assert [a["id"] for a in decisions[-1]["approvals"]] == ["alice", "bob"]
    assert any("already approved" in r["reason"] for r in decisions[-1]["refused"])


def test_model_changed_after_the_request_voids_the_approval(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    dag_id = f"approve_void_{uuid.uuid4().hex[:6]}"
    model = _model(tmp_path)
    dag = write_dag(dag_id, _source(model), header=HEADER)

    def swap_model(user: str) -> None:
        (model / "weights.bin").write_bytes(b"\x02" * 512)

    dag_run, states = run_dag_with_reviewer(dag, Reviewer(dag_id, [("alice", True)], before_each=swap_model))
    assert dag_run.state == "failed" and states["approve_model"] == "failed"
    store = MLflowEvidenceStore(home.tracking_uri)
    assert store.run_tags(pipeline_run_id(home, dag_id))["mlsecops.gate.approve_model.verdict"] == "failed"


def test_users_barred_by_separation_of_duties_are_never_assigned(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    """The model's author is one of the named reviewers: Airflow is never told she may answer (so it
    answers her 403 and shows her no button), neither in the first request nor in the request
    re-opened after a response that did not complete the quorum (a new task process)."""
    from airflow_mlsecops.lifecycle.hitl import pending_approvals

    dag_id = f"approve_barred_{uuid.uuid4().hex[:6]}"
    source = _source(_model(tmp_path), reviewers=["alice", "bob", "carol"], required_approvals=2)
    dag = write_dag(dag_id, source, header=HEADER)
    assigned_seen: list[list[str]] = []
    bodies: list[str] = []

    def look_at_the_request(user: str) -> None:
        pending = pending_approvals(dag_id)[0]
        assigned_seen.append(sorted(pending.assigned_users))
        bodies.append(pending.body or "")

    # alice's second approval does not count (re-opens the request); bob's completes the quorum.
    reviewer = Reviewer(dag_id, [("alice", True), ("alice", True), ("bob", True)], before_each=look_at_the_request)
    dag_run, states = run_dag_with_reviewer(dag, reviewer)
    assert not reviewer.errors, reviewer.errors
    assert dag_run.state == "success", states
    assert assigned_seen == [["alice", "bob"]] * 3
    assert "carol (authored the model)" in bodies[0]


def test_a_quorum_that_separation_of_duties_makes_unreachable_fails_at_once(
    airflow_db, home: Settings, tmp_path: Path, write_dag
) -> None:
    dag_id = f"approve_unreachable_{uuid.uuid4().hex[:6]}"
    source = _source(_model(tmp_path), reviewers=["alice", "carol"], required_approvals=2)
    dag = write_dag(dag_id, source, header=HEADER)
    dag_run, states = run_dag_with_reviewer(dag, Reviewer(dag_id, [], timeout=1))
    assert dag_run.state == "failed" and states["approve_model"] == "failed", states
    _, decisions = _decisions(home, dag_id)
    assert decisions[-1]["decision"] == "void" and decisions[-1]["verdict"] == "failed"
