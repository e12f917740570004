"""The review of a pipeline run and of a registered model, built from real recorded evidence
(``scenario`` in conftest.py): order, numbers, findings, links, data, training run, comparison,
responses, keys, and what happens when the evidence does not verify."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.review import model_review, pipeline_run_review, run_review
from airflow_mlsecops.review.numbers import format_metric, format_number
from tests.review.conftest import LONG_MESSAGE, UI_URL, Scenario, tampered_run

pytestmark = pytest.mark.slow

#: The candidate's records in the order they were recorded (ledger order), the approval's own left out.
PIPELINE_ORDER = [
    "sign_model/try-1",
    "sign_training_data/try-1",
    "scan_model/try-1",
    "test_robustness/try-1",
    "build_sbom/try-1",
    "sign_model_openssf/try-1",
    "validate_data/try-1",
    "check_integrity/try-1",
    "build_sbom/try-2",
    "register_model/try-1",
]


def _gate(scenario: Scenario, scope: str) -> dict:
    (gate,) = [g for g in scenario.review.gates if g["scope"] == scope]
    return gate


def test_the_evidence_verifies_and_the_gates_are_in_pipeline_order(scenario: Scenario) -> None:
    review = scenario.review
    assert review.verified, review.failures
    assert review.failures == [] and review.checks["ok"] > 50 and review.checks["failed"] == 0
    assert [g["scope"] for g in review.gates] == PIPELINE_ORDER
    assert sorted(PIPELINE_ORDER) != PIPELINE_ORDER  # alphabetical order would say something else
    seqs = [g["ledger_seq"] for g in review.gates]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(g["verified"] and g["check_failures"] == [] for g in review.gates)
    # The earlier try of a task is shown, and marked as such; the later one is the task's result.
    assert [g["latest"] for g in review.gates if g["task"] == "build_sbom"] == [False, True]


def test_every_metric_with_its_unit_and_a_readable_number(scenario: Scenario) -> None:
    integrity = _gate(scenario, "check_integrity/try-1")
    assert [(m["name"], m["unit"], m["display"]) for m in integrity["metrics"]] == [
        ("bytes", "bytes", "127.5 KiB (130,600 bytes)"),
        ("flagged_share", "%", "1.25%"),
        ("rows", "", "1,200,000"),
        ("seconds", "s", "0.25 s"),
    ]
    assert [m["value"] for m in integrity["metrics"]] == [130600.0, 0.0125, 1200000.0, 0.25]
    everything = [m["display"] for g in scenario.review.gates for m in g["metrics"]]
    assert everything and not any("e+" in shown or "e-" in shown for shown in everything)


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("bytes", 512.0, "512 B"),
        ("bytes", 3 * 1024 * 1024 + 5, "3.0 MiB (3,145,733 bytes)"),
        ("model_bytes", 2048.0, "2.0 KiB (2,048 bytes)"),
        ("drifted_share", 0.5, "50%"),
        ("clean_accuracy", 0.93333, "93.33%"),
        ("rows", 130600.0, "130,600"),
        ("epsilon", 0.05, "0.05"),
        ("p_value", 0.0000123, "1.23e-05"),
        ("mean", 1234.5678, "1,234.6"),
        ("mb_per_s", 38.25, "38.25 MB/s"),
        ("rows_per_second", 1500.0, "1,500 rows/s"),
        ("evidently_seconds", 6.5, "6.5 s"),
        ("max", float("nan"), "NaN"),
    ],
)
def test_metric_formats(name: str, value: float, shown: str) -> None:
    assert format_metric(name, value)[1] == shown


def test_numbers_are_never_in_exponent_notation_above_a_thousandth() -> None:
    for value in (130600.0, 1.306e5, 99999999.0, 0.001, 0.5, 12.3456, 1e12):
        assert "e" not in format_number(value), value


def test_every_finding_in_full_problems_first(scenario: Scenario) -> None:
    integrity = _gate(scenario, "check_integrity/try-1")
    assert integrity["problems"] == 1
    first, second = integrity["findings"]
    assert first == {
        "id": "integrity.formula-injection",
        "severity": "high",
        "message": LONG_MESSAGE,
        "location": "column income, rows 4-6",
        "passed": False,
        "atlas": [],
        "owasp_ml": [],
    }
    assert len(first["message"]) > 500
    assert second["id"] == "integrity.duplicates" and second["passed"] is True


def test_a_check_not_performed_is_named_and_never_reads_as_passed(scenario: Scenario) -> None:
    sbom = _gate(scenario, "build_sbom/try-2")
    assert (sbom["verdict"], sbom["verdict_short"]) == ("warned", "warned (incomplete)")
    assert sbom["verdict_label"] == "warned (incomplete, not performed: sbom.vulnerability-check-not-performed)"
    assert sbom["not_performed"] == [
        "sbom.vulnerability-check-not-performed: vulnerability check not performed: no OSV database (osv_db)"
    ]
    # The earlier try was a warn-only rejection: told apart.
    assert _gate(scenario, "build_sbom/try-1")["verdict_short"] == "warned (warn-only)"
    assert _gate(scenario, "validate_data/try-1")["not_performed"] is None


def test_each_gate_links_to_its_evidence_folder(scenario: Scenario) -> None:
    review = scenario.review
    experiment = scenario.store.run_experiment_id(review.mlflow_run_id)
    integrity = _gate(scenario, "check_integrity/try-1")
    assert integrity["evidence_dir"] == "mlsecops/evidence/check_integrity/try-1"
    assert integrity["evidence_url"] == (
        f"{UI_URL}/#/experiments/{experiment}/runs/{review.mlflow_run_id}/artifacts/mlsecops/evidence/check_integrity/try-1"
    )
    assert review.run_url == f"{UI_URL}/#/experiments/{experiment}/runs/{review.mlflow_run_id}"
    # The folder exists in the run: the link opens the record's files.
    files = scenario.store.list_files(review.mlflow_run_id, integrity["evidence_dir"])
    assert {"envelope.dsse.json", "result.json"} <= set(files)

    without_ui = run_review(review.mlflow_run_id, settings=replace(scenario.home, mlflow_ui_url=""), store=scenario.store)
    assert without_ui.run_url is None and all(g["evidence_url"] is None for g in without_ui.gates)


def test_the_data_checked_and_trained_on_with_digests(scenario: Scenario) -> None:
    datasets = {d["sha256"]: d for d in scenario.review.datasets}
    trained = datasets[scenario.candidate.data_digest]
    assert trained["trained_on"] is True
    assert [c["gate"] for c in trained["checked_by"]] == ["dataset-provenance", "data-validation", "data-integrity"]
    assert "/data/train.csv" in trained["names"]
    reference = datasets["7" * 64]
    assert reference["trained_on"] is False and reference["checked_by"] == []
    assert [c["gate"] for c in reference["reference_for"]] == ["data-integrity"]


def test_the_model_and_its_training_run(scenario: Scenario) -> None:
    review = scenario.review
    assert review.model is not None
    assert review.model["name"] == "credit" and review.model["version"] == scenario.extra["version"]
    assert review.model["sha256"] == scenario.candidate.digest
    training = review.training
    assert training is not None and training["run_id"] == scenario.candidate.mlflow_run_id
    assert {m["name"]: m["display"] for m in training["metrics"]} == {"accuracy": "91.25%", "roc_auc": "0.905"}
    assert training["params"] == {"C": "1.0"}
    assert review.bundle_version == "bundle-abc123"


def test_the_comparison_with_the_alias_holder(scenario: Scenario) -> None:
    comparison = scenario.review.comparison
    assert comparison is not None
    assert (comparison["name"], comparison["alias"], comparison["version"]) == ("credit", "champion", "1")
    assert comparison["model_sha256"] == scenario.champion.digest and comparison["holder_verified"] is True
    metrics = {m["name"]: m for m in comparison["metrics"]}
    assert (metrics["accuracy"]["this_display"], metrics["accuracy"]["holder_display"]) == ("91.25%", "88%")
    assert metrics["accuracy"]["change_display"] == "+3.25 pp"
    assert metrics["roc_auc"]["change_display"] == "-0.005"
    assert comparison["gates_changed"] == [
        {"gate": "data-integrity", "this": "failed", "holder": "not run"},
        {"gate": "sbom", "this": "warned", "holder": "passed"},
    ]


def test_no_holder_no_model_name(scenario: Scenario) -> None:
    review = run_review(scenario.review.mlflow_run_id, settings=scenario.home, store=scenario.store, compare_alias="staging")
    assert review.comparison is not None and review.comparison["version"] is None
    assert review.comparison["note"] == "no version of credit holds @staging yet: nothing to compare with"


def test_every_response_with_who_when_and_why(scenario: Scenario) -> None:
    responses = [
        {k: r[k] for k in ("user", "choice", "responded_at", "outcome", "reason", "counted")} for r in scenario.review.responses
    ]
    assert responses == [
        {
            "user": "carol",
            "choice": "Approve",
            "responded_at": "2026-12-04T09:00:00+00:00",
            "outcome": "refused",
            "reason": "carol may not approve: authored the model",
            "counted": False,
        },
        {
            "user": "alice",
            "choice": "Approve",
            "responded_at": "2026-12-04T09:30:00+00:00",
            "outcome": "approved",
            "reason": "1 of 1 approvals",
            "counted": True,
        },
    ]
    decision = scenario.review.decision
    assert decision is not None and decision["decision"] == "approved" and decision["verdict"] == "passed"
    assert [a["name"] for a in decision["approvals"]] == ["reviewer-0"]


def test_the_keys_that_signed(scenario: Scenario) -> None:
    trusted = list(scenario.home.load_trusted_keys())
    (key,) = scenario.review.signing_keys
    assert key["keyid"] == trusted[0] and key["key_type"] and key["source"]
    # Every record, the approval's own included, was signed by it.
    assert key["records"] == len(PIPELINE_ORDER) + 4


def test_the_api_json(scenario: Scenario) -> None:
    data = json.loads(json.dumps(scenario.review.to_dict()))
    assert data["verified"] is True and data["failures"] == []
    assert [g["scope"] for g in data["gates"]] == PIPELINE_ORDER
    assert {"datasets", "training", "responses", "decision", "signing_keys", "comparison", "bundle_version"} <= set(data)


def test_pipeline_run_review_finds_the_run_and_never_creates_one(scenario: Scenario) -> None:
    c = scenario.candidate
    review = pipeline_run_review(c.dag_id, c.run_id, settings=scenario.home, store=scenario.store)
    assert review.mlflow_run_id == c.mlflow_run_id and review.verified
    assert (review.dag_id, review.dag_run_id) == (c.dag_id, c.run_id)
    with pytest.raises(ConfigurationError, match="recorded no evidence"):
        pipeline_run_review(c.dag_id, "manual__never", settings=scenario.home, store=scenario.store)
    with pytest.raises(ConfigurationError, match="no MLflow experiment 'nope'"):
        pipeline_run_review("nope", c.run_id, settings=scenario.home, store=scenario.store)
    runs = scenario.store.client.search_runs([scenario.store.run_experiment_id(c.mlflow_run_id)])
    assert not any(r.data.tags.get("mlsecops.run_id") == "manual__never" for r in runs)


def test_evidence_that_does_not_verify(scenario: Scenario) -> None:
    review = run_review(tampered_run(scenario), settings=scenario.home, store=scenario.store)
    assert review.verified is False
    assert [(f["scope"], f["check"]) for f in review.failures] == [("scan_model/try-1", "file:result.json")]
    (gate,) = review.gates
    assert gate["verified"] is False and gate["check_failures"][0]["check"] == "file:result.json"
    assert gate["verdict"] == "failed"  # the signed verdict, not the edited file


def test_unknown_run(scenario: Scenario) -> None:
    with pytest.raises(ConfigurationError):
        run_review("0" * 32, settings=scenario.home, store=scenario.store)


def test_the_model_history(scenario: Scenario) -> None:
    model = scenario.model
    assert model.name == "credit" and model.aliases == {"champion": "1"}
    assert [v["version"] for v in model.versions] == ["1", "2", "3"]
    v1, v2, v3 = model.versions
    assert v1["aliases"] == ["champion"] and v2["aliases"] == [] and v3["aliases"] == []
    assert v1["model_sha256"] == scenario.champion.digest and v1["pipeline_run_id"] == scenario.champion.mlflow_run_id
    assert v2["approved_by"] is None and v3["approved_by"] == "reviewer-0"
    assert [(p["alias"], p["version"], p["previous"]) for p in model.extra["promotions"]] == [
        ("champion", "1", "none"),
        ("champion", "3", "1"),
    ]
    rollbacks = model.extra["rollbacks"]
    assert {"to_version": "1", "evidence": v1["tags"]["mlsecops.rollback_evidence"]} in rollbacks
    assert any(r.get("from_version") == "3" and r["alias"] == "champion" for r in rollbacks)
    assert model.extra["alias_history"] == {"champion": ["1"]}
    assert json.loads(json.dumps(model.to_dict()))["aliases"] == {"champion": "1"}


def test_unknown_model(scenario: Scenario) -> None:
    with pytest.raises(ConfigurationError, match="nope"):
        model_review("nope", settings=scenario.home, store=scenario.store)
