"""Run-time enforcement: judge a pipeline run's recorded evidence against the policy.

``PromoteModelOperator`` calls :func:`check_evidence_against_policy` with the verified results of
its pipeline run (``verify_run(...).results``) before anything is promoted. A DAG edited after
it was parsed, a gate task marked success by hand (no evidence), a gate that ran after the promote
step, a threshold loosened through a template or the run conf: each shows here, with the same
message the cluster policy and ``mlsecops policy check`` give for the same problem, because the
evidence is turned into the same plain structure and judged by the same engine.

The evidence of each task says which values the gate applied (``GateResult.policy``) and whether
it ran in warn-only mode, so thresholds are checked on what was really used. On top of the
parse-time rules, run time also requires the latest attempt of each required gate to have
``passed`` and the approval decision to count enough distinct approvers. An *incomplete*
``warned`` attempt (a check not performed, nothing rejected) counts only for a gate the promote
step accepts (``accept_warned``) and no governing rule refuses (see
:func:`~airflow_mlsecops.policy.model.accepted_warned`); a warn-only rejection never counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.policy.engine import DagInfo, TaskInfo, Violation, evaluate
from airflow_mlsecops.policy.model import APPROVAL_GATE, STEP_GATES, STEP_PROMOTE, Policy, load_configured_policy, load_policy

if TYPE_CHECKING:
    from airflow_mlsecops.evidence.models import GateResult

PROMOTE_OPERATOR = "PromoteModelOperator"


def check_evidence_against_policy(
    report_results: Mapping[str, GateResult],
    *,
    dag_id: str,
    tags: Iterable[str] = (),
    owner: Iterable[str] | str | None = None,
    policy: Policy | str | os.PathLike[str] | None = None,
    task_id: str | None = None,
    required_approvals: int | None = None,
    operator: str = PROMOTE_OPERATOR,
    models: Iterable[tuple[str, str | None]] = (),
    accept_warned: Iterable[str] | None = None,
) -> list[Violation]:
    """Violations of the policy by a pipeline run's evidence, judged at the promote step.

    :param report_results: scope (``<task>/try-<n>``...) -> verified :class:`GateResult`, in the
        order they were recorded, e.g. ``verify_run(...).results`` of the pipeline's MLflow run
        (ledger order); the last record of a task is its latest.
    :param dag_id: the DAG being run; with ``tags`` and ``owner`` it selects the rules.
    :param owner: the DAG's owner(s), e.g. ``dag.owner`` (``"alice, bob"``).
    :param policy: a loaded policy, a policy file, or ``None`` for the configured one (no policy
        configured: no violations).
    :param task_id: the promote task's id (named in the messages, as at parse time).
    :param required_approvals: the promote task's own ``required_approvals``, checked against the policy.
    :param operator: the promote task's class name, for the messages.
    :param models: ``(registered model, alias)`` being promoted: rules that govern them apply too,
        whatever the DAG's id, tags and owners.
    :param accept_warned: the promote task's own ``accept_warned`` (checked against the policy);
        ``None``: not known here, so only the policy decides which incomplete verdicts count (the
        promotion's ``gate:<name>`` checks apply the task's list).
    :raises PolicyError: the policy is broken (the caller must refuse: fail closed).
    """
    loaded = _resolve(policy)
    if loaded is None:
        return []
    tasks = _evidence_tasks(report_results, exclude=task_id)
    promote_args: dict[str, Any] = {} if required_approvals is None else {"required_approvals": required_approvals}
    asked = None if accept_warned is None else [str(g) for g in accept_warned]
    if asked is not None:
        promote_args["accept_warned"] = asked
    promote = TaskInfo(
        task_id=task_id or "the promote step",
        operator=operator,
        gate=STEP_GATES[STEP_PROMOTE],
        upstream=frozenset(t.task_id for t in tasks),
        arguments=MappingProxyType(promote_args),
    )
    from airflow_mlsecops.policy.model import split_owners

    dag = DagInfo(dag_id=dag_id, tasks=(*tasks, promote), tags=tuple(str(t) for t in tags), owners=split_owners(owner))
    rules = loaded.matching(dag.dag_id, dag.tags, dag.owners, models=tuple(models))
    found = evaluate(loaded, dag, steps=(STEP_PROMOTE,), rules=rules)
    found.extend(_verdicts(rules, report_results, dag, promote, asked))
    unique: dict[str, Violation] = {}
    for violation in found:
        unique.setdefault(violation.message, violation)
    return list(unique.values())


def check_result_against_policy(
    result: GateResult,
    *,
    dag_id: str,
    tags: Iterable[str] = (),
    owner: Iterable[str] | str | None = None,
    policy: Policy | str | os.PathLike[str] | None = None,
) -> list[Violation]:
    """Violations by one gate's result (the values it applied, warn-only mode): for a gate task to
    check itself when it runs, e.g. a monitoring gate whose threshold came from a template or the
    run conf. Same messages as at parse time.

    :raises PolicyError: the policy is broken.
    """
    loaded = _resolve(policy)
    if loaded is None:
        return []
    from airflow_mlsecops.policy.engine import check_thresholds, check_warn_only
    from airflow_mlsecops.policy.model import split_owners

    task_id = result.context.task_id if result.context is not None else result.gate
    task = TaskInfo(
        task_id=task_id,
        operator="recorded evidence",
        gate=result.gate,
        arguments=MappingProxyType(_recorded_arguments(result.gate, result.policy)),
        warn_only=bool(result.warn_only),
    )
    dag = DagInfo(dag_id=dag_id, tasks=(task,), tags=tuple(str(t) for t in tags), owners=split_owners(owner))
    found: list[Violation] = []
    for rule in loaded.matching(dag.dag_id, dag.tags, dag.owners):
        found.extend(check_thresholds(rule, dag))
        found.extend(check_warn_only(rule, dag))
    return found


def _resolve(policy: Policy | str | os.PathLike[str] | None) -> Policy | None:
    if isinstance(policy, Policy):
        return policy
    if policy is None:
        return load_configured_policy()
    return load_policy(Path(policy))


# ----------------------------------------------------------------------------- evidence -> tasks
def _latest(report_results: Mapping[str, GateResult]) -> dict[tuple[str, str], tuple[str, GateResult]]:
    """(task key, gate) -> (scope, result) of the latest record.

    The mapping's order is the order of recording: ``verify_run(...).results`` is in ledger
    sequence. Folder names (the scopes) are never used to order records: anyone who can write to
    MLflow chooses them. The task key comes from the signed result's context.
    """
    from airflow_mlsecops.io.mlflow_store import task_key_for

    newest: dict[tuple[str, str], tuple[str, GateResult]] = {}
    for scope, result in report_results.items():
        key = task_key_for(result)
        newest.pop((key, result.gate), None)  # re-insert: the dict keeps the order of the latest records
        newest[(key, result.gate)] = (scope, result)
    return newest


def _task_id(scope: str, result: GateResult) -> str:
    if result.context is not None:
        return result.context.task_id
    return scope.split("/", 1)[0]


def _evidence_tasks(report_results: Mapping[str, GateResult], *, exclude: str | None) -> tuple[TaskInfo, ...]:
    tasks: list[TaskInfo] = []
    for (_, gate), (scope, result) in sorted(_latest(report_results).items()):
        task_id = _task_id(scope, result)
        if gate == STEP_GATES[STEP_PROMOTE] or (exclude is not None and task_id == exclude):
            continue  # the promote step itself (an earlier try) is not a gate upstream of it
        tasks.append(
            TaskInfo(
                task_id=task_id,
                operator="recorded evidence",
                gate=gate,
                arguments=MappingProxyType(_recorded_arguments(gate, result.policy)),
                warn_only=bool(result.warn_only),
            )
        )
    return tuple(tasks)


def _recorded_arguments(gate: str, policy: Mapping[str, Any]) -> dict[str, Any]:
    """The values a gate recorded as applied, keyed and normalised like the operator arguments
    (:func:`airflow_mlsecops.policy.parameters.recorded_arguments`)."""
    from airflow_mlsecops.policy.parameters import recorded_arguments

    return recorded_arguments(gate, policy)


def _approvers(details: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    approvals = details.get("approvals")
    for item in approvals if isinstance(approvals, list) else []:
        if isinstance(item, Mapping):
            ident = str(item.get("id") or item.get("name") or "").strip()
            if ident and ident != "None":
                found.add(ident)
    return found


def _verdicts(
    rules: Iterable[Any],
    report_results: Mapping[str, GateResult],
    dag: DagInfo,
    promote: TaskInfo,
    asked: Iterable[str] | None = None,
) -> list[Violation]:
    """Run-time only: the latest attempt of every required gate passed (or is incomplete and
    accepted: asked for by the promote task, when known, and refused by no governing rule); enough approvers."""
    from airflow_mlsecops.evidence.models import Verdict
    from airflow_mlsecops.policy.model import accepted_warned

    rules = tuple(rules)
    latest = _latest(report_results)
    wanted = None if asked is None else set(asked)
    out: list[Violation] = []
    where = f"{promote.task_id} ({promote.operator})"
    for rule in rules:
        for gate in rule.gates_for(STEP_PROMOTE):
            for (_, recorded_gate), (scope, result) in sorted(latest.items()):
                if recorded_gate != gate or _task_id(scope, result) == promote.task_id:
                    continue
                task = _task_id(scope, result)
                if result.incomplete and (wanted is None or gate in wanted) and accepted_warned(rules, [gate]):
                    continue  # warned only because a check was not performed, and accepted
                if result.verdict is not Verdict.PASSED:
                    recorded = (
                        f"warned (incomplete, not performed: {', '.join(result.not_performed)}), "
                        "which no accept_warned of the promotion and the policy accepts"
                        if result.incomplete
                        else result.verdict.value
                    )
                    out.append(
                        Violation(
                            rule=rule.name,
                            dag_id=dag.dag_id,
                            kind="gate-not-passed",
                            message=(
                                f"policy rule '{rule.name}' requires gate {gate} to pass before {where} in DAG {dag.dag_id}, "
                                f"but task {task} recorded {recorded}"
                            ),
                            task_id=task,
                            gate=gate,
                        )
                    )
                elif gate == APPROVAL_GATE and (rule.approval.required_approvals or 0) > 0:
                    count = len(_approvers(result.details))
                    if count < int(rule.approval.required_approvals or 0):
                        out.append(
                            Violation(
                                rule=rule.name,
                                dag_id=dag.dag_id,
                                kind="approvals",
                                message=(
                                    f"policy rule '{rule.name}' requires {rule.approval.required_approvals} distinct approvals "
                                    f"before {where} in DAG {dag.dag_id}, but task {task} recorded {count}"
                                ),
                                task_id=task,
                                gate=gate,
                            )
                        )
    return out


__all__ = ["check_evidence_against_policy", "check_result_against_policy"]
