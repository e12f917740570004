"""The Spark session the data gates run on when ``engine="spark"`` (``--engine spark``).

pyspark is an optional extra (``pip install 'airflow-mlsecops[spark]'``, Java 17+); it is imported
only inside functions, only when a Spark engine is asked for. The master URL comes from, first
match wins (:func:`resolve_master`):

1. the ``master`` argument (an operator's ``spark_master``, the CLI's ``--spark-master``);
2. the Airflow connection ``conn_id`` (default ``mlsecops_spark``, type ``spark``), only inside an
   Airflow process and only if it exists: its host (``spark://host:7077``, ``local[2]``, ``yarn``,
   ``k8s://https://...``; a bare host gets ``spark://``), its port if the host names none, and its
   extra ``{"conf": {"spark.executor.memory": "2g"}}`` passed to the session builder;
3. Airflow's ``[mlsecops] spark_master`` option (``AIRFLOW__MLSECOPS__SPARK_MASTER``), when
   Airflow's configuration is loaded;
4. the ``MLSECOPS_SPARK_MASTER`` environment variable;
5. ``local[2]``.

>>> resolve_master("local[4]").url, resolve_master("local[4]").source
('local[4]', 'argument')
>>> master_from_connection("spark", "spark-master", 7077)
'spark://spark-master:7077'

A session that already runs in the process is reused (Spark allows one per JVM): its master wins
over the resolved one, and :func:`session_master` reports the one really used.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
DEFAULT_CONN_ID = "mlsecops_spark"
ENV_MASTER = "MLSECOPS_SPARK_MASTER"
OPTION_MASTER = "spark_master"
ENGINES = ("pandas", "spark")
INSTALL_HINT = "pip install 'airflow-mlsecops[spark]' (and Java 17 or later)"
_SCHEMES = ("local", "spark://", "yarn", "k8s://", "mesos://")


def check_engine(engine: str) -> str:
    """``engine`` if it is one the data gates know (:data:`ENGINES`); :class:`ConfigurationError` otherwise."""
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


@dataclass(frozen=True)
class SparkMaster:
    """A resolved master URL, where it came from and the session settings that came with it."""

    url: str
    source: str
    conf: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"master": self.url, "source": self.source, "conf": sorted(self.conf)}  # names only: values may be secrets


def master_from_connection(conn_type: str | None, host: str | None, port: int | None) -> str:
    """The master URL a ``spark`` connection names: ``local[2]``, ``yarn`` and URLs with a scheme as
    given (plus the port when the host has none), a bare host as ``spark://host:port``."""
    text = (host or "").strip()
    if not text:
        raise ConfigurationError(
            f"the Spark connection (type {conn_type or 'spark'!r}) has no host: set it to spark://host:7077 or local[2]"
        )
    if not text.startswith(_SCHEMES):
        text = f"spark://{text}"
    if port and text.startswith(("spark://", "mesos://")) and ":" not in text.split("://", 1)[1]:
        text = f"{text}:{port}"
    return text


def _connection_conf(extra: str | Mapping[str, Any] | None, conn_id: str) -> dict[str, str]:
    if not extra:
        return {}
    try:
        data = json.loads(extra) if isinstance(extra, str) else dict(extra)
    except ValueError as exc:
        raise ConfigurationError(f"the extra of connection {conn_id!r} is not JSON: {exc}") from exc
    conf = data.get("conf", {}) if isinstance(data, Mapping) else None
    if not isinstance(conf, Mapping):
        raise ConfigurationError(f"the extra of connection {conn_id!r}: 'conf' must be a mapping of Spark settings")
    return {str(k): str(v) for k, v in conf.items()}


def _airflow_loaded() -> bool:
    from airflow_mlsecops.config import airflow_config_loaded

    return airflow_config_loaded()


def _from_connection(conn_id: str) -> SparkMaster | None:
    """The master of Airflow connection ``conn_id``, or ``None`` when it is not defined."""
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # no Airflow in this process's environment
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    except Exception as exc:  # a secrets backend that cannot answer: fail closed, never fall back silently
        raise ConfigurationError(f"Spark connection {conn_id!r} cannot be read: {type(exc).__name__}: {exc}") from exc
    url = master_from_connection(conn.conn_type, conn.host, conn.port)
    return SparkMaster(url, f"connection {conn_id!r}", _connection_conf(conn.extra, conn_id))


def resolve_master(
    master: str | None = None,
    *,
    conn_id: str | None = DEFAULT_CONN_ID,
    airflow: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> SparkMaster:
    """The master URL to use (see the module docstring for the order).

    :param master: an explicit master URL; wins over everything.
    :param conn_id: the Airflow connection to look up (``None``: none).
    :param airflow: consult the Airflow connection and ``[mlsecops] spark_master``: ``True`` always,
        ``False`` never, ``None`` only when Airflow's configuration is loaded in this process (every
        Airflow task is; the ``mlsecops`` CLI is not).
    :param env: the environment (default ``os.environ``).
    :raises ConfigurationError: a connection or an option exists but cannot be read or used.
    """
    if master is not None and master.strip():
        return SparkMaster(master.strip(), "argument")
    use_airflow = _airflow_loaded() if airflow is None else airflow
    if use_airflow:
        if conn_id:
            found = _from_connection(conn_id)
            if found is not None:
                return found
        from airflow_mlsecops.config import SECTION, airflow_config_values

        option = airflow_config_values([OPTION_MASTER]).get(OPTION_MASTER)
        if option:
            return SparkMaster(option, f"[{SECTION}] {OPTION_MASTER}")
    value = (os.environ if env is None else env).get(ENV_MASTER, "").strip()
    if value:
        return SparkMaster(value, ENV_MASTER)
    return SparkMaster(DEFAULT_MASTER, "default")


def spark_session(
    master: str | SparkMaster | None = None,
    *,
    app_name: str = "airflow-mlsecops",
    conn_id: str | None = DEFAULT_CONN_ID,
    airflow: bool | None = None,
) -> SparkSession:
    """A Spark session on the master :func:`resolve_master` picks (or ``master`` resolved already, with
    its connection's settings); a session already running is reused.

    :raises ConfigurationError: pyspark is not installed, or the session cannot start (no Java, a
        master that does not answer).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigurationError(f"engine='spark' needs pyspark: {INSTALL_HINT}") from exc
    resolved = master if isinstance(master, SparkMaster) else resolve_master(master, conn_id=conn_id, airflow=airflow)
    # py4j logs every gateway connection at INFO (task logs fill with "Closing down clientserver
    # connection"), also from __del__ at interpreter exit, when the log stream may be closed already.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        builder = (
            SparkSession.builder.master(resolved.url)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
        )
        if resolved.url.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
            # Local Python workers must run this interpreter (the one with pyarrow and this package),
            # not whatever `python3` comes first on PATH; pyspark reads only the environment variable.
            # A cluster's executors bring their own.
            os.environ["PYSPARK_PYTHON"] = sys.executable
        for key, value in resolved.conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    except Exception as exc:
        raise ConfigurationError(f"cannot start a Spark session on {resolved.url} (from {resolved.source}): {exc}") from exc


def session_master(session: SparkSession) -> str:
    """The master URL ``session`` really runs on (a reused session keeps its own)."""
    return str(session.sparkContext.master)
