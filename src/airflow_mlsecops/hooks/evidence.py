"""``EvidenceHook``: the MLflow store, ledger and signing key, resolved for an Airflow task.

>>> from airflow_mlsecops.hooks.evidence import EvidenceHook
>>> hook = EvidenceHook(mlflow_conn_id="mlflow_default")
>>> run_id = hook.pipeline_run_id(dag_id="train", run_id="manual__2026-01-01")   # doctest: +SKIP

Where the settings come from, first match wins (:meth:`airflow_mlsecops.config.Settings.resolve`):
the MLflow Connection ``mlflow_conn_id`` (the store options only), Airflow's ``[mlsecops]``
section, the ``MLSECOPS_*`` / ``MLFLOW_TRACKING_URI`` environment, the defaults. Nothing is read
before the hook's first use, so DAG parsing never touches a connection or the configuration.

The connection (type ``mlflow``; ``http`` and other types are read the same way):

============== ==============================================================================
field          meaning
============== ==============================================================================
host           the tracking server's host, or a whole tracking URI (``http://...``, ``sqlite:///...``)
schema         the URL scheme for a bare host: ``http`` (default) or ``https``
port           the server's port (added to a bare host, or to a host URI without one)
extra          ``tracking_uri`` (wins over host), ``registry_uri``, ``artifact_root``, ``ui_url``
login/password refused: MLflow's client reads credentials only from the process environment
               (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` / ``MLFLOW_TRACKING_TOKEN``)
============== ==============================================================================

The default conn id ``mlflow_default`` is optional: when it is not defined, the hook uses the
configuration and environment. Any other conn id that is not defined is a :class:`ConfigurationError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_mlsecops.config import Settings
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.hooks import DEFAULT_MLFLOW_CONN_ID

if TYPE_CHECKING:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

DEFAULT_CONN_ID = DEFAULT_MLFLOW_CONN_ID
#: Connection extra key -> settings option.
_EXTRAS = {
    "tracking_uri": "tracking_uri",
    "registry_uri": "registry_uri",
    "artifact_root": "artifact_root",
    "ui_url": "mlflow_ui_url",
}


def connection_store_options(conn: Any) -> dict[str, str]:
    """The store options an MLflow Connection names (``tracking_uri``, ``registry_uri``,
    ``artifact_root``, ``mlflow_ui_url``), for :meth:`Settings.resolve`.

    :param conn: an Airflow ``Connection`` (anything with ``conn_id``, ``host``, ``schema``, ``port``,
        ``login``, ``password`` and ``extra``).
    :raises ConfigurationError: credentials, an unknown extra key, or no tracking URI at all.
    """
    conn_id = getattr(conn, "conn_id", "?")
    if getattr(conn, "login", None) or getattr(conn, "password", None):
        raise ConfigurationError(
            f"MLflow connection {conn_id!r} has a login or password, which MLflow's client cannot take per "
            "connection: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
            "in the workers' environment and remove them from the connection"
        )
    extra = _extra(conn)
    options: dict[str, str] = {}
    for key, value in extra.items():
        name = key.removeprefix(f"extra__{getattr(conn, 'conn_type', '') or ''}__")
        if name not in _EXTRAS:
            raise ConfigurationError(f"MLflow connection {conn_id!r}: unknown extra {key!r}; known: {', '.join(sorted(_EXTRAS))}")
        if value not in (None, ""):
            options[_EXTRAS[name]] = str(value)
    if "tracking_uri" not in options:
        uri = _uri_from_fields(conn)
        if uri is None:
            raise ConfigurationError(f"MLflow connection {conn_id!r} names no tracking server: set its host or tracking_uri")
        options["tracking_uri"] = uri
    return options


def _extra(conn: Any) -> Mapping[str, Any]:
    raw = getattr(conn, "extra", None)
    if not raw:
        return {}
    try:
        extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"MLflow connection {getattr(conn, 'conn_id', '?')!r}: extra is not a JSON object") from exc
    if not isinstance(extra, dict):
        raise ConfigurationError(f"MLflow connection {getattr(conn, 'conn_id', '?')!r}: extra is not a JSON object")
    return extra


def _uri_from_fields(conn: Any) -> str | None:
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        return None
    port = getattr(conn, "port", None)
    if "://" in host:
        parts = urlsplit(host)
        if port and parts.scheme in ("http", "https") and parts.port is None:
            host = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
        return host.rstrip("/") if parts.scheme in ("http", "https") else host
    scheme = (getattr(conn, "schema", None) or "http").strip().lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(
            f"MLflow connection {getattr(conn, 'conn_id', '?')!r}: schema must be http or https, not {scheme!r} "
            "(for another store, put the whole URI in host or extra tracking_uri)"
        )
    return f"{scheme}://{host}" + (f":{port}" if port else "")


class EvidenceHook(BaseHook):
    """Gives operators a recorder and the pipeline's MLflow run.

    :param mlflow_conn_id: the MLflow Connection of the evidence store. The default,
        ``mlflow_default``, may be left undefined (then ``[mlsecops]`` and the environment decide);
        any other id must exist. ``None``: use no connection.
    :param experiment_name: MLflow experiment of the pipeline's runs (default: the DAG id).
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "mlflow"
    hook_name = "MLflow (MLSecOps evidence store)"

    def __init__(self, *, mlflow_conn_id: str | None = DEFAULT_CONN_ID, experiment_name: str | None = None) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id
        self.experiment_name = experiment_name

    def connection_options(self) -> dict[str, str]:
        """The store options of ``mlflow_conn_id`` (empty when the default id is not defined).

        :raises ConfigurationError: an explicitly named connection does not exist or cannot be used.
        """
        if not self.mlflow_conn_id:
            return {}
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.mlflow_conn_id)
        except AirflowNotFoundException as exc:
            if self.mlflow_conn_id == DEFAULT_CONN_ID:
                return {}
            raise ConfigurationError(
                f"MLflow connection {self.mlflow_conn_id!r} is not defined (create it, or pass "
                f"mlflow_conn_id={DEFAULT_CONN_ID!r} to use [mlsecops] and the MLSECOPS_* environment)"
            ) from exc
        return connection_store_options(conn)

    @cached_property
    def settings(self) -> Settings:
        """Connection > ``[mlsecops]`` > environment > defaults, resolved once per hook."""
        return Settings.resolve(self.connection_options(), connection_name=self.mlflow_conn_id or "", airflow_config=True)

    @cached_property
    def recorder(self) -> EvidenceRecorder:
        from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

        return EvidenceRecorder.from_settings(self.settings)

    @cached_property
    def store(self) -> MLflowEvidenceStore:
        from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

        return MLflowEvidenceStore.from_settings(self.settings)

    def pipeline_run_id(self, *, dag_id: str, run_id: str) -> str:
        """The MLflow run that holds this DAG run's evidence (created on first use)."""
        return self.store.resolve_pipeline_run(experiment_name=self.experiment_name or dag_id, dag_id=dag_id, run_id=run_id)

    def run_url(self, mlflow_run_id: str) -> str | None:
        """The MLflow UI page of a run, or ``None`` when no UI URL is configured."""
        base = self.settings.mlflow_ui_url
        if not base:
            return None
        experiment_id = self.store.run_experiment_id(mlflow_run_id)
        return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{mlflow_run_id}"

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: can the store named by this connection be listed?"""
        from airflow_mlsecops.exceptions import MLSecOpsError

        try:
            store = self.store
            with store.errors("cannot list MLflow experiments"):
                store.client.search_experiments(max_results=1)
        except MLSecOpsError as exc:
            return False, str(exc)
        return True, "the MLflow store answered"  # no URI: it may hold a database password
