"""Registering a model in the MLflow Model Registry, pinned to its digest (gate ``model-registration``).

>>> from airflow_mlsecops.lifecycle.registration import register_model
>>> outcome = register_model(store, model_uri="models:/m-1f...", name="credit", expected_sha256=digest,
...                          pipeline_run_id=run_id)                                  # doctest: +SKIP
>>> outcome.result.details["model_uri"]                                                 # doctest: +SKIP
'models:/credit/3'

The model's files are hashed before anything is registered (a digest other than the pinned one
refuses, nothing registered); the new version's files are hashed again as the registry serves them
(a registry that copies, or a swap during registration, quarantines the version: tag
``mlsecops.quarantined=true``, failed verdict). A registered version carries the tags
``mlsecops.model_sha256``, ``mlsecops.pipeline_run_id``, ``mlsecops.dag_id``, ``mlsecops.run_id``,
``mlsecops.evidence`` (the pipeline run's evidence root), when the model was signed,
``mlsecops.signature_sha256`` and, when training data is declared, ``mlsecops.training_data_sha256``.

The data the model was trained on is declared by the training step (parameter
``training_data_sha256`` logged with the model) and by the ``training_data`` argument; every
declared digest is recorded in the signed evidence (``details["training_data"]``), so promotion can
require that the data gates judged exactly those bytes (see
:mod:`airflow_mlsecops.lifecycle.training_data`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, MLSecOpsError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate
from airflow_mlsecops.io.mlflow_store import EVIDENCE_ROOT, TAG_DAG_ID, TAG_RUN_ID, MLflowEvidenceStore
from airflow_mlsecops.lifecycle._registry_checks import (
    SHA256_HEX,
    SUPPLY_CHAIN_ATLAS,
    SUPPLY_CHAIN_OWASP,
    PipelineEvidence,
    hash_uri,
    short_digest,
    verify_pipeline_run,
    version_uri,
)
from airflow_mlsecops.lifecycle.model_registry import (
    TAG_EVIDENCE,
    TAG_MODEL_SHA256,
    TAG_PIPELINE_RUN_ID,
    TAG_QUARANTINE_REASON,
    TAG_QUARANTINED,
    TAG_SIGNATURE_SHA256,
    TAG_SOURCE_URI,
    TAG_VERSION_DAG_ID,
    TAG_VERSION_RUN_ID,
)
from airflow_mlsecops.lifecycle.training_data import (
    TAG_TRAINING_DATA,
    TrainingData,
    declared_by_argument,
    logged_training_data,
    merge,
)

logger = logging.getLogger(__name__)


def _normalise_digest(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", "none", "null"):
        return None
    text = text.removeprefix("sha256:")
    if not SHA256_HEX.match(text):
        raise ConfigurationError(f"expected_sha256 must be 64 hex digits, got {value!r}")
    return text


def _registry_is_server(store: MLflowEvidenceStore) -> bool:
    """Whether the registry is an MLflow server (it resolves ``models:/`` sources against its own stores)."""
    return store.registry_uri.split(":", 1)[0].lower() in ("http", "https")


def _source_of(store: MLflowEvidenceStore, model_uri: str) -> tuple[str, str | None, str | None]:
    """(source, run id, logged model id) of a new model version registered from ``model_uri``.

    A ``models:/<model id>`` source is resolved here, through this store's client, unless the
    registry is an MLflow server: a registry database used directly resolves such a source with a
    new ``MlflowClient()``, that is through MLflow's process-global tracking URI, which in a fresh
    task process is ``./mlflow.db`` ("Logged model with ID 'm-...' not found").
    """
    client = store.client
    if model_uri.startswith("models:/"):
        ref = model_uri[len("models:/") :].rstrip("/")
        head, _, rest = ref.partition("/")
        if "@" in head or (rest and rest.isdigit()):
            if "@" in head:
                model_name, alias = head.split("@", 1)
                mv = client.get_model_version_by_alias(model_name, alias)
            else:
                mv = client.get_model_version(head, rest)
            source = client.get_model_version_download_uri(mv.name, mv.version)
            return source, mv.run_id, getattr(mv, "model_id", None)
        if rest:
            raise ConfigurationError(
                f"{model_uri}: expected models:/<model id>, models:/<name>/<version> or models:/<name>@<alias>"
            )
        logged = client.get_logged_model(head)
        if _registry_is_server(store):
            return model_uri, logged.source_run_id, logged.model_id
        return str(logged.artifact_location), logged.source_run_id, logged.model_id
    if model_uri.startswith("runs:/"):
        from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

        run_id, _ = RunsArtifactRepository.parse_runs_uri(model_uri)
        return RunsArtifactRepository.get_underlying_uri(model_uri), run_id, None
    return model_uri, None, None


def create_model_version(store: MLflowEvidenceStore, model_uri: str, name: str, description: str = "") -> str:
    """Create a version of registered model ``name`` (created if missing) from ``model_uri``; its number.

    No digest check and no tags: :func:`register_model` is the gate that pins a version to its
    digest. Everything goes through ``store``'s client (``models:/<model id>`` resolved here, see
    :func:`_source_of`), so it works in a fresh process whatever MLflow's global URIs are.
    """
    from mlflow.exceptions import MlflowException

    client = store.client
    with store.errors(f"cannot register {model_uri} as {name}"):
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        source, run_id, model_id = _source_of(store, model_uri)
        server = _registry_is_server(store)
        # A registry database used directly looks a model id without a run id up through the
        # global tracking URI, and stores no model id anyway: pass it only with the run id.
        mv = client.create_model_version(
            name,
            source,
            run_id=run_id,
            model_id=model_id if server or run_id else None,
            description=description,
        )
        version = str(mv.version)
    if model_id and not server:
        _link_logged_model(store, model_id, name, version)
    return version


def _link_logged_model(store: MLflowEvidenceStore, model_id: str, name: str, version: str) -> None:
    """Name the new version on the logged model (tag ``mlflow.modelVersions``), as an MLflow server
    does itself, so the MLflow UI shows the logged model as registered. Cosmetic: a failure is logged."""
    key = "mlflow.modelVersions"
    try:
        with store.errors(f"cannot link logged model {model_id} to {name}/{version}"):
            existing = store.client.get_logged_model(model_id).tags.get(key)
            versions = json.loads(existing) if existing else []
            versions = versions if isinstance(versions, list) else []
            # The shape MLflow itself writes (the version as a number).
            entry: dict[str, str | int] = {"name": name, "version": int(version) if version.isdigit() else version}
            if entry not in versions:
                store.client.set_logged_model_tags(model_id, {key: json.dumps([*versions, entry])})
    except (MLSecOpsError, ValueError) as exc:
        logger.warning("the MLflow UI will not show %s as registered: %s", model_id, exc)


def _quarantine(store: MLflowEvidenceStore, name: str, version: str, reason: str) -> str | None:
    """Tag a version ``mlsecops.quarantined=true``; returns why that failed, if it did."""
    try:
        with store.errors(f"cannot quarantine {name}/{version}"):
            store.client.set_model_version_tag(name, version, TAG_QUARANTINED, "true")
            store.client.set_model_version_tag(name, version, TAG_QUARANTINE_REASON, reason[:4000])
    except MLSecOpsError as exc:
        return str(exc)
    return None


def _pinned_by_evidence(evidence: PipelineEvidence | None, model_uri: str) -> tuple[str | None, str]:
    """The digest the pipeline's ``model-provenance`` evidence signed for ``model_uri``."""
    if evidence is None:
        return None, "no pipeline run"
    digests = {
        s.sha256
        for attempt in evidence.latest(gate_names.MODEL_PROVENANCE)
        if attempt.verified and attempt.result.verdict is Verdict.PASSED
        for s in attempt.result.subjects
        if s.name == model_uri
    }
    if len(digests) == 1:
        return digests.pop(), "model-provenance evidence"
    if digests:
        return None, f"model-provenance evidence names {len(digests)} different digests for {model_uri}"
    return None, f"no verified model-provenance evidence names {model_uri}"


def _signature_digest(evidence: PipelineEvidence | None, digest: str) -> str | None:
    """SHA-256 of the OpenSSF signature bundle of the model with ``digest``, from ``model-signing`` evidence."""
    if evidence is None:
        return None
    for attempt in reversed(evidence.latest(gate_names.MODEL_SIGNING)):
        if attempt.verified and attempt.result.verdict is Verdict.PASSED and attempt.covers(digest):
            value = attempt.result.details.get("signature_sha256") or attempt.result.details.get("bundle_sha256")
            if isinstance(value, str) and SHA256_HEX.match(value):
                return value
    return None


def _evaluate_registration(
    store: MLflowEvidenceStore,
    *,
    model_uri: str,
    name: str,
    expected_sha256: str | None,
    pipeline_run_id: str | None,
    extra: Mapping[str, str],
    context: PipelineContext | None,
    settings: Settings | None,
    training_data: object = None,
) -> Evaluation:
    """The ``model-registration`` decision of :func:`register_model` (``extra``: the caller's further tags)."""
    if not name or not isinstance(name, str):
        raise ConfigurationError("a registered model name is required")
    if not model_uri:
        raise ConfigurationError("model_uri is required")
    reserved = sorted(k for k in extra if k.startswith("mlsecops."))
    if reserved:
        raise ConfigurationError(f"tags in the mlsecops. namespace are set by the gate only: {', '.join(reserved)}")
    expected = _normalise_digest(expected_sha256)
    cfg = settings or Settings.from_env()
    run_tags: dict[str, str] = {}
    evidence: PipelineEvidence | None = None
    if pipeline_run_id:
        run_tags = store.run_tags(pipeline_run_id)
        evidence = verify_pipeline_run(store, pipeline_run_id, cfg, check_subjects=False)
    pinned_by = "expected_sha256"
    if expected is None:
        expected, why = _pinned_by_evidence(evidence, model_uri)
        pinned_by = why
        if expected is None:
            return Evaluation(
                passed=False,
                summary=f"refused: nothing pins the digest of {model_uri} ({why}); nothing was registered",
                findings=[Finding("registration.unpinned", Severity.HIGH, f"no expected_sha256 and {why}", model_uri)],
                details={"name": name, "source_uri": model_uri, "registered": False},
            )
    training: list[TrainingData] = merge(declared_by_argument(training_data), logged_training_data(store, model_uri))
    base = {
        "name": name,
        "source_uri": model_uri,
        "expected_sha256": expected,
        "pinned_by": pinned_by,
        "training_data": [t.to_dict() for t in training],
    }
    source_digest = hash_uri(store, model_uri)
    if source_digest != expected:
        message = f"{model_uri} hashes to {short_digest(source_digest)}, expected {short_digest(expected)}"
        return Evaluation(
            passed=False,
            summary=f"refused: {message}; nothing was registered",
            subjects=[Subject(model_uri, source_digest)],
            findings=[
                Finding(
                    "registration.digest-mismatch", Severity.CRITICAL, message, model_uri, SUPPLY_CHAIN_ATLAS, SUPPLY_CHAIN_OWASP
                )
            ],
            details={**base, "registered": False, "source_sha256": source_digest},
        )

    version = create_model_version(store, model_uri, name, description=f"registered by airflow-mlsecops from {model_uri}")
    registered_uri = version_uri(name, version)
    try:
        registered_digest = hash_uri(store, registered_uri)
    except MLSecOpsError as exc:
        _quarantine(store, name, version, f"the registered files could not be hashed: {exc}")
        raise
    if registered_digest != expected:
        message = (
            f"the registered files of {registered_uri} hash to {short_digest(registered_digest)}, "
            f"expected {short_digest(expected)}"
        )
        problem = _quarantine(store, name, version, message)
        return Evaluation(
            passed=False,
            summary=f"refused: {message}; the version is quarantined" + (f" (tagging failed: {problem})" if problem else ""),
            subjects=[Subject(registered_uri, registered_digest)],
            findings=[
                Finding(
                    "registration.registered-digest-mismatch",
                    Severity.CRITICAL,
                    message,
                    registered_uri,
                    SUPPLY_CHAIN_ATLAS,
                    SUPPLY_CHAIN_OWASP,
                )
            ],
            details={
                **base,
                "registered": True,
                "quarantined": problem is None,
                "version": version,
                "model_uri": registered_uri,
            },
        )

    version_tags = {TAG_MODEL_SHA256: expected, TAG_SOURCE_URI: model_uri}
    if pipeline_run_id:
        version_tags[TAG_PIPELINE_RUN_ID] = pipeline_run_id
        version_tags[TAG_EVIDENCE] = f"runs:/{pipeline_run_id}/{EVIDENCE_ROOT}"
    dag_id = run_tags.get(TAG_DAG_ID) or (context.dag_id if context else None)
    dag_run_id = run_tags.get(TAG_RUN_ID) or (context.run_id if context else None)
    if dag_id:
        version_tags[TAG_VERSION_DAG_ID] = dag_id
    if dag_run_id:
        version_tags[TAG_VERSION_RUN_ID] = dag_run_id
    signature = _signature_digest(evidence, expected)
    if signature:
        version_tags[TAG_SIGNATURE_SHA256] = signature
    if training:
        version_tags[TAG_TRAINING_DATA] = ",".join(t.sha256 for t in training)
    try:
        with store.errors(f"cannot tag {registered_uri}"):
            for key, value in {**extra, **version_tags}.items():
                store.client.set_model_version_tag(name, version, key, value)
    except MLSecOpsError as exc:
        _quarantine(store, name, version, f"the registration tags could not be set: {exc}")
        raise
    return Evaluation(
        passed=True,
        summary=f"registered {model_uri} as {registered_uri}, sha256 {short_digest(expected)} (pinned by {pinned_by})"
        + (f", trained on {', '.join(short_digest(t.sha256) for t in training)}" if training else ", no training data declared"),
        subjects=[Subject(registered_uri, expected), Subject(model_uri, expected)],
        findings=[
            Finding(
                "registration.digest",
                Severity.INFO,
                f"{registered_uri} hashes to the pinned digest",
                registered_uri,
                passed=True,
            )
        ],
        details={
            **base,
            "registered": True,
            "version": version,
            "model_uri": registered_uri,
            "model_sha256": expected,
            "pipeline_run_id": pipeline_run_id,
            "signature_sha256": signature,
            "tags": {**extra, **version_tags},
        },
    )


def register_model(
    store: MLflowEvidenceStore,
    *,
    model_uri: str,
    name: str,
    expected_sha256: str | None,
    pipeline_run_id: str | None,
    tags: Mapping[str, str] | None = None,
    context: PipelineContext | None = None,
    settings: Settings | None = None,
    training_data: object = None,
) -> GateOutcome:
    """Gate ``model-registration``: register ``model_uri`` as a new version of ``name``, pinned to its digest.

    The model is hashed before anything is created: a digest other than ``expected_sha256``
    refuses (failed verdict) and nothing is registered. The new version is then downloaded from
    the registry and hashed again; if it differs (a registry that copies artifacts, or a swap while
    registering) the version is tagged ``mlsecops.quarantined=true`` and the verdict is failed.
    A registration that cannot run (unknown model, unreachable store) is an ``error`` verdict.

    :param store: the MLflow store; every registry call goes through its client (its tracking and
        registry URI), never MLflow's process-global URIs, so registration works in a fresh task
        process.
    :param model_uri: ``models:/<model id>`` (a logged model), ``runs:/<run id>/<path>``,
        ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
    :param name: the registered model's name (created when missing).
    :param expected_sha256: the digest the model must have (e.g. the ``model-provenance`` subject's).
        ``None``: the digest that verified ``model-provenance`` evidence of the pipeline run signed
        for ``model_uri``; without one the registration is refused, never unpinned.
    :param pipeline_run_id: the MLflow run holding the pipeline's evidence; tagged on the version
        so promotion can verify it. ``None`` registers without it (promotion will then refuse).
    :param tags: further version tags (not in the ``mlsecops.`` namespace).
    :param context: the Airflow task registering, if any.
    :param settings: trusted keys and ledger for reading the pipeline's evidence (default: environment).
    :param training_data: the data the model was trained on, as declared by the pipeline: digests
        (64 hex digits) and/or locations (hashed now), a list or a comma-separated string. Recorded
        with the digests the training step logged with the model (parameter
        ``training_data_sha256``); a value that is neither is an ``error`` verdict.
    :return: the gate outcome; ``result.details`` has ``name``, ``version``, ``model_uri``
        (``models:/<name>/<version>``), ``model_sha256`` and ``training_data`` (each declared digest,
        who declared it and, for a location, where it is).
    """
    extra = {str(k): str(v) for k, v in dict(tags or {}).items()}
    return run_gate(
        gate_names.MODEL_REGISTRATION,
        lambda: _evaluate_registration(
            store,
            model_uri=model_uri,
            name=name,
            expected_sha256=expected_sha256,
            pipeline_run_id=pipeline_run_id,
            extra=extra,
            context=context,
            settings=settings,
            training_data=training_data,
        ),
        policy={
            "digest": "sha256",
            "pinned": "expected_sha256 or model-provenance evidence",
            "rehash_registered": True,
            "training_data": "declared digests recorded",
        },
        distributions=("mlflow",),
        context=context,
    )
