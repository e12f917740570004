"""The PII scan as a Spark job (``engine="spark"``): the same detectors, the same findings as pandas.

Spark reads the data set (a CSV or Parquet file, or a directory of part files); the scan itself runs
in the executors through ``mapInPandas`` with this package's detectors (:mod:`.scanning`: Unicode
normalisation, escapes, Luhn, mod-97... need Python), each Arrow batch recorded as a
:class:`~.state.ColumnState`; the driver merges them in file order and applies the column rules
once, so the counts, samples, notes and verdict are those of the in-memory scan of the same file.

**CSV types as pandas reads them.** Spark reads every CSV column as text; the values pandas reads as
missing (``""``, ``NA``, ``null``...) are made missing, and a column is typed with Spark's own
regular expressions (``rlike``) over the whole column, as pandas would type it: integers
(``float64`` when a value is missing), floats, booleans, text. Quoted fields may span lines
(``multiLine``), ``""`` escapes a quote, and a malformed row fails the job (``FAILFAST``): an
``error`` verdict, never a row left out.

**What the evidence names.** Spark reads the files itself, so the driver hashes every part before
the job and again after it; a part that changed in between is an ``error`` verdict. Executors must
have ``airflow-mlsecops`` installed (the detectors run there). ``s3://`` data: stream it with the
pandas engine (``batch_rows``), which hashes what it reads.

``max_rows``: the rows of :func:`~.streaming.reservoir_rows` (the sample a streamed scan draws with the
same seed), numbered in file order; only they are scanned.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.pii.report import ScanSource
from airflow_mlsecops.gates.pii.state import ColumnState

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from airflow_mlsecops.evidence.models import Subject

#: Java regular expressions that type a CSV column as pandas does (over the values not missing).
_INT = r"^[+-]?[0-9]+$"
_FLOAT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^[+-]?(?i:inf|infinity)$"
_BOOL = ("True", "TRUE", "true", "False", "FALSE", "false")
_FILE, _START = "__mlsecops_file", "__mlsecops_start"
#: Rows of the first part used to infer identifier columns (as the first batch of a stream).
_FIRST_ROWS = 65_536


@dataclass
class SparkScan:
    """What the Spark job saw: the merged states, rows scanned, the first rows, the source."""

    states: list[ColumnState]
    rows_scanned: int
    first: pd.DataFrame
    elapsed: float
    source: ScanSource


def _hash_parts(location: str) -> list[Subject]:
    from airflow_mlsecops.evidence.digest import sha256_file
    from airflow_mlsecops.evidence.models import Subject
    from airflow_mlsecops.io.artifacts import subject_name
    from airflow_mlsecops.io.batches import list_parts

    return [Subject(subject_name(part.location), sha256_file(part.location)) for part in list_parts(location)]


def _format(location: str) -> str:
    """``csv`` or ``parquet``: every part must be the same (Spark reads one format)."""
    from airflow_mlsecops.io.batches import list_parts
    from airflow_mlsecops.io.tabular import PARQUET_MAGIC

    kinds = set()
    for part in list_parts(location):
        with open(part.location, "rb") as fh:
            kinds.add("parquet" if fh.read(4) == PARQUET_MAGIC else "csv")
    if len(kinds) > 1:
        raise GateError(f"{location} mixes CSV and Parquet parts: Spark reads one format")
    return kinds.pop()


def _csv_types(frame: DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """Each column's type as pandas would read it: ``int64``, ``float64``, ``bool`` or ``object``."""
    from pyspark.sql import functions as F

    aggregates = []
    for index, name in enumerate(columns):
        column = F.col(f"`{name}`")
        aggregates += [
            F.count(column).alias(f"n{index}"),
            F.count_if(column.rlike(_INT) & column.try_cast("long").isNotNull()).alias(f"i{index}"),
            F.count_if(column.rlike(_FLOAT) | column.rlike(_INT)).alias(f"f{index}"),
            F.count_if(column.isin(*_BOOL)).alias(f"b{index}"),
        ]
    aggregates.append(F.count(F.lit(1)).alias("rows"))
    counts = frame.agg(*aggregates).collect()[0].asDict()
    types: dict[str, str] = {}
    for index, name in enumerate(columns):
        present = counts[f"n{index}"]
        missing = present < counts["rows"]
        if present == 0:
            types[name] = "float64"  # pandas reads a column of missing values as float
        elif counts[f"i{index}"] == present:
            types[name] = "float64" if missing else "int64"
        elif counts[f"f{index}"] == present:
            types[name] = "float64"
        elif counts[f"b{index}"] == present and not missing:
            types[name] = "bool"
        else:
            types[name] = "object"
    return types


def _read(spark: SparkSession, location: str, fmt: str, csv_delimiter: str | None, columns: Sequence[str]) -> DataFrame:
    """The data set as Spark reads it, typed as pandas reads it, with each row's file and split start."""
    from pandas._libs.parsers import STR_NA_VALUES
    from pyspark.sql import functions as F

    path = str(Path(location).resolve())
    if fmt == "parquet":
        frame = spark.read.parquet(path)
    else:
        frame = (
            spark.read.option("header", True)
            .option("sep", csv_delimiter or ",")
            .option("quote", '"')
            .option("escape", '"')
            .option("multiLine", True)
            .option("mode", "FAILFAST")
            .option("inferSchema", False)
            .option("encoding", "UTF-8")
            .option("enforceSchema", False)
            .csv(path)
        )
        na = sorted(STR_NA_VALUES)
        frame = frame.select(
            *(F.when(F.col(f"`{c}`").isin(*na), F.lit(None)).otherwise(F.col(f"`{c}`")).alias(c) for c in columns),
            F.col("_metadata.file_path").alias(_FILE),
            F.col("_metadata.file_block_start").alias(_START),
        )
        types = _csv_types(frame, columns)
        casts = {"int64": "long", "float64": "double"}
        converted = []
        for c in columns:
            column = F.col(f"`{c}`")
            if types[c] in casts:
                column = column.cast(casts[types[c]])
            elif types[c] == "bool":
                column = F.lower(column) == F.lit("true")
            converted.append(column.alias(c))
        return frame.select(*converted, _FILE, _START)
    return frame.select(
        *(F.col(f"`{c}`") for c in columns),
        F.col("_metadata.file_path").alias(_FILE),
        F.col("_metadata.file_block_start").alias(_START),
    )


def _scan_batches(types: Sequence[str], columns: Sequence[str], offsets: dict[tuple[str, int], int] | None, sample: Any) -> Any:
    """The ``mapInPandas`` function: each batch's states as JSON, keyed by file, split start and sequence."""

    def scan(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import numpy as np
        import pandas as pd

        from airflow_mlsecops.gates.pii.scanning import observe_frame

        seen: dict[tuple[str, int], int] = {}
        sequence = 0
        for batch in batches:
            keys = list(zip(batch[_FILE].tolist(), batch[_START].tolist(), strict=True))
            data = batch.drop(columns=[_FILE, _START])
            data.columns = list(columns)
            bounds = [0, *(i for i in range(1, len(keys)) if keys[i] != keys[i - 1]), len(keys)]
            out = []
            for lo, hi in itertools.pairwise(bounds):
                if lo == hi:
                    continue
                key = (str(keys[lo][0]), int(keys[lo][1]))
                part = data.iloc[lo:hi]
                first_row = seen.get(key, 0)
                seen[key] = first_row + (hi - lo)
                if sample is not None and offsets is not None:
                    start = offsets[key] + first_row
                    wanted = sample[(sample >= start) & (sample < start + hi - lo)] - start
                    part = part.iloc[np.asarray(wanted, dtype=np.int64)]
                states = observe_frame(part.reset_index(drop=True), types, whole=False)
                out.append((key[0], key[1], sequence, json.dumps([s.to_json() for s in states])))
                sequence += 1
            if out:
                yield pd.DataFrame(out, columns=["file", "start", "sequence", "states"])

    return scan


def scan_with_spark(
    location: str,
    types: Sequence[str],
    *,
    limit: int | None,
    seed: int | None,
    csv_delimiter: str | None,
    master: str | None,
) -> SparkScan:
    """Scan the data set at ``location`` on a Spark session on ``master`` (see the module docstring).

    :raises ConfigurationError: no pyspark or Java, or an ``s3://`` location.
    :raises GateError: an unreadable data set, or a part that changed while Spark read it.
    """
    from airflow_mlsecops.gates.pii.scanning import observe_frame
    from airflow_mlsecops.gates.pii.streaming import reservoir_rows
    from airflow_mlsecops.io.batches import TableStream
    from airflow_mlsecops.io.spark import spark_session

    if "://" in location and not location.startswith("file://"):
        raise ConfigurationError(
            f"engine='spark' reads local or shared-filesystem paths, not {location}: "
            "read s3:// data in batches with the pandas engine (batch_rows), which hashes what it reads"
        )
    location = location.removeprefix("file://")
    before = _hash_parts(location)
    columns = list(TableStream(location, csv_delimiter=csv_delimiter).columns)  # repeated or differing headers: GateError
    fmt = _format(location)
    spark = spark_session(master)
    started = time.perf_counter()
    try:
        frame = _read(spark, location, fmt, csv_delimiter, columns)
        groups = sorted((str(r[_FILE]), int(r[_START]), int(r["count"])) for r in frame.groupBy(_FILE, _START).count().collect())
        total = sum(count for _, _, count in groups)
        offsets: dict[tuple[str, int], int] = {}
        running = 0
        for file, start, count in groups:
            offsets[(file, start)] = running
            running += count
        sample = reservoir_rows(total, limit, seed or 0) if limit is not None and limit < total else None
        first_key = groups[0][:2] if groups else None
        first_frame = frame
        if first_key is not None:
            first_frame = frame.where((frame[_FILE] == first_key[0]) & (frame[_START] == first_key[1]))
        first: pd.DataFrame = first_frame.drop(_FILE, _START).limit(_FIRST_ROWS).toPandas()
        first.columns = columns
        schema = "file string, start long, sequence long, states string"
        rows = frame.mapInPandas(_scan_batches(tuple(types), columns, offsets, sample), schema).collect()
    except (ConfigurationError, GateError):
        raise
    except Exception as exc:  # Spark's errors (a malformed row, an unreadable file) become an error verdict
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GateError(f"Spark could not scan {location}: {message}") from exc
    rank = {key: index for index, key in enumerate((file, start) for file, start, _ in groups)}
    ordered = sorted(rows, key=lambda r: (rank.get((r["file"], int(r["start"])), len(rank)), int(r["sequence"])))
    states: list[ColumnState] | None = None
    for row in ordered:
        found = [ColumnState.from_json(s) for s in json.loads(row["states"])]
        if states is None:
            states = found
        else:
            for mine, theirs in zip(states, found, strict=True):
                mine.merge(theirs)
    if states is None:
        states = observe_frame(first.iloc[:0], types)
    elapsed = time.perf_counter() - started
    after = _hash_parts(location)
    if [s.sha256 for s in after] != [s.sha256 for s in before] or [s.name for s in after] != [s.name for s in before]:
        raise GateError(f"{location} changed while Spark read it: the evidence could not name what was scanned")
    scanned = len(sample) if sample is not None else total
    source = ScanSource(
        name=Path(location.rstrip("/")).name,
        subjects=before,
        format=fmt,
        rows_total=total,
        engine="spark",
        sampling="reservoir",
        extra={"spark": {"master": spark.sparkContext.master, "version": spark.version, "splits": len(groups)}},
    )
    return SparkScan(states=states, rows_scanned=scanned, first=first, elapsed=elapsed, source=source)
