"""Membership-inference gate: how well a black-box attacker tells the model's training rows from
rows it never saw, rejected above a limit; and the training-privacy gate, which checks the
differential-privacy guarantee a training run declares.

A runnable example on the synthetic credit data (files in a temporary directory)::

    import tempfile
    from pathlib import Path

    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
    from airflow_mlsecops.gates.membership import evaluate_membership_inference

    tmp = Path(tempfile.mkdtemp())
    frame = credit_frame(rows=2000, seed=3)
    train, holdout = frame.iloc[:800], frame.iloc[800:]
    train.to_csv(tmp / "train.csv", index=False)
    holdout.to_csv(tmp / "holdout.csv", index=False)
    models = {"logreg": LogisticRegression(C=0.01, max_iter=1000), "forest": RandomForestClassifier(random_state=0)}
    for name, model in models.items():
        model.fit(train[list(FEATURES)], train[LABEL])
        sio.dump(model, tmp / f"{name}.skops")
        outcome = evaluate_membership_inference(str(tmp / f"{name}.skops"), tmp / "train.csv", tmp / "holdout.csv",
                                                label_column=LABEL)
        print(name, outcome.verdict.value, round(outcome.result.metrics["attack_auc"], 2))
    # logreg passed 0.51
    # forest failed 0.76

* :mod:`.options` - attacks, defaults and the policy check.
* :mod:`.attacks` - the attacks' scores, ROC AUC, advantage and bootstrap intervals (pure numpy).
* :mod:`.evaluation` - one evaluation of a local model on local files: findings, report, subjects.
* :mod:`.gate` - :func:`evaluate_membership_inference` and the error outcome of inputs that could not be fetched.
* :mod:`.training_privacy` - the MLflow tags a training run declares its DP guarantee with
  (:func:`declare_dp_guarantee`) and :func:`check_training_privacy`.
"""

from airflow_mlsecops.gates.membership.attacks import AttackResult, RocStatistics, roc_statistics
from airflow_mlsecops.gates.membership.gate import evaluate_membership_inference, inputs_unavailable, membership_policy
from airflow_mlsecops.gates.membership.options import (
    ATTACKS,
    CALIBRATED_LOSS,
    CONFIDENCE,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_ADVANTAGE,
    DEFAULT_MAX_ATTACK_AUC,
    DEFAULT_MAX_SAMPLES,
    DEFAULT_MIN_SAMPLES,
    GATE_NAME,
    LOSS,
    REPORT_FILE,
    parse_attacks,
)

__all__ = [
    "ATTACKS",
    "CALIBRATED_LOSS",
    "CONFIDENCE",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_MAX_ADVANTAGE",
    "DEFAULT_MAX_ATTACK_AUC",
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_MIN_SAMPLES",
    "GATE_NAME",
    "LOSS",
    "REPORT_FILE",
    "AttackResult",
    "RocStatistics",
    "evaluate_membership_inference",
    "inputs_unavailable",
    "membership_policy",
    "parse_attacks",
    "roc_statistics",
]
