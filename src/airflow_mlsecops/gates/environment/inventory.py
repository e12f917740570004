"""What was installed where the model was trained, and what the model itself needs to load.

An :class:`Environment` lists installed distributions, read with :mod:`importlib.metadata`:

* :func:`current_environment`: this interpreter's own (``sys.path``), what the worker that trained
  the model sees when the gate runs in the training worker's image;
* :func:`site_packages_environment`: a ``site-packages`` directory (its ``*.dist-info`` and
  ``*.egg-info`` folders);
* :func:`freeze_environment`: a ``pip freeze`` file (names and versions only: modules are matched by
  name and through this interpreter's module map, and each package's ``Requires-Dist`` is borrowed
  from the same distribution installed here, when it is).

:func:`model_modules` lists the top-level modules a model needs to load, read from its files without
loading it: the ``python_function`` loader module, the frameworks of its flavors, the serialiser of a
``skops``/``cloudpickle`` model and every module a ``.skops`` file's ``schema.json`` names.
"""

from __future__ import annotations

import functools
import json
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.sbom.osv import normalize_name
from airflow_mlsecops.gates.sbom.packages import Package, PackageList, parse_requirements, read_text

#: MLflow flavor -> the top-level module of its framework (flavors not listed add nothing).
FLAVOR_MODULES: Mapping[str, str] = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "pytorch": "torch",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "onnx": "onnx",
    "transformers": "transformers",
    "statsmodels": "statsmodels",
    "prophet": "prophet",
    "spacy": "spacy",
    "spark": "pyspark",
    "h2o": "h2o",
}
#: ``serialization_format`` of a flavor -> the module that reads it.
SERIALIZER_MODULES: Mapping[str, str] = {"skops": "skops", "cloudpickle": "cloudpickle"}
_MAX_SKOPS_SCHEMA = 64 << 20


@dataclass(frozen=True)
class Distribution:
    """One installed distribution: its name, version, ``Requires-Dist`` lines and top-level modules."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return normalize_name(self.name)


@dataclass
class Environment:
    """The installed distributions of one environment, keyed by PEP 503 name (the first one found wins,
    as it does for ``import``). ``metadata`` is ``False`` for a freeze file (no requirements, no modules)."""

    source: str
    distributions: dict[str, Distribution] = field(default_factory=dict)
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # freeze lines without a version
    metadata: bool = True

    def get(self, name: str) -> Distribution | None:
        return self.distributions.get(normalize_name(name))

    def providers(self, module: str) -> list[Distribution]:
        """The distributions that install the top-level ``module``."""
        found = [d for d in self.distributions.values() if module in d.modules]
        if not found and not self.metadata:
            # A freeze file names no modules: fall back on the module's name, and on what this
            # interpreter knows of it (``sklearn`` is installed by scikit-learn).
            names = [module, *_interpreter_module_owners().get(module, ())]
            found = [d for n in names if (d := self.get(n)) is not None]
        return list({d.key: d for d in found}.values())

    def package_list(self) -> PackageList:
        """The environment as the SBOM gate's package list (for its BOM and vulnerability check)."""
        packages = [Package(d.name, d.version) for d in sorted(self.distributions.values(), key=lambda d: d.key)]
        return PackageList(self.source, packages, list(self.unchecked))


@functools.cache  # scans every installed distribution's file list: once per process
def _interpreter_module_owners() -> Mapping[str, list[str]]:
    import importlib.metadata

    return importlib.metadata.packages_distributions()


def _modules_of(dist: Any) -> tuple[str, ...]:
    """Top-level import names of an installed distribution: ``top_level.txt``, else its file list."""
    text = dist.read_text("top_level.txt")
    if text:
        return tuple(sorted({line.strip().replace("/", ".").split(".")[0] for line in text.splitlines() if line.strip()}))
    names: set[str] = set()
    for entry in dist.files or ():
        parts = entry.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".egg-info", ".data", ".pth")):
            continue
        if len(parts) > 1:
            names.add(parts[0])
        elif parts[0].endswith((".py", ".so", ".pyd")):
            names.add(parts[0].split(".")[0])
    return tuple(sorted(n for n in names if n.isidentifier()))


def _collect(source: str, dists: Iterable[Any]) -> Environment:
    env = Environment(source)
    for dist in dists:
        meta = dist.metadata  # parsed on every access: read it once
        name, version = (meta["Name"], meta["Version"]) if meta else (None, None)
        if not name or not version:
            continue  # a broken or half-removed install names nothing a model could use
        requires = tuple(str(r) for r in meta.get_all("Requires-Dist") or ())
        found = Distribution(str(name), str(version), requires, _modules_of(dist))
        env.distributions.setdefault(found.key, found)
    return env


def current_environment() -> Environment:
    """The distributions this interpreter imports from (``importlib.metadata`` over ``sys.path``)."""
    import importlib.metadata

    env = _collect(f"importlib.metadata:{sys.executable}", importlib.metadata.distributions())
    if not env.distributions:
        raise GateError(f"importlib.metadata finds no installed distribution for {sys.executable}")
    return env


def site_packages_environment(path: str | Path) -> Environment:
    """The distributions installed in the ``site-packages`` directory ``path``.

    :raises GateError: ``path`` is not a directory or holds no distribution (a wrong path must not
        look like an empty, clean environment).
    """
    import importlib.metadata

    directory = Path(path)
    if not directory.is_dir():
        raise GateError(f"{path}: not a site-packages directory")
    env = _collect(f"site-packages:{directory.absolute()}", importlib.metadata.distributions(path=[str(directory)]))
    if not env.distributions:
        raise GateError(f"{path}: no installed distribution (*.dist-info or *.egg-info) found")
    return env


def freeze_environment(path: str | Path) -> Environment:
    """The distributions a ``pip freeze`` file lists (``name==version`` lines).

    :raises GateError: the file cannot be read as UTF-8 text, or lists no pinned distribution.
    """
    file = Path(path)
    if not file.is_file():
        raise GateError(f"{path}: no such freeze file")
    packages, unchecked = parse_requirements(read_text(file))
    import importlib.metadata

    env = Environment(f"freeze:{file.absolute()}", unchecked=unchecked, metadata=False)
    for pkg in packages:
        if pkg.version is None:
            continue
        # A freeze file has no dependency metadata: borrow the Requires-Dist of the same distribution
        # in this interpreter, when it has one (what declared packages pull in rarely changes).
        try:
            requires = tuple(importlib.metadata.metadata(pkg.name).get_all("Requires-Dist") or ())
        except importlib.metadata.PackageNotFoundError:
            requires = ()
        env.distributions.setdefault(normalize_name(pkg.name), Distribution(pkg.name, pkg.version, requires))
    if not env.distributions:
        raise GateError(f"{path}: not a pip freeze file (no name==version line)")
    return env


def _skops_modules(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > _MAX_SKOPS_SCHEMA:
                raise GateError(f"{path}: schema.json is larger than {_MAX_SKOPS_SCHEMA >> 20} MiB")
            schema = json.loads(archive.read(info))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise GateError(f"{path}: not a readable skops file ({exc})") from exc
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("__module__")
            if isinstance(module, str) and module:
                found.add(module.split(".")[0])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def model_modules(model_dir: Path, mlmodel: Mapping[str, Any], files: Sequence[str]) -> dict[str, list[str]]:
    """Top-level modules the model needs to load -> what says so (``MLmodel loader_module``, a skops file...).

    Standard-library modules are left out.

    :param model_dir: the local model directory.
    :param mlmodel: its parsed ``MLmodel`` (empty when it has none).
    :param files: the model's file paths, relative to ``model_dir``.
    """
    needed: dict[str, list[str]] = {}

    def need(module: str, why: str) -> None:
        top = module.split(".")[0]
        if top and top not in sys.stdlib_module_names and top != "__main__":
            needed.setdefault(top, [])
            if why not in needed[top]:
                needed[top].append(why)

    flavors = mlmodel.get("flavors")
    for flavor, config in sorted(flavors.items()) if isinstance(flavors, Mapping) else ():
        config = config if isinstance(config, Mapping) else {}
        if isinstance(config.get("loader_module"), str):
            need(config["loader_module"], f"MLmodel {flavor}.loader_module")
        if str(flavor) in FLAVOR_MODULES:
            need(FLAVOR_MODULES[str(flavor)], f"MLmodel flavor {flavor}")
        fmt = config.get("serialization_format")
        if isinstance(fmt, str) and fmt in SERIALIZER_MODULES:
            need(SERIALIZER_MODULES[fmt], f"MLmodel {flavor}.serialization_format={fmt}")
    for rel in files:
        if rel.endswith(".skops"):
            for module in sorted(_skops_modules(model_dir / rel)):
                need(module, f"{rel} (skops schema)")
    return needed
