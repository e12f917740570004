"""``AliasGuardOperator``: on a schedule, find aliases of protected models moved without a signed
promotion, fail the task (so Airflow's alerting fires) and move them back.

.. code-block:: python

    AliasGuardOperator(task_id="guard_aliases", restore=True)          # the platform policy's models
    AliasGuardOperator(task_id="guard_credit", models=["credit-*"])    # these models, alert only

Open-source MLflow has no alias permissions: a ``@task`` calling ``MlflowClient`` directly, a DAG
with no mlsecops operator, or a person in the MLflow UI can move an alias. This operator is the
detector (engine: :mod:`airflow_mlsecops.lifecycle.alias_guard`). Its evidence (gate
``alias-guard``) is signed and recorded like any gate's, by default in experiment
``mlsecops-registry``.

============ ============================================================================
verdict      Airflow outcome
============ ============================================================================
passed       success: every protected alias rests on a signed promotion
failed       ``AirflowFailException``: an alias was moved or set without one (restored,
             rolled back or deleted when ``restore``); no retry, ``on_failure_callback`` fires
error        ``AirflowException``: the check could not be made (registry unreachable, no
             trusted key, no policy naming models); retried, then fails
============ ============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlsecops import gate_names
from airflow_mlsecops.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome
    from airflow_mlsecops.lifecycle.recorder import RecordedEvidence

ALIAS_GUARD = gate_names.ALIAS_GUARD
#: :data:`airflow_mlsecops.lifecycle.model_registry.REGISTRY_EXPERIMENT`, for the same reason.
REGISTRY_EXPERIMENT = "mlsecops-registry"


class AliasGuardOperator(BaseGateOperator):
    """Verify every alias of the protected models; fail when one moved without a signed promotion.

    XCom: ``checked`` (each alias: name, alias, version, verified), ``findings`` (each broken alias:
    its problems and what was done: ``none``, ``restored``, ``rolled-back``, ``removed``,
    ``not-done``).

    :param models: registered model names or shell patterns (``credit-*``); ``None``: the platform
        policy's ``match.models`` with its ``match.aliases``, read when the task runs. (templated)
    :param restore: move each broken alias back to the last version whose signed promotion still
        verifies, or delete it when none does.
    :param experiment_name: where the guard's evidence goes (default ``mlsecops-registry``).
    """

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "models")
    gate_name: ClassVar[str] = ALIAS_GUARD
    ui_color = "#fef3c7"

    def __init__(self, *, models: Sequence[str] | str | None = None, restore: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("experiment_name", REGISTRY_EXPERIMENT)
        super().__init__(**kwargs)
        self.require_flags(restore=restore)
        if self.warn_only:
            raise ValueError(f"{self.task_id}: the alias guard has no warn-only mode; a moved alias always fails the task")
        if isinstance(models, str) and "{{" not in models:
            models = [models]
        if models is not None and not isinstance(models, str):
            models = [str(m) for m in models]
            if not models or any(not m.strip() for m in models):
                raise ValueError(f"{self.task_id}: models must name registered models or shell patterns, or be None")
        self.models = models
        self.restore = restore

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        from airflow_mlsecops.lifecycle.alias_guard import check_aliases

        hook = self.evidence_hook()
        models = self.models
        if isinstance(models, str):  # a rendered template: "credit-*, fraud"
            models = [m.strip() for m in models.split(",") if m.strip()] or None
        report = check_aliases(
            hook.store,
            models=models,
            restore=self.restore,
            settings=hook.settings,
            recorder=hook.recorder,
            context=pipeline,
        )
        for finding in report.findings:
            self.log.error("MLSECOPS ALERT %s", finding.message)
        return report.outcome

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        details = outcome.result.details
        return {"checked": list(details.get("checked") or []), "findings": list(details.get("findings") or [])}
