"""The vulnerability check: the pinned packages against an offline OSV database and, optionally, pip-audit.

Advisories that alias each other (``PYSEC-...`` and ``GHSA-...`` for one CVE) are merged into one
:class:`Vulnerability` with the most serious severity of the group (:func:`merge_aliases`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.sbom.osv import SEVERITY_LABELS, Match, OSVDatabase, more_severe, parse_version
from airflow_mlsecops.gates.sbom.packages import Package, PackageList

ONLINE_TIMEOUT_SECONDS = 30


@dataclass
class Vulnerability:
    """One vulnerability of one package version, merged over aliases and sources."""

    id: str
    aliases: set[str]
    package: str
    version: str
    purl: str
    severity: str
    severity_source: str
    fixed: tuple[str, ...]
    summary: str
    sources: list[str]
    matched_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aliases": sorted(self.aliases - {self.id}),
            "package": self.package,
            "version": self.version,
            "purl": self.purl,
            "severity": self.severity,
            "severity_source": self.severity_source,
            "fixed_versions": list(self.fixed),
            "summary": self.summary,
            "sources": self.sources,
            "matched_by": self.matched_by,
        }


def _from_osv(match: Match, purl: str) -> Vulnerability:
    adv = match.advisory
    return Vulnerability(
        id=adv.id,
        aliases={adv.id, *adv.aliases},
        package=match.package,
        version=match.version,
        purl=purl,
        severity=adv.severity,
        severity_source=adv.severity_source,
        fixed=match.fixed,
        summary=adv.summary,
        sources=[f"osv:{adv.source_file}"],
        matched_by=match.matched_by,
    )


def merge_aliases(found: Iterable[Vulnerability]) -> list[Vulnerability]:
    """Report advisories that name each other (same package) once, with the worst severity."""
    merged: list[Vulnerability] = []
    for vuln in found:
        for kept in merged:
            if kept.purl == vuln.purl and kept.aliases & vuln.aliases:
                kept.aliases |= vuln.aliases
                if more_severe(vuln.severity, kept.severity) == vuln.severity and vuln.severity != kept.severity:
                    kept.severity, kept.severity_source = vuln.severity, vuln.severity_source
                kept.fixed = tuple(dict.fromkeys((*kept.fixed, *vuln.fixed)))
                kept.sources = list(dict.fromkeys((*kept.sources, *vuln.sources)))
                kept.summary = kept.summary or vuln.summary
                kept.id = min(kept.id, vuln.id) if _is_osv_id(vuln.id) == _is_osv_id(kept.id) else kept.id
                break
        else:
            merged.append(vuln)
    return sorted(merged, key=lambda v: (SEVERITY_LABELS.index(v.severity), v.package, v.id))


def _is_osv_id(identifier: str) -> bool:
    return not identifier.startswith("CVE-")


def _online_check(packages: Sequence[Package]) -> list[Vulnerability] | None:
    """Query OSV through pip-audit; ``None`` when pip-audit is not installed."""
    try:
        from packaging.version import Version
        from pip_audit._service import OsvService
        from pip_audit._service.interface import ResolvedDependency
    except ImportError:
        return None
    service = OsvService(timeout=ONLINE_TIMEOUT_SECONDS)
    found: list[Vulnerability] = []
    for pkg in packages:
        if pkg.version is None or parse_version(pkg.version) is None:
            continue
        try:
            _, results = service.query(ResolvedDependency(name=pkg.name, version=Version(pkg.version)))
        except Exception as exc:  # any failure of the service: no verdict, never a pass
            raise GateError(f"online vulnerability check (pip-audit, OSV) failed for {pkg.name}: {exc}") from exc
        for res in results:
            found.append(
                Vulnerability(
                    id=str(res.id),
                    aliases={str(res.id), *(str(a) for a in res.aliases)},
                    package=pkg.name,
                    version=pkg.version,
                    purl=pkg.purl,
                    severity="unknown",
                    severity_source="pip-audit reports no severity",
                    fixed=tuple(str(v) for v in res.fix_versions),
                    summary=" ".join(str(res.description).split())[:300],
                    sources=["pip-audit:osv"],
                    matched_by="pip-audit",
                )
            )
    return found


# --- the check ------------------------------------------------------------------------------------


@dataclass
class VulnerabilityCheck:
    """What the check found, from which sources, and why it was not performed when it was not."""

    performed: bool
    vulnerabilities: list[Vulnerability] = field(default_factory=list)  # merged over aliases; empty when not performed
    sources: list[dict[str, Any]] = field(default_factory=list)
    not_performed_reasons: list[str] = field(default_factory=list)
    online_unavailable: bool = False  # online=True, but pip-audit is not installed


def check_vulnerabilities(
    checkable: Sequence[Package], listing: PackageList | None, *, osv_db: str | None, online: bool
) -> VulnerabilityCheck:
    """Check the pinned packages ``checkable`` (of ``listing``) against ``osv_db`` and, if ``online``, pip-audit.

    :raises GateError: the OSV database is unreadable, corrupt or empty, or the online query failed.
    """
    sources: list[dict[str, Any]] = []
    found: list[Vulnerability] = []
    performed = False
    online_unavailable = False
    not_performed_reason: list[str] = []
    if not checkable:
        not_performed_reason.append(
            "no package list (no python interpreter given, no requirements.txt or conda.yaml in the model)"
            if not listing
            else f"no pinned package to check in {listing.source}"
        )
    if osv_db and checkable:
        db = OSVDatabase.load(osv_db, packages=[p.name for p in checkable])
        for pkg in checkable:
            found.extend(_from_osv(m, pkg.purl) for m in db.query(pkg.name, pkg.version or ""))
        performed = True
        sources.append(
            {
                "type": "osv-offline",
                "path": db.path,
                "sha256": db.sha256,
                "files": db.files,
                "pypi_advisories": db.advisories,
                "withdrawn": db.withdrawn,
                "newest_modified": db.newest_modified,
            }
        )
    elif not osv_db:
        not_performed_reason.append("no OSV database (osv_db)")
    if online and checkable:
        online_found = _online_check(checkable)
        if online_found is None:
            sources.append({"type": "pip-audit", "available": False})
            online_unavailable = True
            not_performed_reason.append("online check unavailable (pip-audit is not installed)")
        else:
            found.extend(online_found)
            performed = True
            sources.append({"type": "pip-audit", "available": True, "service": "osv"})
    elif not online:
        not_performed_reason.append("online check not requested")
    return VulnerabilityCheck(
        performed=performed,
        vulnerabilities=merge_aliases(found) if performed else [],
        sources=sources,
        not_performed_reasons=not_performed_reason,
        online_unavailable=online_unavailable,
    )
