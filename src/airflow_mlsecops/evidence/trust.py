"""Trust anchors: the public keys a verifier trusts, where each came from, and when each is valid.

References (``[mlsecops] trusted_keys`` / ``MLSECOPS_TRUSTED_KEYS``):

* a PEM file, or a directory whose ``*.pub.pem`` files are trusted: valid always;
* ``env:VAR`` or ``awskms:///<key id | key ARN | alias/NAME>``: the public half of that key, valid always;
* a trust file (``*.yaml``, ``*.yml``, ``*.json``): keys with validity windows and revocations.

A trust file (schema: ``airflow_mlsecops/evidence/trust_schema.json``)::

    version: 1
    keys:
      - key: keys/2025.pub.pem              # relative to the trust file, or absolute
        not_before: 2025-01-01T00:00:00Z
        not_after: 2026-06-30T00:00:00Z     # rotated out: still verifies what it signed before
      - key: awskms:///alias/mlsecops-2026   # or env:VAR
        not_before: 2026-06-01T00:00:00Z
      - key: keys/leaked.pub.pem
        revoked_at: 2026-03-02T10:00:00Z
        reason: laptop stolen

It is validated strictly: an unknown field, a time without a time zone, ``not_after`` not after
``not_before``, a missing key file or one key listed twice with different windows is a
:class:`KeyLoadError` naming the file and the entry (CLI exit 2), never a key trusted for longer
than written.

>>> keys = load_trust_anchors(["/etc/mlsecops/trust.yaml"], source="MLSECOPS_TRUSTED_KEYS")  # doctest: +SKIP
>>> keys["3f2a..."].origin                                                                # doctest: +SKIP
'keys/2025.pub.pem in /etc/mlsecops/trust.yaml (MLSECOPS_TRUSTED_KEYS)'

What a window protects depends on the signing time a verifier knows (see
:meth:`~airflow_mlsecops.evidence.keys.VerifyingKey.check_signing_time`): recorded evidence is timed
by its hash-chained ledger row (:func:`ledger_signing_time`), and its signed statement's own time
must fall inside the window too (:func:`statement_signing_time`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from airflow_mlsecops.config import is_key_reference
from airflow_mlsecops.evidence.keys import (
    TRUST_FILE_SUFFIXES,
    SigningTime,
    VerifyingKey,
    format_time,
    load_trusted_keys,
    merge_key,
    same_validity,
)
from airflow_mlsecops.exceptions import KeyLoadError

TRUST_FILE_VERSION = 1
_TIME_FIELDS = ("not_before", "not_after", "revoked_at")


def is_trust_file(reference: str) -> bool:
    """Whether ``reference`` names a trust file (by its suffix) rather than a PEM file, a directory or a key reference."""
    return not is_key_reference(reference) and Path(reference).suffix.lower() in TRUST_FILE_SUFFIXES


@lru_cache(maxsize=1)
def trust_file_schema() -> dict[str, Any]:
    """The JSON schema of a trust file."""
    from importlib.resources import files

    schema: dict[str, Any] = json.loads(files("airflow_mlsecops.evidence").joinpath("trust_schema.json").read_text("utf-8"))
    return schema


def load_trust_anchors(references: Sequence[str], *, source: str = "", explicit: bool = False) -> dict[str, VerifyingKey]:
    """The trusted keys named by ``references``, keyed by key id; each key's ``origin`` names its
    file or reference and ``source`` (the setting that listed it), and it carries its window and
    revocation when a trust file gave them.

    :param source: the setting that listed the references (``MLSECOPS_TRUSTED_KEYS``...), for origins.
    :param explicit: the references were configured by name: a missing one is an error (the
        default ``<home>/keys`` may be absent).
    :raises KeyLoadError: a missing or unreadable key or trust file, an invalid trust file, one key
        trusted twice with different validity.
    """
    suffix = f" ({source})" if source else ""
    keys: dict[str, VerifyingKey] = {}
    for reference in references:
        if is_key_reference(reference):
            from airflow_mlsecops.evidence.signers import load_public_key

            key = load_public_key(reference, origin=source)
            found = {key.keyid: replace(key, origin=f"{reference}{suffix}")}
        elif not Path(reference).exists():
            if explicit:
                raise KeyLoadError(f"trusted key path {reference} does not exist (from {source or 'the caller'})")
            continue
        elif is_trust_file(reference) and Path(reference).is_file():
            found = load_trust_file(Path(reference), source=source)
        else:
            found = {keyid: replace(key, origin=f"{key.origin}{suffix}") for keyid, key in load_trusted_keys([reference]).items()}
        for keyid, key in found.items():
            keys[keyid] = merge_key(keys.get(keyid), key)
    return keys


def load_trust_file(path: Path, *, source: str = "") -> dict[str, VerifyingKey]:
    """The keys a trust file lists, keyed by key id, with their windows and revocations.

    :raises KeyLoadError: the file cannot be read, is not valid YAML/JSON or not valid against the
        schema, a time has no time zone, ``not_after`` is not after ``not_before``, a key cannot be
        loaded, or one key is listed twice with different validity (each naming the file and entry).
    """
    data = _read_document(path)
    problems = _schema_problems(data)
    if problems:
        raise KeyLoadError(f"trust file {path}: " + "; ".join(problems))
    suffix = f" ({source})" if source else ""
    keys: dict[str, VerifyingKey] = {}
    listed_as: dict[str, str] = {}
    for index, entry in enumerate(data["keys"]):
        where = f"trust file {path}: keys[{index}] ({entry['key']})"
        times = {name: _parse_time(entry[name], where, name) for name in _TIME_FIELDS if name in entry}
        not_before, not_after = times.get("not_before"), times.get("not_after")
        if not_before is not None and not_after is not None and not_after <= not_before:
            raise KeyLoadError(f"{where}: not_after {format_time(not_after)} is not after not_before {format_time(not_before)}")
        key = replace(
            _load_entry_key(entry["key"], path, where),
            origin=f"{entry['key']} in {path}{suffix}",
            not_before=not_before,
            not_after=not_after,
            revoked_at=times.get("revoked_at"),
            revocation_reason=str(entry.get("reason", "")),
        )
        known = keys.get(key.keyid)
        if known is not None and not same_validity(known, key):
            raise KeyLoadError(
                f"{where}: the same key as {listed_as[key.keyid]}, with different validity ({key.validity}, there "
                f"{known.validity}); list a key once, with its window and revocation in one entry"
            )
        if known is None:
            keys[key.keyid] = key
            listed_as[key.keyid] = f"keys[{index}] ({entry['key']})"
    return keys


def ledger_signing_time(created_at: str, seq: int) -> SigningTime | None:
    """The signing time of evidence anchored in ledger row ``seq``: the row's time, which is part of
    its hash chain (``None`` when it cannot be read, so a key with a window refuses).

    Independent of the signer: the signing key alone cannot write the ledger. A holder of a revoked
    key who can also write the ledger's database could append rows dated before the revocation; a
    signed ledger checkpoint made before the revocation fixes every row up to it (rows after it are
    as trustworthy as the ledger's write access).
    """
    try:
        moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if moment.tzinfo is None:
        return None
    return SigningTime(moment, f"the ledger time of seq {seq}")


def statement_signing_time(finished_at: datetime) -> SigningTime:
    """The time a signed gate statement gives for itself (the result's ``finished_at``).

    Checked in addition to the ledger time (both must lie inside the key's window). It counts as
    independent here only because the ledger time has already placed the signature before any
    revocation; on its own, a time the signer writes cannot (see :class:`SigningTime`).
    """
    return SigningTime(finished_at, "the signed statement's finish time")


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyLoadError(f"trust file {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except ValueError as exc:
            raise KeyLoadError(f"trust file {path} is not valid JSON: {exc}") from exc
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # nosec B506: _yaml_loader() is a SafeLoader subclass, plain data only
    except ValueError as exc:
        raise KeyLoadError(f"trust file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise KeyLoadError(f"trust file {path} is not valid YAML: {exc}") from exc


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once (a field given twice would say two things)."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"field {name!r} is given twice")
        out[name] = value
    return out


@lru_cache(maxsize=1)
def _yaml_loader() -> type:
    """A YAML SafeLoader that keeps times as text (so the schema sees exactly what was written and
    a time without a zone is refused, not read as local time) and refuses a key given twice."""
    import yaml

    class TrustFileLoader(yaml.SafeLoader):
        pass

    TrustFileLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            name = loader.construct_object(key_node)
            if name in seen:
                raise ValueError(f"line {key_node.start_mark.line + 1}: field {name!r} is given twice")
            seen.add(name)
        return dict(loader.construct_mapping(node))

    TrustFileLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return TrustFileLoader


def _where(path: Sequence[Any], data: Any) -> str:
    """``keys[2] (keys/a.pub.pem).not_after`` for a schema error's path."""
    out = ""
    node = data
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("key"), str):
                out += f" ({node['key']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "the top level"


def _schema_problems(data: Any) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(trust_file_schema())
    problems: list[str] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        message = _describe(error, data)
        if message not in problems:
            problems.append(message)
    return problems[:8]


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number"}
_DESCRIBE: dict[str, Callable[[Any], str]] = {
    "type": lambda e: f"must be {_TYPE_WORDS.get(str(e.validator_value), e.validator_value)}",
    "minItems": lambda e: "lists no key; a trust file names at least one",
    "minLength": lambda e: "is empty",
    "const": lambda e: f"must be {e.validator_value} (the trust file format), not {e.instance!r}",
}


def _describe(error: Any, data: Any) -> str:
    where = _where(list(error.absolute_path), data)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        unknown = ", ".join(repr(k) for k in error.instance if k not in known)
        return f"{where}: unknown field {unknown}; expected {', '.join(known)}"
    if kind == "required" and isinstance(error.instance, dict):
        missing = ", ".join(repr(k) for k in error.validator_value if k not in error.instance)
        return f"{where}: missing {missing}"
    if kind == "dependentRequired":
        return f"{where}: {error.message.replace(' is a dependency of ', ' is required with ')}"
    if kind == "pattern" and error.absolute_path and error.absolute_path[-1] in _TIME_FIELDS:
        value = str(error.instance)
        try:
            naive = "T" in value and datetime.fromisoformat(value).tzinfo is None
        except ValueError:
            naive = False
        if naive:
            return f"{where}: {value!r} has no time zone; write it in UTC with a Z ({value}Z) or with an offset"
        return f"{where}: {value!r} is not a time like 2026-06-30T00:00:00Z (RFC 3339, with a time zone)"
    describe = _DESCRIBE.get(kind)
    return f"{where}: {describe(error) if describe else error.message}"


def _parse_time(value: str, where: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise KeyLoadError(f"{where}: {name} {value!r} is not a valid time: {exc}") from exc
    if moment.tzinfo is None:  # the schema's pattern already refuses this; kept as the last word
        raise KeyLoadError(f"{where}: {name} {value!r} has no time zone")
    return moment


def _load_entry_key(reference: str, trust_file: Path, where: str) -> VerifyingKey:
    """The public key an entry names: a path relative to the trust file, ``env:VAR`` or ``awskms:///...``."""
    if is_key_reference(reference):
        from airflow_mlsecops.evidence.signers import load_public_key

        try:
            return load_public_key(reference, origin=str(trust_file))
        except KeyLoadError as exc:
            raise KeyLoadError(f"{where}: {exc}") from exc
    scheme, sep, _ = reference.partition(":")
    if sep and scheme.isalpha() and len(scheme) > 1:
        raise KeyLoadError(
            f"{where}: unknown scheme {scheme}:; use a PEM file path, env:VAR or awskms:///<key id | key ARN | alias/NAME>"
        )
    file = Path(reference).expanduser()
    if not file.is_absolute():
        file = trust_file.parent / file
    if file.is_dir():
        raise KeyLoadError(f"{where}: {file} is a directory; a trust file lists each key file on its own")
    try:
        return VerifyingKey.from_file(file)
    except KeyLoadError as exc:
        raise KeyLoadError(f"{where}: {exc}") from exc
