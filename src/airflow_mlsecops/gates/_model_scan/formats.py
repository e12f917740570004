"""Format checks that are not pickles: NumPy ``.npy`` headers, safetensors, Keras configs, HDF5, ONNX.

Each check returns :class:`Problem` records (no location: the engine knows where the bytes came
from). A problem of kind ``unreadable`` means the content could not be judged (fail closed); kind
``security`` means it was judged and rejected.
"""

from __future__ import annotations

import ast
import json
import math
import os
import posixpath
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_mlsecops.evidence.models import Severity
from airflow_mlsecops.exceptions import FormatError
from airflow_mlsecops.gates._model_scan.allowlist import judge
from airflow_mlsecops.gates._model_scan.keras_names import keras_module, keras_name_problem
from airflow_mlsecops.gates._model_scan.source import ByteSource

NPY_MAGIC = b"\x93NUMPY"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a part of a file (the engine adds the location)."""

    code: str
    severity: Severity
    message: str
    offset: int | None = None
    kind: str = "security"  # or "unreadable"


# -- NumPy .npy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpyHeader:
    version: tuple[int, int]
    descr: Any
    shape: tuple[int, ...]
    fortran_order: bool
    header_end: int
    itemsize: int
    hasobject: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.itemsize


def read_npy_header(src: ByteSource, max_header: int) -> NpyHeader:
    """Parse an ``.npy`` header (``src`` at the magic) as :func:`numpy.lib.format.read_array` does."""
    from numpy.lib.format import descr_to_dtype

    start = src.offset
    if src.read(6) != NPY_MAGIC:
        raise FormatError("not an .npy file", start)
    major, minor = src.read(2)
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        raise FormatError(f"unsupported .npy format version {major}.{minor}", start + 6)
    (length,) = struct.unpack("<H" if major == 1 else "<I", src.read(2 if major == 1 else 4))
    if length > max_header:
        raise FormatError(f".npy header of {length} bytes is larger than the {max_header}-byte limit", start + 8)
    raw = src.read(length)
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (UnicodeDecodeError, ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise FormatError(f".npy header is not a Python literal: {exc}", start + 10) from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FormatError(".npy header must be a dict with exactly descr, fortran_order and shape", start + 10)
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise FormatError(f".npy shape {shape!r} is not a tuple of non-negative integers", start + 10)
    if not isinstance(header["fortran_order"], bool):
        raise FormatError(".npy fortran_order is not a bool", start + 10)
    try:
        dtype = descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError) as exc:
        raise FormatError(f".npy descr {header['descr']!r} is not a dtype: {exc}", start + 10) from None
    return NpyHeader(
        version=(major, minor),
        descr=header["descr"],
        shape=shape,
        fortran_order=header["fortran_order"],
        header_end=src.offset,
        itemsize=dtype.itemsize,
        hasobject=bool(dtype.hasobject),
    )


# -- safetensors ----------------------------------------------------------------------------------

# bits per element; sub-byte types must fill whole bytes
SAFETENSORS_DTYPES: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


def looks_like_safetensors(head: bytes, size: int | None) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return n >= 2 and (size is None or n + 8 <= size) and head[8:9] == b"{"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"duplicate key {key!r} in the header")
        out[key] = value
    return out


def check_safetensors(src: ByteSource, size: int, max_header: int) -> tuple[list[Problem], dict[str, Any]]:
    """Validate a safetensors file: header length, JSON, dtypes, and offsets that tile the data exactly."""
    problems: list[Problem] = []

    def bad(message: str, offset: int | None = 8) -> None:
        problems.append(Problem("safetensors-invalid", Severity.HIGH, message, offset, kind="unreadable"))

    (n,) = struct.unpack("<Q", src.read(8))
    if n > max_header:
        bad(f"header of {n} bytes exceeds the {max_header}-byte limit", 0)
        return problems, {}
    if n + 8 > size:
        bad(f"header length {n} runs past the end of the {size}-byte file", 0)
        return problems, {}
    raw = src.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, FormatError, RecursionError) as exc:
        bad(f"header is not valid JSON: {exc}")
        return problems, {}
    if not isinstance(header, dict):
        bad("header is not a JSON object")
        return problems, {}
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        bad("__metadata__ must map strings to strings")
    data_size = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            bad(f"tensor {name!r}: entry must have exactly dtype, shape and data_offsets")
            continue
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        bits = SAFETENSORS_DTYPES.get(dtype) if isinstance(dtype, str) else None
        if bits is None:
            bad(f"tensor {name!r}: unknown dtype {dtype!r}")
            continue
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            bad(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
            continue
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            bad(f"tensor {name!r}: data_offsets {offsets!r} must be [begin, end] with 0 <= begin <= end")
            continue
        total_bits = math.prod(shape) * bits
        if total_bits % 8 or total_bits // 8 != offsets[1] - offsets[0]:
            bad(
                f"tensor {name!r}: {dtype} {shape} needs {total_bits / 8:g} bytes but data_offsets span {offsets[1] - offsets[0]}"
            )
            continue
        if offsets[1] > data_size:
            bad(f"tensor {name!r}: data_offsets end {offsets[1]} is past the {data_size}-byte data section")
            continue
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            bad(f"tensor {name!r}: data [{begin}, {end}) overlaps the previous tensor (which ends at {cursor})")
        elif begin > cursor:
            bad(f"tensor {name!r}: {begin - cursor} unaccounted bytes before it (data is not contiguous)")
        cursor = max(cursor, end)
    if not problems and cursor != data_size:
        bad(f"tensors cover {cursor} bytes but the data section holds {data_size}: hidden or missing bytes")
    return problems, {"tensors": len(header), "header_bytes": n}


# -- Keras configs --------------------------------------------------------------------------------


def _walk(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 200:
        raise FormatError("configuration nested more than 200 levels deep")
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, depth + 1)


def keras_config_problems(config: Any) -> list[Problem]:
    """Lambda layers, serialized lambdas, objects from outside Keras and Keras names not known to be safe.

    Keras runs a ``Lambda`` layer's marshalled bytecode when it loads the model (with
    ``safe_mode=False``, or in Keras 2 always), imports the ``module`` named by any serialized
    object, and calls what it finds there; inside Keras only the names of :mod:`.keras_names`
    (layers, initializers, regularizers, constraints, activations... that only compute) are allowed.
    """
    problems: list[Problem] = []
    for node in _walk(config):
        class_name = node.get("class_name")
        if not isinstance(class_name, str):
            continue
        layer = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
        if class_name == "Lambda":
            problems.append(
                Problem(
                    "keras-lambda",
                    Severity.CRITICAL,
                    f"Lambda layer {layer!r}: its Python code runs when the model is loaded",
                )
            )
            continue
        if class_name == "__lambda__":
            problems.append(
                Problem("keras-lambda", Severity.CRITICAL, "a serialized Python lambda runs when the model is loaded")
            )
            continue
        module = node.get("module")
        if module is not None and not isinstance(module, str):
            problems.append(
                Problem("keras-unsafe-object", Severity.HIGH, f"names {class_name} with a module that is not a string")
            )
            continue
        if module is not None and not keras_module(module) and not (module == "builtins" and class_name == "function"):
            target = node.get("config") if class_name == "function" and isinstance(node.get("config"), str) else class_name
            ref = f"{module}.{target}" if isinstance(target, str) else module
            status, what = judge(ref)
            if status == "dangerous":
                problems.append(Problem("keras-code", Severity.CRITICAL, f"names {ref} ({what}), which Keras imports on load"))
            else:
                problems.append(
                    Problem(
                        "keras-custom-object",
                        Severity.HIGH,
                        f"names {ref} from module {module!r} outside Keras: its code is imported when the model loads",
                    )
                )
            continue
        why = keras_name_problem(module, class_name, node.get("config"))
        if why is not None:
            severity, reason = why
            problems.append(Problem("keras-unsafe-object", Severity(severity), f"{reason}; Keras imports and calls it on load"))
    return problems


def looks_like_keras_config(value: Any) -> bool:
    return isinstance(value, dict) and "class_name" in value and "config" in value


# -- HDF5 (Keras H5) ------------------------------------------------------------------------------


def hdf5_at(head: bytes) -> int | None:
    """The offset of the HDF5 superblock signature (0, 512, 1024... as the spec allows), if any."""
    for offset in (0, 512, 1024, 2048, 4096):
        if head[offset : offset + 8] == HDF5_MAGIC:
            return offset
    return None


def inspect_h5(path: str | os.PathLike[str], max_json: int) -> tuple[list[Problem], dict[str, Any]]:
    """Read a Keras H5 file's ``model_config`` (and ``training_config``) with h5py; flag Lambda layers."""
    try:
        import h5py
    except ImportError:
        return [
            Problem(
                "cannot-inspect",
                Severity.HIGH,
                "cannot inspect H5 without the formats extra (pip install 'airflow-mlsecops[formats]')",
                kind="unreadable",
            )
        ], {}
    problems: list[Problem] = []
    info: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as h5:
            for attr in ("model_config", "training_config"):
                if attr not in h5.attrs:
                    continue
                raw = h5.attrs[attr]
                text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
                if len(text) > max_json:
                    problems.append(
                        Problem("h5-config", Severity.HIGH, f"{attr} is larger than {max_json} bytes", kind="unreadable")
                    )
                    continue
                try:
                    config = json.loads(text)
                except (ValueError, RecursionError) as exc:
                    problems.append(Problem("h5-config", Severity.HIGH, f"{attr} is not JSON: {exc}", kind="unreadable"))
                    continue
                info["keras"] = True
                problems.extend(keras_config_problems(config))
            info["keras_version"] = _attr_text(h5.attrs.get("keras_version"))
    except (OSError, ValueError, RuntimeError, FormatError) as exc:
        problems.append(Problem("h5-invalid", Severity.HIGH, f"not a readable HDF5 file: {exc}", kind="unreadable"))
    return problems, info


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _attr_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- ONNX -----------------------------------------------------------------------------------------

_ONNX_NEXT_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2})


def looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto starts with ``ir_version`` (field 1, varint) followed by another known field."""
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] <= 20:
        return False
    return head[2] in _ONNX_NEXT_TAGS or (head[2] == 0x01 and len(head) > 3 and head[3] in _ONNX_NEXT_TAGS)


def _onnx_tensors(model: Any) -> Iterator[Any]:
    def graph_tensors(graph: Any, depth: int) -> Iterator[Any]:
        if depth > 64:
            raise FormatError("ONNX subgraphs nested more than 64 levels deep")
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            yield from node_tensors(node, depth)

    def node_tensors(node: Any, depth: int) -> Iterator[Any]:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            if attr.HasField("g"):
                yield from graph_tensors(attr.g, depth + 1)
            for sub in attr.graphs:
                yield from graph_tensors(sub, depth + 1)

    yield from graph_tensors(model.graph, 0)
    for function in model.functions:
        for node in function.node:
            yield from node_tensors(node, 0)
    for info in model.training_info:
        for graph in (info.initialization, info.algorithm):
            yield from graph_tensors(graph, 0)


def external_location_problem(location: str, model_dir: Path | None) -> str | None:
    """Why an external-data ``location`` is unsafe (absolute, escaping, a link out), or None."""
    if not location:
        return "has an empty location"
    if "\x00" in location:
        return "has a NUL byte in its location"
    posix = location.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or posix.startswith("//"):
        return f"points at the absolute path {location!r}"
    normal = posixpath.normpath(posix)
    if normal == ".." or normal.startswith("../"):
        return f"points outside the model directory ({location!r})"
    if model_dir is not None:
        target = model_dir / normal
        try:
            resolved = target.resolve()
            if target.exists() and not resolved.is_relative_to(model_dir.resolve()):
                return f"is a link that leads outside the model directory ({location!r} -> {resolved})"
        except OSError:
            return f"cannot be resolved ({location!r})"
    return None


def inspect_onnx(data_or_path: bytes | str, model_dir: Path | None) -> tuple[list[Problem], dict[str, Any]]:
    """Parse an ONNX model (without loading external data) and check every external-data location."""
    try:
        import onnx
    except ImportError:
        return [
            Problem(
                "cannot-inspect",
                Severity.HIGH,
                "cannot inspect ONNX without the formats extra (pip install 'airflow-mlsecops[formats]')",
                kind="unreadable",
            )
        ], {}
    try:
        if isinstance(data_or_path, bytes):
            model = onnx.load_model_from_string(data_or_path)
        else:
            model = onnx.load_model(data_or_path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError and friends
        return [Problem("onnx-invalid", Severity.HIGH, f"not a parseable ONNX model: {exc}", kind="unreadable")], {}
    if not model.HasField("graph"):
        return [Problem("onnx-invalid", Severity.HIGH, "ONNX model without a graph", kind="unreadable")], {}
    problems: list[Problem] = []
    external = 0
    locations: set[str] = set()
    try:
        for tensor in _onnx_tensors(model):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            external += 1
            # protobuf hands back bytes for a string field that is not valid UTF-8
            entries = {_text(entry.key): _text(entry.value) for entry in tensor.external_data}
            location = entries.get("location", "")
            why = external_location_problem(location, model_dir)
            if not why:
                locations.add(posixpath.normpath(location.replace("\\", "/")))
            else:
                problems.append(
                    Problem(
                        "onnx-external-data",
                        Severity.CRITICAL,
                        f"tensor {tensor.name!r}: external data {why}; loading it reads files outside the model",
                    )
                )
    except FormatError as exc:
        problems.append(Problem("onnx-invalid", Severity.HIGH, str(exc), kind="unreadable"))
    info = {
        "ir_version": model.ir_version,
        "nodes": len(model.graph.node),
        "external_tensors": external,
        "external_files": sorted(locations)[:100],
    }
    return problems, info


# -- text -----------------------------------------------------------------------------------------

_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


def text_chunk_ok(chunk: bytes) -> bool:
    """No NUL or control characters other than tab, line breaks, form feed and escape."""
    return _CONTROL.search(chunk) is None


def is_text(src: ByteSource, chunk: int = 1 << 20) -> bool:
    """Whether the rest of ``src`` is UTF-8 text without control characters (streamed)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    while True:
        if not src.fill(1):
            break
        data = src.buf[src.pos : src.pos + chunk]
        src.pos += len(data)
        if not text_chunk_ok(data):
            return False
        try:
            decoder.decode(data)
        except UnicodeDecodeError:
            return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
