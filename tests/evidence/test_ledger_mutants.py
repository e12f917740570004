"""Exact tests for evidence/ledger.py written from surviving mutants (tests/mutation/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlsecops.evidence.ledger import EvidenceLedger
from airflow_mlsecops.exceptions import StoreUnavailable


def test_every_read_of_an_unreachable_ledger_names_the_database() -> None:
    pytest.importorskip("psycopg2")
    ledger = EvidenceLedger("postgresql+psycopg2://postgres@127.0.0.1:1/x", create=False)
    reads = {
        "count_up_to": lambda: ledger.count_up_to(3),
        "head_seq": ledger.head_seq,
        "entry_at": lambda: ledger.entry_at(1),
    }
    for name, read in reads.items():
        with pytest.raises(StoreUnavailable) as caught:
            read()
        message = str(caught.value)
        assert message.startswith("ledger database postgresql+psycopg2://postgres@127.0.0.1:1/x is unreachable: "), name
        assert "127.0.0.1" in message.split(" is unreachable: ", 1)[1], name  # the driver's own reason follows


def test_a_seq_that_is_not_in_the_ledger_has_no_entry(tmp_path: Path) -> None:
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert ledger.entry_at(1) is None
        ledger.append(envelope_json="{}", gate="g")
        assert ledger.entry_at(1) is not None
        assert ledger.entry_at(2) is None
    finally:
        ledger.dispose()


def test_a_row_the_database_refuses_is_not_retried_as_contention(tmp_path: Path) -> None:
    """An IntegrityError while the head did not move is the row itself (here a NULL gate): refused at once."""
    ledger = EvidenceLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            ledger.append(envelope_json="{}", gate=None)  # type: ignore[arg-type]  # the point: NOT NULL
        assert str(caught.value).startswith("the ledger refused the entry: NOT NULL constraint failed")
        assert ledger.head_seq() == 0
    finally:
        ledger.dispose()
