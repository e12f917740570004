"""PII scan throughput (thousands of rows/s) on 100k rows x 10 text columns (``--quick``: 20k).

The data: 10 text columns of a customer table, as ``pd.read_parquet`` returns them (``object``
dtype): two identifiers, a date, a timestamp, an e-mail column (allowed to hold PII), a country
code, a plan, a product SKU, a free-text comment with order numbers, amounts, dates and versions but
no personal data, and a free-text notes column where about 6% of the rows hold a phone number, an
SSN, a card number, an IBAN, an e-mail or an IP address.

* ``scan_frame`` on the in-memory frame, all eight :data:`PII_TYPES`.
* ``scan_pii`` end to end from a Parquet file of the same frame: reading, SHA-256 of the file, the
  scan, the masked report and the gate result.

The peer is presidio's ``AnalyzerEngine`` with the ``NoOpNlpEngine`` (pattern recognizers only, the
six types it shares with ours, cell by cell; its rate is measured on the first 5,000 rows) when
presidio is importable, else plain pandas: ``Series.str.contains(pattern, regex=True)`` per column
and per PII type (the same eight types, one textbook regular expression each, counts per column and
type, no validation) on the same frame, and after ``pd.read_parquet`` for the end-to-end row. Which
one ran is in the row's peer label. Calls are interleaved (order alternates per round). No target:
the rows are informational.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import Row, alternate, median, paired_ratio, tmp_root

GROUP = "pii"
UNIT = "k rows/s"

# One textbook regular expression per PII type (what a plain-pandas scan uses; no validation).
BASELINE_PATTERNS = {
    "email": r"[\w.+-]+@[\w-]+\.[\w.-]+",
    "phone": r"(?:\+\d{1,3}[ .-]?)?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]?\d{3,4}",
    "credit_card": r"\b(?:\d[ -]?){12,18}\d\b",
    "us_ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b",
    "ipv4": r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
    "ipv6": r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b",
    "mac_address": r"\b(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}\b",
}
# presidio's names for the types both sides detect (presidio has no MAC-address recognizer).
PRESIDIO_ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]
PRESIDIO_ROWS = 5_000  # presidio analyses cell by cell: its rate is measured on the first rows only
_WORDS = (
    "the", "customer", "asked", "about", "delivery", "invoice", "refund", "upgrade", "plan", "late", "payment",
    "account", "support", "ticket", "order", "shipped", "box", "damaged", "call", "back", "next", "week", "please",
    "thanks", "resolved", "pending", "review", "manager", "approved", "discount", "renewal", "contract", "cancel",
    "billing", "address", "changed", "portal", "login", "reset", "password", "escalated",
)  # fmt: skip


def _luhn_complete(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def _iban_de(bban: str) -> str:
    rearranged = bban + "DE00"
    check = 98 - int("".join(str(int(char, 36)) for char in rearranged)) % 97
    return f"DE{check:02d}{bban}"


def _pii_value(kind: int, rng: Any) -> str:
    n = int(rng.integers(0, 10**9))
    if kind == 0:
        return f"+49 30 {n % 10**7:07d}"
    if kind == 1:
        return f"({200 + n % 700}) 555-{n % 10**4:04d}"
    if kind == 2:
        return f"{100 + n % 565:03d}-{1 + n % 99:02d}-{1 + n % 9999:04d}"
    if kind == 3:
        card = _luhn_complete("4" + f"{n:09d}" + f"{n % 10**5:05d}")
        return " ".join(card[i : i + 4] for i in range(0, 16, 4))
    if kind == 4:
        iban = _iban_de(f"{n % 10**8:08d}{n:010d}")
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    if kind == 5:
        return f"jane.doe{n % 1000}@mail.example.org"
    return f"10.{n % 256}.{(n >> 8) % 256}.{1 + (n >> 16) % 254}"


def _frame(rows: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = np.array(_WORDS)
    months, days = rng.integers(1, 13, rows), rng.integers(1, 29, rows)
    hours, minutes = rng.integers(0, 24, rows), rng.integers(0, 60, rows)
    first = np.array(["anna", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo"])
    domains = np.array(["example.com", "mail.example.org", "corp.example.net", "example.de"])

    def text(i: int, extra: str = "") -> str:
        sentence = " ".join(words[rng.integers(0, len(words), int(rng.integers(6, 18)))])
        noise = (
            f"order #{100000 + i % 900000}",
            f"paid ${rng.integers(5, 500)}.{rng.integers(0, 100):02d}",
            f"on {2023 + i % 2}-{months[i]:02d}-{days[i]:02d}",
            f"app v{i % 5}.{i % 11}.{i % 7}",
            f"ticket TKT-2024-{i % 10**5:05d}",
        )[i % 5]
        return f"{sentence} {noise}{extra}"

    pii_rows = rng.random(rows) < 0.06
    kinds = rng.integers(0, 7, rows)
    notes = [text(i, f"; contact {_pii_value(int(kinds[i]), rng)}" if pii_rows[i] else "") for i in range(rows)]
    data = {
        "customer_id": [f"C{i:08d}" for i in range(rows)],
        "order_ref": [f"{v:016x}" for v in rng.integers(0, 2**62, rows)],
        "signup_date": [f"2023-{m:02d}-{d:02d}" for m, d in zip(months, days, strict=True)],
        "last_seen": [
            f"2024-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:00Z" for m, d, h, mi in zip(months, days, hours, minutes, strict=True)
        ],
        "email": [f"{first[i % 10]}.{i}@{domains[i % 4]}" for i in range(rows)],
        "country": rng.choice(["DE", "US", "FR", "GB", "NL", "ES", "IT", "PL"], rows).tolist(),
        "plan": rng.choice(["basic", "pro", "team", "enterprise"], rows).tolist(),
        "sku": [
            f"SKU-{a:04d}-{b}" for a, b in zip(rng.integers(0, 10**4, rows), rng.choice(["AB", "CX", "ZZ"], rows), strict=True)
        ],
        "comment": [text(i) for i in range(rows)],
        "notes": notes,
    }
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in data.items()}), int(pii_rows.sum())


def _presidio() -> Any | None:
    """presidio's analyzer with pattern recognizers only (no spaCy model), or ``None`` if it cannot be built."""
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        nlp.load()
        return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    except Exception:  # not installed, or an API this benchmark does not know: fall back to the baseline
        return None


def _baseline(frame: Any) -> dict[str, dict[str, int]]:
    """Plain pandas: one ``str.contains`` per column and PII type; cells matching, per column and type."""
    return {
        str(name): {t: int(frame[name].str.contains(p, regex=True, na=False).sum()) for t, p in BASELINE_PATTERNS.items()}
        for name in frame.columns
    }


def _presidio_scan(engine: Any, frame: Any) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for name in frame.columns:
        per_type: dict[str, int] = {}
        for value in frame[name].tolist():
            if isinstance(value, str):
                for kind in {r.entity_type for r in engine.analyze(text=value, language="en", entities=PRESIDIO_ENTITIES)}:
                    per_type[kind] = per_type.get(kind, 0) + 1
        counts[str(name)] = per_type
    return counts


def run(quick: bool) -> list[Row]:
    import pandas as pd
    import pyarrow.compute  # noqa: F401 - loaded before the clock starts, as scan_pii does

    from airflow_mlsecops.gates.pii import scan_frame, scan_pii

    rows = 20_000 if quick else 100_000
    rounds = 3
    work = tmp_root() / "pii"
    work.mkdir(parents=True, exist_ok=True)
    frame, pii_notes = _frame(rows, 7)
    path = work / "customers.parquet"
    frame.to_parquet(path, index=False)
    size_mib = path.stat().st_size / 2**20
    allow = ["email"]

    engine = _presidio()
    peer_scan: Callable[[Any], dict[str, dict[str, int]]]
    peer_rows = rows
    if engine is not None:
        peer_rows = min(rows, PRESIDIO_ROWS)
        peer_label = f"presidio AnalyzerEngine(NoOpNlpEngine), per cell, first {peer_rows:,} rows"
        peer_scan = functools.partial(_presidio_scan, engine)
    else:
        peer_label = "presidio not importable: plain pandas Series.str.contains, 8 regexes x 10 columns (object dtype)"
        peer_scan = _baseline

    def ours_memory() -> Any:
        return scan_frame(frame, allow_columns=allow)

    def ours_file() -> Any:
        outcome = scan_pii(str(path), allow_columns=allow)
        if outcome.error is not None:
            raise RuntimeError(f"scan_pii did not reach a verdict: {outcome.result.summary}")
        return outcome

    def peer_memory() -> Any:
        return peer_scan(frame if peer_rows == rows else frame.head(peer_rows))

    def peer_file() -> Any:
        read = pd.read_parquet(path)
        return peer_scan(read if peer_rows == rows else read.head(peer_rows))

    columns = ours_memory()
    outcome = ours_file()  # warm-up: imports, RE2 compilation
    peer_counts = peer_memory()
    arrow_note = ""
    if engine is None:  # the same baseline on Arrow-backed strings (pandas then runs RE2): a reference point
        arrow = frame.astype("string[pyarrow]")
        _baseline(arrow)
        start = time.perf_counter()
        _baseline(arrow)
        arrow_note = (
            f"; the same baseline on string[pyarrow] columns (RE2 inside pandas): {(time.perf_counter() - start) * 1e3:,.0f} ms"
        )

    cases = {"ours_memory": ours_memory, "peer_memory": peer_memory, "ours_file": ours_file, "peer_file": peer_file}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(rounds):
        for pair in alternate(i, [("ours_memory", "peer_memory"), ("ours_file", "peer_file")]):
            for name in alternate(i, list(pair)):
                start = time.perf_counter()
                cases[name]()
                times[name].append(time.perf_counter() - start)

    def krows(name: str) -> float:
        return median([(peer_rows if name.startswith("peer") else rows) / t / 1e3 for t in times[name]])

    def ratio(kind: str) -> float:  # ours/peer in rows per second, per round
        return paired_ratio(times[f"peer_{kind}"], times[f"ours_{kind}"]) * rows / peer_rows

    found = ", ".join(f"{c.column} {c.pii_cells:,}" for c in columns if c.pii_cells)
    peer_found = ", ".join(
        f"{name} {sum(per_type.values()):,}" for name, per_type in peer_counts.items() if sum(per_type.values())
    )
    common = (
        f"{rows // 1000}k rows x 10 text columns (2 ids, date, timestamp, e-mail, country, plan, SKU, free-text comment, "
        f"notes with PII in {pii_notes:,} rows); all 8 PII types; cells with PII, ours: {found}; "
        f"peer matches (cell x type): {peer_found}{arrow_note}"
    )
    return [
        Row(
            group=GROUP,
            name=f"scan_frame, {rows // 1000}k rows x 10 text cols (in memory)",
            unit=UNIT,
            ours=krows("ours_memory"),
            peer=krows("peer_memory"),
            peer_label=peer_label,
            ratio=ratio("memory"),
            runs=rounds,
            notes=f"{common}; ours validates each candidate (Luhn, mod-97, ranges) and masks samples; the peer counts matches",
            samples={"ours_s": times["ours_memory"], "peer_s": times["peer_memory"]},
        ),
        Row(
            group=GROUP,
            name=f"scan_pii end to end, {rows // 1000}k-row Parquet ({size_mib:.1f} MiB)",
            unit=UNIT,
            ours=krows("ours_file"),
            peer=krows("peer_file"),
            peer_label=f"pd.read_parquet + {peer_label.split(': ', 1)[-1]}",
            ratio=ratio("file"),
            runs=rounds,
            notes=(
                f"ours: read + SHA-256 of the file, scan, masked JSON report and gate result (verdict {outcome.verdict.value}, "
                f"columns not allowed to hold PII: {', '.join(outcome.result.details['columns_not_allowed']) or 'none'}); "
                "the peer reads the file and counts matches"
            ),
            samples={"ours_s": times["ours_file"], "peer_s": times["peer_file"]},
        ),
    ]
