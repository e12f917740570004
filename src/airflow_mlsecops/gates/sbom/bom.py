"""The CycloneDX 1.6 ML-BOM, built with cyclonedx-python-lib (:func:`build_bom`) and schema-checked (:func:`validate_bom`).

The model is a ``machine-learning-model`` component (its files nested ``file`` components, its
``modelCard`` added to the JSON because cyclonedx-python-lib cannot model it), each training data
set a ``data`` component, each package a ``library`` component with a ``pkg:pypi`` purl, and the
vulnerabilities found the BOM's ``vulnerabilities`` section.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.sbom.datasets import DatasetRef
from airflow_mlsecops.gates.sbom.model_card import ModelInfo, build_model_card, deep_merge
from airflow_mlsecops.gates.sbom.osv import normalize_name
from airflow_mlsecops.gates.sbom.packages import PackageList
from airflow_mlsecops.gates.sbom.vulnerabilities import Vulnerability

BOM_FILE = "bom.cdx.json"
MODEL_REF = "model"


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
    card = build_model_card(model, data_refs, model_metrics)
    if model_card:
        card = deep_merge(card, model_card)
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
