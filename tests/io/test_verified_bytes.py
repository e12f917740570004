"""Tabular gates judge exactly the bytes their evidence names, and hand those bytes on.

The attack: a file is swapped between the moment it is hashed and the moment it is parsed (same
size, same modification time), so the evidence names bytes the gate never judged. The swap is made
deterministic by a hook on SHA-256: the file is replaced the instant a digest of its original
bytes is finished, which is exactly "between hash and parse" for a reader that opens the file
twice. A reader that parses the bytes it hashed is not affected by it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import DigestMismatch, GateError, MLSecOpsError
from airflow_mlsecops.gates.pii import scan_pii
from airflow_mlsecops.io.locations import load_table_at
from airflow_mlsecops.io.tabular import load_table, load_verified_table, read_verified_bytes

# Same length: the swap keeps size and modification time, all a stat check can see.
WITH_PII = b"name,contact\nann,ann.lee@example.com\nbob,bob.kay@example.com\n"
WITHOUT_PII = b"name,contact\nann,ann.lee_example.com\nbob,bob.kay_example.com\n"
assert len(WITH_PII) == len(WITHOUT_PII)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SwapAfterHashing:
    """Replaces ``path`` with ``replacement`` (same size, same mtime) the moment a SHA-256 of
    ``original`` is finished: deterministic, whatever the reader's timing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path, original: bytes, replacement: bytes) -> None:
        self.path, self.replacement, self.target = path, replacement, sha256(original)
        self.swapped = False
        real = hashlib.sha256
        hook = self

        class Hashing:
            def __init__(self, data: Any = b"", **kwargs: Any) -> None:
                self._h = real(data, **kwargs)

            def update(self, data: Any) -> None:
                self._h.update(data)

            def digest(self) -> bytes:
                hook._finished(self._h.hexdigest())
                return self._h.digest()

            def hexdigest(self) -> str:
                value = self._h.hexdigest()
                hook._finished(value)
                return value

            def copy(self) -> Any:
                clone = Hashing()
                clone._h = self._h.copy()
                return clone

            @property
            def name(self) -> str:
                return self._h.name

            @property
            def digest_size(self) -> int:
                return self._h.digest_size

            @property
            def block_size(self) -> int:
                return self._h.block_size

        monkeypatch.setattr(hashlib, "sha256", Hashing)

    def _finished(self, value: str) -> None:
        if self.swapped or value != self.target:
            return
        self.swapped = True
        st = os.stat(self.path)
        tmp = self.path.with_name(self.path.name + ".swap")
        tmp.write_bytes(self.replacement)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, self.path)


def test_the_frame_is_parsed_from_the_bytes_that_were_hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "batch.csv"
    path.write_bytes(WITH_PII)
    swap = SwapAfterHashing(monkeypatch, path, WITH_PII, WITHOUT_PII)
    table = load_table(str(path))
    assert swap.swapped  # the file did change under the reader
    assert table.subject.sha256 == sha256(WITH_PII)
    assert list(table.frame["contact"]) == ["ann.lee@example.com", "bob.kay@example.com"]
    assert table.size_bytes == len(WITH_PII)


def test_a_gate_judges_the_bytes_its_evidence_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PII gate hashes a file with e-mail addresses; a clean file of the same size is swapped in
    before parsing. Judging the clean bytes would sign "no PII" for the digest of the other file."""
    path = tmp_path / "batch.csv"
    path.write_bytes(WITH_PII)
    swap = SwapAfterHashing(monkeypatch, path, WITH_PII, WITHOUT_PII)
    outcome = scan_pii(str(path))
    assert swap.swapped
    assert outcome.result.subjects[0].sha256 == sha256(WITH_PII)
    assert outcome.result.verdict is Verdict.FAILED, outcome.result.summary


def test_load_table_at_reads_a_local_file_once_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "batch.csv"
    path.write_bytes(WITH_PII)
    SwapAfterHashing(monkeypatch, path, WITH_PII, WITHOUT_PII)
    table = load_table_at(str(path))
    assert table.subject.sha256 == sha256(WITH_PII)
    assert "ann.lee@example.com" in set(table.frame["contact"])


def test_load_verified_table_hands_on_exactly_the_judged_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a training step calls with the digest a data gate recorded: one read, digest checked,
    parsed from those bytes, so a swap after the check cannot reach the frame."""
    path = tmp_path / "train.csv"
    path.write_bytes(WITH_PII)
    digest = sha256(WITH_PII)  # before the hook: it swaps on the first digest of these bytes
    swap = SwapAfterHashing(monkeypatch, path, WITH_PII, WITHOUT_PII)
    table = load_verified_table(str(path), sha256=digest)
    assert swap.swapped
    assert table.subject.sha256 == digest
    assert list(table.frame["contact"]) == ["ann.lee@example.com", "bob.kay@example.com"]


def test_load_verified_table_refuses_other_bytes(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(WITHOUT_PII)
    with pytest.raises(DigestMismatch, match=r"train\.csv hashes to .*, expected .*refusing") as caught:
        load_verified_table(str(path), sha256=f"sha256:{sha256(WITH_PII)}")
    assert isinstance(caught.value, MLSecOpsError)
    # A malformed digest is not "no check".
    for bad in ("", "none", "abc", "z" * 64):
        with pytest.raises(MLSecOpsError, match="sha256"):
            load_verified_table(str(path), sha256=bad)


def test_read_verified_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(WITH_PII)
    digest = sha256(WITH_PII)
    SwapAfterHashing(monkeypatch, path, WITH_PII, WITHOUT_PII)
    assert read_verified_bytes(str(path), sha256=digest) == WITH_PII
    assert path.read_bytes() == WITHOUT_PII  # swapped on disk, not in what was handed on
    with pytest.raises(DigestMismatch):
        read_verified_bytes(str(path), sha256=digest)


def test_parquet_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "batch.parquet"
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(path)
    original = path.read_bytes()
    digest = sha256(original)
    SwapAfterHashing(monkeypatch, path, original, original[:4] + b"\0" * (len(original) - 4))
    table = load_verified_table(str(path), sha256=digest)
    assert table.format == "parquet" and list(table.frame["x"]) == [1, 2, 3]


def test_a_pipe_in_place_of_the_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "batch.csv"
    os.mkfifo(fifo)
    with pytest.raises(GateError, match="not a regular file"):
        load_table(str(fifo))
    with pytest.raises(GateError, match="not a regular file"):
        read_verified_bytes(str(fifo), sha256="0" * 64)
