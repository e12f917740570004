"""The review of one DAG run (its evidence, verified) and of one registered model (its history).

>>> from airflow_mlsecops.review import pipeline_run_review
>>> review = pipeline_run_review("secure_training_pipeline", "manual__2026-12-04")  # doctest: +SKIP
>>> review.verified, [g["gate"] for g in review.gates]                                # doctest: +SKIP
(True, ['data-validation', 'data-integrity', ...])

Every view re-verifies the evidence (:func:`~airflow_mlsecops.lifecycle.verification.verify_run`)
when it is built; gates are listed in ledger order (the order they were recorded: the pipeline's
order), each with every headline metric formatted for people (:mod:`.numbers`), every finding in
full, what was not performed, and a link to its evidence folder in the MLflow UI. Only signed
content is shown as a gate's result: a record whose signature does not verify appears among the
``failures``, never among the gates.

Pure: no Airflow import; MLflow is imported lazily by the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from airflow_mlsecops import gate_names
from airflow_mlsecops.review.numbers import format_metric

if TYPE_CHECKING:
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.models import GateResult
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.verification import VerificationReport

#: Run metrics of the training run that are the gates' own (``mlsecops.<task>.<metric>``), not the model's.
_GATE_METRIC_PREFIX = "mlsecops."
#: Registry steps recorded in a pipeline run after its approval (left out of a comparison of gates).
_AFTER_APPROVAL = frozenset((gate_names.MODEL_PROMOTION, gate_names.MODEL_ROLLBACK, gate_names.ALIAS_GUARD))


def redact_uri(uri: str | None) -> str | None:
    """``uri`` without its user part (``postgresql://user:<password>@db/...``, ``https://token@host``): a
    store URI is shown to every reader of a review (the UI, a report attached to a ticket), never its
    credentials."""
    if not uri:
        return uri
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[-1]))


@dataclass
class RunReview:
    """One pipeline run's evidence as a reviewer reads it, re-verified when built.

    ``to_dict()`` is the JSON the plugin's API serves: at least ``verified`` (bool), ``gates``
    (list, pipeline order), ``failures`` (list of failed verification checks).

    Each gate: ``gate``, ``task``, ``scope``, ``try_number``, ``verdict``, ``summary``, ``metrics``
    (``name``, ``value``, ``unit``, ``display``), ``findings`` (``id``, ``severity``, ``message``,
    ``location``, ``passed``, ``atlas``, ``owasp_ml``: every one, in full), ``problems`` (the number
    of findings that did not pass), ``not_performed`` (what the gate did not check; ``None`` when it
    checked everything), ``subjects``, ``evidence_dir``, ``evidence_url`` (``None`` without an MLflow
    UI URL), ``ledger_seq``, ``keyid``, ``latest`` (``False`` for an earlier try of the same task),
    ``verified`` (no failed check in its folder) and ``check_failures``.
    """

    mlflow_run_id: str
    verified: bool
    gates: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    tracking_uri: str = ""
    experiment_id: str | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    run_url: str | None = None
    bundle_version: str | None = None
    model: dict[str, Any] | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    training: dict[str, Any] | None = None
    responses: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    signing_keys: list[dict[str, Any]] = field(default_factory=list)
    trusted_keys: list[dict[str, str]] = field(default_factory=list)
    comparison: dict[str, Any] | None = None
    checks: dict[str, int] = field(default_factory=dict)
    generated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlflow_run_id": self.mlflow_run_id,
            "verified": self.verified,
            "gates": list(self.gates),
            "failures": list(self.failures),
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "dag_id": self.dag_id,
            "dag_run_id": self.dag_run_id,
            "run_url": self.run_url,
            "bundle_version": self.bundle_version,
            "model": self.model,
            "datasets": list(self.datasets),
            "training": self.training,
            "responses": list(self.responses),
            "decision": self.decision,
            "signing_keys": list(self.signing_keys),
            "trusted_keys": list(self.trusted_keys),
            "comparison": self.comparison,
            "checks": dict(self.checks),
            "generated_at": self.generated_at,
            **self.extra,
        }


@dataclass
class ModelReview:
    """One registered model: its versions, aliases, promotions and rollbacks.

    ``versions``: each version's ``version``, ``status``, ``created_at``, ``model_sha256``,
    ``pipeline_run_id``, ``dag_id``, ``dag_run_id``, ``aliases`` (held now), ``approved_by``,
    ``promoted_at``, ``quarantined``, ``quarantine_reason``, ``tags`` (its ``mlsecops.`` tags).
    ``aliases``: alias -> version now. ``extra`` holds ``alias_history`` (alias -> versions, newest
    last), ``promotions`` and ``rollbacks`` (each with version, alias, when and the evidence URI).
    """

    name: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "versions": list(self.versions), "aliases": dict(self.aliases), **self.extra}


# ----------------------------------------------------------------------------- building blocks
def evidence_folder_url(ui_url: str | None, experiment_id: str | None, mlflow_run_id: str, evidence_dir: str) -> str | None:
    """The MLflow UI page of one evidence folder, or ``None`` without a UI URL."""
    if not ui_url or experiment_id is None:
        return None
    return (
        f"{ui_url.rstrip('/')}/#/experiments/{quote(experiment_id, safe='')}/runs/{quote(mlflow_run_id, safe='')}"
        f"/artifacts/{quote(evidence_dir, safe='/')}"
    )


def run_page_url(ui_url: str | None, experiment_id: str | None, mlflow_run_id: str) -> str | None:
    if not ui_url or experiment_id is None:
        return None
    return f"{ui_url.rstrip('/')}/#/experiments/{quote(experiment_id, safe='')}/runs/{quote(mlflow_run_id, safe='')}"


def metric_rows(metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    """Every metric, in the gate's order, with its unit and a readable value."""
    rows = []
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            rows.append({"name": str(name), "value": value, "unit": "", "display": str(value)})
            continue
        unit, display = format_metric(str(name), number)
        rows.append({"name": str(name), "value": number, "unit": unit, "display": display})
    return rows


def not_performed_of(result: GateResult) -> list[str] | None:
    """What a gate says it did not check (``details["not_performed"]``, finding ids or sentences), each
    with the message of the finding it names; ``None`` when it names nothing."""
    raw = result.details.get("not_performed") if isinstance(result.details, Mapping) else None
    if raw in (None, "", [], {}):
        return None
    if isinstance(raw, Mapping):
        items = [f"{key}: {value}" for key, value in raw.items()]
    elif isinstance(raw, (list, tuple)):
        items = ["; ".join(f"{k}: {v}" for k, v in item.items()) if isinstance(item, Mapping) else str(item) for item in raw]
    else:
        items = [str(raw)]
    messages = {f.id: f.message for f in result.findings}
    return [f"{item}: {messages[item]}" if item in messages else item for item in items]


def verdict_label(result: GateResult) -> str:
    """The verdict as people read it (``warned (incomplete, not performed: ...)``, ``warned (warn-only...)``)."""
    label = getattr(result, "verdict_label", None)
    return label if isinstance(label, str) else result.verdict.value


def verdict_short(result: GateResult) -> str:
    """The verdict with why it warned in one word: ``warned (incomplete)``, ``warned (warn-only)``."""
    if result.verdict.value != "warned":
        return result.verdict.value
    return "warned (incomplete)" if getattr(result, "incomplete", False) else "warned (warn-only)"


def _finding_rows(result: GateResult) -> list[dict[str, Any]]:
    rows = [
        {
            "id": f.id,
            "severity": f.severity.value,
            "message": f.message,
            "location": f.location,
            "passed": f.passed,
            "atlas": list(f.atlas),
            "owasp_ml": list(f.owasp_ml),
        }
        for f in result.findings
    ]
    # Problems first (most severe first), then the checks that held; the gate's order otherwise.
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    return sorted(rows, key=lambda r: (bool(r["passed"]), order.get(str(r["severity"]), 5)))


def _gate_entry(
    scope: str,
    result: GateResult,
    report: VerificationReport,
    *,
    ui_url: str | None,
    experiment_id: str | None,
    latest: bool,
) -> dict[str, Any]:
    evidence_dir = f"mlsecops/evidence/{scope}"
    ctx = result.context
    failed_checks = [c.to_dict() for c in report.failures if c.scope == scope]
    findings = _finding_rows(result)
    return {
        "scope": scope,
        "gate": result.gate,
        "task": ctx.task_id if ctx else None,
        "map_index": ctx.map_index if ctx and ctx.map_index >= 0 else None,
        "try_number": ctx.try_number if ctx else None,
        "verdict": result.verdict.value,
        "verdict_label": verdict_label(result),
        "verdict_short": verdict_short(result),
        "warned_reason": getattr(result, "warned_reason", None),
        "warn_only": result.warn_only,
        "summary": result.summary,
        "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat(),
        "metrics": metric_rows(result.metrics),
        "findings": findings,
        "problems": sum(1 for f in findings if not f["passed"]),
        "not_performed": not_performed_of(result),
        "subjects": [{"name": s.name, "sha256": s.sha256} for s in result.subjects],
        "tool_versions": dict(result.tool_versions),
        "evidence_dir": evidence_dir,
        "evidence_url": evidence_folder_url(ui_url, experiment_id, report.mlflow_run_id, evidence_dir),
        "ledger_seq": report.order.get(scope),
        "keyid": report.gates.get(scope, {}).get("keyid"),
        "policy_digest": report.policy_digests.get(scope),
        "latest": latest,
        "verified": not failed_checks,
        "check_failures": failed_checks,
    }


def _task_key(scope: str) -> str:
    return scope.rsplit("/", 1)[0]


def _datasets(results: Mapping[str, GateResult], registration: GateResult | None) -> list[dict[str, Any]]:
    """The data the model was checked and trained on: every subject of a data gate (the judged data
    and the references it was compared with), and the training data the registration recorded."""
    from airflow_mlsecops.lifecycle.training_data import judged_digests

    found: dict[str, dict[str, Any]] = {}

    def entry(sha256: str, name: str | None) -> dict[str, Any]:
        item = found.setdefault(
            sha256, {"sha256": sha256, "names": [], "checked_by": [], "reference_for": [], "trained_on": False, "declared_by": []}
        )
        if name and name not in item["names"]:
            item["names"].append(name)
        return item

    for scope, result in results.items():
        if result.gate not in gate_names.DATA_GATES:
            continue
        judged = judged_digests(result)
        task = result.context.task_id if result.context else result.gate
        for subject in result.subjects:
            item = entry(subject.sha256, subject.name)
            role = "checked_by" if subject.sha256 in judged else "reference_for"
            mark = {"gate": result.gate, "task": task, "scope": scope, "verdict": result.verdict.value}
            if mark not in item[role]:
                item[role].append(mark)
    if registration is not None:
        for declared in registration.details.get("training_data") or []:
            if not isinstance(declared, Mapping) or not declared.get("sha256"):
                continue
            item = entry(str(declared["sha256"]), declared.get("location"))
            item["trained_on"] = True
            for who in declared.get("declared_by") or []:
                if who not in item["declared_by"]:
                    item["declared_by"].append(str(who))
    return list(found.values())


def _latest(results: Mapping[str, GateResult], gate: str) -> GateResult | None:
    chosen = None
    for result in results.values():  # ledger order: the last one wins
        if result.gate == gate:
            chosen = result
    return chosen


def _model(results: Mapping[str, GateResult], model_uri: str | None) -> dict[str, Any] | None:
    registration = _latest(results, gate_names.MODEL_REGISTRATION)
    if registration is not None and registration.details.get("registered"):
        d = registration.details
        return {
            "uri": d.get("model_uri"),
            "source_uri": d.get("source_uri"),
            "sha256": d.get("model_sha256") or d.get("expected_sha256"),
            "name": d.get("name"),
            "version": d.get("version"),
            "signature_sha256": d.get("signature_sha256"),
        }
    request = _latest(results, gate_names.MODEL_APPROVAL_REQUEST)
    if request is not None and request.details.get("model_sha256"):
        return {
            "uri": request.details.get("model_uri"),
            "sha256": request.details.get("model_sha256"),
            "name": None,
            "version": None,
        }
    for result in results.values():
        if result.gate in gate_names.MODEL_SUBJECT_GATES and result.subjects:
            subject = result.subjects[0]
            if model_uri is None or subject.name == model_uri:
                return {"uri": subject.name, "sha256": subject.sha256, "name": None, "version": None}
    if model_uri:
        return {"uri": model_uri, "sha256": None, "name": None, "version": None}
    return None


def _training_run_id(store: MLflowEvidenceStore, model_uri: str) -> str | None:
    """The MLflow run that produced the model at ``model_uri`` (``None`` when none is known)."""
    client = store.client
    with store.errors(f"cannot find the training run of {model_uri}"):
        if model_uri.startswith("runs:/"):
            return model_uri[len("runs:/") :].split("/", 1)[0] or None
        if not model_uri.startswith("models:/"):
            return None
        head, _, rest = model_uri[len("models:/") :].rstrip("/").partition("/")
        if "@" in head:
            name, alias = head.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif rest and rest.split("/", 1)[0].isdigit():
            mv = client.get_model_version(head, rest.split("/", 1)[0])
        else:
            return getattr(client.get_logged_model(head), "source_run_id", None) or None
        model_id = getattr(mv, "model_id", None)
        if model_id:
            source = getattr(client.get_logged_model(str(model_id)), "source_run_id", None)
            if source:
                return str(source)
        return str(mv.run_id) if mv.run_id else None


def training_of(store: MLflowEvidenceStore, model_uri: str | None, *, ui_url: str | None) -> dict[str, Any] | None:
    """The model's training run: its id, name, metrics (formatted) and parameters."""
    from airflow_mlsecops.exceptions import MLSecOpsError

    if not model_uri:
        return None
    try:
        run_id = _training_run_id(store, model_uri)
        if not run_id:
            return None
        with store.errors(f"cannot read the training run {run_id}"):
            run = store.client.get_run(run_id)
    except MLSecOpsError as exc:
        return {"run_id": None, "error": str(exc), "metrics": [], "params": {}}
    metrics = {k: v for k, v in sorted(run.data.metrics.items()) if not k.startswith(_GATE_METRIC_PREFIX)}
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "user": run.data.tags.get("mlflow.user"),
        "url": run_page_url(ui_url, str(run.info.experiment_id), run_id),
        "metrics": metric_rows(metrics),
        "params": dict(sorted(run.data.params.items())),
    }


def _responses(results: Mapping[str, GateResult], report: VerificationReport) -> list[dict[str, Any]]:
    out = []
    for scope, result in results.items():
        if result.gate != gate_names.MODEL_APPROVAL_RESPONSE:
            continue
        d = result.details
        response = d.get("response") or {}
        user = response.get("user") or {}
        out.append(
            {
                "user": user.get("name") or user.get("id"),
                "user_id": user.get("id"),
                "choice": response.get("choice"),
                "responded_at": response.get("responded_at"),
                "outcome": d.get("outcome"),
                "reason": d.get("reason"),
                "counted": d.get("outcome") in ("counted", "approved"),
                "scope": scope,
                "ledger_seq": report.order.get(scope),
            }
        )
    return out


def _decision(results: Mapping[str, GateResult]) -> dict[str, Any] | None:
    decision = _latest(results, gate_names.MODEL_APPROVAL)
    if decision is None:
        request = _latest(results, gate_names.MODEL_APPROVAL_REQUEST)
        if request is None:
            return None
        return {
            "decision": "pending",
            "verdict": None,
            "summary": request.summary,
            "approvals": [],
            "refused": [],
            "required_approvals": request.details.get("required_approvals"),
            "reviewers": request.details.get("reviewers") or [],
            "excluded": request.details.get("excluded") or {},
        }
    d = decision.details
    return {
        "decision": d.get("decision"),
        "verdict": decision.verdict.value,
        "summary": decision.summary,
        "decided_at": decision.finished_at.isoformat(),
        "approvals": list(d.get("approvals") or []),
        "refused": list(d.get("refused") or []),
        "required_approvals": d.get("required_approvals"),
        "reviewers": list(d.get("reviewers") or []),
        "model_sha256": d.get("model_sha256"),
        "evidence_sha256": d.get("evidence_sha256"),
    }


def _signing_keys(report: VerificationReport) -> list[dict[str, Any]]:
    described = {k["keyid"]: k for k in report.trusted_keys}
    counts: dict[str, int] = {}
    for info in report.gates.values():
        keyid = info.get("keyid")
        if keyid:
            counts[keyid] = counts.get(keyid, 0) + 1
    return [{**described.get(keyid, {"keyid": keyid}), "records": n} for keyid, n in counts.items()]


def _review_from_report(
    report: VerificationReport,
    *,
    store: MLflowEvidenceStore,
    settings: Settings,
    model_uri: str | None,
    bundle_version: str | None,
) -> RunReview:
    from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_RUN_ID

    run_id = report.mlflow_run_id
    ui_url = settings.mlflow_ui_url or None
    experiment_id = store.run_experiment_id(run_id)
    tags = store.run_tags(run_id)
    results = report.results  # ledger order
    shown = {scope: r for scope, r in results.items() if r.gate not in gate_names.APPROVAL_BOOKKEEPING}
    newest: dict[str, str] = {}
    for scope in shown:
        newest[_task_key(scope)] = scope
    gates = [
        _gate_entry(scope, r, report, ui_url=ui_url, experiment_id=experiment_id, latest=newest[_task_key(scope)] == scope)
        for scope, r in shown.items()
    ]
    model = _model(results, model_uri)
    registration = _latest(results, gate_names.MODEL_REGISTRATION)
    training_uri = model_uri or (model or {}).get("source_uri") or (model or {}).get("uri")
    statuses = [c.status.value for c in report.checks]
    return RunReview(
        mlflow_run_id=run_id,
        verified=report.ok,
        gates=gates,
        failures=[c.to_dict() for c in report.failures],
        tracking_uri=redact_uri(report.tracking_uri) or "",
        experiment_id=experiment_id,
        dag_id=tags.get(TAG_DAG_ID),
        dag_run_id=tags.get(TAG_RUN_ID),
        run_url=run_page_url(ui_url, experiment_id, run_id),
        bundle_version=bundle_version or tags.get("mlsecops.bundle_version"),
        model=model,
        datasets=_datasets(results, registration),
        training=training_of(store, training_uri, ui_url=ui_url),
        responses=_responses(results, report),
        decision=_decision(results),
        signing_keys=_signing_keys(report),
        trusted_keys=list(report.trusted_keys),
        checks={status: statuses.count(status) for status in ("ok", "failed", "skipped")},
        generated_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    )


# ----------------------------------------------------------------------------- comparison
def _holder_version(store: MLflowEvidenceStore, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return store.client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def compare_with_alias(
    review: RunReview,
    *,
    name: str,
    alias: str,
    store: MLflowEvidenceStore,
    settings: Settings,
) -> dict[str, Any]:
    """How this run's model compares with the version holding ``name@alias`` now: training metrics
    side by side, and the gates whose latest verdict differs. The holder's evidence is re-verified
    (its subjects are not re-hashed: that is the promotion's job)."""
    from airflow_mlsecops.exceptions import MLSecOpsError
    from airflow_mlsecops.lifecycle.model_registry import TAG_MODEL_SHA256, TAG_PIPELINE_RUN_ID
    from airflow_mlsecops.lifecycle.verification import verify_run

    base: dict[str, Any] = {"name": name, "alias": alias, "version": None, "metrics": [], "gates_changed": []}
    try:
        with store.errors(f"cannot read {name}@{alias}"):
            holder = _holder_version(store, name, alias)
    except MLSecOpsError as exc:
        return {**base, "note": f"the holder of {name}@{alias} could not be read: {exc}"}
    if holder is None:
        return {**base, "note": f"no version of {name} holds @{alias} yet: nothing to compare with"}
    tags = dict(holder.tags or {})
    this_version = (review.model or {}).get("version")
    out: dict[str, Any] = {
        **base,
        "version": str(holder.version),
        "model_sha256": tags.get(TAG_MODEL_SHA256),
        "pipeline_run_id": tags.get(TAG_PIPELINE_RUN_ID),
        "same_version": this_version is not None and str(this_version) == str(holder.version),
        "note": None,
    }
    ui_url = settings.mlflow_ui_url or None
    holder_training = training_of(store, f"models:/{name}/{holder.version}", ui_url=ui_url)
    mine = {m["name"]: m for m in (review.training or {}).get("metrics", [])}
    theirs = {m["name"]: m for m in (holder_training or {}).get("metrics", [])}
    for metric in sorted(set(mine) | set(theirs)):
        a, b = mine.get(metric), theirs.get(metric)
        row: dict[str, Any] = {
            "name": metric,
            "this": a["value"] if a else None,
            "holder": b["value"] if b else None,
            "this_display": a["display"] if a else "—",
            "holder_display": b["display"] if b else "—",
        }
        if a and b and isinstance(a["value"], float) and isinstance(b["value"], float):
            row["change"] = a["value"] - b["value"]
            unit, shown = format_metric(metric, row["change"])
            if unit == "%":  # a difference of two shares is in percentage points
                shown = shown.removesuffix("%") + " pp"
            row["change_display"] = ("+" if row["change"] > 0 else "") + shown
        out["metrics"].append(row)
    holder_run = tags.get(TAG_PIPELINE_RUN_ID)
    if not holder_run:
        out["note"] = f"version {holder.version} names no pipeline run (tag {TAG_PIPELINE_RUN_ID}): its gates are unknown"
        return out
    try:
        holder_report = verify_run(holder_run, settings=settings, store=store, check_subjects=False)
    except MLSecOpsError as exc:
        out["note"] = f"the evidence of version {holder.version} could not be read: {exc}"
        return out
    out["holder_verified"] = holder_report.ok
    this_verdicts = {g["gate"]: g["verdict"] for g in review.gates if g["latest"] and g["gate"] not in _AFTER_APPROVAL}
    holder_verdicts: dict[str, str] = {}
    for result in holder_report.results.values():
        # Its promotion (and later registry steps) came after its approval: not a gate to compare.
        if result.gate not in gate_names.APPROVAL_BOOKKEEPING and result.gate not in _AFTER_APPROVAL:
            holder_verdicts[result.gate] = result.verdict.value
    for gate in [*this_verdicts, *(g for g in holder_verdicts if g not in this_verdicts)]:
        now, then = this_verdicts.get(gate), holder_verdicts.get(gate)
        if now != then:
            out["gates_changed"].append({"gate": gate, "this": now or "not run", "holder": then or "not run"})
    return out


# ----------------------------------------------------------------------------- entry points
def _resolve(settings: Settings | None, store: MLflowEvidenceStore | None) -> tuple[Settings, MLflowEvidenceStore]:
    from airflow_mlsecops.config import Settings as _Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore as _Store

    settings = settings or _Settings.from_env()
    return settings, store or _Store.from_settings(settings)


def run_review(
    mlflow_run_id: str,
    *,
    settings: Settings | None = None,
    store: MLflowEvidenceStore | None = None,
    model_uri: str | None = None,
    bundle_version: str | None = None,
    compare_alias: str | None = None,
    model_name: str | None = None,
    report: VerificationReport | None = None,
) -> RunReview:
    """Re-verify and describe the evidence recorded in one MLflow run.

    :param model_uri: the model under review (default: the one the registration, the approval
        request or a model gate names); its training run gives the training metrics.
    :param bundle_version: the DAG bundle's version the run used, when known.
    :param compare_alias: compare with the version that holds this alias of ``model_name``.
    :param model_name: the registered model (default: the one this run registered).
    :param report: a verification made moments ago by the caller (the approval operator's), used
        instead of verifying again.
    """
    from airflow_mlsecops.lifecycle.verification import verify_run

    settings, store = _resolve(settings, store)
    report = report if report is not None else verify_run(mlflow_run_id, settings=settings, store=store)
    review = _review_from_report(report, store=store, settings=settings, model_uri=model_uri, bundle_version=bundle_version)
    if compare_alias:
        name = model_name or (review.model or {}).get("name")
        if name:
            review.comparison = compare_with_alias(review, name=str(name), alias=compare_alias, store=store, settings=settings)
        else:
            review.comparison = {
                "name": None,
                "alias": compare_alias,
                "version": None,
                "metrics": [],
                "gates_changed": [],
                "note": "the registered model's name is not known (this run registered no model): nothing to compare with",
            }
    return review


def find_pipeline_run(store: MLflowEvidenceStore, *, experiment_name: str, dag_id: str, run_id: str) -> str:
    """The MLflow run holding a DAG run's evidence, never created here (``ConfigurationError`` when
    there is none)."""
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_RUN_ID

    def q(value: str) -> str:
        return value.replace("\\", "\\\\").replace("'", "\\'")

    with store.errors(f"cannot find the MLflow run of {dag_id}/{run_id}"):
        experiment = store.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise ConfigurationError(f"DAG run {dag_id}/{run_id} recorded no evidence (no MLflow experiment {experiment_name!r})")
        query = f"tags.`{TAG_DAG_ID}` = '{q(dag_id)}' and tags.`{TAG_RUN_ID}` = '{q(run_id)}'"
        runs = store.client.search_runs([experiment.experiment_id], filter_string=query, order_by=["attributes.start_time ASC"])
    if not runs:
        raise ConfigurationError(f"DAG run {dag_id}/{run_id} recorded no evidence in MLflow experiment {experiment_name!r}")
    return str(sorted((r.info.start_time, r.info.run_id) for r in runs)[0][1])


def pipeline_run_review(
    dag_id: str,
    run_id: str,
    *,
    experiment_name: str | None = None,
    settings: Settings | None = None,
    store: MLflowEvidenceStore | None = None,
    compare_alias: str | None = None,
    bundle_version: str | None = None,
) -> RunReview:
    """The review of a DAG run's evidence (its MLflow run found by the DAG and run id tags, in the
    experiment ``experiment_name``, default the DAG id). Raises ``ConfigurationError`` when the DAG
    run recorded no evidence."""
    settings, store = _resolve(settings, store)
    mlflow_run_id = find_pipeline_run(store, experiment_name=experiment_name or dag_id, dag_id=dag_id, run_id=run_id)
    return run_review(mlflow_run_id, settings=settings, store=store, compare_alias=compare_alias, bundle_version=bundle_version)


def model_review(name: str, *, settings: Settings | None = None, store: MLflowEvidenceStore | None = None) -> ModelReview:
    """A registered model's versions, aliases, promotions and rollbacks (``ConfigurationError`` for
    an unknown model)."""
    from airflow_mlsecops.lifecycle.model_registry import (
        TAG_APPROVED_BY,
        TAG_MODEL_SHA256,
        TAG_PIPELINE_RUN_ID,
        TAG_PROMOTED_AT,
        TAG_PROMOTION_EVIDENCE,
        TAG_QUARANTINE_REASON,
        TAG_QUARANTINED,
        TAG_ROLLBACK_EVIDENCE,
        TAG_VERSION_DAG_ID,
        TAG_VERSION_RUN_ID,
    )

    settings, store = _resolve(settings, store)
    client = store.client
    with store.errors(f"cannot read registered model {name!r}"):
        registered = client.get_registered_model(name)
        found = client.search_model_versions(f"name = '{name.replace(chr(39), chr(92) + chr(39))}'")
    aliases = {str(alias): str(version) for alias, version in dict(registered.aliases or {}).items()}
    model_tags = dict(registered.tags or {})
    held: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        held.setdefault(version, []).append(alias)
    versions = []
    promotions: list[dict[str, Any]] = []
    rollbacks: list[dict[str, Any]] = []
    for mv in sorted(found, key=lambda v: int(v.version)):
        tags = dict(mv.tags or {})
        version = str(mv.version)
        created = (
            datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=timezone.utc).isoformat() if mv.creation_timestamp else None
        )
        versions.append(
            {
                "version": version,
                "status": str(mv.status),
                "created_at": created,
                "source": mv.source,
                "model_sha256": tags.get(TAG_MODEL_SHA256),
                "pipeline_run_id": tags.get(TAG_PIPELINE_RUN_ID),
                "dag_id": tags.get(TAG_VERSION_DAG_ID),
                "dag_run_id": tags.get(TAG_VERSION_RUN_ID),
                "aliases": sorted(held.get(version, [])),
                "approved_by": tags.get(TAG_APPROVED_BY),
                "promoted_at": tags.get(TAG_PROMOTED_AT),
                "quarantined": tags.get(TAG_QUARANTINED, "").lower() == "true",
                "quarantine_reason": tags.get(TAG_QUARANTINE_REASON),
                "tags": {k: v for k, v in sorted(tags.items()) if k.startswith("mlsecops.")},
            }
        )
        prefix = f"{TAG_PROMOTION_EVIDENCE}."
        for key, value in sorted(tags.items()):
            if key.startswith(prefix):
                alias = key[len(prefix) :]
                promotions.append(
                    {
                        "version": version,
                        "alias": alias,
                        "promoted_at": tags.get(TAG_PROMOTED_AT),
                        "approved_by": tags.get(TAG_APPROVED_BY),
                        "previous": tags.get(f"mlsecops.previous_{alias}"),
                        "evidence": value,
                    }
                )
            if key.startswith("mlsecops.rolled_back_from_"):
                rollbacks.append(
                    {"from_version": version, "alias": key[len("mlsecops.rolled_back_from_") :], "rolled_back_at": value}
                )
        if tags.get(TAG_ROLLBACK_EVIDENCE):
            rollbacks.append({"to_version": version, "evidence": tags[TAG_ROLLBACK_EVIDENCE]})
    history: dict[str, Any] = {}
    for key, value in sorted(model_tags.items()):
        if key.startswith("mlsecops.alias_history."):
            try:
                history[key[len("mlsecops.alias_history.") :]] = json.loads(value)
            except ValueError:
                history[key[len("mlsecops.alias_history.") :]] = f"unreadable: {value[:200]}"
    promotions.sort(key=lambda p: str(p.get("promoted_at") or ""))
    return ModelReview(
        name=name,
        versions=versions,
        aliases=aliases,
        extra={
            "alias_history": history,
            "promotions": promotions,
            "rollbacks": rollbacks,
            "description": registered.description,
            "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        },
    )
