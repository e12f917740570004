"""Airflow operators of airflow-mlsecops. Importing this package is cheap: each operator's module
is imported on first use, and engines (GX, MLflow, sklearn) only when a task runs.

>>> from airflow_mlsecops.operators import DataValidationGateOperator, ProvenanceSignOperator
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlsecops.operators.base import BaseGateOperator, MLflowEvidenceLink
    from airflow_mlsecops.operators.data_integrity import DataIntegrityGateOperator
    from airflow_mlsecops.operators.data_validation import DataValidationGateOperator
    from airflow_mlsecops.operators.pii import PIIScanGateOperator
    from airflow_mlsecops.operators.provenance import ProvenanceSignOperator, ProvenanceVerifyOperator

_LAZY = {
    "BaseGateOperator": "airflow_mlsecops.operators.base",
    "MLflowEvidenceLink": "airflow_mlsecops.operators.base",
    "DataIntegrityGateOperator": "airflow_mlsecops.operators.data_integrity",
    "DataValidationGateOperator": "airflow_mlsecops.operators.data_validation",
    "PIIScanGateOperator": "airflow_mlsecops.operators.pii",
    "ProvenanceSignOperator": "airflow_mlsecops.operators.provenance",
    "ProvenanceVerifyOperator": "airflow_mlsecops.operators.provenance",
}

__all__ = [
    "BaseGateOperator",
    "DataIntegrityGateOperator",
    "DataValidationGateOperator",
    "MLflowEvidenceLink",
    "PIIScanGateOperator",
    "ProvenanceSignOperator",
    "ProvenanceVerifyOperator",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
