"""The issue's acceptance tests: the example DAGs comply, and each non-compliant DAG (gate missing,
gate not upstream of promote, threshold loosened, approval quorum lowered) is rejected by all three
enforcement points (cluster policy at parse, ``mlsecops policy check``, the run-time check at
promotion) with the same message."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest

from airflow_mlsecops.cli.policy import add_policy_parser
from airflow_mlsecops.policy.model import PolicyError
from airflow_mlsecops.policy.runtime import check_evidence_against_policy
from tests.conftest import REPO_ROOT
from tests.policy.conftest import (
    HEADER,
    VARIANTS,
    dag_id_of,
    expected_messages,
    load_dags,
    training_dag_source,
    training_evidence,
    write_dag,
)

EXAMPLE_POLICY = REPO_ROOT / "policy" / "mlsecops-policy.yaml"
PREFIX = "AirflowClusterPolicyViolation: "


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``mlsecops policy ...`` in this process (Airflow's log lines may be mixed into ``out``)."""
    parser = argparse.ArgumentParser(prog="mlsecops")
    add_policy_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = int(args.func(args))
    out, err = capsys.readouterr()
    return code, out, err


_RUNNER = (
    "import argparse, sys\n"
    "from airflow_mlsecops.cli.policy import add_policy_parser\n"
    "parser = argparse.ArgumentParser(prog='mlsecops')\n"
    "add_policy_parser(parser.add_subparsers(dest='command', required=True))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


def run_cli_process(argv: list[str]) -> tuple[int, str, str]:
    """Run ``mlsecops policy ...`` as CI does: a fresh process, without a running Airflow."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLSECOPS_POLICY"}
    done = subprocess.run([sys.executable, "-c", _RUNNER, *argv], capture_output=True, text=True, env=env, timeout=180)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def variant_dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    for variant in VARIANTS:
        write_dag(folder, dag_id_of(variant), training_dag_source(variant))
    return folder


@pytest.mark.slow
def test_each_enforcement_point_gives_the_same_verdict(
    variant_dags: Path, policy_file: Path, cluster_policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1. DAG parse: the cluster policy turns each non-compliant DAG into an import error.
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy_file))
    dags, errors = load_dags(variant_dags)
    assert set(dags) == {dag_id_of("compliant")}
    parse = {name.removesuffix(".py"): error for name, error in errors.items()}
    # 2. CI: mlsecops policy check, with this package's cluster policy out of the way.
    code, out, err = run_cli_process(["policy", "check", "--policy", str(policy_file), str(variant_dags), "--json"])
    report = json.loads(out)  # stdout is exactly one JSON object
    assert code == 1 and report["exit_code"] == 1 and report["import_errors"] == {}, err[-2000:]
    ci = {d["dag_id"]: [v["message"] for v in d["violations"]] for d in report["dags"]}

    for variant in VARIANTS:
        dag_id, expected = dag_id_of(variant), expected_messages(variant)
        # 3. Run time: the evidence recorded by the time promote_model runs.
        runtime = [
            v.message
            for v in check_evidence_against_policy(
                training_evidence(variant),
                dag_id=dag_id,
                tags=["production"],
                owner="airflow",
                policy=policy_file,
                task_id="promote_model",
                required_approvals=2,
            )
        ]
        assert ci[dag_id] == expected, variant
        if variant == "compliant":
            assert dag_id not in parse
            assert runtime == []
            continue
        assert parse[dag_id] == PREFIX + "; ".join(expected), variant
        assert "[" not in parse[dag_id] and "]" not in parse[dag_id]  # Airflow's CLI table strips bracketed text
        if variant == "quorum_lowered":  # run time also sees that only one person approved
            assert runtime == [
                *expected,
                f"policy rule 'production-models' requires 2 distinct approvals before promote_model"
                f" (PromoteModelOperator) in DAG {dag_id}, but task approve_model recorded 1",
            ]
        else:
            assert runtime == expected, variant


def test_text_report_of_policy_check(variant_dags: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["policy", "check", "--policy", str(policy_file), str(variant_dags)], capsys)
    assert code == 1
    assert f"  ok         {dag_id_of('compliant')}" in out
    assert f"  VIOLATION  {dag_id_of('threshold_loosened')}" in out
    assert "      - " + expected_messages("threshold_loosened")[0] in out
    assert out.strip().endswith("NOT COMPLIANT: 5 DAG(s): 1 compliant, 4 with violations")


def test_dags_outside_the_rules_are_not_judged(tmp_path: Path, policy_file: Path, cluster_policy, monkeypatch) -> None:
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy_file))
    folder = tmp_path / "dags"
    write_dag(folder, "staging", training_dag_source("gate_missing", tags=("staging",)).replace("credit_gate_missing", "staging"))
    dags, errors = load_dags(folder)
    assert errors == {} and set(dags) == {"staging"}


@pytest.mark.slow
def test_example_dags_comply_with_the_example_policy(cluster_policy, monkeypatch) -> None:
    dags_dir = REPO_ROOT / "dags"
    monkeypatch.setenv("MLSECOPS_POLICY", str(EXAMPLE_POLICY))
    dags, errors = load_dags(dags_dir)
    assert errors == {}
    assert "secure_training_pipeline" in dags
    code, out, _err = run_cli_process(["policy", "check", "--policy", str(EXAMPLE_POLICY), str(dags_dir), "--json"])
    report = json.loads(out)
    assert code == 0, [d["violations"] for d in report["dags"] if not d["compliant"]]
    assert report["ok"] and {d["dag_id"] for d in report["dags"]} >= {"secure_training_pipeline"}


# ----------------------------------------------------------------------------- fail closed
BROKEN = """\
version: 1
rules:
  - name: production-models
    match: {tags: [production]}
    required_gatez: {promote: [robustness]}
    approval: {reviewers: [[alice]]}
"""


def test_a_broken_policy_rejects_every_dag_that_registers_or_promotes(
    tmp_path: Path, cluster_policy, monkeypatch, capsys
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    monkeypatch.setenv("MLSECOPS_POLICY", str(broken))
    folder = tmp_path / "dags"
    write_dag(folder, "trains", training_dag_source("compliant", tags=("anything",)))
    write_dag(
        folder,
        "monitors",
        HEADER + 'with DAG(dag_id="monitors", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
        '    DriftMonitorOperator(task_id="drift", reference="/r.csv", current="/c.csv")\n',
    )
    dags, errors = load_dags(folder)
    assert set(dags) == {"monitors"}  # no register/promote step: loads (the error is logged)
    message = errors["trains.py"]
    assert message.startswith(
        f"{PREFIX}the mlsecops policy {broken} is broken, so DAG credit_compliant, which registers or promotes a model,"
        " is rejected until the policy is fixed (fail closed): "
    )
    assert f"{broken}:5: /rules/0/required_gatez: unknown key 'required_gatez'" in message
    assert f"{broken}:6: /rules/0/approval/reviewers/0: must be text, not a list (('alice'))" in message
    assert "[" not in message and "]" not in message  # Airflow's import error table strips bracketed text

    # CI and run time refuse too.
    monkeypatch.delenv("MLSECOPS_POLICY")
    code, _, err = run_cli(["policy", "check", "--policy", str(broken), str(folder)], capsys)
    assert code == 2 and f"{broken}:5: /rules/0/required_gatez: unknown key 'required_gatez'" in err
    with pytest.raises(PolicyError, match="required_gatez"):
        check_evidence_against_policy(training_evidence("compliant"), dag_id="x", tags=[], owner="a", policy=broken)


def test_a_configured_policy_that_is_missing_fails_closed(tmp_path: Path, cluster_policy, monkeypatch) -> None:
    monkeypatch.setenv("MLSECOPS_POLICY", str(tmp_path / "nowhere.yaml"))
    folder = tmp_path / "dags"
    write_dag(folder, "trains", training_dag_source("compliant"))
    dags, errors = load_dags(folder)
    assert dags == {}
    assert "nowhere.yaml is broken" in errors["trains.py"] and "cannot read the policy file" in errors["trains.py"]


def test_no_policy_configured_enforces_nothing_and_says_so_once(
    tmp_path: Path, cluster_policy, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "dags"
    write_dag(folder, "a", training_dag_source("gate_missing"))
    write_dag(folder, "b", training_dag_source("quorum_lowered"))
    with caplog.at_level(logging.WARNING, logger="airflow_mlsecops.policy.cluster_policy"):
        dags, errors = load_dags(folder)
    assert errors == {} and len(dags) == 2
    notes = [r.getMessage() for r in caplog.records if "no policy is configured" in r.getMessage()]
    assert len(notes) == 1
    assert check_evidence_against_policy(training_evidence("gate_missing"), dag_id="x", tags=[], owner="a") == []


def test_the_default_policy_location_is_mlsecops_home(tmp_path: Path, cluster_policy, monkeypatch, policy_file: Path) -> None:
    home = tmp_path / "mlsecops-home"
    home.mkdir()
    (home / "policy.yaml").write_text(policy_file.read_text())
    folder = tmp_path / "dags"
    write_dag(folder, "a", training_dag_source("gate_missing"))
    _, errors = load_dags(folder)
    assert errors["a.py"] == PREFIX + expected_messages("gate_missing")[0]


@pytest.mark.slow
def test_the_entry_point_loads_the_cluster_policy_in_a_fresh_process(tmp_path: Path, policy_file: Path) -> None:
    """A fresh process (as the DAG processor) loads the hook through the ``airflow.policy`` entry
    point. Until the package itself declares it, a stand-in distribution declares the same one."""
    import importlib.metadata
    import os
    import subprocess
    import sys

    target = "airflow_mlsecops.policy.cluster_policy"
    installed = any(ep.value == target for ep in importlib.metadata.entry_points(group="airflow.policy"))
    env = {**os.environ, "MLSECOPS_POLICY": str(policy_file), "MLSECOPS_HOME": str(tmp_path)}
    if not installed:
        dist = tmp_path / "site" / "mlsecops_policy_standin-0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mlsecops-policy-standin\nVersion: 0\n")
        (dist / "entry_points.txt").write_text(f"[airflow.policy]\nmlsecops = {target}\n")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(dist.parent), env.get("PYTHONPATH", "")) if p)
    folder = tmp_path / "dags"
    write_dag(folder, "a", training_dag_source("gate_missing"))
    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag;"
        "bag = DagBag(dag_folder=sys.argv[1]); print(list(bag.import_errors.values()))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == repr([PREFIX + expected_messages("gate_missing")[0]])
