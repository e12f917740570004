"""The data-integrity gate's streamed path (``batch_rows``): the exact checks agree with the in-memory path
on the same files, the sampled ones say so, memory-bound structures behave, bad input is an error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.demo.example_data import LABEL, credit_frame
from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.base import GateOutcome
from airflow_mlsecops.gates.data_integrity import CHECK_IDS, REPORT_FILE, check_integrity
from airflow_mlsecops.gates.data_integrity.streaming import _RowSample, _SeenHashes

EXACT = (
    "integrity.schema",
    "integrity.identifiers",
    "integrity.non_finite",
    "integrity.formula_injection",
    "integrity.label_shift",
    "integrity.class_set",
    "integrity.duplicates",
    "integrity.out_of_range",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("stream")
    reference = credit_frame(rows=3000, seed=7)
    reference.insert(0, "loan_id", np.arange(len(reference)))
    batch = credit_frame(rows=1500, seed=8)
    batch.insert(0, "loan_id", np.arange(10**6, 10**6 + len(batch)))
    poisoned = batch.copy()
    poisoned["income"] = poisoned["income"] * 3  # shifted, and out of the reference's range
    poisoned = pd.concat([poisoned, poisoned.iloc[:100]], ignore_index=True)  # duplicated rows (and ids)
    paths = {"reference": root / "reference.csv", "clean": root / "clean.csv", "poisoned": root / "poisoned.csv"}
    reference.to_csv(paths["reference"], index=False)
    batch.to_csv(paths["clean"], index=False)
    poisoned.to_csv(paths["poisoned"], index=False)
    parts = root / "poisoned-parts"
    parts.mkdir()
    for i, start in enumerate(range(0, len(poisoned), 600)):
        poisoned.iloc[start : start + 600].to_csv(parts / f"part-{i:05d}.csv", index=False)
    (parts / "_SUCCESS").write_text("")
    out = {name: str(path) for name, path in paths.items()}
    out["parts"] = str(parts)
    return out


def _report(outcome: GateOutcome) -> dict[str, dict]:
    return {c["id"]: c for c in json.loads(outcome.files[REPORT_FILE])["checks"]}


def _failed(outcome: GateOutcome) -> list[str]:
    return sorted(f.id for f in outcome.result.failed_findings if f.severity.value == "high")


def test_a_clean_batch_with_an_id_column_passes_both_ways(files: dict[str, str]) -> None:
    whole = check_integrity(files["clean"], files["reference"], label_column=LABEL)
    streamed = check_integrity(files["clean"], files["reference"], label_column=LABEL, batch_rows=256)
    assert whole.verdict is Verdict.PASSED, whole.result.summary
    assert streamed.verdict is Verdict.PASSED, streamed.result.summary
    assert whole.result.details["column_roles"] == streamed.result.details["column_roles"]
    assert streamed.result.details["column_roles"]["id_columns"] == ["loan_id"]
    assert [s.sha256 for s in streamed.result.subjects] == [sha256_file(files["clean"]), sha256_file(files["reference"])]
    stream = streamed.result.details["stream"]
    assert stream["batch"] == {"streamed": True, "parts": 1, "rows": 1500, "size_bytes": Path(files["clean"]).stat().st_size,
                               "batch_rows": 256, "formats": ["csv"]}  # fmt: skip
    assert streamed.result.details["sampled"] == {}  # both sides fit in the sample: nothing was sampled
    assert "streamed in batches of 256 rows" in streamed.result.summary
    assert "stream" not in whole.result.details


def test_a_poisoned_batch_fails_both_ways_with_the_same_findings_and_values(files: dict[str, str]) -> None:
    whole = check_integrity(files["poisoned"], files["reference"], label_column=LABEL)
    streamed = check_integrity(files["poisoned"], files["reference"], label_column=LABEL, batch_rows=128)
    assert whole.verdict is streamed.verdict is Verdict.FAILED
    expected = ["integrity.duplicates", "integrity.feature_shift", "integrity.identifiers", "integrity.out_of_range"]
    assert set(expected) <= set(_failed(whole))
    assert _failed(streamed) == _failed(whole)
    a, b = _report(whole), _report(streamed)
    for check in CHECK_IDS:
        assert (a[check]["status"], a[check]["value"], a[check]["rows_total"]) == (
            b[check]["status"],
            b[check]["value"],
            b[check]["rows_total"],
        ), check
        assert a[check]["rows"] == b[check]["rows"], check  # row positions count across the frames
    assert b["integrity.duplicates"]["rows_total"] == 100 and b["integrity.duplicates"]["pairs_recorded"] is False
    assert "64-bit hash" in b["integrity.duplicates"]["method"]


def test_a_directory_of_part_files_is_one_data_set_with_every_part_named(files: dict[str, str]) -> None:
    single = check_integrity(files["poisoned"], files["reference"], batch_rows=500)
    parts = check_integrity(files["parts"], files["reference"], batch_rows=500)
    assert _failed(parts) == _failed(single) and "integrity.duplicates" in _failed(parts)
    a, b = _report(single), _report(parts)
    assert all(a[c]["rows"] == b[c]["rows"] and a[c]["value"] == b[c]["value"] for c in EXACT)
    names = sorted(p.name for p in Path(files["parts"]).glob("part-*.csv"))
    subjects = parts.result.subjects[:-1]
    assert [Path(s.name).name for s in subjects] == names  # _SUCCESS is not a part
    assert [s.sha256 for s in subjects] == [sha256_file(Path(files["parts"]) / n) for n in names]
    report = json.loads(parts.files[REPORT_FILE])
    assert report["batch"]["stream"]["parts"] == 3 and report["batch"]["rows"] == 1600


def test_a_directory_is_streamed_without_being_asked(files: dict[str, str]) -> None:
    outcome = check_integrity(files["parts"], files["reference"])
    assert outcome.result.details["stream"]["batch"]["batch_rows"] == 65_536
    assert "integrity.duplicates" in _failed(outcome)


def test_a_batch_larger_than_the_sample_is_sampled_visibly_and_near_duplicates_are_not_performed(
    files: dict[str, str],
) -> None:
    outcome = check_integrity(
        files["clean"],
        files["reference"],
        label_column=LABEL,
        batch_rows=200,
        sample_rows=400,
        thresholds={"label_flip_max_rows": 100},
    )
    result = outcome.result
    assert result.verdict is Verdict.WARNED and result.warned_reason == "incomplete", result.summary
    assert result.details["not_performed"] == ["integrity.near_duplicates"]
    sampled = result.details["sampled"]
    assert set(sampled) == {"integrity.duplicates", "integrity.feature_shift", "integrity.label_flips"}
    draw = sampled["integrity.feature_shift"]
    assert (draw["batch_rows_sampled"], draw["batch_rows"], draw["reference_rows_sampled"], draw["reference_rows"]) == (
        400,
        1500,
        400,
        3000,
    )
    assert draw["random_state"] == 0 and "uniform" in draw["method"]
    report = _report(outcome)
    assert "streamed: on a uniform sample of 400 of 1,500 batch rows" in report["integrity.feature_shift"]["message"]
    assert report["integrity.label_flips"]["streamed_sample"]["sample_rows"] == 400
    assert "sampled: duplicates, feature_shift, label_flips" in result.summary
    # the exact checks did not sample: every row counted
    assert report["integrity.out_of_range"]["status"] == "passed" and result.metrics["rows"] == 1500


def test_a_shift_is_still_caught_on_a_sample(files: dict[str, str]) -> None:
    outcome = check_integrity(
        files["poisoned"], files["reference"], batch_rows=300, sample_rows=500, thresholds={"label_flip_max_rows": 100}
    )
    assert "integrity.feature_shift" in _failed(outcome)
    assert "integrity.feature_shift" in outcome.result.details["sampled"]


def test_late_problems_are_found_at_their_row_and_a_column_that_gains_missing_values_keeps_its_kind(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"count": rng.integers(0, 50, 4000), "score": rng.normal(size=4000), "city": ["a", "b"] * 2000})
    batch = reference.sample(2000, random_state=1).reset_index(drop=True).astype({"count": "float64"})
    batch.loc[1700, "count"] = np.nan  # an integer column with a missing value late: float in that frame only
    batch.loc[1800, "score"] = np.inf
    batch.loc[1900, "city"] = "=HYPERLINK(1)"
    reference.to_csv(tmp_path / "reference.csv", index=False)
    batch.to_csv(tmp_path / "batch.csv", index=False)
    whole = check_integrity(str(tmp_path / "batch.csv"), str(tmp_path / "reference.csv"))
    streamed = check_integrity(str(tmp_path / "batch.csv"), str(tmp_path / "reference.csv"), batch_rows=100)
    assert _failed(whole) == _failed(streamed)
    a, b = _report(whole), _report(streamed)
    assert b["integrity.schema"]["status"] == "passed"
    assert b["integrity.non_finite"]["rows"] == a["integrity.non_finite"]["rows"] == [1800]
    assert b["integrity.formula_injection"]["rows"] == a["integrity.formula_injection"]["rows"] == [1900]
    assert b["integrity.out_of_range"]["rows"] == a["integrity.out_of_range"]["rows"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_rows": 0}, "batch_rows must be an integer of at least 1"),
        ({"batch_rows": "100"}, "batch_rows must be an integer"),
        ({"batch_rows": 100, "sample_rows": 5}, "sample_rows must be an integer of at least 100"),
    ],
)
def test_bad_stream_arguments_are_an_error_verdict(files: dict[str, str], kwargs: dict, message: str) -> None:
    outcome = check_integrity(files["clean"], files["reference"], **kwargs)
    assert outcome.verdict is Verdict.ERROR and message in outcome.result.summary


def test_a_table_loaded_already_cannot_be_streamed(files: dict[str, str]) -> None:
    from airflow_mlsecops.io.tabular import load_table

    outcome = check_integrity(load_table(files["clean"]), files["reference"], batch_rows=100)
    assert (
        outcome.verdict is Verdict.ERROR and "batch_rows needs the batch and the reference as locations" in outcome.result.summary
    )


def test_empty_inputs_on_the_streamed_path(files: dict[str, str], tmp_path: Path) -> None:
    header = Path(files["clean"]).read_text().splitlines()[0] + "\n"
    (tmp_path / "empty.csv").write_text(header)
    empty = str(tmp_path / "empty.csv")
    assert check_integrity(files["clean"], empty, batch_rows=100).verdict is Verdict.ERROR
    refused = check_integrity(empty, files["reference"], batch_rows=100)
    assert refused.verdict is Verdict.ERROR and "holds no rows" in refused.result.summary
    allowed = check_integrity(empty, files["reference"], batch_rows=100, allow_empty=True)
    assert allowed.verdict is Verdict.WARNED and allowed.result.warned_reason == "incomplete"
    assert "data-integrity.empty-batch" in {f.id for f in allowed.result.findings}


def test_seen_hashes_flag_exactly_what_pandas_calls_duplicated_across_chunks() -> None:
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 3000, 20_000).astype(np.uint64)  # many repeats, within and across chunks
    seen = _SeenHashes()
    flags = np.concatenate([seen.add(hashes[i : i + 777]) for i in range(0, len(hashes), 777)])
    assert np.array_equal(flags, pd.Series(hashes).duplicated(keep="first").to_numpy())
    assert seen.nbytes == 8 * len(np.unique(hashes))


def test_the_row_sample_is_uniform_seeded_in_file_order_and_independent_of_the_frame_size() -> None:
    frame = pd.DataFrame({"x": np.arange(10_000)})

    def draw(step: int, seed: int = 0) -> np.ndarray:
        sample = _RowSample(500, seed)
        for start in range(0, len(frame), step):
            sample.add(frame.iloc[start : start + step], start)
        rows, positions = sample.result(["x"])
        assert np.array_equal(rows["x"].to_numpy(), positions)
        return positions

    first = draw(64)
    assert len(first) == 500 and np.all(np.diff(first) > 0)
    assert np.array_equal(first, draw(3333))
    assert not np.array_equal(first, draw(64, seed=1))
    assert 3500 < first.mean() < 6500  # spread over the whole file, not its head
    small = _RowSample(500, 0)
    small.add(frame.iloc[:300], 0)
    assert np.array_equal(small.result(["x"])[1], np.arange(300))  # fewer rows than the sample: every row
