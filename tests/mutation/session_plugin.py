"""pytest plugin for mutation runs: mutmut runs many pytest sessions from one process.

``tests/conftest.py`` makes its session folder (``_SESSION_DIR``: the MLflow template store, the
Airflow home, the test DAG bundle) once, at import, and deletes it when a session ends. mutmut runs
a coverage session and a clean session in one process, then forks one session per mutant: each
would find the folder gone, and MLflow's cached engine for the deleted template store would not
make a new one. This plugin keeps a copy of the template outside the folder (after the first
session made it) and puts the folder and the template back at the start of every session.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_STASH = Path(os.environ.setdefault("MLSECOPS_MUTATION_STASH", tempfile.mkdtemp(prefix="mlsecops-mutation-stash-")))
_TEMPLATE = "mlflow-template.db"


def _session_dirs() -> list[tuple[Path, Path | None]]:
    found = []
    for module in list(sys.modules.values()):
        if not str(getattr(module, "__file__", "") or "").endswith("conftest.py"):
            continue
        session_dir = getattr(module, "_SESSION_DIR", None)
        if isinstance(session_dir, Path):
            test_dags = getattr(module, "TEST_DAGS", None)
            found.append((session_dir, test_dags if isinstance(test_dags, Path) else None))
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    for session_dir, test_dags in _session_dirs():
        session_dir.mkdir(parents=True, exist_ok=True)
        if test_dags is not None:
            test_dags.mkdir(parents=True, exist_ok=True)
        stashed = _STASH / _TEMPLATE
        if stashed.exists() and not (session_dir / _TEMPLATE).exists():
            shutil.copy2(stashed, session_dir / _TEMPLATE)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for session_dir, _ in _session_dirs():
        template = session_dir / _TEMPLATE
        if template.exists() and not (_STASH / _TEMPLATE).exists():
            shutil.copy2(template, _STASH / _TEMPLATE)
