"""The policy file: schema, loader, line numbers in every error, digest, where the file is found."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import pytest

from airflow_mlsecops.policy.model import (
    APPROVAL_KINDS,
    GATE_NAMES,
    THRESHOLD_KINDS,
    PolicyError,
    configured_policy_path,
    load_configured_policy,
    load_policy,
    parse_policy,
    policy_digest,
    schema,
)
from tests.conftest import REPO_ROOT
from tests.policy.conftest import POLICY


def issues(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml")
    assert str(info.value) == "; ".join(i.render("p.yaml") for i in info.value.issues)
    return [i.render("p.yaml") for i in info.value.issues]


def test_the_test_policy_loads_into_a_frozen_model(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    (rule,) = policy.rules
    assert rule.name == "production-models" and rule.line == 3
    assert rule.match.tags == ("production",)
    assert rule.register_gates == ("model-scan", "model-provenance")
    assert rule.gates_for("promote") == ("model-scan", "robustness", "model-provenance", "data-validation", "model-approval")
    assert rule.thresholds["sbom"]["fail_on"] == ("critical", "high", "unknown")
    assert rule.approval.required_approvals == 2 and rule.approval.reviewers == ("alice", "bob", "carol")
    assert policy.digest == hashlib.sha256(policy_file.read_bytes()).hexdigest() == policy_digest(policy_file)
    with pytest.raises(AttributeError):
        rule.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rule.thresholds["robustness"]["min_robust_accuracy"] = 0.1  # type: ignore[index]
    assert load_policy(policy_file) is policy  # same bytes: not parsed again
    policy_file.write_text(POLICY.replace("0.7", "0.75"))
    assert load_policy(policy_file).rules[0].thresholds["robustness"]["min_robust_accuracy"] == 0.75


def test_the_example_policy_is_valid_against_the_published_schema() -> None:
    import yaml
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    path = REPO_ROOT / "policy" / "mlsecops-policy.yaml"
    Draft202012Validator(schema()).validate(yaml.safe_load(path.read_text()))
    assert [r.name for r in load_policy(path).rules] == ["all-models", "production-models"]


def test_schema_names_every_gate_and_threshold_of_the_model() -> None:
    spec = schema()
    rule = spec["$defs"]["rule"]["properties"]
    assert spec["$defs"]["gate_list"]["items"]["enum"] == list(GATE_NAMES)
    thresholds = rule["thresholds"]["properties"]
    assert {g: set(p["properties"]) for g, p in thresholds.items()} == {g: set(k) for g, k in THRESHOLD_KINDS.items()}
    assert set(rule["approval"]["properties"]) == set(APPROVAL_KINDS)


def test_every_threshold_is_a_real_operator_argument() -> None:
    from airflow_mlsecops import operators
    from airflow_mlsecops.gates.data_integrity import IntegrityThresholds
    from airflow_mlsecops.policy.parameters import DERIVED_PARAMETERS

    by_gate = {}
    for name in operators.__all__:
        cls = getattr(operators, name)
        gate = getattr(cls, "gate_name", None)
        if isinstance(gate, str):
            by_gate[gate] = cls
    for gate, names in THRESHOLD_KINDS.items():
        if gate == "data-integrity":
            known = set(IntegrityThresholds.__dataclass_fields__)
        else:
            known = set(inspect.signature(by_gate[gate].__init__).parameters)
        known |= set(DERIVED_PARAMETERS.get(gate, {}))  # e.g. compare_all_columns: from columns
        assert set(names) <= known, (gate, set(names) - known)
    approval = set(inspect.signature(operators.ModelApprovalGateOperator.__init__).parameters)
    assert set(APPROVAL_KINDS) <= approval
    assert "required_approvals" in inspect.signature(operators.PromoteModelOperator.__init__).parameters
    for cls in (operators.ProvenanceVerifyOperator, operators.ModelVerifyOperator):
        assert "public_keys" in inspect.signature(cls.__init__).parameters


BROKEN = """\
version: 1
rules:
  - name: prod
    match: {tags: [production]}
    required_gates:
      promote: [robustnes, sbom]
    thresholds:
      robustness:
        min_robust_accuracy: high
        max_acc: 0.1
      dataset-provenance: {suite: x}
      pii: {types: [email]}
      sbom: {fail_on: [critical, severe]}
    approval:
      required_approvals: 3
      required_approvals: 2
  - name: other
    match: {}
    bogus: 1
"""


def test_every_error_names_its_line() -> None:
    gates = ", ".join(GATE_NAMES)
    with_thresholds = ", ".join(THRESHOLD_KINDS)
    assert issues(BROKEN) == [
        f"p.yaml:6: /rules/0/required_gates/promote/0: unknown gate name 'robustnes'; known gates: {gates}",
        "p.yaml:9: /rules/0/thresholds/robustness/min_robust_accuracy: must be a number, not text ('high')",
        "p.yaml:10: /rules/0/thresholds/robustness/max_acc: unknown threshold 'max_acc' for gate robustness; known: "
        "min_robust_accuracy, max_accuracy_drop, epsilon, allow_bounds, norm, epsilon_scale, max_samples, attack_max_samples,"
        " trust_pickle, method",
        "p.yaml:11: /rules/0/thresholds/dataset-provenance: gate 'dataset-provenance' has no thresholds;"
        f" gates with thresholds: {with_thresholds}",
        f"p.yaml:12: /rules/0/thresholds/pii: gate 'pii' is an unknown gate name; gates with thresholds: {with_thresholds}",
        "p.yaml:13: /rules/0/thresholds/sbom/fail_on/1: 'severe' is not one of: critical, high, medium, low, unknown",
        "p.yaml:16: /rules/0/approval/required_approvals: duplicate key 'required_approvals' (first on line 15); "
        "a policy must say things once",
        "p.yaml:18: /rules/1/match: match needs at least one of tags, owners, dag_id_pattern, models (use"
        " dag_id_pattern: '.*' for every DAG)",
        "p.yaml:19: /rules/1/bogus: unknown key 'bogus'; expected one of: name, description, match, required_gates, "
        "thresholds, approval, trusted_keys, allowed_operators, accept_warned",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "p.yaml:1: the policy file is empty; it needs version: 1 and at least one rule"),
        ("# only a comment\n", "p.yaml:1: the policy file is empty; it needs version: 1 and at least one rule"),
        ("version: 1\nrules: []\n", "p.yaml:2: /rules: the policy has no rules: an empty rule set enforces nothing"),
        ("version: 1\n", "p.yaml:1: missing required key 'rules'"),
        ("- a\n- b\n", "p.yaml:1: must be a mapping, not a list (('a', 'b'))"),
        (
            "version: 2\nrules:\n  - name: x\n    match: {tags: [a]}\n    thresholds: {drift: {drift_share: 0.5}}\n",
            "p.yaml:1: /version: unsupported policy version 2; this release reads version 1",
        ),
        ("version: 1\nrules:\n  - name: x\n    match: {tags: [a]\n", "p.yaml:5: not valid YAML: while parsing a flow mapping"),
        (
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n",
            "p.yaml:3: /rules/0: rule 'x' requires nothing: give it required_gates, thresholds, approval or trusted_keys",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    match: {dag_id_pattern: '('}\n    thresholds: {drift: {drift_share: 0.5}}\n",
            "p.yaml:4: /rules/0/match/dag_id_pattern: dag_id_pattern is not a valid regular expression",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    thresholds: {drift: {drift_share: 1.5}}\n",
            "p.yaml:5: /rules/0/thresholds/drift/drift_share: must be <= 1, not 1.5",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    required_gates: {promote: []}\n",
            "p.yaml:5: /rules/0/required_gates/promote: must not be an empty list (leave the key out instead)",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    approval: {required_approvals: yes}\n",
            "p.yaml:5: /rules/0/approval/required_approvals: must be a whole number, not true/false (true)",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    approval: {required_approvals: 3, reviewers: [a, b]}\n",
            "p.yaml:5: /rules/0/approval/required_approvals: required_approvals is 3 but the reviewer group has only 2 member(s)",
        ),
        (
            "version: 1\nrules:\n  - name: 'x [prod]'\n    match: {tags: [a]}\n    thresholds: {drift: {drift_share: 0.5}}\n",
            "p.yaml:3: /rules/0/name: rule name 'x [prod]' must start with a letter or digit",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    thresholds: {drift: {drift_share: 0.5}}\n"
            "  - name: x\n    match: {tags: [b]}\n    thresholds: {drift: {drift_share: 0.4}}\n",
            "p.yaml:6: /rules/1/name: duplicate rule name 'x' (first on line 3)",
        ),
        ("version: 1\n1: x\nrules:\n  - name: x\n    match: {tags: [a]}\n", "p.yaml:2: key '1' must be text (quote it)"),
        (  # NaN meets every bound of the schema (each comparison is false), then would judge by its direction
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    thresholds: {drift: {drift_share: .nan}}\n",
            "p.yaml:5: /rules/0/thresholds/drift/drift_share: must be a number, not NaN",
        ),
        (
            "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    thresholds: {sbom: {fail_on: [high, .NaN]}}\n",
            "p.yaml:5: /rules/0/thresholds/sbom/fail_on/1: must be a number, not NaN",
        ),
    ],
)
def test_clear_errors(text: str, expected: str) -> None:
    found = issues(text)
    assert any(message.startswith(expected) for message in found), found


def test_an_unreadable_file_is_an_error_not_an_empty_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nowhere.yaml:1: cannot read the policy file"):
        load_policy(tmp_path / "nowhere.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(tmp_path / "bin.yaml")


def test_trusted_keys_are_resolved_next_to_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    trusted_keys: [keys/a.pem, /abs/b.pem]\n")
    assert load_policy(path).rules[0].trusted_keys == (str(tmp_path / "keys" / "a.pem"), "/abs/b.pem")


def test_where_the_policy_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("MLSECOPS_HOME", str(home))
    monkeypatch.delenv("MLSECOPS_POLICY", raising=False)
    monkeypatch.delenv("AIRFLOW__MLSECOPS__POLICY_FILE", raising=False)
    assert configured_policy_path() is None and load_configured_policy() is None and policy_digest() is None
    home.mkdir()
    (home / "policy.yaml").write_text(POLICY)
    assert configured_policy_path() == home / "policy.yaml"
    assert policy_digest() == hashlib.sha256(POLICY.encode()).hexdigest()
    monkeypatch.setenv("MLSECOPS_POLICY", str(tmp_path / "explicit.yaml"))
    assert configured_policy_path() == tmp_path / "explicit.yaml"  # configured, even though missing
    with pytest.raises(PolicyError, match="cannot read"):
        load_configured_policy()
    monkeypatch.setenv("AIRFLOW__MLSECOPS__POLICY_FILE", str(tmp_path / "from-airflow.yaml"))
    import airflow.configuration  # noqa: F401 - the DAG processor and tasks have it loaded

    assert configured_policy_path() == tmp_path / "from-airflow.yaml"  # [mlsecops] policy_file beats MLSECOPS_POLICY
    assert configured_policy_path(env={"MLSECOPS_POLICY": str(tmp_path / "explicit.yaml")}) == tmp_path / "explicit.yaml"


def test_policy_to_dict_is_json(policy_file: Path) -> None:
    data = json.loads(json.dumps(load_policy(policy_file).to_dict()))
    assert data["rules"][0]["thresholds"]["sbom"]["fail_on"] == ["critical", "high", "unknown"]


def test_accept_warned_names_gates_with_an_incomplete_verdict() -> None:
    base = "version: 1\nrules:\n  - name: x\n    match: {tags: [a]}\n    required_gates: {promote: [sbom]}\n"
    policy = parse_policy(base + "    accept_warned: [sbom]\n", source="p.yaml")
    assert policy.rules[0].accept_warned == ("sbom",) and policy.rules[0].to_dict()["accept_warned"] == ["sbom"]
    assert parse_policy(base, source="p.yaml").rules[0].accept_warned == ()  # default: nothing accepted
    unknown = issues(base + "    accept_warned: [sbomm]\n")
    assert any(m.startswith("p.yaml:6: /rules/0/accept_warned/0:") for m in unknown), unknown
    (approval,) = issues(base + "    accept_warned: [model-approval]\n")
    assert approval == "p.yaml:6: /rules/0/accept_warned/0: model-approval has no incomplete verdict to accept"
    assert any("/rules/0/accept_warned" in m for m in issues(base + "    accept_warned: []\n"))
