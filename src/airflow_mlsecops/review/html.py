"""HTML rendering of a review: one self-contained page (inline CSS, no script, nothing fetched).

>>> from airflow_mlsecops.review.html import render_html
>>> page = render_html(review)                     # doctest: +SKIP
>>> Path("report.html").write_text(page)           # doctest: +SKIP

The page opens offline: no script, no stylesheet, image or font from anywhere; links to the MLflow
UI are plain anchors a reader may follow or not. Every value is HTML-escaped. Evidence that does
not verify is said first, in a red banner: ``NOT VERIFIED``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from airflow_mlsecops.review.numbers import format_time
from airflow_mlsecops.review.view import ModelReview, RunReview

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:16px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 12px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;word-break:break-all}
.banner{padding:12px 16px;border-radius:6px;font-size:18px;font-weight:700;margin:12px 0}
.ok{background:#dafbe1;color:#116329;border:1px solid #4ac26b}
.bad{background:#ffebe9;color:#a40e26;border:2px solid #cf222e}
.verdict{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}
.v-passed{background:#dafbe1;color:#116329}.v-failed,.v-error{background:#ffebe9;color:#a40e26}
.v-warned{background:#fff8c5;color:#7d4e00}.v-other{background:#eef1f4;color:#57606a}
.gate{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;margin:10px 0}
.gate.superseded{opacity:.7}
.muted{color:#57606a}.warn{color:#7d4e00;font-weight:600}
ul{margin:4px 0 8px 20px;padding:0}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:6px 0}dt{font-weight:600}dd{margin:0}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _verdict(verdict: str | None) -> str:
    name = verdict or "unknown"
    css = f"v-{name}" if name in ("passed", "failed", "error", "warned") else "v-other"
    return f'<span class="verdict {css}">{_e(name)}</span>'


def _link(url: str | None, text: str) -> str:
    return f'<a href="{_e(url)}">{_e(text)}</a>' if url else _e(text)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dl(items: Mapping[str, str]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items.items()) + "</dl>"


def _gate_html(gate: Mapping[str, Any]) -> str:
    where = f"task <code>{_e(gate.get('task'))}</code>, try {_e(gate.get('try_number'))}" if gate.get("task") else ""
    superseded = "" if gate.get("latest", True) else ' <span class="muted">(an earlier try; a later one follows)</span>'
    parts = [
        f'<section class="gate{"" if gate.get("latest", True) else " superseded"}">',
        f"<h3>{_e(gate['gate'])} {_verdict(gate.get('verdict'))}"
        + (f' <span class="muted">{_e(gate["verdict_label"])}</span>' if gate.get("verdict") == "warned" else "")
        + "</h3>",
        f'<div class="muted">{where}, ledger seq {_e(gate.get("ledger_seq"))}, '
        f"signed by key <code>{_e((gate.get('keyid') or '')[:16])}…</code>{superseded}</div>",
        f"<p>{_e(gate.get('summary'))}</p>",
    ]
    if not gate.get("verified", True):
        problems = "".join(f"<li>{_e(c['check'])}: {_e(c['detail'])}</li>" for c in gate.get("check_failures", []))
        parts.append(f'<p class="warn">This record does not verify:</p><ul>{problems}</ul>')
    if gate.get("not_performed"):
        items = "".join(f"<li>{_e(n)}</li>" for n in gate["not_performed"])
        parts.append(f'<p class="warn">Not performed:</p><ul>{items}</ul>')
    if gate.get("metrics"):
        parts.append(_table(["metric", "value"], ([f"<code>{_e(m['name'])}</code>", _e(m["display"])] for m in gate["metrics"])))
    findings = gate.get("findings") or []
    if findings:
        rows = (
            [
                _e("passed" if f.get("passed") else f.get("severity")),
                f"<code>{_e(f['id'])}</code>",
                _e(f.get("message")),
                f"<code>{_e(f.get('location'))}</code>" if f.get("location") else "",
            ]
            for f in findings
        )
        parts.append(f"<p>{len(findings)} finding(s), {gate.get('problems', 0)} problem(s):</p>")
        parts.append(_table(["severity", "id", "message", "location"], rows))
    if gate.get("subjects"):
        rows = ([_e(s["name"]), f"<code>{_e(s['sha256'])}</code>"] for s in gate["subjects"])
        parts.append(_table(["subject", "sha256"], rows))
    parts.append(f"<p>Evidence: {_link(gate.get('evidence_url'), gate.get('evidence_dir') or '')}</p>")
    parts.append("</section>")
    return "".join(parts)


def _run_html(review: RunReview) -> str:
    out: list[str] = []
    if review.verified:
        out.append(
            f'<div class="banner ok">VERIFIED: every signature, digest and ledger entry checks out '
            f"({review.checks.get('ok', 0)} checks passed)</div>"
        )
    else:
        out.append(
            f'<div class="banner bad">NOT VERIFIED: {len(review.failures)} check(s) failed. Do not rely on this evidence.</div>'
        )
        rows = ([_e(f["scope"]), _e(f["check"]), _e(f["detail"])] for f in review.failures)
        out.append("<h2>Failed checks</h2>" + _table(["scope", "check", "detail"], rows))
    model = review.model or {}
    overview = {
        "MLflow run": _link(review.run_url, review.mlflow_run_id),
        "DAG run": f"<code>{_e(review.dag_id)}</code> / <code>{_e(review.dag_run_id)}</code>",
        "DAG bundle version": _e(review.bundle_version or "none (the DAG bundle is not versioned)"),
        "tracking store": f"<code>{_e(review.tracking_uri)}</code>",
    }
    if model:
        overview["model"] = f"<code>{_e(model.get('uri'))}</code>"
        if model.get("name"):
            overview["registered as"] = f"{_e(model['name'])} version {_e(model.get('version'))}"
        overview["model SHA-256"] = f"<code>{_e(model.get('sha256'))}</code>"
    out.append("<h2>Overview</h2>" + _dl(overview))

    decision = review.decision
    if decision or review.responses:
        out.append("<h2>Approval</h2>")
        if decision:
            badge = _verdict(decision.get("verdict")) if decision.get("verdict") else ""
            out.append(f"<p><b>Decision:</b> {_e(decision.get('decision'))} {badge} &mdash; {_e(decision.get('summary'))}</p>")
        if review.responses:
            rows = (
                [
                    _e(r.get("user")),
                    _e(format_time(r.get("responded_at"))),
                    _e(r.get("choice")),
                    _e(r.get("outcome")),
                    _e(r.get("reason")),
                ]
                for r in review.responses
            )
            out.append(_table(["who", "when", "choice", "outcome", "reason"], rows))
        else:
            out.append("<p>No response yet.</p>")

    out.append(f"<h2>Gates ({len(review.gates)}, in pipeline order)</h2>")
    out.extend(_gate_html(g) for g in review.gates)

    if review.datasets:
        out.append("<h2>Datasets</h2>")
        dataset_rows: list[list[str]] = []
        for d in review.datasets:
            checked = ", ".join(f"{c['gate']} ({c['verdict']})" for c in d.get("checked_by", []))
            reference = ", ".join(f"{c['gate']}" for c in d.get("reference_for", []))
            dataset_rows.append(
                [
                    _e(", ".join(d.get("names") or []) or "—"),
                    f"<code>{_e(d['sha256'])}</code>",
                    _e("yes" if d.get("trained_on") else "no"),
                    _e(checked or "—"),
                    _e(reference or "—"),
                ]
            )
        out.append(_table(["dataset", "sha256", "trained on", "checked by", "reference for"], dataset_rows))

    training = review.training
    if training:
        out.append("<h2>Training run</h2>")
        if training.get("error"):
            out.append(f'<p class="warn">{_e(training["error"])}</p>')
        else:
            out.append(
                f"<p>{_link(training.get('url'), training.get('run_name') or training.get('run_id') or '')}"
                f" <span class='muted'>({_e(training.get('run_id'))}, by {_e(training.get('user') or 'unknown')})</span></p>"
            )
            if training.get("metrics"):
                out.append(_table(["metric", "value"], ([_e(m["name"]), _e(m["display"])] for m in training["metrics"])))
            if training.get("params"):
                out.append(
                    _table(["parameter", "value"], ([_e(k), f"<code>{_e(v)}</code>"] for k, v in training["params"].items()))
                )

    comparison = review.comparison
    if comparison:
        out.append(f"<h2>Compared with @{_e(comparison.get('alias'))}</h2>")
        if comparison.get("version"):
            out.append(
                f"<p>{_e(comparison.get('name'))} version {_e(comparison['version'])} holds @{_e(comparison.get('alias'))}"
                f" (sha256 <code>{_e(comparison.get('model_sha256'))}</code>).</p>"
            )
        if comparison.get("note"):
            out.append(f"<p class='muted'>{_e(comparison['note'])}</p>")
        if comparison.get("metrics"):
            rows = (
                [_e(m["name"]), _e(m["this_display"]), _e(m["holder_display"]), _e(m.get("change_display", "—"))]
                for m in comparison["metrics"]
            )
            out.append(_table(["metric", "this model", f"@{comparison.get('alias')}", "change"], rows))
        if comparison.get("gates_changed"):
            rows = ([_e(g["gate"]), _verdict(g["this"]), _verdict(g["holder"])] for g in comparison["gates_changed"])
            out.append(_table(["gate whose verdict changed", "this model", f"@{comparison.get('alias')}"], rows))
        elif comparison.get("version"):
            out.append("<p>No gate's verdict changed.</p>")

    out.append("<h2>Signing keys</h2>")
    if review.signing_keys:
        rows = (
            [
                f"<code>{_e(k['keyid'])}</code>",
                _e(k.get("key_type")),
                _e(k.get("source")),
                _e(k.get("validity")),
                _e(k["records"]),
            ]
            for k in review.signing_keys
        )
        out.append(_table(["key id", "type", "trusted from", "valid", "records signed"], rows))
    else:
        out.append("<p class='warn'>No record was signed by a trusted key.</p>")
    out.append(f"<p class='muted'>Trusted keys configured: {len(review.trusted_keys)}. Generated {_e(review.generated_at)}.</p>")
    return "".join(out)


def _model_html(model: ModelReview) -> str:
    out = [f"<h2>Registered model {_e(model.name)}</h2>"]
    if model.aliases:
        out.append(_table(["alias", "version"], ([_e(a), _e(v)] for a, v in sorted(model.aliases.items()))))
    rows = (
        [
            _e(v["version"]),
            _e(", ".join(v.get("aliases") or []) or "—"),
            _e(v.get("status")),
            _e(v.get("created_at")),
            f"<code>{_e(v.get('model_sha256') or 'not registered by the gate')}</code>",
            _e(v.get("approved_by") or "—"),
            _e(v.get("promoted_at") or "—"),
            _e(("quarantined: " + str(v.get("quarantine_reason") or "")) if v.get("quarantined") else ""),
        ]
        for v in model.versions
    )
    out.append(_table(["version", "aliases", "status", "created", "sha256", "approved by", "promoted", "quarantine"], rows))
    extra = model.extra
    if extra.get("promotions"):
        rows = (
            [
                _e(p["alias"]),
                _e(p["version"]),
                _e(p.get("previous")),
                _e(p.get("promoted_at")),
                _e(p.get("approved_by")),
                f"<code>{_e(p.get('evidence'))}</code>",
            ]
            for p in extra["promotions"]
        )
        out.append(
            "<h3>Promotions</h3>" + _table(["alias", "version", "previous holder", "when", "approved by", "evidence"], rows)
        )
    if extra.get("rollbacks"):
        rows = (
            [
                _e(r.get("alias", "")),
                _e(r.get("from_version", "")),
                _e(r.get("to_version", "")),
                _e(r.get("rolled_back_at", "")),
                f"<code>{_e(r.get('evidence', ''))}</code>",
            ]
            for r in extra["rollbacks"]
        )
        out.append("<h3>Rollbacks</h3>" + _table(["alias", "rolled back from", "rolled back to", "when", "evidence"], rows))
    if extra.get("alias_history"):
        rows = ([_e(a), _e(" → ".join(map(str, h)) if isinstance(h, list) else h)] for a, h in extra["alias_history"].items())
        out.append("<h3>Alias history (oldest first)</h3>" + _table(["alias", "holders"], rows))
    return "".join(out)


def render_html(
    review: RunReview | ModelReview,
    *,
    title: str | None = None,
    model: ModelReview | None = None,
) -> str:
    """One self-contained HTML document (opens offline) showing ``review``; with ``model``, the
    registered model's history follows the run's evidence."""
    if isinstance(review, RunReview):
        heading = title or f"Evidence of MLflow run {review.mlflow_run_id}"
        body = _run_html(review) + (_model_html(model) if model is not None else "")
    else:
        heading = title or f"Registered model {review.name}"
        body = _model_html(review)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_e(heading)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{_e(heading)}</h1>{body}</main></body></html>\n"
    )
