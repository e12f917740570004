"""The approval rules as plain functions, fast enough to run under mutation testing (no Airflow).

Each test pins one claim the approval lifecycle makes, so a one-line break of the rule fails here in
milliseconds; the operator tests (tests/operators/test_approval_operator.py) show the same claims
end to end through Airflow's UI/REST path and the CLI. ``make mutation`` runs
:mod:`airflow_mlsecops.lifecycle.approval` against this file.
"""

from __future__ import annotations

import pytest

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, GateResult, Severity, Verdict
from airflow_mlsecops.lifecycle.approval import (
    APPROVE,
    OPTIONS,
    REJECT,
    ApprovalRequest,
    ApprovalTally,
    evidence_digest,
    excluded_users,
    render_body,
    validate_reviewers,
)


def _request(*, required: int = 1, reviewers: tuple[str, ...] = (), excluded: dict[str, str] | None = None) -> ApprovalRequest:
    return ApprovalRequest(
        model_uri="models:/credit/1",
        model_sha256="a" * 64,
        evidence_sha256="b" * 64,
        evidence_shown={"scan/try-1": "c" * 64},
        mlflow_run_id="run-1",
        required_approvals=required,
        reviewers=reviewers,
        excluded=excluded if excluded is not None else {"dag_test": "triggered this DAG run", "carol": "authored the model"},
    )


def _add(tally: ApprovalTally, user: str, choice: str = APPROVE, *, name: str | None = None) -> tuple[str, str]:
    return tally.add(user_id=user, user_name=name if name is not None else user, choice=choice, responded_at="t")


def test_options_are_approve_then_reject() -> None:
    assert (APPROVE, REJECT) == ("Approve", "Reject") and OPTIONS == [APPROVE, REJECT]


# ----------------------------------------------------------------------------- separation of duties
def test_the_triggering_user_and_the_author_are_excluded() -> None:
    assert excluded_users(triggering_user="dag_test", model_author="carol", separation_of_duties=True) == {
        "dag_test": "triggered this DAG run",
        "carol": "authored the model",
    }
    assert excluded_users(triggering_user="dag_test", model_author=None, separation_of_duties=True) == {
        "dag_test": "triggered this DAG run"
    }
    assert excluded_users(triggering_user=None, model_author="carol", separation_of_duties=True) == {
        "carol": "authored the model"
    }
    assert excluded_users(triggering_user="", model_author="", separation_of_duties=True) == {}


def test_a_user_who_triggered_and_authored_is_named_for_the_trigger() -> None:
    assert excluded_users(triggering_user="carol", model_author="carol", separation_of_duties=True) == {
        "carol": "triggered this DAG run"
    }


def test_separation_of_duties_off_excludes_nobody() -> None:
    assert excluded_users(triggering_user="dag_test", model_author="carol", separation_of_duties=False) == {}


@pytest.mark.parametrize(("user", "why"), [("dag_test", "triggered this DAG run"), ("carol", "authored the model")])
def test_a_barred_users_approval_is_refused_and_not_counted(user: str, why: str) -> None:
    tally = ApprovalTally(_request())
    assert _add(tally, user) == ("refused", f"{user} may not approve: {why}")
    assert tally.approvals == []
    assert tally.refused == [{"id": user, "name": user, "responded_at": "t", "reason": f"{user} may not approve: {why}"}]


def test_a_barred_user_is_refused_by_display_name_too() -> None:
    """The REST path's user id may differ from the name (FAB ids are numbers): either one bars."""
    tally = ApprovalTally(_request())
    assert _add(tally, "17", name="carol") == ("refused", "carol may not approve: authored the model")
    assert tally.approvals == []


def test_a_barred_user_cannot_reject_either() -> None:
    """A rejection from a barred user is not a decision: it is refused like an approval."""
    tally = ApprovalTally(_request())
    assert _add(tally, "carol", REJECT)[0] == "refused"


# ----------------------------------------------------------------------------- reviewers, choices, quorum
def test_only_named_reviewers_count() -> None:
    tally = ApprovalTally(_request(reviewers=("alice", "bob")))
    assert _add(tally, "mallory") == ("refused", "mallory is not one of the reviewers (alice, bob)")
    assert _add(tally, "m-2", name="") == ("refused", "m-2 is not one of the reviewers (alice, bob)")
    assert tally.refused == [
        {"id": "mallory", "name": "mallory", "responded_at": "t", "reason": "mallory is not one of the reviewers (alice, bob)"},
        {"id": "m-2", "name": "", "responded_at": "t", "reason": "m-2 is not one of the reviewers (alice, bob)"},
    ]
    assert _add(tally, "7", name="alice") == ("approved", "1 of 1 approvals")
    assert [a["id"] for a in tally.approvals] == ["7"]


def test_a_reviewer_named_by_id_counts() -> None:
    tally = ApprovalTally(_request(reviewers=("u-1",)))
    assert _add(tally, "u-1", name="Alice Smith") == ("approved", "1 of 1 approvals")


def test_without_named_reviewers_anyone_not_barred_counts() -> None:
    assert _add(ApprovalTally(_request()), "erin") == ("approved", "1 of 1 approvals")


def test_a_rejection_decides_at_once() -> None:
    tally = ApprovalTally(_request(required=2, reviewers=("alice", "bob")))
    assert _add(tally, "alice") == ("counted", "1 of 2 approvals")
    assert _add(tally, "bob", REJECT, name="Bob") == ("rejected", "rejected by Bob")
    assert _add(ApprovalTally(_request()), "bob", REJECT, name="") == ("rejected", "rejected by bob")


def test_an_unknown_choice_is_refused() -> None:
    tally = ApprovalTally(_request())
    assert _add(tally, "alice", "Approve!") == ("refused", "unknown choice 'Approve!'")
    assert _add(tally, "alice", "") == ("refused", "unknown choice ''")
    assert tally.approvals == []
    assert tally.refused == [
        {"id": "alice", "name": "alice", "responded_at": "t", "reason": "unknown choice 'Approve!'"},
        {"id": "alice", "name": "alice", "responded_at": "t", "reason": "unknown choice ''"},
    ]


def test_quorum_needs_distinct_reviewers() -> None:
    tally = ApprovalTally(_request(required=2))
    assert _add(tally, "alice") == ("counted", "1 of 2 approvals")
    assert _add(tally, "alice") == ("refused", "alice already approved; a second response does not count twice")
    assert _add(tally, "alice", name="Alice again") == (
        "refused",
        "Alice again already approved; a second response does not count twice",
    )
    assert _add(tally, "bob") == ("approved", "2 of 2 approvals")
    assert [a["id"] for a in tally.approvals] == ["alice", "bob"]
    twice = "already approved; a second response does not count twice"
    assert tally.refused == [
        {"id": "alice", "name": "alice", "responded_at": "t", "reason": f"alice {twice}"},
        {"id": "alice", "name": "Alice again", "responded_at": "t", "reason": f"Alice again {twice}"},
    ]


def test_quorum_of_three() -> None:
    tally = ApprovalTally(_request(required=3))
    outcomes = [_add(tally, user)[0] for user in ("alice", "bob", "dave")]
    assert outcomes == ["counted", "counted", "approved"]


def test_the_tally_survives_a_round_trip_through_xcom() -> None:
    request = _request(required=2, reviewers=("alice", "bob"))
    tally = ApprovalTally(request)
    _add(tally, "alice")
    _add(tally, "carol")
    again = ApprovalTally.from_dict(request, tally.to_dict())
    assert again.to_dict() == tally.to_dict() == {"approvals": tally.approvals, "refused": tally.refused}
    assert _add(again, "alice")[0] == "refused"
    assert _add(again, "bob") == ("approved", "2 of 2 approvals")
    assert ApprovalTally.from_dict(request, None).to_dict() == {"approvals": [], "refused": []}


def test_the_request_survives_a_round_trip_through_xcom() -> None:
    request = _request(required=2, reviewers=("alice", "bob"))
    assert ApprovalRequest.from_dict(request.to_dict()) == request
    minimal = {k: v for k, v in request.to_dict().items() if k not in ("evidence_shown", "reviewers", "excluded")}
    restored = ApprovalRequest.from_dict(minimal)
    assert (restored.evidence_shown, restored.reviewers, restored.excluded) == ({}, (), {})


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("required", [0, -1, 1.5, "1", None])
def test_required_approvals_must_be_a_positive_integer(required: object) -> None:
    with pytest.raises(ValueError, match=r"^required_approvals must be a positive integer$"):
        validate_reviewers(["alice"], required)  # type: ignore[arg-type]


def test_reviewers_are_distinct_and_enough_for_the_quorum() -> None:
    assert validate_reviewers(["alice", "bob"], 2) == ("alice", "bob")
    assert validate_reviewers(None, 3) == ()
    with pytest.raises(ValueError, match=r"^reviewers lists a user twice$"):
        validate_reviewers(["alice", "alice"], 1)
    with pytest.raises(ValueError, match=r"^required_approvals=3 but only 2 reviewer\(s\) are listed$"):
        validate_reviewers(["alice", "bob"], 3)


# ----------------------------------------------------------------------------- the evidence shown
def _result(gate: str, verdict: Verdict = Verdict.PASSED, summary: str = "ok", **kwargs: object) -> GateResult:
    return GateResult.create(gate=gate, verdict=verdict, summary=summary, **kwargs)  # type: ignore[arg-type]


def test_the_evidence_digest_changes_with_any_shown_result_and_ignores_approval_records() -> None:
    results = {"scan/try-1": _result("model-scan"), "sign/try-1": _result("model-provenance")}
    digest, shown = evidence_digest(results)
    assert sorted(shown) == ["scan/try-1", "sign/try-1"] and len(digest) == 64
    assert evidence_digest(dict(reversed(list(results.items()))))[0] == digest
    assert evidence_digest({**results, "scan/try-1": _result("model-scan", summary="other")})[0] != digest
    assert evidence_digest({**results, "late/try-1": _result("robustness")})[0] != digest
    assert evidence_digest({"scan/try-1": results["scan/try-1"]})[0] != digest
    bookkeeping = {f"approve/try-1.{g}": _result(g) for g in gate_names.APPROVAL_BOOKKEEPING}
    assert evidence_digest({**results, **bookkeeping}) == (digest, shown)


def test_the_body_shows_digests_quorum_exclusions_and_every_gate() -> None:
    long_message = "os.system in model.pkl " + "x" * 100
    results = {
        "scan/try-1": _result(
            "model-scan",
            Verdict.FAILED,
            metrics={"files": 3.0, "issues": 1.0, "bytes": 12345.0, "seconds": 0.5},
            findings=[Finding("model-scan.global", Severity.HIGH, long_message)],
        ),
        "sign/try-1": _result("model-provenance"),
        "approve/try-1.request-1": _result(gate_names.MODEL_APPROVAL_REQUEST),
    }
    request = _request(required=2, reviewers=("alice", "bob"))
    body = render_body(request, results, run_url="http://mlflow/run-1", title="Approve it")
    assert body.splitlines() == [
        "### Approve it",
        "",
        "- **Verdicts:** 1 failed (model-scan), 1 passed",
        "- **Model:** `models:/credit/1`",
        f"- **Model SHA-256:** `{'a' * 64}`",
        f"- **Evidence SHA-256:** `{'b' * 64}` (an approval is void if either digest changes)",
        "- **Approvals required:** 2 from alice, bob",
        "- **May not approve (separation of duties):** dag_test (triggered this DAG run), carol (authored the model)",
        "- **Evidence:** [MLflow run run-1](http://mlflow/run-1)",
        "",
        "#### Responses so far",
        "",
        "- No response yet.",
        "",
        "#### Gates, in pipeline order (2)",
        "",
        "| # | gate | task | verdict | metrics | problems |",
        "|---|---|---|---|---|---|",
        "| 1 | model-scan | scan/try-1 | **failed** | files 3, issues 1, bytes 12.1 KiB (12,345 bytes), seconds 0.5 s | 1 |",
        "| 2 | model-provenance | sign/try-1 | **passed** | — | 0 |",
        "",
        "##### 1. model-scan (scan/try-1): failed",
        "",
        "- ok",
        "- Evidence: `mlsecops/evidence/scan/try-1`",
        f"- **high** `model-scan.global`: {long_message}",  # in full: the old body cut it at 80 characters
        "",
        "##### 2. model-provenance (sign/try-1): passed",
        "",
        "- ok",
        "- Evidence: `mlsecops/evidence/sign/try-1`",
    ]
    plain = render_body(_request(excluded={}), {}, run_url=None, title="t").splitlines()
    assert "- **Evidence:** MLflow run `run-1`" in plain and "- **Approvals required:** 1" in plain
    assert not any("May not approve" in line for line in plain)
