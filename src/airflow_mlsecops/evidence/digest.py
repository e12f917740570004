"""SHA-256 of files and directory trees, streamed (never a whole file in memory) and parallel.

A directory's digest is the SHA-256 of its manifest: one ``<sha256>  <relative/posix/path>\\n``
line per regular file, sorted by path. Two trees have the same digest exactly when they hold the
same files with the same bytes. Symbolic links are refused: a link could point a verifier at a
different file than the signer hashed. So are named pipes, sockets and devices: their "bytes" are
whatever a writer sends at the moment they are read, so no digest can describe them (skipping one
would sign a manifest that does not describe the directory). A file is opened without blocking and
checked to be a regular file before anything is read, so a pipe swapped in never hangs a gate.

:func:`read_file` reads a file once into memory: a caller that must judge exactly the bytes it
names hashes and parses that one copy (see :func:`airflow_mlsecops.io.tabular.load_table`).

>>> from airflow_mlsecops.evidence.digest import sha256_path
>>> digest = sha256_path("dags")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from airflow_mlsecops.exceptions import GateError

CHUNK_SIZE = 1 << 20  # 1 MiB: hashlib releases the GIL on large updates, so threads scale.


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open_regular(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for reading without blocking; refuse anything but a regular file.

    ``O_NONBLOCK`` makes opening a named pipe return at once instead of waiting for a writer; the
    descriptor's own ``fstat`` then decides (no window between the check and the read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise GateError(f"{path} does not exist") from exc
    except IsADirectoryError as exc:
        raise GateError(f"{path} is a directory, expected a file") from exc
    except OSError as exc:
        if stat.S_ISSOCK(_stat_mode(path)):
            raise GateError(_not_regular(path)) from exc
        raise GateError(f"{path} cannot be read: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise GateError(f"{path} is a directory, expected a file")
        raise GateError(_not_regular(path))
    if hasattr(os, "O_NONBLOCK"):
        os.set_blocking(fd, True)
    return fd


def _stat_mode(path: str | os.PathLike[str]) -> int:
    try:
        return os.stat(path).st_mode
    except OSError:
        return 0


def _not_regular(path: str | os.PathLike[str]) -> str:
    return (
        f"{path} is not a regular file (a named pipe, socket or device): its bytes cannot be attested; "
        "remove it or move it out of the data"
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Stream a file through SHA-256 in 1 MiB chunks; a file that changes meanwhile is an error.

    A named pipe, socket or device is refused before anything is read (never a blocking read).
    """
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    fd = _open_regular(path)
    try:
        with open(fd, "rb", buffering=0) as fh:
            before = os.fstat(fh.fileno())
            total = 0
            while True:
                n = fh.readinto(buffer)
                if not n:
                    break
                total += n
                digest.update(view[:n])
            after = os.fstat(fh.fileno())
    except OSError as exc:
        raise GateError(f"{path} cannot be read: {exc.strerror}") from exc
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or total != after.st_size:
        raise GateError(f"{path} changed while it was being hashed; refusing to attest a moving target")
    return digest.hexdigest()


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file, read once (a named pipe, socket or device is refused).

    Whoever hashes these bytes and parses the same ``bytes`` object judges exactly what the digest
    names, whatever happens to the file afterwards; opening the path a second time would not.
    """
    fd = _open_regular(path)
    try:
        with open(fd, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise GateError(f"{path} cannot be read: {exc.strerror}") from exc


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, POSIX separators
    size: int
    sha256: str


def _check_name(path: Path) -> None:
    """Refuse names that could forge manifest lines (newlines) or cannot be written as UTF-8."""
    text = str(path)
    if "\n" in text or "\r" in text:
        raise GateError(f"{text!r}: a file name with a line break cannot be attested")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise GateError(f"{text!r}: a file name that is not valid UTF-8 cannot be attested") from exc


def refuse_unlistable(exc: OSError) -> NoReturn:
    """``os.walk``'s ``onerror`` for every walk whose result is judged or signed: a folder that cannot
    be listed (no permission, a path beyond ``PATH_MAX``) is an error, never skipped (``os.walk``'s
    default), which would leave its files out of the manifest, the scan or the database."""
    raise GateError(f"{exc.filename} cannot be read: {exc.strerror}") from exc


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=refuse_unlistable, followlinks=False):
        dirnames.sort()
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                raise GateError(f"{os.path.join(dirpath, name)} is a symbolic link; refusing to follow it")
        for name in sorted(filenames):
            full = Path(dirpath, name)
            _check_name(full)
            try:
                mode = os.lstat(full).st_mode
            except OSError as exc:
                raise GateError(f"{full} cannot be read: {exc.strerror}") from exc
            if stat.S_ISLNK(mode):
                raise GateError(f"{full} is a symbolic link; refusing to follow it")
            if not stat.S_ISREG(mode):
                # Never skipped: a manifest without it would not describe the directory.
                raise GateError(_not_regular(full))
            files.append(full)
    return files


def file_manifest(path: str | os.PathLike[str], *, workers: int | None = None) -> list[FileEntry]:
    """Hash every file under ``path`` (or the one file ``path``), in parallel across files.

    :raises GateError: for a symbolic link, a named pipe, socket or device anywhere in the tree,
        an empty directory, or a file that changes while it is hashed.
    """
    root = Path(path)
    if root.is_symlink():
        raise GateError(f"{root} is a symbolic link; refusing to follow it")
    if root.is_file():
        return [FileEntry(root.name, root.stat().st_size, sha256_file(root))]
    if not root.exists():
        raise GateError(f"{root} does not exist")
    if not root.is_dir():
        raise GateError(_not_regular(root))
    files = _walk(root)
    if not files:
        raise GateError(f"{root} holds no files; refusing to attest an empty directory")
    workers = workers or min(len(files), os.cpu_count() or 1)

    def entry(file: Path) -> FileEntry:
        return FileEntry(file.relative_to(root).as_posix(), file.stat().st_size, sha256_file(file))

    if workers <= 1:
        return [entry(f) for f in files]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(entry, files))


def manifest_digest(entries: Iterable[FileEntry]) -> str:
    lines = sorted(f"{e.sha256}  {e.path}\n" for e in entries)
    return sha256_bytes("".join(lines).encode("utf-8"))


def sha256_path(path: str | os.PathLike[str]) -> str:
    """Digest of a file (its bytes) or a directory (its manifest)."""
    root = Path(path)
    if root.is_file() and not root.is_symlink():
        return sha256_file(root)
    return manifest_digest(file_manifest(root))
