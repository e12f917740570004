"""``MLSecOpsPlugin``: registered through the ``airflow.plugins`` entry point.

It is imported in every Airflow process (scheduler, API server, each task), so it stays light:
no engine, MLflow or database import happens here. Gate operators carry their own MLflow evidence
link (Airflow 3 stores link URLs in XCom, so links need no plugin registration); later parts of the
suite (approval views, policy hooks) hang off this plugin.
"""

from __future__ import annotations

from airflow.sdk.plugins_manager import AirflowPlugin


class MLSecOpsPlugin(AirflowPlugin):
    """Security gates with signed evidence for ML pipelines."""

    name = "mlsecops"
