"""``mlsecops gate membership-inference`` and ``gate training-privacy`` on real files and a real MLflow store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from airflow_mlsecops.cli.gate_privacy import add_privacy_gate_parsers
from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame


def gate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mlsecops")
    sub = parser.add_subparsers(dest="command")
    gsub = sub.add_parser("gate").add_subparsers(dest="gate", required=True)
    add_privacy_gate_parsers(gsub)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(["gate", *argv])
    return int(args.func(args))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("gate-privacy")
    frame = credit_frame(rows=1900, seed=9)
    train, holdout = frame.iloc[:800], frame.iloc[800:]
    train.to_csv(root / "train.csv", index=False)
    holdout.to_csv(root / "holdout.csv", index=False)
    X, y = train[list(FEATURES)], train[LABEL]
    sio.dump(LogisticRegression(C=0.01, max_iter=1000).fit(X, y), root / "logreg.skops")
    sio.dump(RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y), root / "forest.skops")
    return {"root": str(root), "train": str(root / "train.csv"), "holdout": str(root / "holdout.csv")}


def membership(files: dict[str, str], model: str, *extra: str) -> list[str]:
    return [
        "membership-inference",
        "--model",
        str(Path(files["root"], model)),
        "--train",
        files["train"],
        "--holdout",
        files["holdout"],
        "--label-column",
        LABEL,
        "--bootstrap",
        "50",
        *extra,
    ]


def test_exit_codes_follow_the_verdict(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert gate([*membership(files, "logreg.skops"), "--json"]) == 0
    passed = json.loads(capsys.readouterr().out)
    assert passed["verdict"] == "passed" and passed["metrics"]["members"] == 800
    assert gate(membership(files, "forest.skops")) == 1
    assert "membership-inference: FAILED" in capsys.readouterr().out
    assert gate(membership(files, "forest.skops", "--warn-only")) == 0


def test_bad_input_exits_2_with_a_clear_message(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert gate([*membership(files, "logreg.skops")[:-4], "--label-column", "nope"]) == 2
    assert "label column 'nope' is not in" in capsys.readouterr().out
    assert gate(membership(files, "missing.skops")) == 2
    assert gate(membership(files, "logreg.skops", "--max-attack-auc", "0.2")) == 2
    assert "max_attack_auc must be between 0.5 and 1" in capsys.readouterr().out


def test_training_privacy_reads_the_run_and_the_policy(
    home: Settings, files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_mlsecops.gates.membership.training_privacy import declare_dp_guarantee
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="training", run_name="dp")
    declare_dp_guarantee(run_id, epsilon=6.0, delta=0.0, mechanism="dp-sgd", library="opacus", store=store)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nrules:\n  - name: r\n    match: {tags: [x]}\n    required_gates: {promote: [model-scan]}\n"
        "sensitive_data:\n  - name: train\n    match: ['*/train.csv']\n    training: {max_epsilon: 8}\n"
    )
    common = ["training-privacy", "--model", str(Path(files["root"], "logreg.skops")), "--run-id", run_id]
    common += ["--training-data", files["train"], "--policy", str(policy), "--tracking-uri", home.tracking_uri]
    assert gate(common) == 0
    assert "declared epsilon 6" in capsys.readouterr().out
    assert gate([*common, "--max-epsilon", "4"]) == 1
    assert gate([*common[:4], "0" * 32, *common[5:]]) == 2


def test_the_gates_are_wired_into_mlsecops_gate(
    home: Settings, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_mlsecops.cli import main

    assert main(["gate", *membership(files, "forest.skops", "--attacks", "loss", "--json")]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["gate"] == "membership-inference" and set(result["metrics"]) >= {"auc_loss", "advantage_loss"}
    assert main(["gate", "training-privacy", "--model", "m", "--run-id", "r", "--training-data", "d.csv"]) == 2
