"""Differentially private evidence: statistics about sensitive data are released through OpenDP.

When the policy's ``sensitive_data`` section (:mod:`airflow_mlsecops.privacy.sensitive`) marks a
subject of a gate's result as sensitive, :func:`release` rewrites the result before it is recorded:

* the verdict, the finding ids and severities, the subjects, the policy and what was not performed
  stay exact (the verdict is computed on the exact data, and only what is written is noised);
* each statistic the table :data:`GATE_STATISTICS` knows is released with OpenDP's Laplace
  mechanism (``make_laplace``: discrete Laplace on integers), the per-release epsilon split evenly
  across the released fields (sequential composition) and each field's share recorded:

  - ``count``: a row count, sensitivity 1, noised and clamped at 0;
  - ``share``: a share of the rows, released as a noised count over the released row count,
    clamped to [0, 1];
  - ``score``: a statistic in [0, 1] with no better per-row bound (a drift distance, a KS
    statistic), clamped and noised with sensitivity 1 (honest, and noisy at small epsilon);
  - ``histogram``: counts per bin (PII per column and type, unexpected values per expectation),
    noised together with L1 sensitivity = the number of bins a row can touch;
  - ``public``: configuration or decision-level fields (thresholds, formats, column roles, the
    per-column drift flags), copied;
  - ``copy``: a field that repeats a released one (``details/rows_total`` = ``metrics/rows_total``);

* everything else is **withheld** (fail closed: an unknown statistic is never released in the
  clear): unknown metrics and details, the evidence files (GX's result, the integrity, PII,
  drift and anomaly reports), row positions, and finding messages and summaries that embed
  exact values (they are rewritten from the finding id, the verdict and the column);
* ``details["dp_release"]`` records the mechanism, epsilon, delta, every released field, the
  withheld ones, the library version and the budget (:mod:`airflow_mlsecops.privacy.budget`).
  A release the budget refuses withholds every statistic (``dp_release["refused"]`` says why);
  the verdict never changes.

>>> from airflow_mlsecops.privacy.sensitive import EvidencePrivacy
>>> budget = MemoryBudget()
>>> privacy = EvidencePrivacy(epsilon_per_release=1.0, total_epsilon=1.0)
>>> # released = release(outcome, privacy, budget, datasets=["loans@sha256:..."], sensitive_name="loans")
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, GateResult
from airflow_mlsecops.exceptions import MLSecOpsError
from airflow_mlsecops.privacy.budget import BudgetSpend, dataset_key

if TYPE_CHECKING:
    from airflow_mlsecops.gates.base import GateOutcome
    from airflow_mlsecops.privacy.sensitive import EvidencePrivacy, SensitiveData

PUBLIC = "public"
COUNT = "count"
SHARE = "share"
SCORE = "score"
COPY = "copy"
HISTOGRAM = "histogram"

MECHANISM = "laplace"
_MECHANISM_TEXT = "laplace (OpenDP make_laplace: discrete Laplace on integers, Laplace on floats clamped to [0, 1])"


@dataclass(frozen=True)
class Spec:
    """How one field is released. ``of``: the metric a ``share`` divides by, or the field a ``copy`` repeats."""

    kind: str
    of: str | None = None


P, C, S = Spec(PUBLIC), Spec(COUNT), Spec(SCORE)


def _share(of: str) -> Spec:
    return Spec(SHARE, of)


def _copy(of: str) -> Spec:
    return Spec(COPY, of)


#: A histogram a gate's evidence file holds: ``(name, {bin: count}, L1 sensitivity)``.
Histogram = tuple[str, dict[str, int], int]


@dataclass(frozen=True)
class GateStatistics:
    """Which fields of a gate's result are statistics about its data, and how each is released.

    :param rows: the metric holding the number of rows (the denominator of shares).
    :param fields: ``metrics/<name>`` and ``details/<path>`` patterns (``*`` matches one key or
        list index); the first pattern matching a field or one of its parents decides.
    :param histograms: counts read from the gate's evidence files, released as histograms into
        ``details/<name>``.
    :param finding_text: the exact-free message of a finding (default: from its id and verdict).
    """

    rows: str
    fields: Mapping[str, Spec]
    histograms: Callable[[Mapping[str, bytes]], list[Histogram]] | None = None
    finding_text: Callable[[Finding], str] | None = None


def _json_file(files: Mapping[str, bytes], name: str) -> Any:
    import json

    try:
        return json.loads(files[name])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def _pii_histograms(files: Mapping[str, bytes]) -> list[Histogram]:
    report = _json_file(files, "pii_report.json")
    counts: dict[str, int] = {}
    columns = report.get("columns") if isinstance(report, Mapping) else None
    for column, info in (columns or {}).items():
        types = info.get("types") if isinstance(info, Mapping) else None
        for pii_type, found in (types or {}).items():
            if isinstance(found, Mapping) and isinstance(found.get("count"), int):
                counts[f"{column}/{pii_type}"] = int(found["count"])
    # one row adds at most one to each (column, type) cell
    return [("pii_counts", counts, max(1, len(counts)))] if counts else []


def _gx_histograms(files: Mapping[str, bytes]) -> list[Histogram]:
    raw = _json_file(files, "gx_validation_result.json")
    counts: dict[str, int] = {}
    for index, item in enumerate(raw.get("results", []) if isinstance(raw, Mapping) else []):
        unexpected = (item.get("result") or {}).get("unexpected_count") if isinstance(item, Mapping) else None
        if isinstance(unexpected, int) and not isinstance(unexpected, bool):
            config = item.get("expectation_config") or {}
            column = (config.get("kwargs") or {}).get("column")
            counts[f"{index + 1}:{config.get('type')}" + (f"/{column}" if column else "")] = unexpected
    # one row is unexpected at most once per expectation
    return [("unexpected_counts", counts, max(1, len(counts)))] if counts else []


_EXPECTATION_HEAD = re.compile(r"^(?P<head>.*?\)) (?P<rest>holds|does not hold|could not be evaluated)")


def _expectation_text(finding: Finding) -> str:
    """``expect_x({"column": "age"}) does not hold``: the suite's own words, never what was observed."""
    match = _EXPECTATION_HEAD.match(finding.message)
    if match is None:
        return _default_text(finding)
    return f"{match['head']} {match['rest']} (observed values withheld: sensitive data)"


def _default_text(finding: Finding) -> str:
    return f"{finding.id} {'holds' if finding.passed else 'does not hold'} (exact values withheld: sensitive data)"


_INTEGRITY_CHECK_METRIC = {
    "integrity.schema": "schema_changes",
    "integrity.identifiers": "identifier_problems",
    "integrity.non_finite": "non_finite_share",
    "integrity.formula_injection": "formula_share",
    "integrity.label_shift": "label_tvd",
    "integrity.class_set": "new_classes",
    "integrity.duplicates": "duplicate_excess",
    "integrity.near_duplicates": "near_duplicate_excess",
    "integrity.out_of_range": "out_of_range_share",
    "integrity.feature_shift": "feature_shift_max",
    "integrity.label_flips": "label_flip_share",
}

#: The statistics each data gate writes, and how each is released. A gate not here whose subject is
#: sensitive keeps its verdict and finding ids and nothing else (:data:`NO_STATISTICS` excepted).
GATE_STATISTICS: dict[str, GateStatistics] = {
    gate_names.DATA_VALIDATION: GateStatistics(
        rows="rows",
        fields={
            "metrics/rows": C,
            "metrics/expectations": P,  # the suite's size
            "metrics/expectations_failed": P,  # what the findings' verdicts say
            "metrics/success_percent": P,
            "metrics/role_expectations": P,  # expectations the column roles added to the suite
            "details/suite_name": P,
            "details/engine": P,
            "details/column_roles": P,
            "details/format": P,
            "details/result_format": P,
        },
        histograms=_gx_histograms,
        finding_text=_expectation_text,
    ),
    gate_names.DATA_INTEGRITY: GateStatistics(
        rows="rows",
        fields={
            "metrics/rows": C,
            "metrics/reference_rows": C,
            "metrics/checks_failed": P,
            "metrics/checks_skipped": P,
            "metrics/schema_changes": P,  # columns of the header, named by the schema finding
            "metrics/formula_headers": P,
            "metrics/duplicate_share": _share("rows"),
            "metrics/near_duplicate_share": _share("rows"),
            "metrics/non_finite_share": _share("rows"),
            "metrics/formula_share": _share("rows"),
            "metrics/out_of_range_share": _share("rows"),
            "metrics/identifier_problems": C,
            "metrics/labels_missing": C,
            "metrics/new_classes": C,
            "metrics/missing_classes": C,
            # label_tvd, feature_shift_max, the excess and label-flip estimates, the p-values: no
            # per-row bound better than their range, so noise at any useful epsilon drowns them; they
            # are withheld and the check's status (exact, like the verdict) says whether each held
            "details/format": P,
            "details/reference_format": P,
            "details/label_column": P,
            "details/random_state": P,
            "details/column_roles": P,
            "details/checks/*/status": P,
            "details/checks/*/threshold": P,
            "details/checks/*/rows_total": C,
            **{f"details/checks/{check}/value": _copy(f"metrics/{metric}") for check, metric in _INTEGRITY_CHECK_METRIC.items()},
        },
    ),
    gate_names.PII_SCAN: GateStatistics(
        rows="rows_scanned",
        fields={
            "metrics/rows_scanned": C,
            "metrics/rows_total": C,
            "metrics/sampled": P,
            "metrics/columns_scanned": P,
            "metrics/pii_columns": P,  # the columns named by the findings
            "metrics/pii_columns_not_allowed": P,
            "metrics/low_confidence_findings": P,
            "metrics/column_names_with_pii": P,
            "details/format": P,
            "details/rows_total": _copy("metrics/rows_total"),
            "details/rows_scanned": _copy("metrics/rows_scanned"),
            "details/sampled": P,
            "details/max_rows": P,
            "details/sample_seed": P,
            "details/types": P,
            "details/pii_columns": P,
            "details/columns_not_allowed": P,
            "details/allow_columns_missing": P,
            "details/numeric_columns_scanned": P,
            "details/columns_skipped": P,
        },
        histograms=_pii_histograms,
    ),
    gate_names.DRIFT: GateStatistics(
        rows="rows_current",
        fields={
            # which columns drifted is what the verdict is made of: exact, like the verdict
            "metrics/columns": P,
            "metrics/drifted_columns": P,
            "metrics/drifted_share": P,
            "metrics/value_drifted_columns": P,
            "metrics/missing_share_drifted_columns": P,
            "metrics/severely_drifted_columns": P,
            "metrics/dataset_drift": P,
            "metrics/features_missing": P,
            "metrics/columns_excluded": P,
            "metrics/sampled_reference": P,
            "metrics/sampled_current": P,
            "metrics/rows_reference": C,
            "metrics/rows_current": C,
            "details/dataset_test": P,
            "details/columns/*/column": P,
            "details/columns/*/method": P,
            "details/columns/*/threshold": P,
            "details/columns/*/drift_when": P,
            "details/columns/*/status": P,
            "details/columns/*/drifted": P,
            "details/columns/*/severe": P,
            "details/columns/*/score": S,
            "details/columns_truncated": P,
            "details/missing_share_changed/*/column": P,
            "details/missing_share_changed/*/drifted": P,
            "details/missing_share_changed/*/severe": P,
            "details/columns_not_checked": P,
            "details/features_missing_from_current": P,
            "details/column_roles": P,
            "details/sampling/max_rows": P,
            "details/sampling/random_state": P,
            "details/sampling/seed_source": P,
            "details/sampling/sampled_reference": P,
            "details/sampling/sampled_current": P,
            "details/sampling/rows_reference": _copy("metrics/rows_reference"),
            "details/sampling/rows_current": _copy("metrics/rows_current"),
            "details/formats": P,
            "details/html_report": P,
            "details/model": P,
        },
    ),
    gate_names.INPUT_ANOMALY: GateStatistics(
        rows="rows",
        fields={
            "metrics/rows": C,
            "metrics/flagged_rows": C,
            "metrics/flagged_share": _share("rows"),
            "metrics/off_distribution_share": _share("rows"),
            "metrics/boundary_share": _share("rows"),
            "metrics/non_finite_rows": C,
            "metrics/duplicate_rows": C,
            "metrics/near_duplicate_rows": C,
            "metrics/repeated_share": _share("rows"),
            "metrics/share_*": _share("rows"),
            "details/thresholds": P,  # the detector's, fitted on the training data it ships with
            "details/scores": P,
            "details/flagged_rows_truncated": P,
            "details/detector": P,
            "details/target_fpr": P,
            "details/model": P,
        },
    ),
}

#: Gates whose results hold no statistics about the rows of their subjects (digests, sizes,
#: signatures, provenance): recorded as they are, with no budget spent.
NO_STATISTICS: frozenset[str] = frozenset(
    {
        gate_names.DATASET_PROVENANCE,
        gate_names.PROVENANCE_VERIFICATION,
        gate_names.MODEL_SIGNING,
        gate_names.MODEL_PROVENANCE,
        gate_names.MODEL_SIGNATURE_VERIFICATION,
        gate_names.MODEL_REGISTRATION,
        gate_names.MODEL_PROMOTION,
        gate_names.MODEL_ROLLBACK,
        gate_names.TRAINING_PRIVACY,  # judges the DP guarantee a training run declares, not rows
    }
)

#: Always kept: what the verdict itself says (``not_performed`` makes a result ``incomplete``).
_ALWAYS_PUBLIC = ("details/not_performed",)


class Budget(Protocol):
    """What :func:`release` spends from (:class:`~airflow_mlsecops.privacy.budget.BudgetLedger`, :class:`MemoryBudget`)."""

    def spend(self, datasets: Sequence[str], epsilon: float, *, total: float, gate: str | None = None) -> BudgetSpend: ...

    def spent(self, dataset: str) -> float: ...


class MemoryBudget:
    """A budget kept in memory (one process): for engine tests and one-off runs, never persistent."""

    def __init__(self) -> None:
        self._spent: dict[str, int] = {}
        self._lock = threading.Lock()

    def spend(self, datasets: Sequence[str], epsilon: float, *, total: float, gate: str | None = None) -> BudgetSpend:
        from airflow_mlsecops.privacy.budget import MICRO, to_micro

        keys, amount, limit = sorted(set(datasets)), to_micro(epsilon), round(total * MICRO)
        with self._lock:
            if any(self._spent.get(k, 0) + amount > limit for k in keys):
                return BudgetSpend(False, epsilon, total, {k: self._spent.get(k, 0) / MICRO for k in keys})
            for key in keys:
                self._spent[key] = self._spent.get(key, 0) + amount
            return BudgetSpend(True, epsilon, total, {k: self._spent[k] / MICRO for k in keys})

    def spent(self, dataset: str) -> float:
        from airflow_mlsecops.privacy.budget import MICRO

        return self._spent.get(dataset, 0) / MICRO


# ------------------------------------------------------------------------------------------------
# Walking a result: every field, classified by the table


def _match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    if len(pattern) > len(path):
        return False
    for want, have in zip(pattern, path, strict=False):
        if want == "*" or want == have:
            continue
        if want.endswith("*") and have.startswith(want[:-1]):
            continue
        return False
    return True


def _spec_for(path: Sequence[str], table: Mapping[str, Spec]) -> tuple[Spec, tuple[str, ...]] | None:
    """The spec of ``path`` (or of a parent it lies in) and the pattern that matched; ``None``: not in the table."""
    for pattern, spec in table.items():
        segments = tuple(pattern.split("/"))
        # a public pattern covers everything under it; any other applies to its own field only
        if _match(segments, path) and (len(segments) == len(path) or spec.kind == PUBLIC):
            return spec, segments
    return None


def _display(path: Iterable[str]) -> str:
    return "/".join(path)


def _generic(path: Sequence[str]) -> str:
    """The path with list indices as ``*`` (so a withheld field is listed once, not once per column)."""
    return "/".join("*" if part.isdigit() else part for part in path)


@dataclass
class _Query:
    path: tuple[str, ...]
    kind: str
    value: Any
    of: str | None = None
    sensitivity: int = 1
    released: Any = None
    epsilon: float = 0.0
    scale: float = 0.0


@dataclass
class _Plan:
    """What a release will write: the new tree with placeholders, the queries, the withheld paths."""

    queries: list[_Query] = field(default_factory=list)
    copies: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def _plan_tree(value: Any, path: tuple[str, ...], table: Mapping[str, Spec], plan: _Plan) -> Any:
    """A copy of ``value`` holding public fields, placeholders for released ones, nothing withheld."""
    if _display(path) in _ALWAYS_PUBLIC:
        return value
    found = _spec_for(path, table)
    if found is not None and found[0].kind == PUBLIC:
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            kept = _plan_tree(item, (*path, str(key)), table, plan)
            if kept is not _WITHHELD:
                out[str(key)] = kept
        return out if out or not value else _WITHHELD
    if isinstance(value, list):
        items = [_plan_tree(item, (*path, str(i)), table, plan) for i, item in enumerate(value)]
        kept_items = [item for item in items if item is not _WITHHELD]
        return kept_items if kept_items or not value else _WITHHELD
    if found is None:
        plan.withheld.append(_generic(path))
        return _WITHHELD
    spec = found[0]
    if value is None:
        return None  # nothing measured: nothing to protect
    if spec.kind == COPY:
        plan.copies.append((path, str(spec.of)))
        return _Placeholder(path)
    if not _is_number(value):
        plan.withheld.append(_generic(path))
        return _WITHHELD
    plan.queries.append(_Query(path, spec.kind, value, of=spec.of))
    return _Placeholder(path)


class _Marker:
    def __repr__(self) -> str:
        return "<withheld>"


_WITHHELD: Any = _Marker()


@dataclass(frozen=True)
class _Placeholder:
    path: tuple[str, ...]


# ------------------------------------------------------------------------------------------------
# OpenDP


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


@functools.cache  # importlib.metadata parses the package's metadata: milliseconds a lookup
def opendp_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("opendp")


class _Mechanisms:
    """OpenDP Laplace measurements at a given epsilon, checked with OpenDP's own privacy map."""

    #: Measurements are immutable: one per (kind, sensitivity, epsilon) serves every release of the process.
    _cache: ClassVar[dict[tuple[str, int, float], tuple[Any, float]]] = {}

    def __init__(self) -> None:
        self.dp = _opendp()

    def build(self, kind: str, sensitivity: int, epsilon: float) -> tuple[Any, float]:
        key = (kind, sensitivity, epsilon)
        if key in self._cache:
            return self._cache[key]
        dp = self.dp
        d_in: float
        if kind == "int":
            domain, metric, d_in = dp.atom_domain(T="i64"), dp.absolute_distance(T="i64"), sensitivity
        elif kind == "vector":
            domain, metric, d_in = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), sensitivity
        else:
            domain, metric, d_in = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), float(sensitivity)
        scale = sensitivity / epsilon
        for _ in range(60):
            measurement = dp.m.make_laplace(domain, metric, scale)
            if measurement.map(d_in) <= epsilon:
                self._cache[key] = (measurement, scale)
                return measurement, scale
            scale *= 1.000001
        raise MLSecOpsError(f"OpenDP could not calibrate a Laplace mechanism to epsilon {epsilon}")


def _count(value: Any) -> int:
    return max(0, round(float(value)))


# ------------------------------------------------------------------------------------------------
# The release


def release(
    outcome: GateOutcome,
    privacy: EvidencePrivacy,
    budget: Budget | None,
    *,
    datasets: Sequence[str],
    sensitive_name: str,
    refused: str | None = None,
) -> GateOutcome:
    """``outcome`` with its statistics about sensitive data released through OpenDP or withheld.

    :param outcome: the gate's outcome (its result and evidence files).
    :param privacy: the policy's epsilon per release, total budget and delta.
    :param budget: where the epsilon is spent (:class:`~airflow_mlsecops.privacy.budget.BudgetLedger`);
        ``None`` with ``refused``: withhold every statistic.
    :param datasets: the budget keys of the sensitive data sets the result is about
        (:func:`~airflow_mlsecops.privacy.budget.dataset_key`); each is charged.
    :param sensitive_name: the policy entry's name, for the texts.
    :param refused: release nothing and say why (the budget ledger or OpenDP was unavailable).
    :returns: the outcome with the same verdict, finding ids, subjects and policy; statistics noised
        or withheld; ``details["dp_release"]`` saying which; no evidence files but statements.
    """
    result = outcome.result
    if result.gate in NO_STATISTICS:
        return outcome
    table = GATE_STATISTICS.get(result.gate)
    fields = dict(table.fields) if table else {}
    plan = _Plan()
    metrics_tree = _plan_tree(dict(result.metrics), ("metrics",), fields, plan)
    details_tree = _plan_tree({k: v for k, v in result.details.items() if k != "dp_release"}, ("details",), fields, plan)
    metrics_tree = {} if metrics_tree is _WITHHELD else metrics_tree
    details_tree = {} if details_tree is _WITHHELD else details_tree
    histograms = table.histograms(outcome.files) if table and table.histograms else []
    rows_path = ("metrics", table.rows) if table else None
    # a share is a count over the released row count: release the rows if the table did not
    by_path = {q.path: q for q in plan.queries}
    for query in plan.queries:
        if query.kind == SHARE:
            denominator = ("metrics", str(query.of))
            if denominator not in by_path:
                plan.withheld.append(_generic(query.path))
                query.kind = "withheld"
    queries = [q for q in plan.queries if q.kind != "withheld"]
    for name, counts, sensitivity in histograms:
        queries.append(_Query(("details", name), HISTOGRAM, counts, sensitivity=sensitivity))
    withheld_files = [f"files/{name}" for name in sorted(outcome.files)]
    dp_release: dict[str, Any] = {
        "mechanism": _MECHANISM_TEXT,
        "epsilon": 0.0,
        "delta": 0.0,
        "delta_allowed": privacy.delta,
        "neighbouring": "data sets that differ in one row (added or removed)",
        "sensitive_data": sensitive_name,
        "fields": [],
        "withheld": sorted(set(plan.withheld)) + withheld_files,
        "library": "opendp (not used)",
        "budget": {"spent": None, "total": privacy.total_epsilon, "dataset": ", ".join(sorted(datasets))},
    }
    if refused is None and queries:
        refused = _spend(budget, privacy, datasets, result.gate, dp_release)
    if refused is None and queries:
        try:
            _noise(queries, privacy.epsilon_per_release, by_path, rows_path)
        except ImportError as exc:
            refused = f"OpenDP unavailable ({exc}): install the privacy extra"
        except Exception as exc:  # noqa: BLE001 - whatever OpenDP raised, nothing exact is written
            refused = f"OpenDP could not release the statistics: {type(exc).__name__}: {exc}"
        else:
            dp_release["epsilon"] = privacy.epsilon_per_release
            dp_release["library"] = f"opendp {opendp_version()}"
    if refused is not None:
        dp_release["refused"] = refused
        dp_release["withheld"] = sorted(
            {*dp_release["withheld"], *(_generic(q.path) for q in queries), *(_generic(p) for p, _ in plan.copies)}
        )
        metrics_tree = _drop_placeholders(metrics_tree)
        details_tree = _drop_placeholders(details_tree)
    else:
        released = {q.path: q.released for q in queries}
        for path, source in plan.copies:
            source_path = tuple(source.split("/"))
            if source_path in released:
                released[path] = released[source_path]
                dp_release["fields"].append({"field": _display(path), "kind": COPY, "of": source, "epsilon": 0.0})
            else:
                dp_release["withheld"].append(_generic(path))
        dp_release["fields"] = [_field_record(q) for q in queries] + dp_release["fields"]
        metrics_tree = _fill(metrics_tree, released)
        details_tree = _fill(details_tree, released)
        for query in queries:
            if query.kind == HISTOGRAM:
                details_tree[query.path[1]] = query.released
        dp_release["withheld"] = sorted(set(dp_release["withheld"]))
    details_tree["dp_release"] = dp_release
    findings = tuple(_finding(f, table) for f in result.findings)
    metrics = {str(k): float(v) for k, v in metrics_tree.items() if _is_number(v)}
    summary = _summary(result, sensitive_name, dp_release)
    tools = {**result.tool_versions, "opendp": dp_release["library"].removeprefix("opendp ")}
    new = dataclasses.replace(
        result, findings=findings, metrics=metrics, details=details_tree, summary=summary, tool_versions=tools
    )
    return dataclasses.replace(outcome, result=new, files={})


def _spend(
    budget: Budget | None, privacy: EvidencePrivacy, datasets: Sequence[str], gate: str, dp_release: dict[str, Any]
) -> str | None:
    """Spend one release's epsilon; the reason it was refused, or ``None``."""
    if budget is None:
        return "no privacy budget ledger"
    try:
        spend = budget.spend(datasets, privacy.epsilon_per_release, total=privacy.total_epsilon, gate=gate)
    except MLSecOpsError as exc:
        return f"privacy budget unavailable: {exc}"
    spent = max(spend.spent.values()) if spend.spent else 0.0
    dp_release["budget"]["spent"] = spent
    if not spend.granted:
        return f"budget exhausted: {spent} of {privacy.total_epsilon} spent"
    return None


def _noise(
    queries: list[_Query], epsilon: float, by_path: Mapping[tuple[str, ...], _Query], rows_path: tuple[str, ...] | None
) -> None:
    """Release every query at ``epsilon / len(queries)`` (sequential composition)."""
    mechanisms = _Mechanisms()
    share_eps = epsilon / len(queries)
    for query in queries:
        query.epsilon = share_eps
    # counts first: shares divide by the released row count
    for query in sorted(queries, key=lambda q: q.kind != COUNT):
        if query.kind == COUNT:
            measurement, query.scale = mechanisms.build("int", 1, share_eps)
            query.released = max(0, int(measurement(_count(query.value))))
        elif query.kind == SHARE:
            denominator = by_path[("metrics", str(query.of))]
            exact_rows = _count(denominator.value)
            measurement, query.scale = mechanisms.build("int", 1, share_eps)
            noisy = int(measurement(_count(float(query.value) * exact_rows)))
            query.released = min(1.0, max(0.0, noisy / max(1, int(denominator.released))))
        elif query.kind == SCORE:
            measurement, query.scale = mechanisms.build("float", 1, share_eps)
            query.released = min(1.0, max(0.0, float(measurement(min(1.0, max(0.0, float(query.value)))))))
        elif query.kind == HISTOGRAM:
            bins = list(query.value)
            measurement, query.scale = mechanisms.build("vector", query.sensitivity, share_eps)
            noisy = measurement([_count(query.value[b]) for b in bins])
            query.released = {b: max(0, int(n)) for b, n in zip(bins, noisy, strict=True)}
            if all("/" in b for b in bins):  # "column/type": nest as {column: {type: count}}
                nested: dict[str, dict[str, int]] = {}
                for b, n in query.released.items():
                    outer, inner = b.split("/", 1)
                    nested.setdefault(outer, {})[inner] = n
                query.released = nested
    for query in queries:  # keep the types the evidence had: a float metric stays a float
        if isinstance(query.value, float) and query.kind == COUNT:
            query.released = float(query.released)


def _field_record(query: _Query) -> dict[str, Any]:
    record: dict[str, Any] = {
        "field": _display(query.path),
        "kind": query.kind,
        "epsilon": query.epsilon,
        "sensitivity": query.sensitivity,
        "scale": query.scale,
    }
    if query.kind == SHARE:
        record["of"] = f"metrics/{query.of}"
    return record


def _fill(tree: Any, released: Mapping[tuple[str, ...], Any]) -> Any:
    if isinstance(tree, _Placeholder):
        return released.get(tree.path, _WITHHELD)
    if isinstance(tree, dict):
        out = {k: _fill(v, released) for k, v in tree.items()}
        return {k: v for k, v in out.items() if v is not _WITHHELD}
    if isinstance(tree, list):
        return [v for v in (_fill(v, released) for v in tree) if v is not _WITHHELD]
    return tree


def _drop_placeholders(tree: Any) -> Any:
    return _fill(tree, {})


_COLUMN_LOCATION = re.compile(r"^columns? [^\n]{1,300}$")


def _finding(finding: Finding, table: GateStatistics | None) -> Finding:
    """The finding with its id, severity and verdict, and a message and location free of exact values."""
    text = (table.finding_text if table and table.finding_text else _default_text)(finding)
    # "column age" names the schema; "rows 500, 501 ..." would name rows: only the first is kept
    location = finding.location if finding.location and _COLUMN_LOCATION.match(finding.location) else None
    return dataclasses.replace(finding, message=text, location=location)


def _summary(result: GateResult, name: str, dp_release: Mapping[str, Any]) -> str:
    failed = [f.id for f in result.failed_findings]
    ids = list(dict.fromkeys(failed))
    listed = ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
    head = f"{result.verdict.value}: {len(failed)} of {len(result.findings)} finding(s) failed" + (f" ({listed})" if ids else "")
    how = (
        f"statistics withheld ({dp_release['refused']})"
        if dp_release.get("refused")
        else f"statistics released with differential privacy (epsilon {dp_release['epsilon']}) or withheld"
    )
    tail = ""
    marker = "; INCOMPLETE, not performed: "
    if marker in result.summary:  # finding ids only (run_gate writes it)
        tail = marker + result.summary.split(marker, 1)[1]
    return f"{head}; {how}: sensitive data {name!r}{tail}"


# ------------------------------------------------------------------------------------------------
# The policy's side: which results are about sensitive data


def sensitive_datasets(entries: Sequence[SensitiveData], result: GateResult) -> tuple[SensitiveData, list[str]] | None:
    """The strictest entry governing ``result``'s subjects and the budget key of each sensitive one;
    ``None`` when no subject is sensitive or no matching entry asks for private evidence."""
    from airflow_mlsecops.privacy.sensitive import sensitive_data_for

    keys: list[str] = []
    for subject in result.subjects:
        entry = sensitive_data_for(entries, [subject.name], [subject.sha256])
        if entry is not None and entry.evidence is not None:
            keys.extend(dataset_key(part.strip(), subject.sha256) for part in entry.name.split(", "))
    if not keys:
        return None
    merged = sensitive_data_for(entries, [s.name for s in result.subjects], [s.sha256 for s in result.subjects])
    if merged is None or merged.evidence is None:
        return None
    return merged, sorted(set(keys))


def protect(outcome: GateOutcome, entries: Sequence[SensitiveData], ledger_url: str | None) -> GateOutcome:
    """``outcome`` as it may be recorded: released through :func:`release` when a subject is sensitive,
    unchanged otherwise. Used by the gate operators and the CLI before recording.

    A budget database that cannot be opened withholds every statistic (never the exact values).
    """
    found = sensitive_datasets(entries, outcome.result)
    if found is None or outcome.result.gate in NO_STATISTICS:
        return outcome
    entry, keys = found
    assert entry.evidence is not None  # sensitive_datasets returns only entries that ask for private evidence
    refused: str | None = None
    budget: Budget | None = None
    if ledger_url is None:
        refused = "no privacy budget ledger configured"
    else:
        from airflow_mlsecops.privacy.budget import BudgetLedger

        try:
            budget = BudgetLedger(ledger_url)
        except MLSecOpsError as exc:
            refused = f"privacy budget unavailable: {exc}"
    try:
        return release(outcome, entry.evidence, budget, datasets=keys, sensitive_name=entry.name, refused=refused)
    finally:
        dispose = getattr(budget, "dispose", None)
        if callable(dispose):
            dispose()


def policy_entries(policy: object) -> tuple[SensitiveData, ...]:
    """The ``sensitive_data`` entries of a loaded policy (empty when it has none)."""
    entries = getattr(policy, "sensitive_data", ()) or ()
    return tuple(entries)
