"""``load_table`` refuses a header that repeats a column name (CSV, read from the raw header before
pandas renames the copy to ``name.1``; Parquet, from its schema) and names the columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.io.tabular import load_table, repeated_labels


@pytest.mark.parametrize(
    ("content", "delimiter", "names"),
    [
        (b"a,b,a\n1,2,3\n", None, "'a'"),
        (b"a;b;a;b\n1;2;3;4\n", ";", "'a', 'b'"),
        (b'"a,x",b,"a,x"\n1,2,3\n', None, "'a,x'"),
        (b"\xef\xbb\xbfa,b,a\n1,2,3\n", None, "'a'"),  # a byte-order mark does not hide the first name
        (b",a,\n1,2,3\n", None, "''"),  # two unnamed columns
    ],
)
def test_a_repeated_csv_header_is_refused_naming_the_columns(tmp_path: Path, content: bytes, delimiter: str, names: str) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(GateError, match="repeats the column name") as raised:
        load_table(str(path), csv_delimiter=delimiter)
    assert f"repeats the column name(s) {names}:" in str(raised.value)


def test_a_repeated_parquet_column_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4]), pa.array([5, 6])], names=["x", "y", "x"]), path)
    with pytest.raises(GateError, match=r"repeats the column name\(s\) 'x'"):
        load_table(str(path))


def test_names_that_pandas_would_give_a_copy_are_fine_when_they_are_not_copies(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,a.1,A\n1,2,3\n")
    assert list(load_table(str(path)).frame.columns) == ["a", "a.1", "A"]


def test_repeated_labels_compares_labels_as_text() -> None:
    assert repeated_labels(["a", "b", "a", "a", "c", "b"]) == ["a", "b"]
    assert repeated_labels([1, "1", 2]) == ["1"]
    assert repeated_labels(["x", "y"]) == []
