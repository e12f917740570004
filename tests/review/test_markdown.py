"""The approval request's body, rendered from real recorded evidence and parsed by a real Markdown
parser (markdown-it, CommonMark with GitHub tables, and no raw HTML: Airflow's page uses
react-markdown with ``skipHtml``)."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Verdict
from airflow_mlsecops.lifecycle.approval import ApprovalRequest, render_body
from tests.review.conftest import LONG_MESSAGE, Scenario
from tests.review.test_view import PIPELINE_ORDER

pytestmark = pytest.mark.slow


def _request(run_id: str) -> ApprovalRequest:
    return ApprovalRequest(
        model_uri="models:/credit/2",
        model_sha256="a" * 64,
        evidence_sha256="b" * 64,
        evidence_shown={},
        mlflow_run_id=run_id,
        required_approvals=2,
        reviewers=("alice", "bob"),
        excluded={"dag_test": "triggered this DAG run", "carol": "authored the model"},
    )


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)


@pytest.fixture(scope="module")
def body(scenario: Scenario) -> str:
    review = scenario.review
    return render_body(_request(review.mlflow_run_id), {}, run_url=review.run_url, title="Approve credit v2", review=review)


def test_each_header_line_is_its_own_list_item(body: str) -> None:
    html = _html(body)
    header = re.search(r"<ul>(.*?)</ul>", html, re.S)
    assert header is not None
    items = re.findall(r"<li>(.*?)</li>", header.group(1), re.S)
    starts = [re.sub(r"<[^>]+>", "", item).split(":", 1)[0] for item in items]
    assert starts == [
        "Verdicts",
        "Model",
        "Model SHA-256",
        "Evidence SHA-256",
        "Approvals required",
        "May not approve (separation of duties)",
        "Evidence",
        "Registered as",
        "DAG bundle version",
    ]
    assert not any("Approvals required" in line and "May not approve" in line for line in body.splitlines())
    assert "- **Approvals required:** 2 from alice, bob" in body.splitlines()
    assert "- **May not approve (separation of duties):** dag_test (triggered this DAG run), carol (authored the model)" in body


def test_the_gates_in_pipeline_order_with_readable_metrics(body: str, scenario: Scenario) -> None:
    rows = [line for line in body.splitlines() if re.match(r"^\| \d+ \|", line)]
    tasks = [scope.split("/")[0] for scope in PIPELINE_ORDER]
    assert [row.split(" | ")[2].split(" (try")[0] for row in rows] == tasks
    integrity = next(row for row in rows if "check_integrity" in row)
    assert "bytes 127.5 KiB (130,600 bytes), flagged_share 1.25%, rows 1,200,000, seconds 0.25 s" in integrity
    assert "**failed**" in integrity and integrity.endswith("| 1 |")
    assert "e+0" not in body
    html = _html(body)
    assert "<table>" in html and html.count("<tr>") >= len(PIPELINE_ORDER) + 1


def test_every_finding_in_full_and_what_was_not_performed(body: str) -> None:
    line = next(line for line in body.splitlines() if "integrity.formula-injection" in line)
    assert line == f"- **high** `integrity.formula-injection`: {LONG_MESSAGE} (at `column income, rows 4-6`)"
    assert LONG_MESSAGE in re.sub(r"<[^>]+>", "", _html(body)).replace("&#x27;", "'")
    assert "- Checks that held (1): `integrity.duplicates`" in body
    assert (
        "- **Not performed:** sbom.vulnerability-check-not-performed: vulnerability check not performed: "
        "no OSV database (osv_db)" in body
    )
    assert "##### 9. sbom (build_sbom): warned (incomplete, not performed: sbom.vulnerability-check-not-performed)" in body
    assert "| 9 | sbom | build_sbom (try 2) | **warned (incomplete)** | components 42, packages_unchecked 42 | 1 |" in body
    assert "<details>" not in body  # Airflow's renderer drops raw HTML


def test_links_to_each_evidence_folder(body: str, scenario: Scenario) -> None:
    for gate in scenario.review.gates:
        assert f"[evidence folder in MLflow]({gate['evidence_url']})" in body
    html = _html(body)
    assert html.count('<a href="http://mlflow.example:5000/#/experiments/') == len(PIPELINE_ORDER) + 2  # + run, training run


def test_responses_data_training_and_comparison(body: str, scenario: Scenario) -> None:
    lines = body.splitlines()
    assert "- carol chose Approve at 2026-12-04 09:00:00 UTC: **refused** (carol may not approve: authored the model)" in lines
    assert "- alice chose Approve at 2026-12-04 09:30:00 UTC: approved (1 of 1 approvals)" in lines
    digest = scenario.candidate.data_digest
    (data_row,) = [line for line in lines if digest in line and line.startswith("|")]
    assert "| yes | dataset-provenance (passed), data-validation (passed), data-integrity (failed) |" in data_row
    assert "- Metrics: accuracy 91.25%, roc_auc 0.905" in lines
    assert "#### Compared with @champion (version 1)" in lines
    assert "| accuracy | 91.25% | 88% | +3.25 pp |" in lines
    assert "  - sbom: **warned** here, passed for @champion" in lines
    assert "- **DAG bundle version:** `bundle-abc123`" in lines


def test_evidence_text_cannot_inject_markdown_or_vanish() -> None:
    """A finding with table pipes, HTML and emphasis: shown literally, the table stays one row."""
    message = "value <script>alert(1)</script> | *bold* _emph_ [link](http://x) `tick` in __init__ of dag_test"
    results = {
        "scan/try-1": GateResult.create(
            gate="model-scan",
            verdict=Verdict.FAILED,
            context=PipelineContext("d", "r", "scan"),
            findings=[Finding("model-scan.global", Severity.HIGH, message, "a|b")],
            summary="x | y",
            metrics={"bytes": 130600.0},
        )
    }
    body = render_body(_request("run-1"), results, run_url=None, title="t <b>", tally=None)
    html = _html(body)
    assert "<script>" not in html and "<b>" not in html and 'href="http://x"' not in html and "<em>" not in html
    assert "<strong>" not in html.split("</ul>", 1)[1].split("model-scan.global")[1].split("</li>")[0]
    text = re.sub(r"<[^>]+>", "", html)
    assert "value &lt;script&gt;alert(1)&lt;/script&gt; | *bold* _emph_ [link](http://x) `tick` in __init__ of dag_test" in text
    (row,) = [line for line in body.splitlines() if line.startswith("| 1 |")]
    assert row.count(" | ") == 5  # six cells: the finding's pipe is escaped


def test_without_a_review_the_results_keep_their_order_and_the_tally_shows() -> None:
    def result(task: str) -> GateResult:
        return GateResult.create(gate=task.replace("_", "-"), verdict=Verdict.PASSED, context=PipelineContext("d", "r", task))

    results = {"z_last/try-1": result("z_last"), "a_first/try-1": result("a_first")}
    tally = {"approvals": [], "refused": [{"id": "carol", "name": "carol", "responded_at": "t1", "reason": "authored the model"}]}
    body = render_body(_request("run-1"), results, run_url=None, title="t", tally=tally)
    rows = [line for line in body.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert [row.split(" | ")[1] for row in rows] == ["z-last", "a-first"]  # recorded order, not alphabetical
    assert "- carol at t1: **refused** (authored the model)" in body
    assert "- **Evidence:** MLflow run `run-1`" in body
    empty = render_body(_request("run-1"), {}, run_url=None, title="t")
    assert "- No response yet." in empty and "- No gate recorded evidence in this run." in empty
