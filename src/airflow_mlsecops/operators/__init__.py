"""Airflow operators of airflow-mlsecops. Importing this package is cheap: each operator's module
is imported on first use, and engines (GX, MLflow, sklearn) only when a task runs.

>>> from airflow_mlsecops.operators import DataValidationGateOperator, ProvenanceSignOperator, PromoteModelOperator
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlsecops.operators.alias_guard import AliasGuardOperator
    from airflow_mlsecops.operators.approval import ModelApprovalGateOperator
    from airflow_mlsecops.operators.base import BaseGateOperator, MLflowEvidenceLink
    from airflow_mlsecops.operators.code_scan import CodeScanGateOperator
    from airflow_mlsecops.operators.data_integrity import DataIntegrityGateOperator
    from airflow_mlsecops.operators.data_validation import DataValidationGateOperator
    from airflow_mlsecops.operators.encrypted_scoring import EncryptedScoringOperator
    from airflow_mlsecops.operators.environment import TrainingEnvironmentGateOperator
    from airflow_mlsecops.operators.ledger_checkpoint import LedgerCheckpointOperator
    from airflow_mlsecops.operators.membership import MembershipInferenceGateOperator, TrainingPrivacyGateOperator
    from airflow_mlsecops.operators.model_scan import ModelScanGateOperator
    from airflow_mlsecops.operators.model_signing import ModelSignOperator, ModelVerifyOperator
    from airflow_mlsecops.operators.monitoring import DriftMonitorOperator, InputAnomalyGateOperator
    from airflow_mlsecops.operators.pii import PIIScanGateOperator
    from airflow_mlsecops.operators.provenance import ProvenanceSignOperator, ProvenanceVerifyOperator
    from airflow_mlsecops.operators.registry import PromoteModelOperator, RegisterModelOperator
    from airflow_mlsecops.operators.robustness import RobustnessGateOperator
    from airflow_mlsecops.operators.sbom import SBOMGateOperator

_LAZY = {
    "AliasGuardOperator": "airflow_mlsecops.operators.alias_guard",
    "BaseGateOperator": "airflow_mlsecops.operators.base",
    "CodeScanGateOperator": "airflow_mlsecops.operators.code_scan",
    "DataIntegrityGateOperator": "airflow_mlsecops.operators.data_integrity",
    "DataValidationGateOperator": "airflow_mlsecops.operators.data_validation",
    "DriftMonitorOperator": "airflow_mlsecops.operators.monitoring",
    "EncryptedScoringOperator": "airflow_mlsecops.operators.encrypted_scoring",
    "InputAnomalyGateOperator": "airflow_mlsecops.operators.monitoring",
    "LedgerCheckpointOperator": "airflow_mlsecops.operators.ledger_checkpoint",
    "MLflowEvidenceLink": "airflow_mlsecops.operators.base",
    "MembershipInferenceGateOperator": "airflow_mlsecops.operators.membership",
    "ModelApprovalGateOperator": "airflow_mlsecops.operators.approval",
    "ModelScanGateOperator": "airflow_mlsecops.operators.model_scan",
    "ModelSignOperator": "airflow_mlsecops.operators.model_signing",
    "ModelVerifyOperator": "airflow_mlsecops.operators.model_signing",
    "PIIScanGateOperator": "airflow_mlsecops.operators.pii",
    "PromoteModelOperator": "airflow_mlsecops.operators.registry",
    "ProvenanceSignOperator": "airflow_mlsecops.operators.provenance",
    "ProvenanceVerifyOperator": "airflow_mlsecops.operators.provenance",
    "RegisterModelOperator": "airflow_mlsecops.operators.registry",
    "RobustnessGateOperator": "airflow_mlsecops.operators.robustness",
    "SBOMGateOperator": "airflow_mlsecops.operators.sbom",
    "TrainingEnvironmentGateOperator": "airflow_mlsecops.operators.environment",
    "TrainingPrivacyGateOperator": "airflow_mlsecops.operators.membership",
}

__all__ = [
    "AliasGuardOperator",
    "BaseGateOperator",
    "CodeScanGateOperator",
    "DataIntegrityGateOperator",
    "DataValidationGateOperator",
    "DriftMonitorOperator",
    "EncryptedScoringOperator",
    "InputAnomalyGateOperator",
    "LedgerCheckpointOperator",
    "MLflowEvidenceLink",
    "MembershipInferenceGateOperator",
    "ModelApprovalGateOperator",
    "ModelScanGateOperator",
    "ModelSignOperator",
    "ModelVerifyOperator",
    "PIIScanGateOperator",
    "PromoteModelOperator",
    "ProvenanceSignOperator",
    "ProvenanceVerifyOperator",
    "RegisterModelOperator",
    "RobustnessGateOperator",
    "SBOMGateOperator",
    "TrainingEnvironmentGateOperator",
    "TrainingPrivacyGateOperator",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
