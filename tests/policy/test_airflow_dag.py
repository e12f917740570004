"""The adapter from Airflow DAG objects (loaded by a real DagBag from files) to the engine's structure."""

from __future__ import annotations

from pathlib import Path

from airflow_mlsecops.policy.airflow_dag import dag_info, has_mlsecops_task
from airflow_mlsecops.policy.engine import Unresolved
from airflow_mlsecops.policy.parameters import ALL_ROWS
from tests.policy.conftest import load_dags, write_dag

SHAPES = """
from datetime import datetime
from airflow.sdk import DAG, Param, TaskGroup, task
from airflow_mlsecops.operators import (
    DataIntegrityGateOperator, DriftMonitorOperator, ModelApprovalGateOperator, PIIScanGateOperator,
    PromoteModelOperator, ProvenanceSignOperator, ProvenanceVerifyOperator, RobustnessGateOperator, SBOMGateOperator,
)

with DAG(
    dag_id="shapes", schedule=None, start_date=datetime(2026, 1, 1), tags=["production", "b"],
    params={"share": Param(0.3, type="number")}, default_args={"owner": "risk"},
) as dag:
    @task(multiple_outputs=True)
    def prep():
        return {"x": 0.1}

    p = prep()
    with TaskGroup("checks") as checks:
        pii = PIIScanGateOperator(task_id="pii", data="/d.csv", allow_columns="a, b", types=["email"])
        sbom = SBOMGateOperator(task_id="sbom", model="/m", fail_on="critical,high", warn_only=True)
    drift_param = DriftMonitorOperator(task_id="drift_param", reference="/r", current="/c", drift_share="{{ params.share }}")
    drift_xcom = DriftMonitorOperator(task_id="drift_xcom", reference="/r", current="/c", drift_share=p["x"])
    drift_conf = DriftMonitorOperator(task_id="drift_conf", reference="/r", current="/c", drift_share="{{ dag_run.conf['s'] }}")
    drift_text = DriftMonitorOperator(task_id="drift_text", reference="/r", current="/c", drift_share="{{ var.value.s }}")
    signs = ProvenanceSignOperator.partial(task_id="sign_many", gate="model-provenance").expand(artifacts=[["a"], ["b"]])
    robust = RobustnessGateOperator.partial(
        task_id="robust_many", model="/m", label_column="y", epsilon=0.1, data="/d.csv"
    ).expand(min_robust_accuracy=[0.5, 0.9])
    approve = ModelApprovalGateOperator(
        task_id="approve", model_uri="models:/m/1", reviewers=["alice"], required_approvals=1, separation_of_duties=False
    )
    verify = ProvenanceVerifyOperator(task_id="verify", artifacts=["/d.csv"], attestation="/a.json", public_keys=["/k.pem"])
    integrity = DataIntegrityGateOperator(
        task_id="integrity", data="/d", reference="/r", thresholds={"max_feature_shift.income": 0.3}
    )
    promote = PromoteModelOperator(task_id="promote", name="m", version="1", required_approvals=0)
    p >> checks >> drift_param >> signs >> robust >> approve >> promote
"""


def test_the_adapter_reads_gates_arguments_and_edges(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    write_dag(folder, "shapes", SHAPES)
    write_dag(
        folder,
        "plain",
        "from datetime import datetime\nfrom airflow.sdk import DAG, task\n"
        "with DAG(dag_id='plain', schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n"
        "    @task\n    def hello():\n        return 1\n    hello()\n",
    )
    dags, errors = load_dags(folder)
    assert errors == {}
    assert not has_mlsecops_task(dags["plain"]) and has_mlsecops_task(dags["shapes"])
    info = dag_info(dags["shapes"])
    assert (info.dag_id, info.tags, info.owners) == ("shapes", ("b", "production"), ("risk",))
    assert info.fileloc == str(folder / "shapes.py")
    tasks = {t.task_id: t for t in info.tasks}

    assert (tasks["prep"].operator, tasks["prep"].gate) == ("_PythonDecoratedOperator", None)
    assert tasks["checks.pii"].gate == "pii-scan" and tasks["checks.pii"].upstream == {"prep"}
    assert dict(tasks["checks.pii"].arguments) == {
        "types": ["email"],
        "allow_columns": ["a", "b"],
        "max_rows": ALL_ROWS,  # unset: every row
        "allow_empty": False,
    }
    sbom = tasks["checks.sbom"]
    assert sbom.warn_only and dict(sbom.arguments) == {
        "fail_on": ["critical", "high"],
        "require_vulnerability_check": True,
        "packages_from_model": True,
        "osv_db": None,
    }
    assert tasks["drift_param"].arguments["drift_share"] == 0.3  # {{ params.share }}: the param's default
    assert tasks["drift_param"].upstream == {"checks.pii", "checks.sbom"}
    assert tasks["drift_xcom"].arguments["drift_share"] == Unresolved("an XCom value")
    assert tasks["drift_conf"].arguments["drift_share"] == Unresolved("a template")  # no brackets in messages
    assert tasks["drift_text"].arguments["drift_share"] == Unresolved("the template {{ var.value.s }}")
    assert (tasks["sign_many"].operator, tasks["sign_many"].gate) == ("ProvenanceSignOperator", "model-provenance")
    robust = tasks["robust_many"]
    assert robust.gate == "robustness"
    assert robust.arguments["min_robust_accuracy"] == Unresolved("a mapped (expand) argument")
    assert robust.arguments["epsilon"] == 0.1 and robust.arguments["allow_bounds"] is False  # partial + class default
    assert dict(tasks["approve"].arguments) == {"required_approvals": 1, "reviewers": ["alice"], "separation_of_duties": False}
    assert tasks["approve"].gate == "model-approval"
    assert dict(tasks["verify"].arguments) == {"public_keys": ["/k.pem"]}
    thresholds = tasks["integrity"].arguments["thresholds"]
    assert thresholds["feature_shift_overrides"] == {"income": 0.3} and thresholds["max_duplicate_share"] == 0.01
    assert dict(tasks["promote"].arguments) == {"required_approvals": 0}
    assert info.step_tasks("promote") == [tasks["promote"]] and info.changes_models
    assert info.models == (("m", "champion"),)  # (registered model, alias) promoted: rules by model apply
    assert tasks["promote"].trigger_rule == "all_success" and tasks["promote"].origin is None
    assert info.ancestors("promote") >= {"prep", "checks.pii", "approve", "robust_many"}


def test_a_dag_that_accepts_model_code_breaks_a_policy_that_forbids_it(tmp_path: Path) -> None:
    """From the DAG file to the violation: ``allow_model_code=True`` is read from the operator and judged."""
    from airflow_mlsecops.policy.engine import check_thresholds
    from airflow_mlsecops.policy.model import parse_policy

    folder = tmp_path / "dags"
    body = (
        "from datetime import datetime\nfrom airflow.sdk import DAG\n"
        "from airflow_mlsecops.operators import ModelScanGateOperator\n"
        "with DAG(dag_id='{id}', schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n"
        "    ModelScanGateOperator(task_id='scan', path='/m'{extra})\n"
    )
    write_dag(folder, "lax", body.format(id="lax", extra=", allow_model_code=True"))
    write_dag(folder, "strict", body.format(id="strict", extra=""))
    dags, errors = load_dags(folder)
    assert errors == {}
    (rule,) = parse_policy(
        "version: 1\nrules:\n  - name: no-code\n    match: {dag_id_pattern: '.*'}\n"
        "    thresholds:\n      model-scan: {allow_model_code: false}\n"
    ).rules
    (violation,) = check_thresholds(rule, dag_info(dags["lax"]))
    assert "allow_model_code of gate model-scan to be false, but task scan in DAG lax sets true" in violation.message
    assert check_thresholds(rule, dag_info(dags["strict"])) == []
