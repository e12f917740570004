"""``EncryptedScoringOperator`` as a real Airflow task (``dag.test()``): the monitoring DAG's encrypted
branch against a registered champion, and the operator alone with a linear and a non-linear model.
The evidence names the encrypted input's digest and the CKKS parameters, and holds no plaintext."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import FEATURES, LABEL
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.conftest import REPO_ROOT, load_dag_file
from tests.helpers import pipeline_run_id, run_dag, run_dag_states, unique_dag_id
from tests.operators.test_monitoring_operators import champion

pytest.importorskip("tenseal")

__all__ = ["champion"]

DAG_FILE = REPO_ROOT / "dags" / "model_monitoring.py"
BRANCH = ("encrypted_scoring_enabled", "encrypt_batch", "score_encrypted", "decrypt_scores")
HEADER = "from airflow_mlsecops.operators.encrypted_scoring import EncryptedScoringOperator"


def _evidence(settings: Settings, run_id: str, task_id: str, tmp_path: Path) -> Path:
    store = MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    return store.download_dir(run_id, f"mlsecops/evidence/{task_id}/try-1", tmp_path / task_id)


@pytest.mark.airflow
def test_monitoring_dag_scores_the_batch_encrypted(airflow_db: Path, champion: dict[str, Any], tmp_path: Path) -> None:
    settings = champion["settings"]
    dag_run, tis = run_dag(load_dag_file(DAG_FILE, "model_monitoring"), run_conf={"batch": "normal"})
    states = {task_id: str(ti.state) for task_id, ti in tis.items()}
    assert dag_run.state == "success", states
    assert {t: states[t] for t in BRANCH} == dict.fromkeys(BRANCH, "success")
    owner = tis["encrypt_batch"].xcom_pull(task_ids="encrypt_batch")
    run_id = pipeline_run_id(settings, "model_monitoring", run_id=dag_run.run_id)

    evidence = _evidence(settings, run_id, "score_encrypted", tmp_path)
    result = json.loads((evidence / "result.json").read_text())
    assert result["gate"] == "encrypted-scoring" and result["verdict"] == "passed"
    batch_digest = hashlib.sha256(Path(owner["batch"]).read_bytes()).hexdigest()
    subjects = {s["name"]: s["digest"]["sha256"] for s in result["subjects"]}
    assert subjects[owner["batch"]] == batch_digest  # which encrypted input was scored
    assert subjects[f"models:/credit-risk/{champion['version']}"]  # by which model version (alias pinned)
    details = result["details"]
    assert details["input_sha256"] == batch_digest and details["model_ref"]["alias"] == "champion"
    assert details["ckks"]["poly_modulus_degree"] == 8192 and details["ckks"]["has_secret_key"] is False
    assert details["model"]["pipeline_steps"] == ["sklearn.preprocessing._data.StandardScaler"]
    report = verify_run(run_id, settings=settings)
    assert report.ok, [c.to_dict() for c in report.failures]

    # The data owner's decrypted probabilities are the champion's own.
    from airflow_mlsecops.io.locations import resolve_model_ref
    from airflow_mlsecops.io.model_loader import load_model

    store = MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    ref = resolve_model_ref("models:/credit-risk@champion", store)
    model = load_model(store.download_uri(ref.uri, tmp_path / "model")).estimator
    batch = pd.read_csv(tis["prepare_batch"].xcom_pull(task_ids="prepare_batch")["current"])
    scores = pd.read_csv(tis["decrypt_scores"].xcom_pull(task_ids="decrypt_scores")["scores"])
    np.testing.assert_allclose(scores["decision_function"], model.decision_function(batch[list(FEATURES)]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores["probability"], model.predict_proba(batch[list(FEATURES)])[:, 1], atol=1e-5)
    # No plaintext value reached the evidence: neither an input nor a score.
    text = "".join(p.read_text(errors="ignore") for p in evidence.iterdir())
    for value in [*batch["income"].iloc[:30], *scores["decision_function"].iloc[:30].round(6)]:
        assert str(value) not in text


@pytest.mark.airflow
def test_the_branch_is_skipped_when_switched_off(airflow_db: Path, champion: dict[str, Any]) -> None:
    dag_run, states = run_dag_states(
        load_dag_file(DAG_FILE, "model_monitoring"), run_conf={"batch": "normal", "encrypted_scoring": False}
    )
    assert dag_run.state == "success", states
    assert states["encrypted_scoring_enabled"] == "success"
    assert {t: states[t] for t in BRANCH[1:]} == dict.fromkeys(BRANCH[1:], "skipped")
    assert states["detect_drift"] == states["detect_input_anomalies"] == "success"


@pytest.fixture(scope="module")
def owner_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A data owner's encrypted demo batch and public context, a linear and a forest model (skops)."""
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import Ridge

    from airflow_mlsecops.privacy import encrypted_scoring as he

    root = tmp_path_factory.mktemp("he-operator")
    frame = pd.read_csv(REPO_ROOT / "dags" / "data" / "credit_reference.csv")
    x = frame[list(FEATURES)]
    ridge = Ridge().fit(x, frame["debt_ratio"] * 2 + frame["late_payments"])
    sio.dump(ridge, root / "ridge.skops")
    sio.dump(
        RandomForestClassifier(n_estimators=3, random_state=0).fit(x.iloc[:300], frame[LABEL].iloc[:300]), root / "forest.skops"
    )
    key = he.make_context()
    (root / "batch.ckks").write_bytes(he.encrypt_batch(key, frame, FEATURES))
    (root / "public.ctx").write_bytes(he.public_context(key))
    return {"root": root, "key": key, "ridge": ridge, "x": x}


@pytest.mark.airflow
def test_operator_scores_a_linear_model_and_fails_closed_on_a_forest(
    airflow_db: Path, home: Settings, tmp_path: Path, write_dag, owner_files: dict[str, Any]
) -> None:
    from airflow_mlsecops.privacy import encrypted_scoring as he

    root = owner_files["root"]
    dag_id = unique_dag_id("encrypted_scoring")
    dag = write_dag(
        dag_id,
        f"""
for name in ("ridge", "forest"):
    EncryptedScoringOperator(
        task_id=f"score_{{name}}",
        encrypted_batch={str(root / "batch.ckks")!r},
        public_context={str(root / "public.ctx")!r},
        model={str(root)!r} + f"/{{name}}.skops",
        encrypted_scores={str(tmp_path)!r} + f"/{{name}}.ckks",
    )
""",
        header=HEADER,
    )
    _, tis = run_dag(dag)
    states = {t: str(ti.state) for t, ti in tis.items()}
    assert states == {"score_ridge": "success", "score_forest": "failed"}, states
    summary = tis["score_ridge"].xcom_pull(task_ids="score_ridge")
    scores = he.decrypt_scores(owner_files["key"], (tmp_path / "ridge.ckks").read_bytes())
    np.testing.assert_allclose(scores, owner_files["ridge"].predict(owner_files["x"]), rtol=1e-4, atol=1e-4)
    assert summary["encrypted_scores_sha256"] == hashlib.sha256((tmp_path / "ridge.ckks").read_bytes()).hexdigest()
    assert not (tmp_path / "forest.ckks").exists()

    run_id = pipeline_run_id(home, dag_id)
    tags = MLflowEvidenceStore(home.tracking_uri, home.artifact_root).run_tags(run_id)
    assert tags["mlsecops.gate.score_ridge.verdict"] == "passed"
    assert tags["mlsecops.gate.score_forest.verdict"] == "error"  # recorded, never a pass
    forest = json.loads((_evidence(home, run_id, "score_forest", tmp_path) / "result.json").read_text())
    assert "RandomForestClassifier is not a linear model" in forest["summary"]
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]


def test_arguments_are_checked_when_the_dag_is_parsed() -> None:
    from airflow_mlsecops.operators.encrypted_scoring import EncryptedScoringOperator

    good: dict[str, Any] = {"encrypted_batch": "b.ckks", "public_context": "p.ctx", "model": "m", "encrypted_scores": "s.ckks"}
    with pytest.raises(ValueError, match="model is required"):
        EncryptedScoringOperator(task_id="t", **{**good, "model": ""})
    with pytest.raises(ValueError, match="encrypted_scores must be a local path or s3"):
        EncryptedScoringOperator(task_id="t", **{**good, "encrypted_scores": "runs:/abc/s.ckks"})
    with pytest.raises(ValueError, match="warn_only has no meaning"):
        EncryptedScoringOperator(task_id="t", warn_only=True, **good)
    with pytest.raises(ValueError, match="trust_pickle must be True or False"):
        EncryptedScoringOperator(task_id="t", trust_pickle="yes", **good)  # type: ignore[arg-type]
