"""Hooks: own the clients (MLflow, ledger database, keys) that operators use.

This package module imports nothing, so operators can name the default connection id cheaply.
"""

from __future__ import annotations

#: The MLflow Connection hooks and operators use unless told otherwise. It may be left undefined:
#: then Airflow's ``[mlsecops]`` section and the ``MLSECOPS_*`` environment name the store.
DEFAULT_MLFLOW_CONN_ID = "mlflow_default"
