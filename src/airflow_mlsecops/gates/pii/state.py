"""What a scan of some rows of a column has seen, in a form that adds up: the scan of a file in batches.

The column rules of :mod:`.scanning` (bare numbers that pass the card checks by chance, bare phone
numbers, version columns) judge a *whole* column, so a batch cannot decide them. Each batch records
instead, per column, what its rows hold (:class:`ColumnState`): per row a set of flags (a bit code:
"high-confidence e-mail address", "bare number passing the card checks", "version string"...),
counted per distinct code, the column statistics the rules need, and the first values of each kind
for the masked samples. States of consecutive batches merge (:meth:`ColumnState.merge`);
:meth:`ColumnState.finish` applies the rules once to the whole column. The in-memory scan is the
same thing with one batch, so a file scanned whole, in batches or on Spark gets the same counts,
samples and notes. Memory: a few counters and at most :data:`~.scanning.MAX_SAMPLES` x 20 values
per kind, whatever the number of rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlsecops.gates.pii.detectors import _DETECTORS, PII_TYPES

#: Values kept per kind for the masked samples (the in-memory scan keeps as many).
KEPT_VALUES = 60

_TYPE_BITS = {t: 3 * i for i, t in enumerate(PII_TYPES)}
BARE_CARD = 1 << 24  # a text cell holding only a number that passes the card checks
BARE_PHONE = 1 << 25  # a text cell holding only a plausible international number
VERSION = 1 << 26  # a cell with an IPv4 hit that is a version string
NUMERIC_CARD = 1 << 27  # an integer that passes the card checks
NUMERIC_PHONE = 1 << 28  # an integer that is a plausible international number


def high_bit(pii_type: str) -> int:
    """Found with high confidence by the exact patterns."""
    return 1 << _TYPE_BITS[pii_type]


def extra_bit(pii_type: str, confidence: str) -> int:
    """Found by the second pass (escapes decoded: high; loose forms and obfuscations: low)."""
    return 1 << (_TYPE_BITS[pii_type] + (1 if confidence == "high" else 2))


@dataclass
class ColumnState:
    """What the scan saw in one column so far (see the module docstring).

    :param name: the column's name; ``mode``: ``text``, ``numeric`` or ``skipped``.
    """

    name: str
    mode: str
    dtypes: list[str] = field(default_factory=list)
    rows: int = 0
    present: int = 0
    codes: Counter[int] = field(default_factory=Counter)
    values: dict[str, list[str]] = field(default_factory=dict)
    # text columns: bare card-shaped numbers, the card-chance and version-column statistics
    bare_cards: int = 0
    bare_shaped: int = 0
    bare_valid: int = 0
    lettered: int = 0
    ipv4_seen: bool = False
    versions: int = 0
    versions_not_addresses: int = 0
    # text and numeric columns: bare numbers that are plausible international phone numbers
    phones_plausible: int = 0
    # numeric columns: numbers shaped like cards, and those passing Luhn
    numeric_shaped: int = 0
    numeric_valid: int = 0

    def keep(self, key: str, values: Iterable[str]) -> None:
        """Append ``values`` to the kind ``key`` (at most :data:`KEPT_VALUES` are kept)."""
        kept = self.values.setdefault(key, [])
        for value in values:
            if len(kept) >= KEPT_VALUES:
                break
            kept.append(value)

    def add_codes(self, codes: Any) -> None:
        """Count the non-zero row codes of a batch (a numpy integer array)."""
        import numpy as np

        nonzero = codes[codes != 0]
        if len(nonzero):
            unique, counts = np.unique(nonzero, return_counts=True)
            self.codes.update(dict(zip(unique.tolist(), counts.tolist(), strict=True)))

    def add_dtype(self, dtype: str) -> None:
        if dtype not in self.dtypes:
            self.dtypes.append(dtype)

    def merge(self, other: ColumnState) -> None:
        """Add the state of the rows that follow (the next batch of the same column)."""
        if other.mode != self.mode:
            # a batch whose column reads as another kind (text after numbers): judged as text, never skipped
            self.mode = "text" if "text" in (self.mode, other.mode) else max(self.mode, other.mode)
        for dtype in other.dtypes:
            self.add_dtype(dtype)
        self.codes.update(other.codes)
        for key, values in other.values.items():
            self.keep(key, values)
        for name in (
            "rows",
            "present",
            "bare_cards",
            "bare_shaped",
            "bare_valid",
            "lettered",
            "versions",
            "versions_not_addresses",
            "phones_plausible",
            "numeric_shaped",
            "numeric_valid",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.ipv4_seen = self.ipv4_seen or other.ipv4_seen

    @property
    def dtype(self) -> str:
        """The column's dtype as pandas reads the whole file (integers with a gap are ``float64``)."""
        if len(self.dtypes) == 1:
            return self.dtypes[0]
        if set(self.dtypes) <= {"int64", "float64", "Int64"}:
            return "float64"
        return "object"

    def to_json(self) -> dict[str, Any]:
        """The state as JSON-serialisable data (what a Spark task hands back to the driver)."""
        data = {k: v for k, v in self.__dict__.items() if k != "codes"}
        data["codes"] = [[code, count] for code, count in self.codes.items()]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnState:
        values = dict(data)
        codes = Counter({int(code): int(count) for code, count in values.pop("codes")})
        return cls(codes=codes, **values)


def merge_states(batches: Iterable[Sequence[ColumnState]]) -> list[ColumnState] | None:
    """The states of consecutive batches (each a list in the column order) merged column by column."""
    merged: list[ColumnState] | None = None
    for states in batches:
        if merged is None:
            merged = [ColumnState.from_json(s.to_json()) for s in states]
            continue
        for mine, theirs in zip(merged, states, strict=True):
            mine.merge(theirs)
    return merged


def final_hits(
    state: ColumnState, card: str | None, phone: str | None, versions: bool
) -> tuple[dict[str, int], dict[str, int], int, int]:
    """Per type the rows found with high and with low confidence only, the rows holding any, and the
    IPv4 hits dropped as versions, once the column rules have decided.

    :param card: how bare numbers passing the card checks are reported (``high``, ``low``, ``none``; ``None``: none seen).
    :param phone: how bare plausible phone numbers are reported (``high``, ``low``; ``None``: not at all).
    :param versions: IPv4 hits in version strings are dropped (a version column).
    """
    high_counts: Counter[str] = Counter()
    low_counts: Counter[str] = Counter()
    cells = dropped = 0
    for code, count in state.codes.items():
        high = {t for t in PII_TYPES if code & (high_bit(t) | extra_bit(t, "high"))}
        low = {t for t in PII_TYPES if code & extra_bit(t, "low")}
        if code & BARE_CARD:
            if card in (None, "high"):
                high.add("credit_card")
            elif card == "low":
                low.add("credit_card")
        if code & NUMERIC_CARD:
            (high if card in (None, "high") else low).add("credit_card")
        if code & (BARE_PHONE | NUMERIC_PHONE) and phone is not None:
            (high if phone == "high" else low).add("phone")
            high.discard("credit_card")
            low.discard("credit_card")
        if versions and code & VERSION:
            dropped += count * (("ipv4" in high) + ("ipv4" in low))
            high.discard("ipv4")
            low.discard("ipv4")
        for t in high:
            high_counts[t] += count
        for t in low - high:
            low_counts[t] += count
        if high or low:
            cells += count
    return dict(high_counts), dict(low_counts), cells, dropped


def sample_values(state: ColumnState, pii_type: str, confidence: str, card: str | None, phone: str | None) -> list[str]:
    """The values of ``pii_type`` in the order the in-memory scan meets them (at most :data:`KEPT_VALUES`)."""
    keys: list[str] = []
    if confidence == "high":
        if pii_type == "credit_card":
            keys.append("card:all" if card in (None, "high") else "card:not-bare")
            if state.mode == "numeric" and card in (None, "high"):
                keys.append("numeric:card")
        else:
            keys.append(f"high:{pii_type}")
        keys.append(f"extra:{pii_type}:high")
        if pii_type == "phone" and phone == "high":
            keys.append("phone:bare")
    else:
        if pii_type == "credit_card" and card == "low":
            keys.extend(["card:bare", "numeric:card"])
        keys.append(f"extra:{pii_type}:low")
        if pii_type == "phone" and phone == "low":
            keys.append("phone:bare")
    values = [v for key in keys for v in state.values.get(key, [])]
    return values[:KEPT_VALUES]


def masked(pii_type: str, value: str) -> str:
    return _DETECTORS[pii_type].mask(value)
