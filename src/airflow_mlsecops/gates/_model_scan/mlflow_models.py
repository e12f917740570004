"""MLflow model directories whose loading runs code shipped inside them (``MLmodel`` files).

Every file of such a model can be harmless text, and yet ``mlflow.pyfunc.load_model`` runs code
the model ships: a "models from code" model (``model_code_path``: MLflow executes that Python
file to build the model), ``code_paths`` (the flavor's ``code`` directory is put first on
``sys.path``, so what the model imports may come from it) and a ``loader_module`` outside MLflow
(imported by name, from the shipped code when it is there). Each is a critical finding unless the
caller allows model code explicitly (``scan_model(..., allow_model_code=True)``), in which case it
is only recorded in the report.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from airflow_mlsecops.evidence.models import Severity
from airflow_mlsecops.gates._model_scan.formats import Problem

#: An ``MLmodel`` larger than this is not parsed (real ones are a few KiB): it stays text.
MAX_MLMODEL_BYTES = 1 << 20


def looks_like_mlmodel(head: bytes) -> bool:
    """Whether text starting with ``head`` may be an ``MLmodel`` file (a YAML mapping with ``flavors``)."""
    return b"flavors:" in head


def parse_mlmodel(data: bytes) -> dict[str, Any] | None:
    """The ``MLmodel`` mapping, or None if ``data`` is not YAML with a ``flavors`` mapping."""
    import yaml

    try:
        value = yaml.safe_load(data.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("flavors"), dict):
        return value
    return None


def _shipped_python(model_dir: Path | None, code_dir: str) -> list[str]:
    if model_dir is None:
        return []
    root = model_dir / code_dir
    if not root.is_dir() or root.is_symlink():
        return []
    return sorted(p.relative_to(model_dir).as_posix() for p in root.rglob("*.py"))[:20]


def _provides(model_dir: Path | None, code_dir: str, module: str) -> bool:
    if model_dir is None:
        return False
    base = model_dir / code_dir / Path(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def mlmodel_code(mlmodel: dict[str, Any], model_dir: Path | None) -> list[tuple[str, str]]:
    """What loading runs from code shipped with the model: (``critical``/``high``, reason) per item."""
    found: list[tuple[str, str]] = []
    for flavor, conf in mlmodel["flavors"].items():
        if not isinstance(conf, dict):
            continue
        code_path = conf.get("model_code_path")
        if code_path:
            found.append(
                (
                    "critical",
                    f"is an MLflow model from code (flavor {flavor!r}, model_code_path {code_path!r}): "
                    "loading it executes that Python file",
                )
            )
        code_dir = conf.get("code")
        code_dirs = [code_dir] if isinstance(code_dir, str) and code_dir else []
        if code_dirs:
            files = _shipped_python(model_dir, code_dirs[0])
            listed = f" ({len(files)} Python file(s), e.g. {files[0]!r})" if files else ""
            found.append(
                (
                    "critical",
                    f"ships code in {code_dirs[0]!r}{listed} (flavor {flavor!r}, code_paths) that MLflow puts first on "
                    "sys.path when loading: modules the model imports may run from it",
                )
            )
        loader = conf.get("loader_module")
        if isinstance(loader, str) and loader and not (loader == "mlflow" or loader.startswith("mlflow.")):
            if any(_provides(model_dir, posixpath.normpath(d), loader) for d in code_dirs):
                found.append(
                    ("critical", f"loader_module {loader!r} (flavor {flavor!r}) is code shipped with the model: loading runs it")
                )
            else:
                found.append(
                    (
                        "high",
                        f"loader_module {loader!r} (flavor {flavor!r}) is not an MLflow module: mlflow.pyfunc.load_model "
                        "imports it and calls its _load_pyfunc",
                    )
                )
    return found


def mlmodel_problems(mlmodel: dict[str, Any], model_dir: Path | None, allow_code: bool) -> tuple[list[Problem], list[str]]:
    """Findings for an ``MLmodel`` (none when ``allow_code``), and what was found, for the report."""
    found = mlmodel_code(mlmodel, model_dir)
    reasons = [reason for _, reason in found]
    if allow_code:
        return [], reasons
    return [Problem("mlflow-model-code", Severity(severity), reason) for severity, reason in found], reasons
