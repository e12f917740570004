"""Shared pieces of the policy tests: a policy, DAG files written into tmp_path, DagBag loading with
the cluster policy installed in-process (when the ``airflow.policy`` entry point is not installed),
and gate evidence as the real gate engines record it."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POLICY = """\
version: 1
rules:
  - name: production-models
    match:
      tags: [production]
    required_gates:
      register: [model-scan, model-provenance]
      promote: [model-scan, robustness, model-provenance, data-validation]
    thresholds:
      robustness:
        min_robust_accuracy: 0.7
      sbom:
        fail_on: [critical, high, unknown]
    approval:
      required_approvals: 2
      reviewers: [alice, bob, carol]
      separation_of_duties: true
"""

HEADER = """\
from datetime import datetime
from airflow.sdk import DAG, task
from airflow_mlsecops.operators import (
    DataValidationGateOperator, DriftMonitorOperator, ModelApprovalGateOperator, ModelScanGateOperator,
    PromoteModelOperator, ProvenanceSignOperator, RegisterModelOperator, RobustnessGateOperator, SBOMGateOperator,
)
"""

#: The compliant training DAG and four ways to break the policy (the issue's non-compliant set).
VARIANTS = ("compliant", "gate_missing", "gate_not_upstream", "threshold_loosened", "quorum_lowered")

EXPECTED = {
    "compliant": [],
    "gate_missing": [
        "policy rule 'production-models' requires gate robustness upstream of promote_model (PromoteModelOperator)"
        " in DAG {dag_id}"
    ],
    "gate_not_upstream": [
        "policy rule 'production-models' requires gate robustness upstream of promote_model (PromoteModelOperator)"
        " in DAG {dag_id}"
    ],
    "threshold_loosened": [
        "policy rule 'production-models' requires min_robust_accuracy of gate robustness to be at least 0.7,"
        " but task check_robustness in DAG {dag_id} sets 0.5"
    ],
    "quorum_lowered": [
        "policy rule 'production-models' requires required_approvals of gate model-approval to be at least 2,"
        " but task approve_model in DAG {dag_id} sets 1"
    ],
}


def dag_id_of(variant: str) -> str:
    return f"credit_{variant}"


def expected_messages(variant: str) -> list[str]:
    return [m.format(dag_id=dag_id_of(variant)) for m in EXPECTED[variant]]


def training_dag_source(variant: str, *, tags: tuple[str, ...] = ("production",)) -> str:
    """A training DAG that registers and promotes a model, compliant or broken in one way."""
    min_accuracy = 0.5 if variant == "threshold_loosened" else 0.8
    approvals = 1 if variant == "quorum_lowered" else 2
    robustness = (
        ""
        if variant == "gate_missing"
        else f"""
    robust = RobustnessGateOperator(
        task_id="check_robustness", model="/models/m", data="/data/test.csv", label_column="y",
        epsilon=0.1, min_robust_accuracy={min_accuracy},
    )"""
    )
    if variant == "gate_missing":
        chain = "validate >> scan >> sign >> register >> approve >> promote"
    elif variant == "gate_not_upstream":
        chain = "validate >> scan >> sign >> register >> approve >> promote >> robust"
    else:
        chain = "validate >> scan >> robust >> sign >> register >> approve >> promote"
    return HEADER + textwrap.dedent(
        f"""
with DAG(dag_id={dag_id_of(variant)!r}, schedule=None, start_date=datetime(2026, 1, 1), tags={list(tags)!r}) as dag:
    validate = DataValidationGateOperator(task_id="validate_data", data="/data/train.csv", suite="/suites/train.json")
    scan = ModelScanGateOperator(task_id="scan_model", path="/models/m"){robustness}
    sign = ProvenanceSignOperator(task_id="sign_model", artifacts=["/models/m"], gate="model-provenance")
    register = RegisterModelOperator(task_id="register_model", model_uri="models:/m-1", name="credit")
    approve = ModelApprovalGateOperator(
        task_id="approve_model", model_uri="models:/credit/1", reviewers=["alice", "bob"], required_approvals={approvals},
    )
    promote = PromoteModelOperator(task_id="promote_model", name="credit", version="1", required_approvals=2)
    {chain}
"""
    )


def write_dag(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(source)
    return path


def load_dags(folder: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """DagBag of ``folder`` (cluster policies apply as in the DAG processor): (dags, import errors)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder), collect_dags=True)
    return dict(bag.dags), {Path(k).name: str(v) for k, v in bag.import_errors.items()}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def cluster_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The mlsecops cluster policy, active in this process's Airflow policy plugin manager.

    Uses the ``airflow.policy`` entry point's registration when it is installed, otherwise
    registers the module in-process for the test. Points ``MLSECOPS_HOME`` at an empty folder so no
    stray ``policy.yaml`` is picked up.
    """
    from airflow import settings

    from airflow_mlsecops.policy import cluster_policy as module

    monkeypatch.setenv("MLSECOPS_HOME", str(tmp_path / "mlsecops-home"))
    monkeypatch.delenv("MLSECOPS_POLICY", raising=False)
    monkeypatch.setattr(module, "_announced", set())
    manager = settings.get_policy_plugin_manager()
    installed = manager.is_registered(module)
    if not installed:
        manager.register(module)
    try:
        yield module
    finally:
        if not installed:
            manager.unregister(module)


# ----------------------------------------------------------------------------- evidence
def recorded(result: Any, task_id: str, *, try_number: int = 1, verdict: str = "passed", warn_only: bool | None = None) -> Any:
    """A gate result as recorded by the task ``task_id`` of ``dag_id``, with the given verdict."""
    from airflow_mlsecops.evidence.models import PipelineContext, Verdict

    changes: dict[str, Any] = {
        "context": PipelineContext("dag", "manual__1", task_id, try_number),
        "verdict": Verdict(verdict),
    }
    if warn_only is not None:
        changes["warn_only"] = warn_only
    return dataclasses.replace(result, **changes)


def gate_result(gate: str, **arguments: Any) -> Any:
    """The GateResult the real gate engine records for these arguments (its ``policy`` is what
    the run-time check reads). The input does not exist, so no engine does real work."""
    if gate == "robustness":
        from airflow_mlsecops.gates.robustness import evaluate_robustness

        kwargs = {"label_column": "y", "epsilon": 0.1, "min_robust_accuracy": 0.8, **arguments}
        return evaluate_robustness("/nonexistent/model", "/nonexistent/data.csv", **kwargs).result
    if gate == "sbom":
        from airflow_mlsecops.gates.sbom import build_and_check_sbom

        return build_and_check_sbom("/nonexistent/model", **arguments).result
    if gate == "model-scan":
        from airflow_mlsecops.gates.model_scan import scan_model

        return scan_model("/nonexistent/model", **arguments).result
    if gate == "drift":
        from airflow_mlsecops.gates.drift import detect_drift

        return detect_drift("/nonexistent/ref.csv", "/nonexistent/cur.csv", html=False, **arguments).result
    from airflow_mlsecops.evidence.models import GateResult, Verdict

    if gate == "model-approval":
        approvers = arguments.pop("approvers", ["alice", "bob"])
        policy = {"required_approvals": 2, "reviewers": ["alice", "bob"], "separation_of_duties": True, **arguments}
        return GateResult.create(
            gate=gate,
            verdict=Verdict.PASSED,
            policy=policy,
            details={"decision": "approved", "approvals": [{"id": a, "name": a} for a in approvers], "model_sha256": "0" * 64},
        )
    return GateResult.create(gate=gate, verdict=Verdict.PASSED, policy=dict(arguments))


def training_evidence(variant: str) -> dict[str, Any]:
    """What the training DAG's gates recorded by the time ``promote_model`` runs (scope -> result)."""
    results = {
        "validate_data": gate_result("data-validation", suite="train"),
        "scan_model": gate_result("model-scan"),
        "sign_model": gate_result("model-provenance", digest="sha256"),
        "register_model": gate_result("model-registration"),
        "approve_model": gate_result(
            "model-approval",
            required_approvals=1 if variant == "quorum_lowered" else 2,
            approvers=["alice"] if variant == "quorum_lowered" else ["alice", "bob"],
        ),
    }
    if variant not in ("gate_missing", "gate_not_upstream"):  # not upstream: it runs after promotion
        results["check_robustness"] = gate_result(
            "robustness", min_robust_accuracy=0.5 if variant == "threshold_loosened" else 0.8
        )
    out = {f"{task}/try-1": recorded(result, task) for task, result in results.items() if task != "approve_model"}
    # The approval task records a request, then a decision (scopes as the recorder names them).
    out["approve_model/try-1.request-1"] = recorded(gate_result("model-approval-request"), "approve_model")
    out["approve_model/try-1.decision-1"] = recorded(results["approve_model"], "approve_model")
    return out
