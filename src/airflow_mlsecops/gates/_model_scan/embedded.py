"""Zip archives hidden inside or after another format (a polyglot): found by their end records, wherever they are.

``zipfile`` (Keras, skops), torch's reader and most others find a zip from its *end*: the
end-of-central-directory record (``PK\\x05\\x06``) in the last 64 KiB of the file, whatever comes
before it. So a valid safetensors, ``.npy`` or pickle file whose data section ends with a ``.keras``
zip is also a Keras model to ``keras.saving.load_model``. Every file is searched for such records in
that tail window, and ``.npy`` / safetensors data sections (opaque bytes the scanner otherwise never
reads) from end to end. A record counts only when its central directory is where it says (a
``PK\\x01\\x02`` header right before it, or a ZIP64 locator), so tensor bytes that happen to hold the
four signature bytes are not mistaken for an archive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

EOCD = b"PK\x05\x06"
#: How far from the end zip readers look for the end record (its 22 bytes and a comment of up to 64 KiB).
TAIL = 22 + (1 << 16)
_CHUNK = 4 << 20


@dataclass(frozen=True)
class EmbeddedZip:
    """One end-of-central-directory record that a zip reader would accept.

    :param eocd: where the record starts.
    :param start: where the archive it closes starts (None when it cannot be told: ZIP64, or
        offsets that point before the file).
    :param end: where the record (and its comment) ends.
    :param in_tail: within the window zip readers search from the end of the file.
    """

    eocd: int
    start: int | None
    end: int
    in_tail: bool


def find_embedded_zips(path: Path, size: int, *, whole: bool) -> list[EmbeddedZip]:
    """Valid end records in ``path``: in the last :data:`TAIL` bytes, or anywhere when ``whole``."""
    found: list[EmbeddedZip] = []
    tail_start = max(0, size - TAIL)
    with open(path, "rb") as fh:
        positions: list[int] = []
        if whole:
            offset, carry = 0, b""
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                data = carry + chunk
                base = offset - len(carry)
                index = data.find(EOCD)
                while index >= 0:
                    positions.append(base + index)
                    index = data.find(EOCD, index + 1)
                carry = data[-3:]
                offset += len(chunk)
            positions = sorted(set(positions))
        else:
            fh.seek(tail_start)
            data = fh.read()
            index = data.find(EOCD)
            while index >= 0:
                positions.append(tail_start + index)
                index = data.find(EOCD, index + 1)
        for position in positions:
            record = _validate(fh, position, size)
            if record is not None:
                found.append(EmbeddedZip(record[0], record[1], record[2], position >= tail_start))
    return found


def _validate(fh: BinaryIO, position: int, size: int) -> tuple[int, int | None, int] | None:
    fh.seek(position)
    raw = fh.read(22)
    if len(raw) < 22:
        return None
    _sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = struct.unpack("<4s4H2LH", raw)
    end = min(position + 22 + comment, size)
    if 0xFFFF in (on_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset):  # ZIP64: its locator precedes the record
        if position < 20:
            return None
        fh.seek(position - 20)
        return (position, None, end) if fh.read(4) == b"PK\x06\x07" else None
    if total == 0 or disk != 0 or cd_disk != 0 or on_disk != total or cd_size > position:
        return None
    fh.seek(position - cd_size)
    if fh.read(4) != b"PK\x01\x02":
        return None
    start = position - cd_size - cd_offset
    return position, (start if start >= 0 else None), end
