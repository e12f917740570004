"""The approval request's body in Markdown, as Airflow's *Required actions* page renders it.

>>> from airflow_mlsecops.review.markdown import render_request
>>> body = render_request(request, review, title="Approve credit v2", run_url=url)   # doctest: +SKIP

Airflow 3.3 renders the body with react-markdown, GitHub tables and ``skipHtml`` (raw HTML such as
``<details>`` is dropped, with everything between its tags on the same line): so nothing here is
HTML, every finding is listed in full, and text that comes from evidence is escaped (a ``<`` in a
finding would otherwise make the rest of the line vanish). Every header line is its own list item,
so lines never run together. Airflow keeps a request's body as first shown (re-opening it after a
response that did not decide changes nothing of it): ``live_url`` links to the MLSecOps page of the
DAG run, where every response appears as it arrives.

Pure: no Airflow or MLflow import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlsecops.review.numbers import format_time, verdict_counts

#: Characters with a meaning in (GitHub) Markdown, backslash-escaped in text taken from evidence; an
#: underscore only where it could start or end emphasis (``sign_model`` and ``dag_test`` stay as they are).
_SPECIAL = re.compile(r"([\\`*{}\[\]<>#|~!]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def text(value: Any) -> str:
    """Evidence text as literal Markdown: special characters escaped, one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def code(value: Any) -> str:
    """A code span holding ``value`` (backticks inside become a longer fence)."""
    raw = " ".join(str(value).split())
    fence = "``" if "`" in raw else "`"
    return f"{fence} {raw} {fence}" if fence == "``" else f"`{raw}`"


def link(label: str, url: str | None) -> str:
    if not url:
        return label
    return f"[{label}]({url.replace(' ', '%20').replace(')', '%29')})"


def _metrics_cell(metrics: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{text(m['name'])} {text(m['display'])}" for m in metrics) or "—"


def _gate_section(index: int, gate: Mapping[str, Any]) -> list[str]:
    """What the table cannot hold: the evidence link, what was not performed, every finding."""
    findings = gate.get("findings") or []
    problems = [f for f in findings if not f.get("passed")]
    held = [f for f in findings if f.get("passed")]
    verdict = gate.get("verdict_label") or gate["verdict"]
    lines = [f"##### {index}. {text(gate['gate'])} ({text(gate.get('task') or '—')}): {text(verdict)}", ""]
    items: list[str] = []
    if gate.get("summary"):
        items.append(f"- {text(gate['summary'])}")
    if gate.get("evidence_url"):
        items.append(f"- Evidence: {link('evidence folder in MLflow', gate['evidence_url'])} ({code(gate.get('evidence_dir'))})")
    elif gate.get("evidence_dir"):
        items.append(f"- Evidence: {code(gate['evidence_dir'])}")
    if gate.get("check_failures"):
        for check in gate["check_failures"]:
            items.append(f"- **Does not verify:** {text(check['check'])}: {text(check['detail'])}")
    for reason in gate.get("not_performed") or []:
        items.append(f"- **Not performed:** {text(reason)}")
    for finding in problems:
        where = f" (at {code(finding['location'])})" if finding.get("location") else ""
        items.append(f"- **{text(finding['severity'])}** {code(finding['id'])}: {text(finding['message'])}{where}")
    if held:
        items.append(f"- Checks that held ({len(held)}): " + ", ".join(code(f["id"]) for f in held))
    if not gate.get("latest", True):
        items.append("- An earlier try of this task: a later one follows.")
    return [*lines, *items, ""]


def _header(request: Mapping[str, Any], review: Any | None, run_url: str | None, live_url: str | None) -> list[str]:
    lines = [
        f"- **Model:** {code(request['model_uri'])}",
        f"- **Model SHA-256:** {code(request['model_sha256'])}",
        f"- **Evidence SHA-256:** {code(request['evidence_sha256'])} (an approval is void if either digest changes)",
        f"- **Approvals required:** {request['required_approvals']}"
        + (f" from {', '.join(text(r) for r in request['reviewers'])}" if request.get("reviewers") else ""),
    ]
    excluded = request.get("excluded") or {}
    if excluded:
        lines.append(
            "- **May not approve (separation of duties):** "
            + ", ".join(f"{text(u)} ({text(why)})" for u, why in excluded.items())
        )
    run = request["mlflow_run_id"]
    evidence = f"- **Evidence:** {link(f'MLflow run {run}', run_url)}" if run_url else f"- **Evidence:** MLflow run {code(run)}"
    if review is not None:
        evidence += (
            f", verified now ({review.checks.get('ok', 0)} checks passed)"
            if review.verified
            else f", **NOT VERIFIED** ({len(review.failures)} check(s) failed)"
        )
    lines.append(evidence)
    if review is not None:
        model = review.model or {}
        if model.get("name"):
            lines.append(f"- **Registered as:** {text(model['name'])} version {text(model.get('version'))}")
        lines.append(
            "- **DAG bundle version:** "
            + (code(review.bundle_version) if review.bundle_version else "none (the DAG bundle is not versioned)")
        )
    if live_url:
        lines.append(f"- **Live view:** {link('MLSecOps page of this DAG run', live_url)} (re-verified when opened)")
    return lines


def _responses(review: Any | None, tally: Mapping[str, Any] | None, live_url: str | None) -> list[str]:
    lines = ["#### Responses so far", ""]
    responses = list(review.responses) if review is not None else []
    if responses:
        for r in responses:
            outcome = r.get("outcome") or "—"
            shown = f"**{text(outcome)}**" if outcome in ("refused", "rejected") else text(outcome)
            lines.append(
                f"- {text(r.get('user'))} chose {text(r.get('choice'))} at {text(format_time(r.get('responded_at')))}: {shown}"
                + (f" ({text(r['reason'])})" if r.get("reason") else "")
            )
    elif tally and (tally.get("approvals") or tally.get("refused")):
        for a in tally.get("approvals") or []:
            when = text(format_time(a.get("responded_at")))
            lines.append(f"- {text(a.get('name') or a.get('id'))} approved at {when}: counted")
        for r in tally.get("refused") or []:
            lines.append(
                f"- {text(r.get('name') or r.get('id'))} at {text(format_time(r.get('responded_at')))}: "
                f"**refused** ({text(r.get('reason'))})"
            )
    else:
        lines.append("- No response yet.")
    if live_url:
        # Airflow keeps an open request's body as first shown, even when the request is re-opened.
        lines.append(f"- Responses given after this request opened are listed on the {link('MLSecOps page', live_url)}.")
    return [*lines, ""]


def _gates(gates: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [f"#### Gates, in pipeline order ({len(gates)})", ""]
    if not gates:
        return [*lines, "- No gate recorded evidence in this run.", ""]
    lines += ["| # | gate | task | verdict | metrics | problems |", "|---|---|---|---|---|---|"]
    for index, gate in enumerate(gates, start=1):
        task = text(gate.get("task") or "—") + ("" if gate.get("try_number") in (None, 1) else f" (try {gate['try_number']})")
        verdict = f"**{text(gate.get('verdict_short') or gate['verdict'])}**"
        verdict += "" if gate.get("verified", True) else " (does not verify)"
        lines.append(
            f"| {index} | {text(gate['gate'])} | {task} | {verdict} | {_metrics_cell(gate.get('metrics') or [])} | "
            f"{gate.get('problems', 0)} |"
        )
    lines.append("")
    for index, gate in enumerate(gates, start=1):
        lines += _gate_section(index, gate)
    return lines


def _datasets(review: Any) -> list[str]:
    if not review.datasets:
        return ["#### Data", "", "- No data gate or training data declaration names a dataset.", ""]
    lines = ["#### Data", "", "| dataset | SHA-256 | trained on | checked by | reference for |", "|---|---|---|---|---|"]
    for d in review.datasets:
        checked = ", ".join(f"{text(c['gate'])} ({text(c['verdict'])})" for c in d.get("checked_by", [])) or "—"
        reference = ", ".join(text(c["gate"]) for c in d.get("reference_for", [])) or "—"
        names = ", ".join(code(n) for n in d.get("names") or []) or "—"
        lines.append(f"| {names} | {code(d['sha256'])} | {'yes' if d.get('trained_on') else 'no'} | {checked} | {reference} |")
    return [*lines, ""]


def _training(review: Any) -> list[str]:
    training = review.training
    if not training:
        return []
    lines = ["#### Training run", ""]
    if training.get("error"):
        return [*lines, f"- Could not be read: {text(training['error'])}", ""]
    label = f"{training.get('run_name') or training.get('run_id')}"
    lines.append(f"- Run: {link(text(label), training.get('url'))} ({code(training.get('run_id'))})")
    if training.get("metrics"):
        lines.append("- Metrics: " + ", ".join(f"{text(m['name'])} {text(m['display'])}" for m in training["metrics"]))
    if training.get("params"):
        lines.append("- Parameters: " + ", ".join(f"{text(k)}={code(v)}" for k, v in training["params"].items()))
    return [*lines, ""]


def _comparison(review: Any) -> list[str]:
    c = review.comparison
    if not c:
        return []
    alias = text(c.get("alias"))
    heading = f"#### Compared with @{alias}" + (f" (version {text(c['version'])})" if c.get("version") else "")
    lines = [heading, ""]
    if c.get("note"):
        lines += [f"- {text(c['note'])}", ""]
    if c.get("same_version"):
        lines += ["- This model already holds the alias.", ""]
    if c.get("metrics"):
        lines += [f"| metric | this model | @{alias} | change |", "|---|---|---|---|"]
        for m in c["metrics"]:
            change = text(m.get("change_display", "—"))
            lines.append(f"| {text(m['name'])} | {text(m['this_display'])} | {text(m['holder_display'])} | {change} |")
        lines.append("")
    if c.get("version"):
        if c.get("gates_changed"):
            lines.append("- Gates whose verdict changed:")
            lines += [
                f"  - {text(g['gate'])}: **{text(g['this'])}** here, {text(g['holder'])} for @{alias}" for g in c["gates_changed"]
            ]
        else:
            lines.append("- No gate's verdict changed.")
        if c.get("holder_verified") is False:
            lines.append(f"- **The evidence of the @{alias} holder does not verify.**")
        lines.append("")
    return lines


def render_request(
    request: Mapping[str, Any],
    gates: Sequence[Mapping[str, Any]],
    *,
    title: str,
    run_url: str | None,
    review: Any | None = None,
    tally: Mapping[str, Any] | None = None,
    live_url: str | None = None,
) -> str:
    """The body of an approval request.

    :param request: ``ApprovalRequest.to_dict()``.
    :param gates: the gates, in pipeline order (``RunReview.gates`` or :func:`gate_rows`).
    :param review: the run's :class:`~airflow_mlsecops.review.view.RunReview` (data, training
        run, comparison, responses); without it only the gates are shown.
    :param tally: the responses counted so far, when no review says them.
    :param live_url: the MLSecOps page of the DAG run, where responses given later appear.
    """
    verdicts = f"- **Verdicts:** {text(verdict_counts(gates))}"
    lines = [f"### {text(title)}", "", verdicts, *_header(request, review, run_url, live_url), ""]
    lines += _responses(review, tally, live_url)
    lines += _gates(gates)
    if review is not None:
        lines += _datasets(review)
        lines += _training(review)
        lines += _comparison(review)
    return "\n".join(lines).rstrip("\n") + "\n"


def gate_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Gate entries from signed results alone (no verification report at hand), in the mapping's
    order (a verification report's ``results`` are in ledger order)."""
    from airflow_mlsecops import gate_names
    from airflow_mlsecops.review.view import metric_rows, not_performed_of, verdict_label, verdict_short

    newest: dict[str, str] = {}
    shown = {scope: r for scope, r in results.items() if r.gate not in gate_names.APPROVAL_BOOKKEEPING}
    for scope in shown:
        newest[scope.rsplit("/", 1)[0]] = scope
    rows = []
    for scope, result in shown.items():
        findings = [
            {"id": f.id, "severity": f.severity.value, "message": f.message, "location": f.location, "passed": f.passed}
            for f in sorted(result.findings, key=lambda f: (f.passed, -f.severity.rank))
        ]
        rows.append(
            {
                "scope": scope,
                "gate": result.gate,
                "task": result.context.task_id if result.context else scope,
                "try_number": result.context.try_number if result.context else None,
                "verdict": result.verdict.value,
                "verdict_label": verdict_label(result),
                "verdict_short": verdict_short(result),
                "summary": result.summary,
                "metrics": metric_rows(result.metrics),
                "findings": findings,
                "problems": sum(1 for f in findings if not f["passed"]),
                "not_performed": not_performed_of(result),
                "evidence_dir": f"mlsecops/evidence/{scope}",
                "evidence_url": None,
                "latest": newest[scope.rsplit("/", 1)[0]] == scope,
            }
        )
    return rows
