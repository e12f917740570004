"""A named pipe or a UNIX socket inside a directory to attest is refused, never skipped.

Skipping one would sign a manifest that does not describe the directory: a pipe's reader gets
whatever a writer sends at that moment, so the bytes a consumer reads were never hashed. Model
signing refuses them already; the dataset manifest (``evidence/digest.py``) and the provenance
gates built on it now do the same.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.digest import file_manifest, sha256_file, sha256_path
from airflow_mlsecops.evidence.dsse import sign_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.provenance import PROVENANCE_FILE, attest_artifacts, verify_artifacts


@pytest.fixture
def dataset() -> Iterator[Path]:
    """A dataset directory under a short path (a UNIX socket's path is limited to about 100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="mls-") as tmp:
        root = Path(tmp, "ds")
        (root / "part").mkdir(parents=True)
        (root / "part" / "a.csv").write_text("x,y\n1,2\n")
        (root / "b.csv").write_text("x,y\n3,4\n")
        yield root


@contextlib.contextmanager
def unix_socket(path: Path) -> Iterator[Path]:
    """A bound (listening) UNIX socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        sock.listen(1)
        yield path
    finally:
        sock.close()


def _special(kind: str, path: Path) -> contextlib.AbstractContextManager[Path]:
    if kind == "fifo":
        os.mkfifo(path)
        return contextlib.nullcontext(path)
    return unix_socket(path)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_manifest_refuses_a_special_file(dataset: Path, kind: str) -> None:
    with _special(kind, dataset / "part" / "feed"):
        with pytest.raises(GateError, match=r"part/feed is not a regular file") as caught:
            file_manifest(dataset)
        assert "pipe" in str(caught.value) and "socket" in str(caught.value)
        with pytest.raises(GateError, match="not a regular file"):
            sha256_path(dataset)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_dataset_provenance_refuses_a_directory_holding_one(dataset: Path, kind: str) -> None:
    with _special(kind, dataset / "feed"):
        outcome = attest_artifacts([str(dataset)])
    assert outcome.result.verdict is Verdict.ERROR
    assert "feed is not a regular file" in outcome.result.summary
    assert not outcome.result.subjects


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_verification_refuses_one_added_after_signing(dataset: Path, kind: str) -> None:
    key = SigningKey.generate()
    signed = attest_artifacts([str(dataset)])
    assert signed.result.verdict is Verdict.PASSED
    attestation = sign_envelope(signed.statements[PROVENANCE_FILE], key).to_json()
    with _special(kind, dataset / "part" / "feed"):
        outcome = verify_artifacts([str(dataset)], attestation, {key.keyid: key.public_key})
    assert outcome.result.verdict is not Verdict.PASSED
    assert "feed is not a regular file" in outcome.result.summary


def test_the_root_itself_may_not_be_a_pipe(dataset: Path) -> None:
    fifo = dataset / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(GateError, match="not a regular file"):
        file_manifest(fifo)
    # Hashing never blocks on a pipe nobody writes to: it is refused before any read. (In a
    # thread, so that a regression fails this test instead of hanging the suite.)
    outcome: list[BaseException | str] = []

    def hash_it() -> None:
        try:
            outcome.append(sha256_file(fifo))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=hash_it, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with open(fifo, "wb"):  # unblock the reader, then fail
            pass
        worker.join(timeout=10)
        pytest.fail("sha256_file blocked on a named pipe")
    assert isinstance(outcome[0], GateError) and "not a regular file" in str(outcome[0])
