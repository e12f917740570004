"""What registration, promotion, version verification and rollback share: the tags a registered
version carries, the registry's experiment and :class:`RegistryCheck`.

>>> from airflow_mlsecops.lifecycle.model_registry import TAG_MODEL_SHA256, tag_history
>>> TAG_MODEL_SHA256
'mlsecops.model_sha256'
>>> tag_history("champion")
'mlsecops.alias_history.champion'

The chain, one module per step, each bound to the pipeline's evidence:

* :mod:`~airflow_mlsecops.lifecycle.registration`: ``register_model`` (gate ``model-registration``)
  registers a version pinned to its digest;
* :mod:`~airflow_mlsecops.lifecycle.promotion`: ``check_promotion`` then ``promote`` (gate
  ``model-promotion``) give it an alias when every check passes, made again from the stored bytes;
* :mod:`~airflow_mlsecops.lifecycle.version_verification`: ``verify_model_version`` finds aliases
  whose chain is broken;
* :mod:`~airflow_mlsecops.lifecycle.rollback`: ``rollback`` (gate ``model-rollback``) gives an alias
  back to its verified previous holder.

The private :mod:`airflow_mlsecops.lifecycle._registry_checks` holds the checks they share.

.. warning::
   Open-source MLflow has no permission specific to aliases: whoever may edit a registered model
   (anyone, or with MLflow's basic-auth app a user with ``EDIT`` on it) can move an alias by hand,
   and MLflow tags are just as writable. These functions cannot prevent that; they make sure the
   gate never moves an alias without a verified chain, and ``verify_model_version`` detects an
   alias that was moved outside it. Enforcing it needs a registry with access control in front.

None of these modules imports Airflow; MLflow is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_RUN_ID
from airflow_mlsecops.lifecycle.verification import Status

#: The experiment of the runs that hold promotion and rollback evidence recorded outside a pipeline run.
REGISTRY_EXPERIMENT = "mlsecops-registry"

#: Tags a registered version carries (set by the gates only; ``mlsecops.`` is their namespace).
TAG_MODEL_SHA256 = "mlsecops.model_sha256"
TAG_PIPELINE_RUN_ID = "mlsecops.pipeline_run_id"
TAG_VERSION_DAG_ID = TAG_DAG_ID
TAG_VERSION_RUN_ID = TAG_RUN_ID
TAG_EVIDENCE = "mlsecops.evidence"
TAG_SIGNATURE_SHA256 = "mlsecops.signature_sha256"
TAG_SOURCE_URI = "mlsecops.source_uri"
TAG_QUARANTINED = "mlsecops.quarantined"
TAG_QUARANTINE_REASON = "mlsecops.quarantine_reason"
TAG_APPROVED_BY = "mlsecops.approved_by"
TAG_PROMOTED_AT = "mlsecops.promoted_at"
TAG_PROMOTION_EVIDENCE = "mlsecops.promotion_evidence"
TAG_ROLLBACK_EVIDENCE = "mlsecops.rollback_evidence"
#: How many past holders the alias history keeps.
MAX_HISTORY = 100


def tag_previous(alias: str) -> str:
    """Version tag naming the version that held ``alias`` before this one was promoted to it.

    :param alias: the alias, e.g. ``champion``.
    """
    return f"mlsecops.previous_{alias}"


def tag_history(alias: str) -> str:
    """Registered-model tag holding the JSON list of versions that held ``alias``, newest last.

    :param alias: the alias, e.g. ``champion``.
    """
    return f"mlsecops.alias_history.{alias}"


def tag_promotion_evidence(alias: str) -> str:
    """Version tag pointing at the promotion attestation of this version to ``alias``.

    :param alias: the alias, e.g. ``champion``.
    """
    return f"{TAG_PROMOTION_EVIDENCE}.{alias}"


# ----------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class RegistryCheck:
    """One named check of a promotion decision or a version verification."""

    name: str
    status: Status
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail}
