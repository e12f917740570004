"""The PII scan of a data set read in bounded batches (:class:`~airflow_mlsecops.io.batches.TableStream`).

Each batch is scanned into a :class:`~.state.ColumnState` per column and the states are merged, so
memory depends on ``batch_rows``, not on the file, and the counts, samples and notes are those the
in-memory scan gives on the same file. With ``max_rows`` below the data set's rows, a sample of
``max_rows`` rows is drawn by reservoir sampling (algorithm R, in file order) with the seed on
record, held in memory (``max_rows`` rows) and scanned at the end; :func:`reservoir_rows` re-draws it.

CSV parts are parsed by Arrow (:mod:`airflow_mlsecops.io.batches`); the cells pandas reads as missing
(``""``, ``NA``, ``null``...) are missing here too, so the column rules count the same values.
Column types come from the first block of the first part: a later value of another type is an
``error`` verdict (read that file on the in-memory path), never a row left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.gates.pii.scanning import observe_frame
from airflow_mlsecops.gates.pii.state import ColumnState

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airflow_mlsecops.io.batches import TableStream

#: Draws of the reservoir are made in chunks of this many rows, whatever the batch size, so a
#: verifier re-draws the same sample (:func:`reservoir_rows`).
DRAW_CHUNK = 65_536


class _Draws:
    """For each row ``i >= size`` in order, a uniform integer in ``[0, i]`` (drawn in fixed chunks)."""

    def __init__(self, size: int, seed: int) -> None:
        import numpy as np

        self.rng = np.random.default_rng(seed)
        self.base = size  # row index of self.buffer[0]
        self.buffer = np.empty(0, dtype=np.int64)
        self.drawn_to = size

    def take(self, start: int, stop: int) -> np.ndarray:
        """The draws of rows ``start`` to ``stop - 1`` (``start >= size``; consecutive calls)."""
        import numpy as np

        while self.drawn_to < stop:
            rows = np.arange(self.drawn_to, self.drawn_to + DRAW_CHUNK, dtype=np.int64)
            self.buffer = np.concatenate([self.buffer, self.rng.integers(0, rows + 1)])
            self.drawn_to += DRAW_CHUNK
        out = self.buffer[start - self.base : stop - self.base]
        self.buffer = self.buffer[stop - self.base :]
        self.base = stop
        return out


def reservoir_rows(rows_total: int, rows_scanned: int, seed: int) -> Any:
    """The row positions a streamed scan with ``max_rows=rows_scanned`` and seed ``seed`` reads (sorted numpy array).

    What a verifier runs to re-draw the sample a streamed report names (``sampling.seed``); rows are
    numbered in file order, the parts of a directory or prefix one after the other, sorted by name.
    """
    import numpy as np

    positions = np.arange(min(rows_scanned, rows_total), dtype=np.int64)
    draws = _Draws(rows_scanned, seed)
    for start in range(rows_scanned, rows_total, DRAW_CHUNK):
        stop = min(start + DRAW_CHUNK, rows_total)
        slots = draws.take(start, stop)
        accepted = slots < rows_scanned
        positions[slots[accepted]] = np.arange(start, stop, dtype=np.int64)[accepted]  # repeated slot: the last row wins
    return np.sort(positions)


class _Reservoir:
    """The rows of a reservoir sample of ``size`` rows, kept as batches go by."""

    def __init__(self, size: int, seed: int) -> None:
        import numpy as np

        self.size = size
        self.draws = _Draws(size, seed)
        self.seen = 0
        self.positions = np.zeros(size, dtype=np.int64)
        self.frame: pd.DataFrame | None = None  # indexed by slot

    def add(self, batch: pd.DataFrame) -> None:
        import numpy as np
        import pandas as pd

        start, count = self.seen, len(batch)
        self.seen += count
        fill = max(0, min(count, self.size - start))
        winner = np.full(self.size, -1, dtype=np.int64)
        winner[start : start + fill] = np.arange(fill, dtype=np.int64)
        if fill < count:
            drawn = self.draws.take(start + fill, start + count)
            accepted = np.flatnonzero(drawn < self.size)
            winner[drawn[accepted]] = accepted + fill  # repeated slot: the last row wins
        slots = np.flatnonzero(winner >= 0)
        rows = winner[slots]
        if not len(slots):
            return
        self.positions[slots] = start + rows
        taken = batch.iloc[rows].set_axis(pd.Index(slots), axis=0)
        if self.frame is None:
            self.frame = taken
        else:
            self.frame = pd.concat([self.frame.drop(index=slots, errors="ignore"), taken])

    def rows(self) -> pd.DataFrame | None:
        """The sampled rows in file order."""
        import numpy as np

        if self.frame is None:
            return None
        order = np.argsort(self.positions[self.frame.index.to_numpy()], kind="stable")
        return self.frame.iloc[order].reset_index(drop=True)


@dataclass
class StreamScan:
    """What the scan of a stream saw: the merged states (or the sample's), rows scanned, the first batch."""

    states: list[ColumnState]
    rows_scanned: int
    first: pd.DataFrame
    elapsed: float


def _pandas_nulls(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells pandas' CSV reader reads as missing (``""``, ``NA``, ``null``...) made missing."""
    import pandas as pd
    from pandas._libs.parsers import STR_NA_VALUES

    na = list(STR_NA_VALUES)
    for index in range(frame.shape[1]):
        column = frame.iloc[:, index]
        if column.dtype == object:
            frame.isetitem(index, column.where(~column.isin(na), None))
        elif isinstance(column.dtype, pd.StringDtype):
            frame.isetitem(index, column.mask(column.isin(na)))
    return frame


def scan_stream(stream: TableStream, types: Sequence[str], *, limit: int | None, seed: int | None) -> StreamScan:
    """Scan every batch of ``stream`` (or a reservoir sample of ``limit`` rows drawn with ``seed``).

    :param types: PII types (resolved); ``seed`` must be given with ``limit``.
    """
    import pandas as pd

    reservoir = _Reservoir(limit, seed or 0) if limit is not None else None
    states: list[ColumnState] | None = None
    first: pd.DataFrame | None = None
    started = time.perf_counter()
    for batch in stream.batches():
        frame = batch.to_pandas()
        if "csv" in stream.formats:
            frame = _pandas_nulls(frame)
        if first is None:
            first = frame
        if reservoir is not None:
            reservoir.add(frame)
            continue
        found = observe_frame(frame, types, whole=False)
        if states is None:
            states = found
        else:
            for mine, theirs in zip(states, found, strict=True):
                mine.merge(theirs)
    columns = list(stream.columns)
    if first is None:
        first = pd.DataFrame(columns=columns)
    rows = stream.rows
    if reservoir is not None:
        sample = reservoir.rows()
        sample = first.iloc[:0] if sample is None else sample
        states, rows = observe_frame(sample, types), len(sample)
    if states is None:
        states = observe_frame(first.iloc[:0], types)
    return StreamScan(states=states, rows_scanned=rows, first=first, elapsed=time.perf_counter() - started)
