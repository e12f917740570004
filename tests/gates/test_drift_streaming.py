"""The drift gate on data read in batches (a directory of CSV parts, a Parquet file): the same verdict as in
memory on a clean and on a drifted batch, exact missing shares, a reproducible reservoir sample, evidence
that says what was streamed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.demo.example_data import FEATURES, LABEL
from airflow_mlsecops.demo.monitoring_data import drifted_batch, normal_batch, reference_frame
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.drift import JSON_FILE, SKETCH_METHOD, detect_drift
from airflow_mlsecops.gates.drift.streaming import Reservoir

SAMPLE = 2_000
OPTIONS = {"max_rows": SAMPLE, "random_state": 11, "label_column": LABEL, "html": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Reference (5,000 rows, label, a running ``loan_id``) as one CSV and as three CSV parts; batches
    without the label, with their own ``loan_id`` range, as Parquet; one batch with a column 30% missing."""
    root = tmp_path_factory.mktemp("drift-stream")
    reference = reference_frame()
    reference.insert(0, "loan_id", range(1, len(reference) + 1))
    reference.to_csv(root / "reference.csv", index=False)
    parts = root / "reference-parts"
    parts.mkdir()
    for i, start in enumerate(range(0, len(reference), 2_000)):
        reference.iloc[start : start + 2_000].to_csv(parts / f"part-{i:05d}.csv", index=False)
    (parts / "_SUCCESS").write_text("")
    paths = {"reference": str(root / "reference.csv"), "reference_parts": str(parts)}
    for name, frame in (("normal", normal_batch(rows=3_000)), ("drifted", drifted_batch(rows=3_000))):
        frame.insert(0, "loan_id", range(900_001, 900_001 + len(frame)))
        frame.to_parquet(root / f"{name}.parquet", index=False)
        paths[name] = str(root / f"{name}.parquet")
    holes = normal_batch(rows=3_000)
    holes.loc[holes.sample(frac=0.3, random_state=4).index, "income"] = None
    holes.to_csv(root / "holes.csv", index=False)
    paths["holes"] = str(root / "holes.csv")
    return paths


def _streamed_and_in_memory(data: dict[str, str], current: str) -> tuple[object, object]:
    streamed = detect_drift(data["reference_parts"], data[current], batch_rows=700, **OPTIONS)
    in_memory = detect_drift(data["reference"], data[current], **OPTIONS)
    return streamed, in_memory


def test_a_clean_batch_passes_streamed_and_in_memory_with_the_id_excluded(data: dict[str, str]) -> None:
    streamed, in_memory = _streamed_and_in_memory(data, "normal")
    for outcome in (streamed, in_memory):
        result = outcome.result  # type: ignore[attr-defined]
        assert result.verdict is Verdict.PASSED, result.summary
        excluded = {e["column"]: e for e in result.details["column_roles"]["excluded"]}
        assert excluded["loan_id"]["role"] == "id" and not excluded["loan_id"]["declared"]
        assert excluded[LABEL]["reason"] == "declared --label-column"  # the batch has no label: no error
        assert {c["column"] for c in result.details["columns"]} == set(FEATURES)
        assert "loan_id" in result.summary
    result = streamed.result  # type: ignore[attr-defined]
    sampling = result.details["sampling"]
    assert sampling["method"] == SKETCH_METHOD and sampling["streamed"] is True and sampling["batch_rows"] == 700
    assert sampling["rows_reference"] == 5_000 and sampling["rows_current"] == 3_000
    assert sampling["rows_reference_compared"] == sampling["rows_current_compared"] == SAMPLE
    assert sampling["sampled_reference"] and sampling["sampled_current"] and sampling["random_state"] == 11
    streamed_info = result.details["streamed"]
    assert streamed_info["rows_seen"] == {"reference": 5_000, "current": 3_000}
    assert streamed_info["sketch"]["size"] == SAMPLE and streamed_info["reference"]["parts"] == 3
    assert streamed_info["reference"]["streamed"] is True and streamed_info["current"]["formats"] == ["parquet"]
    assert result.metrics["streamed"] == 1.0 and result.metrics["rows_reference"] == 5_000.0
    # Every part is attested (the _SUCCESS marker is not data), then the batch.
    names = [Path(s.name).name for s in result.subjects]
    assert names == ["part-00000.csv", "part-00001.csv", "part-00002.csv", "normal.parquet"]
    assert all(len(s.sha256) == 64 for s in result.subjects)
    report = json.loads(streamed.files[JSON_FILE])  # type: ignore[attr-defined]
    assert report["streamed"]["sketch"]["method"] == SKETCH_METHOD and "streamed in batches of 700" in result.summary
    assert result.policy["batch_rows"] == 700


def test_a_drifted_batch_fails_streamed_and_in_memory(data: dict[str, str]) -> None:
    streamed, in_memory = _streamed_and_in_memory(data, "drifted")
    shares = []
    for outcome in (streamed, in_memory):
        result = outcome.result  # type: ignore[attr-defined]
        assert result.verdict is Verdict.FAILED, result.summary
        assert result.metrics["drifted_share"] >= 0.5  # well beyond the 0.25 drift share
        assert "loan_id" not in {c["column"] for c in result.details["columns"]}
        shares.append(result.metrics["drifted_share"])
    assert shares[0] == shares[1]


def test_missing_shares_are_exact_over_every_row(data: dict[str, str]) -> None:
    streamed = detect_drift(data["reference_parts"], data["holes"], batch_rows=500, **OPTIONS)
    in_memory = detect_drift(data["reference"], data["holes"], **OPTIONS)
    assert streamed.verdict is in_memory.verdict is Verdict.FAILED
    for outcome in (streamed, in_memory):
        changed = {m["column"]: m for m in outcome.result.details["missing_share_changed"]}
        assert set(changed) == {"income"} and changed["income"]["current_share"] == 0.3  # 900 of 3,000, counted
    by_column = [{m["column"]: m for m in json.loads(o.files[JSON_FILE])["missing_shares"]} for o in (streamed, in_memory)]
    assert by_column[0] == by_column[1]


def test_the_reservoir_is_uniform_and_does_not_depend_on_the_batch_size() -> None:
    import numpy as np
    import pandas as pd

    rows = pd.DataFrame({"x": np.arange(20_000)})

    def sample(batch: int, seed: int = 5) -> np.ndarray:
        reservoir = Reservoir(1_000, seed)
        for start in range(0, len(rows), batch):
            reservoir.add(rows.iloc[start : start + batch])
        frame = reservoir.frame()
        assert list(frame.index) == list(frame["x"])  # indexed by position, in file order
        return frame["x"].to_numpy()

    first = sample(333)
    assert len(first) == 1_000 and len(set(first)) == 1_000
    assert np.array_equal(first, sample(4_096)) and np.array_equal(first, sample(20_000))  # the seed alone decides
    assert not np.array_equal(first, sample(333, seed=6))
    # uniform: every tenth of the rows holds about a tenth of the sample
    counts = np.bincount(first // 2_000, minlength=10)
    assert counts.min() > 60 and counts.max() < 140, counts


def test_a_table_loaded_already_is_sketched_alike(data: dict[str, str]) -> None:
    from airflow_mlsecops.io.tabular import load_table

    outcome = detect_drift(load_table(data["reference"]), data["drifted"], batch_rows=1_000, **OPTIONS)
    assert outcome.verdict is Verdict.FAILED
    assert outcome.result.details["streamed"]["reference"]["streamed"] is False  # read whole, then sketched
    assert outcome.result.details["streamed"]["current"]["streamed"] is True


def test_streaming_needs_a_sample_size_and_a_positive_batch(data: dict[str, str]) -> None:
    every_row = detect_drift(data["reference_parts"], data["normal"], batch_rows=500, max_rows=None, html=False)
    assert every_row.verdict is Verdict.ERROR and "max_rows=None" in every_row.result.summary
    assert every_row.result.policy["batch_rows"] == 500
    bad = detect_drift(data["reference_parts"], data["normal"], batch_rows=0, html=False)
    assert bad.verdict is Verdict.ERROR and "batch_rows must be a positive integer" in bad.result.summary


def test_a_directory_is_streamed_without_batch_rows(data: dict[str, str]) -> None:
    outcome = detect_drift(data["reference_parts"], data["normal"], **OPTIONS)
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert outcome.result.details["sampling"]["batch_rows"] == 65_536 and outcome.result.metrics["streamed"] == 1.0


def test_an_empty_streamed_batch_is_never_a_pass(data: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(["loan_id", *FEATURES]) + "\n")
    refused = detect_drift(data["reference_parts"], str(empty), batch_rows=500, **OPTIONS)
    assert refused.verdict is Verdict.ERROR and "holds no rows" in refused.result.summary
    accepted = detect_drift(data["reference_parts"], str(empty), batch_rows=500, allow_empty=True, **OPTIONS)
    assert accepted.verdict is Verdict.WARNED and accepted.result.incomplete, accepted.result.summary
    assert accepted.result.details["streamed"]["rows_seen"] == {"reference": 5_000, "current": 0}
