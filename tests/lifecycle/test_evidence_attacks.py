"""Attacks on the evidence chain by someone who can write to MLflow but holds no signing key.

Each test records genuine, signed evidence with the real recorder, then does what such a person
can do (re-upload signed files under another name, rewrite tags, move an alias) and asserts that
verification fails and names the problem.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Subject, Verdict
from airflow_mlsecops.io.mlflow_store import TAG_RUN_ID, MLflowEvidenceStore
from airflow_mlsecops.lifecycle.promotion import alias_failure_result, check_promotion, promote_model
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.lifecycle.version_verification import verify_model_version
from tests.lifecycle.test_registry import SIMULATED_PRODUCERS, artifact_path, build_pipeline, failed_checks, register

# Every test records, registers or promotes through MLflow stores: seconds each, so not in `make test-fast`.
pytestmark = pytest.mark.slow

ROBUSTNESS_DIR = "mlsecops/evidence/{task}/{attempt}"


def _failed(report) -> dict[tuple[str, str], str]:
    return {(c.scope, c.name): c.detail for c in report.failures}


def _robustness(ctx: PipelineContext, verdict: Verdict, subject: Subject) -> GateResult:
    return GateResult.create(
        gate="robustness", verdict=verdict, subjects=[subject], context=ctx, summary=f"robustness {verdict.value}"
    )


def _reupload(store: MLflowEvidenceStore, run_id: str, source: str, target: str, tmp: Path) -> None:
    """What anyone with write access to the MLflow run can do: upload signed files under another name."""
    local = store.download_dir(run_id, source, tmp / "copy")
    store.client.log_artifacts(run_id, str(local), artifact_path=target)


# ----------------------------------------------------------------------------- replay (issue 11, item 8)
def test_replayed_passed_record_under_a_later_folder_name_fails(home: Settings, tmp_path: Path) -> None:
    recorder = EvidenceRecorder.from_settings(home)
    subject = Subject("model.skops", "a" * 64)
    passed = recorder.record(
        _robustness(PipelineContext("dag", "run-1", "check_robustness", 1), Verdict.PASSED, subject), experiment_name="dag"
    )
    recorder.record(
        _robustness(PipelineContext("dag", "run-1", "check_robustness", 2), Verdict.FAILED, subject), experiment_name="dag"
    )
    run_id = passed.mlflow_run_id
    store = recorder.store
    first_report = verify_run(run_id, settings=home)
    assert first_report.ok, _failed(first_report)

    _reupload(store, run_id, passed.artifact_dir, "mlsecops/evidence/check_robustness/try-9", tmp_path)
    store.client.set_tag(run_id, "mlsecops.gate.check_robustness.verdict", "passed")

    report = verify_run(run_id, settings=home)
    assert not report.ok
    failed = _failed(report)
    location = failed[("check_robustness/try-9", "location")]
    assert "check_robustness/try-1" in location and "try-9" in location
    assert "also stored at check_robustness/try-1" in failed[("check_robustness/try-9", "unique")]
    assert "'failed'" in failed[("check_robustness", "verdict-tag")]
    # The genuine records themselves still verify.
    assert ("check_robustness/try-1", "location") not in failed and ("check_robustness/try-2", "location") not in failed


def test_moved_record_fails_though_the_original_is_gone(home: Settings, tmp_path: Path) -> None:
    recorder = EvidenceRecorder.from_settings(home)
    subject = Subject("model.skops", "b" * 64)
    first = recorder.record(
        _robustness(PipelineContext("dag", "run-2", "check_robustness", 1), Verdict.PASSED, subject), experiment_name="dag"
    )
    recorder.record(
        _robustness(PipelineContext("dag", "run-2", "check_robustness", 2), Verdict.FAILED, subject), experiment_name="dag"
    )
    store = recorder.store
    _reupload(store, first.mlflow_run_id, first.artifact_dir, "mlsecops/evidence/check_robustness/try-2.decision-9", tmp_path)
    shutil.rmtree(artifact_path(store, first.mlflow_run_id, first.artifact_dir))
    store.client.set_tag(first.mlflow_run_id, "mlsecops.gate.check_robustness.verdict", "passed")

    failed = _failed(verify_run(first.mlflow_run_id, settings=home))
    assert "belongs at check_robustness/try-1" in failed[("check_robustness/try-2.decision-9", "location")]
    assert ("check_robustness", "verdict-tag") in failed


def test_a_verdict_tag_without_a_signed_record_fails(home: Settings, tmp_path: Path) -> None:
    recorder = EvidenceRecorder.from_settings(home)
    recorded = recorder.record(
        _robustness(PipelineContext("dag", "run-3", "check_robustness"), Verdict.PASSED, Subject("m", "c" * 64)),
        experiment_name="dag",
    )
    recorder.store.client.set_tag(recorded.mlflow_run_id, "mlsecops.gate.scan_model.verdict", "passed")
    failed = _failed(verify_run(recorded.mlflow_run_id, settings=home))
    assert "no signed record" in failed[("scan_model", "verdict-tag")]


def test_replay_is_refused_by_promotion_and_version_verification(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    store = pipeline.store
    version = register(pipeline, "credit")
    promote_model(store, name="credit", version=version, alias="champion", settings=home, allowed_producers=SIMULATED_PRODUCERS)
    assert verify_model_version(store, name="credit", version=version, settings=home).ok

    # The robustness check runs again and fails; then the older passed record is replayed.
    pipeline.record(_robustness(pipeline.ctx("test_robustness", 2), Verdict.FAILED, Subject(pipeline.model_uri, pipeline.digest)))
    _reupload(
        store,
        pipeline.mlflow_run_id,
        "mlsecops/evidence/test_robustness/try-1",
        "mlsecops/evidence/test_robustness/try-3",
        tmp_path,
    )
    store.client.set_tag(pipeline.mlflow_run_id, "mlsecops.gate.test_robustness.verdict", "passed")

    outcome = check_promotion(
        store, name="credit", version=version, alias="champion", settings=home, allowed_producers=SIMULATED_PRODUCERS
    )
    assert outcome.result.verdict is Verdict.FAILED
    failed = failed_checks(outcome)
    assert "test_robustness/try-3: location" in failed["pipeline-evidence"]
    assert "failed at test_robustness/try-2" in failed["gate:robustness"]

    verified = verify_model_version(store, name="credit", version=version, settings=home)
    assert not verified.ok
    problems = "\n".join(verified.problems)
    assert "test_robustness/try-3: location" in problems and "failed at test_robustness/try-2" in problems


@pytest.mark.parametrize("record", [None, "decision-1"])
def test_the_signed_statement_names_where_the_record_belongs(home: Settings, record: str | None) -> None:
    recorder = EvidenceRecorder.from_settings(home)
    result = _robustness(PipelineContext("dag", "run-4", "check", 3, map_index=2), Verdict.PASSED, Subject("m", "d" * 64))
    recorded = recorder.record(result, experiment_name="dag", record=record)
    assert recorded.artifact_dir == "mlsecops/evidence/check/map-2/try-3" + (f".{record}" if record else "")
    report = verify_run(recorded.mlflow_run_id, settings=home)
    assert report.ok, _failed(report)


# ----------------------------------------------------------------------------- another DAG run's record (issue 19)
def test_an_anchored_record_of_another_dag_run_does_not_count_for_this_one(home: Settings, tmp_path: Path) -> None:
    """A genuine, signed record of DAG run ``run-other`` lands in the MLflow run of ``run-ours``, anchored
    in the ledger under this MLflow run (its folder name and ledger entry are right, so only the signed
    DAG run identity can tell): verification fails naming the DAG run it attests, and this run's own
    failed record stays the latest. Guards the verifier's "this statement belongs to this DAG run" check."""
    recorder = EvidenceRecorder.from_settings(home)
    subject = Subject("model.skops", "e" * 64)
    ours = recorder.record(
        _robustness(PipelineContext("dag", "run-ours", "check_robustness", 1), Verdict.FAILED, subject), experiment_name="dag"
    )
    theirs = recorder.record(
        _robustness(PipelineContext("dag", "run-other", "check_robustness", 2), Verdict.PASSED, subject),
        experiment_name="dag",
        mlflow_run_id=ours.mlflow_run_id,
    )
    assert theirs.mlflow_run_id == ours.mlflow_run_id
    report = verify_run(ours.mlflow_run_id, settings=home)
    assert not report.ok
    failed = _failed(report)
    assert failed[("check_robustness/try-2", "statement")] == "attests dag/run-other, not this pipeline run"
    # Everything else about the copied record checks out: only the DAG run identity stops it.
    assert {name for scope, name in failed if scope == "check_robustness/try-2"} == {"statement"}
    # The verdict tags (which the recorder set from the foreign record) are judged against this run's own record.
    assert "the signed record says 'failed'" in failed[("check_robustness", "verdict-tag")]


def test_an_mlflow_run_retagged_as_another_dag_run_does_not_verify_as_it(home: Settings) -> None:
    """Anyone who can write MLflow tags can make the MLflow run of a passed DAG run claim to be the run
    of another (failed) one, so a lookup by DAG run id finds it: every record names the DAG run it attests."""
    recorder = EvidenceRecorder.from_settings(home)
    subject = Subject("model.skops", "f" * 64)
    passed = recorder.record(
        _robustness(PipelineContext("dag", "run-passed", "check_robustness", 1), Verdict.PASSED, subject), experiment_name="dag"
    )
    assert verify_run(passed.mlflow_run_id, settings=home).ok
    recorder.store.client.set_tag(passed.mlflow_run_id, TAG_RUN_ID, "run-failed")
    report = verify_run(passed.mlflow_run_id, settings=home)
    assert not report.ok
    assert _failed(report)[("check_robustness/try-1", "statement")] == "attests dag/run-passed, not this pipeline run"


# ----------------------------------------------------------------------------- alias moved by hand (issue 11, item 9)
def _cli(capsys, *argv: str) -> tuple[int, str]:
    """Run ``mlsecops`` in this process; the environment it changes (as a shell keeps options) is put back."""
    import os

    from airflow_mlsecops.cli import main

    saved = dict(os.environ)
    try:
        code = main(list(argv))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    captured = capsys.readouterr()
    return code, captured.out if "--json" in argv else captured.out + captured.err


def test_alias_moved_back_by_hand_fails_naming_the_last_signed_holder(
    home: Settings, tmp_path: Path, capsys, monkeypatch
) -> None:
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from airflow_mlsecops.lifecycle.rollback import rollback

    first = build_pipeline(home, tmp_path, seed=1)
    v1 = register(first, "credit-risk")
    promote_model(
        first.store, name="credit-risk", version=v1, alias="champion", settings=home, allowed_producers=SIMULATED_PRODUCERS
    )
    second = build_pipeline(home, tmp_path, seed=2)
    v2 = register(second, "credit-risk")
    promote_model(
        second.store, name="credit-risk", version=v2, alias="champion", settings=home, allowed_producers=SIMULATED_PRODUCERS
    )
    store = second.store
    assert verify_model_version(store, name="credit-risk", version=v2, settings=home).ok
    assert _cli(capsys, "verify-model-version", "credit-risk@champion")[0] == 0

    # A signed decision to give @champion back to v1 whose alias change then failed (signed error
    # record) does not make v1 the holder.
    recorder = EvidenceRecorder.from_settings(home)
    decision = check_promotion(
        store, name="credit-risk", version=v1, alias="champion", settings=home, allowed_producers=SIMULATED_PRODUCERS
    )
    assert decision.result.verdict is Verdict.PASSED, decision.result.summary
    recorded = recorder.record(decision.result, experiment_name="mlsecops-registry")
    failure = alias_failure_result(decision, RuntimeError("the registry is down"))
    recorder.record(failure, experiment_name="mlsecops-registry", mlflow_run_id=recorded.mlflow_run_id)
    assert verify_model_version(store, name="credit-risk", version=v2, settings=home).ok

    store.client.set_registered_model_alias("credit-risk", "champion", v1)  # out of band: no evidence
    verified = verify_model_version(store, name="credit-risk", version=v1, settings=home)
    assert not verified.ok
    assert [p.split(":", 2)[:2] for p in verified.problems] == [["holder", "@champion"]]
    assert f"the last signed holder is version {v2}" in verified.problems[0]
    for argv in (["credit-risk", v1], ["credit-risk@champion"]):
        code, out = _cli(capsys, "verify-model-version", *argv)
        assert code == 1, out
        assert "NOT VERIFIED: credit-risk" in out and f"the last signed holder is version {v2}" in out

    # Moved back by hand to v2, then rolled back through the gate: the signed rollback names v1.
    store.client.set_registered_model_alias("credit-risk", "champion", v2)
    rollback(store, name="credit-risk", alias="champion", settings=home)
    assert verify_model_version(store, name="credit-risk", version=v1, settings=home).ok
    code, out = _cli(capsys, "verify-model-version", "credit-risk@champion")
    assert code == 0, out
    assert f"VERIFIED: credit-risk@champion (version {v1})" in out

    # A replayed copy of v2's genuine promotion appended to the ledger does not make it the latest
    # (and v2's own run no longer verifies: the envelope is in the ledger twice).
    ledger = EvidenceLedger(home.ledger_url)
    (original,) = [e for e in ledger.entries() if e.mlflow_run_id == second.mlflow_run_id and e.gate == "model-promotion"]
    ledger.append(envelope_json=original.envelope, gate=original.gate, mlflow_run_id=original.mlflow_run_id)
    assert verify_model_version(store, name="credit-risk", version=v1, settings=home).ok
    report = verify_run(second.mlflow_run_id, settings=home)
    assert any(c.name == "ledger-entry" and "twice or more" in c.detail for c in report.failures)

    # The report names the keys it trusted; with none configured, nothing verifies.
    assert [k["keyid"] for k in verify_model_version(store, name="credit-risk", version=v1, settings=home).trusted_keys] == [
        home.load_signing_key().keyid
    ]
    monkeypatch.setenv("MLSECOPS_LEDGER_URL", home.ledger_url)
    monkeypatch.delenv("MLSECOPS_HOME")
    untrusted = verify_model_version(store, name="credit-risk", version=v1, settings=Settings.from_env())
    assert not untrusted.ok and untrusted.trusted_keys == []
    assert untrusted.problems[0].startswith("trusted-keys: no trusted public keys are configured")


def test_name_at_alias_needs_an_alias_that_is_set(home: Settings, tmp_path: Path, capsys) -> None:
    pipeline = build_pipeline(home, tmp_path, omit=("model-approval",))
    register(pipeline, "credit-risk")
    code, out = _cli(capsys, "verify-model-version", "credit-risk@champion")
    assert code == 2 and "has no alias @champion" in out
    code, out = _cli(capsys, "verify-model-version", "credit-risk@champion", "1")
    assert code == 2 and "not both" in out


# ----------------------------------------------------------------------------- trust from the working directory (item 10)
def test_the_working_directory_never_decides_trust(tmp_path: Path, capsys, monkeypatch) -> None:
    """An attacker prepares a directory whose ./.mlsecops holds their key and evidence they signed;
    a verifier started there with no MLSECOPS_HOME / MLSECOPS_TRUSTED_KEYS must not trust that key."""
    import json

    prepared = tmp_path / "prepared"
    attacker_home = prepared / ".mlsecops"
    monkeypatch.setenv("MLSECOPS_HOME", str(attacker_home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{attacker_home / 'mlflow.db'}")
    attacker = Settings.from_env()
    attacker.generate_key_pair()
    recorded = EvidenceRecorder.from_settings(Settings.from_env()).record(
        _robustness(PipelineContext("dag", "run-5", "check_robustness"), Verdict.PASSED, Subject("m", "e" * 64)),
        experiment_name="dag",
    )
    run = recorded.mlflow_run_id

    # Told where its home is, the verifier trusts that home's keys, and says so.
    code, out = _cli(capsys, "verify", "--mlflow-run-id", run, "--json")
    data = json.loads(out)
    assert code == 0 and data["verified"] is True
    (key,) = data["trusted_keys"]
    assert key["keyid"] == recorded.keyid
    assert str(attacker_home / "keys") in key["source"] and "(MLSECOPS_HOME)" in key["source"]
    code, out = _cli(capsys, "verify", "--mlflow-run-id", run)
    assert code == 0 and f"trusted key {recorded.keyid} (ecdsa-p256) from {attacker_home / 'keys'}" in out

    # Nothing configured, started in the prepared directory: nothing is trusted.
    monkeypatch.delenv("MLSECOPS_HOME")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLSECOPS_TRUSTED_KEYS", raising=False)
    monkeypatch.chdir(prepared)
    assert Settings.from_env().load_trusted_keys() == {}
    code, out = _cli(capsys, "verify", "--mlflow-run-id", run)
    assert code == 1, out
    assert "NOT VERIFIED" in out and "no trusted public keys are configured" in out
    assert "is not trusted because MLSECOPS_HOME is not set" in out
    code, out = _cli(capsys, "verify", "--mlflow-run-id", run, "--json")
    assert code == 1 and json.loads(out)["trusted_keys"] == []

    # Trust named explicitly (here: the same key file) works from anywhere, and is named as such.
    code, out = _cli(capsys, "verify", "--mlflow-run-id", run, "--trusted-key", str(attacker_home / "keys"), "--json")
    assert code == 0 and "(MLSECOPS_TRUSTED_KEYS)" in json.loads(out)["trusted_keys"][0]["source"]


def test_records_signed_before_the_record_name_was_signed_still_verify(home: Settings, monkeypatch) -> None:
    import functools

    from airflow_mlsecops.evidence.statement import GateStatement
    from airflow_mlsecops.lifecycle import recorder as recorder_module

    # What the recorder wrote before ``record`` was in the statement: no ``record`` key at all.
    monkeypatch.setattr(recorder_module, "GateStatement", functools.partial(GateStatement, names_record=False))
    recorder = EvidenceRecorder.from_settings(home)
    result = _robustness(PipelineContext("dag", "run-6", "approve"), Verdict.PASSED, Subject("m", "f" * 64))
    recorded = recorder.record(result, experiment_name="dag", record="response-1")
    report = verify_run(recorded.mlflow_run_id, settings=home)
    assert report.ok, _failed(report)
    (location,) = [c for c in report.checks if c.name == "location"]
    assert "record name not signed" in location.detail
