"""The comparisons behind the drift gate's verdict: Evidently's per-column tests and the gate's own
missing-share test."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.drift.thresholds import (
    FAIL,
    MISSING_SIGNIFICANCE,
    SEVERE_DISTANCE_FACTOR,
    SEVERE_MISSING_CHANGE,
    SEVERE_P_VALUE_FACTOR,
    SUCCESS,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class MissingShare:
    """The gate's own test on one column: did the share of missing values change?"""

    column: str
    reference_share: float
    current_share: float
    p_value: float
    max_change: float

    @property
    def change(self) -> float:
        return self.current_share - self.reference_share

    @property
    def drifted(self) -> bool:
        return abs(self.change) >= self.max_change and self.p_value < MISSING_SIGNIFICANCE

    @property
    def severe(self) -> bool:
        return self.drifted and abs(self.change) >= SEVERE_MISSING_CHANGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "reference_share": self.reference_share,
            "current_share": self.current_share,
            "change": self.change,
            "p_value": self.p_value,
            "drift_when": f"|change| >= {self.max_change:g} and p_value < {MISSING_SIGNIFICANCE:g}",
            "drifted": self.drifted,
            "severe": self.severe,
        }


def two_proportion_p_value(hits_a: int, rows_a: int, hits_b: int, rows_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when the pooled share is 0 or 1)."""
    pooled = (hits_a + hits_b) / (rows_a + rows_b)
    variance = pooled * (1.0 - pooled) * (1.0 / rows_a + 1.0 / rows_b)
    if variance <= 0.0:
        return 1.0
    z = abs(hits_a / rows_a - hits_b / rows_b) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2.0))


def missing_counts(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, int]:
    """Missing values per column of ``frame``."""
    counts = frame[list(columns)].isna().sum()
    return {column: int(counts[column]) for column in columns}


def missing_shares(
    reference: tuple[Mapping[str, int], int],
    current: tuple[Mapping[str, int], int],
    columns: Sequence[str],
    max_change: float,
) -> list[MissingShare]:
    """The missing-share test of every column from exact counts: ``(missing per column, rows)`` of each side."""
    (ref_missing, ref_rows), (cur_missing, cur_rows) = reference, current
    return [
        MissingShare(
            column=column,
            reference_share=ref_missing[column] / ref_rows,
            current_share=cur_missing[column] / cur_rows,
            p_value=two_proportion_p_value(ref_missing[column], ref_rows, cur_missing[column], cur_rows),
            max_change=max_change,
        )
        for column in columns
    ]


def sample(frame: pd.DataFrame, max_rows: int | None, random_state: int) -> tuple[pd.DataFrame, bool]:
    """``frame`` sampled down to ``max_rows`` rows without replacement (in file order), and whether it was."""
    if max_rows is None or len(frame) <= max_rows:
        return frame, False
    return frame.sample(n=max_rows, random_state=random_state, replace=False).sort_index(), True


def lower_means_drift(method: str) -> bool:
    return "p_value" in method.replace("-", "_").replace(" ", "_").lower()


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, drift_share: float, html: bool) -> tuple[dict[str, Any], bytes]:
    """Evidently's ``DataDriftPreset`` report (with tests) as JSON, and its HTML page when ``html``."""
    from airflow_mlsecops.config import telemetry_off

    telemetry_off()  # DO_NOT_TRACK: Evidently reads it when imported
    import warnings

    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_ds = Dataset.from_pandas(reference)
            # Types come from the reference and hold for both: a batch cannot retype a column.
            cur_ds = Dataset.from_pandas(current, data_definition=ref_ds.data_definition)
            snapshot = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True).run(cur_ds, ref_ds)
            raw = json.loads(snapshot.json())
            page = snapshot.get_html_str(as_iframe=False).encode("utf-8") if html else b""
    except Exception as exc:
        raise GateError(f"Evidently could not compare the frames: {type(exc).__name__}: {exc}") from exc
    return raw, page


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's verdict on one column."""

    column: str
    method: str
    score: float
    threshold: float
    status: str
    description: str

    @property
    def drifted(self) -> bool:
        return self.status == FAIL

    @property
    def severe(self) -> bool:
        """Drifted far past the threshold: a distance at least twice it, or a p-value 1,000 times below it."""
        if not self.drifted or math.isnan(self.score):
            return False
        if lower_means_drift(self.method):
            return self.score < self.threshold * SEVERE_P_VALUE_FACTOR
        return self.score >= self.threshold * SEVERE_DISTANCE_FACTOR

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "method": self.method,
            "score": self.score,
            "threshold": self.threshold,
            "drift_when": "score below threshold" if lower_means_drift(self.method) else "score at or above threshold",
            "status": self.status,
            "drifted": self.drifted,
            "severe": self.severe,
        }


def parse_snapshot(raw: dict[str, Any]) -> tuple[list[ColumnDrift], dict[str, Any]]:
    """Per-column results and the dataset-level test, read from Evidently's own statuses."""
    metrics = {m.get("id"): m for m in raw.get("metrics", [])}
    columns: list[ColumnDrift] = []
    dataset: dict[str, Any] | None = None
    for test in raw.get("tests", []):
        params = dict((test.get("metric_config") or {}).get("params") or {})
        kind = str(params.get("type", ""))
        metric = metrics.get((test.get("metric_config") or {}).get("metric_id"), {})
        status = str(test.get("status", ""))
        if kind.endswith(":ValueDrift"):
            value = metric.get("value")
            columns.append(
                ColumnDrift(
                    column=str(params.get("column")),
                    method=str(params.get("method")),
                    score=float(value) if isinstance(value, (int, float)) else float("nan"),
                    threshold=float(params.get("threshold", float("nan"))),
                    status=status,
                    description=str(test.get("description", "")),
                )
            )
        elif kind.endswith(":DriftedColumnsCount"):
            value = dict(metric.get("value") or {})
            dataset = {
                "status": status,
                "name": test.get("name"),
                "description": test.get("description"),
                "drifted_columns": int(value.get("count", 0)),
                "drifted_share": float(value.get("share", 0.0)),
            }
    if dataset is None:
        raise GateError("Evidently's report holds no dataset drift test; cannot reach a verdict")
    broken = [c for c in columns if c.status not in (FAIL, SUCCESS)]
    if dataset["status"] not in (FAIL, SUCCESS) or broken:
        what = f"column {broken[0].column!r}: {broken[0].status}" if broken else f"dataset test: {dataset['status']}"
        raise GateError(f"Evidently could not evaluate a drift test ({what})")
    return columns, dataset


def fmt(value: float) -> str:
    return f"{value:.4g}"
