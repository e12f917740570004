"""The Spark session the data gates run on when ``engine="spark"`` (``--engine spark``).

pyspark is an optional extra (``pip install 'airflow-mlsecops[spark]'``, Java 17+); it is imported
only here, only when a Spark engine is asked for. The master URL comes from, first match wins: the
``master`` argument, the ``MLSECOPS_SPARK_MASTER`` environment variable, ``local[2]``.
(The Airflow connection and ``[mlsecops]`` options are resolved by the operators; see
``docs/configuration.md``.)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow_mlsecops.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
ENGINES = ("pandas", "spark")


def check_engine(engine: str) -> str:
    """``engine`` if it is one the data gates know (:data:`ENGINES`); :class:`ConfigurationError` otherwise."""
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


def spark_session(master: str | None = None, *, app_name: str = "airflow-mlsecops") -> SparkSession:
    """A Spark session on ``master`` (see the module docstring); an existing session is reused.

    :raises ConfigurationError: pyspark is not installed, or the session cannot start (no Java).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigurationError(
            "engine='spark' needs pyspark: pip install 'airflow-mlsecops[spark]' (and Java 17 or later)"
        ) from exc
    url = master or os.environ.get("MLSECOPS_SPARK_MASTER") or DEFAULT_MASTER
    try:
        return (
            SparkSession.builder.master(url)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    except Exception as exc:
        raise ConfigurationError(f"cannot start a Spark session on {url}: {exc}") from exc
