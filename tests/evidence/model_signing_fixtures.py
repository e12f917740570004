"""A model directory for the OpenSSF model-signing tests (format in tests/evidence, gates in tests/gates)."""

from __future__ import annotations

import os
from pathlib import Path


def make_model(root: Path) -> Path:
    """A model directory whose names sort differently by string and by path component (a/b < a.txt)."""
    model = root / "model"
    (model / "a").mkdir(parents=True)
    (model / "a" / "b").write_bytes(b"nested")
    (model / "a.txt").write_text("sibling")
    (model / "weights.bin").write_bytes(os.urandom(256 * 1024))
    (model / "config.json").write_text('{"layers": 2}')
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return model
