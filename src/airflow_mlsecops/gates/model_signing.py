"""Model signing gates: ``model-signing`` signs a local model, ``model-signature-verification`` checks it.

The OpenSSF format itself (hashing, the bundle, sign and verify) is in
:mod:`airflow_mlsecops.evidence.model_signing`; these gates record what it did as evidence. They
take local paths: operators and the CLI fetch ``models:/``, ``runs:/`` and ``s3://`` inputs first.

>>> from airflow_mlsecops.gates.model_signing import sign_gate, verify_gate
>>> signed = sign_gate("model/", key, name="models:/fraud/3")                       # doctest: +SKIP
>>> checked = verify_gate("model/", signed.files["model.sig"], {key.keyid: key.public_key})  # doctest: +SKIP
>>> checked.verdict                                                                  # doctest: +SKIP
<Verdict.PASSED: 'passed'>
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.keys import VerifyingKey
from airflow_mlsecops.evidence.model_signing.bundle import BUNDLE_MEDIA_TYPE, PREDICATE_TYPE, SIGNATURE_FILE, public_key_hint
from airflow_mlsecops.evidence.model_signing.signing import create_signature
from airflow_mlsecops.evidence.model_signing.verifying import check_against_signature, mismatch_message
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.evidence.signers import Signer
from airflow_mlsecops.exceptions import GateError, SignatureInvalid
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate

__all__ = ["GATE_NAME", "VERIFY_GATE_NAME", "sign_gate", "verify_gate"]

GATE_NAME = gate_names.MODEL_SIGNING
VERIFY_GATE_NAME = gate_names.MODEL_SIGNATURE_VERIFICATION


def _tampering(finding_id: str, message: str, location: str | None = None) -> Finding:
    """A rejection finding: ML supply-chain compromise (ATLAS AML.T0010; OWASP ML06, ML10)."""
    return Finding(finding_id, Severity.CRITICAL, message, location, atlas=("AML.T0010",), owasp_ml=("ML06:2023", "ML10:2023"))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- signing


def _evaluate_signing(
    model_path: str | os.PathLike[str],
    key: Signer,
    subject: str,
    *,
    signature_path: str | os.PathLike[str] | None,
    workers: int | None,
    ignore_paths: Sequence[str],
    ignore_git_paths: bool,
) -> Evaluation:
    """Sign the model, write the signature where asked, and describe both (the body of :func:`sign_gate`)."""
    signed = create_signature(
        model_path,
        key,
        workers=workers,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
        signature_path=signature_path,
    )
    sig = signed.signature
    if signature_path is not None:
        try:
            _write_atomically(Path(signature_path), signed.bundle)
        except OSError as exc:
            raise GateError(f"the signature cannot be written to {signature_path}: {exc.strerror}") from exc
    count = len(sig.files)
    return Evaluation(
        passed=True,
        summary=(
            f"signed {count} file(s), {signed.total_bytes} bytes of {subject} with {sig.key_type} key "
            f"{sig.keyid[:16]} (OpenSSF model signing v1.0, model digest {sig.model_digest[:16]}...)"
        ),
        subjects=[Subject(subject, signed.disk_sha256)],
        metrics={"files": float(count), "bytes": float(signed.total_bytes)},
        files={SIGNATURE_FILE: signed.bundle},
        details={
            "format": BUNDLE_MEDIA_TYPE,
            "predicate_type": PREDICATE_TYPE,
            "model_name": sig.model_name,
            "model_digest": sig.model_digest,
            "keyid": sig.keyid,
            "key_type": sig.key_type,
            "public_key_hint": public_key_hint(key.public_key),
            "bundle_sha256": sig.bundle_sha256,
            "ignore_paths": list(sig.ignore_paths),
            "signature_path": str(signature_path) if signature_path is not None else None,
        },
    )


def sign_gate(
    model_path: str | os.PathLike[str],
    key: Signer,
    *,
    name: str | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    context: PipelineContext | None = None,
    workers: int | None = None,
    ignore_paths: Sequence[str] = (),
    ignore_git_paths: bool = True,
) -> GateOutcome:
    """Gate ``model-signing``: sign a model and return the bundle as evidence file ``model.sig``.

    The subject is the model (``name``, default its absolute path) with its digest as
    :func:`~airflow_mlsecops.evidence.digest.sha256_path` computes it once the signature is
    written (so :func:`~airflow_mlsecops.lifecycle.verification.verify_run` can re-check it, and it matches
    the provenance gates' digest of the same model); ``details`` carry the OpenSSF
    ``model_digest`` (what the signature covers), the signing key id and the bundle's SHA-256.

    :param model_path: the local model file or directory.
    :param key: an ECDSA signing key.
    :param name: the subject name (e.g. the ``models:/`` URI the model was fetched from).
    :param signature_path: also write the bundle here (left out of the signature if inside the model).
    :param context: where the gate runs in Airflow.
    :param workers: hashing threads.
    :param ignore_paths: further paths to leave out, relative to the model directory.
    :param ignore_git_paths: leave out git files at the model root, as OpenSSF does.
    """
    subject = name or str(Path(model_path).absolute())
    return run_gate(
        GATE_NAME,
        lambda: _evaluate_signing(
            model_path,
            key,
            subject,
            signature_path=signature_path,
            workers=workers,
            ignore_paths=ignore_paths,
            ignore_git_paths=ignore_git_paths,
        ),
        policy={"format": "openssf-model-signing-v1.0", "serialization": "files", "hash": "sha256", "symlinks": "refused"},
        distributions=("cryptography",),
        context=context,
    )


# ----------------------------------------------------------------------------- verification


def _evaluate_verification(
    model_path: str | os.PathLike[str],
    bundle: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    subject: str,
    *,
    signature_path: str | os.PathLike[str] | None,
    workers: int | None,
) -> Evaluation:
    """Check the model against its signature and name every problem (the body of :func:`verify_gate`)."""
    try:
        verified = check_against_signature(model_path, bundle, trusted_keys, workers=workers, signature_path=signature_path)
    except SignatureInvalid as exc:
        return Evaluation(
            passed=False,
            summary=f"the model signature cannot be trusted: {exc}",
            findings=[_tampering("model-signing.signature", str(exc), subject)],
            details={"bundle_sha256": hashlib.sha256(bundle).hexdigest()},
        )
    sig = verified.signature
    subjects = [Subject(subject, verified.local_tree_sha256)] if verified.local_tree_sha256 else []
    details = {
        "model_name": sig.model_name,
        "model_digest": sig.model_digest,
        "signer_keyid": sig.keyid,
        "key_type": sig.key_type,
        "bundle_sha256": sig.bundle_sha256,
        "ignore_paths": list(sig.ignore_paths),
    }
    metrics = {
        "files": float(len(sig.files)),
        "bytes": float(verified.total_bytes),
        "problems": float(len(verified.problems)),
    }
    if verified.problems:
        findings = [
            _tampering(f"model-signing.{p.kind}", p.message, subject if p.path == "." else f"{subject}/{p.path}")
            for p in verified.problems
        ]
        return Evaluation(
            passed=False,
            summary=mismatch_message(subject, verified.problems),
            subjects=subjects,
            findings=findings,
            metrics=metrics,
            details=details,
        )
    return Evaluation(
        passed=True,
        summary=(
            f"{subject}: {len(sig.files)} file(s) match the OpenSSF model signature by {sig.key_type} key "
            f"{sig.keyid[:16]} (model digest {sig.model_digest[:16]}...)"
        ),
        subjects=subjects,
        findings=[
            Finding(
                "model-signing.match",
                Severity.INFO,
                f"{len(sig.files)} file(s) match the signature",
                subject,
                passed=True,
            )
        ],
        metrics=metrics,
        details=details,
    )


def verify_gate(
    model_path: str | os.PathLike[str],
    bundle: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    name: str | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    context: PipelineContext | None = None,
    workers: int | None = None,
    warn_only: bool = False,
) -> GateOutcome:
    """Gate ``model-signature-verification``: check a model against its OpenSSF signature.

    Fails (verdict ``failed``; ``warned`` with ``warn_only``) with a finding per problem:
    ``model-signing.signature`` when the bundle cannot be trusted,
    ``model-signing.changed|missing|added|renamed|symlink|...`` naming each file. A model that
    cannot be read is an ``error`` verdict, never a pass (``warn_only`` does not change that).

    :param model_path: the local model file or directory.
    :param bundle: the signature bytes (``model.sig``).
    :param trusted_keys: key id -> public key.
    :param name: the subject name (default the model's absolute path).
    :param signature_path: where ``bundle`` was read from (ignored if inside the model).
    :param context: where the gate runs in Airflow.
    :param workers: hashing threads.
    :param warn_only: report a rejection as ``warned`` instead of failing.
    """
    subject = name or str(Path(model_path).absolute())
    return run_gate(
        VERIFY_GATE_NAME,
        lambda: _evaluate_verification(model_path, bundle, trusted_keys, subject, signature_path=signature_path, workers=workers),
        policy={"format": "openssf-model-signing-v1.0", "trusted_keys": sorted(trusted_keys)},
        warn_only=warn_only,
        distributions=("cryptography",),
        context=context,
    )
