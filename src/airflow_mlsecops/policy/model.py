"""The policy file: a typed, frozen model, its loader and where the file is found.

A policy is one YAML file owned by the platform team and validated against the published JSON
Schema (``airflow_mlsecops/policy/schema.json``, printed by ``mlsecops policy schema``):

.. code-block:: yaml

    version: 1
    rules:
      - name: production-models
        match: {tags: [production]}                # and/or owners: [...], dag_id_pattern: "credit_.*"
        required_gates:
          register: [model-scan, model-provenance]
          promote: [model-scan, robustness, sbom, model-provenance, data-validation, dataset-provenance]
        thresholds:
          robustness: {min_robust_accuracy: 0.7}
          sbom: {fail_on: [critical, high, unknown]}
        approval: {required_approvals: 2, reviewers: [alice, bob, carol], separation_of_duties: true}
        trusted_keys: [keys/release.pub.pem]
        accept_warned: [sbom]                       # an incomplete sbom (no OSV database) may count: see below

``accept_warned`` lists gates whose *incomplete* ``warned`` verdict (a check not performed, such
as an SBOM without an OSV database, and nothing rejected) a promotion may accept; by default none,
and a warn-only rejection never counts. Stricter wins (:func:`accepted_warned`): every applying
rule that governs a gate (requires it at promote or sets its thresholds) must list it, so adding a
rule can never loosen another. The promote task asks for it (``PromoteModelOperator(accept_warned=
[...])``); asking for a gate a governing rule does not list is a violation, at parse time, in CI
and at promotion.

A top-level ``sensitive_data`` section (beside ``rules``) lists data sets the platform marks
sensitive, whichever DAG touches them, in the format of :mod:`airflow_mlsecops.privacy.sensitive`;
it is parsed into :attr:`Policy.sensitive_data` (the DP evidence release and the training-privacy
gate read it there).

Where the file is (:func:`configured_policy_path`): the Airflow option ``[mlsecops] policy_file``
(``AIRFLOW__MLSECOPS__POLICY_FILE``) when Airflow is loaded; else ``$MLSECOPS_POLICY``; else
``<home>/policy.yaml`` if that file exists. None of them: no policy is configured.

Every problem is a :class:`PolicyError` naming the file and the line: YAML syntax, a duplicate key,
an unknown key, an unknown gate or threshold name, a wrong type, a value out of range, an empty
rule set, a rule that requires nothing, a duplicate rule name, a regular expression that does not
compile. A broken policy is never "no policy": callers fail closed.

No Airflow import; ``yaml`` and ``jsonschema`` are imported when a policy is loaded.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.exceptions import PolicyError
from airflow_mlsecops.privacy.sensitive import SensitiveData

ENV_POLICY = "MLSECOPS_POLICY"
AIRFLOW_SECTION, AIRFLOW_OPTION = "mlsecops", "policy_file"
DEFAULT_FILE_NAME = "policy.yaml"
POLICY_VERSION = 1

STEP_REGISTER, STEP_PROMOTE = "register", "promote"
STEPS = (STEP_REGISTER, STEP_PROMOTE)
#: Gate name of the task that performs each step (RegisterModelOperator, PromoteModelOperator).
STEP_GATES = {STEP_REGISTER: gate_names.MODEL_REGISTRATION, STEP_PROMOTE: gate_names.MODEL_PROMOTION}

MODEL_GATES = gate_names.MODEL_GATES
DATA_GATES = gate_names.DATA_GATES
APPROVAL_GATE = gate_names.MODEL_APPROVAL
MONITORING_GATES = gate_names.MONITORING_GATES
#: Every gate name a policy may require.
GATE_NAMES = gate_names.POLICY_GATES

# How a DAG value compares with the policy's value ("weaker than policy" is a violation):
MIN = "min"  # the DAG value must be >= the policy's
MAX = "max"  # the DAG value must be <= the policy's (unset = no limit = weaker)
SUPERSET = "superset"  # the DAG's list must include every item of the policy's
SUBSET = "subset"  # the DAG's list must be within the policy's
NONEMPTY_SUBSET = "nonempty-subset"  # within the policy's, and not empty (empty means "anyone")
TRUE_STRICT = "true-strict"  # policy true: the DAG must be true
FALSE_STRICT = "false-strict"  # policy false: the DAG must be false
EQUAL = "equal"  # the DAG must use exactly the policy's value

#: Threshold names per gate (each is the operator argument of the same name, or a value derived from
#: the arguments as :mod:`airflow_mlsecops.policy.parameters` describes) and how they compare. Every
#: argument that can weaken a gate is here; each gate records the same names as applied in its
#: evidence (``GateResult.policy``), so promotion judges what really ran.
THRESHOLD_KINDS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        gate_names.ROBUSTNESS: {
            "min_robust_accuracy": MIN,
            "max_accuracy_drop": MAX,
            "epsilon": MIN,
            "allow_bounds": FALSE_STRICT,
            "norm": EQUAL,
            "epsilon_scale": EQUAL,
            "max_samples": MIN,
            "attack_max_samples": MIN,
            "trust_pickle": FALSE_STRICT,
            "method": SUBSET,
        },
        gate_names.SBOM: {
            "fail_on": SUPERSET,
            "require_vulnerability_check": TRUE_STRICT,
            "packages_from_model": TRUE_STRICT,
            "osv_db": SUBSET,
        },
        gate_names.TRAINING_ENVIRONMENT: {
            "fail_on": SUPERSET,
            "require_vulnerability_check": TRUE_STRICT,
            "osv_db": SUBSET,
            "fail_on_mismatch": TRUE_STRICT,
            "fail_on_undeclared": TRUE_STRICT,
            "environment_from_worker": TRUE_STRICT,
        },
        gate_names.MEMBERSHIP_INFERENCE: {
            "max_attack_auc": MAX,
            "max_advantage": MAX,
            "min_samples": MIN,
            "attacks": SUPERSET,
            "trust_pickle": FALSE_STRICT,
        },
        gate_names.TRAINING_PRIVACY: {"max_epsilon": MAX, "max_delta": MAX},
        gate_names.PII_SCAN: {"types": SUPERSET, "allow_columns": SUBSET, "max_rows": MIN, "allow_empty": FALSE_STRICT},
        gate_names.DRIFT: {
            "drift_share": MAX,
            "max_missing_change": MAX,
            "fail_on_severe_column": TRUE_STRICT,
            "max_rows": MIN,
            "columns": SUPERSET,
            "compare_all_columns": TRUE_STRICT,
            "excluded_columns": SUBSET,
            "allow_empty": FALSE_STRICT,
        },
        gate_names.INPUT_ANOMALY: {
            "max_flagged_share": MAX,
            "max_repeated_share": MAX,
            "near_duplicate_radius": MIN,
            "detector_from_model": TRUE_STRICT,
            "trust_pickle": FALSE_STRICT,
            "excluded_columns": SUBSET,
            "allow_empty": FALSE_STRICT,
        },
        gate_names.DATA_VALIDATION: {"suite_sha256": SUBSET, "min_mostly": MIN, "allow_empty": FALSE_STRICT},
        gate_names.DATA_INTEGRITY: {
            "max_schema_changes": MAX,
            "max_label_shift": MAX,
            "max_new_classes": MAX,
            "max_missing_classes": MAX,
            "max_duplicate_share": MAX,
            "max_near_duplicate_share": MAX,
            "near_duplicate_radius": MIN,
            "max_out_of_range_share": MAX,
            "max_non_finite_share": MAX,
            "max_formula_share": MAX,
            "range_tolerance": MAX,
            "max_feature_shift": MAX,
            "max_label_flip_share": MAX,
            "label_flip_max_rows": MIN,
            "label_flip_min_class_rows": MAX,
            "significance": MIN,
            "ignore_columns": SUBSET,
            "excluded_columns": SUBSET,
            "compare_all_features": TRUE_STRICT,
            "has_label_column": TRUE_STRICT,
            "allow_empty": FALSE_STRICT,
        },
        gate_names.MODEL_SCAN: {"allow_globals": SUBSET, "second_opinion": TRUE_STRICT, "allow_model_code": FALSE_STRICT},
        gate_names.CODE_SCAN: {
            "fail_on_severity": SUPERSET,
            "fail_on_confidence": SUPERSET,
            "scan_secrets": TRUE_STRICT,
            "max_suppressions": MAX,
        },
    }
)
#: The approval section: ModelApprovalGateOperator's arguments (PromoteModelOperator's required_approvals too).
APPROVAL_KINDS: Mapping[str, str] = MappingProxyType(
    {"required_approvals": MIN, "reviewers": NONEMPTY_SUBSET, "separation_of_duties": TRUE_STRICT}
)
#: Gates whose ``public_keys`` argument must be within the rule's ``trusted_keys``.
KEY_GATES = gate_names.KEY_GATES


@dataclass(frozen=True)
class PolicyIssue:
    """One problem of a policy file: the 1-based line, a JSON pointer to the value and the message."""

    line: int
    pointer: str
    message: str

    def render(self, source: str) -> str:
        where = f" {self.pointer}:" if self.pointer else ""
        return f"{source}:{self.line}:{where} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "pointer": self.pointer, "message": self.message}


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class Match:
    """Which DAGs and which registered models a rule applies to.

    DAG criteria (``tags``, ``owners``, ``dag_id_pattern``): every one given must hold; a list holds
    if any item does. They describe what a DAG says about itself, which its author chooses.
    Model criteria (``models``, ``aliases``): the rule also applies to every registration of a
    model whose name matches ``models`` and every promotion of one to an alias matching ``aliases``
    (any alias when not given), whichever DAG does it. Patterns are shell-style (``credit-*``).
    """

    tags: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    dag_id_pattern: str | None = None
    models: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def has_dag_criteria(self) -> bool:
        return bool(self.tags or self.owners or self.dag_id_pattern is not None)

    def matches_dag(self, dag_id: str, tags: Iterable[str] = (), owners: Iterable[str] = ()) -> bool:
        """The DAG criteria hold (``False`` when the rule has none)."""
        if not self.has_dag_criteria:
            return False
        if self.tags and not set(self.tags) & {str(t) for t in tags}:
            return False
        if self.owners and not set(self.owners) & set(split_owners(owners)):
            return False
        return not (self.dag_id_pattern is not None and re.fullmatch(self.dag_id_pattern, dag_id) is None)

    def matches_model(self, name: str, alias: str | None = None) -> bool:
        """The rule governs registering ``name`` (``alias`` None) or promoting it to ``alias``."""
        if not self.models or not any(fnmatch.fnmatchcase(name, p) for p in self.models):
            return False
        return alias is None or not self.aliases or any(fnmatch.fnmatchcase(alias, p) for p in self.aliases)

    def matches(
        self,
        dag_id: str,
        tags: Iterable[str] = (),
        owners: Iterable[str] = (),
        models: Iterable[tuple[str, str | None]] = (),
    ) -> bool:
        """The DAG criteria hold, or the DAG registers or promotes a governed model.

        :param models: ``(model name, alias)`` pairs the DAG registers (alias ``None``) or promotes.
        """
        if self.matches_dag(dag_id, tags, owners):
            return True
        return any(self.matches_model(name, alias) for name, alias in models)

    def describe(self) -> str:
        parts = []
        if self.tags:
            parts.append("tags " + ", ".join(self.tags))
        if self.owners:
            parts.append("owners " + ", ".join(self.owners))
        if self.dag_id_pattern is not None:
            parts.append(f"dag_id matching {self.dag_id_pattern}")
        text = " and ".join(parts)
        if self.models:
            governed = "models " + ", ".join(self.models) + (" to aliases " + ", ".join(self.aliases) if self.aliases else "")
            text = (
                f"{text}, or any DAG that registers or promotes {governed}"
                if text
                else f"any DAG that registers or promotes {governed}"
            )
        return text


@dataclass(frozen=True)
class Approval:
    """The approval rules; ``None`` means the policy says nothing about that item."""

    required_approvals: int | None = None
    reviewers: tuple[str, ...] | None = None
    separation_of_duties: bool | None = None

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.required_approvals is not None:
            out["required_approvals"] = self.required_approvals
        if self.reviewers is not None:
            out["reviewers"] = self.reviewers
        if self.separation_of_duties is not None:
            out["separation_of_duties"] = self.separation_of_duties
        return out


@dataclass(frozen=True)
class Rule:
    """One rule of the policy.

    :param thresholds: gate -> threshold name -> value (lists as tuples), read-only.
    :param trusted_keys: absolute paths of the trusted public keys (files or directories).
    :param line: where the rule starts in the policy file.
    """

    name: str
    match: Match
    register_gates: tuple[str, ...] = ()
    promote_gates: tuple[str, ...] = ()
    thresholds: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    approval: Approval = field(default_factory=Approval)
    trusted_keys: tuple[str, ...] = ()
    #: Gate operator classes outside the package (``module.Class``) allowed to record gate evidence.
    allowed_operators: tuple[str, ...] = ()
    description: str = ""
    line: int = 0
    #: Gates whose incomplete ``warned`` verdict (a check not performed) this rule accepts at promotion.
    accept_warned: tuple[str, ...] = ()

    def gates_for(self, step: str) -> tuple[str, ...]:
        """Gates required upstream of ``step`` (``register`` or ``promote``), approval included."""
        if step == STEP_REGISTER:
            return self.register_gates
        gates = self.promote_gates
        if (self.approval.required_approvals or 0) > 0 and APPROVAL_GATE not in gates:
            gates = (*gates, APPROVAL_GATE)
        return gates

    def governed_gates(self) -> tuple[str, ...]:
        """Gates this rule requires or sets thresholds for (``warn_only`` is forbidden on them)."""
        names = [*self.gates_for(STEP_REGISTER), *self.gates_for(STEP_PROMOTE), *self.thresholds]
        if self.approval.values():
            names.append(APPROVAL_GATE)
        return tuple(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        match: dict[str, Any] = {}
        if self.match.tags:
            match["tags"] = list(self.match.tags)
        if self.match.owners:
            match["owners"] = list(self.match.owners)
        if self.match.dag_id_pattern is not None:
            match["dag_id_pattern"] = self.match.dag_id_pattern
        if self.match.models:
            match["models"] = list(self.match.models)
        if self.match.aliases:
            match["aliases"] = list(self.match.aliases)
        return {
            "name": self.name,
            "line": self.line,
            "match": match,
            "required_gates": {STEP_REGISTER: list(self.register_gates), STEP_PROMOTE: list(self.promote_gates)},
            "thresholds": {
                g: {k: list(v) if isinstance(v, tuple) else v for k, v in t.items()} for g, t in self.thresholds.items()
            },
            "approval": {k: list(v) if isinstance(v, tuple) else v for k, v in self.approval.values().items()},
            "trusted_keys": list(self.trusted_keys),
            "allowed_operators": list(self.allowed_operators),
            "accept_warned": list(self.accept_warned),
        }

    def governs_promotion_of(self, gate: str) -> bool:
        """Whether this rule has a say on ``gate`` at promotion: it requires it there or sets its thresholds."""
        return gate in self.gates_for(STEP_PROMOTE) or gate in self.thresholds


def accepted_warned(rules: Iterable[Rule], gates: Iterable[str]) -> tuple[str, ...]:
    """The ``gates`` whose incomplete ``warned`` verdict the applying ``rules`` let a promotion accept.

    Stricter wins: a rule that governs a gate (:meth:`Rule.governs_promotion_of`: requires it at
    promote or sets its thresholds) and does not list it in ``accept_warned`` refuses it, whatever
    other rules say; adding a rule can only take acceptance away. A gate no applying rule governs
    is the promote task's own choice (the policy says nothing about it). The promote task must
    still ask for each gate (``accept_warned``): the policy permits, it never accepts by itself.
    """
    rules = tuple(rules)
    return tuple(
        gate for gate in dict.fromkeys(gates) if all(gate in r.accept_warned for r in rules if r.governs_promotion_of(gate))
    )


@dataclass(frozen=True)
class Policy:
    """A loaded, valid policy.

    :param source: where it was read from (a path, or ``<string>``).
    :param digest: SHA-256 (hex) of the file's exact bytes: goes into every evidence record.
    """

    rules: tuple[Rule, ...]
    source: str
    digest: str
    version: int = POLICY_VERSION
    description: str = ""
    #: The ``sensitive_data`` section (:func:`airflow_mlsecops.privacy.sensitive.parse_sensitive_data`):
    #: data sets whose evidence statistics are released with differential privacy and whose models
    #: must declare a DP guarantee. Not a rule: it applies whichever DAG touches the data.
    sensitive_data: tuple[SensitiveData, ...] = ()

    def matching(
        self,
        dag_id: str,
        tags: Iterable[str] = (),
        owners: Iterable[str] | str = (),
        models: Iterable[tuple[str, str | None]] = (),
    ) -> tuple[Rule, ...]:
        """The rules that apply to a DAG (in file order).

        :param models: ``(name, alias)`` pairs the DAG registers (alias ``None``) or promotes: rules
            that govern one of them apply whatever the DAG's id, tags and owners.
        """
        tags, owners, models = tuple(tags), split_owners(owners), tuple(models)
        return tuple(r for r in self.rules if r.match.matches(dag_id, tags, owners, models))

    @property
    def governs_models(self) -> bool:
        """Whether any rule selects by registered model name (then a model name must be known to judge a DAG)."""
        return any(r.match.models for r in self.rules)

    @property
    def allowed_operators(self) -> tuple[str, ...]:
        """Every operator class any rule allows (``module.Class``)."""
        return tuple(dict.fromkeys(name for r in self.rules for name in r.allowed_operators))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "digest": self.digest,
            "version": self.version,
            "rules": [r.to_dict() for r in self.rules],
            "sensitive_data": [entry.to_dict() for entry in self.sensitive_data],
        }


def split_owners(owners: Iterable[str] | str | None) -> tuple[str, ...]:
    """``"alice, bob"`` (Airflow's ``dag.owner``) or a list -> ``("alice", "bob")``."""
    if owners is None:
        return ()
    items = owners.split(",") if isinstance(owners, str) else [p for o in owners for p in str(o).split(",")]
    return tuple(dict.fromkeys(p.strip() for p in items if p.strip()))


# ----------------------------------------------------------------------------- schema
@lru_cache(maxsize=1)
def schema_text() -> str:
    """The published JSON Schema of the policy file, as text."""
    from importlib.resources import files

    return files("airflow_mlsecops.policy").joinpath("schema.json").read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    """The published JSON Schema of the policy file (a fresh copy)."""
    return dict(json.loads(schema_text()))


# ----------------------------------------------------------------------------- where it is
def configured_policy_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The configured policy file, or ``None`` when no policy is configured.

    One settings source (:mod:`airflow_mlsecops.config`), first match wins: Airflow's ``[mlsecops]
    policy_file`` (``AIRFLOW__MLSECOPS__POLICY_FILE``, ``airflow.cfg``; read only when Airflow's
    configuration is already loaded, as in the DAG processor and in tasks, and never when ``env``
    is given); else ``$MLSECOPS_POLICY``; else ``<home>/policy.yaml`` (home: ``[mlsecops] home``,
    ``$MLSECOPS_HOME``, default ``./.mlsecops``) if that file exists. An explicitly configured path
    is returned even if the file is missing: loading it then fails (closed).

    :param env: read these variables instead of ``os.environ`` (and not Airflow's configuration).
    :raises ConfigurationError: Airflow's configuration cannot produce the option.
    """
    from airflow_mlsecops.config import Settings

    settings = Settings.resolve(airflow_config=None if env is None else False, env=env)
    if settings.policy_file is not None:
        return settings.policy_file
    default = settings.home / DEFAULT_FILE_NAME
    return default if default.is_file() else None


def policy_digest(path: str | os.PathLike[str] | None = None) -> str | None:
    """SHA-256 (hex) of the policy file's bytes: ``path``, else the configured policy; ``None`` if
    no policy is configured. Pass it to ``EvidenceRecorder.record(policy_digest=...)``.

    :raises PolicyError: the configured file cannot be read.
    """
    target = Path(path) if path is not None else configured_policy_path()
    if target is None:
        return None
    return hashlib.sha256(_read(target)).hexdigest()


_CACHE: dict[tuple[str, str], Policy | PolicyError] = {}
_CACHE_LOCK = threading.Lock()


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a policy file. A file already seen with the same bytes is not parsed again.

    :raises PolicyError: naming the file and the line of every problem.
    """
    target = Path(path).expanduser()
    data = _read(target)
    key = (str(target), hashlib.sha256(data).hexdigest())
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is None:
        try:
            cached = parse_policy(data, source=str(target), base_dir=target.absolute().parent)
        except PolicyError as exc:
            cached = exc
        with _CACHE_LOCK:
            if len(_CACHE) > 32:
                _CACHE.clear()
            _CACHE[key] = cached
    if isinstance(cached, PolicyError):
        raise cached
    return cached


def load_configured_policy() -> Policy | None:
    """The configured policy, or ``None`` when none is configured.

    :raises PolicyError: a policy is configured but broken (callers must fail closed).
    """
    path = configured_policy_path()
    return None if path is None else load_policy(path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PolicyError(str(path), [PolicyIssue(1, "", f"cannot read the policy file: {exc.strerror or exc}")]) from exc


# ----------------------------------------------------------------------------- parsing
def parse_policy(text: str | bytes, *, source: str = "<string>", base_dir: Path | None = None) -> Policy:
    """Validate policy text and build the model.

    :param source: named in error messages and kept in :attr:`Policy.source`.
    :param base_dir: relative ``trusted_keys`` are resolved against it (default: the working directory).
    :raises PolicyError: naming the line of every problem.
    """
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(source, [PolicyIssue(1, "", f"the policy file is not UTF-8 text ({exc.reason})")]) from exc
    data, lines, issues = _load_yaml(decoded, source)
    if data is None and issues:
        raise PolicyError(source, issues)
    index = _LineIndex(lines)
    issues.extend(_schema_issues(data, index))  # duplicate keys do not hide the other problems
    issues.extend(_nan_issues(data, index))  # the schema's bounds cannot see NaN (every comparison is false)
    if issues:
        raise PolicyError(source, issues)
    issues = _semantic_issues(data, index)
    if issues:
        raise PolicyError(source, issues)
    base = base_dir or Path.cwd()
    rules = tuple(_build_rule(i, item, index, base) for i, item in enumerate(data["rules"]))
    return Policy(
        rules=rules,
        source=source,
        digest=digest,
        version=int(data["version"]),
        description=str(data.get("description", "")),
        sensitive_data=_sensitive_data(data.get("sensitive_data"), index, source),
    )


def _sensitive_data(section: Any, index: _LineIndex, source: str) -> tuple[SensitiveData, ...]:
    """The ``sensitive_data`` section, parsed entry by entry so an error names its line."""
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.privacy.sensitive import parse_sensitive_data

    entries: list[SensitiveData] = []
    issues: list[PolicyIssue] = []
    for i, item in enumerate(section or ()):
        try:
            entries.extend(parse_sensitive_data([item]))
        except ConfigurationError as exc:
            where: Path_ = ("sensitive_data", i)
            issues.append(
                PolicyIssue(index.line(where), _pointer(where), str(exc).replace("sensitive_data[0]", f"sensitive_data[{i}]"))
            )
    names = [e.name for e in entries]
    for i, name in enumerate(names):
        if name in names[:i]:
            name_at: Path_ = ("sensitive_data", i, "name")
            issues.append(PolicyIssue(index.line(name_at), _pointer(name_at), f"duplicate sensitive_data name {name!r}"))
    if issues:
        raise PolicyError(source, issues)
    return tuple(entries)


Path_ = tuple[str | int, ...]


class _LineIndex:
    """JSON path -> 1-based line in the YAML text (keys: the key's line; items: the item's line)."""

    def __init__(self, lines: dict[Path_, int]) -> None:
        self.lines = lines

    def line(self, path: Iterable[str | int]) -> int:
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)


def _pointer(path: Iterable[str | int]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def _load_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int], list[PolicyIssue]]:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return None, {}, [PolicyIssue(line, "", f"not valid YAML: {what}")]
    except yaml.YAMLError as exc:
        return None, {}, [PolicyIssue(1, "", f"not valid YAML: {exc}")]
    if node is None:
        return None, {(): 1}, [PolicyIssue(1, "", "the policy file is empty; it needs version: 1 and at least one rule")]
    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    issues: list[PolicyIssue] = []
    _index_node(node, (), lines, issues)
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)  # SafeLoader: plain data only
    except yaml.YAMLError as exc:  # e.g. a timestamp that does not construct
        mark = getattr(exc, "problem_mark", None)
        return None, lines, [*issues, PolicyIssue(mark.line + 1 if mark else 1, "", f"not valid YAML: {exc}")]
    if data is None:
        return None, lines, [*issues, PolicyIssue(1, "", "the policy file is empty; it needs version: 1 and at least one rule")]
    return data, lines, issues


def _index_node(node: Any, path: Path_, lines: dict[Path_, int], issues: list[PolicyIssue]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                issues.append(PolicyIssue(line, _pointer(path), f"key {shown!r} must be text (quote it)"))
                continue
            key = key_node.value
            if key == "<<":
                issues.append(PolicyIssue(line, _pointer(path), "YAML merge keys (<<) are not allowed in a policy"))
                continue
            if key in seen:
                issues.append(
                    PolicyIssue(
                        line,
                        _pointer((*path, key)),
                        f"duplicate key {key!r} (first on line {seen[key]}); a policy must say things once",
                    )
                )
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _index_node(value_node, (*path, key), lines, issues)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index_node(item, (*path, i), lines, issues)


_TYPE_NAMES = {
    "number": "a number",
    "integer": "a whole number",
    "string": "text",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "null": "empty",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    """A short rendering of a value, without square brackets (Airflow's import error table strips them)."""
    if isinstance(value, list):
        text = "(" + ", ".join(_show(v) for v in value) + ")"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value, default=str).replace("[", "(").replace("]", ")")
    return text if len(text) <= 60 else text[:57] + "..."


def _nan_issues(data: Any, index: _LineIndex, path: tuple[str | int, ...] = ()) -> list[PolicyIssue]:
    """``.nan`` anywhere: it passes every ``minimum``/``maximum`` of the schema (every comparison with NaN
    is false), then a NaN limit refuses or accepts everything by the comparison's direction, and the
    strictest of two rules (``max``/``min``) depends on their order. (``.inf`` meets the bounds.)"""
    if isinstance(data, float) and math.isnan(data):
        return [PolicyIssue(index.line(path), _pointer(path), "must be a number, not NaN")]
    if isinstance(data, Mapping):
        return [i for k, v in data.items() for i in _nan_issues(v, index, (*path, str(k)))]
    if isinstance(data, list):
        return [i for n, v in enumerate(data) for i in _nan_issues(v, index, (*path, n))]
    return []


def _schema_issues(data: Any, index: _LineIndex) -> list[PolicyIssue]:
    from jsonschema import Draft202012Validator

    spec = schema()
    validator = Draft202012Validator(spec)
    issues: list[PolicyIssue] = []
    for error in validator.iter_errors(data):
        issues.extend(_describe(error, index))
    # one problem, one message (a type error can also fail minimum etc.)
    unique: dict[tuple[int, str, str], PolicyIssue] = {}
    for issue in issues:
        unique.setdefault((issue.line, issue.pointer, issue.message), issue)
    return list(unique.values())


def _describe(error: Any, index: _LineIndex) -> list[PolicyIssue]:
    path: Path_ = tuple(error.absolute_path)
    kind = error.validator
    value = error.instance
    at = _pointer(path)
    line = index.line(path)
    in_thresholds = len(path) >= 3 and path[0] == "rules" and path[2] == "thresholds"
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(error.schema.get("properties", {}))
        out = []
        for key in value:
            if key in known:
                continue
            where = _pointer((*path, key))
            key_line = index.line((*path, key))
            if in_thresholds and len(path) == 3:
                what = "has no thresholds" if key in GATE_NAMES else "is an unknown gate name"
                msg = f"gate {key!r} {what}; gates with thresholds: {', '.join(known)}"
            elif in_thresholds and len(path) == 4:
                msg = f"unknown threshold {key!r} for gate {path[3]}; known: {', '.join(known)}"
            else:
                msg = f"unknown key {key!r}; expected one of: {', '.join(known)}"
            out.append(PolicyIssue(key_line, where, msg))
        return out
    if kind == "required":
        missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
        return [PolicyIssue(line, at, f"missing required key {k!r}") for k in missing]
    if kind == "type":
        expected = error.validator_value
        names = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in (expected if isinstance(expected, list) else [expected]))
        return [PolicyIssue(line, at, f"must be {names}, not {_type_of(value)} ({_show(value)})")]
    if kind == "enum":
        allowed = [str(v) for v in error.validator_value]
        if len(path) >= 4 and path[0] == "rules" and path[2] == "required_gates":
            return [PolicyIssue(line, at, f"unknown gate name {_show(value)}; known gates: {', '.join(allowed)}")]
        return [PolicyIssue(line, at, f"{_show(value)} is not one of: {', '.join(allowed)}")]
    if kind == "const" and path == ("version",):
        return [PolicyIssue(line, at, f"unsupported policy version {_show(value)}; this release reads version {POLICY_VERSION}")]
    if kind == "minItems":
        if path == ("rules",):
            return [PolicyIssue(line, at, "the policy has no rules: an empty rule set enforces nothing")]
        return [PolicyIssue(line, at, "must not be an empty list (leave the key out instead)")]
    if kind == "minProperties":
        if len(path) == 3 and path[2] == "match":
            return [
                PolicyIssue(
                    line,
                    at,
                    "match needs at least one of tags, owners, dag_id_pattern, models (use dag_id_pattern: '.*' for every DAG)",
                )
            ]
        return [PolicyIssue(line, at, "must not be empty (leave the key out instead)")]
    if kind == "uniqueItems":
        return [PolicyIssue(line, at, "lists an item twice")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return [PolicyIssue(line, at, f"must be {sign} {error.validator_value}, not {_show(value)}")]
    if kind == "minLength":
        return [PolicyIssue(line, at, "must not be empty text")]
    if kind == "pattern" and len(path) == 3 and path[2] == "name":
        return [
            PolicyIssue(
                line,
                at,
                f"rule name {_show(value)} must start with a letter or digit and use only letters, digits, space and _ . : / -",
            )
        ]
    return [PolicyIssue(line, at, str(error.message))]


def _semantic_issues(data: Mapping[str, Any], index: _LineIndex) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    names: dict[str, int] = {}
    for i, rule in enumerate(data["rules"]):
        base: Path_ = ("rules", i)
        name = rule["name"]
        name_line = index.line((*base, "name"))
        if name in names:
            issues.append(
                PolicyIssue(name_line, _pointer((*base, "name")), f"duplicate rule name {name!r} (first on line {names[name]})")
            )
        else:
            names[name] = name_line
        pattern = rule["match"].get("dag_id_pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                where = (*base, "match", "dag_id_pattern")
                issues.append(
                    PolicyIssue(index.line(where), _pointer(where), f"dag_id_pattern is not a valid regular expression: {exc}")
                )
        if rule["match"].get("aliases") and not rule["match"].get("models"):
            where = (*base, "match", "aliases")
            issues.append(
                PolicyIssue(
                    index.line(where),
                    _pointer(where),
                    "aliases needs models: it narrows which promotions of those models the rule governs",
                )
            )
        if not any(rule.get(k) for k in ("required_gates", "thresholds", "approval", "trusted_keys")):
            issues.append(
                PolicyIssue(
                    index.line(base),
                    _pointer(base),
                    f"rule {name!r} requires nothing: give it required_gates, thresholds, approval or trusted_keys",
                )
            )
        for j, gate in enumerate(rule.get("accept_warned") or ()):
            if gate == APPROVAL_GATE:
                where = (*base, "accept_warned", j)
                issues.append(PolicyIssue(index.line(where), _pointer(where), f"{gate} has no incomplete verdict to accept"))
        approval = rule.get("approval") or {}
        reviewers = approval.get("reviewers")
        required = approval.get("required_approvals")
        if reviewers is not None and required is not None and required > len(reviewers):
            where = (*base, "approval", "required_approvals")
            issues.append(
                PolicyIssue(
                    index.line(where),
                    _pointer(where),
                    f"required_approvals is {required} but the reviewer group has only {len(reviewers)} member(s)",
                )
            )
    return issues


def _build_rule(i: int, item: Mapping[str, Any], index: _LineIndex, base_dir: Path) -> Rule:
    match = item["match"]
    gates = item.get("required_gates") or {}
    approval = item.get("approval") or {}
    thresholds = {
        gate: MappingProxyType({k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        for gate, values in (item.get("thresholds") or {}).items()
    }
    keys = tuple(
        str(Path(p).expanduser() if Path(p).expanduser().is_absolute() else (base_dir / Path(p).expanduser()).resolve())
        for p in item.get("trusted_keys") or ()
    )
    return Rule(
        name=str(item["name"]),
        match=Match(
            tags=tuple(match.get("tags") or ()),
            owners=tuple(match.get("owners") or ()),
            dag_id_pattern=match.get("dag_id_pattern"),
            models=tuple(match.get("models") or ()),
            aliases=tuple(match.get("aliases") or ()),
        ),
        register_gates=tuple(gates.get(STEP_REGISTER) or ()),
        promote_gates=tuple(gates.get(STEP_PROMOTE) or ()),
        thresholds=MappingProxyType(thresholds),
        approval=Approval(
            required_approvals=approval.get("required_approvals"),
            reviewers=tuple(approval["reviewers"]) if "reviewers" in approval else None,
            separation_of_duties=approval.get("separation_of_duties"),
        ),
        trusted_keys=keys,
        allowed_operators=tuple(item.get("allowed_operators") or ()),
        accept_warned=tuple(item.get("accept_warned") or ()),
        description=str(item.get("description", "")),
        line=index.line(("rules", i)),
    )


__all__ = [
    "APPROVAL_KINDS",
    "GATE_NAMES",
    "STEPS",
    "STEP_GATES",
    "THRESHOLD_KINDS",
    "Approval",
    "Match",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "Rule",
    "accepted_warned",
    "configured_policy_path",
    "load_configured_policy",
    "load_policy",
    "parse_policy",
    "policy_digest",
    "schema",
    "schema_text",
]
