"""PII scan throughput (thousands of rows/s) on 100k rows x 10 text columns (``--quick``: 20k), and
recall and false alarms on issue 21's labelled evasions.

The data: 10 text columns of a customer table, as ``pd.read_parquet`` returns them (``object``
dtype): two identifiers, a date, a timestamp, an e-mail column (allowed to hold PII), a country
code, a plan, a product SKU, a free-text comment with order numbers, amounts, dates and versions but
no personal data, and a free-text notes column where about 6% of the rows hold a phone number, an
SSN, a card number, an IBAN, an e-mail or an IP address.

* ``scan_frame`` on the in-memory frame, all eight :data:`PII_TYPES`.
* ``scan_pii`` end to end from a Parquet file of the same frame: reading, SHA-256 of the file, the
  scan, the masked report and the gate result.

The peer of these two rows is plain pandas: ``Series.str.contains(pattern, regex=True)`` per
column and per PII type (the same eight types, one textbook regular expression each, counts per
column and type, no validation) on the same frame, and after ``pd.read_parquet`` for the
end-to-end row. Calls are interleaved (order alternates per round). No target: informational.

**Evasions and false alarms** (issue 21), on the labelled set of ``benchmarks/_pii_corpus.py``:

* recall on the labelled evasions (Unicode, encodings, forms, obfuscations, column types, column
  names, sampling), per class in the notes. The peer is the textbook-regex baseline on the same
  tables: it sees the raw cells (no normalisation, no column rules), the first ``max_rows`` rows,
  and not the column names;
* the false-alarm rate on clean tables of tricky non-PII values (versions, order numbers, git
  remotes, Luhn ids, IPv6-like tokens, hashes, timestamps, numeric ids, international text,
  prose): the share of tables with any finding (the share of columns is in the notes).

**presidio** (``AnalyzerEngine`` with the ``NoOpNlpEngine``: pattern recognizers only, no spaCy
model; the six types it shares with ours, cell by cell, its rate on the first 1,000 rows) adds a
throughput row, a recall row and a false-alarm row when it is importable. It is not a dependency:
to try it without installing it into the environment, install it into a directory
(``uv pip install --target DIR presidio-analyzer``) and set ``MLSECOPS_BENCH_PRESIDIO_SITE=DIR``
(appended to ``sys.path``, after the environment's own packages).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import Row, alternate, median, paired_ratio, tmp_root
from benchmarks._pii_corpus import luhn_complete

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
PRESIDIO_ROWS = 1_000  # presidio analyses cell by cell (about 0.1-0.5k rows/s here): its rate is measured on the first rows only
_WORDS = (
    "the", "customer", "asked", "about", "delivery", "invoice", "refund", "upgrade", "plan", "late", "payment",
    "account", "support", "ticket", "order", "shipped", "box", "damaged", "call", "back", "next", "week", "please",
    "thanks", "resolved", "pending", "review", "manager", "approved", "discount", "renewal", "contract", "cancel",
    "billing", "address", "changed", "portal", "login", "reset", "password", "escalated",
)  # fmt: skip


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
        card = luhn_complete("4" + f"{n:09d}" + f"{n % 10**5:05d}")
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
    site = os.environ.get("MLSECOPS_BENCH_PRESIDIO_SITE")
    if site and site not in sys.path:
        sys.path.append(site)
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        nlp.load()
        return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    except Exception:  # not installed, or an API this benchmark does not know: no presidio rows
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


# ---------------------------------------------------------------------------- evasions and false alarms
#: Our type names -> presidio's (presidio has no MAC-address recognizer).
_PRESIDIO_NAMES = dict(zip(("email", "phone", "credit_card", "us_ssn", "iban", "ipv4"), PRESIDIO_ENTITIES, strict=True))
_PRESIDIO_NAMES["ipv6"] = "IP_ADDRESS"


def _as_text(frame: Any) -> Any:
    """Every column as text (what a regex scan of a CSV's cells sees; integers as their digits)."""
    return frame.astype(object).where(frame.notna(), None).map(lambda v: v if v is None or isinstance(v, str) else str(v))


def _ours_finds(frame: Any, column: int, pii_type: str, max_rows: int | None, seed: int) -> bool:
    from airflow_mlsecops.gates.pii import sample_rows, scan_frame

    if max_rows is not None and max_rows < len(frame):
        frame = frame.iloc[sample_rows(len(frame), max_rows, seed)]
    found = scan_frame(frame, types=[pii_type])[column]
    return pii_type in found.types_found


def _peer_finds(scan: Callable[[Any], dict[str, dict[str, int]]], label: Callable[[str], str]) -> Callable[..., bool]:
    def finds(frame: Any, column: int, pii_type: str, max_rows: int | None, seed: int) -> bool:
        text = _as_text(frame if max_rows is None else frame.head(max_rows))
        counts = scan(text.iloc[:, [column]])
        return counts[str(text.columns[column])].get(label(pii_type), 0) > 0

    return finds


def _recall(finds: Callable[..., bool], seeds: int) -> tuple[float, dict[str, tuple[int, int]], list[str]]:
    """Recall (%) on the labelled evasions, per class ``(found, total)``, and the names missed."""
    import pandas as pd

    from benchmarks._pii_corpus import CELL_EVASIONS, table_evasions

    filler = ["order shipped", "n/a", "call back next week"]
    per_class: dict[str, list[int]] = {}
    missed: list[str] = []
    for cell in CELL_EVASIONS:
        ok = finds(pd.DataFrame({"v": [*filler, cell.value]}), 0, cell.pii_type, None, 0)
        per_class.setdefault(cell.evasion_class, [0, 0])
        per_class[cell.evasion_class][0] += ok
        per_class[cell.evasion_class][1] += 1
        if not ok:
            missed.append(cell.name)
    for table in table_evasions():
        frame = table.build()
        runs = range(seeds) if table.max_rows else range(1)  # a random sample: the share of seeds that find it
        hits = sum(finds(frame, table.column, table.pii_type, table.max_rows, seed) for seed in runs)
        per_class.setdefault(table.evasion_class, [0, 0])
        per_class[table.evasion_class][0] += hits / len(runs)  # type: ignore[call-overload]
        per_class[table.evasion_class][1] += 1
        if hits < len(runs):
            missed.append(table.name)
    found = sum(v[0] for v in per_class.values())
    total = sum(v[1] for v in per_class.values())
    return 100.0 * found / total, {k: (v[0], v[1]) for k, v in per_class.items()}, missed


def _false_alarms(flags: Callable[[Any], list[bool]]) -> tuple[float, str]:
    """The share (%) of clean tables with any alarm, and a note with the columns and tables flagged."""
    from benchmarks._pii_corpus import clean_tables

    tables = clean_tables()
    flagged_tables: list[str] = []
    columns = flagged_columns = 0
    for name, build in tables:
        flagged = flags(build())
        columns += len(flagged)
        flagged_columns += sum(flagged)
        if any(flagged):
            flagged_tables.append(name)
    note = (
        f"{len(flagged_tables)} of {len(tables)} clean tables ({', '.join(flagged_tables) or 'none'}), "
        f"{flagged_columns} of {columns} columns"
    )
    return 100.0 * len(flagged_tables) / len(tables), note


def _ours_flags(frame: Any) -> list[bool]:
    from airflow_mlsecops.gates.pii import scan_frame

    return [c.has_pii for c in scan_frame(frame)]


def _peer_flags(scan: Callable[[Any], dict[str, dict[str, int]]]) -> Callable[[Any], list[bool]]:
    def flags(frame: Any) -> list[bool]:
        counts = scan(_as_text(frame))
        return [sum(per_type.values()) > 0 for per_type in counts.values()]

    return flags


def _classes(per_class: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{name} {found:g}/{total}" for name, (found, total) in per_class.items())


def _quality_rows(engine: Any | None, seeds: int) -> list[Row]:
    """Recall on the labelled evasions and the false-alarm rate on clean tables: ours, the baseline, presidio."""
    ours_recall, ours_classes, ours_missed = _recall(_ours_finds, seeds)
    base_recall, base_classes, _ = _recall(_peer_finds(_baseline, lambda t: t), seeds)
    ours_alarm, ours_alarm_note = _false_alarms(_ours_flags)
    base_alarm, base_alarm_note = _false_alarms(_peer_flags(_baseline))
    baseline_label = "textbook regex per type (pandas str.contains) on the raw cells"
    rows = [
        Row(
            group=GROUP,
            name="recall on the labelled evasions (issue 21)",
            unit="%",
            ours=ours_recall,
            peer=base_recall,
            peer_label=baseline_label,
            runs=1,
            notes=(
                f"ours per class: {_classes(ours_classes)}; missed: {', '.join(ours_missed) or 'none'}; "
                f"baseline per class: {_classes(base_classes)}; sampling over {seeds} seeds"
            ),
        ),
        Row(
            group=GROUP,
            name="false alarms on clean tables of look-alikes",
            unit="% tables",
            ours=ours_alarm,
            peer=base_alarm,
            peer_label=baseline_label,
            runs=1,
            notes=f"ours: {ours_alarm_note}; baseline: {base_alarm_note}",
        ),
    ]
    if engine is not None:
        scan = functools.partial(_presidio_scan, engine)
        label = lambda t: _PRESIDIO_NAMES.get(t, "-")  # noqa: E731 - a one-line mapping
        recall, classes, missed = _recall(_peer_finds(scan, label), seeds)
        alarm, alarm_note = _false_alarms(_peer_flags(scan))
        presidio_label = "presidio AnalyzerEngine(NoOpNlpEngine) on the raw cells (6 types; no MAC)"
        rows.append(
            Row(
                group=GROUP,
                name="recall on the labelled evasions, vs presidio",
                unit="%",
                ours=ours_recall,
                peer=recall,
                peer_label=presidio_label,
                runs=1,
                notes=f"presidio per class: {_classes(classes)}; missed {len(missed)}",
            )
        )
        rows.append(
            Row(
                group=GROUP,
                name="false alarms on clean tables, vs presidio",
                unit="% tables",
                ours=ours_alarm,
                peer=alarm,
                peer_label=presidio_label,
                runs=1,
                notes=f"presidio: {alarm_note}",
            )
        )
    return rows


def _presidio_row(engine: Any, frame: Any, rows: int, rounds: int) -> Row:
    from airflow_mlsecops.gates.pii import scan_frame

    peer_rows = min(rows, PRESIDIO_ROWS)
    head = frame.head(peer_rows)
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    for i in range(rounds):
        for name in alternate(i, ["ours", "peer"]):
            start = time.perf_counter()
            if name == "ours":
                scan_frame(frame, allow_columns=["email"])
            else:
                _presidio_scan(engine, head)
            times[name].append(time.perf_counter() - start)
    return Row(
        group=GROUP,
        name=f"scan_frame, {rows // 1000}k rows x 10 text cols, vs presidio",
        unit=UNIT,
        ours=median([rows / t / 1e3 for t in times["ours"]]),
        peer=median([peer_rows / t / 1e3 for t in times["peer"]]),
        peer_label=f"presidio AnalyzerEngine(NoOpNlpEngine), per cell, first {peer_rows:,} rows",
        ratio=paired_ratio(times["peer"], times["ours"]) * rows / peer_rows,
        runs=rounds,
        notes="presidio: pattern recognizers only, the six types it shares with ours",
        samples={"ours_s": times["ours"], "peer_s": times["peer"]},
    )


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
    peer_label = "plain pandas Series.str.contains, 8 regexes x 10 columns (object dtype)"

    def ours_memory() -> Any:
        return scan_frame(frame, allow_columns=allow)

    def ours_file() -> Any:
        outcome = scan_pii(str(path), allow_columns=allow)
        if outcome.error is not None:
            raise RuntimeError(f"scan_pii did not reach a verdict: {outcome.result.summary}")
        return outcome

    def peer_memory() -> Any:
        return _baseline(frame)

    def peer_file() -> Any:
        return _baseline(pd.read_parquet(path))

    columns = ours_memory()
    outcome = ours_file()  # warm-up: imports, RE2 compilation
    peer_counts = peer_memory()
    # The same baseline on Arrow-backed strings (pandas then runs RE2): a reference point.
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
        return median([rows / t / 1e3 for t in times[name]])

    found = ", ".join(f"{c.column} {c.pii_cells:,}" for c in columns if c.pii_cells)
    peer_found = ", ".join(
        f"{name} {sum(per_type.values()):,}" for name, per_type in peer_counts.items() if sum(per_type.values())
    )
    common = (
        f"{rows // 1000}k rows x 10 text columns (2 ids, date, timestamp, e-mail, country, plan, SKU, free-text comment, "
        f"notes with PII in {pii_notes:,} rows); all 8 PII types; cells with PII, ours: {found}; "
        f"peer matches (cell x type): {peer_found}{arrow_note}"
    )
    out = [
        Row(
            group=GROUP,
            name=f"scan_frame, {rows // 1000}k rows x 10 text cols (in memory)",
            unit=UNIT,
            ours=krows("ours_memory"),
            peer=krows("peer_memory"),
            peer_label=peer_label,
            ratio=paired_ratio(times["peer_memory"], times["ours_memory"]),
            runs=rounds,
            notes=(
                f"{common}; ours normalises non-ASCII cells, decodes escapes, undoes obfuscations, validates each "
                "candidate (Luhn, mod-97, ranges), applies the column rules and masks samples; the peer counts matches"
            ),
            samples={"ours_s": times["ours_memory"], "peer_s": times["peer_memory"]},
        ),
        Row(
            group=GROUP,
            name=f"scan_pii end to end, {rows // 1000}k-row Parquet ({size_mib:.1f} MiB)",
            unit=UNIT,
            ours=krows("ours_file"),
            peer=krows("peer_file"),
            peer_label=f"pd.read_parquet + {peer_label}",
            ratio=paired_ratio(times["peer_file"], times["ours_file"]),
            runs=rounds,
            notes=(
                f"ours: read + SHA-256 of the file, scan, masked JSON report and gate result (verdict {outcome.verdict.value}, "
                f"columns not allowed to hold PII: {', '.join(outcome.result.details['columns_not_allowed']) or 'none'}); "
                "the peer reads the file and counts matches"
            ),
            samples={"ours_s": times["ours_file"], "peer_s": times["peer_file"]},
        ),
    ]
    if engine is not None:
        out.append(_presidio_row(engine, frame, rows, rounds))
    out.extend(_quality_rows(engine, seeds=5 if quick else 20))
    return out
