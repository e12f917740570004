"""Folders whose paths are longer than ``PATH_MAX``: a real folder that ``os.walk`` cannot list (it
fails with ENAMETOOLONG), even for root, who reads every folder whatever its permissions. Tests of
every walk whose result is judged or signed use it: such a folder must be an error, never skipped."""

from __future__ import annotations

import os
from pathlib import Path

PATH_MAX = 4096  # Linux: the longest path a system call accepts, its final NUL included


def deep_dir(root: Path, length: int) -> tuple[str, int]:
    """Create folders under ``root`` until the path is about ``length`` characters long (beyond
    ``PATH_MAX`` if asked: created relative to an open descriptor). Returns the path and an open
    descriptor of the deepest folder (the caller closes it)."""
    root.mkdir(parents=True, exist_ok=True)
    path = str(root)
    fd = os.open(path, os.O_RDONLY)
    while len(path) < length:
        name = "d" * min(200, max(1, length - len(path) - 1))
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
        path = os.path.join(path, name)
    return path, fd


def hide_beyond_path_max(folder: Path, name: str, data: bytes) -> None:
    """Write ``name`` in a subfolder of ``folder`` whose path is beyond ``PATH_MAX`` (unlistable)."""
    _, fd = deep_dir(folder / "deep", PATH_MAX + 300)
    try:
        out = os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)
