"""Hashing a model for OpenSSF model signing: list its regular files, refuse what cannot be signed, hash in parallel.

A model is a file or a directory. Each regular file becomes a resource named by its relative POSIX
path (``"."`` for a model that is a single file); resources are ordered by path components
(``a/b`` before ``a.txt``) and the model digest is the SHA-256 of their concatenated raw digests, as
``model_signing`` 1.x computes it. Files are hashed in parallel (largest first) with the streamed
hasher of :mod:`airflow_mlsecops.evidence.digest`. Symbolic links, special files and file names
that are not UTF-8 become :class:`Problem` entries rather than resources; paths under an ignore
path are hashed (the gate subject pins the directory as it is on disk) but never signed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from airflow_mlsecops.evidence.digest import FileEntry, manifest_digest, sha256_file
from airflow_mlsecops.exceptions import GateError, SignatureInvalid

DEFAULT_IGNORE_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
SINGLE_FILE_RESOURCE = "."
MAX_LISTED_PROBLEMS = 5  # problems spelled out in an exception message; the gate records every one


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Problem:
    """One way the local model differs from its signature."""

    kind: str  # changed | missing | added | renamed | symlink | special | name | kind
    path: str
    message: str


@dataclass
class ModelTree:
    """The regular files of a model, and what could not be part of a signature.

    ``ignored`` are the regular files under ignored paths: not signed, but hashed for the gate
    subject, which pins the directory as it is on disk (as ``sha256_path`` does);
    ``ignored_exact`` is false when an ignored path holds something ``sha256_path`` would refuse.
    """

    root: Path
    is_file: bool
    files: list[tuple[str, Path, int]] = field(default_factory=list)  # (resource name, path, size)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[tuple[str, Path, int]] = field(default_factory=list)
    ignored_exact: bool = True

    @property
    def total_bytes(self) -> int:
        return sum(size for _, _, size in self.files)


def model_subject_name(root: Path) -> str:
    name = root.name
    if not name or name == "..":
        name = os.path.basename(root.resolve())
    return name


def ignore_parts(paths: Iterable[str]) -> set[tuple[str, ...]]:
    """Normalise relative ignore paths to path components; drop ones that cannot name a model file."""
    parts: set[tuple[str, ...]] = set()
    for raw in paths:
        pure = PurePosixPath(str(raw).replace(os.sep, "/"))
        if pure.is_absolute() or ".." in pure.parts:
            continue
        if not pure.parts:
            raise SignatureInvalid("the signature ignores the whole model (ignore path '.'); refusing it")
        parts.add(pure.parts)
    return parts


def _is_ignored(parts: tuple[str, ...], ignore: set[tuple[str, ...]]) -> bool:
    return any(parts[:k] in ignore for k in range(1, len(parts) + 1))


def _symlink_problem(root_real: str, full: str, rel: str) -> Problem:
    target = os.path.realpath(full)
    if target != root_real and not target.startswith(root_real.rstrip(os.sep) + os.sep):
        return Problem(
            "symlink",
            rel,
            f"{rel} is a symbolic link pointing outside the model (to {os.readlink(full)}); a link is never signed",
        )
    return Problem(
        "symlink", rel, f"{rel} is a symbolic link (to {os.readlink(full)} inside the model); symbolic links are not signed"
    )


def scan_model_tree(model_path: str | os.PathLike[str], ignore: set[tuple[str, ...]]) -> ModelTree:
    """List the model's regular files; links, special files and odd names become problems."""
    root = Path(model_path)
    if root.is_symlink():
        raise GateError(f"{root} is a symbolic link; refusing to follow it (name the model itself)")
    try:
        mode = root.stat().st_mode
    except FileNotFoundError as exc:
        raise GateError(f"{root} does not exist") from exc
    except OSError as exc:
        raise GateError(f"{root} cannot be read: {exc.strerror}") from exc
    if stat.S_ISREG(mode):
        return ModelTree(root, True, [(SINGLE_FILE_RESOURCE, root, os.stat(root).st_size)])
    if not stat.S_ISDIR(mode):
        raise GateError(f"{root} is neither a file nor a directory")

    tree = ModelTree(root, False)
    root_real = os.path.realpath(root)

    def walk_error(exc: OSError) -> None:
        raise GateError(f"{exc.filename} cannot be read: {exc.strerror}") from exc

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        prefix = () if rel_dir == "." else tuple(Path(rel_dir).parts)
        kept: list[str] = []
        for name in dirnames:
            parts = (*prefix, name)
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                if _is_ignored(parts, ignore):
                    tree.ignored_exact = False
                else:
                    tree.problems.append(_symlink_problem(root_real, full, "/".join(parts)))
                continue
            kept.append(name)
        dirnames[:] = sorted(kept)
        for name in filenames:
            parts = (*prefix, name)
            ignored = _is_ignored(parts, ignore)
            rel = "/".join(parts)
            full = os.path.join(dirpath, name)
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                if ignored:
                    tree.ignored_exact = False
                else:
                    tree.problems.append(Problem("name", rel, f"{rel!r}: a file name that is not valid UTF-8 cannot be signed"))
                continue
            try:
                info = os.lstat(full)
            except OSError as exc:
                raise GateError(f"{full} cannot be read: {exc.strerror}") from exc
            if stat.S_ISREG(info.st_mode):
                (tree.ignored if ignored else tree.files).append((rel, Path(full), info.st_size))
            elif ignored:
                tree.ignored_exact = False
            elif stat.S_ISLNK(info.st_mode):
                tree.problems.append(_symlink_problem(root_real, full, rel))
            else:
                tree.problems.append(Problem("special", rel, f"{rel} is not a regular file (a device, socket or pipe)"))
    return tree


def hash_files(files: Sequence[tuple[str, Path, int]], workers: int | None) -> dict[str, str]:
    """SHA-256 of every file, streamed, in parallel across files, largest first (for balance)."""
    order = sorted(files, key=lambda f: -f[2])
    count = workers or min(len(order), 32, (os.cpu_count() or 1) + 4)  # the ThreadPoolExecutor default
    if count <= 1 or len(order) <= 1:
        return {name: sha256_file(path) for name, path, _ in order}
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="model-signing")
    try:
        futures: list[tuple[str, Future[str]]] = [(name, pool.submit(sha256_file, path)) for name, path, _ in order]
        return {name: future.result() for name, future in futures}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def resource_sort_key(name: str) -> tuple[str, ...]:
    """OpenSSF orders resources by ``PurePosixPath`` (path components), not by plain string."""
    return tuple(name.split("/"))


def root_digest(resources: Iterable[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for _, value in resources:
        digest.update(bytes.fromhex(value))
    return digest.hexdigest()


def tree_sha256(files: Mapping[str, str]) -> str:
    """The model's digest as :func:`~airflow_mlsecops.evidence.digest.sha256_path` computes it."""
    if set(files) == {SINGLE_FILE_RESOURCE}:
        return files[SINGLE_FILE_RESOURCE]
    return manifest_digest(FileEntry(name, 0, digest) for name, digest in files.items())


def relative_inside(path: str | os.PathLike[str] | None, root: Path) -> str | None:
    """``path`` relative to the model directory ``root`` if it lies inside it, else ``None``."""
    if path is None or not root.is_dir():
        return None
    try:
        rel = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None
