"""Which code produced a piece of evidence: :class:`CodeIdentity` and :func:`trusted_problems`.

A gate result is only as good as the code that judged: a DAG file may subclass a gate operator
and return a passed result without judging anything, and the base class would sign it like any
other. So every result names its producer (the gate engine that ran and the operator that drove
it), each as a :class:`CodeIdentity`: the qualified name, the module, the installed distribution
and version that own the module file, the file's SHA-256 and the SHA-256 the distribution's
``RECORD`` lists for it. At promotion, :func:`trusted_problems` says why an identity is not the
trusted package's code: another module, another distribution, a file that differs from what was
installed, or a name that does not resolve to the code that ran (a look-alike).

An editable install (``pip install -e``, the project's own ``.venv``) has no digest in ``RECORD``
for the package's files: its identity says ``install="editable"`` and holds when the file lies
in the distribution's source tree (``direct_url.json``) and in the package's directory.

Pure: no Airflow import. Each module file is hashed once per process.

>>> from airflow_mlsecops.evidence.producer import CodeIdentity, trusted_problems
>>> from airflow_mlsecops.evidence.models import GateResult
>>> identity = CodeIdentity.of(GateResult)
>>> identity.name, identity.distribution
('airflow_mlsecops.evidence.models.GateResult', 'airflow-mlsecops')
>>> trusted_problems(identity)
[]
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import inspect
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import Any
from urllib.parse import unquote, urlparse

from airflow_mlsecops.exceptions import ConfigurationError

#: The package whose code is trusted to produce evidence, and the distribution that installs it.
TRUSTED_PACKAGE = "airflow_mlsecops"
TRUSTED_DISTRIBUTION = "airflow-mlsecops"

#: How the module file was installed.
INSTALL_WHEEL = "wheel"  # listed with its digest in the distribution's RECORD
INSTALL_EDITABLE = "editable"  # an editable install: the file is in the distribution's source tree
INSTALL_UNLISTED = "unlisted"  # the distribution owns the package, but its RECORD does not list the file
INSTALL_NONE = "none"  # no installed distribution owns the module
INSTALL_KINDS = (INSTALL_WHEEL, INSTALL_EDITABLE, INSTALL_UNLISTED, INSTALL_NONE)

_LOCK = threading.Lock()


@dataclass(frozen=True)
class CodeIdentity:
    """The code that produced evidence: a class or a function, and the installed file it came from.

    :param name: the qualified name, ``module.QualName`` (``airflow_mlsecops.operators.robustness.RobustnessGateOperator``).
    :param module: the module's name.
    :param file: the module file (absolute path), if it has one.
    :param sha256: SHA-256 of the module file's bytes now, if it could be read.
    :param distribution: the installed distribution that owns the module file, if any.
    :param version: that distribution's version.
    :param record_sha256: the SHA-256 the distribution's ``RECORD`` lists for the file (``None``
        when it lists none: an editable install, or a file it does not list).
    :param install: ``wheel``, ``editable``, ``unlisted`` or ``none`` (see the module constants).
    :param matches: for ``wheel``: the file's digest is the ``RECORD``'s; for ``editable``: the
        file lies in the distribution's source tree and the package's directory; else false.
    :param resolves: looking ``name`` up in the module finds this very code, and the code was
        compiled from the module's file (false for a look-alike that borrows a trusted name).
    """

    name: str
    module: str
    file: str | None = None
    sha256: str | None = None
    distribution: str | None = None
    version: str | None = None
    record_sha256: str | None = None
    install: str = INSTALL_NONE
    matches: bool = False
    resolves: bool = False

    @classmethod
    def of(cls, obj: object) -> CodeIdentity:
        """The identity of a class, a function or method, or a running frame (the code it runs).

        :raises ConfigurationError: for anything else.
        """
        module_name, qualname, code = _describe(obj)
        module = sys.modules.get(module_name) if module_name else None
        file = _module_file(module)
        resolves = bool(module is not None and file and _resolves(module, qualname, obj, code, file))
        facts = _file_facts(file, module_name.partition(".")[0]) if file else _FileFacts()
        return cls(
            name=f"{module_name}.{qualname}" if module_name else qualname,
            module=module_name,
            file=file,
            sha256=facts.sha256,
            distribution=facts.distribution,
            version=facts.version,
            record_sha256=facts.record_sha256,
            install=facts.install,
            matches=facts.matches,
            resolves=resolves,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "file": self.file,
            "sha256": self.sha256,
            "distribution": self.distribution,
            "version": self.version,
            "record_sha256": self.record_sha256,
            "install": self.install,
            "matches": self.matches,
            "resolves": self.resolves,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodeIdentity:
        """Read a recorded identity back; :class:`ConfigurationError` when it is malformed."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a code identity must be a mapping, not {type(data).__name__}")
        try:
            name, module = data["name"], data["module"]
        except KeyError as exc:
            raise ConfigurationError(f"a code identity needs {exc.args[0]!r}") from exc
        if not isinstance(name, str) or not name or not isinstance(module, str):
            raise ConfigurationError("a code identity's name and module must be strings")
        install = data.get("install", INSTALL_NONE)
        if install not in INSTALL_KINDS:
            raise ConfigurationError(f"unknown install kind {install!r} in a code identity")

        def text(key: str) -> str | None:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{key} of a code identity must be a string or null")
            return value

        def flag(key: str) -> bool:
            value = data.get(key, False)
            if not isinstance(value, bool):
                raise ConfigurationError(f"{key} of a code identity must be true or false")
            return value

        return cls(
            name=name,
            module=module,
            file=text("file"),
            sha256=text("sha256"),
            distribution=text("distribution"),
            version=text("version"),
            record_sha256=text("record_sha256"),
            install=install,
            matches=flag("matches"),
            resolves=flag("resolves"),
        )


def is_allowed(name: str, allowed: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``allowed`` (``module.Class``) or a member of one (``module.Class.method``)."""
    return any(name == item or name.startswith(f"{item}.") for item in allowed if item)


def trusted_problems(identity: CodeIdentity | Mapping[str, Any] | None, allowed: Iterable[str] = ()) -> list[str]:
    """Why ``identity`` is not the trusted package's code; empty when it is (or when it is allowed).

    :param identity: the identity (or its recorded dictionary); ``None`` means none was recorded.
    :param allowed: qualified names (``module.Class``) the platform policy allows
        (``allowed_operators``): they, and the members of an allowed class, need not be the
        package's code, but must still be what they say (the name resolves to the code that ran,
        and an installed file matches its RECORD).
    """
    if identity is None:
        return ["no producer is recorded"]
    if not isinstance(identity, CodeIdentity):
        try:
            identity = CodeIdentity.from_dict(identity)
        except ConfigurationError as exc:
            return [f"the recorded producer is malformed: {exc}"]
    allowed_by_name = is_allowed(identity.name, allowed)
    # Allowed by name: it need not be the package's code, but it must still be what it says it is.
    problems = [] if allowed_by_name else _not_the_package(identity)
    if not identity.resolves:
        problems.append(f"the name {identity.name} does not resolve to the code that ran, in the file of its module")
    if identity.sha256 is None:
        problems.append("its module file could not be read")
    elif identity.install == INSTALL_WHEEL and not identity.matches:
        if identity.record_sha256 is None:
            problems.append(f"the RECORD of {identity.distribution} lists no digest for {identity.file}")
        else:
            problems.append(
                f"{identity.file} hashes to sha256 {identity.sha256[:16]}..., the RECORD of {identity.distribution} "
                f"lists {identity.record_sha256[:16]}...: the installed file was changed"
            )
    elif identity.install == INSTALL_EDITABLE and not identity.matches:
        problems.append(f"{identity.file} lies outside the source tree of the editable install of {identity.distribution}")
    elif identity.install == INSTALL_UNLISTED and (allowed_by_name or _canonical(identity.distribution) == TRUSTED_DISTRIBUTION):
        problems.append(
            f"{identity.file} is not listed in the RECORD of {identity.distribution}: it was added after installation"
        )
    return problems


def _not_the_package(identity: CodeIdentity) -> list[str]:
    """Why ``identity`` is not code of the trusted package and distribution."""
    problems: list[str] = []
    if identity.module != TRUSTED_PACKAGE and not identity.module.startswith(f"{TRUSTED_PACKAGE}."):
        problems.append(f"module {identity.module or 'unknown'} is not part of the {TRUSTED_PACKAGE} package")
    if identity.install == INSTALL_NONE or not identity.distribution:
        problems.append(f"its file belongs to no installed distribution, not {TRUSTED_DISTRIBUTION}")
    elif _canonical(identity.distribution) != TRUSTED_DISTRIBUTION:
        if identity.install == INSTALL_UNLISTED:
            problems.append(
                f"its package is provided by distribution {identity.distribution}, whose RECORD does not list "
                f"its file, not by {TRUSTED_DISTRIBUTION}"
            )
        else:
            problems.append(f"its file belongs to distribution {identity.distribution}, not {TRUSTED_DISTRIBUTION}")
    return problems


def producer_problem(producer: Mapping[str, Any] | None, allowed: Iterable[str] = ()) -> str | None:
    """Why a result's ``producer`` (``{"engine": ..., "operator": ...}``) is not trusted, as the end of
    a sentence about the evidence (``"was produced by dags.evil.LaxGate, which is ..."``); ``None`` when it is.

    The engine must be recorded and be the trusted package's code (or be allowed by name). The
    operator, when there is one, must be too: every gate operator stamps itself, so a subclass in a
    DAG file is named here. A gate run outside Airflow (the CLI, a library call) has no operator.
    Evidence without a producer was made by hand or by a version that did not record one: the gate
    must run again.
    """
    allowed = tuple(allowed)
    if not isinstance(producer, Mapping):
        return "names no producer (made by hand, or by a version that did not record one): run the gate again"
    if producer.get("engine") is None:
        return "names no engine that produced it (made by hand?): run the gate again"
    for role in ("operator", "engine"):
        identity = producer.get(role)
        if identity is None:
            continue
        problems = trusted_problems(identity, allowed)
        if problems:
            name = identity.get("name") if isinstance(identity, Mapping) else None
            what = f"{name or 'unnamed code'}" if role == "operator" else f"the engine {name or 'unnamed code'}"
            return (
                f"was produced by {what}, which is not {TRUSTED_DISTRIBUTION} code "
                f"({'; '.join(problems)}); allow it by name in the policy's allowed_operators if the platform trusts it"
            )
    return None


# ----------------------------------------------------------------------------- how an object is described
def _describe(obj: object) -> tuple[str, str, CodeType | None]:
    """``(module, qualname, code)`` of a class, function, method or frame."""
    if isinstance(obj, FrameType):
        return str(obj.f_globals.get("__name__") or ""), obj.f_code.co_qualname, obj.f_code
    if isinstance(obj, type):
        return str(getattr(obj, "__module__", "") or ""), str(obj.__qualname__), None
    function = getattr(obj, "__func__", obj)  # a bound method: its function
    code = getattr(function, "__code__", None)
    if isinstance(code, CodeType):
        return str(getattr(function, "__module__", "") or ""), str(getattr(function, "__qualname__", code.co_qualname)), code
    raise ConfigurationError(f"cannot name the code of {type(obj).__name__} {obj!r}: not a class, function or frame")


def _module_file(module: ModuleType | None) -> str | None:
    file = getattr(module, "__file__", None)
    return os.path.realpath(file) if isinstance(file, str) and file else None


def _lookup(module: ModuleType, dotted: str) -> object | None:
    target: object = module
    for part in dotted.split("."):
        try:
            target = inspect.getattr_static(target, part)
        except AttributeError:
            return None
    return target


def _function_code(target: object) -> CodeType | None:
    target = getattr(target, "__func__", target)  # staticmethod / classmethod
    try:
        target = inspect.unwrap(target)  # type: ignore[arg-type]
    except ValueError:
        return None
    code = getattr(target, "__code__", None)
    return code if isinstance(code, CodeType) else None


def _resolves(module: ModuleType, qualname: str, obj: object, code: CodeType | None, file: str) -> bool:
    """Whether ``module.qualname`` is ``obj`` (or runs ``code``) and its code comes from ``file``."""
    if code is None:  # a class: the module must hold it under its name, and its methods come from the file
        if _lookup(module, qualname) is not obj:
            return False
        for member in vars(obj).values():
            member_code = _function_code(member)
            if member_code is None or member_code.co_filename.startswith("<"):
                continue  # no code, or generated code (dataclass and namedtuple methods come from "<string>")
            if os.path.realpath(member_code.co_filename) != file:
                return False
        return True
    if os.path.realpath(code.co_filename) != file:
        return False
    head, *nested = qualname.split(".<locals>.")
    found = _function_code(_lookup(module, head))
    accumulated = head
    for part in nested:  # a nested function or lambda: a code constant of the enclosing one
        accumulated = f"{accumulated}.<locals>.{part}"
        if found is None:
            return False
        found = next((c for c in found.co_consts if isinstance(c, CodeType) and c.co_qualname == accumulated), None)
    return found is code


# ----------------------------------------------------------------------------- what the installed distribution says
@dataclass(frozen=True)
class _FileFacts:
    sha256: str | None = None
    distribution: str | None = None
    version: str | None = None
    record_sha256: str | None = None
    install: str = INSTALL_NONE
    matches: bool = False


_FACTS: dict[tuple[str, str], _FileFacts] = {}
_OWNERS: dict[tuple[str, ...], Mapping[str, list[str]]] = {}


def _file_facts(file: str, top_level: str) -> _FileFacts:
    """What the file and its distribution say, computed once per file and process."""
    key = (file, top_level)
    with _LOCK:
        cached = _FACTS.get(key)
    if cached is not None:
        return cached
    try:
        sha256 = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    except OSError:
        sha256 = None
    facts = _FileFacts(sha256=sha256)
    candidates = _owning_distributions(top_level)
    for dist in candidates:
        listed = _record_of(dist).get(file)
        if listed is not None:
            record = listed
            facts = _FileFacts(sha256, _dist_name(dist), dist.version, record, INSTALL_WHEEL, bool(record) and record == sha256)
            break
        source = _editable_source(dist)
        if source is not None:
            package = _module_file(sys.modules.get(top_level))
            package_dir = os.path.dirname(package) if package else None
            inside = bool(package_dir and _under(file, source) and _under(file, package_dir))
            facts = _FileFacts(sha256, _dist_name(dist), dist.version, None, INSTALL_EDITABLE, inside)
            break
    else:
        if candidates:
            dist = candidates[0]
            facts = _FileFacts(sha256, _dist_name(dist), dist.version, None, INSTALL_UNLISTED, False)
    with _LOCK:
        _FACTS[key] = facts
    return facts


def _owning_distributions(top_level: str) -> list[importlib.metadata.Distribution]:
    """The installed distributions that provide the top-level package ``top_level``."""
    if not top_level:
        return []
    names: list[str] = []
    try:  # the usual case, cheaply: the distribution is named after its package
        guess = importlib.metadata.distribution(top_level)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        guess = None
    if guess is not None and top_level in _top_levels(guess):
        names.append(_dist_name(guess))
    else:
        path_key = tuple(sys.path)
        with _LOCK:
            owners = _OWNERS.get(path_key)
        if owners is None:
            owners = importlib.metadata.packages_distributions()  # scans every distribution (~0.2 s)
            with _LOCK:
                _OWNERS[path_key] = owners
        names.extend(owners.get(top_level, ()))
    found: list[importlib.metadata.Distribution] = []
    for name in dict.fromkeys(names):
        try:
            found.append(importlib.metadata.distribution(name))
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _top_levels(dist: importlib.metadata.Distribution) -> set[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    return {str(f).split("/", 1)[0].removesuffix(".py") for f in dist.files or ()}


def _record_of(dist: importlib.metadata.Distribution) -> dict[str, str]:
    """The distribution's RECORD: absolute real path -> SHA-256 hex ('' when it lists no digest)."""
    listed: dict[str, str] = {}
    for entry in dist.files or ():
        digest = ""
        if entry.hash is not None and entry.hash.mode == "sha256":
            try:
                raw = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
            except ValueError:
                raw = b""
            digest = raw.hex() if len(raw) == 32 else ""
        listed[os.path.realpath(str(dist.locate_file(entry)))] = digest
    return listed


def _editable_source(dist: importlib.metadata.Distribution) -> str | None:
    """The source tree of an editable install (from ``direct_url.json``), else ``None``."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("dir_info"), dict) or data["dir_info"].get("editable") is not True:
        return None
    url = urlparse(str(data.get("url", "")))
    if url.scheme != "file" or not url.path:
        return None
    return os.path.realpath(unquote(url.path))


def _under(file: str, directory: str) -> bool:
    return os.path.commonpath([file, directory]) == directory


def _dist_name(dist: importlib.metadata.Distribution) -> str:
    return str(dist.metadata["Name"] or "")


def _canonical(name: str | None) -> str:
    return re.sub(r"[-_.]+", "-", name or "").lower()
