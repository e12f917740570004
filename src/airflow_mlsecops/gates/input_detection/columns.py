"""Column roles of a batch the input-anomaly gate scores: the detector's features, and every other column and why.

The detector was fitted on feature columns only (:func:`~airflow_mlsecops.gates.input_detection.fitting.detector_features`)
and stores them; the gate scores exactly those. Every other column of the batch is left out, with the
first reason that applies: a role declared to the gate (``id_columns``, ``label_column``,
``prediction_column``, ``timestamp_column``), a role it had when the detector was fitted, an
identifier recognised from its values (:func:`airflow_mlsecops.gates.columns.infer_id_reason`), or
simply not a feature of the detector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import Finding, Severity
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.columns import (
    ROLE_ID,
    ROLE_LABEL,
    ROLE_NOT_A_FEATURE,
    ROLE_PREDICTION,
    ROLE_TIMESTAMP,
    column_list,
    infer_id_reason,
)

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlsecops.gates.input_detection.detector import InputDetector

ROLE_KEYS = ("id_columns", "label_column", "prediction_column", "timestamp_column")
_ROLE_OF_KEY = {
    "id_columns": ROLE_ID,
    "label_column": ROLE_LABEL,
    "prediction_column": ROLE_PREDICTION,
    "timestamp_column": ROLE_TIMESTAMP,
}
# Evasion inputs cannot be judged on a batch without the model's inputs (OWASP ML01 Input Manipulation).
_OWASP_INPUT = ("ML01:2023",)


def batch_roles(frame: pd.DataFrame, detector: InputDetector, roles: Mapping[str, Any] | None) -> dict[str, Any]:
    """The scored features and every other column of ``frame`` with its role and reason (``details["column_roles"]``).

    :raises ConfigurationError: a column declared an identifier (label, prediction, timestamp) that the
        detector was fitted on as a feature: the detector cannot score without it; refit it.
    """
    declared: dict[str, tuple[str, str]] = {}
    for key in ROLE_KEYS:
        for column in column_list((roles or {}).get(key), key) or []:
            declared[column] = (_ROLE_OF_KEY[key], f"declared --{_ROLE_OF_KEY[key]}-column")
    clash = [c for c in detector.feature_columns if c in declared]
    if clash:
        raise ConfigurationError(
            f"column {clash[0]!r} is declared {declared[clash[0]][0]} but the input detector was fitted on it as a "
            "feature; refit the detector without it (fit_detector with the same role)"
        )
    fitted = {
        str(e.get("column")): e
        for e in (detector.column_roles or {}).get("excluded", [])
        if isinstance(e, Mapping) and e.get("column") is not None
    }
    features = set(detector.feature_columns)
    excluded: list[dict[str, Any]] = []
    for column in (str(c) for c in frame.columns):
        if column in features:
            continue
        if column in declared:
            role, reason = declared[column]
            excluded.append({"column": column, "role": role, "reason": reason, "declared": True})
        elif column in fitted:
            entry = fitted[column]
            reason = f"left out when the detector was fitted ({entry.get('reason')})"
            excluded.append(
                {"column": column, "role": entry.get("role"), "reason": reason, "declared": bool(entry.get("declared"))}
            )
        elif (why := infer_id_reason(frame[column])) is not None:
            excluded.append({"column": column, "role": ROLE_ID, "reason": why, "declared": False})
        else:
            excluded.append(
                {"column": column, "role": ROLE_NOT_A_FEATURE, "reason": "not a feature of the input detector", "declared": False}
            )
    return {
        "features": list(detector.feature_columns),
        "id_columns": [e["column"] for e in excluded if e["role"] == ROLE_ID],
        "label_column": (roles or {}).get("label_column") or (detector.column_roles or {}).get("label_column"),
        "prediction_column": (roles or {}).get("prediction_column") or (detector.column_roles or {}).get("prediction_column"),
        "timestamp_column": (roles or {}).get("timestamp_column") or (detector.column_roles or {}).get("timestamp_column"),
        "excluded": excluded,
        "fitted": dict(detector.column_roles) or None,
    }


def missing_column_findings(absent: Sequence[str], batch: str, detector: InputDetector) -> list[Finding]:
    """Finding ``input.missing-column`` per feature of the detector the batch lacks (rejects: nothing can be scored)."""
    return [
        Finding(
            id="input.missing-column",
            severity=Severity.HIGH,
            message=f"feature column {name!r} the input detector was fitted on is missing from the batch {batch}; "
            f"the detector scores {len(detector.feature_columns)} columns ({', '.join(detector.feature_columns[:8])}"
            f"{', ...' if len(detector.feature_columns) > 8 else ''}) and no row was scored",
            location=f"column {name}",
            owasp_ml=_OWASP_INPUT,
        )
        for name in absent
    ]
