"""Rules that match what is protected, not what the DAG says about itself (issue 20, class 3).

A DAG chooses its own id, tags and owners: a rule selected only by them is escaped by a DAG
without the ``production-model`` tag that promotes ``credit-risk@champion``. A rule with
``match.models`` (and ``aliases``) applies to every promotion of that model to that alias,
judged at promotion time with the name and alias being set in the registry.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.policy.model import parse_policy
from tests.helpers import run_dag_states
from tests.operators.test_registry_operators import GATES, HEADER, _dag_source, _training_data

POLICY = """\
version: 1
rules:
  - name: production-models
    match: {tags: [production-model]}
    required_gates:
      promote: [model-scan]
  - name: credit-risk-champion
    match:
      models: [credit-*]
      aliases: [champion]
    required_gates:
      promote: [model-scan, robustness, pii-scan]
"""


def test_model_rules_select_by_name_and_alias_whatever_the_dag_says() -> None:
    policy = parse_policy(POLICY)
    names = lambda **kw: [r.name for r in policy.matching("any_dag", **kw)]  # noqa: E731
    assert names(tags=["production-model"]) == ["production-models"]
    assert names() == []
    assert names(models=[("credit-risk", "champion")]) == ["credit-risk-champion"]
    assert names(models=[("credit-risk", None)]) == ["credit-risk-champion"]  # registering it
    assert names(models=[("credit-risk", "challenger")]) == []
    assert names(models=[("fraud", "champion")]) == []


def test_an_alias_rule_without_models_is_refused() -> None:
    from airflow_mlsecops.exceptions import PolicyError

    with pytest.raises(PolicyError, match="aliases needs models"):
        parse_policy(POLICY.replace("      models: [credit-*]\n", "      tags: [x]\n"))


@pytest.mark.airflow
def test_an_untagged_dag_cannot_promote_a_protected_model(
    airflow_db: Path, home: Settings, tmp_path: Path, write_dag, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    data, suite = _training_data(tmp_path)
    dag_id = f"untagged_promoter_{uuid.uuid4().hex[:6]}"
    from airflow_mlsecops.policy.cluster_policy import suspended

    with suspended():  # as if the DAG had escaped the parse-time check: promotion judges again
        _, states = run_dag_states(write_dag(dag_id, _dag_source(data, suite, "credit-risk", GATES), header=HEADER))
    assert states["register_model"] == "success" and states["promote_model"] == "failed", states
    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    assert store.client.get_registered_model("credit-risk").aliases == {}
    from tests.helpers import pipeline_run_id

    tags = store.run_tags(pipeline_run_id(store, dag_id))
    assert tags["mlsecops.gate.promote_model.verdict"] == "failed"
    from airflow_mlsecops.lifecycle.verification import verify_run

    report = verify_run(pipeline_run_id(store, dag_id), settings=home)
    (refusal,) = [r for r in report.results.values() if r.gate == "model-promotion"]
    assert "gate:pii-scan" in refusal.details["failed_checks"]
    assert "policy rule 'credit-risk-champion' requires gate pii-scan" in refusal.summary
