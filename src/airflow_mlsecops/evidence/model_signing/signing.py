"""Signing a model in the OpenSSF model-signing format (:func:`sign_model`).

Signing hashes files in parallel (largest first) with the streamed hasher of
:mod:`airflow_mlsecops.evidence.digest` (files under ignored paths are hashed too, not signed: the
gate subject pins the directory as it is on disk). It refuses an empty model (OpenSSF 1.1.1 signs one), any
symbolic link (a link out of the tree would let the verifier read other bytes than the signer; a
link inside is refused as OpenSSF does by default), special files and file names that are not UTF-8.
OpenSSF model signing has no Ed25519: an Ed25519 key is a :class:`KeyLoadError`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from airflow_mlsecops.evidence.model_signing.bundle import ModelSignature, build_bundle, require_ecdsa
from airflow_mlsecops.evidence.model_signing.manifest import (
    DEFAULT_IGNORE_PATHS,
    MAX_LISTED_PROBLEMS,
    hash_files,
    ignore_parts,
    model_subject_name,
    relative_inside,
    resource_sort_key,
    root_digest,
    scan_model_tree,
    tree_sha256,
)
from airflow_mlsecops.evidence.signers import Signer
from airflow_mlsecops.exceptions import ConfigurationError, GateError


@dataclass(frozen=True)
class SignedModel:
    """A fresh signature, and what the signing gate records besides it."""

    bundle: bytes
    signature: ModelSignature
    total_bytes: int
    is_file: bool
    disk_sha256: str  # the directory as it is on disk once the signature is written (gate subject)


def create_signature(
    model_path: str | os.PathLike[str],
    key: Signer,
    *,
    workers: int | None,
    ignore_paths: Iterable[str],
    ignore_git_paths: bool,
    signature_path: str | os.PathLike[str] | None,
) -> SignedModel:
    """Sign the model; :func:`sign_model` documents the parameters and the refusals."""
    require_ecdsa(key.public_key, "signing key")
    root = Path(model_path)
    ignored = set(DEFAULT_IGNORE_PATHS) if ignore_git_paths else set()
    for raw in ignore_paths:
        pure = PurePosixPath(str(raw).replace(os.sep, "/"))
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise ConfigurationError(f"ignore path {raw!r} must be relative to the model and inside it")
        ignored.add(pure.as_posix())
    inside = relative_inside(signature_path, root)
    if inside is not None:
        ignored.add(inside)
    tree = scan_model_tree(root, ignore_parts(ignored))
    if tree.problems:
        listed = "; ".join(p.message for p in tree.problems[:MAX_LISTED_PROBLEMS])
        more = f" (and {len(tree.problems) - MAX_LISTED_PROBLEMS} more)" if len(tree.problems) > MAX_LISTED_PROBLEMS else ""
        raise GateError(f"{root} cannot be signed: {listed}{more}")
    if not tree.files:
        raise GateError(f"{root} holds no files (after ignoring {', '.join(sorted(ignored))}); refusing to sign an empty model")

    everything = hash_files(tree.files + tree.ignored, workers)
    digests = {name: everything[name] for name, _, _ in tree.files}
    resources = sorted(digests.items(), key=lambda item: resource_sort_key(item[0]))
    model_digest = root_digest(resources)
    name = model_subject_name(root)
    ignore_list = sorted(ignored)
    bundle_bytes = build_bundle(name, model_digest, resources, ignore_list, key)
    files = dict(resources)
    on_disk = dict(everything)
    if inside is not None:
        on_disk[inside] = hashlib.sha256(bundle_bytes).hexdigest()
    return SignedModel(
        bundle=bundle_bytes,
        signature=ModelSignature(
            keyid=key.keyid,
            model_digest=model_digest,
            files=files,
            bundle_sha256=hashlib.sha256(bundle_bytes).hexdigest(),
            model_name=name,
            key_type=key.public_key.key_type,
            ignore_paths=tuple(ignore_list),
            tree_sha256=tree_sha256(files),
        ),
        total_bytes=tree.total_bytes,
        is_file=tree.is_file,
        disk_sha256=tree_sha256(on_disk) if tree.ignored_exact else tree_sha256(files),
    )


def sign_model(
    model_path: str | Path,
    key: Signer,
    *,
    workers: int | None = None,
    ignore_paths: Iterable[str] = (),
    ignore_git_paths: bool = True,
    signature_path: str | os.PathLike[str] | None = None,
) -> bytes:
    """Sign every file of a model (a file or a directory) in the OpenSSF model-signing format.

    :param model_path: the model file or directory.
    :param key: an ECDSA P-256 (or P-384) signing key.
    :param workers: hashing threads (default: CPU count + 4, at most 32 and one per file: I/O overlaps hashing).
    :param ignore_paths: further paths, relative to the model directory, to leave out (as
        ``model_signing sign --ignore-paths``); recorded in the signature.
    :param ignore_git_paths: leave out ``.git``, ``.gitattributes``, ``.github`` and ``.gitignore``
        at the model root, as OpenSSF does by default.
    :param signature_path: where the caller will write the bundle; if it lies inside the model
        directory it is left out of the signature (and recorded as ignored), as OpenSSF does.
    :returns: the Sigstore bundle v0.3 JSON (the content of ``model.sig``).
    :raises KeyLoadError: the key is not ECDSA (OpenSSF model signing has no Ed25519).
    :raises GateError: the model is missing, empty, unreadable, or holds a symbolic link or special file.
    """
    return create_signature(
        model_path,
        key,
        workers=workers,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
        signature_path=signature_path,
    ).bundle
