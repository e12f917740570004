"""The scan of a frame (:func:`scan_frame`): text columns through Arrow and RE2, numeric columns for card numbers.

**How**: each text column becomes an Arrow string array; one RE2 regular expression per column
(the union of the selected types) finds the few candidate cells, a per-type RE2 pass splits them by
type, and only those cells are checked in Python (exact pattern, then Luhn, mod-97, ranges...). A
cell counts once per type however many values it holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.pii.checksums import _card_network_ok, _luhn_valid_vectorised
from airflow_mlsecops.gates.pii.columns import _column_mode, _columns, _text_array
from airflow_mlsecops.gates.pii.detectors import _DETECTORS, _Detector, _first_value, resolve_types
from airflow_mlsecops.gates.pii.masking import _mask_keep_last

if TYPE_CHECKING:
    import pandas as pd

MAX_SAMPLES = 3
#: A column with at least this many bare 13-19 digit numbers, of which under half pass the card
#: checks, is treated as an identifier column (its bare numbers are not reported as card numbers).
CARD_ID_MIN_CANDIDATES = 10
CARD_ID_MIN_VALID_SHARE = 0.5

_BARE_CARD = re.compile(r"\s*\d{13,19}\s*", re.ASCII)


@dataclass(frozen=True)
class TypeHits:
    """How many scanned cells of a column hold one PII type, with masked samples.

    :param count: cells (rows) holding at least one value of the type.
    :param samples: up to :data:`MAX_SAMPLES` distinct masked values; never a raw value.
    """

    count: int
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnPII:
    """What the scan found in one column.

    :param column: the column name.
    :param dtype: its pandas dtype.
    :param mode: ``text`` (all types), ``numeric`` (card numbers only) or ``skipped``.
    :param allowed: the policy allows this column to hold personal data.
    :param pii_cells: cells holding at least one of the checked types.
    :param hits: per PII type found (types with no hit are absent).
    :param notes: anything the reader of the evidence must know (identifier-column decisions...).
    """

    column: str
    dtype: str
    mode: str
    allowed: bool
    pii_cells: int = 0
    hits: Mapping[str, TypeHits] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def has_pii(self) -> bool:
        return bool(self.hits)


def _mask_true(array: Any) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    return np.flatnonzero(pc.fill_null(array, False).to_numpy(zero_copy_only=False))


def _scan_text(column: pd.Series, types: Sequence[str]) -> tuple[dict[str, TypeHits], int, list[str]]:
    import numpy as np
    import pyarrow.compute as pc

    array = _text_array(column)
    union = "|".join(f"(?:{_DETECTORS[t].loose})" for t in types)
    candidates = _mask_true(pc.match_substring_regex(array, union))
    if not len(candidates):
        return {}, 0, []
    sub = pc.take(array, candidates)
    any_hit = np.zeros(len(sub), dtype=bool)
    hits: dict[str, TypeHits] = {}
    notes: list[str] = []
    for pii_type in types:
        detector = _DETECTORS[pii_type]
        positions = _mask_true(pc.match_substring_regex(sub, detector.loose)) if len(types) > 1 else np.arange(len(sub))
        if not len(positions):
            continue
        texts = pc.take(sub, positions).to_pylist()
        values = _validate_all(detector, texts)
        found = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
        if pii_type == "credit_card":
            bare = np.fromiter((_BARE_CARD.fullmatch(text) is not None for text in texts), dtype=bool, count=len(texts))
            bare_total, bare_valid = int(bare.sum()), int((bare & found).sum())
            if _looks_like_identifiers(bare_total, bare_valid):
                found &= ~bare
                notes.append(_identifier_note(bare_total, bare_valid))
        samples = _masked_samples(detector, (values[index] for index in np.flatnonzero(found)))
        count = int(found.sum())
        if count:
            hits[pii_type] = TypeHits(count=count, samples=samples)
            any_hit[positions[found]] = True
    return hits, int(any_hit.sum()), notes


def _validate_all(detector: _Detector, texts: list[str]) -> list[str | None]:
    """The exact check of each candidate cell (each distinct text checked once)."""
    cache: dict[str, str | None] = {}
    values: list[str | None] = []
    for text in texts:
        try:
            value = cache[text]
        except KeyError:
            value = cache[text] = _first_value(detector, text)
        values.append(value)
    return values


def _masked_samples(detector: _Detector, values: Iterable[str | None]) -> tuple[str, ...]:
    samples: dict[str, None] = {}
    for attempt, value in enumerate(values):
        if len(samples) >= MAX_SAMPLES or attempt >= 20 * MAX_SAMPLES:
            break
        if value is not None:
            samples.setdefault(detector.mask(value))
    return tuple(samples)


def _looks_like_identifiers(total: int, valid: int) -> bool:
    return total >= CARD_ID_MIN_CANDIDATES and valid < CARD_ID_MIN_VALID_SHARE * total


def _identifier_note(total: int, valid: int) -> str:
    return (
        f"identifier column: only {valid} of {total} bare 13-19 digit numbers pass the card checks "
        f"(under {CARD_ID_MIN_VALID_SHARE:.0%}); they are not reported as card numbers"
    )


def _scan_numeric(column: pd.Series) -> tuple[dict[str, TypeHits], int, list[str]]:
    """Card numbers stored as integers (or floats holding exact integers below 2**53)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(column.dtype):
        floats = column.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(floats) & (floats >= 1e12) & (floats < 2.0**53) & (floats == np.floor(floats))
        values = floats[keep].astype(np.int64)
    else:
        present = column.dropna()
        if pd.api.types.is_unsigned_integer_dtype(present.dtype):
            raw = present.to_numpy(dtype="uint64")
            values = raw[(raw >= 10**12) & (raw < 2**63)].astype(np.int64)  # 19-digit numbers above 2**63 are not checked
        else:
            raw = present.to_numpy(dtype="int64")
            values = raw[raw >= 10**12]  # int64 holds at most 19 digits
    if not len(values):
        return {}, 0, []
    luhn = values[_luhn_valid_vectorised(values)]
    verdicts: dict[int, bool] = {}
    valid: list[str] = []
    for value in luhn.tolist():
        if value not in verdicts:
            verdicts[value] = _card_network_ok(str(value))
        if verdicts[value]:
            valid.append(str(value))
    if not valid:
        return {}, 0, []
    if _looks_like_identifiers(len(values), len(valid)):
        return {}, 0, [_identifier_note(len(values), len(valid))]
    samples = tuple(dict.fromkeys(_mask_keep_last(v, 4) for v in valid[: MAX_SAMPLES * 4]))[:MAX_SAMPLES]
    return {"credit_card": TypeHits(count=len(valid), samples=samples)}, len(valid), []


def scan_frame(
    frame: pd.DataFrame, *, allow_columns: Iterable[str] | str = (), types: Iterable[str] | str | None = None
) -> list[ColumnPII]:
    """Scan every column of ``frame`` for personal data (pure: no I/O, no evidence).

    Text columns (object, string, categorical) are scanned for all selected types; integer and
    float columns for card numbers only (when ``credit_card`` is selected); other columns are
    ``skipped``.

    :param frame: the data.
    :param allow_columns: columns allowed to hold personal data; scanned and reported all the same.
    :param types: PII types to look for (default: all of :data:`PII_TYPES`).
    :returns: one :class:`ColumnPII` per column, in the frame's order.
    :raises ConfigurationError: for an unknown or empty type selection.
    """
    selected = resolve_types(types)
    allowed = set(_columns(allow_columns))
    results: list[ColumnPII] = []
    for index in range(frame.shape[1]):
        column = frame.iloc[:, index]
        name = str(frame.columns[index])
        mode = _column_mode(column)
        if mode == "numeric" and "credit_card" not in selected:
            mode = "skipped"
        if mode == "text":
            hits, cells, notes = _scan_text(column, selected)
        elif mode == "numeric":
            hits, cells, notes = _scan_numeric(column)
        else:
            hits, cells, notes = {}, 0, []
        results.append(
            ColumnPII(
                column=name,
                dtype=str(column.dtype),
                mode=mode,
                allowed=name in allowed,
                pii_cells=cells,
                hits=hits,
                notes=tuple(notes),
            )
        )
    return results
