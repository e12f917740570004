"""OpenSSF model signing: sign every file of a model, verify it before use, interoperable both ways.

The signature is the file the OpenSSF ``model_signing`` tool (``pip install model-signing``)
writes and reads: a Sigstore bundle v0.3 (``application/vnd.dev.sigstore.bundle.v0.3+json``)
whose DSSE envelope carries an in-toto Statement v1 with predicate type
``https://model_signing/signature/v1.0``, signed with an ECDSA key. A model signed here verifies
with ``model_signing verify key MODEL --signature model.sig --public_key key.pub``, and one signed
with ``model_signing sign key MODEL --private_key key.pem --signature model.sig`` verifies here.

>>> import tempfile
>>> from pathlib import Path
>>> from airflow_mlsecops.evidence.keys import SigningKey
>>> from airflow_mlsecops.evidence.model_signing import sign_model, verify_model
>>> model = Path(tempfile.mkdtemp()) / "model"
>>> model.mkdir()
>>> _ = (model / "weights.bin").write_bytes(b"\\x00" * 1024)
>>> _ = (model / "config.json").write_text('{"layers": 2}')
>>> key = SigningKey.generate()                      # ECDSA P-256
>>> bundle = sign_model(model, key)                  # the bytes of model.sig
>>> signature = verify_model(model, bundle, {key.keyid: key.public_key})
>>> sorted(signature.files)
['config.json', 'weights.bin']
>>> _ = (model / "config.json").write_text('{"layers": 3}')
>>> verify_model(model, bundle, {key.keyid: key.public_key})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
airflow_mlsecops.exceptions.DigestMismatch: ... config.json changed since it was signed ...

**What is signed** (the OpenSSF ``files`` serialization, byte for byte as ``model_signing`` 1.x
computes it). Each regular file of the model gets a resource descriptor ``{"name": <relative
POSIX path>, "algorithm": "sha256", "digest": <hex>}``; a model that is a single file has one
resource named ``"."``. Resources are sorted by path components (``a/b`` before ``a.txt``), and the
statement's one subject is ``{"name": <model directory or file name>, "digest": {"sha256":
SHA-256 of the concatenated raw resource digests}}``: that is :attr:`ModelSignature.model_digest`.
``predicate.serialization`` records ``method: files``, ``hash_type: sha256``, ``allow_symlinks:
false`` and ``ignore_paths``: the git files OpenSSF leaves out by default (``.git``,
``.gitattributes``, ``.github``, ``.gitignore`` at the model root) and the signature file itself
when it is written inside the model. The bundle's ``verificationMaterial`` is ``{"publicKey":
{"hint": <hex SHA-256 of the PEM public key>}, "tlogEntries": []}`` (no transparency log: the
key is the root of trust), and the DSSE signature is ECDSA (SHA-256 for P-256, SHA-384 for P-384,
DER-encoded) over the DSSE pre-authentication encoding, ``keyid`` empty as OpenSSF writes it.

**Signing** hashes files in parallel (largest first) with the streamed hasher of
:mod:`airflow_mlsecops.evidence.digest` (files under ignored paths are hashed too, not signed: the
gate subject pins the directory as it is on disk). It refuses an empty model (OpenSSF 1.1.1 signs one), any
symbolic link (a link out of the tree would let the verifier read other bytes than the signer; a
link inside is refused as OpenSSF does by default), special files and file names that are not UTF-8.
OpenSSF model signing has no Ed25519: an Ed25519 key is a :class:`KeyLoadError`.

**Verification** is this module's own code and fails closed, in this order: the bundle must be a
v0.3 Sigstore bundle with one DSSE signature; its public key hint must name a trusted key (or, for
bundles without a hint, some trusted key must verify); the signature must verify; the statement
must be an in-toto v1 statement of predicate type v1.0, ``files`` serialization with SHA-256, at
least one resource, no duplicate names, and a subject digest that matches its resources
(:class:`SignatureInvalid` for any of these, naming the check). Then the local model is hashed and
every signed file must be present and unchanged, no file may have been added, and no symbolic link
or special file may be present (:class:`DigestMismatch` naming each file: changed, missing, added,
renamed, symlink). Paths the signature ignores are skipped, as OpenSSF does.

Not supported (a bundle using them is refused, never passed): Sigstore keyless and certificate
bundles (``model_signing verify sigstore``/``certificate``), the ``shards`` serialization,
hash types other than SHA-256, the pre-1.0 predicate ``https://model_signing/Digests/v0.1`` and
following symbolic links (``--allow_symlinks``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.digest import FileEntry, manifest_digest, sha256_file
from airflow_mlsecops.evidence.dsse import INTOTO_PAYLOAD_TYPE, pae
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import (
    ConfigurationError,
    DigestMismatch,
    GateError,
    KeyLoadError,
    SignatureInvalid,
)
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "DEFAULT_IGNORE_PATHS",
    "GATE_NAME",
    "PREDICATE_TYPE",
    "SIGNATURE_FILE",
    "STATEMENT_TYPE",
    "VERIFY_GATE_NAME",
    "ModelSignature",
    "public_key_hint",
    "sign_gate",
    "sign_model",
    "verify_gate",
    "verify_model",
]

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNATURE_FILE = "model.sig"
GATE_NAME = gate_names.MODEL_SIGNING
VERIFY_GATE_NAME = gate_names.MODEL_SIGNATURE_VERIFICATION
DEFAULT_IGNORE_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
SINGLE_FILE_RESOURCE = "."

_SHA256_HEX = frozenset("0123456789abcdef")
_MAX_LISTED = 5  # problems spelled out in an exception message; the gate records every one


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ModelSignature:
    """What a verified (or freshly made) OpenSSF model signature says.

    :param keyid: key id (SHA-256 of the DER public key, as in :mod:`~airflow_mlsecops.evidence.keys`)
        of the key that signed.
    :param model_digest: the statement's subject digest: SHA-256 over the concatenated raw SHA-256
        digests of every file, in signed order (OpenSSF's digest of the model's ``resources``).
    :param files: resource name (relative POSIX path, ``"."`` for a single-file model) -> SHA-256 hex.
    :param bundle_sha256: SHA-256 of the bundle bytes (the ``model.sig`` file).
    :param model_name: the subject name (the model directory's or file's name when signed).
    :param key_type: ``ecdsa-p256`` or ``ecdsa-p384``.
    :param ignore_paths: the paths the signature leaves out, relative to the model root.
    :param tree_sha256: the signed files' digest as :func:`airflow_mlsecops.evidence.digest.sha256_path`
        computes it (a file's bytes, a directory's manifest): equal to ``sha256_path(model)`` when
        the model holds no ignored file.
    """

    keyid: str
    model_digest: str
    files: Mapping[str, str]
    bundle_sha256: str
    model_name: str = ""
    key_type: str = ""
    ignore_paths: tuple[str, ...] = ()
    tree_sha256: str = ""


@dataclass(frozen=True)
class _Problem:
    """One way the local model differs from its signature."""

    kind: str  # changed | missing | added | renamed | symlink | special | name | kind
    path: str
    message: str


@dataclass
class _Tree:
    """The regular files of a model, and what could not be part of a signature.

    ``ignored`` are the regular files under ignored paths: not signed, but hashed for the gate
    subject, which pins the directory as it is on disk (as ``sha256_path`` does);
    ``ignored_exact`` is false when an ignored path holds something ``sha256_path`` would refuse.
    """

    root: Path
    is_file: bool
    files: list[tuple[str, Path, int]] = field(default_factory=list)  # (resource name, path, size)
    problems: list[_Problem] = field(default_factory=list)
    ignored: list[tuple[str, Path, int]] = field(default_factory=list)
    ignored_exact: bool = True

    @property
    def total_bytes(self) -> int:
        return sum(size for _, _, size in self.files)


# ----------------------------------------------------------------------------- keys


def public_key_hint(key: VerifyingKey) -> str:
    """The ``verificationMaterial.publicKey.hint`` OpenSSF writes: hex SHA-256 of the PEM public key."""
    return hashlib.sha256(key.to_pem()).hexdigest()


def _require_ecdsa(key: VerifyingKey, origin: str) -> None:
    if not isinstance(key.key, ec.EllipticCurvePublicKey):
        raise KeyLoadError(
            f"{origin} {key.keyid[:16]} is {key.key_type}, but OpenSSF model signing needs an ECDSA key "
            "(P-256, the default of `mlsecops keygen`, or P-384)"
        )


# ----------------------------------------------------------------------------- the model tree


def _model_name(root: Path) -> str:
    name = root.name
    if not name or name == "..":
        name = os.path.basename(root.resolve())
    return name


def _ignore_parts(paths: Iterable[str]) -> set[tuple[str, ...]]:
    """Normalise relative ignore paths to path components; drop ones that cannot name a model file."""
    parts: set[tuple[str, ...]] = set()
    for raw in paths:
        pure = PurePosixPath(str(raw).replace(os.sep, "/"))
        if pure.is_absolute() or ".." in pure.parts:
            continue
        if not pure.parts:
            raise SignatureInvalid("the signature ignores the whole model (ignore path '.'); refusing it")
        parts.add(pure.parts)
    return parts


def _is_ignored(parts: tuple[str, ...], ignore: set[tuple[str, ...]]) -> bool:
    return any(parts[:k] in ignore for k in range(1, len(parts) + 1))


def _symlink_problem(root_real: str, full: str, rel: str) -> _Problem:
    target = os.path.realpath(full)
    if target != root_real and not target.startswith(root_real.rstrip(os.sep) + os.sep):
        return _Problem(
            "symlink",
            rel,
            f"{rel} is a symbolic link pointing outside the model (to {os.readlink(full)}); a link is never signed",
        )
    return _Problem(
        "symlink", rel, f"{rel} is a symbolic link (to {os.readlink(full)} inside the model); symbolic links are not signed"
    )


def _scan(model_path: str | os.PathLike[str], ignore: set[tuple[str, ...]]) -> _Tree:
    """List the model's regular files; links, special files and odd names become problems."""
    root = Path(model_path)
    if root.is_symlink():
        raise GateError(f"{root} is a symbolic link; refusing to follow it (name the model itself)")
    try:
        mode = root.stat().st_mode
    except FileNotFoundError as exc:
        raise GateError(f"{root} does not exist") from exc
    except OSError as exc:
        raise GateError(f"{root} cannot be read: {exc.strerror}") from exc
    if stat.S_ISREG(mode):
        return _Tree(root, True, [(SINGLE_FILE_RESOURCE, root, os.stat(root).st_size)])
    if not stat.S_ISDIR(mode):
        raise GateError(f"{root} is neither a file nor a directory")

    tree = _Tree(root, False)
    root_real = os.path.realpath(root)

    def walk_error(exc: OSError) -> None:
        raise GateError(f"{exc.filename} cannot be read: {exc.strerror}") from exc

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        prefix = () if rel_dir == "." else tuple(Path(rel_dir).parts)
        kept: list[str] = []
        for name in dirnames:
            parts = (*prefix, name)
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                if _is_ignored(parts, ignore):
                    tree.ignored_exact = False
                else:
                    tree.problems.append(_symlink_problem(root_real, full, "/".join(parts)))
                continue
            kept.append(name)
        dirnames[:] = sorted(kept)
        for name in filenames:
            parts = (*prefix, name)
            ignored = _is_ignored(parts, ignore)
            rel = "/".join(parts)
            full = os.path.join(dirpath, name)
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                if ignored:
                    tree.ignored_exact = False
                else:
                    tree.problems.append(_Problem("name", rel, f"{rel!r}: a file name that is not valid UTF-8 cannot be signed"))
                continue
            try:
                info = os.lstat(full)
            except OSError as exc:
                raise GateError(f"{full} cannot be read: {exc.strerror}") from exc
            if stat.S_ISREG(info.st_mode):
                (tree.ignored if ignored else tree.files).append((rel, Path(full), info.st_size))
            elif ignored:
                tree.ignored_exact = False
            elif stat.S_ISLNK(info.st_mode):
                tree.problems.append(_symlink_problem(root_real, full, rel))
            else:
                tree.problems.append(_Problem("special", rel, f"{rel} is not a regular file (a device, socket or pipe)"))
    return tree


def _hash_files(files: Sequence[tuple[str, Path, int]], workers: int | None) -> dict[str, str]:
    """SHA-256 of every file, streamed, in parallel across files, largest first (for balance)."""
    order = sorted(files, key=lambda f: -f[2])
    count = workers or min(len(order), 32, (os.cpu_count() or 1) + 4)  # the ThreadPoolExecutor default
    if count <= 1 or len(order) <= 1:
        return {name: sha256_file(path) for name, path, _ in order}
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="model-signing")
    try:
        futures: list[tuple[str, Future[str]]] = [(name, pool.submit(sha256_file, path)) for name, path, _ in order]
        return {name: future.result() for name, future in futures}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _sort_key(name: str) -> tuple[str, ...]:
    """OpenSSF orders resources by ``PurePosixPath`` (path components), not by plain string."""
    return tuple(name.split("/"))


def _root_digest(resources: Iterable[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for _, value in resources:
        digest.update(bytes.fromhex(value))
    return digest.hexdigest()


def _tree_sha256(files: Mapping[str, str]) -> str:
    """The model's digest as :func:`~airflow_mlsecops.evidence.digest.sha256_path` computes it."""
    if set(files) == {SINGLE_FILE_RESOURCE}:
        return files[SINGLE_FILE_RESOURCE]
    return manifest_digest(FileEntry(name, 0, digest) for name, digest in files.items())


def _relative_inside(path: str | os.PathLike[str] | None, root: Path) -> str | None:
    """``path`` relative to the model directory ``root`` if it lies inside it, else ``None``."""
    if path is None or not root.is_dir():
        return None
    try:
        rel = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None


# ----------------------------------------------------------------------------- signing


@dataclass(frozen=True)
class _Signed:
    bundle: bytes
    signature: ModelSignature
    total_bytes: int
    is_file: bool
    disk_sha256: str  # the directory as it is on disk once the signature is written (gate subject)


def _sign(
    model_path: str | os.PathLike[str],
    key: SigningKey,
    *,
    workers: int | None,
    ignore_paths: Iterable[str],
    ignore_git_paths: bool,
    signature_path: str | os.PathLike[str] | None,
) -> _Signed:
    _require_ecdsa(key.public_key, "signing key")
    root = Path(model_path)
    ignored = set(DEFAULT_IGNORE_PATHS) if ignore_git_paths else set()
    for raw in ignore_paths:
        pure = PurePosixPath(str(raw).replace(os.sep, "/"))
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise ConfigurationError(f"ignore path {raw!r} must be relative to the model and inside it")
        ignored.add(pure.as_posix())
    inside = _relative_inside(signature_path, root)
    if inside is not None:
        ignored.add(inside)
    tree = _scan(root, _ignore_parts(ignored))
    if tree.problems:
        listed = "; ".join(p.message for p in tree.problems[:_MAX_LISTED])
        more = f" (and {len(tree.problems) - _MAX_LISTED} more)" if len(tree.problems) > _MAX_LISTED else ""
        raise GateError(f"{root} cannot be signed: {listed}{more}")
    if not tree.files:
        raise GateError(f"{root} holds no files (after ignoring {', '.join(sorted(ignored))}); refusing to sign an empty model")

    everything = _hash_files(tree.files + tree.ignored, workers)
    digests = {name: everything[name] for name, _, _ in tree.files}
    resources = sorted(digests.items(), key=lambda item: _sort_key(item[0]))
    model_digest = _root_digest(resources)
    name = _model_name(root)
    ignore_list = sorted(ignored)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": model_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": ignore_list,
            },
            "resources": [{"name": n, "algorithm": "sha256", "digest": d} for n, d in resources],
        },
    }
    # Formatted as OpenSSF's protobuf JSON printer does; any formatting verifies, the bytes are signed.
    payload = json.dumps(statement, indent=2, ensure_ascii=False).encode("utf-8")
    signature = key.sign(pae(INTOTO_PAYLOAD_TYPE, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": public_key_hint(key.public_key)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    bundle_bytes = json.dumps(bundle, separators=(",", ":")).encode("utf-8")
    files = dict(resources)
    on_disk = dict(everything)
    if inside is not None:
        on_disk[inside] = hashlib.sha256(bundle_bytes).hexdigest()
    return _Signed(
        bundle=bundle_bytes,
        signature=ModelSignature(
            keyid=key.keyid,
            model_digest=model_digest,
            files=files,
            bundle_sha256=hashlib.sha256(bundle_bytes).hexdigest(),
            model_name=name,
            key_type=key.public_key.key_type,
            ignore_paths=tuple(ignore_list),
            tree_sha256=_tree_sha256(files),
        ),
        total_bytes=tree.total_bytes,
        is_file=tree.is_file,
        disk_sha256=_tree_sha256(on_disk) if tree.ignored_exact else _tree_sha256(files),
    )


def sign_model(
    model_path: str | Path,
    key: SigningKey,
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
    return _sign(
        model_path,
        key,
        workers=workers,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
        signature_path=signature_path,
    ).bundle


# ----------------------------------------------------------------------------- verification


def _field(data: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise SignatureInvalid(f"malformed model signature: {where}.{name} is missing or not a {kind.__name__}")
    return value


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid(f"malformed model signature: {where} is not base64") from exc


@dataclass(frozen=True)
class _Bundle:
    hint: str | None
    payload: bytes
    signature: bytes


def _parse_bundle(raw: bytes) -> _Bundle:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SignatureInvalid(f"the model signature is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise SignatureInvalid("the model signature must be a JSON object (a Sigstore bundle)")
    media_type = data.get("mediaType")
    if media_type != BUNDLE_MEDIA_TYPE:
        raise SignatureInvalid(f"bundle media type is {media_type!r}, expected {BUNDLE_MEDIA_TYPE!r}")
    material = _field(data, "verificationMaterial", dict, "bundle")
    if "publicKey" not in material:
        kinds = ", ".join(sorted(k for k in material if k != "tlogEntries")) or "none"
        raise SignatureInvalid(
            f"the bundle is not signed with a key (verification material: {kinds}); Sigstore keyless and "
            "certificate signatures are not supported here, verify them with `model_signing verify sigstore|certificate`"
        )
    public_key = _field(material, "publicKey", dict, "verificationMaterial")
    hint = public_key.get("hint")
    if hint is not None and not isinstance(hint, str):
        raise SignatureInvalid("malformed model signature: verificationMaterial.publicKey.hint is not a string")
    envelope = _field(data, "dsseEnvelope", dict, "bundle")
    payload_type = envelope.get("payloadType")
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise SignatureInvalid(f"DSSE payload type is {payload_type!r}, expected {INTOTO_PAYLOAD_TYPE!r}")
    payload = _b64(_field(envelope, "payload", str, "dsseEnvelope"), "dsseEnvelope.payload")
    signatures = _field(envelope, "signatures", list, "dsseEnvelope")
    if len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise SignatureInvalid(f"the DSSE envelope must carry exactly one signature, it carries {len(signatures)}")
    sig = _b64(_field(signatures[0], "sig", str, "dsseEnvelope.signatures[0]"), "dsseEnvelope.signatures[0].sig")
    return _Bundle(hint=hint or None, payload=payload, signature=sig)


def _check_signature(bundle: _Bundle, trusted_keys: Mapping[str, VerifyingKey]) -> VerifyingKey:
    """The trusted key whose signature verifies; :class:`SignatureInvalid` otherwise."""
    candidates = [k for k in trusted_keys.values() if isinstance(k.key, ec.EllipticCurvePublicKey)]
    if not candidates:
        raise SignatureInvalid(
            "no trusted ECDSA public key is configured, so no model signature can be accepted"
            + (f" ({len(trusted_keys)} non-ECDSA key(s) ignored)" if trusted_keys else "")
        )
    message = pae(INTOTO_PAYLOAD_TYPE, bundle.payload)
    if bundle.hint is not None:
        matching = [k for k in candidates if public_key_hint(k) == bundle.hint]
        if not matching:
            raise SignatureInvalid(
                f"signed by an untrusted key (public key hint {bundle.hint[:16]}...); trust its public key to accept it"
            )
        key = matching[0]
        try:
            key.verify(bundle.signature, message)
        except SignatureInvalid as exc:
            raise SignatureInvalid(
                f"the bundle's signature does not verify with trusted key {key.keyid[:16]}: "
                "the signed statement or the signature was altered"
            ) from exc
        return key
    for key in candidates:
        try:
            key.verify(bundle.signature, message)
        except SignatureInvalid:
            continue
        return key
    raise SignatureInvalid(
        f"the bundle names no key and no trusted key ({len(candidates)} tried) verifies its signature: "
        "it is altered or from an untrusted key"
    )


@dataclass(frozen=True)
class _Statement:
    name: str
    model_digest: str
    resources: dict[str, str]
    ignore_paths: tuple[str, ...]


def _parse_statement(payload: bytes) -> _Statement:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SignatureInvalid(f"the signed statement is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise SignatureInvalid("the signed statement must be a JSON object")
    if data.get("_type") != STATEMENT_TYPE:
        raise SignatureInvalid(f"statement type is {data.get('_type')!r}, expected {STATEMENT_TYPE!r}")
    if data.get("predicateType") != PREDICATE_TYPE:
        raise SignatureInvalid(f"predicate type is {data.get('predicateType')!r}, expected {PREDICATE_TYPE!r}")
    subjects = _field(data, "subject", list, "statement")
    if len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise SignatureInvalid(f"the statement must have exactly one subject, it has {len(subjects)}")
    name = _field(subjects[0], "name", str, "subject")
    subject_digest = _field(_field(subjects[0], "digest", dict, "subject"), "sha256", str, "subject.digest")
    predicate = _field(data, "predicate", dict, "statement")
    serialization = _field(predicate, "serialization", dict, "predicate")
    method = serialization.get("method")
    if method != "files":
        raise SignatureInvalid(f"serialization method {method!r} is not supported (only 'files')")
    if serialization.get("hash_type") != "sha256":
        raise SignatureInvalid(f"hash type {serialization.get('hash_type')!r} is not supported (only 'sha256')")
    ignore_raw = serialization.get("ignore_paths", [])
    if not isinstance(ignore_raw, list) or not all(isinstance(p, str) for p in ignore_raw):
        raise SignatureInvalid("malformed model signature: serialization.ignore_paths is not a list of strings")
    resources: dict[str, str] = {}
    ordered: list[tuple[str, str]] = []
    for index, item in enumerate(_field(predicate, "resources", list, "predicate")):
        if not isinstance(item, dict):
            raise SignatureInvalid(f"malformed model signature: resource {index} is not an object")
        rname = _field(item, "name", str, f"resources[{index}]")
        algorithm = item.get("algorithm")
        digest = _field(item, "digest", str, f"resources[{index}]")
        if algorithm != "sha256":
            raise SignatureInvalid(f"resource {rname!r} uses digest algorithm {algorithm!r} (only 'sha256' is supported)")
        if len(digest) != 64 or not set(digest) <= _SHA256_HEX:
            raise SignatureInvalid(f"resource {rname!r}: digest is not 64 lowercase hex digits")
        if rname in resources:
            raise SignatureInvalid(f"resource {rname!r} is listed twice")
        resources[rname] = digest
        ordered.append((rname, digest))
    if not resources:
        raise SignatureInvalid("the signature covers no file; refusing a signature of an empty model")
    recomputed = _root_digest(ordered)
    if recomputed != subject_digest:
        raise SignatureInvalid(
            f"the statement is inconsistent: its subject digest {subject_digest[:16]}... is not the digest of its "
            f"resources ({recomputed[:16]}...)"
        )
    return _Statement(name=name, model_digest=subject_digest, resources=resources, ignore_paths=tuple(ignore_raw))


def _compare(tree: _Tree, signed: _Statement, actual: Mapping[str, str], label: Callable[[str], str]) -> list[_Problem]:
    problems = list(tree.problems)
    signed_single = set(signed.resources) == {SINGLE_FILE_RESOURCE}
    if signed_single != tree.is_file:
        kind = "a single file" if signed_single else "a directory"
        local = "a file" if tree.is_file else "a directory"
        problems.append(_Problem("kind", ".", f"the signature is for {kind} ({signed.name!r}), but {tree.root} is {local}"))
        return problems
    changed = sorted((p for p in signed.resources.keys() & actual.keys() if signed.resources[p] != actual[p]), key=_sort_key)
    missing = sorted(signed.resources.keys() - actual.keys(), key=_sort_key)
    added = sorted(actual.keys() - signed.resources.keys(), key=_sort_key)
    matched = sum(1 for path, digest in signed.resources.items() if actual.get(path) == digest)
    if matched == 0 and (len(signed.resources) > 1 or signed.name != tree.root.name):
        problems.append(
            _Problem(
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
            problems.append(_Problem("renamed", path, f"{label(path)} was renamed to {label(target)} after signing"))
        else:
            problems.append(_Problem("missing", path, f"{label(path)} is missing (it was signed)"))
    for path in changed:
        problems.append(
            _Problem(
                "changed",
                path,
                f"{label(path)} changed since it was signed (sha256 {actual[path][:16]}..., signed "
                f"{signed.resources[path][:16]}...)",
            )
        )
    for path in added:
        if path not in renamed:
            problems.append(_Problem("added", path, f"{label(path)} was added after signing"))
    return problems


@dataclass(frozen=True)
class _Verified:
    signature: ModelSignature
    problems: list[_Problem]
    total_bytes: int
    local_tree_sha256: str | None  # the model as it is on disk (gate subject), None if it holds no file


def _verify(
    model_path: str | os.PathLike[str],
    bundle: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    workers: int | None,
    signature_path: str | os.PathLike[str] | None,
) -> _Verified:
    parsed = _parse_bundle(bundle)
    key = _check_signature(parsed, trusted_keys)
    statement = _parse_statement(parsed.payload)  # only read once a trusted key signed it
    root = Path(model_path)
    ignored = list(statement.ignore_paths)
    inside = _relative_inside(signature_path, root)
    if inside is not None:
        ignored.append(inside)
    tree = _scan(root, _ignore_parts(ignored))
    everything = _hash_files(tree.files + tree.ignored, workers)
    actual = {name: everything[name] for name, _, _ in tree.files}

    def label(path: str) -> str:
        return tree.root.name if path == SINGLE_FILE_RESOURCE else path

    problems = _compare(tree, statement, actual, label)
    return _Verified(
        signature=ModelSignature(
            keyid=key.keyid,
            model_digest=statement.model_digest,
            files=dict(statement.resources),
            bundle_sha256=hashlib.sha256(bundle).hexdigest(),
            model_name=statement.name,
            key_type=key.key_type,
            ignore_paths=statement.ignore_paths,
            tree_sha256=_tree_sha256(statement.resources),
        ),
        problems=problems,
        total_bytes=tree.total_bytes,
        local_tree_sha256=(_tree_sha256(everything) if tree.ignored_exact else _tree_sha256(actual)) if actual else None,
    )


def _mismatch_message(root: str | os.PathLike[str], problems: Sequence[_Problem]) -> str:
    listed = "; ".join(p.message for p in problems[:_MAX_LISTED])
    more = f"; and {len(problems) - _MAX_LISTED} more problem(s)" if len(problems) > _MAX_LISTED else ""
    return f"{root} does not match its signature: {listed}{more}"


def verify_model(
    model_path: str | Path,
    bundle: bytes,
    trusted_keys: Mapping[str, VerifyingKey],
    *,
    workers: int | None = None,
    signature_path: str | os.PathLike[str] | None = None,
) -> ModelSignature:
    """Verify a model against an OpenSSF model signature, failing closed.

    :param model_path: the model file or directory to check.
    :param bundle: the signature (Sigstore bundle v0.3 JSON bytes, e.g. ``model.sig``).
    :param trusted_keys: key id -> public key; the bundle must be signed by one of them (ECDSA).
    :param workers: hashing threads (default: CPU count + 4, at most 32 and one per file: I/O overlaps hashing).
    :param signature_path: where ``bundle`` was read from; if it lies inside the model directory it
        is not counted as an added file (as ``model_signing verify`` does).
    :returns: what the signature says, only when the model matches it.
    :raises SignatureInvalid: the bundle is malformed, not from a trusted key, altered, or not an
        OpenSSF v1.0 ``files``/SHA-256 statement (the message names the check).
    :raises DigestMismatch: a file changed, is missing, was added or renamed, or a symbolic link or
        special file is present (the message names each file).
    :raises GateError: the model cannot be read.
    """
    verified = _verify(model_path, bundle, trusted_keys, workers=workers, signature_path=signature_path)
    if verified.problems:
        raise DigestMismatch(_mismatch_message(model_path, verified.problems))
    return verified.signature


# ----------------------------------------------------------------------------- gates


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


def sign_gate(
    model_path: str | os.PathLike[str],
    key: SigningKey,
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

    def body() -> Evaluation:
        signed = _sign(
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

    return run_gate(
        GATE_NAME,
        body,
        policy={"format": "openssf-model-signing-v1.0", "serialization": "files", "hash": "sha256", "symlinks": "refused"},
        distributions=("cryptography",),
        context=context,
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
) -> GateOutcome:
    """Gate ``model-signature-verification``: check a model against its OpenSSF signature.

    Fails (verdict ``failed``) with a finding per problem: ``model-signing.signature`` when the
    bundle cannot be trusted, ``model-signing.changed|missing|added|renamed|symlink|...`` naming each
    file. A model that cannot be read is an ``error`` verdict, never a pass.

    :param model_path: the local model file or directory.
    :param bundle: the signature bytes (``model.sig``).
    :param trusted_keys: key id -> public key.
    :param name: the subject name (default the model's absolute path).
    :param signature_path: where ``bundle`` was read from (ignored if inside the model).
    :param context: where the gate runs in Airflow.
    :param workers: hashing threads.
    """
    subject = name or str(Path(model_path).absolute())

    def body() -> Evaluation:
        try:
            verified = _verify(model_path, bundle, trusted_keys, workers=workers, signature_path=signature_path)
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
                summary=_mismatch_message(subject, verified.problems),
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

    return run_gate(
        VERIFY_GATE_NAME,
        body,
        policy={"format": "openssf-model-signing-v1.0", "trusted_keys": sorted(trusted_keys)},
        distributions=("cryptography",),
        context=context,
    )
