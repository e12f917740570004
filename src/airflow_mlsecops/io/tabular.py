"""Load a tabular data file (CSV or Parquet, local or ``s3://``) together with its digest.

The format is decided by content (Parquet's ``PAR1`` magic), not by extension. The digest and the
parsed frame come from the same bytes: a local file that changes while it is read is an error, and
an ``s3://`` object is downloaded once to a private temporary file. ``s3://`` uses boto3 and
honours ``MLSECOPS_S3_ENDPOINT_URL`` (or boto3's own ``AWS_ENDPOINT_URL``) so MinIO and other
S3-compatible stores work.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Subject
from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.io.artifacts import download_s3, subject_name

if TYPE_CHECKING:
    import pandas as pd

PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class LoadedTable:
    frame: pd.DataFrame
    subject: Subject
    format: str
    size_bytes: int


def _stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


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


def load_table(location: str, *, csv_delimiter: str | None = None) -> LoadedTable:
    """Read ``location`` into a DataFrame; raise :class:`GateError` with a clear message if it can't be."""
    import pandas as pd

    with local_copy(location) as path:
        before = _stat_key(path)
        digest = sha256_file(path)
        if before[0] == 0:
            raise GateError(f"{location} is empty")
        with open(path, "rb") as fh:
            head = fh.read(4)
        try:
            if head == PARQUET_MAGIC:
                fmt = "parquet"
                frame = pd.read_parquet(path)
            else:
                fmt = "csv"
                frame = pd.read_csv(path, sep=csv_delimiter or ",", encoding="utf-8", encoding_errors="strict")
        except UnicodeDecodeError as exc:
            raise GateError(f"{location} is not valid UTF-8 text (byte {exc.start}): not a CSV file this gate can read") from exc
        except pd.errors.EmptyDataError as exc:
            raise GateError(f"{location} holds no columns") from exc
        except pd.errors.ParserError as exc:
            raise GateError(f"{location} is not well-formed {fmt.upper()}: {str(exc).strip()}") from exc
        except (ValueError, OSError) as exc:
            raise GateError(f"{location} cannot be parsed as {fmt}: {exc}") from exc
        if _stat_key(path) != before:
            raise GateError(f"{location} changed while it was being read; refusing to judge a moving target")
        if fmt == "csv" and frame.shape[1] == 1 and csv_delimiter is None:
            sample = str(frame.columns[0])
            if any(sep in sample for sep in (";", "\t", "|")):
                raise GateError(
                    f"{location} parsed as a single column {sample[:60]!r}: the delimiter is probably not ','; "
                    "pass the right delimiter"
                )
        return LoadedTable(frame=frame, subject=Subject(subject_name(location), digest), format=fmt, size_bytes=before[0])
