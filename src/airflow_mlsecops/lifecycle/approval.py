"""Human approval of a model: what the reviewer is shown, and how responses become a decision.

Pure logic, no Airflow import: :class:`ApprovalRequest` binds a request to the exact model digest
and to the digests of the evidence shown; :class:`ApprovalTally` applies quorum and separation of
duties to the responses, one at a time, and says when a decision is reached.

Identity: a responder is who Airflow says answered (the authenticated user of the UI or REST API,
or the ``--as`` user of ``mlsecops approve`` on the embedded default, where the person at the
terminal is trusted). Separation of duties compares that identity with the DAG run's triggering
user (``dag_run.triggering_user_name``, set by Airflow from the authenticated user who triggered it;
``dag_test`` for ``dag.test()`` runs; empty for scheduled runs) and with the model's author as
the pipeline reports it (the training run's ``mlflow.user`` tag or the ``model_author``
argument) — neither is stronger than the identity source it comes from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import GateResult
from airflow_mlsecops.evidence.statement import canonical_json

APPROVE = "Approve"
REJECT = "Reject"
OPTIONS = [APPROVE, REJECT]
GATE_NAME = gate_names.MODEL_APPROVAL
RESPONSE_GATE_NAME = gate_names.MODEL_APPROVAL_RESPONSE
REQUEST_GATE_NAME = gate_names.MODEL_APPROVAL_REQUEST
_BOOKKEEPING_GATES = gate_names.APPROVAL_BOOKKEEPING


#: The XCom key under which ModelApprovalGateOperator keeps its request (bound to its digests),
#: read back by the answering paths (REST and the embedded demo).
REQUEST_XCOM_KEY = "mlsecops_approval_request"


def evidence_digest(results: Mapping[str, GateResult]) -> tuple[str, dict[str, str]]:
    """Digest of the evidence a reviewer is shown: one SHA-256 per recorded result, then of the map.

    The approval task's own records are left out, so collecting responses does not void the request.
    """
    shown = {
        scope: hashlib.sha256(canonical_json(result.to_dict())).hexdigest()
        for scope, result in sorted(results.items())
        if result.gate not in _BOOKKEEPING_GATES
    }
    return hashlib.sha256(canonical_json(shown)).hexdigest(), shown


@dataclass(frozen=True)
class ApprovalRequest:
    """What the reviewers are asked to approve, bound to exact digests."""

    model_uri: str
    model_sha256: str
    evidence_sha256: str
    evidence_shown: Mapping[str, str]
    mlflow_run_id: str
    required_approvals: int
    reviewers: tuple[str, ...]
    excluded: Mapping[str, str]  # user -> why they may not approve (triggering user, model author)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_uri": self.model_uri,
            "model_sha256": self.model_sha256,
            "evidence_sha256": self.evidence_sha256,
            "evidence_shown": dict(self.evidence_shown),
            "mlflow_run_id": self.mlflow_run_id,
            "required_approvals": self.required_approvals,
            "reviewers": list(self.reviewers),
            "excluded": dict(self.excluded),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        return cls(
            model_uri=str(data["model_uri"]),
            model_sha256=str(data["model_sha256"]),
            evidence_sha256=str(data["evidence_sha256"]),
            evidence_shown=dict(data.get("evidence_shown", {})),
            mlflow_run_id=str(data["mlflow_run_id"]),
            required_approvals=int(data["required_approvals"]),
            reviewers=tuple(data.get("reviewers", ())),
            excluded=dict(data.get("excluded", {})),
        )


def render_body(
    request: ApprovalRequest,
    results: Mapping[str, GateResult],
    *,
    run_url: str | None,
    title: str,
    review: Any | None = None,
    tally: Mapping[str, Any] | None = None,
    live_url: str | None = None,
) -> str:
    """The Markdown body of the request, written for a reviewer (see :mod:`airflow_mlsecops.review.markdown`).

    Gates in pipeline order (``results`` in ledger order, as a verification report holds them),
    each with its verdict, every metric in readable units, every finding in full, what was not
    performed and its evidence folder; with ``review`` (a
    :class:`~airflow_mlsecops.review.view.RunReview` of the same run) also the data and its digests,
    the training run, the comparison with the alias holder and every response so far.

    :param tally: ``ApprovalTally.to_dict()``, shown as the responses so far when no ``review`` is given.
    :param live_url: the MLSecOps page of the DAG run (the evidence and every response as they are
        now: Airflow keeps a request's body as first shown).
    """
    from airflow_mlsecops.review.markdown import gate_rows, render_request

    gates = list(review.gates) if review is not None else gate_rows(results)
    return render_request(request.to_dict(), gates, title=title, run_url=run_url, review=review, tally=tally, live_url=live_url)


@dataclass
class ApprovalTally:
    """Counts responses toward a decision: distinct approvers, separation of duties, rejection."""

    request: ApprovalRequest
    approvals: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)

    def add(self, *, user_id: str, user_name: str, choice: str, responded_at: str) -> tuple[str, str]:
        """Apply one response. Returns ``(outcome, reason)``; outcome is one of ``counted``,
        ``approved`` (quorum reached), ``rejected``, ``refused`` (not counted)."""
        who = {"id": user_id, "name": user_name, "responded_at": responded_at}
        for identity in {user_id, user_name}:
            if identity in self.request.excluded:
                reason = f"{identity} may not approve: {self.request.excluded[identity]}"
                self.refused.append({**who, "reason": reason})
                return "refused", reason
        if self.request.reviewers and not ({user_id, user_name} & set(self.request.reviewers)):
            reason = f"{user_name or user_id} is not one of the reviewers ({', '.join(self.request.reviewers)})"
            self.refused.append({**who, "reason": reason})
            return "refused", reason
        if choice == REJECT:
            return "rejected", f"rejected by {user_name or user_id}"
        if choice != APPROVE:
            reason = f"unknown choice {choice!r}"
            self.refused.append({**who, "reason": reason})
            return "refused", reason
        if any(a["id"] == user_id for a in self.approvals):
            reason = f"{user_name or user_id} already approved; a second response does not count twice"
            self.refused.append({**who, "reason": reason})
            return "refused", reason
        self.approvals.append(who)
        if len(self.approvals) >= self.request.required_approvals:
            return "approved", f"{len(self.approvals)} of {self.request.required_approvals} approvals"
        return "counted", f"{len(self.approvals)} of {self.request.required_approvals} approvals"

    def to_dict(self) -> dict[str, Any]:
        return {"approvals": list(self.approvals), "refused": list(self.refused)}

    @classmethod
    def from_dict(cls, request: ApprovalRequest, data: Mapping[str, Any] | None) -> ApprovalTally:
        data = data or {}
        return cls(request=request, approvals=list(data.get("approvals", [])), refused=list(data.get("refused", [])))


def excluded_users(*, triggering_user: str | None, model_author: str | None, separation_of_duties: bool) -> dict[str, str]:
    if not separation_of_duties:
        return {}
    excluded: dict[str, str] = {}
    if triggering_user:
        excluded[triggering_user] = "triggered this DAG run"
    if model_author:
        excluded.setdefault(model_author, "authored the model")
    return excluded


def validate_reviewers(reviewers: Sequence[str] | None, required_approvals: int) -> tuple[str, ...]:
    if not isinstance(required_approvals, int) or required_approvals < 1:
        raise ValueError("required_approvals must be a positive integer")
    names = tuple(reviewers or ())
    if len(set(names)) != len(names):
        raise ValueError("reviewers lists a user twice")
    if names and required_approvals > len(names):
        raise ValueError(f"required_approvals={required_approvals} but only {len(names)} reviewer(s) are listed")
    return names
