"""The drift gate's name, evidence files, defaults and thresholds (no heavy import)."""

from __future__ import annotations

from airflow_mlsecops import gate_names

GATE_NAME = gate_names.DRIFT
HTML_FILE = "drift_report.html"
JSON_FILE = "drift_report.json"
DEFAULT_MAX_ROWS = 50_000
#: The dataset drifted when at least this share of the compared columns drifted (Evidently's is 0.5).
DEFAULT_DRIFT_SHARE = 0.25
#: A column's missing share changed when it moved by at least this much (absolute) ...
DEFAULT_MAX_MISSING_CHANGE = 0.05
#: ... and the two-proportion z-test's p-value is below this.
MISSING_SIGNIFICANCE = 0.001
#: A column drifted *severely* (and fails the dataset on its own, ``fail_on_severe_column``) when
#: Evidently's distance is at least this many times its threshold (normed Wasserstein, Jensen-Shannon) ...
SEVERE_DISTANCE_FACTOR = 2.0
#: ... or its p-value is below its threshold times this (K-S, chi-square) ...
SEVERE_P_VALUE_FACTOR = 1e-3
#: ... or its share of missing values moved by at least this much (absolute).
SEVERE_MISSING_CHANGE = 0.2
#: Per-column entries kept in the result's ``details`` (the JSON report keeps all of them).
MAX_COLUMNS_IN_DETAILS = 50
#: How a streamed side is summarised (the evidence's ``sampling.method``).
SKETCH_METHOD = "uniform reservoir sample (the max_rows rows with the smallest seeded random keys) + exact missing counts"

# Model skewing (OWASP ML08) and Erode ML Model Integrity (ATLAS AML.T0031): a production
# population that moved away from the training data degrades the model, by accident or on purpose.
OWASP_SKEWING = ("ML08:2023",)
ATLAS_ERODE = ("AML.T0031",)
FAIL, SUCCESS = "FAIL", "SUCCESS"
