"""``CodeScanGateOperator``: argument checks, the policy on its thresholds, and a real ``dag.test()`` run."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from tests.helpers import pipeline_run_id, run_dag, unique_dag_id

HEADER = "from airflow_mlsecops.operators import CodeScanGateOperator"
AWS_KEY_ID = "AKIA" + "Q4RT7YZW2KX9MB3D"  # assembled: this file carries no key
VULNERABLE = f'''\
import pickle
import subprocess

AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"


def handle(request):
    subprocess.call("convert " + request.args["file"], shell=True)
    return pickle.loads(request.data)
'''
CLEAN = "import json\n\n\ndef load(text: str) -> dict:\n    return json.loads(text)\n"


# ----------------------------------------------------------------------------- arguments
def _op(**kwargs):
    from airflow_mlsecops.operators import CodeScanGateOperator

    return CodeScanGateOperator(task_id="scan", **{"paths": ["dags"], **kwargs})


def test_arguments_are_normalised_and_templated() -> None:
    from airflow_mlsecops.operators import CodeScanGateOperator

    op = _op(paths="dags", fail_on_severity="medium, high", fail_on_confidence=["HIGH"])
    assert (op.paths, op.fail_on_severity, op.fail_on_confidence) == (["dags"], ["high", "medium"], ["high"])
    assert (op.scan_secrets, op.max_suppressions) == (True, None)
    assert "paths" in CodeScanGateOperator.template_fields
    assert CodeScanGateOperator.gate_name == "code-scan"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"paths": []}, "paths must name at least one"),
        ({"paths": [""]}, "paths must name at least one"),
        ({"fail_on_severity": ["critical"]}, "not a list of bandit levels"),
        ({"fail_on_confidence": ""}, "not a list of bandit levels"),
        ({"scan_secrets": "false"}, "scan_secrets must be True or False"),
        ({"max_suppressions": -1}, "max_suppressions must be an integer"),
        ({"max_suppressions": True}, "max_suppressions must be an integer"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _op(**kwargs)


# ----------------------------------------------------------------------------- policy
POLICY = """\
version: 1
rules:
  - name: code
    match: {tags: [production]}
    required_gates:
      register: [code-scan]
    thresholds:
      code-scan: {max_suppressions: 5}
"""


def _violations(**scan_kwargs) -> list[str]:
    from airflow.sdk import DAG

    from airflow_mlsecops.operators import CodeScanGateOperator, RegisterModelOperator
    from airflow_mlsecops.policy.airflow_dag import dag_info
    from airflow_mlsecops.policy.engine import evaluate
    from airflow_mlsecops.policy.model import parse_policy

    with DAG(dag_id="trains", schedule=None, start_date=datetime(2026, 1, 1), tags=["production"]) as dag:
        register = RegisterModelOperator(task_id="register", model_uri="models:/m/1", name="m")
        if scan_kwargs is not None and scan_kwargs.get("paths") != "absent":
            CodeScanGateOperator(task_id="scan_code", **{"paths": ["dags"], **scan_kwargs}) >> register
    return [v.message for v in evaluate(parse_policy(POLICY), dag_info(dag))]


def test_the_policy_requires_the_code_scan_before_register_and_refuses_weaker_settings() -> None:
    assert _violations(max_suppressions=5) == []
    assert any("requires gate code-scan upstream of register" in m for m in _violations(paths="absent"))
    weak = _violations(fail_on_severity=["high"], fail_on_confidence="high", scan_secrets=False, max_suppressions=9)
    assert len(weak) == 4, weak
    for name in ("fail_on_severity", "fail_on_confidence", "scan_secrets", "max_suppressions"):
        assert any(f"{name} of gate code-scan" in m for m in weak), (name, weak)
    assert any("max_suppressions of gate code-scan" in m for m in _violations())  # unset = no limit: weaker than 5


def test_the_policy_applies_at_run_time_to_a_task_that_escaped_the_parse_check(tmp_path: Path, monkeypatch) -> None:
    from airflow.sdk import DAG

    from airflow_mlsecops.operators import CodeScanGateOperator

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    with DAG(dag_id="runtime", schedule=None, start_date=datetime(2026, 1, 1), tags=["production"]) as dag:
        op = CodeScanGateOperator(task_id="scan_code", paths=["dags"], fail_on_severity=["high"], scan_secrets=False)
    op.apply_policy({"dag": dag})
    assert (op.fail_on_severity, op.scan_secrets, op.max_suppressions) == (["high", "medium"], True, 5)


# ----------------------------------------------------------------------------- a real task
@pytest.mark.airflow
def test_real_tasks_pass_clean_code_and_reject_planted_code_without_recording_the_secret(
    airflow_db, home: Settings, tmp_path: Path, write_dag
) -> None:
    clean, planted = tmp_path / "clean", tmp_path / "planted"
    clean.mkdir()
    planted.mkdir()
    (clean / "train.py").write_text(CLEAN)
    (planted / "handler.py").write_text(VULNERABLE)
    dag_id = unique_dag_id("code_scan")
    dag = write_dag(
        dag_id,
        """
CodeScanGateOperator(task_id="scan_clean", paths=["{{ params.clean }}"])
CodeScanGateOperator(task_id="scan_planted", paths="{{ params.planted }}", retries=2, retry_delay=timedelta(seconds=0))
""",
        header=HEADER,
        params={"clean": str(clean), "planted": str(planted)},
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed"
    assert {t: str(ti.state) for t, ti in tis.items()} == {"scan_clean": "success", "scan_planted": "failed"}
    assert tis["scan_planted"].try_number == 1  # a rejection is not retried

    run_id = pipeline_run_id(home, dag_id)
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    tags = store.run_tags(run_id)
    assert (tags["mlsecops.gate.scan_clean.verdict"], tags["mlsecops.gate.scan_planted.verdict"]) == ("passed", "failed")
    local = store.download_dir(run_id, "mlsecops/evidence/scan_planted/try-1", tmp_path / "dl")
    result = json.loads((local / "result.json").read_text())
    handler = str(planted / "handler.py")
    failed = {(f["id"], f["location"]) for f in result["findings"] if not f["passed"]}
    assert {("code.B602", f"{handler}:8"), ("code.B301", f"{handler}:9"), ("secret.aws-access-key", f"{handler}:4")} <= failed
    assert [s["name"] for s in result["subjects"]] == [handler]  # the templated path, rendered
    report = json.loads((local / "code_scan_report.json").read_text())
    assert report["secrets"][0]["fingerprint"].startswith("sha256:")

    # The secret's text is nowhere in what was recorded: artifacts, the MLflow database, the ledger.
    recorded = [p for p in Path(home.home).rglob("*") if p.is_file()]
    assert any(p.name == "code_scan_report.json" for p in recorded)
    assert not [p for p in recorded if AWS_KEY_ID.encode() in p.read_bytes()]
    verified = verify_run(run_id, settings=home)
    assert verified.ok, [c.to_dict() for c in verified.failures]
