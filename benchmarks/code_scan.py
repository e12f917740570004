"""Code scan: ``scan_code`` on the package's own source against bandit's and detect-secrets' CLIs on the same files.

Every side runs as a fresh process (interpreter start and imports included, as a CI job or an
Airflow task would pay them), alternating ours and the peer each round; rows show the median wall
seconds, the notes the CPU seconds, files/s and what each side found.

* (a) static analysis only: ``scan_code(src, scan_secrets=False)`` (bandit through its API, plus
  what the gate adds: every file read once, hashed (SHA-256 subjects), parsed, its ``# nosec``
  comments judged, the JSON report) vs ``bandit -r src -f json`` (its CLI, every test on). Target:
  at most 1.5x bandit's CLI.
* (b) the whole gate: ``scan_code(src)`` (bandit and detect-secrets) vs ``bandit -r`` plus
  ``detect-secrets scan --all-files`` (default plugins) run one after the other. Target: at most
  1.2x the two CLIs.

The files are ``src/airflow_mlsecops`` (Python and configuration files; caches are skipped by
both sides). bandit's CLI honours ``# nosec`` itself, the gate judges the comments, so the issue
counts in the notes differ by the accepted suppressions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks._common import (
    REPO_ROOT,
    Row,
    Target,
    alternate,
    bench_env,
    last_json_line,
    median,
    paired_ratio,
    python_cmd,
    run_timed,
    tmp_root,
)

GROUP = "codescan"
SOURCE = REPO_ROOT / "src" / "airflow_mlsecops"
BIN = Path(sys.executable).parent

_OURS = """\
import json, logging, sys
logging.disable(logging.WARNING)
from airflow_mlsecops.gates.code_scan import scan_code
outcome = scan_code([{src!r}], scan_secrets={secrets!r})
m = outcome.result.metrics
print(json.dumps({{"verdict": outcome.verdict.value, "files": m.get("files_scanned"), "python": m.get("python_files"),
    "issues": m.get("issues_failed", 0) + m.get("issues_below_threshold", 0) + m.get("issues_suppressed", 0),
    "suppressed": m.get("issues_suppressed"), "secrets": m.get("secrets_found"), "error": str(outcome.error or "")}}))
"""


def _bandit(out: Path) -> list[str]:
    return [str(BIN / "bandit"), "-r", str(SOURCE), "-f", "json", "-q", "-o", str(out), "--exit-zero"]


def _detect_secrets() -> list[str]:
    return [str(BIN / "detect-secrets"), "scan", "--all-files", str(SOURCE)]


def run(quick: bool) -> list[Row]:
    tmp = tmp_root() / GROUP
    tmp.mkdir(parents=True, exist_ok=True)
    env = bench_env(tmp)
    rounds = 1 if quick else 3
    report = tmp / "bandit.json"
    static: dict[str, list[float]] = {"ours": [], "peer": [], "ours_cpu": [], "peer_cpu": []}
    whole: dict[str, list[float]] = {"ours": [], "peer": [], "ours_cpu": [], "peer_cpu": []}
    found: dict[str, object] = {}
    for i in range(rounds):
        for side in alternate(i, ["ours", "peer"]):
            if side == "ours":
                done = run_timed(python_cmd(_OURS.format(src=str(SOURCE), secrets=False)), env=env, timeout=600)
                found["ours_static"] = last_json_line(done.stdout)
            else:
                done = run_timed(_bandit(report), env=env, timeout=600)
                results = json.loads(report.read_text())
                found["bandit"] = {
                    "issues": len(results["results"]),
                    "files": len(results["metrics"]) - 1,  # one entry per file plus _totals
                }
            static[side].append(done.wall)
            static[f"{side}_cpu"].append(done.cpu)
        for side in alternate(i + 1, ["ours", "peer"]):
            if side == "ours":
                done = run_timed(python_cmd(_OURS.format(src=str(SOURCE), secrets=True)), env=env, timeout=600)
                found["ours_whole"] = last_json_line(done.stdout)
                wall, cpu = done.wall, done.cpu
            else:
                first = run_timed(_bandit(report), env=env, timeout=600)
                second = run_timed(_detect_secrets(), env=env, timeout=600)
                found["detect_secrets"] = sum(len(v) for v in json.loads(second.stdout)["results"].values())
                wall, cpu = first.wall + second.wall, first.cpu + second.cpu
            whole[side].append(wall)
            whole[f"{side}_cpu"].append(cpu)

    ours_static, ours_whole, bandit = found["ours_static"], found["ours_whole"], found["bandit"]
    assert isinstance(ours_static, dict) and isinstance(ours_whole, dict) and isinstance(bandit, dict)
    files = float(ours_whole["files"] or 0)
    python = float(ours_static["python"] or 0)

    def rate(n: float, seconds: list[float]) -> str:
        return f"{n / median(seconds):,.1f} files/s"

    return [
        Row(
            group=GROUP,
            name="bandit on the package source: scan_code (API, no secrets) vs bandit -r (CLI)",
            unit="s",
            ours=median(static["ours"]),
            peer=median(static["peer"]),
            peer_label="bandit -r CLI",
            ratio=paired_ratio(static["ours"], static["peer"]),
            target=Target("ratio", "<=", 1.5),
            runs=rounds,
            samples=static,
            notes=(
                f"{python:.0f} Python files; ours {rate(python, static['ours'])}, bandit {rate(python, static['peer'])}; "
                f"CPU s ours {median(static['ours_cpu']):.2f}, bandit {median(static['peer_cpu']):.2f}; "
                f"issues ours {ours_static['issues']:.0f} ({ours_static['suppressed']:.0f} suppressed by reasoned nosec), "
                f"bandit CLI {bandit['issues']} over {bandit['files']} files (it drops nosec'd lines); "
                f"verdict {ours_static['verdict']}"
            ),
        ),
        Row(
            group=GROUP,
            name="whole gate (bandit + secrets) vs bandit -r + detect-secrets scan (CLIs)",
            unit="s",
            ours=median(whole["ours"]),
            peer=median(whole["peer"]),
            peer_label="bandit -r + detect-secrets scan",
            ratio=paired_ratio(whole["ours"], whole["peer"]),
            target=Target("ratio", "<=", 1.2),
            runs=rounds,
            samples=whole,
            notes=(
                f"{files:.0f} files (Python + config); ours {rate(files, whole['ours'])}, CLIs {rate(files, whole['peer'])}; "
                f"CPU s ours {median(whole['ours_cpu']):.2f}, CLIs {median(whole['peer_cpu']):.2f}; "
                f"secrets ours {ours_whole['secrets']:.0f} (hex entropy off, env-var and file names filtered), "
                f"detect-secrets defaults {found['detect_secrets']}; verdict {ours_whole['verdict']}"
            ),
        ),
    ]
