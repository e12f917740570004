"""A labelled set of PII evasions and clean look-alikes, shared by ``tests/gates/test_pii_evasions.py`` and ``benchmarks/pii.py``.

Built in code (no file, no download). Issue 21's classes of evasion:

* ``unicode``: no-break, thin and zero-width spaces, full-width digits and ``@``, Unicode dashes,
  soft hyphens and bidi marks inside e-mails, phones, cards, SSNs, IBANs and IP addresses;
* ``encodings``: internationalised domains (Unicode and punycode), percent-encoding (also doubled),
  JSON / Python escapes and HTML character references;
* ``forms``: cards with dots, slashes or mixed separators, SSNs with spaces or dots, IBANs with dashes;
* ``obfuscation``: ``[at]``, ``(at)``, ``{at}``, ``at ... dot``, `` @ ``, ``[.]``;
* ``column-types`` (tables): E.164 numbers read as ``int64``, card numbers mixed with non-Luhn numbers;
* ``column-names`` (tables): personal data as a column's name;
* ``sampling`` (tables): personal data only after the first ``max_rows`` rows.

:data:`CELL_EVASIONS` are single cells (each scanned in a column of clean filler);
:func:`table_evasions` builds the table-level ones; :func:`clean_tables` builds tables of tricky
values that hold no personal data (version strings, order numbers, git URLs, Luhn ids, IPv6-like
tokens, hashes, timestamps...), for the false-alarm rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NBSP, THIN, ZWSP, NNBSP, SHY, RLO = "\u00a0", "\u2009", "\u200b", "\u202f", "\u00ad", "\u202e"
EN_DASH, NB_HYPHEN, MINUS, FIG_DASH = "\u2013", "\u2011", "\u2212", "\u2012"


def _full_width(text: str) -> str:
    """Digits, letters and ``@`` as their full-width forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@dataclass(frozen=True)
class CellEvasion:
    """One cell that holds personal data written to slip past a naive scan.

    :param evasion_class: the issue's class (``unicode``, ``encodings``, ``forms``, ``obfuscation``).
    :param name: what the cell does.
    :param pii_type: the type it holds.
    :param value: the cell.
    :param confidence: the confidence the gate should report it with (``high`` or ``low``).
    """

    evasion_class: str
    name: str
    pii_type: str
    value: str
    confidence: str = "high"


CELL_EVASIONS: tuple[CellEvasion, ...] = (
    # --- unicode
    CellEvasion("unicode", "card, no-break spaces", "credit_card", NBSP.join(["4111", "1111", "1111", "1111"])),
    CellEvasion("unicode", "card, thin spaces", "credit_card", THIN.join(["5500", "0000", "0000", "0004"])),
    CellEvasion("unicode", "card, zero-width spaces", "credit_card", ZWSP.join(["4111", "1111", "1111", "1111"])),
    CellEvasion("unicode", "card, full-width digits", "credit_card", _full_width("4111 1111 1111 1111")),
    CellEvasion("unicode", "card, figure dashes", "credit_card", FIG_DASH.join(["3782", "822463", "10005"])),
    CellEvasion("unicode", "e-mail, full-width @", "email", "ann.smith\uff20example.com"),
    CellEvasion("unicode", "e-mail, zero-width space", "email", f"ann.smith{ZWSP}@example.com"),
    CellEvasion("unicode", "e-mail, soft hyphen in domain", "email", f"ann.smith@exam{SHY}ple.com"),
    CellEvasion("unicode", "e-mail, full-width letters", "email", _full_width("ann.smith@example.com")),
    CellEvasion("unicode", "e-mail behind a bidi override", "email", f"{RLO}ann.smith@example.com"),
    CellEvasion("unicode", "phone, no-break spaces", "phone", f"+44{NBSP}20{NBSP}7946{NBSP}0958"),
    CellEvasion("unicode", "phone, narrow no-break spaces", "phone", f"+49{NNBSP}30{NNBSP}1234567"),
    CellEvasion("unicode", "phone, en dashes", "phone", f"415{EN_DASH}555{EN_DASH}2671"),
    CellEvasion("unicode", "phone, full-width digits", "phone", _full_width("+1 415 555 2671")),
    CellEvasion("unicode", "SSN, non-breaking hyphens", "us_ssn", f"123{NB_HYPHEN}45{NB_HYPHEN}6789"),
    CellEvasion("unicode", "SSN, minus signs", "us_ssn", f"123{MINUS}45{MINUS}6789"),
    CellEvasion("unicode", "SSN, zero-width joiners", "us_ssn", "123-\u200d45-\u200d6789"),
    CellEvasion("unicode", "IBAN, no-break spaces", "iban", NBSP.join(["DE89", "3704", "0044", "0532", "0130", "00"])),
    CellEvasion("unicode", "IBAN, full-width", "iban", _full_width("GB82WEST12345698765432")),
    CellEvasion("unicode", "IPv4, full-width digits", "ipv4", _full_width("203.0.113.45")),
    CellEvasion("unicode", "IPv4, zero-width spaces", "ipv4", f"203.{ZWSP}0.113.{ZWSP}45"),
    # --- encodings
    CellEvasion("encodings", "e-mail, IDN domain", "email", "ann@bücher.de"),
    CellEvasion("encodings", "e-mail, punycode domain", "email", "ann@xn--bcher-kva.de"),
    CellEvasion("encodings", "e-mail, Unicode local part", "email", "jürgen.müller@example.de"),
    CellEvasion("encodings", "e-mail, punycode TLD", "email", "ivan@example.xn--p1ai"),
    CellEvasion("encodings", "e-mail, percent-encoded @", "email", "ann.smith%40example.com"),
    CellEvasion("encodings", "e-mail in a URL query", "email", "https://example.org/unsubscribe?u=ann%40example.com&x=1"),
    CellEvasion("encodings", "e-mail, double percent-encoding", "email", "ann%2540example.com"),
    CellEvasion("encodings", "e-mail, JSON escape", "email", '{"to": "ann\\u0040example.com"}'),
    CellEvasion("encodings", "e-mail, HTML decimal reference", "email", "ann&#64;example.com"),
    CellEvasion("encodings", "e-mail, HTML hex reference", "email", "ann&#x40;example&#46;com"),
    CellEvasion("encodings", "phone, percent-encoded +", "phone", "tel=%2B44%2020%207946%200958"),
    CellEvasion("encodings", "SSN, JSON-escaped dashes", "us_ssn", "123\\u002d45\\u002d6789"),
    # --- forms
    CellEvasion("forms", "card, dots", "credit_card", "4111.1111.1111.1111"),
    CellEvasion("forms", "card, slashes", "credit_card", "5500/0000/0000/0004"),
    CellEvasion("forms", "card, mixed separators", "credit_card", "4111 1111-1111.1111", "low"),
    CellEvasion("forms", "Amex, dots", "credit_card", "3782.822463.10005"),
    CellEvasion("forms", "SSN, spaces", "us_ssn", "ssn 123 45 6789", "low"),
    CellEvasion("forms", "SSN, dots", "us_ssn", "123.45.6789", "low"),
    CellEvasion("forms", "IBAN, dashes", "iban", "DE89-3704-0044-0532-0130-00"),
    CellEvasion("forms", "IBAN, dashes, letters", "iban", "GB82-WEST-1234-5698-7654-32"),
    # --- obfuscation
    CellEvasion("obfuscation", "e-mail, [at] [dot]", "email", "ann [at] example [dot] com", "low"),
    CellEvasion("obfuscation", "e-mail, (at)(dot)", "email", "ann(at)example(dot)com", "low"),
    CellEvasion("obfuscation", "e-mail, {at}", "email", "ann{at}example.com", "low"),
    CellEvasion("obfuscation", "e-mail, at ... dot", "email", "write to ann at example dot com", "low"),
    CellEvasion("obfuscation", "e-mail, AT ... DOT", "email", "ann.smith AT mail DOT example DOT org", "low"),
    CellEvasion("obfuscation", "e-mail, spaced @", "email", "ann.smith @ example.com", "low"),
    CellEvasion("obfuscation", "e-mail, [.]", "email", "ann@example[.]com", "low"),
    CellEvasion("obfuscation", "e-mail, [@]", "email", "ann[@]example.com", "low"),
    CellEvasion("obfuscation", "IPv4, defanged", "ipv4", "203.0.113[.]45", "low"),
)


@dataclass(frozen=True)
class TableEvasion:
    """A table whose personal data only a column-level view (types, names, sampling) can find.

    :param evasion_class: ``column-types``, ``column-names`` or ``sampling``.
    :param name: what the table does.
    :param pii_type: the type it holds.
    :param column: the column the gate should report (its position when the name is the PII).
    :param build: builds the frame.
    :param max_rows: the row limit of the scan (``sampling``), else ``None``.
    :param confidence: the confidence the gate should report it with.
    """

    evasion_class: str
    name: str
    pii_type: str
    column: int
    build: Callable[[], Any]
    max_rows: int | None = None
    confidence: str = "high"


def luhn_complete(body: str) -> str:
    """``body`` plus its Luhn check digit (a card number that passes the checksum)."""
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def _not_luhn(body: str) -> str:
    """``body`` plus a check digit that fails Luhn."""
    valid = luhn_complete(body)
    return valid[:-1] + str((int(valid[-1]) + 1) % 10)


def _cards_among_non_luhn(as_int: bool) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    real = [luhn_complete("4" + "".join(map(str, rng.integers(0, 10, 14)))) for _ in range(8)]
    fillers = [_not_luhn("4" + "".join(map(str, rng.integers(0, 10, 14)))) for _ in range(92)]
    values = fillers[:46] + real + fillers[46:]
    return pd.DataFrame({"ref": [int(v) for v in values] if as_int else values, "amount": rng.integers(1, 500, 100)})


def _e164_int(column: str) -> Callable[[], Any]:
    def build() -> Any:
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(5)
        numbers = [int(f"49151{n:08d}") for n in rng.integers(0, 10**8, 40)] + [
            int(f"44770090{n:04d}") for n in rng.integers(0, 10**4, 40)
        ]
        return pd.DataFrame({"id": range(80), column: numbers})

    return build


def _named(name: str) -> Callable[[], Any]:
    def build() -> Any:
        import pandas as pd

        return pd.DataFrame({"id": [1, 2, 3], name: [0.5, 0.7, 0.1]})

    return build


def _late_rows() -> Any:
    import pandas as pd

    notes = ["shipped on time"] * 2000
    for row in range(400, 2000, 40):  # 40 rows, none of them in the first 200
        notes[row] = f"customer ann{row}@example.com called"
    return pd.DataFrame({"notes": notes})


def table_evasions() -> tuple[TableEvasion, ...]:
    """The table-level evasions (built lazily: pandas is imported by their builders)."""
    return (
        TableEvasion("column-types", "E.164 numbers read as int64, column 'msisdn'", "phone", 1, _e164_int("msisdn")),
        TableEvasion("column-types", "E.164 numbers read as int64, column 'x'", "phone", 1, _e164_int("x"), confidence="low"),
        TableEvasion(
            "column-types",
            "8 cards among 92 non-Luhn 16-digit numbers (text)",
            "credit_card",
            0,
            lambda: _cards_among_non_luhn(False),
            confidence="low",
        ),
        TableEvasion(
            "column-types",
            "8 cards among 92 non-Luhn 16-digit numbers (int64)",
            "credit_card",
            0,
            lambda: _cards_among_non_luhn(True),
            confidence="low",
        ),
        TableEvasion("column-names", "an e-mail address as a column name", "email", 1, _named("ann.smith@example.com")),
        TableEvasion("column-names", "a phone number as a column name", "phone", 1, _named("+44 20 7946 0958")),
        TableEvasion(
            "column-names",
            "an obfuscated e-mail as a column name",
            "email",
            1,
            _named("ann [at] example [dot] com"),
            confidence="low",
        ),
        TableEvasion("sampling", "e-mails only after the first 200 rows, max_rows=200", "email", 0, _late_rows, max_rows=200),
    )


def _clean(name: str, build: Callable[[], dict[str, list[Any]]]) -> tuple[str, Callable[[], Any]]:
    def frame() -> Any:
        import pandas as pd

        return pd.DataFrame(build())

    return name, frame


def _luhn_ids(rows: int) -> list[str]:
    """Luhn-valid identifiers outside every card network's prefixes or lengths (IMEI-like, 14-digit, prefix 1/7/9)."""
    import numpy as np

    rng = np.random.default_rng(3)
    out = []
    for i in range(rows):
        prefix, length = (("35", 15), ("86", 15), ("1", 16), ("7", 14), ("9", 16), ("0", 13))[i % 6]
        body = prefix + "".join(map(str, rng.integers(0, 10, length - len(prefix) - 1)))
        out.append(luhn_complete(body))
    return out


def _hex_ids(rows: int) -> list[str]:
    """16-character hex identifiers; a few without a letter, one of which passes the card checks (by chance)."""
    import numpy as np

    rng = np.random.default_rng(29)
    ids = [f"{int(v):016x}" for v in rng.integers(2**60, 2**63, rows)]
    ids[7] = luhn_complete("4" + "".join(map(str, rng.integers(0, 10, 14))))  # all digits, like ~1 in 2,000 hex ids
    ids[19] = _not_luhn("5" + "".join(map(str, rng.integers(0, 10, 14))))
    return ids


def clean_tables(rows: int = 200) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """Tables with tricky values and no personal data: ``(name, builder)``; a finding on them is a false alarm."""
    import numpy as np

    rng = np.random.default_rng(17)
    r = range(rows)
    return (
        _clean(
            "versions",
            lambda: {
                "version": [
                    ("1.2.3", "2.10.0", "1.2.3.4", "4.0.1.2", "v3.1.4.1", "10.0.19045.3803", "2.0.0-rc.1")[i % 7] for i in r
                ],
                "notes": [f"upgraded to version {i % 4}.{i % 9}.{i % 5}.{i % 3} from build 1.0.{i % 7}.2" for i in r],
            },
        ),
        _clean(
            "orders",
            lambda: {
                "order_no": [f"{100 + i % 99}-{200 + i % 700}-{1000 + i:04d}" for i in r],
                "ticket": [f"order #{212 + i % 700}-555-{i % 10000:04d} shipped" for i in r],
                "ref": [f"ref 415-555-{i % 10000:04d}" for i in r],
                "tracking": [f"1Z{i:06d}A{i % 97:02d}" for i in r],
            },
        ),
        _clean(
            "git",
            lambda: {
                "remote": [("git@github.com:org/repo.git", f"ssh://git@gitlab.example.com/team/p{i}.git")[i % 2] for i in r],
                "commit": [f"{int(v):040x}"[:40] for v in rng.integers(0, 2**62, rows)],
                "author_host": [f"build@ci-{i % 5}:/var/lib/{i}" for i in r],
            },
        ),
        _clean(
            "luhn-ids",
            lambda: {"device_imei": _luhn_ids(rows), "item": [int(v) for v in _luhn_ids(rows)], "qty": list(r)},
        ),
        _clean(
            "ipv6-like",
            lambda: {
                "symbol": [("a::b", "std::vector", "dead::beef", "cafe::babe", "Foo::Bar::baz", "ns::add")[i % 6] for i in r],
                "time": [f"{i % 24:02d}:{i % 60:02d}:{i % 60:02d}" for i in r],
                "ratio": [f"{i % 9}:{i % 7}" for i in r],
            },
        ),
        _clean(
            "hashes-timestamps",
            lambda: {
                "sha256": [f"{int(v):064x}" for v in rng.integers(0, 2**62, rows)],
                "uuid": [f"{int(a):08x}-{int(b) % 65536:04x}-4{int(b) % 4096:03x}-a{int(a) % 4096:03x}-{int(b):012x}" for a, b in
                         zip(rng.integers(0, 2**31, rows), rng.integers(0, 2**40, rows), strict=True)],
                "order_ref": _hex_ids(rows),
                "ts_ms": [1_700_000_000_000 + i * 997 for i in r],
                "ts_s": [1_700_000_000 + i * 61 for i in r],
                "iso": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00.000+01:00" for i in r],
            },
        ),
        _clean(
            "numeric-ids",
            lambda: {
                "customer_id": [int(v) for v in rng.integers(10**9, 10**10, rows)],
                "account_no": [int(v) for v in rng.integers(10**11, 10**12, rows)],
                "amount_cents": [int(v) for v in rng.integers(0, 10**8, rows)],
            },
        ),
        _clean(
            "international-text",
            lambda: {
                "city": [("München", "São Paulo", "Zürich", "東京", "Kraków", "İstanbul")[i % 6] for i in r],
                "comment": [
                    f"Lieferung am {1 + i % 28}.{1 + i % 12}.2024 \u2014 Größe {36 + i % 10}, Preis {i % 90},{i % 100:02d} €"
                    for i in r
                ],
                "title": [f"\u201eBericht\u201c Nr. {i} {EN_DASH} Übersicht" for i in r],
            },
        ),
        _clean(
            "english-prose",
            lambda: {
                "text": [
                    ("Meet at the office at 10:30", "Look at the dot on the map", "Prices at 20% off, see dot points",
                     "Ships @ noon", "Email us via the contact form", "Version 2 at last")[i % 6]
                    for i in r
                ],
            },
        ),
    )  # fmt: skip
