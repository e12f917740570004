"""The rule engine: a policy and a DAG's structure as plain data in, violations out.

The same functions judge a DAG file when Airflow parses it (the cluster policy), in CI
(``mlsecops policy check``) and at run time (:mod:`airflow_mlsecops.policy.runtime`, from the
recorded evidence), so the three enforcement points give the same message for the same problem:

* ``policy rule 'R' requires gate G upstream of T (Operator) in DAG D``: a register or promote
  task ``T`` has no task of gate ``G`` among its upstream tasks (direct or not);
* ``policy rule 'R' requires P of gate G to be at least X, but task T in DAG D sets Y``: a value
  weaker than the policy's (``at most``, ``to include``, ``to be within``, ``to be true``... by kind);
* ``policy rule 'R' forbids warn_only on gate G, but task T in DAG D sets warn_only=True``;
* ``policy rule 'R' does not accept an incomplete (warned) G at promotion, but task T in DAG D
  sets accept_warned to include G``: the rule governs ``G`` and does not list it in ``accept_warned``.

No message contains square brackets (Airflow's import error table strips them).
No Airflow import: :mod:`airflow_mlsecops.policy.airflow_dag` builds :class:`DagInfo` from a DAG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.policy.model import (
    APPROVAL_GATE,
    APPROVAL_KINDS,
    EQUAL,
    FALSE_STRICT,
    KEY_GATES,
    MAX,
    MIN,
    NONEMPTY_SUBSET,
    STEP_GATES,
    STEP_PROMOTE,
    STEPS,
    SUBSET,
    SUPERSET,
    THRESHOLD_KINDS,
    TRUE_STRICT,
    Policy,
    Rule,
    split_owners,
)

PROMOTION_GATE = STEP_GATES[STEP_PROMOTE]
#: The only trigger rule a register/promote task, and any task between a gate and one, may use.
ALL_SUCCESS = "all_success"
#: ``Violation.rule`` of the checks that hold under every policy (not one rule's requirement).
PLATFORM_RULE = "platform"
DATA_INTEGRITY_GATE = gate_names.DATA_INTEGRITY


@dataclass(frozen=True)
class Unresolved:
    """A value that is only known when the task runs (a template, an XCom, a mapped argument)."""

    source: str

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class TaskInfo:
    """One task, as the engine sees it.

    :param operator: the operator's class name (``PromoteModelOperator``).
    :param gate: the gate it records (``robustness``, ``model-promotion``...), ``None`` for other tasks.
    :param upstream: ids of its direct upstream tasks.
    :param arguments: the operator's threshold arguments, by name (values, or :class:`Unresolved`).
        A name that is absent is not checked (e.g. not recorded in the evidence).
    :param warn_only: the gate runs in warn-only mode.
    :param trigger_rule: the task's Airflow trigger rule.
    :param operator_path: ``module.Class`` of the operator (what ``allowed_operators`` names).
    :param origin: ``subclass`` (a class outside the package derived from one of its gate
        operators), ``look-alike`` (outside the package, imitating one), ``None`` otherwise.
    :param imitates: the package class it derives from or imitates (``gate_name`` for a class that
        only has a ``gate_name`` attribute).
    :param overrides: methods that run the gate (``execute``...) redefined outside the package.
    :param tampered: ``Class.method`` of the package's gate classes whose code was replaced from outside it.
    :param empty_expand: a mapped task's argument that is expanded over a literal empty list or dict.
    :param registered_model: the model name a register/promote task names (value or :class:`Unresolved`).
    :param model_alias: the alias a promote task sets (value or :class:`Unresolved`).
    """

    task_id: str
    operator: str
    gate: str | None = None
    upstream: frozenset[str] = frozenset()
    arguments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    warn_only: bool = False
    trigger_rule: str = ALL_SUCCESS
    operator_path: str | None = None
    origin: str | None = None
    imitates: str | None = None
    overrides: tuple[str, ...] = ()
    tampered: tuple[str, ...] = ()
    empty_expand: str | None = None
    registered_model: Any = None
    model_alias: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "operator": self.operator,
            "gate": self.gate,
            "upstream": sorted(self.upstream),
            "arguments": {k: _jsonable(v) for k, v in self.arguments.items()},
            "warn_only": self.warn_only,
            "trigger_rule": self.trigger_rule,
            "operator_path": self.operator_path,
            "origin": self.origin,
            "registered_model": _jsonable(self.registered_model),
            "model_alias": _jsonable(self.model_alias),
        }


@dataclass(frozen=True)
class DagInfo:
    """A DAG's structure: what the policy rules need to know about it, nothing else.

    :param models: ``(registered model name, alias)`` its register (alias ``None``) and promote tasks
        name, where known before the run; rules that govern one of them apply to the DAG.
    """

    dag_id: str
    tasks: tuple[TaskInfo, ...]
    tags: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    fileloc: str | None = None
    models: tuple[tuple[str, str | None], ...] = ()

    def task(self, task_id: str) -> TaskInfo | None:
        return next((t for t in self.tasks if t.task_id == task_id), None)

    def ancestors(self, task_id: str) -> set[str]:
        """Every task upstream of ``task_id``, direct or not."""
        upstream: dict[str, set[str]] = {}
        for task in self.tasks:  # run-time structures may hold several records of one task
            upstream.setdefault(task.task_id, set()).update(task.upstream)
        seen: set[str] = set()
        todo = list(upstream.get(task_id, ()))
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(upstream.get(current, ()))
        return seen

    def step_tasks(self, step: str) -> list[TaskInfo]:
        """The tasks that register (``register``) or promote (``promote``) a model."""
        return sorted((t for t in self.tasks if t.gate == STEP_GATES[step]), key=lambda t: t.task_id)

    @property
    def changes_models(self) -> bool:
        """Whether the DAG registers or promotes a model."""
        return any(self.step_tasks(step) for step in STEPS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "tags": list(self.tags),
            "owners": list(self.owners),
            "fileloc": self.fileloc,
            "models": [list(m) for m in self.models],
            "tasks": [t.to_dict() for t in self.tasks],
        }


@dataclass(frozen=True)
class Violation:
    """One way a DAG (or a run's evidence) breaks a policy rule. ``str()`` is the message."""

    rule: str
    dag_id: str
    # missing-gate | threshold | warn-only | gate-not-passed | approvals | foreign-gate | overridden-gate
    # | tampered-gate | trigger-rule | empty-expand | unknown-model
    kind: str
    message: str
    task_id: str | None = None
    gate: str | None = None
    parameter: str | None = None

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "dag_id": self.dag_id,
            "kind": self.kind,
            "task_id": self.task_id,
            "gate": self.gate,
            "parameter": self.parameter,
            "message": self.message,
        }


# ----------------------------------------------------------------------------- messages
def missing_gate_message(rule: str, gate: str, task_id: str | None, operator: str, dag_id: str) -> str:
    where = f"{task_id} ({operator})" if task_id else operator
    return f"policy rule '{rule}' requires gate {gate} upstream of {where} in DAG {dag_id}"


def _render(value: Any) -> str:
    if isinstance(value, Unresolved):
        return f"it from {value.source}, which cannot be checked before the task runs"
    if value is None:
        return "no limit"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_render(v) for v in value]
        return ", ".join(items) if items else "nothing"
    return str(value)


def _requirement(kind: str, expected: Any) -> str:
    if kind == MIN:
        return f"to be at least {_render(expected)}"
    if kind == MAX:
        return f"to be at most {_render(expected)}"
    if kind == SUPERSET:
        return f"to include {_render(expected)}"
    if kind in (SUBSET, NONEMPTY_SUBSET):
        return f"to be within {_render(expected)}" if expected else "to be empty"
    if kind in (TRUE_STRICT, FALSE_STRICT, EQUAL):
        return f"to be {_render(expected)}"
    raise ValueError(f"unknown comparison {kind!r}")


def threshold_message(
    rule: str, gate: str, parameter: str, kind: str, expected: Any, task_id: str, dag_id: str, actual: Any
) -> str:
    shown = (
        "no reviewers, so anyone may approve"
        if kind == NONEMPTY_SUBSET and not isinstance(actual, Unresolved) and not actual
        else _render(actual)
    )
    return (
        f"policy rule '{rule}' requires {parameter} of gate {gate} {_requirement(kind, expected)}, "
        f"but task {task_id} in DAG {dag_id} sets {shown}"
    )


def warn_only_message(rule: str, gate: str, task_id: str, dag_id: str) -> str:
    return f"policy rule '{rule}' forbids warn_only on gate {gate}, but task {task_id} in DAG {dag_id} sets warn_only=True"


def accept_warned_message(rule: str, gate: str, task_id: str, dag_id: str) -> str:
    return (
        f"policy rule '{rule}' does not accept an incomplete (warned) {gate} at promotion, "
        f"but task {task_id} in DAG {dag_id} sets accept_warned to include {gate}"
    )


# ----------------------------------------------------------------------------- comparisons
_MISSING = object()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _items(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(v) for v in value]
    return None


def _norm_path(value: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(value)))


def complies(kind: str, expected: Any, actual: Any, *, paths: bool = False) -> bool:
    """Whether a DAG value ``actual`` is at least as strict as the policy's ``expected``."""
    if isinstance(actual, Unresolved):
        return False
    if kind in (MIN, MAX):
        number = _number(actual)
        if number is None:
            return False
        return number >= float(expected) if kind == MIN else number <= float(expected)
    if kind in (SUPERSET, SUBSET, NONEMPTY_SUBSET):
        items = _items(actual)
        if items is None:
            return False
        wanted = [str(v) for v in expected]
        if paths:
            items, wanted = [_norm_path(i) for i in items], [_norm_path(w) for w in wanted]
        if kind == SUPERSET:
            return set(wanted) <= set(items)
        if kind == NONEMPTY_SUBSET and not items:
            return False
        return set(items) <= set(wanted)
    if kind == TRUE_STRICT:
        return actual is True or not expected
    if kind == FALSE_STRICT:
        return actual is False or bool(expected)
    if kind == EQUAL:
        return actual is not None and str(actual) == str(expected)
    raise ValueError(f"unknown comparison {kind!r}")


def _value(task: TaskInfo, gate: str, parameter: str) -> Any:
    """The task's value for ``parameter``; :data:`_MISSING` when it is not known at all."""
    if gate != DATA_INTEGRITY_GATE:
        return task.arguments.get(parameter, _MISSING)
    thresholds = task.arguments.get("thresholds", _MISSING)
    if thresholds is _MISSING or isinstance(thresholds, Unresolved):
        return thresholds
    if not isinstance(thresholds, Mapping):
        return Unresolved("thresholds that are not a mapping")
    value = thresholds.get(parameter, _MISSING)
    if parameter == "max_feature_shift" and value is not _MISSING:
        overrides = thresholds.get("feature_shift_overrides") or {}
        numbers = [n for n in (_number(v) for v in [value, *dict(overrides).values()]) if n is not None]
        if len(numbers) == 1 + len(overrides):
            return max(numbers)  # the loosest feature limit is what counts
    return value


def requirements(rule: Rule) -> list[tuple[str, str, str, Any]]:
    """``(gate, parameter, kind, policy value)`` for every value the rule constrains."""
    out: list[tuple[str, str, str, Any]] = []
    for gate, values in rule.thresholds.items():
        kinds = THRESHOLD_KINDS[gate]
        out.extend((gate, name, kinds[name], value) for name, value in values.items())
    for name, value in rule.approval.values().items():
        out.append((APPROVAL_GATE, name, APPROVAL_KINDS[name], value))
    if rule.approval.required_approvals is not None:
        out.append((PROMOTION_GATE, "required_approvals", MIN, rule.approval.required_approvals))
    if rule.trusted_keys:
        out.extend((gate, "public_keys", SUBSET, rule.trusted_keys) for gate in KEY_GATES)
    from airflow_mlsecops.policy.parameters import default_requirements

    named = {(gate, parameter) for gate, parameter, _, _ in out}
    out.extend(item for item in default_requirements(rule) if (item[0], item[1]) not in named)
    return out


# ----------------------------------------------------------------------------- evaluation
def evaluate(
    policy: Policy,
    dag: DagInfo,
    *,
    steps: Sequence[str] = STEPS,
    rules: Sequence[Rule] | None = None,
) -> list[Violation]:
    """Every violation of the rules that apply to ``dag`` and of the checks every policy makes
    (:func:`check_structure`), structure first, then in rule, then task order, no duplicates.

    The rules that apply are those whose DAG criteria hold and those that govern a model the DAG
    registers or promotes (``dag.models``).

    :param steps: which steps' required gates to check (run time checks ``promote`` only).
    :param rules: judge with these rules instead of the policy's matching ones.
    """
    applicable = policy.matching(dag.dag_id, dag.tags, dag.owners, dag.models) if rules is None else tuple(rules)
    found: list[Violation] = check_structure(policy, dag, applicable)
    refused = {v.task_id for v in found if v.kind == "foreign-gate"}
    if refused:  # a refused gate operator counts as no gate (and its arguments mean nothing)
        tasks = tuple(replace(t, gate=None, arguments=MappingProxyType({})) if t.task_id in refused else t for t in dag.tasks)
        dag = replace(dag, tasks=tasks)
    for rule in applicable:
        found.extend(check_required_gates(rule, dag, steps=steps))
        found.extend(check_thresholds(rule, dag))
        found.extend(check_warn_only(rule, dag))
        found.extend(check_accept_warned(rule, dag))
    unique: dict[str, Violation] = {}
    for violation in found:
        unique.setdefault(violation.message, violation)
    return list(unique.values())


def check_accept_warned(rule: Rule, dag: DagInfo) -> list[Violation]:
    """No promote task accepts an incomplete ``warned`` verdict of a gate this rule governs at
    promotion (requires there, or sets thresholds for) unless the rule lists it in ``accept_warned``.

    Checked per rule, so stricter wins: one governing rule that does not list a gate refuses it,
    whatever other rules accept. A value only known at run time (a template) is refused when the
    rule governs any gate: it cannot be shown to comply.
    """
    out: list[Violation] = []
    for task in sorted(dag.step_tasks(STEP_PROMOTE), key=lambda t: t.task_id):
        value = task.arguments.get("accept_warned")
        if not value:
            continue
        if isinstance(value, Unresolved):
            gates = [g for g in gate_names.POLICY_GATES if rule.governs_promotion_of(g) and g not in rule.accept_warned]
        else:
            gates = [str(g) for g in value if rule.governs_promotion_of(str(g)) and str(g) not in rule.accept_warned]
        out.extend(
            Violation(
                rule=rule.name,
                dag_id=dag.dag_id,
                kind="accept-warned",
                message=accept_warned_message(rule.name, gate, task.task_id, dag.dag_id),
                task_id=task.task_id,
                gate=gate,
                parameter="accept_warned",
            )
            for gate in dict.fromkeys(gates)
        )
    return out


def check_required_gates(rule: Rule, dag: DagInfo, *, steps: Sequence[str] = STEPS) -> list[Violation]:
    """Each register/promote task has a task of every required gate upstream of it."""
    out: list[Violation] = []
    for step in steps:
        required = rule.gates_for(step)
        if not required:
            continue
        for task in dag.step_tasks(step):
            ancestors = dag.ancestors(task.task_id)
            upstream_gates = {t.gate for t in dag.tasks if t.task_id in ancestors}
            for gate in required:
                if gate not in upstream_gates:
                    out.append(
                        Violation(
                            rule=rule.name,
                            dag_id=dag.dag_id,
                            kind="missing-gate",
                            message=missing_gate_message(rule.name, gate, task.task_id, task.operator, dag.dag_id),
                            task_id=task.task_id,
                            gate=gate,
                        )
                    )
    return out


def check_thresholds(rule: Rule, dag: DagInfo) -> list[Violation]:
    """Every task of a gate the rule sets values for uses values at least as strict."""
    out: list[Violation] = []
    reqs = requirements(rule)
    for task in sorted(dag.tasks, key=lambda t: t.task_id):
        for gate, parameter, kind, expected in reqs:
            if task.gate != gate:
                continue
            actual = _value(task, gate, parameter)
            if actual is _MISSING:
                continue
            if parameter == "public_keys" and actual is None:
                continue  # the deployment's MLSECOPS_TRUSTED_KEYS, owned by the platform
            if complies(kind, expected, actual, paths=parameter == "public_keys"):
                continue
            out.append(
                Violation(
                    rule=rule.name,
                    dag_id=dag.dag_id,
                    kind="threshold",
                    message=threshold_message(rule.name, gate, parameter, kind, expected, task.task_id, dag.dag_id, actual),
                    task_id=task.task_id,
                    gate=gate,
                    parameter=parameter,
                )
            )
    return out


def check_warn_only(rule: Rule, dag: DagInfo) -> list[Violation]:
    """No gate the rule requires or sets values for runs in warn-only mode."""
    governed = set(rule.governed_gates())
    return [
        Violation(
            rule=rule.name,
            dag_id=dag.dag_id,
            kind="warn-only",
            message=warn_only_message(rule.name, str(task.gate), task.task_id, dag.dag_id),
            task_id=task.task_id,
            gate=task.gate,
            parameter="warn_only",
        )
        for task in sorted(dag.tasks, key=lambda t: t.task_id)
        if task.warn_only and task.gate in governed
    ]


# ----------------------------------------------------------------------------- structure
_FOREIGN_TAIL = (
    "only the package's gate operators, or ones a policy rule allows by name (allowed_operators), may record gate evidence"
)


def foreign_gate_message(task: TaskInfo, dag_id: str) -> str:
    path = task.operator_path or task.operator
    if task.origin == "subclass":
        what = f"a subclass of {task.imitates} defined outside airflow-mlsecops"
    elif task.imitates == "gate_name":
        what = "a class outside airflow-mlsecops with a gate_name attribute like the package's gate operators"
    else:
        what = f"a class outside airflow-mlsecops named like its {task.imitates}"
    return f"task {task.task_id} in DAG {dag_id} uses {path}, {what}; {_FOREIGN_TAIL}"


def overridden_gate_message(task: TaskInfo, dag_id: str) -> str:
    methods = " and ".join(f"{m}()" for m in task.overrides)
    return (
        f"task {task.task_id} in DAG {dag_id} uses {task.operator_path or task.operator}, which a policy rule allows, "
        f"but it overrides {methods}; an allowed gate operator may change evaluate(), never how the package runs "
        "the gate and records its evidence"
    )


def tampered_gate_message(task: TaskInfo, dag_id: str) -> str:
    return (
        f"task {task.task_id} in DAG {dag_id} uses {task.operator}, whose code was replaced from outside "
        f"airflow-mlsecops ({', '.join(task.tampered)}); a DAG file may not change the package's gate operators"
    )


def trigger_rule_message(task: TaskInfo, dag_id: str, step_task: TaskInfo) -> str:
    if task.task_id == step_task.task_id:
        what = f"task {task.task_id} ({task.operator}) in DAG {dag_id} uses trigger_rule {task.trigger_rule}"
    else:
        what = (
            f"task {task.task_id} in DAG {dag_id}, between a gate and {step_task.task_id} ({step_task.operator}), "
            f"uses trigger_rule {task.trigger_rule}"
        )
    return (
        f"{what}, which lets it run after a gate upstream of it failed or was skipped; register and promote tasks, "
        f"and every task between a gate and one, must use trigger_rule {ALL_SUCCESS}"
    )


def empty_expand_message(task: TaskInfo, dag_id: str) -> str:
    return (
        f"task {task.task_id} in DAG {dag_id} maps gate {task.gate or task.operator} over an empty literal "
        f"{task.empty_expand}, so it never runs and judges nothing; expand a gate over the inputs it must judge"
    )


def unknown_model_message(task: TaskInfo, dag_id: str, what: str, value: Unresolved) -> str:
    return (
        f"task {task.task_id} ({task.operator}) in DAG {dag_id} takes its {what} from {value.source}, which cannot "
        "be checked before the task runs; the policy selects rules by registered model (match models), so the "
        f"{what} must be a literal or a params default"
    )


def check_structure(policy: Policy, dag: DagInfo, rules: Sequence[Rule] | None = None) -> list[Violation]:
    """What every policy requires of a DAG, whichever rules apply (``rules``: those that do,
    for ``allowed_operators``; default: the policy's matching ones):

    * a gate task uses the package's own gate operator, unchanged, or a class a rule that applies
      allows by ``module.Class`` (which still may not override ``execute()``);
    * register and promote tasks, and every task on a path from a gate task to one, use trigger
      rule ``all_success`` (anything else runs them after a failed or skipped gate);
    * no gate is mapped over a literal empty list or dict;
    * when the policy selects rules by model, register and promote tasks name their model and
      alias before the run.
    """
    if rules is None:
        rules = policy.matching(dag.dag_id, dag.tags, dag.owners, dag.models)
    allowed = {name for rule in rules for name in rule.allowed_operators}
    out: list[Violation] = []

    def add(kind: str, message: str, task: TaskInfo, parameter: str | None = None) -> None:
        out.append(Violation(PLATFORM_RULE, dag.dag_id, kind, message, task_id=task.task_id, gate=task.gate, parameter=parameter))

    for task in sorted(dag.tasks, key=lambda t: t.task_id):
        if task.origin is not None and task.operator_path not in allowed:
            add("foreign-gate", foreign_gate_message(task, dag.dag_id), task)
        elif task.origin is not None and task.overrides:
            add("overridden-gate", overridden_gate_message(task, dag.dag_id), task)
        if task.tampered:
            add("tampered-gate", tampered_gate_message(task, dag.dag_id), task)
        if task.empty_expand is not None and (task.gate is not None or task.origin is not None):
            add("empty-expand", empty_expand_message(task, dag.dag_id), task)

    gate_ids = {t.task_id for t in dag.tasks if t.gate is not None or t.origin is not None}
    step_tasks = [t for step in STEPS for t in dag.step_tasks(step)]
    reported: set[str] = set()
    for step_task in step_tasks:
        if step_task.trigger_rule != ALL_SUCCESS and step_task.task_id not in reported:
            reported.add(step_task.task_id)
            add("trigger-rule", trigger_rule_message(step_task, dag.dag_id, step_task), step_task, "trigger_rule")
    for step_task in step_tasks:
        for task_id in sorted(dag.ancestors(step_task.task_id) - reported):
            between = dag.task(task_id)
            if between is None or between.trigger_rule == ALL_SUCCESS or not dag.ancestors(task_id) & gate_ids:
                continue
            reported.add(task_id)
            add("trigger-rule", trigger_rule_message(between, dag.dag_id, step_task), between, "trigger_rule")
    for step_task in step_tasks if policy.governs_models else ():
        for what, value in (("registered model name", step_task.registered_model), ("alias", step_task.model_alias)):
            if isinstance(value, Unresolved):
                add("unknown-model", unknown_model_message(step_task, dag.dag_id, what, value), step_task)
    return out


# ----------------------------------------------------------------------------- defaults
def required_gates(
    policy: Policy,
    dag_id: str,
    tags: Iterable[str] = (),
    owners: Iterable[str] | str = (),
    *,
    step: str = STEP_PROMOTE,
    models: Iterable[tuple[str, str | None]] = (),
) -> list[str]:
    """Union of the gates the matching rules require before ``step`` (approval included).

    :param models: ``(name, alias)`` the step registers (alias ``None``) or promotes: rules that
        govern it apply too.
    """
    gates: dict[str, None] = {}
    for rule in policy.matching(dag_id, tags, split_owners(owners), models):
        gates.update(dict.fromkeys(rule.gates_for(step)))
    return list(gates)


def policy_requirements(
    policy: Policy,
    gate: str,
    dag_id: str,
    tags: Iterable[str] = (),
    owners: Iterable[str] | str = (),
    *,
    models: Iterable[tuple[str, str | None]] = (),
) -> dict[str, tuple[str, Any]]:
    """``parameter -> (comparison kind, strictest policy value)`` for ``gate`` in this DAG
    (``models``: as for :func:`required_gates`)."""
    merged: dict[str, tuple[str, Any]] = {}
    for rule in policy.matching(dag_id, tags, split_owners(owners), models):
        for req_gate, parameter, kind, value in requirements(rule):
            if req_gate != gate:
                continue
            if kind == EQUAL and parameter in merged and merged[parameter][1] != value:
                # Two rules that demand different exact values cannot both be met: neither wins silently.
                raise ConfigurationError(
                    f"the policy's rules for DAG {dag_id} demand different values of {gate} {parameter} "
                    f"({merged[parameter][1]!r} and {value!r}); no gate can meet both: make the rules agree"
                )
            merged[parameter] = (kind, value) if parameter not in merged else (kind, _stricter(kind, merged[parameter][1], value))
    return merged


def apply_to(kind: str, policy_value: Any, current: Any) -> Any:
    """The value a gate must use: ``current`` if it is at least as strict as the policy, else the
    strictest of both (the policy's value when the DAG set nothing)."""
    if current is None:
        if kind == SUPERSET:
            return current  # None means "everything" for list parameters (e.g. PII types): already strictest
        return list(policy_value) if isinstance(policy_value, tuple) else policy_value
    if complies(kind, policy_value, current):
        return current
    if kind in (MIN, MAX):
        return policy_value  # not complying: the policy's limit is the stricter one (also for "0.5" given as text)
    merged = _stricter(kind, current, policy_value) if kind != EQUAL else policy_value
    return list(merged) if isinstance(merged, tuple) else merged


def policy_defaults(
    policy: Policy,
    gate: str,
    dag_id: str,
    tags: Iterable[str] = (),
    owners: Iterable[str] | str = (),
    *,
    models: Iterable[tuple[str, str | None]] = (),
) -> dict[str, Any]:
    """The strictest value of every parameter the matching rules set for ``gate``: what an operator
    should use when the DAG does not say (``{}`` when no rule sets anything).

    ``gate`` is a gate name; ``model-approval`` gives the approval section, ``model-promotion``
    gives ``required_approvals``, the verification gates give ``public_keys``. ``models``: as for
    :func:`required_gates`.
    """
    merged: dict[str, tuple[str, Any]] = {}
    for rule in policy.matching(dag_id, tags, split_owners(owners), models):
        for req_gate, parameter, kind, value in requirements(rule):
            if req_gate != gate:
                continue
            if parameter not in merged:
                merged[parameter] = (kind, value)
            else:
                merged[parameter] = (kind, _stricter(kind, merged[parameter][1], value))
    return {name: list(v) if isinstance(v, tuple) else v for name, (_, v) in merged.items()}


def _stricter(kind: str, a: Any, b: Any) -> Any:
    if kind == MIN:
        return max(a, b)
    if kind == MAX:
        return min(a, b)
    if kind == SUPERSET:
        return tuple(dict.fromkeys([*a, *b]))
    if kind in (SUBSET, NONEMPTY_SUBSET):
        return tuple(x for x in a if x in set(b))
    if kind == TRUE_STRICT:
        return bool(a or b)
    if kind == FALSE_STRICT:
        return bool(a and b)
    return a  # EQUAL: the first rule wins (two rules that disagree cannot both be met)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Unresolved):
        return {"unresolved": value.source}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return value


__all__ = [
    "DagInfo",
    "ALL_SUCCESS",
    "PLATFORM_RULE",
    "TaskInfo",
    "Unresolved",
    "Violation",
    "accept_warned_message",
    "check_accept_warned",
    "check_required_gates",
    "check_structure",
    "check_thresholds",
    "check_warn_only",
    "complies",
    "evaluate",
    "missing_gate_message",
    "policy_defaults",
    "required_gates",
    "requirements",
    "threshold_message",
    "warn_only_message",
]
