"""Data validation gate: a Great Expectations suite over a data file, failing closed.

>>> from airflow_mlsecops.gates.data_validation import validate_data
>>> outcome = validate_data("train.csv", "suite.json")     # doctest: +SKIP
>>> outcome.verdict                                         # doctest: +SKIP
<Verdict.PASSED: 'passed'>

The suite is Great Expectations' own JSON (or YAML) form, given as a file path, a dict or a GX
``ExpectationSuite``::

    {"name": "train", "expectations": [{"type": "expect_column_values_to_not_be_null",
                                        "kwargs": {"column": "age"}}]}

GX 1.x silently drops an expectation whose ``type`` it does not know; this gate refuses such a
suite instead, naming the unknown type, and refuses an empty suite. An expectation that cannot be
evaluated (a column that does not exist) is a failed finding. The evidence is GX's result at
SUMMARY level (a few KiB; never COMPLETE, which would copy every bad value into the evidence),
with GX's sample of offending values removed unless ``include_unexpected_values=True``: those
values may be personal data, and counts and shares are enough to judge.

**A repeated column name** is an ``error`` verdict naming the columns: GX would judge the first
copy while other loaders keep the last, so a poisoned second copy would pass
(:func:`airflow_mlsecops.io.tabular.repeated_labels`).

**An empty batch** (a header-only CSV, a zero-row Parquet file) is an ``error`` verdict, never a
pass, unless ``allow_empty=True``: then the suite still runs (a row-count expectation still
rejects) and finding ``data-validation.empty-batch`` says the batch was empty
(:mod:`airflow_mlsecops.gates.empty_data`).

**Inputs are local.** The engine reads a local file or a table loaded already; the operator and
the CLI load ``s3://``, ``runs:/`` and ``models:/`` data first with
:func:`airflow_mlsecops.io.locations.load_table_at` (the evidence names it by its URI). When that
fails, :func:`inputs_unavailable` records the same ``error`` verdict the gate would.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.empty_data import (
    allow_empty_policy,
    check_allow_empty,
    emptiness,
    empty_batch_error,
    empty_batch_finding,
)
from airflow_mlsecops.io.locations import local_table, table_name
from airflow_mlsecops.io.tabular import duplicate_columns_error, repeated_labels

if TYPE_CHECKING:
    from airflow_mlsecops.io.tabular import LoadedTable

GATE_NAME = gate_names.DATA_VALIDATION
_UNEXPECTED_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_index_list", "partial_unexpected_counts")
_OWASP_POISONING = ("ML02:2023",)
_ATLAS_POISONING = ("AML.T0020",)


def _quiet_gx() -> None:
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def load_suite_spec(suite: Any) -> dict[str, Any]:
    """Normalise a suite (path, dict, JSON/YAML text or ``ExpectationSuite``) to its JSON form."""
    return _check_spec(_read_suite_spec(suite))


def _read_suite_spec(suite: Any) -> dict[str, Any]:
    """The suite's JSON form as given, not checked (no Great Expectations import)."""
    if isinstance(suite, (str, Path)) and not (isinstance(suite, str) and suite.lstrip().startswith("{")):
        path = Path(suite)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigurationError(f"expectation suite {path} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"expectation suite {path} cannot be read: {exc}") from exc
        spec = _parse_suite_text(text, str(path))
    elif isinstance(suite, str):
        spec = _parse_suite_text(suite, "expectation suite")
    elif isinstance(suite, Mapping):
        spec = dict(suite)
    elif hasattr(suite, "to_json_dict"):
        spec = dict(suite.to_json_dict())
    else:
        raise ConfigurationError(
            f"an expectation suite must be a path, a dict or an ExpectationSuite, not {type(suite).__name__}"
        )
    return spec


def suite_policy(suite: Any) -> dict[str, Any]:
    """What the policy judges of a suite: ``suite_sha256``, the SHA-256 of its canonical JSON (sorted
    keys, no spaces) as given, and ``min_mostly``, the smallest ``mostly`` of its expectations (the
    share of rows each must hold for; ``1`` when not given). ``{}`` when the suite cannot be read
    (the gate then reports an ``error`` verdict). Reads no data and imports no Great Expectations:
    the policy check calls it when a DAG is parsed."""
    try:
        spec = _read_suite_spec(suite)
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    except (ConfigurationError, TypeError, ValueError):
        return {}
    out: dict[str, Any] = {"suite_sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest()}
    expectations = spec.get("expectations")
    if isinstance(expectations, list) and expectations:
        shares: list[Any] = []
        for item in expectations:
            kwargs = item.get("kwargs") if isinstance(item, Mapping) else None
            shares.append(kwargs.get("mostly", 1.0) if isinstance(kwargs, Mapping) else 1.0)
        odd = [str(v) for v in shares if isinstance(v, bool) or not isinstance(v, (int, float))]
        # a mostly that is not a number is recorded as given (text): no policy floor accepts it
        out["min_mostly"] = odd[0] if odd else min(float(v) for v in shares)
    return out


def _parse_suite_text(text: str, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{origin} is neither JSON nor YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{origin} must be a mapping with 'name' and 'expectations'")
    return data


def _check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    _quiet_gx()
    from great_expectations.expectations.registry import get_expectation_impl

    expectations = spec.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ConfigurationError("the expectation suite holds no expectations; an empty suite would pass anything")
    for index, item in enumerate(expectations):
        if not isinstance(item, Mapping) or "type" not in item:
            raise ConfigurationError(f"expectation #{index + 1} has no 'type'")
        try:
            get_expectation_impl(str(item["type"]))
        except Exception as exc:  # ExpectationNotFoundError
            raise ConfigurationError(
                f"expectation #{index + 1} has unknown type {item['type']!r}; Great Expectations would silently drop it"
            ) from exc
        if not isinstance(item.get("kwargs", {}), Mapping):
            raise ConfigurationError(f"expectation #{index + 1} ({item['type']}): 'kwargs' must be a mapping")
    spec.setdefault("name", "mlsecops-suite")
    return spec


def _exception_message(info: Mapping[str, Any]) -> str | None:
    """GX nests exception details per metric; keep the last line of the first message only."""
    if not info:
        return None
    if info.get("raised_exception") and info.get("exception_message"):
        return str(info["exception_message"]).strip().splitlines()[-1]
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception", True):
            msg = value.get("exception_message") or value.get("exception_traceback") or ""
            lines = [line for line in str(msg).strip().splitlines() if line.strip()]
            if lines:
                return lines[-1].split(": ", 1)[-1] if "Error" in lines[-1] else lines[-1]
    return None


def _evaluate(
    data: str | Path | LoadedTable,
    suite: Any,
    *,
    csv_delimiter: str | None,
    include_unexpected_values: bool,
    allow_empty: bool,
) -> Evaluation:
    """Run the suite over the data and turn GX's result into findings and evidence (the body of :func:`validate_data`)."""
    spec = load_suite_spec(suite)
    check_allow_empty(allow_empty)
    table = local_table(data, csv_delimiter=csv_delimiter)
    repeated = repeated_labels(table.frame.columns)
    if repeated:  # a file with them is refused when loaded; a frame handed over could still hold them
        raise duplicate_columns_error(f"the batch {table_name(data)}", repeated)
    empty = emptiness(table.frame)
    batch_name = f"the batch {Path(table.subject.name).name}"
    if empty and not allow_empty:
        raise empty_batch_error(batch_name, empty)
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    try:
        gx_context = gx.get_context(mode="ephemeral")
        try:
            gx_context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
        except Exception:  # noqa: BLE001 - cosmetic
            pass
        source = gx_context.data_sources.add_pandas("mlsecops")
        batch_definition = source.add_dataframe_asset("data").add_batch_definition_whole_dataframe("batch")
        batch = batch_definition.get_batch(batch_parameters={"dataframe": table.frame})
        gx_suite = ExpectationSuite(**spec)
        if len(gx_suite.expectations) != len(spec["expectations"]):
            raise GateError("Great Expectations dropped expectations from the suite; refusing to validate a partial suite")
        validation = batch.validate(gx_suite, result_format="SUMMARY")
    except GateError:
        raise
    except Exception as exc:
        raise GateError(f"Great Expectations could not validate {table_name(data)}: {type(exc).__name__}: {exc}") from exc
    raw = validation.to_json_dict()
    for item in raw.get("results", []):
        for info in dict(item.get("exception_info") or {}).values():
            if isinstance(info, dict):
                info.pop("exception_traceback", None)  # local paths and stack frames are not evidence
        if not include_unexpected_values:
            # SUMMARY keeps up to 20 offending values (and their rows) per expectation: they may be
            # personal data, so the evidence keeps counts and shares only unless asked otherwise.
            for key in _UNEXPECTED_VALUE_KEYS:
                (item.get("result") or {}).pop(key, None)
    findings: list[Finding] = []
    for item in raw.get("results", []):
        config = item.get("expectation_config", {})
        kwargs = {k: v for k, v in dict(config.get("kwargs", {})).items() if k != "batch_id"}
        column = kwargs.get("column")
        problem = _exception_message(item.get("exception_info") or {})
        res = item.get("result") or {}
        if item.get("success"):
            message = "holds"
        elif problem:
            message = f"could not be evaluated: {problem}"
        else:
            unexpected = res.get("unexpected_count")
            message = "does not hold" + (
                f": {unexpected} of {res.get('element_count')} values unexpected" if unexpected is not None else ""
            )
            if res.get("observed_value") is not None:
                message += f" (observed {res.get('observed_value')!r})"
        findings.append(
            Finding(
                id=f"expectation.{config.get('type')}",
                severity=Severity.INFO if item.get("success") else Severity.HIGH,
                message=f"{config.get('type')}({json.dumps(kwargs, sort_keys=True, default=str)}) {message}",
                location=f"column {column}" if column else None,
                atlas=() if item.get("success") else _ATLAS_POISONING,
                owasp_ml=() if item.get("success") else _OWASP_POISONING,
                passed=bool(item.get("success")),
            )
        )
    stats = raw.get("statistics", {})
    evaluated = int(stats.get("evaluated_expectations", len(findings)))
    successful = int(stats.get("successful_expectations", sum(f.passed for f in findings)))
    passed = bool(raw.get("success")) and evaluated == len(spec["expectations"]) and successful == evaluated
    summary = f"{successful}/{evaluated} expectations hold on {len(table.frame)} rows of {Path(table.subject.name).name}"
    not_performed: list[str] = []
    if empty:
        # Expectations on the values of zero rows hold vacuously: the batch was not really checked.
        finding = empty_batch_finding(GATE_NAME, batch_name, empty, checked="only the suite was run on it")
        findings.insert(0, finding)
        not_performed.append(finding.id)
        summary += f" (empty batch accepted: allow_empty=True; it {empty})"
    return Evaluation(
        passed=passed,
        not_performed=not_performed,
        summary=summary,
        subjects=[table.subject],
        findings=findings,
        metrics={
            "rows": float(len(table.frame)),
            "expectations": float(evaluated),
            "expectations_failed": float(evaluated - successful),
            "success_percent": float(stats.get("success_percent") or 0.0),
        },
        files={"gx_validation_result.json": json.dumps(raw, indent=2, sort_keys=True, default=str).encode("utf-8")},
        details={"suite_name": spec.get("name"), "format": table.format, "result_format": "SUMMARY"},
    )


def validate_data(
    data: str | Path | LoadedTable,
    suite: Any,
    *,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    include_unexpected_values: bool = False,
    allow_empty: bool = False,
) -> GateOutcome:
    """Validate the data file at ``data`` against ``suite``.

    :param data: a local CSV or Parquet file, or a table loaded already
        (:func:`airflow_mlsecops.io.locations.load_table_at` loads ``s3://``, ``runs:/`` and
        ``models:/`` files and names them by their URI).
    :param suite: the expectation suite (path, dict, JSON text or ``ExpectationSuite``).
    :param warn_only: report a failing suite as ``warned`` instead of rejecting.
    :param context: the Airflow task running the gate, if any.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param include_unexpected_values: keep GX's sample of up to 20 offending values per
        expectation in the evidence. Off by default: they may be personal data.
    :param allow_empty: accept a batch with no rows (or no columns): the suite still runs and
        finding ``data-validation.empty-batch`` records it. Off by default: an empty batch is an
        ``error`` verdict, never a pass.
    """
    return run_gate(
        GATE_NAME,
        lambda: _evaluate(
            data, suite, csv_delimiter=csv_delimiter, include_unexpected_values=include_unexpected_values, allow_empty=allow_empty
        ),
        policy=_policy(suite, include_unexpected_values, allow_empty),
        warn_only=warn_only,
        distributions=("great-expectations", "pandas"),
        context=context,
    )


def inputs_unavailable(
    error: Exception,
    *,
    suite: Any,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    include_unexpected_values: bool = False,
    allow_empty: bool = False,
) -> GateOutcome:
    """The outcome of :func:`validate_data` when its data could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (a bad suite is reported first, as the gate does).

    :param error: why the data is unavailable.
    :param suite: the expectation suite, as for :func:`validate_data`; the other parameters too.
    """
    return run_gate(
        GATE_NAME,
        raising(error, check=lambda: (load_suite_spec(suite), check_allow_empty(allow_empty))),
        policy=_policy(suite, include_unexpected_values, allow_empty),
        warn_only=warn_only,
        distributions=("great-expectations", "pandas"),
        context=context,
    )


def _policy(suite: Any, include_unexpected_values: bool, allow_empty: object) -> dict[str, Any]:
    return {
        "suite": _suite_name(suite),
        **suite_policy(suite),
        "result_format": "SUMMARY",
        "unexpected_values_kept": include_unexpected_values,
        "allow_empty": allow_empty_policy(allow_empty),
    }


def _suite_name(suite: Any) -> str:
    if isinstance(suite, (str, Path)) and not str(suite).lstrip().startswith("{"):
        return str(suite)
    if isinstance(suite, Mapping):
        return str(suite.get("name", "inline"))
    return str(getattr(suite, "name", "inline"))
