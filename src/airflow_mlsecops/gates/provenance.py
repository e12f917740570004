"""Artifact provenance: hash and attest datasets or models, and verify them before use.

>>> from airflow_mlsecops.gates.provenance import attest_artifacts, verify_artifacts
>>> signed = attest_artifacts(["data/train.csv"], builder_id="airflow://dag/sign")   # doctest: +SKIP
>>> checked = verify_artifacts({"/abs/data/train.csv": "data/train.csv"}, envelope, keys)  # doctest: +SKIP

**Sign** (:func:`attest_artifacts`, gate ``dataset-provenance`` / ``model-provenance``). Each
artifact (a file or a directory; local, or fetched from S3/MLflow by the caller) becomes a subject
of the gate result: a file's digest is the SHA-256 of its bytes, a directory's is the SHA-256 of its
manifest (see :mod:`airflow_mlsecops.evidence.digest`). The per-file manifest is recorded as
``manifest.json``, and a SLSA provenance v1 statement naming every file (builder = the DAG task,
external parameters = the run's conf, resolved dependencies = the inputs' digests) is signed and
stored as ``provenance.slsa.dsse.json``. Hashing is streamed and parallel across files; symbolic
links, named pipes, sockets and devices (anywhere in a directory: never skipped, since a manifest
without them would not describe the directory), empty directories and files that change while
being hashed are errors, so the gate's verdict is ``error``, never a pass.

**Verify** (:func:`verify_artifacts`, gate ``provenance-verification``). A later stage checks that
what it is about to use is byte for byte what was signed: the signature must come from a trusted
key, every attested file must be present and unchanged, and no file may have been added. A missing
artifact, an untrusted signature or a malformed attestation rejects; nothing is ever a silent pass.

Signing time, for a trusted key with a validity window or a revocation (a trust file): the caller's
``signed_at`` when it knows one from a record the signer cannot write alone (a ledger row), else
the time the attestation states (``runDetails.metadata.finishedOn``, signed with it). A stated
time is the signer's word: it places the signature inside a rotated key's window (the key was not
compromised, so its word holds), but it can never show that a signature predates a revocation,
so an attestation signed by a revoked key is refused unless ``signed_at`` is given; a stated time
in the future is refused too. An attestation stating no time is refused by such a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.digest import FileEntry, file_manifest, manifest_digest
from airflow_mlsecops.evidence.dsse import Envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningTime, VerifyingKey
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.evidence.slsa import build_provenance, parse_provenance
from airflow_mlsecops.exceptions import ConfigurationError, VerificationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate

GATE_NAME = gate_names.DATASET_PROVENANCE
VERIFY_GATE_NAME = gate_names.PROVENANCE_VERIFICATION
PROVENANCE_FILE = "provenance.slsa.dsse.json"


def _tampering(finding_id: str, message: str, location: str | None = None) -> Finding:
    """A rejection finding: supply-chain compromise (ATLAS AML.T0010; OWASP ML06, ML02)."""
    return Finding(finding_id, Severity.CRITICAL, message, location, atlas=("AML.T0010",), owasp_ml=("ML06:2023", "ML02:2023"))


def _named(artifacts: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    named = dict(artifacts) if isinstance(artifacts, Mapping) else {str(Path(a).absolute()): a for a in artifacts}
    if not named:
        raise ConfigurationError("no artifacts given")
    return named


def _evaluate_attestation(
    named: Mapping[str, str],
    *,
    context: PipelineContext | None,
    workers: int | None,
    builder_id: str | None,
    external_parameters: Mapping[str, Any] | None,
    resolved_dependencies: Sequence[Mapping[str, Any]],
    started: datetime,
) -> Evaluation:
    """Hash every artifact and build the SLSA provenance naming each file (the body of :func:`attest_artifacts`)."""
    subjects: list[Subject] = []
    manifests: dict[str, list[FileEntry]] = {}
    is_file: dict[str, bool] = {}
    for name, local in named.items():
        entries = file_manifest(local, workers=workers)
        is_file[name] = Path(local).is_file()
        subjects.append(Subject(name, entries[0].sha256 if is_file[name] else manifest_digest(entries)))
        manifests[name] = entries
    total_bytes = sum(e.size for entries in manifests.values() for e in entries)
    total_files = sum(len(entries) for entries in manifests.values())
    manifest_json = {
        name: [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries] for name, entries in manifests.items()
    }
    builder = builder_id or (f"airflow://{context.dag_id}/{context.task_id}" if context else "mlsecops-cli")
    internal = {"try_number": context.try_number, "map_index": context.map_index} if context else {}
    provenance = build_provenance(
        manifests,
        artifact_is_file=is_file,
        builder_id=builder,
        external_parameters={
            **({"dag_id": context.dag_id, "task_id": context.task_id} if context else {}),
            **dict(external_parameters or {}),
        },
        internal_parameters=internal,
        resolved_dependencies=resolved_dependencies,
        invocation_id=context.run_id if context else None,
        started_on=started,
        finished_on=datetime.now(timezone.utc),
    )
    return Evaluation(
        passed=True,
        summary=f"attested {len(subjects)} artifact(s): {total_files} file(s), {total_bytes} bytes",
        subjects=subjects,
        metrics={"files": float(total_files), "bytes": float(total_bytes)},
        files={"manifest.json": json.dumps(manifest_json, indent=2, sort_keys=True).encode("utf-8")},
        statements={PROVENANCE_FILE: provenance},
        details={"builder_id": builder},
    )


def attest_artifacts(
    artifacts: Sequence[str] | Mapping[str, str],
    *,
    gate: str = GATE_NAME,
    context: PipelineContext | None = None,
    workers: int | None = None,
    builder_id: str | None = None,
    external_parameters: Mapping[str, Any] | None = None,
    resolved_dependencies: Sequence[Mapping[str, Any]] = (),
    warn_only: bool = False,
) -> GateOutcome:
    """Hash ``artifacts`` and build the provenance result and its SLSA statement.

    :param artifacts: local paths, or a mapping of subject name (``models:/m-1``, ``s3://b/k``)
        to the local path holding its bytes.
    :param builder_id: SLSA builder id (default: ``airflow://<dag_id>/<task_id>`` or ``mlsecops-cli``).
    :param external_parameters: what the user asked for (e.g. the DAG run's conf).
    :param resolved_dependencies: inputs that produced the artifacts, as SLSA resource descriptors.
    """
    named = _named(artifacts)
    started = datetime.now(timezone.utc)
    return run_gate(
        gate,
        lambda: _evaluate_attestation(
            named,
            context=context,
            workers=workers,
            builder_id=builder_id,
            external_parameters=external_parameters,
            resolved_dependencies=resolved_dependencies,
            started=started,
        ),
        policy={"digest": "sha256", "symlinks": "refused", "special_files": "refused", "slsa": "v1"},
        context=context,
        warn_only=warn_only,
    )


def _match(requested: str, attested: Mapping[str, Any]) -> str | None:
    if requested in attested:
        return requested
    by_base = [name for name in attested if Path(name.rstrip("/")).name == Path(requested.rstrip("/")).name]
    return by_base[0] if len(by_base) == 1 else None


def _evaluate_verification(
    named: Mapping[str, str],
    attestation: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    workers: int | None,
    signed_at: SigningTime | datetime | None = None,
) -> Evaluation:
    """Check the attestation, then every artifact against it, naming each problem (the body of :func:`verify_artifacts`)."""
    findings: list[Finding] = []
    subjects: list[Subject] = []
    try:
        envelope = Envelope.from_json(attestation)
        stated = _stated_signing_time(envelope.payload)
        key = verify_envelope(envelope, trusted_keys, signed_at=signed_at if signed_at is not None else stated)
        if signed_at is not None and stated is not None:
            # The caller's time placed the signature before any revocation; the stated one must agree with the window.
            key.check_signing_time(SigningTime(stated.at, stated.source))
        statement = parse_provenance(envelope.payload)
    except VerificationError as exc:
        return Evaluation(
            passed=False,
            summary=f"the attestation cannot be trusted: {exc}",
            findings=[_tampering("provenance.attestation", str(exc))],
        )
    checked_files = 0
    for name, local in named.items():
        matched = _match(name, statement.artifacts)
        if matched is None:
            findings.append(_tampering("provenance.not-attested", f"{name} is not named by the attestation", name))
            continue
        attested = statement.artifacts[matched]
        entries = file_manifest(local, workers=workers)
        local_is_file = Path(local).is_file()
        actual = {"": entries[0].sha256} if local_is_file else {e.path: e.sha256 for e in entries}
        subjects.append(Subject(name, entries[0].sha256 if local_is_file else manifest_digest(entries)))
        checked_files += len(actual)
        if attested.is_file != local_is_file:
            kind = "a file" if attested.is_file else "a directory"
            findings.append(_tampering("provenance.kind", f"{name} was attested as {kind}", name))
            continue
        changed = sorted(p for p in attested.files.keys() & actual.keys() if attested.files[p] != actual[p])
        missing = sorted(attested.files.keys() - actual.keys())
        added = sorted(actual.keys() - attested.files.keys())
        for label, paths, what in (
            ("changed", changed, "changed since it was signed"),
            ("missing", missing, "is missing"),
            ("added", added, "was added after signing"),
        ):
            for path in paths[:50]:
                where = f"{name.rstrip('/')}/{path}" if path else name
                findings.append(_tampering(f"provenance.{label}", f"{where} {what}", where))
            if len(paths) > 50:
                findings.append(_tampering(f"provenance.{label}", f"... and {len(paths) - 50} more files {what}", name))
        if not (changed or missing or added):
            findings.append(
                Finding(
                    "provenance.match",
                    Severity.INFO,
                    f"{name}: {len(actual)} file(s) match the attestation",
                    name,
                    passed=True,
                )
            )
    rejected = [f for f in findings if not f.passed]
    summary = (
        f"{len(named)} artifact(s), {checked_files} file(s) match the provenance signed by "
        f"{statement.builder_id or 'an unnamed builder'}"
        if not rejected
        else f"{len(rejected)} problem(s): " + "; ".join(f.message for f in rejected[:3])
    )
    return Evaluation(
        passed=not rejected,
        summary=summary,
        subjects=subjects,
        findings=findings,
        metrics={"artifacts": float(len(named)), "files": float(checked_files), "problems": float(len(rejected))},
        details={"signer_keyid": key.keyid, "builder_id": statement.builder_id},
    )


def _stated_signing_time(payload: bytes) -> SigningTime | None:
    """The signing time a provenance payload states for itself (``runDetails.metadata.finishedOn``),
    as the signer's word; ``None`` when it states none or the payload is not readable (the
    signature check decides about the payload itself)."""
    try:
        metadata = json.loads(payload)["predicate"]["runDetails"]["metadata"]
        moment = datetime.fromisoformat(str(metadata["finishedOn"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        return None
    if moment.tzinfo is None:
        return None
    return SigningTime(moment, "the signing time the attestation states (finishedOn)", independent=False)


def verify_artifacts(
    artifacts: Sequence[str] | Mapping[str, str],
    attestation: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    context: PipelineContext | None = None,
    workers: int | None = None,
    warn_only: bool = False,
    signed_at: SigningTime | datetime | None = None,
) -> GateOutcome:
    """Check ``artifacts`` byte for byte against a signed SLSA provenance ``attestation`` (DSSE JSON).

    :param artifacts: local paths, or subject name -> local path holding its bytes. A name that is
        not in the attestation is matched by base name when exactly one attested artifact has it.
    :param attestation: the DSSE envelope bytes (``provenance.slsa.dsse.json``).
    :param trusted_keys: key id -> public key; the envelope must be signed by one of them (and,
        for a key with a window or revocation, inside it: see the module's documentation).
    :param signed_at: when the attestation was signed, from a record the signer cannot write alone
        (e.g. the ledger row of the recording that stored it); default: the time it states.
    """
    named = _named(artifacts)
    return run_gate(
        VERIFY_GATE_NAME,
        lambda: _evaluate_verification(named, attestation, trusted_keys, workers=workers, signed_at=signed_at),
        policy={"trusted_keys": sorted(trusted_keys)},
        context=context,
        warn_only=warn_only,
    )
