"""The PII detectors: per type an RE2 pre-filter, the exact pattern and the validator that confirms a match.

Every cell is normalised first (:mod:`.normalising`: NFKC, format characters removed, Unicode
dashes and spaces mapped; escapes decoded; obfuscations undone for the low-confidence pass), so
full-width digits split by Unicode hyphens, ``ann`` + U+FF20 + ``example.com``, ``ann%40example.com``
and ``ann [at] example [dot] com`` are seen as what they are. :func:`find_pii` runs the whole pipeline on one cell.

**What is detected** (:data:`PII_TYPES`), in text cells and inside free text; *high* confidence
unless marked *low*:

``email``
    ``local@domain.tld`` (the TLD has 2+ letters; retina image names like ``logo@2x.png`` are not),
    internationalised addresses (Unicode local part and domain, ``xn--`` punycode labels and TLDs).
    Not ``git@github.com:org/repo`` or ``ssh://git@host/repo`` (a login followed by a path).
    Obfuscated forms (``ann [at] example [dot] com``, ``ann(at)example.com``, ``ann at example dot com``,
    ``ann @ example.com``, ``example[.]com``): *low*.
``phone``
    E.164 / international numbers starting with ``+`` (8-15 digits); North American
    ``(555) 123-4567`` / ``555-123-4567`` / ``555.123.4567`` (separators required; the area code
    starts with 2-9 and is not N11); national numbers with a trunk ``0`` and at least one separator
    (``020 7946 0958``, ``030 12345678``; 9-12 digits). A bare run of digits (``5551234567``) is *not*
    a phone number in a cell of its own: it is indistinguishable from an ID (but see the column rule
    in :mod:`.scanning`). Dates, times, ZIP+4 codes, SSN-shaped values and numbers right after
    ``#``, ``order``, ``invoice``, ``ref``, ``ticket``, ``id``... are excluded.
``credit_card``
    13-19 digits, optionally grouped by one kind of separator (space, dash, dot or slash), passing
    the Luhn check and carrying the prefix and length of a card network (Visa, Mastercard, Amex,
    Discover, Diners, JCB, UnionPay, Maestro, Mir, RuPay, Troy). Mixed separators
    (``4111 1111-1111.1111``): *low*. Numeric columns and columns of bare numbers: :mod:`.scanning`.
``us_ssn``
    ``AAA-GG-SSSS`` (dashes). Areas 000, 666 and 900-999, group 00, serial 0000 and the numbers
    known to be void (078-05-1120, 219-09-9999) are excluded. With spaces or dots
    (``123 45 6789``, ``123.45.6789``): *low*. Nine bare digits are not checked.
``iban``
    Country code of a country in the IBAN registry, check digits, the exact length for that
    country, compact or grouped by four with spaces or dashes, passing the ISO 7064 mod-97 check.
``ipv4`` / ``ipv6``
    Addresses that parse (octets <= 255, no leading zeros; ``999.1.1.1`` is not an address).
    Unspecified, loopback, multicast and reserved IPv4 addresses (``0.0.0.0``, ``127.0.0.1``,
    ``255.255.255.0``) identify no one and are not reported; private ranges are. IPv6: only the
    ranges hosts are given (global unicast ``2000::/3``, unique local ``fc00::/7``, link local
    ``fe80::/10``) and IPv4-mapped addresses; ``a::b``, ``dead::beef`` and ``::1`` are not.
    A four-part number right after ``v``, ``version``, ``build``, ``release``... is a version;
    so are those in a version column (:mod:`.scanning`).
``mac_address``
    ``00:1a:2b:3c:4d:5e``, ``00-1A-2B-3C-4D-5E`` and ``001a.2b3c.4d5e``; the all-zero and broadcast
    addresses are not reported; the dash and dot forms need at least one hex letter (``12-34-56-78-90-12``
    is more likely a code than a MAC).

**Known false positives** (allow the column, or narrow ``types``): identifiers formatted exactly like
a phone number (``415-555-2671``) or an SSN, four-part version strings that are valid addresses
(``1.0.0.0``) outside a version column and without a version word, identifiers that carry a Luhn
check digit *and* a card network's prefix and length, and English that reads like an obfuscated
address (``look at the dot com boom``: low confidence).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.pii.checksums import _IBAN_LENGTHS, card_number_ok, iban_ok, ssn_ok
from airflow_mlsecops.gates.pii.masking import _mask_email, _mask_iban, _mask_ipv4, _mask_ipv6, _mask_keep_last, _mask_mac
from airflow_mlsecops.gates.pii.normalising import (
    ESCAPE_LOOSE,
    OBFUSCATION_LOOSE,
    decode_escapes,
    deobfuscate,
    normalise_text,
)

PII_TYPES: tuple[str, ...] = ("email", "phone", "credit_card", "us_ssn", "iban", "ipv4", "ipv6", "mac_address")
#: How sure a hit is: ``high`` (the value as written, normalised or exactly decoded) or ``low``
#: (a loose form or an obfuscation undone: a guess that can be wrong).
CONFIDENCES: tuple[str, ...] = ("high", "low")

# Not glued to a word, a sign or a decimal point, and not the continuation of a digit group.
_NUM_START = r"(?<![\w.+-])(?<!\d[ ])(?<!\d:)"
_NUM_END = r"(?!\w|[./-]\d)"
_DIGIT_GROUP = re.compile(r"\d+", re.ASCII)
_NON_DIGIT = re.compile(r"\D", re.ASCII)
_ZIP4 = re.compile(r"\d{5}-\d{4}", re.ASCII)
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}", re.ASCII)
_DATE_INSIDE = re.compile(r"(?<!\d)(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4})(?!\d)", re.ASCII)
# Words that make a phone-shaped number an order, invoice or ticket number ("order #415-555-2671").
_REFERENCE_BEFORE = re.compile(
    r"(?:#|\b(?:order|invoice|inv|ref|reference|ticket|tkt|po|sku|item|part|serial|sn|no|nr|id|case|batch|lot)"
    r"\s*(?:no\.?|nr\.?|number|#)?\s*[:#.=-]?)\s*$",
    re.IGNORECASE,
)
# Words that make a four-part number a version ("version 1.2.3.4", "build 2.0.1.7").
_VERSION_BEFORE = re.compile(r"\b(?:v|ver|version|rel|release|build|rev|revision|firmware|fw)\s*[:=#]?\s*$", re.IGNORECASE)
_IPV6_NETWORKS = tuple(ipaddress.IPv6Network(n) for n in ("2000::/3", "fc00::/7", "fe80::/10"))


@dataclass(frozen=True)
class _Detector:
    """One PII type: an RE2 pre-filter (a superset, for Arrow), the exact Python pattern and a validator.

    ``validate(text, match)`` returns the PII value the match holds (possibly a part of it) or ``None``.
    """

    loose: str
    exact: re.Pattern[str]
    validate: Callable[[str, re.Match[str]], str | None]
    mask: Callable[[str], str]


def _card_value(match: re.Match[str], *, mixed: bool) -> str | None:
    """The card number in ``match`` (the whole match or a run of its digit groups), separators kept.

    ``mixed``: only numbers written with two kinds of separators (``4111 1111-1111.1111``); otherwise
    only numbers with one kind (or none).
    """
    value = match.group(0)
    groups = [(g.start(), g.end()) for g in _DIGIT_GROUP.finditer(value)]
    n = len(groups)
    # The whole match, then with trailing groups dropped, then with leading groups dropped.
    spans = [(0, j) for j in range(n, 0, -1)] + [(i, n) for i in range(1, n)]
    for i, j in spans:
        text = value[groups[i][0] : groups[j - 1][1]]
        separators = {char for char in text if not char.isdigit()}
        if (len(separators) > 1) != mixed:
            continue
        if card_number_ok(_NON_DIGIT.sub("", text)):
            return text
    return None


def _validate_card(text: str, match: re.Match[str]) -> str | None:
    return _card_value(match, mixed=False)


def _validate_card_mixed(text: str, match: re.Match[str]) -> str | None:
    return _card_value(match, mixed=True)


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
        if char not in " -":
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
    if " " in candidate and "-" in candidate:  # one kind of separator: spaces or dashes
        return None
    spaced = candidate.replace("-", " ")
    if " " in spaced and not _IBAN_GROUPED.fullmatch(spaced):
        return None
    if not (candidate.isupper() or candidate.islower() or candidate[2:].replace(" ", "").replace("-", "").isdigit()):
        return None
    return candidate if iban_ok(spaced.replace(" ", "")) else None


def _validate_ipv4(text: str, match: re.Match[str]) -> str | None:
    value = match.group(0)
    octets = value.split(".")
    if any(len(octet) > 1 and octet[0] == "0" for octet in octets):  # leading zeros: not an address
        return None
    numbers = [int(octet) for octet in octets]
    if max(numbers) > 255 or value == "0.0.0.0":  # nosec B104: compares a found value, binds nothing
        return None
    if numbers[0] == 127 or numbers[0] >= 224:  # loopback, multicast (224/4), reserved (240/4)
        return None
    if _VERSION_BEFORE.search(text, max(0, match.start() - 24), match.start()):  # "version 1.2.3.4"
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
    # Only the ranges hosts get addresses from: global unicast, unique local, link local. The rest
    # (``a::b``, ``dead::beef``, ``::1``, multicast) is a C++ scope, a code, or identifies no one.
    return value if any(address in network for network in _IPV6_NETWORKS) else None


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
    else:  # North American Numbering Plan: the area code starts with 2-9 and is not N11
        area = digits[-10:-7]
        ok = (len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")) and area[0] >= "2" and area[1:] != "11"
    if ok and len(set(digits)) == 1:
        ok = False
    if ok and _REFERENCE_BEFORE.search(text, max(0, match.start() - 24), match.start()):  # "order #415-555-2671"
        ok = False
    return value if ok else None


def _validate_email(text: str, match: re.Match[str]) -> str | None:
    local, domain = match.group(1), match.group(2)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    labels = domain.split(".")
    if any(not label or label.startswith("-") or label.endswith("-") or len(label) > 63 or "_" in label for label in labels):
        return None
    if len(labels) == 2 and labels[0].endswith("x") and labels[0][:-1].isdigit():  # logo@2x.png
        return None
    return match.group(0)


_DETECTORS: dict[str, _Detector] = {
    "email": _Detector(
        loose=r"@[\pL\pN][\pL\pN.-]*\.(?:\pL{2}|[Xx][Nn]--)",
        # Unicode local parts and domains (internationalised addresses), punycode TLDs. Not followed
        # by ``:path`` or ``/`` (``git@github.com:org/repo``, ``ssh://git@host/repo``: a login, not a mailbox).
        exact=re.compile(
            r"(?<![\w.%+'-])([\w%+'-][\w.%+'-]{0,63})@"
            r"((?:[^\W_][\w-]{0,62}\.)+(?:[^\W\d_]{2,24}|[Xx][Nn]--[A-Za-z0-9-]{2,59}))"
            r"(?![\w-]|\.[^\W_]|:[\w~/.]|/)"
        ),
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
        loose=r"\d{13}|\d{4}[ ./-]\d{4}[ ./-]\d{4}[ ./-]\d|\d{4}[ ./-]\d{6}[ ./-]\d{4}",
        exact=re.compile(
            r"(?<![\w.+-])(?<!\d:)(?:\d{13,19}|(?<!\d[ ])(?:\d{4}[ ./-]\d{4}[ ./-]\d{4}[ ./-]\d{1,4}(?:[ ./-]\d{1,3})?"
            r"|\d{4}[ ./-]\d{6}[ ./-]\d{4,5}))" + _NUM_END,
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
        loose=r"[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11}",
        exact=re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}", re.ASCII),
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


def _mixed_separators_re2() -> str:
    """RE2 for digit groups of a card (4-4-4-x, 4-6-4) written with at least two kinds of separator (no backreferences in RE2)."""
    seps = ("[ ]", "[.]", "/", "-")
    fours = [f"\\d{{4}}{a}\\d{{4}}{b}\\d{{4}}{c}\\d" for a in seps for b in seps for c in seps if len({a, b, c}) > 1]
    amex = [f"\\d{{4}}{a}\\d{{6}}{b}\\d{{4}}" for a in seps for b in seps if a != b]
    return "|".join(fours + amex)


#: Loose forms, reported with low confidence: card numbers with mixed separators, SSNs with spaces or dots.
_LOW_FORMS: dict[str, _Detector] = {
    "credit_card": _Detector(
        loose=_mixed_separators_re2(),
        exact=_DETECTORS["credit_card"].exact,
        validate=_validate_card_mixed,
        mask=_DETECTORS["credit_card"].mask,
    ),
    "us_ssn": _Detector(
        loose=r"\d{3}[ .]\d{2}[ .]\d{4}",
        exact=re.compile(_NUM_START + r"(\d{3})([ .])(\d{2})\2(\d{4})(?!\w|[ ./-]\d)", re.ASCII),
        validate=lambda text, match: match.group(0) if ssn_ok(match.group(1), match.group(3), match.group(4)) else None,
        mask=_DETECTORS["us_ssn"].mask,
    ),
}


def _first_value(detector: _Detector, text: str) -> str | None:
    for match in detector.exact.finditer(text):
        value = detector.validate(text, match)
        if value is not None:
            return value
    return None


def _values_in(text: str, types: Iterable[str]) -> dict[str, str]:
    """The first value of each of ``types`` in ``text`` (exact patterns, no pre-filter, no low forms)."""
    found: dict[str, str] = {}
    for pii_type in types:
        value = _first_value(_DETECTORS[pii_type], text)
        if value is not None:
            found[pii_type] = value
    return found


def find_pii(text: str, types: Iterable[str] | str | None = None) -> dict[str, tuple[str, str]]:
    """Every type of personal data in one cell: ``{type: (confidence, masked value)}``.

    The whole pipeline for one cell, as the column scan runs it (vectorised) for every cell: the
    text normalised (:func:`~airflow_mlsecops.gates.pii.normalising.normalise_text`), the exact
    patterns (``high``), escapes decoded (``high``), the loose forms and obfuscations undone (``low``).

    :param text: the cell's text.
    :param types: PII types to look for (default: all of :data:`PII_TYPES`).
    """
    selected = resolve_types(types)
    normalised = normalise_text(text)
    found = {t: ("high", v) for t, v in _values_in(normalised, selected).items()}
    found |= _extra_values(normalised, selected, found)
    return {t: (confidence, _mask(t, value)) for t, (confidence, value) in found.items()}


#: The steps of :func:`_extra_values`, each with the RE2 pattern that says a cell needs it.
EXTRA_STEPS: dict[str, str] = {
    "decode": ESCAPE_LOOSE,
    "obfuscation": OBFUSCATION_LOOSE,
    **{f"low:{t}": d.loose for t, d in _LOW_FORMS.items()},
}
#: Cheaper supersets of :data:`EXTRA_STEPS` for the one pass over a whole column (the exact step
#: patterns then run on the few cells it selects): an escape needs ``%``, ``\`` or ``&``; a
#: card with mixed separators matches the card pre-filter.
EXTRA_PREFILTERS: dict[str, str] = {
    **EXTRA_STEPS,
    "decode": r"[%\\&]",
    "low:credit_card": r"\d{4}[ ./-]\d{4}[ ./-]\d{4}[ ./-]\d|\d{4}[ ./-]\d{6}[ ./-]\d{4}",
}


def _extra_values(
    normalised: str, types: Iterable[str], found: Iterable[str], steps: Iterable[str] | None = None
) -> dict[str, tuple[str, str]]:
    """What a normalised cell holds beyond the exact patterns: ``{type: (confidence, raw value)}``.

    Escapes decoded (high), then loose forms and obfuscations undone (low); types in ``found``
    (already found with high confidence) are not looked for again.

    :param steps: the :data:`EXTRA_STEPS` to run (default all); the column scan runs only those
        whose RE2 pattern the cell matches. Decoding always runs when a later step does, since
        a decoded cell can hold a loose form.
    """
    wanted = set(EXTRA_STEPS) if steps is None else set(steps)
    selected = [t for t in types if t not in set(found)]
    extra: dict[str, tuple[str, str]] = {}
    decoded = decode_escapes(normalised) if "decode" in wanted else normalised
    if decoded != normalised:
        extra |= {t: ("high", v) for t, v in _values_in(decoded, selected).items()}
        wanted = set(EXTRA_STEPS)  # what decoding revealed may need every other step
    for pii_type in selected:
        detector = _LOW_FORMS.get(pii_type)
        if detector is not None and pii_type not in extra and f"low:{pii_type}" in wanted:
            value = _first_value(detector, decoded)
            if value is not None:
                extra[pii_type] = ("low", value)
    clear = deobfuscate(decoded) if "obfuscation" in wanted else decoded
    if clear != decoded:
        extra |= {t: ("low", v) for t, v in _values_in(clear, [t for t in selected if t not in extra]).items()}
    return extra


def _mask(pii_type: str, value: str) -> str:
    return _DETECTORS[pii_type].mask(value)


def detect(pii_type: str, text: str) -> str | None:
    """Return the masked value of ``pii_type`` in ``text`` (any confidence), or ``None``.

    The exact (Python) check of one cell, without the Arrow pre-filter; handy for tests and for
    checking a single value (:func:`find_pii` says how sure the hit is).

    :param pii_type: one of :data:`PII_TYPES`.
    :param text: the cell's text.
    """
    hit = find_pii(text, [pii_type]).get(resolve_types([pii_type])[0])
    return None if hit is None else hit[1]


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
