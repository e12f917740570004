"""The SBOM gate: the ML-BOM of a local model, its packages checked for known vulnerabilities, and the verdict.

The engine takes a local model directory or file; a ``models:/``, ``runs:/`` or ``s3://`` model is
fetched by the caller (the operator, the CLI) with :func:`airflow_mlsecops.io.artifacts.fetch`, and
its URI is passed as ``subject`` so the evidence names the model as it was given. In a pipeline,
with an MLflow model, the signed training data and OSV's ``PyPI/all.zip``::

    from airflow_mlsecops.io.artifacts import fetch, subject_name

    location = "models:/credit-scorer/3"              # or a model directory, runs:/..., s3://...
    with tempfile.TemporaryDirectory() as tmp:
        outcome = build_and_check_sbom(
            str(fetch(location, Path(tmp, "model"), store)),
            subject=subject_name(location),
            osv_db="/opt/osv/PyPI/all.zip",
            datasets=[DatasetRef("train.csv", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")],
            model_metrics={"accuracy": 0.93},
        )

**The BOM** (``bom.cdx.json``, CycloneDX 1.6 JSON, validated against the 1.6 schema with
cyclonedx-python-lib's own validator; a BOM that does not validate is an ``error`` verdict):

* the model, a ``machine-learning-model`` component: name and version from a ``models:/name/version``
  subject, else the MLmodel file (``name`` or ``artifact_path``; ``model_id`` or ``model_uuid``), else
  the directory name. Its SHA-256 hash is the model's manifest digest (the subject digest that
  ``mlsecops verify`` re-checks); every model file is a nested ``file`` component with its own
  SHA-256. MLflow metadata (run id, flavors, versions) are ``mlflow:*`` properties. Its
  ``modelCard`` (which cyclonedx-python-lib cannot model, so it is added to the JSON before
  validation) holds ``modelParameters`` (``task`` from the MLmodel ``metadata.task`` or a flavor's
  ``task``; ``architectureFamily`` = the MLflow flavor, e.g. ``sklearn``; ``modelArchitecture``
  read from a skops file's ``schema.json``, e.g. ``sklearn.pipeline.Pipeline(StandardScaler,
  LogisticRegression)``, never by loading the model; ``datasets`` referencing the data
  components), and ``quantitativeAnalysis.performanceMetrics`` from ``model_metrics``. Anything in
  ``model_card`` is merged over it (e.g. ``considerations``), and the result must still validate;
* each training data set, a ``data`` component with its SHA-256 and, if given, its URI as a
  ``distribution`` external reference;
* each Python package of the training environment, a ``library`` component with purl
  ``pkg:pypi/<normalised name>@<version>``;
* the vulnerabilities found, in the BOM's ``vulnerabilities`` section (a CycloneDX VDR).

**Where the package list comes from** (said in ``details.package_source`` and the BOM metadata):

1. ``python``: that interpreter is run (``python -I``, isolated: ``PYTHONPATH`` and the user
   site are ignored) and lists its installed distributions with ``importlib.metadata``;
2. otherwise the model directory's ``requirements.txt`` (what MLflow will install to serve the
   model); only ``==``/``===`` pins without wildcards can be checked. An unpinned requirement, a
   direct URL, ``-r``/``-c``/``-e`` lines and unparsable lines are ``medium`` findings
   ("cannot be checked") and are listed in the BOM without a version;
3. otherwise the ``pip:`` section of the model's ``conda.yaml``;
4. otherwise there is no package list, and the vulnerability check is *not performed*.

**Vulnerability check** (``vulnerabilities.json``): offline against ``osv_db`` (see
:mod:`airflow_mlsecops.gates.sbom.osv` for the matching rules: PEP 503 names, PEP 440 versions,
``ECOSYSTEM`` ranges with ``introduced``/``fixed``/``last_affected``, explicit ``versions``
lists), and online through pip-audit's OSV service when ``online=True`` and pip-audit is
installed. Advisories that alias each other (``PYSEC-...`` and ``GHSA-...`` for one CVE) are
reported once, with the most serious severity of the group.

**Severity** is the most serious of GitHub's ``database_specific.severity``
(``CRITICAL``/``HIGH``/``MODERATE``/``LOW``) and the CVSS v3.x base score of the advisory's
vectors (computed here); otherwise, and always for pip-audit results (which carry none), it is
``unknown``.

**Fail-closed rules**

* no database and no (available) online check, or no package list: the check was *not performed*.
  That is never reported as "no vulnerabilities": the verdict is ``failed`` with the finding
  ``sbom.vulnerability-check-not-performed``, unless ``require_vulnerability_check=False``, in
  which case the verdict is ``warned`` (incomplete: ``details["not_performed"]`` names the
  finding, severity ``low``), never ``passed``, and the metric ``vulnerabilities_checked`` is 0.
  Requirements that cannot be checked, versions that cannot be parsed and an online check that was
  asked for but is unavailable make the verdict ``warned`` in the same way when they do not reject;
* the gate fails when a finding's severity is in ``fail_on``. The default is
  ``critical, high, unknown`` (:data:`DEFAULT_FAIL_ON`): an advisory nobody rated rejects the
  model until it is looked at. Vulnerabilities below the policy are still reported as findings;
* an unreadable or corrupt OSV file, an empty database, an interpreter that cannot be run, a failed
  online query or a BOM that does not validate is an ``error`` verdict, never a pass.

Findings name MITRE ATLAS ``AML.T0010`` (ML Supply Chain Compromise) and OWASP ``ML06:2023``.
Metrics: ``components``, ``packages``, ``vulnerabilities``, ``vulnerabilities_<severity>``,
``vulnerabilities_checked`` (packages checked), ``packages_unchecked``, ``model_files``, ``datasets``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.sbom.bom import BOM_FILE, build_bom, validate_bom
from airflow_mlsecops.gates.sbom.datasets import DatasetRef, dataset_refs
from airflow_mlsecops.gates.sbom.model_card import describe_model
from airflow_mlsecops.gates.sbom.osv import SEVERITY_LABELS, parse_version
from airflow_mlsecops.gates.sbom.packages import packages_from_model, packages_from_python
from airflow_mlsecops.gates.sbom.vulnerabilities import check_vulnerabilities

GATE_NAME = gate_names.SBOM
#: Severity labels a policy can reject, most serious first.
SEVERITIES = SEVERITY_LABELS
#: Rejected by default: critical, high, and advisories without a usable rating (fail closed).
DEFAULT_FAIL_ON = ("critical", "high", "unknown")
VULNERABILITIES_FILE = "vulnerabilities.json"

_ATLAS = ("AML.T0010",)
_OWASP = ("ML06:2023",)
_FINDING_SEVERITY = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "unknown": Severity.HIGH,
}
_REMOTE_PREFIXES = ("runs:/", "models:/")


def parse_fail_on(fail_on: Sequence[str] | str) -> tuple[str, ...]:
    """Validate a severity policy (``("critical", "high")`` or ``"critical,high"``)."""
    items = fail_on.split(",") if isinstance(fail_on, str) else list(fail_on)
    labels = tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
    unknown = [label for label in labels if label not in SEVERITIES]
    if unknown:
        raise ConfigurationError(f"fail_on: unknown severities {unknown}; choose from {', '.join(SEVERITIES)}")
    return labels


def sbom_policy(
    *,
    fail_on: Sequence[str] | str = DEFAULT_FAIL_ON,
    require_vulnerability_check: bool = True,
    osv_db: str | None = None,
    online: bool = False,
    python: str | None = None,
) -> dict[str, Any]:
    """The policy the gate records with its verdict (``fail_on`` normalised when it is valid)."""
    try:
        rejecting: list[str] = list(parse_fail_on(fail_on))
    except ConfigurationError:  # recorded as given; the gate's evaluation raises it again, as an error verdict
        rejecting = list(fail_on.split(",")) if isinstance(fail_on, str) else list(fail_on)
    return {
        "fail_on": rejecting,
        "require_vulnerability_check": require_vulnerability_check,
        "osv_db": str(osv_db) if osv_db else None,
        "online": online,
        "python": python,
        "packages_from_model": not python,  # the BOM lists the model's own requirements
        "cyclonedx_spec": "1.6",
    }


def sbom_distributions(*, online: bool = False) -> tuple[str, ...]:
    """The distributions whose versions the gate records."""
    return ("cyclonedx-python-lib", "packaging", *(("pip-audit",) if online else ()))


def inputs_unavailable(
    error: BaseException,
    *,
    fail_on: Sequence[str] | str = DEFAULT_FAIL_ON,
    require_vulnerability_check: bool = True,
    osv_db: str | None = None,
    online: bool = False,
    python: str | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
) -> GateOutcome:
    """The outcome of :func:`build_and_check_sbom` when its model could not be fetched: the gate's
    ``error`` verdict, with the policy it would have recorded (never a pass).

    :param error: why the model is unavailable (usually from :func:`airflow_mlsecops.io.artifacts.fetch`).
    """
    policy = sbom_policy(
        fail_on=fail_on, require_vulnerability_check=require_vulnerability_check, osv_db=osv_db, online=online, python=python
    )
    return run_gate(
        GATE_NAME,
        raising(error),
        policy=policy,
        warn_only=warn_only,
        distributions=sbom_distributions(online=online),
        context=context,
    )


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


#: The finding of a vulnerability check that was not performed.
NOT_PERFORMED = "sbom.vulnerability-check-not-performed"
#: Findings that name a check not (fully) performed: when they do not reject, the verdict is ``warned`` (incomplete).
_INCOMPLETE_IDS = frozenset(
    {NOT_PERFORMED, "sbom.unchecked-requirement", "sbom.unparsable-version", "sbom.online-check-unavailable"}
)


def _finding(label: str, **kwargs: Any) -> Finding:
    return Finding(severity=_FINDING_SEVERITY[label], atlas=_ATLAS, owasp_ml=_OWASP, **kwargs)


def build_and_check_sbom(
    model: str,
    *,
    python: str | None = None,
    osv_db: str | None = None,
    online: bool = False,
    datasets: Sequence[DatasetRef | Mapping[str, Any] | str] | Mapping[str, Any] | str = (),
    model_metrics: Mapping[str, float] | None = None,
    fail_on: Sequence[str] | str = DEFAULT_FAIL_ON,
    require_vulnerability_check: bool = True,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    model_card: Mapping[str, Any] | None = None,
    subject: str | None = None,
) -> GateOutcome:
    """Write the ML-BOM of ``model`` and check its Python packages for known vulnerabilities.

    :param model: the local model: an MLflow model directory or a single model file. A ``models:/``,
        ``runs:/`` or ``s3://`` model is fetched first by the caller
        (:func:`airflow_mlsecops.io.artifacts.fetch`); a URI here is an ``error`` verdict.
    :param python: list the packages installed in this interpreter instead of reading the model's
        ``requirements.txt``.
    :param osv_db: an OSV PyPI export: ``all.zip`` or the directory it unpacks to.
    :param online: also query OSV through pip-audit (only if pip-audit is installed; otherwise a
        finding says "online check unavailable").
    :param datasets: the training data sets (:class:`DatasetRef`, ``{"name", "sha256", "uri"}``,
        in-toto subjects or ``NAME=SHA256``).
    :param model_metrics: performance metrics for the model card (``{"accuracy": 0.93}``).
    :param fail_on: severities that reject the model (default :data:`DEFAULT_FAIL_ON`).
    :param require_vulnerability_check: reject when the check could not be performed (default);
        ``False`` turns that into a visible warning.
    :param warn_only: record a rejection as ``warned``.
    :param context: the Airflow task running the gate, if any.
    :param model_card: extra CycloneDX ``modelCard`` fields, merged over the generated ones.
    :param subject: the name the model is recorded under, and read as (a ``models:/name/version``
        subject names the BOM's model component): the URI the caller fetched it from
        (:func:`airflow_mlsecops.io.artifacts.subject_name`). Default: the absolute path of ``model``.
    """
    evaluate = functools.partial(
        evaluate_sbom,
        model,
        subject=subject,
        python=python,
        osv_db=osv_db,
        online=online,
        datasets=datasets,
        model_metrics=model_metrics,
        fail_on=fail_on,
        require_vulnerability_check=require_vulnerability_check,
        model_card=model_card,
    )
    return run_gate(
        GATE_NAME,
        evaluate,
        policy=sbom_policy(
            fail_on=fail_on, require_vulnerability_check=require_vulnerability_check, osv_db=osv_db, online=online, python=python
        ),
        warn_only=warn_only,
        distributions=sbom_distributions(online=online),
        context=context,
    )


def evaluate_sbom(
    model: str | Path,
    *,
    subject: str | None = None,
    python: str | None = None,
    osv_db: str | None = None,
    online: bool = False,
    datasets: Sequence[DatasetRef | Mapping[str, Any] | str] | Mapping[str, Any] | str = (),
    model_metrics: Mapping[str, float] | None = None,
    fail_on: Sequence[str] | str = DEFAULT_FAIL_ON,
    require_vulnerability_check: bool = True,
    model_card: Mapping[str, Any] | None = None,
) -> Evaluation:
    """The gate's evaluation of the local ``model`` (what :func:`build_and_check_sbom` runs and records).

    Parameters as for :func:`build_and_check_sbom`.

    :raises ConfigurationError: ``fail_on``, ``datasets`` or ``model_metrics`` is invalid.
    :raises GateError: ``model`` is a URI or does not exist, a package list or the OSV database
        cannot be read, the online check failed, or the BOM does not validate.
    """
    from airflow_mlsecops.io.artifacts import subject_name

    rejecting = parse_fail_on(fail_on)
    refs = dataset_refs(datasets)
    location = str(model)
    if location.startswith("file://"):
        location = location[len("file://") :]
    if "://" in location or location.startswith(_REMOTE_PREFIXES):
        raise GateError(
            f"{location}: the SBOM gate reads a local model; fetch it first (airflow_mlsecops.io.artifacts.fetch) "
            "and pass its URI as subject"
        )
    subject = subject or subject_name(location)
    local = Path(location)
    if not local.exists():
        raise GateError(f"{location} does not exist")
    info = describe_model(subject, local)
    listing = packages_from_python(python) if python else packages_from_model(local) if local.is_dir() else None

    findings: list[tuple[bool, Finding]] = []  # (blocks, finding)
    checkable = [p for p in (listing.packages if listing else []) if p.version is not None]
    if listing:
        for line, reason in listing.unchecked:
            findings.append(
                (
                    "medium" in rejecting,
                    _finding(
                        "medium",
                        id="sbom.unchecked-requirement",
                        message=f"{line!r} cannot be checked for vulnerabilities: {reason}",
                        location=f"{listing.source}: {line}",
                    ),
                )
            )
        for pkg in checkable:
            if parse_version(pkg.version or "") is None:
                findings.append(
                    (
                        "medium" in rejecting,
                        _finding(
                            "medium",
                            id="sbom.unparsable-version",
                            message=(
                                f"{pkg.name} {pkg.version} is not a PEP 440 version: only advisories listing it "
                                "explicitly can match, version ranges cannot be evaluated"
                            ),
                            location=pkg.purl,
                        ),
                    )
                )

    check = check_vulnerabilities(checkable, listing, osv_db=osv_db, online=online)
    if check.online_unavailable:
        findings.append(
            (
                False,
                _finding(
                    "low",
                    id="sbom.online-check-unavailable",
                    message="online check unavailable: pip-audit is not installed (pip install pip-audit)",
                ),
            )
        )
    performed, vulns, sources = check.performed, check.vulnerabilities, check.sources
    not_performed_reason = check.not_performed_reasons

    for vuln in vulns:
        aliases = sorted(vuln.aliases - {vuln.id})
        fix = f"fixed in {', '.join(vuln.fixed)}" if vuln.fixed else "no fixed version known"
        alias_text = f" (aliases: {', '.join(aliases)})" if aliases else ""
        blocks = vuln.severity in rejecting
        findings.append(
            (
                blocks,
                _finding(
                    vuln.severity,
                    id=f"sbom.vulnerability.{vuln.id}",
                    message=(
                        f"{vuln.package} {vuln.version} is affected by {vuln.id}{alias_text}, "
                        f"severity {vuln.severity} ({vuln.severity_source}); {fix}"
                        + ("" if blocks else f"; tolerated by policy fail_on={','.join(rejecting) or 'none'}")
                        + (f": {vuln.summary}" if vuln.summary else "")
                    ),
                    location=vuln.purl,
                ),
            )
        )
    if not performed:
        reason = "; ".join(not_performed_reason) or "no vulnerability source"
        findings.append(
            (
                require_vulnerability_check,
                _finding(
                    "high" if require_vulnerability_check else "low",
                    id=NOT_PERFORMED,
                    message=(
                        f"vulnerability check not performed: {reason}. This is not a clean result"
                        + ("" if require_vulnerability_check else " (require_vulnerability_check=False: warned, never passed)")
                    ),
                ),
            )
        )

    document = build_bom(info, listing, refs, vulns, model_metrics=model_metrics, model_card=model_card)
    validate_bom(document)

    by_severity = {label: sum(v.severity == label for v in vulns) for label in SEVERITIES}
    checked = len(checkable) if performed else 0
    report = {
        "checked": performed,
        "not_performed_reason": None if performed else "; ".join(not_performed_reason),
        "package_source": listing.source if listing else None,
        "packages_checked": checked,
        "sources": sources,
        "fail_on": list(rejecting),
        "vulnerabilities": [v.to_dict() for v in vulns],
        "unchecked": [{"requirement": line, "reason": reason} for line, reason in (listing.unchecked if listing else [])],
    }
    findings.sort(key=lambda item: (not item[0], -item[1].severity.rank, item[1].id))
    blocking = [f for blocks, f in findings if blocks]
    packages_total = len({p.purl for p in listing.packages}) if listing else 0
    counts = ", ".join(f"{n} {label}" for label, n in by_severity.items() if n)
    if performed:
        check_text = f"{_n(len(vulns), 'vulnerability', 'vulnerabilities')} in {_n(checked, 'checked package')}" + (
            f" ({counts})" if counts else ""
        )
    else:
        check_text = "vulnerability check NOT PERFORMED"
    summary = (
        f"ML-BOM of {info.name}: {_n(packages_total, 'package')} from {listing.source if listing else 'nowhere'}, "
        f"{_n(len(refs), 'dataset')}, {_n(len(info.files), 'model file')}; {check_text}"
    )
    over_policy = sum(1 for f in blocking if f.id != NOT_PERFORMED)
    reasons = (["the vulnerability check is required"] if not performed and require_vulnerability_check else []) + (
        [f"{_n(over_policy, 'finding')} at fail_on={','.join(rejecting)}"] if over_policy else []
    )
    if reasons:
        summary += "; rejected: " + " and ".join(reasons)
    metrics_out = {
        "components": float(len(document.get("components", []))),
        "packages": float(packages_total),
        "vulnerabilities": float(len(vulns)),
        **{f"vulnerabilities_{label}": float(n) for label, n in by_severity.items()},
        "vulnerabilities_checked": float(checked),
        "packages_unchecked": float(len(listing.unchecked) if listing else 0),
        "model_files": float(len(info.files)),
        "datasets": float(len(refs)),
    }
    return Evaluation(
        passed=not blocking,
        not_performed=[f.id for blocks, f in findings if not blocks and f.id in _INCOMPLETE_IDS],
        summary=summary,
        subjects=[Subject(subject, info.digest)],
        findings=[f for _, f in findings],
        metrics=metrics_out,
        files={
            BOM_FILE: json.dumps(document, indent=2).encode("utf-8"),
            VULNERABILITIES_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8"),
        },
        details={
            "package_source": listing.source if listing else None,
            "vulnerability_check": "performed" if performed else "not performed",
            "vulnerability_sources": sources,
            "bom_serial_number": document.get("serialNumber"),
            "bom_spec_version": document.get("specVersion"),
            "model": {"name": info.name, "version": info.version, "location": subject},
        },
    )
