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

Imports nothing heavy: the gate modules it uses are the ones the DAG's operators already loaded.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.policy.engine import DagInfo, TaskInfo, Unresolved
from airflow_mlsecops.policy.model import APPROVAL_GATE, split_owners
from airflow_mlsecops.policy.parameters import gate_arguments

_PACKAGE = "airflow_mlsecops."
_CLASS_GATES = {"ModelApprovalGateOperator": APPROVAL_GATE}
_PARAM_TEMPLATE = re.compile(r"\s*\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*")
_MISSING = object()

Getter = Callable[[str], Any]


def dag_info(dag: Any) -> DagInfo:
    """The structure of an Airflow DAG (``airflow.sdk.DAG``) as plain data for the rule engine."""
    params = _param_defaults(dag)
    tasks = tuple(_task_info(task, params) for task in dag.tasks)
    return DagInfo(
        dag_id=str(dag.dag_id),
        tasks=tasks,
        tags=tuple(sorted(str(t) for t in (dag.tags or ()))),
        owners=split_owners(getattr(dag, "owner", "") or ""),
        fileloc=getattr(dag, "fileloc", None),
    )


def has_mlsecops_task(dag: Any) -> bool:
    """Cheap pre-check: does any task use an airflow-mlsecops operator?"""
    return any(_ours(_operator_class(task)) for task in dag.tasks)


# ----------------------------------------------------------------------------- tasks
def _is_mapped(task: Any) -> bool:
    return hasattr(task, "partial_kwargs") and hasattr(task, "expand_input")


def _operator_class(task: Any) -> type:
    if _is_mapped(task):
        cls = getattr(task, "operator_class", None)
        if isinstance(cls, type):
            return cls
    return type(task)


def _ours(cls: type) -> bool:
    return any(c.__module__.startswith(_PACKAGE) for c in cls.__mro__)


def _task_info(task: Any, params: Mapping[str, Any]) -> TaskInfo:
    cls = _operator_class(task)
    upstream = frozenset(str(t) for t in task.upstream_task_ids)
    if not _ours(cls):
        return TaskInfo(task_id=str(task.task_id), operator=cls.__name__, upstream=upstream)
    get = _getter(task, cls, params)
    gate = _gate(cls, get)
    warn_only = get("warn_only")
    return TaskInfo(
        task_id=str(task.task_id),
        operator=cls.__name__,
        gate=gate,
        upstream=upstream,
        arguments=MappingProxyType(gate_arguments(gate, get)) if gate else MappingProxyType({}),
        warn_only=warn_only is True or (isinstance(warn_only, str) and warn_only.strip().lower() == "true"),
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
