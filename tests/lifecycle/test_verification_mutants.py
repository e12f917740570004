"""Exact tests for lifecycle/verification.py written from surviving mutants (tests/mutation/README.md).

The report's JSON form is what ``mlsecops verify --json`` prints and what CI jobs read: every key
is pinned. A report with no checks verifies nothing and says so.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.checkpoint import write_checkpoint
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.dsse import sign_envelope
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
from airflow_mlsecops.evidence.ledger import KIND_RECORDING_FAILED, EvidenceLedger
from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Verdict
from airflow_mlsecops.evidence.statement import GateStatement
from airflow_mlsecops.exceptions import SignatureInvalid, VerificationError
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder, RecordedEvidence
from airflow_mlsecops.lifecycle.verification import (
    Check,
    Status,
    VerificationReport,
    _check_statement_time,
    _check_tags,
    _location_check,
    _scope,
    _SubjectHasher,
    describe_trusted_keys,
    verify_run,
)


def test_report_json_names_every_field() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    report.add("run", "ledger-chain", Status.OK, "3 entries")
    report.add("train/try-1", "signature", Status.FAILED, "no trusted key")
    report.gates = {"train/try-1": {"gate": "data-validation", "verdict": "passed", "keyid": "ab"}}
    report.trusted_keys = [{"keyid": "ab", "key_type": "ecdsa-p256", "source": "k.pem", "validity": "always"}]
    failed = {"scope": "train/try-1", "check": "signature", "status": "failed", "detail": "no trusted key"}
    assert report.to_dict() == {
        "mlflow_run_id": "run-1",
        "tracking_uri": "sqlite:///mlflow.db",
        "verified": False,
        "trusted_keys": [{"keyid": "ab", "key_type": "ecdsa-p256", "source": "k.pem", "validity": "always"}],
        "gates": {"train/try-1": {"gate": "data-validation", "verdict": "passed", "keyid": "ab"}},
        "checks": [{"scope": "run", "check": "ledger-chain", "status": "ok", "detail": "3 entries"}, failed],
        "failures": [failed],
    }
    assert Check("s", "n", Status.OK).to_dict() == {"scope": "s", "check": "n", "status": "ok", "detail": ""}


def test_a_report_without_checks_is_not_verified_and_says_so() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    assert not report.ok
    with pytest.raises(VerificationError) as caught:
        report.raise_if_failed()
    assert str(caught.value) == "evidence did not verify:\n  nothing was verified"
    report.add("run", "ledger-chain", Status.FAILED, "seq=2 broken")
    report.add("t/try-1", "file:a.json", Status.FAILED, "digest differs")
    with pytest.raises(VerificationError) as caught:
        report.raise_if_failed()
    assert (
        str(caught.value) == "evidence did not verify:\n  run: ledger-chain: seq=2 broken\n  t/try-1: file:a.json: digest differs"
    )


def test_subjects_that_are_not_files_are_skipped_with_the_reason(tmp_path: Path) -> None:
    hasher = _SubjectHasher(None, tmp_path)  # type: ignore[arg-type]  # no MLflow-stored subject here
    assert hasher.check("mlsecops-gate-result:data-validation", "ab" * 32) == (
        Status.SKIPPED,
        "no input was read; the statement is about the result itself",
    )
    assert hasher.check("s3://bucket/model.pkl", "ab" * 32) == (
        Status.SKIPPED,
        "stored outside MLflow; re-hash it where it lives with `mlsecops verify-artifact`",
    )
    assert hasher.check("relative/model.pkl", "ab" * 32) == (Status.SKIPPED, "not reachable from here")
    local = tmp_path / "model.pkl"
    local.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert hasher.check(f"file://{local}", digest) == (Status.OK, f"sha256 {digest[:16]}... matches")
    assert hasher.check(str(local), "ab" * 32) == (
        Status.FAILED,
        f"sha256 is {digest[:16]}..., the attestation says {'ab' * 8}...",
    )


@pytest.mark.parametrize("uri", ["models:/no-such-model/1", "runs:/0123456789abcdef0123456789abcdef/model"])
def test_an_mlflow_subject_that_cannot_be_fetched_fails(home: Settings, tmp_path: Path, uri: str) -> None:
    """A models:/ or runs:/ subject is fetched from MLflow and re-hashed; one that cannot be fetched
    is a failure (never skipped as "not reachable")."""
    hasher = _SubjectHasher(MLflowEvidenceStore(home.tracking_uri, home.artifact_root), tmp_path)
    status, detail = hasher.check(uri, "ab" * 32)
    assert status is Status.FAILED
    assert detail.startswith("could not be re-hashed: ")


def test_an_absolute_path_that_is_gone_is_skipped_not_hashed(tmp_path: Path) -> None:
    """A local subject that is absolute but missing is "not reachable" (it is never opened)."""
    hasher = _SubjectHasher(None, tmp_path)  # type: ignore[arg-type]
    assert hasher.check(str(tmp_path / "gone.pkl"), "ab" * 32) == (Status.SKIPPED, "not reachable from here")


def test_a_subject_is_hashed_once_per_name_and_digest(tmp_path: Path) -> None:
    hasher = _SubjectHasher(None, tmp_path)  # type: ignore[arg-type]
    local = tmp_path / "model.pkl"
    local.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert hasher.check(str(local), digest) == (Status.OK, f"sha256 {digest[:16]}... matches")
    local.write_bytes(b"changed")  # the cached answer is kept for the same name and digest
    assert hasher.check(str(local), digest) == (Status.OK, f"sha256 {digest[:16]}... matches")
    changed = hashlib.sha256(b"changed").hexdigest()
    assert hasher.check(str(local), "ab" * 32) == (
        Status.FAILED,
        f"sha256 is {changed[:16]}..., the attestation says {'ab' * 8}...",
    )


@pytest.mark.parametrize("through_registry", [False, True])
def test_an_mlflow_subject_is_fetched_into_the_scratch_folder_and_rehashed(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_registry: bool
) -> None:
    """A runs:/ (or models:/) subject is downloaded under the hasher's scratch folder, never into
    the working directory, and its digest compared."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.skops").write_bytes(b"weights" * 10)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run = store.client.create_run(store.client.create_experiment("subjects"))
    store.client.log_artifacts(run.info.run_id, str(model_dir), artifact_path="model")
    uri = f"runs:/{run.info.run_id}/model"
    if through_registry:
        store.client.create_registered_model("subject-model")
        store.client.create_model_version("subject-model", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        uri = "models:/subject-model/1"
    digest = sha256_path(model_dir)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    scratch = tmp_path / "scratch"
    hasher = _SubjectHasher(store, scratch)
    assert hasher.check(uri, digest) == (Status.OK, f"sha256 {digest[:16]}... matches")
    assert hasher.check(uri, "ab" * 32) == (Status.FAILED, f"sha256 is {digest[:16]}..., the attestation says {'ab' * 8}...")
    assert list(cwd.iterdir()) == []
    assert len(list(scratch.iterdir())) == 1


def test_a_check_added_without_detail_has_an_empty_detail() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    report.add("run", "ledger-chain", Status.OK)
    assert report.checks == [Check("run", "ledger-chain", Status.OK, "")]


def test_results_and_gates_are_sorted_by_ledger_sequence_unanchored_last() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    scopes = ["a/try-1", "b/try-1", "c/try-1", "d/try-1", "e/try-1"]
    report.results = {s: GateResult(gate=s, verdict=Verdict.PASSED) for s in scopes}
    report.order = {"a/try-1": 7, "b/try-1": None, "c/try-1": 1, "d/try-1": 3, "e/try-1": None}
    report.gates = {"e/try-1": {"gate": "e"}, "a/try-1": {"gate": "a"}, "c/try-1": {"gate": "c"}}
    report.sort_by_ledger_order()
    assert list(report.results) == ["c/try-1", "d/try-1", "a/try-1", "b/try-1", "e/try-1"]
    assert report.gates == {"c/try-1": {"gate": "c"}, "a/try-1": {"gate": "a"}, "e/try-1": {"gate": "e"}}
    assert list(report.gates) == ["c/try-1", "a/try-1", "e/try-1"]


def test_scope_is_the_path_below_the_first_evidence_folder() -> None:
    assert _scope("mlsecops/evidence/train/try-1") == "train/try-1"
    # a task or gate named "evidence", or a key holding "/evidence/": only the first one is the root
    assert _scope("mlsecops/evidence/evidence/try-1") == "evidence/try-1"
    assert _scope("mlsecops/evidence/scan/evidence/x/cli-1") == "scan/evidence/x/cli-1"
    assert _scope("elsewhere/try-1") == "elsewhere/try-1"


def _result(task: str = "train", *, try_number: int = 2, map_index: int = -1, gate: str = "data-validation") -> GateResult:
    return GateResult(
        gate=gate,
        verdict=Verdict.PASSED,
        context=PipelineContext("dag", "run-1", task, try_number=try_number, map_index=map_index),
    )


def test_an_envelope_stored_where_its_signed_identity_says_is_located() -> None:
    statement = GateStatement(_result())
    assert _location_check("mlsecops/evidence/train/try-2", statement) == (
        Status.OK,
        "signed identity: dag dag, run run-1, task train, try 2",
    )
    mapped = GateStatement(_result(map_index=0), record="response-2")
    assert _location_check("mlsecops/evidence/train/map-0/try-2.response-2", mapped) == (
        Status.OK,
        "signed identity: dag dag, run run-1, task train, try 2, map index 0, record response-2",
    )
    assert _location_check("mlsecops/evidence/train/map-0/try-2", mapped) == (
        Status.FAILED,
        "stored at train/map-0/try-2, but its signed identity (dag dag, run run-1, task train, try 2, map index 0, "
        "record response-2) belongs at train/map-0/try-2.response-2",
    )


def test_an_envelope_stored_elsewhere_fails_location_with_both_places() -> None:
    statement = GateStatement(_result())
    assert _location_check("mlsecops/evidence/deploy/try-2", statement) == (
        Status.FAILED,
        "stored at deploy/try-2, but its signed identity (dag dag, run run-1, task train, try 2) belongs at train/try-2",
    )
    # a statement that names its record (here: none) may not sit in a record folder of the attempt
    assert _location_check("mlsecops/evidence/train/try-2.forged", statement) == (
        Status.FAILED,
        "stored at train/try-2.forged, but its signed identity (dag dag, run run-1, task train, try 2) belongs at train/try-2",
    )


def test_an_older_record_without_a_signed_record_name_is_checked_by_task_and_try() -> None:
    older = GateStatement(_result(), names_record=False)
    assert _location_check("mlsecops/evidence/train/try-2.decision-1", older) == (
        Status.OK,
        "signed identity: dag dag, run run-1, task train, try 2 (record name not signed: an older record)",
    )
    # not another try whose number starts the same, nor another task
    assert _location_check("mlsecops/evidence/train/try-22", older) == (
        Status.FAILED,
        "stored at train/try-22, but its signed identity (dag dag, run run-1, task train, try 2) belongs at train/try-2",
    )
    assert _location_check("mlsecops/evidence/deploy/try-2.decision-1", older)[0] is Status.FAILED
    # outside Airflow there is no task and try to check: a record folder is refused
    started = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    cli = GateStatement(GateResult(gate="scan", verdict=Verdict.PASSED, started_at=started), names_record=False)
    assert _location_check("mlsecops/evidence/scan/cli-20260102T030405000006Z", cli) == (
        Status.OK,
        "signed identity: gate scan, recorded outside Airflow at 2026-01-02T03:04:05.000006+00:00",
    )
    assert _location_check("mlsecops/evidence/scan/cli-20260102T030405000006Z.x", cli) == (
        Status.FAILED,
        "stored at scan/cli-20260102T030405000006Z.x, but its signed identity (gate scan, recorded outside Airflow at "
        "2026-01-02T03:04:05.000006+00:00) belongs at scan/cli-20260102T030405000006Z",
    )


def test_the_statement_time_must_lie_inside_the_signing_keys_window() -> None:
    public = SigningKey.generate().public_key
    key = VerifyingKey(
        public.key,
        not_before=datetime(2026, 1, 1, tzinfo=timezone.utc),
        not_after=datetime(2026, 7, 1, tzinfo=timezone.utc),
    )
    inside = GateStatement(GateResult(gate="g", verdict=Verdict.PASSED, finished_at=datetime(2026, 3, 1, tzinfo=timezone.utc)))
    assert _check_statement_time(key, inside) is None
    late = GateStatement(GateResult(gate="g", verdict=Verdict.PASSED, finished_at=datetime(2026, 8, 1, tzinfo=timezone.utc)))
    with pytest.raises(SignatureInvalid) as caught:
        _check_statement_time(key, late)
    assert str(caught.value) == (
        f"key {key.keyid[:16]} expired at 2026-07-01T00:00:00Z (rotated out): "
        "the signed statement's finish time is 2026-08-01T00:00:00Z"
    )


def _tags(task_key: str, **values: str) -> dict[str, str]:
    return {f"mlsecops.gate.{task_key}.{name}": value for name, value in values.items()}


def test_verdict_tags_agreeing_with_the_latest_signed_record_pass() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    latest = {"group.train": (4, "mlsecops/evidence/group.train/try-2", _result("group.train"))}
    tags = {
        "mlsecops.dag_id": "dag",
        **_tags("group.train", verdict="passed", gate="data-validation", evidence="mlsecops/evidence/group.train/try-2"),
        "mlsecops.gate.group.train.ledger_seq": "4",
        "mlsecops.gate.group.train.note": "not a recorder tag",
    }
    _check_tags(report, tags, latest)
    assert report.checks == [
        Check("group.train", "verdict-tag", Status.OK, "passed (the latest signed record is ledger seq 4 at group.train/try-2)")
    ]


def test_every_wrong_verdict_tag_is_named_with_the_signed_value() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    latest = {"train": (4, "mlsecops/evidence/train/try-2", _result())}
    tags = _tags("train", verdict="failed", gate="other", evidence="mlsecops/evidence/train/try-1", ledger_seq="3")
    _check_tags(report, tags, latest)
    assert report.checks == [
        Check(
            "train",
            "verdict-tag",
            Status.FAILED,
            "verdict tag says 'failed', the signed record says 'passed'; "
            "gate tag says 'other', the signed record says 'data-validation'; "
            "evidence tag says 'mlsecops/evidence/train/try-1', the signed record says 'mlsecops/evidence/train/try-2'; "
            "ledger_seq tag says '3', the signed record says '4' "
            "(the latest signed record is ledger seq 4 at train/try-2)",
        )
    ]
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    _check_tags(report, {}, latest)  # no tags at all: each is missing
    assert report.checks[0].detail == (
        "verdict tag says None, the signed record says 'passed'; gate tag says None, the signed record says "
        "'data-validation'; evidence tag says None, the signed record says 'mlsecops/evidence/train/try-2'; "
        "ledger_seq tag says None, the signed record says '4' (the latest signed record is ledger seq 4 at train/try-2)"
    )


def test_verdict_tags_no_signed_record_backs_fail_and_the_other_tasks_are_still_checked() -> None:
    report = VerificationReport("run-1", "sqlite:///mlflow.db")
    latest = {"train": (4, "mlsecops/evidence/train/try-2", _result())}
    tags = {
        **_tags("forged", verdict="passed", gate="model-scan"),
        **_tags("train", verdict="passed", gate="data-validation", evidence="mlsecops/evidence/train/try-2", ledger_seq="4"),
        "mlsecops.gate.verdict": "passed",  # no task key
        "mlsecops.gate.stray.note": "x",  # not a recorder tag
        "other.gate.ghost.verdict": "passed",  # not an mlsecops tag
    }
    _check_tags(report, tags, latest)
    assert report.checks == [
        Check(
            "forged",
            "verdict-tag",
            Status.FAILED,
            "MLflow tags say gate='model-scan', verdict='passed', but no signed record backs them",
        ),
        Check("train", "verdict-tag", Status.OK, "passed (the latest signed record is ledger seq 4 at train/try-2)"),
    ]


# ------------------------------------------------------------------------- verify_run (real MLflow store and ledger)
def _record(home: Settings, tmp_path: Path, task: str, run: str = "run-1", **fields: object) -> RecordedEvidence:
    """One dataset attestation of task ``task`` in pipeline run ``run`` (or a bare result with ``fields``)."""
    recorder = EvidenceRecorder.from_settings(home)
    ctx = PipelineContext("dag", run, task)
    if fields:
        return recorder.record(
            GateResult(gate="data-validation", verdict=Verdict.PASSED, context=ctx, **fields), experiment_name="dag"
        )
    data = tmp_path / f"{run}-{task}.csv"
    data.write_text(f"a,b\n1,{task}\n")
    outcome = attest_artifacts([str(data)], context=ctx)
    return recorder.record(outcome.result, experiment_name="dag", files=outcome.files)


def _failed(report: VerificationReport) -> dict[tuple[str, str], str]:
    return {(c.scope, c.name): c.detail for c in report.failures}


def _checks(report: VerificationReport) -> dict[tuple[str, str], tuple[Status, str]]:
    return {(c.scope, c.name): (c.status, c.detail) for c in report.checks}


def _evidence_dir(home: Settings, run_id: str, scope: str) -> Path:
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    return Path(store.client.get_run(run_id).info.artifact_uri.removeprefix("file://")) / "mlsecops/evidence" / scope


def test_verify_run_reports_signer_order_and_the_walked_part_of_the_ledger(home: Settings, tmp_path: Path) -> None:
    """The signature check names the key (a plain key: no window, no signing time); ``order`` is each
    record's ledger seq; with a checkpoint, the ledger is walked from this run's oldest row (not only
    from the checkpoint), so this run's rows are re-hashed."""
    _record(home, tmp_path, "sign_data", run="run-0")
    _record(home, tmp_path, "sign_model", run="run-0")
    first = _record(home, tmp_path, "sign_data")
    _record(home, tmp_path, "sign_model")
    _record(home, tmp_path, "sign_data", run="run-2")
    key = home.load_signing_key()
    ledger = EvidenceLedger(home.ledger_url, create=False)
    assert write_checkpoint(ledger, settings=home, to=str(tmp_path / "checkpoints"), signer=key) is not None
    report = verify_run(first.mlflow_run_id, settings=home, checkpoint=str(tmp_path / "checkpoints"))
    assert report.ok, _failed(report)
    checks = _checks(report)
    assert checks[("sign_data/try-1", "signature")] == (
        Status.OK,
        f"{report.trusted_keys[0]['key_type']} key {key.keyid[:16]}...",
    )
    assert checks[("sign_data/try-1", "statement")] == (Status.OK, "dataset-provenance: passed")
    assert report.order == {"sign_data/try-1": 3, "sign_model/try-1": 4}
    status, detail = checks[("run", "ledger-chain")]
    assert status is Status.OK and detail.startswith(
        f"5 entries, head {ledger.entry_at(5).entry_hash[:16]}...; walked 3 row(s) from seq 3; agrees with "
    ), detail
    assert checks[("run", "ledger-complete")] == (Status.OK, "2 attestations, all present")


def test_a_changed_row_of_this_run_before_the_checkpoint_is_found(home: Settings, tmp_path: Path) -> None:
    _record(home, tmp_path, "sign_data", run="run-0")
    first = _record(home, tmp_path, "sign_data")
    _record(home, tmp_path, "sign_model")
    _record(home, tmp_path, "sign_data", run="run-2")
    ledger = EvidenceLedger(home.ledger_url, create=False)
    assert write_checkpoint(ledger, settings=home, to=str(tmp_path / "checkpoints"), signer=home.load_signing_key())
    with sqlite3.connect(home.home / "ledger.db") as conn:
        conn.execute("DROP TRIGGER mlsecops_evidence_ledger_no_update")
        conn.execute("UPDATE mlsecops_evidence_ledger SET task_id = 'forged' WHERE seq = 2")
    failed = _failed(verify_run(first.mlflow_run_id, settings=home, checkpoint=str(tmp_path / "checkpoints")))
    assert list(failed) == [("run", "ledger-chain")]
    assert "seq=2" in failed[("run", "ledger-chain")], failed


def test_an_envelope_anchored_twice_in_the_ledger_is_a_replay(home: Settings, tmp_path: Path) -> None:
    first = _record(home, tmp_path, "sign_data")
    _record(home, tmp_path, "sign_model")
    ledger = EvidenceLedger(home.ledger_url, create=False)
    original = ledger.entry_at(first.ledger_seq)
    assert original is not None
    ledger.append(
        envelope_json=original.envelope,
        gate=original.gate,
        dag_id=original.dag_id,
        run_id=original.run_id,
        task_id=original.task_id,
        mlflow_run_id=first.mlflow_run_id,
    )
    report = verify_run(first.mlflow_run_id, settings=home)
    assert _failed(report) == {
        ("sign_data/try-1", "ledger-entry"): "the envelope is in the ledger twice or more (seq 1, 3): replayed"
    }


def test_every_record_is_checked_after_one_whose_payload_is_not_a_statement(home: Settings, tmp_path: Path) -> None:
    """A trusted signature over something that is not a gate statement fails ``statement`` for that
    folder only; the records after it (in folder order) are still verified."""
    recorded = _record(home, tmp_path, "sign_data")
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    bogus = sign_envelope(b'{"not": "a statement"}', home.load_signing_key()).to_json()
    store.log_files(recorded.mlflow_run_id, "mlsecops/evidence/a_bogus/try-1", {"envelope.dsse.json": bogus})
    report = verify_run(recorded.mlflow_run_id, settings=home)
    assert _failed(report) == {
        ("a_bogus/try-1", "ledger-entry"): "envelope bytes match no ledger entry of this run",
        ("a_bogus/try-1", "statement"): "payload is not an in-toto Statement v1",
    }
    checks = _checks(report)
    assert checks[("a_bogus/try-1", "signature")][0] is Status.OK
    assert checks[("sign_data/try-1", "signature")][0] is Status.OK
    assert checks[("sign_data/try-1", "location")][0] is Status.OK


def test_every_record_is_checked_after_one_whose_statement_time_is_outside_the_key_window(home: Settings, tmp_path: Path) -> None:
    old = _record(
        home,
        tmp_path,
        "a_old",
        started_at=datetime(2020, 6, 1, tzinfo=timezone.utc),
        finished_at=datetime(2020, 6, 1, 0, 1, tzinfo=timezone.utc),
    )
    _record(home, tmp_path, "sign_data")
    public = home.load_signing_key().public_key
    windowed = VerifyingKey(public.key, origin="test", not_before=datetime(2021, 1, 1, tzinfo=timezone.utc))
    report = verify_run(old.mlflow_run_id, settings=home, trusted_keys={windowed.keyid: windowed})
    assert _failed(report) == {
        ("a_old/try-1", "signature"): f"key {windowed.keyid[:16]} is not valid before 2021-01-01T00:00:00Z: "
        "the signed statement's finish time is 2020-06-01T00:01:00Z",
        # no signed record backs the tags of a_old now
        ("a_old", "verdict-tag"): "MLflow tags say evidence='mlsecops/evidence/a_old/try-1', gate='data-validation', "
        f"ledger_seq='{old.ledger_seq}', verdict='passed', but no signed record backs them",
    }
    status, detail = _checks(report)[("sign_data/try-1", "signature")]
    assert status is Status.OK and detail.startswith(
        f"ecdsa-p256 key {windowed.keyid[:16]}... (valid from 2021-01-01T00:00:00Z; signed at "
    )


def test_a_missing_evidence_file_does_not_stop_the_other_files_being_checked(home: Settings, tmp_path: Path) -> None:
    recorded = _record(home, tmp_path, "sign_data")
    folder = _evidence_dir(home, recorded.mlflow_run_id, "sign_data/try-1")
    names = sorted(p.name for p in folder.iterdir() if p.name != "envelope.dsse.json")
    assert names == ["manifest.json", "result.json"]
    (folder / "manifest.json").unlink()
    report = verify_run(recorded.mlflow_run_id, settings=home)
    assert _failed(report) == {("sign_data/try-1", "file:manifest.json"): "attested evidence file is missing"}
    assert _checks(report)[("sign_data/try-1", "file:result.json")][0] is Status.OK


def test_deleted_evidence_is_named_by_seq_and_task(home: Settings, tmp_path: Path) -> None:
    first = _record(home, tmp_path, "sign_data")
    _record(home, tmp_path, "sign_model")
    import shutil

    shutil.rmtree(_evidence_dir(home, first.mlflow_run_id, "sign_model"))
    failed = _failed(verify_run(first.mlflow_run_id, settings=home))
    assert failed[("run", "ledger-complete")] == "ledger entries without evidence in MLflow: seq 2 (sign_model)"


def test_evidence_whose_mlflow_write_failed_is_excused_by_its_ledger_note(home: Settings, tmp_path: Path) -> None:
    """The recorder notes in the ledger when it could not write the evidence to MLflow (kind
    ``recording-failed``, pointing at the attestation): that attestation is not reported missing."""
    first = _record(home, tmp_path, "sign_data")
    second = _record(home, tmp_path, "sign_model")
    import shutil

    shutil.rmtree(_evidence_dir(home, first.mlflow_run_id, "sign_model"))
    EvidenceLedger(home.ledger_url, create=False).append(
        envelope_json='{"note": "the evidence could not be logged to MLflow"}',
        gate="dataset-provenance",
        kind=KIND_RECORDING_FAILED,
        dag_id="dag",
        run_id="run-1",
        task_id="sign_model",
        mlflow_run_id=first.mlflow_run_id,
        ref_seq=second.ledger_seq,
    )
    report = verify_run(first.mlflow_run_id, settings=home)
    assert _checks(report)[("run", "ledger-complete")] == (Status.OK, "2 attestations, all present")


def test_a_run_with_neither_evidence_nor_ledger_entries_fails_both_checks(home: Settings) -> None:
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="empty", run_name="nothing")
    EvidenceLedger(home.ledger_url)
    assert _failed(verify_run(run_id, settings=home)) == {
        ("run", "evidence-present"): "the run holds no mlsecops evidence",
        ("run", "ledger-complete"): "the ledger holds no entry for this run",
    }


def test_an_attestation_stored_beside_the_record_must_be_signed_by_a_trusted_key(home: Settings, tmp_path: Path) -> None:
    """A signed statement stored with the record (``*.dsse.json``, e.g. SLSA provenance) is verified
    on its own: one signed by an untrusted key fails ``attestation:<name>``, though its bytes are
    exactly the ones the record attests."""
    stranger = SigningKey.generate()
    inner = sign_envelope(b'{"_type": "https://in-toto.io/Statement/v1"}', stranger).to_json()
    recorder = EvidenceRecorder.from_settings(home)
    result = GateResult(gate="data-validation", verdict=Verdict.PASSED, context=PipelineContext("dag", "run-1", "check"))
    recorded = recorder.record(result, experiment_name="dag", files={"provenance.dsse.json": inner})
    failed = _failed(verify_run(recorded.mlflow_run_id, settings=home))
    assert failed == {
        ("check/try-1", "attestation:provenance.dsse.json"): (
            f"signed by an untrusted key ({stranger.keyid[:16]}); trust its public key to accept it"
        )
    }


def test_a_trusted_key_without_an_origin_is_described_as_given_by_the_caller() -> None:
    key = VerifyingKey(SigningKey.generate().public_key.key)  # handed to verify_run(trusted_keys=...) directly
    assert describe_trusted_keys({key.keyid: key}) == [
        {"keyid": key.keyid, "key_type": "ecdsa-p256", "source": "given by the caller", "validity": "always"}
    ]
