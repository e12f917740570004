"""``mlsecops report``: the audit report of a registered model or an MLflow run, from real recorded
evidence (the review tests' scenario), with its exit codes and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlsecops.cli import main
from tests.review.conftest import Scenario, scenario, tampered_run

__all__ = ["scenario"]

pytestmark = pytest.mark.slow


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_of_an_alias_holder(scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "report.html"
    code, out, err = _run(capsys, "report", "credit@champion", "-o", str(output))
    assert code == 0, err
    assert out.startswith("VERIFIED: ") and out.rstrip().endswith(f"report written to {output}")
    page = output.read_text()
    assert "<title>Audit report: credit version 1 (@champion)</title>" in page
    assert scenario.champion.digest in page and "Registered model credit" in page
    assert "<script" not in page and "<link" not in page and "<img" not in page


def test_report_of_a_version_and_of_a_run(scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version = scenario.extra["version"]
    output = tmp_path / "v.html"
    code, _, err = _run(capsys, "report", "credit", version, "-o", str(output), "--compare-alias", "champion")
    assert code == 0, err
    page = output.read_text()
    assert f"Audit report: credit version {version}" in page and "Compared with @champion" in page
    assert "carol may not approve: authored the model" in page

    by_run = tmp_path / "run.html"
    code, _, err = _run(capsys, "report", "--mlflow-run-id", scenario.candidate.mlflow_run_id, "-o", str(by_run))
    assert code == 0, err
    assert f"Evidence of MLflow run {scenario.candidate.mlflow_run_id}" in by_run.read_text()


def test_evidence_that_does_not_verify_is_written_and_exits_1(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "bad.html"
    code, out, _ = _run(capsys, "report", "--mlflow-run-id", tampered_run(scenario), "-o", str(output))
    assert code == 1
    assert out.startswith("NOT VERIFIED: 1 check(s) failed") and "scan_model/try-1: file:result.json" in out
    assert 'class="banner bad">NOT VERIFIED' in output.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope@champion"], "unknown registered model 'nope'"),
        (["credit", "99"], "credit version 99 does not exist"),
        (["credit@staging"], "credit@staging does not exist"),
        (["credit"], "give the version (NAME VERSION) or an alias (NAME@ALIAS)"),
        (["credit@champion", "1"], "give NAME@ALIAS or NAME VERSION, not both"),
        (["--mlflow-run-id", "0" * 32], "cannot read MLflow run"),
        (["credit@champion", "--mlflow-run-id", "abc"], "not both"),
        ([], "give the model (NAME@ALIAS or NAME VERSION) or --mlflow-run-id RUN"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    output = tmp_path / "never.html"
    code, _, err = _run(capsys, "report", *argv, "-o", str(output))
    assert code == 2
    assert err.startswith("mlsecops: error: ") and message in err and "Traceback" not in err
    assert not output.exists()


def test_a_version_registered_outside_the_gate(scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = scenario.store.client
    client.create_registered_model("handmade")
    # By its storage location: MLflow resolves a models:/ source through the process-global tracking URI.
    location = client.get_logged_model(scenario.champion.model_uri.removeprefix("models:/")).artifact_location
    client.create_model_version("handmade", location)
    code, _, err = _run(capsys, "report", "handmade", "1", "-o", str(tmp_path / "x.html"))
    assert code == 2 and "names no pipeline run (tag mlsecops.pipeline_run_id)" in err


def test_an_unwritable_output(scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "report", "credit@champion", "-o", str(tmp_path / "missing" / "r.html"))
    assert code == 2 and "cannot write the report to" in err
