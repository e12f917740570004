"""The drift gate on data larger than memory: each side read in batches and summarised by a bounded sketch.

Each side is read with :class:`~airflow_mlsecops.io.batches.TableStream` (a file, a directory of
part files or an ``s3://`` prefix, every part hashed while it is read) and reduced, batch by batch,
to a *sketch*:

- a uniform sample of at most ``max_rows`` rows without replacement: every row gets a random key
  from a generator seeded with the run's ``random_state`` and the sample is the rows with the
  smallest keys (bottom-k reservoir sampling). The keys depend on the seed and the row's position
  only, not on the batch size, so the recorded seed reproduces the sample;
- the exact count of missing values per column, over every row (the missing-share test reads them).

Evidently then compares the two samples, as on the in-memory path it compares the two sampled frames.
Column roles (identifiers recognised from their values) are resolved on the reference's first batch:
a running number is consecutive there, not in a sample. Peak memory is about the two samples plus one
batch, whatever the size of the data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import GateError
from airflow_mlsecops.gates.drift.columns import check_frames, select_columns
from airflow_mlsecops.gates.drift.comparison import missing_shares
from airflow_mlsecops.gates.drift.report import Compared
from airflow_mlsecops.gates.drift.thresholds import SKETCH_METHOD

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlsecops.evidence.models import Subject
    from airflow_mlsecops.io.tabular import LoadedTable


class Reservoir:
    """A uniform sample of at most ``size`` rows of a sequence of frames (bottom-k of seeded random keys).

    >>> import pandas as pd
    >>> reservoir = Reservoir(3, seed=7)
    >>> for start in range(0, 10, 4):
    ...     reservoir.add(pd.DataFrame({"x": range(start, min(start + 4, 10))}))
    >>> len(reservoir.frame()), reservoir.seen
    (3, 10)
    """

    def __init__(self, size: int, seed: int) -> None:
        import numpy as np

        self.size = int(size)
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._keys = np.empty(0)
        self._positions = np.empty(0, dtype=np.int64)
        self._rows: pd.DataFrame | None = None

    def add(self, frame: pd.DataFrame) -> None:
        """Offer every row of ``frame`` (the next rows of the sequence)."""
        import numpy as np
        import pandas as pd

        n = len(frame)
        keys = self._rng.random(n)
        positions = np.arange(self.seen, self.seen + n, dtype=np.int64)
        self.seen += n
        if n == 0:
            if self._rows is None:
                self._rows = frame.iloc[:0].reset_index(drop=True)
            return
        if len(self._keys) >= self.size:
            keep = keys < self._keys.max()  # only a row that beats the largest key kept can enter
            if not keep.any():
                return
            frame, keys, positions = frame.iloc[np.flatnonzero(keep)], keys[keep], positions[keep]
        rows = frame.reset_index(drop=True)
        if self._rows is not None and len(self._rows):
            rows = pd.concat([self._rows, rows], ignore_index=True)
        keys = np.concatenate([self._keys, keys])
        positions = np.concatenate([self._positions, positions])
        if len(keys) > self.size:
            chosen = np.argpartition(keys, self.size - 1)[: self.size]
            rows, keys, positions = rows.iloc[chosen].reset_index(drop=True), keys[chosen], positions[chosen]
        self._rows, self._keys, self._positions = rows, keys, positions

    def frame(self) -> pd.DataFrame:
        """The sample in the order of the rows in the data, indexed by their 0-based positions."""
        import numpy as np
        import pandas as pd

        if self._rows is None:
            return pd.DataFrame()
        order = np.argsort(self._positions, kind="stable")
        out = self._rows.iloc[order]
        out.index = pd.Index(self._positions[order])
        return out


@dataclass
class Sketch:
    """One side summarised: its sample, exact missing counts and row count, the first batch, what was read."""

    sample: pd.DataFrame
    rows: int
    missing: dict[str, int]
    head: pd.DataFrame
    columns: tuple[str, ...]
    subjects: list[Subject]
    name: str
    format: str
    description: dict[str, Any]


def _frames(data: str | Path | LoadedTable, batch_rows: int, csv_delimiter: str | None, columns: Sequence[str] | None) -> Any:
    """A :class:`TableStream` over ``data``, or a table already loaded sliced into frames of ``batch_rows`` rows."""
    from airflow_mlsecops.io.batches import TableStream
    from airflow_mlsecops.io.tabular import LoadedTable

    if isinstance(data, LoadedTable):
        return _LoadedFrames(data, batch_rows, columns)
    return TableStream(str(data), batch_rows=batch_rows, csv_delimiter=csv_delimiter, columns=columns)


class _LoadedFrames:
    """A table loaded already, read like a stream (its subject is the one file it was loaded from)."""

    def __init__(self, table: LoadedTable, batch_rows: int, columns: Sequence[str] | None) -> None:
        self.table = table
        self.batch_rows = batch_rows
        self.frame = table.frame[list(columns)] if columns is not None else table.frame
        self.columns = tuple(str(c) for c in self.frame.columns)
        self.location = table.subject.name
        self.subjects = [table.subject]
        self.formats = {table.format}

    def frames(self) -> Iterator[pd.DataFrame]:
        for start in range(0, max(len(self.frame), 1), self.batch_rows):
            yield self.frame.iloc[start : start + self.batch_rows]

    def describe(self) -> dict[str, Any]:
        return {"streamed": False, "rows": len(self.frame), "size_bytes": self.table.size_bytes, "batch_rows": self.batch_rows}


def sketch(
    data: str | Path | LoadedTable,
    *,
    size: int,
    seed: int,
    batch_rows: int,
    csv_delimiter: str | None = None,
    columns: Sequence[str] | None = None,
) -> Sketch:
    """Read ``data`` once, batch by batch, into a :class:`Sketch` of at most ``size`` sampled rows.

    :param data: a file, a directory of part files, an ``s3://`` object or prefix, or a table loaded already.
    :param columns: read only these columns (default: all).
    :raises GateError: unreadable data (:class:`~airflow_mlsecops.io.batches.TableStream` names the part).
    """
    from airflow_mlsecops.io.batches import describe_stream

    source = _frames(data, batch_rows, csv_delimiter, columns)
    reservoir = Reservoir(size, seed)
    missing: dict[str, int] = {}
    head: pd.DataFrame | None = None
    for frame in source.frames():
        if head is None:
            head = frame.reset_index(drop=True)
        for column, count in frame.isna().sum().items():
            missing[str(column)] = missing.get(str(column), 0) + int(count)
        reservoir.add(frame)
    sample = reservoir.frame()
    if head is None:  # no batch at all (a part with a header and no rows yields none)
        import pandas as pd

        head = pd.DataFrame(columns=list(source.columns))
        sample = head
    for column in source.columns:
        missing.setdefault(column, 0)
    description = source.describe() if isinstance(source, _LoadedFrames) else describe_stream(source)
    return Sketch(
        sample=sample,
        rows=reservoir.seen,
        missing=missing,
        head=head,
        columns=tuple(source.columns),
        subjects=list(source.subjects),
        name=str(source.location),
        format="+".join(sorted(source.formats)) or "unknown",
        description=description,
    )


def _peek_columns(data: str | Path | LoadedTable, csv_delimiter: str | None) -> tuple[str, ...]:
    from airflow_mlsecops.io.batches import TableStream
    from airflow_mlsecops.io.tabular import LoadedTable

    if isinstance(data, LoadedTable):
        return tuple(str(c) for c in data.frame.columns)
    return TableStream(str(data), batch_rows=1, csv_delimiter=csv_delimiter).columns


def compare_streamed(
    reference: str | Path | LoadedTable,
    current: str | Path | LoadedTable,
    *,
    columns: Sequence[str] | None,
    roles: Mapping[str, Any] | None,
    size: int,
    seed: int,
    seed_source: str,
    batch_rows: int | None,
    csv_delimiter: str | None,
    max_missing_change: float,
    allow_empty: bool,
) -> Compared:
    """Sketch both sides (reference first: the column roles come from its first batch) and say what Evidently compares."""
    from airflow_mlsecops.io.batches import DEFAULT_BATCH_ROWS

    rows_per_batch = batch_rows or DEFAULT_BATCH_ROWS
    ref = sketch(reference, size=size, seed=seed, batch_rows=rows_per_batch, csv_delimiter=csv_delimiter)
    cur_columns = _peek_columns(current, csv_delimiter)
    selected, absent, column_roles = select_columns(ref.head, cur_columns, columns, roles)
    # Only the compared columns of the batch are parsed; its digest still covers every byte.
    cur = sketch(current, size=size, seed=seed, batch_rows=rows_per_batch, csv_delimiter=csv_delimiter, columns=selected)
    names = Path(ref.name.rstrip("/")).name, Path(cur.name.rstrip("/")).name
    if absent and cur.rows == 0:
        raise GateError(f"the current data has no column {', '.join(map(repr, absent[:10]))}")
    ref_sample, cur_sample = ref.sample[selected], cur.sample[selected]
    present = (
        {c: ref.rows - ref.missing[c] for c in selected},
        {c: cur.rows - cur.missing[c] for c in selected},
    )
    check_frames(ref_sample, cur_sample, selected, names, allow_empty=allow_empty, values=present)
    missing = missing_shares((ref.missing, ref.rows), (cur.missing, cur.rows), selected, max_missing_change) if cur.rows else []
    sampling = {
        "method": SKETCH_METHOD,
        "streamed": True,
        "batch_rows": rows_per_batch,
        "max_rows": size,
        "random_state": seed,
        "seed_source": seed_source,
        "rows_reference": ref.rows,
        "rows_current": cur.rows,
        "rows_reference_compared": len(ref_sample),
        "rows_current_compared": len(cur_sample),
        "sampled_reference": ref.rows > len(ref_sample),
        "sampled_current": cur.rows > len(cur_sample),
        "missing_shares_counted_on": "every row",
        "column_roles_resolved_on_rows": len(ref.head),
    }
    streamed = {
        "reference": ref.description,
        "current": cur.description,
        "sketch": {"method": SKETCH_METHOD, "size": size, "random_state": seed},
        "rows_seen": {"reference": ref.rows, "current": cur.rows},
        "column_roles_resolved_on": f"the first {len(ref.head)} rows of the reference",
    }
    return Compared(
        reference_name=ref.name,
        current_name=cur.name,
        subjects=[*ref.subjects, *cur.subjects],
        formats={"reference": ref.format, "current": cur.format},
        selected=selected,
        absent=absent,
        column_roles=column_roles,
        reference=ref_sample,
        current=cur_sample,
        missing=missing,
        rows_reference=ref.rows,
        rows_current=cur.rows,
        sampling=sampling,
        streamed=streamed,
    )
