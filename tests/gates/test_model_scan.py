"""The model-file scanner against a corpus of real benign models and real payloads (built in tmp)."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Severity, Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates._model_scan.allowlist import ALLOWED, SKLEARN, judge
from airflow_mlsecops.gates._model_scan.pickles import analyze_pickle
from airflow_mlsecops.gates._model_scan.source import ByteSource
from airflow_mlsecops.gates.model_scan import GATE_NAME, REPORT_FILE, ScanLimits, scan_model
from tests.gates.model_corpus import Sample


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Sample]]:
    """The corpus, written by a fresh interpreter: what a clean training process writes.

    Written in this process, the files would depend on what earlier tests imported: once Airflow's
    DagBag has imported ``dill``, ``joblib.dump`` writes ``dill._dill`` references into benign models.
    """
    import dataclasses
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    root = tmp_path_factory.mktemp("model-corpus")
    code = (
        "import dataclasses, json, sys; from pathlib import Path; from tests.gates.model_corpus import build_corpus;"
        "print(json.dumps([dataclasses.asdict(s) for s in build_corpus(Path(sys.argv[1]))]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    fields = {f.name for f in dataclasses.fields(Sample)}
    return root, [Sample(**{k: v for k, v in s.items() if k in fields}) for s in json.loads(done.stdout.splitlines()[-1])]


def _report(outcome) -> dict:
    return json.loads(outcome.files[REPORT_FILE])


def test_benign_models_pass(corpus) -> None:
    root, samples = corpus
    wrong = {}
    for sample in (s for s in samples if not s.malicious):
        outcome = scan_model(str(root / sample.path))
        if outcome.verdict is not Verdict.PASSED:
            wrong[sample.path] = [f.message for f in outcome.result.findings][:3]
    assert not wrong, wrong  # zero false positives


def test_every_payload_is_caught_with_its_reference(corpus) -> None:
    root, samples = corpus
    missed, unexplained = [], {}
    for sample in (s for s in samples if s.malicious):
        outcome = scan_model(str(root / sample.path))
        findings = outcome.result.findings
        if outcome.verdict is Verdict.PASSED or not findings:
            missed.append(sample.path)
            continue
        if sample.ref and not any(sample.ref in f.message for f in findings):
            unexplained[sample.path] = f"no finding names {sample.ref!r}: {[f.message for f in findings][:3]}"
        if sample.finding and not any(f.id == sample.finding for f in findings):
            unexplained[sample.path] = f"no {sample.finding}: {[f.id for f in findings]}"
    assert not missed, missed  # zero missed payloads
    assert not unexplained, unexplained


def test_formats_are_detected_by_content_not_by_name(corpus) -> None:
    root, samples = corpus
    wrong = {}
    for sample in (s for s in samples if s.fmt):
        files = _report(scan_model(str(root / sample.path)))["files"]
        if len(files) != 1 or not files[0]["format"].startswith(sample.fmt):
            wrong[sample.path] = [f["format"] for f in files]
    assert not wrong, wrong
    # a pickle renamed .safetensors / .md is still read as the pickle it is
    renamed = _report(scan_model(str(root / "malicious/model.safetensors")))["files"][0]
    assert renamed["format"] == "pickle" and renamed["globals"] == {"posix.system": 1}


def test_scanning_the_whole_corpus_never_runs_a_payload(corpus) -> None:
    root, samples = corpus
    markers = root / "markers"
    outcome = scan_model(str(root))
    assert outcome.verdict is Verdict.FAILED
    assert list(markers.iterdir()) == []
    report = _report(outcome)
    assert report["totals"]["files"] == len(report["files"]) > len(samples)
    bad = {f["path"] for f in report["files"] if f["verdict"] != "passed"}
    assert all(path.startswith(("malicious/",)) for path in bad), sorted(p for p in bad if not p.startswith("malicious/"))
    assert list(markers.iterdir()) == []


def test_report_subject_metrics_and_locations(corpus) -> None:
    root, _ = corpus
    target = root / "malicious/payload.pt"
    outcome = scan_model(str(target))
    result = outcome.result
    assert result.gate == GATE_NAME
    assert [s.name for s in result.subjects] == [str(target.absolute())]
    assert result.subjects[0].sha256 == sha256_path(target)
    critical = [f for f in result.findings if f.severity is Severity.CRITICAL]
    assert critical and critical[0].location == "archive/data.pkl in payload.pt @ byte 2"
    assert "posix.system" in critical[0].message
    assert critical[0].atlas and critical[0].owasp_ml == ("ML06:2023",)
    for key in ("files", "bytes", "seconds", "mb_per_s", "findings_critical", "findings_high"):
        assert key in result.metrics
    assert result.metrics["findings_critical"] >= 1
    (entry,) = _report(outcome)["files"]
    assert entry["format"] == "pytorch-zip" and entry["verdict"] == "failed"
    assert entry["globals"] == {"posix.system": 1}
    assert {p["name"] for p in entry["parts"]} >= {
        "payload.pt",
        "archive/data.pkl in payload.pt",
        "archive/version in payload.pt",
    }


def test_pickle_offsets_point_at_the_reference(tmp_path: Path) -> None:
    body = b"\x80\x02" + b"cos\nsystem\n" + b"X\x04\x00\x00\x00true\x85R."
    path = tmp_path / "model.pkl"
    path.write_bytes(body)
    (finding,) = scan_model(str(path)).result.findings
    assert finding.location == "model.pkl @ byte 2" and finding.id == "model-scan.pickle-gadget"
    assert body[2:3] == b"c"


def test_benign_mlflow_directory_reports_every_file(corpus) -> None:
    root, _ = corpus
    outcome = scan_model(str(root / "benign/mlflow_cloudpickle"))
    assert outcome.verdict is Verdict.PASSED, [f.message for f in outcome.result.findings]
    files = {f["path"]: f for f in _report(outcome)["files"]}
    assert {"MLmodel", "conda.yaml", "requirements.txt", "model.pkl"} <= set(files)
    assert files["MLmodel"]["format"] == "mlflow-mlmodel" and files["MLmodel"]["verdict"] == "passed"
    model = files["model.pkl"]
    assert model["format"] == "pickle" and model["verdict"] == "passed"
    assert "sklearn.pipeline.Pipeline" in model["globals"] and all(count >= 1 for count in model["globals"].values())
    assert outcome.result.metrics["files"] == len(files)


def test_warn_only_records_warned(corpus) -> None:
    root, _ = corpus
    outcome = scan_model(str(root / "malicious/system_p4.pkl"), warn_only=True)
    assert outcome.verdict is Verdict.WARNED
    assert outcome.result.warn_only


def test_missing_path_is_an_error_not_a_pass(tmp_path: Path) -> None:
    outcome = scan_model(str(tmp_path / "absent.pkl"))
    assert outcome.verdict is Verdict.ERROR
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    assert scan_model(str(empty)).verdict is Verdict.ERROR


def test_symlink_in_model_directory_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    os.symlink("/etc/hostname", model / "secret.txt")
    outcome = scan_model(str(model))
    assert outcome.verdict is Verdict.ERROR
    assert "symbolic link" in outcome.result.summary


def test_h5_and_onnx_without_their_readers_are_not_passed(corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = corpus
    monkeypatch.setitem(sys.modules, "h5py", None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    h5 = scan_model(str(root / "benign/model.h5"))
    assert h5.verdict is Verdict.ERROR  # could not be judged: exit 2, never a pass
    assert any("cannot inspect H5 without the formats extra" in f.message for f in h5.result.findings)
    onnx = scan_model(str(root / "benign/model.onnx"))
    assert onnx.verdict is Verdict.ERROR
    assert any("cannot inspect ONNX" in f.message for f in onnx.result.findings)
    assert _report(h5)["files"][0]["verdict"] == "error"


def test_allow_globals_admits_exact_names_but_never_gadgets(corpus) -> None:
    root, _ = corpus
    path = str(root / "malicious/unknown_class.pkl")
    assert scan_model(path).verdict is Verdict.FAILED
    assert scan_model(path, allow_globals=["mypackage.models.Custom"]).verdict is Verdict.PASSED
    assert scan_model(path, allow_globals=["mypackage.models"]).verdict is Verdict.FAILED  # no prefixes
    with pytest.raises(ConfigurationError, match="gadget"):
        scan_model(path, allow_globals=["os.system"])


def test_allowlist_is_exact_and_excludes_gadgets() -> None:
    assert judge("numpy.core.multiarray._reconstruct") == ("allowed", "")
    assert judge("numpy._core.multiarray._reconstruct") == ("allowed", "")
    assert judge("numpy.testing._private.utils.runstring")[0] == "dangerous"
    assert judge("numpy.random.something_new") == ("unknown", "")
    for gadget in (
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "builtins.open",
        "builtins.compile",
        "os.system",
        "posix.system",
        "subprocess.Popen",
        "runpy._run_code",
        "timeit.timeit",
        "cProfile.run",
        "pydoc.pipepager",
        "importlib.import_module",
        "webbrowser.open",
        "socket.create_connection",
        "shutil.rmtree",
    ):
        assert judge(gadget)[0] == "dangerous", gadget
    assert not any(judge(name)[0] != "allowed" for name in ALLOWED)
    assert not any(name.endswith((".*", ".")) for name in ALLOWED)
    assert len(SKLEARN) > 200


def test_limits_are_enforced_and_validated(corpus, tmp_path: Path) -> None:
    import tarfile

    root, _ = corpus
    tight = ScanLimits(max_total_uncompressed_bytes=1000)
    outcome = scan_model(str(root / "benign/models_gzip.joblib"), limits=tight)
    assert outcome.verdict is Verdict.FAILED
    assert any(f.id == "model-scan.limit" and "total limit" in f.message for f in outcome.result.findings)
    bundle = tmp_path / "bundle.tgz"
    with tarfile.open(bundle, "w:gz") as tf:
        tf.add(root / "benign/weights.npy", arcname="model/weights.npy")
    assert scan_model(str(bundle)).verdict is Verdict.PASSED
    shallow = scan_model(str(bundle), limits=ScanLimits(max_archive_depth=1))  # gzip, then a tar inside it
    assert shallow.verdict is Verdict.FAILED
    assert any(f.id == "model-scan.archive-depth" for f in shallow.result.findings)
    with pytest.raises(ValueError, match="positive"):
        ScanLimits(max_members=0)


def test_declared_payload_sizes_are_skipped_not_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.pkl"
    huge.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"tiny")  # claims a 1 TiB BINBYTES8
    started = time.perf_counter()
    outcome = scan_model(str(huge))
    assert time.perf_counter() - started < 5
    assert outcome.verdict is Verdict.ERROR  # truncated: could not be judged
    assert any(f.id == "model-scan.unknown-format" and "runs past the end" in f.message for f in outcome.result.findings)


def test_large_array_pickle_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "big.pkl"
    with open(path, "wb") as fh:
        pickle.dump(np.zeros(6_000_000), fh, protocol=4)  # 48 MB
    outcome = scan_model(str(path))
    assert outcome.verdict is Verdict.PASSED
    size = path.stat().st_size
    with open(path, "rb", buffering=0) as fh:
        started = time.perf_counter()
        analysis = analyze_pickle(ByteSource(fh, size=size, seekable=True))
        elapsed = time.perf_counter() - started
    assert analysis.complete and analysis.end == size
    assert elapsed < 0.05  # the 48 MB payload is seeked over, not read


def test_static_analysis_resolves_stack_globals_through_the_memo() -> None:
    def s(text: str) -> bytes:
        return b"\x8c" + bytes([len(text)]) + text.encode()

    stream = b"\x80\x04" + s("builtins") + b"\x94" + s("exec") + b"q\x05" + b"0" + b"0" + b"h\x00h\x05\x93" + s("1") + b"\x85R."
    analysis = analyze_pickle(ByteSource.from_bytes(stream))
    assert analysis.complete
    assert set(analysis.refs) == {"builtins.exec"} and analysis.calls["builtins.exec"] == 1
    computed = b"\x80\x04" + s("builtins") + s("str") + b"\x93" + s("os") + b"\x85R" + s("system") + b"\x93."
    result = analyze_pickle(ByteSource.from_bytes(computed))
    assert any(issue.kind == "dynamic-global" and issue.severity == "critical" for issue in result.issues)


def test_protocol_0_text_names_are_mapped_like_find_class() -> None:
    analysis = analyze_pickle(ByteSource.from_bytes(b"c__builtin__\neval\n(Vx\ntR."))
    assert set(analysis.refs) == {"builtins.eval"}
    assert analysis.refs["builtins.eval"].written_as == "__builtin__.eval"


def test_text_that_is_a_pickle_is_judged_as_one(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text("channels:\n- conda-forge\ndependencies:\n- python=3.11\n")
    (tmp_path / "notes.txt").write_text("cos\nsystem\n(S'true'\ntR.")  # an ASCII protocol-0 pickle
    outcome = scan_model(str(tmp_path))
    files = {f["path"]: f for f in _report(outcome)["files"]}
    assert files["conda.yaml"]["verdict"] == "passed" and files["conda.yaml"]["format"] == "text"
    assert files["notes.txt"]["verdict"] == "failed" and files["notes.txt"]["globals"] == {"os.system": 1}


def test_zip_with_a_pickle_prefix_is_a_polyglot(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weights.npy", b"")
    prefix = pickle.dumps({"ok": 1}, protocol=4)
    path = tmp_path / "model.bin"
    path.write_bytes(b"cos\nsystem\n(S'true'\ntR." + buf.getvalue())
    outcome = scan_model(str(path))
    assert outcome.verdict is Verdict.FAILED
    assert any("os.system" in f.message for f in outcome.result.findings)
    assert prefix  # a complete pickle followed by anything else is trailing data (see the corpus)


class _Stub:
    """Stands in for whatever a recording unpickler resolves: accepts any call, state and item."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs):
        return _Stub()

    def __setstate__(self, state) -> None:
        pass

    def append(self, item) -> None:
        pass

    def extend(self, items) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        pass


class _Recorder(pickle.Unpickler):
    """CPython's own unpickler, but find_class only records the name and returns a harmless stub."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.names: list[str] = []

    def find_class(self, module: str, name: str):
        self.names.append(f"{module}.{name}")
        return _Stub

    def persistent_load(self, pid):
        return _Stub()


def test_mutated_files_never_crash_the_scanner_nor_slip_past_it(corpus, tmp_path: Path) -> None:
    """Differential check: whenever the scanner passes a mutated pickle, CPython's unpickler must
    not import anything off the allowlist from it (names whose module is not an identifier cannot
    be imported and are left out)."""
    import _compat_pickle
    import random

    root, _ = corpus
    seeds = [root / p for p in ("malicious/system_p0.pkl", "malicious/system_p4.pkl", "malicious/memo_trick.pkl",
                                "malicious/getattr_chain.pkl", "benign/logreg.pkl")]  # fmt: skip
    rng = random.Random(0)
    slipped, errors = [], []
    for i in range(300):
        data = bytearray(rng.choice(seeds).read_bytes())
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[pos] = rng.randrange(256)
            else:
                del data[pos : pos + rng.randint(1, 8)]
        path = tmp_path / f"mutant{i}.bin"
        path.write_bytes(bytes(data))
        outcome = scan_model(str(path))
        if outcome.error is not None:  # a crash (a corrupt mutant is an error verdict without one)
            errors.append(outcome.result.summary)
        if outcome.verdict is not Verdict.PASSED:
            continue
        recorder = _Recorder(bytes(data))
        try:
            recorder.load()
        except Exception:
            pass
        for ref in recorder.names:
            module, _, name = ref.partition(".")  # protocol < 3 names as find_class receives them
            module, name = _compat_pickle.NAME_MAPPING.get(
                (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
            )
            if all(part.isidentifier() for part in module.split(".")) and judge(f"{module}.{name}")[0] != "allowed":
                slipped.append((bytes(data[:60]), ref))
    assert not errors, errors
    assert not slipped, slipped


def test_second_opinion_is_recorded_but_never_decides(corpus) -> None:
    root, _ = corpus
    benign = scan_model(str(root / "benign/logreg.pkl"), second_opinion=True)
    assert benign.verdict is Verdict.PASSED
    assert _report(benign)["second_opinion"]["tool"] == "modelscan"
    missed_by_modelscan = scan_model(str(root / "malicious/timeit.pkl"), second_opinion=True)
    assert missed_by_modelscan.verdict is Verdict.FAILED
    assert "second_opinion" in missed_by_modelscan.result.details


# -- issue 11, class 1: arguments decoded exactly as CPython's unpicklers decode them -------------

_C_FORMS = {  # argument forms CPython's C unpickler (pickle.load, numpy, torch, pandas) accepts
    "INT": [b"010", b"0010", b"+1", b" 1", b"\t7", b"7\x00junk", b"\x00", b"0x1f", b"0o17", b"1_0", b"7\r"],
    "LONG": [b"+7L", b" 7", b"7\x00L", b"0b11", b"1_000L"],
    "FLOAT": [b"inf", b"-Infinity", b"1.5\x00x", b".5", b"5."],
}


@pytest.mark.parametrize(("opcode", "form"), [(op, form) for op, forms in _C_FORMS.items() for form in forms])
def test_text_arguments_cpython_accepts_never_hide_a_payload(tmp_path: Path, opcode: str, form: bytes) -> None:
    import gzip

    code = {"INT": b"I", "LONG": b"L", "FLOAT": b"F"}[opcode]
    literal = code + form + b"\n"
    pickle.loads(literal + b".")  # CPython's C unpickler reads the form (a lone literal: nothing to run)
    stream = literal + b"0cos\nsystem\n(Vtrue\ntR."
    for name, data in (("model.pkl", stream), ("model.pkl.gz", gzip.compress(stream))):
        path = tmp_path / name
        path.write_bytes(data)
        outcome = scan_model(str(path))
        assert outcome.verdict is Verdict.FAILED, (form, name)
        assert any("os.system" in f.message for f in outcome.result.findings), (form, name)
        assert "text" not in _report(outcome)["files"][0]["format"]


def test_memo_indices_are_read_as_cpython_reads_them(tmp_path: Path) -> None:
    for index in (b"0\x00", b"00", b"+0", b" 0", b"0_0", b"0\r"):
        stream = b"Vos\np" + index + b"\n0Vsystem\np1\n0(g" + index + b"\ng1\n\x93Vtrue\ntR."
        analysis = analyze_pickle(ByteSource.from_bytes(stream))
        assert "os.system" in analysis.refs, index
        path = tmp_path / "m.pkl"
        path.write_bytes(stream)
        assert scan_model(str(path)).verdict is Verdict.FAILED, index


def test_argument_decoders_match_both_cpython_unpicklers() -> None:
    from airflow_mlsecops.gates._model_scan import pickle_args as args

    forms = [f for forms in _C_FORMS.values() for f in forms] + [b"", b"01", b"00", b"-0", b"1e999", b" 1.5", b"1_0.5", b"08"]
    pairs = {b"I": (args.c_int, args.py_int), b"L": (args.c_long, args.py_long), b"F": (args.c_float, args.py_float)}
    for code, (c_read, py_read) in pairs.items():
        for form in forms:
            for loads, read in ((pickle.loads, c_read), (pickle._loads, py_read)):  # literals only: nothing to run
                try:
                    expected = ("ok", loads(code + form + b"\n."))
                except Exception:
                    expected = ("error", None)
                try:
                    got = ("ok", read(form))
                except args.ArgumentRejected:
                    got = ("error", None)
                assert got[0] == expected[0] and (got[0] == "error" or args.same(got[1], expected[1])), (code, form, loads)
                assert got[0] == "error" or type(got[1]) is type(expected[1]), (code, form, loads)


def test_pickle_starts_that_cannot_be_read_are_never_text(tmp_path: Path) -> None:
    long_line = tmp_path / "long.pkl"  # a protocol-0 STRING longer than the scanner reads (CPython has no limit)
    long_line.write_bytes(b"S'" + b"a" * (17 << 20) + b"'\n0cos\nsystem\n(S'true'\ntR.")
    outcome = scan_model(str(long_line))
    assert outcome.verdict is Verdict.FAILED
    assert any(f.id == "model-scan.pickle-undecodable" for f in outcome.result.findings)
    cut = tmp_path / "cut.pkl"  # joblib's pure-Python unpickler imports a module named by a line cut by EOF
    cut.write_bytes(b"(cantigravity\nx")
    outcome = scan_model(str(cut))
    assert outcome.verdict is Verdict.FAILED
    assert any("antigravity" in f.message for f in outcome.result.findings)


# -- issue 11, class 4: Keras names are allowed one by one, never wholesale -----------------------


def _keras_layer(module: str, class_name: str, config: object) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (_keras_layer("keras.utils", "get_file", {"fname": "x", "origin": "http://127.0.0.1:9/x"}), "keras.utils.get_file"),
        (_keras_layer("keras.utils", "function", "get_file"), "keras.utils.get_file"),
        (_keras_layer("keras.src.utils.file_utils", "get_file", {}), "get_file"),
        (_keras_layer("keras.layers", "TFSMLayer", {"filepath": "/tmp/saved"}), "TFSMLayer"),
        (_keras_layer("keras.layers", "TFOpLambda", {"function": "io.write_file"}), "TFOpLambda"),
        (_keras_layer("keras.saving", "load_model", {}), "keras.saving.load_model"),
        (_keras_layer("keras.layers", "SomethingNew", {}), "keras.layers.SomethingNew"),
        (_keras_layer("keras.layers", "StringLookup", {"vocabulary": "gs://bucket/vocab.txt"}), "vocabulary"),
        ({"class_name": "TensorFlowOpLayer", "config": {"node_def": {}}}, "TensorFlowOpLayer"),
    ],
)
def test_keras_names_that_fetch_or_run_code_are_rejected(tmp_path: Path, bad: dict, expected: str) -> None:
    benign = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [
                _keras_layer("keras.layers", "InputLayer", {"batch_shape": [None, 4], "name": "in"}),
                _keras_layer(
                    "keras.layers",
                    "Dense",
                    {
                        "units": 2,
                        "activation": "relu",
                        "kernel_initializer": _keras_layer("keras.initializers", "GlorotUniform", {"seed": None}),
                        "kernel_regularizer": _keras_layer("keras.regularizers", "L1L2", {"l1": 0.0, "l2": 0.1}),
                        "kernel_constraint": _keras_layer("keras.constraints", "NonNeg", {}),
                        "dtype": _keras_layer("keras", "DTypePolicy", {"name": "float32"}),
                    },
                ),
                _keras_layer("keras.layers", "Activation", {"activation": "gelu"}),
            ],
        },
    }
    good = tmp_path / "good.json"
    good.write_text(json.dumps(benign))
    assert scan_model(str(good)).verdict is Verdict.PASSED
    benign["config"]["layers"].append(bad)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(benign))
    outcome = scan_model(str(path))
    assert outcome.verdict is Verdict.FAILED
    assert any(f.id == "model-scan.keras-unsafe-object" and expected in f.message for f in outcome.result.findings), [
        f.message for f in outcome.result.findings
    ]


# -- issue 11, class 5: MLflow models whose loading runs code they ship ----------------------------


def test_mlflow_models_that_run_shipped_code_are_rejected_unless_allowed(corpus) -> None:
    root, _ = corpus
    for name, what in (
        ("mlflow_from_code", "model_code_path"),
        ("mlflow_code_paths", "sys.path"),
        ("mlflow_loader", "custom_loader"),
    ):
        path = str(root / "malicious" / name)
        outcome = scan_model(path)
        assert outcome.verdict is Verdict.FAILED, name
        code = [f for f in outcome.result.findings if f.id == "model-scan.mlflow-model-code"]
        assert code and code[0].severity is Severity.CRITICAL and any(what in f.message for f in code), name
        allowed = scan_model(path, allow_model_code=True)
        # Recorded instead of rejected, but the shipped code was not scanned: warned (incomplete), never passed.
        assert allowed.verdict is Verdict.WARNED, [f.message for f in allowed.result.findings]
        assert allowed.result.not_performed == ("model-scan.model-code-not-scanned",)
        report = _report(allowed)
        assert report["allow_model_code"] is True
        (mlmodel,) = [f for f in report["files"] if f["path"] == "MLmodel"]
        assert mlmodel["parts"][0]["model_code"], name  # recorded, not hidden
    assert list((root / "markers").iterdir()) == []
