"""The Airflow cluster policy: reject, when a DAG file is parsed, a DAG that breaks the mlsecops policy.

Registered through the ``airflow.policy`` entry point
(``mlsecops = "airflow_mlsecops.policy.cluster_policy"``). Airflow calls :func:`dag_policy` for
every DAG it parses; a violation raises ``AirflowClusterPolicyViolation``, so the DAG is not loaded
and shows up as an import error (``airflow dags list-import-errors``, the UI, ``GET
/api/v2/importErrors``) with every violation in the message, separated by ``; ``.

* DAGs without any airflow-mlsecops operator, class derived from one or class imitating one
  (named like one, or with a ``gate_name`` attribute) are not looked at (and nothing is loaded
  for them). The others are judged by :func:`airflow_mlsecops.policy.engine.evaluate`: the rules
  that apply (by DAG id, tags, owners and by the registered models the DAG registers or promotes)
  and the checks every policy makes (gate operator classes, trigger rules, empty mapped gates).
* No policy configured (no ``$MLSECOPS_POLICY``, no ``[mlsecops] policy_file``, no
  ``$MLSECOPS_HOME/policy.yaml``): nothing is enforced. This is logged once per process, at
  WARNING.
* A broken policy (unreadable, not YAML, not valid against the schema) fails closed: every DAG
  that registers or promotes a model is rejected with the policy's error, naming file and line;
  other DAGs load, and the error is logged once per policy version.

This module is imported in every Airflow process: it imports nothing but the standard library,
``airflow.policies`` and :mod:`airflow_mlsecops.config` (standard library only) at module level.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from airflow.policies import hookimpl

# Imported here, when Airflow initialises and loads its policy plugins (before any DAG file runs, and
# before workers fork task processes): the platform's environment is copied now (see config).
import airflow_mlsecops.config  # noqa: F401

log = logging.getLogger(__name__)

_lock = threading.Lock()
_announced: set[str] = set()
_suspended = threading.local()


def _once(key: str) -> bool:
    with _lock:
        if key in _announced:
            return False
        _announced.add(key)
        return True


@contextlib.contextmanager
def suspended(on_dag: Callable[[Any], None] | None = None) -> Iterator[None]:
    """Turn this hook off in the current thread (``mlsecops policy check`` judges DAGs itself).

    :param on_dag: called instead with each DAG, right after its file was run (``mlsecops policy
        check`` notes there which file changed the platform's settings).
    """
    previous = getattr(_suspended, "on", False), getattr(_suspended, "on_dag", None)
    _suspended.on, _suspended.on_dag = True, on_dag
    try:
        yield
    finally:
        _suspended.on, _suspended.on_dag = previous


def violations_for(dag: Any) -> list[str]:
    """The messages :func:`dag_policy` would reject ``dag`` with (empty: the DAG complies).

    Raises nothing for a policy problem: a broken policy is itself the message for a DAG that
    registers or promotes a model.
    """
    from airflow_mlsecops.policy.airflow_dag import dag_info, has_mlsecops_task

    if not has_mlsecops_task(dag):
        return []
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.policy.engine import evaluate
    from airflow_mlsecops.policy.model import PolicyError, configured_policy_path, load_policy

    try:
        path = configured_policy_path()
    except ConfigurationError as exc:  # e.g. the DAG file changed MLSECOPS_POLICY: never "no policy"
        problem = str(exc).replace("[", "(").replace("]", ")")
        return [f"the mlsecops policy cannot be located, so DAG {dag.dag_id} is rejected (fail closed): {problem}"]
    if path is None:
        if _once("no-policy"):
            log.warning(
                "mlsecops: no policy is configured (MLSECOPS_POLICY, [mlsecops] policy_file or "
                "$MLSECOPS_HOME/policy.yaml), so the mlsecops cluster policy enforces nothing"
            )
        return []
    info = dag_info(dag)
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        if info.changes_models:
            problem = str(exc).replace("[", "(").replace("]", ")")  # the import error table strips bracketed text
            return [
                f"the mlsecops policy {path} is broken, so DAG {info.dag_id}, which registers or promotes a model, "
                f"is rejected until the policy is fixed (fail closed): {problem}"
            ]
        if _once(f"broken:{exc}"):
            log.error("mlsecops: the policy %s is broken; DAGs that register or promote a model are rejected: %s", path, exc)
        return []
    if _once(f"policy:{policy.digest}"):
        log.info("mlsecops: enforcing policy %s (sha256 %s, %d rules)", path, policy.digest, len(policy.rules))
    return [v.message for v in evaluate(policy, info)]


@hookimpl
def dag_policy(dag: Any) -> None:
    """Reject a DAG that breaks the mlsecops policy (see the module's documentation)."""
    if getattr(_suspended, "on", False):
        on_dag = getattr(_suspended, "on_dag", None)
        if on_dag is not None:
            on_dag(dag)
        return
    messages = violations_for(dag)
    if messages:
        from airflow.exceptions import AirflowClusterPolicyViolation

        raise AirflowClusterPolicyViolation("; ".join(messages))


__all__ = ["dag_policy", "suspended", "violations_for"]
