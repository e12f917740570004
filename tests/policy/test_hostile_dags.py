"""Hostile DAG files, each trying one way around the policy at parse time, judged end to end by both
parse-time enforcement points: ``mlsecops policy check`` (a fresh process, as CI runs it) and the
cluster policy (a real ``DagBag`` in this process). Each asserts the exact violation; compliant
controls beside them show what stays allowed.

The classes (issue 20, items 2 and 3, parse-time half):

* gate operators that are not the package's: a subclass, a class named like one, a class with a
  ``gate_name`` attribute, a class the policy allows that still overrides ``execute()``, a package
  gate class patched by the DAG file;
* trigger rules that run a register or promote task after a failed or skipped gate;
* a gate mapped over a literal empty list;
* rules that select by registered model: a DAG without the rule's tags promoting a governed model,
  and a model name only known at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.policy.conftest import load_dags, write_dag

pytestmark = pytest.mark.slow

POLICY = """\
version: 1
rules:
  - name: production-models
    match: {tags: [production]}
    required_gates:
      promote: [robustness]
    allowed_operators: [hostile_gates.ReviewedGate, hostile_gates.ReviewedGateOwnRun]
  - name: credit-risk
    match: {models: [credit-risk]}
    required_gates:
      promote: [robustness, model-scan]
"""

#: Gate classes a DAG author might write; importable as ``hostile_gates`` (not a DAG file).
HOSTILE_GATES = '''\
"""Gate operator classes written outside airflow-mlsecops."""
from airflow.sdk import BaseOperator

from airflow_mlsecops.evidence.models import GateResult, Verdict
from airflow_mlsecops.gates.base import GateOutcome
import airflow_mlsecops.operators as ours


def _passed():
    return GateOutcome(result=GateResult.create(gate="robustness", verdict=Verdict.PASSED, policy={}))


class LaxGate(ours.RobustnessGateOperator):
    """Signs a pass without judging."""

    def evaluate(self, context, pipeline):
        return _passed()


class ReviewedGate(ours.RobustnessGateOperator):
    """Allowed by name in the policy: changes how the gate judges, nothing else."""

    def evaluate(self, context, pipeline):
        return super().evaluate(context, pipeline)


class ReviewedGateOwnRun(ours.RobustnessGateOperator):
    """Allowed by name, but runs (and records) its own way, and ignores the policy's thresholds."""

    def execute(self, context):
        return {"verdict": "passed"}

    def apply_policy(self, context):
        return None


class RobustnessGateOperator(BaseOperator):
    """Named like the package's gate; no relation to it."""

    def __init__(self, *, model, data, label_column, epsilon, min_robust_accuracy, **kwargs):
        super().__init__(**kwargs)

    def execute(self, context):
        return {"verdict": "passed"}


class QuickRobustness(BaseOperator):
    """Claims a gate name, derives from nothing of the package."""

    gate_name = "robustness"

    def execute(self, context):
        return {"verdict": "passed"}
'''

HEADER = """\
from datetime import datetime
from airflow.sdk import DAG, task
from airflow_mlsecops.operators import (
    ModelScanGateOperator, PromoteModelOperator, RegisterModelOperator, RobustnessGateOperator,
)
"""

ROBUST_ARGS = 'model="/models/m", data="/data/test.csv", label_column="y", epsilon=0.1, min_robust_accuracy=0.8'


def pipeline(
    dag_id: str,
    *,
    gate: str = "RobustnessGateOperator",
    tags: tuple[str, ...] = ("production",),
    name: str = "'fraud'",
    alias: str = "'champion'",
    register_args: str = "",
    promote_args: str = "",
    extra: str = "",
    chain: str = "robust >> register >> promote",
    params: dict[str, Any] | None = None,
) -> str:
    """A DAG that judges a model with ``gate``, registers it and promotes it."""
    imports = "import hostile_gates\n" if gate.startswith("hostile_gates.") else ""
    robust = "" if "robust = " in extra else f'robust = {gate}(task_id="check_robustness", {ROBUST_ARGS})'
    return (
        HEADER
        + imports
        + textwrap.dedent(
            f"""
with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), tags={list(tags)!r}, params={params or {}!r}):
{textwrap.indent(textwrap.dedent(extra).strip(), "    ") if extra.strip() else ""}
    {robust}
    register = RegisterModelOperator(task_id="register_model", model_uri="models:/m-1", name={name}{register_args})
    promote = PromoteModelOperator(task_id="promote_model", name={name}, version="1", alias={alias}{promote_args})
    {chain}
"""
        )
    )


GATE_TAIL = (
    "only the package's gate operators, or ones a policy rule allows by name (allowed_operators), may record gate evidence"
)
TRIGGER_TAIL = (
    "which lets it run after a gate upstream of it failed or was skipped; register and promote tasks, "
    "and every task between a gate and one, must use trigger_rule all_success"
)
TRIGGER_RULES = ("all_done", "none_failed", "none_failed_min_one_success", "one_success", "always")

#: dag id -> (source, the exact violations both enforcement points report).
CASES: dict[str, tuple[str, list[str]]] = {
    # ------------------------------------------------------------------ controls
    "compliant": (pipeline("compliant"), []),
    "reviewed_subclass": (pipeline("reviewed_subclass", gate="hostile_gates.ReviewedGate"), []),
    # ------------------------------------------------------------------ gate classes
    "subclass_gate": (
        pipeline("subclass_gate", gate="hostile_gates.LaxGate"),
        [
            "task check_robustness in DAG subclass_gate uses hostile_gates.LaxGate, a subclass of RobustnessGateOperator"
            f" defined outside airflow-mlsecops; {GATE_TAIL}",
            # a refused gate operator counts as no gate
            "policy rule 'production-models' requires gate robustness upstream of promote_model (PromoteModelOperator)"
            " in DAG subclass_gate",
        ],
    ),
    "named_like_a_gate": (
        pipeline("named_like_a_gate", gate="hostile_gates.RobustnessGateOperator"),
        [
            "task check_robustness in DAG named_like_a_gate uses hostile_gates.RobustnessGateOperator, a class outside"
            f" airflow-mlsecops named like its RobustnessGateOperator; {GATE_TAIL}",
            "policy rule 'production-models' requires gate robustness upstream of promote_model (PromoteModelOperator)"
            " in DAG named_like_a_gate",
        ],
    ),
    "gate_name_only": (  # no operator of the package at all
        "from datetime import datetime\nfrom airflow.sdk import DAG\nimport hostile_gates\n"
        "with DAG(dag_id='gate_name_only', schedule=None, start_date=datetime(2026, 1, 1), tags=['production']):\n"
        "    hostile_gates.QuickRobustness(task_id='check_robustness')\n",
        [
            "task check_robustness in DAG gate_name_only uses hostile_gates.QuickRobustness, a class outside"
            f" airflow-mlsecops with a gate_name attribute like the package's gate operators; {GATE_TAIL}"
        ],
    ),
    "allowed_but_own_run": (
        pipeline("allowed_but_own_run", gate="hostile_gates.ReviewedGateOwnRun"),
        [
            "task check_robustness in DAG allowed_but_own_run uses hostile_gates.ReviewedGateOwnRun, which a policy rule"
            " allows, but it overrides execute() and apply_policy(); an allowed gate operator may change evaluate(),"
            " never how the package runs the gate and records its evidence"
        ],
    ),
    "allowed_by_a_rule_that_does_not_apply": (
        pipeline("allowed_by_a_rule_that_does_not_apply", gate="hostile_gates.ReviewedGate", tags=("staging",)),
        [
            "task check_robustness in DAG allowed_by_a_rule_that_does_not_apply uses hostile_gates.ReviewedGate, a subclass"
            f" of RobustnessGateOperator defined outside airflow-mlsecops; {GATE_TAIL}"
        ],
    ),
    # ------------------------------------------------------------------ trigger rules
    **{
        f"promote_{rule}": (
            pipeline(f"promote_{rule}", promote_args=f", trigger_rule={rule!r}"),
            [f"task promote_model (PromoteModelOperator) in DAG promote_{rule} uses trigger_rule {rule}, {TRIGGER_TAIL}"],
        )
        for rule in TRIGGER_RULES
    },
    "register_all_done": (
        pipeline("register_all_done", register_args=", trigger_rule='all_done'"),
        [f"task register_model (RegisterModelOperator) in DAG register_all_done uses trigger_rule all_done, {TRIGGER_TAIL}"],
    ),
    "handoff_none_failed": (
        pipeline(
            "handoff_none_failed",
            extra="""
            @task(trigger_rule="none_failed")
            def handoff():
                return "models:/m-1"
            """,
            chain="robust >> handoff() >> register >> promote",
        ),
        [
            "task handoff in DAG handoff_none_failed, between a gate and register_model (RegisterModelOperator),"
            f" uses trigger_rule none_failed, {TRIGGER_TAIL}"
        ],
    ),
    "gate_in_skipped_branch": (  # the branch skips the gate; the register task runs anyway
        pipeline(
            "gate_in_skipped_branch",
            register_args=", trigger_rule='none_failed_min_one_success'",
            extra="""
            @task.branch
            def choose():
                return "register_model"
            """,
            chain="choose() >> [robust, register]\n    robust >> register >> promote",
        ),
        [
            "task register_model (RegisterModelOperator) in DAG gate_in_skipped_branch uses trigger_rule"
            f" none_failed_min_one_success, {TRIGGER_TAIL}"
        ],
    ),
    "gate_in_branch_all_success": (  # control: a skipped gate skips promotion with it
        pipeline(
            "gate_in_branch_all_success",
            extra="""
            @task.branch
            def choose():
                return "register_model"
            """,
            chain="choose() >> [robust, register]\n    robust >> register >> promote",
        ),
        [],
    ),
    # ------------------------------------------------------------------ mapped gates
    "mapped_over_nothing": (
        pipeline(
            "mapped_over_nothing",
            extra="""
            robust = RobustnessGateOperator.partial(
                task_id="check_robustness_each", data="/data/test.csv", label_column="y", epsilon=0.1,
                min_robust_accuracy=0.8,
            ).expand(model=[])
            """,
        ),
        [
            "task check_robustness_each in DAG mapped_over_nothing maps gate robustness over an empty literal list for"
            " argument model, so it never runs and judges nothing; expand a gate over the inputs it must judge"
        ],
    ),
    "mapped_over_no_argument_sets": (
        pipeline(
            "mapped_over_no_argument_sets",
            extra="""
            robust = RobustnessGateOperator.partial(
                task_id="check_robustness_each", data="/data/test.csv", label_column="y", epsilon=0.1,
                min_robust_accuracy=0.8,
            ).expand_kwargs([])
            """,
        ),
        [
            "task check_robustness_each in DAG mapped_over_no_argument_sets maps gate robustness over an empty literal"
            " list of argument sets, so it never runs and judges nothing; expand a gate over the inputs it must judge"
        ],
    ),
    "mapped_over_models": (  # control
        pipeline(
            "mapped_over_models",
            extra="""
            robust = RobustnessGateOperator.partial(
                task_id="check_robustness_each", data="/data/test.csv", label_column="y", epsilon=0.1,
                min_robust_accuracy=0.8,
            ).expand(model=["/models/a", "/models/b"])
            """,
        ),
        [],
    ),
    # ------------------------------------------------------------------ rules by model
    "untagged_credit_risk": (
        pipeline("untagged_credit_risk", tags=(), name="'credit-risk'"),
        [
            "policy rule 'credit-risk' requires gate model-scan upstream of promote_model (PromoteModelOperator)"
            " in DAG untagged_credit_risk"
        ],
    ),
    "param_credit_risk": (
        pipeline("param_credit_risk", tags=(), name="'{{ params.model }}'", params={"model": "credit-risk"}),
        [
            "policy rule 'credit-risk' requires gate model-scan upstream of promote_model (PromoteModelOperator)"
            " in DAG param_credit_risk"
        ],
    ),
    "scanned_credit_risk": (  # control: the model's rule applies and is met
        pipeline(
            "scanned_credit_risk",
            tags=(),
            name="'credit-risk'",
            extra='scan = ModelScanGateOperator(task_id="scan_model", path="/models/m")',
            chain="scan >> robust >> register >> promote",
        ),
        [],
    ),
    "model_name_from_xcom": (
        pipeline(
            "model_name_from_xcom",
            tags=(),
            name="pick()",
            alias="'{{ var.value.alias }}'",
            extra="""
            @task
            def pick():
                return "credit-risk"
            """,
        ),
        [
            "task register_model (RegisterModelOperator) in DAG model_name_from_xcom takes its registered model name from"
            " an XCom value, which cannot be checked before the task runs; the policy selects rules by registered model"
            " (match models), so the registered model name must be a literal or a params default",
            "task promote_model (PromoteModelOperator) in DAG model_name_from_xcom takes its registered model name from"
            " an XCom value, which cannot be checked before the task runs; the policy selects rules by registered model"
            " (match models), so the registered model name must be a literal or a params default",
            "task promote_model (PromoteModelOperator) in DAG model_name_from_xcom takes its alias from the template"
            " {{ var.value.alias }}, which cannot be checked before the task runs; the policy selects rules by registered"
            " model (match models), so the alias must be a literal or a params default",
        ],
    ),
}

PREFIX = "AirflowClusterPolicyViolation: "


def _write_library(root: Path) -> Path:
    lib = root / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "hostile_gates.py").write_text(HOSTILE_GATES)
    return lib


def run_policy_check(dags: Path, policy: Path, lib: Path) -> tuple[int, dict[str, Any], str]:
    """``mlsecops policy check DAGS --policy P --json`` in a fresh process, as CI runs it."""
    env = {k: v for k, v in os.environ.items() if k != "MLSECOPS_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(lib), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-m", "airflow_mlsecops.cli", "policy", "check", str(dags), "--policy", str(policy), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def parse_with_cluster_policy(dags: Path, policy: Path, lib: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """A real DagBag of ``dags`` with the mlsecops cluster policy installed and ``policy`` configured."""
    from airflow import settings

    from airflow_mlsecops.policy import cluster_policy as module

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLSECOPS_POLICY", str(policy))
        mp.setenv("MLSECOPS_HOME", str(policy.parent / "mlsecops-home"))
        mp.setattr(module, "_announced", set())
        mp.syspath_prepend(str(lib))
        manager = settings.get_policy_plugin_manager()
        installed = manager.is_registered(module)
        if not installed:
            manager.register(module)
        try:
            return load_dags(dags)
        finally:
            if not installed:
                manager.unregister(module)


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every case judged once by each enforcement point (DAG parsing is slow)."""
    root = tmp_path_factory.mktemp("hostile")
    lib = _write_library(root)
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    dags = root / "dags"
    for dag_id, (source, _) in CASES.items():
        write_dag(dags, dag_id, source)
    code, report, stderr = run_policy_check(dags, policy, lib)
    loaded, errors = parse_with_cluster_policy(dags, policy, lib)
    yield {"code": code, "report": report, "stderr": stderr, "loaded": loaded, "errors": errors}


def assert_judged(judged: dict[str, Any], *dag_ids: str) -> None:
    """Both enforcement points report exactly the case's violations (none for a control)."""
    report = judged["report"]
    assert report["import_errors"] == {}, judged["stderr"][-3000:]
    ci = {d["dag_id"]: [v["message"] for v in d["violations"]] for d in report["dags"]}
    for dag_id in dag_ids:
        expected = CASES[dag_id][1]
        assert ci[dag_id] == expected, dag_id
        if expected:
            assert dag_id not in judged["loaded"], dag_id
            assert judged["errors"][f"{dag_id}.py"] == PREFIX + "; ".join(expected), dag_id
            assert "[" not in judged["errors"][f"{dag_id}.py"]  # Airflow's import error table strips bracketed text
        else:
            assert dag_id in judged["loaded"] and f"{dag_id}.py" not in judged["errors"], dag_id


def test_policy_check_fails_on_the_hostile_dags(judged: dict[str, Any]) -> None:
    assert judged["code"] == 1 and judged["report"]["exit_code"] == 1
    bad = {d["dag_id"] for d in judged["report"]["dags"] if not d["compliant"]}
    assert bad == {dag_id for dag_id, (_, expected) in CASES.items() if expected}


def test_gate_subclasses_and_look_alikes_are_refused_unless_a_rule_allows_them(judged: dict[str, Any]) -> None:
    assert_judged(
        judged,
        "subclass_gate",
        "named_like_a_gate",
        "gate_name_only",
        "allowed_but_own_run",
        "allowed_by_a_rule_that_does_not_apply",
        "reviewed_subclass",
        "compliant",
    )


def test_trigger_rules_that_run_a_step_after_failed_or_skipped_gates_are_refused(judged: dict[str, Any]) -> None:
    assert_judged(
        judged,
        *(f"promote_{rule}" for rule in TRIGGER_RULES),
        "register_all_done",
        "handoff_none_failed",
        "gate_in_skipped_branch",
        "gate_in_branch_all_success",
    )


def test_a_gate_mapped_over_a_literal_empty_list_is_refused(judged: dict[str, Any]) -> None:
    assert_judged(judged, "mapped_over_nothing", "mapped_over_no_argument_sets", "mapped_over_models")


def test_rules_that_govern_a_model_apply_to_any_dag_that_promotes_it(judged: dict[str, Any]) -> None:
    assert_judged(judged, "untagged_credit_risk", "param_credit_risk", "scanned_credit_risk")
    rules = {d["dag_id"]: d["rules"] for d in judged["report"]["dags"]}
    assert rules["untagged_credit_risk"] == rules["scanned_credit_risk"] == ["credit-risk"]
    assert rules["compliant"] == ["production-models"]


def test_a_model_name_known_only_at_run_time_is_refused_when_the_policy_governs_models(judged: dict[str, Any]) -> None:
    assert_judged(judged, "model_name_from_xcom")


def test_a_dag_that_patches_a_package_gate_is_refused(tmp_path: Path) -> None:
    """The DAG file replaces ``RobustnessGateOperator.evaluate`` and then uses the real class."""
    from airflow_mlsecops.operators import RobustnessGateOperator

    lib = _write_library(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    dags = tmp_path / "dags"
    source = pipeline("patched_gate").replace(
        "\nwith DAG(",
        "\nimport hostile_gates\nRobustnessGateOperator.evaluate = hostile_gates.LaxGate.evaluate\n\nwith DAG(",
        1,
    )
    write_dag(dags, "patched_gate", source)
    expected = [
        "task check_robustness in DAG patched_gate uses RobustnessGateOperator, whose code was replaced from outside"
        " airflow-mlsecops (RobustnessGateOperator.evaluate); a DAG file may not change the package's gate operators"
    ]
    code, report, stderr = run_policy_check(dags, policy, lib)
    assert code == 1 and report["import_errors"] == {}, stderr[-3000:]
    assert [v["message"] for v in report["dags"][0]["violations"]] == expected
    original = RobustnessGateOperator.__dict__["evaluate"]
    try:
        loaded, errors = parse_with_cluster_policy(dags, policy, lib)
    finally:
        RobustnessGateOperator.evaluate = original  # type: ignore[method-assign]
    assert loaded == {} and errors == {"patched_gate.py": PREFIX + expected[0]}


def test_the_engine_helpers_select_rules_by_model_too() -> None:
    """What operators ask at run time (required gates, thresholds, defaults) follows the model's rule."""
    from airflow_mlsecops.policy.engine import policy_defaults, policy_requirements, required_gates
    from airflow_mlsecops.policy.model import parse_policy

    policy = parse_policy(
        POLICY + "    thresholds:\n      robustness: {min_robust_accuracy: 0.9}\n    approval: {required_approvals: 2}\n"
    )
    credit = [("credit-risk", "champion")]
    assert required_gates(policy, "any_dag") == []
    assert required_gates(policy, "any_dag", models=credit) == ["robustness", "model-scan", "model-approval"]
    assert required_gates(policy, "any_dag", step="register", models=[("credit-risk", None)]) == []
    assert policy_requirements(policy, "robustness", "any_dag", models=credit)["min_robust_accuracy"] == ("min", 0.9)
    assert policy_defaults(policy, "model-promotion", "any_dag", models=credit).get("required_approvals") == 2
    assert "required_approvals" not in policy_defaults(policy, "model-promotion", "any_dag", models=[("fraud", "champion")])
