"""``BaseGateOperator``: what every gate operator shares.

A gate operator is thin: ``evaluate()`` renders inputs and calls a pure engine; this base class
records the signed evidence (on pass and on failure) and maps the verdict to an Airflow outcome:

============ ============================================================================
verdict      Airflow outcome
============ ============================================================================
passed       success; XCom ``return_value`` holds the verdict and where the evidence is
warned       success with a warning in the log (warn-only mode); the tag says ``warned``
failed       ``AirflowFailException``: the task fails at once, without retry
error        ``AirflowException``: retried per the task's ``retries`` (the input may appear
             or the store come back); fails when retries are exhausted
============ ============================================================================

If the evidence cannot be recorded, the task fails (and may retry): a gate never succeeds
without its evidence.

The recorded result names its producer: the engine (stamped by
:func:`~airflow_mlsecops.gates.base.run_gate`) and the operator class that ran (stamped here,
:class:`~airflow_mlsecops.evidence.producer.CodeIdentity`), so promotion can refuse evidence that a
subclass in a DAG file made up. A subclass outside the package that overrides the methods that
record and sign (``execute``, ``apply_policy``, ``check_evidence_store``, ``evidence_hook``) fails
its task before evaluating anything.

Inputs (``s3://``, ``runs:/``, ``models:/``, local paths) are fetched by the operator, never by the
engine, through :meth:`BaseGateOperator.fetch_input` and its siblings: they use the evidence hook's
MLflow store, so an MLflow URI is read from the store the evidence goes to. An operator turns an
input it cannot fetch into the gate's ``error`` verdict (recorded, retried), never a pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink

from airflow_mlsecops.hooks import DEFAULT_MLFLOW_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome
    from airflow_mlsecops.hooks.evidence import EvidenceHook
    from airflow_mlsecops.io.locations import LocalArtifact, ModelRef
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.io.tabular import LoadedTable
    from airflow_mlsecops.lifecycle.recorder import RecordedEvidence


#: Methods of :class:`BaseGateOperator` that apply the policy, record and sign: only the package's own
#: operator classes may override them (a subclass in a DAG file overrides ``evaluate`` and nothing else).
SEALED_METHODS = ("execute", "apply_policy", "check_evidence_store", "evidence_hook", "refuse_sealed_overrides")


def check_conn_id(task_id: str, conn_id: object) -> str | None:
    """``conn_id`` if it is a non-empty string or ``None``; a ``ValueError`` naming the task otherwise."""
    if conn_id is None or (isinstance(conn_id, str) and conn_id.strip()):
        return conn_id
    raise ValueError(f"{task_id}: mlflow_conn_id must be a connection id or None, not {conn_id!r}")


def _release_sensitive(outcome: GateOutcome, ledger_url: str) -> GateOutcome:
    """The outcome as it may be recorded: when the configured policy marks one of its subjects
    sensitive (``sensitive_data``), its statistics are released through OpenDP or withheld
    (:func:`airflow_mlsecops.privacy.dp_evidence.protect`); the verdict stays exact. A module
    function, not a method: a subclass cannot skip it."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlsecops.exceptions import MLSecOpsError
    from airflow_mlsecops.policy.model import load_configured_policy

    try:
        policy = load_configured_policy()
    except MLSecOpsError as exc:
        raise AirflowFailException(f"the platform policy cannot be used, so no gate runs: {exc}") from exc
    if policy is None or not getattr(policy, "sensitive_data", ()):
        return outcome
    from airflow_mlsecops.privacy.dp_evidence import policy_entries, protect

    return protect(outcome, policy_entries(policy), ledger_url)


class MLflowEvidenceLink(BaseOperatorLink):
    """Links a gate task to the MLflow run that holds its evidence (needs an MLflow UI URL)."""

    name = "MLflow evidence"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return getattr(operator, "mlflow_run_url", None) or ""


class BaseGateOperator(BaseOperator):
    """Base class of all gate operators.

    :param warn_only: record a rejection as ``warned`` and let the pipeline go on. Visible in the
        evidence and the MLflow tags; promotion never counts it as passed.
    :param experiment_name: MLflow experiment for the pipeline's evidence (default: the DAG id).
        (templated)
    :param mlflow_run_id: record into this MLflow run instead of the pipeline's own. (templated)
    :param mlflow_conn_id: the MLflow Connection of the evidence store. The default ``mlflow_default``
        may be left undefined (then ``[mlsecops]`` and the ``MLSECOPS_*`` environment decide); any
        other id must exist, or the task fails. ``None``: no connection. See ``docs/configuration.md``.
    """

    template_fields: Sequence[str] = ("experiment_name", "mlflow_run_id")
    operator_extra_links = (MLflowEvidenceLink(),)
    ui_color = "#fde2e4"
    gate_name: ClassVar[str] = "gate"

    def __init__(
        self,
        *,
        warn_only: bool = False,
        experiment_name: str | None = None,
        mlflow_run_id: str | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        **kwargs: Any,
    ) -> None:
        # Each key of the returned summary is also its own XCom, so ``gate.output["attestation"]``
        # works in a DAG as it does for TaskFlow tasks; ``gate.output`` is still the whole summary.
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.require_flags(warn_only=warn_only)
        self.warn_only = warn_only
        self.experiment_name = experiment_name
        self.mlflow_run_id = mlflow_run_id
        self.mlflow_conn_id = check_conn_id(self.task_id, mlflow_conn_id)
        self.mlflow_run_url: str | None = None
        self._evidence_hook: EvidenceHook | None = None

    def require_flags(self, **flags: object) -> None:
        """Refuse, when the DAG is parsed, any flag that is not ``True`` or ``False``.

        A string such as ``"false"`` would be truthy, and ``None`` falsy: a flag that turns a check
        on or off must be exact.

        :raises ValueError: naming the task and the flag.
        """
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise ValueError(f"{self.task_id}: {name} must be True or False, not {value!r}")

    def evaluate(self, context: Context, pipeline: PipelineContext) -> GateOutcome:
        """Run the gate's engine. Subclasses implement this and nothing else."""
        raise NotImplementedError

    def apply_policy(self, context: Context) -> None:
        """Use the platform policy's thresholds where the DAG set none or a weaker one.

        The cluster policy and ``mlsecops policy check`` reject a weaker value before the DAG runs;
        this is the run-time half, for DAGs that escaped them (no cluster policy installed, a
        value from a template or the run conf). A configured but broken policy fails the task.
        """
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_mlsecops.exceptions import MLSecOpsError
        from airflow_mlsecops.policy.engine import apply_to, policy_requirements
        from airflow_mlsecops.policy.model import load_configured_policy

        try:
            policy = load_configured_policy()
        except MLSecOpsError as exc:
            raise AirflowFailException(f"the platform policy cannot be used, so no gate runs: {exc}") from exc
        if policy is None:
            return
        dag = context["dag"]
        gate = str(getattr(self, "gate", None) or self.gate_name)
        owners = getattr(dag, "owner", "") or ""
        from airflow_mlsecops.policy.airflow_dag import dag_info

        models = dag_info(dag).models  # rules that govern a model this DAG registers or promotes apply too
        for parameter, (kind, value) in policy_requirements(policy, gate, dag.dag_id, dag.tags, owners, models=models).items():
            if not hasattr(self, parameter):
                continue
            current = getattr(self, parameter)
            applied = apply_to(kind, value, current)
            if applied != current:
                self.log.warning("Policy: %s of gate %s is %r, not %r as the DAG says", parameter, gate, applied, current)
                setattr(self, parameter, applied)

    def summarize(self, outcome: GateOutcome, recorded: RecordedEvidence) -> dict[str, Any]:
        """Extra keys for the task's XCom return value (subclasses add e.g. attestation URIs)."""
        return {}

    def evidence_hook(self) -> EvidenceHook:
        """The hook of this task run, made on first use (its settings and clients are then reused)."""
        from airflow_mlsecops.hooks.evidence import EvidenceHook

        if self._evidence_hook is None:
            self._evidence_hook = EvidenceHook(mlflow_conn_id=self.mlflow_conn_id, experiment_name=self.experiment_name)
        return self._evidence_hook

    def check_evidence_store(self) -> None:
        """Resolve the evidence store's settings before any work, so a wrong connection or
        configuration fails the task at once with its own message (no retry: it will not heal)."""
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_mlsecops.exceptions import MLSecOpsError

        try:
            self.evidence_hook().settings  # noqa: B018 - resolving is the check
        except MLSecOpsError as exc:
            raise AirflowFailException(f"the evidence store is not configured, so no gate runs: {exc}") from exc

    # ----------------------------------------------------------------------------------------
    # Inputs: fetched here, through the evidence hook's MLflow store; engines read local paths only

    def _input_store(self) -> MLflowEvidenceStore:
        return self.evidence_hook().store

    def fetch_input(self, location: str | Path, dst: Path) -> Path:
        """A local path holding the bytes of ``location`` (:func:`airflow_mlsecops.io.artifacts.fetch`).

        :param location: local path (returned as it is), ``s3://`` object or prefix, ``runs:/`` or ``models:/`` URI.
        :param dst: a directory for the download.
        """
        from airflow_mlsecops.io.artifacts import fetch

        return fetch(str(location), dst, self._input_store())

    def read_input_bytes(self, location: str | Path, dst: Path) -> bytes:
        """The bytes of the one file at ``location`` (:func:`airflow_mlsecops.io.artifacts.read_bytes`).

        :param location: as for :meth:`fetch_input`.
        :param dst: a directory for the download.
        """
        from airflow_mlsecops.io.artifacts import read_bytes

        return read_bytes(str(location), dst, self._input_store())

    def load_input_table(self, location: str | Path, *, csv_delimiter: str | None = None) -> LoadedTable:
        """The CSV or Parquet file at ``location``, named by its URI (:func:`~airflow_mlsecops.io.locations.load_table_at`).

        :param location: local path, ``s3://`` object, or ``runs:/`` / ``models:/`` URI of one file.
        :param csv_delimiter: delimiter of a CSV file (default ``,``).
        """
        from airflow_mlsecops.io.locations import load_table_at

        return load_table_at(str(location), store=self._input_store(), csv_delimiter=csv_delimiter)

    def fetch_input_artifact(self, location: str | Path, dst: Path) -> LocalArtifact:
        """``location``, its registry alias pinned, fetched into ``dst`` (:func:`~airflow_mlsecops.io.locations.fetch_artifact`).

        :param location: as for :meth:`fetch_input`.
        :param dst: a directory for the download.
        """
        from airflow_mlsecops.io.locations import fetch_artifact

        return fetch_artifact(str(location), dst, self._input_store())

    def resolve_input_model(self, location: str | Path) -> ModelRef:
        """``location`` with its registry alias pinned to a version (:func:`airflow_mlsecops.io.locations.resolve_model_ref`).

        :param location: a model location; ``models:/<name>@<alias>`` is looked up in the MLflow registry.
        """
        from airflow_mlsecops.io.locations import resolve_model_ref

        return resolve_model_ref(str(location), self._input_store())

    def refuse_sealed_overrides(self, operator_class: type) -> None:
        """Fail the task when a class outside the package overrides a method that records and signs.

        :raises AirflowFailException: naming the class, the method and why the class is not trusted.
        """
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_mlsecops.evidence.producer import CodeIdentity, trusted_problems

        for klass in operator_class.__mro__:
            if klass is BaseGateOperator or not issubclass(klass, BaseGateOperator):
                continue
            overridden = [name for name in SEALED_METHODS if name in vars(klass)]
            if not overridden:
                continue
            identity = CodeIdentity.of(klass)
            problems = trusted_problems(identity)
            if problems:
                raise AirflowFailException(
                    f"{self.task_id}: the gate operator class {identity.name} overrides {', '.join(overridden)} "
                    f"(where the policy is applied and the evidence recorded and signed): only airflow-mlsecops's own "
                    f"operators may override it, and {identity.name} is not airflow-mlsecops code "
                    f"({'; '.join(problems)}). Override evaluate() only."
                )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from airflow_mlsecops.evidence.models import PipelineContext, Verdict
        from airflow_mlsecops.evidence.producer import CodeIdentity
        from airflow_mlsecops.exceptions import MLSecOpsError

        # Who runs, fixed before any code of the subclass runs (evaluate() could swap __class__).
        operator_class = type(self)
        BaseGateOperator.refuse_sealed_overrides(self, operator_class)  # through the base class: an override does not count
        operator = CodeIdentity.of(operator_class).to_dict()
        ti = context["ti"]
        self._evidence_hook = None  # settings are read in this run, never carried over
        self.check_evidence_store()
        self.apply_policy(context)
        pipeline = PipelineContext(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=int(ti.try_number or 1),
            map_index=int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", -1) is not None else -1),
        )
        outcome = self.evaluate(context, pipeline)
        engine = (outcome.result.producer or {}).get("engine")
        outcome = dataclasses.replace(outcome, result=outcome.result.with_producer(engine=engine, operator=operator))
        hook = self.evidence_hook()
        outcome = _release_sensitive(outcome, hook.settings.ledger_url)
        result = outcome.result
        try:
            recorded = hook.recorder.record(
                result,
                experiment_name=self.experiment_name or ti.dag_id,
                files=outcome.files,
                statements=outcome.statements,
                mlflow_run_id=self.mlflow_run_id,
            )
        except MLSecOpsError as exc:
            self.log.error("Gate %s: %s. The task fails closed.", self.task_id, exc)
            raise AirflowException(f"evidence could not be recorded, so the gate cannot pass: {exc}") from exc
        try:
            self.mlflow_run_url = hook.run_url(recorded.mlflow_run_id)
        except MLSecOpsError:
            self.mlflow_run_url = None

        self.log.info(
            "Gate %s (%s): %s - %s. Evidence: MLflow run %s, %s (ledger seq %d, key %s)",
            self.task_id,
            result.gate,
            result.verdict.value.upper(),
            result.summary,
            recorded.mlflow_run_id,
            recorded.artifact_dir,
            recorded.ledger_seq,
            recorded.keyid[:16],
        )
        for finding in result.failed_findings[:20]:
            self.log.info("  finding %s [%s] %s", finding.id, finding.severity.value, finding.message)

        summary = self.summarize(outcome, recorded)
        summary.update(
            {
                "gate": result.gate,
                "verdict": result.verdict.value,
                "summary": result.summary,
                "subjects": [s.to_intoto() for s in result.subjects],
                "metrics": dict(result.metrics),
                "evidence": recorded.to_dict(),
            }
        )
        if result.verdict is Verdict.ERROR:
            if outcome.error is not None:
                self.log.error("Gate %s could not run", self.task_id, exc_info=outcome.error)
            raise AirflowException(f"gate {result.gate} could not reach a verdict: {result.summary}")
        if result.verdict is Verdict.FAILED:
            top = "; ".join(f.message for f in result.failed_findings[:3])
            raise AirflowFailException(f"gate {result.gate} rejected the input: {result.summary}. {top}")
        if result.verdict is Verdict.WARNED and result.incomplete:
            self.log.warning(
                "Gate %s is WARNED, incomplete: not performed: %s. %s",
                self.task_id,
                ", ".join(result.not_performed),
                result.summary,
            )
        elif result.verdict is Verdict.WARNED:
            self.log.warning("Gate %s ran in warn-only mode and would have rejected the input: %s", self.task_id, result.summary)
        return summary
