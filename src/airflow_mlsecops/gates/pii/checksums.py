"""The arithmetic a PII value must pass: card networks and the Luhn check, US SSN ranges, the IBAN mod-97 check.

>>> from airflow_mlsecops.gates.pii import card_number_ok, iban_ok, ssn_ok
>>> card_number_ok("4111111111111111"), card_number_ok("4111111111111112")
(True, False)
>>> iban_ok("GB82WEST12345698765432"), ssn_ok("078", "05", "1120")
(True, False)
"""

from __future__ import annotations

from typing import Any

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


# E.164 country calling codes and the lengths of their national significant numbers (ITU-T E.164
# assignments; the main countries one by one, the other three-digit codes by their first two digits).
_E164_NSN_LENGTHS: dict[str, tuple[int, int]] = {
    "1": (10, 10), "7": (10, 10), "20": (9, 10), "27": (9, 9), "30": (10, 10), "31": (9, 9), "32": (8, 9),
    "33": (9, 9), "34": (9, 9), "36": (8, 9), "39": (6, 11), "40": (9, 9), "41": (9, 9), "43": (7, 12),
    "44": (9, 10), "45": (8, 8), "46": (7, 10), "47": (8, 8), "48": (9, 9), "49": (6, 11), "51": (8, 9),
    "52": (10, 10), "53": (8, 8), "54": (10, 11), "55": (10, 11), "56": (9, 9), "57": (8, 10), "58": (10, 10),
    "60": (8, 10), "61": (9, 9), "62": (8, 12), "63": (8, 10), "64": (8, 10), "65": (8, 8), "66": (8, 9),
    "81": (9, 10), "82": (8, 10), "84": (9, 10), "86": (10, 11), "90": (10, 10), "91": (10, 10), "92": (9, 10),
    "93": (9, 9), "94": (9, 9), "95": (8, 10), "98": (10, 10),
}  # fmt: skip
_E164_THREE_DIGIT = frozenset({
    "21", "22", "23", "24", "25", "26", "29", "35", "37", "38", "42", "50", "59", "67", "68", "69", "85", "87", "88",
    "96", "97", "99",
})  # fmt: skip


def e164_plausible(digits: str) -> bool:
    """Whether ``digits`` (no ``+``) can be a full international number: a country code and its length.

    >>> e164_plausible("4915112345678"), e164_plausible("14155552671"), e164_plausible("1700000000")
    (True, True, False)

    :param digits: the number, digits only.
    """
    if not (digits.isdigit() and digits.isascii() and 8 <= len(digits) <= 15):
        return False
    for size in (1, 2):
        lengths = _E164_NSN_LENGTHS.get(digits[:size])
        if lengths is not None:
            if size == 1 and digits[0] == "1" and digits[1] < "2":  # NANP area codes start with 2-9
                return False
            return lengths[0] <= len(digits) - size <= lengths[1]
    return digits[:2] in _E164_THREE_DIGIT and 6 <= len(digits) - 3 <= 10


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
