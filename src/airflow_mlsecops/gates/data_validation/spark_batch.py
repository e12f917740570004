"""The batch of the Spark engine: the bytes hashed, then read by Spark (CSV with header, Parquet, a directory of parts).

**What is judged is what is named.** Every part file is hashed by the driver. On a ``local[...]``
master (driver and executors on one machine) each part is first copied, while it is hashed, into a
private temporary directory, and Spark reads the copies: a file changed or swapped during the check
cannot make the evidence name bytes the gate never saw (as on the pandas engine, which parses the
bytes it hashed). On a cluster master the executors cannot see the driver's temporary directory:
the parts are hashed where they are and Spark reads them there *after* hashing, so a file swapped
in that window would be judged under the digest of the bytes before it. That window is a
documented limit of the Spark engine on a cluster (``details["spark"]["read_after_hash"]``); keep
the data on storage the pipeline alone writes, or use ``local[...]``. A data set larger than
:data:`SNAPSHOT_MAX_BYTES` is not copied either (same limit, same record).

Spark is given the exact list of hashed part files (never the directory), so it cannot read a
file that was not hashed. Every part must have the same header; a repeated column name is refused
(Spark would rename the copies, pandas would keep one), and Spark's columns must be the header's.
"""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.io.artifacts import subject_name
from airflow_mlsecops.io.batches import Part, _private_copy, list_parts
from airflow_mlsecops.io.tabular import PARQUET_MAGIC, duplicate_columns_error, repeated_labels

#: A data set up to this size is copied to a private snapshot before Spark reads it (local masters only).
SNAPSHOT_MAX_BYTES = 16 * 1024**3
_HEADER_BYTES = 1024 * 1024


@dataclass
class SparkBatch:
    """A data set read by Spark, and what the evidence says about how."""

    frame: Any
    subjects: list[Subject]
    format: str
    size_bytes: int
    columns: list[str]
    details: dict[str, Any] = field(default_factory=dict)


def _csv_header(path: Path, delimiter: str, location: str) -> list[str]:
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_BYTES)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(head) < _HEADER_BYTES or exc.start < head.find(b"\n"):
            raise GateError(f"{location} is not UTF-8 text (CSV) nor Parquet") from exc
        text = head[: exc.start].decode("utf-8-sig")
    if not text.strip():
        return []
    return next(csv.reader(io.StringIO(text), delimiter=delimiter))


def _parquet_header(path: Path, location: str) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise GateError(f"{location} is not a readable Parquet file: {exc}") from exc


def _hash_in_place(part: Part) -> tuple[Path, str, int]:
    if part.location.startswith("s3://"):
        raise ConfigurationError(
            f"{part.location}: the Spark engine on a cluster master reads shared paths the executors can see, "
            "not s3:// objects through the driver; use a local[...] master (the object is copied first) or the pandas engine"
        )
    path = Path(part.location)
    return path, sha256_file(path), path.stat().st_size


@contextlib.contextmanager
def open_spark_batch(location: str, session: Any, *, csv_delimiter: str | None, local_master: bool) -> Iterator[SparkBatch]:
    """Hash (and on a local master, snapshot) every part of ``location``, then read them with Spark.

    The batch is valid inside the ``with`` block only (Spark reads lazily, and the snapshot is
    removed when the block ends).

    :raises GateError: nothing there, mixed formats, different headers, a repeated column name.
    """
    parts = list_parts(location)
    total = sum(part.size_bytes for part in parts)
    snapshot = local_master and total <= SNAPSHOT_MAX_BYTES
    delimiter = csv_delimiter or ","
    with tempfile.TemporaryDirectory(prefix="mlsecops-spark-") as tmp:
        read: list[Path] = []
        subjects: list[Subject] = []
        formats: set[str] = set()
        header: list[str] | None = None
        size = 0
        for part in parts:
            path, digest, part_size = _private_copy(part, Path(tmp)) if snapshot else _hash_in_place(part)
            subjects.append(Subject(subject_name(part.location), digest))
            size += part_size
            with open(path, "rb") as fh:
                parquet = fh.read(4) == PARQUET_MAGIC
            formats.add("parquet" if parquet else "csv")
            names = _parquet_header(path, part.location) if parquet else _csv_header(path, delimiter, part.location)
            repeated = repeated_labels(names)
            if repeated:
                raise duplicate_columns_error(part.location, repeated)
            if header is None:
                header = names
            elif names != header:
                raise GateError(
                    f"{part.location} has the columns {names}, other parts of {location} have {header}: "
                    "the parts of one data set must share their columns"
                )
            read.append(path)
        if len(formats) > 1:
            raise GateError(f"{location} mixes CSV and Parquet parts; one data set has one format")
        fmt = formats.pop()
        paths = [str(p) for p in read]
        try:
            if fmt == "parquet":
                frame = session.read.parquet(*paths)
            else:
                frame = (
                    session.read.option("header", True)
                    .option("inferSchema", True)
                    .option("sep", delimiter)
                    .option("mode", "FAILFAST")
                    .option("enforceSchema", False)
                    .csv(paths)
                )
        except Exception as exc:
            raise GateError(f"Spark cannot read {location} as {fmt}: {type(exc).__name__}: {exc}") from exc
        if [str(c) for c in frame.columns] != list(header or []) and (header or frame.columns):
            raise GateError(
                f"Spark read the columns {frame.columns} from {location}, whose header is {header}; refusing to guess"
            )
        yield SparkBatch(
            frame=frame,
            subjects=subjects,
            format=fmt,
            size_bytes=size,
            columns=list(header or []),
            details={
                "parts": len(parts),
                "snapshot": snapshot,
                "read_after_hash": not snapshot,
                "how": "parts copied to a private snapshot while hashed; Spark read the snapshot"
                if snapshot
                else "parts hashed in place, then read there by Spark (a file swapped in between is not detected)",
            },
        )
