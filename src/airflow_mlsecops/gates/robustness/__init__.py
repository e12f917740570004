"""Adversarial robustness gate: accuracy under a bounded input perturbation, rejected below a threshold.

A runnable example on the synthetic credit data (no files, no MLflow)::

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
    from airflow_mlsecops.gates.robustness import robust_accuracy

    frame = credit_frame(rows=2000, seed=7)
    X, y = frame[list(FEATURES)], frame[LABEL].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    m = robust_accuracy(model, X, y, epsilon=0.1, method="auto")
    print(m.method, m.exactness, round(m.clean_accuracy, 3), round(m.robust_accuracy, 3))
    # linear-exact exact 0.812 0.789

* :mod:`.options` - methods, norms, epsilon scales, defaults, and the policy check.
* :mod:`.measurement` - :class:`RobustnessMeasurement` and :class:`LinearForm`, the engine's typed results.
* :mod:`.model` - pipeline steps, affine scalers and class indices of a scikit-learn model.
* :mod:`.linear` - the exact worst case of a linear classifier.
* :mod:`.noise` - random-noise upper bounds.
* :mod:`.art_attacks` - FGSM, PGD and HopSkipJump through IBM's Adversarial Robustness Toolbox.
* :mod:`.engine` - :func:`select_method` and :func:`robust_accuracy`: what each method's number means.
* :mod:`.evaluation` - one evaluation of a local model on local data: findings, report, subjects.
* :mod:`.gate` - :func:`evaluate_robustness`, the gate, and the error outcome of inputs that could not be fetched.

Models are loaded by :mod:`airflow_mlsecops.io.model_loader` (pickles refused unless trusted).
"""

from airflow_mlsecops.gates.robustness.art_attacks import art_version
from airflow_mlsecops.gates.robustness.engine import robust_accuracy, select_method
from airflow_mlsecops.gates.robustness.evaluation import evaluate_model_on_data
from airflow_mlsecops.gates.robustness.gate import evaluate_robustness, inputs_unavailable, robustness_policy
from airflow_mlsecops.gates.robustness.linear import linear_form
from airflow_mlsecops.gates.robustness.measurement import LinearForm, RobustnessMeasurement
from airflow_mlsecops.gates.robustness.model import describe_model
from airflow_mlsecops.gates.robustness.options import (
    ATTACK,
    ATTACK_MAX_SAMPLES,
    BOUND,
    EPSILON_SCALES,
    EXACT,
    EXACTNESS,
    GATE_NAME,
    METHODS,
    NOISE_DRAWS,
    NORMS,
    REPORT_FILE,
)

__all__ = [
    "ATTACK",
    "ATTACK_MAX_SAMPLES",
    "BOUND",
    "EPSILON_SCALES",
    "EXACT",
    "EXACTNESS",
    "GATE_NAME",
    "METHODS",
    "NOISE_DRAWS",
    "NORMS",
    "REPORT_FILE",
    "LinearForm",
    "RobustnessMeasurement",
    "art_version",
    "describe_model",
    "evaluate_model_on_data",
    "evaluate_robustness",
    "linear_form",
    "robust_accuracy",
    "inputs_unavailable",
    "robustness_policy",
    "select_method",
]
