"""Content sniffing: the format a part's first bytes announce (never its name)."""

from __future__ import annotations

from typing import BinaryIO

from airflow_mlsecops.gates._model_scan.formats import NPY_MAGIC, hdf5_at, looks_like_onnx, looks_like_safetensors

#: Bytes read from the start of every part to detect its format.
HEAD = 1 << 16


def detect(head: bytes, size: int | None) -> str | None:
    """The container or data format ``head`` (the first bytes) announces, or None (pickle/text/unknown)."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if hdf5_at(head) is not None:
        return "hdf5"
    if head[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[:2] == b"\x5d\x00" and len(head) >= 13:
        return "lzma"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0 and not head[1] & 0x20:
        return "zlib"
    if head.startswith(b"ZF"):
        return "joblib-zfile"
    if head.startswith((b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd")):
        return "unsupported-archive"
    if _is_tar(head):
        return "tar"
    if looks_like_safetensors(head, size):
        return "safetensors"
    if looks_like_onnx(head):
        return "onnx"
    return None


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    try:
        stored = int(head[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(head[:148]) + 256 + sum(head[156:512])


def read_head(fh: BinaryIO) -> bytes:
    """Up to :data:`HEAD` bytes from the start of ``fh``."""
    parts = []
    got = 0
    while got < HEAD:
        chunk = fh.read(HEAD - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
