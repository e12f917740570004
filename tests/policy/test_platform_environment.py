"""A DAG file cannot replace the platform's policy (issue 20, class 1).

The hostile DAG sets ``MLSECOPS_POLICY`` (or Airflow's ``AIRFLOW__MLSECOPS__POLICY_FILE``) in
``os.environ`` to a lax file of its own. The platform's settings come only from the environment the
process started with, so every enforcement point refuses: the settings themselves, the cluster
policy at parse, ``mlsecops policy check``, the gate task and the promotion at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings, check_platform_environment, platform_environment
from airflow_mlsecops.exceptions import ConfigurationError
from tests.helpers import run_dag_states, unique_dag_id, write_csv
from tests.policy.conftest import load_dags, write_dag

PLATFORM_POLICY = """\
version: 1
rules:
  - name: no-personal-data
    match: {dag_id_pattern: ".*"}
    required_gates:
      promote: [pii-scan]
    thresholds:
      pii-scan: {types: [email, us_ssn]}
"""
LAX_POLICY = """\
version: 1
rules:
  - name: lax
    match: {dag_id_pattern: "nothing-matches-this"}
    thresholds:
      pii-scan: {types: [ipv4]}
"""


def _policies(tmp_path: Path) -> tuple[Path, Path]:
    platform, lax = tmp_path / "platform-policy.yaml", tmp_path / "dag-author" / "lax.yaml"
    lax.parent.mkdir()
    platform.write_text(PLATFORM_POLICY)
    lax.write_text(LAX_POLICY)
    return platform, lax


def _escape(variable: str, lax: Path) -> str:
    return f"import os\nos.environ[{variable!r}] = {str(lax)!r}  # the DAG author's own policy\n"


def test_a_changed_platform_variable_is_refused_by_name_never_by_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pinned_platform_environment: None
) -> None:
    Settings.from_env()  # unchanged: fine
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY_PEM", "-----BEGIN PRIVATE KEY----- secret")
    monkeypatch.setenv("AIRFLOW__MLSECOPS__POLICY_FILE", str(tmp_path / "lax.yaml"))
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert "MLSECOPS_SIGNING_KEY_PEM" in message and "AIRFLOW__MLSECOPS__POLICY_FILE" in message
    assert "secret" not in message and "lax.yaml" not in message
    with pytest.raises(ConfigurationError):
        Settings.resolve(airflow_config=False)
    # The store's location is not a platform setting: changing it is not refused.
    monkeypatch.delenv("MLSECOPS_SIGNING_KEY_PEM")
    monkeypatch.delenv("AIRFLOW__MLSECOPS__POLICY_FILE")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    check_platform_environment()


def test_a_real_process_judges_by_the_environment_it_started_with(tmp_path: Path) -> None:
    platform, lax = _policies(tmp_path)
    code = (
        "import os, json\n"
        "from airflow_mlsecops.config import platform_environment\n"
        "from airflow_mlsecops.policy.model import configured_policy_path\n"
        "before = str(configured_policy_path())\n"
        f"os.environ['MLSECOPS_POLICY'] = {str(lax)!r}\n"
        "try:\n"
        "    after = str(configured_policy_path())\n"
        "except Exception as exc:\n"
        "    after = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps({'before': before, 'after': after, 'platform': platform_environment().get('MLSECOPS_POLICY')}))\n"
    )
    env = {**os.environ, "MLSECOPS_POLICY": str(platform), "MLSECOPS_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == str(platform)
    assert seen["platform"] == str(platform)
    assert seen["after"].startswith("ConfigurationError: MLSECOPS_POLICY changed inside this process")


def test_the_cluster_policy_rejects_a_dag_that_replaces_the_policy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cluster_policy: object
) -> None:
    platform, lax = _policies(tmp_path)
    monkeypatch.setenv("MLSECOPS_POLICY", str(platform))  # restored after the test, whatever the DAG does
    source = (
        _escape("MLSECOPS_POLICY", lax) + "from datetime import datetime\nfrom airflow.sdk import DAG\n"
        "from airflow_mlsecops.operators import PIIScanGateOperator, PromoteModelOperator\n"
        "with DAG(dag_id='escape_policy', schedule=None, start_date=datetime(2026, 1, 1)):\n"
        "    PromoteModelOperator(task_id='promote', name='credit', version='1', required_approvals=0)\n"
    )
    from airflow_mlsecops import config

    monkeypatch.setattr(config, "_pinned_environment", None)
    monkeypatch.setattr(config, "_trust_live_environment", False)
    config.pin_platform_environment()  # as a real process's start environment
    write_dag(tmp_path / "dags", "escape_policy", source)
    dags, errors = load_dags(tmp_path / "dags")
    assert "escape_policy" not in dags
    assert "MLSECOPS_POLICY changed inside this process" in errors["escape_policy.py"]
    assert "fail closed" in errors["escape_policy.py"]


def test_policy_check_reports_a_dag_that_replaces_the_policy(tmp_path: Path) -> None:
    platform, lax = _policies(tmp_path)
    dags = tmp_path / "dags"
    write_dag(
        dags,
        "escape_policy",
        _escape("AIRFLOW__MLSECOPS__POLICY_FILE", lax) + "from datetime import datetime\nfrom airflow.sdk import DAG\n"
        "from airflow_mlsecops.operators import PromoteModelOperator\n"
        "with DAG(dag_id='escape_policy_ci', schedule=None, start_date=datetime(2026, 1, 1)):\n"
        "    PromoteModelOperator(task_id='promote', name='credit', version='1', required_approvals=0)\n",
    )
    env = {**os.environ, "MLSECOPS_POLICY": str(platform), "MLSECOPS_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "airflow_mlsecops.cli", "policy", "check", str(dags), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    messages = [v["message"] for d in report["dags"] for v in d["violations"]]
    assert any("AIRFLOW__MLSECOPS__POLICY_FILE changed inside this process" in m for m in messages), messages
    assert any("requires gate pii-scan upstream of promote" in m for m in messages), messages


@pytest.mark.airflow
def test_a_gate_task_of_a_dag_that_replaces_the_policy_fails_closed(
    airflow_db: Path, home: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_dag
) -> None:
    platform, lax = _policies(tmp_path)
    monkeypatch.setenv("MLSECOPS_POLICY", str(platform))
    from airflow_mlsecops import config

    monkeypatch.setattr(config, "_pinned_environment", None)
    monkeypatch.setattr(config, "_trust_live_environment", False)
    config.pin_platform_environment()  # as a real process's start environment
    data = write_csv(tmp_path, {"id": [1, 2], "contact": ["ann.smith@example.com", "bob@example.org"]})
    dag_id = unique_dag_id("escape_policy_run")
    dag = write_dag(
        dag_id,
        f"PIIScanGateOperator(task_id='pii', data={data!r}, types=['ipv4'])",
        header="from airflow_mlsecops.operators.pii import PIIScanGateOperator\n" + _escape("MLSECOPS_POLICY", lax),
    )
    assert platform_environment()["MLSECOPS_POLICY"] == str(platform)
    from airflow_mlsecops.policy.cluster_policy import suspended
    from tests.conftest import TEST_DAGS

    try:
        # Where the cluster policy runs (the DAG processor; dag.test() parses the bundle too), the DAG is rejected.
        with pytest.raises(Exception, match="not serialized"):
            dag.test()
        # Where it does not (a deployment without the entry point), the gate task itself refuses to judge.
        with suspended():
            _, states = run_dag_states(dag)
        assert states == {"pii": "failed"}
    finally:  # every later dag.test() parses the whole test bundle: the hostile file must not stay there
        (TEST_DAGS / f"{dag_id}.py").unlink()


def test_promotion_requires_every_record_to_name_the_platform_policy(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate judged under another policy (an earlier or a DAG-chosen one) was judged by other rules:
    the promotion, judged by the platform's policy, refuses its evidence (``policy-digest``)."""
    from airflow_mlsecops.policy.model import policy_digest
    from tests.lifecycle.test_registry import build_pipeline, check_allowing, register

    platform, lax = _policies(tmp_path)
    monkeypatch.setenv("MLSECOPS_POLICY", str(lax))  # the gates of this run record under the lax policy
    pipeline = build_pipeline(home, tmp_path)
    version = register(pipeline, "credit")
    monkeypatch.setenv("MLSECOPS_POLICY", str(platform))

    def checks(digest: str | None) -> dict[str, dict]:
        outcome = check_allowing(
            pipeline.store, name="credit", version=version, alias="champion", settings=home, policy_digest=digest
        )
        return {c["check"]: c for c in outcome.result.details["checks"]}

    refused = checks(policy_digest(platform))["policy-digest"]
    assert refused["status"] == "failed"
    assert "records made under another policy than the platform's" in refused["detail"]
    assert policy_digest(lax)[:16] in refused["detail"]
    assert checks(policy_digest(lax))["policy-digest"]["status"] == "ok"
    assert "policy-digest" not in checks(None)
