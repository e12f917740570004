"""SHA-256 of files and directory trees, streamed (never a whole file in memory) and parallel.

A directory's digest is the SHA-256 of its manifest: one ``<sha256>  <relative/posix/path>\\n``
line per regular file, sorted by path. Two trees have the same digest exactly when they hold the
same files with the same bytes. Symbolic links are refused: a link could point a verifier at a
different file than the signer hashed.

>>> from airflow_mlsecops.evidence.digest import sha256_path
>>> digest = sha256_path("dags")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from airflow_mlsecops.exceptions import GateError

CHUNK_SIZE = 1 << 20  # 1 MiB: hashlib releases the GIL on large updates, so threads scale.


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Stream a file through SHA-256 in 1 MiB chunks; a file that changes meanwhile is an error."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as fh:
            before = os.fstat(fh.fileno())
            total = 0
            while True:
                n = fh.readinto(buffer)
                if not n:
                    break
                total += n
                digest.update(view[:n])
            after = os.fstat(fh.fileno())
    except FileNotFoundError as exc:
        raise GateError(f"{path} does not exist") from exc
    except IsADirectoryError as exc:
        raise GateError(f"{path} is a directory, expected a file") from exc
    except OSError as exc:
        raise GateError(f"{path} cannot be read: {exc.strerror}") from exc
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or total != after.st_size:
        raise GateError(f"{path} changed while it was being hashed; refusing to attest a moving target")
    return digest.hexdigest()


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


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                raise GateError(f"{os.path.join(dirpath, name)} is a symbolic link; refusing to follow it")
        for name in sorted(filenames):
            full = Path(dirpath, name)
            _check_name(full)
            if full.is_symlink():
                raise GateError(f"{full} is a symbolic link; refusing to follow it")
            if full.is_file():
                files.append(full)
    return files


def file_manifest(path: str | os.PathLike[str], *, workers: int | None = None) -> list[FileEntry]:
    """Hash every regular file under ``path`` (or the one file ``path``), in parallel across files."""
    root = Path(path)
    if root.is_symlink():
        raise GateError(f"{root} is a symbolic link; refusing to follow it")
    if root.is_file():
        return [FileEntry(root.name, root.stat().st_size, sha256_file(root))]
    if not root.exists():
        raise GateError(f"{root} does not exist")
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
