"""Sign a model where it is trained, verify it where it is used: real Airflow tasks, a real sklearn
model saved by MLflow, real evidence in MLflow, and the OpenSSF CLI on the recorded signature."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from airflow_mlsecops.config import PUBLIC_KEY_FILE, Settings
from airflow_mlsecops.io.mlflow_store import RESULT_FILE, MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id, run_dag_states

pytestmark = pytest.mark.airflow

HEADER = "from airflow_mlsecops.operators.model_signing import ModelSignOperator, ModelVerifyOperator"


def _sklearn_model(where: Path) -> Path:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]], [0, 1, 0, 1])
    path = where / "fraud-model"
    mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"])
    return path


def _dag_source(model: Path, signature: Path, change: str) -> str:
    return f"""
sign = ModelSignOperator(task_id="sign", path={str(model)!r}, signature_path={str(signature)!r})

@task
def between_stages(path: str) -> None:
    {change}

verify = ModelVerifyOperator(task_id="verify", path={str(model)!r}, signature=sign.output["signature"])
sign >> between_stages({str(model)!r}) >> verify
"""


def test_signed_model_passes_verification_and_the_evidence_verifies(
    airflow_db, home: Settings, tmp_path: Path, write_dag
) -> None:
    model = _sklearn_model(tmp_path)
    signature = model / "model.sig"  # the OpenSSF convention: beside the files it signs, left out of the signature
    dag_id = f"model_signing_ok_{uuid.uuid4().hex[:6]}"
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(model, signature, "pass"), header=HEADER))
    assert dag_run.state == "success", states

    run_id = pipeline_run_id(home, dag_id)
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert {g["gate"] for g in report.gates.values()} == {"model-signing", "model-signature-verification"}
    assert any(c.name == "file:model.sig" and c.status.value == "ok" for c in report.checks)
    assert any(c.name == f"subject:{model}" and c.status.value == "ok" for c in report.checks)

    # The signature recorded in MLflow is the one written to signature_path, and OpenSSF verifies it.
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    evidence = store.run_tags(run_id)["mlsecops.gate.sign.evidence"]
    recorded = store.download_uri(f"runs:/{run_id}/{evidence}/model.sig", tmp_path / "recorded")
    assert recorded.read_bytes() == signature.read_bytes()
    cli = Path(sys.executable).parent / "model_signing"
    public_key = home.keys_dir / PUBLIC_KEY_FILE
    done = subprocess.run(
        [str(cli), "verify", "key", str(model), "--signature", str(signature), "--public_key", str(public_key)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_model_changed_between_stages_is_rejected(airflow_db, home: Settings, tmp_path: Path, write_dag) -> None:
    model = _sklearn_model(tmp_path)
    change = "open(path + '/MLmodel', 'a').write('# edited after signing\\n')"
    dag_id = f"model_signing_tampered_{uuid.uuid4().hex[:6]}"
    dag_run, states = run_dag_states(write_dag(dag_id, _dag_source(model, tmp_path / "model.sig", change), header=HEADER))
    assert dag_run.state == "failed"
    assert states == {"sign": "success", "between_stages": "success", "verify": "failed"}

    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    tags = store.run_tags(run_id)
    assert tags["mlsecops.gate.verify.verdict"] == "failed"
    evidence = store.download_dir(run_id, tags["mlsecops.gate.verify.evidence"], tmp_path / "evidence")
    result = json.loads((evidence / RESULT_FILE).read_text())
    assert [f["id"] for f in result["findings"] if not f["passed"]] == ["model-signing.changed"]
    assert "MLmodel changed since it was signed" in result["summary"]
    assert verify_run(run_id, settings=home, check_subjects=False).ok


def test_warn_only_verification_lets_the_pipeline_go_on_but_records_warned(
    airflow_db, home: Settings, tmp_path: Path, write_dag
) -> None:
    """warn_only works on ModelVerifyOperator as on every gate: a rejection is recorded as warned and the
    task succeeds; a signature that cannot be read is still an error verdict (the task fails)."""
    model = _sklearn_model(tmp_path)
    change = "open(path + '/MLmodel', 'a').write('# edited after signing\\n')"
    source = _dag_source(model, tmp_path / "model.sig", change).replace(
        'signature=sign.output["signature"])', 'signature=sign.output["signature"], warn_only=True)'
    )
    source += f"""
unreadable = ModelVerifyOperator(
    task_id="unreadable", path={str(model)!r}, signature={str(tmp_path / "nowhere.sig")!r}, warn_only=True
)
"""
    dag_id = f"model_signing_warn_{uuid.uuid4().hex[:6]}"
    _, states = run_dag_states(write_dag(dag_id, source, header=HEADER))
    assert states == {"sign": "success", "between_stages": "success", "verify": "success", "unreadable": "failed"}

    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    tags = store.run_tags(run_id)
    assert tags["mlsecops.gate.verify.verdict"] == "warned"
    assert tags["mlsecops.gate.unreadable.verdict"] == "error"
    evidence = store.download_dir(run_id, tags["mlsecops.gate.verify.evidence"], tmp_path / "evidence")
    result = json.loads((evidence / RESULT_FILE).read_text())
    assert result["warn_only"] is True and [f["id"] for f in result["findings"] if not f["passed"]] == ["model-signing.changed"]
    unreadable_dir = store.download_dir(run_id, tags["mlsecops.gate.unreadable.evidence"], tmp_path / "u")
    unreadable = json.loads((unreadable_dir / RESULT_FILE).read_text())
    assert unreadable["warn_only"] is True and unreadable["verdict"] == "error"


def test_sign_operator_refuses_warn_only_at_parse_time() -> None:
    """Signing has no rejection to soften (it signs, or it could not: an error verdict), so warn_only=True is refused."""
    from airflow_mlsecops.operators.model_signing import ModelSignOperator

    with pytest.raises(ValueError, match="warn_only"):
        ModelSignOperator(task_id="sign", path="model", warn_only=True)
    assert ModelSignOperator(task_id="sign", path="model", warn_only=False).warn_only is False
