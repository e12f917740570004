"""A gate whose check was not performed records ``warned`` (incomplete), and promotion counts it
only where the promote step and the policy accept it; a warn-only rejection never counts.

Real MLflow registry (SQLite), real ledger and recorder, and the real SBOM engine run offline
without an OSV database (the demo's situation): its result is signed by the package's own code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import GateResult, Verdict
from airflow_mlsecops.gates.sbom import build_and_check_sbom
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.policy.model import accepted_warned, parse_policy
from airflow_mlsecops.policy.runtime import check_evidence_against_policy
from tests.lifecycle.test_registry import Pipeline, build_pipeline, check_allowing, failed_checks, register

pytestmark = pytest.mark.slow

NOT_PERFORMED = "sbom.vulnerability-check-not-performed"


def _sbom_pipeline(home: Settings, tmp_path: Path, *, warn_only: bool = False) -> tuple[Pipeline, str, GateResult]:
    """A complete pipeline run whose SBOM result comes from the real engine, without an OSV database."""
    pipeline = build_pipeline(home, tmp_path, omit=("sbom",))
    local = pipeline.store.download_uri(pipeline.model_uri, tmp_path / "sbom-model")
    outcome = build_and_check_sbom(
        str(local),
        subject=pipeline.model_uri,
        require_vulnerability_check=warn_only,  # warn_only: the check is required, and its rejection softened
        warn_only=warn_only,
        context=pipeline.ctx("build_sbom"),
    )
    assert outcome.result.subjects[0].sha256 == pipeline.digest
    pipeline.record(outcome.result, files=outcome.files)
    return pipeline, register(pipeline, "credit"), outcome.result


def _policy(tmp_path: Path, *rules: str) -> object:
    text = "version: 1\nrules:\n" + "".join(rules)
    return parse_policy(text, source=str(tmp_path / "policy.yaml"), base_dir=tmp_path)


BASE = """  - name: base
    match: {dag_id_pattern: ".*"}
    required_gates: {promote: [sbom, model-scan]}
    thresholds: {sbom: {require_vulnerability_check: false}}
"""


def test_an_incomplete_sbom_counts_only_where_accepted(home: Settings, tmp_path: Path) -> None:
    pipeline, version, sbom = _sbom_pipeline(home, tmp_path)
    # The record is what reviewers and promotion read: warned, incomplete, naming what was not checked.
    assert sbom.verdict is Verdict.WARNED and sbom.warned_reason == "incomplete"
    assert sbom.not_performed == (NOT_PERFORMED,)
    report = verify_run(pipeline.mlflow_run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    (recorded,) = [r for r in report.results.values() if r.gate == "sbom"]
    assert recorded.incomplete and recorded.not_performed == (NOT_PERFORMED,)  # survives signing and re-reading

    # Default: warned is not accepted, even though nothing was rejected.
    refused = check_allowing(pipeline.store, name="credit", version=version, alias="champion", settings=home)
    assert refused.verdict is Verdict.FAILED
    assert list(failed_checks(refused)) == ["gate:sbom"]
    assert f"incomplete, not performed: {NOT_PERFORMED}" in failed_checks(refused)["gate:sbom"]

    # Accepted by the promote step: the check passes, and the decision says what it accepted.
    accepted = check_allowing(
        pipeline.store, name="credit", version=version, alias="champion", settings=home, accept_warned=["sbom"]
    )
    assert accepted.verdict is Verdict.PASSED, accepted.result.summary
    details = accepted.result.details
    assert details["accept_warned"] == ["sbom"] and details["accepted_incomplete"] == {"sbom": [NOT_PERFORMED]}
    assert accepted.result.policy["accept_warned"] == ["sbom"]
    (gate,) = [c for c in details["checks"] if c["check"] == "gate:sbom"]
    assert gate["status"] == "ok" and "WARNED, incomplete, accepted by accept_warned" in gate["detail"]
    assert "accepted incomplete (accept_warned): sbom" in accepted.result.summary

    # The policy decides: a rule that governs sbom and does not list it refuses, whatever the task asks.
    strict = _policy(tmp_path, BASE)
    lenient = _policy(tmp_path, BASE + "    accept_warned: [sbom]\n")
    for policy, kinds in ((strict, {"accept-warned", "gate-not-passed"}), (lenient, set())):
        found = check_evidence_against_policy(
            report.results, dag_id=pipeline.dag_id, policy=policy, task_id="promote", accept_warned=["sbom"]
        )
        assert {v.kind for v in found} == kinds, [str(v) for v in found]
        assert all(v.gate == "sbom" for v in found)
    found = check_evidence_against_policy(
        report.results, dag_id=pipeline.dag_id, policy=strict, task_id="promote", accept_warned=["sbom"]
    )
    assert any("does not accept an incomplete (warned) sbom at promotion, but task promote" in str(v) for v in found)
    # Asked for by nobody: the policy's permission alone does not accept it at run time either.
    (unasked,) = check_evidence_against_policy(
        report.results, dag_id=pipeline.dag_id, policy=lenient, task_id="promote", accept_warned=[]
    )
    assert "recorded warned (incomplete, not performed: sbom.vulnerability-check-not-performed)" in str(unasked)

    # Through the promotion's policy check: a refusal there fails the decision.
    def policy_check(results):
        return [str(v) for v in check_evidence_against_policy(results, dag_id=pipeline.dag_id, policy=strict, task_id="p")]

    vetoed = check_allowing(
        pipeline.store,
        name="credit",
        version=version,
        alias="champion",
        settings=home,
        accept_warned=["sbom"],
        policy_check=policy_check,
    )
    assert vetoed.verdict is Verdict.FAILED and list(failed_checks(vetoed)) == ["policy"]


def test_a_warn_only_rejection_never_counts(home: Settings, tmp_path: Path) -> None:
    pipeline, version, sbom = _sbom_pipeline(home, tmp_path, warn_only=True)
    assert sbom.verdict is Verdict.WARNED and sbom.warned_reason == "warn-only" and not sbom.incomplete
    outcome = check_allowing(
        pipeline.store, name="credit", version=version, alias="champion", settings=home, accept_warned=["sbom"]
    )
    assert outcome.verdict is Verdict.FAILED
    assert "warn-only mode; warned never counts as passed" in failed_checks(outcome)["gate:sbom"]


def test_accept_warned_names_real_gates_only(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    for bad in (["sbomm"], ["model-approval"], [""]):
        outcome = check_allowing(
            pipeline.store, name="credit", version=version, alias="champion", settings=home, accept_warned=bad
        )
        assert outcome.verdict is Verdict.ERROR and "accept_warned" in outcome.result.summary


def test_stricter_rule_wins(tmp_path: Path) -> None:
    lenient = "  - name: lenient\n    match: {tags: [a]}\n    required_gates: {promote: [sbom]}\n    accept_warned: [sbom]\n"
    silent = "  - name: silent\n    match: {tags: [a]}\n    required_gates: {promote: [model-scan]}\n"
    strict = "  - name: strict\n    match: {tags: [a]}\n    thresholds: {sbom: {fail_on: [critical]}}\n"
    policy = _policy(tmp_path, lenient, silent, strict)
    by_name = {r.name: r for r in policy.rules}
    assert accepted_warned([by_name["lenient"]], ["sbom"]) == ("sbom",)
    # A rule that does not govern sbom neither accepts nor refuses it.
    assert accepted_warned([by_name["lenient"], by_name["silent"]], ["sbom"]) == ("sbom",)
    # One that governs it (here through its thresholds) and does not list it refuses: never loosened.
    assert accepted_warned(list(by_name.values()), ["sbom"]) == ()
    assert accepted_warned([], ["sbom"]) == ("sbom",)  # no rule: the promote task's own choice


def test_the_reason_of_a_warned_record_is_checked_when_read() -> None:
    """A record cannot claim to be incomplete without naming what was not performed, nor carry a reason on another verdict."""
    from airflow_mlsecops.exceptions import ConfigurationError

    base = GateResult.create(gate="sbom", verdict=Verdict.WARNED, summary="s").to_dict()
    older = GateResult.from_dict(base)  # a warned record from before the reason existed: warn-only, never incomplete
    assert older.warned_reason is None and not older.incomplete and "warn-only" in older.verdict_label
    claimed = GateResult.from_dict({**base, "warned_reason": "incomplete"})
    assert not claimed.incomplete  # no details.not_performed: not an acceptable incomplete result
    named = GateResult.from_dict({**base, "warned_reason": "incomplete", "details": {"not_performed": ["sbom.x"]}})
    assert named.incomplete and named.verdict_label == "warned (incomplete, not performed: sbom.x)"
    for bad in ({**base, "warned_reason": "fine"}, {**base, "verdict": "passed", "warned_reason": "incomplete"}):
        with pytest.raises(ConfigurationError, match="warned_reason"):
            GateResult.from_dict(bad)
