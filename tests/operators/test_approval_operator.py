"""Human approval through Airflow's own HITL mechanism, run for real with ``dag.test()``.

A reviewer thread answers the waiting task the way ``mlsecops approve`` does (the same code path),
or the way Airflow's UI and REST API do (Airflow's own route function, which knows nothing of
separation of duties), while ``dag.test()`` keeps the run alive.
"""

from __future__ import annotations

import re
import urllib.parse
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
from airflow.api_fastapi.core_api.routes.public import hitl as _airflow_hitl_route  # noqa: F401 (imported before the thread)

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Verdict
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import REST, Reviewer, pipeline_run_id, run_dag_with_reviewer

#: ``dag.test()`` sets the DAG run's triggering user to this name (as the API server sets the
#: authenticated user who triggered a run).
DAG_TEST_TRIGGERING_USER = "dag_test"

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
    return report, [{"verdict": r.verdict.value, "summary": r.summary, **r.details} for r in final]


def _responses(report) -> list[dict]:
    """Each recorded response, in ledger order: who, what they chose, and whether it counted."""
    ordered = sorted((report.order[s], r) for s, r in report.results.items() if r.gate == "model-approval-response")
    return [
        {"user": r.details["response"]["user"]["id"], "outcome": r.details["outcome"], "reason": r.details["reason"]}
        for _, r in ordered
    ]


def _cli_refuses(dag_id: str, barred: dict[str, str], refusals: list[str]):
    """A ``before_each`` that first checks ``mlsecops approve --as USER`` refuses each barred user."""
    from airflow_mlsecops.lifecycle.hitl import ApprovalRefused, pending_approvals, respond

    def before_each(user: str) -> None:
        if user in barred:
            pending = pending_approvals(dag_id)[0]
            with pytest.raises(ApprovalRefused, match="separation of duties") as info:
                respond(dag_id=dag_id, run_id=pending.run_id, user=user, approve=True)
            assert barred[user] in str(info.value)
            refusals.append(user)

    return before_each


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
    """The author's approval, given through Airflow's REST route (the UI path, which bypasses the CLI's
    check), is recorded as refused and not counted; a second approval by the same reviewer does not
    count twice; quorum needs two. Guards ``ApprovalTally.add``'s separation-of-duties check."""
    dag_id = f"approve_quorum_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, _source(_model(tmp_path), required_approvals=2), header=HEADER)

    refusals: list[str] = []
    # No reviewers are named, so Airflow lets anyone answer: carol (the author) is refused by the CLI,
    # then answers through the REST route, which Airflow accepts; the operator's tally refuses her.
    # alice answers twice, which counts once; bob's approval completes the quorum of two.
    answers = [("carol", True, REST), ("alice", True), ("alice", True), ("bob", True)]
    reviewer = Reviewer(dag_id, answers, before_each=_cli_refuses(dag_id, {"carol": "authored the model"}, refusals))
    dag_run, states = run_dag_with_reviewer(dag, reviewer)
    assert refusals == ["carol"]
    assert dag_run.state == "success", states
    report, decisions = _decisions(home, dag_id)
    assert decisions[-1]["decision"] == "approved"
    assert [a["id"] for a in decisions[-1]["approvals"]] == ["alice", "bob"]
    assert [r["reason"] for r in decisions[-1]["refused"]] == [
        "carol may not approve: authored the model",
        "alice already approved; a second response does not count twice",
    ]
    assert _responses(report) == [
        {"user": "carol", "outcome": "refused", "reason": "carol may not approve: authored the model"},
        {"user": "alice", "outcome": "counted", "reason": "1 of 2 approvals"},
        {"user": "alice", "outcome": "refused", "reason": "alice already approved; a second response does not count twice"},
        {"user": "bob", "outcome": "approved", "reason": "2 of 2 approvals"},
    ]


def test_the_triggering_user_may_not_approve(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    """The user who triggered the DAG run (``dag_test`` under ``dag.test()``) is barred like the author:
    named in the request, refused by the CLI, and refused by the tally when Airflow's REST route lets
    the answer through. Guards ``excluded_users``' triggering-user rule and the operator reading
    ``dag_run.triggering_user_name``."""
    dag_id = f"approve_trigger_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, _source(_model(tmp_path)), header=HEADER)
    refusals: list[str] = []
    barred = {DAG_TEST_TRIGGERING_USER: "triggered this DAG run"}
    answers = [(DAG_TEST_TRIGGERING_USER, True, REST), ("alice", True)]
    reviewer = Reviewer(dag_id, answers, before_each=_cli_refuses(dag_id, barred, refusals))
    dag_run, states = run_dag_with_reviewer(dag, reviewer)
    assert dag_run.triggering_user_name == DAG_TEST_TRIGGERING_USER
    assert refusals == [DAG_TEST_TRIGGERING_USER]
    assert dag_run.state == "success", states
    report, decisions = _decisions(home, dag_id)
    (request,) = [r for r in report.results.values() if r.gate == "model-approval-request"]
    assert request.details["excluded"] == {DAG_TEST_TRIGGERING_USER: "triggered this DAG run", "carol": "authored the model"}
    assert f"{DAG_TEST_TRIGGERING_USER} (triggered this DAG run)" in request.details["body"]
    assert _responses(report) == [
        {
            "user": DAG_TEST_TRIGGERING_USER,
            "outcome": "refused",
            "reason": f"{DAG_TEST_TRIGGERING_USER} may not approve: triggered this DAG run",
        },
        {"user": "alice", "outcome": "approved", "reason": "1 of 1 approvals"},
    ]
    assert decisions[-1]["decision"] == "approved" and [a["id"] for a in decisions[-1]["approvals"]] == ["alice"]


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
    _, decisions = _decisions(home, dag_id)
    void = decisions[-1]
    assert void["decision"] == "void" and void["verdict"] == "failed"
    assert void["summary"] == "the model changed after the request was made: the approval is void"
    assert void["model_sha256_now"] != void["model_sha256"]
    assert void["approvals"] == []  # alice's answer was never counted


def test_evidence_changed_after_the_request_voids_the_approval(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    """New signed evidence lands in the run between the request and the answer (the model file is
    unchanged and everything still verifies): the reviewer approved what she was shown, not what is
    there now, so the decision is void. Guards the evidence-digest re-check in ``execute_complete``."""
    dag_id = f"approve_evidence_{uuid.uuid4().hex[:6]}"
    dag = write_dag(dag_id, _source(_model(tmp_path)), header=HEADER)
    recorded: list[str] = []

    def add_evidence(user: str) -> None:
        from airflow_mlsecops.lifecycle.hitl import pending_approvals

        run_id = pending_approvals(dag_id)[0].run_id
        result = GateResult.create(
            gate="robustness",
            verdict=Verdict.PASSED,
            context=PipelineContext(dag_id, run_id, "late_robustness_check", 1),
            summary="recorded after the approval was requested",
        )
        recorded.append(EvidenceRecorder.from_settings(home).record(result, experiment_name=dag_id).artifact_dir)

    dag_run, states = run_dag_with_reviewer(dag, Reviewer(dag_id, [("alice", True)], before_each=add_evidence))
    assert recorded, "the new evidence was never recorded"
    assert dag_run.state == "failed" and states["approve_model"] == "failed", states
    report, decisions = _decisions(home, dag_id)
    assert report.ok, [c.to_dict() for c in report.failures]  # the new evidence is genuine: only the binding broke
    void = decisions[-1]
    assert void["decision"] == "void" and void["verdict"] == "failed"
    assert void["summary"] == "the evidence changed after the request was made: the approval is void"
    assert void["model_sha256_now"] == void["model_sha256"]
    assert void["evidence_sha256_now"] != void["evidence_sha256"]
    assert void["approvals"] == []


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
    assert dag_run.state == "success", states
    assert assigned_seen == [["alice", "bob"]] * 3
    assert "carol (authored the model)" in bodies[0]
    # Airflow keeps the request's text as first shown when it is re-opened; the text says where the
    # responses given since are (the MLSecOps page of the DAG run).
    assert "- No response yet." in bodies[0] and bodies[1] == bodies[0] == bodies[2]
    live = f"/mlsecops/dags/{dag_id}/dagRuns/{urllib.parse.quote(dag_run.run_id, safe='')}"
    assert f"- **Live view:** [MLSecOps page of this DAG run]({live}) (re-verified when opened)" in bodies[0]
    assert f"- Responses given after this request opened are listed on the [MLSecOps page]({live})." in bodies[0]
    # The gate the request is about, with its evidence folder; no bundle version under dag.test().
    assert re.search(
        r"^\| 1 \| model-provenance \| sign_model \| \*\*passed\*\* \| bytes \d+ B, files 2 \| 0 \|$", bodies[0], re.M
    )
    assert "- **DAG bundle version:** none (the DAG bundle is not versioned)" in bodies[0] or (
        "- **DAG bundle version:** `" in bodies[0]
    )
    assert "- **Verdicts:** " in bodies[0]


def test_compare_alias_is_checked_when_the_dag_is_parsed() -> None:
    from airflow_mlsecops.operators import ModelApprovalGateOperator

    with pytest.raises(ValueError, match="compare_alias must be an alias name"):
        ModelApprovalGateOperator(task_id="approve", model_uri="models:/m-1", compare_alias="  ")
    op = ModelApprovalGateOperator(task_id="approve", model_uri="models:/m-1", compare_alias="champion", model_name="credit")
    assert (op.compare_alias, op.model_name) == ("champion", "credit")
    assert {"compare_alias", "model_name"} <= set(op.template_fields)


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
