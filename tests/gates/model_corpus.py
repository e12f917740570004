"""Builds the model-scanner test corpus into a directory at test time (nothing generated is committed).

:func:`build_corpus` writes benign model files (scikit-learn via pickle, cloudpickle, joblib and
skops, MLflow model directories, numpy, safetensors, Keras-like zips and H5, ONNX, a PyTorch-style
zip) and malicious ones (pickle payloads in every container the scanner reads, gadget chains,
hostile archives, broken files), and returns one :class:`Sample` per artifact saying what the
scanner must conclude. Every payload, if it ever ran, would create a file under ``markers/``: the
tests assert that directory stays empty.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import shutil
import struct
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One corpus artifact.

    :param path: the file or directory, relative to the corpus root.
    :param malicious: whether the scanner must reject it.
    :param fmt: the format the scanner must report for the file (prefix match), if one file.
    :param ref: a reference or text that a finding message must contain (the payload's name).
    :param finding: a finding id that must be present.
    """

    path: str
    malicious: bool
    fmt: str | None = None
    ref: str | None = None
    finding: str | None = None


# -- a tiny pickle assembler (for references that cannot be pickled from here, e.g. torch) ----------


def _s(text: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4) or BINUNICODE."""
    data = text.encode()
    return (b"\x8c" + bytes([len(data)]) if len(data) < 256 else b"X" + struct.pack("<I", len(data))) + data


def _g(module: str, name: str) -> bytes:
    """GLOBAL (text form, every protocol)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _sg(module: str, name: str) -> bytes:
    """STACK_GLOBAL from two pushed strings (protocol 4)."""
    return _s(module) + _s(name) + b"\x93"


PROTO2 = b"\x80\x02"
# marshalled bytecode of ``lambda x: x`` as Keras 3 stores it (never unmarshalled by these tests)
LAMBDA_CODE = (
    "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wYAAACXAHwAUwApAU6pAKkB2gF4cwEAAAAg+gg8c3RyaW5nPvoIPGxhbWJkYT5yBQAAAAEAAABzBgAAAIAAkDGAAPMAAAAA"
)
PROTO4 = b"\x80\x04"


class _Payload:
    """Pickles to ``func(*args)``."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _fit_models() -> dict[str, Any]:
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC

    warnings.filterwarnings("ignore")
    X, y = make_classification(150, 5, n_informative=3, random_state=0)
    cats = np.c_[X[:, :3], np.random.RandomState(0).randint(0, 3, size=(150, 1))]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("num", StandardScaler(), [0, 1, 2]), ("cat", OneHotEncoder(handle_unknown="ignore"), [3])]),
            ),
            ("clf", LogisticRegression(max_iter=300)),
        ]
    ).fit(cats, y)
    return {
        "logreg": LogisticRegression(max_iter=300).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
        "gboost": GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y),
        "hgboost": HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y),
        "pipeline": pipe,
        "svc": SVC(probability=True, random_state=0).fit(X, y),
        "kmeans": KMeans(n_clusters=3, n_init=2, random_state=0).fit(X),
        "mlp": MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y),
    }


def build_corpus(root: Path) -> list[Sample]:
    """Write the corpus under ``root`` (created) and describe it. ``root / "markers"`` must stay empty."""
    import cloudpickle
    import joblib

    root.mkdir(parents=True, exist_ok=True)
    markers = root / "markers"
    markers.mkdir()
    benign = root / "benign"
    bad = root / "malicious"
    benign.mkdir()
    bad.mkdir()
    samples: list[Sample] = []

    def marker(name: str) -> str:
        return str(markers / name)

    def touch(name: str) -> str:
        return f"touch {marker(name)}"

    models = _fit_models()

    # ---- benign -----------------------------------------------------------------------------
    for proto in (0, 2, 4, 5):
        (benign / f"models_p{proto}.pkl").write_bytes(pickle.dumps(models, protocol=proto))
        samples.append(Sample(f"benign/models_p{proto}.pkl", False, "pickle"))
    (benign / "logreg.pkl").write_bytes(pickle.dumps(models["logreg"]))
    samples.append(Sample("benign/logreg.pkl", False, "pickle"))
    (benign / "models.cloudpickle").write_bytes(cloudpickle.dumps(models))
    samples.append(Sample("benign/models.cloudpickle", False, "pickle"))
    for compress, fmt in (
        (0, "joblib"),
        ("zlib", "zlib/joblib"),
        ("gzip", "gzip/joblib"),
        ("bz2", "bz2/joblib"),
        ("lzma", "lzma/joblib"),
        ("xz", "xz/joblib"),
        ("lz4", "lz4/joblib"),
    ):
        name = f"models_{compress or 'raw'}.joblib"
        joblib.dump(models, benign / name, compress=(compress, 3) if compress else 0)
        samples.append(Sample(f"benign/{name}", False, fmt))
    joblib.dump(
        {
            "arrays": [np.zeros(5, dtype=dt) for dt in ("i1", "f2", "c16", "M8[s]", "U3", ("f8", (2,)))],
            "structured": np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
            "objects": np.array(["x", None, 3], dtype=object),
        },
        benign / "arrays.joblib",
    )
    samples.append(Sample("benign/arrays.joblib", False, "joblib"))
    from tests.gates.model_corpus_tabular import write_tabular

    samples.extend(write_tabular(benign))  # ColumnTransformer pipelines and pandas bundles (issue 11)

    import skops.io

    skops.io.dump(models["pipeline"], benign / "pipeline.skops")
    samples.append(Sample("benign/pipeline.skops", False, "skops"))

    import mlflow.sklearn

    for fmt in ("skops", "cloudpickle"):
        target = benign / f"mlflow_{fmt}"
        mlflow.sklearn.save_model(
            models["pipeline"],
            str(target),
            serialization_format=fmt,
            pip_requirements=["scikit-learn", "numpy"],
            **({"skops_trusted_types": []} if fmt == "skops" else {}),
        )
        samples.append(Sample(f"benign/mlflow_{fmt}", False))

    np.save(benign / "weights.npy", np.random.RandomState(0).rand(10, 4))
    samples.append(Sample("benign/weights.npy", False, "npy"))
    np.savez(benign / "weights.npz", a=np.arange(10), b=np.ones((3, 3), dtype="f4"))
    samples.append(Sample("benign/weights.npz", False, "npz"))
    np.savez_compressed(benign / "weights_compressed.npz", a=np.arange(1000), b=np.zeros((30, 30)))
    samples.append(Sample("benign/weights_compressed.npz", False, "npz"))

    (benign / "model.safetensors").write_bytes(
        _safetensors({"w": np.arange(6, dtype="<f4").reshape(2, 3), "b": np.array([1, 2], dtype="<i8")})
    )
    samples.append(Sample("benign/model.safetensors", False, "safetensors"))

    _keras_zip(benign / "model.keras", lambda_layer=False)
    samples.append(Sample("benign/model.keras", False, "keras"))
    _keras_zip(benign / "cnn.keras", lambda_layer=False, config=_keras_rich_config())
    samples.append(Sample("benign/cnn.keras", False, "keras"))
    _keras_h5(benign / "model.h5", lambda_layer=False)
    samples.append(Sample("benign/model.h5", False, "keras-h5"))
    _onnx(benign / "model.onnx", external=None)
    samples.append(Sample("benign/model.onnx", False, "onnx"))
    onnx_external = benign / "onnx_external_data"
    onnx_external.mkdir()
    _onnx(onnx_external / "model.onnx", external="weights.bin")
    (onnx_external / "weights.bin").write_bytes(np.array([1.0, 2.0], dtype="<f4").tobytes())
    samples.append(Sample("benign/onnx_external_data", False))
    _torch_zip(benign / "state_dict.pt", data_pkl=_torch_state_dict_pickle())
    samples.append(Sample("benign/state_dict.pt", False, "pytorch-zip"))
    (benign / "legacy.pt").write_bytes(_torch_legacy(_torch_state_dict_pickle()))
    samples.append(Sample("benign/legacy.pt", False, "torch-legacy"))

    hf = benign / "hf_model"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 8}))
    (hf / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"vocab": {"a": 0}}}))
    (hf / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (hf / "model.safetensors").write_bytes(_safetensors({"emb": np.zeros((4, 2), dtype="<f2")}))
    (hf / "README.md").write_text("# A model\n\nTrained on synthetic data.\n")
    samples.append(Sample("benign/hf_model", False))

    # ---- malicious --------------------------------------------------------------------------
    system = _Payload(os.system, touch("system"))
    for proto in (0, 2, 4):
        (bad / f"system_p{proto}.pkl").write_bytes(pickle.dumps(system, protocol=proto))
        samples.append(Sample(f"malicious/system_p{proto}.pkl", True, "pickle", "posix.system", "model-scan.pickle-gadget"))
    # os.system written literally, with GLOBAL (protocol 0 and 2) and STACK_GLOBAL (protocol 4)
    cmd = touch("os_system")
    (bad / "os_global_p0.pkl").write_bytes(_g("os", "system") + b"(V" + cmd.encode() + b"\ntR.")
    (bad / "os_global_p2.pkl").write_bytes(
        PROTO2 + _g("os", "system") + b"X" + struct.pack("<I", len(cmd)) + cmd.encode() + b"\x85R."
    )
    (bad / "os_stack_global_p4.pkl").write_bytes(PROTO4 + _sg("os", "system") + _s(cmd) + b"\x85R.")
    for name in ("os_global_p0.pkl", "os_global_p2.pkl", "os_stack_global_p4.pkl"):
        samples.append(Sample(f"malicious/{name}", True, "pickle", "os.system", "model-scan.pickle-gadget"))
    payload = pickle.dumps(system, protocol=4)
    for renamed in ("model.model", "model.safetensors", "pytorch_model.bin", "README.md"):
        (bad / renamed).write_bytes(payload)
        samples.append(Sample(f"malicious/{renamed}", True, "pickle", "posix.system"))
    for compress, fmt in ((0, "joblib"), ("zlib", "zlib/joblib"), ("gzip", "gzip/joblib"), ("lz4", "lz4/joblib")):
        name = f"payload_{compress or 'raw'}.joblib"
        joblib.dump(
            {"model": models["logreg"], "x": np.arange(100.0), "hook": system},
            bad / name,
            compress=(compress, 3) if compress else 0,
        )
        samples.append(Sample(f"malicious/{name}", True, fmt, "posix.system"))
    _torch_zip(bad / "payload.pt", data_pkl=pickle.dumps(system, protocol=2))
    samples.append(Sample("malicious/payload.pt", True, "pytorch-zip", "posix.system"))
    np.save(bad / "objects.npy", np.array([system, 1], dtype=object), allow_pickle=True)
    samples.append(Sample("malicious/objects.npy", True, "npy", "posix.system"))
    with zipfile.ZipFile(bad / "objects.npz", "w") as zf:
        buf = io.BytesIO()
        np.save(buf, np.array([system], dtype=object), allow_pickle=True)
        zf.writestr("a.npy", buf.getvalue())
    samples.append(Sample("malicious/objects.npz", True, "npz", "posix.system"))
    # memo trick: the names are pushed, memoized, popped, and fetched back from the memo
    memo = PROTO4 + _s("os") + b"\x94" + _s("system") + b"\x94" + b"00" + b"h\x00h\x01\x93" + _s(touch("memo")) + b"\x85R."
    (bad / "memo_trick.pkl").write_bytes(memo)
    samples.append(Sample("malicious/memo_trick.pkl", True, "pickle", "os.system", "model-scan.pickle-gadget"))
    memo_put = PROTO2 + b"Vos\np0\n0Vsystem\np1\n0" + b"\x80\x04g0\ng1\n\x93" + _s(touch("memo_put")) + b"\x85R."
    (bad / "memo_put.pkl").write_bytes(memo_put)
    samples.append(Sample("malicious/memo_put.pkl", True, "pickle", "os.system"))
    # protocol-0 arguments CPython reads in forms the scanner once could not decode (then judged it
    # "text"): INT 010 is octal 8 for the C unpickler; a NUL ends a C memo index; plain, gzip, torch zip
    octal = b"I010\n0" + _g("os", "system") + b"(V" + touch("octal").encode() + b"\ntR."
    (bad / "p0_octal_int.pkl").write_bytes(octal)
    samples.append(Sample("malicious/p0_octal_int.pkl", True, "pickle", "os.system", "model-scan.pickle-loader-dependent"))
    import gzip

    (bad / "p0_octal_int.pkl.gz").write_bytes(gzip.compress(octal))
    samples.append(Sample("malicious/p0_octal_int.pkl.gz", True, "gzip/pickle", "os.system", "model-scan.pickle-gadget"))
    _torch_zip(
        bad / "p0_octal_int.pt", data_pkl=b"I00010\n0" + _g("os", "system") + b"(V" + touch("octal_pt").encode() + b"\ntR."
    )
    samples.append(Sample("malicious/p0_octal_int.pt", True, "pytorch-zip", "os.system", "model-scan.pickle-gadget"))
    nul_memo = b"Vos\np0\n0Vsystem\np1\n0\x80\x04g0\x00\ng1\x00x\n\x93" + _s(touch("nul_memo")) + b"\x85R."
    (bad / "p0_nul_memo.pkl").write_bytes(nul_memo)
    samples.append(Sample("malicious/p0_nul_memo.pkl", True, "pickle", "os.system", "model-scan.pickle-gadget"))
    # an opcode reading across its FRAME's end: pickle.load(file) drops the rest of the frame and runs
    # what pickle.loads (and a frame-blind scanner) reads as the payload of a string
    hidden = _g("os", "system") + b"(V" + touch("frame").encode() + b"\ntR."
    assert len(hidden) < 128, "the marker path is too long for this sample"
    frame_body = b"\x8c\x05ab"  # SHORT_BINUNICODE of 5 bytes, 2 of them inside the frame
    skew = (
        PROTO4 + b"\x95" + struct.pack("<Q", len(frame_body)) + frame_body + b"cde" + b"U" + bytes([len(hidden)]) + hidden + b"."
    )
    (bad / "frame_skew.pkl").write_bytes(skew)
    samples.append(Sample("malicious/frame_skew.pkl", True, "pickle", "frame", "model-scan.pickle-loader-dependent"))
    # the five gadgets modelscan misses
    code = f"open({marker('exec')!r}, 'w').close()"
    import cProfile
    import importlib
    import pydoc
    import timeit

    from numpy.testing._private.utils import runstring

    gadgets = {
        "timeit.pkl": (_Payload(timeit.timeit, code, "pass", None, 1), "timeit.timeit"),
        "cprofile.pkl": (_Payload(cProfile.run, code), "cProfile.run"),
        "pydoc.pkl": (_Payload(pydoc.pipepager, "x", touch("pydoc")), "pydoc.pipepager"),
        "runstring.pkl": (_Payload(runstring, code, {}), "numpy.testing._private.utils.runstring"),
        "import_module.pkl": (_Payload(importlib.import_module, "os"), "importlib.import_module"),
        "exec.pkl": (_Payload(exec, code), "builtins.exec"),
        "eval.pkl": (_Payload(eval, code), "builtins.eval"),
    }
    for name, (obj, ref) in gadgets.items():
        (bad / name).write_bytes(pickle.dumps(obj, protocol=4))
        samples.append(Sample(f"malicious/{name}", True, "pickle", ref, "model-scan.pickle-gadget"))
    # getattr chain: getattr(__import__('os'), 'system')('touch ...')
    chain = (
        PROTO2
        + _g("builtins", "getattr")
        + _g("builtins", "__import__")
        + b"Vos\n\x85R"
        + b"Vsystem\n\x86R"
        + b"V"
        + touch("getattr").encode()
        + b"\n\x85R."
    )
    (bad / "getattr_chain.pkl").write_bytes(chain)
    samples.append(Sample("malicious/getattr_chain.pkl", True, "pickle", "builtins.getattr", "model-scan.pickle-call-non-global"))
    # a name computed at load time: STACK_GLOBAL on the result of _codecs.encode('bf', 'rot13')
    rot = (
        PROTO4
        + _sg("_codecs", "encode")
        + _s("bf")
        + _s("rot13")
        + b"\x86R"
        + _s("system")
        + b"\x93"
        + _s(touch("rot13"))
        + b"\x85R."
    )
    (bad / "computed_name.pkl").write_bytes(rot)
    samples.append(Sample("malicious/computed_name.pkl", True, "pickle", "STACK_GLOBAL", "model-scan.pickle-dynamic-global"))
    (bad / "unknown_class.pkl").write_bytes(PROTO4 + _sg("mypackage.models", "Custom") + b")\x81.")
    samples.append(
        Sample("malicious/unknown_class.pkl", True, "pickle", "mypackage.models.Custom", "model-scan.pickle-unknown-global")
    )

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(func=os.system), bad / "untrusted.skops")
    samples.append(Sample("malicious/untrusted.skops", True, "skops", "posix.system", "model-scan.skops-untrusted-type"))
    _keras_zip(bad / "lambda.keras", lambda_layer=True)
    samples.append(Sample("malicious/lambda.keras", True, "keras", "Lambda", "model-scan.keras-lambda"))
    # Keras names that fetch or run code (CVE-2025-8747: keras.utils.get_file), as an object and as a function
    fetch = {"fname": marker("get_file"), "origin": "http://127.0.0.1:9/payload"}
    _keras_zip(
        bad / "get_file.keras", lambda_layer=False, config=_keras_rich_config(_keras_object("keras.utils", "get_file", fetch))
    )
    samples.append(Sample("malicious/get_file.keras", True, "keras", "keras.utils.get_file", "model-scan.keras-unsafe-object"))
    get_file_fn = _keras_rich_config(_keras_object("keras.utils", "function", "get_file"))
    _keras_zip(bad / "get_file_function.keras", lambda_layer=False, config=get_file_fn)
    samples.append(Sample("malicious/get_file_function.keras", True, "keras", "get_file", "model-scan.keras-unsafe-object"))
    tfsm = _keras_rich_config()
    tfsm["config"]["layers"].append(_keras_object("keras.layers", "TFSMLayer", {"filepath": "/tmp/x", "name": "tfsm"}))
    _keras_zip(bad / "tfsm_layer.keras", lambda_layer=False, config=tfsm)
    samples.append(Sample("malicious/tfsm_layer.keras", True, "keras", "TFSMLayer", "model-scan.keras-unsafe-object"))
    # a .keras zip with a Lambda layer hidden in another format's data: zip readers find it from the end
    hidden_zip = io.BytesIO()
    _keras_zip(hidden_zip, lambda_layer=True)
    keras_bytes = np.frombuffer(hidden_zip.getvalue(), dtype=np.uint8)
    (bad / "keras_in.safetensors").write_bytes(_safetensors({"w": np.zeros(4, dtype="<f4"), "blob": keras_bytes}))
    samples.append(Sample("malicious/keras_in.safetensors", True, "safetensors", "Lambda", "model-scan.polyglot"))
    np.save(bad / "keras_in.npy", keras_bytes)
    samples.append(Sample("malicious/keras_in.npy", True, "npy", "Lambda", "model-scan.keras-lambda"))
    (bad / "keras_in_middle.safetensors").write_bytes(
        _safetensors({"blob": keras_bytes, "w": np.zeros(40_000, dtype="<f4")})  # 160 KB after the zip: not in the tail
    )
    samples.append(Sample("malicious/keras_in_middle.safetensors", True, "safetensors", "Lambda", "model-scan.keras-lambda"))
    (bad / "keras_in_pickle.pkl").write_bytes(pickle.dumps({"weights": keras_bytes.tobytes()}, protocol=4))
    samples.append(Sample("malicious/keras_in_pickle.pkl", True, "pickle", "Lambda", "model-scan.polyglot"))
    _keras_h5(bad / "lambda.h5", lambda_layer=True)
    samples.append(Sample("malicious/lambda.h5", True, "keras-h5", "Lambda", "model-scan.keras-lambda"))
    onnx_dir = bad / "onnx_external"
    onnx_dir.mkdir()
    _onnx(onnx_dir / "model.onnx", external="../../etc/passwd")
    samples.append(
        Sample("malicious/onnx_external/model.onnx", True, "onnx", "../../etc/passwd", "model-scan.onnx-external-data")
    )
    _onnx(bad / "onnx_absolute.onnx", external="/etc/passwd")
    npz = io.BytesIO()
    np.savez(npz, vars_0=np.zeros(3), hook=np.array([system], dtype=object))
    _keras_zip(bad / "pickle_in_weights.keras", lambda_layer=False, weights_npz=npz.getvalue())
    samples.append(Sample("malicious/pickle_in_weights.keras", True, "keras", "posix.system", "model-scan.pickle-gadget"))
    samples.append(Sample("malicious/onnx_absolute.onnx", True, "onnx", "/etc/passwd", "model-scan.onnx-external-data"))

    with zipfile.ZipFile(bad / "traversal.zip", "w") as zf:
        zf.writestr("../evil.pkl", pickle.dumps({"benign": 1}))
        zf.writestr("model/ok.txt", "ok\n")
    samples.append(Sample("malicious/traversal.zip", True, "zip", "../evil.pkl", "model-scan.archive-traversal"))
    with zipfile.ZipFile(bad / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf, zf.open("weights.bin", "w") as member:
        zero = bytes(1 << 20)
        for _ in range(100):  # 100 MB of zeros, about 100 KB on disk
            member.write(zero)
    samples.append(Sample("malicious/bomb.zip", True, "zip", "decompression bomb", "model-scan.archive-bomb"))
    with tarfile.open(bad / "payload.tar.gz", "w:gz") as tf:
        data = pickle.dumps(system)
        info = tarfile.TarInfo("model/model.pkl")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("model/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    samples.append(Sample("malicious/payload.tar.gz", True, "gzip/tar", "posix.system"))
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as zf:
        zf.writestr("inner.pkl", payload)
    for level in range(5):
        outer = io.BytesIO()
        with zipfile.ZipFile(outer, "w") as zf:
            zf.writestr(f"level{level}.zip", nested.getvalue())
        nested = outer
    (bad / "nested.zip").write_bytes(nested.getvalue())
    samples.append(Sample("malicious/nested.zip", True, "zip", "nested", "model-scan.archive-depth"))
    (bad / "legacy_payload.pt").write_bytes(_torch_legacy(payload))
    samples.append(Sample("malicious/legacy_payload.pt", True, "torch-legacy", "posix.system"))
    corrupt = io.BytesIO()
    with zipfile.ZipFile(corrupt, "w") as zf:
        zf.writestr("model.json", '{"weights": [1, 2, 3]}')
    raw_zip = bytearray(corrupt.getvalue())
    raw_zip[raw_zip.index(b'{"weights"') + 2] ^= 0x01  # one flipped bit: the CRC no longer matches
    (bad / "bad_crc.zip").write_bytes(bytes(raw_zip))
    samples.append(Sample("malicious/bad_crc.zip", True, "zip", "CRC", "model-scan.unreadable"))
    with tarfile.open(bad / "traversal.tar", "w") as tf:
        info = tarfile.TarInfo("../../outside.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"hi\n"))
    samples.append(Sample("malicious/traversal.tar", True, "tar", "../../outside.txt", "model-scan.archive-traversal"))
    (bad / "joblib_padding.joblib").write_bytes(_joblib_padding_payload(touch("padding")))
    samples.append(Sample("malicious/joblib_padding.joblib", True, "joblib", "os.system", "model-scan.pickle-gadget"))
    from tests.gates.model_corpus_joblib import write_wrapper_payloads

    samples.extend(write_wrapper_payloads(bad, touch))  # joblib's array wrapper built indirectly (issue 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(bad / "duplicate.zip", "w") as zf:
            zf.writestr("model.json", "{}")
            zf.writestr("model.json", '{"a": 1}')
    samples.append(Sample("malicious/duplicate.zip", True, "zip", "two members", "model-scan.archive-duplicate"))
    benign_pickle = pickle.dumps(models["forest"], protocol=4)
    (bad / "truncated.pkl").write_bytes(benign_pickle[: len(benign_pickle) // 2])
    samples.append(Sample("malicious/truncated.pkl", True, "pickle", "does not parse", "model-scan.pickle-malformed"))
    (bad / "trailing.pkl").write_bytes(pickle.dumps({"a": 1}) + b"\x00\x01hidden payload for another loader")
    samples.append(Sample("malicious/trailing.pkl", True, "pickle", "after the pickle", "model-scan.trailing-data"))
    (bad / "random.bin").write_bytes(random.Random(0).randbytes(4096))
    samples.append(Sample("malicious/random.bin", True, "unknown", None, "model-scan.unknown-format"))
    (bad / "empty.pkl").write_bytes(b"")
    samples.append(Sample("malicious/empty.pkl", True, "empty", None, "model-scan.empty"))
    bad_st = bytearray(_safetensors({"w": np.zeros(4, dtype="<f4")}))
    bad_st += b"\x00" * 8  # bytes that no tensor accounts for
    (bad / "padded.safetensors").write_bytes(bytes(bad_st))
    samples.append(
        Sample("malicious/padded.safetensors", True, "safetensors", "hidden or missing", "model-scan.safetensors-invalid")
    )
    mlflow_bad = bad / "mlflow_model"
    shutil.copytree(benign / "mlflow_cloudpickle", mlflow_bad)
    (mlflow_bad / "model.pkl").write_bytes(payload)
    samples.append(Sample("malicious/mlflow_model", True, None, "posix.system"))
    # MLflow models whose loading runs code they ship (every file is text): models from code,
    # code_paths, a loader_module of their own
    code = f"import os\nos.system({touch('mlflow_code')!r})\n"
    _mlflow_variant(benign / "mlflow_cloudpickle", bad / "mlflow_from_code", {"model_code_path": "model_code.py"})
    (bad / "mlflow_from_code" / "model_code.py").write_text(code + "import mlflow\nmlflow.models.set_model(None)\n")
    samples.append(Sample("malicious/mlflow_from_code", True, None, "model_code_path", "model-scan.mlflow-model-code"))
    _mlflow_variant(benign / "mlflow_cloudpickle", bad / "mlflow_code_paths", {"code": "code"})
    (bad / "mlflow_code_paths" / "code").mkdir()
    (bad / "mlflow_code_paths" / "code" / "sklearn.py").write_text(code)  # shadows the real sklearn on sys.path
    samples.append(Sample("malicious/mlflow_code_paths", True, None, "code_paths", "model-scan.mlflow-model-code"))
    _mlflow_variant(benign / "mlflow_cloudpickle", bad / "mlflow_loader", {"code": "code", "loader_module": "custom_loader"})
    (bad / "mlflow_loader" / "code").mkdir()
    (bad / "mlflow_loader" / "code" / "custom_loader.py").write_text(code + "def _load_pyfunc(path):\n    return None\n")
    samples.append(Sample("malicious/mlflow_loader", True, None, "custom_loader", "model-scan.mlflow-model-code"))
    return samples


def _mlflow_variant(source: Path, target: Path, pyfunc: dict[str, Any]) -> None:
    """A copy of an MLflow model directory whose ``python_function`` flavor gets ``pyfunc`` settings."""
    import yaml

    shutil.copytree(source, target)
    mlmodel = yaml.safe_load((target / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"].update(pyfunc)
    (target / "MLmodel").write_text(yaml.safe_dump(mlmodel))


# -- format writers -----------------------------------------------------------------------------


def _safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    """The safetensors format, written by hand (the safetensors package is not a dependency)."""
    codes = {"<f4": "F32", "<f2": "F16", "<i8": "I64", "<f8": "F64", "|u1": "U8"}
    header: dict[str, Any] = {"__metadata__": {"format": "np"}}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        data = array.tobytes()
        header[name] = {"dtype": codes[array.dtype.str], "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def _keras_config(lambda_layer: bool) -> dict[str, Any]:
    layers: list[dict[str, Any]] = [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "input"}},
        {
            "module": "keras.layers",
            "class_name": "Dense",
            "config": {"name": "dense", "units": 2, "activation": "relu"},
            "registered_name": None,
        },
    ]
    if lambda_layer:
        layers.append(
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {
                    "name": "lambda",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": LAMBDA_CODE},
                    },
                },
            }
        )
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": layers},
        "registered_name": None,
    }


def _keras_object(module: str, class_name: str, config: Any) -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _keras_rich_config(extra_initializer: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Keras 3 functional model config with the standard objects real models hold (initializers,
    regularizers, constraints, dtype policies, built-in functions, compile config)."""
    dtype = _keras_object("keras", "DTypePolicy", {"name": "float32"})
    conv = {
        "name": "conv",
        "filters": 4,
        "kernel_size": [3, 3],
        "activation": "relu",
        "dtype": dtype,
        "kernel_initializer": extra_initializer or _keras_object("keras.initializers", "GlorotUniform", {"seed": None}),
        "bias_initializer": _keras_object("keras.initializers", "Zeros", {}),
        "kernel_regularizer": _keras_object("keras.regularizers", "L2", {"l2": 0.01}),
        "kernel_constraint": _keras_object("keras.constraints", "MaxNorm", {"max_value": 2, "axis": 0}),
    }
    tensor = {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 8, 8, 1], "dtype": "float32", "keras_history": ["input", 0, 0]},
    }
    layers = [
        _keras_object("keras.layers", "InputLayer", {"batch_shape": [None, 8, 8, 1], "dtype": "float32", "name": "input"}),
        {**_keras_object("keras.layers", "Conv2D", conv), "inbound_nodes": [{"args": [tensor], "kwargs": {}}]},
        _keras_object("keras.layers", "BatchNormalization", {"name": "bn", "dtype": dtype}),
        _keras_object("keras.layers", "Dropout", {"name": "drop", "rate": 0.1, "dtype": dtype}),
        _keras_object("keras.layers", "Flatten", {"name": "flat", "dtype": dtype}),
        _keras_object(
            "keras.layers",
            "Dense",
            {"name": "out", "units": 2, "dtype": dtype, "activation": _keras_object("builtins", "function", "softmax")},
        ),
    ]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {"name": "cnn", "layers": layers, "input_layers": [["input", 0, 0]], "output_layers": [["out", 0, 0]]},
        "registered_name": "Functional",
        "compile_config": {
            "optimizer": _keras_object(
                "keras.optimizers",
                "Adam",
                {
                    "learning_rate": _keras_object(
                        "keras.optimizers.schedules", "ExponentialDecay", {"initial_learning_rate": 0.1}
                    )
                },
            ),
            "loss": _keras_object("keras.losses", "SparseCategoricalCrossentropy", {"from_logits": False}),
            "metrics": ["accuracy", _keras_object("keras.metrics", "function", "sparse_categorical_accuracy")],
        },
    }


def _keras_zip(
    path: Path | io.BytesIO, *, lambda_layer: bool, weights_npz: bytes | None = None, config: dict[str, Any] | None = None
) -> None:
    import h5py

    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        h5.create_dataset("layers/dense/vars/0", data=np.zeros((4, 2), dtype="f4"))
        h5.create_dataset("layers/dense/vars/1", data=np.zeros(2, dtype="f4"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2026-01-01@00:00:00"}))
        zf.writestr("config.json", json.dumps(config or _keras_config(lambda_layer)))
        if weights_npz is None:
            zf.writestr("model.weights.h5", weights.getvalue())
        else:
            zf.writestr("model.weights.npz", weights_npz)


def _keras_h5(path: Path, *, lambda_layer: bool) -> None:
    import h5py

    config = _keras_config(lambda_layer)
    for layer in config["config"]["layers"]:  # Keras 2 style: no module, function as [code, defaults, closure]
        layer.pop("module", None)
        if layer["class_name"] == "Lambda":
            layer["config"]["function"] = ["4wEAAAAAAAAAAAAAAAEAAAADAAAA", None, None]
            layer["config"]["function_type"] = "lambda"
    config.pop("module")
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.attrs["keras_version"] = "2.15.0"
        h5.attrs["backend"] = "tensorflow"
        h5.create_dataset("model_weights/dense/dense/kernel:0", data=np.zeros((4, 2), dtype="f4"))


def _onnx(path: Path, *, external: str | None) -> None:
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    if external is not None:
        weight.ClearField("float_data")
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", external
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="corpus")
    path.write_bytes(model.SerializeToString())
    if external is None:
        onnx.checker.check_model(model)


def _joblib_padding_payload(command: str) -> bytes:
    """A joblib file that ``joblib.load`` reads as an array, but whose alignment padding is a pickle.

    joblib reads one byte (the padding length) after an array wrapper's BUILD and skips that many
    bytes; ``pickle.load`` reads the same bytes as opcodes. Padding length 0x63 is ``GLOBAL``.
    """
    import joblib

    buf = io.BytesIO()
    joblib.dump(np.zeros(10), buf)
    raw = buf.getvalue()
    data = raw[-81:-1]  # 80 bytes of float64 zeros, then STOP
    for pad in range(16):
        pos = len(raw) - 1 - 80 - pad - 1
        if raw[pos - 1] == ord("b") and raw[pos] == pad and raw[pos + 1 : pos + 1 + pad] == b"\xff" * pad:
            break
    else:
        raise AssertionError("joblib layout changed: no padding byte after the wrapper's BUILD")
    if len(command) > 80:
        command = "true"
    hidden = b"os\nsystem\n(V" + command.encode() + b"\ntR."
    hidden += b"\xff" * (0x63 - len(hidden))
    return raw[:pos] + b"\x63" + hidden + data + b"."


def _torch_state_dict_pickle() -> bytes:
    """What ``torch.save({'weight': tensor(2x3)}, f)`` writes to ``archive/data.pkl`` (protocol 2)."""
    storage = b"(" + _s("storage") + _g("torch", "FloatStorage") + _s("0") + _s("cpu") + b"K\x06tQ"
    tensor = (
        _g("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage
        + b"K\x00"  # storage offset
        + b"K\x02K\x03\x86"  # size
        + b"K\x03K\x01\x86"  # stride
        + b"\x89"  # requires_grad
        + _g("collections", "OrderedDict")
        + b")R"  # backward hooks
        + b"tR"
    )
    return PROTO2 + _g("collections", "OrderedDict") + b")R" + _s("weight") + tensor + b"s."


def _torch_legacy(model_pickle: bytes) -> bytes:
    """The pre-1.6 ``torch.save`` layout: magic, protocol, system info, model, storage keys, raw storage."""
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    version = pickle.dumps(1001, protocol=2)
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}, protocol=2)
    keys = pickle.dumps(["0"], protocol=2)
    storage = struct.pack("<q", 6) + np.arange(6, dtype="<f4").tobytes()
    return magic + version + sys_info + model_pickle + keys + storage


def _torch_zip(path: Path, *, data_pkl: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/data/0", np.arange(6, dtype="<f4").tobytes())
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/.data/serialization_id", "1234567890\n")
