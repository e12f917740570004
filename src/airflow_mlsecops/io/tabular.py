"""Load a tabular data file (CSV or Parquet, local or ``s3://``) together with its digest.

The format is decided by content (Parquet's ``PAR1`` magic), not by extension. The digest and the
parsed frame come from the same bytes: the file is read once into memory, that copy is hashed and
that copy is parsed, so a file swapped between hashing and parsing (even one with the same size
and modification time) cannot make the evidence name bytes the gate never judged. Named pipes,
sockets and devices are refused before anything is read. An ``s3://`` object is downloaded once
to a private temporary file. ``s3://`` uses boto3 and honours ``MLSECOPS_S3_ENDPOINT_URL`` (or
boto3's own ``AWS_ENDPOINT_URL``) so MinIO and other S3-compatible stores work.

Code that uses data a gate judged (a training step) hands the gate's digest on and gets exactly
those bytes, or a :class:`~airflow_mlsecops.exceptions.DigestMismatch`::

    from airflow_mlsecops.io.tabular import load_verified_table, read_verified_bytes

    digest = verified["subjects"][0]["digest"]["sha256"]        # a data gate's XCom "subjects"
    frame = load_verified_table(path, sha256=digest).frame       # read once, checked, parsed
    blob = read_verified_bytes("s3://bucket/tokenizer.json", sha256=other_digest)

The whole file is held in memory while it is parsed (pandas holds the frame anyway).

**A header that repeats a column name is refused** (:class:`~airflow_mlsecops.exceptions.GateError`
naming the columns), for CSV (read from the raw header: pandas would rename the second ``a`` to
``a.1``) and Parquet (from its schema): Great Expectations judges the first copy, other loaders keep
the last, so a poisoned second copy could pass every gate. :func:`repeated_labels` is the check
the gates apply to tables handed to them already loaded.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_mlsecops.evidence.digest import read_file, sha256_bytes
from airflow_mlsecops.evidence.models import Subject
from airflow_mlsecops.exceptions import ConfigurationError, DigestMismatch, GateError
from airflow_mlsecops.io.artifacts import download_s3, subject_name

if TYPE_CHECKING:
    import pandas as pd

PARQUET_MAGIC = b"PAR1"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LoadedTable:
    frame: pd.DataFrame
    subject: Subject
    format: str
    size_bytes: int


def expected_digest(value: object) -> str:
    """``value`` as 64 lower-case hex digits (a ``sha256:`` prefix is allowed).

    :raises ConfigurationError: anything else, including an empty value: a missing digest is never
        "no check".
    """
    text = str(value if value is not None else "").strip().lower().removeprefix("sha256:")
    if not _SHA256_HEX.match(text):
        raise ConfigurationError(f"expected a sha256 digest (64 hex digits), got {value!r}")
    return text


def _check_digest(location: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise DigestMismatch(
            f"{location} hashes to {actual[:16]}..., expected {expected[:16]}...: these are not the bytes "
            "the gate judged; refusing to use them"
        )


@contextlib.contextmanager
def local_copy(location: str) -> Iterator[Path]:
    """Yield a local path for ``location``; ``s3://`` objects are downloaded to a temporary file."""
    if location.startswith("s3://"):
        if location.endswith("/"):
            raise GateError(f"{location} is a prefix; a data file is expected")
        with tempfile.TemporaryDirectory(prefix="mlsecops-s3-") as tmp:
            yield download_s3(location, Path(tmp))
        return
    path = Path(location[len("file://") :] if location.startswith("file://") else location)
    if not path.exists():
        raise GateError(f"{location} does not exist")
    if not path.is_file():
        raise GateError(f"{location} is not a regular file")
    yield path


def read_once(location: str) -> bytes:
    """The bytes of the file at ``location`` (local path, ``file://`` or ``s3://`` object), read once."""
    with local_copy(location) as path:
        return read_file(path)


def read_verified_bytes(location: str, *, sha256: str) -> bytes:
    """The bytes at ``location``, read once, if they hash to ``sha256``.

    :param location: local path, ``file://`` or ``s3://`` object.
    :param sha256: the digest a gate recorded for them (``sha256:`` prefix allowed).
    :raises DigestMismatch: the bytes are not the ones with that digest.
    :raises ConfigurationError: ``sha256`` is not a SHA-256 digest.
    """
    expected = expected_digest(sha256)
    data = read_once(location)
    _check_digest(location, sha256_bytes(data), expected)
    return data


def repeated_labels(labels: Iterable[object]) -> list[str]:
    """The column labels that occur more than once (as text, in first-seen order; ``1`` and ``"1"`` are one label).

    >>> repeated_labels(["age", "income", "age"])
    ['age']
    """
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for label in labels:
        text = str(label)
        if text in seen:
            repeated[text] = None
        seen.add(text)
    return list(repeated)


def duplicate_columns_error(what: str, repeated: Sequence[str]) -> GateError:
    """The error for a table whose header repeats a column name: which copy a tool reads differs
    (Great Expectations judges the first, pandas' CSV reader renames the second to ``name.1``, other
    loaders keep the last), so a poisoned second copy could pass the gates and reach the model."""
    names = ", ".join(repr(name) for name in repeated[:10]) + (f" and {len(repeated) - 10} more" if len(repeated) > 10 else "")
    return GateError(
        f"{what} repeats the column name(s) {names}: tools disagree on which copy they read, so a gate could "
        "judge one copy and training use another; refusing the file"
    )


def _csv_header(data: bytes, delimiter: str) -> list[str]:
    """The raw header cells of CSV ``data`` (before pandas renames repeated ones to ``name.1``)."""
    import csv

    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="replace", newline="")
    if len(delimiter) == 1:
        return next(csv.reader(text, delimiter=delimiter), [])
    return re.split(delimiter, text.readline().rstrip("\r\n"))  # a multi-character separator is a regular expression


def _parquet_header(data: bytes) -> list[str]:
    """The column names of Parquet ``data``, read from its schema (pandas cannot load repeated ones)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(io.BytesIO(data)).names)


def _parse(location: str, data: bytes, csv_delimiter: str | None) -> tuple[pd.DataFrame, str]:
    """Parse ``data`` (the whole file) as Parquet or CSV; :class:`GateError` when it cannot be, or
    when its header repeats a column name."""
    import pandas as pd

    fmt = "parquet" if data[:4] == PARQUET_MAGIC else "csv"
    try:
        header = _parquet_header(data) if fmt == "parquet" else _csv_header(data, csv_delimiter or ",")
    except Exception:  # noqa: BLE001 - a header that cannot be read: the parse below names the problem
        header = []
    repeated = repeated_labels(header)
    if repeated:
        raise duplicate_columns_error(location, repeated)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            frame = pd.read_csv(io.BytesIO(data), sep=csv_delimiter or ",", encoding="utf-8", encoding_errors="strict")
    except UnicodeDecodeError as exc:
        raise GateError(f"{location} is not valid UTF-8 text (byte {exc.start}): not a CSV file this gate can read") from exc
    except pd.errors.EmptyDataError as exc:
        raise GateError(f"{location} holds no columns") from exc
    except pd.errors.ParserError as exc:
        raise GateError(f"{location} is not well-formed {fmt.upper()}: {str(exc).strip()}") from exc
    except (ValueError, OSError) as exc:
        raise GateError(f"{location} cannot be parsed as {fmt}: {exc}") from exc
    if fmt == "csv" and frame.shape[1] == 1 and csv_delimiter is None:
        sample = str(frame.columns[0])
        if any(sep in sample for sep in (";", "\t", "|")):
            raise GateError(
                f"{location} parsed as a single column {sample[:60]!r}: the delimiter is probably not ','; "
                "pass the right delimiter"
            )
    repeated = repeated_labels(frame.columns)
    if repeated:
        raise duplicate_columns_error(location, repeated)
    return frame, fmt


def load_table(location: str, *, csv_delimiter: str | None = None, sha256: str | None = None) -> LoadedTable:
    """Read ``location`` into a DataFrame; raise :class:`GateError` with a clear message if it can't be.

    The file is read once; the subject's digest is of exactly the bytes parsed.

    :param location: local path, ``file://`` or ``s3://`` object.
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param sha256: if given, the digest the bytes must have (:func:`load_verified_table`).
    """
    expected = expected_digest(sha256) if sha256 is not None else None
    data = read_once(location)
    digest = sha256_bytes(data)
    if expected is not None:
        _check_digest(location, digest, expected)
    if not data:
        raise GateError(f"{location} is empty")
    frame, fmt = _parse(location, data, csv_delimiter)
    return LoadedTable(frame=frame, subject=Subject(subject_name(location), digest), format=fmt, size_bytes=len(data))


def load_verified_table(location: str, *, sha256: str, csv_delimiter: str | None = None) -> LoadedTable:
    """The table at ``location``, parsed from bytes read once and checked to hash to ``sha256``.

    What a step that uses data a gate judged calls, with the digest the gate recorded (a data
    gate's XCom ``subjects``): the frame is parsed from the very bytes that were checked, so a swap
    of the file after the check cannot reach it. ``runs:/`` and ``models:/`` files:
    :func:`airflow_mlsecops.io.locations.load_table_at` with ``sha256``.

    :raises DigestMismatch: the file's bytes are not the ones with that digest.
    :raises ConfigurationError: ``sha256`` is not a SHA-256 digest.
    """
    return load_table(location, csv_delimiter=csv_delimiter, sha256=sha256)
