"""Verifying that a registered version and every alias it holds rest on a verified evidence chain.

>>> from airflow_mlsecops.lifecycle.version_verification import verify_model_version
>>> check = verify_model_version(store, name="credit", version="3")              # doctest: +SKIP
>>> check.ok, check.problems                                                     # doctest: +SKIP
(False, ['attestation:@champion: no promotion attestation of models:/credit/3 to @champion exists ...'])

:func:`verify_model_version` finds aliases whose chain is broken: set by hand in MLflow, moved
by hand to another version than the latest signed promotion or rollback named, tags pointing to a
pipeline run that does not verify, files that changed, no promotion attestation for the alias, an
attestation for another digest, no approval. :func:`verify_model_alias` does the same for
``NAME@ALIAS``, the version holding the alias now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.models import GateResult, Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle._registry_checks import (
    PipelineEvidence,
    RecordedAttempt,
    VersionState,
    approval_check,
    current_holder,
    failed_check,
    gate_check,
    get_version,
    holder_check,
    inspect_version,
    ok_check,
    producer_of,
    short_digest,
    validate_alias,
    verify_pipeline_run,
    version_uri,
)
from airflow_mlsecops.lifecycle.model_registry import TAG_PROMOTION_EVIDENCE, RegistryCheck, tag_promotion_evidence
from airflow_mlsecops.lifecycle.verification import describe_trusted_keys


@dataclass
class VersionVerification:
    """Whether a model version's registration and promotions rest on a verified evidence chain."""

    name: str
    version: str
    aliases: list[str]
    model_sha256: str | None
    actual_sha256: str | None
    pipeline_run_id: str | None
    checks: list[RegistryCheck] = field(default_factory=list)
    trusted_keys: list[dict[str, str]] = field(default_factory=list)  # describe_trusted_keys: keyid, key_type, source, validity

    @property
    def model_uri(self) -> str:
        return version_uri(self.name, self.version)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not any(c.failed for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if c.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "model_uri": self.model_uri,
            "aliases": list(self.aliases),
            "model_sha256": self.model_sha256,
            "actual_sha256": self.actual_sha256,
            "pipeline_run_id": self.pipeline_run_id,
            "verified": self.ok,
            "trusted_keys": list(self.trusted_keys),
            "checks": [c.to_dict() for c in self.checks],
            "problems": self.problems,
        }


def _parse_runs_uri(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("runs:/"):
        return None
    run_id, _, path = uri[len("runs:/") :].partition("/")
    return (run_id, path.rstrip("/")) if run_id and path else None


def _is_promotion_of(result: GateResult, name: str, version: str, alias: str) -> bool:
    details = result.details
    return (
        result.gate == gate_names.MODEL_PROMOTION
        and details.get("name") == name
        and str(details.get("version")) == version
        and details.get("alias") == alias
    )


def attestation_check(
    store: MLflowEvidenceStore,
    state: VersionState,
    alias: str,
    settings: Settings,
    reports: dict[str, PipelineEvidence],
) -> tuple[RegistryCheck, RecordedAttempt | None]:
    """``attestation:@<alias>``: a verified, passed, not superseded promotion of this digest to ``alias``."""
    name = f"attestation:@{alias}"
    digest = state.registered_sha256
    candidates: list[tuple[str, str | None]] = []
    for key in (tag_promotion_evidence(alias), TAG_PROMOTION_EVIDENCE):
        parsed = _parse_runs_uri(state.tags.get(key, ""))
        if parsed:
            candidates.append(parsed)
    if state.pipeline_run_id:
        candidates.append((state.pipeline_run_id, None))
    problems: list[str] = []
    for run_id, artifact_dir in dict.fromkeys(candidates):
        evidence = reports.get(run_id)
        if evidence is None:
            try:
                store.run_tags(run_id)
            except ConfigurationError as exc:
                problems.append(f"the promotion evidence run {run_id} cannot be read: {exc}")
                continue
            evidence = reports[run_id] = verify_pipeline_run(store, run_id, settings)
        if artifact_dir is not None:
            scope = artifact_dir.split("/evidence/", 1)[-1]
            located = evidence.at(scope)
            attempts = [located] if located else []
            if not attempts:
                problems.append(f"no verified evidence at runs:/{run_id}/{artifact_dir}")
        else:
            attempts = [a for a in evidence.attempts if _is_promotion_of(a.result, state.name, state.version, alias)]
        for attempt in reversed(attempts):
            result = attempt.result
            where = f"runs:/{run_id} {attempt.scope}"
            if not _is_promotion_of(result, state.name, state.version, alias):
                problems.append(f"{where} is not a promotion of {state.model_uri} to @{alias}")
            elif not attempt.verified:
                problems.append(f"the attestation at {where} does not verify ({attempt.failures[0]})")
            elif result.verdict is not Verdict.PASSED:
                problems.append(f"the promotion at {where} was {result.verdict.value}")
            elif untrusted := producer_of(attempt):
                problems.append(f"the promotion is not attested by airflow-mlsecops code: {untrusted}")
            elif digest is None or not attempt.covers(digest) or result.details.get("model_sha256") != digest:
                problems.append(
                    f"the attestation at {where} is about sha256 {short_digest(str(result.details.get('model_sha256')))}, "
                    f"the version is pinned to {short_digest(digest)}"
                )
            elif later := evidence.superseded(
                attempt,
                lambda r: _is_promotion_of(r, state.name, state.version, alias) and r.verdict is not Verdict.PASSED,
            ):
                problems.append(
                    f"the attestation at {where} is followed by a {later.result.verdict.value} record at {later.scope}"
                )
            elif not evidence.report.ok:
                problems.append(f"the attestation at {where} is in a run that does not verify")
            else:
                return ok_check(name, f"promotion attested at {where}"), attempt
    if not candidates or not problems:
        problems.append(f"no promotion attestation of {state.model_uri} to @{alias} exists (alias set by hand in MLflow?)")
    return failed_check(name, "; ".join(dict.fromkeys(problems))), None


def verify_model_version(
    store: MLflowEvidenceStore,
    *,
    name: str,
    version: str,
    settings: Settings | None = None,
    alias: str | None = None,
) -> VersionVerification:
    """Check that a version's registration and each alias it holds rest on a verified evidence chain.

    ``mlsecops verify-model-version NAME VERSION``. Always checks the registration chain
    (``registration``, ``quarantine``, ``status``, ``registry-digest``, ``pipeline-evidence``). For
    a promoted version (it holds an alias, or ``alias`` is given) also: per alias a signed
    ``model-promotion`` attestation of this version and digest (``attestation:@<alias>``), the
    gates that attestation required (``gate:<name>``) and the approval (``approval``), each
    produced by airflow-mlsecops code or by code every attestation allowed by name. Per alias
    the version holds now, ``holder:@<alias>``: the latest signed promotion or rollback to that
    alias (by ledger sequence) names this version.

    Detects an alias set by hand in MLflow (no mlsecops tags, no attestation for the alias, or an
    alias moved back by hand to a version that was promoted once): open-source MLflow has no alias
    permissions, so this after-the-fact check is the control.

    Never raises for a broken chain: ``.ok`` is false and ``.problems`` says why. Raises
    :class:`ConfigurationError` for an unknown model or version, and :class:`StoreUnavailable`
    when MLflow cannot be reached.

    :param store: the MLflow store.
    :param name: the registered model.
    :param version: the version.
    :param settings: trusted keys and ledger (default: environment).
    :param alias: also require a promotion attestation for this alias (e.g. before a rollback to it).
    """
    cfg = settings or Settings.from_env()
    state = get_version(store, name, str(version))
    trusted = cfg.load_trusted_keys()
    checks: list[RegistryCheck] = []
    if not trusted:
        checks.append(
            failed_check(
                "trusted-keys",
                "no trusted public keys are configured (set MLSECOPS_TRUSTED_KEYS, or MLSECOPS_HOME to trust its keys/ folder)",
            )
        )
    checks.extend(inspect_version(store, state, cfg))
    # Each alias the version holds now must be where the latest signed promotion or rollback put it.
    checks.extend(holder_check(state, held, cfg, trusted) for held in state.aliases)
    aliases = list(dict.fromkeys([*state.aliases, *([alias] if alias else [])]))
    reports: dict[str, PipelineEvidence] = {}
    if state.evidence is not None:
        reports[state.evidence.run_id] = state.evidence
    gates: list[str] = []
    approvals = 0
    # Producers outside the package count only where a signed promotion allowed them by name.
    allowed: list[str] | None = None
    accept: set[str] | None = None  # incomplete verdicts every signed promotion accepted
    for held in aliases:
        check, attempt = attestation_check(store, state, held, cfg, reports)
        checks.append(check)
        if attempt is not None:
            gates.extend(str(g) for g in attempt.result.details.get("required_gates") or ())
            approvals = max(approvals, int(attempt.result.details.get("required_approvals") or 0))
            named = {str(a) for a in attempt.result.details.get("allowed_producers") or ()}
            allowed = sorted(named if allowed is None else set(allowed) & named)
            asked = {str(g) for g in attempt.result.details.get("accept_warned") or ()}
            accept = asked if accept is None else accept & asked
        else:
            accept = set()
            gates.extend(gate_names.DEFAULT_REQUIRED_GATES)
            approvals = max(approvals, 1)
    if aliases:
        digest = state.reference_sha256
        if state.evidence is None:
            checks.append(failed_check("approval", "no pipeline evidence to look in"))
        else:
            for gate in dict.fromkeys(gates):
                checks.append(gate_check(gate, state.evidence, digest, allowed or (), sorted(accept or ()))[0])
            checks.append(approval_check(state.evidence, digest, approvals, allowed or ())[0])
    return VersionVerification(
        name=name,
        version=state.version,
        aliases=state.aliases,
        model_sha256=state.registered_sha256,
        actual_sha256=state.actual_sha256,
        pipeline_run_id=state.pipeline_run_id,
        checks=checks,
        trusted_keys=describe_trusted_keys(trusted),
    )


def verify_model_alias(
    store: MLflowEvidenceStore, *, name: str, alias: str, settings: Settings | None = None
) -> VersionVerification:
    """:func:`verify_model_version` of the version that holds ``alias`` now (``NAME@ALIAS``).

    :raises ConfigurationError: unknown model, or no version holds ``alias``.
    """
    validate_alias(alias)
    holder = current_holder(store, name, alias)
    if holder is None:
        raise ConfigurationError(f"{name} has no alias @{alias}")
    return verify_model_version(store, name=name, version=holder, settings=settings, alias=alias)
