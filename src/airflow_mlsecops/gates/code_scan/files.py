"""Which files the code scan reads, and what it refuses to read.

:func:`collect_files` expands the paths given (files and directories) into :class:`SourceFile` s:
Python files (``*.py``: static analysis and the secret scan) and configuration files
(:data:`CONFIG_SUFFIXES`: the secret scan only). A file named explicitly is scanned whatever its
name says (Python if it ends in ``.py``, configuration otherwise); inside a directory, files with
other suffixes are not read (their count is recorded) and :data:`SKIPPED_DIRS` are not entered.

Every problem is a :class:`CodeScanInputError` (an ``error`` verdict, never a pass): a path that
does not exist, a file that cannot be read, a binary file (a NUL byte or bytes that are not UTF-8),
a Python file with a syntax error, nothing to scan at all.
"""

from __future__ import annotations

import ast
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from airflow_mlsecops.exceptions import GateError

#: Suffixes read as configuration (secret scan only) inside a directory.
CONFIG_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".cfg", ".ini", ".env", ".toml", ".conf", ".properties", ".txt", ".sh"})
#: Directory names never entered: caches and environments, not code anyone wrote for the pipeline.
SKIPPED_DIRS = frozenset(
    {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox"}
)
#: A file this large is refused (code and configuration; a data file given by mistake is not scanned for hours).
MAX_FILE_BYTES = 16 * 1024 * 1024

PYTHON, CONFIG = "python", "config"


class CodeScanInputError(GateError):
    """The code scan cannot read its input; ``finding`` says why (``code-scan.<finding>``)."""

    def __init__(self, message: str, finding: str) -> None:
        super().__init__(message)
        self.finding = finding


@dataclass(frozen=True)
class SourceFile:
    """One file to scan: where it is, how it is named in the evidence, its kind and digest."""

    path: Path
    name: str
    kind: str
    sha256: str
    lines: int


@dataclass(frozen=True)
class Collected:
    files: tuple[SourceFile, ...]
    #: Files inside the directories given that were not read (other suffixes), by suffix.
    not_read: dict[str, int]


def _is_env_file(path: Path) -> bool:
    return path.name == ".env" or path.name.startswith(".env.") or path.suffix == ".env"


def _kind(path: Path, *, explicit: bool) -> str | None:
    if path.suffix == ".py":
        return PYTHON
    if explicit or path.suffix.lower() in CONFIG_SUFFIXES or _is_env_file(path):
        return CONFIG
    return None


def _read(path: Path, name: str, kind: str) -> SourceFile:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CodeScanInputError(
                f"{name}: {size} bytes is more than the {MAX_FILE_BYTES} a code or configuration file may have", "file-too-large"
            )
        data = path.read_bytes()
    except CodeScanInputError:
        raise
    except OSError as exc:
        raise CodeScanInputError(f"{name}: cannot be read ({exc.strerror or exc})", "unreadable-file") from exc
    if b"\x00" in data:
        raise CodeScanInputError(f"{name}: a binary file (it holds NUL bytes), not source code or configuration", "binary-file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodeScanInputError(
            f"{name}: not UTF-8 text (byte {exc.start}): a binary file or another encoding", "binary-file"
        ) from exc
    if kind == PYTHON:
        try:
            with warnings.catch_warnings():  # invalid escape sequences etc. are not this gate's business
                warnings.simplefilter("ignore")
                ast.parse(data, filename=name)
        except SyntaxError as exc:
            raise CodeScanInputError(f"{name}:{exc.lineno}: Python syntax error: {exc.msg}", "syntax-error") from exc
        except ValueError as exc:  # e.g. "source code string cannot contain null bytes"
            raise CodeScanInputError(f"{name}: cannot be parsed as Python: {exc}", "syntax-error") from exc
    return SourceFile(path=path, name=name, kind=kind, sha256=hashlib.sha256(data).hexdigest(), lines=text.count("\n") + 1)


def collect_files(paths: list[str] | tuple[str, ...]) -> Collected:
    """The files to scan under ``paths``, each read once, checked and hashed, in a stable order.

    :raises CodeScanInputError: for the first path or file that cannot be scanned, or when there is nothing to scan.
    """
    if not paths:
        raise CodeScanInputError("no paths to scan", "no-files")
    found: dict[str, SourceFile] = {}
    not_read: dict[str, int] = {}
    for given in paths:
        if not isinstance(given, (str, os.PathLike)) or not str(given).strip():
            raise CodeScanInputError(f"not a path: {given!r}", "missing-path")
        root = Path(given)
        if not root.exists():
            raise CodeScanInputError(f"{given}: no such file or directory", "missing-path")
        if root.is_file():
            kind = PYTHON if root.suffix == ".py" else CONFIG  # named explicitly: always read
            found.setdefault(os.path.realpath(root), _read(root, os.path.normpath(str(given)), kind))
            continue
        if not root.is_dir():
            raise CodeScanInputError(f"{given}: neither a file nor a directory", "unreadable-file")
        if not os.access(root, os.R_OK | os.X_OK):
            raise CodeScanInputError(f"{given}: directory cannot be read", "unreadable-file")

        def _refuse(error: OSError) -> None:
            raise CodeScanInputError(f"{error.filename}: cannot be listed ({error.strerror})", "unreadable-file")

        for directory, subdirs, names in os.walk(root, onerror=_refuse):
            subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS)
            for file_name in sorted(names):
                path = Path(directory, file_name)
                file_kind = _kind(path, explicit=False)
                if file_kind is None:
                    not_read[path.suffix or path.name] = not_read.get(path.suffix or path.name, 0) + 1
                    continue
                name = os.path.normpath(os.path.join(str(given), os.path.relpath(path, root)))
                if not path.is_file():  # never skipped quietly, never opened (a pipe would block)
                    raise CodeScanInputError(
                        f"{name}: not a regular file (a dangling link, a pipe or a device)", "unreadable-file"
                    )
                found.setdefault(os.path.realpath(path), _read(path, name, file_kind))
    if not found:
        raise CodeScanInputError(f"no Python or configuration files under {', '.join(map(str, paths))}", "no-files")
    return Collected(files=tuple(sorted(found.values(), key=lambda f: f.name)), not_read=dict(sorted(not_read.items())))
