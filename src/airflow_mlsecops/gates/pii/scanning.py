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
from airflow_mlsecops.gates.pii.state import (
    BARE_CARD,
    BARE_PHONE,
    KEPT_VALUES,
    NUMERIC_CARD,
    NUMERIC_PHONE,
    VERSION,
    ColumnState,
    extra_bit,
    final_hits,
    high_bit,
    sample_values,
)

if TYPE_CHECKING:
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
_LETTERED_RE2 = r"^\s*[0-9A-Za-z]{13,19}\s*$"


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


def _mask_true(array: Any) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    return np.flatnonzero(pc.fill_null(array, False).to_numpy(zero_copy_only=False))


def _count_matches(array: Any, pattern: str) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.match_substring_regex(array, pattern)).as_py() or 0)


def _version_stats(array: Any, state: ColumnState) -> None:
    """Cells that are bare version strings, and those of them that are not IPv4 addresses."""
    import pyarrow.compute as pc

    versions = pc.fill_null(pc.match_substring_regex(array, _VERSION_RE2), False)
    state.versions += int(pc.sum(versions).as_py() or 0)
    addresses = pc.fill_null(pc.match_substring_regex(array, _IPV4_ONLY_RE2), False)
    state.versions_not_addresses += int(pc.sum(pc.and_(versions, pc.invert(addresses))).as_py() or 0)


def _observe_text(column: pd.Series, state: ColumnState, types: Sequence[str], whole: bool) -> None:
    """Record what the text cells of ``column`` hold in ``state`` (see :mod:`.state`).

    :param whole: ``column`` is the whole column (the statistics only a column rule needs are then
        counted only when that rule applies); otherwise a batch of it, and they are always counted.
    """
    import numpy as np
    import pyarrow.compute as pc

    array = normalise_array(_text_array(column))
    state.rows += len(array)
    state.present += len(array) - array.null_count
    if not whole:
        if "credit_card" in types:
            state.lettered += _count_matches(array, _LETTERED_RE2)
        if "ipv4" in types:
            _version_stats(array, state)
    steps = {step: pattern for step, pattern in EXTRA_STEPS.items() if not step.startswith("low:") or step[4:] in types}
    extra = "|".join(f"(?:{EXTRA_PREFILTERS[step]})" for step in steps)
    union = "|".join([*(f"(?:{_DETECTORS[t].loose})" for t in types), extra, *([_BARE_NUMBER_RE2] if "phone" in types else [])])
    candidates = _mask_true(pc.match_substring_regex(array, union))  # one pass over the column; the rest on these cells
    if not len(candidates):
        return
    sub = pc.take(array, candidates)
    codes = np.zeros(len(candidates), dtype=np.int64)
    for pii_type in types:
        detector = _DETECTORS[pii_type]
        positions = _mask_true(pc.match_substring_regex(sub, detector.loose))
        if not len(positions):
            continue
        state.ipv4_seen = state.ipv4_seen or pii_type == "ipv4"
        texts = pc.take(sub, positions).to_pylist()
        values = _validate_all(detector, texts)
        ok = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
        if pii_type != "credit_card":
            codes[positions[ok]] |= high_bit(pii_type)
            state.keep(f"high:{pii_type}", (values[i] for i in np.flatnonzero(ok)))  # type: ignore[misc]
            continue
        bare = np.fromiter((_BARE_CARD.fullmatch(text) is not None for text in texts), dtype=bool, count=len(texts))
        bare_cards = [t.strip() for t, b in zip(texts, bare, strict=True) if b]
        shaped = [n for n in bare_cards if 13 <= len(n) <= 19 and _card_network_ok(n)]
        state.bare_cards += len(bare_cards)
        state.bare_shaped += len(shaped)
        state.bare_valid += sum(1 for n in shaped if _luhn_one(n))
        if whole and (ok & bare).any():
            state.lettered += _count_matches(array, _LETTERED_RE2)
        codes[positions[ok & bare]] |= BARE_CARD
        codes[positions[ok & ~bare]] |= high_bit(pii_type)
        state.keep("card:all", (values[i] for i in np.flatnonzero(ok)))  # type: ignore[misc]
        state.keep("card:not-bare", (values[i] for i in np.flatnonzero(ok & ~bare)))  # type: ignore[misc]
        state.keep("card:bare", (values[i] for i in np.flatnonzero(ok & bare)))  # type: ignore[misc]
    _extra_pass(sub, codes, steps, types, state)
    if "phone" in types:
        positions = _mask_true(pc.match_substring_regex(sub, _BARE_NUMBER_RE2))
        if len(positions):
            numbers = [text.strip() for text in pc.take(sub, positions).to_pylist()]
            plausible = np.fromiter((e164_plausible(n) for n in numbers), dtype=bool, count=len(numbers))
            state.phones_plausible += int(plausible.sum())
            codes[positions[plausible]] |= BARE_PHONE
            state.keep("phone:bare", (numbers[i] for i in np.flatnonzero(plausible)))
    if "ipv4" in types:
        ipv4_bits = high_bit("ipv4") | extra_bit("ipv4", "high") | extra_bit("ipv4", "low")
        with_ipv4 = np.flatnonzero(codes & ipv4_bits)
        if len(with_ipv4):
            is_version = pc.fill_null(pc.match_substring_regex(pc.take(sub, with_ipv4), _VERSION_RE2), False)
            codes[with_ipv4[is_version.to_numpy(zero_copy_only=False)]] |= VERSION
        if whole and state.ipv4_seen:
            _version_stats(array, state)
    state.add_codes(codes)


def _extra_pass(sub: Any, codes: Any, steps: Mapping[str, str], types: Sequence[str], state: ColumnState) -> None:
    """Cells with an escape, a loose form or an obfuscation: decoded (high), loose forms and obfuscations (low).

    :param sub: the candidate cells; ``codes`` their row codes; ``steps`` the extra steps and their
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
    for index, (position, text) in enumerate(zip(positions.tolist(), cells.to_pylist(), strict=True)):
        wanted = tuple(name for name, needed in zip(names, matrix[index], strict=True) if needed)
        key = (text, wanted)
        if key not in cache:
            cache[key] = _extra_values(text, types, (), wanted)
        for pii_type, (confidence, value) in cache[key].items():
            if confidence == "high" and codes[position] & high_bit(pii_type):
                continue  # found already: the value is not sampled twice
            if pii_type == "ipv4":
                state.ipv4_seen = True
            codes[position] |= extra_bit(pii_type, confidence)
            state.keep(f"extra:{pii_type}:{confidence}", [value])


def _phone_decision(count: int, present: int, name: str, notes: list[str]) -> str | None:
    """How ``count`` bare plausible international numbers among ``present`` values are reported; ``None``: not at all."""
    if not count:
        return None
    if _PHONE_NAME.search(name):
        notes.append(f"{count} bare numbers are plausible international phone numbers in a column named like phone numbers")
        return "high"
    if present and count >= PHONE_COLUMN_MIN_SHARE * present:
        notes.append(
            f"{count} of {present} values are plausible international phone numbers written without '+' "
            f"(at least {PHONE_COLUMN_MIN_SHARE:.0%}): reported with low confidence"
        )
        return "low"
    return None


def _version_decision(state: ColumnState) -> bool:
    """Whether the column is a version column: four-part values in it are versions, not IPv4 addresses."""
    present, version_count, other = state.present, state.versions, state.versions_not_addresses
    return bool(state.ipv4_seen) and not (not present or version_count < 0.5 * present or other < max(2, 0.2 * version_count))


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


def _bare_cards_by_chance(state: ColumnState, notes: list[str]) -> str:
    """How the bare numbers of a text column that pass the card checks are reported: ``high``, ``low`` or ``none``.

    * more of them pass Luhn than chance explains (:func:`_card_chance_bound`): ``high``;
    * they are the all-digit members of a column of alphanumeric identifiers of 13-19 characters
      (``3f9a0c...``: one 16-character hex id in ~2,000 has no letter, one in ten of those passes
      Luhn): ``none``, with a note;
    * at least :data:`CARD_ID_MIN_CANDIDATES` of them are shaped like cards: ``low``, with a note;
    * otherwise ``high``.
    """
    shaped, valid = state.bare_shaped, state.bare_valid
    bound = _card_chance_bound(shaped)
    if valid > bound:
        return "high"
    lettered = state.lettered - state.bare_cards
    if lettered >= CARD_ID_MIN_CANDIDATES and lettered >= state.bare_cards:
        notes.append(
            f"identifier column: {lettered} alphanumeric identifiers of 13-19 characters; {valid} of the {shaped} "
            f"without a letter pass the card checks, no more than chance explains (at most {bound:.0f}): not reported"
        )
        return "none"
    if shaped < CARD_ID_MIN_CANDIDATES:
        return "high"
    notes.append(
        f"identifier column: {valid} of {shaped} bare numbers shaped like card numbers pass Luhn, no more than "
        f"chance explains (at most {bound:.0f}): reported with low confidence"
    )
    return "low"


def _numeric_cards_by_chance(state: ColumnState, notes: list[str]) -> str:
    """How integers that pass the card checks are reported: ``low`` when no more pass than chance explains."""
    shaped, valid = state.numeric_shaped, state.numeric_valid
    if shaped >= CARD_ID_MIN_CANDIDATES and valid <= _card_chance_bound(shaped):
        notes.append(
            f"identifier column: {valid} of {shaped} numbers shaped like card numbers pass Luhn, "
            f"no more than chance explains (at most {_card_chance_bound(shaped):.0f}): reported with low confidence"
        )
        return "low"
    return "high"


def _luhn_one(digits: str) -> bool:
    from airflow_mlsecops.gates.pii.checksums import _luhn_ok

    return _luhn_ok(digits)


def _observe_numeric(column: pd.Series, state: ColumnState, types: Sequence[str]) -> None:
    """Card and phone numbers stored as integers (or floats holding exact integers below 2**53)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_float_dtype(column.dtype):
        floats = column.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(floats) & (floats >= 1e7) & (floats < 2.0**53) & (floats == np.floor(floats))
        values = floats[keep].astype(np.int64)
    else:
        present = column.notna().to_numpy()
        if pd.api.types.is_unsigned_integer_dtype(column.dtype):
            raw = column.to_numpy(dtype="uint64", na_value=0)
            keep = present & (raw >= 10**7) & (raw < 2**63)  # 19-digit numbers above 2**63 are not checked
        else:
            raw = column.to_numpy(dtype="int64", na_value=0)
            keep = present & (raw >= 10**7)  # int64 holds at most 19 digits
        values = raw[keep].astype(np.int64)
    state.rows += len(column)
    state.present += int(column.notna().sum())
    codes = np.zeros(len(values), dtype=np.int64)
    if len(values) and "credit_card" in types:
        long_numbers = values >= 10**12
        cards = values[long_numbers]
        luhn = _luhn_valid_vectorised(cards) if len(cards) else np.zeros(0, dtype=bool)
        shaped = np.fromiter((_card_network_ok(str(v)) for v in cards.tolist()), dtype=bool, count=len(cards))
        valid = luhn & shaped
        state.numeric_shaped += int(shaped.sum())
        state.numeric_valid += int(valid.sum())
        codes[np.flatnonzero(long_numbers)[valid]] |= NUMERIC_CARD
        state.keep("numeric:card", (str(v) for v in cards[valid][:KEPT_VALUES].tolist()))
    if len(values) and "phone" in types:
        phones = np.flatnonzero(values < 10**15)
        numbers = [str(v) for v in values[phones].tolist()]
        plausible = np.fromiter((e164_plausible(n) for n in numbers), dtype=bool, count=len(numbers))
        state.phones_plausible += int(plausible.sum())
        codes[phones[plausible]] |= NUMERIC_PHONE
        state.keep("phone:bare", (numbers[i] for i in np.flatnonzero(plausible)))
    state.add_codes(codes)


def observe_frame(frame: pd.DataFrame, types: Sequence[str], *, whole: bool = True) -> list[ColumnState]:
    """What the columns of ``frame`` hold, one :class:`~.state.ColumnState` per column (a batch: ``whole=False``).

    :param types: PII types to look for (resolved already).
    """
    states: list[ColumnState] = []
    for index in range(frame.shape[1]):
        column = frame.iloc[:, index]
        mode = _column_mode(column)
        if mode == "numeric" and not {"credit_card", "phone"} & set(types):
            mode = "skipped"
        state = ColumnState(name=str(frame.columns[index]), mode=mode)
        state.add_dtype(str(column.dtype))
        if mode == "text":
            _observe_text(column, state, types, whole)
        elif mode == "numeric":
            _observe_numeric(column, state, types)
        else:
            state.rows += len(column)
        states.append(state)
    return states


def finish_column(state: ColumnState, allowed: bool, types: Sequence[str], position: int) -> ColumnPII:
    """Apply the column rules to what the scan saw in a whole column: the column's :class:`ColumnPII`."""
    notes: list[str] = []
    card: str | None = None
    if state.mode == "text" and state.codes and any(code & BARE_CARD for code in state.codes):
        card = _bare_cards_by_chance(state, notes)
    elif state.mode == "numeric" and state.numeric_valid:
        card = _numeric_cards_by_chance(state, notes)
    phone = _phone_decision(state.phones_plausible, state.present, state.name, notes) if "phone" in types else None
    versions = state.mode == "text" and "ipv4" in types and _version_decision(state)
    high, low, cells, dropped = final_hits(state, card, phone, versions)
    if versions and dropped:
        notes.append(
            f"version column: {state.versions} of {state.present} values are version strings "
            f"({state.versions_not_addresses} of them not addresses); "
            f"{dropped} four-part values among them are not reported as IPv4 addresses"
        )

    def hits(counts: dict[str, int], confidence: str) -> dict[str, TypeHits]:
        out: dict[str, TypeHits] = {}
        for pii_type in types:
            if not counts.get(pii_type):
                continue
            values = sample_values(state, pii_type, confidence, card, phone)
            if state.mode == "numeric":
                keep = 4 if pii_type == "credit_card" else 2
                samples = tuple(dict.fromkeys(_mask_keep_last(v, keep) for v in values))[:MAX_SAMPLES]
            else:
                samples = _masked_samples(_DETECTORS[pii_type], values)
            out[pii_type] = TypeHits(count=counts[pii_type], samples=samples)
        return out

    in_name = _name_hits(state.name, types)
    return ColumnPII(
        column=f"#{position} (name withheld)" if in_name else state.name,
        dtype=state.dtype,
        mode=state.mode,
        allowed=allowed,
        pii_cells=cells,
        hits=hits(high, "high"),
        notes=tuple(notes),
        low_hits=hits(low, "low"),
        name_hits=in_name,
    )


def _name_hits(name: str, types: Sequence[str]) -> dict[str, TypeHits]:
    """PII in a column's name (any confidence): one hit per type, the masked value as sample."""
    return {t: TypeHits(count=1, samples=(masked,)) for t, (_, masked) in find_pii(name, types).items()}


def finish_columns(
    states: Sequence[ColumnState], *, allow_columns: Iterable[str] | str = (), types: Iterable[str] | str | None = None
) -> list[ColumnPII]:
    """Every column's :class:`ColumnPII` from what the scan saw (one batch or several merged)."""
    selected = resolve_types(types)
    allowed = set(_columns(allow_columns))
    return [finish_column(state, state.name in allowed, selected, index + 1) for index, state in enumerate(states)]


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
    return finish_columns(observe_frame(frame, selected), allow_columns=allow_columns, types=selected)
