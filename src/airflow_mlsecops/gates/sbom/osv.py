"""Offline reader of an OSV vulnerability database for PyPI, and PEP 440 matching against it.

The database is OSV's per-ecosystem export: ``https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip``,
either the zip itself or unpacked into a directory (one JSON advisory per file, searched
recursively, so a checkout of an advisory repository works too)::

    from airflow_mlsecops.gates.sbom.osv import OSVDatabase

    db = OSVDatabase.load("osv/PyPI")               # or "osv/PyPI/all.zip"
    for match in db.query("Scikit_Learn", "1.0.0"):
        print(match.advisory.id, match.advisory.severity, match.fixed)

Semantics, following the OSV schema (https://ossf.github.io/osv-schema/):

* only ``affected[]`` entries whose ``package.ecosystem`` is ``PyPI`` count; package names are
  compared after PEP 503 normalisation (``Scikit_Learn`` is ``scikit-learn``);
* a version is affected when it is in the entry's explicit ``versions`` list (compared as PEP 440
  versions, or as text when not PEP 440), or inside one of its ``ECOSYSTEM`` ranges: events are
  sorted by version (``introduced: "0"`` first) and walked, ``introduced`` opening, ``fixed``
  (exclusive) and ``last_affected`` (inclusive) closing an interval; ``limit`` caps the range.
  ``GIT`` and ``SEMVER`` ranges are ignored (PyPI advisories carry ``ECOSYSTEM`` ranges);
* a range holding an event that is not a PEP 440 version cannot be evaluated, so it is counted
  as affecting the version (fail closed) and the match says so;
* withdrawn advisories (``withdrawn`` set) are skipped and counted;
* severity is the most serious of ``database_specific.severity`` (GitHub's
  ``CRITICAL``/``HIGH``/``MODERATE``/``LOW``, at the advisory or the affected entry) and the base
  score of each CVSS v3.x vector in ``severity[]`` (computed here; CVSS v2 and v4 vectors are not
  scored). Without either the severity is ``unknown``.

A file that is not valid JSON or not an OSV record (no ``id``, ``affected`` not a list...) makes
the whole database unusable: :class:`~airflow_mlsecops.exceptions.GateError` names the file. An
empty database is refused too: it would report "no vulnerabilities" for anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from airflow_mlsecops.evidence.digest import FileEntry, manifest_digest, sha256_file
from airflow_mlsecops.exceptions import GateError

ECOSYSTEM = "PyPI"
#: Severity labels, most serious first; ``unknown`` when an advisory carries no usable rating.
SEVERITY_LABELS = ("critical", "high", "medium", "low", "unknown")
_KNOWN_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
_GHSA_SEVERITY = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}
MAX_ADVISORY_BYTES = 16 << 20  # one advisory is a few KiB; refuse a zip bomb


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name (``Scikit_Learn`` -> ``scikit-learn``)."""
    return str(canonicalize_name(name))


def parse_version(text: str) -> Version | None:
    """A PEP 440 version, or ``None`` when ``text`` is not one."""
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def more_severe(a: str, b: str) -> str:
    """The more serious of two severity labels; a known severity wins over ``unknown``."""
    return a if _KNOWN_RANK.get(a, 0) >= _KNOWN_RANK.get(b, 0) else b


# --- CVSS v3.x base score (FIRST CVSS v3.1 specification, section 7) -------------------------------

_CVSS3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(value: float) -> float:
    as_int = round(value * 100000)
    if as_int % 10000 == 0:
        return as_int / 100000.0
    return (math.floor(as_int / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """Base score of a ``CVSS:3.0/...`` or ``CVSS:3.1/...`` vector; ``None`` if it is not one.

    >>> cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    9.8
    """
    parts = str(vector).strip().split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition(":")
        if not sep:
            return None
        metrics[key] = value
    try:
        scope = metrics["S"]
        pr = _CVSS3_PR[scope][metrics["PR"]]
        w = {key: _CVSS3_WEIGHTS[key][metrics[key]] for key in _CVSS3_WEIGHTS}
    except KeyError:
        return None
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def cvss_rating(score: float) -> str:
    """CVSS qualitative rating of a base score (``none`` 0.0 is reported as ``low``)."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def _severity(*holders: Mapping[str, Any]) -> tuple[str, str]:
    """(label, where it came from) for the most serious rating found in ``holders``."""
    label, source = "unknown", "none"
    for holder in holders:
        specific = holder.get("database_specific")
        if isinstance(specific, Mapping) and isinstance(specific.get("severity"), str):
            found = _GHSA_SEVERITY.get(specific["severity"].strip().upper())
            if found and _KNOWN_RANK[found] > _KNOWN_RANK.get(label, 0):
                label, source = found, f"database_specific.severity {specific['severity']}"
        for rating in holder.get("severity") or ():
            if not isinstance(rating, Mapping) or not str(rating.get("type", "")).startswith("CVSS_V3"):
                continue
            score = cvss3_base_score(str(rating.get("score", "")))
            if score is None:
                continue
            found = cvss_rating(score)
            if _KNOWN_RANK[found] > _KNOWN_RANK.get(label, 0):
                label, source = found, f"CVSS v3 base score {score}"
    return label, source


# --- version matching -----------------------------------------------------------------------------


def range_affects(version: Version, events: Iterable[Mapping[str, Any]]) -> tuple[bool, str | None]:
    """Whether ``version`` is inside an OSV ``ECOSYSTEM`` range; the second item says why a range
    could not be evaluated (it then counts as affecting ``version``: fail closed)."""
    parsed: list[tuple[int, Version, str]] = []
    limits: list[Version] = []
    for event in events:
        if not isinstance(event, Mapping) or len(event) != 1:
            return True, f"malformed event {event!r}"
        ((kind, raw),) = event.items()
        raw = str(raw)
        if kind not in ("introduced", "fixed", "last_affected", "limit") or (kind == "limit" and raw == "*"):
            continue
        if kind == "introduced" and raw == "0":
            parsed.append((0, Version("0"), kind))
            continue
        bound = parse_version(raw)
        if bound is None:
            return True, f"{kind} {raw!r} is not a PEP 440 version"
        if kind == "limit":
            limits.append(bound)
        else:
            parsed.append((1, bound, kind))
    parsed.sort(key=lambda item: (item[0], item[1]))
    affected = False
    for first, bound, kind in parsed:
        if kind == "introduced" and (first == 0 or version >= bound):
            affected = True
        elif (kind == "fixed" and version >= bound) or (kind == "last_affected" and version > bound):
            affected = False
    if affected and limits and not any(version < limit for limit in limits):
        affected = False
    return affected, None


def _next_fix(version: Version | None, ranges: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    fixes: list[tuple[Version, str]] = []
    for rng in ranges:
        if not isinstance(rng, Mapping) or rng.get("type") != "ECOSYSTEM":
            continue
        for event in rng.get("events") or ():
            if isinstance(event, Mapping) and "fixed" in event:
                parsed = parse_version(str(event["fixed"]))
                if parsed is not None and (version is None or parsed > version):
                    fixes.append((parsed, str(event["fixed"])))
    fixes.sort()
    return tuple(dict.fromkeys(text for _, text in fixes))


@dataclass(frozen=True)
class Advisory:
    """The parts of one OSV record a finding needs."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str
    severity_source: str
    source_file: str
    modified: str | None = None


@dataclass(frozen=True)
class Match:
    """An advisory that affects one package version.

    :param fixed: the versions that fix it, after the matched version, lowest first (empty when
        no fix is known).
    :param matched_by: ``versions`` (explicit list), ``range``, or ``range (unevaluable: ...)``.
    """

    advisory: Advisory
    package: str
    version: str
    fixed: tuple[str, ...]
    matched_by: str


@dataclass
class _Entry:
    advisory: Advisory
    affected: Mapping[str, Any]


@dataclass
class OSVDatabase:
    """PyPI advisories from an OSV export, indexed by normalised package name."""

    path: str
    sha256: str
    files: int
    advisories: int
    withdrawn: int = 0
    newest_modified: str | None = None
    by_package: dict[str, list[_Entry]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str], packages: Iterable[str] | None = None) -> OSVDatabase:
        """Read every advisory under ``path`` (a directory or OSV's ``all.zip``).

        :param packages: keep only advisories about these projects (any spelling); all when ``None``.
            Every file is still parsed and checked.
        :raises GateError: the path is missing, holds no advisory, or a file is not an OSV record.
        """
        root = Path(path)
        wanted = {normalize_name(p) for p in packages} if packages is not None else None
        if root.is_file():
            if not zipfile.is_zipfile(root):
                raise GateError(f"OSV database {root} is neither a directory nor a zip file")
            digest = sha256_file(root)
            records = _zip_records(root)
        elif root.is_dir():
            digest = ""
            records = _dir_records(root)
        elif not root.exists():
            raise GateError(f"OSV database {root} does not exist")
        else:
            raise GateError(f"OSV database {root} is neither a directory nor a zip file")
        db = cls(path=str(root.absolute()), sha256=digest, files=0, advisories=0)
        entries: list[FileEntry] = []
        for name, data in records:
            db.files += 1
            entries.append(FileEntry(name, len(data), hashlib.sha256(data).hexdigest()))
            db._add(name, data, wanted)
        if db.files == 0:
            raise GateError(f"OSV database {root} holds no advisory (*.json); an empty database would report no vulnerabilities")
        if not digest:
            db.sha256 = manifest_digest(entries)
        return db

    def _add(self, name: str, data: bytes, wanted: set[str] | None) -> None:
        try:
            record = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GateError(f"OSV database {self.path}: {name} is not valid JSON ({exc})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
            raise GateError(f"OSV database {self.path}: {name} is not an OSV record (no 'id')")
        affected = record.get("affected", [])
        aliases = record.get("aliases", [])
        if not isinstance(affected, list) or not isinstance(aliases, list):
            raise GateError(f"OSV database {self.path}: {name} ({record['id']}): 'affected' and 'aliases' must be lists")
        modified = record.get("modified")
        if isinstance(modified, str) and (self.newest_modified is None or modified > self.newest_modified):
            self.newest_modified = modified
        if record.get("withdrawn"):
            self.withdrawn += 1
            return
        relevant: list[tuple[str, Mapping[str, Any]]] = []
        about_pypi = False
        for item in affected:
            package = item.get("package") if isinstance(item, Mapping) else None
            if not isinstance(package, Mapping) or not isinstance(package.get("name"), str):
                raise GateError(f"OSV database {self.path}: {name} ({record['id']}): an 'affected' entry has no package name")
            if not isinstance(item.get("ranges", []), list) or not isinstance(item.get("versions", []), list):
                raise GateError(f"OSV database {self.path}: {name} ({record['id']}): 'ranges' and 'versions' must be lists")
            if str(package.get("ecosystem", "")).split(":")[0] != ECOSYSTEM:
                continue
            about_pypi = True
            key = normalize_name(package["name"])
            if wanted is None or key in wanted:
                relevant.append((key, item))
        if about_pypi:
            self.advisories += 1
        if not relevant:
            return
        summary = record.get("summary") or record.get("details") or ""
        for key, item in relevant:
            label, source = _severity(record, item)
            advisory = Advisory(
                id=record["id"],
                aliases=tuple(str(a) for a in aliases),
                summary=" ".join(str(summary).split())[:300],
                severity=label,
                severity_source=source,
                source_file=name,
                modified=modified if isinstance(modified, str) else None,
            )
            self.by_package.setdefault(key, []).append(_Entry(advisory, item))

    def query(self, package: str, version: str) -> list[Match]:
        """Advisories affecting ``package`` at ``version`` (one :class:`Match` per advisory)."""
        parsed = parse_version(version)
        found: dict[str, Match] = {}
        for entry in self.by_package.get(normalize_name(package), ()):
            how = _affects(version, parsed, entry.affected)
            if how is None:
                continue
            fixed = _next_fix(parsed, entry.affected.get("ranges") or ())
            previous = found.get(entry.advisory.id)
            if previous is not None:
                fixed = tuple(dict.fromkeys((*previous.fixed, *fixed)))
            found[entry.advisory.id] = Match(entry.advisory, package, version, fixed, how)
        return list(found.values())


def _affects(version: str, parsed: Version | None, affected: Mapping[str, Any]) -> str | None:
    for listed in affected.get("versions") or ():
        if str(listed) == version or (parsed is not None and parse_version(str(listed)) == parsed):
            return "versions"
    if parsed is None:
        return None
    for rng in affected.get("ranges") or ():
        if not isinstance(rng, Mapping) or rng.get("type") != "ECOSYSTEM":
            continue
        hit, problem = range_affects(parsed, rng.get("events") or ())
        if hit:
            return f"range (unevaluable: {problem})" if problem else "range"
    return None


def _dir_records(root: Path) -> Iterator[tuple[str, bytes]]:
    from airflow_mlsecops.evidence.digest import refuse_unlistable

    for dirpath, dirnames, filenames in os.walk(root, onerror=refuse_unlistable, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".json"):
                continue
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise GateError(f"OSV database {root}: {rel} is a symbolic link; refusing to follow it")
            if full.stat().st_size > MAX_ADVISORY_BYTES:
                raise GateError(f"OSV database {root}: {rel} is larger than {MAX_ADVISORY_BYTES} bytes")
            try:
                yield rel, full.read_bytes()
            except OSError as exc:
                raise GateError(f"OSV database {root}: {rel} cannot be read: {exc.strerror}") from exc


def _zip_records(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                if info.file_size > MAX_ADVISORY_BYTES:
                    raise GateError(f"OSV database {path}: {info.filename} is larger than {MAX_ADVISORY_BYTES} bytes")
                yield info.filename, archive.read(info)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise GateError(f"OSV database {path} cannot be read as a zip file: {exc}") from exc
