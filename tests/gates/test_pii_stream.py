"""The PII scan of a data set read in batches: the same findings as in memory, bounded memory, reservoir samples, roles."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.pii import reservoir_rows, scan_pii
from tests.gates.test_pii import NEGATIVE, POSITIVE


def _rich_frame(rows: int = 1500, seed: int = 7) -> pd.DataFrame:
    """Every positive and negative example, spread over rows, and the columns each column rule judges."""
    rng = random.Random(seed)
    examples = [v for _, v in POSITIVE] + [v for _, v in NEGATIVE]
    extras = [
        "ann [at] example [dot] com",
        "ann%40example.com",
        "".join(chr(ord(c) + 0xFEE0) for c in "joe@example.com"),  # full-width: normalised first
        "4111 1111-1111.1111",  # mixed separators: low confidence
        "123 45 6789",
        "version 1.2.3.4",
    ]
    notes = [
        rng.choice(examples + extras) if rng.random() < 0.3 else rng.choice(["fine", "ok", None, "n/a", ""]) for _ in range(rows)
    ]
    hex_ids = ["".join(rng.choice("0123456789abcdef") for _ in range(16)) for _ in range(rows)]
    versions = [rng.choice(["1.2.3", "2.10.0-rc1", "1.0.0.0", "4.2.1.7", "3.1"]) for _ in range(rows)]
    phones = [str(rng.choice([4915112345678, 447700900123, 14155552671])) for _ in range(rows)]
    phones[5] = None  # type: ignore[call-overload]
    return pd.DataFrame(
        {
            "customer_id": range(1, rows + 1),
            "notes": notes,
            "token": hex_ids,
            "build": versions,
            "mobile": phones,
            "account": [rng.randrange(10**15, 10**16) for _ in range(rows)],
            "amount": [round(rng.random() * 1000, 2) for _ in range(rows)],
            "flag": [rng.random() < 0.5 for _ in range(rows)],
        }
    )


def _summary(outcome: Any) -> dict[str, Any]:
    """What must not depend on how the file was read: verdict, findings, per-column counts, samples, notes."""
    report = json.loads(outcome.files["pii_report.json"])
    result = outcome.result
    return {
        "verdict": result.verdict,
        "findings": sorted((f.id, f.severity.value, f.message, f.location, f.passed) for f in result.findings),
        "columns": report["columns"],
        "metrics": {k: v for k, v in result.metrics.items() if k != "rows_per_second"},
        "scanned": report["columns_scanned"],
    }


@pytest.fixture(scope="module")
def rich_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rich") / "rich.csv"
    _rich_frame().to_csv(path, index=False)
    return path


@pytest.mark.parametrize("batch_rows", [7, 100, 1000, 100_000])
def test_streamed_scan_finds_exactly_what_the_in_memory_scan_finds(rich_csv: Path, batch_rows: int) -> None:
    whole = scan_pii(str(rich_csv))
    streamed = scan_pii(str(rich_csv), batch_rows=batch_rows)
    assert whole.result.verdict is Verdict.FAILED
    assert not whole.result.details["streamed"]
    assert streamed.result.details["streamed"] is True
    stream = streamed.result.details["stream"]
    assert stream["rows"] == 1500 and stream["batch_rows"] == batch_rows and stream["parts"] == 1
    assert _summary(streamed) == _summary(whole)
    # the column rules were exercised: a hex id column, a phone column of bare numbers, a version column
    notes = " ".join(n for c in json.loads(whole.files["pii_report.json"])["columns"].values() for n in c["notes"])
    assert "identifier column" in notes and "phone numbers" in notes
    assert [s.sha256 for s in streamed.result.subjects] == [sha256_file(rich_csv)]


def test_version_column_rule_holds_across_batches(tmp_path: Path) -> None:
    """Four-part versions are dropped as IPv4 addresses only when the whole column is a version column."""
    values = ["1.2.3", "2.10.0-rc1", "3.1.4"] * 40 + ["1.0.0.1", "4.2.1.7", "10.1.2.3"] * 5
    path = tmp_path / "versions.csv"
    pd.DataFrame({"build": values}).to_csv(path, index=False)
    whole, streamed = scan_pii(str(path)), scan_pii(str(path), batch_rows=16)
    assert whole.result.verdict is Verdict.PASSED
    assert _summary(streamed) == _summary(whole)
    assert "version column" in json.dumps(json.loads(whole.files["pii_report.json"])["columns"])


def test_parquet_and_a_directory_of_parts_scan_like_the_whole_file(tmp_path: Path) -> None:
    frame = _rich_frame(900, seed=3)
    whole_parquet = tmp_path / "whole.parquet"
    frame.to_parquet(whole_parquet, index=False, row_group_size=128)
    parts = tmp_path / "parts"
    parts.mkdir()
    for index, start in enumerate(range(0, 900, 300)):
        frame.iloc[start : start + 300].to_parquet(parts / f"part-{index:05d}.parquet", index=False, row_group_size=100)
    (parts / "_SUCCESS").write_text("")
    whole = scan_pii(str(whole_parquet))
    by_parts = scan_pii(str(parts))  # a directory is streamed without being asked
    assert by_parts.result.details["stream"]["parts"] == 3
    assert len(by_parts.result.subjects) == 3
    assert _summary(by_parts) == _summary(whole)
    assert scan_pii(str(whole_parquet), batch_rows=50).result.details["streamed"] is True
    assert _summary(scan_pii(str(whole_parquet), batch_rows=50)) == _summary(whole)


def test_clean_file_passes_streamed(tmp_path: Path) -> None:
    path = tmp_path / "clean.csv"
    pd.DataFrame({"id": range(500), "amount": [i * 1.5 for i in range(500)], "city": ["Oslo", "Lima"] * 250}).to_csv(
        path, index=False
    )
    outcome = scan_pii(str(path), batch_rows=64)
    assert outcome.result.verdict is Verdict.PASSED, outcome.result.summary
    assert "streamed: 1 part(s), batches of 64 rows" in outcome.result.summary


def test_csv_missing_values_count_as_pandas_counts_them(tmp_path: Path) -> None:
    """Arrow keeps "" and "NA" in text columns; pandas reads them as missing. The 90% phone rule counts present cells."""
    numbers = ["4915112345678"] * 90 + ["NA"] * 8 + ["abc", "xyz"]
    path = tmp_path / "contacts.csv"
    path.write_text("contact\n" + "\n".join(numbers) + "\n")
    whole, streamed = scan_pii(str(path)), scan_pii(str(path), batch_rows=10)
    assert _summary(streamed) == _summary(whole)
    assert whole.result.verdict is Verdict.FAILED  # 90 of 92 present values: low-confidence phone numbers


def test_reservoir_sample_on_a_stream_is_recorded_and_redrawn(rich_csv: Path) -> None:
    first = scan_pii(str(rich_csv), batch_rows=64, max_rows=300, sample_seed=11)
    other_batches = scan_pii(str(rich_csv), batch_rows=500, max_rows=300, sample_seed=11)
    result = first.result
    assert result.verdict is Verdict.FAILED
    report = json.loads(first.files["pii_report.json"])
    assert report["sampling"]["method"] == "reservoir" and report["sampling"]["seed"] == 11
    assert "reservoir_rows" in report["sampling"]["how"]
    assert result.details["sampling_method"] == "reservoir" and result.details["rows_scanned"] == 300
    assert any(f.id == "pii-scan.rows-not-scanned" for f in result.findings)
    # the same rows whatever the batch size, and the very rows reservoir_rows names
    assert _summary(other_batches) == _summary(first)
    rows = reservoir_rows(1500, 300, 11)
    assert len(set(rows.tolist())) == 300 and rows.max() < 1500
    sample = rich_csv.parent / "sample.csv"
    pd.read_csv(rich_csv).iloc[rows].to_csv(sample, index=False)
    redrawn = scan_pii(str(sample))
    assert _summary(redrawn)["findings"] == [f for f in _summary(first)["findings"] if f[0] != "pii-scan.rows-not-scanned"]
    # a max_rows above the row count scans every row: not sampled
    assert scan_pii(str(rich_csv), batch_rows=64, max_rows=5000).result.details["sampled"] is False


def test_empty_stream_is_an_error_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("email,phone\n")
    assert scan_pii(str(path), batch_rows=10).result.verdict is Verdict.ERROR
    allowed = scan_pii(str(path), batch_rows=10, allow_empty=True).result
    assert allowed.verdict is not Verdict.FAILED and any(f.id == "pii-scan.empty-batch" for f in allowed.findings)


def test_a_value_that_changes_a_column_type_late_is_an_error_not_a_pass(tmp_path: Path) -> None:
    """Arrow types CSV columns from the first 4 MiB: a later e-mail in a numeric column fails closed."""
    path = tmp_path / "late.csv"
    with path.open("w") as fh:
        fh.write("n,pad\n")
        for i in range(300_000):
            fh.write(f"{i},xxxxxxxxxx\n")
        fh.write("ann@example.com,x\n")
    result = scan_pii(str(path), batch_rows=65_536).result
    assert result.verdict is Verdict.ERROR
    assert "does not fit its column's type" in result.summary


def test_bad_batch_rows_and_engine_are_errors(rich_csv: Path) -> None:
    for kwargs in ({"batch_rows": 0}, {"batch_rows": True}, {"engine": "dask"}):
        result = scan_pii(str(rich_csv), **kwargs).result
        assert result.verdict is Verdict.ERROR, kwargs


def test_roles_are_recorded_and_exclude_nothing(rich_csv: Path, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    pd.DataFrame(
        {"ssn_ref": [f"{100 + i:03d}-45-{1000 + i:04d}" for i in range(50)], "score": range(50), "label": [0, 1] * 25}
    ).to_csv(path, index=False)
    for batch_rows in (None, 7):
        outcome = scan_pii(str(path), id_columns=["ssn_ref"], label_column="label", features="score", batch_rows=batch_rows)
        result = outcome.result
        assert result.verdict is Verdict.FAILED  # an identifier column holding SSNs is still scanned
        roles = result.details["column_roles"]
        assert roles["id_columns"] == ["ssn_ref"] and roles["label_column"] == "label"
        assert roles["features"]["numerical"] == ["score"]
        (finding,) = [f for f in result.findings if f.id == "pii.us_ssn"]
        assert "50 of 50" in finding.message and "identifier column (declared --id-column)" in finding.message
        assert json.loads(outcome.files["pii_report.json"])["column_roles"]["id_columns"] == ["ssn_ref"]
        assert result.policy["column_roles"]["id_columns"] == ["ssn_ref"]
    # an identifier recognised without being declared is named too
    inferred = scan_pii(str(rich_csv)).result
    assert "customer_id" in inferred.details["column_roles"]["id_columns"]
    # one column, two roles: a configuration error, never a pass
    clash = scan_pii(str(path), id_columns="label", label_column="label").result
    assert clash.verdict is Verdict.ERROR and "two roles" in clash.summary


_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from airflow_mlsecops.gates.pii import scan_pii
    outcome = scan_pii(sys.argv[1], batch_rows=int(sys.argv[2]))
    assert outcome.result.details["stream"]["rows"] == int(sys.argv[3]), outcome.result.summary
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def _write_rows(path: Path, rows: int) -> None:
    with path.open("w") as fh:
        fh.write("id,name,email,amount,note\n")
        for i in range(rows):
            note = "ann@example.com" if i % 50_000 == 7 else "nothing"
            fh.write(f"{i},user{i % 997},{note},{i * 0.5},text {i % 13}\n")


@pytest.mark.slow
def test_peak_memory_depends_on_the_batch_not_the_file(tmp_path: Path) -> None:
    """Ten times the rows costs at most 1.5 times the peak RSS when streamed (each size in a fresh interpreter)."""
    peaks = {}
    for rows in (100_000, 1_000_000):
        path = tmp_path / f"rows-{rows}.csv"
        _write_rows(path, rows)
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(path), "20000", str(rows)], capture_output=True, text=True, check=True
        )
        peaks[rows] = int(out.stdout.strip().splitlines()[-1])
    assert peaks[1_000_000] <= 1.5 * peaks[100_000], peaks
