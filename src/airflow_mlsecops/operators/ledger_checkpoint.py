"""``LedgerCheckpointOperator``: sign a checkpoint of the evidence ledger and store it outside the
ledger's database, so that cutting the ledger's tail (with its MLflow copies) is caught later.

.. code-block:: python

    LedgerCheckpointOperator(task_id="checkpoint_ledger")                            # [mlsecops] ledger_checkpoints
    LedgerCheckpointOperator(task_id="checkpoint_ledger", to="s3://audit/ledger", retention_days=400)

The engine is :func:`airflow_mlsecops.evidence.checkpoint.write_checkpoint`: it verifies the chain
from the newest trusted checkpoint first and never signs a broken one. This operator is not a gate
and records no evidence of its own: the checkpoint is the evidence.

================================== ====================================================================
outcome                            Airflow outcome
================================== ====================================================================
written                            success; XCom: ``written``, ``location``, ``size``, ``head_hash``,
                                   ``signed_at``, ``keyid``, ``locked``, ``retention``, ``rows_walked``
empty ledger, no checkpoint yet    success with ``written`` False (nothing to protect yet)
chain broken, tail cut, newest     ``AirflowFailException``: no retry; the message says what differs
checkpoint untrusted
store or ledger unreachable        ``AirflowException``: retried
no store, bad URI, no signing key  ``AirflowFailException``: configuration does not fix itself
================================== ====================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlsecops.hooks import DEFAULT_MLFLOW_CONN_ID
from airflow_mlsecops.operators.base import check_conn_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlsecops.config import Settings


def check_checkpoint_target(task_id: str, to: object, retention_days: object) -> None:
    """Refuse, when the DAG is parsed, a checkpoint location or retention that cannot be right."""
    if to is not None and not (isinstance(to, str) and to.strip()):
        raise ValueError(f"{task_id}: the checkpoint location must be a directory or s3://bucket/prefix, or None")
    if retention_days is not None and (
        not isinstance(retention_days, int) or isinstance(retention_days, bool) or retention_days < 1
    ):
        raise ValueError(f"{task_id}: retention_days must be a whole number of days >= 1, or None, not {retention_days!r}")


def checkpoint_ledger(settings: Settings, *, to: str | None, retention_days: int | None, log: Any) -> dict[str, Any]:
    """Write a checkpoint of the configured ledger; the summary an operator returns as XCom.

    :param log: the task's logger.

    :raises MLSecOpsError: what :func:`~airflow_mlsecops.evidence.checkpoint.write_checkpoint` raises.
    """
    from airflow_mlsecops.evidence.checkpoint import write_checkpoint
    from airflow_mlsecops.evidence.ledger import EvidenceLedger

    ledger = EvidenceLedger(settings.ledger_url)
    try:
        written = write_checkpoint(ledger, settings=settings, to=to, retention_days=retention_days)
    finally:
        ledger.dispose()
    if written is None:
        log.info("The ledger is empty and no checkpoint exists yet: nothing to checkpoint")
        return {"written": False}
    cp, stored = written.checkpoint, written.stored
    log.info(
        "Ledger checkpoint written to %s: size %d, head %s, signed by %s; %s; chain walked %d row(s) from seq %d",
        stored.location,
        cp.size,
        cp.head_hash,
        cp.keyid[:16],
        f"locked: {stored.retention}" if stored.locked else "not locked",
        written.verification.rows_walked,
        written.verification.start_seq,
    )
    return {
        "written": True,
        "location": stored.location,
        "size": cp.size,
        "head_hash": cp.head_hash,
        "signed_at": cp.signed_at_text,
        "keyid": cp.keyid,
        "locked": stored.locked,
        "retention": stored.retention,
        "rows_walked": written.verification.rows_walked,
    }


class LedgerCheckpointOperator(BaseOperator):
    """Verify the evidence ledger's chain and write a signed checkpoint of its size and head.

    :param to: a directory or ``s3://bucket/prefix``; ``None``: the platform's ``ledger_checkpoints``
        option (``[mlsecops] ledger_checkpoints``, ``MLSECOPS_LEDGER_CHECKPOINTS``). (templated)
    :param retention_days: S3 with Object Lock: keep the checkpoint in COMPLIANCE mode this many
        days (default: the bucket's default retention, else 365 days). Refused for a directory or
        a bucket without Object Lock.
    :param mlflow_conn_id: the MLflow Connection whose store options (ledger URL, keys) apply, as for
        the gate operators; ``None``: ``[mlsecops]`` and the environment only.
    """

    template_fields: Sequence[str] = ("to",)
    ui_color = "#e0e7ff"

    def __init__(
        self,
        *,
        to: str | None = None,
        retention_days: int | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_checkpoint_target(self.task_id, to, retention_days)
        self.to = to
        self.retention_days = retention_days
        self.mlflow_conn_id = check_conn_id(self.task_id, mlflow_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from airflow_mlsecops.exceptions import ConfigurationError, StoreUnavailable, VerificationError
        from airflow_mlsecops.hooks.evidence import EvidenceHook

        try:
            settings = EvidenceHook(mlflow_conn_id=self.mlflow_conn_id).settings
            return checkpoint_ledger(settings, to=self.to or None, retention_days=self.retention_days, log=self.log)
        except VerificationError as exc:
            self.log.error("MLSECOPS ALERT the evidence ledger did not verify, so no checkpoint was signed: %s", exc)
            raise AirflowFailException(f"the evidence ledger did not verify; no checkpoint was written: {exc}") from exc
        except StoreUnavailable as exc:
            raise AirflowException(f"the ledger or the checkpoint store could not be reached: {exc}") from exc
        except ConfigurationError as exc:
            raise AirflowFailException(f"no ledger checkpoint can be written: {exc}") from exc
