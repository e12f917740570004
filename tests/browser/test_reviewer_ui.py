"""The reviewer's view, in a real browser against a real Airflow (``mlsecops airflow``).

carol (the ML engineer) triggers ``secure_training_pipeline``; when the run waits at
``approve_model``, alice (a reviewer) logs in through Airflow's login page, reads the Required
Action page, checks what she is asked to approve, and clicks Approve; the run then promotes the
model. The MLSecOps page of that DAG run (the plugin's page and its "Evidence" tab in the run's
page) shows the re-verified evidence chain, the gates and her approval.

The tests run in file order: the approval page is read while the request is pending, then
answered in the UI. Screenshots go to each test's temporary directory, and to ``docs/images`` with
``MLSECOPS_SAVE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import APPROVAL_TASK, DAG_ID, Deployment, login, save_screenshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

#: Tasks of the example DAG that record no gate of their own (the approval is what is being asked).
NOT_GATES = frozenset(("ingest", "train_model", "approve_model", "promote_model"))
TITLE = "Promote credit-risk to champion?"
#: A number printed as 1.306e+05 reads badly to a person.
E_NOTATION = re.compile(r"\b\d(?:\.\d+)?e[+-]?\d+\b", re.IGNORECASE)
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


def _quoted(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def _wait_for(deployment: Deployment, run_id: str, done: Any, what: str, timeout: float = 900) -> dict[str, str]:
    """Poll the run's task states until ``done(states)``; fail (with the states) on a failed task or timeout."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = deployment.task_states(run_id)
        if done(states):
            return states
        if any(s in ("failed", "upstream_failed") for s in states.values()):
            break
        time.sleep(3)
    errors = [line[:400] for line in deployment.log_tail("scheduler", 400).splitlines() if "[error" in line]
    pytest.fail(f"the run did not reach {what}: {states}\n" + "\n".join(errors[-5:]))


@pytest.fixture(scope="module")
def upstream(deployment: Deployment) -> dict[str, set[str]]:
    """Every task of the example DAG -> all the tasks that must finish before it (the pipeline order)."""
    status, body = deployment.call("admin", "GET", f"/api/v2/dags/{DAG_ID}/tasks")
    assert status == 200, body
    direct: dict[str, set[str]] = {t["task_id"]: set() for t in body["tasks"]}
    for t in body["tasks"]:
        for child in t["downstream_task_ids"]:
            direct[child].add(t["task_id"])
    closed: dict[str, set[str]] = {}

    def before(task: str) -> set[str]:
        if task not in closed:
            closed[task] = set().union(*({p} | before(p) for p in direct[task])) if direct[task] else set()
        return closed[task]

    return {task: before(task) for task in direct}


@pytest.fixture(scope="module")
def waiting_run(deployment: Deployment) -> str:
    """A run of the example pipeline triggered by carol (REST), waiting for a reviewer at ``approve_model``."""
    status, run = deployment.call("carol", "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})
    assert status == 200, run
    run_id = str(run["dag_run_id"])
    _wait_for(deployment, run_id, lambda s: s.get(APPROVAL_TASK) == "awaiting_input", "the approval")
    return run_id


def _xcom(deployment: Deployment, run_id: str, task_id: str, key: str = "return_value") -> Any:
    status, body = deployment.call(
        "admin", "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_quoted(run_id)}/taskInstances/{task_id}/xcomEntries/{key}"
    )
    assert status == 200, body
    return body["value"]


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


@dataclass
class ApprovalView:
    """What the Required Action page showed alice while the request was pending."""

    page: Any  # the logged-in page, still open on the request: the approval is clicked there
    text: str  # the request as rendered (whitespace collapsed)
    gates: list[dict[str, str]]  # the gate table: header -> cell text, row by row
    sections: dict[str, str]  # task -> the text of its gate's section (heading and details)
    links: dict[str, str]  # link text -> href (later links with the same text keep the first)
    evidence_links: list[str]  # every "evidence folder" link
    screenshot: Path


def _table(panel: Any, header: str) -> list[dict[str, str]]:
    """The rows (header -> cell text) of the first table of ``panel`` with a column named ``header``."""
    for table in panel.locator("table").all():
        headers = [_words(h).lower() for h in table.locator("thead th").all_text_contents()]
        if header in headers:
            return [
                dict(zip(headers, [_words(c) for c in row.locator("td").all_text_contents()], strict=False))
                for row in table.locator("tbody tr").all()
            ]
    return []


def _task_of(cell: str) -> str:
    """``attest_model``, from a task cell (``attest_model``, ``attest_model (try 2)``, ``attest_model/try-1``)."""
    return cell.split("/")[0].split(" (")[0].strip()


def _sections(panel: Any) -> dict[str, str]:
    """Each gate's section: a heading ``N. gate (task): verdict`` and the list that follows it."""
    found: dict[str, str] = {}
    for heading in panel.locator("h5").all():
        title = _words(heading.inner_text())
        match = re.match(r"\d+\. \S+ \(([^)]+)\)", title)
        if match:
            details = heading.locator("xpath=following-sibling::*[1]")
            found[match.group(1)] = title + " " + (_words(details.inner_text()) if details.count() else "")
    return found


@pytest.fixture(scope="module")
def approval_view(
    browser: Any, deployment: Deployment, waiting_run: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApprovalView]:
    page = login(browser, deployment, "alice")
    page.goto(f"{deployment.url}/dags/{DAG_ID}/runs/{_quoted(waiting_run)}/tasks/{APPROVAL_TASK}/required_actions")
    page.get_by_test_id("hitl-option-Approve").wait_for(state="visible")
    heading = page.get_by_role("heading", name=TITLE)
    heading.wait_for(state="visible")
    panel = heading.locator("xpath=..")  # the rendered Markdown body of the request
    links: dict[str, str] = {}
    evidence_links = []
    for anchor in panel.locator("a").all():
        label, href = _words(anchor.inner_text()), anchor.get_attribute("href") or ""
        links.setdefault(label, href)
        if "evidence folder" in label.lower():
            evidence_links.append(href)
    shot = save_screenshot(page, tmp_path_factory.mktemp("approval"), "approval-page.png")
    try:
        yield ApprovalView(
            page=page,
            text=_words(panel.inner_text()),
            gates=_table(panel, "verdict"),
            sections=_sections(panel),
            links=links,
            evidence_links=evidence_links,
            screenshot=shot,
        )
    finally:
        page.context.close()


def _verdicts(view: ApprovalView) -> dict[str, str]:
    return {_task_of(row.get("task", "")): row.get("verdict", "") for row in view.gates}


def _shown_number(text: str, name: str) -> float | None:
    """The value shown right after ``name`` (``accuracy 81.2%`` -> 0.812, ``accuracy=0.812`` -> 0.812)."""
    match = re.search(rf"\b{re.escape(name)}\b\W{{0,3}}(-?[\d,]*\.?\d+)\s*(%?)", text)
    if not match:
        return None
    value = float(match.group(1).replace(",", ""))
    return value / 100 if match.group(2) else value


# ------------------------------------------------------------------ the request, as alice reads it
def test_the_request_names_the_model_its_digests_and_who_decides(
    deployment: Deployment, waiting_run: str, approval_view: ApprovalView
) -> None:
    text = approval_view.text
    model_uri = _xcom(deployment, waiting_run, "register_model", "model_uri")
    assert model_uri.startswith("models:/credit-risk/")
    assert f"Model: {model_uri}" in text
    model_sha = _xcom(deployment, waiting_run, "attest_model", "subjects")[0]["digest"]["sha256"]
    assert re.search(rf"Model SHA-256: {model_sha}\b", text), text[:1500]
    assert re.search(r"Evidence SHA-256: [0-9a-f]{64}\b", text), text[:1500]
    assert "Approvals required: 1 from alice, bob" in text
    assert "May not approve (separation of duties): carol (triggered this DAG run)" in text
    # The header's facts are separate lines, not one run-on paragraph.
    lines = approval_view.page.get_by_role("heading", name=TITLE).locator("xpath=..").inner_text().splitlines()
    lines = lines[: next((i for i, line in enumerate(lines) if line.startswith("Responses so far")), len(lines))]
    for label in ("Model:", "Model SHA-256:", "Approvals required:", "May not approve", "Evidence:"):
        assert sum(line.strip().startswith(label) for line in lines) == 1, (label, lines[:20])
    # The MLflow evidence link opens the MLflow UI that `mlsecops airflow` started.
    mlflow_run = _xcom(deployment, waiting_run, "train_model")["mlflow_run_id"]
    assert approval_view.links.get(f"MLflow run {mlflow_run}", "").startswith("http://127.0.0.1:")
    assert approval_view.screenshot.stat().st_size < 400_000


def test_every_gate_is_listed_in_pipeline_order(approval_view: ApprovalView, upstream: dict[str, set[str]]) -> None:
    tasks = [_task_of(row.get("task", "")) for row in approval_view.gates]
    assert sorted(tasks) == sorted(set(upstream) - NOT_GATES), tasks  # each gate once (one try each here)
    for i, later in enumerate(tasks):
        ran_after = [earlier for earlier in tasks[i + 1 :] if earlier in upstream[later]]
        assert not ran_after, f"{later} is listed before {ran_after}, which run before it"


def test_a_check_that_was_not_performed_reads_warned_not_passed(approval_view: ApprovalView) -> None:
    verdicts = _verdicts(approval_view)
    # The demo runs the SBOM gate without an OSV database: its vulnerability check is not performed.
    assert verdicts.get("build_sbom", "").startswith("warned"), verdicts
    for task, section in approval_view.sections.items():
        if re.search(r"not performed", section, re.IGNORECASE):
            assert not verdicts.get(task, "").startswith("passed"), (task, verdicts.get(task), section)
    assert set(approval_view.sections) == set(verdicts), "a gate in the table has no section (or one too many)"


def test_findings_and_numbers_read_as_a_person_would_write_them(approval_view: ApprovalView) -> None:
    text = approval_view.text
    assert not E_NOTATION.search(text), E_NOTATION.findall(text)
    # Every finding whole: the SBOM gate's finding to its last word (it used to stop at 80 characters).
    sbom = approval_view.sections.get("build_sbom", "")
    assert re.search(r"vulnerability check not performed: .*This is not a clean result", sbom), sbom
    # Byte counts with a unit (KiB/MiB), not a bare float.
    scan = _words(" ".join(row.get("metrics", "") for row in approval_view.gates if row.get("task", "").startswith("scan_model")))
    assert re.search(r"\d(?:\.\d+)? (?:KiB|MiB|GiB|kB|MB|bytes)", scan), scan


def test_it_shows_the_data_the_model_was_trained_and_checked_on(
    deployment: Deployment, waiting_run: str, approval_view: ApprovalView
) -> None:
    panel = approval_view.page.get_by_role("heading", name=TITLE).locator("xpath=..")
    datasets = _table(panel, "sha-256")
    training_digest = _xcom(deployment, waiting_run, "train_model")["training_data_sha256"]
    trained_on = [d for d in datasets if training_digest in d.get("sha-256", "")]
    assert trained_on, f"the training data ({training_digest}) is not in the data table: {datasets}"
    assert "train.csv" in trained_on[0].get("dataset", "") and trained_on[0].get("trained on") == "yes"
    assert "data-validation" in trained_on[0].get("checked by", "")
    reference = [d for d in datasets if "credit_reference.csv" in d.get("dataset", "")]
    assert reference and SHA256.search(reference[0].get("sha-256", "")), datasets
    assert "data-integrity" in reference[0].get("reference for", ""), reference


def test_it_shows_the_models_own_quality_and_where_it_came_from(
    deployment: Deployment, waiting_run: str, approval_view: ApprovalView
) -> None:
    text = approval_view.text
    trained = _xcom(deployment, waiting_run, "train_model")
    training = text[text.find("Training run") :]
    assert text.find("Training run") >= 0, "no training run section"
    for metric in ("accuracy", "roc_auc"):
        shown = _shown_number(training, metric)
        assert shown is not None and abs(shown - trained[metric]) < 0.0006, (metric, trained[metric], training[:500])
    assert re.search(r"DAG bundle version: \S+", text), "no DAG bundle version"


def test_the_request_links_to_the_mlsecops_page_of_its_run(waiting_run: str, approval_view: ApprovalView) -> None:
    href = approval_view.links.get("MLSecOps page of this DAG run", "")
    path = urllib.parse.urlsplit(href).path
    pages = (f"/mlsecops/dags/{DAG_ID}/dagRuns/{waiting_run}", f"/dags/{DAG_ID}/runs/{waiting_run}/plugin/mlsecops-evidence")
    assert urllib.parse.unquote(path) in pages, href  # the plugin's page, alone or as the run's Evidence tab


def test_it_compares_the_model_with_the_alias_holder(approval_view: ApprovalView) -> None:
    # The first model of the demo: nothing holds @champion yet, and the request says so.
    text = approval_view.text
    assert re.search(r"Compared with @champion .{0,40}no version of credit-risk holds @champion yet", text), text[-1500:]


def test_each_gate_links_to_its_own_evidence(deployment: Deployment, waiting_run: str, approval_view: ApprovalView) -> None:
    mlflow_run = _xcom(deployment, waiting_run, "train_model")["mlflow_run_id"]
    links = approval_view.evidence_links
    assert len(links) == len(approval_view.gates), links
    for row in approval_view.gates:
        task = _task_of(row.get("task", ""))
        mine = [link for link in links if f"/runs/{mlflow_run}/artifacts/mlsecops/evidence/{task}/" in link]
        assert mine and mine[0].startswith("http://127.0.0.1:"), (task, links)


def test_it_shows_the_responses_so_far(approval_view: ApprovalView) -> None:
    assert re.search(r"Responses so far No response yet", approval_view.text), approval_view.text[:2000]


# ------------------------------------------------------------------ alice approves in the UI
@pytest.fixture(scope="module")
def approved_run(deployment: Deployment, waiting_run: str, approval_view: ApprovalView) -> dict[str, Any]:
    """alice clicks Approve on the page she read; the run goes on to the promotion (whose outcome
    ``test_alice_approves_in_the_ui_and_the_model_is_promoted`` checks)."""
    page = approval_view.page
    page.get_by_test_id("hitl-option-Approve").click()
    _wait_for(
        deployment,
        waiting_run,
        lambda s: s.get(APPROVAL_TASK) == "success" and s.get("promote_model") in ("success", "failed"),
        "the promotion",
        timeout=300,
    )
    status, detail = deployment.call(
        "alice", "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_quoted(waiting_run)}/taskInstances/{APPROVAL_TASK}/-1/hitlDetails"
    )
    assert status == 200, detail
    return detail


def test_alice_approves_in_the_ui(deployment: Deployment, waiting_run: str, approved_run: dict[str, Any]) -> None:
    assert approved_run["response_received"] is True
    assert approved_run["chosen_options"] == ["Approve"]
    assert approved_run["responded_by_user"]["name"] == "alice"
    assert deployment.task_states(waiting_run)[APPROVAL_TASK] == "success"


def test_the_approved_model_is_promoted(deployment: Deployment, waiting_run: str, approved_run: dict[str, Any]) -> None:
    assert deployment.task_states(waiting_run)["promote_model"] == "success"
    deadline = time.monotonic() + 120
    while deployment.run_state(waiting_run) == "running" and time.monotonic() < deadline:
        time.sleep(2)
    assert deployment.run_state(waiting_run) == "success"


def test_after_the_decision_the_request_shows_who_answered(
    deployment: Deployment, waiting_run: str, approved_run: dict[str, Any], approval_view: ApprovalView
) -> None:
    page = approval_view.page
    page.reload()
    page.get_by_role("heading", name=TITLE).wait_for(state="visible")
    page.get_by_text("Response received at").first.wait_for(state="visible")
    body = " ".join(page.locator("body").inner_text().split())
    assert re.search(r"Response received at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d from alice", body), body[:3000]
    assert page.get_by_test_id("hitl-option-Approve").is_disabled()
    assert page.get_by_test_id("hitl-option-Reject").is_disabled()


# ------------------------------------------------------------------ the MLSecOps page
def _responded_minute(approved_run: dict[str, Any]) -> str:
    """The approval's time to the minute, as ``YYYY-MM-DD HH:MM`` (UTC)."""
    when = datetime.fromisoformat(str(approved_run["responded_at"]).replace("Z", "+00:00"))
    return when.strftime("%Y-%m-%d %H:%M")


@dataclass
class EvidenceView:
    text: str
    gates: list[tuple[str, str]]  # (task, the gate's heading: name and verdict), in the order shown
    approvals: list[dict[str, str]]  # the approval table: header -> cell text
    screenshot: Path


def _page_gates(page: Any) -> list[tuple[str, str]]:
    found = []
    for section in page.locator("section.gate").all():
        where = _words(section.locator("div.muted").first.inner_text())
        match = re.match(r"task (\S+), try", where)
        found.append((match.group(1) if match else where, _words(section.locator("h3").inner_text())))
    return found


def _assert_pipeline_order(tasks: list[str], upstream: dict[str, set[str]]) -> None:
    """Every gate of the DAG is there (the approval and the promotion record evidence too, maybe more
    than once), nothing else, and nothing is listed before a task that ran before it."""
    assert set(upstream) - NOT_GATES <= set(tasks) <= set(upstream), tasks
    for i, later in enumerate(tasks):
        ran_after = [earlier for earlier in tasks[i + 1 :] if earlier in upstream[later]]
        assert not ran_after, f"{later} is listed before {ran_after}, which run before it"


@pytest.fixture(scope="module")
def evidence_view(
    browser: Any,
    deployment: Deployment,
    waiting_run: str,
    approved_run: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EvidenceView]:
    """The plugin's page of the approved DAG run, opened as alice (re-verified when it opens)."""
    page = login(browser, deployment, "alice")
    try:
        response = page.goto(f"{deployment.url}/mlsecops/dags/{DAG_ID}/dagRuns/{_quoted(waiting_run)}")
        assert response is not None and response.status == 200, (response and response.status, page.content()[:2000])
        shot = save_screenshot(page, tmp_path_factory.mktemp("mlsecops"), "mlsecops-standalone.png", publish=False)
        approval = page.get_by_role("heading", name="Approval").locator("xpath=following-sibling::table[1]")
        yield EvidenceView(
            text=_words(page.locator("body").inner_text()),
            gates=_page_gates(page),
            approvals=_table(approval.locator("xpath=.."), "who") if approval.count() else [],
            screenshot=shot,
        )
    finally:
        page.context.close()


def test_the_mlsecops_page_and_api_need_a_login(browser: Any, deployment: Deployment, waiting_run: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{deployment.url}/mlsecops/dags/{DAG_ID}/dagRuns/{_quoted(waiting_run)}")
        assert response is not None and response.status == 401
        api = page.goto(f"{deployment.url}/mlsecops/api/v1/dags/{DAG_ID}/dagRuns/{_quoted(waiting_run)}/evidence")
        assert api is not None and api.status == 401
    finally:
        context.close()


def test_the_mlsecops_page_shows_the_verified_chain_and_the_gates(
    evidence_view: EvidenceView, upstream: dict[str, set[str]]
) -> None:
    assert re.match(
        r"Evidence of secure_training_pipeline / \S+ VERIFIED: every signature, digest and ledger", evidence_view.text
    ), evidence_view.text[:500]
    _assert_pipeline_order([task for task, _ in evidence_view.gates], upstream)
    headings = dict(evidence_view.gates)
    assert re.search(r"\bwarned\b", headings["build_sbom"]), headings["build_sbom"]
    gates = {task: h for task, h in headings.items() if task not in NOT_GATES}
    assert all(re.search(r"\b(passed|warned)\b", h) for h in gates.values()), gates


def test_the_mlsecops_page_shows_the_promotion(evidence_view: EvidenceView) -> None:
    headings = dict(evidence_view.gates)
    assert re.search(r"\bpassed\b", headings.get("promote_model", "")), headings.get("promote_model")


def test_the_mlsecops_page_shows_the_approval(evidence_view: EvidenceView, approved_run: dict[str, Any]) -> None:
    approvals = evidence_view.approvals
    assert [(a.get("who"), a.get("choice")) for a in approvals] == [("alice", "Approve")], approvals
    assert _responded_minute(approved_run) in approvals[0].get("when", "").replace("T", " "), approvals
    assert re.search(r"Decision: approved", evidence_view.text), evidence_view.text[:1500]


def test_the_mlsecops_api_answers_the_browser_with_the_verified_chain(
    browser: Any, deployment: Deployment, waiting_run: str, approved_run: dict[str, Any], upstream: dict[str, set[str]]
) -> None:
    page = login(browser, deployment, "alice")
    try:
        url = f"{deployment.url}/mlsecops/api/v1/dags/{DAG_ID}/dagRuns/{_quoted(waiting_run)}/evidence"
        response = page.request.get(url)  # the browser's own login (the _token cookie), no bearer token
        assert response.status == 200, response.text()
        review = response.json()
        assert review["verified"] is True and review["failures"] == [], review.get("failures")
        _assert_pipeline_order([g["task"] for g in review["gates"]], upstream)
    finally:
        page.context.close()


def test_the_evidence_tab_of_the_dag_run_shows_the_page(
    browser: Any, deployment: Deployment, waiting_run: str, approved_run: dict[str, Any], tmp_path: Path
) -> None:
    page = login(browser, deployment, "alice")
    try:
        page.goto(f"{deployment.url}/dags/{DAG_ID}/runs/{_quoted(waiting_run)}/plugin/mlsecops-evidence")
        frame = page.frame_locator("iframe").first
        frame.get_by_text("VERIFIED:").wait_for(state="visible")
        inner = _words(frame.locator("body").inner_text())
        assert "build_sbom" in inner and "alice" in inner
        save_screenshot(page, tmp_path, "mlsecops-page.png")  # the README's picture: the page inside Airflow
    finally:
        page.context.close()


def test_the_model_page_shows_the_promotion(
    browser: Any, deployment: Deployment, waiting_run: str, approved_run: dict[str, Any]
) -> None:
    version = str(_xcom(deployment, waiting_run, "register_model", "version"))
    page = login(browser, deployment, "alice")
    try:
        response = page.goto(f"{deployment.url}/mlsecops/models/credit-risk")
        assert response is not None and response.status == 200
        aliases = _table(page.locator("main"), "alias")
        assert {"alias": "champion", "version": version} in aliases, aliases
        versions = _table(page.locator("main"), "approved by")
        mine = [v for v in versions if v.get("version") == version]
        assert mine and mine[0].get("approved by") == "alice" and SHA256.search(mine[0].get("sha256", "")), versions
    finally:
        page.context.close()
