"""The PII detectors: per type an RE2 pre-filter, the exact pattern and the validator that confirms a match.

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
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.pii.checksums import _IBAN_LENGTHS, card_number_ok, iban_ok, ssn_ok
from airflow_mlsecops.gates.pii.masking import _mask_email, _mask_iban, _mask_ipv4, _mask_ipv6, _mask_keep_last, _mask_mac

PII_TYPES: tuple[str, ...] = ("email", "phone", "credit_card", "us_ssn", "iban", "ipv4", "ipv6", "mac_address")

# Not glued to a word, a sign or a decimal point, and not the continuation of a digit group.
_NUM_START = r"(?<![\w.+-])(?<!\d[ ])(?<!\d:)"
_NUM_END = r"(?!\w|[.-]\d)"
_CARD_SEPARATOR = re.compile(r"[ -]")
_NON_DIGIT = re.compile(r"\D", re.ASCII)
_ZIP4 = re.compile(r"\d{5}-\d{4}", re.ASCII)
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}", re.ASCII)
_DATE_INSIDE = re.compile(r"(?<!\d)(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4})(?!\d)", re.ASCII)


@dataclass(frozen=True)
class _Detector:
    """One PII type: an RE2 pre-filter (a superset, for Arrow), the exact Python pattern and a validator.

    ``validate(text, match)`` returns the PII value the match holds (possibly a part of it) or ``None``.
    """

    loose: str
    exact: re.Pattern[str]
    validate: Callable[[str, re.Match[str]], str | None]
    mask: Callable[[str], str]


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


def _validate_ssn(text: str, match: re.Match[str]) -> str | None:
    return match.group(0) if ssn_ok(match.group(1), match.group(2), match.group(3)) else None


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
