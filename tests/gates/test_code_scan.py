"""The code scan gate on planted vulnerable code, clean code, suppressions, bad inputs and the package itself.

No Airflow: the engine (:func:`airflow_mlsecops.gates.code_scan.scan_code`) with real bandit and
detect-secrets on real files. Secrets are assembled at run time, so this file carries none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_mlsecops.cli import main
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.code_scan import MIN_REASON_CHARS, REPORT_FILE, parse_comment, scan_code
from tests.conftest import REPO_ROOT

# Split so that no scanner flags this test file itself.
AWS_KEY_ID = "AKIA" + "Z7QK3MWX5T2LB6NR"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzq3Hk8PlVt9"
DB_PASSWORD = "Tr0ub4dor" + "x9kQ3Ls"

VULNERABLE = '''\
"""A training helper with every classic mistake."""
import pickle
import subprocess

import yaml

AWS_ACCESS_KEY_ID = "{key}"
DATABASE_URL = "postgresql://trainer:{password}@db.internal:5432/features"


def fetch(request):
    name = request.args["dataset"]
    subprocess.call("aws s3 cp s3://bucket/" + name + " /tmp/data", shell=True)
    threshold = eval(request.args["threshold"])
    config = yaml.load(request.files["config"].read())
    model = pickle.loads(request.data)
    return threshold, config, model
'''

CLEAN = '''\
"""Training code without findings above low severity."""
import json
import subprocess
from pathlib import Path

import yaml


def fetch(dataset: str) -> dict:
    subprocess.run(["aws", "s3", "cp", f"s3://bucket/{dataset}", str(Path.home() / "data")], check=True)
    config = yaml.safe_load(Path("config.yaml").read_text())
    return {"config": config, "meta": json.loads(Path("meta.json").read_text())}
'''


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A pipeline folder: vulnerable training code, a config file holding a private key and a cloud secret."""
    root = tmp_path / "pipeline"
    (root / "training").mkdir(parents=True)
    (root / "training" / "fetch.py").write_text(VULNERABLE.format(key=AWS_KEY_ID, password=DB_PASSWORD))
    (root / "config").mkdir()
    (root / "config" / "deploy.yaml").write_text(
        "aws:\n  region: eu-west-1\n  aws_secret_access_key: "
        + AWS_SECRET
        + "\nsigning_key: |\n"
        + "".join("    " + line + "\n" for line in _private_key().splitlines())
    )
    (root / "data.csv").write_text("a,b\n1,2\n")  # not read: not code or configuration
    return root


def _failed(outcome) -> set[tuple[str, str | None]]:
    return {(f.id, f.location) for f in outcome.result.findings if not f.passed}


def test_planted_vulnerabilities_and_secrets_are_rejected(planted: Path) -> None:
    outcome = scan_code([str(planted)])
    assert outcome.verdict is Verdict.FAILED and outcome.error is None
    fetch = str(planted / "training" / "fetch.py")
    deploy = str(planted / "config" / "deploy.yaml")
    failed = _failed(outcome)
    assert {
        ("code.B602", f"{fetch}:13"),  # subprocess with shell=True on request input
        ("code.B307", f"{fetch}:14"),  # eval
        ("code.B506", f"{fetch}:15"),  # yaml.load without a safe loader
        ("code.B301", f"{fetch}:16"),  # pickle.loads on request data
        ("secret.aws-access-key", f"{fetch}:7"),
        ("secret.basic-auth-credentials", f"{fetch}:8"),  # password in a connection string
        ("secret.private-key", f"{deploy}:4"),  # YAML: the line of the key holding the block
    } <= failed
    assert any(fid.startswith("secret.") and loc == f"{deploy}:3" for fid, loc in failed)  # the cloud secret key
    report = json.loads(outcome.files[REPORT_FILE])
    by_test = {(i["test_id"], i["line"]): i for i in report["issues"]}
    assert by_test[("B602", 13)]["cwe"] == 78 and by_test[("B602", 13)]["severity"] == "high"
    assert by_test[("B301", 16)]["cwe"] == 502
    assert {f["name"] for f in report["files"]} == {fetch, deploy}
    assert report["not_read"] == {".csv": 1}
    # The subjects are the scanned files, pinned by digest.
    import hashlib

    assert {s.name: s.sha256 for s in outcome.result.subjects} == {
        p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (fetch, deploy)
    }
    assert outcome.result.policy == {
        "fail_on_severity": ["high", "medium"],
        "fail_on_confidence": ["high", "medium"],
        "scan_secrets": True,
        "max_suppressions": None,
    }


def test_no_secret_value_reaches_the_result_or_the_report(planted: Path) -> None:
    outcome = scan_code([str(planted)])
    key_lines = [line for line in _private_key().splitlines() if "-----" not in line]
    recorded = outcome.result.to_json() if hasattr(outcome.result, "to_json") else json.dumps(outcome.result.to_dict())
    texts = [recorded if isinstance(recorded, str) else recorded.decode(), outcome.files[REPORT_FILE].decode()]
    report = json.loads(outcome.files[REPORT_FILE])
    pem_in_file = (planted / "config" / "deploy.yaml").read_text().split("signing_key: |\n")[1]
    for secret in (AWS_KEY_ID, AWS_SECRET, DB_PASSWORD, *[line.strip() for line in pem_in_file.splitlines()[1:-1]]):
        for text in texts:
            assert secret not in text
    assert key_lines  # the PEM body is checked line by line above
    fingerprints = {s["fingerprint"] for s in report["secrets"]}
    assert all(f.startswith("sha256:") and len(f) == len("sha256:") + 12 for f in fingerprints)


def test_bandit_messages_that_quote_a_password_are_withheld(tmp_path: Path) -> None:
    password = "Qz8" + "vLm2pWx7Rk"
    code = tmp_path / "settings.py"
    code.write_text(f'db_password = "{password}"\n')
    outcome = scan_code([str(code)], fail_on_severity=["high", "medium", "low"])
    assert ("code.B105", f"{code}:1") in _failed(outcome)
    assert password not in outcome.files[REPORT_FILE].decode()
    assert all(password not in f.message for f in outcome.result.findings)


def test_clean_code_passes_and_records_low_findings_as_passed(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(CLEAN)
    (tmp_path / "config.yaml").write_text("learning_rate: 0.1\ndatabase_url: postgresql://db.internal:5432/features\n")
    outcome = scan_code([str(tmp_path)])
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    low = {f.id for f in outcome.result.findings if f.passed}
    assert {"code.B404", "code.B603"} <= low  # import subprocess, subprocess without shell: low severity
    assert outcome.result.metrics["files_scanned"] == 2.0
    # ... and the same findings fail when the policy rejects low severity too.
    strict = scan_code([str(tmp_path)], fail_on_severity="low,medium,high")
    assert strict.verdict is Verdict.FAILED and ("code.B603", f"{tmp_path / 'train.py'}:10") in _failed(strict)


def test_warn_only_reports_a_rejection_as_warned(planted: Path) -> None:
    assert scan_code([str(planted)], warn_only=True).verdict is Verdict.WARNED


def test_secret_scan_can_be_turned_off_and_says_so(planted: Path) -> None:
    outcome = scan_code([str(planted)], scan_secrets=False)
    assert not any(fid.startswith("secret.") for fid, _ in _failed(outcome))
    assert outcome.result.policy["scan_secrets"] is False
    assert json.loads(outcome.files[REPORT_FILE])["secrets"] is None


def test_clean_code_with_the_secret_scan_off_is_warned_incomplete_never_passed(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(CLEAN)
    outcome = scan_code([str(tmp_path)], scan_secrets=False)
    assert outcome.verdict is Verdict.WARNED, outcome.result.summary
    assert outcome.result.warned_reason == "incomplete"
    assert outcome.result.not_performed == ("code-scan.secret-scan-not-performed",)


# ----------------------------------------------------------------------------- suppressions
SHELL = "import subprocess\n\n\ndef run(cmd: str) -> None:\n    subprocess.call(cmd, shell=True){comment}\n"


def _suppressed(tmp_path: Path, comment: str, **options):
    code = tmp_path / "job.py"
    code.write_text(SHELL.format(comment=comment))
    return code, scan_code([str(code)], **options)


def test_a_suppression_with_a_reason_accepts_the_finding_and_is_listed(tmp_path: Path) -> None:
    reason = "cmd is a constant from the job table, never user input"
    code, outcome = _suppressed(tmp_path, f"  # nosec B602: {reason}")
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    listed = {"file": str(code), "line": 5, "test_ids": ["B602"], "reason": reason, "status": "accepted", "suppressed": 1}
    assert json.loads(outcome.files[REPORT_FILE])["suppressions"] == [listed]
    assert outcome.result.details["suppressions"] == [listed]
    (finding,) = [f for f in outcome.result.findings if f.id == "code.B602"]
    assert finding.passed and reason in finding.message and finding.location == f"{code}:5"


@pytest.mark.parametrize(
    ("comment", "problem"),
    [
        ("  # nosec B602", "code.nosec-without-reason"),
        ("  # nosec B602: ok", "code.nosec-without-reason"),
        ("  # nosec", "code.nosec-without-test-id"),
        ("  # nosec: trusted input, reviewed by the team", "code.nosec-without-test-id"),
        ("  # nosec subprocess_popen_with_shell_equals_true", "code.nosec-malformed"),
    ],
)
def test_a_suppression_without_test_id_or_reason_is_a_finding_and_suppresses_nothing(
    tmp_path: Path, comment: str, problem: str
) -> None:
    code, outcome = _suppressed(tmp_path, comment)
    assert outcome.verdict is Verdict.FAILED
    assert {(problem, f"{code}:5"), ("code.B602", f"{code}:5")} <= _failed(outcome)


def test_a_suppression_of_another_test_does_not_hide_this_one(tmp_path: Path) -> None:
    code, outcome = _suppressed(tmp_path, "  # nosec B603: argv is a fixed list built above")
    assert ("code.B602", f"{code}:5") in _failed(outcome)
    assert "code.nosec-unused" in {f.id for f in outcome.result.findings if f.passed}


def test_more_suppressions_than_the_policy_allows_fail(tmp_path: Path) -> None:
    _, outcome = _suppressed(tmp_path, "  # nosec B602: cmd is a constant from the job table", max_suppressions=0)
    assert ("code.too-many-suppressions", None) in _failed(outcome)
    _, allowed = _suppressed(tmp_path, "  # nosec B602: cmd is a constant from the job table", max_suppressions=1)
    assert allowed.verdict is Verdict.PASSED


def test_nosec_inside_a_string_is_not_a_comment(tmp_path: Path) -> None:
    code = tmp_path / "job.py"
    call = 'subprocess.call(cmd + "# nosec B602: trusted input here", shell=True)'
    code.write_text(f"import subprocess\n\n\ndef run(cmd):\n    {call}\n")
    assert ("code.B602", f"{code}:5") in _failed(scan_code([str(code)]))


def test_a_secret_cannot_be_suppressed(tmp_path: Path) -> None:
    code = tmp_path / "keys.py"
    code.write_text(f'KEY_ID = "{AWS_KEY_ID}"  # nosec B105: a test fixture  # pragma: allowlist secret\n')
    assert ("secret.aws-access-key", f"{code}:1") in _failed(scan_code([str(code)]))


def test_parse_comment_forms() -> None:
    several = parse_comment("# nosec B602,B603: fixed argv list here")
    chained = parse_comment("# noqa: S602  # nosec B602 - trusted constant command")
    assert several is not None and several.test_ids == ("B602", "B603")
    assert chained is not None and chained.reason == "trusted constant command"
    assert parse_comment("# nosecurity review pending") is None


# ----------------------------------------------------------------------------- bad input
def _error(paths: list[str], finding: str) -> None:
    outcome = scan_code(paths)
    assert outcome.verdict is Verdict.ERROR and outcome.error is not None
    assert [f.id for f in outcome.result.findings] == [f"code-scan.{finding}"]
    assert main(["gate", "code-scan", *paths, "--json"]) == 2  # never exit 0


def test_a_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    _error([str(tmp_path / "missing")], "missing-path")


def test_a_binary_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_bytes(b"import os\x00\x01\x02")
    _error([str(tmp_path)], "binary-file")
    blob = tmp_path / "weights.bin"
    blob.write_bytes(bytes(range(256)))
    _error([str(blob)], "binary-file")  # named explicitly: read whatever its suffix
    latin = tmp_path / "other" / "notes.py"
    latin.parent.mkdir()
    latin.write_bytes("# caf\xe9\n".encode("latin-1"))
    _error([str(latin)], "binary-file")


def test_a_syntax_error_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def train(:\n    pass\n")
    outcome = scan_code([str(tmp_path)])
    assert outcome.verdict is Verdict.ERROR and "broken.py:1: Python syntax error" in outcome.result.summary
    _error([str(tmp_path)], "syntax-error")


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "gone.py").symlink_to(tmp_path / "nowhere.py")
    _error([str(tmp_path)], "unreadable-file")  # a dangling link in a folder is not skipped
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    _error([str(fifo)], "unreadable-file")  # neither file nor directory: never opened (it would block)
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked" / "secret.py"
        locked.parent.mkdir()
        locked.write_text("x = 1\n")
        locked.chmod(0)
        _error([str(locked)], "unreadable-file")


def test_nothing_to_scan_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a\n1\n")
    _error([str(tmp_path)], "no-files")
    config = tmp_path / "settings.yaml"
    config.write_text("a: 1\n")
    outcome = scan_code([str(config)], scan_secrets=False)  # nothing left to check
    assert outcome.verdict is Verdict.ERROR and outcome.result.findings[0].id == "code-scan.no-files"


@pytest.mark.parametrize(
    "options",
    [{"fail_on_severity": ["critical"]}, {"fail_on_confidence": []}, {"scan_secrets": "no"}, {"max_suppressions": -1}],
)
def test_bad_thresholds_are_an_error_never_a_pass(tmp_path: Path, options: dict) -> None:
    (tmp_path / "train.py").write_text(CLEAN)
    outcome = scan_code([str(tmp_path)], **options)
    assert outcome.verdict is Verdict.ERROR


# ----------------------------------------------------------------------------- the project itself
@pytest.mark.slow
def test_the_package_and_the_example_dags_pass_as_shipped() -> None:
    outcome = scan_code([str(REPO_ROOT / "src" / "airflow_mlsecops"), str(REPO_ROOT / "dags")])
    failed = [(f.id, f.location, f.message) for f in outcome.result.findings if not f.passed]
    assert outcome.verdict is Verdict.PASSED, failed
    # Every accepted suppression says why; the report lists them all.
    suppressions = json.loads(outcome.files[REPORT_FILE])["suppressions"]
    assert suppressions and all(s["status"] == "accepted" and len(s["reason"]) >= 10 for s in suppressions)


def test_cli_prints_findings_and_exits_1_on_rejection(planted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "code-scan", str(planted), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["gate"] == "code-scan" and payload["verdict"] == "failed"
    assert {"code.B602", "secret.aws-access-key", "secret.private-key"} <= {f["id"] for f in payload["findings"]}
    assert AWS_KEY_ID not in json.dumps(payload)
    assert main(["gate", "code-scan", str(planted), "--severity", "high", "--no-secrets"]) == 1  # B602 is high
    out = capsys.readouterr().out
    assert "code.B602" in out and "code.B307" not in out and "secret." not in out


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_a_comment_is_accepted_only_with_test_ids_and_a_reason(text: str) -> None:
    parsed = parse_comment("# " + text)
    if parsed is not None and parsed.accepted:
        assert parsed.test_ids and all(len(t) == 4 and t.startswith("B") for t in parsed.test_ids)
        assert len(parsed.reason) >= MIN_REASON_CHARS
