"""DP evidence in real gate tasks (``dag.test()``): a policy marks one batch sensitive; its recorded, signed
evidence holds noised statistics and the ``dp_release`` record, the verdict exact; another batch keeps its
exact statistics; the budget in the ledger database runs out and later releases are withheld."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import credit_frame
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.privacy.budget import BudgetLedger, dataset_key
from tests.helpers import pipeline_run_id, run_dag, unique_dag_id

HEADER = "from airflow_mlsecops.operators import PIIScanGateOperator"
POLICY = """\
version: 1
rules:
  - name: production only
    match: {tags: [production]}
    required_gates:
      register: [data-validation]
sensitive_data:
  - name: customer-loans
    match: ["*/loans-*.csv"]
    evidence: {epsilon_per_release: 1.0, total_epsilon: 2.0, delta: 0}
"""


@pytest.fixture
def batches(tmp_path: Path) -> dict[str, str]:
    frame = credit_frame(rows=600, seed=5)
    frame["email"] = [f"c{i}@bank.example" if i % 20 == 0 else "" for i in range(len(frame))]
    paths = {"loans": tmp_path / "loans-2026-12.csv", "public": tmp_path / "public-iris.csv"}
    for path in paths.values():
        frame.to_csv(path, index=False)
    return {k: str(v) for k, v in paths.items()}


def _result(store: MLflowEvidenceStore, run_id: str, task: str, dst: Path) -> tuple[dict[str, Any], list[str]]:
    local = store.download_dir(run_id, f"mlsecops/evidence/{task}/try-1", dst / task)
    return json.loads((local / "result.json").read_text()), sorted(p.name for p in local.rglob("*") if p.is_file())


@pytest.mark.airflow
@pytest.mark.slow
def test_sensitive_batch_evidence_is_noised_the_other_exact_and_the_budget_runs_out(
    airflow_db, home: Settings, batches: dict[str, str], write_dag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    dag_id = unique_dag_id("dp_evidence")
    # three releases about the sensitive batch (budget: two), one about a batch the policy does not name
    dag = write_dag(
        dag_id,
        f"""
first = PIIScanGateOperator(task_id="loans_1", data={batches["loans"]!r}, allow_columns=["email"])
second = PIIScanGateOperator(task_id="loans_2", data={batches["loans"]!r}, allow_columns=["email"])
third = PIIScanGateOperator(task_id="loans_3", data={batches["loans"]!r}, allow_columns=["email"])
PIIScanGateOperator(task_id="public", data={batches["public"]!r}, allow_columns=["email"])
first >> second >> third
""",
        header=HEADER,
    )
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "success", {t: str(ti.state) for t, ti in tis.items()}
    run_id = pipeline_run_id(home, dag_id)
    report = verify_run(run_id, settings=home)
    assert report.ok, [c.to_dict() for c in report.failures]  # the released evidence is what was signed
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)

    exact, exact_files = _result(store, run_id, "public", tmp_path)
    assert exact["verdict"] == "passed" and exact["metrics"]["rows_scanned"] == 600.0
    assert "dp_release" not in exact["details"] and "pii_report.json" in exact_files
    assert "30 of 600" in json.dumps(exact["findings"])

    first, first_files = _result(store, run_id, "loans_1", tmp_path)
    assert first["verdict"] == exact["verdict"] == "passed"
    assert [(f["id"], f["passed"]) for f in first["findings"]] == [(f["id"], f["passed"]) for f in exact["findings"]]
    assert "pii_report.json" not in first_files and "30 of 600" not in json.dumps(first)
    record = first["details"]["dp_release"]
    assert record["epsilon"] == 1.0 and record["delta"] == 0.0 and record["library"].startswith("opendp ")
    assert record["sensitive_data"] == "customer-loans"
    digest = first["subjects"][0]["digest"]["sha256"]
    key = dataset_key("customer-loans", digest)
    assert record["budget"] == {"spent": 1.0, "total": 2.0, "dataset": key}
    released = {f["field"] for f in record["fields"]}
    assert {"metrics/rows_scanned", "metrics/rows_total", "details/pii_counts"} <= released
    assert isinstance(first["details"]["pii_counts"]["email"]["email"], int)
    assert "files/pii_report.json" in record["withheld"]

    second, _ = _result(store, run_id, "loans_2", tmp_path)
    assert second["details"]["dp_release"]["budget"]["spent"] == 2.0
    third, _ = _result(store, run_id, "loans_3", tmp_path)
    assert third["verdict"] == "passed"
    assert third["details"]["dp_release"]["refused"] == "budget exhausted: 2.0 of 2.0 spent"
    assert "rows_scanned" not in third["metrics"] and "pii_counts" not in third["details"]
    assert BudgetLedger(home.ledger_url).spent(key) == 2.0


@pytest.mark.airflow
@pytest.mark.slow
def test_a_rejection_stays_a_rejection_when_its_statistics_are_released(
    airflow_db, home: Settings, batches: dict[str, str], write_dag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    dag_id = unique_dag_id("dp_evidence_reject")
    dag = write_dag(dag_id, f"PIIScanGateOperator(task_id='loans', data={batches['loans']!r})", header=HEADER)
    dag_run, tis = run_dag(dag)
    assert dag_run.state == "failed" and str(tis["loans"].state) == "failed" and tis["loans"].try_number == 1
    run_id = pipeline_run_id(home, dag_id)
    assert verify_run(run_id, settings=home).ok
    result, _ = _result(MLflowEvidenceStore(home.tracking_uri, home.artifact_root), run_id, "loans", tmp_path)
    assert result["verdict"] == "failed" and [f["id"] for f in result["findings"] if not f["passed"]] == ["pii.email"]
    assert result["details"]["dp_release"]["epsilon"] == 1.0
    assert "30 of 600" not in json.dumps(result)
