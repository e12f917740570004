"""How a PII value is masked before it is written anywhere: the report holds masked samples only, never raw values.

>>> from airflow_mlsecops.gates.pii.masking import _mask_email, _mask_keep_last
>>> _mask_email("jane.doe@example.com"), _mask_keep_last("4111 1111 1111 1234", 4)
('j***@e***.com', '**** **** **** 1234')
"""

from __future__ import annotations

import re
from collections.abc import Callable


def _mask_counted(value: str, counted: Callable[[str], bool], keep_first: int, keep_last: int) -> str:
    """``value`` with every ``counted`` character but the first ``keep_first`` and last ``keep_last`` replaced by ``*``."""
    total = sum(counted(ch) for ch in value)
    out = []
    seen = 0
    for char in value:
        if counted(char):
            seen += 1
            out.append(char if seen <= keep_first or seen > total - keep_last else "*")
        else:
            out.append(char)
    return "".join(out)


def _mask_keep_last(value: str, keep: int) -> str:
    """Every digit masked but the last ``keep`` (card numbers, SSNs, phone numbers)."""
    return _mask_counted(value, str.isdigit, 0, keep)


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    labels = domain.split(".")
    return f"{local[:1]}***@{labels[0][:1]}***.{labels[-1]}"


def _mask_iban(value: str) -> str:
    """Every letter and digit masked but the country code and the last four."""
    return _mask_counted(value, str.isalnum, 2, 4)


def _mask_ipv4(value: str) -> str:
    return value.split(".", 1)[0] + ".*.*.*"


def _mask_ipv6(value: str) -> str:
    head = value.split(":", 1)[0]
    return f"{head}:****:****" if head else "::****"


def _mask_mac(value: str) -> str:
    return value[:2] + re.sub(r"[0-9A-Fa-f]", "*", value[2:])
