"""The one registry of gate names: what each gate records its evidence as.

Policy files, evidence records, MLflow tags and the registry's checks all use these strings, so
they are defined once here and imported everywhere (this module imports nothing, so a DAG file
that imports an operator still parses fast).

>>> from airflow_mlsecops import gate_names
>>> gate_names.MODEL_SCAN
'model-scan'
>>> gate_names.MODEL_SCAN in gate_names.POLICY_GATES
True
"""

from __future__ import annotations

from typing import Final

# Data gates
DATA_VALIDATION: Final = "data-validation"
DATA_INTEGRITY: Final = "data-integrity"
PII_SCAN: Final = "pii-scan"
DATASET_PROVENANCE: Final = "dataset-provenance"
PROVENANCE_VERIFICATION: Final = "provenance-verification"

# Model gates
MODEL_SCAN: Final = "model-scan"
ROBUSTNESS: Final = "robustness"
SBOM: Final = "sbom"
#: The packages installed where the model was trained, against what the model declares, and OSV.
TRAINING_ENVIRONMENT: Final = "training-environment"
#: Empirical privacy leakage: how well a black-box attack tells training rows from held-out rows.
MEMBERSHIP_INFERENCE: Final = "membership-inference"
#: The differential-privacy guarantee a training run declares, against the policy for sensitive data.
TRAINING_PRIVACY: Final = "training-privacy"
MODEL_SIGNING: Final = "model-signing"
MODEL_PROVENANCE: Final = "model-provenance"
MODEL_SIGNATURE_VERIFICATION: Final = "model-signature-verification"

# Approval: the decision, and the records the approval task keeps of its request and each response
MODEL_APPROVAL: Final = "model-approval"
MODEL_APPROVAL_REQUEST: Final = "model-approval-request"
MODEL_APPROVAL_RESPONSE: Final = "model-approval-response"

# Registry steps
MODEL_REGISTRATION: Final = "model-registration"
MODEL_PROMOTION: Final = "model-promotion"
MODEL_ROLLBACK: Final = "model-rollback"
#: The scheduled check of protected aliases (it judges the registry, not a model: no policy gate).
ALIAS_GUARD: Final = "alias-guard"

# Monitoring gates
DRIFT: Final = "drift"
INPUT_ANOMALY: Final = "input-anomaly"
#: Encrypted scoring of a batch (CKKS): a signed record of what scored which ciphertexts, not a policy gate.
ENCRYPTED_SCORING: Final = "encrypted-scoring"

# Code gates: the code that builds the model
CODE_SCAN: Final = "code-scan"

#: Gates a policy may name, by group.
MODEL_GATES: Final[tuple[str, ...]] = (
    MODEL_SCAN,
    ROBUSTNESS,
    SBOM,
    TRAINING_ENVIRONMENT,
    MEMBERSHIP_INFERENCE,
    TRAINING_PRIVACY,
    MODEL_SIGNING,
    MODEL_PROVENANCE,
    MODEL_SIGNATURE_VERIFICATION,
)
DATA_GATES: Final[tuple[str, ...]] = (DATA_VALIDATION, DATA_INTEGRITY, PII_SCAN, DATASET_PROVENANCE, PROVENANCE_VERIFICATION)
MONITORING_GATES: Final[tuple[str, ...]] = (DRIFT, INPUT_ANOMALY)
CODE_GATES: Final[tuple[str, ...]] = (CODE_SCAN,)
#: Every gate name a policy may require.
POLICY_GATES: Final[tuple[str, ...]] = (*MODEL_GATES, *DATA_GATES, MODEL_APPROVAL, *MONITORING_GATES, *CODE_GATES)

#: Gates whose evidence names trusted public keys (a policy's ``trusted_keys`` applies to them).
KEY_GATES: Final[tuple[str, ...]] = (PROVENANCE_VERIFICATION, MODEL_SIGNATURE_VERIFICATION)

#: Gates whose subjects are the model itself: their evidence must name the model's digest.
MODEL_SUBJECT_GATES: Final[frozenset[str]] = frozenset((*MODEL_GATES, MODEL_REGISTRATION))

#: What a promotion requires when neither the DAG nor a policy says otherwise.
DEFAULT_REQUIRED_GATES: Final[tuple[str, ...]] = (
    MODEL_SCAN,
    ROBUSTNESS,
    SBOM,
    MODEL_SIGNING,
    MODEL_PROVENANCE,
    DATA_VALIDATION,
    DATASET_PROVENANCE,
)

#: The approval task's own records: left out of the evidence a reviewer is shown.
APPROVAL_BOOKKEEPING: Final[tuple[str, ...]] = (MODEL_APPROVAL, MODEL_APPROVAL_RESPONSE, MODEL_APPROVAL_REQUEST)
