"""The PII scan gate on real CSV and Parquet files: each type found and not over-found, policy, evidence."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Severity, Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.pii import (
    GATE_NAME,
    PII_TYPES,
    REPORT_FILE,
    card_number_ok,
    iban_ok,
    resolve_types,
    sample_rows,
    scan_frame,
    scan_pii,
    ssn_ok,
)
from tests.helpers import write_csv

POSITIVE = [
    ("email", "ann.smith@example.com"),
    ("email", "write to b+tag@mail.example.co.uk today"),
    ("email", "O'Brien.J@Example.IE"),
    ("phone", "+1 (415) 555-2671"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+4915112345678"),
    ("phone", "555-123-4567"),
    ("phone", "(555) 123-4567"),
    ("phone", "555.123.4567"),
    ("phone", "020 7946 0958"),
    ("phone", "call 07700 900123 after five"),
    ("phone", "0049 30 1234567"),
    ("credit_card", "4111 1111 1111 1111"),
    ("credit_card", "5500-0000-0000-0004"),
    ("credit_card", "3782 822463 10005"),
    ("credit_card", "paid with 6011111111111117 yesterday"),
    ("credit_card", "4111111111111111 cvv 123"),
    ("us_ssn", "123-45-6789"),
    ("us_ssn", "ssn: 665-12-3456"),
    ("us_ssn", "899-99-9999"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432"),
    ("iban", "pay to NL91ABNA0417164300."),
    ("iban", "BE68 5390 0754 7034 from Ann"),
    ("ipv4", "192.168.1.20"),
    ("ipv4", "client 8.8.8.8 connected"),
    ("ipv6", "2001:db8::1"),
    ("ipv6", "from fe80::1ff:fe23:4567:890a%eth0 at noon"),
    ("ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("mac_address", "00:1a:2b:3c:4d:5e"),
    ("mac_address", "00-1A-2B-3C-4D-5E"),
    ("mac_address", "001a.2b3c.4d5e"),
]

NEGATIVE = [
    ("email", "no-at-sign.example.com"),
    ("email", "logo@2x.png"),
    ("email", "user@localhost"),
    ("email", "a..b@example.com"),
    ("phone", "5551234567"),  # a bare run of digits is an ID, not a phone number
    ("phone", "order 20240115-0042"),
    ("phone", "2024-01-15"),
    ("phone", "15.01.2024"),
    ("phone", "at 10:30:00 2024-01-15"),
    ("phone", "02134-1234"),  # ZIP+4
    ("phone", "v1.2.3"),
    ("phone", "123-45-6789"),  # an SSN, not a phone number
    ("phone", "+12"),
    ("phone", "1,234,567.89"),
    ("credit_card", "4111 1111 1111 1112"),  # Luhn fails
    ("credit_card", "4111111111111112"),
    ("credit_card", "1700000000000"),  # a millisecond timestamp: no card network starts with 1
    ("credit_card", "0000 0000 0000 0000"),
    ("credit_card", "4111 1111 1111"),  # too short
    ("us_ssn", "000-12-3456"),
    ("us_ssn", "666-12-3456"),
    ("us_ssn", "900-12-3456"),
    ("us_ssn", "123-00-4567"),
    ("us_ssn", "123-45-0000"),
    ("us_ssn", "078-05-1120"),  # the Woolworth wallet number, void
    ("us_ssn", "123456789"),
    ("iban", "DE89 3704 0044 0532 0130 01"),  # mod-97 fails
    ("iban", "XX89370400440532013000"),  # no such country
    ("iban", "DE8937040044053201300"),  # one character short for DE
    ("ipv4", "999.1.1.1"),
    ("ipv4", "256.1.1.1"),
    ("ipv4", "1.2.3"),
    ("ipv4", "1.2.3.4.5"),
    ("ipv4", "127.0.0.1"),
    ("ipv4", "255.255.255.0"),
    ("ipv6", "10:30:00"),
    ("ipv6", "::1"),
    ("ipv6", "std::vector"),
    ("ipv6", "1:2:3:4:5:6:7:8:9"),
    ("mac_address", "00:00:00:00:00:00"),
    ("mac_address", "ff:ff:ff:ff:ff:ff"),
    ("mac_address", "00:1a:2b:3c:4d"),
    ("mac_address", "12-34-56-78-90-12"),
]


def _parquet(tmp_path: Path, columns: dict[str, list], name: str = "data.parquet") -> str:
    """Parquet keeps text as text (a CSV reader would turn digit strings into integers)."""
    path = tmp_path / name
    pd.DataFrame(columns).to_parquet(path, index=False)
    return str(path)


@pytest.mark.parametrize(("pii_type", "value"), POSITIVE, ids=[f"{t}:{v}" for t, v in POSITIVE])
def test_each_type_is_found(tmp_path: Path, pii_type: str, value: str) -> None:
    data = _parquet(tmp_path, {"value": ["nothing to see", value, None]})
    result = scan_pii(data, types=[pii_type]).result
    assert result.verdict is Verdict.FAILED, result.summary
    (finding,) = result.findings
    assert finding.id == f"pii.{pii_type}"
    assert finding.location == "column value"
    assert "1 of 3 scanned rows" in finding.message


@pytest.mark.parametrize(("pii_type", "value"), NEGATIVE, ids=[f"{t}:{v}" for t, v in NEGATIVE])
def test_lookalikes_are_not_reported(tmp_path: Path, pii_type: str, value: str) -> None:
    data = _parquet(tmp_path, {"value": [value]})
    result = scan_pii(data, types=[pii_type]).result
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.findings == ()


def test_checksums_directly() -> None:
    assert card_number_ok("4111111111111111") and not card_number_ok("4111111111111112")
    assert card_number_ok("378282246310005") and not card_number_ok("378282246310006")
    assert not card_number_ok("1234567890123")  # no network
    assert iban_ok("DE89370400440532013000") and iban_ok("gb82west12345698765432")
    assert not iban_ok("DE89370400440532013001") and not iban_ok("DE00370400440532013000")
    assert ssn_ok("123", "45", "6789")
    assert not any(ssn_ok(a, g, s) for a, g, s in [("000", "45", "6789"), ("666", "45", "6789"), ("912", "45", "6789")])
    assert not ssn_ok("123", "00", "6789") and not ssn_ok("123", "45", "0000")


def test_realistic_clean_file_passes(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path,
        {
            "customer_id": [100234, 100235, 100236],
            "account": ["4000123412341235", "AC-000123", "AC-000124"],  # Luhn fails: an identifier
            "signup": ["2024-01-15", "2024-02-01", "15.03.2024"],
            "seen_at": ["2024-01-15T10:30:00Z", "2024-02-01 08:00:05", "10:30:00"],
            "zip": ["02134-1234", "94105", "10001"],
            "version": ["v1.2.3", "2.10.0", "1.0.0-rc.1"],
            "uuid": ["550e8400-e29b-41d4-a716-446655440000", "6fa459ea-ee8a-3ca4-894e-db77e160355e", ""],
            "sha": ["a" * 64, "de12" + "0" * 60, "f00d"],
            "amount": [12.5, 1234567.89, 0.0],
            "note": ["Order shipped", "Returned 2 items on 2024-03-01", "price 1,234.00 EUR"],
            "flag": [True, False, True],
        },
    )
    outcome = scan_pii(data)
    result = outcome.result
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.findings == ()
    assert result.subjects[0].sha256 == sha256_file(Path(data))
    assert result.metrics["pii_cells"] == 0 and result.metrics["pii_columns"] == 0
    assert result.metrics["columns_scanned"] == 10  # the boolean column is skipped
    report = json.loads(outcome.files[REPORT_FILE])
    assert report["columns_skipped"] == [{"column": "flag", "dtype": "bool"}]
    assert "no personal data" in result.summary


def test_failure_reports_one_finding_per_column_and_type(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path,
        {
            "contact": ["ann@example.com", "bob@example.org", "n/a", "+1 415 555 2671"],
            "notes": ["ssn 123-45-6789", "card 4111 1111 1111 1111", "call 555-123-4567", "nothing"],
            "amount": [1, 2, 3, 4],
        },
    )
    outcome = scan_pii(data)
    result = outcome.result
    assert result.gate == GATE_NAME
    assert result.verdict is Verdict.FAILED
    found = {(f.location, f.id): f for f in result.findings}
    assert set(found) == {
        ("column contact", "pii.email"),
        ("column contact", "pii.phone"),
        ("column notes", "pii.us_ssn"),
        ("column notes", "pii.credit_card"),
        ("column notes", "pii.phone"),
    }
    assert found[("column notes", "pii.credit_card")].severity is Severity.CRITICAL
    assert found[("column notes", "pii.us_ssn")].severity is Severity.CRITICAL
    assert found[("column contact", "pii.email")].severity is Severity.HIGH
    assert "2 of 4 scanned rows (50.00%)" in found[("column contact", "pii.email")].message
    assert all(f.owasp_ml == ("ML03:2023",) and f.atlas == ("AML.T0024",) and not f.passed for f in result.findings)
    assert result.findings[0].severity is Severity.CRITICAL  # most serious first
    assert result.metrics["pii_cells"] == 6 and result.metrics["pii_columns"] == 2
    assert result.metrics["rows_scanned"] == 4 and result.metrics["rows_per_second"] > 0
    assert "'contact' (email, phone)" in result.summary and "'notes'" in result.summary
    report = json.loads(outcome.files[REPORT_FILE])
    contact = report["columns"]["contact"]
    assert contact["pii_cells"] == 3 and contact["share"] == 0.75
    assert contact["types"]["email"] == {
        "count": 2,
        "share": 0.5,
        "samples_masked": ["a***@e***.com", "b***@e***.org"],
        "confidence": "high",
    }
    notes = report["columns"]["notes"]["types"]
    assert notes["credit_card"]["samples_masked"] == ["**** **** **** 1111"]
    assert notes["us_ssn"]["samples_masked"] == ["***-**-6789"]
    assert notes["phone"]["samples_masked"] == ["***-***-**67"]


def test_allow_columns_turns_failure_into_visible_pass(tmp_path: Path) -> None:
    data = write_csv(tmp_path, {"email": ["ann@example.com", "bob@example.org"], "phone": ["555-123-4567", "none"]}, "data.csv")
    assert scan_pii(data).result.verdict is Verdict.FAILED
    outcome = scan_pii(data, allow_columns=["email", "phone", "not_a_column"])
    result = outcome.result
    assert result.verdict is Verdict.PASSED, result.summary
    assert {(f.location, f.id) for f in result.findings} == {("column email", "pii.email"), ("column phone", "pii.phone")}
    assert all(f.passed and f.severity is Severity.INFO for f in result.findings)
    assert all("the policy allows this column" in f.message for f in result.findings)
    assert result.metrics["pii_columns"] == 2 and result.metrics["pii_columns_not_allowed"] == 0
    assert "only in allowed column(s)" in result.summary
    assert result.policy["allow_columns"] == ["email", "phone", "not_a_column"]
    assert result.details["allow_columns_missing"] == ["not_a_column"]
    assert json.loads(outcome.files[REPORT_FILE])["columns"]["email"]["allowed"] is True
    # A comma-separated string works too (the operator's templated form); allowing one column is not enough.
    partial = scan_pii(data, allow_columns="email").result
    assert partial.verdict is Verdict.FAILED
    assert [f.id for f in partial.failed_findings] == ["pii.phone"]


def test_types_filter_checks_only_those_types(tmp_path: Path) -> None:
    data = write_csv(tmp_path, {"a": ["ann@example.com", "x"], "b": ["555-123-4567", "y"], "c": ["123-45-6789", "z"]}, "data.csv")
    result = scan_pii(data, types=["email", "us_ssn"]).result
    assert result.verdict is Verdict.FAILED
    assert {f.id for f in result.findings} == {"pii.email", "pii.us_ssn"}
    assert result.policy["types"] == ["email", "us_ssn"] and result.details["types"] == ["email", "us_ssn"]
    assert scan_pii(data, types=["ipv4", "mac_address"]).result.verdict is Verdict.PASSED
    assert resolve_types("phone, EMAIL") == ("email", "phone")
    assert resolve_types(None) == PII_TYPES


def test_unknown_or_empty_type_selection_is_a_configuration_error(tmp_path: Path) -> None:
    data = write_csv(tmp_path, {"a": ["x"]}, "data.csv")
    with pytest.raises(ConfigurationError, match="passport"):
        resolve_types(["email", "passport"])
    with pytest.raises(ConfigurationError, match="passport"):
        scan_frame(pd.DataFrame({"a": ["x"]}), types=["passport"])
    outcome = scan_pii(data, types=["email", "passport"])
    assert outcome.result.verdict is Verdict.ERROR
    assert isinstance(outcome.error, ConfigurationError)
    assert "unknown PII type(s) passport" in outcome.result.summary
    empty = scan_pii(data, types=[])
    assert empty.result.verdict is Verdict.ERROR and "no PII types" in empty.result.summary


def test_max_rows_scans_a_visible_random_sample(tmp_path: Path) -> None:
    """``max_rows`` draws random rows with a recorded seed (it read the first rows: row 80 was never seen)."""
    values = ["fine"] * 100
    values[80] = "ann@example.com"
    data = write_csv(tmp_path, {"text": values}, "data.csv")
    assert scan_pii(data).result.verdict is Verdict.FAILED
    missing = next(seed for seed in range(100) if 80 not in sample_rows(100, 50, seed))
    hitting = next(seed for seed in range(100) if 80 in sample_rows(100, 50, seed))
    outcome = scan_pii(data, max_rows=50, sample_seed=missing)
    result = outcome.result
    # No PII in the sample, but 50 rows were never looked at: warned (incomplete), never passed.
    assert result.verdict is Verdict.WARNED and result.incomplete
    assert result.not_performed == ("pii-scan.rows-not-scanned",)
    (unscanned,) = [f for f in result.findings if f.id == "pii-scan.rows-not-scanned"]
    assert not unscanned.passed and unscanned.severity.value == "low" and "50 of 100 rows were not scanned" in unscanned.message
    assert result.metrics["rows_scanned"] == 50 and result.metrics["rows_total"] == 100 and result.metrics["sampled"] == 1
    assert result.details["sampled"] is True and result.details["max_rows"] == 50
    assert result.details["sample_seed"] == missing
    assert result.policy["max_rows"] == 50
    assert f"random 50 of 100 rows (seed {missing})" in result.summary
    sampling = json.loads(outcome.files[REPORT_FILE])["sampling"]
    assert {k: sampling[k] for k in ("rows_total", "rows_scanned", "max_rows", "sampled", "method", "seed")} == {
        "rows_total": 100,
        "rows_scanned": 50,
        "max_rows": 50,
        "sampled": True,
        "method": "random rows",
        "seed": missing,
    }
    assert "default_rng(seed)" in sampling["how"] and f"seed {missing}" in sampling["note"]
    assert scan_pii(data, max_rows=50, sample_seed=hitting).result.verdict is Verdict.FAILED
    # Without a seed each run draws its own, recorded: the rows scanned cannot be predicted.
    seeds = {json.loads(scan_pii(data, max_rows=50).files[REPORT_FILE])["sampling"]["seed"] for _ in range(5)}
    assert len(seeds) > 1 and all(isinstance(seed, int) for seed in seeds)
    assert result.subjects[0].sha256 == sha256_file(Path(data))  # the digest covers the whole file
    whole = scan_pii(data, max_rows=1000).result
    assert whole.verdict is Verdict.FAILED and whole.metrics["sampled"] == 0 and whole.details["sample_seed"] is None
    assert "1 of 100 scanned rows" in whole.findings[0].message


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_sample_seed_is_an_error(tmp_path: Path, seed: object) -> None:
    outcome = scan_pii(write_csv(tmp_path, {"a": ["x", "y"]}, "data.csv"), max_rows=1, sample_seed=seed)  # type: ignore[arg-type]
    assert outcome.result.verdict is Verdict.ERROR
    assert "sample_seed must be a non-negative integer" in outcome.result.summary


@pytest.mark.parametrize("max_rows", [0, -5, 2.5, True])
def test_bad_max_rows_is_an_error(tmp_path: Path, max_rows: object) -> None:
    outcome = scan_pii(write_csv(tmp_path, {"a": ["x"]}, "data.csv"), max_rows=max_rows)  # type: ignore[arg-type]
    assert outcome.result.verdict is Verdict.ERROR
    assert "max_rows must be a positive integer" in outcome.result.summary


def test_warn_only_turns_rejection_into_visible_warning(tmp_path: Path) -> None:
    result = scan_pii(write_csv(tmp_path, {"a": ["ann@example.com"]}, "data.csv"), warn_only=True).result
    assert result.verdict is Verdict.WARNED and result.warn_only
    assert result.failed_findings


def test_parquet_input_with_string_and_categorical_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "email": pd.Series(["ann@example.com", None, "x"], dtype="string"),
            "ip": pd.Series(["10.1.2.3", "10.1.2.3", "none"]).astype("category"),
            "card": pd.array([4111111111111111, None, 5], dtype="Int64"),
        }
    )
    path = tmp_path / "data.csv"  # Parquet with a misleading name: the format is decided by content
    frame.to_parquet(path, index=False)
    outcome = scan_pii(str(path))
    result = outcome.result
    assert result.details["format"] == "parquet"
    assert result.verdict is Verdict.FAILED
    counts = {f.location: f.message for f in result.findings}
    assert "1 of 3" in counts["column email"] and "2 of 3" in counts["column ip"] and "1 of 3" in counts["column card"]
    report = json.loads(outcome.files[REPORT_FILE])
    assert report["columns"]["ip"]["types"]["ipv4"]["samples_masked"] == ["10.*.*.*"]
    assert report["format"] == "parquet"


def test_card_numbers_stored_as_numbers_are_found(tmp_path: Path) -> None:
    # A CSV reader turns digit-only columns into int64, or float64 when a value is missing.
    data = write_csv(
        tmp_path,
        {
            "card_int": ["4111111111111111", "5500000000000004", "378282246310005"],
            "card_float": ["4111111111111111", "", "6011111111111117"],
            "invalid": ["4111111111111112", "5500000000000005", "12"],
        },
    )
    outcome = scan_pii(data)
    result = outcome.result
    report = json.loads(outcome.files[REPORT_FILE])
    assert [c["dtype"] for c in report["columns_scanned"]] == ["int64", "float64", "int64"]
    assert {f.location: f.id for f in result.findings} == {
        "column card_int": "pii.credit_card",
        "column card_float": "pii.credit_card",
    }
    assert "3 of 3" in result.findings[0].message
    assert report["columns"]["card_int"]["types"]["credit_card"]["samples_masked"] == [
        "************1111",
        "************0004",
        "***********0005",
    ]
    assert result.details["numeric_columns_scanned"] == ["card_int", "card_float", "invalid"]
    # Numeric columns are scanned for card and phone numbers only.
    assert scan_pii(data, types=["phone"]).result.details["numeric_columns_scanned"] == ["card_int", "card_float", "invalid"]
    assert scan_pii(data, types=["email"]).result.details["numeric_columns_scanned"] == []


def test_identifier_column_of_long_numbers_is_reported_with_low_confidence(tmp_path: Path) -> None:
    """Random 16-digit ids starting with 4 pass Luhn one time in ten, like Visa numbers would.

    They were hidden (the whole "identifier column"), which hid real card numbers mixed in with
    non-Luhn numbers too (issue 21): now the Luhn-valid ones are reported, with low confidence.
    """
    rng = np.random.default_rng(7)
    ids = rng.integers(4 * 10**15, 5 * 10**15, size=500)  # 16 digits starting with 4, like Visa
    data = write_csv(tmp_path, {"txn_id": ids, "txn_ref": [str(i) for i in ids]}, "data.csv")
    outcome = scan_pii(data)
    result = outcome.result
    assert result.verdict is Verdict.FAILED, result.summary
    assert {(f.location, f.id, f.severity) for f in result.findings} == {
        ("column txn_id", "pii.credit_card.low-confidence", Severity.MEDIUM),
        ("column txn_ref", "pii.credit_card.low-confidence", Severity.MEDIUM),
    }
    report = json.loads(outcome.files[REPORT_FILE])
    note = report["columns"]["txn_id"]["notes"][0]
    assert note.startswith("identifier column") and "of 500 numbers shaped like card numbers pass Luhn" in note
    assert report["columns"]["txn_id"]["types"] == {} and report["columns"]["txn_id"]["types_low_confidence"]["credit_card"]
    assert scan_pii(data, allow_columns=["txn_id", "txn_ref"]).result.verdict is Verdict.PASSED
    # Text that is not a bare number counts with high confidence, even in an identifier-looking column.
    frame = pd.DataFrame({"ref": [str(i) for i in ids] + ["card 4111 1111 1111 1111"]})
    (column,) = scan_frame(frame)
    assert column.hits["credit_card"].count == 1 and column.low_hits["credit_card"].count > 0 and column.notes


def test_pii_inside_free_text_and_mixed_objects(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "message": [
                "Hi, I'm Ann (ann.smith@example.com, +44 20 7946 0958); my IBAN is GB82 WEST 1234 5698 7654 32.",
                "server 2001:db8::42 saw MAC 00:1a:2b:3c:4d:5e from 203.0.113.7",
                12345,
                None,
                float("nan"),
                b"bytes bob@example.org",
            ]
        },
        dtype=object,
    )
    (column,) = scan_frame(frame)
    assert column.mode == "text"
    assert {t: h.count for t, h in column.hits.items()} == {
        "email": 2,
        "phone": 1,
        "iban": 1,
        "ipv4": 1,
        "ipv6": 1,
        "mac_address": 1,
    }
    assert column.pii_cells == 3


KNOWN_PII = {
    "email": ["ann.smith@example.com", "bob.jones@corp.example.org"],
    "phone": ["+1 (415) 555-2671", "020 7946 0958", "555-867-5309"],
    "credit_card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
    "us_ssn": ["123-45-6789", "219-45-1234"],
    "iban": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"],
    "ipv4": ["203.0.113.45"],
    "ipv6": ["2001:db8:85a3::8a2e:370:7334"],
    "mac_address": ["00:1a:2b:3c:4d:5e"],
}


def _forms(raw: str) -> set[str]:
    """The raw value and the forms a leak could take (without separators, local part of an e-mail)."""
    forms = {raw, raw.replace(" ", ""), raw.replace(" ", "").replace("-", "")}
    if "@" in raw:
        forms |= {raw.split("@")[0], raw.split("@")[1]}
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) >= 9:
        forms.add(digits)
    return forms


def test_no_raw_value_ever_reaches_the_evidence(tmp_path: Path) -> None:
    values = [v for vs in KNOWN_PII.values() for v in vs]
    rows = len(values)
    columns = {
        "pii": values,  # not allowed
        "allowed": list(reversed(values)),  # allowed: reported as info findings, with samples
        "free_text": [f"note {i}: reach me via {v} please" for i, v in enumerate(values)],
        "card_numbers": ["4111111111111111"] * rows,  # becomes int64
    }
    data = write_csv(tmp_path, columns, "data.csv")
    outcome = scan_pii(data, allow_columns=["allowed"])
    result = outcome.result
    assert result.verdict is Verdict.FAILED
    found = {(f.location, f.id) for f in result.findings}
    for pii_type in PII_TYPES:  # every value was found...
        assert ("column pii", f"pii.{pii_type}") in found
        assert ("column allowed", f"pii.{pii_type}") in found
        assert ("column free_text", f"pii.{pii_type}") in found
    report = json.loads(outcome.files[REPORT_FILE])
    assert all(t["samples_masked"] for c in report["columns"].values() for t in c["types"].values())
    # ...and none of them, in any form, is in the evidence.
    evidence = [body.decode("utf-8") for body in outcome.files.values()]
    evidence.append(json.dumps(result.to_dict()))
    evidence.extend(f.message for f in result.findings)
    evidence.append(result.summary)
    blob = "\n".join(evidence)
    for raw in [*values, "4111111111111111"]:
        for form in _forms(raw):
            assert form not in blob, f"raw PII {form!r} leaked into the evidence"


@pytest.mark.slow
def test_100k_rows_by_10_text_columns(tmp_path: Path) -> None:
    rows = 100_000
    rng = random.Random(3)
    words = ["order", "shipped", "2024-01-15", "10:30:00", "v1.2.3", "ok", "returned", "EUR", "1,234.00", "AC-000123"]

    def text() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) + f" {rng.randint(0, 10**6)}"

    frame = pd.DataFrame({f"text_{i}": [text() for _ in range(rows)] for i in range(8)})
    frame["email"] = [f"user{i}@example.com" if i % 10 == 0 else text() for i in range(rows)]
    frame["code"] = ["".join(rng.choices(string.ascii_uppercase + string.digits, k=12)) for _ in range(rows)]
    path = tmp_path / "big.parquet"
    frame.to_parquet(path, index=False)
    result = scan_pii(str(path)).result
    assert result.verdict is Verdict.FAILED
    assert [(f.location, f.id) for f in result.findings] == [("column email", "pii.email")]
    assert "10000 of 100000" in result.findings[0].message
    assert result.metrics["rows_scanned"] == rows and result.metrics["columns_scanned"] == 10
    assert result.metrics["rows_per_second"] > 0


BAD_INPUTS = {
    "missing": (None, "does not exist"),
    "empty": (b"", "is empty"),
    "ragged": (b"a,b\n1,x@y.com\n2,3,9,9\n3,z\n", "not well-formed CSV"),
    "not-utf8": (b"a,b\n\xff\xfe\x00,1\n", "not valid UTF-8"),
    "blank": (b"\n\n", "holds no columns"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_an_error_with_a_clear_message(tmp_path: Path, case: str) -> None:
    content, message = BAD_INPUTS[case]
    path = tmp_path / f"{case}.csv"
    if content is not None:
        path.write_bytes(content)
    outcome = scan_pii(str(path))
    assert outcome.result.verdict is Verdict.ERROR
    assert message in outcome.result.summary
    assert outcome.error is not None
    assert outcome.files == {}


def test_directory_without_part_files_is_an_error(tmp_path: Path) -> None:
    """A directory is a data set of part files (read in batches); one without any is an error, not a pass."""
    (tmp_path / "_SUCCESS").write_text("")
    result = scan_pii(str(tmp_path)).result
    assert result.verdict is Verdict.ERROR and "without a CSV or Parquet part file" in result.summary


def _empty_inputs(tmp_path: Path) -> dict[str, str]:
    header = tmp_path / "header.csv"
    header.write_text("email,phone\n")
    parquet = tmp_path / "empty.parquet"
    pd.DataFrame({"email": pd.Series([], dtype="object"), "phone": pd.Series([], dtype="object")}).to_parquet(parquet)
    return {"header-only CSV": str(header), "zero-row Parquet": str(parquet)}


@pytest.mark.parametrize("kind", ["header-only CSV", "zero-row Parquet"])
@pytest.mark.parametrize("max_rows", [None, 5])
@pytest.mark.parametrize("warn_only", [False, True])
def test_an_empty_file_is_never_a_pass(tmp_path: Path, kind: str, max_rows: int | None, warn_only: bool) -> None:
    """No data to check is never a pass ("no personal data found; 0 rows scanned" was): an error verdict."""
    outcome = scan_pii(_empty_inputs(tmp_path)[kind], max_rows=max_rows, warn_only=warn_only)
    result = outcome.result
    assert result.verdict is Verdict.ERROR, result.summary
    assert "holds no rows: no data to check is never a pass" in result.summary and "allow_empty=True" in result.summary
    assert [f.id for f in result.findings] == ["pii-scan.empty-batch"]
    assert result.policy["allow_empty"] is False
    assert outcome.files == {}


def test_a_loaded_empty_table_is_never_a_pass(tmp_path: Path) -> None:
    from airflow_mlsecops.io.locations import load_table_at

    assert scan_pii(load_table_at(_empty_inputs(tmp_path)["zero-row Parquet"])).verdict is Verdict.ERROR


@pytest.mark.parametrize("kind", ["header-only CSV", "zero-row Parquet"])
def test_allow_empty_accepts_an_empty_file_visibly(tmp_path: Path, kind: str) -> None:
    outcome = scan_pii(_empty_inputs(tmp_path)[kind], allow_empty=True)
    result = outcome.result
    assert result.verdict is Verdict.WARNED and result.incomplete, result.summary  # nothing scanned: never passed
    assert result.metrics["rows_scanned"] == 0 and result.policy["allow_empty"] is True
    assert [(f.id, f.passed) for f in result.findings] == [("pii-scan.empty-batch", False)]
    assert "empty batch accepted" in result.summary
    assert json.loads(outcome.files[REPORT_FILE])["sampling"]["rows_scanned"] == 0


@pytest.mark.parametrize("value", ["yes", 1])
def test_allow_empty_must_be_a_bool(tmp_path: Path, value: object) -> None:
    outcome = scan_pii(_empty_inputs(tmp_path)["header-only CSV"], allow_empty=value)  # type: ignore[arg-type]
    assert outcome.verdict is Verdict.ERROR and "allow_empty must be True or False" in outcome.result.summary


def test_max_rows_accepts_numpy_integers(tmp_path: Path) -> None:
    seed = next(seed for seed in range(100) if list(sample_rows(2, 1, seed)) == [0])  # the row without PII
    path = write_csv(tmp_path, {"a": ["x", "ann@example.com"]}, "data.csv")
    outcome = scan_pii(path, max_rows=np.int64(1), sample_seed=np.int64(seed))  # type: ignore[arg-type]
    assert outcome.result.verdict is Verdict.WARNED  # a sample: the other row was not scanned
    assert outcome.result.policy["max_rows"] == 1 and outcome.result.details["max_rows"] == 1
    json.dumps(outcome.result.to_dict())


@pytest.mark.parametrize("location", ["s3://bucket/people.csv", "runs:/0123/data/people.csv", "models:/crm/3/people.csv"])
def test_engine_reads_only_local_data(location: str) -> None:
    """Remote data is the caller's to load (io.locations.load_table_at): the engine refuses it, naming it."""
    result = scan_pii(location).result
    assert result.verdict is Verdict.ERROR
    assert f"{location} is not a local path; load it first" in result.summary


def test_a_loaded_table_gives_the_same_evidence_as_its_file(tmp_path: Path) -> None:
    from airflow_mlsecops.io.locations import load_table_at

    path = write_csv(tmp_path, {"notes": ["ann@example.com", "n/a"], "id": ["1", "2"]}, "people.csv")
    from_file, from_table = scan_pii(path), scan_pii(load_table_at(path))
    assert from_table.result.verdict is Verdict.FAILED
    assert from_table.result.subjects == from_file.result.subjects
    assert [f.message for f in from_table.result.findings] == [f.message for f in from_file.result.findings]
    assert from_table.result.policy == from_file.result.policy


def test_inputs_unavailable_records_the_gates_error_verdict_and_policy(tmp_path: Path) -> None:
    from airflow_mlsecops.exceptions import GateError
    from airflow_mlsecops.gates.pii import inputs_unavailable

    options = {"allow_columns": "contact, notes", "types": ["email", "iban"], "max_rows": 10}
    missing = GateError("s3://bucket/people.csv cannot be read from S3 (NoSuchKey)")
    gone = inputs_unavailable(missing, **options)
    assert gone.verdict is Verdict.ERROR and gone.result.gate == GATE_NAME and gone.error is missing
    assert gone.result.summary == "could not run: s3://bucket/people.csv cannot be read from S3 (NoSuchKey)"
    same = scan_pii(str(tmp_path / "nonexistent.csv"), **options)
    assert gone.result.policy == same.result.policy and gone.result.tool_versions == same.result.tool_versions
    # A bad argument is reported first, as the gate itself does.
    for bad, message in (({"types": ["email", "bogus"]}, "bogus"), ({"max_rows": 0}, "max_rows must be a positive integer")):
        outcome = inputs_unavailable(GateError("unreachable"), **bad)
        assert outcome.verdict is Verdict.ERROR and message in outcome.result.summary
        assert outcome.result.policy == scan_pii(str(tmp_path / "nonexistent.csv"), **bad).result.policy
