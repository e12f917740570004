"""Numbers as a reviewer reads them: bytes in KiB/MiB, shares in %, counts with separators.

>>> from airflow_mlsecops.review.numbers import format_metric
>>> format_metric("bytes", 130600.0)
('bytes', '127.5 KiB (130,600 bytes)')
>>> format_metric("flagged_share", 0.0125)
('%', '1.25%')
>>> format_metric("rows", 1200000.0)
('', '1,200,000')

The unit is chosen from the metric's name (the gates name their metrics after what they count);
a value is never shown in exponent notation unless it is smaller than 0.001.
"""

from __future__ import annotations

import math

_PERCENT_SUFFIXES = ("_share", "_ratio", "_accuracy")
_PERCENT_NAMES = frozenset(("share", "ratio", "accuracy"))


def unit_of(name: str) -> str:
    """The unit of a metric named ``name``: ``bytes``, ``%``, ``s``, ``MB/s``, ``rows/s`` or ``''`` (a count
    or a plain number)."""
    lowered = name.lower()
    if lowered == "mb_per_s" or lowered.endswith("_mb_per_s"):
        return "MB/s"
    if lowered.endswith("_per_second") or lowered.endswith("_per_s"):
        return lowered.rsplit("_per_", 1)[0].rsplit("_", 1)[-1] + "/s"
    if lowered == "bytes" or lowered.endswith("_bytes") or lowered.startswith("bytes_"):
        return "bytes"
    if lowered in _PERCENT_NAMES or lowered.endswith(_PERCENT_SUFFIXES):
        return "%"
    if lowered == "seconds" or lowered.endswith("_seconds"):
        return "s"
    return ""


def format_number(value: float) -> str:
    """A number without exponent notation (unless tiny): integers with thousands separators, others
    with up to four significant digits."""
    if isinstance(value, bool):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number == int(number) and abs(number) < 1e18:
        return f"{int(number):,}"
    magnitude = abs(number)
    if magnitude >= 1000:
        return f"{number:,.1f}"
    if magnitude < 0.001:
        return f"{number:.2e}"
    digits = max(0, 3 - math.floor(math.log10(magnitude)))
    text = f"{number:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_bytes(value: float) -> str:
    """``512 B``, ``127.5 KiB (130,600 bytes)``, ``3.2 MiB (3,355,443 bytes)``."""
    number = float(value)
    if math.isnan(number) or math.isinf(number) or number < 1024:
        return f"{format_number(number)} B"
    scaled = number
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "TiB":
            return f"{scaled:,.1f} {unit} ({format_number(number)} bytes)"
    raise AssertionError("unreachable")


def format_metric(name: str, value: float) -> tuple[str, str]:
    """``(unit, display)`` of one metric."""
    unit = unit_of(name)
    number = float(value)
    if unit == "bytes":
        return unit, format_bytes(number)
    if unit == "%":
        if math.isnan(number) or math.isinf(number):
            return unit, format_number(number)
        return unit, f"{format_number(round(number * 100, 4))}%"
    if unit:
        return unit, f"{format_number(number)} {unit}"
    return unit, format_number(number)
