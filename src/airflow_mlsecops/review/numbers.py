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
from collections.abc import Mapping, Sequence
from typing import Any

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


def format_time(value: object) -> str:
    """An ISO-8601 time as a reviewer reads it (``2026-12-04 05:20:41 UTC``); anything else as given."""
    from datetime import datetime, timezone

    if not isinstance(value, str) or not value:
        return "—" if value in (None, "") else str(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return parsed.strftime("%Y-%m-%d %H:%M:%S")
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def verdict_counts(gates: Sequence[Mapping[str, Any]]) -> str:
    """``12 passed, 2 warned (sbom, training-environment)``: the verdicts of ``gates`` (the latest attempt
    of each task) at a glance, the ones that are not ``passed`` named."""
    order = ("failed", "error", "warned", "passed")
    by_verdict: dict[str, list[str]] = {}
    for gate in gates:
        if gate.get("latest", True):  # an earlier attempt of a task is shown, not counted
            by_verdict.setdefault(str(gate.get("verdict")), []).append(str(gate.get("gate")))
    parts = []
    for verdict in sorted(by_verdict, key=lambda v: order.index(v) if v in order else len(order)):
        names = by_verdict[verdict]
        parts.append(f"{len(names)} {verdict}" + ("" if verdict == "passed" else f" ({', '.join(dict.fromkeys(names))})"))
    return ", ".join(parts) if parts else "no gate recorded evidence"
