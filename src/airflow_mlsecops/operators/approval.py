"""``ModelApprovalGateOperator``: reviewers approve a model in the Airflow UI, bound to its evidence.

Built on Airflow's own human-in-the-loop support (``HITLOperator``, Airflow >= 3.1): the request
appears on the UI's *Required actions* page and in the public REST API
(``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails``), and
``mlsecops approve`` answers it on the embedded default.

What it adds to Airflow's ``ApprovalOperator``:

* the request shows the evidence, re-verified, written for a reviewer
  (:mod:`airflow_mlsecops.review.markdown`): the gates in pipeline order with every metric in
  readable units, every finding in full, what was not performed and a link to each gate's evidence
  folder; the data checked and trained on with digests; the training run's metrics and parameters;
  the DAG bundle version; a comparison with the version holding ``compare_alias``; a link to the
  MLSecOps page of the DAG run, which lists every response as it arrives, refused ones with the
  reason (Airflow keeps an open request's body as first shown). It is refused (nothing to approve)
  when that evidence does not verify;
* every response is recorded as signed evidence, and so is the decision, rejections and timeouts
  included;
* reject and timeout fail the task (no retry): nothing downstream promotes;
* separation of duties: the DAG run's triggering user and the model's author cannot approve; their
  responses are recorded, not counted, and the request stays open;
* quorum: ``required_approvals`` distinct reviewers; a second response from the same reviewer does
  not count twice;
* binding: the approval is for the exact model digest and the exact evidence shown; if either
  changes before the decision, the approval is void and the task fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator

from airflow_mlsecops import gate_names
from airflow_mlsecops.hooks import DEFAULT_MLFLOW_CONN_ID
from airflow_mlsecops.lifecycle.approval import OPTIONS, REQUEST_XCOM_KEY, validate_reviewers
from airflow_mlsecops.operators.base import check_conn_id

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.execution_time.hitl import HITLUser

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.hooks.evidence import EvidenceHook
    from airflow_mlsecops.lifecycle.approval import ApprovalRequest

_REQUEST_KEY = REQUEST_XCOM_KEY
_TALLY_KEY = "mlsecops_approval_tally"


class ModelApprovalGateOperator(HITLOperator):
    """Ask reviewers to approve promoting a model; succeed only on a valid, bound quorum.

    .. code-block:: python

        approve = ModelApprovalGateOperator(
            task_id="approve_model",
            model_uri="{{ ti.xcom_pull('register_model')['model_uri'] }}",
            reviewers=["alice", "bob"],
            required_approvals=1,
            model_author="{{ ti.xcom_pull('train_model')['author'] }}",
            response_timeout=timedelta(days=2),
        )

    The XCom return value: ``decision``, ``approvals`` (who and when), ``responded_by``,
    ``responded_at``, ``model_uri``, ``model_sha256``, ``evidence_sha256``, ``evidence``.

    :param model_uri: the model to approve (``models:/...``, ``runs:/...``, a local path). (templated)
    :param reviewers: user ids allowed to respond (Airflow's ``assigned_users``; the REST API answers
        403 to anyone else). Empty: any user with access to the DAG.
    :param required_approvals: distinct approvals needed.
    :param separation_of_duties: refuse approvals from the triggering user and the model author.
    :param model_author: the model's author, if known (templated); the training run's
        ``mlflow.user`` tag is used when not given.
    :param title: the request's subject line. (templated)
    :param experiment_name: MLflow experiment of the pipeline's evidence (default: the DAG id).
    :param compare_alias: compare the model with the version that holds this alias of the
        registered model (e.g. ``"champion"``): training metrics side by side and the gates whose
        verdict changed. ``None``: no comparison. (templated)
    :param model_name: the registered model ``compare_alias`` belongs to (default: the one this DAG
        run registered, from its ``model-registration`` evidence). (templated)
    :param mlflow_conn_id: the MLflow Connection of the evidence store (default ``mlflow_default``,
        which may be left undefined; any other id must exist). ``None``: no connection.
    :param response_timeout: how long to wait; on timeout the task fails (enforced by the scheduler).
    """

    template_fields: Sequence[str] = (
        "subject",
        "body",
        "model_uri",
        "model_author",
        "title",
        "experiment_name",
        "compare_alias",
        "model_name",
    )
    ui_color = "#fff3bf"

    def __init__(
        self,
        *,
        model_uri: str,
        reviewers: Sequence[str] | None = None,
        required_approvals: int = 1,
        separation_of_duties: bool = True,
        model_author: str | None = None,
        title: str = "Approve model for promotion",
        experiment_name: str | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        response_timeout: timedelta | None = None,
        compare_alias: str | None = None,
        model_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        names = validate_reviewers(reviewers, required_approvals)
        if not model_uri:
            raise ValueError(f"{kwargs.get('task_id')}: model_uri is required")
        if compare_alias is not None and (not isinstance(compare_alias, str) or not compare_alias.strip()):
            raise ValueError(f"{kwargs.get('task_id')}: compare_alias must be an alias name such as 'champion', or None")
        super().__init__(
            subject=title,
            options=list(OPTIONS),
            body=None,
            defaults=None,
            multiple=False,
            assigned_users=[{"id": name, "name": name} for name in names] or None,
            response_timeout=response_timeout,
            **kwargs,
        )
        self.model_uri = model_uri
        self.reviewers = names
        self.required_approvals = required_approvals
        self.separation_of_duties = separation_of_duties
        self.model_author = model_author
        self.title = title
        self.experiment_name = experiment_name
        self.compare_alias = compare_alias
        self.model_name = model_name
        self.mlflow_conn_id = check_conn_id(self.task_id, mlflow_conn_id)

    # ------------------------------------------------------------------ helpers
    def _hook(self) -> EvidenceHook:
        from airflow_mlsecops.exceptions import MLSecOpsError
        from airflow_mlsecops.hooks.evidence import EvidenceHook

        hook = EvidenceHook(mlflow_conn_id=self.mlflow_conn_id, experiment_name=self.experiment_name)
        try:
            hook.settings  # noqa: B018 - resolve the store now: a wrong connection fails with its own message
        except MLSecOpsError as exc:
            self._fail(f"the evidence store is not configured, so nothing is decided: {exc}")
        return hook

    @staticmethod
    def _pipeline(context: Context) -> PipelineContext:
        from airflow_mlsecops.evidence.models import PipelineContext

        ti = context["ti"]
        return PipelineContext(ti.dag_id, ti.run_id, ti.task_id, int(ti.try_number or 1), int(getattr(ti, "map_index", -1) or -1))

    def _evidence_now(self, context: Context, hook: EvidenceHook) -> tuple[str, str, Any]:
        """(mlflow_run_id, model_sha256, verification report) as they are right now."""
        import tempfile
        from pathlib import Path

        from airflow_mlsecops.evidence.digest import sha256_path
        from airflow_mlsecops.io.artifacts import fetch
        from airflow_mlsecops.lifecycle.verification import verify_run

        ti = context["ti"]
        run_id = hook.pipeline_run_id(dag_id=ti.dag_id, run_id=ti.run_id)
        with tempfile.TemporaryDirectory(prefix="mlsecops-approval-") as tmp:
            model_sha256 = sha256_path(fetch(str(self.model_uri), Path(tmp), hook.store))
        report = verify_run(run_id, settings=hook.settings, store=hook.store)
        return run_id, model_sha256, report

    def _record(
        self, context: Context, hook: EvidenceHook, *, gate: str, passed: bool | None, summary: str, details: dict, record: str
    ) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from airflow_mlsecops.evidence.models import Finding, GateResult, Severity, Subject, Verdict
        from airflow_mlsecops.exceptions import MLSecOpsError
        from airflow_mlsecops.gates.base import tool_versions

        verdict = Verdict.PASSED if passed else (Verdict.ERROR if passed is None else Verdict.FAILED)
        subjects = [Subject(details["model_uri"], details["model_sha256"])] if details.get("model_sha256") else []
        findings = [] if passed else [Finding(f"{gate}.decision", Severity.HIGH, summary, owasp_ml=("ML06:2023",))]
        now = datetime.now(timezone.utc)
        result = GateResult.create(
            gate=gate,
            verdict=verdict,
            subjects=subjects,
            findings=findings,
            metrics={"approvals": float(len(details.get("approvals", [])))},
            policy={
                "required_approvals": self.required_approvals,
                "reviewers": list(self.reviewers),
                "separation_of_duties": self.separation_of_duties,
            },
            tool_versions=tool_versions("apache-airflow", "apache-airflow-providers-standard"),
            started_at=now,
            finished_at=now,
            context=self._pipeline(context),
            summary=summary,
            details=details,
        )
        from airflow_mlsecops.evidence.producer import CodeIdentity

        # The code that decided: this method (a subclass that replaces it names itself) and the class.
        result = result.with_producer(
            engine=CodeIdentity.of(type(self)._record).to_dict(), operator=CodeIdentity.of(type(self)).to_dict()
        )
        try:
            recorded = hook.recorder.record(result, experiment_name=self.experiment_name or context["ti"].dag_id, record=record)
        except MLSecOpsError as exc:
            raise AirflowException(f"approval evidence could not be recorded, so nothing is decided: {exc}") from exc
        self.log.info("Recorded %s (%s): %s -> %s", gate, verdict.value, summary, recorded.artifact_dir)
        return recorded.to_dict()

    @staticmethod
    def _live_url(context: Context) -> str:
        """The MLSecOps page of this DAG run in the Airflow UI (under ``[api] base_url`` when it is set,
        else from the server's root)."""
        from urllib.parse import quote

        from airflow.configuration import conf

        from airflow_mlsecops.plugins.plugin import URL_PREFIX

        ti = context["ti"]
        base = (conf.get("api", "base_url", fallback=None) or "").rstrip("/")
        path = f"{URL_PREFIX}/dags/{quote(ti.dag_id, safe='')}/dagRuns/{quote(ti.run_id, safe='')}"
        return f"{base}{path}" if base.startswith(("http://", "https://", "/")) else path

    def _review_body(self, context: Context, hook: EvidenceHook, request: ApprovalRequest, report: Any) -> str:
        """The request's body, from the verification ``report`` just made (nothing is verified twice)."""
        from airflow_mlsecops.lifecycle.approval import render_body
        from airflow_mlsecops.review.view import run_review

        dag_run = context.get("dag_run")
        bundle_version = getattr(dag_run, "bundle_version", None)
        review = run_review(
            request.mlflow_run_id,
            settings=hook.settings,
            store=hook.store,
            report=report,
            model_uri=str(self.model_uri),
            bundle_version=str(bundle_version) if bundle_version else None,
            compare_alias=self.compare_alias or None,
            model_name=self.model_name or None,
        )
        return render_body(
            request,
            report.results,
            run_url=hook.run_url(request.mlflow_run_id),
            title=str(self.title),
            review=review,
            live_url=self._live_url(context),
        )

    def _fail(self, message: str) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(message)

    # ------------------------------------------------------------------ Airflow
    def execute(self, context: Context) -> Any:
        from airflow_mlsecops.lifecycle.approval import ApprovalRequest, evidence_digest, excluded_users

        hook = self._hook()
        run_id, model_sha256, report = self._evidence_now(context, hook)
        base = {"model_uri": str(self.model_uri), "model_sha256": model_sha256}
        if not report.ok:
            problems = "; ".join(f"{c.scope}: {c.name}: {c.detail}" for c in report.failures[:5])
            self._record(
                context,
                hook,
                gate=gate_names.MODEL_APPROVAL,
                passed=False,
                summary=f"evidence does not verify: {problems}",
                details={**base, "decision": "void"},
                record="request-1",
            )
            self._fail(f"the evidence for {self.model_uri} does not verify, so there is nothing to approve: {problems}")
        author = self.model_author or hook.store.run_tags(run_id).get("mlflow.user")
        dag_run = context.get("dag_run")
        triggering_user = getattr(dag_run, "triggering_user_name", None)
        digest, shown = evidence_digest(report.results)
        request = ApprovalRequest(
            model_uri=str(self.model_uri),
            model_sha256=model_sha256,
            evidence_sha256=digest,
            evidence_shown=shown,
            mlflow_run_id=run_id,
            required_approvals=self.required_approvals,
            reviewers=self.reviewers,
            excluded=excluded_users(
                triggering_user=triggering_user, model_author=author, separation_of_duties=self.separation_of_duties
            ),
        )
        allowed = self._allowed_reviewers(request)
        if self.reviewers and len(allowed) < self.required_approvals:
            barred = ", ".join(f"{user} ({why})" for user, why in request.excluded.items() if user in self.reviewers)
            summary = (
                f"{self.required_approvals} approval(s) are needed but only {len(allowed)} reviewer(s) may give one: "
                f"{barred} may not (separation of duties)"
            )
            self._record(
                context,
                hook,
                gate=gate_names.MODEL_APPROVAL,
                passed=False,
                summary=summary,
                details={**base, **request.to_dict(), "decision": "void"},
                record="request-1",
            )
            self._fail(f"approval of {self.model_uri} cannot reach its quorum: {summary}")
        # Airflow itself refuses (403, "Access Denied" in the UI) anyone left out of assigned_users: the users
        # barred by separation of duties never get to answer.
        self.assigned_users = self._assigned(allowed)
        self.body = self._review_body(context, hook, request, report)
        context["ti"].xcom_push(key=_REQUEST_KEY, value=request.to_dict())
        context["ti"].xcom_push(key=_TALLY_KEY, value={"approvals": [], "refused": [], "responses": 0})
        self._record(
            context,
            hook,
            gate=gate_names.MODEL_APPROVAL_REQUEST,
            passed=True,
            summary=f"approval requested for {self.model_uri} ({self.required_approvals} approval(s) needed)",
            details={**base, **request.to_dict(), "body": self.body},
            record="request-1",
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow_mlsecops.lifecycle.approval import ApprovalRequest, ApprovalTally, evidence_digest

        hook = self._hook()
        ti = context["ti"]
        request = ApprovalRequest.from_dict(ti.xcom_pull(task_ids=self.task_id, key=_REQUEST_KEY))
        stored = ti.xcom_pull(task_ids=self.task_id, key=_TALLY_KEY) or {}
        tally = ApprovalTally.from_dict(request, stored)
        n = int(stored.get("responses", 0)) + 1
        base = {
            "model_uri": request.model_uri,
            "model_sha256": request.model_sha256,
            "evidence_sha256": request.evidence_sha256,
            "required_approvals": request.required_approvals,
            "reviewers": list(request.reviewers),
        }

        user = event.get("responded_by_user") or {}
        if event.get("timedout") or "error" in event or not user:
            details = {**base, **tally.to_dict(), "decision": "timed_out"}
            self._record(
                context,
                hook,
                gate=gate_names.MODEL_APPROVAL,
                passed=False,
                summary="no decision before the response timeout",
                details=details,
                record=f"response-{n}",
            )
            self._fail(f"approval of {request.model_uri} timed out: nothing is promoted")

        # The approval is for these exact bytes and this exact evidence: re-check both now.
        _, model_now, report = self._evidence_now(context, hook)
        digest_now, _ = evidence_digest(report.results)
        if model_now != request.model_sha256 or digest_now != request.evidence_sha256 or not report.ok:
            what = "the model" if model_now != request.model_sha256 else "the evidence"
            details = {
                **base,
                **tally.to_dict(),
                "decision": "void",
                "model_sha256_now": model_now,
                "evidence_sha256_now": digest_now,
            }
            self._record(
                context,
                hook,
                gate=gate_names.MODEL_APPROVAL,
                passed=False,
                summary=f"{what} changed after the request was made: the approval is void",
                details=details,
                record=f"response-{n}",
            )
            self._fail(f"{what} changed after approval was requested; the approval of {request.model_uri} is void")

        choice = (event.get("chosen_options") or [""])[0]
        responded_at = (
            event["responded_at"].isoformat()
            if hasattr(event.get("responded_at"), "isoformat")
            else str(event.get("responded_at"))
        )
        outcome, reason = tally.add(
            user_id=str(user.get("id")), user_name=str(user.get("name")), choice=choice, responded_at=responded_at
        )
        self.log.info("Response %d from %s: %s -> %s (%s)", n, user.get("name"), choice, outcome, reason)
        response_details = {
            **base,
            "response": {"user": user, "choice": choice, "responded_at": responded_at},
            "outcome": outcome,
            "reason": reason,
            **tally.to_dict(),
        }
        self._record(
            context,
            hook,
            gate=gate_names.MODEL_APPROVAL_RESPONSE,
            passed=outcome in ("counted", "approved"),
            summary=f"{user.get('name')} chose {choice}: {reason}",
            details=response_details,
            record=f"response-{n}",
        )
        ti.xcom_push(key=_TALLY_KEY, value={**tally.to_dict(), "responses": n})

        if outcome == "rejected":
            details = {**base, **tally.to_dict(), "decision": "rejected", "rejected_by": user}
            self._record(
                context,
                hook,
                gate=gate_names.MODEL_APPROVAL,
                passed=False,
                summary=reason,
                details=details,
                record=f"decision-{n}",
            )
            self._fail(f"{request.model_uri} was {reason}: nothing is promoted")
        if outcome == "approved":
            details = {**base, **tally.to_dict(), "decision": "approved"}
            evidence = self._record(
                context,
                hook,
                gate=gate_names.MODEL_APPROVAL,
                passed=True,
                summary=f"approved by {', '.join(a['name'] for a in tally.approvals)}",
                details=details,
                record=f"decision-{n}",
            )
            return {
                "decision": "approved",
                "approvals": tally.approvals,
                "responded_by": tally.approvals[-1]["name"],
                "responded_at": tally.approvals[-1]["responded_at"],
                "model_uri": request.model_uri,
                "model_sha256": request.model_sha256,
                "evidence_sha256": request.evidence_sha256,
                "evidence": evidence,
            }
        return self._wait_again(context, request)

    def _allowed_reviewers(self, request: ApprovalRequest) -> list[str]:
        """The reviewers who may answer: everyone named, less the users separation of duties bars."""
        return [user for user in self.reviewers if user not in request.excluded]

    @staticmethod
    def _assigned(allowed: Sequence[str]) -> list[HITLUser] | None:
        return [{"id": user, "name": user} for user in allowed] or None

    def _wait_again(self, context: Context, request: ApprovalRequest) -> Any:
        """Quorum not reached (or a response did not count): re-open the request and wait again.

        This runs in a new task process, which built the operator from the DAG file: the assigned
        users are derived again from the request, so the barred users stay left out.

        Airflow (3.3) keeps an open request's subject, body and assignees as first created: its
        execution API's upsert changes nothing of an existing request but clears the response. So
        the body is not rendered again here; it links to the MLSecOps page of the DAG run, which
        shows every response as it arrives."""
        from airflow.sdk.exceptions import TaskAwaitingInput
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        self.assigned_users = self._assigned(self._allowed_reviewers(request))
        upsert_hitl_detail(
            ti_id=context["task_instance"].id,
            options=self.options,
            subject=self.subject,
            body=self.body,
            defaults=self.defaults,
            multiple=self.multiple,
            params=self.serialized_params,
            assigned_users=self.assigned_users,
        )
        raise TaskAwaitingInput(method_name="execute_complete", timeout=self.response_timeout)


__all__ = ["ModelApprovalGateOperator"]
