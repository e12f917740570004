"""The model's declared requirements against the environment it was trained in (:func:`compare_environment`).

A model trained with a package version it does not declare cannot be reproduced, and one that
declares a package its training environment did not have was not trained with what it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlsecops.gates.environment.inventory import Environment
from airflow_mlsecops.gates.sbom.osv import normalize_name, parse_version
from airflow_mlsecops.gates.sbom.packages import PackageList

#: Kinds of difference, in the order they are reported.
MISMATCH = "mismatch"  # declared pinned (or a range) that the installed version does not satisfy
MISSING = "missing"  # declared, not installed
UNPROVIDED = "unprovided"  # the model needs a module no installed distribution provides
UNDECLARED = "undeclared"  # the model needs a module of an installed distribution it does not declare
UNPINNED = "unpinned"  # declared without one exact version: the installed one satisfies it
UNCOMPARABLE = "uncomparable"  # a declaration line that cannot be compared (-r, a URL, invalid)
KINDS = (MISMATCH, MISSING, UNPROVIDED, UNDECLARED, UNPINNED, UNCOMPARABLE)


@dataclass(frozen=True)
class Difference:
    """One difference between what the model declares and what was installed."""

    kind: str
    package: str
    declared: str | None  # the requirement as declared (``scikit-learn==1.5.0``)
    installed: str | None  # the installed version
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "package": self.package,
            "declared": self.declared,
            "installed": self.installed,
            "reason": self.reason,
        }


def _same_version(declared: str, installed: str) -> bool:
    a, b = parse_version(declared), parse_version(installed)
    return a == b if a is not None and b is not None else declared.strip() == installed.strip()


def declared_closure(declared: PackageList, env: Environment) -> set[str]:
    """The declared distributions and, through the environment's ``Requires-Dist`` metadata, everything
    they pull in (what installing the declared requirements installs), as PEP 503 names."""
    from packaging.markers import InvalidMarker
    from packaging.requirements import InvalidRequirement, Requirement

    extras: dict[str, set[str]] = {}
    queue: list[str] = []
    for pkg in declared.packages:
        key = normalize_name(pkg.name)
        try:
            wanted = set(Requirement(pkg.requirement).extras) if pkg.requirement else set()
        except InvalidRequirement:
            wanted = set()
        extras.setdefault(key, set()).update(wanted)
        queue.append(key)
    seen: set[str] = set()
    while queue:
        key = queue.pop()
        if key in seen:
            continue
        seen.add(key)
        dist = env.distributions.get(key)
        for line in dist.requires if dist else ():
            try:
                req = Requirement(line)
                if req.marker is not None and not any(
                    req.marker.evaluate({"extra": extra}) for extra in (extras.get(key) or {""})
                ):
                    continue
            except (InvalidRequirement, InvalidMarker):
                continue  # unreadable metadata of an installed package covers nothing
            dep = normalize_name(req.name)
            extras.setdefault(dep, set()).update(req.extras)
            queue.append(dep)
    return seen


def compare_environment(
    declared: PackageList | None, env: Environment, needed: Mapping[str, list[str]]
) -> tuple[list[Difference], dict[str, Any]]:
    """The differences between ``declared`` (the model's requirements), ``env`` and the modules the
    model ``needed``, and a summary of the comparison for the evidence."""
    from packaging.requirements import InvalidRequirement, Requirement

    found: list[Difference] = []
    for line, reason in declared.unchecked if declared else ():
        found.append(Difference(UNCOMPARABLE, line, line, None, reason))
    for pkg in declared.packages if declared else ():
        line = pkg.requirement or (f"{pkg.name}=={pkg.version}" if pkg.version else pkg.name)
        try:
            req = Requirement(line)
        except InvalidRequirement:
            req = None
        if req is not None and req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # declared for another platform or Python
        installed = env.get(pkg.name)
        if installed is None:
            found.append(Difference(MISSING, pkg.name, line, None, f"declared as {line!r}, not installed"))
        elif pkg.version is not None:
            if not _same_version(pkg.version, installed.version):
                found.append(
                    Difference(
                        MISMATCH,
                        installed.name,
                        line,
                        installed.version,
                        f"declared {pkg.version}, trained with {installed.version}",
                    )
                )
        elif req is not None and not req.url and str(req.specifier):
            if not req.specifier.contains(installed.version, prereleases=True):
                found.append(
                    Difference(
                        MISMATCH,
                        installed.name,
                        line,
                        installed.version,
                        f"declared {req.specifier}, trained with {installed.version}, outside it",
                    )
                )
            else:
                found.append(
                    Difference(
                        UNPINNED,
                        installed.name,
                        line,
                        installed.version,
                        f"declared {req.specifier}, not one version: a rebuild may install another than {installed.version}",
                    )
                )
        else:
            found.append(Difference(UNPINNED, installed.name, line, installed.version, f"declared without a version ({line!r})"))

    covered = declared_closure(declared, env) if declared else set()
    for module, why in sorted(needed.items()):
        providers = env.providers(module)
        if not providers:
            found.append(
                Difference(
                    UNPROVIDED,
                    module,
                    None,
                    None,
                    f"the model needs module {module!r} ({'; '.join(why)}), which no installed distribution provides",
                )
            )
            continue
        if any(p.key in covered for p in providers):
            continue
        for dist in providers:
            found.append(
                Difference(
                    UNDECLARED,
                    dist.name,
                    None,
                    dist.version,
                    f"the model needs module {module!r} ({'; '.join(why)}) from {dist.name} {dist.version}, "
                    "which its requirements do not declare (nor pull in)",
                )
            )
    found.sort(key=lambda d: (KINDS.index(d.kind), normalize_name(d.package)))
    summary = {
        "declared_source": declared.source if declared else None,
        "declared": len(declared.packages) if declared else 0,
        "installed": len(env.distributions),
        "needed_modules": {m: list(w) for m, w in sorted(needed.items())},
        "covered_by_declaration": sorted(covered),
        "dependency_metadata": env.metadata,
    }
    return found, summary
