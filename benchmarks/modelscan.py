"""Model-file scanning: ``scan_model`` throughput (MB/s) against modelscan and picklescan, and what
each catches on the test corpus.

Throughput, on files written to the temporary directory (page cache warm), every tool called as a
library in this process (``ModelScan().scan(path)``, ``picklescan.scanner.scan_file_path``): their
CLIs run the same functions, but would add an interpreter start and imports (~1-2 s) to scans
that take a fraction of a second. MB/s are decimal (file bytes / wall seconds).

* (a) a pickle of one ~200 MB numpy array (protocol 4);
* (b) a ~100 MB pickle of a dict of 25,000 small float32 arrays (1,000 values each);
* (c) the same dict as a zlib-compressed joblib file (``compress=("zlib", 3)``). modelscan errors on
  it; picklescan reads nothing from it and reports no error; only ours is timed.

Ours is ``scan_model`` end to end: the gate result, the JSON report, and the SHA-256 of the file
(the evidence subject, computed in a thread while the scan runs), which neither peer computes.
Target (the issue): at least modelscan's throughput on (a) and (b). picklescan's figures are in the
notes. Calls are interleaved (order rotated per round).

The corpus row builds **our own test corpus** (``tests/gates/model_corpus.py``: benign models of
every supported format and malicious or hostile files, each with the verdict a scanner must reach).
Our tests require ``scan_model`` to score perfectly on it and the peers were never tuned to it, so
the row says how the peers fare on our corpus, not which scanner is better in general. Per tool,
every outcome is counted apart (``issue``, ``error``, ``skipped``, ``clean``), for malicious and for
benign samples:

* **missed**: a malicious sample for which the tool reported no issue (an error, a skip or a clean
  report; each is counted apart in the notes: an error is not a silent miss, but it does not name
  the payload either);
* **false alarm**: a benign sample for which the tool reported an issue. A tool's *error* on a
  benign file (it cannot parse the container) is counted apart, not as a false alarm; a skipped
  benign file is neither.

The row shows missed + false alarms (ours vs modelscan; picklescan in the notes). Directories are
scanned as directories (picklescan: ``scan_directory_path``, as its CLI does). Target: 0 for ours.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import Row, Target, median, paired_ratio, tmp_root

GROUP = "modelscan"
MB = 1_000_000
ARRAY_VALUES = 1_000  # float32 values per small array (4 kB)
# Corpus findings that name a payload (code run at load) rather than a hostile or broken container.
_PAYLOAD_FINDINGS = (
    "model-scan.pickle-gadget",
    "model-scan.pickle-call-non-global",
    "model-scan.pickle-dynamic-global",
    "model-scan.pickle-unknown-global",
    "model-scan.skops-untrusted-type",
    "model-scan.keras-lambda",
)


def _write_inputs(work: Path, single_mb: int, arrays: int) -> dict[str, Path]:
    import joblib
    import numpy as np

    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    single = work / "single_array.pkl"
    with open(single, "wb") as fh:
        pickle.dump({"weights": rng.integers(0, 256, single_mb * MB, dtype=np.uint8)}, fh, protocol=4)
    many_obj = {f"layer{i:05d}": rng.standard_normal(ARRAY_VALUES).astype(np.float32) for i in range(arrays)}
    many = work / "many_arrays.pkl"
    with open(many, "wb") as fh:
        pickle.dump(many_obj, fh, protocol=4)
    compressed = work / "many_arrays_zlib.joblib"
    joblib.dump(many_obj, compressed, compress=("zlib", 3))
    os.sync()  # no background writeback while we measure
    return {"single": single, "many": many, "joblib": compressed}


# ------------------------------------------------------------------------------------ the three tools


@dataclass(frozen=True)
class Outcome:
    """What one tool concluded about one path: ``issue``, ``error``, ``skipped`` or ``clean``."""

    status: str
    detail: str = ""


def _ours(path: Path) -> Outcome:
    from airflow_mlsecops.evidence.models import Verdict
    from airflow_mlsecops.gates.model_scan import scan_model

    outcome = scan_model(str(path))
    if outcome.verdict is Verdict.PASSED:
        return Outcome("clean")
    if outcome.result.findings:
        return Outcome("issue", outcome.result.findings[0].id)
    return Outcome("error", outcome.result.summary[:120])


def _modelscan(path: Path) -> Outcome:
    from modelscan.modelscan import ModelScan

    try:
        report = ModelScan().scan(str(path))
    except Exception as exc:
        return Outcome("error", f"{type(exc).__name__}: {exc}"[:120])
    summary = report["summary"]
    if summary["total_issues"]:
        return Outcome("issue")
    if report["errors"]:
        return Outcome("error", str(report["errors"][0].get("description", ""))[:120])
    if not summary["scanned"]["total_scanned"]:
        return Outcome("skipped", "not scanned (extension not supported)")
    return Outcome("clean")


def _picklescan(path: Path) -> Outcome:
    from picklescan.scanner import scan_directory_path, scan_file_path

    try:
        result = scan_directory_path(str(path)) if path.is_dir() else scan_file_path(str(path))
    except Exception as exc:
        return Outcome("error", f"{type(exc).__name__}: {exc}"[:120])
    if result.issues_count:
        return Outcome("issue")
    if result.scan_err:
        return Outcome("error", "scan error")
    if not result.globals:
        return Outcome("clean", "no global read")
    return Outcome("clean")


TOOLS: dict[str, Callable[[Path], Outcome]] = {"ours": _ours, "modelscan": _modelscan, "picklescan": _picklescan}


# ------------------------------------------------------------------------------------ the corpus


OUTCOMES = ("issue", "error", "skipped", "clean")


@dataclass
class Tally:
    """Every outcome of one tool on the corpus, for malicious and benign samples apart."""

    malicious: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    benign: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    missed_payloads: int = 0  # malicious code-execution payloads without an issue

    @property
    def missed(self) -> int:
        """Malicious samples without an issue (errors, skips and clean reports)."""
        return sum(n for status, n in self.malicious.items() if status != "issue")

    @property
    def false_alarms(self) -> int:
        """Benign samples reported as an issue (an error on a benign file is counted apart)."""
        return self.benign["issue"]

    @property
    def total(self) -> int:
        return self.missed + self.false_alarms


def _is_payload(sample: Any) -> bool:
    return sample.finding is None or sample.finding in _PAYLOAD_FINDINGS


def _corpus(work: Path) -> tuple[dict[str, Tally], dict[str, dict[str, Outcome]], int, int, int]:
    import sys

    from benchmarks._common import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.gates.model_corpus import build_corpus

    root = work / "corpus"
    samples = build_corpus(root)
    tallies = {name: Tally() for name in TOOLS}
    outcomes: dict[str, dict[str, Outcome]] = {name: {} for name in TOOLS}
    for sample in samples:
        path = root / sample.path
        for name, tool in TOOLS.items():
            outcome = tool(path)
            outcomes[name][sample.path] = outcome
            tally = tallies[name]
            (tally.malicious if sample.malicious else tally.benign)[outcome.status] += 1
            if sample.malicious and outcome.status != "issue":
                tally.missed_payloads += _is_payload(sample)
    ran = sorted(p.name for p in (root / "markers").iterdir())
    if ran:
        raise RuntimeError(f"a corpus payload ran while scanning: {ran}")
    malicious = [s for s in samples if s.malicious]
    return tallies, outcomes, len(samples) - len(malicious), len(malicious), sum(_is_payload(s) for s in malicious)


def _tally_text(name: str, tally: Tally) -> str:
    def split(counts: dict[str, int]) -> str:
        return " / ".join(f"{counts[status]} {status}" for status in OUTCOMES)

    return (
        f"{name}: {tally.missed} missed ({tally.missed_payloads} of them payloads), {tally.false_alarms} false alarms; "
        f"malicious: {split(tally.malicious)}; benign: {split(tally.benign)}"
    )


# ------------------------------------------------------------------------------------ run


def run(quick: bool) -> list[Row]:
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # modelscan and picklescan log every error and finding
    import modelscan as modelscan_pkg
    import picklescan  # noqa: F401 - imported before the clock starts

    from airflow_mlsecops.evidence.digest import sha256_file
    from airflow_mlsecops.gates.model_scan import scan_model  # noqa: F401 - imported before the clock starts

    try:
        from importlib.metadata import version

        versions = f"modelscan {version('modelscan')}, picklescan {version('picklescan')}"
    except Exception:
        versions = f"modelscan {getattr(modelscan_pkg, '__version__', '?')}"

    rounds = 3 if quick else 5
    single_mb, arrays = (50, 6_250) if quick else (200, 25_000)
    work = tmp_root() / "modelscan"
    try:
        tallies, corpus_outcomes, benign_n, malicious_n, payload_n = _corpus(work)
        files = _write_inputs(work / "files", single_mb, arrays)
        sizes = {key: path.stat().st_size for key, path in files.items()}
        status = {key: {name: tool(path) for name, tool in TOOLS.items()} for key, path in files.items()}  # + warm-up
        for key in ("single", "many"):
            wrong = {name: o for name, o in status[key].items() if o.status != "clean"}
            if wrong:
                raise RuntimeError(f"a scanner did not pass the benign {files[key].name}: {wrong}")
        if status["joblib"]["ours"].status != "clean":
            raise RuntimeError(f"scan_model did not pass the benign joblib file: {status['joblib']['ours']}")

        cases: dict[str, Callable[[], object]] = {}
        for key in ("single", "many"):
            for name, tool in TOOLS.items():
                cases[f"{key}:{name}"] = functools.partial(tool, files[key])
        cases["joblib:ours"] = lambda: _ours(files["joblib"])
        cases["single:sha256"] = lambda: sha256_file(files["single"])  # ours' floor: the evidence digest
        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                cases[name]()
                times[name].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mb_s(case: str) -> float:
        key = case.split(":", 1)[0]
        return median([sizes[key] / t / MB for t in times[case]])

    rows: list[Row] = []
    labels = {
        "single": f"scan, 1 array pickle ({sizes['single'] / MB:,.0f} MB)",
        "many": f"scan, pickle of {arrays:,} arrays ({sizes['many'] / MB:,.0f} MB)",
    }
    for key in ("single", "many"):
        rows.append(
            Row(
                group=GROUP,
                name=labels[key],
                unit="MB/s",
                ours=mb_s(f"{key}:ours"),
                peer=mb_s(f"{key}:modelscan"),
                peer_label="modelscan ModelScan().scan(path), in process",
                ratio=paired_ratio(times[f"{key}:modelscan"], times[f"{key}:ours"]),
                target=Target("ratio", ">=", 1.0),
                runs=rounds,
                notes=(
                    f"picklescan scan_file_path: {mb_s(f'{key}:picklescan'):,.0f} MB/s "
                    f"(ours {paired_ratio(times[f'{key}:picklescan'], times[f'{key}:ours']):.2f}x); ours includes the "
                    f"gate result, report and the file's SHA-256 (in a thread), the peers only walk the opcodes"
                    + (f"; sha256_file of this file alone: {mb_s('single:sha256'):,.0f} MB/s" if key == "single" else "")
                    + f"; {versions}"
                ),
                samples={name: times[name] for name in times if name.startswith(key)},
            )
        )
    peer_status = "; ".join(
        f"{name}: {o.status}{' (' + o.detail + ')' if o.detail else ''}" for name, o in status["joblib"].items() if name != "ours"
    )
    bad_zlib = "malicious/payload_zlib.joblib"
    on_payload = ", ".join(f"{name} {corpus_outcomes[name][bad_zlib].status}" for name in TOOLS)
    rows.append(
        Row(
            group=GROUP,
            name=f"scan, zlib joblib of the {arrays:,} arrays ({sizes['joblib'] / MB:,.0f} MB)",
            unit="MB/s",
            ours=mb_s("joblib:ours"),
            peer=None,
            peer_label="modelscan / picklescan: no throughput (see notes)",
            runs=rounds,
            notes=(
                f"ours decompresses and analyses the whole stream (no issue); on this benign file {peer_status}; "
                f"on the corpus' zlib joblib with an os.system payload ({bad_zlib}): {on_payload}"
            ),
            samples={"ours_s": times["joblib:ours"]},
        )
    )
    ours, ms, ps = tallies["ours"], tallies["modelscan"], tallies["picklescan"]
    rows.append(
        Row(
            group=GROUP,
            name="our test corpus (tests/gates/model_corpus.py): missed + false alarms",
            unit="count",
            ours=float(ours.total),
            peer=float(ms.total),
            peer_label="modelscan (missed + false alarms) on our corpus",
            target=Target("abs", "==", 0),
            runs=1,
            notes=(
                f"our own test corpus, which our tests require us to score perfectly on (the peers were not tuned to "
                f"it): {benign_n} benign, {malicious_n} malicious samples ({payload_n} code-execution payloads, the rest "
                f"hostile or broken containers: traversal, bombs, CRC, truncated, empty...); missed = malicious without "
                f"an issue; false alarm = benign with an issue (an error on a benign file is counted apart); "
                f"{_tally_text('ours', ours)} | {_tally_text('modelscan', ms)} | {_tally_text('picklescan', ps)}; "
                "no payload ran (markers/ empty)"
            ),
        )
    )
    return rows
