"""Airflow knows the suite as a provider: its ``[mlsecops]`` section and its ``mlflow`` connection type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlsecops.config import OPTIONS


def test_providers_manager_lists_the_provider_with_its_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_list()
    provider = manager.providers["airflow-mlsecops"]
    assert provider.version == "0.1.0"
    (conn_type,) = provider.data["connection-types"]
    assert conn_type["connection-type"] == "mlflow"
    assert conn_type["hook-class-name"] == "airflow_mlsecops.hooks.evidence.EvidenceHook"

    manager.initialize_providers_hooks()
    assert manager.field_behaviours["mlflow"]["hidden_fields"] == ["login", "password"]
    assert {"extra__mlflow__registry_uri", "extra__mlflow__ui_url"} <= set(manager.connection_form_widgets)
    # The hook class itself matches what the provider info says (Airflow checks this when it imports it).
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    assert (EvidenceHook.conn_type, EvidenceHook.conn_name_attr, EvidenceHook.default_conn_name) == (
        "mlflow",
        "mlflow_conn_id",
        "mlflow_default",
    )
    # What the UI's Test button does: the connection makes its own hook, which reads that connection.
    from airflow.sdk import Connection

    hook = Connection(conn_id="mlflow_staging", conn_type="mlflow", host="mlflow.staging").get_hook()
    assert isinstance(hook, EvidenceHook) and hook.mlflow_conn_id == "mlflow_staging"
    manager.initialize_providers_extra_links()
    assert "airflow_mlsecops.operators.base.MLflowEvidenceLink" in manager.extra_links_class_names


def test_airflow_config_knows_the_mlsecops_section() -> None:
    from airflow.configuration import conf

    assert set(conf.configuration_description["mlsecops"]["options"]) == {o.name for o in OPTIONS}
    assert conf.get("mlsecops", "ledger_url") == ""  # the provider's default: unset, the environment applies
    assert conf.is_sensitive_option("mlsecops", "ledger_url") and conf.is_sensitive_option("mlsecops", "signing_key_pem")
    assert not conf.is_sensitive_option("mlsecops", "policy_file")


@pytest.mark.slow
def test_airflow_config_get_value_reads_the_section() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__MLSECOPS__")}
    env["AIRFLOW__MLSECOPS__LEDGER_URL_CMD"] = "echo postgresql://ledger.internal/evidence"  # sensitive: _cmd works
    airflow = str(Path(sys.executable).with_name("airflow"))
    done = subprocess.run(
        [airflow, "config", "get-value", "mlsecops", "ledger_url"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "postgresql://ledger.internal/evidence"
