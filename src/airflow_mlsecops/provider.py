"""Provider info: how Airflow's ``ProvidersManager`` knows this package (``apache_airflow_provider`` entry point).

It declares the ``[mlsecops]`` configuration section (so ``airflow config get-value mlsecops
ledger_url`` works, sensitive options are masked and accept ``_cmd`` / ``_secret``), the ``mlflow``
connection type of :class:`~airflow_mlsecops.hooks.evidence.EvidenceHook` (with its form fields in
the UI) and the operators' extra link. Every option defaults to empty: "not set here", so the
``MLSECOPS_*`` environment variable, then the built-in default, applies (see
:mod:`airflow_mlsecops.config`).

>>> from airflow_mlsecops.provider import get_provider_info
>>> get_provider_info()["connection-types"][0]["connection-type"]
'mlflow'

Importing this module imports nothing but :mod:`airflow_mlsecops.config`'s option table.
"""

from __future__ import annotations

from typing import Any

from airflow_mlsecops.config import OPTIONS, SECTION

PACKAGE_NAME = "airflow-mlsecops"
CONNECTION_TYPE = "mlflow"
HOOK_CLASS = "airflow_mlsecops.hooks.evidence.EvidenceHook"
#: Keys of a Connection's extra that the hook reads (``tracking_uri`` overrides host/schema/port).
CONNECTION_EXTRAS: dict[str, str] = {
    "tracking_uri": "Tracking URI (overrides host, scheme and port; any MLflow store URI)",
    "registry_uri": "Model registry URI (default: the tracking URI)",
    "artifact_root": "Artifact root (database-backed stores used directly)",
    "ui_url": "MLflow UI URL for links (default: the tracking URI when http(s))",
}


def _config_section() -> dict[str, Any]:
    options = {
        option.name: {
            "description": f"{option.description} Empty: {option.env}, else {option.default}.",
            "version_added": "0.1.0",
            "type": "string",
            "example": option.example,
            "default": "",
            **({"sensitive": True} if option.sensitive else {}),
        }
        for option in OPTIONS
    }
    return {
        SECTION: {
            "description": "airflow-mlsecops: the evidence store, ledger, keys and policy. An empty option falls back to "
            "its MLSECOPS_* environment variable; an operator's MLflow Connection (mlflow_conn_id) wins over the "
            "MLflow options here.",
            "options": options,
        }
    }


def get_provider_info() -> dict[str, Any]:
    """The provider info dictionary Airflow validates against ``provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "MLSecOps",
        "description": "Security gates for ML pipelines with signed, verifiable evidence recorded in MLflow.",
        "integrations": [{"integration-name": "MLSecOps", "tags": ["security", "ml"]}],
        "operators": [
            {
                "integration-name": "MLSecOps",
                "python-modules": [
                    "airflow_mlsecops.operators.approval",
                    "airflow_mlsecops.operators.data_integrity",
                    "airflow_mlsecops.operators.data_validation",
                    "airflow_mlsecops.operators.model_scan",
                    "airflow_mlsecops.operators.model_signing",
                    "airflow_mlsecops.operators.monitoring",
                    "airflow_mlsecops.operators.pii",
                    "airflow_mlsecops.operators.provenance",
                    "airflow_mlsecops.operators.registry",
                    "airflow_mlsecops.operators.robustness",
                    "airflow_mlsecops.operators.sbom",
                ],
            }
        ],
        "hooks": [{"integration-name": "MLSecOps", "python-modules": ["airflow_mlsecops.hooks.evidence"]}],
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS,
                "hook-name": "MLflow (MLSecOps evidence store)",
                "connection-type": CONNECTION_TYPE,
                "conn-fields": {
                    name: {"label": label, "schema": {"type": ["string", "null"]}} for name, label in CONNECTION_EXTRAS.items()
                },
                "ui-field-behaviour": {
                    # MLflow's client takes credentials only from the process environment
                    # (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN): a login here would be ignored, so the hook refuses it.
                    "hidden-fields": ["login", "password"],
                    "relabeling": {"host": "Host (or a full tracking URI)", "schema": "Scheme (http or https)"},
                    "placeholders": {"host": "mlflow.example.com", "schema": "https", "port": "5000"},
                },
            }
        ],
        "extra-links": ["airflow_mlsecops.operators.base.MLflowEvidenceLink"],
        "config": _config_section(),
    }
