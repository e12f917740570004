"""The training-privacy gate: the differential-privacy guarantee a training run declares, checked
against what the policy demands of models trained on sensitive data.

A training stage declares its guarantee on its MLflow run, as tags (or params) named by
:data:`DP_TAGS`:

================================ ===================================================================
``mlsecops.dp.epsilon``          the privacy loss epsilon of the whole training (a finite number >= 0)
``mlsecops.dp.delta``            delta (0 for pure epsilon-DP); required, so no one forgets it
``mlsecops.dp.mechanism``        how the guarantee was obtained (``dp-sgd``, ``objective-perturbation``...)
``mlsecops.dp.library``          the library and version that accounted for it (``opacus==1.5``...)
================================ ===================================================================

Training code writes them with :func:`declare_dp_guarantee` (or ``mlflow.set_tags(dp_guarantee_tags(...))``)::

    from airflow_mlsecops.gates.membership import training_privacy

    training_privacy.declare_dp_guarantee(run_id, epsilon=3.0, delta=1e-6, mechanism="dp-sgd",
                                          library="opacus==1.5.2", store=store)

:func:`check_training_privacy` rejects a model trained on data whose ``sensitive_data`` entry has a
``training`` requirement (:mod:`airflow_mlsecops.privacy.sensitive`) when the run declares no
guarantee, an unreadable one, or one weaker than ``max_epsilon`` / ``max_delta``; the DAG's own
``max_epsilon`` / ``max_delta`` apply to any data, and the stricter of the two wins. Data that is not
marked sensitive, with no requirement of the DAG's, passes with a note saying so. A declaration is
a claim of the training code: the gate checks it is present and strong enough, the
membership-inference gate measures what the model leaks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate

if TYPE_CHECKING:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.privacy.sensitive import SensitiveData

GATE_NAME = gate_names.TRAINING_PRIVACY
TAG_EPSILON = "mlsecops.dp.epsilon"
TAG_DELTA = "mlsecops.dp.delta"
TAG_MECHANISM = "mlsecops.dp.mechanism"
TAG_LIBRARY = "mlsecops.dp.library"
#: The tags (or params) a training run declares its differential-privacy guarantee with.
DP_TAGS = (TAG_EPSILON, TAG_DELTA, TAG_MECHANISM, TAG_LIBRARY)
_ATLAS = ("AML.T0024.000",)
_OWASP = ("ML04:2023",)


def dp_guarantee_tags(*, epsilon: float, delta: float, mechanism: str, library: str) -> dict[str, str]:
    """The MLflow tags declaring a training run's DP guarantee (:data:`DP_TAGS`).

    >>> dp_guarantee_tags(epsilon=3, delta=1e-6, mechanism="dp-sgd", library="opacus==1.5.2")["mlsecops.dp.epsilon"]
    '3.0'

    :raises ConfigurationError: a negative or non-finite epsilon or delta, a delta of 1 or more, an empty name.
    """
    eps, dlt = _number(epsilon, "epsilon"), _number(delta, "delta")
    if dlt >= 1:
        raise ConfigurationError(f"delta must be below 1, not {delta!r}")
    for name, value in (("mechanism", mechanism), ("library", library)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{name} must name what gave the guarantee, not {value!r}")
    return {TAG_EPSILON: repr(eps), TAG_DELTA: repr(dlt), TAG_MECHANISM: mechanism.strip(), TAG_LIBRARY: library.strip()}


def declare_dp_guarantee(
    run_id: str,
    *,
    epsilon: float,
    delta: float,
    mechanism: str,
    library: str,
    store: MLflowEvidenceStore | None = None,
) -> dict[str, str]:
    """Declare the DP guarantee of the training in MLflow run ``run_id``; returns the tags written.

    :param store: the MLflow store to write to (default: the one configured, as the gates find it).
    """
    tags = dp_guarantee_tags(epsilon=epsilon, delta=delta, mechanism=mechanism, library=library)
    if store is None:
        from airflow_mlsecops.config import Settings
        from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

        store = MLflowEvidenceStore.from_settings(Settings.from_env())
    store.log_tags_and_metrics(run_id, tags, {})
    return tags


def training_privacy_policy(
    *, max_epsilon: float | None = None, max_delta: float | None = None, sensitive: SensitiveData | None = None
) -> dict[str, Any]:
    """The policy a training-privacy check records: the DAG's limits and the sensitive-data entry that applied."""
    return {
        "max_epsilon": max_epsilon,
        "max_delta": max_delta,
        "sensitive_data": sensitive.to_dict() if sensitive is not None else None,
    }


def check_training_privacy(
    declared: Mapping[str, str],
    *,
    training_run_id: str,
    model: Subject,
    training_data: Sequence[str] = (),
    training_data_sha256: Sequence[str] = (),
    training_subjects: Sequence[Subject] = (),
    sensitive_entries: Sequence[SensitiveData] | None = None,
    max_epsilon: float | None = None,
    max_delta: float | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
) -> GateOutcome:
    """Check the DP guarantee a training run declares against the requirement for its training data.

    :param declared: the run's tags and params (tags win): :data:`DP_TAGS` are read.
    :param training_run_id: the MLflow run that trained the model (named in the evidence).
    :param model: the model's subject (its digest): the evidence names it.
    :param training_data: names of the data the model was trained on (paths, ``s3://`` URIs), matched
        against the policy's ``sensitive_data`` patterns.
    :param training_data_sha256: their digests, matched against ``sha256:<hex>`` patterns.
    :param training_subjects: training files recorded as subjects (name and digest).
    :param sensitive_entries: the policy's ``sensitive_data`` section (``None``: no policy).
    :param max_epsilon: the DAG's own limit on epsilon, for any data (the stricter limit wins).
    :param max_delta: the DAG's own limit on delta.
    """
    from airflow_mlsecops.privacy.sensitive import sensitive_data_for

    for name, value in (("max_epsilon", max_epsilon), ("max_delta", max_delta)):
        if value is not None:
            _number(value, name)
    sensitive = sensitive_data_for(sensitive_entries or (), training_data, training_data_sha256)
    policy = training_privacy_policy(max_epsilon=max_epsilon, max_delta=max_delta, sensitive=sensitive)

    def body() -> Evaluation:
        subjects = [model, *training_subjects]
        limits = _limits(sensitive, max_epsilon, max_delta)
        where = f"training run {training_run_id}"
        declared_text = {k: declared[k] for k in DP_TAGS if k in declared}
        details: dict[str, Any] = {
            "training_run_id": training_run_id,
            "declared": declared_text,
            "training_data": list(training_data),
            "sensitive_data": sensitive.name if sensitive is not None else None,
            "required": {"max_epsilon": limits[0], "max_delta": limits[1]} if limits else None,
        }
        if limits is None:
            reason = (
                f"the training data is marked sensitive ({sensitive.name}) but its entry sets no training requirement"
                if sensitive is not None
                else "the training data is not marked sensitive by the policy and the task sets no limit"
            )
            return Evaluation(
                passed=True,
                summary=f"no DP guarantee required: {reason}",
                subjects=subjects,
                findings=[Finding(id="training-privacy.not-required", severity=Severity.INFO, message=reason, passed=True)],
                details=details,
            )
        need_eps, need_delta = limits
        wanted = f"epsilon <= {need_eps:g}, delta <= {need_delta:g}"
        origin = f"sensitive data {sensitive.name}" if sensitive is not None else "the task's limits"
        epsilon, delta, problem = _declared(declared)
        if problem is not None:
            message = f"{where} {problem}; {origin} requires a DP guarantee of {wanted}"
            return Evaluation(
                passed=False,
                summary=f"no valid DP guarantee declared; required {wanted}",
                subjects=subjects,
                findings=[_finding("training-privacy.no-guarantee", message, False)],
                details=details,
            )
        assert epsilon is not None and delta is not None
        ok = epsilon <= need_eps and delta <= need_delta
        mechanism = declared.get(TAG_MECHANISM, "unnamed mechanism")
        library = declared.get(TAG_LIBRARY, "unnamed library")
        message = f"{where} declares ({epsilon:g}, {delta:g})-DP ({mechanism}, {library}); {origin} requires {wanted}: " + (
            "met" if ok else "the declared guarantee is weaker"
        )
        return Evaluation(
            passed=ok,
            summary=f"declared epsilon {epsilon:g}, delta {delta:g}; required {wanted}",
            subjects=subjects,
            findings=[_finding("training-privacy.guarantee", message, ok)],
            metrics={"epsilon": epsilon, "delta": delta, "max_epsilon": need_eps, "max_delta": need_delta},
            details=details,
        )

    return run_gate(GATE_NAME, body, policy=policy, warn_only=warn_only, context=context)


def training_privacy_unavailable(
    error: BaseException,
    *,
    max_epsilon: float | None = None,
    max_delta: float | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
) -> GateOutcome:
    """The error outcome of a check whose model or training run could not be read (never a pass)."""
    policy = training_privacy_policy(max_epsilon=max_epsilon, max_delta=max_delta)
    return run_gate(GATE_NAME, raising(error), policy=policy, warn_only=warn_only, context=context)


def _limits(sensitive: SensitiveData | None, max_epsilon: float | None, max_delta: float | None) -> tuple[float, float] | None:
    """The strictest (epsilon, delta) required, or None when nothing is required."""
    epsilons, deltas = [], []
    if sensitive is not None and sensitive.training is not None:
        epsilons.append(sensitive.training.max_epsilon)
        deltas.append(sensitive.training.max_delta)
    if max_epsilon is not None:
        epsilons.append(float(max_epsilon))
    if max_delta is not None:
        deltas.append(float(max_delta))
    if not epsilons and not deltas:
        return None
    # A limit on only one of them: the other defaults to the strictest reading (delta 0) or no limit (epsilon).
    return (min(epsilons) if epsilons else math.inf, min(deltas) if deltas else 0.0)


def _declared(declared: Mapping[str, str]) -> tuple[float | None, float | None, str | None]:
    """``(epsilon, delta, None)`` or ``(None, None, what is wrong)``."""
    missing = [t for t in (TAG_EPSILON, TAG_DELTA) if not str(declared.get(t, "")).strip()]
    if missing:
        return None, None, f"declares no DP guarantee (missing {', '.join(missing)})"
    try:
        epsilon = _number(float(declared[TAG_EPSILON]), TAG_EPSILON)
        delta = _number(float(declared[TAG_DELTA]), TAG_DELTA)
    except (ValueError, ConfigurationError) as exc:
        return None, None, f"declares an unreadable DP guarantee ({exc})"
    if delta >= 1:
        return None, None, f"declares delta {delta:g}, which is no guarantee"
    return epsilon, delta, None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def _finding(identifier: str, message: str, passed: bool) -> Finding:
    if passed:
        return Finding(id=identifier, severity=Severity.INFO, message=message, passed=True)
    return Finding(id=identifier, severity=Severity.HIGH, message=message, atlas=_ATLAS, owasp_ml=_OWASP, passed=False)


def read_declaration(store: MLflowEvidenceStore, run_id: str) -> dict[str, str]:
    """The run's params overlaid with its tags (the :data:`DP_TAGS` and every other key).

    :raises GateError: the run cannot be read.
    """
    if not run_id or not isinstance(run_id, str):
        raise GateError("training_run_id is required: the MLflow run that trained the model")
    with store.errors(f"cannot read the training run {run_id}"):
        data = store.client.get_run(run_id).data
        return {**{str(k): str(v) for k, v in data.params.items()}, **{str(k): str(v) for k, v in data.tags.items()}}
