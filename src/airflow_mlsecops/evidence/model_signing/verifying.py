"""Verifying a model against its OpenSSF model signature (:func:`verify_model`), failing closed.

Verification checks, in this order: the bundle must be a v0.3 Sigstore bundle with one DSSE
signature; its public key hint must name a trusted key (or, for bundles without a hint, some
trusted key must verify); the signature must verify; the statement must be an in-toto v1 statement
of predicate type v1.0, ``files`` serialization with SHA-256, at least one resource, no duplicate
names, and a subject digest that matches its resources (:class:`SignatureInvalid` for any of
these, naming the check). Then the local model is hashed and every signed file must be present and
unchanged, no file may have been added, and no symbolic link or special file may be present
(:class:`DigestMismatch` naming each file: changed, missing, added, renamed, symlink). Paths the
signature ignores are skipped, as OpenSSF does.

Key validity (a trusted key with a window or a revocation, from a trust file): an OpenSSF model
signature carries no signing time, so unless the caller knows one from a record the signer cannot
write alone (``signed_at``, e.g. the ledger row of the signing gate), the key must be valid at the
time of verification, as for a certificate without a timestamp: a key rotated out (``not_after``
passed) or revoked refuses every model signature it made, and a key not yet valid refuses too.
After a rotation, re-sign models with the new key (or verify with ``signed_at``).

Not supported (a bundle using them is refused, never passed): Sigstore keyless and certificate
bundles (``model_signing verify sigstore``/``certificate``), the ``shards`` serialization,
hash types other than SHA-256, the pre-1.0 predicate ``https://model_signing/Digests/v0.1`` and
following symbolic links (``--allow_symlinks``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from airflow_mlsecops.evidence.keys import SigningTime, VerifyingKey
from airflow_mlsecops.evidence.model_signing.bundle import (
    ModelSignature,
    SignedStatement,
    check_signature,
    parse_bundle,
    parse_statement,
)
from airflow_mlsecops.evidence.model_signing.manifest import (
    MAX_LISTED_PROBLEMS,
    SINGLE_FILE_RESOURCE,
    ModelTree,
    Problem,
    hash_files,
    ignore_parts,
    relative_inside,
    resource_sort_key,
    scan_model_tree,
    tree_sha256,
)
from airflow_mlsecops.exceptions import DigestMismatch


def _compare(tree: ModelTree, signed: SignedStatement, actual: Mapping[str, str], label: Callable[[str], str]) -> list[Problem]:
    """Every way the local model differs from the signed statement, named per file."""
    problems = list(tree.problems)
    signed_single = set(signed.resources) == {SINGLE_FILE_RESOURCE}
    if signed_single != tree.is_file:
        kind = "a single file" if signed_single else "a directory"
        local = "a file" if tree.is_file else "a directory"
        problems.append(Problem("kind", ".", f"the signature is for {kind} ({signed.name!r}), but {tree.root} is {local}"))
        return problems
    changed = sorted(
        (p for p in signed.resources.keys() & actual.keys() if signed.resources[p] != actual[p]), key=resource_sort_key
    )
    missing = sorted(signed.resources.keys() - actual.keys(), key=resource_sort_key)
    added = sorted(actual.keys() - signed.resources.keys(), key=resource_sort_key)
    matched = sum(1 for path, digest in signed.resources.items() if actual.get(path) == digest)
    if matched == 0 and (len(signed.resources) > 1 or signed.name != tree.root.name):
        problems.append(
            Problem(
                "other-model",
                ".",
                f"no file matches the signature, which is for model {signed.name!r} ({len(signed.resources)} file(s)): "
                "is it another model's signature?",
            )
        )
    by_digest: dict[str, list[str]] = {}
    for path in added:
        by_digest.setdefault(actual[path], []).append(path)
    renamed: set[str] = set()
    for path in missing:
        targets = by_digest.get(signed.resources[path])
        if targets:
            target = targets.pop(0)
            renamed.add(target)
            problems.append(Problem("renamed", path, f"{label(path)} was renamed to {label(target)} after signing"))
        else:
            problems.append(Problem("missing", path, f"{label(path)} is missing (it was signed)"))
    for path in changed:
        problems.append(
            Problem(
                "changed",
                path,
                f"{label(path)} changed since it was signed (sha256 {actual[path][:16]}..., signed "
                f"{signed.resources[path][:16]}...)",
            )
        )
    for path in added:
        if path not in renamed:
            problems.append(Problem("added", path, f"{label(path)} was added after signing"))
    return problems


@dataclass(frozen=True)
class SignatureCheck:
    """What checking a model against its signature found (an empty ``problems`` is a match)."""

    signature: ModelSignature
    problems: list[Problem]
    total_bytes: int
    local_tree_sha256: str | None  # the model as it is on disk (gate subject), None if it holds no file


def check_against_signature(
    model_path: str | os.PathLike[str],
    bundle: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    workers: int | None,
    signature_path: str | os.PathLike[str] | None,
    signed_at: SigningTime | datetime | None = None,
) -> SignatureCheck:
    """Check the bundle, then the model against it; :func:`verify_model` documents the parameters.

    :raises SignatureInvalid: the bundle cannot be trusted.
    :raises GateError: the model cannot be read.
    """
    parsed = parse_bundle(bundle)
    key = check_signature(parsed, trusted_keys)
    key.check_signing_time(signed_at if signed_at is not None else verification_time())
    statement = parse_statement(parsed.payload)  # only read once a trusted key signed it
    root = Path(model_path)
    ignored = list(statement.ignore_paths)
    inside = relative_inside(signature_path, root)
    if inside is not None:
        ignored.append(inside)
    tree = scan_model_tree(root, ignore_parts(ignored))
    everything = hash_files(tree.files + tree.ignored, workers)
    actual = {name: everything[name] for name, _, _ in tree.files}

    def label(path: str) -> str:
        return tree.root.name if path == SINGLE_FILE_RESOURCE else path

    problems = _compare(tree, statement, actual, label)
    return SignatureCheck(
        signature=ModelSignature(
            keyid=key.keyid,
            model_digest=statement.model_digest,
            files=dict(statement.resources),
            bundle_sha256=hashlib.sha256(bundle).hexdigest(),
            model_name=statement.name,
            key_type=key.key_type,
            ignore_paths=statement.ignore_paths,
            tree_sha256=tree_sha256(statement.resources),
        ),
        problems=problems,
        total_bytes=tree.total_bytes,
        local_tree_sha256=(tree_sha256(everything) if tree.ignored_exact else tree_sha256(actual)) if actual else None,
    )


def verification_time() -> SigningTime:
    """The only time known for a model signature without a trusted record of its signing: now. It
    bounds the signing time from above, so a key valid now has not expired or been revoked before
    it signed; it cannot show that a signature predates a revocation."""
    return SigningTime(
        datetime.now(timezone.utc), "the time of verification (a model signature carries no signing time)", independent=False
    )


def mismatch_message(root: str | os.PathLike[str], problems: Sequence[Problem]) -> str:
    """One line naming the first problems (and how many more) of a model that does not match its signature."""
    listed = "; ".join(p.message for p in problems[:MAX_LISTED_PROBLEMS])
    more = f"; and {len(problems) - MAX_LISTED_PROBLEMS} more problem(s)" if len(problems) > MAX_LISTED_PROBLEMS else ""
    return f"{root} does not match its signature: {listed}{more}"


def verify_model(
    model_path: str | Path,
    bundle: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    workers: int | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    signed_at: SigningTime | datetime | None = None,
) -> ModelSignature:
    """Verify a model against an OpenSSF model signature, failing closed.

    :param model_path: the model file or directory to check.
    :param bundle: the signature (Sigstore bundle v0.3 JSON bytes, e.g. ``model.sig``).
    :param trusted_keys: key id -> public key; the bundle must be signed by one of them (ECDSA).
    :param workers: hashing threads (default: CPU count + 4, at most 32 and one per file: I/O overlaps hashing).
    :param signature_path: where ``bundle`` was read from; if it lies inside the model directory it
        is not counted as an added file (as ``model_signing verify`` does).
    :param signed_at: when the model was signed, from a record the signer cannot write alone (the
        ledger row of the signing gate); default: the key must be valid now (see the module's documentation).
    :returns: what the signature says, only when the model matches it.
    :raises SignatureInvalid: the bundle is malformed, not from a trusted key, altered, or not an
        OpenSSF v1.0 ``files``/SHA-256 statement (the message names the check).
    :raises DigestMismatch: a file changed, is missing, was added or renamed, or a symbolic link or
        special file is present (the message names each file).
    :raises GateError: the model cannot be read.
    """
    verified = check_against_signature(
        model_path, bundle, trusted_keys, workers=workers, signature_path=signature_path, signed_at=signed_at
    )
    if verified.problems:
        raise DigestMismatch(mismatch_message(model_path, verified.problems))
    return verified.signature
