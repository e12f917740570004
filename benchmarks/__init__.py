"""Benchmark suite of airflow-mlsecops: ``make bench`` (or ``python -m benchmarks [--quick] [--only NAME]``).

Speed and memory targets live here, never in the tests. Every row compares our code with a peer
measured in the same run on the same inputs (bare ``cryptography``, ``hashlib``, ``openssl speed``,
plain SQLAlchemy, bare MLflow, bare Great Expectations, a plain-Airflow DAG) and reports the
median of several interleaved repetitions. Each group runs in its own fresh subprocess, so the
import state of one (MLflow, GX) never leaks into another; generated inputs go to a temporary
directory that is deleted at the end. Results are printed as one table and written as JSON to
``benchmarks/results/latest.json`` (git-ignored).

Groups (``--only``): ``import``, ``dagparse``, ``signing``, ``hashing``, ``ledger``, ``kms``, ``recording``,
``validation``, ``drift``, ``pii``, ``integrity``, ``modelscan``, ``codescan``, ``modelsign``, ``airflow`` (a real local Airflow
against ``airflow standalone``), ``pii-stream`` and ``integrity-stream`` (1M and 10M rows, streamed against in
memory), ``spark`` (validation on Spark ``local[2]`` against GX on pandas), ``membership``, ``dp-evidence``,
``encrypted-scoring``.
"""

GROUPS = (
    "import",
    "dagparse",
    "signing",
    "hashing",
    "ledger",
    "kms",
    "recording",
    "validation",
    "drift",
    "pii",
    "integrity",
    "modelscan",
    "codescan",
    "modelsign",
    "airflow",
    "pii-stream",
    "integrity-stream",
    "spark",
    "membership",
    "dp-evidence",
    "encrypted-scoring",
)
