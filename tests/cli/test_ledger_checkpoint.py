"""``mlsecops ledger checkpoint``, ``ledger verify --checkpoint/--full`` and ``verify --checkpoint``:
exit 0 when the ledger agrees with its newest signed checkpoint, 1 when its tail was cut or the
checkpoint is not trusted, 2 when the store cannot be used."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.ledger import TABLE_NAME, EvidenceLedger
from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _append(settings: Settings, n: int) -> None:
    ledger = EvidenceLedger(settings.ledger_url)
    for i in range(n):
        ledger.append(envelope_json=json.dumps({"n": i, "nonce": uuid.uuid4().hex}), gate="data-validation")
    ledger.dispose()


def _cut_tail(settings: Settings, keep: int) -> None:
    """Drop the append-only trigger and delete the newest rows, as an attacker with the database would."""
    with sqlite3.connect(settings.home / "ledger.db") as conn:
        conn.execute(f"DROP TRIGGER {TABLE_NAME}_no_delete")
        conn.execute(f"DELETE FROM {TABLE_NAME} WHERE seq > ?", (keep,))
    conn.close()


@pytest.fixture
def run_id(home: Settings, tmp_path: Path) -> str:
    data = tmp_path / "train.csv"
    data.write_text("x\n1\n2\n")
    outcome = attest_artifacts([str(data)], context=PipelineContext("dag", "run-1", "sign_data"))
    return EvidenceRecorder.from_settings(home).record(outcome.result, experiment_name="dag", files=outcome.files).mlflow_run_id


def test_checkpoint_then_verify_walks_only_from_it(capsys, home: Settings, tmp_path: Path) -> None:
    store = tmp_path / "checkpoints"
    _append(home, 5)
    code, out, err = run_cli(capsys, "ledger", "checkpoint", "--to", str(store))
    assert code == 0, err
    (written,) = store.iterdir()
    assert f"checkpoint written: {written}" in out
    assert "ledger size 5" in out and "locked: no" in out
    assert "chain verified first: walked 5 row(s) from seq 1 (no checkpoint before)" in out
    _append(home, 2)

    code, out, err = run_cli(capsys, "ledger", "verify", "--checkpoint", str(store))
    assert code == 0, err
    assert "ledger chain intact: 7 entries" in out
    assert "walked 3 row(s), seq 5 to 7" in out
    assert f"agrees with the checkpoint {written}" in out
    code, out, _ = run_cli(capsys, "ledger", "verify", "--checkpoint", str(store), "--full", "--json")
    result = json.loads(out)
    assert code == 0 and (result["rows_walked"], result["start_seq"]) == (7, 1)
    assert result["checkpoint"]["size"] == 5 and result["checkpoint"]["location"] == str(written)


def test_the_configured_store_is_the_default(capsys, home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "checkpoints"
    monkeypatch.setenv("MLSECOPS_LEDGER_CHECKPOINTS", str(store))
    _append(home, 3)
    code, out, _ = run_cli(capsys, "ledger", "checkpoint", "--json")
    written = json.loads(out)
    assert code == 0 and written["written"] is True and written["size"] == 3 and written["locked"] is False
    assert Path(written["location"]).parent == store
    _cut_tail(home, 1)
    code, out, err = run_cli(capsys, "ledger", "verify")
    assert code == 1 and out == ""
    assert "ledger has 1 entries, the checkpoint of" in err and "records 3: its tail was cut" in err
    # A new checkpoint is never signed over the cut ledger.
    code, _, err = run_cli(capsys, "ledger", "checkpoint")
    assert code == 1 and "its tail was cut" in err
    assert len(list(store.iterdir())) == 1


def test_verify_run_against_a_checkpoint(capsys, home: Settings, run_id: str, tmp_path: Path) -> None:
    store = tmp_path / "checkpoints"
    _append(home, 4)  # the run's entry is seq 1, the checkpoint at 5
    assert run_cli(capsys, "ledger", "checkpoint", "--to", str(store))[0] == 0
    code, out, err = run_cli(capsys, "verify", "--mlflow-run-id", run_id, "--checkpoint", str(store))
    assert code == 0, out + err
    assert "agrees with the checkpoint of" in out and "at seq 5" in out
    _cut_tail(home, 3)
    code, out, _ = run_cli(capsys, "verify", "--mlflow-run-id", run_id, "--checkpoint", str(store))
    assert code == 1
    assert "ledger-chain" in out and "records 5: its tail was cut" in out


def test_a_checkpoint_signed_by_an_untrusted_key_exits_1(capsys, home: Settings, tmp_path: Path) -> None:
    store = tmp_path / "checkpoints"
    _append(home, 2)
    other = SigningKey.generate()
    other.write_pair(tmp_path / "other" / "key.pem", tmp_path / "other" / "key.pub")
    code, _, err = run_cli(capsys, "ledger", "checkpoint", "--to", str(store))
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "ledger", "verify", "--checkpoint", str(store), "--trusted-key", str(tmp_path / "other" / "key.pub")
    )
    assert code == 1 and "is not trusted: signed by an untrusted key" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ledger", "checkpoint"], "no checkpoint store: pass --to"),
        (["ledger", "checkpoint", "--to", "gs://bucket/x"], "unknown checkpoint store scheme 'gs'"),
        (["ledger", "checkpoint", "--to", "{tmp}/cp", "--retention-days", "30"], "needs an S3 bucket with Object Lock"),
        (["ledger", "checkpoint", "--to", "{tmp}/cp", "--retention-days", "0"], "--retention-days must be at least 1"),
        (["ledger", "verify", "--checkpoint", "{tmp}/nowhere"], "nowhere does not exist"),
        (
            ["ledger", "verify", "--checkpoint", "s3://mlsecops-no-such-endpoint/cp"],
            "cannot list s3://mlsecops-no-such-endpoint/cp",
        ),
    ],
    ids=["no-store", "unknown-scheme", "retention-on-a-directory", "bad-retention", "missing-directory", "unreachable-s3"],
)
def test_a_store_that_cannot_be_used_exits_2(
    capsys, home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("MLSECOPS_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _append(home, 1)
    code, out, err = run_cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 2, out + err
    assert "mlsecops: error: " in err and message in err and "Traceback" not in err


def test_an_empty_ledger_has_nothing_to_checkpoint(capsys, home: Settings, tmp_path: Path) -> None:
    EvidenceLedger(home.ledger_url).dispose()
    code, out, _ = run_cli(capsys, "ledger", "checkpoint", "--to", str(tmp_path / "cp"))
    assert code == 0 and "nothing to checkpoint" in out
    assert list((tmp_path / "cp").iterdir()) == []


def test_checkpoint_to_an_object_locked_bucket(capsys, home: Settings, aws_endpoint: str) -> None:
    from airflow_mlsecops.io.artifacts import s3_client

    bucket = f"mlsecops-lock-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    _append(home, 3)
    code, out, err = run_cli(capsys, "ledger", "checkpoint", "--to", f"s3://{bucket}/ledger", "--retention-days", "10")
    assert code == 0, err
    assert f"checkpoint written: s3://{bucket}/ledger/checkpoint-000000000003-" in out and "?versionId=" in out
    assert "locked: COMPLIANCE until " in out and "(10 days as asked)" in out
    code, out, err = run_cli(capsys, "ledger", "verify", "--checkpoint", f"s3://{bucket}/ledger")
    assert code == 0, err
    assert f"agrees with the checkpoint s3://{bucket}/ledger/checkpoint-000000000003-" in out
