"""``RegisterModelOperator`` and ``PromoteModelOperator``: put a model in the MLflow Model Registry
pinned to its digest, and give it an alias only when the pipeline's evidence says it may have one.

.. code-block:: python

    register = RegisterModelOperator(
        task_id="register_model",
        model_uri="{{ ti.xcom_pull('train_model')['model_uri'] }}",
        name="credit-default",
        expected_sha256="{{ ti.xcom_pull('sign_model', key='subjects')[0]['digest']['sha256'] }}",
    )
    promote = PromoteModelOperator(
        task_id="promote_model",
        name="credit-default",
        version=register.output["version"],
        alias="champion",
        required_approvals=1,
    )
    register >> approve >> promote

Both record signed evidence in the pipeline's MLflow run like every gate. A refusal fails the
task without retry and changes nothing in the registry. See :mod:`airflow_mlsecops.lifecycle.registration`
and :mod:`airflow_mlsecops.lifecycle.promotion` for the checks.

Open-source MLflow has no alias permissions: anyone who may edit the registered model can move
an alias by hand. ``mlsecops verify-model-version`` detects an alias that was not set here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome
    from airflow_mlsecops.lifecycle.recorder import RecordedEvidence

DEFAULT_REQUIRED_GATES = gate_names.DEFAULT_REQUIRED_GATES


class RegisterModelOperator(BaseGateOperator):
    """Register a model version pinned to its digest (gate ``model-registration``).

    Refuses (task fails, no retry, nothing registered) when the model does not hash to
    ``expected_sha256``; quarantines the new version (tag ``mlsecops.quarantined=true``) if the
    registry serves other bytes than were checked. The version is tagged with its digest, the
    pipeline's MLflow run, DAG id, run id, evidence root and, if the model was signed, the
    signature's SHA-256.

    XCom: ``name``, ``version``, ``model_uri`` (``models:/<name>/<version>``), ``model_sha256``,
    ``training_data_sha256`` (the declared training data digests).

    :param model_uri: the model to register: ``models:/<model id>``, ``runs:/<run id>/<path>``... (templated)
    :param name: the registered model's name. (templated)
    :param expected_sha256: the digest the model must have, e.g. the ``model-provenance`` task's
        subject. Empty: the digest signed by this run's ``model-provenance`` evidence for
        ``model_uri`` (refused if there is none). (templated)
    :param tags: further version tags, outside the ``mlsecops.`` namespace. (templated)
    :param training_data: the data the model was trained on: SHA-256 digests (e.g. the training
        task's XCom ``training_data_sha256``) and/or locations, hashed at registration; a list or a
        comma-separated string. Recorded in the signed registration evidence together with the
        digests the training step logged with the model (parameter ``training_data_sha256``);
        promotion requires the required data gates to have judged each of them. (templated)
    """

    template_fields: Sequence[str] = (
        *BaseGateOperator.template_fields,
        "model_uri",
        "name",
        "expected_sha256",
        "tags",
        "training_data",
    )
    gate_name: ClassVar[str] = gate_names.MODEL_REGISTRATION
    ui_color = "#e0f2fe"

    def __init__(
        self,
        *,
        model_uri: str,
        name: str,
        expected_sha256: str | None = None,
        tags: Mapping[str, str] | None = None,
        training_data: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not model_uri:
            raise ValueError(f"{self.task_id}: model_uri is required")
        if not name:
            raise ValueError(f"{self.task_id}: name is required")
        if self.warn_only:
            raise ValueError(f"{self.task_id}: registration has no warn-only mode; a digest mismatch always refuses")
        self.model_uri = model_uri
        self.name = name
        self.expected_sha256 = expected_sha256
        self.tags = dict(tags or {})
        self.training_data = training_data

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.base import Evaluation, run_gate
        from airflow_mlsecops.lifecycle.registration import register_model

        hook = self.evidence_hook()
        try:
            run_id = self.mlflow_run_id or hook.pipeline_run_id(dag_id=pipeline.dag_id, run_id=pipeline.run_id)
        except Exception as exc:  # noqa: BLE001 - becomes an error verdict, recorded if possible, never a pass
            error = exc

            def fail() -> Evaluation:
                raise error

            return run_gate(gate_names.MODEL_REGISTRATION, fail, context=pipeline)
        return register_model(
            hook.store,
            model_uri=str(self.model_uri),
            name=str(self.name),
            expected_sha256=str(self.expected_sha256) if self.expected_sha256 is not None else None,
            pipeline_run_id=run_id,
            tags={str(k): str(v) for k, v in self.tags.items()},
            context=pipeline,
            settings=hook.settings,
            training_data=self.training_data,
        )

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        details = outcome.result.details
        return {
            "name": details.get("name", self.name),
            "version": details.get("version"),
            "model_uri": details.get("model_uri"),
            "model_sha256": details.get("model_sha256"),
            "training_data_sha256": [t.get("sha256") for t in details.get("training_data") or [] if isinstance(t, dict)],
        }


class PromoteModelOperator(BaseGateOperator):
    """Give a registered version an alias when every check passes (gate ``model-promotion``).

    Checks, at promotion time: the pipeline run's evidence verifies; every ``required_gates`` gate
    passed there (``warned`` never counts), model gates for this exact digest; the version's files,
    downloaded from the registry now, still hash to that digest; the ``model-approval`` decision
    covers that digest with at least ``required_approvals`` distinct approvers. The decision is
    recorded as a signed attestation, then the alias is set, the version tagged
    (``mlsecops.approved_by``, ``mlsecops.promoted_at``, ``mlsecops.promotion_evidence``,
    ``mlsecops.previous_<alias>``) and the alias history kept for ``mlsecops rollback``.

    Any failed check: failed verdict naming every failed check, alias unchanged, task fails
    without retry. If MLflow refuses the alias after a passed decision, an ``error`` record
    follows the attestation and the task fails (and may retry).

    XCom: ``name``, ``version``, ``alias``, ``model_uri``, ``model_sha256``, ``approved_by``, ``failed_checks``,
    ``previous_version`` (the alias's previous holder), ``promoted_at``.

    Open-source MLflow has no alias permissions: anyone who may edit the registered model can
    still move the alias by hand; ``mlsecops verify-model-version`` detects it.

    :param name: the registered model. (templated)
    :param version: the version to promote, e.g. the register task's XCom ``version``. (templated)
    :param alias: the alias to set. (templated)
    :param required_gates: gates that must have passed in the pipeline run.
    :param required_approvals: distinct approvers needed (``0``: no approval step).
    :param accept_warned: required gates whose *incomplete* ``warned`` verdict (a check not
        performed, nothing rejected) counts; default none. A warn-only rejection never counts, and a
        policy rule that governs a gate and does not list it in its ``accept_warned`` refuses it.
    :param checkpoint_to: after a successful promotion, write a signed ledger checkpoint there (a
        directory or ``s3://bucket/prefix``; ``"default"``: the configured ``ledger_checkpoints``).
        If it cannot be written the task fails without retry (the promotion is recorded, not
        checkpointed; a retry would promote again); write one with ``mlsecops ledger checkpoint``.
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "name", "version", "alias")
    gate_name: ClassVar[str] = gate_names.MODEL_PROMOTION
    ui_color = "#dcfce7"

    def __init__(
        self,
        *,
        name: str,
        version: str | int,
        alias: str = "champion",
        required_gates: Sequence[str] = DEFAULT_REQUIRED_GATES,
        required_approvals: int = 1,
        checkpoint_to: str | None = None,
        accept_warned: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.warn_only:
            raise ValueError(f"{self.task_id}: promotion has no warn-only mode; a failed check always refuses")
        accept = [accept_warned] if isinstance(accept_warned, str) else [str(g) for g in accept_warned]
        unknown = [g for g in accept if g not in gate_names.POLICY_GATES or g == gate_names.MODEL_APPROVAL]
        if unknown:
            raise ValueError(f"{self.task_id}: accept_warned names no gate with an incomplete verdict: {unknown}")
        #: Required gates whose incomplete ``warned`` verdict this promotion accepts (the policy may refuse them).
        self.accept_warned = list(dict.fromkeys(accept))
        if checkpoint_to is not None:
            from airflow_mlsecops.operators.ledger_checkpoint import check_checkpoint_target

            check_checkpoint_target(self.task_id, checkpoint_to, None)
        #: After a promotion, write a signed ledger checkpoint here (a directory, ``s3://bucket/prefix``, or
        #: ``"default"`` for the platform's ``ledger_checkpoints``); None: none.
        self.checkpoint_to = checkpoint_to
        if not name:
            raise ValueError(f"{self.task_id}: name is required")
        if isinstance(required_gates, str):
            required_gates = [required_gates]
        if not isinstance(required_approvals, int) or required_approvals < 0:
            raise ValueError(f"{self.task_id}: required_approvals must be a whole number >= 0")
        self.name = name
        self.version = version
        self.alias = alias
        self.required_gates = list(required_gates)
        self.required_approvals = required_approvals
        self._decision: tuple[GateOutcome, RecordedEvidence] | None = None

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.gates.base import Evaluation, run_gate
        from airflow_mlsecops.lifecycle.promotion import check_promotion
        from airflow_mlsecops.policy.model import accepted_warned, load_configured_policy
        from airflow_mlsecops.policy.runtime import check_evidence_against_policy

        hook = self.evidence_hook()
        dag = context["dag"]
        owners = getattr(dag, "owner", "") or ""
        try:
            policy = load_configured_policy()
        except Exception as exc:  # noqa: BLE001 - a broken policy blocks promotion (error verdict), never disables it
            error = exc

            def broken() -> Evaluation:
                raise error

            return run_gate(gate_names.MODEL_PROMOTION, broken, context=pipeline)
        gates = list(self.required_gates)
        approvals = self.required_approvals
        accepted = list(self.accept_warned)
        policy_check = None
        if policy is not None:
            # The rules of this DAG, and every rule that governs this model and alias, whichever DAG
            # promotes it: the name and alias are the ones being set in the registry now.
            governed = ((str(self.name), str(self.alias)),)
            rules = policy.matching(dag.dag_id, dag.tags, owners, models=governed)
            gates = list(
                dict.fromkeys([*gates, *(g for r in rules for g in r.gates_for("promote") if g != gate_names.MODEL_APPROVAL)])
            )
            approvals = max([approvals, *(int(r.approval.required_approvals or 0) for r in rules)])
            accepted = list(accepted_warned(rules, accepted))  # a governing rule that does not list a gate refuses it

            def policy_check(results: Any) -> list[str]:
                violations = check_evidence_against_policy(
                    results,
                    dag_id=dag.dag_id,
                    tags=dag.tags,
                    owner=owners,
                    policy=policy,
                    task_id=self.task_id,
                    required_approvals=approvals,
                    models=governed,
                    accept_warned=self.accept_warned,
                )
                return [str(v) for v in violations]

        return check_promotion(
            hook.store,
            name=str(self.name),
            version=str(self.version),
            alias=str(self.alias),
            required_gates=gates,
            required_approvals=approvals,
            settings=hook.settings,
            context=pipeline,
            policy_check=policy_check,
            allowed_producers=policy.allowed_operators if policy is not None else (),
            policy_digest=policy.digest if policy is not None else None,
            accept_warned=accepted,
        )

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        self._decision = (outcome, recorded)
        details = outcome.result.details
        return {
            "name": details.get("name", self.name),
            "version": details.get("version", str(self.version)),
            "alias": details.get("alias", self.alias),
            "model_uri": details.get("model_uri"),
            "model_sha256": details.get("model_sha256"),
            "approved_by": list(details.get("approved_by") or []),
            "failed_checks": list(details.get("failed_checks") or []),
        }

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from airflow_mlsecops.exceptions import MLSecOpsError
        from airflow_mlsecops.lifecycle.promotion import alias_failure_result, promote

        self._decision = None
        summary = super().execute(context)  # records the decision; a refusal raises here, alias untouched
        if self._decision is None:
            raise AirflowException(f"{self.task_id}: the promotion decision was not recorded; nothing is promoted")
        outcome, recorded = self._decision
        hook = self.evidence_hook()
        try:
            from airflow_mlsecops.policy.model import load_configured_policy

            policy = load_configured_policy()  # read again here: nothing evaluate() returned decides who is trusted
            record = promote(
                hook.store,
                name=str(self.name),
                version=str(self.version),
                alias=str(self.alias),
                outcome=outcome,
                evidence=recorded,
                allowed_producers=policy.allowed_operators if policy is not None else (),
            )
        except MLSecOpsError as exc:
            self.log.error("Promotion checks passed, but the alias could not be set: %s", exc)
            try:
                hook.recorder.record(
                    alias_failure_result(outcome, exc),
                    experiment_name=self.experiment_name or context["ti"].dag_id,
                    mlflow_run_id=recorded.mlflow_run_id,
                    record="alias-1",
                )
            except MLSecOpsError as record_exc:
                self.log.error("The failure could not be recorded either: %s", record_exc)
            raise AirflowException(f"the checks passed but @{self.alias} could not be set: {exc}") from exc
        self.log.info(
            "Promoted %s to @%s (previous holder: %s); attestation %s",
            record.model_uri,
            record.alias,
            record.previous_version or "none",
            record.evidence,
        )
        summary.update({"previous_version": record.previous_version, "promoted_at": record.promoted_at})
        if self.checkpoint_to is not None:
            # Fail closed, without retry (a retry would run the promotion again): the promotion is
            # recorded and the alias set, but the ledger is not checkpointed until someone does it.
            from airflow.sdk.exceptions import AirflowFailException

            from airflow_mlsecops.operators.ledger_checkpoint import checkpoint_ledger

            to = None if self.checkpoint_to == "default" else self.checkpoint_to
            try:
                summary["ledger_checkpoint"] = checkpoint_ledger(hook.settings, to=to, retention_days=None, log=self.log)
            except MLSecOpsError as exc:
                raise AirflowFailException(
                    f"{record.model_uri} was promoted to @{record.alias} and the promotion is recorded, but the "
                    f"ledger checkpoint could not be written: {exc}. Write one with `mlsecops ledger checkpoint`."
                ) from exc
        return summary
