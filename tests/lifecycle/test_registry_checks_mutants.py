"""Exact tests of the promotion and rollback checks (``lifecycle/_registry_checks.py``) that mutation
testing showed no other test pins: which recorded attempt counts, when an incomplete ``warned``
result is accepted (only a gate listed in ``accept_warned``, only by trusted code) and that a
warn-only rejection never counts, how approvals are counted and which decision blocks.

The results are built here from real :class:`GateResult` objects and a real
:class:`VerificationReport` (the verification itself is tested in test_verification.py); no MLflow.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import WARNED_INCOMPLETE, WARNED_WARN_ONLY, GateResult, PipelineContext, Subject, Verdict
from airflow_mlsecops.evidence.producer import CodeIdentity
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.lifecycle._registry_checks import (
    _UNANCHORED,
    PipelineEvidence,
    RecordedAttempt,
    SignedHolder,
    VersionState,
    _approvers,
    evidence_run_uri,
    load_history,
    short_digest,
    utc_now,
    validate_alias,
    validate_gates,
    version_uri,
)
from airflow_mlsecops.lifecycle._registry_checks import (
    approval_check as _approval_check,
)
from airflow_mlsecops.lifecycle._registry_checks import (
    gate_check as _gate_check,
)
from airflow_mlsecops.lifecycle._registry_checks import (
    pipeline_check as _pipeline_check,
)
from airflow_mlsecops.lifecycle.model_registry import TAG_MODEL_SHA256, TAG_PIPELINE_RUN_ID, tag_history
from airflow_mlsecops.lifecycle.verification import Status, VerificationReport

DIGEST = "a" * 64
OTHER = "b" * 64
#: The results below name :func:`made_here` as their engine; the checks allow it by name.
ALLOWED = (f"{__name__}.made_here",)


def made_here(result: GateResult) -> GateResult:
    """``result`` naming this function as the engine that produced it."""
    return result.with_producer(engine=CodeIdentity.of(made_here).to_dict(), operator=None)


def result(
    gate: str,
    verdict: Verdict = Verdict.PASSED,
    *,
    task: str = "t",
    digest: str = DIGEST,
    trusted: bool = True,
    **kwargs: Any,
) -> GateResult:
    made = GateResult.create(
        gate=gate,
        verdict=verdict,
        subjects=[Subject("model", digest)],
        context=PipelineContext("dag", "run", task),
        summary=kwargs.pop("summary", f"{gate} {verdict.value}"),
        **kwargs,
    )
    return made_here(made) if trusted else made


def incomplete(gate: str, **kwargs: Any) -> GateResult:
    return result(gate, Verdict.WARNED, warned_reason=WARNED_INCOMPLETE, details={"not_performed": ["osv"]}, **kwargs)


def approval(
    decision: str = "approved", people: tuple[str, ...] = ("ann", "bob"), verdict: Verdict = Verdict.PASSED, **kwargs: Any
) -> GateResult:
    details = {"model_sha256": kwargs.pop("model_sha256", DIGEST), "decision": decision, "approvals": [{"id": p} for p in people]}
    return result(gate_names.MODEL_APPROVAL, verdict, details=details, **kwargs)


def evidence(*records: tuple[str, GateResult, int | None], failed: dict[str, str] | None = None) -> PipelineEvidence:
    report = VerificationReport("run-1", "sqlite://")
    for scope, res, seq in records:
        report.results[scope] = res
        report.order[scope] = seq
        report.add(scope, "signature", Status.OK)
    for scope, detail in (failed or {}).items():
        report.add(scope, "signature", Status.FAILED, detail)
    return PipelineEvidence(report)


def at(ev: PipelineEvidence, scope: str) -> RecordedAttempt:
    attempt = ev.at(scope)
    assert attempt is not None
    return attempt


def gate_check_of(gate: str, *args: Any) -> tuple[Any, list[str]]:
    check, scopes = _gate_check(gate, *args)
    assert check.name == f"gate:{gate}"
    return check, scopes


def approval_check_of(*args: Any) -> tuple[Any, list[str], str | None]:
    check, names, scope = _approval_check(*args)
    assert check.name == "approval"
    return check, names, scope


def pipeline_check_of(ev: PipelineEvidence) -> Any:
    check = _pipeline_check(ev)
    assert check.name == "pipeline-evidence"
    return check


# ----------------------------------------------------------------------------- PipelineEvidence
def test_the_latest_record_by_ledger_sequence_wins_and_unanchored_ones_sort_last() -> None:
    ev = evidence(
        ("b", result("sbom", Verdict.FAILED), 5),
        ("a", result("sbom"), 9),
        ("c", result("sbom", task="u"), 1),
        ("d", result("sbom", task="u", summary="unanchored"), None),
    )
    latest = {a.task_key: a for a in ev.latest("sbom")}
    assert latest["t"].scope == "a" and latest["t"].order == 9
    assert latest["u"].scope == "d" and latest["u"].order == _UNANCHORED
    assert ev.latest("model-scan") == []
    assert at(ev, "c").scope == "c" and ev.at("nowhere") is None
    older = at(ev, "b")
    assert at(ev, "a") == ev.superseded(older, lambda r: r.verdict is Verdict.PASSED)
    assert ev.superseded(older, lambda r: r.verdict is Verdict.FAILED) is None
    assert ev.superseded(at(ev, "a"), lambda r: True) is None  # nothing later than the latest
    assert ev.run_id == "run-1"


def test_failures_are_kept_per_scope() -> None:
    ev = evidence(("a", result("sbom"), 1), ("b", result("sbom", task="u"), 2), failed={"b": "bad signature"})
    assert at(ev, "a").verified and at(ev, "a").failures == ()
    assert not at(ev, "b").verified and at(ev, "b").failures == ("signature: bad signature",)
    assert at(ev, "a").covers(DIGEST) and not at(ev, "a").covers(OTHER)


def test_pipeline_check_counts_passed_checks_and_lists_eight_failures() -> None:
    ev = evidence(("a", result("sbom"), 1), ("b", result("sbom", task="u"), 2))
    check = pipeline_check_of(ev)
    assert check.status is Status.OK and check.detail == "MLflow run run-1 verifies (2 checks)"
    bad = evidence(*[(f"s{i}", result("sbom", task=f"t{i}"), i) for i in range(10)], failed={f"s{i}": f"x{i}" for i in range(9)})
    check = pipeline_check_of(bad)
    assert check.status is Status.FAILED
    assert "9 failed check(s): s0: signature: x0; s1: signature: x1;" in check.detail and "s7: signature: x7" in check.detail
    assert "s8: signature" not in check.detail and check.detail.endswith(" (and 1 more)")
    eight = evidence(*[(f"s{i}", result("sbom", task=f"t{i}"), i) for i in range(8)], failed={f"s{i}": "x" for i in range(8)})
    assert pipeline_check_of(eight).detail.endswith("s7: signature: x")


# ----------------------------------------------------------------------------- gate_check
def test_a_passed_gate_counts_and_names_its_scopes() -> None:
    ev = evidence(("a", result("sbom"), 1), ("b", result("sbom", task="u"), 2))
    check, scopes = gate_check_of("sbom", ev, DIGEST, ALLOWED)
    assert (check.name, check.status, check.detail) == ("gate:sbom", Status.OK, "passed at a, b")
    assert scopes == ["a", "b"]


def test_no_evidence_or_no_digest_or_another_model_fails() -> None:
    ev = evidence(("a", result("sbom"), 1))
    check, scopes = gate_check_of("robustness", ev, DIGEST, ALLOWED)
    assert check.status is Status.FAILED and check.detail == "no robustness evidence in the pipeline run run-1" and scopes == []
    check, scopes = gate_check_of("sbom", ev, None, ALLOWED)
    assert check.detail == "the model's digest is unknown, so no evidence can be bound to it" and scopes == []
    check, scopes = gate_check_of("sbom", ev, OTHER, ALLOWED)
    assert check.status is Status.FAILED and scopes == []
    assert check.detail == f"sbom evidence judged model (sha256 {DIGEST[:16]}...), not this model (sha256 {OTHER[:16]}...)"


def test_only_the_attempts_that_judged_this_model_count() -> None:
    ev = evidence(("a", result("sbom"), 1), ("b", result("sbom", Verdict.FAILED, task="u", digest=OTHER), 2))
    check, scopes = gate_check_of("sbom", ev, DIGEST, ALLOWED)
    assert check.status is Status.OK and scopes == ["a"]


def test_a_data_gate_is_not_bound_to_the_model_digest() -> None:
    ev = evidence(("a", result(gate_names.DATA_VALIDATION, digest=OTHER), 1))
    check, _ = gate_check_of(gate_names.DATA_VALIDATION, ev, None, ALLOWED)
    assert check.status is Status.OK


def test_unverified_failed_and_untrusted_attempts_block_with_their_reason() -> None:
    ev = evidence(
        ("a", result("sbom"), 1),
        ("b", result("sbom", task="u"), 2),
        ("c", result("sbom", Verdict.FAILED, task="v", summary="3 critical CVEs"), 3),
        ("d", result("sbom", task="w", trusted=False), 4),
        failed={"b": "bad signature"},
    )
    check, scopes = gate_check_of("sbom", ev, DIGEST, ALLOWED)
    assert check.status is Status.FAILED and scopes == ["a", "b", "c", "d"]
    problems = check.detail.split("; ")
    assert problems[0] == "evidence at b did not verify (signature: bad signature)"
    assert problems[1] == "failed at c: 3 critical CVEs"
    assert problems[2].startswith("task w's evidence at d names no producer")
    assert len(problems) == 3


def test_passed_evidence_by_code_that_is_not_allowed_blocks() -> None:
    ev = evidence(("a", result("sbom"), 1))
    check, _ = gate_check_of("sbom", ev, DIGEST)
    assert check.status is Status.FAILED and "was produced by" in check.detail


def test_a_warn_only_rejection_never_counts_even_when_accepted() -> None:
    warned = result("sbom", Verdict.WARNED, warned_reason=WARNED_WARN_ONLY, details={"not_performed": ["osv"]})
    ev = evidence(("a", warned, 1))
    for accept in ((), ("sbom",)):
        check, _ = gate_check_of("sbom", ev, DIGEST, ALLOWED, accept)
        assert check.status is Status.FAILED
        assert check.detail == "warned at a (warn-only mode; warned never counts as passed)"
    legacy = evidence(("a", result("sbom", Verdict.WARNED), 1))  # an older record: no reason
    assert gate_check_of("sbom", legacy, DIGEST, ALLOWED, ("sbom",))[0].status is Status.FAILED


def test_an_incomplete_warned_result_counts_only_where_accepted() -> None:
    ev = evidence(("a", incomplete("sbom"), 1))
    check, _ = gate_check_of("sbom", ev, DIGEST, ALLOWED)
    assert check.status is Status.FAILED
    assert check.detail == (
        "warned at a: incomplete, not performed: osv (an incomplete sbom counts only where the promotion "
        "and the policy accept it: accept_warned)"
    )
    assert gate_check_of("sbom", ev, DIGEST, ALLOWED, ("model-scan",))[0].status is Status.FAILED
    check, scopes = gate_check_of("sbom", ev, DIGEST, ALLOWED, ("sbom",))
    assert check.status is Status.OK and scopes == ["a"]
    assert check.detail == "WARNED, incomplete, accepted by accept_warned at a (not performed: osv)"


def test_an_accepted_incomplete_result_must_still_come_from_trusted_code() -> None:
    ev = evidence(("a", incomplete("sbom", trusted=False), 1))
    check, _ = gate_check_of("sbom", ev, DIGEST, ALLOWED, ("sbom",))
    assert check.status is Status.FAILED and check.detail.startswith("task t's evidence at a names no producer")


def test_an_accepted_incomplete_result_alongside_a_passed_one_names_both() -> None:
    ev = evidence(("a", result("sbom"), 1), ("b", incomplete("sbom", task="u"), 2))
    check, _ = gate_check_of("sbom", ev, DIGEST, ALLOWED, ("sbom",))
    assert check.status is Status.OK
    assert check.detail == "passed at a; WARNED, incomplete, accepted by accept_warned at b (not performed: osv)"
    failing = evidence(("a", result("sbom", Verdict.FAILED), 1), ("b", incomplete("sbom", task="u"), 2))
    assert gate_check_of("sbom", failing, DIGEST, ALLOWED, ("sbom",))[0].status is Status.FAILED


def test_an_unverified_incomplete_result_is_not_accepted() -> None:
    ev = evidence(("a", incomplete("sbom"), 1), failed={"a": "bad signature"})
    check, _ = gate_check_of("sbom", ev, DIGEST, ALLOWED, ("sbom",))
    assert check.status is Status.FAILED and check.detail == "evidence at a did not verify (signature: bad signature)"


# ----------------------------------------------------------------------------- approvals
def test_approvers_are_distinct_by_id_else_name() -> None:
    details = {
        "approvals": [
            {"id": "u1", "name": "Ann"},
            {"id": "u1", "name": "Ann again"},
            {"name": "Bob"},
            {"id": "", "name": ""},
            {"id": None},
            {"id": "None"},
            {"id": "  "},
            "carol",
            {"id": "u3"},
        ]
    }
    assert _approvers(details) == {"u1": "Ann", "Bob": "Bob", "u3": "u3"}
    assert _approvers({"approvals": {"id": "u1"}}) == {}
    assert _approvers({}) == {}


def test_no_approval_required_passes_without_evidence() -> None:
    check, names, scope = approval_check_of(evidence(), None, 0)
    assert check.status is Status.OK and names == [] and scope is None
    assert check.detail == "no approval required (required_approvals=0)"


def test_approval_needs_evidence_a_digest_and_a_decision_for_this_model() -> None:
    check, names, scope = approval_check_of(evidence(("a", result("sbom"), 1)), DIGEST, 1, ALLOWED)
    assert check.status is Status.FAILED and check.detail == "no model-approval evidence in the pipeline run run-1"
    assert (names, scope) == ([], None)
    ev = evidence(("a", approval(), 1))
    check, names, scope = approval_check_of(ev, None, 1, ALLOWED)
    assert check.detail == "the model's digest is unknown, so no approval can be bound to it" and (names, scope) == ([], None)
    check, names, scope = approval_check_of(ev, OTHER, 1, ALLOWED)
    assert check.status is Status.FAILED and (names, scope) == ([], None)
    assert check.detail == f"the approval at a covers sha256 {DIGEST[:16]}..., not {OTHER[:16]}..."
    # The decision names this digest, but its signed subject is another model: not covering.
    mixed = evidence(("a", approval(digest=OTHER), 1))
    assert approval_check_of(mixed, DIGEST, 1, ALLOWED)[0].status is Status.FAILED


def test_enough_distinct_approvers_approve() -> None:
    ev = evidence(("a", approval(people=("bob", "ann")), 1))
    check, names, scope = approval_check_of(ev, DIGEST, 2, ALLOWED)
    assert check.status is Status.OK and names == ["ann", "bob"] and scope == "a"
    assert check.detail == "approved by ann, bob (2 of 2 required) at a"
    check, names, scope = approval_check_of(ev, DIGEST, 3, ALLOWED)
    assert check.status is Status.FAILED and check.detail == "2 distinct approver(s) at a, 3 required"
    assert (names, scope) == ([], None)


def test_the_approval_with_most_approvers_is_reported() -> None:
    ev = evidence(
        ("a", approval(people=("ann",), task="x"), 1),
        ("b", approval(people=("ann", "bob", "cy"), task="y"), 2),
        ("c", approval(people=("dan", "eve"), task="z"), 3),
    )
    check, names, scope = approval_check_of(ev, DIGEST, 1, ALLOWED)
    assert check.status is Status.OK and names == ["ann", "bob", "cy"] and scope == "b"
    ev = evidence(("a", approval(people=("ann", "bob"), task="x"), 1), ("b", approval(people=("cy", "dan"), task="y"), 2))
    assert approval_check_of(ev, DIGEST, 1, ALLOWED)[2] == "a"  # a tie keeps the first


@pytest.mark.parametrize(
    ("record", "failed", "expected"),
    [
        (approval("rejected", verdict=Verdict.FAILED), None, "the decision at b is 'rejected' (verdict failed)"),
        (approval("approved", verdict=Verdict.WARNED), None, "the decision at b is 'approved' (verdict warned)"),
        (approval("timed out", verdict=Verdict.PASSED), None, "the decision at b is 'timed out' (verdict passed)"),
        (approval(), "bad signature", "the approval at b did not verify (signature: bad signature)"),
        (approval(trusted=False), None, "task y's evidence at b names no producer"),
    ],
)
def test_any_other_decision_on_this_model_blocks_another_tasks_approval(
    record: GateResult, failed: str | None, expected: str
) -> None:
    other = GateResult.create(
        gate=record.gate,
        verdict=record.verdict,
        subjects=record.subjects,
        context=PipelineContext("dag", "run", "y"),
        details=record.details,
        producer=record.producer,
    )
    ev = evidence(("a", approval(task="x"), 1), ("b", other, 2), failed={"b": failed} if failed else None)
    check, names, scope = approval_check_of(ev, DIGEST, 1, ALLOWED)
    assert check.status is Status.FAILED and check.detail.startswith(expected) and (names, scope) == ([], None)


def test_an_approval_by_code_that_is_not_allowed_blocks() -> None:
    check, _, _ = approval_check_of(evidence(("a", approval(), 1)), DIGEST, 1)
    assert check.status is Status.FAILED and "was produced by" in check.detail


# ----------------------------------------------------------------------------- small helpers
def test_version_state_digests_and_run() -> None:
    state = VersionState("m", "3", {TAG_MODEL_SHA256: DIGEST, TAG_PIPELINE_RUN_ID: "r1"}, [], "READY", None)
    assert state.model_uri == "models:/m/3" == version_uri("m", "3")
    assert state.registered_sha256 == DIGEST and state.reference_sha256 == DIGEST and state.pipeline_run_id == "r1"
    bad = VersionState("m", "3", {TAG_MODEL_SHA256: DIGEST.upper(), TAG_PIPELINE_RUN_ID: ""}, [], "READY", None, OTHER)
    assert bad.registered_sha256 is None and bad.reference_sha256 == OTHER and bad.pipeline_run_id is None
    assert VersionState("m", "3", {TAG_MODEL_SHA256: DIGEST + "0"}, [], "", None).registered_sha256 is None


def test_short_digest_and_time() -> None:
    assert short_digest(DIGEST) == "a" * 16 + "..."
    assert short_digest(None) == short_digest("") == "unknown"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", utc_now())


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v1", "v12", "", "a b", "a/b", "x" * 256, 3])
def test_unusable_aliases_are_refused(alias: Any) -> None:
    with pytest.raises(ConfigurationError, match="not a usable alias"):
        validate_alias(alias)


@pytest.mark.parametrize("alias", ["champion", "v", "v1a", "x" * 255, "a-b_C9"])
def test_usable_aliases_are_accepted(alias: str) -> None:
    validate_alias(alias)


def test_validate_gates() -> None:
    assert validate_gates(["sbom", " model-scan ", "sbom"], 0) == ["sbom", "model-scan"]
    assert validate_gates("sbom", 1) == ["sbom"]
    with pytest.raises(ConfigurationError, match=r"^required_gates holds an empty gate name$"):
        validate_gates(["sbom", " "], 1)
    bad: Any
    for bad in (-1, 1.0, "1"):
        with pytest.raises(ConfigurationError, match="whole number >= 0"):
            validate_gates(["sbom"], bad)


def test_load_history() -> None:
    assert load_history({}, "champion") == []
    assert load_history({tag_history("champion"): ""}, "champion") == []
    assert load_history({tag_history("champion"): '[1, "2"]'}, "champion") == ["1", "2"]
    assert load_history({tag_history("champion"): "{bad"}, "champion") is None
    assert load_history({tag_history("champion"): '{"a": 1}'}, "champion") is None


def test_evidence_run_uri_and_holder_description() -> None:
    assert evidence_run_uri(None) is None and evidence_run_uri("runs:/x/y") == "runs:/x/y"
    promoted = SignedHolder("3", gate_names.MODEL_PROMOTION, 7, "r1")
    assert promoted.describe() == "the signed promotion at ledger seq 7, MLflow run r1"
    rolled = SignedHolder("2", gate_names.MODEL_ROLLBACK, 8, None)
    assert rolled.describe() == "the signed rollback at ledger seq 8"


def test_lists_in_details_are_joined_with_their_separators() -> None:
    two = GateResult.create(
        gate="sbom",
        verdict=Verdict.PASSED,
        subjects=[Subject("m1", DIGEST), Subject("m2", DIGEST)],
        context=PipelineContext("dag", "run", "t"),
    )
    check, _ = gate_check_of("sbom", evidence(("a", made_here(two), 1)), OTHER, ALLOWED)
    assert f"judged m1 (sha256 {DIGEST[:16]}...), m2 (sha256" in check.detail
    nothing = GateResult.create(gate="sbom", verdict=Verdict.PASSED, context=PipelineContext("dag", "run", "t"))
    check, _ = gate_check_of("sbom", evidence(("a", made_here(nothing), 1)), OTHER, ALLOWED)
    assert check.detail.startswith("sbom evidence judged no subject, not this model")
    both = result("sbom", Verdict.WARNED, warned_reason=WARNED_INCOMPLETE, details={"not_performed": ["osv", "grype"]})
    ev = evidence(
        ("a", result("sbom"), 1),
        ("b", result("sbom", task="u"), 2),
        ("c", replace(both, context=PipelineContext("dag", "run", "w")), 3),
        ("d", incomplete("sbom", task="v"), 4),
    )
    check, _ = gate_check_of("sbom", ev, DIGEST, ALLOWED, ("sbom",))
    assert check.detail == (
        "passed at a, b; WARNED, incomplete, accepted by accept_warned at d (not performed: osv), c (not performed: osv, grype)"
    )
    ev = evidence(
        ("a", result("sbom", Verdict.FAILED, summary="x"), 1), ("b", result("sbom", Verdict.ERROR, task="u", summary="y"), 2)
    )
    assert gate_check_of("sbom", ev, DIGEST, ALLOWED)[0].detail == "failed at a: x; error at b: y"
    ev = evidence(("a", approval(task="x", model_sha256=OTHER), 1), ("b", approval(task="y", model_sha256=OTHER), 2))
    assert approval_check_of(ev, DIGEST, 1, ALLOWED)[0].detail == (
        f"the approval at a covers sha256 {OTHER[:16]}..., not {DIGEST[:16]}...; "
        f"the approval at b covers sha256 {OTHER[:16]}..., not {DIGEST[:16]}..."
    )
    ev = evidence(("a", approval("no", task="x"), 1), ("b", approval("void", task="y"), 2))
    assert approval_check_of(ev, DIGEST, 1, ALLOWED)[0].detail == (
        "the decision at a is 'no' (verdict passed); the decision at b is 'void' (verdict passed)"
    )
    ev = evidence(("a", approval(people=("ann",), task="x"), 1), ("b", approval(people=("bob",), task="y"), 2))
    assert approval_check_of(ev, DIGEST, 2, ALLOWED)[0].detail == (
        "1 distinct approver(s) at a, 2 required; 1 distinct approver(s) at b, 2 required"
    )
