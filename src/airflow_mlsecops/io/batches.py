"""Read a tabular data set in bounded batches: one file, a directory of part files, or an ``s3://`` prefix.

The data gates' in-memory path (:mod:`airflow_mlsecops.io.tabular`) reads a whole file into pandas.
A data set larger than the worker's memory is read here instead, as pandas frames of at most
``batch_rows`` rows, so a gate's peak memory depends on the batch size, not on the data set.

What the evidence names is what was judged: every part file is hashed *while it is read*. A CSV
part is parsed from the same stream of bytes that is hashed; a Parquet part (which must be read
from its footer first) and every ``s3://`` part is first copied to a private temporary file while
hashing, and the copy is what is parsed, so a file changed or swapped during the check cannot make
the evidence name bytes the gate never saw. :attr:`TableStream.subjects` (one per part, with its
SHA-256) is complete once a pass has finished.

A part is Parquet when it starts with ``PAR1``, CSV otherwise. Every part must have the same
columns in the same order; a header that repeats a column name is refused, as on the in-memory
path. CSV column types are inferred from the first block of the first part (``infer_bytes``): a
later value of another type (text in a column that began numeric) is a :class:`GateError` naming
the column, never a silently dropped row.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "part-0.csv").write_text("a,b\\n1,x\\n2,y\\n3,z\\n")
>>> _ = (folder / "part-1.csv").write_text("a,b\\n4,w\\n")
>>> stream = TableStream(str(folder), batch_rows=2)
>>> [len(frame) for frame in stream.frames()]
[2, 1, 1]
>>> stream.rows, stream.columns, len(stream.subjects)
(4, ('a', 'b'), 2)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import Subject
from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.io.tabular import PARQUET_MAGIC, duplicate_columns_error, repeated_labels

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: Rows per batch by default: ~65k rows x 10 columns is a few MB in pandas.
DEFAULT_BATCH_ROWS = 65_536
#: A file at least this large is streamed by gates that choose the path themselves (:func:`should_stream`).
STREAM_THRESHOLD_BYTES = 256 * 1024 * 1024
#: CSV bytes read to infer column types (pyarrow's block size).
DEFAULT_INFER_BYTES = 4 * 1024 * 1024
_CHUNK = 1024 * 1024
_DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv", ".txt")


@dataclass(frozen=True)
class Part:
    """One file of a data set: where it is and how big."""

    location: str
    size_bytes: int


def _strip_file_scheme(location: str) -> str:
    return location[len("file://") :] if location.startswith("file://") else location


def _is_data_file(name: str) -> bool:
    base = posixpath.basename(name)
    return not base.startswith((".", "_")) and (base.lower().endswith(_DATA_SUFFIXES) or "." not in base)


def _hidden(folders: Sequence[str]) -> bool:
    return any(folder.startswith((".", "_")) for folder in folders)


def list_parts(location: str) -> list[Part]:
    """The part files of ``location``: the file itself, the data files of a directory (sorted, hidden
    and ``_SUCCESS``-style files left out), or every object under an ``s3://`` prefix ending in ``/``.

    :raises GateError: nothing there, or a directory / prefix without a data file.
    """
    if location.startswith("s3://"):
        return _list_s3(location)
    path = Path(_strip_file_scheme(location))
    if not path.exists():
        raise GateError(f"{location} does not exist")
    if path.is_file():
        return [Part(str(path), path.stat().st_size)]
    if not path.is_dir():
        raise GateError(f"{location} is not a regular file or a directory")
    parts = [
        Part(str(child), child.stat().st_size)
        for child in sorted(path.rglob("*"))
        if child.is_file()
        and _is_data_file(child.name)
        and not any(p.startswith((".", "_")) for p in child.relative_to(path).parts[:-1])
    ]
    if not parts:
        raise GateError(f"{location} is a directory without a CSV or Parquet part file")
    return parts


def _list_s3(location: str) -> list[Part]:
    from airflow_mlsecops.io.artifacts import _s3_errors, _split_s3, s3_client

    bucket, key = _split_s3(location)
    client = s3_client()
    try:
        if key and not key.endswith("/"):
            head = client.head_object(Bucket=bucket, Key=key)
            return [Part(location, int(head["ContentLength"]))]
        parts = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                name = item["Key"]
                if name.endswith("/") or not _is_data_file(name):
                    continue
                parts.append(Part(f"s3://{bucket}/{name}", int(item["Size"])))
    except Exception as exc:
        raise _s3_errors(location, exc) from exc
    if not parts:
        raise GateError(f"{location} holds no CSV or Parquet object")
    return sorted(parts, key=lambda part: part.location)


def should_stream(location: str, batch_rows: int | None) -> bool:
    """Whether a gate should read ``location`` in batches: asked to (``batch_rows``), a directory or
    ``s3://`` prefix (several parts), or a file of at least :data:`STREAM_THRESHOLD_BYTES`."""
    if batch_rows is not None:
        return True
    if location.startswith("s3://"):
        return location.endswith("/")
    path = Path(_strip_file_scheme(location))
    return path.is_dir() or (path.is_file() and path.stat().st_size >= STREAM_THRESHOLD_BYTES)


class _HashingReader:
    """A read-only binary stream that hashes every byte handed to its reader."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def _open_local(path: str) -> IO[bytes]:
    from airflow_mlsecops.evidence.digest import _open_regular

    return open(_open_regular(path), "rb")


def _private_copy(part: Part, folder: Path) -> tuple[Path, str, int]:
    """Copy ``part`` into ``folder`` while hashing it; the copy is what gets parsed."""
    target = folder / f"part-{hashlib.sha256(part.location.encode()).hexdigest()[:16]}"
    hasher = hashlib.sha256()
    size = 0
    if part.location.startswith("s3://"):
        from airflow_mlsecops.io.artifacts import _s3_errors, _split_s3, s3_client

        bucket, key = _split_s3(part.location)
        try:
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
            with open(target, "wb") as out:
                for chunk in iter(lambda: body.read(_CHUNK), b""):
                    hasher.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except Exception as exc:
            raise _s3_errors(part.location, exc) from exc
    else:
        with _open_local(part.location) as src, open(target, "wb") as out:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
    return target, hasher.hexdigest(), size


def _magic(part: Part) -> bytes:
    if part.location.startswith("s3://"):
        return b""  # decided on the private copy
    with _open_local(part.location) as fh:
        return fh.read(4)


class TableStream:
    """A data set read as pandas frames of at most ``batch_rows`` rows, hashed as it is read.

    :param location: a CSV or Parquet file, a directory of part files, or an ``s3://`` object or
        prefix (``s3://bucket/table/``); ``file://`` allowed.
    :param batch_rows: rows per frame (at most; Parquet row groups and CSV blocks may cut earlier).
    :param csv_delimiter: delimiter of CSV parts (default ``,``).
    :param columns: read only these columns (every part must have them).
    :param infer_bytes: CSV bytes used to infer column types.
    """

    def __init__(
        self,
        location: str,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        csv_delimiter: str | None = None,
        columns: Sequence[str] | None = None,
        infer_bytes: int = DEFAULT_INFER_BYTES,
    ) -> None:
        if batch_rows < 1:
            raise GateError(f"batch_rows must be at least 1, got {batch_rows}")
        self.location = location
        self.batch_rows = int(batch_rows)
        self.csv_delimiter = csv_delimiter or ","
        self.selected = tuple(columns) if columns is not None else None
        self.infer_bytes = int(infer_bytes)
        self.parts = tuple(list_parts(location))
        self.subjects: list[Subject] = []
        self.rows = 0
        self.size_bytes = 0
        self.formats: set[str] = set()
        self._columns: tuple[str, ...] | None = None
        self._csv_types: dict[str, Any] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The data set's columns (read from the first part's header when no pass has been made)."""
        if self._columns is None:
            for _ in self.frames(limit_parts=1, peek=True):
                break
        assert self._columns is not None
        return self._columns

    def frames(self, *, limit_parts: int | None = None, peek: bool = False) -> Iterator[pd.DataFrame]:
        """One pass over the data set, frame by frame; :attr:`subjects`, :attr:`rows` and
        :attr:`size_bytes` describe that pass once it has finished."""
        for batch in self.batches(limit_parts=limit_parts, peek=peek):
            yield batch.to_pandas()

    def batches(self, *, limit_parts: int | None = None, peek: bool = False) -> Iterator[pa.RecordBatch]:
        """One pass over the data set as Arrow record batches (see :meth:`frames`)."""
        if not peek:
            self.subjects, self.rows, self.size_bytes = [], 0, 0
        with tempfile.TemporaryDirectory(prefix="mlsecops-stream-") as tmp:
            for part in self.parts[:limit_parts]:
                yield from self._part_batches(part, Path(tmp), peek)

    def _check_header(self, part: Part, names: Sequence[str]) -> None:
        repeated = repeated_labels(names)
        if repeated:
            raise duplicate_columns_error(part.location, repeated)
        header = tuple(str(name) for name in names)
        if self.selected is not None:
            missing = [c for c in self.selected if c not in header]
            if missing:
                raise GateError(f"{part.location} has no column(s) {', '.join(map(repr, missing))}")
            header = self.selected
        if self._columns is None:
            self._columns = header
        elif header != self._columns:
            raise GateError(
                f"{part.location} has the columns {list(header)}, other parts of {self.location} have {list(self._columns)}: "
                "the parts of one data set must share their columns"
            )

    def _part_batches(self, part: Part, tmp: Path, peek: bool) -> Iterator[pa.RecordBatch]:
        remote = part.location.startswith("s3://")
        magic = _magic(part)
        if remote or magic == PARQUET_MAGIC:
            local, digest, size = _private_copy(part, tmp)
            with open(local, "rb") as fh:
                magic = fh.read(4)
            if magic == PARQUET_MAGIC:
                self.formats.add("parquet")
                yield from self._count(self._parquet_batches(part, local), peek)
            else:
                self.formats.add("csv")
                with open(local, "rb") as fh:
                    yield from self._count(self._csv_batches(part, fh), peek)
            self._finish(part, digest, size, peek)
            return
        self.formats.add("csv")
        with _open_local(part.location) as raw:
            reader = _HashingReader(raw)
            yield from self._count(self._csv_batches(part, reader), peek)
            if peek:
                return
            for _ in iter(lambda: reader.read(_CHUNK), b""):
                pass  # hash what the parser did not need (trailing bytes)
            self._finish(part, reader.hasher.hexdigest(), reader.size, peek)

    def _count(self, batches: Iterator[pa.RecordBatch], peek: bool) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if not peek:
                self.rows += batch.num_rows
            yield batch
            if peek:
                return

    def _finish(self, part: Part, digest: str, size: int, peek: bool) -> None:
        if peek:
            return
        from airflow_mlsecops.io.artifacts import subject_name

        self.subjects.append(Subject(subject_name(part.location), digest))
        self.size_bytes += size

    def _parquet_batches(self, part: Part, local: Path) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            handle = pq.ParquetFile(local, pre_buffer=False)  # pre-buffering keeps row groups: memory grew with the file
        except (pa.ArrowException, OSError) as exc:
            raise GateError(f"{part.location} is not a readable Parquet file: {exc}") from exc
        self._check_header(part, handle.schema_arrow.names)
        try:
            yield from handle.iter_batches(batch_size=self.batch_rows, columns=list(self.selected) if self.selected else None)
        except (pa.ArrowException, OSError) as exc:
            raise GateError(f"{part.location} cannot be read as Parquet: {exc}") from exc

    def _csv_batches(self, part: Part, stream: Any) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        read_options = pacsv.ReadOptions(block_size=self.infer_bytes, encoding="utf8")
        parse_options = pacsv.ParseOptions(delimiter=self.csv_delimiter)
        convert_options = pacsv.ConvertOptions(
            column_types=self._csv_types or {},
            include_columns=list(self.selected) if self.selected else None,
        )
        try:
            reader = pacsv.open_csv(
                stream, read_options=read_options, parse_options=parse_options, convert_options=convert_options
            )
        except pa.ArrowKeyError as exc:  # a selected column the header does not have
            raise GateError(f"{part.location} has no column(s) {', '.join(map(repr, self.selected or ()))}: {exc}") from exc
        except pa.ArrowInvalid as exc:
            raise GateError(f"{part.location} is not well-formed CSV: {exc}") from exc
        names = reader.schema.names
        if self.selected is None:
            self._check_header(part, names)
        else:
            self._check_header(part, self.selected)
        if self._csv_types is None:
            self._csv_types = {field.name: field.type for field in reader.schema}  # later parts parse alike
        read = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise GateError(
                    f"{part.location}: a value after row {read:,} does not fit its column's type, which was inferred from "
                    f"the first {self.infer_bytes:,} bytes ({exc}); read it on the in-memory path, or fix the column"
                ) from exc
            read += batch.num_rows
            for start in range(0, batch.num_rows, self.batch_rows):
                yield batch.slice(start, self.batch_rows)


@contextlib.contextmanager
def open_stream(location: str, **options: Any) -> Iterator[TableStream]:
    """:class:`TableStream` as a context manager (for symmetry with the in-memory loaders)."""
    yield TableStream(location, **options)


def describe_stream(stream: TableStream) -> dict[str, Any]:
    """What the evidence records about a streamed read: parts, rows, bytes, batch size, formats."""
    return {
        "streamed": True,
        "parts": len(stream.parts),
        "rows": stream.rows,
        "size_bytes": stream.size_bytes,
        "batch_rows": stream.batch_rows,
        "formats": sorted(stream.formats),
    }


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux ``ru_maxrss`` is in KiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024 if os.name == "posix" else 0
