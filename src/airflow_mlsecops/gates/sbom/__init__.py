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

The rules are in :mod:`airflow_mlsecops.gates.sbom.gate`; the parts: ``packages`` (where the package
list comes from), ``model_card`` (the model and its CycloneDX ``modelCard``), ``bom`` (building and
validating the BOM), ``vulnerabilities`` and ``osv`` (the check, and the offline OSV reader).
"""

from airflow_mlsecops.gates.sbom.bom import BOM_FILE, MODEL_REF, build_bom, validate_bom
from airflow_mlsecops.gates.sbom.datasets import DatasetRef, dataset_refs
from airflow_mlsecops.gates.sbom.gate import (
    DEFAULT_FAIL_ON,
    GATE_NAME,
    SEVERITIES,
    VULNERABILITIES_FILE,
    build_and_check_sbom,
    evaluate_sbom,
    inputs_unavailable,
    parse_fail_on,
    sbom_distributions,
    sbom_policy,
)
from airflow_mlsecops.gates.sbom.model_card import ModelInfo, describe_model
from airflow_mlsecops.gates.sbom.packages import (
    PYTHON_TIMEOUT_SECONDS,
    Package,
    PackageList,
    packages_from_model,
    packages_from_python,
    parse_requirements,
)
from airflow_mlsecops.gates.sbom.vulnerabilities import (
    ONLINE_TIMEOUT_SECONDS,
    Vulnerability,
    VulnerabilityCheck,
    check_vulnerabilities,
    merge_aliases,
)

__all__ = [
    "BOM_FILE",
    "DEFAULT_FAIL_ON",
    "GATE_NAME",
    "MODEL_REF",
    "ONLINE_TIMEOUT_SECONDS",
    "PYTHON_TIMEOUT_SECONDS",
    "SEVERITIES",
    "VULNERABILITIES_FILE",
    "DatasetRef",
    "ModelInfo",
    "Package",
    "PackageList",
    "Vulnerability",
    "VulnerabilityCheck",
    "build_and_check_sbom",
    "build_bom",
    "check_vulnerabilities",
    "dataset_refs",
    "describe_model",
    "evaluate_sbom",
    "merge_aliases",
    "packages_from_model",
    "packages_from_python",
    "parse_fail_on",
    "parse_requirements",
    "sbom_distributions",
    "inputs_unavailable",
    "sbom_policy",
    "validate_bom",
]
