"""io/batches.py: bounded-memory reads of a file, a directory of parts or an s3:// prefix, hashed as read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.io.batches import TableStream, describe_stream, list_parts, should_stream


def _frame(rows: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(start, start + rows), "x": [i / 7 for i in range(rows)], "s": ["a,b", "c"] * (rows // 2)})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_is_read_in_bounded_frames_and_hashed_as_read(tmp_path: Path, fmt: str) -> None:
    frame = _frame(10_000)
    path = tmp_path / f"data.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, row_group_size=3_000)
    stream = TableStream(str(path), batch_rows=1_000, infer_bytes=8_192)
    frames = list(stream.frames())
    assert max(len(f) for f in frames) <= 1_000 and len(frames) >= 10
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), frame, check_dtype=False)
    assert stream.rows == 10_000 and stream.columns == ("id", "x", "s") and stream.formats == {fmt}
    assert [s.sha256 for s in stream.subjects] == [_sha(path)] and stream.size_bytes == path.stat().st_size
    assert describe_stream(stream) == {
        "streamed": True,
        "parts": 1,
        "rows": 10_000,
        "size_bytes": path.stat().st_size,
        "batch_rows": 1_000,
        "formats": [fmt],
    }


def test_a_directory_of_parts_is_one_data_set_and_each_part_is_a_subject(tmp_path: Path) -> None:
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".hidden.csv").write_text("other,columns\n1,2\n")
    _frame(100).to_csv(tmp_path / "part-0.csv", index=False)
    _frame(50, start=100).to_parquet(tmp_path / "part-1.parquet")
    stream = TableStream(str(tmp_path), batch_rows=64)
    assert [Path(p.location).name for p in stream.parts] == ["part-0.csv", "part-1.parquet"]
    ids = pd.concat(stream.frames(), ignore_index=True)["id"].tolist()
    assert ids == list(range(150))
    assert [s.sha256 for s in stream.subjects] == [_sha(tmp_path / "part-0.csv"), _sha(tmp_path / "part-1.parquet")]
    assert stream.formats == {"csv", "parquet"}


def test_a_second_pass_starts_afresh(tmp_path: Path) -> None:
    _frame(300).to_csv(tmp_path / "d.csv", index=False)
    stream = TableStream(str(tmp_path / "d.csv"), batch_rows=100)
    assert stream.columns == ("id", "x", "s") and stream.rows == 0  # reading the header is not a pass
    for _ in range(2):
        assert sum(len(f) for f in stream.frames()) == 300
        assert stream.rows == 300 and len(stream.subjects) == 1


def test_parts_with_other_columns_are_refused(tmp_path: Path) -> None:
    _frame(10).to_csv(tmp_path / "a.csv", index=False)
    _frame(10).rename(columns={"x": "y"}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(GateError, match="must share their columns"):
        list(TableStream(str(tmp_path)).frames())


def test_a_repeated_column_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(GateError, match="repeats the column name"):
        list(TableStream(str(tmp_path / "d.csv")).frames())


def test_a_value_of_another_type_after_the_inferred_block_is_an_error_not_a_dropped_row(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a\n" + "1\n" * 50_000 + "x\n")
    with pytest.raises(GateError, match=r"does not fit its column's type, which was inferred from the first 4,096 bytes"):
        list(TableStream(str(path), infer_bytes=4_096).frames())


def test_selected_columns_must_exist(tmp_path: Path) -> None:
    _frame(10).to_csv(tmp_path / "d.csv", index=False)
    assert list(next(TableStream(str(tmp_path / "d.csv"), columns=["x"]).frames()).columns) == ["x"]
    with pytest.raises(GateError, match="has no column"):
        list(TableStream(str(tmp_path / "d.csv"), columns=["nope"]).frames())


def test_bad_locations_and_sizes_are_errors(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="does not exist"):
        TableStream(str(tmp_path / "missing.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GateError, match="without a CSV or Parquet part"):
        TableStream(str(tmp_path / "empty"))
    (tmp_path / "d.csv").write_text("a\n1\n")
    with pytest.raises(GateError, match="at least 1"):
        TableStream(str(tmp_path / "d.csv"), batch_rows=0)


def test_should_stream(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a\n1\n")
    assert not should_stream(str(tmp_path / "d.csv"), None)
    assert should_stream(str(tmp_path / "d.csv"), 10)
    assert should_stream(str(tmp_path), None)
    assert should_stream("s3://bucket/table/", None) and not should_stream("s3://bucket/table.csv", None)


def test_an_s3_prefix_is_one_data_set(s3_bucket: str) -> None:
    from airflow_mlsecops.io.artifacts import s3_client

    client = s3_client()
    blobs = {"t/part-0.csv": _frame(20).to_csv(index=False).encode(), "t/part-1.csv": _frame(10, 20).to_csv(index=False).encode()}
    for key, body in blobs.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    client.put_object(Bucket=s3_bucket, Key="t/_SUCCESS", Body=b"")
    assert [p.location for p in list_parts(f"s3://{s3_bucket}/t/")] == [f"s3://{s3_bucket}/{k}" for k in blobs]
    stream = TableStream(f"s3://{s3_bucket}/t/", batch_rows=8)
    assert pd.concat(stream.frames(), ignore_index=True)["id"].tolist() == list(range(30))
    assert [s.sha256 for s in stream.subjects] == [hashlib.sha256(b).hexdigest() for b in blobs.values()]
