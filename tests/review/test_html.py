"""The self-contained HTML page of a review: what it shows, that it loads nothing, and the NOT VERIFIED case."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from airflow_mlsecops.review import run_review
from airflow_mlsecops.review.html import render_html
from tests.review.conftest import LONG_MESSAGE, Scenario, tampered_run
from tests.review.test_view import PIPELINE_ORDER

pytestmark = pytest.mark.slow


class _Loads(HTMLParser):
    """Every element that would fetch something, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.fetching: list[tuple[str, list]] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        names = {name for name, _ in attrs}
        fetches = tag in ("script", "link", "img", "iframe", "object", "embed", "video", "audio", "source", "base", "form")
        if fetches or names & {"src", "srcset", "poster", "background", "action"}:
            self.fetching.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Loads:
    parser = _Loads()
    parser.feed(page)
    return parser


def test_the_page_shows_everything_and_loads_nothing(scenario: Scenario) -> None:
    page = render_html(scenario.review, model=scenario.model)
    parsed = _parse(page)
    assert parsed.fetching == []
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # and the browser is told to fetch nothing either
    text = " ".join(" ".join(parsed.text).split())
    assert "VERIFIED: every signature, digest and ledger entry checks out" in text and "NOT VERIFIED" not in text
    positions = [page.index(f"mlsecops/evidence/{scope}<") for scope in PIPELINE_ORDER]
    assert positions == sorted(positions)  # pipeline order
    assert LONG_MESSAGE.replace("'", "&#x27;") in page
    assert "127.5 KiB (130,600 bytes)" in text and "1.25%" in text
    assert "sbom.vulnerability-check-not-performed: vulnerability check not performed: no OSV database (osv_db)" in text
    assert "carol may not approve: authored the model" in text
    assert scenario.candidate.digest in text and scenario.candidate.data_digest in text
    (key,) = scenario.review.signing_keys
    assert key["keyid"] in text
    assert "Registered model credit" in text and "Rollbacks" in text and "Alias history" in text
    assert "+3.25 pp" in text


def test_not_verified_is_said_first(scenario: Scenario) -> None:
    review = run_review(tampered_run(scenario), settings=scenario.home, store=scenario.store)
    page = render_html(review)
    body = page.split("<body>", 1)[1]
    assert body.index("NOT VERIFIED") < body.index("<h2>")
    assert 'class="banner bad"' in page and "file:result.json" in page
    assert "This record does not verify" in page


def test_evidence_text_is_escaped(scenario: Scenario) -> None:
    review = run_review(scenario.review.mlflow_run_id, settings=scenario.home, store=scenario.store)
    review.gates[0]["findings"] = [
        {"id": "x", "severity": "high", "message": "<script>alert(1)</script>", "location": None, "passed": False}
    ]
    page = render_html(review)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_real_browser_fetches_nothing_but_the_file(scenario: Scenario, tmp_path: Path) -> None:
    chromium = os.environ.get("MLSECOPS_TEST_CHROMIUM")
    if not chromium or not Path(chromium).exists():
        pytest.skip("no Chromium (MLSECOPS_TEST_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    report = tmp_path / "report.html"
    report.write_text(render_html(scenario.review, model=scenario.model), encoding="utf-8")
    requested: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(report.as_uri())
            assert page.locator(".banner").inner_text().startswith("VERIFIED")
            assert page.locator("section.gate").count() == len(PIPELINE_ORDER)
        finally:
            browser.close()
    assert requested == [report.as_uri()]
