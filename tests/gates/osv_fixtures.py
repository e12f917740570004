"""Build small OSV databases at test time, in OSV's own export format (no network, no download).

Each advisory is one JSON file named after its id, exactly as in an unpacked
``https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip``; :func:`write_osv_zip` writes the
zip itself. :func:`write_osv_db` adds a few unrelated advisories (other packages, another
ecosystem, a withdrawn one) so that matching is tested against a database that is not only hits.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

CVSS_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
CVSS_MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 5.4


def ecosystem_range(*events: tuple[str, str]) -> dict[str, Any]:
    """An ``ECOSYSTEM`` range from ``("introduced", "0"), ("fixed", "1.2")`` pairs."""
    return {"type": "ECOSYSTEM", "events": [{kind: version} for kind, version in events]}


def advisory(
    osv_id: str,
    package: str,
    *,
    ranges: Sequence[Mapping[str, Any]] = (),
    versions: Sequence[str] = (),
    severity: str | None = None,
    cvss: str | None = None,
    aliases: Sequence[str] = (),
    summary: str = "a test advisory",
    ecosystem: str = "PyPI",
    withdrawn: str | None = None,
    modified: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    """One OSV record (schema 1.6) about ``package``."""
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": osv_id,
        "modified": modified,
        "published": "2025-06-01T00:00:00Z",
        "aliases": list(aliases),
        "summary": summary,
        "details": summary + ".\n\nMore details.",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": package, "purl": f"pkg:pypi/{package.lower()}"},
                "ranges": list(ranges),
                "versions": list(versions),
            }
        ],
        "references": [{"type": "WEB", "url": f"https://example.invalid/{osv_id}"}],
    }
    if severity:
        record["database_specific"] = {"severity": severity, "github_reviewed": True}
    if cvss:
        record["severity"] = [{"type": "CVSS_V3", "score": cvss}]
    if withdrawn:
        record["withdrawn"] = withdrawn
    return record


def noise() -> list[dict[str, Any]]:
    """Advisories that must never match a scikit-learn/mlflow/pandas model."""
    return [
        advisory("PYSEC-2020-1", "requests", ranges=[ecosystem_range(("introduced", "0"), ("fixed", "2.20.0"))]),
        advisory("GHSA-noise-0000-0001", "numpyx", ranges=[ecosystem_range(("introduced", "0"))], severity="CRITICAL"),
        advisory(
            "GO-2024-0001", "scikit-learn", ecosystem="Go", ranges=[ecosystem_range(("introduced", "0"))], severity="CRITICAL"
        ),
        advisory(
            "PYSEC-2021-9",
            "scikit-learn",
            ranges=[ecosystem_range(("introduced", "0"))],
            severity="CRITICAL",
            withdrawn="2021-02-01T00:00:00Z",
        ),
    ]


def write_osv_db(root: Path, advisories: Iterable[Mapping[str, Any]] = (), *, with_noise: bool = True) -> Path:
    """A directory holding one ``<id>.json`` per advisory (plus :func:`noise`)."""
    root.mkdir(parents=True, exist_ok=True)
    for record in [*(noise() if with_noise else []), *advisories]:
        (root / f"{record['id']}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return root


def write_osv_zip(path: Path, advisories: Iterable[Mapping[str, Any]] = (), *, with_noise: bool = True) -> Path:
    """OSV's ``all.zip``: the same files, flat, in a zip archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for record in [*(noise() if with_noise else []), *advisories]:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path
