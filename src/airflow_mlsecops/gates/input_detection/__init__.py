"""Input anomaly gate: flag production rows off the training distribution or on the decision boundary (evasion).

At training time :func:`fit_detector` (:mod:`.fitting`) fits an :class:`InputDetector`
(:mod:`.detector`, its four scores) and :func:`save_detector` / :func:`log_detector_to_model`
(:mod:`.storage`) store it as two plain files inside the model, never pickled. In production
:func:`score_batch` (:mod:`.gate`) scores every row of a batch and fails the gate when the share of
flagged rows exceeds ``max_flagged_share``, or when more than ``max_repeated_share`` of the rows
repeat (exactly or nearly) another row of the batch (:mod:`.repeats`: the trace of probing).
The detector is fitted on feature columns only and records them; identifiers, the label, the
prediction and the timestamp are never scored (:mod:`.columns`), and a batch that lacks one of the
detector's features is rejected with finding ``input.missing-column``.
Runnable as it stands (scikit-learn only, a few seconds)::

    import tempfile
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
    from airflow_mlsecops.gates.input_detection import fit_detector, load_detector, save_detector

    train = credit_frame(rows=4000, seed=7)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train[list(FEATURES)], train[LABEL])
    detector = fit_detector(train, model=model, feature_columns=FEATURES)
    directory = save_detector(detector, tempfile.mkdtemp())
    batch = credit_frame(rows=1000, seed=8)
    flags = load_detector(directory).flags(batch, model=model)      # score name -> rows above threshold
    print(f"{sum(flags.values()).astype(bool).mean():.1%} of the rows flagged")   # about 1%
"""

from airflow_mlsecops.gates.input_detection.detector import DISTANCE_SCORES, MODEL_SCORES, SCORE_KINDS, InputDetector
from airflow_mlsecops.gates.input_detection.fitting import detector_features, fit_detector
from airflow_mlsecops.gates.input_detection.gate import GATE_NAME, MAX_REPORTED_ROWS, REPORT_FILE, inputs_unavailable, score_batch
from airflow_mlsecops.gates.input_detection.repeats import (
    DEFAULT_MAX_REPEATED_SHARE,
    DEFAULT_NEAR_DUPLICATE_RADIUS,
    Repeats,
    find_repeats,
)
from airflow_mlsecops.gates.input_detection.storage import (
    ARRAY_NAMES,
    ARRAYS_FILE,
    DETECTOR_ARTIFACT_PATH,
    DETECTOR_FILE,
    DETECTOR_FORMAT,
    MAX_DETECTOR_BYTES,
    load_detector,
    log_detector_to_model,
    save_detector,
)

__all__ = [
    "ARRAYS_FILE",
    "ARRAY_NAMES",
    "DEFAULT_MAX_REPEATED_SHARE",
    "DEFAULT_NEAR_DUPLICATE_RADIUS",
    "DETECTOR_ARTIFACT_PATH",
    "DETECTOR_FILE",
    "DETECTOR_FORMAT",
    "DISTANCE_SCORES",
    "GATE_NAME",
    "MAX_DETECTOR_BYTES",
    "MAX_REPORTED_ROWS",
    "MODEL_SCORES",
    "REPORT_FILE",
    "SCORE_KINDS",
    "InputDetector",
    "Repeats",
    "detector_features",
    "find_repeats",
    "fit_detector",
    "inputs_unavailable",
    "load_detector",
    "log_detector_to_model",
    "save_detector",
    "score_batch",
]
