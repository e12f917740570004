"""Key rotation and revocation against real recorded evidence: a real ledger (SQLite, and PostgreSQL
when configured) and a real MLflow store; trust files written with windows around the real
ledger times of the records (the recorder has no clock to fix)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_mlsecops import gate_names
from airflow_mlsecops.cli import main
from airflow_mlsecops.config import PUBLIC_KEY_FILE, Settings
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.ledger import EvidenceLedger
from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Verdict
from airflow_mlsecops.evidence.signers import Signer, load_signer
from airflow_mlsecops.exceptions import VerificationError
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.lifecycle._registry_checks import signed_alias_holder
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder, RecordedEvidence
from airflow_mlsecops.lifecycle.verification import Status, VerificationReport, verify_run


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _ledger_time(settings: Settings, recorded: RecordedEvidence) -> datetime:
    entry = next(e for e in EvidenceLedger(settings.ledger_url, create=False).entries() if e.seq == recorded.ledger_seq)
    return datetime.fromisoformat(entry.created_at.replace("Z", "+00:00"))


def _between(first: datetime, second: datetime) -> datetime:
    assert first < second
    return first + (second - first) / 2


def _failed(report: VerificationReport) -> dict[tuple[str, str], str]:
    return {(c.scope, c.name): c.detail for c in report.failures}


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request: pytest.FixtureRequest, home: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ``home`` platform, with its ledger in SQLite or in PostgreSQL."""
    if request.param == "postgres":
        monkeypatch.setenv("MLSECOPS_LEDGER_URL", request.getfixturevalue("postgres_url"))
        return Settings.from_env()
    return home


class Pipeline:
    """Records gates of one pipeline run (dag ``dag``, run ``run-1``) with whichever key signs."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.home_key = SigningKey.from_file(settings.keys_dir / "signing-key.pem")
        self.home_public = settings.keys_dir / PUBLIC_KEY_FILE
        self.results: dict[str, GateResult] = {}  # task id -> the signed result (its finished_at is signed)

    def record(self, task_id: str, key: Signer | None = None, **result_fields) -> RecordedEvidence:
        recorder = EvidenceRecorder.from_settings(self.settings)
        if key is not None:
            recorder = EvidenceRecorder(signing_key=key, ledger=recorder.ledger, store=recorder.store)
        ctx = PipelineContext("dag", "run-1", task_id)
        if result_fields:
            result = GateResult.create(gate="data-validation", verdict=Verdict.PASSED, context=ctx, **result_fields)
            self.results[task_id] = result
            return recorder.record(result, experiment_name="dag")
        data = self.tmp_path / f"{task_id}.csv"
        data.write_text(f"a,b\n1,{task_id}\n")
        outcome = attest_artifacts([str(data)], context=ctx)  # also a SLSA statement, signed and stored beside it
        self.results[task_id] = outcome.result
        return recorder.record(outcome.result, experiment_name="dag", files=outcome.files, statements=outcome.statements)

    def trust(self, monkeypatch: pytest.MonkeyPatch, body: str, name: str = "trust.yaml") -> Path:
        """Write a trust file beside the keys and make it the platform's trust anchor."""
        path = self.settings.home / name
        path.write_text(body)
        monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(path))
        return path

    def public_file(self, key: SigningKey, name: str) -> str:
        path = self.settings.keys_dir / name
        path.write_bytes(key.public_key.to_pem())
        return f"keys/{name}"


@pytest.fixture
def pipeline(platform: Settings, tmp_path: Path) -> Pipeline:
    """Records into the platform, with its ledger in SQLite and in PostgreSQL (one test each)."""
    return Pipeline(platform, tmp_path)


@pytest.fixture
def sqlite_pipeline(home: Settings, tmp_path: Path) -> Pipeline:
    """Records into the platform with its ledger in SQLite (for tests about something other than the ledger)."""
    return Pipeline(home, tmp_path)


def test_rotation_old_key_verifies_what_it_signed_before_and_the_new_key_after(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = pipeline.home_key
    new = SigningKey.generate()
    before = pipeline.record("sign_before", old)
    after = pipeline.record("sign_after", new)
    late = pipeline.record("signed_late_with_old", old)
    # After everything the old key signed (ledger time of ``before``), at or before everything the new
    # key signed (the ``after`` gate's signed finish time, which precedes its ledger time).
    rotated_at = _between(_ledger_time(pipeline.settings, before), pipeline.results["sign_after"].finished_at)
    assert rotated_at < _ledger_time(pipeline.settings, after) <= _ledger_time(pipeline.settings, late)
    trust = pipeline.trust(
        monkeypatch,
        f"""version: 1
keys:
  - key: keys/{PUBLIC_KEY_FILE}
    not_before: 2025-01-01T00:00:00Z
    not_after: {_iso(rotated_at)}
  - key: {pipeline.public_file(new, "2026.pub.pem")}
    not_before: {_iso(rotated_at)}
""",
    )
    report = verify_run(before.mlflow_run_id, settings=Settings.from_env(), ledger=EvidenceLedger(pipeline.settings.ledger_url))
    failed = _failed(report)
    # the refused record backs no verdict tag either
    assert set(failed) == {("signed_late_with_old/try-1", "signature"), ("signed_late_with_old", "verdict-tag")}, failed
    assert (
        f"key {old.keyid[:16]} expired at {_iso(rotated_at)} (rotated out)" in failed[("signed_late_with_old/try-1", "signature")]
    )
    assert f"the ledger time of seq {late.ledger_seq} is" in failed[("signed_late_with_old/try-1", "signature")]
    ok = {(c.scope, c.name): c.detail for c in report.checks if c.status is Status.OK}
    assert f"until {_iso(rotated_at)}" in ok[("sign_before/try-1", "signature")]
    assert f"ledger seq {before.ledger_seq}" in ok[("sign_before/try-1", "signature")]
    assert ("sign_before/try-1", "attestation:provenance.slsa.dsse.json") in ok  # the SLSA statement is timed by the ledger too
    assert new.keyid[:16] in ok[("sign_after/try-1", "signature")]
    # the report names each key, where it came from and its window
    described = {k["keyid"]: k for k in report.trusted_keys}
    assert described[old.keyid]["source"] == f"keys/{PUBLIC_KEY_FILE} in {trust} (MLSECOPS_TRUSTED_KEYS)"
    assert described[old.keyid]["validity"] == f"from 2025-01-01T00:00:00Z until {_iso(rotated_at)}"
    assert described[old.keyid]["not_after"] == _iso(rotated_at) and "revoked_at" not in described[old.keyid]
    assert described[new.keyid]["not_before"] == _iso(rotated_at) and "not_after" not in described[new.keyid]
    assert f"valid from 2025-01-01T00:00:00Z until {_iso(rotated_at)}" in ok[("run", "trusted-keys")]


def test_rotated_out_key_is_refused_for_everything_after_not_after(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = pipeline.record("sign_data")
    signed_at = _ledger_time(pipeline.settings, recorded)
    body = f"version: 1\nkeys:\n  - key: keys/{PUBLIC_KEY_FILE}\n    not_after: {{}}\n"
    pipeline.trust(monkeypatch, body.format(_iso(signed_at + timedelta(seconds=1))))
    assert verify_run(recorded.mlflow_run_id, settings=Settings.from_env()).ok
    pipeline.trust(monkeypatch, body.format(_iso(signed_at)))  # not_after is exclusive
    failed = _failed(verify_run(recorded.mlflow_run_id, settings=Settings.from_env()))
    assert "expired at" in failed[("sign_data/try-1", "signature")]


def test_revoked_key_verifies_only_what_it_signed_before_the_revocation(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = pipeline.record("before_theft")
    after = pipeline.record("after_theft")
    stolen_at = _between(_ledger_time(pipeline.settings, before), _ledger_time(pipeline.settings, after))
    pipeline.trust(
        monkeypatch,
        f"version: 1\nkeys:\n  - key: keys/{PUBLIC_KEY_FILE}\n    revoked_at: {_iso(stolen_at)}\n    reason: laptop stolen\n",
    )
    report = verify_run(before.mlflow_run_id, settings=Settings.from_env())
    failed = _failed(report)
    assert set(failed) == {("after_theft/try-1", "signature"), ("after_theft", "verdict-tag")}, failed
    detail = failed[("after_theft/try-1", "signature")]
    assert f"key {pipeline.home_key.keyid[:16]} was revoked at {_iso(stolen_at)} (laptop stolen)" in detail
    described = report.trusted_keys[0]
    assert described["revoked_at"] == _iso(stolen_at) and described["revocation_reason"] == "laptop stolen"
    with pytest.raises(VerificationError, match=r"after_theft/try-1: signature: .*revoked at"):
        report.raise_if_failed()


def test_statement_time_outside_the_window_is_refused_even_when_the_ledger_time_is_inside(
    sqlite_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both times must lie inside the window: a statement claiming 2020 under a key valid from 2025 is refused."""
    claimed = datetime(2020, 1, 1, tzinfo=timezone.utc)
    recorded = sqlite_pipeline.record("backdated", started_at=claimed, finished_at=claimed)
    sqlite_pipeline.trust(
        monkeypatch, f"version: 1\nkeys:\n  - key: keys/{PUBLIC_KEY_FILE}\n    not_before: 2025-01-01T00:00:00Z\n"
    )
    failed = _failed(verify_run(recorded.mlflow_run_id, settings=Settings.from_env()))
    assert failed[("backdated/try-1", "signature")] == (
        f"key {sqlite_pipeline.home_key.keyid[:16]} is not valid before 2025-01-01T00:00:00Z: "
        "the signed statement's finish time is 2020-01-01T00:00:00Z"
    )


def test_plain_key_files_behave_as_before(sqlite_pipeline: Pipeline) -> None:
    recorded = sqlite_pipeline.record("sign_data")
    report = verify_run(recorded.mlflow_run_id, settings=sqlite_pipeline.settings)
    assert report.ok, _failed(report)
    assert report.trusted_keys[0]["validity"] == "always" and "not_after" not in report.trusted_keys[0]


def test_promotion_checks_ignore_a_holder_signed_after_the_revocation(sqlite_pipeline: Pipeline, monkeypatch) -> None:
    """``signed_alias_holder`` (promotion, rollback, the alias guard) applies key windows to ledger rows."""
    recorder = EvidenceRecorder.from_settings(sqlite_pipeline.settings)

    def rollback(version: str) -> RecordedEvidence:
        details = {"name": "credit", "alias": "champion", "to_version": version}
        result = GateResult.create(gate=gate_names.MODEL_ROLLBACK, verdict=Verdict.PASSED, details=details)
        return recorder.record(result, experiment_name="registry")

    first, second = rollback("1"), rollback("2")
    trusted_plain = sqlite_pipeline.settings.load_trusted_keys()
    holder = signed_alias_holder(sqlite_pipeline.settings, "credit", "champion", trusted_plain)
    assert holder is not None and holder.version == "2"
    stolen_at = _between(_ledger_time(sqlite_pipeline.settings, first), _ledger_time(sqlite_pipeline.settings, second))
    sqlite_pipeline.trust(
        monkeypatch, f"version: 1\nkeys:\n  - key: keys/{PUBLIC_KEY_FILE}\n    revoked_at: {_iso(stolen_at)}\n    reason: x\n"
    )
    holder = signed_alias_holder(sqlite_pipeline.settings, "credit", "champion", Settings.from_env().load_trusted_keys())
    assert holder is not None and (holder.version, holder.seq) == ("1", first.ledger_seq)


def test_awskms_trust_anchor_with_a_window_and_a_revocation(
    home: Settings, tmp_path: Path, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KMS key as trust anchor in a trust file (its public key fetched from KMS on moto_server)."""
    import boto3

    client = boto3.client("kms")
    key_id = client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    alias = f"alias/mlsecops-rotation-{key_id[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=key_id)
    signer = load_signer(f"awskms:///{alias}", origin="MLSECOPS_SIGNING_KEY")
    pipeline = Pipeline(home, tmp_path)
    recorded = pipeline.record("kms_signed", signer, summary="signed in KMS")  # a small statement: RAW signing
    signed_at = _ledger_time(home, recorded)
    trust = pipeline.trust(
        monkeypatch, f"version: 1\nkeys:\n  - key: awskms:///{alias}\n    not_before: {_iso(signed_at - timedelta(hours=1))}\n"
    )
    report = verify_run(recorded.mlflow_run_id, settings=Settings.from_env())
    assert report.ok, _failed(report)
    assert report.trusted_keys[0]["keyid"] == signer.keyid
    assert report.trusted_keys[0]["source"] == f"awskms:///{alias} in {trust} (MLSECOPS_TRUSTED_KEYS)"
    pipeline.trust(
        monkeypatch,
        f"version: 1\nkeys:\n  - key: awskms:///{alias}\n    revoked_at: {_iso(signed_at)}\n    reason: KMS key policy leaked\n",
    )
    failed = _failed(verify_run(recorded.mlflow_run_id, settings=Settings.from_env()))
    assert (
        "revoked at" in failed[("kms_signed/try-1", "signature")]
        and "(KMS key policy leaked)" in failed[("kms_signed/try-1", "signature")]
    )


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "version: 1\nkeys:\n  - key: keys/signing-key.pub.pem\n    valid_until: 2026-06-30T00:00:00Z\n",
            "unknown field 'valid_until'",
        ),
        ("version: 1\nkeys:\n  - key: keys/missing.pub.pem\n", "keys[0] (keys/missing.pub.pem): key file"),
        ("version: 1\nkeys:\n  - key: keys/signing-key.pub.pem\n    not_after: 2026-06-30T00:00:00\n", "has no time zone"),
    ],
)
def test_cli_verify_with_a_broken_trust_file_exits_2(
    capsys, sqlite_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    recorded = sqlite_pipeline.record("sign_data")
    trust = sqlite_pipeline.trust(monkeypatch, body)
    code = main(["verify", "--mlflow-run-id", recorded.mlflow_run_id])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"mlsecops: error: trust file {trust}" in err and expected in err


def test_cli_verify_reports_each_key_with_its_window(capsys, sqlite_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = sqlite_pipeline.record("sign_data")
    signed_at = _ledger_time(sqlite_pipeline.settings, recorded)
    trust = sqlite_pipeline.trust(
        monkeypatch, f"version: 1\nkeys:\n  - key: keys/{PUBLIC_KEY_FILE}\n    not_after: {_iso(signed_at)}\n"
    )
    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(trust))  # restored after the CLI's --trusted-key writes it
    code = main(["verify", "--mlflow-run-id", recorded.mlflow_run_id, "--trusted-key", str(trust), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["verified"]
    assert report["trusted_keys"] == [
        {
            "keyid": sqlite_pipeline.home_key.keyid,
            "key_type": "ecdsa-p256",
            "source": f"keys/{PUBLIC_KEY_FILE} in {trust} (MLSECOPS_TRUSTED_KEYS)",
            "validity": f"until {_iso(signed_at)}",
            "not_after": _iso(signed_at),
        }
    ]
    assert any(f["check"] == "signature" and "expired at" in f["detail"] for f in report["failures"])
    code = main(["verify", "--mlflow-run-id", recorded.mlflow_run_id])
    out = capsys.readouterr().out
    assert code == 1 and f"in {trust} (MLSECOPS_TRUSTED_KEYS)" in out and "NOT VERIFIED" in out
