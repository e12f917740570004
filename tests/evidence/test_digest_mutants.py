"""Exact tests for evidence/digest.py written from surviving mutants (tests/mutation/README.md).

Each test pins one refusal or result a mutant changed without any other test noticing: the exact
messages (a name with a carriage return, a name that is not UTF-8, a pipe, a socket, a symbolic
link to a directory, a path that cannot be opened, listed or read), ``read_file`` (no test called
it), a pseudo-file whose bytes are not its size, and the blocking descriptor ``_open_regular``
hands to its readers. No mocks: real files, pipes, sockets, ``/proc`` files and over-long paths.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.digest import _open_regular, file_manifest, read_file, sha256_file, sha256_path
from airflow_mlsecops.exceptions import GateError
from tests.deep_paths import PATH_MAX, deep_dir, hide_beyond_path_max

linux_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.exists("/proc/self/mem"), reason="needs Linux /proc"
)


def not_regular(path: object) -> str:
    return (
        f"{path} is not a regular file (a named pipe, socket or device): its bytes cannot be attested; "
        "remove it or move it out of the data"
    )


def refused(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(GateError) as caught:
        call(*args)
    return str(caught.value)


@contextlib.contextmanager
def short_tmp() -> Iterator[Path]:
    """A folder under a short path (a UNIX socket's path is limited to about 100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="mls-") as tmp:
        yield Path(tmp)


# --- names that could forge or break a manifest line -------------------------------------------


def test_a_carriage_return_in_a_name_is_refused_exactly(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.csv").write_bytes(b"1")
    (root / "a\rb.csv").write_bytes(b"2")
    name = str(root / "a\rb.csv")
    expected = f"{name!r}: a file name with a line break cannot be attested"
    assert refused(file_manifest, root) == expected
    assert refused(sha256_path, root) == expected


def test_a_newline_in_a_name_is_refused_exactly(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a\nb.csv").write_bytes(b"2")
    name = str(root / "a\nb.csv")
    expected = f"{name!r}: a file name with a line break cannot be attested"
    assert refused(file_manifest, root) == expected


def test_a_name_that_is_not_utf8_is_refused_exactly(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.csv").write_bytes(b"1")
    raw = os.fsencode(root) + b"/\xff-latin1.csv"
    os.close(os.open(raw, os.O_CREAT | os.O_WRONLY, 0o644))
    expected = f"{os.fsdecode(raw)!r}: a file name that is not valid UTF-8 cannot be attested"
    assert refused(file_manifest, root) == expected


# --- special files: the whole message, the path it names ----------------------------------------


def test_a_named_pipe_is_refused_with_the_whole_message(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.csv").write_bytes(b"1")
    fifo = root / "feed"
    os.mkfifo(fifo)
    assert refused(sha256_file, fifo) == not_regular(fifo)  # opened, then refused by fstat
    assert refused(read_file, fifo) == not_regular(fifo)
    assert refused(file_manifest, fifo) == not_regular(fifo)  # the root itself
    assert refused(file_manifest, root) == not_regular(fifo)  # found by the walk
    assert refused(sha256_path, fifo) == not_regular(fifo)


def test_a_socket_is_refused_with_the_whole_message() -> None:
    # Opening a socket fails (ENXIO): the error branch must still say what it is.
    with short_tmp() as tmp:
        path = tmp / "sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            sock.listen(1)
            assert refused(sha256_file, path) == not_regular(path)
            assert refused(sha256_file, str(path)) == not_regular(path)
            assert refused(read_file, path) == not_regular(path)
            assert refused(file_manifest, path) == not_regular(path)
        finally:
            sock.close()


def test_a_symbolic_link_to_a_directory_is_named_by_its_whole_path(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "meta").mkdir(parents=True)
    (root / "a.csv").write_bytes(b"1")
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.csv").write_bytes(b"2")
    (root / "meta" / "linked").symlink_to(other, target_is_directory=True)
    assert refused(file_manifest, root) == f"{root / 'meta' / 'linked'} is a symbolic link; refusing to follow it"


# --- paths that cannot be opened, listed or read ------------------------------------------------


def test_a_path_that_cannot_be_opened_is_refused_with_the_system_reason(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"1")
    path = tmp_path / "file" / "inner"  # a file used as a folder: ENOTDIR (not "does not exist")
    expected = f"{path} cannot be read: {os.strerror(errno.ENOTDIR)}"
    assert refused(sha256_file, path) == expected
    assert refused(read_file, path) == expected
    assert refused(read_file, tmp_path / "absent") == f"{tmp_path / 'absent'} does not exist"
    assert refused(read_file, tmp_path) == f"{tmp_path} is a directory, expected a file"


def test_a_listed_file_that_cannot_be_examined_is_refused(tmp_path: Path) -> None:
    # The folder's path fits in PATH_MAX (it can be listed), the file's does not (lstat fails).
    deep, fd = deep_dir(tmp_path / "data", PATH_MAX - 150)
    try:
        name = "f" * 200
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    full = os.path.join(deep, name)
    assert len(deep) < PATH_MAX - 1 < len(full)
    assert refused(file_manifest, tmp_path / "data") == f"{full} cannot be read: {os.strerror(errno.ENAMETOOLONG)}"


def test_a_folder_that_cannot_be_listed_is_refused_not_skipped(tmp_path: Path) -> None:
    # Beyond PATH_MAX here; for a signer that is not root, a folder it may not read does the same.
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.csv").write_bytes(b"attested")
    hide_beyond_path_max(root, "hidden.csv", b"never attested")
    with pytest.raises(GateError, match=f"cannot be read: {os.strerror(errno.ENAMETOOLONG)}"):
        file_manifest(root)


@linux_proc
def test_a_read_error_is_refused_with_the_system_reason() -> None:
    # /proc/self/mem is a regular file whose first page is not mapped: read() fails with EIO.
    expected = f"/proc/self/mem cannot be read: {os.strerror(errno.EIO)}"
    assert refused(sha256_file, "/proc/self/mem") == expected
    assert refused(read_file, "/proc/self/mem") == expected


@linux_proc
def test_a_file_whose_bytes_are_not_its_size_is_refused() -> None:
    # A pseudo-file states size 0 and an unchanged mtime, yet yields bytes: what was hashed is not
    # what the file says it is, so no digest may describe it.
    assert os.stat("/proc/version").st_size == 0 and read_file("/proc/version")
    assert refused(sha256_file, "/proc/version") == (
        "/proc/version changed while it was being hashed; refusing to attest a moving target"
    )


# --- read_file: the bytes, once ------------------------------------------------------------------


def test_read_file_returns_the_exact_bytes(tmp_path: Path) -> None:
    data = b"a,b\r\n1,\xff\x00\n" + os.urandom(3000)
    path = tmp_path / "table.csv"
    path.write_bytes(data)
    got = read_file(path)
    assert type(got) is bytes and got == data
    assert read_file(str(path)) == data
    assert hashlib.sha256(got).hexdigest() == sha256_file(path)
    (tmp_path / "empty.csv").write_bytes(b"")
    assert read_file(tmp_path / "empty.csv") == b""


# --- descriptors and side effects ----------------------------------------------------------------


def test_open_regular_hands_back_a_blocking_descriptor(tmp_path: Path) -> None:
    # Opened with O_NONBLOCK only so that a pipe cannot hang the open; readers get a normal descriptor.
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 10)
    fd = _open_regular(path)
    try:
        assert os.get_blocking(fd) is True
        assert os.read(fd, 100) == b"x" * 10
    finally:
        os.close(fd)


def test_hashing_raises_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sha256_file(path) == hashlib.sha256(b"abc").hexdigest()
        assert read_file(path) == b"abc"
