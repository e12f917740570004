"""Data integrity and poisoning gate: compare a new training batch with a trusted reference.

>>> from airflow_mlsecops.gates.data_integrity import check_integrity
>>> outcome = check_integrity("batch.csv", "reference.csv", label_column="defaulted")   # doctest: +SKIP
>>> outcome.verdict                                                                    # doctest: +SKIP
<Verdict.FAILED: 'failed'>
>>> [f.id for f in outcome.result.failed_findings]                                     # doctest: +SKIP
['integrity.duplicates']

A runnable round trip on the synthetic credit data set (a few seconds)::

    import tempfile
    from pathlib import Path

    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.gates.data_integrity import check_integrity

    tmp = Path(tempfile.mkdtemp())
    credit_frame(rows=5000, seed=7).to_csv(tmp / "reference.csv", index=False)
    batch = credit_frame(rows=2000, seed=8)
    batch.to_csv(tmp / "batch.csv", index=False)
    print(check_integrity(str(tmp / "batch.csv"), str(tmp / "reference.csv"), label_column="defaulted").verdict)
    # Verdict.PASSED
    poisoned = batch.assign(income=batch["income"] * 3)
    poisoned.to_csv(tmp / "poisoned.csv", index=False)
    outcome = check_integrity(str(tmp / "poisoned.csv"), str(tmp / "reference.csv"), label_column="defaulted")
    print(outcome.verdict, [f.id for f in outcome.result.failed_findings])
    # Verdict.FAILED ['integrity.out_of_range', 'integrity.feature_shift', 'integrity.label_flips']
    # (tripled incomes also break the reference's link between income and default: the labels look flipped)

Where things live:

* :mod:`.gate` - :func:`check_integrity`: read both files, run the checks, what is not detected;
  :func:`inputs_unavailable` for data the caller could not load.
* :mod:`.thresholds` - :class:`IntegrityThresholds`, the limits and their checks.
* :mod:`.results` - one check's result and finding, :data:`CHECK_IDS` (the order the checks run in).
* :mod:`.schema` - column kinds, the frames the checks share, ``integrity.schema``.
* :mod:`.cells` - ``integrity.non_finite`` and ``integrity.formula_injection`` (single cells, no reference).
* :mod:`.labels` - ``integrity.label_shift`` and ``integrity.class_set``.
* :mod:`.duplicates` - ``integrity.duplicates`` and ``integrity.near_duplicates``.
* :mod:`.distribution` - ``integrity.out_of_range`` and ``integrity.feature_shift``.
* :mod:`.label_flips` - ``integrity.label_flips`` (calibrated out-of-fold forests of the reference, cleanlab).
* :mod:`.report` - the summary, metrics, ``integrity_report.json`` and details.
* :mod:`.streaming` - the bounded-memory path (``batch_rows``): one pass per input, which checks are exact,
  which run on a sample, which are not performed.
"""

from airflow_mlsecops.gates.data_integrity.gate import check_integrity, inputs_unavailable
from airflow_mlsecops.gates.data_integrity.report import GATE_NAME, REPORT_FILE
from airflow_mlsecops.gates.data_integrity.results import CHECK_IDS
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

__all__ = ["CHECK_IDS", "GATE_NAME", "REPORT_FILE", "IntegrityThresholds", "check_integrity", "inputs_unavailable"]
