"""The scan of a frame (:func:`scan_frame`): text columns through Arrow and RE2, numeric columns, column names.

**How**: each text column becomes an Arrow string array whose non-ASCII cells are normalised
(:func:`~airflow_mlsecops.gates.pii.normalising.normalise_array`, vectorised). One RE2 regular
expression per column (the union of the selected types) finds the few candidate cells, a per-type
RE2 pass splits them by type, and only those cells are checked in Python (exact pattern, then Luhn,
mod-97, ranges...). Cells holding an escape, a loose form or an obfuscation get a second, Python
pass (:func:`~airflow_mlsecops.gates.pii.detectors.find_pii` does the same for one cell). A cell
counts once per type however many values it holds; a type found with high confidence in a cell is
not counted again with low confidence.

**Judged on values, per column** (the rules that need more than one cell):

* *Bare numbers that pass the card checks* (a cell holding only 13-19 digits, or an integer):
  random identifiers pass Luhn one time in ten. When a column has at least
  :data:`CARD_ID_MIN_CANDIDATES` bare numbers shaped like cards and no more of them pass Luhn than
  chance explains (10% plus three standard deviations, :func:`_card_chance_bound`), they are
  reported with *low* confidence and a note; more than chance: *high*. One exception, with a note:
  in a column of alphanumeric identifiers of 13-19 characters (hex ids), the few that happen to
  have no letter are identifiers too, and are not reported unless more of them pass than chance explains.
* *Bare numbers that are plausible international phone numbers* (8-15 digits, a country code and
  its length, :func:`~airflow_mlsecops.gates.pii.checksums.e164_plausible`: E.164 numbers a CSV
  reader turned into ``int64``): *high* in a column whose name says phone (``phone``, ``mobile``,
  ``tel``, ``msisdn``...), *low* in a column where at least :data:`PHONE_COLUMN_MIN_SHARE` of the
  values are such numbers, not reported otherwise (identifiers and timestamps).
* *Version columns*: in a column where at least half the values are bare version strings and a
  fifth of those are not valid IPv4 addresses (``1.2.3``, ``2.10.0-rc1``), four-part values
  (``1.2.3.4``) are versions, not addresses (a note says how many).

**Column names** are scanned too (a pivoted table can carry e-mail addresses as headers): a name
holding personal data is reported (finding ``pii.<type>.column-name``) and never written out:
the evidence calls that column ``#<position> (name withheld)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.pii.checksums import _card_network_ok, _luhn_valid_vectorised, e164_plausible
from airflow_mlsecops.gates.pii.columns import _column_mode, _columns, _text_array
from airflow_mlsecops.gates.pii.detectors import (
    _DETECTORS,
    EXTRA_PREFILTERS,
    EXTRA_STEPS,
    _Detector,
    _extra_values,
    _first_value,
    find_pii,
    resolve_types,
)
from airflow_mlsecops.gates.pii.masking import _mask_keep_last
from airflow_mlsecops.gates.pii.normalising import normalise_array

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_SAMPLES = 3
#: A column needs at least this many bare numbers shaped like cards before the chance rule applies.
CARD_ID_MIN_CANDIDATES = 10
#: Share of a column's values that must be plausible international numbers for bare numbers to be
#: reported as phone numbers (low confidence) when the column's name does not say phone.
PHONE_COLUMN_MIN_SHARE = 0.9

_BARE_CARD = re.compile(r"\s*\d{13,19}\s*", re.ASCII)
_PHONE_NAME = re.compile(r"phone|mobile|\bcell|tel\b|^tel|telephone|msisdn|fax|whatsapp|\bsms", re.IGNORECASE)
_BARE_NUMBER_RE2 = r"^\s*\d{8,15}\s*$"
_VERSION_RE2 = r"^\s*[vV]?\d{1,5}(?:\.\d{1,5}){1,3}(?:[-+~_][0-9A-Za-z.+-]*)?\s*$"
_IPV4_ONLY_RE2 = r"^\s*(?:\d{1,3}\.){3}\d{1,3}\s*$"


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

    :param column: the column name, or ``#<position> (name withheld)`` when the name itself holds PII.
    :param dtype: its pandas dtype.
    :param mode: ``text`` (all types), ``numeric`` (card and phone numbers) or ``skipped``.
    :param allowed: the policy allows this column to hold personal data.
    :param pii_cells: cells holding at least one of the checked types, at any confidence.
    :param hits: per PII type found with high confidence (types with no hit are absent).
    :param low_hits: per PII type found with low confidence only (loose forms, obfuscations, column rules).
    :param name_hits: per PII type found in the column's name (count 1, the masked name as sample).
    :param notes: anything the reader of the evidence must know (identifier-column decisions...).
    """

    column: str
    dtype: str
    mode: str
    allowed: bool
    pii_cells: int = 0
    hits: Mapping[str, TypeHits] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    low_hits: Mapping[str, TypeHits] = field(default_factory=dict)
    name_hits: Mapping[str, TypeHits] = field(default_factory=dict)

    @property
    def has_pii(self) -> bool:
        return bool(self.hits or self.low_hits or self.name_hits)

    @property
    def types_found(self) -> tuple[str, ...]:
        """Every type found in the column (values at any confidence, or its name)."""
        return tuple(dict.fromkeys([*self.hits, *self.low_hits, *self.name_hits]))


class _Found:
    """Per type and confidence: which cells hold it and a few values (for samples)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cells: dict[tuple[str, str], np.ndarray] = {}
        self.values: dict[tuple[str, str], list[str]] = {}

    def add(self, pii_type: str, confidence: str, rows: Iterable[int], values: Iterable[str]) -> None:
        import numpy as np

        key = (pii_type, confidence)
        if key not in self.cells:
            self.cells[key] = np.zeros(self.size, dtype=bool)
            self.values[key] = []
        self.cells[key][np.fromiter(rows, dtype=np.int64)] = True
        kept = self.values[key]
        for value in values:
            if len(kept) >= 20 * MAX_SAMPLES:
                break
            kept.append(value)

    def has(self, pii_type: str, row: int) -> bool:
        cells = self.cells.get((pii_type, "high"))
        return cells is not None and bool(cells[row])

    def drop(self, pii_type: str, confidence: str, rows: np.ndarray) -> int:
        """Unmark ``rows`` (a boolean mask); the number of cells unmarked."""
        cells = self.cells.get((pii_type, confidence))
        if cells is None:
            return 0
        dropped = int((cells & rows).sum())
        cells &= ~rows
        return dropped

    def hits(self, confidence: str) -> dict[str, TypeHits]:
        out: dict[str, TypeHits] = {}
        for (pii_type, level), cells in self.cells.items():
            if level != confidence:
                continue
            if confidence == "low" and (pii_type, "high") in self.cells:
                cells = cells & ~self.cells[(pii_type, "high")]
            count = int(cells.sum())
            if count:
                out[pii_type] = TypeHits(
                    count=count, samples=_masked_samples(_DETECTORS[pii_type], self.values[(pii_type, level)])
                )
        return out

    def any_cells(self) -> int:
        import numpy as np

        union = np.zeros(self.size, dtype=bool)
        for cells in self.cells.values():
            union |= cells
        return int(union.sum())


def _mask_true(array: Any) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    return np.flatnonzero(pc.fill_null(array, False).to_numpy(zero_copy_only=False))


def _scan_text(
    column: pd.Series, name: str, types: Sequence[str]
) -> tuple[dict[str, TypeHits], dict[str, TypeHits], int, list[str]]:
    """High- and low-confidence hits of a text column, the cells holding any, notes."""
    import numpy as np
    import pyarrow.compute as pc

    array = normalise_array(_text_array(column))
    found = _Found(len(array))
    notes: list[str] = []
    steps = {step: pattern for step, pattern in EXTRA_STEPS.items() if not step.startswith("low:") or step[4:] in types}
    extra = "|".join(f"(?:{EXTRA_PREFILTERS[step]})" for step in steps)
    union = "|".join([*(f"(?:{_DETECTORS[t].loose})" for t in types), extra, *([_BARE_NUMBER_RE2] if "phone" in types else [])])
    candidates = _mask_true(pc.match_substring_regex(array, union))  # one pass over the column; the rest on these cells
    if not len(candidates):
        return {}, {}, 0, notes
    sub = pc.take(array, candidates)
    for pii_type in types:
        detector = _DETECTORS[pii_type]
        positions = _mask_true(pc.match_substring_regex(sub, detector.loose))
        if not len(positions):
            continue
        texts = pc.take(sub, positions).to_pylist()
        values = _validate_all(detector, texts)
        ok = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
        if pii_type == "credit_card":
            bare = np.fromiter((_BARE_CARD.fullmatch(text) is not None for text in texts), dtype=bool, count=len(texts))
            if (ok & bare).any():
                decision = _bare_cards_by_chance([t.strip() for t, b in zip(texts, bare, strict=True) if b], array, notes)
                if decision != "high":
                    kept = ok & bare if decision == "low" else np.zeros_like(ok)
                    found.add(pii_type, "low", candidates[positions[kept]], (values[i] for i in np.flatnonzero(kept)))  # type: ignore[misc]
                    ok &= ~bare
        found.add(pii_type, "high", candidates[positions[ok]], (values[i] for i in np.flatnonzero(ok)))  # type: ignore[misc]
    _extra_pass(sub, candidates, steps, types, found)
    if "phone" in types:
        _bare_phone_pass(sub, candidates, len(array) - array.null_count, name, found, notes)
    if "ipv4" in types and (("ipv4", "high") in found.cells or ("ipv4", "low") in found.cells):
        _version_column_pass(array, found, notes)
    return found.hits("high"), found.hits("low"), found.any_cells(), notes


def _extra_pass(sub: Any, candidates: Any, steps: Mapping[str, str], types: Sequence[str], found: _Found) -> None:
    """Cells with an escape, a loose form or an obfuscation: decoded (high), loose forms and obfuscations (low).

    :param sub: the candidate cells; ``candidates`` their rows; ``steps`` the extra steps and their
        exact RE2 patterns (run on the candidate cells only).
    """
    import numpy as np
    import pyarrow.compute as pc

    positions = _mask_true(pc.match_substring_regex(sub, "|".join(f"(?:{p})" for p in steps.values())))
    if not len(positions):
        return
    cells = pc.take(sub, positions)
    needs = {
        step: pc.fill_null(pc.match_substring_regex(cells, p), False).to_numpy(zero_copy_only=False) for step, p in steps.items()
    }
    names = list(needs)
    matrix = np.column_stack([needs[step] for step in names])
    cache: dict[tuple[str, tuple[str, ...]], dict[str, tuple[str, str]]] = {}
    for index, (row, text) in enumerate(zip(candidates[positions].tolist(), cells.to_pylist(), strict=True)):
        wanted = tuple(name for name, needed in zip(names, matrix[index], strict=True) if needed)
        key = (text, wanted)
        if key not in cache:
            cache[key] = _extra_values(text, types, (), wanted)
        for pii_type, (confidence, value) in cache[key].items():
            if confidence == "low" or not found.has(pii_type, row):
                found.add(pii_type, confidence, [row], [value])


def _bare_phone_pass(sub: Any, candidates: Any, present: int, name: str, found: _Found, notes: list[str]) -> None:
    """Cells holding only 8-15 digits: international phone numbers written without ``+`` (column rule).

    :param sub: the candidate cells; ``candidates`` their rows; ``present`` the column's non-null cells.
    """
    import pyarrow.compute as pc

    positions = _mask_true(pc.match_substring_regex(sub, _BARE_NUMBER_RE2))
    if not len(positions):
        return
    numbers = [text.strip() for text in pc.take(sub, positions).to_pylist()]
    verdict = _phone_column_rule(numbers, present, name, notes)
    if verdict is not None:
        confidence, plausible = verdict
        rows = candidates[positions[plausible]]
        found.add("phone", confidence, rows, (numbers[i] for i in plausible.nonzero()[0]))
        _not_cards(found, rows)


def _not_cards(found: _Found, rows: Any) -> None:
    """Bare numbers taken as phone numbers in a phone column are not card numbers too (``4915100000012``
    is a German mobile number, and happens to pass Luhn with a 13-digit Visa prefix)."""
    import numpy as np

    mask = np.zeros(found.size, dtype=bool)
    mask[rows] = True
    found.drop("credit_card", "high", mask)
    found.drop("credit_card", "low", mask)


def _phone_column_rule(numbers: list[str], present: int, name: str, notes: list[str]) -> tuple[str, Any] | None:
    """Which bare numbers count as phone numbers, and how surely; ``None``: none of them."""
    import numpy as np

    plausible = np.fromiter((e164_plausible(n) for n in numbers), dtype=bool, count=len(numbers))
    count = int(plausible.sum())
    if not count:
        return None
    if _PHONE_NAME.search(name):
        notes.append(f"{count} bare numbers are plausible international phone numbers in a column named like phone numbers")
        return "high", plausible
    if present and count >= PHONE_COLUMN_MIN_SHARE * present:
        notes.append(
            f"{count} of {present} values are plausible international phone numbers written without '+' "
            f"(at least {PHONE_COLUMN_MIN_SHARE:.0%}): reported with low confidence"
        )
        return "low", plausible
    return None


def _version_column_pass(array: Any, found: _Found, notes: list[str]) -> None:
    """In a column of version strings, four-part values are versions: their IPv4 hits are dropped (with a note)."""
    import pyarrow.compute as pc

    present = len(array) - array.null_count
    versions = pc.fill_null(pc.match_substring_regex(array, _VERSION_RE2), False)
    version_count = pc.sum(versions).as_py() or 0
    not_addresses = pc.sum(pc.and_(versions, pc.invert(pc.fill_null(pc.match_substring_regex(array, _IPV4_ONLY_RE2), False))))
    other = not_addresses.as_py() or 0
    if not present or version_count < 0.5 * present or other < max(2, 0.2 * version_count):
        return
    mask = versions.to_numpy(zero_copy_only=False)
    dropped = found.drop("ipv4", "high", mask) + found.drop("ipv4", "low", mask)
    if dropped:
        notes.append(
            f"version column: {version_count} of {present} values are version strings ({other} of them not addresses); "
            f"{dropped} four-part values among them are not reported as IPv4 addresses"
        )


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


def _card_chance_bound(shaped: int) -> float:
    """The most Luhn-valid numbers among ``shaped`` random card-shaped numbers chance explains (10% + 3 sd + 1)."""
    return 0.1 * shaped + 3 * math.sqrt(0.09 * shaped) + 1


def _bare_cards_by_chance(bare_cards: Sequence[str], array: Any, notes: list[str]) -> str:
    """How the bare numbers of a text column that pass the card checks are reported: ``high``, ``low`` or ``none``.

    * more of them pass Luhn than chance explains (:func:`_card_chance_bound`): ``high``;
    * they are the all-digit members of a column of alphanumeric identifiers of 13-19 characters
      (``3f9a0c...``: one 16-character hex id in ~2,000 has no letter, one in ten of those passes
      Luhn): ``none``, with a note;
    * at least :data:`CARD_ID_MIN_CANDIDATES` of them are shaped like cards: ``low``, with a note;
    * otherwise ``high``.
    """
    import pyarrow.compute as pc

    shaped = [n for n in bare_cards if 13 <= len(n) <= 19 and _card_network_ok(n)]
    valid = sum(1 for n in shaped if _luhn_one(n))
    bound = _card_chance_bound(len(shaped))
    if valid > bound:
        return "high"
    lettered = (pc.sum(pc.match_substring_regex(array, r"^\s*[0-9A-Za-z]{13,19}\s*$")).as_py() or 0) - len(bare_cards)
    if lettered >= CARD_ID_MIN_CANDIDATES and lettered >= len(bare_cards):
        notes.append(
            f"identifier column: {lettered} alphanumeric identifiers of 13-19 characters; {valid} of the {len(shaped)} "
            f"without a letter pass the card checks, no more than chance explains (at most {bound:.0f}): not reported"
        )
        return "none"
    if len(shaped) < CARD_ID_MIN_CANDIDATES:
        return "high"
    notes.append(
        f"identifier column: {valid} of {len(shaped)} bare numbers shaped like card numbers pass Luhn, no more than "
        f"chance explains (at most {bound:.0f}): reported with low confidence"
    )
    return "low"


def _luhn_one(digits: str) -> bool:
    from airflow_mlsecops.gates.pii.checksums import _luhn_ok

    return _luhn_ok(digits)


def _scan_numeric(
    column: pd.Series, name: str, types: Sequence[str]
) -> tuple[dict[str, TypeHits], dict[str, TypeHits], int, list[str]]:
    """Card and phone numbers stored as integers (or floats holding exact integers below 2**53)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(column.dtype):
        floats = column.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(floats) & (floats >= 1e7) & (floats < 2.0**53) & (floats == np.floor(floats))
        values = floats[keep].astype(np.int64)
        rows = np.flatnonzero(keep)
    else:
        present = column.notna().to_numpy()
        if pd.api.types.is_unsigned_integer_dtype(column.dtype):
            raw = column.to_numpy(dtype="uint64", na_value=0)
            keep = present & (raw >= 10**7) & (raw < 2**63)  # 19-digit numbers above 2**63 are not checked
        else:
            raw = column.to_numpy(dtype="int64", na_value=0)
            keep = present & (raw >= 10**7)  # int64 holds at most 19 digits
        values = raw[keep].astype(np.int64)
        rows = np.flatnonzero(keep)
    found = _Found(len(column))
    notes: list[str] = []
    if len(values) and "credit_card" in types:
        long_numbers = values >= 10**12
        cards = values[long_numbers]
        luhn = _luhn_valid_vectorised(cards) if len(cards) else np.zeros(0, dtype=bool)
        shaped = np.fromiter((_card_network_ok(str(v)) for v in cards.tolist()), dtype=bool, count=len(cards))
        valid = luhn & shaped
        if valid.any():
            by_chance = int(shaped.sum()) >= CARD_ID_MIN_CANDIDATES and int(valid.sum()) <= _card_chance_bound(int(shaped.sum()))
            confidence = "low" if by_chance else "high"
            if by_chance:
                bound = _card_chance_bound(int(shaped.sum()))
                notes.append(
                    f"identifier column: {int(valid.sum())} of {int(shaped.sum())} numbers shaped like card numbers pass Luhn, "
                    f"no more than chance explains (at most {bound:.0f}): reported with low confidence"
                )
            card_rows = rows[long_numbers][valid]
            found.add("credit_card", confidence, card_rows, (str(v) for v in cards[valid][: 20 * MAX_SAMPLES].tolist()))
    if len(values) and "phone" in types:
        phones = values < 10**15
        numbers = [str(v) for v in values[phones].tolist()]
        verdict = _phone_column_rule(numbers, int(column.notna().sum()), name, notes)
        if verdict is not None:
            confidence, plausible = verdict
            found.add("phone", confidence, rows[phones][plausible], (numbers[i] for i in plausible.nonzero()[0]))
            _not_cards(found, rows[phones][plausible])
    return _numeric_hits(found, "high"), _numeric_hits(found, "low"), found.any_cells(), notes


def _numeric_hits(found: _Found, confidence: str) -> dict[str, TypeHits]:
    """Like :meth:`_Found.hits`, with numbers masked as digits (no separators to keep)."""
    hits = found.hits(confidence)
    return {
        t: TypeHits(
            count=h.count,
            samples=tuple(
                dict.fromkeys(_mask_keep_last(v, 4 if t == "credit_card" else 2) for v in found.values[(t, confidence)])
            )[:MAX_SAMPLES],
        )
        for t, h in hits.items()
    }


def _name_hits(name: str, types: Sequence[str]) -> dict[str, TypeHits]:
    """PII in a column's name (any confidence): one hit per type, the masked value as sample."""
    return {t: TypeHits(count=1, samples=(masked,)) for t, (_, masked) in find_pii(name, types).items()}


def scan_frame(
    frame: pd.DataFrame, *, allow_columns: Iterable[str] | str = (), types: Iterable[str] | str | None = None
) -> list[ColumnPII]:
    """Scan every column of ``frame`` (its values and its name) for personal data (pure: no I/O, no evidence).

    Text columns (object, string, categorical) are scanned for all selected types; integer and
    float columns for card and phone numbers (when selected); other columns are ``skipped``.
    Every column's name is scanned.

    :param frame: the data.
    :param allow_columns: columns allowed to hold personal data; scanned and reported all the same.
        A column *name* holding personal data is reported whatever this says.
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
        if mode == "numeric" and not {"credit_card", "phone"} & set(selected):
            mode = "skipped"
        low: dict[str, TypeHits] = {}
        if mode == "text":
            hits, low, cells, notes = _scan_text(column, name, selected)
        elif mode == "numeric":
            hits, low, cells, notes = _scan_numeric(column, name, selected)
        else:
            hits, cells, notes = {}, 0, []
        in_name = _name_hits(name, selected)
        results.append(
            ColumnPII(
                column=f"#{index + 1} (name withheld)" if in_name else name,
                dtype=str(column.dtype),
                mode=mode,
                allowed=name in allowed,
                pii_cells=cells,
                hits=hits,
                notes=tuple(notes),
                low_hits=low,
                name_hits=in_name,
            )
        )
    return results
