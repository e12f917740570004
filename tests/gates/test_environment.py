"""The training-environment gate on a real MLflow model and real environments: ``site-packages``
directories of ``*.dist-info`` folders read through :mod:`importlib.metadata`, this interpreter's own
environment, ``pip freeze`` files, and OSV databases in OSV's own format."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.base import GateOutcome
from airflow_mlsecops.gates.environment import (
    BOM_FILE,
    NOT_PERFORMED,
    REPORT_FILE,
    check_training_environment,
    freeze_environment,
    site_packages_environment,
)
from tests.gates.osv_fixtures import advisory, ecosystem_range, write_osv_db

GATE = "training-environment"


def install(
    site: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    modules: Sequence[str] = (),
    top_level: bool = True,
) -> None:
    """Install a distribution the way pip lays it out: a ``*.dist-info`` folder beside its modules."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(meta) + "\n", encoding="utf-8")
    record = [f"{info.name}/METADATA,,"]
    for module in modules:
        (site / module).mkdir(exist_ok=True)
        (site / module / "__init__.py").write_text("", encoding="utf-8")
        record.append(f"{module}/__init__.py,,")
    if top_level:
        (info / "top_level.txt").write_text("".join(f"{m}\n" for m in modules), encoding="utf-8")
    (info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")


VERSIONS = {name: importlib.metadata.version(name) for name in ("mlflow", "scikit-learn", "pandas")}


def save_pinned_model(path: Path) -> Path:
    """A real MLflow sklearn model (skops) at ``path``, declaring exactly what is installed here, as the demo's does."""
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(30, 2))
    mlflow.sklearn.save_model(
        LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)),
        str(path),
        serialization_format="skops",
        pip_requirements=[f"scikit-learn=={VERSIONS['scikit-learn']}", f"pandas=={VERSIONS['pandas']}"],
    )
    return path


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pinned_model(tmp_path_factory.mktemp("env-model") / "model")


@pytest.fixture
def model(saved_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_model, tmp_path / "model"))


def training_site(
    root: Path, *, sklearn: str | None = None, skip: Sequence[str] = (), mlflow_requires_skops: bool = True
) -> Path:
    """A site-packages like the one that trained ``model``: what it declares, and what that pulls in."""
    site = root / "site-packages"
    site.mkdir(parents=True)
    mlflow_requires = ["scikit-learn<2", "pandas<3", *(["skops<1"] if mlflow_requires_skops else [])]
    mlflow_requires.append('boto3; extra == "aws"')  # an extra nobody asked for pulls in nothing
    dists = {
        "mlflow": (VERSIONS["mlflow"], mlflow_requires, ["mlflow"]),
        "scikit-learn": (sklearn or VERSIONS["scikit-learn"], ["numpy>=1.22", "scipy>=1.8"], ["sklearn"]),
        "pandas": (VERSIONS["pandas"], ["numpy>=1.22"], ["pandas"]),
        "skops": ("0.16.0", ["scikit-learn>=1.1"], ["skops"]),
        "numpy": ("2.1.3", [], ["numpy"]),
        "scipy": ("1.14.1", ["numpy<2.3"], ["scipy"]),
    }
    for name, (version, requires, modules) in dists.items():
        if name not in skip:
            install(site, name, version, requires=requires, modules=modules)
    return site


def _ids(outcome: GateOutcome) -> list[str]:
    return [f.id for f in outcome.result.findings]


def _report(outcome: GateOutcome) -> dict:
    return json.loads(outcome.files[REPORT_FILE])


def test_a_clean_training_environment_passes_with_its_bom_and_both_subjects(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path)
    install(site, "requests", "2.31.0", modules=["requests"])  # installed, not needed by the model: fine
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=str(write_osv_db(tmp_path / "osv")))
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert outcome.result.findings == () or all(f.passed for f in outcome.result.findings)

    bom = json.loads(outcome.files[BOM_FILE])
    libraries = {c["name"]: c for c in bom["components"] if c["type"] == "library"}
    assert set(libraries) == {"mlflow", "numpy", "pandas", "requests", "scikit-learn", "scipy", "skops"}
    assert libraries["scikit-learn"]["purl"] == f"pkg:pypi/scikit-learn@{VERSIONS['scikit-learn']}"
    props = {p["name"]: p["value"] for p in bom["metadata"]["properties"]}
    assert props["mlsecops:package-source"] == f"site-packages:{site.absolute()}"

    model_subject, bom_subject = outcome.result.subjects
    (component,) = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    assert model_subject.name == str(model.absolute()) and component["hashes"][0]["content"] == model_subject.sha256
    assert bom_subject == type(bom_subject)(BOM_FILE, hashlib.sha256(outcome.files[BOM_FILE]).hexdigest())

    report = _report(outcome)
    assert report["differences"] == [] and report["vulnerability_check"]["checked"] is True
    # What the model needs, read from its files, and what its declaration pulls in (not boto3: extra "aws").
    assert set(report["comparison"]["needed_modules"]) == {"mlflow", "numpy", "sklearn", "skops"}
    assert "skops" in report["comparison"]["covered_by_declaration"]
    assert "boto3" not in report["comparison"]["covered_by_declaration"]
    assert outcome.result.policy["environment_from_worker"] is False


def test_a_version_the_model_declares_differently_rejects_it(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path, sklearn="1.0.2")
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=str(write_osv_db(tmp_path / "osv")))
    assert outcome.verdict is Verdict.FAILED
    (finding,) = outcome.result.failed_findings
    assert finding.id == f"{GATE}.mismatch.scikit-learn" and finding.severity.value == "high"
    assert finding.location == "pkg:pypi/scikit-learn@1.0.2"
    assert f"declared {VERSIONS['scikit-learn']}, trained with 1.0.2" in finding.message
    (diff,) = _report(outcome)["differences"]
    assert diff == {
        "kind": "mismatch",
        "package": "scikit-learn",
        "declared": f"scikit-learn=={VERSIONS['scikit-learn']}",
        "installed": "1.0.2",
        "reason": f"declared {VERSIONS['scikit-learn']}, trained with 1.0.2",
    }
    assert outcome.result.details["differences"] == [diff] and outcome.result.metrics["mismatch"] == 1.0

    tolerated = check_training_environment(
        str(model), site_packages=str(site), osv_db=str(tmp_path / "osv"), fail_on_mismatch=False
    )
    assert tolerated.verdict is Verdict.PASSED and f"{GATE}.mismatch.scikit-learn" in _ids(tolerated)


def test_a_declared_package_missing_from_the_environment_rejects_it(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path, skip=["pandas"])
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=str(write_osv_db(tmp_path / "osv")))
    assert outcome.verdict is Verdict.FAILED
    assert [f.id for f in outcome.result.failed_findings] == [f"{GATE}.missing.pandas"]
    assert outcome.result.metrics["missing"] == 1.0


def test_a_package_the_model_needs_but_does_not_declare_rejects_it(model: Path, tmp_path: Path) -> None:
    # skops loads the model (MLmodel serialization_format: skops) and nothing declared pulls it in.
    site = training_site(tmp_path, mlflow_requires_skops=False)
    osv = str(write_osv_db(tmp_path / "osv"))
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=osv)
    assert outcome.verdict is Verdict.FAILED
    (finding,) = outcome.result.failed_findings
    assert finding.id == f"{GATE}.undeclared.skops" and finding.location == "pkg:pypi/skops@0.16.0"
    assert "serialization_format=skops" in finding.message
    tolerated = check_training_environment(str(model), site_packages=str(site), osv_db=osv, fail_on_undeclared=False)
    assert tolerated.verdict is Verdict.PASSED and f"{GATE}.undeclared.skops" in _ids(tolerated)


def test_a_module_no_installed_package_provides_is_a_rejection(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path, skip=["numpy"])  # the skops file names numpy
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=str(write_osv_db(tmp_path / "osv")))
    assert outcome.verdict is Verdict.FAILED
    assert [f.id for f in outcome.result.failed_findings] == [f"{GATE}.unprovided.numpy"]


def test_modules_are_found_from_record_files_without_top_level_txt(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path, skip=["skops"])
    install(site, "skops", "0.16.0", modules=["skops"], top_level=False)
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=str(write_osv_db(tmp_path / "osv")))
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert site_packages_environment(site).get("SKOPS").modules == ("skops",)  # type: ignore[union-attr]


def test_a_vulnerable_installed_package_rejects_the_model_even_if_undeclared(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path)
    install(site, "urllib3", "1.26.4", modules=["urllib3"])
    db = write_osv_db(
        tmp_path / "osv",
        [
            advisory(
                "GHSA-envt-0000-0001",
                "urllib3",
                ranges=[ecosystem_range(("introduced", "0"), ("fixed", "1.26.5"))],
                severity="HIGH",
                aliases=["CVE-2021-33503"],
            )
        ],
    )
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=str(db))
    assert outcome.verdict is Verdict.FAILED
    (finding,) = outcome.result.failed_findings
    assert finding.id == f"{GATE}.vulnerability.GHSA-envt-0000-0001" and finding.location == "pkg:pypi/urllib3@1.26.4"
    assert "fixed in 1.26.5" in finding.message
    bom = json.loads(outcome.files[BOM_FILE])
    assert [(v["id"], v["affects"][0]["ref"]) for v in bom["vulnerabilities"]] == [
        ("GHSA-envt-0000-0001", "pkg:pypi/urllib3@1.26.4")
    ]
    tolerated = check_training_environment(str(model), site_packages=str(site), osv_db=str(db), fail_on="critical")
    assert tolerated.verdict is Verdict.PASSED
    assert "tolerated by policy fail_on=critical" in tolerated.result.findings[0].message


def test_no_osv_database_is_not_performed_never_passed(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path)
    required = check_training_environment(str(model), site_packages=str(site))
    assert required.verdict is Verdict.FAILED
    (finding,) = required.result.failed_findings
    assert finding.id == NOT_PERFORMED and finding.severity.value == "high" and "no OSV database" in finding.message
    assert _report(required)["vulnerability_check"]["checked"] is False

    optional = check_training_environment(str(model), site_packages=str(site), require_vulnerability_check=False)
    assert optional.verdict is Verdict.WARNED and optional.verdict is not Verdict.PASSED
    assert optional.result.warned_reason == "incomplete" and optional.result.not_performed == (NOT_PERFORMED,)
    assert optional.result.metrics["vulnerabilities_checked"] == 0.0
    assert "INCOMPLETE" in optional.result.summary


def test_the_running_interpreter_is_the_default_environment(model: Path) -> None:
    # This interpreter installed what the model declares (as the demo's training does): no difference.
    outcome = check_training_environment(str(model), require_vulnerability_check=False)
    assert outcome.verdict is Verdict.WARNED and outcome.result.not_performed == (NOT_PERFORMED,), outcome.result.summary
    assert _report(outcome)["differences"] == []
    assert outcome.result.metrics["installed"] == float(
        len({d.metadata["Name"].lower().replace("_", "-") for d in importlib.metadata.distributions()})
    )
    assert outcome.result.policy["environment_from_worker"] is True


def test_a_freeze_file_is_compared_by_name(model: Path, tmp_path: Path) -> None:
    freeze = tmp_path / "freeze.txt"
    freeze.write_text(
        f"mlflow=={VERSIONS['mlflow']}\nscikit_learn==1.0.2\nskops==0.16.0\nnumpy==2.1.3\n-e git+https://x.invalid/y#egg=y\n",
        encoding="utf-8",
    )
    outcome = check_training_environment(str(model), freeze=str(freeze), require_vulnerability_check=False)
    assert outcome.verdict is Verdict.FAILED
    failed = [f.id for f in outcome.result.failed_findings if f.id != NOT_PERFORMED]
    # numpy and skops are pulled in by mlflow and scikit-learn (dependency metadata borrowed from this
    # interpreter, which has them); sklearn is scikit-learn's module, known from this interpreter too.
    assert failed == [f"{GATE}.mismatch.scikit-learn", f"{GATE}.missing.pandas"]
    assert _report(outcome)["comparison"]["dependency_metadata"] is False
    # Without mlflow and scikit-learn declared nothing pulls numpy or skops in: both are undeclared.
    (model / "requirements.txt").write_text("pandas==2.0.0\n", encoding="utf-8")
    bare = check_training_environment(str(model), freeze=str(freeze), require_vulnerability_check=False)
    undeclared = {f.id for f in bare.result.failed_findings if ".undeclared." in f.id}
    assert undeclared == {f"{GATE}.undeclared.{n}" for n in ("mlflow", "numpy", "scikit-learn", "skops")}
    assert freeze_environment(freeze).unchecked[0][0].startswith("-e git+")


def test_ranges_markers_and_uncomparable_declarations(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path)
    (model / "requirements.txt").write_text(
        f"mlflow>={VERSIONS['mlflow']}\n"  # a range the installed version satisfies: informational
        "pandas<1\n"  # a range it does not: a mismatch
        f"scikit-learn=={VERSIONS['scikit-learn']}\n"
        'pywin32==306; sys_platform == "win32"\n'  # not for this platform: not compared
        "-r other.txt\n",
        encoding="utf-8",
    )
    outcome = check_training_environment(str(model), site_packages=str(site), osv_db=str(write_osv_db(tmp_path / "osv")))
    assert outcome.verdict is Verdict.FAILED
    assert [f.id for f in outcome.result.failed_findings if f.severity.value == "high"] == [f"{GATE}.mismatch.pandas"]
    assert {f"{GATE}.unpinned.mlflow", f"{GATE}.uncomparable"} <= set(_ids(outcome))
    assert not any("pywin32" in i for i in _ids(outcome))
    assert outcome.result.details["not_performed"] == [f"{GATE}.uncomparable"]


def test_a_model_that_declares_nothing_is_rejected(model: Path, tmp_path: Path) -> None:
    (model / "requirements.txt").unlink()
    (model / "conda.yaml").unlink()
    outcome = check_training_environment(
        str(model), site_packages=str(training_site(tmp_path)), osv_db=str(write_osv_db(tmp_path / "osv"))
    )
    assert outcome.verdict is Verdict.FAILED
    failed = [f.id for f in outcome.result.failed_findings]
    assert failed[0] == f"{GATE}.no-declared-requirements" and f"{GATE}.undeclared.scikit-learn" in failed


def test_bad_inputs_are_error_verdicts(model: Path, tmp_path: Path) -> None:
    site = training_site(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    binary = tmp_path / "freeze.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    unpinned = tmp_path / "unpinned.txt"
    unpinned.write_text("scikit-learn>=1\n", encoding="utf-8")
    corrupt = write_osv_db(tmp_path / "osv")
    (corrupt / "BROKEN.json").write_text("{not json", encoding="utf-8")
    cases = {
        "missing model": ("/nonexistent/model", {"site_packages": str(site)}, "does not exist"),
        "a URI": ("models:/credit-risk/1", {"site_packages": str(site)}, "fetch it first"),
        "no site-packages": (str(model), {"site_packages": str(tmp_path / "nope")}, "not a site-packages"),
        "empty site-packages": (str(model), {"site_packages": str(empty)}, "no installed distribution"),
        "binary freeze": (str(model), {"freeze": str(binary)}, "cannot be read"),
        "no pins": (str(model), {"freeze": str(unpinned)}, "not a pip freeze file"),
        "both": (str(model), {"site_packages": str(site), "freeze": str(unpinned)}, "not both"),
        "corrupt OSV": (str(model), {"site_packages": str(site), "osv_db": str(corrupt)}, "BROKEN.json"),
        "bad fail_on": (str(model), {"site_packages": str(site), "fail_on": "severe"}, "unknown severities"),
    }
    for name, (location, options, message) in cases.items():
        outcome = check_training_environment(location, **options)  # type: ignore[arg-type]
        assert outcome.verdict is Verdict.ERROR, name
        assert message in outcome.result.summary, (name, outcome.result.summary)
        assert outcome.files == {} and outcome.error is not None


def test_the_policy_refuses_a_dag_that_weakens_the_gate_and_judges_what_ran(tmp_path: Path) -> None:
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_mlsecops.operators import TrainingEnvironmentGateOperator
    from airflow_mlsecops.policy.airflow_dag import dag_info
    from airflow_mlsecops.policy.engine import evaluate
    from airflow_mlsecops.policy.model import parse_policy
    from airflow_mlsecops.policy.parameters import recorded_arguments

    policy = parse_policy(
        "version: 1\nrules:\n  - name: governed\n    match: {tags: [production]}\n"
        "    thresholds:\n      training-environment: {fail_on: [critical, high]}\n"
    )
    with DAG(dag_id="env", schedule=None, start_date=datetime(2026, 1, 1), tags=["production"]) as dag:
        TrainingEnvironmentGateOperator(task_id="ok", model="m")
        TrainingEnvironmentGateOperator(
            task_id="weak", model="m", fail_on="critical", fail_on_mismatch=False, freeze="/tmp/f.txt"
        )
    messages = [v.message for v in evaluate(policy, dag_info(dag)) if v.kind == "threshold"]
    assert not any("task ok " in m for m in messages)
    weakened = {m.split(" of gate ")[0].split("requires ")[1] for m in messages if "task weak " in m}
    # fail_on leaves out high; a mismatch would not reject; the environment is not the worker's own.
    # (require_vulnerability_check and fail_on_undeclared are left at the defaults, which hold.)
    assert weakened == {"fail_on", "fail_on_mismatch", "environment_from_worker"}, messages

    # At promotion the recorded evidence is judged by the same names.
    site = tmp_path / "site"
    install(site, "numpy", "2.1.3", modules=["numpy"])
    recorded = check_training_environment("/nonexistent/model", site_packages=str(site), fail_on_undeclared=False)
    arguments = recorded_arguments(GATE, recorded.result.policy)
    assert arguments["fail_on_undeclared"] is False and arguments["environment_from_worker"] is False


def test_the_cli_exits_0_1_2_and_writes_the_bom(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from airflow_mlsecops.cli import main

    for name, value in os.environ.items():  # the CLI applies its store options to os.environ: undo after the test
        monkeypatch.setenv(name, value)
    osv = str(write_osv_db(tmp_path / "osv"))
    clean, mismatched = training_site(tmp_path / "clean"), training_site(tmp_path / "mismatched", sklearn="1.0.2")
    bom = tmp_path / "env.cdx.json"

    def run(*args: str) -> tuple[int, dict]:
        code = main(["gate", "environment", "--model", str(model), *args, "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, out = run("--site-packages", str(clean), "--osv-db", osv, "--bom", str(bom))
    assert (code, out["verdict"]) == (0, "passed") and out["gate"] == GATE
    assert hashlib.sha256(bom.read_bytes()).hexdigest() == out["subjects"][1]["digest"]["sha256"]
    code, out = run("--site-packages", str(mismatched), "--osv-db", osv)
    assert (code, out["verdict"]) == (1, "failed")
    assert [f["id"] for f in out["findings"] if not f["passed"]] == [f"{GATE}.mismatch.scikit-learn"]
    code, out = run("--site-packages", str(mismatched), "--osv-db", osv, "--allow-mismatch")
    assert (code, out["verdict"]) == (0, "passed")
    code, out = run("--site-packages", str(clean), "--no-vulnerability-check")
    assert (code, out["verdict"]) == (0, "warned") and out["not_performed"] == [NOT_PERFORMED]
    code, out = run("--site-packages", str(tmp_path / "nope"), "--osv-db", osv)
    assert (code, out["verdict"]) == (2, "error") and "not a site-packages" in out["summary"]
    with pytest.raises(SystemExit) as usage:
        main(["gate", "environment", "--model", str(model), "--site-packages", "a", "--freeze", "b"])
    assert usage.value.code == 2
