"""PII scan gate: find personal data in columns that the policy does not allow to hold it.

>>> from airflow_mlsecops.gates.pii import scan_pii
>>> outcome = scan_pii("train.csv", allow_columns=["contact_email"])    # doctest: +SKIP
>>> outcome.verdict                                                      # doctest: +SKIP
<Verdict.FAILED: 'failed'>
>>> print(outcome.result.failed_findings[0].message)                    # doctest: +SKIP
column 'notes' holds US social security numbers in 3 of 1000 scanned rows (0.30%)

:func:`scan_frame` is the pure engine behind it (runnable as it stands):

>>> import pandas as pd
>>> from airflow_mlsecops.gates.pii import scan_frame
>>> frame = pd.DataFrame({"who": ["ann@example.com", "n/a"], "card": ["4111 1111 1111 1111", ""]})
>>> for column in scan_frame(frame, allow_columns=["who"]):
...     print(column.column, column.allowed, {t: (h.count, h.samples) for t, h in column.hits.items()})
who True {'email': (1, ('a***@e***.com',))}
card False {'credit_card': (1, ('**** **** **** 1111',))}

**What is detected** (:data:`PII_TYPES`), in text cells and inside free text:

``email``
    ``local@domain.tld`` (the TLD has 2+ letters; retina image names like ``logo@2x.png`` are not).
``phone``
    E.164 / international numbers starting with ``+`` (8-15 digits); North American
    ``(555) 123-4567`` / ``555-123-4567`` / ``555.123.4567`` (separators required); national numbers with
    a trunk ``0`` and at least one separator (``020 7946 0958``, ``030 12345678``; 9-12 digits). A bare
    run of digits (``5551234567``) is *not* a phone number: it is indistinguishable from an ID. Dates,
    times, ZIP+4 codes and SSN-shaped values are excluded.
``credit_card``
    13-19 digits, optionally grouped by spaces or dashes, passing the Luhn check and carrying the
    prefix and length of a card network (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay,
    Maestro, Mir, RuPay, Troy). Integer columns (and float columns holding exact integers) are
    checked too, because CSV readers turn a column of card numbers into ``int64``. A column whose
    *bare* 13-19 digit values mostly fail Luhn (at least 10 of them, under half valid) is an
    identifier column: its bare numbers are not reported (the report says so), since 1 random number
    in ~20 passes Luhn and the prefix check.
``us_ssn``
    ``AAA-GG-SSSS`` (dashes). Areas 000, 666 and 900-999, group 00, serial 0000 and the numbers
    known to be void (078-05-1120, 219-09-9999) are excluded. Nine bare digits are not checked.
``iban``
    Country code of a country in the IBAN registry, check digits, the exact length for that
    country, compact or grouped by four, passing the ISO 7064 mod-97 check.
``ipv4`` / ``ipv6``
    Addresses that parse (octets <= 255, no leading zeros; ``999.1.1.1`` is not an address).
    Unspecified, loopback, multicast and reserved addresses (``0.0.0.0``, ``127.0.0.1``, ``::1``,
    ``255.255.255.0``) identify no one and are not reported; private ranges are.
``mac_address``
    ``00:1a:2b:3c:4d:5e``, ``00-1A-2B-3C-4D-5E`` and ``001a.2b3c.4d5e``; the all-zero and broadcast
    addresses are not reported; the dash and dot forms need at least one hex letter (``12-34-56-78-90-12``
    is more likely a code than a MAC).

**Known false positives** (allow the column, or narrow ``types``): identifiers formatted exactly like
a phone number (``123-456-7890``) or an SSN, four-part version strings that are valid addresses
(``1.0.0.0``), and roughly 1 in 20 random 13-19 digit numbers embedded in text (Luhn and the network
prefix are all a number carries).

**Not detected**: names, postal addresses, dates of birth (a date column cannot be told apart from
any other date without its meaning), national IDs other than US SSNs, passport and driving-licence
numbers, free-form account numbers. Boolean, date/time and other non-text, non-numeric columns are
not scanned; numeric columns are scanned for card numbers only.

**How**: each text column becomes an Arrow string array; one RE2 regular expression per column
(the union of the selected types) finds the few candidate cells, a per-type RE2 pass splits them by
type, and only those cells are checked in Python (exact pattern, then Luhn, mod-97, ranges...). A
cell counts once per type however many values it holds.

**Evidence** (``pii_report.json``): per column and type the number and share of rows, and up to
three *masked* samples (``j***@e***.com``, ``**** **** **** 1234``, ``***-**-6789``). Raw values
are never written to the report, the findings or the result. With ``max_rows`` only the first rows
are scanned; the result's metrics (``rows_scanned``, ``rows_total``, ``sampled``), details, summary
and the report say so. The file's digest always covers the whole file.
"""

from __future__ import annotations

import ipaddress
import json
import math
import numbers
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import Finding, PipelineContext, Severity
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate
from airflow_mlsecops.io.tabular import load_table

if TYPE_CHECKING:
    import pandas as pd

GATE_NAME = gate_names.PII_SCAN
REPORT_FILE = "pii_report.json"
PII_TYPES: tuple[str, ...] = ("email", "phone", "credit_card", "us_ssn", "iban", "ipv4", "ipv6", "mac_address")
MAX_SAMPLES = 3
#: A column with at least this many bare 13-19 digit numbers, of which under half pass the card
#: checks, is treated as an identifier column (its bare numbers are not reported as card numbers).
CARD_ID_MIN_CANDIDATES = 10
CARD_ID_MIN_VALID_SHARE = 0.5

# Data leakage of personal data: a model trained on it can be inverted or made to disclose it.
_OWASP_LEAKAGE = ("ML03:2023",)
_ATLAS_LEAKAGE = ("AML.T0024",)
_CRITICAL = frozenset({"credit_card", "us_ssn", "iban"})
_LABELS = {
    "email": "e-mail addresses",
    "phone": "phone numbers",
    "credit_card": "credit card numbers",
    "us_ssn": "US social security numbers",
    "iban": "IBANs",
    "ipv4": "IPv4 addresses",
    "ipv6": "IPv6 addresses",
    "mac_address": "MAC addresses",
}

# ISO 13616 IBAN lengths per country (SWIFT IBAN registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Not glued to a word, a sign or a decimal point, and not the continuation of a digit group.
_NUM_START = r"(?<![\w.+-])(?<!\d[ ])(?<!\d:)"
_NUM_END = r"(?!\w|[.-]\d)"
_CARD_SEPARATOR = re.compile(r"[ -]")
_NON_DIGIT = re.compile(r"\D", re.ASCII)
_ZIP4 = re.compile(r"\d{5}-\d{4}", re.ASCII)
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}", re.ASCII)
_DATE_INSIDE = re.compile(r"(?<!\d)(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4})(?!\d)", re.ASCII)
_BARE_CARD = re.compile(r"\s*\d{13,19}\s*", re.ASCII)


@dataclass(frozen=True)
class _Detector:
    """One PII type: an RE2 pre-filter (a superset, for Arrow), the exact Python pattern and a validator.

    ``validate(text, match)`` returns the PII value the match holds (possibly a part of it) or ``None``.
    """

    loose: str
    exact: re.Pattern[str]
    validate: Callable[[str, re.Match[str]], str | None]
    mask: Callable[[str], str]


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


# --------------------------------------------------------------------------- validators and masks


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_network_ok(digits: str) -> bool:
    """Whether ``digits`` has the prefix (IIN) and length of a payment card network."""
    n = len(digits)
    p2, p4, p6 = int(digits[:2]), int(digits[:4]), int(digits[:6])
    first = digits[0]
    if first == "4":  # Visa
        return n in (13, 16, 19)
    if p2 in (34, 37):  # American Express
        return n == 15
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if 2200 <= p4 <= 2204:  # Mir
        return 16 <= n <= 19
    if first == "5" or first == "6":  # Maestro, Discover, UnionPay, RuPay, Verve
        return 13 <= n <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if 300 <= p6 // 1000 <= 305 or p4 == 3095 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if p2 in (81, 82) or p4 == 9792:  # RuPay, Troy
        return n == 16
    return False


def card_number_ok(digits: str) -> bool:
    """Whether a string of 13-19 digits is a plausible payment card number (network prefix, Luhn).

    :param digits: the number, digits only.
    """
    return digits.isdigit() and digits.isascii() and 13 <= len(digits) <= 19 and _card_network_ok(digits) and _luhn_ok(digits)


def _validate_card(text: str, match: re.Match[str]) -> str | None:
    value = match.group(0)
    groups = _CARD_SEPARATOR.split(value)
    n = len(groups)
    # The whole match, then with trailing groups dropped, then with leading groups dropped.
    spans = [(0, j) for j in range(n, 0, -1)] + [(i, n) for i in range(1, n)]
    for i, j in spans:
        digits = "".join(groups[i:j])
        if card_number_ok(digits):
            return " ".join(groups[i:j]) if " " in value else "-".join(groups[i:j])
    return None


_SSN_VOID = frozenset({"078051120", "219099999"})


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """Whether ``area-group-serial`` can be a US social security number.

    :param area: the three first digits (000, 666 and 900-999 are never issued).
    :param group: the two middle digits (00 is never issued).
    :param serial: the four last digits (0000 is never issued).
    """
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
        and area + group + serial not in _SSN_VOID
    )


def _validate_ssn(text: str, match: re.Match[str]) -> str | None:
    return match.group(0) if ssn_ok(match.group(1), match.group(2), match.group(3)) else None


def iban_ok(iban: str) -> bool:
    """Whether ``iban`` (compact, any case) is a valid IBAN: known country, its length, mod-97 == 1.

    :param iban: the IBAN without spaces.
    """
    value = iban.upper()
    if _IBAN_LENGTHS.get(value[:2]) != len(value) or not value.isascii() or not value.isalnum():
        return False
    if not value[2:4].isdigit() or not 2 <= int(value[2:4]) <= 98:
        return False
    rearranged = value[4:] + value[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_IBAN_GROUPED = re.compile(r"[A-Z0-9]{4}(?: [A-Z0-9]{4})*(?: [A-Z0-9]{1,3})?", re.ASCII | re.IGNORECASE)


def _validate_iban(text: str, match: re.Match[str]) -> str | None:
    value = match.group(0)
    length = _IBAN_LENGTHS.get(value[:2].upper())
    if length is None:
        return None
    # The pattern is greedy: cut after ``length`` letters and digits, at a word boundary.
    seen = 0
    end = len(value)
    for index, char in enumerate(value):
        if char != " ":
            seen += 1
            if seen == length:
                end = index + 1
                break
    if seen < length:
        return None
    after = match.start() + end
    if after < len(text) and text[after].isalnum():
        return None
    candidate = value[:end]
    if " " in candidate and not _IBAN_GROUPED.fullmatch(candidate):
        return None
    if not (candidate.isupper() or candidate.islower() or candidate[2:].isdigit()):
        return None
    return candidate if iban_ok(candidate.replace(" ", "")) else None


def _validate_ipv4(text: str, match: re.Match[str]) -> str | None:
    value = match.group(0)
    octets = value.split(".")
    if any(len(octet) > 1 and octet[0] == "0" for octet in octets):  # leading zeros: not an address
        return None
    numbers = [int(octet) for octet in octets]
    if max(numbers) > 255 or value == "0.0.0.0":
        return None
    if numbers[0] == 127 or numbers[0] >= 224:  # loopback, multicast (224/4), reserved (240/4)
        return None
    return value


def _validate_ipv6(text: str, match: re.Match[str]) -> str | None:
    value = match.group(0)
    if value.count(":") < 2:
        return None
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    mapped = address.ipv4_mapped
    if mapped is not None:
        if mapped.is_unspecified or mapped.is_loopback or mapped.is_multicast or mapped.is_reserved:
            return None
        return value
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        return None
    return value


def _validate_mac(text: str, match: re.Match[str]) -> str | None:
    value = match.group(0)
    hexdigits = value.replace(":", "").replace("-", "").replace(".", "").lower()
    if hexdigits in ("000000000000", "ffffffffffff"):
        return None
    if ":" not in value and not any(char in "abcdef" for char in hexdigits):
        return None
    return value


def _validate_phone(text: str, match: re.Match[str]) -> str | None:
    value = match.group(0)
    digits = _NON_DIGIT.sub("", value)
    if _DATE_INSIDE.search(value):
        return None
    if value.startswith("+"):
        ok = 8 <= len(digits) <= 15 and digits[0] != "0"
    elif value.startswith("00") and not value.startswith("000"):  # international prefix 00
        ok = 10 <= len(digits) <= 17 and not _ZIP4.fullmatch(value)
    elif value.lstrip("(").startswith("0"):
        ok = 9 <= len(digits) <= 12 and not _ZIP4.fullmatch(value) and not _SSN_SHAPE.fullmatch(value)
    else:  # North American Numbering Plan
        ok = len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")
    if ok and len(set(digits)) == 1:
        ok = False
    return value if ok else None


def _validate_email(text: str, match: re.Match[str]) -> str | None:
    local, domain = match.group(1), match.group(2)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    labels = domain.split(".")
    if any(not label or label.startswith("-") or label.endswith("-") or len(label) > 63 for label in labels):
        return None
    if len(labels) == 2 and labels[0].endswith("x") and labels[0][:-1].isdigit():  # logo@2x.png
        return None
    return match.group(0)


def _mask_keep_last(value: str, keep: int) -> str:
    total = sum(ch.isdigit() for ch in value)
    out = []
    seen = 0
    for char in value:
        if char.isdigit():
            seen += 1
            out.append(char if seen > total - keep else "*")
        else:
            out.append(char)
    return "".join(out)


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    labels = domain.split(".")
    return f"{local[:1]}***@{labels[0][:1]}***.{labels[-1]}"


def _mask_iban(value: str) -> str:
    alnum = sum(ch.isalnum() for ch in value)
    out = []
    seen = 0
    for char in value:
        if char.isalnum():
            seen += 1
            out.append(char if seen <= 2 or seen > alnum - 4 else "*")
        else:
            out.append(char)
    return "".join(out)


def _mask_ipv4(value: str) -> str:
    return value.split(".", 1)[0] + ".*.*.*"


def _mask_ipv6(value: str) -> str:
    head = value.split(":", 1)[0]
    return f"{head}:****:****" if head else "::****"


def _mask_mac(value: str) -> str:
    return value[:2] + re.sub(r"[0-9A-Fa-f]", "*", value[2:])


_DETECTORS: dict[str, _Detector] = {
    "email": _Detector(
        loose=r"@[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2}",
        exact=re.compile(r"(?<![\w.%+'-])([\w%+'-][\w.%+'-]{0,63})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})(?![\w-])"),
        validate=_validate_email,
        mask=_mask_email,
    ),
    "phone": _Detector(
        loose=r"\+\d|(?:^|[^\w+/.-])(?:1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}"
        r"|(?:^|[^\w+/.:-]|(?:^|\D):)\(?0\d{1,4}(?:\)[ ]?|[ .-])\d{2}",
        exact=re.compile(
            r"(?<![\w+/.-])(?<!\d[ ])(?<!\d:)(?:"
            r"\+\d+(?:(?:[ .-]?\(|\)[ .-]?|[ .-])\d+)*"  # international, E.164
            r"|(?:1[ .-]?)?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # North America
            r"|(?:\(0\d{1,4}\)[ ]?|0\d{1,4}[ .-])\d{2,8}(?:[ .-]\d{2,8}){0,3}"  # national, trunk 0
            r")(?![\w+/:]|[.-]\d)",
            re.ASCII,
        ),
        validate=_validate_phone,
        mask=lambda value: _mask_keep_last(value, 2),
    ),
    "credit_card": _Detector(
        loose=r"\d{13}|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d|\d{4}[ -]\d{6}[ -]\d{4}",
        exact=re.compile(
            r"(?<![\w.+-])(?<!\d:)(?:\d{13,19}|(?<!\d[ ])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"
            r"|\d{4}([ -])\d{6}\2\d{4,5}))" + _NUM_END,
            re.ASCII,
        ),
        validate=_validate_card,
        mask=lambda value: _mask_keep_last(value, 4),
    ),
    "us_ssn": _Detector(
        loose=r"\d{3}-\d{2}-\d{4}",
        exact=re.compile(_NUM_START + r"(\d{3})-(\d{2})-(\d{4})" + _NUM_END, re.ASCII),
        validate=_validate_ssn,
        mask=lambda value: _mask_keep_last(value, 4),
    ),
    "iban": _Detector(
        loose=r"[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11}",
        exact=re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}", re.ASCII),
        validate=_validate_iban,
        mask=_mask_iban,
    ),
    "ipv4": _Detector(
        loose=r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
        exact=re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)", re.ASCII),
        validate=_validate_ipv4,
        mask=_mask_ipv4,
    ),
    "ipv6": _Detector(
        loose=r"::|(?:[0-9A-Fa-f]{1,4}:){6}",
        exact=re.compile(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\w)",
            re.ASCII,
        ),
        validate=_validate_ipv6,
        mask=_mask_ipv6,
    ),
    "mac_address": _Detector(
        loose=r"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}"
        r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}",
        exact=re.compile(
            r"(?<![\w:.-])(?:[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
            r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![\w:-]|\.\w)",
            re.ASCII,
        ),
        validate=_validate_mac,
        mask=_mask_mac,
    ),
}
assert tuple(_DETECTORS) == PII_TYPES


def detect(pii_type: str, text: str) -> str | None:
    """Return the masked value of the first ``pii_type`` value in ``text``, or ``None``.

    The exact (Python) check of one cell, without the Arrow pre-filter; handy for tests and for
    checking a single value.

    :param pii_type: one of :data:`PII_TYPES`.
    :param text: the cell's text.
    """
    detector = _DETECTORS[resolve_types([pii_type])[0]]
    value = _first_value(detector, text)
    return None if value is None else detector.mask(value)


def _first_value(detector: _Detector, text: str) -> str | None:
    for match in detector.exact.finditer(text):
        value = detector.validate(text, match)
        if value is not None:
            return value
    return None


def resolve_types(types: Iterable[str] | str | None) -> tuple[str, ...]:
    """Check and normalise PII type names (``None`` means all of :data:`PII_TYPES`).

    :param types: type names, or a comma-separated string of them.
    :raises ConfigurationError: for an unknown name (named in the message) or an empty selection.
    """
    if types is None:
        return PII_TYPES
    if isinstance(types, str):
        types = types.split(",")
    names = [str(name).strip().lower() for name in types if str(name).strip()]
    unknown = sorted({name for name in names if name not in _DETECTORS})
    if unknown:
        raise ConfigurationError(f"unknown PII type(s) {', '.join(unknown)}; known: {', '.join(PII_TYPES)}")
    if not names:
        raise ConfigurationError("no PII types selected; a scan for nothing would pass anything")
    return tuple(name for name in PII_TYPES if name in names)


def _columns(allow_columns: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(allow_columns, str):
        allow_columns = allow_columns.split(",")
    return tuple(dict.fromkeys(str(name).strip() for name in allow_columns if str(name).strip()))


# --------------------------------------------------------------------------- scanning


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def _text_array(column: pd.Series) -> Any:
    """The column as an Arrow string array (nulls for missing values; other objects stringified)."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is None or not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        values = [None if _is_missing(v) else v if isinstance(v, str) else str(v) for v in column.to_numpy(dtype=object)]
        array = pa.array(values, type=pa.large_string())
    return array


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


def _luhn_valid_vectorised(values: Any) -> Any:
    import numpy as np

    rest = values.copy()
    total = np.zeros(len(values), dtype=np.int64)
    position = 0
    while (rest > 0).any():
        digit = (rest % 10).astype(np.int64)
        if position % 2:
            digit = digit * 2
            digit = np.where(digit > 9, digit - 9, digit)
        total += digit
        rest = rest // 10
        position += 1
    return total % 10 == 0


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


def _column_mode(column: pd.Series) -> str:
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "skipped"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return "text"
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return "numeric"
    return "skipped"


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


# --------------------------------------------------------------------------- the gate


def _row_limit(max_rows: Any) -> int | None:
    if max_rows is None:
        return None
    if isinstance(max_rows, bool) or not isinstance(max_rows, numbers.Integral) or max_rows < 1:
        raise ConfigurationError(f"max_rows must be a positive integer, not {max_rows!r}")
    return int(max_rows)


def _share(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def _finding(column: ColumnPII, pii_type: str, hits: TypeHits, rows: int) -> Finding:
    share = _share(hits.count, rows)
    message = f"column {column.column!r} holds {_LABELS[pii_type]} in {hits.count} of {rows} scanned rows ({share:.2%})" + (
        "; the policy allows this column to hold personal data" if column.allowed else ""
    )
    if column.allowed:
        return Finding(
            id=f"pii.{pii_type}", severity=Severity.INFO, message=message, location=f"column {column.column}", passed=True
        )
    return Finding(
        id=f"pii.{pii_type}",
        severity=Severity.CRITICAL if pii_type in _CRITICAL else Severity.HIGH,
        message=message,
        location=f"column {column.column}",
        atlas=_ATLAS_LEAKAGE,
        owasp_ml=_OWASP_LEAKAGE,
        passed=False,
    )


def _names(columns: Iterable[ColumnPII]) -> str:
    return ", ".join(f"{c.column!r} ({', '.join(c.hits)})" for c in columns)


def scan_pii(
    data: str,
    *,
    allow_columns: Sequence[str] | str = (),
    types: Sequence[str] | str | None = None,
    max_rows: int | None = None,
    warn_only: bool = False,
    context: PipelineContext | None = None,
    csv_delimiter: str | None = None,
) -> GateOutcome:
    """Scan the data file at ``data`` for personal data in columns not allowed to hold it.

    The verdict is ``failed`` if a column outside ``allow_columns`` holds any of the selected
    types, ``passed`` otherwise; PII in allowed columns is reported as passed ``info`` findings.
    An unreadable file, an unknown type or a bad ``max_rows`` is an ``error`` verdict.

    :param data: path or ``s3://`` URI of a CSV or Parquet file.
    :param allow_columns: columns the policy allows to hold personal data (names, or ``"a,b"``).
    :param types: PII types to look for (default: all of :data:`PII_TYPES`).
    :param max_rows: scan only the first ``max_rows`` rows (visible in metrics, details, summary
        and report). The file's digest still covers the whole file.
    :param warn_only: report a rejection as ``warned`` instead of failing.
    :param context: the Airflow task running the gate, if any.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    """
    allowed = _columns(allow_columns)
    try:
        policy_types: Any = list(resolve_types(types))
    except ConfigurationError:
        policy_types = list(types) if types is not None and not isinstance(types, str) else types
    policy = {
        "types": policy_types,
        "allow_columns": list(allowed),
        "max_rows": int(max_rows) if isinstance(max_rows, numbers.Integral) else max_rows if max_rows is None else str(max_rows),
        "numeric_columns": "credit_card only",
        "card_identifier_column": {"min_candidates": CARD_ID_MIN_CANDIDATES, "min_valid_share": CARD_ID_MIN_VALID_SHARE},
    }

    def body() -> Evaluation:
        selected = resolve_types(types)
        limit = _row_limit(max_rows)
        table = load_table(data, csv_delimiter=csv_delimiter)
        total_rows = len(table.frame)
        frame = table.frame if limit is None or limit >= total_rows else table.frame.iloc[:limit]
        sampled = len(frame) < total_rows
        rows = len(frame)
        import pyarrow.compute  # noqa: F401 - imported before the clock starts

        started = time.perf_counter()
        columns = scan_frame(frame, allow_columns=allowed, types=selected)
        elapsed = time.perf_counter() - started
        scanned = [c for c in columns if c.mode != "skipped"]
        with_pii = [c for c in columns if c.has_pii]
        blocking = [c for c in with_pii if not c.allowed]
        present = {c.column for c in columns}
        findings = [_finding(c, t, h, rows) for c in with_pii for t, h in c.hits.items()]
        findings.sort(key=lambda f: (f.passed, -f.severity.rank))

        name = Path(table.subject.name).name
        scope = f"first {rows} of {total_rows} rows" if sampled else f"{rows} rows"
        if blocking:
            summary = f"personal data in {len(blocking)} column(s) not allowed to hold it: {_names(blocking)}"
        elif with_pii:
            summary = f"personal data only in allowed column(s): {_names(with_pii)}"
        else:
            summary = f"no personal data ({', '.join(selected)}) found"
        summary += f"; {scope} x {len(scanned)} column(s) of {name} scanned"

        column_report: dict[str, Any] = {}
        for column in columns:
            if not column.has_pii and not column.notes:
                continue
            column_report[column.column] = {
                "allowed": column.allowed,
                "dtype": column.dtype,
                "pii_cells": column.pii_cells,
                "share": round(_share(column.pii_cells, rows), 6),
                "types": {
                    t: {"count": h.count, "share": round(_share(h.count, rows), 6), "samples_masked": list(h.samples)}
                    for t, h in column.hits.items()
                },
                "notes": list(column.notes),
            }
        sampling = {
            "rows_total": total_rows,
            "rows_scanned": rows,
            "max_rows": limit,
            "sampled": sampled,
            "note": f"only the first {rows} of {total_rows} rows were scanned" if sampled else "every row was scanned",
        }
        report: dict[str, Any] = {
            "gate": GATE_NAME,
            "subject": table.subject.to_intoto(),
            "format": table.format,
            "sampling": sampling,
            "types_checked": list(selected),
            "allow_columns": list(allowed),
            "allow_columns_missing": [c for c in allowed if c not in present],
            "columns_scanned": [{"column": c.column, "dtype": c.dtype, "mode": c.mode} for c in scanned],
            "columns_skipped": [{"column": c.column, "dtype": c.dtype} for c in columns if c.mode == "skipped"],
            "columns": column_report,
            "masking": "samples are masked; raw values are never recorded",
        }
        pii_cells = sum(c.pii_cells for c in columns)
        return Evaluation(
            passed=not blocking,
            summary=summary,
            subjects=[table.subject],
            findings=findings,
            metrics={
                "rows_scanned": float(rows),
                "rows_total": float(total_rows),
                "sampled": 1.0 if sampled else 0.0,
                "columns_scanned": float(len(scanned)),
                "pii_cells": float(pii_cells),
                "pii_columns": float(len(with_pii)),
                "pii_columns_not_allowed": float(len(blocking)),
                "rows_per_second": round(rows / elapsed, 1) if elapsed > 0 else 0.0,
            },
            files={REPORT_FILE: json.dumps(report, indent=2, sort_keys=True).encode("utf-8")},
            details={
                "format": table.format,
                "rows_total": total_rows,
                "rows_scanned": rows,
                "sampled": sampled,
                "max_rows": limit,
                "types": list(selected),
                "pii_columns": {c.column: list(c.hits) for c in with_pii[:100]},
                "columns_not_allowed": [c.column for c in blocking[:100]],
                "allow_columns_missing": report["allow_columns_missing"][:100],
                "numeric_columns_scanned": [c.column for c in scanned if c.mode == "numeric"][:100],
                "columns_skipped": len(report["columns_skipped"]),
            },
        )

    return run_gate(
        GATE_NAME,
        body,
        policy=policy,
        warn_only=warn_only,
        distributions=("pandas", "pyarrow"),
        context=context,
    )
