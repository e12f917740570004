"""Drift gate: compare a production batch with the training reference using Evidently.

>>> from airflow_mlsecops.gates.drift import detect_drift
>>> outcome = detect_drift("train.parquet", "batch-2026-11-26.csv")   # doctest: +SKIP
>>> outcome.verdict, outcome.result.metrics["drifted_share"]            # doctest: +SKIP
(<Verdict.FAILED: 'failed'>, 0.3333333333333333)

Runnable as it stands (needs Evidently; ~10 s the first time, most of it importing Evidently)::

    import tempfile
    from pathlib import Path
    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.gates.drift import detect_drift

    tmp = Path(tempfile.mkdtemp())
    credit_frame(rows=2000, seed=1).to_csv(tmp / "reference.csv", index=False)
    shifted = credit_frame(rows=2000, seed=2)
    shifted["income"] *= 1.6
    shifted["debt_ratio"] += 0.3
    shifted["age"] += 12
    shifted["late_payments"] += 2
    shifted.to_csv(tmp / "current.csv", index=False)
    outcome = detect_drift(str(tmp / "reference.csv"), str(tmp / "current.csv"))
    print(outcome.verdict.value, outcome.result.summary)

**How.** Evidently 0.7 runs ``Report([DataDriftPreset(drift_share=...)], include_tests=True)`` on
the two frames. Column types are inferred once, from the reference, and applied to both frames,
so a batch cannot change how a column is compared. Evidently picks the method per column: above
1,000 reference rows normed Wasserstein distance (numeric) or Jensen-Shannon distance
(categorical, and integers with at most 10 distinct values), threshold 0.1, *higher* means drift;
at 1,000 rows or fewer the K-S (numeric) or chi-square (categorical) p-value, threshold 0.05,
*lower* means drift. A column's values drifted when Evidently's own test for it failed (the
gate reads the score only to tell a *severe* drift, below). A column Evidently could not type (datetimes,
mixed objects) is not compared by Evidently; the evidence names it (finding
``drift.column-not-checked``, severity ``low``), and the verdict is then ``warned`` (incomplete:
``details["not_performed"]``), never ``passed``.

**Missing values.** Evidently compares the values that are present, so a batch in which 45% of
the incomes are missing looks like the reference. The gate adds its own test on every compared
column, on every row (never sampled): the share of missing values changed when the absolute
change is at least ``max_missing_change`` (default 0.05) *and* a two-sided two-proportion z-test
gives a p-value below :data:`MISSING_SIGNIFICANCE` (0.001; it keeps a few missing values in a
small batch from counting). A column whose missing share changed counts as drifted (finding
``drift.missing-share``), in either direction.

**Verdict.** The dataset drifted when at least ``drift_share`` (default 0.25, not Evidently's
0.5, which lets two of five heavily drifted columns pass) of the compared columns drifted, by
values or missing share, or when one column drifted *severely* (``fail_on_severe_column``): a
distance at least twice its threshold, a p-value 1,000 times below it, or a missing share that
moved by 0.2 or more. On the demo data one clean 1,000-row batch in 30 has one column just over
Evidently's threshold (0.107 against 0.1), none has two or a severe one.

**Sampling.** Evidently's time grows with the row count (6-9 s at 100k rows x 20 columns on a
2-core machine; users report hours at millions of rows). With ``max_rows`` (default 50,000) a
frame longer than that is sampled down to ``max_rows`` rows without replacement. The seed is
drawn afresh for every run (``random_state=None``, the default), so whoever writes the batch
cannot know which rows will be left out and place a shift there; the seed used is in the
evidence (``sampling.random_state``, ``sampling.seed_source``), and passing it back as
``random_state`` reproduces the comparison. A fixed ``random_state`` makes the skipped rows
predictable (``seed_source: fixed``); use it to reproduce, not in production. The evidence says
what was sampled: metrics ``rows_reference`` / ``rows_current`` (rows in the files),
``rows_reference_compared`` / ``rows_current_compared``, ``sampled_reference`` /
``sampled_current`` (1.0 when sampled), the details, the summary and ``drift_report.json``. The
subjects' digests always cover the whole files. ``max_rows=None`` compares every row.

**Evidence.** ``drift_report.json`` (Evidently's snapshot trimmed to what a reviewer needs: the
dataset test, per-column method, score, threshold and status, the missing shares, and the
sampling) and, with ``html=True``, Evidently's self-contained ``drift_report.html`` (about 4.6
MiB). Findings: ``drift.column`` per column whose values drifted (location ``column <name>``),
``drift.missing-share`` per column whose missing share changed, ``drift.dataset`` for the
dataset-level verdict. Bad input (a missing or empty file, columns that differ between the frames,
a column that is numeric in one frame and not the other, a column with no values) is an ``error``
verdict with a message that names the problem.

**Empty batches.** A current batch with no rows (a header-only CSV, a zero-row Parquet file) is an
``error`` verdict, never "no drift", unless ``allow_empty=True``: then Evidently does not run, the
gate passes with finding ``drift.empty-batch`` and the report says ``"empty_batch": true``. An empty
reference is always an ``error`` (:mod:`airflow_mlsecops.gates.empty_data`).

**Data larger than memory** (:mod:`.streaming`). With ``batch_rows``, or when a location given as
a path is a directory of part files, an ``s3://`` prefix or a file of at least 256 MiB
(:func:`airflow_mlsecops.io.batches.should_stream`), and ``max_rows`` is set, both sides are read
in batches (:class:`airflow_mlsecops.io.batches.TableStream`, every part hashed as it is read) and
each is reduced to a sketch: a uniform reservoir sample of ``max_rows`` rows, drawn with the run's
recorded seed (``random_state`` reproduces it), and the exact count of missing values per column
over every row. Evidently compares the two samples; the missing-share test uses the exact counts.
Peak memory is about the two samples plus one batch, not the data size. The evidence says
``streamed`` (``details["streamed"]``: parts, rows seen, bytes, the sketch method and size),
``sampling.method`` and ``metrics["streamed"] = 1``; identifiers are recognised on the reference's
first batch. ``max_rows=None`` (compare every row) is read in memory; with ``batch_rows`` it is a
configuration error.

**Inputs are local.** The engine reads local files or tables loaded already; the operator and
the CLI fetch ``s3://``, ``runs:/`` and ``models:/`` data first (a streamed read takes a local
path or an ``s3://`` location itself) with
:func:`airflow_mlsecops.io.locations.load_table_at` (which names a file stored in MLflow by its
URI) and pin the model's alias with :func:`airflow_mlsecops.io.locations.resolve_model_ref`. When
that fails, :func:`inputs_unavailable` records the same ``error`` verdict the gate would.

**Modules.** :mod:`.gate` (entry points, arguments, policy), :mod:`.columns` (column roles and the
checks on the frames), :mod:`.comparison` (Evidently and the missing-share test), :mod:`.streaming`
(the bounded sketch), :mod:`.report` (verdict, findings, evidence), :mod:`.thresholds`.
"""

from airflow_mlsecops.gates.drift.comparison import ColumnDrift, MissingShare, two_proportion_p_value
from airflow_mlsecops.gates.drift.gate import detect_drift, inputs_unavailable
from airflow_mlsecops.gates.drift.thresholds import (
    DEFAULT_DRIFT_SHARE,
    DEFAULT_MAX_MISSING_CHANGE,
    DEFAULT_MAX_ROWS,
    GATE_NAME,
    HTML_FILE,
    JSON_FILE,
    MAX_COLUMNS_IN_DETAILS,
    MISSING_SIGNIFICANCE,
    SEVERE_DISTANCE_FACTOR,
    SEVERE_MISSING_CHANGE,
    SEVERE_P_VALUE_FACTOR,
    SKETCH_METHOD,
)

__all__ = [
    "DEFAULT_DRIFT_SHARE",
    "DEFAULT_MAX_MISSING_CHANGE",
    "DEFAULT_MAX_ROWS",
    "GATE_NAME",
    "HTML_FILE",
    "JSON_FILE",
    "MAX_COLUMNS_IN_DETAILS",
    "MISSING_SIGNIFICANCE",
    "SEVERE_DISTANCE_FACTOR",
    "SEVERE_MISSING_CHANGE",
    "SEVERE_P_VALUE_FACTOR",
    "SKETCH_METHOD",
    "ColumnDrift",
    "MissingShare",
    "detect_drift",
    "inputs_unavailable",
    "two_proportion_p_value",
]
