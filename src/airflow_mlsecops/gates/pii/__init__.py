"""PII scan gate: find personal data in columns that the policy does not allow to hold it.

>>> from airflow_mlsecops.gates.pii import scan_pii
>>> outcome = scan_pii("train.csv", allow_columns=["contact_email"])    # doctest: +SKIP
>>> outcome.verdict                                                      # doctest: +SKIP
<Verdict.FAILED: 'failed'>
>>> print(outcome.result.failed_findings[0].message)                    # doctest: +SKIP
column 'notes' holds US social security numbers in 3 of 1000 scanned rows (0.30%)

:func:`scan_frame` is the pure engine behind it (runnable as it stands):

>>> import pandas as pd
>>> from airflow_mlsecops.gates.pii import scan_frame
>>> frame = pd.DataFrame({"who": ["ann@example.com", "n/a"], "card": ["4111 1111 1111 1111", ""]})
>>> for column in scan_frame(frame, allow_columns=["who"]):
...     print(column.column, column.allowed, {t: (h.count, h.samples) for t, h in column.hits.items()})
who True {'email': (1, ('a***@e***.com',))}
card False {'credit_card': (1, ('**** **** **** 1111',))}


Where things live:

* :mod:`.gate` - :func:`scan_pii`: read the file (a random sample with ``max_rows``, :func:`sample_rows`),
  scan it, the verdict; what is not detected;
  :func:`inputs_unavailable` for data the caller could not load.
* :mod:`.scanning` - :func:`scan_frame`, the pure engine: text columns through Arrow and RE2, numeric
  columns, column names, the rules judged per column.
* :mod:`.state` - what a scan saw in a column, in a form that adds up over batches; the column rules
  applied once to the whole column (so a file read whole, in batches or on Spark gives the same findings).
* :mod:`.streaming` - the scan of a data set read in batches (``batch_rows``, a directory of parts,
  an ``s3://`` prefix), reservoir samples (:func:`reservoir_rows`).
* :mod:`.spark` - the scan as a Spark job (``engine="spark"``), the detectors run in ``mapInPandas``.
* :mod:`.normalising` - what a cell goes through first: Unicode normalisation, escapes decoded, obfuscations undone.
* :mod:`.detectors` - :data:`PII_TYPES`, what each type matches, with which confidence
  (:func:`find_pii`, :func:`detect`, :func:`resolve_types`).
* :mod:`.checksums` - Luhn and card networks, US SSN ranges, IBAN mod-97, E.164 country codes.
* :mod:`.masking` - the masks applied to every sample before it is recorded.
* :mod:`.columns` - the allow list, which columns are scanned and how.
* :mod:`.report` - findings, summary, metrics, ``pii_report.json`` and details.
"""

from airflow_mlsecops.gates.pii.checksums import card_number_ok, e164_plausible, iban_ok, ssn_ok
from airflow_mlsecops.gates.pii.detectors import CONFIDENCES, PII_TYPES, detect, find_pii, resolve_types
from airflow_mlsecops.gates.pii.gate import inputs_unavailable, sample_rows, scan_pii
from airflow_mlsecops.gates.pii.report import GATE_NAME, REPORT_FILE
from airflow_mlsecops.gates.pii.scanning import (
    CARD_ID_MIN_CANDIDATES,
    MAX_SAMPLES,
    PHONE_COLUMN_MIN_SHARE,
    ColumnPII,
    TypeHits,
    scan_frame,
)
from airflow_mlsecops.gates.pii.streaming import reservoir_rows

__all__ = [
    "CARD_ID_MIN_CANDIDATES",
    "CONFIDENCES",
    "GATE_NAME",
    "MAX_SAMPLES",
    "PHONE_COLUMN_MIN_SHARE",
    "PII_TYPES",
    "REPORT_FILE",
    "ColumnPII",
    "TypeHits",
    "card_number_ok",
    "detect",
    "e164_plausible",
    "find_pii",
    "iban_ok",
    "inputs_unavailable",
    "reservoir_rows",
    "resolve_types",
    "sample_rows",
    "scan_frame",
    "scan_pii",
    "ssn_ok",
]
