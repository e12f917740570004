"""Package discovery: the Python packages of a model's training environment, as the BOM lists them.

From an interpreter (:func:`packages_from_python`), else the model's ``requirements.txt``, else the
``pip:`` section of its ``conda.yaml`` (:func:`packages_from_model`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.sbom.osv import normalize_name

PYTHON_TIMEOUT_SECONDS = 120
_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json, re, sys\n"
    "seen = {}\n"
    "for d in m.distributions():\n"
    "    name = d.metadata.get('Name')\n"
    "    key = re.sub(r'[-_.]+', '-', name or '').lower()\n"
    "    if key and key not in seen:\n"
    "        seen[key] = {'name': name, 'version': d.version}\n"
    "json.dump(sorted(seen.values(), key=lambda p: p['name'].lower()), sys.stdout)\n"
)


@dataclass(frozen=True)
class Package:
    """A Python package of the training environment; ``version`` is ``None`` when not pinned."""

    name: str
    version: str | None
    requirement: str | None = None

    @property
    def purl(self) -> str:
        base = f"pkg:pypi/{normalize_name(self.name)}"
        return f"{base}@{self.version}" if self.version else base


@dataclass
class PackageList:
    """The packages found, where they came from, and what could not be turned into a pin."""

    source: str
    packages: list[Package] = field(default_factory=list)
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # (requirement line, reason)


def packages_from_python(python: str) -> PackageList:
    """The installed distributions of the interpreter ``python`` (a path or a name on ``PATH``)."""
    exe = shutil.which(python) or (python if Path(python).is_file() else None)
    if exe is None:
        raise GateError(f"python interpreter {python!r} not found")
    try:
        done = subprocess.run(
            [exe, "-I", "-c", _LIST_DISTRIBUTIONS],
            capture_output=True,
            text=True,
            timeout=PYTHON_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GateError(f"{exe} did not list its packages within {PYTHON_TIMEOUT_SECONDS} s") from exc
    except OSError as exc:
        raise GateError(f"{exe} cannot be run: {exc}") from exc
    if done.returncode != 0:
        raise GateError(f"{exe} could not list its packages (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    try:
        listed = json.loads(done.stdout)
        packages = [Package(str(p["name"]), str(p["version"])) for p in listed]
    except (ValueError, KeyError, TypeError) as exc:
        raise GateError(f"{exe} printed an unreadable package list: {exc}") from exc
    return PackageList(source=f"python:{exe}", packages=packages)


def parse_requirements(text: str) -> tuple[list[Package], list[tuple[str, str]]]:
    """Pinned and unpinned packages of a pip requirements file, and the lines that cannot be checked.

    Pinned means exactly one ``==``/``===`` specifier without a wildcard. Index options
    (``--index-url``...) are ignored; ``--hash`` options are stripped.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    packages: list[Package] = []
    unchecked: list[tuple[str, str]] = []
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((pending + line).strip())
        pending = ""
    if pending.strip():
        logical.append(pending.strip())
    for line in logical:
        if not line:
            continue
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            if option in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable"):
                unchecked.append((line, f"{option} is not followed; its packages cannot be checked"))
            continue
        line = re.split(r"\s+--hash[=\s]", line)[0].strip()
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            unchecked.append((line, f"not a valid requirement ({exc})"))
            continue
        if req.url:
            unchecked.append((line, "a direct reference has no version to check"))
            packages.append(Package(req.name, None, line))
            continue
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            packages.append(Package(req.name, specs[0].version, line))
        else:
            unchecked.append((line, "not pinned to one version (== or ===)"))
            packages.append(Package(req.name, None, line))
    return packages, unchecked


def packages_from_model(model_dir: Path) -> PackageList | None:
    """The model's ``requirements.txt``, else the ``pip:`` list of its ``conda.yaml``, else ``None``."""
    requirements = model_dir / "requirements.txt"
    if requirements.is_file():
        packages, unchecked = parse_requirements(read_text(requirements))
        return PackageList("requirements.txt", packages, unchecked)
    conda = model_dir / "conda.yaml"
    if conda.is_file():
        import yaml

        try:
            env = yaml.safe_load(read_text(conda)) or {}
        except yaml.YAMLError as exc:
            raise GateError(f"{conda} is not valid YAML: {exc}") from exc
        pip_lines: list[str] = []
        for dep in (env.get("dependencies") or []) if isinstance(env, dict) else []:
            if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                pip_lines.extend(str(line) for line in dep["pip"])
        if pip_lines:
            packages, unchecked = parse_requirements("\n".join(pip_lines))
            return PackageList("conda.yaml", packages, unchecked)
    return None


def read_text(path: Path) -> str:
    """A UTF-8 text file of the model; :class:`GateError` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"{path} cannot be read: {exc}") from exc
