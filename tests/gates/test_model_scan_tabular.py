"""Issue 11 item 6: benign tabular models pass, judged exactly as CPython reads them, and payloads still do not.

The corpus (:mod:`tests.gates.model_corpus_tabular`) holds the benign ``ColumnTransformer``
pipelines and pandas bundles; here: the rules that make them pass, pinned one by one.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates._model_scan.allowlist import ALLOWED, judge
from airflow_mlsecops.gates._model_scan.allowlist_pandas import PANDAS
from airflow_mlsecops.gates.model_scan import scan_model
from tests.gates.model_corpus import _g, _s

MEMOIZE, BINGET, STACK_GLOBAL, TUPLE1, REDUCE, NEWOBJ, BUILD = b"\x94", b"h", b"\x93", b"\x85", b"R", b"\x81", b"b"


def _scan(tmp_path: Path, data: bytes, name: str = "model.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return scan_model(str(path))


def _ids(outcome) -> set[str]:
    return {f.id for f in outcome.result.findings}


def test_a_stack_global_of_values_cpython_rejects_is_not_a_computed_import(tmp_path: Path) -> None:
    # both unpicklers raise "STACK_GLOBAL requires str" before importing anything
    for stream in (
        b"\x80\x04K\x01K\x02\x93.",  # two ints
        b"\x80\x04" + _g("builtins", "list") + b")R" + _s("x") + b"\x93.",  # an instance of an allow-listed class
        b"\x80\x04" + _g("sklearn.pipeline", "Pipeline") + b")\x81" + _s("dtype") + b"\x93.",
    ):
        outcome = _scan(tmp_path, stream)
        assert "model-scan.pickle-dynamic-global" not in _ids(outcome), stream
        assert outcome.verdict is Verdict.ERROR, stream  # it does not parse: never a pass
        with __import__("pytest").raises(pickle.UnpicklingError):
            pickle.loads(stream)


def test_a_name_a_call_may_compute_is_still_critical(tmp_path: Path) -> None:
    stream = (
        b"\x80\x04" + _g("_codecs", "encode") + _s("bf") + _s("rot13") + b"\x86R" + _s("system") + b"\x93" + _s("id") + b"\x85R."
    )
    outcome = _scan(tmp_path, stream)
    assert outcome.verdict is Verdict.FAILED and "model-scan.pickle-dynamic-global" in _ids(outcome)


def test_calling_plain_data_is_a_parse_error_not_a_call(tmp_path: Path) -> None:
    stream = b"\x80\x04K\x01)R."
    outcome = _scan(tmp_path, stream)
    assert "model-scan.pickle-call-non-global" not in _ids(outcome)
    assert outcome.verdict is Verdict.ERROR


def _memo_confusion_payload(command: str) -> bytes:
    """A joblib object-array block that joblib reads (own memo) as ``numpy.dtype(...)`` and
    ``pickle.load`` reads (outer memo) as ``os.system(command)``."""
    outer_names = _s("os") + MEMOIZE + _s("system") + MEMOIZE + b"\x86"  # memo 0, 1 of the outer stream
    dtype = _g("numpy", "dtype") + _s("O8") + TUPLE1 + REDUCE
    state = (
        b"}("
        + b"".join(
            _s(k) + v
            for k, v in (
                ("subclass", _g("numpy", "ndarray")),
                ("shape", b"K\x01" + TUPLE1),
                ("order", _s("C")),
                ("dtype", dtype),
                ("allow_mmap", b"\x89"),
                ("numpy_array_alignment_bytes", b"N"),
            )
        )
        + b"u"
    )
    wrapper = _g("joblib.numpy_pickle", "NumpyArrayWrapper") + b")" + NEWOBJ + state + BUILD
    nested = b"\x80\x04" + _s("numpy") + MEMOIZE + _s("dtype") + MEMOIZE + BINGET + b"\x00" + BINGET + b"\x01"
    nested += STACK_GLOBAL + _s(command) + TUPLE1 + REDUCE + b"."
    return b"\x80\x04" + outer_names + wrapper + nested + b"\x86."


def test_a_gadget_pickle_load_reads_through_joblibs_memo_is_still_critical(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    data = _memo_confusion_payload(f"touch {marker}")
    outcome = _scan(tmp_path, data, "model.joblib")
    assert outcome.verdict is Verdict.FAILED
    assert any(f.id == "model-scan.pickle-gadget" and "os.system" in f.message for f in outcome.result.findings)
    # the payload is real: pickle.load runs it (in a throwaway interpreter)
    path = tmp_path / "model.joblib"
    code = "import pickle, sys\ntry:\n    pickle.load(open(sys.argv[1], 'rb'))\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code, str(path)], check=False, timeout=60, capture_output=True)
    assert marker.exists()


def test_pandas_names_are_exact_and_none_reads_files_or_evaluates(tmp_path: Path) -> None:
    assert PANDAS <= ALLOWED
    for ref in PANDAS:
        assert judge(ref)[0] == "allowed", ref
    for ref in ("pandas.io.pickle.read_pickle", "pandas.core.computation.eval.eval", "pandas.io.parsers.readers.read_csv",
                "pandas.core.frame.DataFrame.query", "zoneinfo.ZoneInfo._unpickle", "pandas"):  # fmt: skip
        assert judge(ref)[0] != "allowed", ref
