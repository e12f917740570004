"""One robustness evaluation: load a local model and local data, sample rows, measure, judge, report.

Evidence: metrics ``clean_accuracy``, ``robust_accuracy``, ``accuracy_drop``, ``epsilon``,
``samples``; details ``method``, ``exactness``, ``norm``, ``art_version`` (when ART ran); the file
``robustness_report.json`` with per-class robust accuracy and the (capped) row numbers of the
samples that flip. Subjects: the model (file or directory digest) and the data file.

Both inputs are local: callers fetch a remote model with :func:`airflow_mlsecops.io.artifacts.fetch`
and load remote data with :func:`airflow_mlsecops.io.locations.load_table_at` first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Finding, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, not_performed_finding
from airflow_mlsecops.gates.robustness.engine import robust_accuracy, select_method
from airflow_mlsecops.gates.robustness.model import ClassIndexPredictor, describe_model, feature_count
from airflow_mlsecops.gates.robustness.options import (
    ATTACK,
    ATTACK_MAX_SAMPLES,
    BOUND,
    EXACT,
    GATE_NAME,
    INSTALL_HINT,
    MAX_REPORTED_ROWS,
    NOISE_DRAWS,
    REPORT_FILE,
    check_policy,
)
from airflow_mlsecops.io.artifacts import MLFLOW_SCHEMES, subject_name
from airflow_mlsecops.io.locations import local_table, table_name
from airflow_mlsecops.io.model_loader import LoadedModel, load_model, validate_trees

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airflow_mlsecops.gates.robustness.measurement import RobustnessMeasurement
    from airflow_mlsecops.io.tabular import LoadedTable

#: The finding of a result that is a bound, accepted by ``allow_bounds``: the verdict is ``warned`` (incomplete).
NOT_MEASURED_EXACTLY = "robustness.not-measured-exactly"
_ATLAS = ("AML.T0015", "AML.T0043")  # Evade ML Model; Craft Adversarial Data
_OWASP = ("ML01:2023",)  # Input Manipulation Attack


def evaluate_model_on_data(
    model: str,
    data: str | Path | LoadedTable,
    *,
    label_column: str,
    epsilon: float,
    min_robust_accuracy: float,
    max_accuracy_drop: float | None = None,
    method: str = "auto",
    max_samples: int = 2000,
    feature_columns: Sequence[str] | None = None,
    norm: str = "inf",
    random_state: int = 0,
    epsilon_scale: str = "input",
    allow_bounds: bool = False,
    attack_max_samples: int = ATTACK_MAX_SAMPLES,
    max_iter: int | None = None,
    noise_draws: int = NOISE_DRAWS,
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    csv_delimiter: str | None = None,
    model_subject: str | None = None,
) -> Evaluation:
    """What the robustness gate found: the body :func:`~airflow_mlsecops.gates.robustness.evaluate_robustness` runs.

    The parameters are those of :func:`~airflow_mlsecops.gates.robustness.evaluate_robustness`; ``model``
    must be a local path (fetch remote models first with :func:`airflow_mlsecops.io.artifacts.fetch`),
    ``data`` a local file or a table loaded already (:func:`airflow_mlsecops.io.locations.load_table_at`).

    :raises ConfigurationError: for an invalid policy, or a remote ``model`` or ``data`` location.
    :raises GateError: the model or the data cannot be used.
    """
    import numpy as np

    check_policy(
        label_column=label_column,
        epsilon=epsilon,
        min_robust_accuracy=min_robust_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        method=method,
        max_samples=max_samples,
        norm=norm,
        epsilon_scale=epsilon_scale,
        attack_max_samples=attack_max_samples,
    )
    loaded, subject = _load_local_model(model, model_subject, trust_pickle=trust_pickle, trusted_types=trusted_types)
    estimator = loaded.estimator
    _check_classifier(estimator)
    trees = validate_trees(estimator)
    table = local_table(data, csv_delimiter=csv_delimiter)
    X_all, y_all, rows, features, dropped = _prepare(table.frame, label_column, feature_columns, estimator, table_name(data))
    known = ClassIndexPredictor(estimator).label_index(y_all) >= 0
    if not known.any():
        raise GateError(
            f"none of the labels in column {label_column!r} is a class the model predicts "
            f"(model classes: {[str(c) for c in np.asarray(estimator.classes_).tolist()][:20]})"
        )
    scale = X_all.to_numpy().std(axis=0) if epsilon_scale == "std" else np.ones(len(features))
    resolved, reason = select_method(estimator, method, X=X_all.to_numpy())
    cap = min(max_samples, attack_max_samples) if resolved in ("hopskipjump", "pgd") else max_samples
    order = np.random.default_rng(random_state).permutation(len(rows))
    chosen = np.sort(order[:cap])
    measured = robust_accuracy(
        estimator,
        X_all.iloc[chosen],
        y_all[chosen],
        epsilon=float(epsilon),
        method=resolved,
        norm=norm,
        random_state=random_state,
        scale=scale,
        max_iter=max_iter,
        noise_draws=noise_draws,
    )
    notes = [reason, *measured.notes[1:]]
    if len(chosen) < len(rows):
        notes.append(f"{len(chosen)} of {len(rows)} usable rows evaluated, drawn at random (seed {random_state})")
    if dropped:
        notes.append(f"{dropped} row(s) without a label or with a missing/infinite feature were skipped")
    flipped_rows = rows[chosen[measured.flipped]]
    findings, passed = _judge(
        measured,
        epsilon=epsilon,
        norm=norm,
        epsilon_scale=epsilon_scale,
        min_robust_accuracy=min_robust_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        method=method,
        allow_bounds=allow_bounds,
        flipped=len(flipped_rows),
    )
    units = "input units" if epsilon_scale == "input" else "standard deviations"
    norm_name = "L-inf" if norm == "inf" else "L2"
    robust, clean, drop = measured.robust_accuracy, measured.clean_accuracy, measured.accuracy_drop
    radius = {f: float(epsilon) * float(s) for f, s in zip(features, scale.tolist(), strict=False)}
    details: dict[str, Any] = {
        "method": measured.method,
        "exactness": measured.exactness,
        "norm": norm,
        "epsilon_scale": epsilon_scale,
        "method_reason": reason,
        "model_type": describe_model(estimator),
        "model_format": loaded.format,
        "features": features[:200],
        "feature_radius": dict(list(radius.items())[:200]),
        "samples_available": len(rows),
        "rows_skipped": dropped,
        "witnesses": dict(measured.witnesses),
        "notes": notes,
        "seconds": round(measured.seconds, 4),
    }
    if trees:
        details["trees_checked"] = trees
    if measured.art_version:
        details["art_version"] = measured.art_version
    report = {
        "gate": GATE_NAME,
        "model": subject.to_intoto(),
        "data": table.subject.to_intoto(),
        "model_type": details["model_type"],
        "method": measured.method,
        "exactness": measured.exactness,
        "norm": norm,
        "epsilon": float(epsilon),
        "epsilon_scale": epsilon_scale,
        "feature_radius": radius,
        "samples": measured.samples,
        "samples_available": len(rows),
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "accuracy_drop": drop,
        "per_class": measured.per_class(),
        "flipped": {
            "count": len(flipped_rows),
            "rows": [int(r) for r in flipped_rows[:MAX_REPORTED_ROWS]],
            "truncated": len(flipped_rows) > MAX_REPORTED_ROWS,
            "row_numbering": "0-based position among the data rows of the file (header excluded)",
        },
        "witnesses": dict(measured.witnesses),
        "art_version": measured.art_version,
        "notes": notes,
    }
    summary = (
        f"robust accuracy {robust:.3f} (clean {clean:.3f}) at epsilon {epsilon:g} {norm_name} ({units}) on "
        f"{measured.samples} samples; {measured.method} ({measured.exactness})"
    )
    return Evaluation(
        passed=passed,
        not_performed=[f.id for f in findings if f.id == NOT_MEASURED_EXACTLY],
        summary=summary,
        subjects=[subject, table.subject],
        findings=findings,
        metrics={
            "clean_accuracy": clean,
            "robust_accuracy": robust,
            "accuracy_drop": drop,
            "epsilon": float(epsilon),
            "samples": float(measured.samples),
            "flipped_samples": float(len(flipped_rows)),
        },
        files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
        details=details,
    )


def _judge(
    measured: RobustnessMeasurement,
    *,
    epsilon: float,
    norm: str,
    epsilon_scale: str,
    min_robust_accuracy: float,
    max_accuracy_drop: float | None,
    method: str,
    allow_bounds: bool,
    flipped: int,
) -> tuple[list[Finding], bool]:
    """The findings on a measurement and whether it passes: robust accuracy, drop, and whether a bound may pass."""
    units = "input units" if epsilon_scale == "input" else "standard deviations"
    norm_name = "L-inf" if norm == "inf" else "L2"
    robust, clean, drop = measured.robust_accuracy, measured.clean_accuracy, measured.accuracy_drop
    how = {EXACT: "exact worst case", ATTACK: "attack: an upper bound", BOUND: "noise: an upper bound"}[measured.exactness]
    findings: list[Finding] = []
    meets = robust >= min_robust_accuracy
    accuracy_message = (
        f"robust accuracy {robust:.3f} at epsilon {epsilon:g} ({norm_name}, {units}) "
        f"{'meets' if meets else 'is below'} the required {min_robust_accuracy:g} "
        f"(clean accuracy {clean:.3f}, drop {drop:.3f}; {measured.method}, {how}; {measured.samples} samples, "
        f"{flipped} flipped)"
    )
    if not meets and measured.exactness == BOUND:
        accuracy_message += "; even this upper bound is below the threshold, so the true value is too"
    findings.append(_finding("robustness.accuracy", accuracy_message, meets))
    drop_ok = max_accuracy_drop is None or drop <= max_accuracy_drop
    if max_accuracy_drop is not None:
        findings.append(
            _finding(
                "robustness.accuracy-drop",
                f"accuracy drops by {drop:.3f} under attack ({clean:.3f} -> {robust:.3f}); "
                f"the policy allows {max_accuracy_drop:g}",
                drop_ok,
            )
        )
    method_ok = measured.exactness != BOUND or allow_bounds or not (meets and drop_ok)
    if measured.exactness == BOUND and meets and drop_ok:
        if allow_bounds:
            # Not a pass: the exact (or attack) measurement was not performed. warned, incomplete.
            findings.append(
                not_performed_finding(
                    NOT_MEASURED_EXACTLY,
                    "robustness not measured exactly: random noise only bounds robust accuracy from above, so the "
                    f"true value may be below {min_robust_accuracy:g}; allow_bounds=True accepts the bound, and the "
                    "verdict is warned (incomplete), not passed",
                )
            )
            return findings, meets and drop_ok
        if method == "auto":
            message = (
                f"robustness not measured exactly; install the robustness extra ({INSTALL_HINT}): random noise only "
                f"bounds robust accuracy from above, and a bound cannot pass unless the policy sets allow_bounds"
            )
        else:
            message = (
                "robustness not measured exactly: method noise only bounds robust accuracy from above; use an exact "
                "method or an attack, or set allow_bounds to accept a bound"
            )
        findings.append(_finding("robustness.method", message, method_ok))
    return findings, meets and drop_ok and method_ok


def _load_local_model(
    model: str, model_subject: str | None, *, trust_pickle: bool, trusted_types: Sequence[str]
) -> tuple[LoadedModel, Subject]:
    """Load the model at the local path ``model`` and the subject it is attested under.

    The digest is taken before and after loading, so a file that changes in between is refused.
    """
    location = str(model)
    path = location[len("file://") :] if location.startswith("file://") else location
    if "://" in path or path.startswith(MLFLOW_SCHEMES):
        raise ConfigurationError(
            f"{location}: the robustness engine reads local paths; fetch remote models first "
            "(airflow_mlsecops.io.artifacts.fetch) and pass model_subject"
        )
    local = Path(path)
    if not local.exists():
        raise GateError(f"{location} does not exist")
    name = model_subject or location
    digest = sha256_path(local)
    loaded = load_model(local, trust_pickle=trust_pickle, trusted_types=trusted_types)
    if sha256_path(local) != digest:
        raise GateError(f"model {name} changed while it was being loaded; refusing to judge a moving target")
    return loaded, Subject(model_subject or subject_name(location), digest)


def _check_classifier(estimator: Any) -> None:
    from sklearn.base import is_classifier

    if not hasattr(estimator, "predict") or not is_classifier(estimator) or not hasattr(estimator, "classes_"):
        raise GateError(
            f"unsupported model type {describe_model(estimator)}: the robustness gate measures fitted scikit-learn "
            "classifiers (accuracy under attack is undefined for regressors and transformers)"
        )


def _prepare(
    frame: pd.DataFrame, label_column: str, feature_columns: Sequence[str] | None, estimator: Any, data: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[str], int]:
    """Features (in the model's order), labels and row numbers of the usable rows; rows dropped."""
    import numpy as np
    from pandas.api.types import is_numeric_dtype

    columns = [str(c) for c in frame.columns]
    if label_column not in columns:
        raise GateError(f"label column {label_column!r} is not in {data} (columns: {', '.join(columns[:30])})")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        features = [str(c) for c in names]
        if feature_columns is not None and set(map(str, feature_columns)) != set(features):
            raise GateError(
                f"feature_columns {list(feature_columns)} differ from the columns the model was fitted on: {features}"
            )
    elif feature_columns is not None:
        features = [str(c) for c in feature_columns]
    else:
        features = [c for c in columns if c != label_column]
    if label_column in features:
        raise GateError(f"the label column {label_column!r} cannot also be a feature")
    missing = [c for c in features if c not in columns]
    if missing:
        raise GateError(f"{data} lacks the feature column(s) {', '.join(missing)}")
    n_expected = feature_count(estimator)
    if n_expected is not None and n_expected != len(features):
        raise GateError(f"the model expects {n_expected} features, {len(features)} were selected: {', '.join(features)}")
    for c in features:
        if not is_numeric_dtype(frame[c]):
            raise GateError(f"feature {c!r} is not numeric ({frame[c].dtype}); input perturbations are defined for numbers")
    X = frame[features].astype(float)
    usable = np.isfinite(X.to_numpy()).all(axis=1) & frame[label_column].notna().to_numpy()
    rows = np.flatnonzero(usable)
    if not len(rows):
        raise GateError(f"{data} holds no row with a label and finite values in every feature")
    return X.iloc[rows].reset_index(drop=True), frame[label_column].to_numpy()[rows], rows, features, int(len(frame) - len(rows))


def _finding(identifier: str, message: str, passed: bool) -> Finding:
    if passed:
        return Finding(id=identifier, severity=Severity.INFO, message=message, passed=True)
    return Finding(id=identifier, severity=Severity.HIGH, message=message, atlas=_ATLAS, owasp_ml=_OWASP, passed=False)
