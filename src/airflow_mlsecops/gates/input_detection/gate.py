"""The input-anomaly gate: score every row of a production batch and fail when too many are flagged.

:func:`score_batch` reads local inputs only: the batch (a file or a table loaded already), the
detector directory and the model directory. The operator and the CLI fetch remote ones first with
:mod:`airflow_mlsecops.io.locations` (aliases pinned to the version they point at, which is what
the evidence names); :func:`inputs_unavailable` records the ``error`` verdict when that fails.

**Evidence**: ``input_anomaly_report.json`` (per-score thresholds, flagged counts and shares,
score quantiles, the flagged rows' 0-based positions in the batch and their scores, capped at
``max_reported_rows``; the repeated inputs); metrics ``rows``, ``flagged_rows``,
``flagged_share``, a share per score, ``duplicate_rows``, ``near_duplicate_rows`` and
``repeated_share``; findings ``input.off_distribution``, ``input.boundary`` and ``input.repeated``.

**Repeated inputs** (:mod:`.repeats`): the batch also fails when more than ``max_repeated_share``
(default 5%) of its rows have an exact or near copy in the batch (another row within
``near_duplicate_radius``, default 0.05 training standard deviations): many copies of one
input, or small variations of it, are the trace of probing, and each copy can look ordinary to
the per-row scores. The demo's clean batches have none (0.12% at 50,000 rows).

**Column roles**: the detector is fitted on feature columns only (:func:`.fitting.detector_features`:
declared or recognised identifiers, the label, the prediction and the timestamp are left out) and
stores them (``feature_columns``, ``column_roles`` in ``detector.json``). The gate scores those columns
and nothing else: every other column of the batch is left out, with its reason, in
``details["column_roles"]`` (declared to the gate, left out at fitting, recognised as an identifier, or
not a feature of the detector); a batch without the label is no error. A column the gate is told is an
identifier (label, prediction, timestamp) but the detector was fitted on is a configuration error. A
feature of the detector missing from the batch is finding ``input.missing-column`` (the batch is
rejected, no row is scored), never a crash.

**Empty batches**: a batch with no rows is an ``error`` verdict, never a pass, unless
``allow_empty=True``: then the detector and the model are still loaded and checked, and the gate
passes with finding ``input-anomaly.empty-batch`` (:mod:`airflow_mlsecops.gates.empty_data`).

Measured on the example credit data (logistic regression; 1,000-row batches, 10 seeds; default
``target_fpr=0.01``): normal batches flag 1.0% of rows (at most 1.7%), the drifted batch 2.2%.
Evasion rows that stop 0.01 logit past the boundary (p = 0.4975) are all flagged (AUC:
confidence 0.998, instability 0.995, kNN 0.83, Mahalanobis 0.82), and so are all gross
off-distribution rows (AUC 1.0 for both distance scores). The cliff is steep: at 0.05 logit past
the boundary the confidence AUC is still 0.99, but only ~4% of those rows clear the thresholds,
because 1.1% of ordinary rows are as close to the boundary; catching them costs a higher
``target_fpr``. Evasion that goes well past the boundary with in-distribution values (a confident,
ordinary-looking input) is not seen, nor is a slow population shift (the drift gate's job).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, raising, run_gate
from airflow_mlsecops.gates.columns import EXCLUDING_ROLES, check_role_arguments, declared_exclusions, declared_roles
from airflow_mlsecops.gates.empty_data import (
    allow_empty_policy,
    check_allow_empty,
    emptiness,
    empty_batch_error,
    empty_batch_finding,
)
from airflow_mlsecops.gates.input_detection.columns import batch_roles, missing_column_findings
from airflow_mlsecops.gates.input_detection.detector import SCORE_KINDS, InputDetector
from airflow_mlsecops.gates.input_detection.repeats import (
    DEFAULT_MAX_REPEATED_SHARE,
    DEFAULT_NEAR_DUPLICATE_RADIUS,
    Repeats,
    find_repeats,
)
from airflow_mlsecops.gates.input_detection.storage import ARRAYS_FILE, DETECTOR_ARTIFACT_PATH, DETECTOR_FILE, load_detector
from airflow_mlsecops.io.artifacts import subject_name
from airflow_mlsecops.io.locations import LocalArtifact, ModelRef, local_artifact, local_table
from airflow_mlsecops.io.model_loader import load_model, validate_trees
from airflow_mlsecops.io.tabular import LoadedTable

if TYPE_CHECKING:
    import numpy as np

GATE_NAME = gate_names.INPUT_ANOMALY
REPORT_FILE = "input_anomaly_report.json"
MAX_REPORTED_ROWS = 100

# Evasion (ATLAS Evade ML Model, Craft Adversarial Data; OWASP ML01 Input Manipulation).
_ATLAS_EVASION = ("AML.T0015", "AML.T0043")
_OWASP_INPUT = ("ML01:2023",)
# Probing: repeated queries that search for an adversarial input (Craft Adversarial Data, black-box).
_ATLAS_PROBING = ("AML.T0043",)
_DISTRIBUTIONS = ("numpy", "scikit-learn", "mlflow")


def score_batch(
    data: str | Path | LoadedTable,
    detector_dir: str | Path | LocalArtifact | None,
    *,
    model_uri: str | Path | LocalArtifact | None = None,
    max_flagged_share: float = 0.05,
    max_reported_rows: int = MAX_REPORTED_ROWS,
    trust_pickle: bool = False,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
    allow_empty: bool = False,
    max_repeated_share: float = DEFAULT_MAX_REPEATED_SHARE,
    near_duplicate_radius: float = DEFAULT_NEAR_DUPLICATE_RADIUS,
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
) -> GateOutcome:
    """Score every row of the batch ``data``; fail if too many rows are flagged.

    :param data: the production batch: a local CSV or Parquet file holding the detector's feature
        columns, or a table loaded already (:func:`airflow_mlsecops.io.locations.load_table_at`).
    :param detector_dir: the directory of ``detector.json`` + ``arrays.npz``: a local path, or a
        :class:`~airflow_mlsecops.io.locations.LocalArtifact` fetched from ``s3://`` or MLflow
        (:func:`~airflow_mlsecops.io.locations.fetch_artifact`). ``None``: the detector inside the
        model, ``<model_uri>/input_detector``.
    :param model_uri: the model the detector was calibrated for: a local MLflow model directory,
        or a :class:`~airflow_mlsecops.io.locations.LocalArtifact` fetched from ``models:/`` (its
        alias pinned to the version it points at, which is what the evidence names). Required when
        the detector has confidence scores.
    :param max_flagged_share: the gate fails when more than this share of rows is flagged.
    :param max_reported_rows: flagged rows listed (with their scores) in the report.
    :param trust_pickle: load a ``cloudpickle`` / ``pickle`` model (runs code on load).
    :param warn_only: report a failing batch as ``warned`` instead of rejecting.
    :param context: the Airflow task that runs the gate, if any.
    :param csv_delimiter: delimiter of a CSV batch (default ``,``).
    :param allow_empty: accept a batch with no rows: it passes with finding
        ``input-anomaly.empty-batch`` once the detector (and model) check out. Off by default: an
        ``error`` verdict, never a pass.
    :param max_repeated_share: the gate fails when more than this share of the rows have an exact
        or near copy in the batch (finding ``input.repeated``).
    :param near_duplicate_radius: rows closer than this (Euclidean, in training standard
        deviations) are near-duplicates; 0 counts exact copies only.
    :param id_columns: identifier columns of the batch (a list or a comma-separated string), never
        scored; identifier-like columns are also recognised. A policy bounds them (``excluded_columns``).
    :param label_column: the label, never scored; a production batch may lack it.
    :param prediction_column: the model's output column, never scored.
    :param timestamp_column: the time of each row, never scored.
    :returns: the outcome; ``details["column_roles"]`` names the scored features and every column left out, and why.
    """
    roles = declared_roles(
        id_columns=id_columns, label_column=label_column, prediction_column=prediction_column, timestamp_column=timestamp_column
    )
    evaluate = functools.partial(
        _evaluate,
        data,
        detector_dir,
        model_uri=model_uri,
        max_flagged_share=max_flagged_share,
        max_reported_rows=max_reported_rows,
        trust_pickle=trust_pickle,
        csv_delimiter=csv_delimiter,
        allow_empty=allow_empty,
        max_repeated_share=max_repeated_share,
        near_duplicate_radius=near_duplicate_radius,
        roles=roles,
    )
    return run_gate(
        GATE_NAME,
        evaluate,
        policy=_policy(
            detector_dir,
            model_uri,
            max_flagged_share,
            allow_empty,
            trust_pickle,
            max_repeated_share,
            near_duplicate_radius,
            roles,
        ),
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS,
        context=context,
    )


def inputs_unavailable(
    error: Exception,
    *,
    detector_dir: str | Path | LocalArtifact | None = None,
    model_uri: str | Path | LocalArtifact | None = None,
    max_flagged_share: float = 0.05,
    max_reported_rows: int = MAX_REPORTED_ROWS,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    trust_pickle: bool = False,
    allow_empty: bool = False,
    max_repeated_share: float = DEFAULT_MAX_REPEATED_SHARE,
    near_duplicate_radius: float = DEFAULT_NEAR_DUPLICATE_RADIUS,
    id_columns: Sequence[str] | str | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    timestamp_column: str | None = None,
) -> GateOutcome:
    """The outcome of :func:`score_batch` when its inputs could not be fetched or loaded.

    The caller passes the exception it caught; the outcome is the ``error`` verdict the gate gives
    for it, with the same policy on record (an invalid argument is reported first, as the gate does).

    :param error: why the inputs are unavailable.
    :param detector_dir: the detector location as the user gave it.
    :param model_uri: the model location as the user gave it.
    """
    roles = declared_roles(
        id_columns=id_columns, label_column=label_column, prediction_column=prediction_column, timestamp_column=timestamp_column
    )
    return run_gate(
        GATE_NAME,
        raising(
            error,
            check=lambda: _check_arguments(
                max_flagged_share, max_reported_rows, allow_empty, max_repeated_share, near_duplicate_radius, roles
            ),
        ),
        policy=_policy(
            detector_dir,
            model_uri,
            max_flagged_share,
            allow_empty,
            trust_pickle,
            max_repeated_share,
            near_duplicate_radius,
            roles,
        ),
        warn_only=warn_only,
        distributions=_DISTRIBUTIONS,
        context=context,
    )


def _requested(location: str | Path | LocalArtifact | None) -> str | None:
    if isinstance(location, LocalArtifact):
        return location.ref.requested
    return None if location is None else str(location)


def _policy(
    detector_dir: str | Path | LocalArtifact | None,
    model_uri: str | Path | LocalArtifact | None,
    max_flagged_share: float,
    allow_empty: object,
    trust_pickle: object = False,
    max_repeated_share: float = DEFAULT_MAX_REPEATED_SHARE,
    near_duplicate_radius: float = DEFAULT_NEAR_DUPLICATE_RADIUS,
    roles: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        **dict(roles or {}),
        # the columns the DAG declared out by a role (the label hides nothing: a detector is never fitted on it)
        "excluded_columns": declared_exclusions(roles, EXCLUDING_ROLES),
        "max_flagged_share": max_flagged_share,
        "max_repeated_share": max_repeated_share,
        "near_duplicate_radius": near_duplicate_radius,
        "detector": _requested(detector_dir),
        "detector_from_model": detector_dir is None,  # the detector stored with the model, not one the DAG chose
        "model": _requested(model_uri),
        "trust_pickle": trust_pickle,
        "rule": "a row is flagged when any score exceeds its calibrated threshold; the batch fails when more than "
        "max_flagged_share of its rows are flagged or more than max_repeated_share have a (near-)duplicate in it",
        "allow_empty": allow_empty_policy(allow_empty),
    }


def _check_arguments(
    max_flagged_share: float,
    max_reported_rows: int,
    allow_empty: object = False,
    max_repeated_share: float = DEFAULT_MAX_REPEATED_SHARE,
    near_duplicate_radius: float = DEFAULT_NEAR_DUPLICATE_RADIUS,
    roles: Mapping[str, Any] | None = None,
) -> None:
    check_allow_empty(allow_empty)
    check_role_arguments(**dict(roles or {}))
    for name, value in (("max_repeated_share", max_repeated_share), ("near_duplicate_radius", near_duplicate_radius)):
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
        if bad or (name == "max_repeated_share" and value >= 1):
            what = "a number in [0, 1)" if name == "max_repeated_share" else "a finite number >= 0"
            raise ConfigurationError(f"{name} must be {what}, not {value!r}")
    if isinstance(max_flagged_share, bool) or not isinstance(max_flagged_share, (int, float)) or not 0 <= max_flagged_share < 1:
        raise ConfigurationError(f"max_flagged_share must be a number in [0, 1), not {max_flagged_share!r}")
    if isinstance(max_reported_rows, bool) or not isinstance(max_reported_rows, int) or max_reported_rows < 0:
        raise ConfigurationError(f"max_reported_rows must be a non-negative integer, not {max_reported_rows!r}")


def _existing(artifact: LocalArtifact) -> Path:
    if not artifact.path.exists():
        raise GateError(f"{artifact.ref.uri.removeprefix('file://')} does not exist")
    return artifact.path


def _evaluate(
    data: str | Path | LoadedTable,
    detector_dir: str | Path | LocalArtifact | None,
    *,
    model_uri: str | Path | LocalArtifact | None,
    max_flagged_share: float,
    max_reported_rows: int,
    trust_pickle: bool,
    csv_delimiter: str | None,
    allow_empty: bool = False,
    max_repeated_share: float = DEFAULT_MAX_REPEATED_SHARE,
    near_duplicate_radius: float = DEFAULT_NEAR_DUPLICATE_RADIUS,
    roles: Mapping[str, Any] | None = None,
) -> Evaluation:
    """What the input-anomaly gate found: the body :func:`score_batch` runs (same parameters)."""
    _check_arguments(max_flagged_share, max_reported_rows, allow_empty, max_repeated_share, near_duplicate_radius, roles)
    table = local_table(data, csv_delimiter=csv_delimiter)
    what = f"the batch {Path(table.subject.name).name}"
    empty = emptiness(table.frame)
    if empty and not allow_empty:
        raise empty_batch_error(what, empty)
    subjects = [table.subject]
    model: LocalArtifact | None = None
    if model_uri:
        model = model_uri if isinstance(model_uri, LocalArtifact) else local_artifact(model_uri)
    if detector_dir:
        detector_at = detector_dir if isinstance(detector_dir, LocalArtifact) else local_artifact(detector_dir)
    elif model is not None:
        inside = f"{model.ref.uri.rstrip('/')}/{DETECTOR_ARTIFACT_PATH}"
        detector_at = LocalArtifact(ref=ModelRef(requested=inside, uri=inside), path=model.path / DETECTOR_ARTIFACT_PATH)
    else:
        raise ConfigurationError("pass the detector directory, or the model whose artifacts hold it (input_detector/)")
    detector_location = detector_at.ref.uri
    detector_path = _existing(detector_at)
    if not detector_path.is_dir():
        raise GateError(f"{detector_location} is not a directory holding {DETECTOR_FILE} and {ARRAYS_FILE}")
    detector = load_detector(detector_path)
    subjects.append(Subject(subject_name(detector_location), sha256_path(detector_path)))
    estimator = None
    if detector.uses_model:
        if model is None:
            raise ConfigurationError(
                "this input detector was calibrated with a model's confidence scores; "
                "pass model_uri (the model it was fitted for)"
            )
        model_path = _existing(model)
        subjects.append(Subject(subject_name(model.ref.uri), sha256_path(model_path)))
        estimator = load_model(model_path, trust_pickle=trust_pickle).estimator
        validate_trees(estimator)  # the loader accepts decision trees only on this condition
        detector.check_model(estimator)
    column_roles = batch_roles(table.frame, detector, roles)
    absent = [c for c in detector.feature_columns if c not in table.frame.columns]
    if absent:
        return _missing_columns(
            table, detector, absent, column_roles, subjects=subjects, detector_location=detector_location, model=model
        )
    if empty:
        # The batch must still have the detector's columns (a header-only CSV types them as text: no dtype check).
        detector.matrix(table.frame.astype({c: "float64" for c in detector.feature_columns if c in table.frame.columns}))
        outcome = _empty_batch(table, what, empty, subjects=subjects, detector_location=detector_location, model=model)
        outcome.details["column_roles"] = column_roles
        return outcome
    scores = detector.scores(table.frame, estimator)
    repeats = find_repeats(detector.matrix(table.frame), detector.scale, float(near_duplicate_radius))
    return _judge(
        table,
        detector,
        scores,
        repeats,
        subjects=subjects,
        detector_location=detector_location,
        model_ref=model.ref if model is not None else None,
        max_flagged_share=max_flagged_share,
        max_reported_rows=max_reported_rows,
        max_repeated_share=max_repeated_share,
        column_roles=column_roles,
    )


def _empty_batch(
    table: LoadedTable,
    what: str,
    empty: str,
    *,
    subjects: list[Subject],
    detector_location: str,
    model: LocalArtifact | None,
) -> Evaluation:
    """The evaluation of an empty batch that ``allow_empty`` accepts: nothing scored, a finding that says so."""
    model_ref = model.ref.to_dict() if model is not None else None
    report = {
        "gate": GATE_NAME,
        "data": table.subject.name,
        "rows": 0,
        "flagged_rows": 0,
        "empty_batch": True,
        "note": f"{what} {empty}: nothing was scored (allow_empty=True)",
        "detector": {"location": detector_location},
        "model": model_ref,
    }
    details: dict[str, Any] = {"empty_batch": True, "detector": detector_location}
    if model_ref is not None:
        details["model"] = model_ref
    finding = empty_batch_finding(GATE_NAME, what, empty)
    return Evaluation(
        passed=True,
        not_performed=[finding.id],
        summary=f"empty batch accepted (allow_empty=True): {what} {empty}, nothing was scored",
        subjects=subjects,
        findings=[finding],
        metrics={"rows": 0.0, "flagged_rows": 0.0, "flagged_share": 0.0},
        files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
        details=details,
    )


def _judge(
    table: LoadedTable,
    detector: InputDetector,
    scores: dict[str, np.ndarray],
    repeats: Repeats,
    *,
    subjects: list[Subject],
    detector_location: str,
    model_ref: ModelRef | None,
    max_flagged_share: float,
    max_reported_rows: int,
    max_repeated_share: float,
    column_roles: dict[str, Any],
) -> Evaluation:
    """The verdict, findings, metrics and report of the scored batch."""
    import numpy as np

    rows = len(table.frame)
    flags = {name: values > detector.thresholds[name] for name, values in scores.items()}
    off = np.zeros(rows, dtype=bool)
    boundary = np.zeros(rows, dtype=bool)
    for name, hit in flags.items():
        if SCORE_KINDS[name] == "distance":
            off |= hit
        else:
            boundary |= hit
    non_finite = ~np.isfinite(detector.matrix(table.frame)).all(axis=1)
    off |= non_finite
    flagged = off | boundary
    flagged_rows = int(flagged.sum())
    flagged_share = flagged_rows / rows
    flags_ok = flagged_share <= max_flagged_share
    passed = flags_ok and repeats.share <= max_repeated_share
    indices = np.flatnonzero(flagged)

    per_score = {
        name: {
            "kind": SCORE_KINDS[name],
            "threshold": detector.thresholds[name],
            "flagged_rows": int(hit.sum()),
            "flagged_share": float(hit.mean()),
            **_summary_stats(scores[name]),
        }
        for name, hit in flags.items()
    }
    listed = [
        {
            "row": int(i),
            "reasons": [name for name in flags if flags[name][i]] + (["non_finite"] if non_finite[i] else []),
            "scores": {name: (float(scores[name][i]) if np.isfinite(scores[name][i]) else None) for name in scores},
        }
        for i in indices[:max_reported_rows]
    ]
    report: dict[str, Any] = {
        "gate": GATE_NAME,
        "data": table.subject.name,
        "rows": rows,
        "flagged_rows": flagged_rows,
        "flagged_share": flagged_share,
        "max_flagged_share": max_flagged_share,
        "off_distribution_rows": int(off.sum()),
        "boundary_rows": int(boundary.sum()),
        "non_finite_rows": int(non_finite.sum()),
        "repeated": {
            **repeats.to_dict(),
            "max_repeated_share": max_repeated_share,
            "row_indices": [int(i) for i in np.flatnonzero(repeats.near_duplicate)[:max_reported_rows]],
        },
        "scores": per_score,
        "row_index": "0-based position of the row in the batch file (header excluded)",
        "flagged_row_indices": [int(i) for i in indices[:max_reported_rows]],
        "flagged_rows_truncated": flagged_rows > max_reported_rows,
        "flagged": listed,
        "detector": {
            "location": detector_location,
            "feature_columns": list(detector.feature_columns),
            "target_fpr": detector.target_fpr,
            "calibration": dict(detector.calibration),
        },
        "column_roles": column_roles,
        "model": model_ref.to_dict() if model_ref else None,
    }

    findings: list[Finding] = []
    severity = Severity.LOW if flags_ok else Severity.HIGH
    if off.any():
        rules = " or ".join(f"{name} > {detector.thresholds[name]:.4g}" for name in flags if SCORE_KINDS[name] == "distance")
        extra = f", {int(non_finite.sum())} with missing or infinite values" if non_finite.any() else ""
        findings.append(
            Finding(
                id="input.off_distribution",
                severity=severity,
                message=f"{int(off.sum())} of {rows} rows ({off.mean():.1%}) lie off the training distribution ({rules}{extra})",
                location=_rows_location(np.flatnonzero(off)),
                atlas=_ATLAS_EVASION,
                owasp_ml=_OWASP_INPUT,
                passed=flags_ok,
            )
        )
    if boundary.any():
        rules = " or ".join(f"{name} > {detector.thresholds[name]:.4g}" for name in flags if SCORE_KINDS[name] == "model")
        findings.append(
            Finding(
                id="input.boundary",
                severity=severity,
                message=f"{int(boundary.sum())} of {rows} rows ({boundary.mean():.1%}) sit on the model's decision boundary "
                f"or flip under small noise ({rules}): the signature of evasion attacks",
                location=_rows_location(np.flatnonzero(boundary)),
                atlas=_ATLAS_EVASION,
                owasp_ml=_OWASP_INPUT,
                passed=flags_ok,
            )
        )
    if repeats.near_duplicate_rows:
        findings.append(_repeated_finding(repeats, max_repeated_share))
    name = Path(table.subject.name).name
    summary = (
        f"{flagged_rows} of {rows} rows ({flagged_share:.1%}) of {name} flagged as anomalous input "
        f"(policy: at most {max_flagged_share:.1%}): {int(off.sum())} off-distribution, "
        f"{int(boundary.sum())} on the decision boundary"
    )
    if column_roles["excluded"]:
        summary += "; not scored: " + ", ".join(f"{e['column']} ({e['role']})" for e in column_roles["excluded"][:8])
        summary += ", ..." if len(column_roles["excluded"]) > 8 else ""
    if repeats.near_duplicate_rows:
        summary += (
            f"; {repeats.near_duplicate_rows} rows ({repeats.share:.1%}) repeat another input of the batch "
            f"(policy: at most {max_repeated_share:.1%})"
        )
    metrics = {
        "rows": float(rows),
        "flagged_rows": float(flagged_rows),
        "flagged_share": flagged_share,
        "off_distribution_share": float(off.mean()),
        "boundary_share": float(boundary.mean()),
        "non_finite_rows": float(non_finite.sum()),
        "duplicate_rows": float(repeats.duplicate_rows),
        "near_duplicate_rows": float(repeats.near_duplicate_rows),
        "repeated_share": repeats.share,
        **{f"share_{n}": float(hit.mean()) for n, hit in flags.items()},
    }
    details: dict[str, Any] = {
        "thresholds": dict(detector.thresholds),
        "scores": list(detector.score_names),
        "flagged_row_indices": [int(i) for i in indices[:20]],
        "flagged_rows_truncated": flagged_rows > 20,
        "detector": detector_location,
        "target_fpr": detector.target_fpr,
        "column_roles": column_roles,
    }
    if model_ref is not None:
        details["model"] = model_ref.to_dict()
    return Evaluation(
        passed=passed,
        summary=summary,
        subjects=subjects,
        findings=findings,
        metrics=metrics,
        files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
        details=details,
    )


def _missing_columns(
    table: LoadedTable,
    detector: InputDetector,
    absent: list[str],
    column_roles: dict[str, Any],
    *,
    subjects: list[Subject],
    detector_location: str,
    model: LocalArtifact | None,
) -> Evaluation:
    """A batch without some of the detector's features: rejected with a finding per column, nothing scored."""
    name = Path(table.subject.name).name
    model_ref = model.ref.to_dict() if model is not None else None
    findings = missing_column_findings(absent, name, detector)
    report = {
        "gate": GATE_NAME,
        "data": table.subject.name,
        "rows": len(table.frame),
        "scored": False,
        "features_missing_from_batch": absent,
        "detector": {"location": detector_location, "feature_columns": list(detector.feature_columns)},
        "column_roles": column_roles,
        "model": model_ref,
    }
    details: dict[str, Any] = {
        "features_missing_from_batch": absent,
        "detector": detector_location,
        "column_roles": column_roles,
    }
    if model_ref is not None:
        details["model"] = model_ref
    return Evaluation(
        passed=False,
        summary=f"feature column(s) of the input detector missing from {name}: {', '.join(absent[:8])}"
        f"{', ...' if len(absent) > 8 else ''}; no row was scored",
        subjects=subjects,
        findings=findings,
        metrics={"rows": float(len(table.frame)), "features_missing": float(len(absent))},
        files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
        details=details,
    )


def _repeated_finding(repeats: Repeats, max_repeated_share: float) -> Finding:
    """Finding ``input.repeated``: rows that copy, or nearly copy, another row of the batch."""
    import numpy as np

    failed = repeats.share > max_repeated_share
    return Finding(
        id="input.repeated",
        severity=Severity.HIGH if failed else Severity.LOW,
        message=(
            f"{repeats.near_duplicate_rows} of {repeats.rows} rows ({repeats.share:.1%}) repeat another input of the batch "
            f"({repeats.duplicate_rows} exact copies, up to {repeats.largest_group} of one input; near: within "
            f"{repeats.radius:g} training standard deviations): repeated and near-duplicate inputs are the trace of probing"
        ),
        location=_rows_location(np.flatnonzero(repeats.near_duplicate)),
        atlas=_ATLAS_PROBING,
        owasp_ml=_OWASP_INPUT,
        passed=not failed,
    )


def _summary_stats(values: np.ndarray) -> dict[str, float | None]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": float(np.quantile(finite, 0.5)),
        "p99": float(np.quantile(finite, 0.99)),
        "max": float(finite.max()),
    }


def _rows_location(indices: np.ndarray, cap: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:cap])
    return f"rows {shown}{', ...' if len(indices) > cap else ''}"
