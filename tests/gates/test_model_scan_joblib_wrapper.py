"""Issue 11 item 2: joblib's array wrapper built indirectly is followed as joblib follows it, or rejected.

Each malicious sample is loaded only in a throwaway interpreter (to prove joblib runs it); the
scanner must reject every one, in every compression joblib reads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.model_scan import scan_model
from tests.gates.model_corpus_joblib import FINDINGS, NO_INIT, TECHNIQUES, wrapper_payload, write_wrapper_payloads


def test_every_indirect_wrapper_is_rejected_in_every_compression(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    samples = write_wrapper_payloads(tmp_path, lambda name: f"touch {markers / name}")
    assert len(samples) >= len(TECHNIQUES) * 6
    wrong = {}
    for sample in samples:
        outcome = scan_model(str(tmp_path / Path(sample.path).name))
        ids = {f.id for f in outcome.result.findings}
        if outcome.verdict is not Verdict.FAILED or sample.finding not in ids:
            wrong[sample.path] = (outcome.verdict.value, sorted(ids))
        elif sample.ref and not any(sample.ref in f.message for f in outcome.result.findings):
            wrong[sample.path] = ("no finding names", sample.ref)
    assert not wrong, wrong
    assert list(markers.iterdir()) == []


def test_the_samples_are_real_joblib_payloads(tmp_path: Path) -> None:
    """joblib.load runs each one (in a throwaway interpreter): the scanner's findings are not theoretical."""
    paths = []
    for technique in TECHNIQUES:
        path = tmp_path / f"{technique}.joblib"
        path.write_bytes(wrapper_payload(technique, f"touch {tmp_path / ('ran-' + technique)}"))
        paths.append(str(path))
    code = "import sys, joblib\nfor p in sys.argv[1:]:\n    joblib.load(p)\n"
    done = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == sorted(f"ran-{t}" for t in TECHNIQUES)


@pytest.mark.parametrize("technique", NO_INIT)
def test_a_wrapper_made_without_init_has_no_alignment_padding(tmp_path: Path, technique: str) -> None:
    """``INST``/``OBJ`` without arguments skip ``__init__``: joblib reads no padding byte (the scanner
    used to assume one and resumed past the payload)."""
    path = tmp_path / "model.joblib"
    path.write_bytes(wrapper_payload(technique, "touch /nonexistent/marker"))
    outcome = scan_model(str(path))
    assert outcome.verdict is Verdict.FAILED
    assert any(f.id == "model-scan.pickle-gadget" and "os.system" in f.message for f in outcome.result.findings)
    assert technique not in FINDINGS


PROTOCOLS = (0, 1, 2, 3, 4, 5)
COMPRESSIONS = (0, "zlib", "gzip", "bz2", "lzma", "xz")


@pytest.fixture(scope="module")
def benign_joblib_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Benign joblib files of every protocol and compression, written by a fresh interpreter.

    Written in this process, the files would depend on what earlier tests imported: once Airflow's
    DagBag has imported ``dill``, protocols 0 and 1 write ``dill._dill`` references.
    """
    root = tmp_path_factory.mktemp("benign-joblib")
    code = (
        "import sys, joblib, numpy as np; from pathlib import Path; root = Path(sys.argv[1])\n"
        "value = {'w': np.arange(12.0).reshape(3, 4), 'names': np.array(['a', 'b'], dtype=object), 'i': np.arange(5)}\n"
        f"for p in {PROTOCOLS!r}:\n"
        f"    for c in {COMPRESSIONS!r}:\n"
        "        joblib.dump(value, root / f'arrays-{p}-{c}.joblib', protocol=p, compress=(c, 3) if c else 0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True, timeout=300)
    return root


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_benign_joblib_files_of_every_protocol_pass(benign_joblib_files: Path, protocol: int, compress) -> None:
    outcome = scan_model(str(benign_joblib_files / f"arrays-{protocol}-{compress}.joblib"))
    assert outcome.verdict is Verdict.PASSED, [f.message for f in outcome.result.findings]
