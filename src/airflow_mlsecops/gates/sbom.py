"""ML-BOM and dependency-vulnerability gate: a CycloneDX 1.6 BOM of a model, checked against OSV.

A self-contained run (a one-file "model" with a requirements file, and a one-advisory OSV
database written on the spot)::

    import json, pathlib, tempfile
    from airflow_mlsecops.gates.sbom import build_and_check_sbom

    root = pathlib.Path(tempfile.mkdtemp())
    (root / "model").mkdir()
    (root / "model" / "model.onnx").write_bytes(b"weights")
    (root / "model" / "requirements.txt").write_text("scikit-learn==1.0.0\n")
    (root / "osv").mkdir()
    (root / "osv" / "GHSA-demo.json").write_text(json.dumps({
        "id": "GHSA-demo", "database_specific": {"severity": "HIGH"},
        "affected": [{"package": {"ecosystem": "PyPI", "name": "scikit-learn"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}]}]}))
    outcome = build_and_check_sbom(str(root / "model"), osv_db=str(root / "osv"))
    print(outcome.verdict.value, [f.id for f in outcome.result.failed_findings])
    # failed ['sbom.vulnerability.GHSA-demo']
    bom = json.loads(outcome.files["bom.cdx.json"])   # the validated CycloneDX 1.6 document

In a pipeline, with an MLflow model, the signed training data and OSV's ``PyPI/all.zip``::

    outcome = build_and_check_sbom(
        "models:/credit-scorer/3",                    # or a model directory, runs:/..., s3://...
        osv_db="/opt/osv/PyPI/all.zip",
        datasets=[DatasetRef("train.csv", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")],
        model_metrics={"accuracy": 0.93},
    )

**The BOM** (``bom.cdx.json``, CycloneDX 1.6 JSON, validated against the 1.6 schema with
cyclonedx-python-lib's own validator; a BOM that does not validate is an ``error`` verdict):

* the model, a ``machine-learning-model`` component: name and version from a ``models:/name/version``
  URI, else the MLmodel file (``name`` or ``artifact_path``; ``model_id`` or ``model_uuid``), else
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
:mod:`airflow_mlsecops.gates._osv` for the matching rules: PEP 503 names, PEP 440 versions,
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
  which case the same finding is a visible warning and the metric ``vulnerabilities_checked`` is 0;
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

import json
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.digest import FileEntry, file_manifest, manifest_digest
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates._osv import SEVERITY_LABELS, Match, OSVDatabase, more_severe, normalize_name, parse_version
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate

if TYPE_CHECKING:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

GATE_NAME = gate_names.SBOM
#: Severity labels a policy can reject, most serious first.
SEVERITIES = SEVERITY_LABELS
#: Rejected by default: critical, high, and advisories without a usable rating (fail closed).
DEFAULT_FAIL_ON = ("critical", "high", "unknown")
BOM_FILE = "bom.cdx.json"
VULNERABILITIES_FILE = "vulnerabilities.json"
MODEL_REF = "model"
PYTHON_TIMEOUT_SECONDS = 120
ONLINE_TIMEOUT_SECONDS = 30

_ATLAS = ("AML.T0010",)
_OWASP = ("ML06:2023",)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_FINDING_SEVERITY = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "unknown": Severity.HIGH,
}
_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json, re, sys\n"
    "seen = {}\n"
    "for d in m.distributions():\n"
    "    name = d.metadata.get('Name')\n"
    "    key = re.sub(r'[-_.]+', '-', name or '').lower()\n"
    "    if key and key not in seen:\n"
    "        seen[key] = {'name': name, 'version': d.version}\n"
    "json.dump(sorted(seen.values(), key=lambda p: p['name'].lower()), sys.stdout)\n"
)


@dataclass(frozen=True)
class DatasetRef:
    """A training data set, named and pinned by its SHA-256 (e.g. a dataset-provenance subject).

    :param name: the data set's name (a file name, path or URI).
    :param sha256: SHA-256 of its bytes (or of its manifest, for a directory), 64 hex digits.
    :param uri: where it lives, recorded as the component's ``distribution`` reference.
    """

    name: str
    sha256: str
    uri: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError("a dataset needs a name")
        digest = str(self.sha256).strip().lower()
        if not _SHA256_HEX.fullmatch(digest):
            raise ConfigurationError(f"dataset {self.name!r}: sha256 must be 64 hex digits, not {self.sha256!r}")
        object.__setattr__(self, "sha256", digest)

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        """``NAME=SHA256`` (as the CLI's ``--dataset`` takes it)."""
        name, sep, digest = str(text).rpartition("=")
        if not sep or not name:
            raise ConfigurationError(f"--dataset {text!r}: expected NAME=SHA256")
        return cls(name=name, sha256=digest, uri=name if "://" in name else None)

    @classmethod
    def from_value(cls, value: DatasetRef | Mapping[str, Any] | str) -> DatasetRef:
        """Accept a :class:`DatasetRef`, ``NAME=SHA256``, ``{"name", "sha256", "uri"}`` or an
        in-toto subject ``{"name", "digest": {"sha256"}}`` (a provenance task's XCom ``subjects``)."""
        if isinstance(value, DatasetRef):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            name = value.get("name")
            digest = value.get("sha256")
            if digest is None and isinstance(value.get("digest"), Mapping):
                digest = value["digest"].get("sha256")
            uri = value.get("uri")
            if uri is None and isinstance(name, str) and "://" in name:
                uri = name
            if not isinstance(name, str) or not isinstance(digest, str):
                raise ConfigurationError(f"a dataset needs a name and a sha256: {dict(value)!r}")
            return cls(name=name, sha256=digest, uri=str(uri) if uri else None)
        raise ConfigurationError(f"a dataset must be a DatasetRef, a mapping or NAME=SHA256, not {type(value).__name__}")


def dataset_refs(datasets: Iterable[DatasetRef | Mapping[str, Any] | str] | Mapping[str, Any] | str | None) -> list[DatasetRef]:
    """Datasets in any accepted form (see :meth:`DatasetRef.from_value`); a mapping with a
    ``subjects`` key (a provenance task's whole XCom return value) gives its subjects."""
    if not datasets:
        return []
    if isinstance(datasets, str) and datasets.lstrip()[:1] in ("[", "{"):
        datasets = _literal(datasets)  # a list rendered by a Jinja template into its text
    if isinstance(datasets, Mapping):
        datasets = datasets.get("subjects", [datasets])
    if isinstance(datasets, (str, bytes)):
        datasets = [str(datasets)]
    return [DatasetRef.from_value(item) for item in datasets]


def _literal(text: str) -> Any:
    import ast

    try:
        return json.loads(text)
    except ValueError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ConfigurationError(f"datasets: {text[:80]!r} is neither JSON nor a Python literal") from exc


def parse_fail_on(fail_on: Sequence[str] | str) -> tuple[str, ...]:
    """Validate a severity policy (``("critical", "high")`` or ``"critical,high"``)."""
    items = fail_on.split(",") if isinstance(fail_on, str) else list(fail_on)
    labels = tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))
    unknown = [label for label in labels if label not in SEVERITIES]
    if unknown:
        raise ConfigurationError(f"fail_on: unknown severities {unknown}; choose from {', '.join(SEVERITIES)}")
    return labels


@dataclass(frozen=True)
class Package:
    """A Python package of the training environment; ``version`` is ``None`` when not pinned."""

    name: str
    version: str | None
    requirement: str | None = None

    @property
    def purl(self) -> str:
        base = f"pkg:pypi/{normalize_name(self.name)}"
        return f"{base}@{self.version}" if self.version else base


@dataclass
class PackageList:
    """The packages found, where they came from, and what could not be turned into a pin."""

    source: str
    packages: list[Package] = field(default_factory=list)
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # (requirement line, reason)


def packages_from_python(python: str) -> PackageList:
    """The installed distributions of the interpreter ``python`` (a path or a name on ``PATH``)."""
    exe = shutil.which(python) or (python if Path(python).is_file() else None)
    if exe is None:
        raise GateError(f"python interpreter {python!r} not found")
    try:
        done = subprocess.run(
            [exe, "-I", "-c", _LIST_DISTRIBUTIONS],
            capture_output=True,
            text=True,
            timeout=PYTHON_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GateError(f"{exe} did not list its packages within {PYTHON_TIMEOUT_SECONDS} s") from exc
    except OSError as exc:
        raise GateError(f"{exe} cannot be run: {exc}") from exc
    if done.returncode != 0:
        raise GateError(f"{exe} could not list its packages (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    try:
        listed = json.loads(done.stdout)
        packages = [Package(str(p["name"]), str(p["version"])) for p in listed]
    except (ValueError, KeyError, TypeError) as exc:
        raise GateError(f"{exe} printed an unreadable package list: {exc}") from exc
    return PackageList(source=f"python:{exe}", packages=packages)


def parse_requirements(text: str) -> tuple[list[Package], list[tuple[str, str]]]:
    """Pinned and unpinned packages of a pip requirements file, and the lines that cannot be checked.

    Pinned means exactly one ``==``/``===`` specifier without a wildcard. Index options
    (``--index-url``...) are ignored; ``--hash`` options are stripped.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    packages: list[Package] = []
    unchecked: list[tuple[str, str]] = []
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((pending + line).strip())
        pending = ""
    if pending.strip():
        logical.append(pending.strip())
    for line in logical:
        if not line:
            continue
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            if option in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable"):
                unchecked.append((line, f"{option} is not followed; its packages cannot be checked"))
            continue
        line = re.split(r"\s+--hash[=\s]", line)[0].strip()
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            unchecked.append((line, f"not a valid requirement ({exc})"))
            continue
        if req.url:
            unchecked.append((line, "a direct reference has no version to check"))
            packages.append(Package(req.name, None, line))
            continue
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            packages.append(Package(req.name, specs[0].version, line))
        else:
            unchecked.append((line, "not pinned to one version (== or ===)"))
            packages.append(Package(req.name, None, line))
    return packages, unchecked


def packages_from_model(model_dir: Path) -> PackageList | None:
    """The model's ``requirements.txt``, else the ``pip:`` list of its ``conda.yaml``, else ``None``."""
    requirements = model_dir / "requirements.txt"
    if requirements.is_file():
        packages, unchecked = parse_requirements(_read_text(requirements))
        return PackageList("requirements.txt", packages, unchecked)
    conda = model_dir / "conda.yaml"
    if conda.is_file():
        import yaml

        try:
            env = yaml.safe_load(_read_text(conda)) or {}
        except yaml.YAMLError as exc:
            raise GateError(f"{conda} is not valid YAML: {exc}") from exc
        pip_lines: list[str] = []
        for dep in (env.get("dependencies") or []) if isinstance(env, dict) else []:
            if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                pip_lines.extend(str(line) for line in dep["pip"])
        if pip_lines:
            packages, unchecked = parse_requirements("\n".join(pip_lines))
            return PackageList("conda.yaml", packages, unchecked)
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"{path} cannot be read: {exc}") from exc


# --- the model ------------------------------------------------------------------------------------


@dataclass
class ModelInfo:
    """What the BOM says about the model, read from its files (the model is never loaded)."""

    name: str
    version: str | None
    digest: str
    files: list[FileEntry]
    mlmodel: dict[str, Any]
    architecture: str | None = None


def _read_mlmodel(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "MLmodel"
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as exc:
        raise GateError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise GateError(f"{path} is not an MLmodel file (not a mapping)")
    return data


def _skops_architecture(path: Path) -> str | None:
    """``module.Class`` of a skops file's top-level object (``Pipeline(step classes)`` for a pipeline),
    read from its ``schema.json`` without loading anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > 64 << 20:
                return None
            schema = json.loads(archive.read(info))
        name = f"{schema['__module__']}.{schema['__class__']}"
        if schema["__class__"] == "Pipeline":
            steps = schema["content"]["content"]["steps"]["content"]
            name += "(" + ", ".join(str(step["content"][1]["__class__"]) for step in steps) + ")"
        return name
    except Exception:  # noqa: BLE001 - best effort: the architecture is informative, not judged
        return None


def _model_name_version(location: str, model_dir: Path, mlmodel: Mapping[str, Any]) -> tuple[str, str | None]:
    if location.startswith("models:/"):
        parts = location[len("models:/") :].strip("/").split("/")
        if len(parts) == 2 and parts[1].isdigit():
            return parts[0], parts[1]
    name = mlmodel.get("name") or mlmodel.get("artifact_path") or model_dir.name or "model"
    version = mlmodel.get("model_id") or mlmodel.get("model_uuid")
    return str(name), str(version) if version else None


def describe_model(location: str, model_path: Path) -> ModelInfo:
    """Hash every file of the model and read its MLmodel metadata."""
    files = file_manifest(model_path)
    if model_path.is_file():
        digest, model_dir = files[0].sha256, model_path.parent
        mlmodel: dict[str, Any] = {}
    else:
        digest, model_dir = manifest_digest(files), model_path
        mlmodel = _read_mlmodel(model_path)
    name, version = _model_name_version(location, model_path if model_path.is_dir() else model_dir, mlmodel)
    if model_path.is_file() and not location.startswith("models:/"):
        name = model_path.name
    architecture = None
    for entry in files:
        if entry.path.endswith(".skops"):
            architecture = _skops_architecture(model_path / entry.path if model_path.is_dir() else model_path)
            if architecture:
                break
    return ModelInfo(name=name, version=version, digest=digest, files=files, mlmodel=mlmodel, architecture=architecture)


# --- vulnerabilities ------------------------------------------------------------------------------


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
    return sorted(merged, key=lambda v: (SEVERITIES.index(v.severity), v.package, v.id))


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


# --- the BOM --------------------------------------------------------------------------------------


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _model_properties(model: ModelInfo, package_source: str | None) -> list[tuple[str, str]]:
    props: list[tuple[str, str]] = [
        ("mlsecops:digest-method", "sha256 of the file manifest (one '<sha256>  <path>' line per file, sorted)"),
        ("mlsecops:files", str(len(model.files))),
    ]
    for key in ("model_uuid", "model_id", "run_id", "artifact_path", "mlflow_version", "utc_time_created", "model_size_bytes"):
        value = _scalar(model.mlmodel.get(key))
        if value:
            props.append((f"mlflow:{key}", value))
    flavors = model.mlmodel.get("flavors")
    if isinstance(flavors, dict):
        props.append(("mlflow:flavors", ",".join(sorted(flavors))))
        for flavor, config in sorted(flavors.items()):
            for key, value in sorted(dict(config or {}).items()) if isinstance(config, dict) else ():
                text = _scalar(value)
                if text:
                    props.append((f"mlflow:flavor:{flavor}:{key}", text))
    return props


def _model_card(
    model: ModelInfo, datasets: Sequence[tuple[str, DatasetRef]], metrics: Mapping[str, float] | None
) -> dict[str, Any]:
    raw_flavors = model.mlmodel.get("flavors")
    flavors: dict[str, Any] = raw_flavors if isinstance(raw_flavors, dict) else {}
    params: dict[str, Any] = {}
    metadata = model.mlmodel.get("metadata")
    task = metadata.get("task") if isinstance(metadata, dict) else None
    for config in flavors.values():
        if task is None and isinstance(config, dict) and config.get("task"):
            task = config["task"]
    if task:
        params["task"] = str(task)
    families = [name for name in flavors if name != "python_function"]
    if families:
        params["architectureFamily"] = ", ".join(families)
    if model.architecture:
        params["modelArchitecture"] = model.architecture
    if datasets:
        params["datasets"] = [{"ref": ref} for ref, _ in datasets]
    signature = model.mlmodel.get("signature")
    if isinstance(signature, dict):
        for key, target in (("inputs", "inputs"), ("outputs", "outputs")):
            spec = signature.get(key)
            if isinstance(spec, str) and spec.strip():
                params[target] = [{"format": "tensor" if '"tensor-spec"' in spec or "'tensor-spec'" in spec else "tabular"}]
    card: dict[str, Any] = {"bom-ref": "model-card"}
    if params:
        card["modelParameters"] = params
    if metrics:
        performance = []
        for key, value in metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"model_metrics[{key!r}] = {value!r} is not a number") from exc
            performance.append({"type": str(key), "value": repr(number)})
        card["quantitativeAnalysis"] = {"performanceMetrics": performance}
    return card


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def build_bom(
    model: ModelInfo,
    packages: PackageList | None,
    datasets: Sequence[DatasetRef],
    vulnerabilities: Sequence[Vulnerability],
    *,
    model_metrics: Mapping[str, float] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 BOM as a JSON document (built with cyclonedx-python-lib, modelCard added)."""
    import warnings

    from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.vulnerability import (
        BomTarget,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )
    from cyclonedx.model.vulnerability import Vulnerability as CdxVulnerability
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    from airflow_mlsecops.gates.base import tool_versions

    def sha256(content: str) -> list[HashType]:
        return [HashType(alg=HashAlgorithm.SHA_256, content=content)]

    bom = Bom()
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="airflow-mlsecops", version=tool_versions()["airflow-mlsecops"])
    )
    bom.metadata.properties.add(Property(name="mlsecops:package-source", value=packages.source if packages else "none"))

    model_component = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=MODEL_REF,
        name=model.name,
        version=model.version,
        hashes=sha256(model.digest),
        properties=[Property(name=k, value=v) for k, v in _model_properties(model, packages.source if packages else None)],
        components=[
            Component(type=ComponentType.FILE, bom_ref=f"model-file:{f.path}", name=f.path, hashes=sha256(f.sha256))
            for f in model.files
        ],
    )
    bom.components.add(model_component)

    data_refs: list[tuple[str, DatasetRef]] = []
    for index, ds in enumerate(datasets):
        ref = f"data:{index}:{ds.name}"
        references = []
        if ds.uri:
            references.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(ds.uri)))
        bom.components.add(
            Component(
                type=ComponentType.DATA, bom_ref=ref, name=ds.name, hashes=sha256(ds.sha256), external_references=references
            )
        )
        data_refs.append((ref, ds))

    libraries: dict[str, Component] = {}
    for pkg in packages.packages if packages else ():
        if pkg.purl in libraries:
            continue
        props = [Property(name="mlsecops:requirement", value=pkg.requirement)] if pkg.requirement else []
        libraries[pkg.purl] = Component(
            type=ComponentType.LIBRARY,
            bom_ref=pkg.purl,
            name=pkg.name,
            version=pkg.version,
            purl=PackageURL(type="pypi", name=normalize_name(pkg.name), version=pkg.version),
            properties=props,
        )
    for component in libraries.values():
        bom.components.add(component)
    bom.register_dependency(model_component, libraries.values())

    severity_enum = {s.value: s for s in VulnerabilitySeverity}
    for vuln in vulnerabilities:
        source = VulnerabilitySource(name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{vuln.id}"))
        bom.vulnerabilities.add(
            CdxVulnerability(
                bom_ref=f"vulnerability:{vuln.id}:{vuln.purl}",
                id=vuln.id,
                source=source,
                references=[
                    VulnerabilityReference(id=alias, source=VulnerabilitySource(name="OSV"))
                    for alias in sorted(vuln.aliases - {vuln.id})
                ],
                ratings=[VulnerabilityRating(severity=severity_enum[vuln.severity], justification=vuln.severity_source)],
                description=vuln.summary or None,
                recommendation=f"upgrade {vuln.package} to {vuln.fixed[0]} or later" if vuln.fixed else None,
                affects=[BomTarget(ref=vuln.purl)],
            )
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cyclonedx warns about the metadata component we do not set
        document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    card = _model_card(model, data_refs, model_metrics)
    if model_card:
        card = _deep_merge(card, model_card)
    for component in document.get("components", []):
        if component.get("bom-ref") == MODEL_REF:
            component["modelCard"] = card
        elif component.get("type") == "data":
            component["data"] = [{"type": "dataset", "name": component["name"]}]
    return document


def validate_bom(document: Mapping[str, Any]) -> None:
    """Validate against the CycloneDX 1.6 JSON schema; :class:`GateError` lists what is wrong."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document), all_errors=True)
    if errors is None:
        return
    problems = []
    for error in list(errors)[:5]:
        detail = error.data
        where = "/".join(str(p) for p in getattr(detail, "absolute_path", ())) or "(root)"
        problems.append(f"{where}: {getattr(detail, 'message', detail)}")
    raise GateError("the BOM does not validate against CycloneDX 1.6: " + "; ".join(problems))


# --- the gate -------------------------------------------------------------------------------------


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


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
    store: MLflowEvidenceStore | None = None,
) -> GateOutcome:
    """Write the ML-BOM of ``model`` and check its Python packages for known vulnerabilities.

    :param model: the model: an MLflow model directory (or a single model file), ``s3://``,
        ``runs:/`` or ``models:/`` (fetched with :func:`airflow_mlsecops.io.artifacts.fetch`).
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
    :param store: the MLflow store to fetch ``runs:/``/``models:/`` URIs from.
    """
    policy: dict[str, Any] = {
        "fail_on": list(fail_on.split(",")) if isinstance(fail_on, str) else list(fail_on),
        "require_vulnerability_check": require_vulnerability_check,
        "osv_db": str(osv_db) if osv_db else None,
        "online": online,
        "python": python,
        "cyclonedx_spec": "1.6",
    }

    def body() -> Evaluation:
        rejecting = parse_fail_on(fail_on)
        policy["fail_on"] = list(rejecting)
        refs = dataset_refs(datasets)
        from airflow_mlsecops.io.artifacts import fetch, subject_name

        with tempfile.TemporaryDirectory(prefix="mlsecops-sbom-") as tmp:
            local = fetch(str(model), Path(tmp, "model"), store)
            info = describe_model(str(model), local)
            listing = packages_from_python(python) if python else packages_from_model(local) if local.is_dir() else None
        return _evaluate(subject_name(str(model)), info, listing, refs, rejecting, model_metrics, model_card)

    def _evaluate(
        subject: str,
        info: ModelInfo,
        listing: PackageList | None,
        refs: list[DatasetRef],
        rejecting: tuple[str, ...],
        metrics: Mapping[str, float] | None,
        card: Mapping[str, Any] | None,
    ) -> Evaluation:
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

        # vulnerability sources
        sources: list[dict[str, Any]] = []
        found: list[Vulnerability] = []
        performed = False
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
                not_performed_reason.append("online check unavailable (pip-audit is not installed)")
            else:
                found.extend(online_found)
                performed = True
                sources.append({"type": "pip-audit", "available": True, "service": "osv"})
        elif not online:
            not_performed_reason.append("online check not requested")
        vulns = merge_aliases(found) if performed else []

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
                        "high" if require_vulnerability_check else "medium",
                        id="sbom.vulnerability-check-not-performed",
                        message=(
                            f"vulnerability check not performed: {reason}. This is not a clean result"
                            + ("" if require_vulnerability_check else " (require_vulnerability_check=False: warning only)")
                        ),
                    ),
                )
            )

        document = build_bom(info, listing, refs, vulns, model_metrics=metrics, model_card=card)
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
        over_policy = sum(1 for f in blocking if f.id != "sbom.vulnerability-check-not-performed")
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

    return run_gate(
        GATE_NAME,
        body,
        policy=policy,
        warn_only=warn_only,
        distributions=("cyclonedx-python-lib", "packaging", *(("pip-audit",) if online else ())),
        context=context,
    )
