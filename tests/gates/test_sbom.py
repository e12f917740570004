"""The SBOM gate on a real MLflow scikit-learn model, with OSV databases generated at test time."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from airflow_mlsecops.evidence.digest import sha256_file, sha256_path
from airflow_mlsecops.evidence.models import GateResult, Severity, Verdict
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.sbom import (
    BOM_FILE,
    DEFAULT_FAIL_ON,
    VULNERABILITIES_FILE,
    DatasetRef,
    build_and_check_sbom,
    evaluate_sbom,
    parse_requirements,
)
from airflow_mlsecops.gates.sbom.osv import OSVDatabase, cvss3_base_score, range_affects
from tests.deep_paths import hide_beyond_path_max
from tests.gates.osv_fixtures import CVSS_CRITICAL, CVSS_MEDIUM, advisory, ecosystem_range, write_osv_db, write_osv_zip

TRAIN_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
EVAL_SHA = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow scikit-learn model directory (skops format, explicit pinned requirements)."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(60, 3)), columns=["age", "income", "debt"])
    y = (x["income"] > x["debt"]).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    path = tmp_path_factory.mktemp("models") / "credit-model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        serialization_format="skops",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"],
        signature=infer_signature(x, model.predict(x)),
        metadata={"task": "classification"},
    )
    return path


@pytest.fixture(scope="module")
def sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _next_patch(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}.{v.micro + 1}"


def _bom(outcome) -> dict:
    return json.loads(outcome.files[BOM_FILE])


def _component(bom: dict, kind: str) -> list[dict]:
    return [c for c in bom["components"] if c["type"] == kind]


def _ids(outcome) -> list[str]:
    return [f.id for f in outcome.result.findings]


def test_bom_of_real_mlflow_model_validates_and_describes_model_data_and_libraries(
    model_dir: Path, tmp_path: Path, sklearn_version: str
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    db = write_osv_db(tmp_path / "osv")
    outcome = build_and_check_sbom(
        str(model_dir),
        osv_db=str(db),
        datasets=[
            DatasetRef("train.csv", TRAIN_SHA, uri="s3://bucket/data/train.csv"),
            {"name": "/data/eval.csv", "digest": {"sha256": EVAL_SHA}},
        ],
        model_metrics={"accuracy": 0.91, "roc_auc": 0.95},
    )
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert outcome.error is None
    raw = outcome.files[BOM_FILE].decode("utf-8")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(raw) is None
    bom = json.loads(raw)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"

    (model,) = _component(bom, "machine-learning-model")
    digest = sha256_path(model_dir)
    assert model["hashes"] == [{"alg": "SHA-256", "content": digest}]
    files = {c["name"]: c["hashes"][0]["content"] for c in model["components"]}
    assert set(files) == {"MLmodel", "conda.yaml", "model.skops", "python_env.yaml", "requirements.txt"}
    assert all(files[name] == sha256_file(model_dir / name) for name in files)
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["mlflow:flavor:sklearn:sklearn_version"] == sklearn_version
    assert model["version"] == props["mlflow:model_uuid"]

    card = model["modelCard"]
    params = card["modelParameters"]
    assert params["task"] == "classification"
    assert params["architectureFamily"] == "sklearn"
    assert params["modelArchitecture"] == "sklearn.pipeline.Pipeline(StandardScaler, LogisticRegression)"
    assert params["inputs"] == [{"format": "tabular"}]
    data = _component(bom, "data")
    assert sorted(d["ref"] for d in params["datasets"]) == sorted(d["bom-ref"] for d in data)
    metrics = {m["type"]: float(m["value"]) for m in card["quantitativeAnalysis"]["performanceMetrics"]}
    assert metrics == {"accuracy": 0.91, "roc_auc": 0.95}

    by_name = {d["name"]: d for d in data}
    assert by_name["train.csv"]["hashes"] == [{"alg": "SHA-256", "content": TRAIN_SHA}]
    assert by_name["train.csv"]["externalReferences"] == [{"type": "distribution", "url": "s3://bucket/data/train.csv"}]
    assert by_name["/data/eval.csv"]["hashes"][0]["content"] == EVAL_SHA

    purls = {c["purl"] for c in _component(bom, "library")}
    assert f"pkg:pypi/scikit-learn@{sklearn_version}" in purls
    assert any(p.startswith("pkg:pypi/pandas@") for p in purls) and any(p.startswith("pkg:pypi/mlflow@") for p in purls)
    depends = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert f"pkg:pypi/scikit-learn@{sklearn_version}" in depends["model"]

    result = outcome.result
    assert [(s.name, s.sha256) for s in result.subjects] == [(str(model_dir.absolute()), digest)]
    assert result.metrics["packages"] == 3 and result.metrics["vulnerabilities_checked"] == 3
    assert result.metrics["vulnerabilities"] == 0 and result.metrics["components"] == 6
    assert result.details["package_source"] == "requirements.txt"
    report = json.loads(outcome.files[VULNERABILITIES_FILE])
    assert report["checked"] is True and report["vulnerabilities"] == []
    assert report["sources"][0]["type"] == "osv-offline" and report["sources"][0]["pypi_advisories"] == 2
    assert report["sources"][0]["withdrawn"] == 1
    assert result.policy["fail_on"] == list(DEFAULT_FAIL_ON)


def test_advisory_in_range_fails_naming_the_id_aliases_and_fixed_version(
    model_dir: Path, tmp_path: Path, sklearn_version: str
) -> None:
    fixed = _next_patch(sklearn_version)
    db = write_osv_db(
        tmp_path / "osv",
        [
            advisory(
                "GHSA-2x9q-7hmq-mq7v",
                "scikit-learn",
                ranges=[ecosystem_range(("introduced", "0.20"), ("fixed", fixed))],
                severity="HIGH",
                aliases=["CVE-2026-1234"],
                summary="Deserialisation of untrusted data",
            )
        ],
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(db))
    assert outcome.verdict is Verdict.FAILED
    (finding,) = [f for f in outcome.result.findings if f.id.startswith("sbom.vulnerability.")]
    assert finding.id == "sbom.vulnerability.GHSA-2x9q-7hmq-mq7v"
    assert finding.location == f"pkg:pypi/scikit-learn@{sklearn_version}"
    assert finding.severity is Severity.HIGH and not finding.passed
    assert f"fixed in {fixed}" in finding.message and "CVE-2026-1234" in finding.message
    assert finding.atlas == ("AML.T0010",) and finding.owasp_ml == ("ML06:2023",)
    assert outcome.result.metrics["vulnerabilities_high"] == 1
    report = json.loads(outcome.files[VULNERABILITIES_FILE])
    assert report["vulnerabilities"][0]["fixed_versions"] == [fixed]
    assert report["vulnerabilities"][0]["matched_by"] == "range"
    (vuln,) = _bom(outcome)["vulnerabilities"]
    assert vuln["id"] == "GHSA-2x9q-7hmq-mq7v" and vuln["affects"] == [{"ref": finding.location}]
    assert vuln["ratings"][0]["severity"] == "high"
    assert outcome.verdict is Verdict.FAILED

    warned = build_and_check_sbom(str(model_dir), osv_db=str(db), warn_only=True)
    assert warned.verdict is Verdict.WARNED


def test_advisory_outside_the_range_passes(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    later = _next_patch(sklearn_version)
    db = write_osv_db(
        tmp_path / "osv",
        [
            # fixed exactly in the installed version: not affected (fixed is exclusive)
            advisory(
                "GHSA-fixd-0000-0001", "scikit-learn", ranges=[ecosystem_range(("introduced", "0"), ("fixed", sklearn_version))]
            ),
            # introduced after the installed version
            advisory("GHSA-late-0000-0002", "scikit-learn", ranges=[ecosystem_range(("introduced", later))], severity="CRITICAL"),
        ],
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(db))
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert outcome.result.metrics["vulnerabilities"] == 0 and outcome.result.metrics["vulnerabilities_checked"] == 3


def test_explicit_versions_list(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    listed = write_osv_db(
        tmp_path / "listed", [advisory("PYSEC-2026-7", "scikit-learn", versions=["0.24.0", sklearn_version], severity="CRITICAL")]
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(listed))
    assert outcome.verdict is Verdict.FAILED
    assert "sbom.vulnerability.PYSEC-2026-7" in _ids(outcome)
    assert json.loads(outcome.files[VULNERABILITIES_FILE])["vulnerabilities"][0]["matched_by"] == "versions"

    other = write_osv_db(tmp_path / "other", [advisory("PYSEC-2026-8", "scikit-learn", versions=["0.24.0"], severity="CRITICAL")])
    assert build_and_check_sbom(str(model_dir), osv_db=str(other)).verdict is Verdict.PASSED


def test_last_affected_is_inclusive(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    at = write_osv_db(
        tmp_path / "at",
        [
            advisory(
                "GHSA-last-0000-0001",
                "scikit-learn",
                ranges=[ecosystem_range(("introduced", "0"), ("last_affected", sklearn_version))],
            )
        ],
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(at))
    assert outcome.verdict is Verdict.FAILED  # no rating: "unknown", rejected by default (fail closed)
    (finding,) = [f for f in outcome.result.findings if f.id == "sbom.vulnerability.GHSA-last-0000-0001"]
    assert "severity unknown" in finding.message and "no fixed version known" in finding.message

    below = write_osv_db(
        tmp_path / "below",
        [
            advisory(
                "GHSA-last-0000-0002", "scikit-learn", ranges=[ecosystem_range(("introduced", "0"), ("last_affected", "0.24.2"))]
            )
        ],
    )
    assert build_and_check_sbom(str(model_dir), osv_db=str(below)).verdict is Verdict.PASSED


def test_package_names_are_normalised(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    db = write_osv_db(
        tmp_path / "osv",
        [advisory("GHSA-norm-0000-0001", "Scikit_Learn", versions=[sklearn_version], severity="CRITICAL")],
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(db))
    assert outcome.verdict is Verdict.FAILED
    (finding,) = [f for f in outcome.result.findings if f.id == "sbom.vulnerability.GHSA-norm-0000-0001"]
    assert finding.severity is Severity.CRITICAL and finding.location == f"pkg:pypi/scikit-learn@{sklearn_version}"


def test_severity_policy_reports_what_it_tolerates(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    low = write_osv_db(
        tmp_path / "low", [advisory("GHSA-lowl-0000-0001", "scikit-learn", versions=[sklearn_version], severity="LOW")]
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(low), fail_on=["critical", "high"])
    assert outcome.verdict is Verdict.PASSED
    (finding,) = [f for f in outcome.result.findings if f.id == "sbom.vulnerability.GHSA-lowl-0000-0001"]
    assert finding.severity is Severity.LOW and "tolerated by policy" in finding.message
    assert outcome.result.metrics["vulnerabilities_low"] == 1
    assert build_and_check_sbom(str(model_dir), osv_db=str(low), fail_on="critical,high,low").verdict is Verdict.FAILED

    # severities derived from CVSS v3 vectors; the most serious rating wins
    cvss = write_osv_db(
        tmp_path / "cvss",
        [
            advisory("PYSEC-2026-11", "scikit-learn", versions=[sklearn_version], cvss=CVSS_CRITICAL),
            advisory("PYSEC-2026-12", "pandas", ranges=[ecosystem_range(("introduced", "0"))], cvss=CVSS_MEDIUM, severity="LOW"),
        ],
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(cvss), fail_on=["high"])
    assert outcome.verdict is Verdict.PASSED  # critical is not in this policy
    report = {v["id"]: v for v in json.loads(outcome.files[VULNERABILITIES_FILE])["vulnerabilities"]}
    assert report["PYSEC-2026-11"]["severity"] == "critical"
    assert report["PYSEC-2026-11"]["severity_source"] == "CVSS v3 base score 9.8"
    assert report["PYSEC-2026-12"]["severity"] == "medium"
    assert build_and_check_sbom(str(model_dir), osv_db=str(cvss)).verdict is Verdict.FAILED

    unrated = write_osv_db(
        tmp_path / "unrated", [advisory("PYSEC-2026-13", "pandas", ranges=[ecosystem_range(("introduced", "0"))])]
    )
    assert build_and_check_sbom(str(model_dir), osv_db=str(unrated)).verdict is Verdict.FAILED
    tolerated = build_and_check_sbom(str(model_dir), osv_db=str(unrated), fail_on=("critical", "high"))
    assert tolerated.verdict is Verdict.PASSED and tolerated.result.metrics["vulnerabilities_unknown"] == 1


def test_aliases_are_reported_once_and_withdrawn_advisories_ignored(
    model_dir: Path, tmp_path: Path, sklearn_version: str
) -> None:
    db = write_osv_db(
        tmp_path / "osv",
        [
            advisory("PYSEC-2026-20", "scikit-learn", versions=[sklearn_version], aliases=["CVE-2026-20", "GHSA-alia-0000-0001"]),
            advisory(
                "GHSA-alia-0000-0001", "scikit-learn", versions=[sklearn_version], aliases=["CVE-2026-20"], severity="MODERATE"
            ),
            advisory(
                "GHSA-gone-0000-0001", "pandas", ranges=[ecosystem_range(("introduced", "0"))], withdrawn="2026-01-02T00:00:00Z"
            ),
        ],
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(db))
    vulns = [f for f in outcome.result.findings if f.id.startswith("sbom.vulnerability.")]
    assert [f.id for f in vulns] == ["sbom.vulnerability.GHSA-alia-0000-0001"]
    assert "PYSEC-2026-20" in vulns[0].message and vulns[0].severity is Severity.MEDIUM
    assert outcome.verdict is Verdict.PASSED  # the group is rated medium by GitHub


def test_no_database_means_not_performed_never_no_vulnerabilities(model_dir: Path) -> None:
    outcome = build_and_check_sbom(str(model_dir))
    assert outcome.verdict is Verdict.FAILED
    (finding,) = [f for f in outcome.result.findings if f.id == "sbom.vulnerability-check-not-performed"]
    assert finding.message.startswith("vulnerability check not performed") and not finding.passed
    assert "NOT PERFORMED" in outcome.result.summary and "0 vulnerabilities" not in outcome.result.summary
    assert outcome.result.metrics["vulnerabilities_checked"] == 0
    report = json.loads(outcome.files[VULNERABILITIES_FILE])
    assert report["checked"] is False and "no OSV database" in report["not_performed_reason"]
    assert BOM_FILE in outcome.files  # the BOM is still written

    # Not required: a check that did not run is still never a pass. warned (incomplete), exit 0, and
    # the record names what was not performed.
    optional = build_and_check_sbom(str(model_dir), require_vulnerability_check=False)
    assert optional.verdict is Verdict.WARNED
    assert optional.result.warned_reason == "incomplete" and optional.result.incomplete
    assert optional.result.not_performed == ("sbom.vulnerability-check-not-performed",)
    assert optional.result.details["not_performed"] == ["sbom.vulnerability-check-not-performed"]
    (warning,) = [f for f in optional.result.findings if f.id == "sbom.vulnerability-check-not-performed"]
    assert not warning.passed and warning.severity is Severity.LOW and "never passed" in warning.message
    assert "INCOMPLETE, not performed: sbom.vulnerability-check-not-performed" in optional.result.summary
    assert optional.result.metrics["vulnerabilities_checked"] == 0
    assert GateResult.from_dict(optional.result.to_dict()) == optional.result  # the reason survives the record
    # warn_only does not turn an incomplete result into a warn-only one, nor a required check into a pass.
    warn_only = build_and_check_sbom(str(model_dir), require_vulnerability_check=False, warn_only=True)
    assert warn_only.verdict is Verdict.WARNED and warn_only.result.incomplete
    rejected = build_and_check_sbom(str(model_dir), warn_only=True)
    assert rejected.verdict is Verdict.WARNED and rejected.result.warned_reason == "warn-only"
    assert not rejected.result.incomplete  # a warn-only rejection is never an acceptable incomplete result


def test_online_check_without_pip_audit_is_unavailable_and_not_performed(model_dir: Path, tmp_path: Path) -> None:
    try:
        import pip_audit  # noqa: F401

        pytest.skip("pip-audit is installed here; this test covers its absence")
    except ImportError:
        pass
    outcome = build_and_check_sbom(str(model_dir), online=True)
    assert outcome.verdict is Verdict.FAILED
    assert {"sbom.online-check-unavailable", "sbom.vulnerability-check-not-performed"} <= set(_ids(outcome))
    assert "online check unavailable" in " ".join(f.message for f in outcome.result.findings)

    with_db = build_and_check_sbom(str(model_dir), online=True, osv_db=str(write_osv_db(tmp_path / "osv")))
    # The offline check was performed; the online one asked for was not: warned (incomplete), never passed.
    assert with_db.verdict is Verdict.WARNED and with_db.result.not_performed == ("sbom.online-check-unavailable",)
    (unavailable,) = [f for f in with_db.result.findings if f.id == "sbom.online-check-unavailable"]
    assert not unavailable.passed


def test_corrupt_or_empty_database_is_an_error_naming_the_file(model_dir: Path, tmp_path: Path) -> None:
    db = write_osv_db(tmp_path / "osv")
    (db / "PYSEC-2026-99.json").write_text('{"id": "PYSEC-2026-99", "affected": [', encoding="utf-8")
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(db))
    assert outcome.verdict is Verdict.ERROR
    assert "PYSEC-2026-99.json" in outcome.result.summary and "not valid JSON" in outcome.result.summary
    assert outcome.files == {}

    (db / "PYSEC-2026-99.json").write_text('{"summary": "no id"}', encoding="utf-8")
    assert "no 'id'" in build_and_check_sbom(str(model_dir), osv_db=str(db)).result.summary

    empty = tmp_path / "empty"
    empty.mkdir()
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(empty))
    assert outcome.verdict is Verdict.ERROR and "holds no advisory" in outcome.result.summary
    missing = build_and_check_sbom(str(model_dir), osv_db=str(tmp_path / "nowhere"))
    assert missing.verdict is Verdict.ERROR and "does not exist" in missing.result.summary


def test_the_osv_zip_is_read_as_downloaded(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    archive = write_osv_zip(
        tmp_path / "all.zip", [advisory("GHSA-zipz-0000-0001", "scikit-learn", versions=[sklearn_version], severity="HIGH")]
    )
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(archive))
    assert outcome.verdict is Verdict.FAILED
    assert "sbom.vulnerability.GHSA-zipz-0000-0001" in _ids(outcome)
    source = json.loads(outcome.files[VULNERABILITIES_FILE])["sources"][0]
    assert source["sha256"] == sha256_file(archive) and source["files"] == 5

    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:200] + b"\0" * 10 + archive.read_bytes()[-22:])
    assert build_and_check_sbom(str(model_dir), osv_db=str(broken)).verdict is Verdict.ERROR


def test_an_invalid_bom_is_an_error(model_dir: Path, tmp_path: Path) -> None:
    db = write_osv_db(tmp_path / "osv")
    outcome = build_and_check_sbom(str(model_dir), osv_db=str(db), model_card={"considerations": {"bogus": 1}})
    assert outcome.verdict is Verdict.ERROR
    assert "does not validate against CycloneDX 1.6" in outcome.result.summary and "bogus" in outcome.result.summary
    valid = build_and_check_sbom(str(model_dir), osv_db=str(db), model_card={"considerations": {"useCases": ["credit scoring"]}})
    assert valid.verdict is Verdict.PASSED
    (model,) = _component(_bom(valid), "machine-learning-model")
    assert model["modelCard"]["considerations"] == {"useCases": ["credit scoring"]}
    assert model["modelCard"]["modelParameters"]["task"] == "classification"  # merged, not replaced


def test_packages_of_a_python_interpreter(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    db = write_osv_db(
        tmp_path / "osv", [advisory("GHSA-venv-0000-0001", "scikit_learn", versions=[sklearn_version], severity="HIGH")]
    )
    outcome = build_and_check_sbom(str(model_dir), python=sys.executable, osv_db=str(db))
    assert outcome.verdict is Verdict.FAILED
    assert outcome.result.details["package_source"].startswith("python:")
    assert outcome.result.metrics["packages"] > 20  # the whole environment, not the three pins
    assert outcome.result.metrics["vulnerabilities_checked"] == outcome.result.metrics["packages"]
    assert "sbom.vulnerability.GHSA-venv-0000-0001" in _ids(outcome)

    gone = build_and_check_sbom(str(model_dir), python=str(tmp_path / "no-python"), osv_db=str(db))
    assert gone.verdict is Verdict.ERROR and "not found" in gone.result.summary


def test_unpinned_requirements_are_medium_findings(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "requirements.txt").write_text(
        f"# pinned by hand\nscikit-learn=={sklearn_version} \\\n    --hash=sha256:{'0' * 64}\n"
        "numpy>=1.24\n-e git+https://example.invalid/repo.git#egg=thing\n--extra-index-url https://example.invalid/simple\n",
        encoding="utf-8",
    )
    db = write_osv_db(tmp_path / "osv")
    outcome = build_and_check_sbom(str(copy), osv_db=str(db))
    # medium is not in the default policy, but two requirements could not be checked: warned (incomplete)
    assert outcome.verdict is Verdict.WARNED and outcome.result.not_performed == ("sbom.unchecked-requirement",)
    unchecked = [f for f in outcome.result.findings if f.id == "sbom.unchecked-requirement"]
    assert len(unchecked) == 2 and all(f.severity is Severity.MEDIUM and not f.passed for f in unchecked)
    assert any("numpy>=1.24" in f.message for f in unchecked)
    assert outcome.result.metrics["vulnerabilities_checked"] == 1 and outcome.result.metrics["packages_unchecked"] == 2
    bom = _bom(outcome)
    assert {c["purl"] for c in _component(bom, "library")} == {f"pkg:pypi/scikit-learn@{sklearn_version}", "pkg:pypi/numpy"}
    assert build_and_check_sbom(str(copy), osv_db=str(db), fail_on="critical,high,medium").verdict is Verdict.FAILED

    (copy / "requirements.txt").write_text("numpy\n", encoding="utf-8")
    nothing = build_and_check_sbom(str(copy), osv_db=str(db))
    assert nothing.verdict is Verdict.FAILED and "no pinned package" in nothing.result.summary + " ".join(
        f.message for f in nothing.result.findings
    )


def test_bad_inputs_are_error_verdicts(model_dir: Path, tmp_path: Path) -> None:
    db = write_osv_db(tmp_path / "osv")
    bad_policy = build_and_check_sbom(str(model_dir), osv_db=str(db), fail_on=["severe"])
    assert bad_policy.verdict is Verdict.ERROR and "unknown severities" in bad_policy.result.summary
    bad_data = build_and_check_sbom(str(model_dir), osv_db=str(db), datasets=[{"name": "x.csv", "sha256": "nothex"}])
    assert bad_data.verdict is Verdict.ERROR and "64 hex digits" in bad_data.result.summary
    missing = build_and_check_sbom(str(tmp_path / "absent"), osv_db=str(db))
    assert missing.verdict is Verdict.ERROR and "does not exist" in missing.result.summary


def test_dataset_refs_accept_cli_and_provenance_forms() -> None:
    ref = DatasetRef.parse(f"s3://bucket/train.csv={TRAIN_SHA.upper()}")
    assert (ref.name, ref.sha256, ref.uri) == ("s3://bucket/train.csv", TRAIN_SHA, "s3://bucket/train.csv")
    subject = DatasetRef.from_value({"name": "/data/train.csv", "digest": {"sha256": TRAIN_SHA}})
    assert subject == DatasetRef("/data/train.csv", TRAIN_SHA)
    with pytest.raises(ConfigurationError):
        DatasetRef.parse("train.csv")


def test_requirement_parsing() -> None:
    packages, unchecked = parse_requirements(
        "mlflow==3.1.0\nNumPy===2.0.0\npandas==2.*\ntorch @ https://example.invalid/torch.whl\nnot a requirement!\n-r base.txt\n"
    )
    assert [(p.name, p.version) for p in packages] == [("mlflow", "3.1.0"), ("NumPy", "2.0.0"), ("pandas", None), ("torch", None)]
    assert [line for line, _ in unchecked] == [
        "pandas==2.*",
        "torch @ https://example.invalid/torch.whl",
        "not a requirement!",
        "-r base.txt",
    ]
    assert packages[1].purl == "pkg:pypi/numpy@2.0.0"


def test_cvss_and_range_semantics() -> None:
    assert cvss3_base_score(CVSS_CRITICAL) == 9.8
    assert cvss3_base_score(CVSS_MEDIUM) == 5.4
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H") == 9.9
    assert cvss3_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") is None
    assert cvss3_base_score("CVSS:3.1/AV:X") is None
    events = [{"introduced": "2.0"}, {"fixed": "2.3"}, {"introduced": "0"}, {"fixed": "1.5"}, {"introduced": "3.0"}]
    assert [range_affects(Version(v), events)[0] for v in ("1.0", "1.5", "2.1", "2.3", "3.0rc1", "3.0", "9")] == [
        True, False, True, False, False, True, True,
    ]  # fmt: skip
    limited = [{"introduced": "0"}, {"limit": "2.0"}]
    assert range_affects(Version("1.9"), limited)[0] and not range_affects(Version("2.0"), limited)[0]
    hit, why = range_affects(Version("1.0"), [{"introduced": "0"}, {"fixed": "not-a-version!"}])
    assert hit and "not a PEP 440 version" in (why or "")  # fail closed


def test_database_filter_and_counts(tmp_path: Path) -> None:
    db_path = write_osv_db(tmp_path / "osv", [advisory("GHSA-cnt-0000-0001", "Flask", versions=["2.0.0"])])
    db = OSVDatabase.load(db_path, packages=["flask"])
    assert db.files == 5 and db.advisories == 3 and db.withdrawn == 1
    assert set(db.by_package) == {"flask"}
    assert [m.advisory.id for m in db.query("FLASK", "2.0.0")] == ["GHSA-cnt-0000-0001"]
    assert db.query("flask", "2.0.1") == []


def test_a_database_folder_that_cannot_be_listed_is_an_error_not_fewer_advisories(tmp_path: Path) -> None:
    # An advisory in a folder os.walk cannot list (beyond PATH_MAX here; for a reader that is not root,
    # a folder it may not read) would otherwise be skipped: a vulnerable package would pass unreported.
    db_path = write_osv_db(tmp_path / "osv", [advisory("GHSA-cnt-0000-0001", "Flask", versions=["2.0.0"])])
    hide_beyond_path_max(Path(db_path), "GHSA-hid-0000-0001.json", json.dumps(advisory("GHSA-hid-0000-0001", "Flask")).encode())
    with pytest.raises(GateError, match=f"cannot be read: {os.strerror(errno.ENAMETOOLONG)}$"):
        OSVDatabase.load(db_path)


def test_registered_model_fetched_by_the_caller_is_named_by_the_registry(model_dir: Path, home, tmp_path: Path) -> None:
    import mlflow.sklearn

    from airflow_mlsecops.io.artifacts import fetch, subject_name
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.registration import create_model_version

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    # Logged and registered through the store's client: no process-global MLflow URI or active run.
    model = mlflow.sklearn.load_model(str(model_dir))
    model_id = store.log_model(
        store.create_run(experiment_name="training", run_name="train"),
        lambda path, mlflow_model: mlflow.sklearn.save_model(
            model,
            str(path),
            mlflow_model=mlflow_model,
            serialization_format="skops",
            skops_trusted_types=["sklearn.pipeline.Pipeline"],
            pip_requirements=str(model_dir / "requirements.txt"),
        ),
    )
    assert create_model_version(store, f"models:/{model_id}", "credit-scorer") == "1"
    location = "models:/credit-scorer/1"
    local = fetch(location, tmp_path / "model", store)
    outcome = build_and_check_sbom(str(local), subject=subject_name(location), osv_db=str(write_osv_db(tmp_path / "osv")))
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    (model,) = _component(_bom(outcome), "machine-learning-model")
    assert (model["name"], model["version"]) == ("credit-scorer", "1")
    (subject,) = outcome.result.subjects
    assert subject.name == "models:/credit-scorer/1"
    assert subject.sha256 == sha256_path(store.download_uri("models:/credit-scorer/1", tmp_path / "again"))


def test_the_engine_reads_local_models_only(model_dir: Path, tmp_path: Path) -> None:
    db = str(write_osv_db(tmp_path / "osv"))
    for uri in ("models:/credit-scorer/1", "runs:/0123/model", "s3://bucket/model/"):
        outcome = build_and_check_sbom(uri, osv_db=db)
        assert outcome.verdict is Verdict.ERROR and "fetch it first" in outcome.result.summary, uri
        assert not outcome.result.subjects and outcome.files == {}
    as_file_uri = build_and_check_sbom(f"file://{model_dir}", osv_db=db)
    assert as_file_uri.verdict is Verdict.PASSED, as_file_uri.result.summary
    assert [s.name for s in as_file_uri.result.subjects] == [str(model_dir.absolute())]


def test_the_evaluation_is_callable_without_the_gate(model_dir: Path, tmp_path: Path, sklearn_version: str) -> None:
    db = write_osv_db(
        tmp_path / "osv",
        [advisory("GHSA-eval-0000-0001", "scikit-learn", versions=[sklearn_version], severity="HIGH")],
    )
    evaluation = evaluate_sbom(model_dir, subject="models:/credit-scorer/7", osv_db=str(db), fail_on="critical")
    assert evaluation.passed  # HIGH is tolerated by fail_on=critical, and still reported
    assert [f.id for f in evaluation.findings] == ["sbom.vulnerability.GHSA-eval-0000-0001"]
    assert [(s.name, s.sha256) for s in evaluation.subjects] == [("models:/credit-scorer/7", sha256_path(model_dir))]
    (model,) = _component(json.loads(evaluation.files[BOM_FILE]), "machine-learning-model")
    assert (model["name"], model["version"]) == ("credit-scorer", "7")
    with pytest.raises(ConfigurationError, match="unknown severities"):
        evaluate_sbom(model_dir, osv_db=str(db), fail_on="severe")
