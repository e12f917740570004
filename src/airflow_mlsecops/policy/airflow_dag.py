"""Turn an Airflow DAG object into the plain :class:`~airflow_mlsecops.policy.engine.DagInfo` the
rule engine judges.

What is read, per task: the operator class name; the gate it records (the class's ``gate_name``,
``ProvenanceSignOperator``'s ``gate``, ``model-approval`` for ``ModelApprovalGateOperator``); its
direct upstream task ids; ``warn_only``; and the threshold arguments the policy can constrain, as
the operator holds them after its ``__init__`` (so the operator's own defaults count).

A value that is a Jinja template is resolved only in the form ``{{ params.NAME }}``, to the DAG
param's default; anything else templated, an XCom reference or a mapped (``expand``) argument is
:class:`~airflow_mlsecops.policy.engine.Unresolved` and fails any policy check on it (the task's
evidence is checked again at promotion).

Where the operator class comes from (:func:`_origin`): the package's own gate operators are the
classes that the package's modules define, found at their ``module.Class`` and with methods whose
code is in the package's files. A class outside the package that derives from one is a
``subclass``; one that derives from none but is named like one of them or has a ``gate_name``
attribute is a ``look-alike``; a package gate class whose method was replaced by code from
elsewhere (a DAG file patching it) is ``tampered``. The engine refuses all three
(:func:`~airflow_mlsecops.policy.engine.check_structure`) unless a rule allows the class by name.

Also read: the trigger rule, a mapped task's argument expanded over a literal empty list or dict,
and the registered model name and alias that register and promote tasks name
(:attr:`~airflow_mlsecops.policy.engine.DagInfo.models`).

Imports nothing heavy: the gate modules it uses are the ones the DAG's operators already loaded.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import airflow_mlsecops
from airflow_mlsecops import gate_names
from airflow_mlsecops.policy.engine import ALL_SUCCESS, DagInfo, TaskInfo, Unresolved
from airflow_mlsecops.policy.model import APPROVAL_GATE, STEP_GATES, STEP_PROMOTE, STEP_REGISTER, split_owners
from airflow_mlsecops.policy.parameters import gate_arguments

_PACKAGE = "airflow_mlsecops."
_CLASS_GATES = {"ModelApprovalGateOperator": APPROVAL_GATE}
#: Methods through which a gate applies the policy, runs and records its evidence: a subclass may not
#: redefine them (``operators.base.SEALED_METHODS``, plus the approval gate's ``execute_complete``).
_RUN_METHODS = ("execute", "execute_complete", "apply_policy", "check_evidence_store", "evidence_hook")
_REGISTER_CLASS, _PROMOTE_CLASS = "RegisterModelOperator", "PromoteModelOperator"
_PARAM_TEMPLATE = re.compile(r"\s*\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*")
_MISSING = object()

Getter = Callable[[str], Any]


def dag_info(dag: Any) -> DagInfo:
    """The structure of an Airflow DAG (``airflow.sdk.DAG``) as plain data for the rule engine."""
    params = _param_defaults(dag)
    tasks = tuple(_task_info(task, params) for task in dag.tasks)
    models: dict[tuple[str, str | None], None] = {}
    for task in sorted(tasks, key=lambda t: t.task_id):
        name, alias = task.registered_model, task.model_alias
        if isinstance(name, str) and name:
            # an alias not known before the run: every rule that governs the model applies
            models[(name, alias if isinstance(alias, str) and alias else None)] = None
    return DagInfo(
        dag_id=str(dag.dag_id),
        tasks=tasks,
        tags=tuple(sorted(str(t) for t in (dag.tags or ()))),
        owners=split_owners(getattr(dag, "owner", "") or ""),
        fileloc=getattr(dag, "fileloc", None),
        models=tuple(models),
    )


def has_mlsecops_task(dag: Any) -> bool:
    """Cheap pre-check: does any task use an airflow-mlsecops operator, a class derived from one,
    or a class that imitates one (named like one, or with a ``gate_name`` attribute)?"""
    return any(_mlsecops_like(_operator_class(task)) for task in dag.tasks)


# ----------------------------------------------------------------------------- where a class comes from
@dataclass(frozen=True)
class _Origin:
    path: str
    origin: str | None = None  # subclass | look-alike
    imitates: str | None = None
    overrides: tuple[str, ...] = ()
    tampered: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _package_dir() -> str:
    return os.path.dirname(os.path.realpath(airflow_mlsecops.__file__)) + os.sep


@lru_cache(maxsize=1)
def _gate_class_names() -> frozenset[str]:
    """Names of the package's operator classes (what a look-alike copies)."""
    from airflow_mlsecops import operators

    return frozenset(n for n in operators.__all__ if n.endswith("Operator"))


def _in_package(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_package_dir())


def _genuine(klass: type) -> bool:
    """``klass`` is a class of the package: its module is the package's file and holds it by name."""
    module_name = getattr(klass, "__module__", "") or ""
    if not module_name.startswith(_PACKAGE):
        return False
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if module is None or not filename or not _in_package(filename):
        return False
    found: Any = module
    for part in str(getattr(klass, "__qualname__", "")).split("."):
        found = getattr(found, part, None)
    return found is klass


def _function(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    if not inspect.isfunction(value):
        return None
    return inspect.unwrap(value)


def _foreign_methods(klass: type) -> list[str]:
    """Methods of a package class whose code is not in the package's files (patched in)."""
    out = []
    for name, value in vars(klass).items():
        function = _function(value)
        code = getattr(function, "__code__", None)
        if code is not None and not _in_package(code.co_filename):
            out.append(f"{klass.__name__}.{name}")
    return out


def _origin(cls: type) -> _Origin:
    path = f"{cls.__module__}.{cls.__qualname__}"
    mro = cls.__mro__
    genuine = [k for k in mro if _genuine(k)]
    tampered = tuple(m for k in genuine for m in _foreign_methods(k))
    if genuine and _genuine(cls):
        # a class from elsewhere mixed in between the package's own classes counts as patched in
        last = mro.index(genuine[-1])
        mixed = tuple(m for k in mro[:last] if k not in genuine for m in _foreign_methods(k))
        return _Origin(path, tampered=tampered + mixed)
    if genuine:
        first = mro.index(genuine[0])
        overrides = tuple(m for m in _RUN_METHODS if any(m in vars(k) for k in mro[:first]))
        return _Origin(path, "subclass", genuine[0].__name__, overrides, tampered)
    names = _gate_class_names()
    named = next((k.__name__ for k in mro if k.__name__ in names), None)
    if named is not None:
        return _Origin(path, "look-alike", named)
    if any("gate_name" in vars(k) for k in mro):
        return _Origin(path, "look-alike", "gate_name")
    return _Origin(path)


def _mlsecops_like(cls: type) -> bool:
    return _origin(cls).origin is not None or any(_genuine(k) for k in cls.__mro__)


# ----------------------------------------------------------------------------- tasks
def _is_mapped(task: Any) -> bool:
    return hasattr(task, "partial_kwargs") and hasattr(task, "expand_input")


def _operator_class(task: Any) -> type:
    if _is_mapped(task):
        cls = getattr(task, "operator_class", None)
        if isinstance(cls, type):
            return cls
    return type(task)


def _trigger_rule(task: Any) -> str:
    rule = getattr(task, "trigger_rule", None)
    if rule is None:
        return ALL_SUCCESS
    return str(getattr(rule, "value", rule))


def _empty_expand(task: Any) -> str | None:
    """``list argument x`` when a mapped task expands over a literal empty list or dict."""
    if not _is_mapped(task):
        return None
    try:
        value = task._get_specified_expand_input().value
    except Exception:  # noqa: BLE001 - an unknown expand form: nothing known
        return None
    if isinstance(value, (list, tuple)):  # expand_kwargs over a literal list of argument sets
        return "list of argument sets" if not value else None
    if isinstance(value, Mapping):
        for name, items in value.items():
            if isinstance(items, (list, tuple, dict)) and not items:
                return f"{'dict' if isinstance(items, dict) else 'list'} for argument {name}"
    return None


def _task_info(task: Any, params: Mapping[str, Any]) -> TaskInfo:
    cls = _operator_class(task)
    origin = _origin(cls)
    upstream = frozenset(str(t) for t in task.upstream_task_ids)
    common: dict[str, Any] = {
        "trigger_rule": _trigger_rule(task),
        "operator_path": origin.path,
        "origin": origin.origin,
        "imitates": origin.imitates,
        "overrides": origin.overrides,
        "tampered": origin.tampered,
        "empty_expand": _empty_expand(task),
    }
    if origin.origin is None and not any(_genuine(k) for k in cls.__mro__):
        return TaskInfo(task_id=str(task.task_id), operator=cls.__name__, upstream=upstream, **common)
    get = _getter(task, cls, params)
    gate = _gate(cls, get)
    warn_only = get("warn_only")
    lineage = {k.__name__ for k in cls.__mro__}
    if gate == STEP_GATES[STEP_PROMOTE] or _PROMOTE_CLASS in lineage:
        common["registered_model"], common["model_alias"] = get("name"), get("alias")
    elif gate == STEP_GATES[STEP_REGISTER] or _REGISTER_CLASS in lineage:
        common["registered_model"] = get("name")
    return TaskInfo(
        task_id=str(task.task_id),
        operator=cls.__name__,
        gate=gate,
        upstream=upstream,
        arguments=MappingProxyType(gate_arguments(gate, get)) if gate else MappingProxyType({}),
        warn_only=warn_only is True or (isinstance(warn_only, str) and warn_only.strip().lower() == "true"),
        **common,
    )


def _getter(task: Any, cls: type, params: Mapping[str, Any]) -> Getter:
    """``get(name)``: the operator's value for an argument (``None`` if it has none)."""
    if not _is_mapped(task):

        def get(name: str) -> Any:
            return _static(getattr(task, name, None), params)

        return get

    values: dict[str, Any] = {}
    try:
        for klass in reversed(cls.__mro__):  # defaults of every __init__ on the way down
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            for name, parameter in inspect.signature(init).parameters.items():
                if parameter.default is not inspect.Parameter.empty:
                    values[name] = parameter.default
    except (TypeError, ValueError):
        pass
    values.update(dict(task.partial_kwargs))
    try:
        expanded = set(task._get_specified_expand_input().value)
    except Exception:  # noqa: BLE001 - an unknown expand form: treat nothing as known
        expanded = set()
    if isinstance(getattr(cls, "gate_name", None), str):
        values.setdefault("gate", getattr(cls, "gate_name", None))

    def get_mapped(name: str) -> Any:
        if name in expanded:
            return Unresolved("a mapped (expand) argument")
        return _static(values.get(name), params)

    return get_mapped


def _gate(cls: type, get: Getter) -> str | None:
    names = {c.__name__ for c in cls.__mro__}
    if "ProvenanceSignOperator" in names:
        gate = get("gate")
        return gate if isinstance(gate, str) and gate else gate_names.DATASET_PROVENANCE
    for klass in cls.__mro__:
        if klass.__name__ in _CLASS_GATES:
            return _CLASS_GATES[klass.__name__]
    gate_name = getattr(cls, "gate_name", None)
    if isinstance(gate_name, str) and gate_name and gate_name != "gate":
        return gate_name
    return None


def _static(value: Any, params: Mapping[str, Any]) -> Any:
    """``value`` as known at parse time: a ``{{ params.X }}`` template becomes the param's default."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        match = _PARAM_TEMPLATE.fullmatch(value)
        if match and match.group(1) in params:
            return params[match.group(1)]
        text = value.strip()
        # Airflow's import error table strips bracketed text: do not quote a template that has any.
        return Unresolved(f"the template {text}" if "[" not in text and "]" not in text and len(text) <= 80 else "a template")
    if any(c.__name__.endswith("XComArg") for c in type(value).__mro__):
        return Unresolved("an XCom value")
    return value


def _param_defaults(dag: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    params = getattr(dag, "params", None) or {}
    for name in list(params.keys()) if hasattr(params, "keys") else []:
        try:
            out[str(name)] = params[name]
        except Exception:  # noqa: BLE001 - a param without a default: nothing to resolve to
            continue
    return out


__all__ = ["dag_info", "has_mlsecops_task"]
