"""``mlsecops policy check | schema | validate``, called through the functions the main CLI wires."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from airflow_mlsecops.cli.policy import add_policy_parser
from airflow_mlsecops.exceptions import ConfigurationError
from tests.policy.conftest import POLICY, training_dag_source, write_dag


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="mlsecops")
    add_policy_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = int(args.func(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_schema_prints_the_published_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["policy", "schema"], capsys)
    assert code == 0
    spec = json.loads(out)
    assert spec["$id"].endswith("policy-v1.json") and spec["required"] == ["version", "rules"]


def test_validate(policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["policy", "validate", "--policy", str(policy_file)], capsys)
    assert code == 0
    assert out.startswith(f"policy {policy_file} is valid: 1 rule(s), sha256 ")
    assert "  rule 'production-models' (line 3): DAGs with tags production" in out
    assert "    before promote: model-scan, robustness, model-provenance, data-validation, model-approval" in out
    code, out, _ = run(["policy", "validate", "--policy", str(policy_file), "--json"], capsys)
    assert code == 0 and json.loads(out)["policy"]["rules"][0]["name"] == "production-models"
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("min_robust_accuracy: 0.7", "min_robust_accuracy: '0.7'"))
    code, out, err = run(["policy", "validate", "--policy", str(bad), "--json"], capsys)
    assert code == 2
    report = json.loads(out)
    assert report["ok"] is False and report["issues"] == [
        {
            "line": 11,
            "pointer": "/rules/0/thresholds/robustness/min_robust_accuracy",
            "message": "must be a number, not text ('0.7')",
        }
    ]
    code, _, err = run(["policy", "validate", "--policy", str(bad)], capsys)
    assert code == 2 and f"  {bad}:11: /rules/0/thresholds/robustness/min_robust_accuracy: must be a number" in err


def test_check_exit_codes(tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    good, bad, broken = tmp_path / "good", tmp_path / "bad", tmp_path / "broken"
    write_dag(good, "d", training_dag_source("compliant"))
    write_dag(bad, "d", training_dag_source("threshold_loosened"))
    write_dag(broken, "d", training_dag_source("compliant"))
    write_dag(broken, "e", "from airflow.sdk import DAG\nraise RuntimeError('boom')\n")
    assert run(["policy", "check", "--policy", str(policy_file), str(good)], capsys)[0] == 0
    assert run(["policy", "check", "--policy", str(policy_file), str(good / "d.py")], capsys)[0] == 0  # one file
    assert run(["policy", "check", "--policy", str(policy_file), str(bad)], capsys)[0] == 1
    code, out, _ = run(["policy", "check", "--policy", str(policy_file), str(broken)], capsys)
    assert code == 2
    assert "  ERROR      e.py: does not import, so it was not checked: RuntimeError: boom" in out
    assert "INCOMPLETE: 1 DAG(s): 1 compliant, 0 with violations; 1 file(s) could not be imported" in out
    with pytest.raises(ConfigurationError, match="no such folder"):
        run(["policy", "check", "--policy", str(policy_file), str(tmp_path / "missing")], capsys)
    monkeypatch.delenv("MLSECOPS_POLICY", raising=False)
    monkeypatch.setenv("MLSECOPS_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(ConfigurationError, match="no policy given"):
        run(["policy", "check", str(good)], capsys)
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy_file))  # the configured policy is the default
    assert run(["policy", "check", str(bad)], capsys)[0] == 1
