"""No data to check is never a pass: how the data gates treat an empty batch.

A batch with no rows (a CSV file holding only its header, a Parquet file of zero rows) or no
columns gives a data gate nothing to judge. Data validation, data integrity, the PII scan, drift
and input anomaly then all record an ``error`` verdict (finding ``<gate>.empty-batch``; an empty
reference gives ``<gate>.empty-reference``), as each already does for a zero-byte or
unreadable file: the gate could not reach a verdict (CLI exit 2; in Airflow the task is retried,
since the batch may still be being written, then fails). ``warn_only`` does not soften it:
warn-only mode turns a *rejection* into a warning, and here nothing was judged.

Only an explicit ``allow_empty=True`` (``mlsecops gate ... --allow-empty``) accepts an empty
batch. The gate then records finding ``<gate>.empty-batch`` (severity ``low``, a check not
performed: the verdict is ``warned``, incomplete, never ``passed``), says so in its summary and
keeps ``allow_empty: true`` in its policy; data validation still runs its suite
(an ``expect_table_row_count_to_be_between`` expectation still rejects). A *reference* (the trusted
data of data integrity and drift) may never be empty, whatever ``allow_empty`` says.

>>> import pandas as pd
>>> from airflow_mlsecops.gates.empty_data import emptiness
>>> emptiness(pd.DataFrame({"age": []}))
'holds no rows'
>>> emptiness(pd.DataFrame({"age": [31]})) is None
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import Finding, Severity
from airflow_mlsecops.exceptions import ConfigurationError, EmptyBatch, EmptyReference

if TYPE_CHECKING:
    import pandas as pd

#: The suffix of the finding an allowed empty batch records: ``data-validation.empty-batch``.
EMPTY_BATCH = "empty-batch"


def check_allow_empty(allow_empty: object) -> bool:
    """``allow_empty`` checked: ``True`` or ``False`` only (a string such as ``"false"`` is refused).

    :raises ConfigurationError: for any other value.
    """
    if not isinstance(allow_empty, bool):
        raise ConfigurationError(f"allow_empty must be True or False, not {allow_empty!r}")
    return allow_empty


def allow_empty_policy(allow_empty: object) -> Any:
    """The value the policy records: the flag, or a bad value as given (the gate reports it as an error)."""
    return allow_empty if isinstance(allow_empty, bool) else repr(allow_empty)


def emptiness(frame: pd.DataFrame) -> str | None:
    """Why ``frame`` holds no data to check (``"holds no rows"``, ``"holds no columns"``), or ``None``."""
    if len(frame) == 0:
        return "holds no rows"
    if frame.shape[1] == 0:
        return "holds no columns"
    return None


def empty_batch_error(what: str, why: str) -> EmptyBatch:
    """The error an empty batch gives when empty batches are not allowed.

    :param what: the batch as the message names it (``the batch train.csv``).
    :param why: what :func:`emptiness` said.
    """
    return EmptyBatch(
        f"{what} {why}: no data to check is never a pass (allow_empty=True, or --allow-empty, accepts an empty batch explicitly)"
    )


def empty_reference_error(what: str, why: str) -> EmptyReference:
    """The error an empty reference always gives (``allow_empty`` covers batches only).

    :param what: the reference as the message names it (``the reference reference.csv``).
    :param why: what :func:`emptiness` said.
    """
    return EmptyReference(f"{what} {why}: an empty reference cannot vouch for any batch (allow_empty applies to batches only)")


def empty_batch_finding(gate: str, what: str, why: str, *, checked: str = "nothing was checked") -> Finding:
    """The finding an allowed empty batch records: ``<gate>.empty-batch``, severity ``low``, not passed:
    name it in ``Evaluation.not_performed`` (:meth:`~airflow_mlsecops.gates.base.Evaluation.skip`), so the
    verdict is ``warned`` (incomplete), never ``passed``.

    :param gate: the gate's name.
    :param what: the batch as the message names it.
    :param why: what :func:`emptiness` said.
    :param checked: what was still checked on it.
    """
    return Finding(
        id=f"{gate}.{EMPTY_BATCH}",
        severity=Severity.LOW,
        message=f"{what} {why}: {checked}; accepted only because allow_empty=True",
        passed=False,
    )


__all__ = [
    "EMPTY_BATCH",
    "allow_empty_policy",
    "check_allow_empty",
    "empty_batch_error",
    "empty_batch_finding",
    "empty_reference_error",
    "emptiness",
]
