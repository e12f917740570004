"""The OpenSSF model signature file (``model.sig``): a Sigstore bundle v0.3 carrying a DSSE-signed in-toto statement.

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

This module builds that file (:func:`build_bundle`) and reads one back, failing closed
(:func:`parse_bundle`, :func:`check_signature`, :func:`parse_statement`: :class:`SignatureInvalid`
naming the check). OpenSSF model signing has no Ed25519: an Ed25519 key is a :class:`KeyLoadError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from airflow_mlsecops.evidence.dsse import INTOTO_PAYLOAD_TYPE, pae
from airflow_mlsecops.evidence.keys import VerifyingKey
from airflow_mlsecops.evidence.model_signing.manifest import root_digest
from airflow_mlsecops.evidence.signers import Signer
from airflow_mlsecops.exceptions import KeyLoadError, SignatureInvalid

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNATURE_FILE = "model.sig"

_SHA256_HEX = frozenset("0123456789abcdef")


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


# ----------------------------------------------------------------------------- keys


def public_key_hint(key: VerifyingKey) -> str:
    """The ``verificationMaterial.publicKey.hint`` OpenSSF writes: hex SHA-256 of the PEM public key."""
    return hashlib.sha256(key.to_pem()).hexdigest()


def require_ecdsa(key: VerifyingKey, origin: str) -> None:
    if not isinstance(key.key, ec.EllipticCurvePublicKey):
        raise KeyLoadError(
            f"{origin} {key.keyid[:16]} is {key.key_type}, but OpenSSF model signing needs an ECDSA key "
            "(P-256, the default of `mlsecops keygen`, or P-384)"
        )


# ----------------------------------------------------------------------------- writing


def build_bundle(
    name: str,
    model_digest: str,
    resources: Sequence[tuple[str, str]],
    ignore_paths: Sequence[str],
    key: Signer,
) -> bytes:
    """Sign the OpenSSF statement for ``resources`` and wrap it in a Sigstore bundle v0.3.

    :param name: the subject name (the model directory's or file's name).
    :param model_digest: SHA-256 of the concatenated raw resource digests, in ``resources`` order.
    :param resources: (resource name, SHA-256 hex), sorted as OpenSSF sorts them.
    :param ignore_paths: the paths the signature leaves out, sorted.
    :param key: the ECDSA signing key.
    :returns: the bundle JSON bytes (the content of ``model.sig``).
    """
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": model_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": list(ignore_paths),
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
    return json.dumps(bundle, separators=(",", ":")).encode("utf-8")


# ----------------------------------------------------------------------------- reading, failing closed


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
class ParsedBundle:
    hint: str | None
    payload: bytes
    signature: bytes


def parse_bundle(raw: bytes) -> ParsedBundle:
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
    return ParsedBundle(hint=hint or None, payload=payload, signature=sig)


def check_signature(bundle: ParsedBundle, trusted_keys: Mapping[str, VerifyingKey]) -> VerifyingKey:
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
class SignedStatement:
    name: str
    model_digest: str
    resources: dict[str, str]
    ignore_paths: tuple[str, ...]


def parse_statement(payload: bytes) -> SignedStatement:
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
    recomputed = root_digest(ordered)
    if recomputed != subject_digest:
        raise SignatureInvalid(
            f"the statement is inconsistent: its subject digest {subject_digest[:16]}... is not the digest of its "
            f"resources ({recomputed[:16]}...)"
        )
    return SignedStatement(name=name, model_digest=subject_digest, resources=resources, ignore_paths=tuple(ignore_raw))
