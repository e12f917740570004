"""The alias guard on a real MLflow registry: aliases moved or set by hand (as a ``@task`` calling
``MlflowClient`` would) are found, moved back to their last verified holder or deleted, and a
properly promoted alias passes. Versions are registered and promoted for real, with signed
evidence, by the helpers of ``test_registry`` (whose hand-made gate results the promotions allow by name)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.alias_guard import ALIAS_GUARD, guard_aliases, tag_guard
from airflow_mlsecops.lifecycle.model_registry import REGISTRY_EXPERIMENT, TAG_QUARANTINED
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.lifecycle.version_verification import verify_model_version
from tests.lifecycle.test_registry import build_pipeline, promote_allowing, register

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _restore_environ():
    """The CLI applies its options to ``os.environ``: undo that after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def guard_cli(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["registry", "guard", *args, "--json"])
    out, err = capsys.readouterr()
    lines = out.splitlines()  # the JSON document: from its first line "{" (a library may log above it)
    return code, json.loads("\n".join(lines[lines.index("{") :])) if "{" in lines else {}, err


def aliases(store: MLflowEvidenceStore, name: str) -> dict[str, str]:
    return {a: str(v) for a, v in store.client.get_registered_model(name).aliases.items()}


def test_alias_moved_by_hand_is_found_then_restored_and_the_promoted_alias_passes(home: Settings, tmp_path: Path, capsys) -> None:
    first = build_pipeline(home, tmp_path, seed=1)
    v1 = register(first, "credit")
    promote_allowing(first.store, name="credit", version=v1, alias="champion", settings=home)
    store = first.store

    code = main(["registry", "guard", "--model", "credit"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "VERIFIED: all 1 protected alias(es) rest on a signed promotion" in out and "evidence: runs:/" in out

    # A second, fully evidenced version, never promoted; then a @task moves @champion to it with
    # MlflowClient directly, and sets @prod on the champion by hand.
    second = build_pipeline(home, tmp_path, seed=2)
    v2 = register(second, "credit")
    store.client.set_registered_model_alias("credit", "champion", v2)
    store.client.set_registered_model_alias("credit", "prod", v1)

    code, report, err = guard_cli(capsys, "--model", "credit")
    assert code == 1, (report, err)
    found = {f["alias"]: f for f in report["findings"]}
    assert set(found) == {"champion", "prod"}
    assert found["champion"]["version"] == v2 and found["champion"]["action"] == "none"
    assert any(
        p.startswith("holder:@champion") and "the alias was moved outside the gate" in p for p in found["champion"]["problems"]
    )
    assert any("no signed promotion or rollback to @prod exists" in p for p in found["prod"]["problems"])
    assert aliases(store, "credit") == {"champion": v2, "prod": v1}  # alert only: nothing moved
    assert [(c["alias"], c["version"], c["verified"]) for c in report["checked"]] == [
        ("champion", v2, False),
        ("prod", v1, False),
    ]

    code, report, err = guard_cli(capsys, "--model", "cred*", "--restore")
    assert code == 1, (report, err)  # the alert stands: they were moved without a signed promotion
    found = {f["alias"]: f for f in report["findings"]}
    assert (found["champion"]["action"], found["champion"]["moved_to"]) == ("restored", v1)
    assert found["prod"]["action"] == "removed"  # no version was ever promoted to @prod
    assert aliases(store, "credit") == {"champion": v1}
    tags = store.client.get_registered_model("credit").tags
    assert json.loads(tags[tag_guard("champion")])["from_version"] == v2
    assert json.loads(tags[tag_guard("prod")])["action"] == "removed"
    assert verify_model_version(store, name="credit", version=v1, settings=home).ok

    code, report, err = guard_cli(capsys, "--model", "credit")
    assert code == 0, (report, err)
    assert report["summary"] == "all 1 protected alias(es) rest on a signed promotion"

    # Each run's verdict is signed evidence in experiment mlsecops-registry.
    run_id = report["evidence"].removeprefix("runs:/").split("/", 1)[0]
    assert store.client.get_experiment(store.client.get_run(run_id).info.experiment_id).name == REGISTRY_EXPERIMENT
    verified = verify_run(run_id, settings=home)
    assert verified.ok, [c.to_dict() for c in verified.failures]
    (result,) = verified.results.values()
    assert result.gate == ALIAS_GUARD and result.verdict is Verdict.PASSED
    assert [s.name for s in result.subjects] == [f"models:/credit/{v1}"]


def test_alias_set_by_hand_with_no_verified_holder_is_deleted_and_others_are_left_alone(home: Settings, tmp_path: Path) -> None:
    pipeline = build_pipeline(home, tmp_path)
    v1 = register(pipeline, "credit")  # registered through the gate, never promoted
    other = register(pipeline, "other")
    store = pipeline.store
    store.client.set_registered_model_alias("credit", "champion", v1)
    store.client.set_registered_model_alias("other", "champion", other)

    report = guard_aliases(store, models=["credit"], restore=True, settings=home)
    assert report.verdict is Verdict.FAILED and not report.ok
    (finding,) = report.findings
    assert (finding.name, finding.alias, finding.version, finding.action) == ("credit", "champion", v1, "removed")
    assert any(p.startswith("attestation:@champion") for p in finding.problems)
    assert aliases(store, "credit") == {}
    assert aliases(store, "other") == {"champion": other}  # not protected here: not touched
    assert [c.name for c in report.checked] == ["credit"]
    assert report.evidence and report.recording_error is None


def test_a_broken_signed_holder_is_rolled_back_with_a_signed_rollback(home: Settings, tmp_path: Path) -> None:
    first = build_pipeline(home, tmp_path, seed=1)
    v1 = register(first, "credit")
    promote_allowing(first.store, name="credit", version=v1, alias="champion", settings=home)
    second = build_pipeline(home, tmp_path, seed=2)
    v2 = register(second, "credit")
    promote_allowing(second.store, name="credit", version=v2, alias="champion", settings=home)
    store = second.store
    store.client.set_model_version_tag("credit", v2, TAG_QUARANTINED, "true")

    report = guard_aliases(store, models=["credit"], restore=True, settings=home)
    (finding,) = report.findings
    assert finding.version == v2 and any(p.startswith("quarantine") for p in finding.problems)
    assert (finding.action, finding.moved_to) == ("rolled-back", v1)
    assert aliases(store, "credit") == {"champion": v1}
    # The rollback is signed evidence, so v1 is now the signed holder and verifies.
    rollback_run = (finding.rollback_evidence or "").removeprefix("runs:/").split("/", 1)[0]
    (rolled,) = verify_run(rollback_run, settings=home).results.values()
    assert rolled.gate == "model-rollback" and rolled.details["to_version"] == v1 and rolled.details["by"] == ALIAS_GUARD
    assert verify_model_version(store, name="credit", version=v1, settings=home).ok
    again = guard_aliases(store, models=["credit"], restore=True, settings=home)
    assert again.verdict is Verdict.PASSED, again.to_dict()


def test_the_policy_names_the_protected_models_and_aliases(home: Settings, tmp_path: Path, monkeypatch) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\n"
        "rules:\n"
        "  - name: protected-credit\n"
        "    match: {models: [cred*], aliases: [champion]}\n"
        "    required_gates: {promote: [model-scan]}\n"
    )
    monkeypatch.setenv("MLSECOPS_POLICY", str(policy))
    pipeline = build_pipeline(home, tmp_path)
    v1 = register(pipeline, "credit")
    pipeline.store.client.set_registered_model_alias("credit", "champion", v1)
    pipeline.store.client.set_registered_model_alias("credit", "shadow", v1)  # not a protected alias

    report = guard_aliases(pipeline.store, restore=False, settings=home)
    assert report.verdict is Verdict.FAILED
    assert [(f.alias, f.action) for f in report.findings] == [("champion", "none")]
    assert [c.alias for c in report.checked] == ["champion"]
    assert report.source.startswith(f"policy {policy}")


def test_nothing_to_guard_or_an_unreachable_registry_is_exit_2(home: Settings, capsys) -> None:
    code, report, err = guard_cli(capsys)  # no --model, no policy
    assert code == 2 and report["verdict"] == "error", report
    assert "no models to guard" in err

    code, report, err = guard_cli(capsys, "--model", "credit", "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2 and report["verdict"] == "error", report
    assert "127.0.0.1:9" in err and "Traceback" not in err
