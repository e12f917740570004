"""Checks of single cells of the batch, needing no reference: ``integrity.non_finite`` and ``integrity.formula_injection``.

Both look at **every column of the batch**, ``ignore_columns`` included (a free-text column is
where a formula hides; ``ignore_columns`` exempts a column from the comparisons with the reference).

``integrity.non_finite``
    Share of batch rows holding ``+inf``, ``-inf`` or a number too large for float32 (magnitude above
    about 3.4e38, which scikit-learn's trees cannot take) in a numeric column. Such values are not a
    measurement: they poison means, ranges and models. The other checks treat them as missing, so
    they never reach a model. Missing values (``NaN``, an empty CSV cell) are not counted here.

``integrity.formula_injection``
    Share of batch rows with a text cell that a spreadsheet would run as a formula when the data is
    opened there (CSV injection, OWASP): a cell whose first character, after leading spaces, is
    ``=`` or ``@`` or a tab or carriage return, or ``+`` / ``-`` followed by anything that is not
    plain number text. ``-5``, ``+44 20 7946 0958``, ``+1 (202) 555-0143``, ``-1.5e-3`` and a lone
    ``-`` are numbers, phone numbers or placeholders, not formulas; ``-2+3+cmd|' /C calc'!A0``,
    ``+HYPERLINK(...)`` and ``- note`` are formulas. Only text cells count: a negative number in a
    numeric column is a number. A header cell that is a formula fails the check as well (unless
    ``max_formula_share`` is 1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.data_integrity.results import _by_column, _Check, _column_rows_location, _judged, _pct
from airflow_mlsecops.gates.data_integrity.schema import _Frames, _kind, _numeric, _unrepresentable
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# A spreadsheet runs a cell as a formula when it starts (after spaces) with one of these.
_FORMULA_START = re.compile(r"[ ]*[=@+\-\t\r]")
# ... except a sign followed by nothing but number text: digits, spaces and . , ( ) / + - (numbers,
# phone numbers, ranges), or a number in exponent notation.
_SIGNED_NUMBER = re.compile(r"[ ]*[+-](?:[0-9 .,()/+-]*|[0-9]*\.?[0-9]+[eE][+-]?[0-9]+)\Z")
_EXAMPLES = 5  # flagged cells quoted per column in the report (shortened)


def is_formula(text: str) -> bool:
    """Whether a spreadsheet would run the text cell ``text`` as a formula (the rule of this module's docstring).

    >>> [is_formula(v) for v in ("=1+1", "@SUM(A1)", "-5", "+44 20 7946 0958", "-2+3+cmd|' /C calc'!A0", "\\t=1")]
    [True, True, False, False, True, True]
    """
    return bool(_FORMULA_START.match(text)) and not _SIGNED_NUMBER.match(text)


def _formula_mask(series: pd.Series) -> np.ndarray:
    """Where the column holds a text cell that :func:`is_formula` flags."""
    import numpy as np
    import pandas as pd

    # judged once per distinct value (a text never equals a value of another type, so grouping is safe)
    codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
    flags = np.fromiter((isinstance(v, str) and is_formula(v) for v in uniques), dtype=bool, count=len(uniques))
    return np.append(flags, False)[codes]  # code -1 (missing): the appended False


def _non_finite_rows(batch: pd.DataFrame) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Where ``batch`` (a whole batch or one chunk of it) holds a non-finite number, and the counts per column."""
    import numpy as np

    any_bad = np.zeros(len(batch), dtype=bool)
    per_column: dict[str, dict[str, int]] = {}
    for column in batch.columns:
        kind = _kind(batch[column])
        if kind not in ("integer", "float"):
            continue
        values = _numeric(batch[column], kind)
        bad = _unrepresentable(values)
        if bad.any():
            per_column[str(column)] = {
                "+inf": int(np.sum(values == np.inf)),
                "-inf": int(np.sum(values == -np.inf)),
                "too_large": int(np.sum(bad & np.isfinite(values))),
                "rows": int(bad.sum()),
            }
            any_bad |= bad
    return any_bad, per_column


def _non_finite(frames: _Frames) -> _Check:
    import numpy as np

    mask, per_column = _non_finite_rows(frames.batch)
    rows = np.flatnonzero(mask)
    return _non_finite_result(rows, len(rows), len(frames.batch), per_column, frames.thresholds)


def _non_finite_result(
    rows: Sequence[int] | np.ndarray, count: int, total: int, per_column: dict[str, dict[str, int]], th: IntegrityThresholds
) -> _Check:
    """``integrity.non_finite`` from the first suspect rows, their number ``count`` of ``total`` and the counts per column."""
    share = count / total
    violated = share > th.max_non_finite_share
    message = (
        f"{count} of {total} rows ({_pct(share)}) hold an infinite number or one too large for float32 "
        f"(limit {_pct(th.max_non_finite_share)})"
    )
    columns_text, worst = _by_column({name: info["rows"] for name, info in per_column.items()})
    message += columns_text
    return _judged(
        "integrity.non_finite",
        violated=violated,
        message=message,
        value=share,
        threshold=th.max_non_finite_share,
        location=_column_rows_location(worst, rows, count),
        rows=rows,
        cap=th.max_rows_reported,
        metrics={"non_finite_share": share},
        report={"columns": per_column},
        total=count,
    )


def _formula_rows(batch: pd.DataFrame) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """Where ``batch`` (a whole batch or one chunk of it) holds a formula cell, and the counts and examples per column."""
    import numpy as np

    any_formula = np.zeros(len(batch), dtype=bool)
    per_column: dict[str, dict[str, Any]] = {}
    for column in batch.columns:
        if _kind(batch[column]) != "string":
            continue
        mask = _formula_mask(batch[column])
        if mask.any():
            examples = [str(v)[:40] for v in batch[column].to_numpy(dtype=object)[mask][:_EXAMPLES]]
            per_column[str(column)] = {"rows": int(mask.sum()), "examples": examples}
            any_formula |= mask
    return any_formula, per_column


def _merge_formula_columns(total: dict[str, dict[str, Any]], part: dict[str, dict[str, Any]]) -> None:
    """Add one chunk's formula counts and examples to the running totals."""
    for column, info in part.items():
        into = total.setdefault(column, {"rows": 0, "examples": []})
        into["rows"] += info["rows"]
        into["examples"] = (into["examples"] + info["examples"])[:_EXAMPLES]


def _formula_injection(frames: _Frames) -> _Check:
    import numpy as np

    mask, per_column = _formula_rows(frames.batch)
    rows = np.flatnonzero(mask)
    return _formula_result(
        rows, len(rows), len(frames.batch), per_column, [str(c) for c in frames.batch.columns], frames.thresholds
    )


def _formula_result(
    rows: Sequence[int] | np.ndarray,
    count: int,
    total: int,
    per_column: dict[str, dict[str, Any]],
    columns: Sequence[str],
    th: IntegrityThresholds,
) -> _Check:
    """``integrity.formula_injection`` from the first suspect rows, their number ``count`` of ``total`` rows,
    the counts per column and the batch's header."""
    headers = [c for c in columns if is_formula(c)]
    share = count / total
    violated = share > th.max_formula_share or (bool(headers) and th.max_formula_share < 1)
    message = (
        f"{count} of {total} rows ({_pct(share)}) hold a text cell a spreadsheet would run as a formula "
        f"(starts with =, @, a tab or carriage return, or + / - before something other than a number; "
        f"limit {_pct(th.max_formula_share)})"
    )
    columns_text, worst = _by_column({name: info["rows"] for name, info in per_column.items()})
    message += columns_text
    if headers:
        message += f"; header cell(s) that are formulas: {', '.join(repr(h[:40]) for h in headers[:6])}"
    header_location = f"header {headers[0][:40]!r}" if headers else None
    return _judged(
        "integrity.formula_injection",
        violated=violated,
        message=message,
        value=share,
        threshold=th.max_formula_share,
        location=_column_rows_location(worst, rows, count) or header_location,
        rows=rows,
        cap=th.max_rows_reported,
        metrics={"formula_share": share, "formula_headers": float(len(headers))},
        report={"columns": per_column, "formula_headers": headers},
        total=count,
    )
