"""The model scanner's verdict logic (``scan_model``, ``_evaluate``, ``_not_performed``), pinned exactly.

Each test builds a few small files in ``tmp_path`` and scans them for real (milliseconds). They were
written from the mutants of ``gates/model_scan.py`` that survived ``tests/gates/test_model_scan.py``
(see tests/mutation/README.md): the verdict of a mix of unsafe and unjudgeable files, ``warn_only``
never waiving a file that could not be judged, the summary, the counts in the metrics and the report,
the result's caps, and the checks recorded as not performed.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import io
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import PipelineContext, Severity, Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates import model_scan as model_scan_module
from airflow_mlsecops.gates._model_scan.allowlist import ALLOWED
from airflow_mlsecops.gates.model_scan import GATE_NAME, REPORT_FILE, ScanLimits, scan_model
from tests.deep_paths import hide_beyond_path_max

GADGET = (
    "bad.pkl: pickle references posix.system, a known code-execution gadget: operating-system calls "
    "(posix.system runs a shell command); loading the file would import it and call it 1 time(s)"
)
UNKNOWN = "noise.bin: is not a complete pickle, nor text, nor a format this scanner knows"
#: An MLflow model whose pyfunc flavour ships its own code folder (run when the model is loaded).
MLMODEL_WITH_CODE = "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    code: code\n"


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


def _unknown_globals(count: int, first: int = 0) -> bytes:
    """A protocol-2 pickle that references ``pkg<i>.f`` for each i (none on the allowlist)."""
    return b"\x80\x02" + b"".join(b"cpkg%d\nf\n0" % i for i in range(first, first + count)) + b"N."


def _report(outcome) -> dict:
    return json.loads(outcome.files[REPORT_FILE])


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A gadget, a benign pickle, bytes of no known format and a text file."""
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "bad.pkl").write_bytes(pickle.dumps(_Payload(), protocol=4))
    (root / "good.pkl").write_bytes(pickle.dumps({"a": [1, 2.5]}, protocol=4))
    (root / "noise.bin").write_bytes(bytes(range(256)) * 4)
    (root / "notes.txt").write_text("hello\n")
    return root


def test_unsafe_and_unjudged_files_fail_with_exact_summary_counts_and_report(mixed: Path) -> None:
    outcome = scan_model(str(mixed))
    result = outcome.result
    assert result.verdict is Verdict.FAILED and result.warned_reason is None
    assert result.summary == f"1 of 4 file(s) rejected: {GADGET}; {UNKNOWN} (1 more could not be judged)"
    assert result.details == {
        "verdict_basis": "unsafe",
        "files_unjudged": 1,
        "formats": {"pickle": 2, "unknown": 1, "text": 1},
        "rejected_files": [
            {"path": "bad.pkl", "verdict": "failed", "format": "pickle"},
            {"path": "noise.bin", "verdict": "error", "format": "unknown"},
        ],
    }
    assert [(f.id, f.severity, f.location) for f in result.findings] == [
        ("model-scan.pickle-gadget", Severity.CRITICAL, "bad.pkl @ byte 28"),
        ("model-scan.unknown-format", Severity.HIGH, "noise.bin @ byte 0"),
    ]
    size = sum(p.stat().st_size for p in mixed.iterdir())
    metrics = dict(result.metrics)
    seconds = metrics.pop("seconds")
    assert seconds > 0
    assert metrics.pop("mb_per_s") == pytest.approx(size / 1e6 / seconds, rel=0.05, abs=0.002)
    assert metrics == {
        "files": 4.0,
        "bytes": float(size),
        "files_rejected": 2.0,
        "findings_info": 0.0,
        "findings_low": 0.0,
        "findings_medium": 0.0,
        "findings_high": 1.0,
        "findings_critical": 1.0,
        "findings_beyond_per_file_cap": 0.0,
    }
    assert result.subjects[0].name == str(mixed) and result.subjects[0].sha256 == sha256_path(mixed)
    report = _report(outcome)
    assert outcome.files[REPORT_FILE] == json.dumps(report, indent=2, sort_keys=True).encode("utf-8")
    totals = dict(report["totals"])
    assert totals.pop("seconds") > 0
    assert totals == {
        "files": 4,
        "bytes": size,
        "files_passed": 2,
        "files_failed": 1,
        "files_error": 1,
        "findings_by_severity": {"info": 0, "low": 0, "medium": 0, "high": 1, "critical": 1},
        "globals": {"posix.system": 1},
    }
    assert report["subject"] == {"name": str(mixed), "sha256": sha256_path(mixed)}
    assert [f["path"] for f in report["files"]] == ["bad.pkl", "good.pkl", "noise.bin", "notes.txt"]
    assert report["allowlist_size"] == len(ALLOWED) and report["allow_globals"] == [] and report["allow_model_code"] is False
    assert report["allowlist_sha256"] == hashlib.sha256("\n".join(sorted(ALLOWED)).encode()).hexdigest()
    assert report["limits"]["max_findings_per_file"] == ScanLimits().max_findings_per_file
    assert "second_opinion" not in report and "second_opinion" not in result.details


def test_warn_only_never_waives_a_file_that_could_not_be_judged(mixed: Path) -> None:
    # something unsafe and something unjudged: warn_only would make it warned; no verdict instead
    outcome = scan_model(str(mixed), warn_only=True)
    assert outcome.verdict is Verdict.ERROR and outcome.result.warned_reason is None
    assert outcome.result.details["files_unjudged"] == 1
    (mixed / "noise.bin").unlink()
    only_unsafe = scan_model(str(mixed), warn_only=True)
    assert only_unsafe.verdict is Verdict.WARNED and only_unsafe.result.warned_reason == "warn-only"
    assert only_unsafe.result.summary == f"1 of 3 file(s) rejected: {GADGET}"
    assert only_unsafe.result.details["files_unjudged"] == 0


def test_a_file_that_cannot_be_judged_is_an_error_with_or_without_warn_only(mixed: Path) -> None:
    for warn_only in (False, True):
        outcome = scan_model(str(mixed / "noise.bin"), warn_only=warn_only)
        assert outcome.verdict is Verdict.ERROR and outcome.result.warned_reason is None
        assert outcome.result.summary == f"could not judge 1 of 1 file(s) (never a pass): {UNKNOWN}"
        assert outcome.result.details["verdict_basis"] == "could-not-judge"
        assert outcome.result.details["files_unjudged"] == 1
        assert outcome.result.subjects[0].name == str(mixed / "noise.bin")


def test_safe_files_pass_with_their_formats_counted(mixed: Path) -> None:
    (mixed / "bad.pkl").unlink()
    (mixed / "noise.bin").unlink()
    (mixed / "sub").mkdir()
    (mixed / "sub" / "more.pkl").write_bytes(pickle.dumps([1, 2], protocol=2))
    outcome = scan_model(str(mixed), subject="models:/churn/3")
    size = sum(p.stat().st_size for p in mixed.rglob("*") if p.is_file())
    assert outcome.verdict is Verdict.PASSED and outcome.result.warned_reason is None
    assert outcome.result.summary == f"3 file(s), {size} bytes scanned, nothing unsafe (2 pickle, 1 text)"
    assert outcome.result.details == {
        "verdict_basis": "judged-safe",
        "files_unjudged": 0,
        "formats": {"pickle": 2, "text": 1},
        "rejected_files": [],
    }
    assert list(outcome.result.findings) == []
    assert outcome.result.subjects[0].name == "models:/churn/3"
    assert _report(outcome)["subject"]["name"] == "models:/churn/3"
    assert [f["path"] for f in _report(outcome)["files"]] == ["good.pkl", "notes.txt", "sub/more.pkl"]
    single = scan_model(str(mixed / "good.pkl"))
    assert [f["path"] for f in _report(single)["files"]] == ["good.pkl"]


def test_the_summary_leads_with_the_most_severe_findings_and_shortens_long_ones(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "a.pkl").write_bytes(_unknown_globals(4))  # four high findings, listed first by name
    (root / "z.pkl").write_bytes(pickle.dumps(_Payload(), protocol=4))  # one critical
    outcome = scan_model(str(root))
    messages = [f.message for f in outcome.result.findings]
    assert outcome.result.findings[0].severity is Severity.CRITICAL
    assert outcome.result.summary == "2 of 2 file(s) rejected: " + "; ".join(messages[:3])
    assert messages[0].startswith("z.pkl: pickle references posix.system") and messages[1].startswith("a.pkl:")

    long = tmp_path / "long.pkl"
    long.write_bytes(b"\x80\x02c" + b"m" * 250 + b"\nfunc\n)R.")
    outcome = scan_model(str(long))
    (finding,) = outcome.result.findings
    assert len(finding.message) > 200  # the finding keeps the whole message; the summary shortens it
    assert outcome.result.summary == "1 of 1 file(s) rejected: " + finding.message[:197] + "..."
    rest = ".f, which is not on the allowlist of what model files use; loading the file would import it and call it 1 time(s)"
    exactly = "x" * (200 - len("long.pkl: pickle references " + rest))
    long.write_bytes(b"\x80\x02c" + exactly.encode() + b"\nf\n)R.")
    outcome = scan_model(str(long))
    assert len(outcome.result.findings[0].message) == 200
    assert outcome.result.summary == "1 of 1 file(s) rejected: " + outcome.result.findings[0].message
    long.write_bytes(b"\x80\x02c" + exactly.encode() + b"y\nf\n)R.")  # 201 characters: shortened
    outcome = scan_model(str(long))
    assert len(outcome.result.findings[0].message) == 201
    assert outcome.result.summary == "1 of 1 file(s) rejected: " + outcome.result.findings[0].message[:197] + "..."


def test_findings_beyond_the_per_file_cap_are_counted_and_announced(tmp_path: Path) -> None:
    path = tmp_path / "many.pkl"
    path.write_bytes(_unknown_globals(4))
    outcome = scan_model(str(path), limits=ScanLimits(max_findings_per_file=2))
    *listed, more = outcome.result.findings
    assert [f.id for f in listed] == ["model-scan.pickle-unknown-global"] * 2
    assert (more.id, more.severity) == ("model-scan.more-findings", Severity.INFO)
    assert more.message == f"2 more finding(s) are counted in the metrics but not listed here (see {REPORT_FILE})"
    assert outcome.result.metrics["findings_beyond_per_file_cap"] == 2.0
    assert outcome.result.metrics["findings_high"] == 2.0
    assert _report(outcome)["limits"]["max_findings_per_file"] == 2
    assert outcome.result.policy["limits"]["max_findings_per_file"] == 2


def test_the_signed_result_lists_at_most_500_findings(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    for i in range(251):  # 502 findings, 2 a file: under the per-file cap, over the result's
        (root / f"f{i:03}.pkl").write_bytes(_unknown_globals(2, first=2 * i))
    outcome = scan_model(str(root))
    *listed, more = outcome.result.findings
    assert len(listed) == 500 and {f.id for f in listed} == {"model-scan.pickle-unknown-global"}
    assert more.message == f"2 more finding(s) are counted in the metrics but not listed here (see {REPORT_FILE})"
    assert outcome.result.metrics["findings_high"] == 502.0
    assert outcome.result.metrics["findings_beyond_per_file_cap"] == 0.0


def test_no_more_findings_entry_when_everything_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "two.pkl"
    path.write_bytes(_unknown_globals(2))
    outcome = scan_model(str(path), limits=ScanLimits(max_findings_per_file=2))
    assert [f.id for f in outcome.result.findings] == ["model-scan.pickle-unknown-global"] * 2


def test_paths_that_cannot_be_scanned_are_errors_with_their_reason(tmp_path: Path) -> None:
    assert scan_model(str(tmp_path / "absent")).result.summary == f"could not run: {tmp_path / 'absent'} does not exist"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert scan_model(str(empty)).result.summary == f"could not run: {empty} holds no files; nothing to scan"
    link = tmp_path / "link"
    link.symlink_to(empty)
    outcome = scan_model(str(link))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.result.summary == f"could not run: {link} is a symbolic link; refusing to follow it"
    many = tmp_path / "many"
    many.mkdir()
    for i in range(3):
        (many / f"{i}.txt").write_text("x\n")
    outcome = scan_model(str(many), limits=ScanLimits(max_files=2))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.result.summary == f"could not run: {many} holds more than 2 files"
    assert scan_model(str(many), limits=ScanLimits(max_files=3)).verdict is Verdict.PASSED


def test_a_folder_of_the_model_that_cannot_be_listed_is_an_error_not_skipped(tmp_path: Path) -> None:
    # A gadget in a folder os.walk cannot list (beyond PATH_MAX here; for a scanner that is not root,
    # a folder it may not read) would otherwise be skipped and the model pass. Both the scanner's walk
    # and the digest of the model refuse it.
    model = tmp_path / "model"
    model.mkdir()
    (model / "ok.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    hide_beyond_path_max(model, "bad.pkl", pickle.dumps(_Payload()))
    outcome = scan_model(str(model))
    assert outcome.verdict is Verdict.ERROR
    assert outcome.result.summary.startswith("could not run: ")
    assert outcome.result.summary.endswith(f"cannot be read: {os.strerror(errno.ENAMETOOLONG)}")


def test_policy_records_the_allowlist_and_options(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(_unknown_globals(1))
    outcome = scan_model(str(path), allow_globals=["pkg0.f", "b.c"])
    assert outcome.verdict is Verdict.PASSED
    assert outcome.result.policy == {
        "allowlist": "exact module.name references",
        "allowlist_size": len(ALLOWED),
        "allowlist_sha256": hashlib.sha256("\n".join(sorted(ALLOWED)).encode()).hexdigest(),
        "allow_globals": ["b.c", "pkg0.f"],
        "limits": json.loads(json.dumps(_report(outcome)["limits"])),
        "second_opinion": None,
        "allow_model_code": False,
        "blocking_findings": "any finding (unknown formats and parse errors included)",
    }
    assert _report(outcome)["allow_globals"] == ["b.c", "pkg0.f"]
    assert _report(outcome)["totals"]["globals"] == {"pkg0.f": 1}
    assert set(outcome.result.tool_versions) >= {"numpy", "h5py", "onnx", "skops", "lz4"}
    assert "modelscan" not in outcome.result.tool_versions
    with pytest.raises(ConfigurationError) as raised:
        scan_model(str(path), allow_globals=["pkg0.f", "posix.system"])
    assert str(raised.value) == "allow_globals cannot allow posix.system: it is a known code-execution gadget"


def test_model_code_let_through_is_recorded_as_not_performed(tmp_path: Path) -> None:
    root = tmp_path / "model"
    (root / "code").mkdir(parents=True)
    (root / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    code: code\n    model_path: model.pkl\n"
    )
    (root / "code" / "x.py").write_text("print(1)\n")
    (root / "model.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    rejected = scan_model(str(root))
    assert rejected.verdict is Verdict.FAILED
    allowed = scan_model(str(root), allow_model_code=True)
    result = allowed.result
    assert result.verdict is Verdict.WARNED and result.warned_reason == "incomplete"
    assert result.not_performed == ("model-scan.model-code-not-scanned",)
    (finding,) = result.findings
    assert finding.message == (
        "code shipped with the MLflow model (MLmodel) runs when it is loaded and was not scanned: "
        "allow_model_code=True records it instead of rejecting it"
    )
    assert result.summary.startswith("3 file(s), ") and result.summary.endswith(
        "nothing unsafe (1 mlflow-mlmodel, 1 pickle, 1 text); INCOMPLETE, not performed: model-scan.model-code-not-scanned"
    )
    assert result.policy["allow_model_code"] is True and _report(allowed)["allow_model_code"] is True
    # without model code, nothing is recorded as not performed
    plain = scan_model(str(root / "model.pkl"), allow_model_code=True)
    assert plain.verdict is Verdict.PASSED and plain.result.not_performed == ()


def test_a_second_opinion_that_cannot_run_is_recorded_as_not_performed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    # An earlier test in the same worker may have imported modelscan: its submodules stay in
    # sys.modules and would be found before the (absent) package is looked at.
    for name in [name for name in sys.modules if name.startswith("modelscan.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "modelscan", None)
    outcome = scan_model(str(path), second_opinion=True)
    error = "ModuleNotFoundError: No module named 'modelscan.modelscan'; 'modelscan' is not a package"
    result = outcome.result
    assert result.verdict is Verdict.WARNED and result.warned_reason == "incomplete"
    assert result.not_performed == ("model-scan.second-opinion-not-performed",)
    (finding,) = result.findings
    assert finding.message == f"the second opinion (modelscan) was asked for but did not run: {error}"
    assert result.details["second_opinion"] == {"tool": "modelscan", "error": error}
    assert _report(outcome)["second_opinion"] == {"tool": "modelscan", "error": error}
    assert result.policy["second_opinion"] == "modelscan"
    assert "modelscan" in result.tool_versions


def test_seconds_and_throughput_are_rounded_from_the_scan_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The scan's clock (only model_scan's own ``time``): it starts at 1.0 and reads 3 * 2**-20 s later
    # (exact in binary), so seconds and MB/s are known to the last rounded digit.
    path = tmp_path / "notes.txt"
    path.write_text("x" * 3071 + "\n")
    ticks = iter([1.0, 1.0 + 3 * 2**-20])
    monkeypatch.setattr(model_scan_module, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    outcome = scan_model(str(path))
    assert outcome.verdict is Verdict.PASSED
    assert outcome.result.summary == "1 file(s), 3072 bytes scanned, nothing unsafe (1 text)"
    metrics = outcome.result.metrics
    assert metrics["seconds"] == 3e-06  # round(2.861e-06, 6)
    assert metrics["mb_per_s"] == 1073.742  # 3072 bytes / 1e6 / 2.861e-06 s, 3 decimals
    assert metrics["bytes"] == 3072.0
    assert _report(outcome)["totals"]["seconds"] == 3e-06
    assert _report(outcome)["totals"]["bytes"] == 3072


def test_the_result_names_the_gate_and_the_airflow_task(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    context = PipelineContext(dag_id="train", run_id="manual__1", task_id="scan", try_number=2, map_index=3)
    outcome = scan_model(str(path), context=context)
    assert GATE_NAME == "model-scan"
    assert outcome.result.gate == "model-scan"
    assert outcome.result.context == context
    assert scan_model(str(path)).result.context is None


def test_a_gadget_in_a_zip_inside_a_zip_is_found_through_the_spooled_member(tmp_path: Path) -> None:
    # zipfile needs random access: the inner archive is spooled into the scan's temporary folder
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("model.pkl", pickle.dumps(_Payload(), protocol=4))
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("inner.zip", inner.getvalue())
    outcome = scan_model(str(outer))
    assert outcome.verdict is Verdict.FAILED
    assert [(f.id, f.severity, f.location) for f in outcome.result.findings] == [
        ("model-scan.pickle-gadget", Severity.CRITICAL, "model.pkl in inner.zip in outer.zip @ byte 28")
    ]
    (report,) = _report(outcome)["files"]
    assert [(p["name"], p["format"]) for p in report["parts"]] == [
        ("outer.zip", "zip"),
        ("inner.zip in outer.zip", "zip"),
        ("model.pkl in inner.zip in outer.zip", "pickle"),
    ]


def test_code_an_mlmodel_ships_is_looked_up_in_the_mlmodel_s_own_folder(tmp_path: Path) -> None:
    model = tmp_path / "model" / "sub"
    (model / "code").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mymodel\n    code: code\n")
    (model / "code" / "mymodel.py").write_text("x = 1\n")
    outcome = scan_model(str(tmp_path / "model"))
    assert outcome.verdict is Verdict.FAILED
    code = [(f.severity, f.location, f.message) for f in outcome.result.findings if f.id == "model-scan.mlflow-model-code"]
    assert code == [
        (
            Severity.CRITICAL,
            "sub/MLmodel",
            "sub/MLmodel: ships code in 'code' (1 Python file(s), e.g. 'code/mymodel.py') (flavor 'python_function', "
            "code_paths) that MLflow puts first on sys.path when loading: modules the model imports may run from it",
        ),
        (
            Severity.CRITICAL,
            "sub/MLmodel",
            "sub/MLmodel: loader_module 'mymodel' (flavor 'python_function') is code shipped with the model: loading runs it",
        ),
    ]


def test_many_files_that_cannot_be_judged_are_summarised_and_listed_up_to_their_caps(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    for i in range(21):
        (root / f"n{i:02}.bin").write_bytes(bytes(range(256)) * 4)
    outcome = scan_model(str(root))
    assert outcome.verdict is Verdict.ERROR and outcome.result.warned_reason is None
    unknown = "n{:02}.bin: is not a complete pickle, nor text, nor a format this scanner knows"
    top = "; ".join(unknown.format(i) for i in range(3))
    assert outcome.result.summary == f"could not judge 21 of 21 file(s) (never a pass): {top}"
    details = outcome.result.details
    assert details["verdict_basis"] == "could-not-judge" and details["files_unjudged"] == 21
    assert details["rejected_files"] == [{"path": f"n{i:02}.bin", "verdict": "error", "format": "unknown"} for i in range(20)]
    assert len(outcome.result.findings) == 21
    assert _report(outcome)["totals"]["files_error"] == 21


def test_a_second_opinion_that_runs_is_summarised_in_the_details_and_listed_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(_Payload(), protocol=4))
    outcome = scan_model(str(path), second_opinion=True)
    assert outcome.verdict is Verdict.FAILED
    summary = {
        "tool": "modelscan",
        "version": importlib.metadata.version("modelscan"),
        "issues_total": 1,
        "issues_by_severity": {"LOW": 0, "MEDIUM": 0, "HIGH": 0, "CRITICAL": 1},
        "errors": 0,
        "skipped": 0,
    }
    assert outcome.result.details["second_opinion"] == summary  # the issues themselves only in the report
    opinion = dict(_report(outcome)["second_opinion"])
    (issue,) = opinion.pop("issues")
    assert opinion == summary
    assert (issue["module"], issue["operator"], issue["severity"]) == ("posix", "system", "CRITICAL")
    assert issue["source"] == "bad.pkl"


def test_the_not_performed_model_code_names_at_most_five_models(tmp_path: Path) -> None:
    root = tmp_path / "models"
    for i in range(6):
        (root / f"m{i}" / "code").mkdir(parents=True)
        (root / f"m{i}" / "MLmodel").write_text(MLMODEL_WITH_CODE)
        (root / f"m{i}" / "code" / "x.py").write_text("print(1)\n")
    outcome = scan_model(str(root), allow_model_code=True)
    result = outcome.result
    assert result.verdict is Verdict.WARNED and result.warned_reason == "incomplete"
    (finding,) = result.findings
    assert finding.message == (
        "code shipped with the MLflow model (m0/MLmodel, m1/MLmodel, m2/MLmodel, m3/MLmodel, m4/MLmodel) runs when it "
        "is loaded and was not scanned: allow_model_code=True records it instead of rejecting it"
    )


def test_model_code_that_is_rejected_is_not_also_recorded_as_not_performed(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "MLmodel").write_text(MLMODEL_WITH_CODE)
    (model / "code" / "x.py").write_text("print(1)\n")
    for warn_only in (False, True):
        result = scan_model(str(model), warn_only=warn_only).result
        assert result.verdict is (Verdict.WARNED if warn_only else Verdict.FAILED)
        assert result.not_performed == () and "not_performed" not in result.details
        assert [f.id for f in result.findings] == ["model-scan.mlflow-model-code"]
