"""The plugin is found by Airflow through the ``airflow.plugins`` entry point and stays light."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest


def test_entry_point_names_the_plugin_class() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="airflow.plugins") if e.name == "mlsecops"]
    plugin = entry.load()
    assert plugin.name == "mlsecops"


def test_airflow_loads_the_plugin() -> None:
    from airflow import plugins_manager

    plugins, _ = plugins_manager._get_plugins()
    assert "mlsecops" in {p.name for p in plugins}


@pytest.mark.slow
def test_plugin_import_pulls_in_no_heavy_library() -> None:
    code = (
        "import sys, airflow_mlsecops.plugins.plugin;"
        "heavy = ('mlflow', 'great_expectations', 'evidently', 'sklearn', 'pandas', 'boto3', 'fastapi',"
        " 'airflow_mlsecops.plugins.app', 'airflow_mlsecops.review');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
