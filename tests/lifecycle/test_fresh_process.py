"""The example pipeline's MLflow steps, each in a fresh interpreter, as Airflow's workers run them.

``dag.test()`` runs every task in one process, so MLflow's process-global state that one task set
(``mlflow.set_tracking_uri``) served the next and hid a bug: under a real Airflow,
``register_model`` failed with "Logged model with ID 'm-...' not found" and a stray ``./mlflow.db``
appeared in the worker's working directory. Here each step runs in its own ``python -c`` with
``MLSECOPS_HOME`` set, MLflow's own environment variables unset and an empty working directory:
nothing may depend on an earlier step having run in the same process, and nothing may be written
to the working directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.digest import sha256_file
from tests.conftest import REPO_ROOT

# Four fresh interpreters (each imports MLflow and scikit-learn): about a minute.
pytestmark = pytest.mark.slow

DAGS = REPO_ROOT / "dags"
MODEL_NAME = "credit-risk"
AUTHOR = "carol"

#: The example DAG's own ``train_model`` task (train, log the model and its detector), given the
#: context keys it reads.
TRAIN = """
import json, sys
from types import SimpleNamespace
sys.path.insert(0, sys.argv[1])
from secure_training_pipeline import dag

data, verified = sys.argv[2], json.loads(sys.argv[3])
train = dag.get_task("train_model").python_callable
out = train(
    data,
    verified,
    dag=SimpleNamespace(dag_id="secure_training_pipeline"),
    run_id="manual__fresh-process",
    dag_run=SimpleNamespace(triggering_user_name=sys.argv[4]),
    params={"rows": 1500, "seed": 11, "osv_db": None, "author": None},
)
print("RESULT " + json.dumps(out))
"""

#: The input-anomaly detector logged into that model with nothing but its id (the configured store).
DETECTOR = """
import sys
import pandas as pd
from airflow_mlsecops.demo.monitoring_data import fit_example_model
from airflow_mlsecops.demo.example_data import FEATURES
from airflow_mlsecops.gates.input_detection import fit_detector, log_detector_to_model

model, x_train = fit_example_model(pd.read_csv(sys.argv[1]))
detector = fit_detector(x_train, model=model, feature_columns=list(FEATURES))
print("RESULT " + log_detector_to_model(detector, sys.argv[2]))
"""

#: What ``attest_model`` does: sign the model's provenance and record it in the pipeline's run.
ATTEST = """
import sys, tempfile
from pathlib import Path
from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.hooks.evidence import EvidenceHook

hook = EvidenceHook()
model_uri = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    local = hook.store.download_uri(model_uri, Path(tmp))
    context = PipelineContext("secure_training_pipeline", "manual__fresh-process", "attest_model", 1)
    signed = attest_artifacts({model_uri: str(local)}, gate="model-provenance", context=context)
hook.recorder.record(signed.result, experiment_name=context.dag_id, files=signed.files, statements=signed.statements)
print("RESULT " + signed.result.subjects[0].sha256)
"""

#: What ``RegisterModelOperator.evaluate`` does: ``register_model`` with the hook's store and settings.
REGISTER = """
import json, sys
from airflow_mlsecops.evidence.models import PipelineContext
from airflow_mlsecops.hooks.evidence import EvidenceHook
from airflow_mlsecops.lifecycle.registration import register_model

hook = EvidenceHook()
model_uri, run_id = sys.argv[1], sys.argv[2]
outcome = register_model(
    hook.store,
    model_uri=model_uri,
    name=sys.argv[3],
    expected_sha256=sys.argv[4],
    pipeline_run_id=run_id,
    context=PipelineContext("secure_training_pipeline", "manual__fresh-process", "register_model", 1),
    settings=hook.settings,
)
result = outcome.result
print("RESULT " + json.dumps({"verdict": result.verdict.value, "summary": result.summary, **result.details}))
"""


def _fresh_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_REGISTRY", "MLSECOPS_", "AIRFLOW__MLSECOPS__"))
    }
    env["MLSECOPS_HOME"] = str(home)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _step(name: str, code: str, args: list[str], cwd: Path, env: dict[str, str]) -> tuple[Any, str]:
    """Run one step in a new interpreter; its result (the ``RESULT`` line) or ``None``, and its output tail."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    tail = f"{name} exited {done.returncode}:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    if done.returncode != 0 or not lines:
        return None, tail
    text = lines[-1][len("RESULT ") :]
    return (json.loads(text) if text.startswith("{") else text), tail


def test_pipeline_mlflow_steps_each_in_a_fresh_process(home: Settings, tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus

    from airflow_mlsecops.demo.example_data import credit_frame

    data = tmp_path / "train.csv"
    credit_frame(rows=1500, seed=11).to_csv(data, index=False)
    verified = {"subjects": [{"name": str(data.absolute()), "digest": {"sha256": sha256_file(data)}}]}
    workdir = tmp_path / "worker-cwd"
    workdir.mkdir()
    env = _fresh_env(home.home)

    trained, train_log = _step("train_model", TRAIN, [str(DAGS), str(data), json.dumps(verified), AUTHOR], workdir, env)
    assert trained is not None, train_log
    model_uri, mlflow_run_id = trained["model_uri"], trained["mlflow_run_id"]
    model_id = model_uri.removeprefix("models:/")
    # Every step runs even if one before it failed, so one run of this test shows every broken step.
    detector, detector_log = _step("log_detector_to_model", DETECTOR, [str(data), model_id], workdir, env)
    digest, attest_log = _step("attest_model", ATTEST, [model_uri], workdir, env)
    registered, register_log = _step(
        "register_model", REGISTER, [model_uri, mlflow_run_id, MODEL_NAME, str(digest)], workdir, env
    )

    strays = sorted(p.name for p in workdir.iterdir())
    assert strays == [], f"written to the working directory: {strays}"
    assert detector == f"{model_uri}/input_detector", detector_log
    assert digest is not None, attest_log
    assert registered is not None and registered["verdict"] == "passed", register_log
    assert registered["model_uri"] == f"models:/{MODEL_NAME}/{registered['version']}"

    client = MlflowClient(tracking_uri=f"sqlite:///{home.home / 'mlflow.db'}")
    version = client.get_model_version(MODEL_NAME, registered["version"])
    assert version.run_id == mlflow_run_id
    assert version.tags["mlsecops.model_sha256"] == registered["model_sha256"] == digest
    assert version.tags["mlsecops.pipeline_run_id"] == mlflow_run_id
    # The registered version serves the logged model's files (the registry resolved its source
    # through this store, not through whatever MLflow's global URI was).
    logged = client.get_logged_model(model_id)
    served = client.get_model_version_download_uri(MODEL_NAME, registered["version"])
    assert served.rstrip("/") == logged.artifact_location.rstrip("/")
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": MODEL_NAME, "version": int(registered["version"])}]

    # The logged model is a complete MLflow model, finished and shown on the pipeline's run.
    assert logged.status == LoggedModelStatus.READY, logged.status
    assert logged.source_run_id == mlflow_run_id
    run = client.get_run(mlflow_run_id)
    assert model_id in [o.model_id for o in run.outputs.model_outputs]
    # The author is the person who triggered the run, never the worker's OS user.
    assert trained["author"] == AUTHOR
    assert run.data.tags["mlflow.user"] == AUTHOR
    assert run.data.metrics["accuracy"] > 0.7
    assert run.data.params["training_data_sha256"] == verified["subjects"][0]["digest"]["sha256"]
    local = Path(logged.artifact_location.removeprefix("file://"))
    names = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"MLmodel", "model.skops", "requirements.txt", "input_example.json"} <= names, names
    assert any(n.startswith("input_detector/") for n in names), names
