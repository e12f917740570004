"""Policy as code: one YAML file, owned by the platform team, that says which gates a group of DAGs
must pass before a model is registered or promoted, with which thresholds, approval rules and
trusted keys. One rule engine enforces it at three points:

1. DAG parse: the Airflow cluster policy (:mod:`~airflow_mlsecops.policy.cluster_policy`, entry
   point group ``airflow.policy``) turns a non-compliant DAG into an import error;
2. CI: ``mlsecops policy check --policy P DAGS_DIR`` (:mod:`~airflow_mlsecops.cli.policy`);
3. run time: :func:`~airflow_mlsecops.policy.runtime.check_evidence_against_policy`, called by
   ``PromoteModelOperator`` on the run's recorded evidence.

>>> from airflow_mlsecops.policy import load_policy, evaluate, policy_digest

Modules: :mod:`.model` (the file, its schema and loader), :mod:`.engine` (pure rules),
:mod:`.airflow_dag` (Airflow DAG -> plain structure), :mod:`.runtime`, :mod:`.cluster_policy`,
:mod:`.cli`. Importing this package is cheap: names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlsecops.policy.airflow_dag import dag_info
    from airflow_mlsecops.policy.engine import DagInfo, TaskInfo, Unresolved, Violation, evaluate, policy_defaults, required_gates
    from airflow_mlsecops.policy.model import (
        GATE_NAMES,
        Policy,
        PolicyError,
        Rule,
        configured_policy_path,
        load_configured_policy,
        load_policy,
        parse_policy,
        policy_digest,
        schema,
    )
    from airflow_mlsecops.policy.runtime import check_evidence_against_policy

_LAZY = {
    "GATE_NAMES": "airflow_mlsecops.policy.model",
    "Policy": "airflow_mlsecops.policy.model",
    "PolicyError": "airflow_mlsecops.policy.model",
    "Rule": "airflow_mlsecops.policy.model",
    "configured_policy_path": "airflow_mlsecops.policy.model",
    "load_configured_policy": "airflow_mlsecops.policy.model",
    "load_policy": "airflow_mlsecops.policy.model",
    "parse_policy": "airflow_mlsecops.policy.model",
    "policy_digest": "airflow_mlsecops.policy.model",
    "schema": "airflow_mlsecops.policy.model",
    "DagInfo": "airflow_mlsecops.policy.engine",
    "TaskInfo": "airflow_mlsecops.policy.engine",
    "Unresolved": "airflow_mlsecops.policy.engine",
    "Violation": "airflow_mlsecops.policy.engine",
    "evaluate": "airflow_mlsecops.policy.engine",
    "policy_defaults": "airflow_mlsecops.policy.engine",
    "required_gates": "airflow_mlsecops.policy.engine",
    "dag_info": "airflow_mlsecops.policy.airflow_dag",
    "check_evidence_against_policy": "airflow_mlsecops.policy.runtime",
}

__all__ = [
    "DagInfo",
    "GATE_NAMES",
    "Policy",
    "PolicyError",
    "Rule",
    "TaskInfo",
    "Unresolved",
    "Violation",
    "check_evidence_against_policy",
    "configured_policy_path",
    "dag_info",
    "evaluate",
    "load_configured_policy",
    "load_policy",
    "parse_policy",
    "policy_defaults",
    "policy_digest",
    "required_gates",
    "schema",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
