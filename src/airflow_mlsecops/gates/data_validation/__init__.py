"""Data validation gate: a Great Expectations suite over a data file, failing closed.

>>> from airflow_mlsecops.gates.data_validation import validate_data
>>> outcome = validate_data("train.csv", "suite.json")     # doctest: +SKIP
>>> outcome.verdict                                         # doctest: +SKIP
<Verdict.PASSED: 'passed'>

The suite is Great Expectations' own JSON (or YAML) form, given as a file path, a dict or a GX
``ExpectationSuite``::

    {"name": "train", "expectations": [{"type": "expect_column_values_to_not_be_null",
                                        "kwargs": {"column": "age"}}]}

GX 1.x silently drops an expectation whose ``type`` it does not know; this gate refuses such a
suite instead, naming the unknown type, and refuses an empty suite. An expectation that cannot be
evaluated (a column that does not exist) is a failed finding. The evidence is GX's result at
SUMMARY level (a few KiB; never COMPLETE, which would copy every bad value into the evidence),
with GX's sample of offending values removed unless ``include_unexpected_values=True``: those
values may be personal data, and counts and shares are enough to judge.

**A repeated column name** is an ``error`` verdict naming the columns: GX would judge the first
copy while other loaders keep the last, so a poisoned second copy would pass
(:func:`airflow_mlsecops.io.tabular.repeated_labels`).

**An empty batch** (a header-only CSV, a zero-row Parquet file) is an ``error`` verdict, never a
pass, unless ``allow_empty=True``: then the suite still runs (a row-count expectation still
rejects) and finding ``data-validation.empty-batch`` says the batch was empty
(:mod:`airflow_mlsecops.gates.empty_data`).

**Inputs are local.** The engine reads a local file or a table loaded already; the operator and
the CLI load ``s3://``, ``runs:/`` and ``models:/`` data first with
:func:`airflow_mlsecops.io.locations.load_table_at` (the evidence names it by its URI). When that
fails, :func:`inputs_unavailable` records the same ``error`` verdict the gate would.

**Column roles** (``id_columns``, ``label_column``, ``prediction_column``, ``timestamp_column``,
``features``; :mod:`airflow_mlsecops.gates.columns`) add expectations to the suite, run in the same
validation and recorded as such (finding ids ``column-role.<type>``, ``details["column_roles"]``):
each declared identifier, label, timestamp and feature column must exist, and each identifier
column (declared, or inferred from the batch) must be unique and never missing
(:mod:`airflow_mlsecops.gates.data_validation.roles`).

**engine="spark"** runs the same suite through GX's Spark data source on a session from
:func:`airflow_mlsecops.io.spark.spark_session` (master: argument, Airflow connection
``mlsecops_spark``, ``[mlsecops] spark_master``, ``MLSECOPS_SPARK_MASTER``, ``local[2]``). Spark reads
the file, a directory of part files or an ``s3://`` prefix itself, after every part was hashed; on
a ``local[...]`` master it reads a private snapshot copied while hashing (what is judged is what is
named), on a cluster it reads the parts in place after hashing, a window documented in
:mod:`airflow_mlsecops.gates.data_validation.spark_batch` and recorded in ``details["spark"]``.
"""

from __future__ import annotations

from airflow_mlsecops.gates.data_validation.gate import GATE_NAME, inputs_unavailable, validate_data
from airflow_mlsecops.gates.data_validation.suite import load_suite_spec, suite_policy

__all__ = ["GATE_NAME", "inputs_unavailable", "load_suite_spec", "suite_policy", "validate_data"]
