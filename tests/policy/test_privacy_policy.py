"""The policy's privacy parts: the sensitive_data section and the membership-inference and
training-privacy thresholds (stricter wins, at parse time and at run time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlsecops.exceptions import PolicyError
from airflow_mlsecops.policy.model import load_policy, parse_policy
from tests.conftest import REPO_ROOT

BASE = """\
version: 1
rules:
  - name: all
    match: {dag_id_pattern: ".*"}
    thresholds:
      membership-inference: {max_attack_auc: 0.6, max_advantage: 0.1, min_samples: 500}
      training-privacy: {max_epsilon: 8}
  - name: prod
    match: {tags: [production]}
    thresholds:
      membership-inference: {max_attack_auc: 0.55}
"""
SENSITIVE = """\
sensitive_data:
  - name: customer-loans
    match: ["*/loans*.csv", "s3://bank-data/loans/*"]
    evidence:
      epsilon_per_release: 0.5
      delta: 0
      total_epsilon: 10
    training:
      max_epsilon: 8
      max_delta: 1.0e-5
  - name: by-digest
    match: sha256:{digest}
    training: {{max_epsilon: 2}}
""".format(digest="c" * 64)


def issues(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml")
    return [i.render("p.yaml") for i in info.value.issues]


def test_the_sensitive_data_section_is_parsed_into_the_policy() -> None:
    from airflow_mlsecops.privacy.sensitive import sensitive_data_for

    policy = parse_policy(BASE + SENSITIVE)
    loans, digest = policy.sensitive_data
    assert loans.name == "customer-loans" and loans.match == ("*/loans*.csv", "s3://bank-data/loans/*")
    assert loans.evidence is not None and loans.evidence.total_epsilon == 10
    assert loans.training is not None and loans.training.max_delta == 1e-5
    assert digest.match == (f"sha256:{'c' * 64}",)
    found = sensitive_data_for(policy.sensitive_data, ["/data/loans.csv"], ["c" * 64])
    assert found is not None and found.training is not None and found.training.max_epsilon == 2  # strictest of both
    assert policy.to_dict()["sensitive_data"][0]["name"] == "customer-loans"
    assert parse_policy(BASE).sensitive_data == ()


def test_a_broken_sensitive_data_entry_names_its_line() -> None:
    text = BASE + "sensitive_data:\n  - name: a\n    match: ['*.csv']\n    evidence: {epsilon_per_release: 2, total_epsilon: 1}\n"
    assert issues(text) == [
        "p.yaml:13: /sensitive_data/0: sensitive_data[0].evidence.total_epsilon (1.0) is smaller than one release (2.0)"
    ]
    unknown = BASE + "sensitive_data:\n  - name: a\n    match: ['*.csv']\n    training: {epsilon: 1}\n"
    assert any("/sensitive_data/0/training" in i for i in issues(unknown))
    negative = BASE + "sensitive_data:\n  - name: a\n    match: ['*.csv']\n    training: {max_epsilon: 0}\n"
    assert any("/sensitive_data/0/training/max_epsilon" in i for i in issues(negative))
    twice = BASE + "sensitive_data:\n  - {name: a, match: x}\n  - {name: a, match: y}\n"
    assert issues(twice) == ["p.yaml:14: /sensitive_data/1/name: duplicate sensitive_data name 'a'"]


def test_membership_thresholds_are_checked_by_the_schema() -> None:
    bad = BASE.replace("max_attack_auc: 0.6,", "max_attack_auc: 0.4,")
    assert any("/rules/0/thresholds/membership-inference/max_attack_auc" in i for i in issues(bad))
    unknown = BASE.replace("min_samples: 500", "min_rows: 500")
    assert any("unknown threshold 'min_rows' for gate membership-inference" in i for i in issues(unknown))


def test_the_stricter_threshold_wins_when_rules_add_up() -> None:
    from airflow_mlsecops.policy.engine import policy_requirements

    policy = parse_policy(BASE)
    plain = policy_requirements(policy, "membership-inference", "d", (), "")
    production = policy_requirements(policy, "membership-inference", "d", ("production",), "")
    assert plain["max_attack_auc"] == ("max", 0.6) and production["max_attack_auc"] == ("max", 0.55)
    assert production["min_samples"] == ("min", 500)
    assert production["attacks"] == ("superset", ("loss", "confidence"))  # the product's default bound
    assert policy_requirements(policy, "training-privacy", "d", (), "")["max_epsilon"] == ("max", 8)


def test_a_dag_weaker_than_the_policy_is_a_violation() -> None:
    from airflow_mlsecops.policy.engine import DagInfo, TaskInfo, evaluate
    from airflow_mlsecops.policy.parameters import gate_arguments

    def violations(**arguments: object) -> list[str]:
        values = {"max_attack_auc": 0.6, "max_advantage": 0.1, "min_samples": 500, "trust_pickle": False, "attacks": None}
        values.update(arguments)
        task = TaskInfo(
            "mia",
            "MembershipInferenceGateOperator",
            "membership-inference",
            arguments=gate_arguments("membership-inference", values.get),
        )
        return [
            v.message for v in evaluate(parse_policy(BASE), DagInfo("d", (task,), tags=("production",))) if v.kind == "threshold"
        ]

    assert violations(max_attack_auc=0.55) == []
    expected = "policy rule 'prod' requires max_attack_auc of gate membership-inference to be at most 0.55"
    assert violations() == [f"{expected}, but task mia in DAG d sets 0.6"]
    weak = violations(max_attack_auc=0.55, min_samples=100, attacks=["loss"], max_advantage=0.3)
    named = {(m.split("'")[1], m.split(" requires ")[1].split(" of gate ")[0]) for m in weak}
    assert {("all", "min_samples"), ("all", "max_advantage"), ("prod", "attacks")} <= named


def test_the_example_policy_requires_membership_inference_for_the_champion_and_the_helm_copy_matches() -> None:
    import yaml

    path = REPO_ROOT / "policy" / "mlsecops-policy.yaml"
    policy = load_policy(path)
    production = next(r for r in policy.rules if r.name == "production-models")
    assert "membership-inference" in production.promote_gates
    assert [e.name for e in policy.sensitive_data] == ["customer-loans"]
    values = yaml.safe_load(Path(REPO_ROOT / "helm" / "airflow-mlsecops" / "values.yaml").read_text())
    assert yaml.safe_load(values["policy"]["content"]) == yaml.safe_load(path.read_text())
