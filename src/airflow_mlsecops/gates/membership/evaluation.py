"""One membership-inference evaluation: load a local model, a training file and a holdout file,
attack, judge, report.

Evidence: metrics ``attack_auc`` and ``advantage`` (the strongest attack's), ``members`` and
``non_members`` (the balanced sample sizes), and per attack ``auc_<attack>``, ``auc_<attack>_ci_low``,
``auc_<attack>_ci_high``, ``advantage_<attack>`` (and its interval); details ``attacks``,
``strongest_attack``, ``ci_above_threshold``, ``notes``; the file ``membership_report.json``.
Subjects: the model (file or directory digest), the training file and the holdout file.

Both data inputs are local (callers load remote ones with
:func:`airflow_mlsecops.io.locations.load_table_at` first); so is the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.models import Finding, Severity, Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.base import Evaluation, not_performed_finding
from airflow_mlsecops.gates.membership.attacks import (
    AttackResult,
    calibrated_loss_scores,
    chance_advantage,
    confidence_scores,
    evaluate_attack,
    loss_scores,
    true_label_loss,
)
from airflow_mlsecops.gates.membership.options import (
    CALIBRATED_LOSS,
    CONFIDENCE,
    CONFIDENCE_LEVEL,
    GATE_NAME,
    LOSS,
    MAX_OVERLAP_SHARE,
    REPORT_FILE,
    check_policy,
    parse_attacks,
)
from airflow_mlsecops.io.artifacts import MLFLOW_SCHEMES, subject_name
from airflow_mlsecops.io.locations import local_table, table_name
from airflow_mlsecops.io.model_loader import load_model, quiet_warnings, validate_trees

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airflow_mlsecops.io.tabular import LoadedTable

#: The finding of a calibrated attack that could not run (no reference model): warned, incomplete.
CALIBRATION_NOT_PERFORMED = "membership.calibrated-attack-not-performed"
_ATLAS = ("AML.T0024.000",)  # Exfiltration via ML Inference API: Infer Training Data Membership
_OWASP = ("ML04:2023",)  # Membership Inference Attack


@dataclass(frozen=True)
class _Rows:
    """Features and class indices of the usable rows of one table."""

    X: pd.DataFrame
    y: np.ndarray
    dropped: int


def evaluate_membership_on_data(
    model: str,
    train: str | Path | LoadedTable,
    holdout: str | Path | LoadedTable,
    *,
    label_column: str,
    max_attack_auc: float,
    max_advantage: float,
    min_samples: int,
    max_samples: int,
    attacks: Sequence[str],
    bootstrap: int,
    random_state: int = 0,
    feature_columns: Sequence[str] | None = None,
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    csv_delimiter: str | None = None,
    model_subject: str | None = None,
) -> Evaluation:
    """What the membership-inference gate found (the body :func:`evaluate_membership_inference` runs).

    :raises ConfigurationError: an invalid policy, or a remote input.
    :raises GateError: the model or the files cannot be used (no ``predict_proba``, no label column,
        a holdout that is the training file or shares its rows).
    """
    import numpy as np

    check_policy(
        label_column=label_column,
        max_attack_auc=max_attack_auc,
        max_advantage=max_advantage,
        min_samples=min_samples,
        max_samples=max_samples,
        attacks=attacks,
        bootstrap=bootstrap,
    )
    chosen_attacks = parse_attacks(attacks)
    estimator, model_format, model_subject_ = _load_local_model(model, model_subject, trust_pickle, trusted_types)
    _check_probabilistic_classifier(estimator)
    trees = validate_trees(estimator)
    train_table = local_table(train, csv_delimiter=csv_delimiter)
    holdout_table = local_table(holdout, csv_delimiter=csv_delimiter)
    if train_table.subject.sha256 == holdout_table.subject.sha256:
        raise GateError(
            f"the holdout {table_name(holdout)} has the same digest as the training data {table_name(train)}: "
            "a holdout must be data the model was not trained on"
        )
    classes = np.asarray(estimator.classes_)
    features = _features(estimator, feature_columns, train_table.frame, label_column)
    notes: list[str] = []
    train_rows = _rows(train_table.frame, features, label_column, classes, table_name(train))
    holdout_rows = _rows(holdout_table.frame, features, label_column, classes, table_name(holdout))
    overlap = _overlap(train_rows, holdout_rows)
    if overlap.any():
        share = float(overlap.mean())
        if share > MAX_OVERLAP_SHARE:
            raise GateError(
                f"the holdout {table_name(holdout)} shares {int(overlap.sum())} of its {len(overlap)} rows with the "
                f"training data {table_name(train)} ({share:.1%}, more than {MAX_OVERLAP_SHARE:.0%}): it is not a "
                "holdout; split the data before training and pass the rows the model never saw"
            )
        keep = ~overlap
        holdout_rows = _Rows(holdout_rows.X[keep].reset_index(drop=True), holdout_rows.y[keep], holdout_rows.dropped)
        notes.append(f"{int(overlap.sum())} holdout row(s) identical to a training row were left out")
    for name, rows in (("training", train_rows), ("holdout", holdout_rows)):
        if rows.dropped:
            notes.append(f"{rows.dropped} {name} row(s) without a label the model knows were skipped")

    rng = np.random.default_rng(random_state)
    train_order = rng.permutation(len(train_rows.y))
    holdout_order = rng.permutation(len(holdout_rows.y))
    n = min(len(train_order), len(holdout_order), max_samples)
    subjects = [model_subject_, train_table.subject, holdout_table.subject]
    policy_text = f"min_samples {min_samples}"
    if n < min_samples:
        message = (
            f"only {n} balanced pairs of training and holdout rows are usable ({len(train_order)} training, "
            f"{len(holdout_order)} holdout); the policy needs at least {min_samples} of each to measure leakage"
        )
        return Evaluation(
            passed=False,
            summary=f"membership inference not measured: {n} usable rows per side, {policy_text}",
            subjects=subjects,
            findings=[_finding("membership.sample-size", message, False)],
            metrics={"members": float(n), "non_members": float(n)},
            details={"notes": notes, "model_format": model_format},
        )

    members, non_members = train_order[:n], holdout_order[:n]
    member_p = _probabilities(estimator, train_rows.X.iloc[members])
    non_member_p = _probabilities(estimator, holdout_rows.X.iloc[non_members])
    results: list[AttackResult] = []
    findings: list[Finding] = []
    skipped: list[str] = []
    options: dict[str, Any] = {"rounds": bootstrap, "seed": random_state, "confidence": CONFIDENCE_LEVEL}
    if LOSS in chosen_attacks:
        results.append(
            evaluate_attack(
                LOSS,
                loss_scores(member_p, train_rows.y[members]),
                loss_scores(non_member_p, holdout_rows.y[non_members]),
                **options,
            )
        )
    if CONFIDENCE in chosen_attacks:
        results.append(evaluate_attack(CONFIDENCE, confidence_scores(member_p), confidence_scores(non_member_p), **options))
    if CALIBRATED_LOSS in chosen_attacks:
        calibrated, reason = _calibrated_attack(
            estimator, train_rows, holdout_rows, train_order, holdout_order, min_samples, max_samples, options
        )
        if calibrated is None:
            findings.append(not_performed_finding(CALIBRATION_NOT_PERFORMED, f"calibrated-loss attack not performed: {reason}"))
            skipped.append(CALIBRATION_NOT_PERFORMED)
        else:
            results.append(calibrated)
            notes.append(reason)

    # What a model that leaks nothing reaches by chance (95%): the two-sample Kolmogorov-Smirnov
    # critical value, since the advantage is the KS statistic of the two score samples.
    chance = {r.attack: chance_advantage(r.members, r.non_members) for r in results}
    if max(chance.values()) > max_advantage:
        notes.append(
            f"at these sample sizes a model that leaks nothing reaches an advantage of up to {max(chance.values()):.3f} by "
            f"chance (95%), above max_advantage {max_advantage:g}: a larger holdout (or a higher min_samples) makes the "
            "advantage check less noisy"
        )
    strongest_auc = max(results, key=lambda r: r.auc)
    strongest_adv = max(results, key=lambda r: r.advantage)
    auc_ok = strongest_auc.auc <= max_attack_auc
    adv_ok = strongest_adv.advantage <= max_advantage
    above = {
        "attack_auc": strongest_auc.auc_ci[0] > max_attack_auc,
        "advantage": strongest_adv.advantage_ci[0] > max_advantage,
    }
    findings[:0] = [
        _finding(
            "membership.attack-auc",
            _judgement("attack AUC", strongest_auc.attack, strongest_auc.auc, strongest_auc.auc_ci, max_attack_auc, n),
            auc_ok,
        ),
        _finding(
            "membership.advantage",
            _judgement(
                "membership advantage",
                strongest_adv.attack,
                strongest_adv.advantage,
                strongest_adv.advantage_ci,
                max_advantage,
                n,
            )
            + f" (chance level at this sample size: {chance[strongest_adv.attack]:.3f})",
            adv_ok,
        ),
    ]
    metrics: dict[str, float] = {
        "attack_auc": strongest_auc.auc,
        "advantage": strongest_adv.advantage,
        "members": float(n),
        "non_members": float(n),
        "max_attack_auc": float(max_attack_auc),
        "max_advantage": float(max_advantage),
    }
    for r in results:
        key = r.attack.replace("-", "_")
        metrics.update(
            {
                f"auc_{key}": r.auc,
                f"auc_{key}_ci_low": r.auc_ci[0],
                f"auc_{key}_ci_high": r.auc_ci[1],
                f"advantage_{key}": r.advantage,
                f"advantage_{key}_ci_low": r.advantage_ci[0],
                f"advantage_{key}_ci_high": r.advantage_ci[1],
            }
        )
    details: dict[str, Any] = {
        "attacks": [r.to_dict() for r in results],
        "strongest_attack": {"attack_auc": strongest_auc.attack, "advantage": strongest_adv.attack},
        "ci_above_threshold": above,
        "chance_advantage_95": chance,
        "confidence_level": CONFIDENCE_LEVEL,
        "bootstrap_rounds": bootstrap,
        "bootstrap_seed": random_state,
        "sample_seed": random_state,
        "features": features[:200],
        "model_format": model_format,
        "rows_available": {"training": len(train_order), "holdout": len(holdout_order)},
        "notes": notes,
    }
    if trees:
        details["trees_checked"] = trees
    report = {
        "gate": GATE_NAME,
        "model": model_subject_.to_intoto(),
        "training_data": train_table.subject.to_intoto(),
        "holdout": holdout_table.subject.to_intoto(),
        "thresholds": {"max_attack_auc": max_attack_auc, "max_advantage": max_advantage, "min_samples": min_samples},
        **details,
    }
    summary = (
        f"membership inference: attack AUC {strongest_auc.auc:.3f} ({strongest_auc.attack}), advantage "
        f"{strongest_adv.advantage:.3f} ({strongest_adv.attack}) on {n} training and {n} holdout rows; "
        f"limits {max_attack_auc:g} / {max_advantage:g}"
    )
    return Evaluation(
        passed=auc_ok and adv_ok,
        summary=summary,
        subjects=subjects,
        findings=findings,
        metrics=metrics,
        files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
        details=details,
        not_performed=skipped,
    )


def _judgement(what: str, attack: str, value: float, ci: tuple[float, float], limit: float, n: int) -> str:
    level = f"{CONFIDENCE_LEVEL:.0%}"
    text = (
        f"{what} {value:.3f} (strongest attack: {attack}; {level} bootstrap CI {ci[0]:.3f}-{ci[1]:.3f}; "
        f"{n} training and {n} holdout rows) "
    )
    if value > limit:
        where = (
            "the whole interval lies above it"
            if ci[0] > limit
            else "the interval reaches below it: rejected on the point estimate"
        )
        return text + f"exceeds the limit {limit:g}; {where}"
    where = "the whole interval lies below it" if ci[1] <= limit else "the interval reaches above it"
    return text + f"is within the limit {limit:g}; {where}"


def _calibrated_attack(
    estimator: Any,
    train_rows: _Rows,
    holdout_rows: _Rows,
    train_order: np.ndarray,
    holdout_order: np.ndarray,
    min_samples: int,
    max_samples: int,
    options: dict[str, Any],
) -> tuple[AttackResult | None, str]:
    """Watson et al.'s calibrated attack: a reference model (a clone of the target's estimator) is
    fitted on one half of the holdout and scores are calibrated by its loss; the other half is the
    non-member sample. ``(None, why)`` when it cannot run."""
    import numpy as np
    from sklearn.base import clone

    half = len(holdout_order) // 2
    reference_rows, evaluation_rows = holdout_order[:half], holdout_order[half:]
    n = min(len(train_order), len(evaluation_rows), max_samples)
    if n < min_samples or half < min_samples:
        return None, (
            f"the holdout's {len(holdout_order)} rows split into a reference half and an evaluation half of fewer than "
            f"min_samples ({min_samples}) rows each; give at least {2 * min_samples} holdout rows"
        )
    if len(np.unique(holdout_rows.y[reference_rows])) < 2:
        return None, "the reference half of the holdout holds a single class: no reference model can be fitted"
    try:
        with quiet_warnings():
            reference = clone(estimator).fit(
                holdout_rows.X.iloc[reference_rows], estimator.classes_[holdout_rows.y[reference_rows]]
            )
    except Exception as exc:  # noqa: BLE001 - a model that cannot be refitted leaves this attack not performed
        return None, f"the model cannot be refitted as a reference model ({type(exc).__name__}: {exc})"
    members, non_members = train_order[:n], evaluation_rows[:n]

    def losses(model: Any, rows: _Rows, index: np.ndarray) -> np.ndarray:
        return true_label_loss(_aligned_probabilities(model, rows.X.iloc[index], estimator.classes_), rows.y[index])

    result = evaluate_attack(
        CALIBRATED_LOSS,
        calibrated_loss_scores(losses(estimator, train_rows, members), losses(reference, train_rows, members)),
        calibrated_loss_scores(losses(estimator, holdout_rows, non_members), losses(reference, holdout_rows, non_members)),
        **options,
    )
    return result, (
        f"calibrated-loss: reference model fitted on {half} holdout rows, evaluated on {n} training and {n} other holdout rows"
    )


def _aligned_probabilities(model: Any, X: pd.DataFrame, classes: np.ndarray) -> np.ndarray:
    """``model``'s probabilities in the column order of ``classes`` (0 for a class it never saw)."""
    import numpy as np

    proba = _probabilities(model, X)
    own = {c: i for i, c in enumerate(np.asarray(model.classes_).tolist())}
    out = np.zeros((len(X), len(classes)))
    for j, c in enumerate(classes.tolist()):
        if c in own:
            out[:, j] = proba[:, own[c]]
    return out


def _probabilities(model: Any, X: pd.DataFrame) -> np.ndarray:
    import numpy as np

    try:
        with quiet_warnings():
            proba = np.asarray(model.predict_proba(X), dtype=float)
    except Exception as exc:
        raise GateError(f"the model's predict_proba failed on the data: {type(exc).__name__}: {exc}") from exc
    if proba.ndim != 2 or proba.shape[0] != len(X) or not np.all(np.isfinite(proba)):
        raise GateError(
            f"the model's predict_proba returned an array of shape {proba.shape} with non-finite values or wrong rows"
        )
    return proba


def _load_local_model(
    model: str, model_subject: str | None, trust_pickle: bool, trusted_types: Sequence[str]
) -> tuple[Any, str, Subject]:
    """The estimator at the local path ``model``, its format and the subject it is attested under
    (the digest is taken before and after loading, so a file that changes in between is refused)."""
    location = str(model)
    path = location[len("file://") :] if location.startswith("file://") else location
    if "://" in path or path.startswith(MLFLOW_SCHEMES):
        raise ConfigurationError(
            f"{location}: the membership-inference engine reads local paths; fetch remote models first "
            "(airflow_mlsecops.io.artifacts.fetch) and pass model_subject"
        )
    local = Path(path)
    if not local.exists():
        raise GateError(f"model {location} does not exist")
    digest = sha256_path(local)
    loaded = load_model(local, trust_pickle=trust_pickle, trusted_types=trusted_types)
    if sha256_path(local) != digest:
        raise GateError(f"model {model_subject or location} changed while it was being loaded; refusing to judge a moving target")
    return loaded.estimator, loaded.format, Subject(model_subject or subject_name(location), digest)


def _check_probabilistic_classifier(estimator: Any) -> None:
    from sklearn.base import is_classifier

    name = type(estimator).__name__
    if not is_classifier(estimator) or not hasattr(estimator, "classes_"):
        raise GateError(f"unsupported model type {name}: the membership-inference gate attacks fitted classifiers")
    if not callable(getattr(estimator, "predict_proba", None)):
        raise GateError(
            f"model {name} has no predict_proba: the loss and confidence attacks need class probabilities "
            "(e.g. SVC(probability=True), or a calibrated classifier)"
        )


def _features(estimator: Any, feature_columns: Sequence[str] | None, frame: pd.DataFrame, label_column: str) -> list[str]:
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
        features = [str(c) for c in frame.columns if str(c) != label_column]
    if label_column in features:
        raise GateError(f"the label column {label_column!r} cannot also be a feature")
    return features


def _rows(frame: pd.DataFrame, features: list[str], label_column: str, classes: np.ndarray, name: str) -> _Rows:
    """The rows with a label the model knows, features in the model's order, labels as class indices."""
    import numpy as np

    columns = [str(c) for c in frame.columns]
    if label_column not in columns:
        raise GateError(f"label column {label_column!r} is not in {name} (columns: {', '.join(columns[:30])})")
    missing = [c for c in features if c not in columns]
    if missing:
        raise GateError(f"{name} lacks the feature column(s) {', '.join(missing)}")
    index = {c: i for i, c in enumerate(classes.tolist())}
    labels = np.array([index.get(v, -1) for v in frame[label_column].tolist()], dtype=int)
    usable = labels >= 0
    return _Rows(frame.loc[usable, features].reset_index(drop=True), labels[usable], int((~usable).sum()))


def _overlap(train: _Rows, holdout: _Rows) -> np.ndarray:
    """For each holdout row, whether the training data holds an identical row (features and label)."""
    import numpy as np
    import pandas as pd

    def hashes(rows: _Rows) -> np.ndarray:
        frame = rows.X.assign(__label__=rows.y)
        return np.asarray(pd.util.hash_pandas_object(frame, index=False), dtype=np.uint64)

    if not len(holdout.y):
        return np.zeros(0, dtype=bool)
    return np.isin(hashes(holdout), hashes(train))


def _finding(identifier: str, message: str, passed: bool) -> Finding:
    if passed:
        return Finding(id=identifier, severity=Severity.INFO, message=message, passed=True)
    return Finding(id=identifier, severity=Severity.HIGH, message=message, atlas=_ATLAS, owasp_ml=_OWASP, passed=False)
