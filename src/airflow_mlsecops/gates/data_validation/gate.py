"""The data validation gate's body: read the batch (pandas or Spark), run the suite and the role expectations, judge."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.columns import check_role_arguments, declared_roles, resolve_roles
from airflow_mlsecops.gates.data_validation.roles import FINDING_PREFIX, ROLE_META_KEY, RolePlan, plan_roles
from airflow_mlsecops.gates.data_validation.suite import load_suite_spec, quiet_gx, suite_name, suite_policy
from airflow_mlsecops.gates.empty_data import (
    allow_empty_policy,
    check_allow_empty,
    emptiness,
    empty_batch_error,
    empty_batch_finding,
)
from airflow_mlsecops.io.locations import local_table, table_name
from airflow_mlsecops.io.spark import DEFAULT_CONN_ID, check_engine
from airflow_mlsecops.io.tabular import LoadedTable, duplicate_columns_error, repeated_labels

if TYPE_CHECKING:
    from collections.abc import Callable

GATE_NAME = gate_names.DATA_VALIDATION
_UNEXPECTED_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_index_list", "partial_unexpected_counts")
_OWASP_POISONING = ("ML02:2023",)
_ATLAS_POISONING = ("AML.T0020",)
_DISTRIBUTIONS = {"pandas": ("great-expectations", "pandas"), "spark": ("great-expectations", "pyspark")}


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


def _run_suite(spec: dict[str, Any], plan: RolePlan, add_source: Callable[[Any], Any], frame: Any, name: str) -> dict[str, Any]:
    """Validate ``frame`` against the suite plus the role expectations; GX's SUMMARY result as JSON."""
    quiet_gx()
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    expectations = [*spec["expectations"], *plan.expectations]
    try:
        gx_context = gx.get_context(mode="ephemeral")
        try:
            gx_context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
        except Exception:  # noqa: BLE001 - cosmetic
            pass
        source = add_source(gx_context)
        batch = (
            source.add_dataframe_asset("data")
            .add_batch_definition_whole_dataframe("batch")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        gx_suite = ExpectationSuite(**{**spec, "expectations": expectations})
        if len(gx_suite.expectations) != len(expectations):
            raise GateError("Great Expectations dropped expectations from the suite; refusing to validate a partial suite")
        return dict(batch.validate(gx_suite, result_format="SUMMARY").to_json_dict())
    except GateError:
        raise
    except Exception as exc:
        raise GateError(f"Great Expectations could not validate {name}: {type(exc).__name__}: {exc}") from exc


def _finding(item: Mapping[str, Any]) -> Finding:
    config = item.get("expectation_config", {})
    kwargs = {k: v for k, v in dict(config.get("kwargs", {})).items() if k != "batch_id"}
    column = kwargs.get("column")
    role = dict(config.get("meta") or {}).get(ROLE_META_KEY)
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
    text = f"{config.get('type')}({json.dumps(kwargs, sort_keys=True, default=str)}) {message}"
    if role:
        text += f" [added by the gate for the {role} column]"
    return Finding(
        id=f"{FINDING_PREFIX if role else 'expectation.'}{config.get('type')}",
        severity=Severity.INFO if item.get("success") else Severity.HIGH,
        message=text,
        location=f"column {column}" if column else None,
        atlas=() if item.get("success") else _ATLAS_POISONING,
        owasp_ml=() if item.get("success") else _OWASP_POISONING,
        passed=bool(item.get("success")),
    )


def _judge(
    raw: dict[str, Any],
    spec: dict[str, Any],
    plan: RolePlan,
    *,
    rows: int,
    name: str,
    subjects: list[Subject],
    fmt: str,
    empty: str | None,
    include_unexpected_values: bool,
    details: dict[str, Any],
) -> Evaluation:
    """GX's result as findings, metrics and evidence; passed only if every expectation ran and held."""
    for item in raw.get("results", []):
        for info in dict(item.get("exception_info") or {}).values():
            if isinstance(info, dict):
                info.pop("exception_traceback", None)  # local paths and stack frames are not evidence
        if not include_unexpected_values:
            # SUMMARY keeps up to 20 offending values (and their rows) per expectation: they may be
            # personal data, so the evidence keeps counts and shares only unless asked otherwise.
            for key in _UNEXPECTED_VALUE_KEYS:
                (item.get("result") or {}).pop(key, None)
    findings = [_finding(item) for item in raw.get("results", [])]
    expected = len(spec["expectations"]) + len(plan.expectations)
    stats = raw.get("statistics", {})
    evaluated = int(stats.get("evaluated_expectations", len(findings)))
    successful = int(stats.get("successful_expectations", sum(f.passed for f in findings)))
    passed = bool(raw.get("success")) and evaluated == expected and successful == evaluated
    summary = f"{successful}/{evaluated} expectations hold on {rows} rows of {name}"
    if plan.expectations:
        summary += f" ({len(plan.expectations)} added for column roles)"
    if plan.missing:
        summary += f"; declared column(s) missing from the batch: {', '.join(plan.missing)}"
    not_performed: list[str] = []
    if empty:
        # Expectations on the values of zero rows hold vacuously: the batch was not really checked.
        finding = empty_batch_finding(GATE_NAME, f"the batch {name}", empty, checked="only the suite was run on it")
        findings.insert(0, finding)
        not_performed.append(finding.id)
        summary += f" (empty batch accepted: allow_empty=True; it {empty})"
    return Evaluation(
        passed=passed,
        not_performed=not_performed,
        summary=summary,
        subjects=subjects,
        findings=findings,
        metrics={
            "rows": float(rows),
            "expectations": float(evaluated),
            "expectations_failed": float(evaluated - successful),
            "role_expectations": float(len(plan.expectations)),
            "success_percent": float(stats.get("success_percent") or 0.0),
        },
        files={"gx_validation_result.json": json.dumps(raw, indent=2, sort_keys=True, default=str).encode("utf-8")},
        details={
            "suite_name": spec.get("name"),
            "format": fmt,
            "result_format": "SUMMARY",
            "column_roles": plan.to_dict(),
            **details,
        },
    )


def _evaluate(
    data: str | Path | LoadedTable,
    suite: Any,
    *,
    csv_delimiter: str | None,
    include_unexpected_values: bool,
    allow_empty: bool,
    roles: Mapping[str, Any],
    engine: str,
    spark_master: str | None,
    spark_conn_id: str | None,
) -> Evaluation:
    """Run the suite over the data and turn GX's result into findings and evidence (the body of :func:`validate_data`)."""
    spec = load_suite_spec(suite)
    check_allow_empty(allow_empty)
    check_engine(engine)
    check_role_arguments(**roles)
    options = {"include_unexpected_values": include_unexpected_values}
    if engine == "spark":
        return _evaluate_spark(data, spec, csv_delimiter, allow_empty, roles, spark_master, spark_conn_id, **options)
    table = local_table(data, csv_delimiter=csv_delimiter)
    repeated = repeated_labels(table.frame.columns)
    if repeated:  # a file with them is refused when loaded; a frame handed over could still hold them
        raise duplicate_columns_error(f"the batch {table_name(data)}", repeated)
    name = Path(table.subject.name).name
    empty = emptiness(table.frame)
    if empty and not allow_empty:
        raise empty_batch_error(f"the batch {name}", empty)
    frame = table.frame
    plan = plan_roles([str(c) for c in frame.columns], roles, spec, functools.partial(resolve_roles, frame))
    raw = _run_suite(spec, plan, lambda ctx: ctx.data_sources.add_pandas("mlsecops"), frame, table_name(data))
    return _judge(
        raw, spec, plan, rows=len(frame), name=name, subjects=[table.subject], fmt=table.format, empty=empty,
        details={"engine": "pandas"}, **options,
    )  # fmt: skip


def _evaluate_spark(
    data: str | Path | LoadedTable,
    spec: dict[str, Any],
    csv_delimiter: str | None,
    allow_empty: bool,
    roles: Mapping[str, Any],
    spark_master: str | None,
    spark_conn_id: str | None,
    *,
    include_unexpected_values: bool,
) -> Evaluation:
    """The Spark engine: hash (and snapshot) the parts, read them with Spark, validate with GX's Spark data source."""
    from airflow_mlsecops.gates.data_validation.roles import spark_roles
    from airflow_mlsecops.gates.data_validation.spark_batch import open_spark_batch
    from airflow_mlsecops.io.locations import is_remote
    from airflow_mlsecops.io.spark import resolve_master, session_master, spark_session

    if isinstance(data, LoadedTable):
        raise ConfigurationError("engine='spark' reads the data with Spark: pass its path, not a table loaded into pandas")
    location = str(data)
    if is_remote(location) and not location.startswith("s3://"):
        raise ConfigurationError(f"{location}: the Spark engine reads local paths and s3:// objects, not MLflow URIs")
    resolved = resolve_master(spark_master, conn_id=spark_conn_id)
    session = spark_session(resolved)
    master = session_master(session)
    with open_spark_batch(location, session, csv_delimiter=csv_delimiter, local_master=master.startswith("local")) as batch:
        # Not cached: building Spark's in-memory cache of a 1M-row Parquet row group ran the default
        # 1 GiB driver out of heap at 10M rows; each GX metric job re-reads the (column-pruned) files instead.
        frame = batch.frame
        name = Path(batch.subjects[0].name).name if len(batch.subjects) == 1 else Path(location).name
        rows = int(frame.count())
        empty = "holds no columns" if not batch.columns else ("holds no rows" if rows == 0 else None)
        if empty and not allow_empty:
            raise empty_batch_error(f"the batch {name}", empty)
        plan = plan_roles(batch.columns, roles, spec, functools.partial(spark_roles, frame))
        raw = _run_suite(spec, plan, lambda ctx: ctx.data_sources.add_spark("mlsecops"), frame, location)
    spark = {
        **batch.details,
        "master": master,
        "master_source": resolved.source if master == resolved.url else "running session",
        "conf": sorted(resolved.conf),  # the names of the connection's session settings, never their values
    }
    return _judge(
        raw, spec, plan, rows=rows, name=name, subjects=batch.subjects, fmt=batch.format, empty=empty,
        details={"engine": "spark", "spark": spark}, include_unexpected_values=include_unexpected_values,
    )  # fmt: skip


def validate_data(
    data: str | Path | LoadedTable,
    suite: Any,
    *,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    include_unexpected_values: bool = False,
    allow_empty: bool = False,
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    engine: str = "pandas",
    spark_master: str | None = None,
    spark_conn_id: str | None = DEFAULT_CONN_ID,
) -> GateOutcome:
    """Validate the data at ``data`` against ``suite``, plus the expectations its column roles add.

    :param data: a local CSV or Parquet file, or a table loaded already
        (:func:`airflow_mlsecops.io.locations.load_table_at` loads ``s3://``, ``runs:/`` and
        ``models:/`` files and names them by their URI). With ``engine="spark"``: a path (a file or
        a directory of part files) or an ``s3://`` object or prefix, read by Spark.
    :param suite: the expectation suite (path, dict, JSON text or ``ExpectationSuite``).
    :param warn_only: report a failing suite as ``warned`` instead of rejecting.
    :param context: the Airflow task running the gate, if any.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param include_unexpected_values: keep GX's sample of up to 20 offending values per
        expectation in the evidence. Off by default: they may be personal data.
    :param allow_empty: accept a batch with no rows (or no columns): the suite still runs and
        finding ``data-validation.empty-batch`` records it. Off by default: an empty batch is an
        ``error`` verdict, never a pass.
    :param id_columns: identifier columns (list or comma-separated): each must exist, be unique and
        never missing. Identifier-like columns that are unique in the batch are recognised too
        (:mod:`airflow_mlsecops.gates.columns`) and must never be missing.
    :param label_column: the label; must exist in the batch.
    :param prediction_column: the model's output column (may be absent).
    :param timestamp_column: the time of each row; must exist in the batch.
    :param features: the feature columns; each must exist. Given, no identifier is inferred.
    :param engine: ``"pandas"`` (default) or ``"spark"`` (the same suite on GX's Spark data source).
    :param spark_master: the Spark master URL (wins over the connection, ``[mlsecops] spark_master``,
        ``MLSECOPS_SPARK_MASTER`` and ``local[2]``; see :mod:`airflow_mlsecops.io.spark`).
    :param spark_conn_id: the Airflow connection of the Spark master (consulted inside Airflow only).
    :returns: the outcome, with ``gx_validation_result.json``; ``details["column_roles"]`` holds the
        roles, the expectations they added and the declared columns the batch lacks.
    """
    roles = declared_roles(
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=features,
    )
    body = functools.partial(
        _evaluate, data, suite, csv_delimiter=csv_delimiter, include_unexpected_values=include_unexpected_values,
        allow_empty=allow_empty, roles=roles, engine=engine, spark_master=spark_master, spark_conn_id=spark_conn_id,
    )  # fmt: skip
    return run_gate(
        GATE_NAME,
        body,
        policy=_policy(suite, include_unexpected_values, allow_empty, roles, engine),
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS.get(engine, _DISTRIBUTIONS["pandas"]),
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
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
    features: Sequence[str] | str | None = None,
    engine: str = "pandas",
) -> GateOutcome:
    """The outcome of :func:`validate_data` when its data could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (a bad suite or bad arguments are reported first, as the gate does).

    :param error: why the data is unavailable.
    :param suite: the expectation suite, as for :func:`validate_data`; the other parameters too.
    """
    roles = declared_roles(
        id_columns=id_columns,
        label_column=label_column,
        prediction_column=prediction_column,
        timestamp_column=timestamp_column,
        features=features,
    )

    def check() -> None:
        load_suite_spec(suite)
        check_allow_empty(allow_empty)
        check_engine(engine)
        check_role_arguments(**roles)

    return run_gate(
        GATE_NAME,
        raising(error, check=check),
        policy=_policy(suite, include_unexpected_values, allow_empty, roles, engine),
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS.get(engine, _DISTRIBUTIONS["pandas"]),
        context=context,
    )


def _policy(
    suite: Any, include_unexpected_values: bool, allow_empty: object, roles: Mapping[str, Any], engine: str
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "suite": suite_name(suite),
        **suite_policy(suite),
        "result_format": "SUMMARY",
        "unexpected_values_kept": include_unexpected_values,
        "allow_empty": allow_empty_policy(allow_empty),
    }
    if roles:  # only when declared, so the policy of a gate without roles stays as it was
        policy.update({key: value if isinstance(value, (str, list)) else repr(value) for key, value in roles.items()})
    if engine != "pandas":
        policy["engine"] = engine
    return policy
