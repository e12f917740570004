"""What a cell goes through before the detectors see it: Unicode normalisation, decoding, de-obfuscation.

>>> from airflow_mlsecops.gates.pii.normalising import decode_escapes, deobfuscate, normalise_text
>>> normalise_text("\uff14\uff11\uff11\uff11\u00a01111\u200b 1111\u20131111")  # full-width 4111, NBSP, ZWSP, en dash
'4111 1111 1111-1111'
>>> decode_escapes("ann%40example.com"), decode_escapes("ann\\\\u0040example.com")
('ann@example.com', 'ann@example.com')
>>> deobfuscate("ann [at] example [dot] com")
'ann@example.com'

Three steps, each of which can only *add* what the detectors see (the original text is scanned too):

* :func:`normalise_text` (every cell holding a non-ASCII character): NFKC (full-width digits and
  ``@`` (U+FF20), ligatures, no-break and thin spaces become ASCII), format characters (Unicode category
  ``Cf``: zero-width spaces and joiners, soft hyphens, bidi marks) removed, Unicode dashes
  (category ``Pd`` and the minus sign) mapped to ``-`` and Unicode spaces (``Zs``) to a space. In
  a column (:func:`normalise_array`) only the non-ASCII cells (found by Arrow) go through it.
* :func:`decode_escapes` (cells with ``%XX``, ``\\uXXXX``, ``\\xXX`` or ``&...;``): percent-encoding,
  JSON / Python escapes and HTML character references decoded (twice, for double encoding).
  The decoding is exact, so what it reveals counts with **high** confidence.
* :func:`deobfuscate` (cells with ``[at]``, ``(dot)``, `` at ... dot `` and the like): the usual ways of
  writing an address so that a filter misses it, undone. What only this reveals counts with
  **low** confidence: the rewriting guesses.

Samples are masked from the normalised value (``**** **** **** 1111``), so the original characters
(full-width digits, zero-width joiners) never reach the evidence either.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
import urllib.parse
from typing import Any

#: RE2: cells that hold an escape :func:`decode_escapes` decodes.
ESCAPE_LOOSE = r"%[0-9A-Fa-f]{2}|\\[uU][0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}|&#[xX]?[0-9A-Fa-f]{1,6};?|&[A-Za-z]{2,8};"
#: RE2: cells that may hold an obfuscated address :func:`deobfuscate` undoes.
OBFUSCATION_LOOSE = (
    r"(?i)[\[({<]\s*(?:at|dot|@|\.)\s*[\])}>]"
    r"|\S\s+(?:at|AT)\s+\S+\s+(?:dot|DOT)\s+\S"
    r"|\w\s+@\s*\w|\w\s*@\s+\w"
)

_DASHES = "\u2212\u2043\ufe58\ufe63\uff0d"  # minus sign, hyphen bullet, small dashes (besides category Pd)
_JSON_ESCAPE = re.compile(r"\\[uU]([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})")
_BRACKET_AT = re.compile(r"\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*", re.IGNORECASE)
_BRACKET_DOT = re.compile(r"\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*", re.IGNORECASE)
# The spelled-out form (``ann at example dot com``) only with a common TLD at the end: English has
# plenty of "at the dot on the map".
_SPELLED_TLDS = (
    "com|org|net|edu|gov|mil|info|biz|io|co|uk|de|fr|es|nl|ch|se|dk|fi|pl|cz|ru|cn|jp|kr|au|ca|br|mx|ar|eu|ie|pt|"
    "gr|hu|ro|nz|za|ua|tr|il|sg|hk|tw|in"
)
_WORD_AT = re.compile(
    r"(?<=\S)\s+(?:at|AT|At)\s+(?=[^\s@]+(?:\s+(?:dot|DOT|Dot)\s+[^\s@]+)*\s+(?:dot|DOT|Dot)\s+(?i:" + _SPELLED_TLDS + r")\b)"
)
_WORD_DOT = re.compile(r"(?<=[^\s@])\s+(?:dot|DOT|Dot)\s+(?=[A-Za-z0-9])")
_SPACED_AT = re.compile(r"(?<=\w)\s*@\s*(?=\w)")


@functools.cache
def _translation() -> dict[int, str | None]:
    """Every format character (``Cf``) removed, dashes to ``-``, spaces (``Zs``) to `` ``: built once."""
    table: dict[int, str | None] = {}
    # The planes where Unicode assigns format characters, dashes and spaces (the rest is letters,
    # symbols and private use): scanning them takes a tenth of scanning all of Unicode.
    for code in (*range(0x80, 0x20000), *range(0xE0000, 0xE1000)):
        category = unicodedata.category(chr(code))
        if category == "Cf":
            table[code] = None
        elif category == "Pd":
            table[code] = "-"
        elif category == "Zs":
            table[code] = " "
    for char in _DASHES:
        table[ord(char)] = "-"
    return table


def normalise_text(text: str) -> str:
    """``text`` as the detectors see it: NFKC, format characters removed, dashes and spaces mapped.

    ASCII text is returned as it is (the fast path every ASCII cell takes).
    """
    if text.isascii():
        return text
    # Format characters first (NFKC keeps them), then NFKC, then what NFKC leaves of dashes and spaces.
    return unicodedata.normalize("NFKC", text.translate(_translation())).translate(_translation())


def normalise_array(array: Any) -> Any:
    """An Arrow string array with its non-ASCII cells normalised by :func:`normalise_text`.

    The ASCII test is vectorised; only the non-ASCII cells (few, in most tables) go through Python.
    An all-ASCII array is returned as it is. (Arrow's own ``utf8_normalize`` is not used: in
    pyarrow 25 its ``NFKC`` leaves ``ü`` decomposed, which no ``\\w`` pattern then matches.)
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    ascii_cells = pc.fill_null(pc.string_is_ascii(array), True)
    if pc.all(ascii_cells).as_py():
        return array
    others = pc.invert(ascii_cells)
    normalised = pa.array([normalise_text(text) for text in pc.filter(array, others).to_pylist()], type=array.type)
    return pc.replace_with_mask(array, others, normalised)


def _decode_once(text: str) -> str:
    if "%" in text:
        text = urllib.parse.unquote(text, errors="replace")
    if "\\" in text:
        text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)
    if "&" in text:
        text = html.unescape(text)
    return text


def decode_escapes(text: str) -> str:
    """``text`` with percent-encoding, ``\\uXXXX`` / ``\\xXX`` escapes and HTML references decoded, normalised.

    Decoded twice at most (``%2540`` is ``%40`` is ``@``).
    """
    decoded = _decode_once(text)
    if decoded != text:
        decoded = _decode_once(decoded)
    return normalise_text(decoded)


def deobfuscate(text: str) -> str:
    """``text`` with ``[at]``, ``(at)``, ``{dot}``, ``[.]``, `` at ... dot ...`` and `` @ `` rewritten as ``@`` and ``.``.

    Only a guess (``look at the dot com boom`` becomes ``look@the.com boom``): what this alone
    reveals is reported with low confidence.
    """
    text = _BRACKET_AT.sub("@", text)
    text = _BRACKET_DOT.sub(".", text)
    text = _WORD_AT.sub("@", text)
    if "@" in text:
        text = _WORD_DOT.sub(".", text)
        text = _SPACED_AT.sub("@", text)
    return text
