"""Where the Spark master comes from: argument > Airflow connection > [mlsecops] spark_master > environment > local[2]."""

from __future__ import annotations

import json
import sys

import pytest

from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.io.spark import DEFAULT_MASTER, master_from_connection, resolve_master

CONN = "AIRFLOW_CONN_MLSECOPS_SPARK"
OPTION = "AIRFLOW__MLSECOPS__SPARK_MASTER"
ENV = "MLSECOPS_SPARK_MASTER"


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (CONN, OPTION, ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_each_source_wins_over_the_ones_below_it(clean: pytest.MonkeyPatch) -> None:
    assert resolve_master(airflow=True).url == DEFAULT_MASTER
    assert resolve_master(airflow=True).source == "default"
    clean.setenv(ENV, "local[3]")
    assert (resolve_master(airflow=True).url, resolve_master(airflow=True).source) == ("local[3]", ENV)
    clean.setenv(OPTION, "spark://from-config:7077")
    assert (resolve_master(airflow=True).url, resolve_master(airflow=True).source) == (
        "spark://from-config:7077",
        "[mlsecops] spark_master",
    )
    clean.setenv(
        CONN,
        json.dumps(
            {"conn_type": "spark", "host": "spark://from-conn", "port": 7078, "extra": {"conf": {"spark.executor.memory": "2g"}}}
        ),
    )
    found = resolve_master(airflow=True)
    assert (found.url, found.source) == ("spark://from-conn:7078", "connection 'mlsecops_spark'")
    assert dict(found.conf) == {"spark.executor.memory": "2g"}
    assert found.to_dict()["conf"] == ["spark.executor.memory"]  # names only in evidence
    explicit = resolve_master("local[1]", airflow=True)
    assert (explicit.url, explicit.source) == ("local[1]", "argument")


def test_another_conn_id_and_no_conn_id(clean: pytest.MonkeyPatch) -> None:
    clean.setenv(CONN, "spark://spark-master:7077")
    clean.setenv("AIRFLOW_CONN_OTHER_SPARK", json.dumps({"conn_type": "spark", "host": "local[4]"}))
    clean.setenv(ENV, "local[3]")
    assert resolve_master(airflow=True).url == "spark://spark-master:7077"  # the URI form: host and port
    assert resolve_master(airflow=True, conn_id="other_spark").url == "local[4]"
    assert resolve_master(airflow=True, conn_id="not_defined").url == "local[3]"  # an absent connection is skipped
    assert resolve_master(airflow=True, conn_id=None).url == "local[3]"


def test_outside_airflow_only_the_environment_counts(clean: pytest.MonkeyPatch) -> None:
    clean.setenv(CONN, "spark://spark-master:7077")
    clean.setenv(OPTION, "spark://from-config:7077")
    clean.setenv(ENV, "local[3]")
    assert resolve_master(airflow=False).url == "local[3]"
    assert resolve_master(airflow=False, env={}).url == DEFAULT_MASTER


def test_a_connection_that_cannot_be_used_is_a_configuration_error(clean: pytest.MonkeyPatch) -> None:
    clean.setenv(CONN, json.dumps({"conn_type": "spark", "host": "spark://h", "extra": {"conf": ["not", "a", "mapping"]}}))
    with pytest.raises(ConfigurationError, match="'conf' must be a mapping"):
        resolve_master(airflow=True)
    clean.setenv(CONN, json.dumps({"conn_type": "spark"}))
    with pytest.raises(ConfigurationError, match="has no host"):
        resolve_master(airflow=True)


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("local[2]", None, "local[2]"),
        ("spark://h", 7077, "spark://h:7077"),
        ("spark://h:7000", 7077, "spark://h:7000"),
        ("h", 7077, "spark://h:7077"),
        ("yarn", None, "yarn"),
        ("k8s://https://api:6443", None, "k8s://https://api:6443"),
    ],
)
def test_master_from_connection(host: str, port: int | None, url: str) -> None:
    assert master_from_connection("spark", host, port) == url


def test_a_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_mlsecops.io.spark import spark_session

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # as if pyspark were not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'airflow-mlsecops\[spark\]'"):
        spark_session("local[1]")


def test_the_option_is_declared_for_airflow_and_the_environment() -> None:
    from airflow_mlsecops.config import OPTIONS
    from airflow_mlsecops.provider import get_provider_info

    option = next(o for o in OPTIONS if o.name == "spark_master")
    assert option.env == ENV and option.default == DEFAULT_MASTER
    assert "spark_master" in get_provider_info()["config"]["mlsecops"]["options"]
