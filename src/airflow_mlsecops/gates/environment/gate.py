"""The training-environment gate: the packages installed where the model was trained, as a CycloneDX
BOM, checked against OSV and against what the model declares.

Run it in the worker (same image, same queue) that trained the model: by default it lists what
:mod:`importlib.metadata` sees in the running interpreter. A ``site_packages`` directory or a
``pip freeze`` file describes another environment instead::

    outcome = check_training_environment("/tmp/model", osv_db="/opt/osv/PyPI/all.zip")
    outcome = check_training_environment("/tmp/model", freeze="training-freeze.txt", osv_db="/opt/osv/PyPI")

**Declared against installed** (the model's ``requirements.txt``, else the ``pip:`` list of its
``conda.yaml``, read as the SBOM gate reads them): each difference is a finding naming the package,
the declared requirement and the installed version:

* ``training-environment.mismatch.<package>`` (high): declared at another version than was installed
  (PEP 440 equality; a range the installed version is outside of);
* ``training-environment.missing.<package>`` (high): declared, not installed;
* ``training-environment.unprovided.<module>`` (high): the model needs a module no installed
  distribution provides;
* ``training-environment.undeclared.<package>`` (medium): the model needs a module of an installed
  distribution that its requirements neither declare nor pull in (through the installed
  ``Requires-Dist`` metadata; for a freeze file, which has none, that of the same distribution in the
  running interpreter, when it has it).
  What the model needs is read from its files, never by loading it: the ``MLmodel`` loader module,
  flavor frameworks and serialisers, and every module a ``.skops`` file's schema names;
* ``training-environment.no-declared-requirements`` (high): the model declares nothing;
* ``training-environment.unpinned.<package>`` (low, informational): declared without one exact
  version; ``training-environment.uncomparable`` (low, not performed): a line that cannot be compared.

Mismatches, missing packages and unprovided modules reject the model when ``fail_on_mismatch``
(default); undeclared packages and a model that declares nothing when ``fail_on_undeclared`` (default).

**Vulnerabilities**: every installed distribution against the offline OSV database ``osv_db``, with
the SBOM gate's matching, severities and ``fail_on`` (:mod:`airflow_mlsecops.gates.sbom.osv`).
Without a database the check is *not performed*, never "no vulnerabilities": the verdict is
``failed`` when ``require_vulnerability_check`` (default), else ``warned`` (incomplete,
``details["not_performed"]`` names ``training-environment.vulnerability-check-not-performed``).

**Evidence**: ``environment.cdx.json`` (CycloneDX 1.6, validated: the model component, each installed
distribution a ``library`` with its purl, the vulnerabilities found) and ``environment-report.json``
(each difference with package, declared and installed version; the vulnerability report). Subjects:
the model (its manifest digest, as every model gate) and the BOM (the SHA-256 of the recorded file).
A model that is a URI, a path or site-packages directory that does not exist, an empty environment,
an unreadable freeze file or OSV database is an ``error`` verdict, never a pass.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.environment.compare import (
    MISMATCH,
    MISSING,
    UNCOMPARABLE,
    UNDECLARED,
    UNPINNED,
    UNPROVIDED,
    Difference,
    compare_environment,
)
from airflow_mlsecops.gates.environment.inventory import (
    Environment,
    current_environment,
    freeze_environment,
    model_modules,
    site_packages_environment,
)
from airflow_mlsecops.gates.sbom import DEFAULT_FAIL_ON, SEVERITIES, build_bom, describe_model, parse_fail_on, validate_bom
from airflow_mlsecops.gates.sbom.osv import normalize_name, parse_version
from airflow_mlsecops.gates.sbom.packages import packages_from_model
from airflow_mlsecops.gates.sbom.vulnerabilities import check_vulnerabilities

GATE_NAME = gate_names.TRAINING_ENVIRONMENT
BOM_FILE = "environment.cdx.json"
REPORT_FILE = "environment-report.json"
NOT_PERFORMED = f"{GATE_NAME}.vulnerability-check-not-performed"

_ATLAS = ("AML.T0010",)
_OWASP = ("ML06:2023",)
_SEVERITY = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM, "low": Severity.LOW}
_KIND_SEVERITY = {
    MISMATCH: Severity.HIGH,
    MISSING: Severity.HIGH,
    UNPROVIDED: Severity.HIGH,
    UNDECLARED: Severity.MEDIUM,
    UNPINNED: Severity.LOW,
    UNCOMPARABLE: Severity.LOW,
}
_REMOTE_PREFIXES = ("runs:/", "models:/")


def environment_policy(
    *,
    fail_on: Sequence[str] | str = DEFAULT_FAIL_ON,
    require_vulnerability_check: bool = True,
    osv_db: str | None = None,
    fail_on_mismatch: bool = True,
    fail_on_undeclared: bool = True,
    site_packages: str | None = None,
    freeze: str | None = None,
) -> dict[str, Any]:
    """The policy the gate records with its verdict (``fail_on`` normalised when it is valid)."""
    try:
        rejecting: list[str] = list(parse_fail_on(fail_on))
    except ConfigurationError:  # recorded as given; the evaluation raises it again, as an error verdict
        rejecting = list(fail_on.split(",")) if isinstance(fail_on, str) else list(fail_on)
    return {
        "fail_on": rejecting,
        "require_vulnerability_check": require_vulnerability_check,
        "osv_db": str(osv_db) if osv_db else None,
        "fail_on_mismatch": fail_on_mismatch,
        "fail_on_undeclared": fail_on_undeclared,
        "site_packages": str(site_packages) if site_packages else None,
        "freeze": str(freeze) if freeze else None,
        "environment_from_worker": not site_packages and not freeze,
        "cyclonedx_spec": "1.6",
    }


_DISTRIBUTIONS = ("cyclonedx-python-lib", "packaging")


def inputs_unavailable(
    error: BaseException, *, warn_only: bool = False, context: PipelineContext | None = None, **options: Any
) -> GateOutcome:
    """The gate's ``error`` verdict when its model could not be fetched, with the policy it would
    have recorded (``options``: the policy arguments of :func:`check_training_environment`)."""
    return run_gate(
        GATE_NAME,
        raising(error),
        policy=environment_policy(**options),
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS,
        context=context,
    )


def check_training_environment(
    model: str,
    *,
    site_packages: str | None = None,
    freeze: str | None = None,
    osv_db: str | None = None,
    fail_on: Sequence[str] | str = DEFAULT_FAIL_ON,
    require_vulnerability_check: bool = True,
    fail_on_mismatch: bool = True,
    fail_on_undeclared: bool = True,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    subject: str | None = None,
) -> GateOutcome:
    """Judge the training environment of the local ``model`` (an MLflow model directory or file).

    :param model: the local model; a ``models:/``/``runs:/``/``s3://`` model is fetched first by the
        caller (:func:`airflow_mlsecops.io.artifacts.fetch`), a URI here is an ``error`` verdict.
    :param site_packages: read this ``site-packages`` directory instead of the running interpreter.
    :param freeze: read this ``pip freeze`` file instead (exclusive with ``site_packages``).
    :param osv_db: an OSV PyPI export: ``all.zip`` or the directory it unpacks to.
    :param fail_on: vulnerability severities that reject (default critical, high, unknown).
    :param require_vulnerability_check: reject when no vulnerability check could be performed
        (default); ``False`` makes it a ``warned`` (incomplete) verdict, never ``passed``.
    :param fail_on_mismatch: reject declared-versus-installed mismatches, missing packages and modules.
    :param fail_on_undeclared: reject packages the model needs but does not declare.
    :param warn_only: record a rejection as ``warned``.
    :param context: the Airflow task running the gate, if any.
    :param subject: the name the model is recorded under (the URI the caller fetched it from).
    """
    options: dict[str, Any] = {
        "fail_on": fail_on,
        "require_vulnerability_check": require_vulnerability_check,
        "osv_db": osv_db,
        "fail_on_mismatch": fail_on_mismatch,
        "fail_on_undeclared": fail_on_undeclared,
        "site_packages": site_packages,
        "freeze": freeze,
    }
    return run_gate(
        GATE_NAME,
        functools.partial(evaluate_environment, model, subject=subject, **options),
        policy=environment_policy(**options),
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS,
        context=context,
    )


def _finding(severity: Severity, **kwargs: Any) -> Finding:
    return Finding(severity=severity, atlas=_ATLAS, owasp_ml=_OWASP, **kwargs)


def _difference_finding(diff: Difference) -> Finding:
    name = diff.package if diff.kind == UNPROVIDED else normalize_name(diff.package)  # a module, else a project
    where = f"pkg:pypi/{name}" + (f"@{diff.installed}" if diff.installed else "")
    return _finding(
        _KIND_SEVERITY[diff.kind],
        id=f"{GATE_NAME}.{diff.kind}" if diff.kind == UNCOMPARABLE else f"{GATE_NAME}.{diff.kind}.{name}",
        message=f"{diff.package}: {diff.reason}",
        location=where if diff.kind != UNCOMPARABLE else f"requirement: {diff.declared}",
    )


def load_environment(site_packages: str | None, freeze: str | None) -> Environment:
    """The environment to judge: ``site_packages``, else ``freeze``, else the running interpreter's."""
    if site_packages and freeze:
        raise ConfigurationError("give site_packages or freeze, not both")
    if site_packages:
        return site_packages_environment(site_packages)
    if freeze:
        return freeze_environment(freeze)
    return current_environment()


def evaluate_environment(
    model: str | Path,
    *,
    subject: str | None = None,
    site_packages: str | None = None,
    freeze: str | None = None,
    osv_db: str | None = None,
    fail_on: Sequence[str] | str = DEFAULT_FAIL_ON,
    require_vulnerability_check: bool = True,
    fail_on_mismatch: bool = True,
    fail_on_undeclared: bool = True,
) -> Evaluation:
    """The gate's evaluation (what :func:`check_training_environment` runs and records).

    :raises ConfigurationError: ``fail_on`` is invalid, or both ``site_packages`` and ``freeze`` are given.
    :raises GateError: the model is a URI or does not exist, the environment or the OSV database
        cannot be read, or the BOM does not validate.
    """
    from airflow_mlsecops.io.artifacts import subject_name

    rejecting = parse_fail_on(fail_on)
    location = str(model).removeprefix("file://")
    if "://" in location or location.startswith(_REMOTE_PREFIXES):
        raise GateError(f"{location}: the gate reads a local model; fetch it first and pass its URI as subject")
    local = Path(location)
    if not local.exists():
        raise GateError(f"{location} does not exist")
    env = load_environment(site_packages, freeze)
    subject = subject or subject_name(location)
    info = describe_model(subject, local)
    declared = packages_from_model(local) if local.is_dir() else None
    model_dir = local if local.is_dir() else local.parent
    needed = model_modules(model_dir, info.mlmodel, [f.path for f in info.files] if local.is_dir() else [local.name])
    differences, comparison = compare_environment(declared, env, needed)

    findings: list[tuple[bool, Finding]] = []  # (blocks, finding)
    not_performed: list[str] = []
    if declared is None or not declared.packages:
        findings.append(
            (
                fail_on_undeclared,
                _finding(
                    Severity.HIGH,
                    id=f"{GATE_NAME}.no-declared-requirements",
                    message=(
                        "the model declares no requirements (no requirements.txt or conda.yaml pip list): "
                        "nothing says what it needs, so it cannot be rebuilt"
                    ),
                ),
            )
        )
    blocking_kinds = {MISMATCH: fail_on_mismatch, MISSING: fail_on_mismatch, UNPROVIDED: fail_on_mismatch}
    blocking_kinds[UNDECLARED] = fail_on_undeclared
    for diff in differences:
        finding = _difference_finding(diff)
        findings.append((blocking_kinds.get(diff.kind, False), finding))
        if diff.kind == UNCOMPARABLE:
            not_performed.append(finding.id)

    listing = env.package_list()
    checkable = [p for p in listing.packages if p.version is not None]
    for pkg in checkable:
        if parse_version(pkg.version or "") is None:
            fid = f"{GATE_NAME}.unparsable-version"
            findings.append(
                (
                    False,
                    _finding(
                        Severity.LOW,
                        id=fid,
                        message=f"{pkg.name} {pkg.version} is not a PEP 440 version: vulnerability ranges cannot be evaluated",
                        location=pkg.purl,
                    ),
                )
            )
            not_performed.append(fid)
    check = check_vulnerabilities(checkable, listing, osv_db=osv_db, online=False)
    vulns = check.vulnerabilities
    for vuln in vulns:
        blocks = vuln.severity in rejecting
        fix = f"fixed in {', '.join(vuln.fixed)}" if vuln.fixed else "no fixed version known"
        findings.append(
            (
                blocks,
                _finding(
                    _SEVERITY.get(vuln.severity, Severity.HIGH),
                    id=f"{GATE_NAME}.vulnerability.{vuln.id}",
                    message=(
                        f"{vuln.package} {vuln.version}, installed where the model was trained, is affected by "
                        f"{vuln.id}, severity {vuln.severity} ({vuln.severity_source}); {fix}"
                        + ("" if blocks else f"; tolerated by policy fail_on={','.join(rejecting) or 'none'}")
                    ),
                    location=vuln.purl,
                ),
            )
        )
    if not check.performed:
        reason = "; ".join(r for r in check.not_performed_reasons if r != "online check not requested") or "no source"
        message = f"vulnerability check of the training environment not performed: {reason}. This is not a clean result"
        if require_vulnerability_check:
            findings.append((True, _finding(Severity.HIGH, id=NOT_PERFORMED, message=message)))
        else:
            findings.append((False, _finding(Severity.LOW, id=NOT_PERFORMED, message=message + " (warning only)")))
            not_performed.append(NOT_PERFORMED)

    document = build_bom(info, listing, [], vulns)
    validate_bom(document)
    bom_bytes = json.dumps(document, indent=2).encode("utf-8")
    by_kind = {kind: [d for d in differences if d.kind == kind] for kind in (MISMATCH, MISSING, UNPROVIDED, UNDECLARED)}
    by_severity = {label: sum(v.severity == label for v in vulns) for label in SEVERITIES}
    report = {
        "environment": env.source,
        "comparison": comparison,
        "differences": [d.to_dict() for d in differences],
        "vulnerability_check": {
            "checked": check.performed,
            "not_performed_reason": None if check.performed else "; ".join(check.not_performed_reasons),
            "packages_checked": len(checkable) if check.performed else 0,
            "sources": check.sources,
            "fail_on": list(rejecting),
            "vulnerabilities": [v.to_dict() for v in vulns],
        },
    }
    findings.sort(key=lambda item: (not item[0], -item[1].severity.rank, item[1].id))
    blocking = [f for blocks, f in findings if blocks]
    counts = ", ".join(f"{len(v)} {k}" for k, v in by_kind.items() if v) or "no difference"
    check_text = (
        f"{len(vulns)} {'vulnerability' if len(vulns) == 1 else 'vulnerabilities'} in {len(checkable)} installed packages"
        if check.performed
        else "vulnerability check NOT PERFORMED"
    )
    summary = (
        f"training environment of {subject} ({env.source}): {len(env.distributions)} installed, "
        f"{comparison['declared']} declared ({comparison['declared_source'] or 'nothing'}): {counts}; {check_text}"
    )
    if blocking:
        summary += f"; rejected: {len(blocking)} blocking finding{'s' if len(blocking) != 1 else ''}"
    metrics = {
        "installed": float(len(env.distributions)),
        "declared": float(comparison["declared"]),
        **{f"{kind}": float(len(items)) for kind, items in by_kind.items()},
        "vulnerabilities": float(len(vulns)),
        **{f"vulnerabilities_{label}": float(n) for label, n in by_severity.items()},
        "vulnerabilities_checked": float(len(checkable) if check.performed else 0),
    }
    return Evaluation(
        passed=not blocking,
        summary=summary,
        subjects=[Subject(subject, info.digest), Subject(BOM_FILE, hashlib.sha256(bom_bytes).hexdigest())],
        findings=[f for _, f in findings],
        metrics=metrics,
        files={BOM_FILE: bom_bytes, REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
        details={
            "environment": env.source,
            "declared_source": comparison["declared_source"],
            "vulnerability_check": "performed" if check.performed else "not performed",
            "differences": [d.to_dict() for d in differences if d.kind in by_kind],
            "bom_serial_number": document.get("serialNumber"),
            "model": {"name": info.name, "version": info.version, "location": subject},
        },
        not_performed=not_performed,
    )
