"""The data-integrity gate on data larger than memory: one pass over the reference, one over the batch.

:func:`~airflow_mlsecops.gates.data_integrity.check_integrity` takes this path with ``batch_rows``
set, or when :func:`airflow_mlsecops.io.batches.should_stream` says a location is large (a file of
256 MB or more, a directory of part files, an ``s3://`` prefix). Both inputs are read through
:class:`~airflow_mlsecops.io.batches.TableStream` in frames of ``batch_rows`` rows, every part
hashed as it is read (the evidence names each part). Peak memory depends on ``batch_rows`` and
``sample_rows``, not on the data set, except for the exact duplicate checks (8 bytes a row, below).

How each check scales:

* **Exact, accumulated frame by frame**: ``integrity.schema`` (kinds merged over the frames),
  ``integrity.non_finite``, ``integrity.formula_injection``, ``integrity.label_shift``,
  ``integrity.class_set`` and ``integrity.out_of_range`` (the reference's ranges and categories
  from the first pass; a categorical reference column with more than :data:`MAX_CATEGORIES`
  distinct values is left out of the range check and the report says so).
* **Exact, memory grows with the rows**: ``integrity.duplicates`` and ``integrity.identifiers``
  keep a 64-bit hash of every distinct row (of every identifier) seen so far, in sorted numpy
  runs: 8 bytes per distinct row (80 MB for 10M rows), per identifier column as much again. A hash
  collision (about 3 in a million for 10M rows) can only make a row look repeated, never hide one.
  The ``[row, first_row]`` pairs are not recorded (the first positions are not kept).
* **On a uniform sample**: each side keeps a uniform sample of ``sample_rows`` rows (random keys,
  the smallest kept; seeded with ``random_state``, so reruns draw the same rows whatever
  ``batch_rows`` is). ``integrity.feature_shift`` (KS statistic / total variation distance and
  their tests) and ``integrity.label_flips`` run on the samples, and the reference's duplicate
  share (the baseline ``integrity.duplicates`` subtracts) is measured on a same-size sample of the
  reference sample, as on the in-memory path. With at most ``sample_rows`` rows a side is
  complete and these are the in-memory results exactly.
* **Not performed above the sample**: ``integrity.near_duplicates`` needs every row in one
  KD-tree; a batch larger than ``sample_rows`` makes it ``skipped`` (the verdict ``warned``,
  incomplete, unless something failed). A sample would miss most pairs and understate the share.

Why a sampled statistic is not "incomplete": the shift and flip checks judge a *share* or a
*distance* with a significance test, and a uniform sample of 100,000 rows estimates them to within
a few thousandths (the KS statistic's sampling error is about ``1.36 * sqrt(2 / n)``, 0.006); the
in-memory path already scores label flips on a sample of ``label_flip_max_rows``. The evidence says
which checks ran on a sample and how large (``details["sampled"]``, the check's report, the summary).
Undeclared identifier columns are inferred from the reference's first ``sample_rows`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import Subject
from airflow_mlsecops.gates.columns import ColumnRoles, resolve_roles
from airflow_mlsecops.gates.data_integrity.cells import (
    _formula_result,
    _formula_rows,
    _merge_formula_columns,
    _non_finite_result,
    _non_finite_rows,
)
from airflow_mlsecops.gates.data_integrity.distribution import (
    _class_shares,
    _feature_shift,
    _merge_out_of_range,
    _out_of_range_result,
    _out_of_range_rows,
    _Range,
)
from airflow_mlsecops.gates.data_integrity.duplicates import (
    _duplicates_result,
    _identifiers,
    _identifiers_result,
    _near_duplicates,
    _reference_sample,
)
from airflow_mlsecops.gates.data_integrity.label_flips import _label_flips
from airflow_mlsecops.gates.data_integrity.labels import _label_reason, _label_results
from airflow_mlsecops.gates.data_integrity.report import _Input
from airflow_mlsecops.gates.data_integrity.results import _Check, _rows_text, _skipped
from airflow_mlsecops.gates.data_integrity.schema import (
    _NUMERIC_KINDS,
    _Feature,
    _Frames,
    _keys,
    _kind,
    _model_values,
)
from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airflow_mlsecops.io.batches import TableStream

#: Rows each side keeps in its uniform sample (feature shift, label flips, near-duplicates of small batches).
DEFAULT_SAMPLE_ROWS = 100_000
#: Distinct values of a categorical reference column kept for the range check.
MAX_CATEGORIES = 100_000
#: Sorted hash runs are merged while the result stays below this many entries (bounds the merge's copy).
_MERGE_LIMIT = 4_000_000
SAMPLE_METHOD = "uniform sample without replacement (random keys, smallest kept), seeded with random_state"
HASH_METHOD = (
    "exact: a 64-bit hash of every distinct row seen (pandas hash_pandas_object of the row, numbers as float64), "
    "held in memory, 8 bytes per distinct row"
)


class _SeenHashes:
    """64-bit hashes seen so far, as sorted numpy runs (8 bytes a distinct hash)."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self.runs)

    def add(self, hashes: np.ndarray) -> np.ndarray:
        """Record ``hashes`` (one chunk, in row order); return where each repeats an earlier hash."""
        import numpy as np

        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        repeat = np.empty(len(hashes), dtype=bool)
        repeat[order] = np.concatenate([[False], ordered[1:] == ordered[:-1]])  # stable: the first stays unflagged
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            repeat |= run[at] == hashes
        fresh = np.unique(hashes[~repeat])
        if len(fresh):
            self.runs.append(fresh)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            if len(self.runs[-2]) + len(self.runs[-1]) > _MERGE_LIMIT:
                break
            last = self.runs.pop()
            merged = np.concatenate([self.runs.pop(), last])
            merged.sort(kind="stable")  # two sorted runs: a merge
            self.runs.append(merged)
        return repeat


class _RowSample:
    """A uniform sample without replacement of at most ``size`` rows: each row draws a random key, the
    ``size`` smallest keys are kept. The keys come from one seeded stream, so the sample does not depend
    on how the rows were cut into frames."""

    def __init__(self, size: int, seed: int) -> None:
        import numpy as np

        self.size = size
        self.rng = np.random.default_rng(seed)
        self.frames: list[pd.DataFrame] = []
        self.keys = np.empty(0)
        self.positions = np.empty(0, dtype=np.int64)
        self._rows = 0

    def add(self, frame: pd.DataFrame, offset: int) -> None:
        import numpy as np

        keys = self.rng.random(len(frame))
        positions = offset + np.arange(len(frame), dtype=np.int64)
        if self._rows >= self.size:
            take = keys < self.keys.max()
            if not take.any():
                return
            frame, keys, positions = frame[take], keys[take], positions[take]
        self.frames.append(frame.reset_index(drop=True))
        self.keys = np.concatenate([self.keys, keys])
        self.positions = np.concatenate([self.positions, positions])
        self._rows += len(frame)
        if self._rows > 2 * self.size or (self._rows > self.size and len(self.frames) > 64):
            self._trim()

    def _trim(self) -> None:
        import numpy as np
        import pandas as pd

        whole = pd.concat(self.frames, ignore_index=True) if len(self.frames) > 1 else self.frames[0]
        if len(whole) > self.size:
            keep = np.sort(np.argpartition(self.keys, self.size - 1)[: self.size])
            whole = whole.iloc[keep].reset_index(drop=True)
            self.keys, self.positions = self.keys[keep], self.positions[keep]
        self.frames, self._rows = [whole], len(whole)

    def result(self, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
        """The sample in file order and each row's 0-based position in the data set."""
        import numpy as np
        import pandas as pd

        if not self.frames:
            return pd.DataFrame({c: [] for c in columns}), np.empty(0, dtype=np.int64)
        self._trim()
        order = np.argsort(self.positions, kind="stable")
        frame = self.frames[0].iloc[order].reset_index(drop=True)
        return frame, self.positions[order]


@dataclass
class _ColumnKind:
    """A column's kind merged over the frames: what the whole column would be in pandas."""

    kinds: set[str] = field(default_factory=set)
    whole: bool = True  # every non-missing number is a whole number
    all_bool: bool = True  # every non-missing value of an object column is a bool

    def add(self, series: pd.Series) -> None:
        import numpy as np

        kind = _kind(series)
        self.kinds.add(kind)
        values = series.dropna()
        if self.whole and kind == "float" and len(values):
            self.whole = bool(np.all(np.mod(values.to_numpy(dtype=float), 1.0) == 0))
        if self.all_bool and kind == "string" and len(values):
            from pandas.api.types import infer_dtype

            self.all_bool = infer_dtype(values, skipna=True) == "boolean"

    @property
    def kind(self) -> str:
        if not self.kinds:
            return "float"
        if len(self.kinds) == 1:
            return next(iter(self.kinds))
        if self.kinds <= {"integer", "float"}:
            return "float"  # an integer column with a missing value somewhere: float, as pandas reads it whole
        return "string"

    def compatible(self, ref_kind: str) -> bool:
        """:func:`~airflow_mlsecops.gates.data_integrity.schema._compatible` on the merged column."""
        kind = self.kind
        if kind == ref_kind or (ref_kind == "float" and kind == "integer"):
            return True
        if ref_kind == "integer" and kind == "float":
            return self.whole
        if ref_kind == "bool" and kind == "string":
            return self.all_bool and self.kinds <= {"bool", "string"}
        return False


@dataclass
class _NumericSpan:
    low: float = float("inf")
    high: float = float("-inf")
    finite: int = 0
    total: int = 0


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per row, the same for equal rows in any frame (numbers as float64, other values as text)."""
    import numpy as np
    import pandas as pd

    normal: dict[str, Any] = {}
    for column in frame.columns:
        series = frame[column]
        kind = _kind(series)
        if kind in ("integer", "float", "bool"):
            values = series.to_numpy(dtype=float, na_value=np.nan) + 0.0  # -0.0 == 0.0, as pandas compares
            normal[column] = np.where(np.isnan(values), np.nan, values)
        elif kind in ("datetime", "timedelta"):
            normal[column] = series.astype("int64", errors="ignore") if not series.isna().any() else series.astype(object)
        else:
            normal[column] = _keys(series)  # text as is, other values as their text
    return pd.util.hash_pandas_object(pd.DataFrame(normal), index=False).to_numpy()


class _ReferencePass:
    """What the first pass keeps of the reference: column kinds, ranges, categories, label counts, the head and a sample."""

    def __init__(self, sample_rows: int, label: str | None, seed: int) -> None:
        self.kinds: dict[str, _ColumnKind] = {}
        self.spans: dict[str, _NumericSpan] = {}
        self.categories: dict[str, set[str] | None] = {}
        self.missing: dict[str, int] = {}
        self.label = label
        self.label_counts: dict[str, int] = {}
        self.head: list[pd.DataFrame] = []
        self.head_rows = 0
        self.sample_rows = sample_rows
        self.sample = _RowSample(sample_rows, seed)
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        import numpy as np

        for column in frame.columns:
            series = frame[column]
            self.kinds.setdefault(column, _ColumnKind()).add(series)
            kind = _kind(series)
            if kind in _NUMERIC_KINDS:
                values = _model_values(series, kind)
                finite = values[~np.isnan(values)]
                span = self.spans.setdefault(column, _NumericSpan())
                span.total += len(values)
                span.finite += len(finite)
                if len(finite):
                    span.low, span.high = min(span.low, float(finite.min())), max(span.high, float(finite.max()))
            else:
                keys = _keys(series)
                self.missing[column] = self.missing.get(column, 0) + int(keys.isna().sum())
                seen = self.categories.setdefault(column, set())
                if seen is not None:
                    seen.update(keys.dropna().unique())
                    if len(seen) > MAX_CATEGORIES:
                        self.categories[column] = None
            if column == self.label:
                for key, count in _class_shares(_keys(series)).items():
                    self.label_counts[key] = self.label_counts.get(key, 0) + count
        if self.head_rows < self.sample_rows:
            part = frame.iloc[: self.sample_rows - self.head_rows]
            self.head.append(part)
            self.head_rows += len(part)
        self.sample.add(frame, self.rows)
        self.rows += len(frame)

    def head_frame(self, columns: list[str]) -> pd.DataFrame:
        import pandas as pd

        return pd.concat(self.head, ignore_index=True) if self.head else pd.DataFrame({c: [] for c in columns})

    def range_of(self, feature: _Feature) -> _Range:
        if feature.numeric:
            span = self.spans.get(feature.name, _NumericSpan())
            if not span.finite:
                return _Range(numeric=True, complete=False)
            return _Range(numeric=True, complete=span.finite == span.total, low=span.low, high=span.high)
        return _Range(numeric=False, complete=not self.missing.get(feature.name, 0), categories=self.categories.get(feature.name))


@dataclass
class _Rows:
    """Suspect rows of one check over the whole stream: the first ``cap`` positions and how many in all."""

    cap: int
    rows: list[int] = field(default_factory=list)
    count: int = 0

    def add(self, mask: np.ndarray, offset: int) -> None:
        import numpy as np

        found = np.flatnonzero(mask)
        self.count += len(found)
        if len(self.rows) < self.cap:
            self.rows.extend(int(offset + r) for r in found[: self.cap - len(self.rows)])


class _BatchPass:
    """The second pass: every exact check accumulated frame by frame, and the batch's sample."""

    def __init__(
        self,
        *,
        th: IntegrityThresholds,
        shared: list[str],
        candidates: list[_Feature],
        ranges: dict[str, _Range],
        ids: list[str],
        label: str | None,
        ref_classes: set[str],
        sample_rows: int,
        seed: int,
    ) -> None:
        cap = th.max_rows_reported
        self.th = th
        self.shared, self.candidates, self.ranges, self.ids = shared, candidates, ranges, ids
        self.label, self.ref_classes = label, ref_classes
        self.kinds: dict[str, _ColumnKind] = {}
        self.non_finite, self.non_finite_columns = _Rows(cap), {}  # type: ignore[var-annotated]
        self.formulas, self.formula_columns = _Rows(cap), {}  # type: ignore[var-annotated]
        self.out_of_range, self.range_features = _Rows(cap), {}  # type: ignore[var-annotated]
        self.dropped: list[str] = []  # candidates whose kind changed after some rows were judged
        self.identifiers = _Rows(cap)
        self.id_counts = {c: {"missing": 0, "repeated": 0} for c in ids}
        self.id_seen = {c: _SeenHashes() for c in ids}
        self.duplicates = _Rows(cap)
        self.row_seen = _SeenHashes()
        self.label_counts: dict[str, int] = {}
        self.labels_missing = 0
        self.new_class_rows = _Rows(cap)
        self.sample = _RowSample(sample_rows, seed)
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        import numpy as np

        offset = self.rows
        for column in frame.columns:
            self.kinds.setdefault(column, _ColumnKind()).add(frame[column])
        mask, per_column = _non_finite_rows(frame)
        self.non_finite.add(mask, offset)
        for column, info in per_column.items():
            into = self.non_finite_columns.setdefault(column, dict.fromkeys(info, 0))
            for key, value in info.items():
                into[key] += value
        mask, formula_columns = _formula_rows(frame)
        self.formulas.add(mask, offset)
        _merge_formula_columns(self.formula_columns, formula_columns)
        live = [f for f in self.candidates if self.kinds[f.name].compatible(f.kind)]
        if len(live) < len(self.candidates):
            self.dropped += [f.name for f in self.candidates if f not in live and self.rows]
            self.candidates = live
        judged = [f for f in live if f.name in self.ranges]  # not a categorical column with too many values
        mask, per_feature = _out_of_range_rows(frame, judged, self.ranges, self.th)
        self.out_of_range.add(mask, offset)
        _merge_out_of_range(self.range_features, per_feature)
        if self.ids:
            bad = np.zeros(len(frame), dtype=bool)
            for column in self.ids:
                series = frame[column]
                missing = series.isna().to_numpy()
                repeated = self.id_seen[column].add(_row_hashes(frame[[column]])) & ~missing
                self.id_counts[column]["missing"] += int(missing.sum())
                self.id_counts[column]["repeated"] += int(repeated.sum())
                bad |= missing | repeated
            self.identifiers.add(bad, offset)
        if self.shared:
            self.duplicates.add(self.row_seen.add(_row_hashes(frame[self.shared])), offset)
        if self.label is not None:
            keys = _keys(frame[self.label])
            self.labels_missing += int(keys.isna().sum())
            for key, count in _class_shares(keys).items():
                self.label_counts[key] = self.label_counts.get(key, 0) + count
            self.new_class_rows.add((~keys.isin(self.ref_classes) & keys.notna()).to_numpy(), offset)
        self.sample.add(frame, offset)
        self.rows += len(frame)


def _subjects(stream: TableStream) -> tuple[Subject, ...]:
    return tuple(stream.subjects)


def _input(stream: TableStream, name: str, columns: int) -> _Input:
    from airflow_mlsecops.io.batches import describe_stream

    formats = sorted(stream.formats)
    return _Input(
        name=name,
        subjects=_subjects(stream),
        format=formats[0] if len(formats) == 1 else "+".join(formats) or "csv",
        rows=stream.rows,
        columns=columns,
        stream=describe_stream(stream),
    )


@dataclass
class StreamedInputs:
    """Both inputs after their passes, the checks and how the sampled ones were drawn (what :func:`evaluate_streams` returns)."""

    checks: list[_Check]
    batch: _Input
    reference: _Input
    roles: ColumnRoles
    sampled: dict[str, Any]
    memory: dict[str, Any]


def _numeric_sample(frame: pd.DataFrame, kinds: Mapping[str, _ColumnKind]) -> pd.DataFrame:
    """A sample whose number columns are float64 (frames of an integer column with and without missing values
    concatenate to ``object``)."""
    import numpy as np

    out = frame.copy()
    for column, merged in kinds.items():
        if column in out.columns and merged.kind in ("integer", "float") and out[column].dtype == object:
            out[column] = out[column].to_numpy(dtype=float, na_value=np.nan)
    return out


def evaluate_streams(
    batch_stream: TableStream,
    ref_stream: TableStream,
    *,
    batch_name: str,
    ref_name: str,
    label_column: str | None,
    th: IntegrityThresholds,
    random_state: int,
    roles: Mapping[str, Any] | None,
    sample_rows: int,
    allow_empty: bool,
) -> StreamedInputs | tuple[_Input, _Input, ColumnRoles, str]:
    """Read the reference, then the batch, once each, and run every check.

    :returns: the checks and inputs, or for an empty batch that ``allow_empty`` accepts
        ``(batch, reference, roles, why)`` so the caller records it as the in-memory path does.
    :raises GateError: for an empty reference, an empty batch (unless allowed), or unreadable parts.
    """
    from airflow_mlsecops.gates.data_integrity.schema import _schema_of
    from airflow_mlsecops.gates.empty_data import empty_batch_error, empty_reference_error

    size = max(int(sample_rows), th.label_flip_max_rows)
    batch_columns = [str(c) for c in batch_stream.columns]
    ref_columns = [str(c) for c in ref_stream.columns]
    if not ref_columns:
        raise empty_reference_error(f"the reference {ref_name}", "holds no columns")
    if label_column is not None and label_column not in batch_columns and label_column not in ref_columns:
        from airflow_mlsecops.exceptions import ConfigurationError

        raise ConfigurationError(f"label column {label_column!r} is in neither the batch nor the reference")
    reference = _ReferencePass(size, label_column, random_state)
    for frame in ref_stream.frames():
        frame.columns = [str(c) for c in frame.columns]
        reference.add(frame)
    if not reference.rows:
        raise empty_reference_error(f"the reference {ref_name}", "holds no rows")
    ref_head = reference.head_frame(ref_columns)
    column_roles = resolve_roles(ref_head, label_column=label_column, ignore=th.ignore_columns, **dict(roles or {}))
    ref_kinds = {c: reference.kinds[c].kind for c in ref_columns}
    # The schema's shared columns and identifier columns do not depend on the batch's kinds: known before the pass.
    _, _, shared, ids = _schema_of(
        batch_columns,
        ref_columns,
        ref_kind=ref_kinds.__getitem__,
        batch_kind=lambda c: "unknown",
        compatible=lambda c, k: True,
        label=label_column,
        th=th,
        roles=column_roles,
    )
    candidates = [_Feature(c, ref_kinds[c], ref_kinds[c] in _NUMERIC_KINDS) for c in shared if c != label_column]
    ranges = {f.name: reference.range_of(f) for f in candidates}
    label_in_batch = label_column if label_column is not None and label_column in shared else None
    batch = _BatchPass(
        th=th,
        shared=shared,
        candidates=candidates,
        ranges={k: v for k, v in ranges.items() if v.numeric or v.categories is not None},
        ids=ids,
        label=label_in_batch,
        ref_classes=set(reference.label_counts),
        sample_rows=size,
        seed=random_state + 1,
    )
    for frame in batch_stream.frames():
        frame.columns = [str(c) for c in frame.columns]
        batch.add(frame)
    batch_input = _input(batch_stream, batch_name, len(batch_columns))
    ref_input = _input(ref_stream, ref_name, len(ref_columns))
    if not batch.rows:
        if not allow_empty:
            raise empty_batch_error(f"the batch {batch_name}", "holds no rows")
        return batch_input, ref_input, column_roles, "holds no rows"

    schema, features, shared, ids = _schema_of(
        batch_columns,
        ref_columns,
        ref_kind=ref_kinds.__getitem__,
        batch_kind=lambda c: batch.kinds[c].kind,
        compatible=lambda c, k: batch.kinds[c].compatible(k),
        label=label_column,
        th=th,
        roles=column_roles,
    )
    batch_sample, batch_positions = batch.sample.result(batch_columns)
    ref_sample, _ = reference.sample.result(ref_columns)
    merged_kinds = {**reference.kinds}
    frames = _Frames(
        batch=_numeric_sample(batch_sample, batch.kinds),
        reference=_numeric_sample(ref_sample, merged_kinds),
        label=label_in_batch,
        features=features,
        shared=shared,
        thresholds=th,
        random_state=random_state,
        roles=column_roles,
        ids=ids,
    )
    batch_sampled, ref_sampled = batch.rows > len(batch_sample), reference.rows > len(ref_sample)
    checks: list[_Check] = [schema]
    if ids:
        checks.append(_identifiers_result(batch.identifiers.rows, batch.identifiers.count, batch.rows, ids, batch.id_counts, th))
    else:
        checks.append(_identifiers(frames))
    checks.append(_non_finite_result(batch.non_finite.rows, batch.non_finite.count, batch.rows, batch.non_finite_columns, th))
    checks.append(
        _formula_result(batch.formulas.rows, batch.formulas.count, batch.rows, batch.formula_columns, batch_columns, th)
    )
    reason = _label_reason(label_column, frames.batch, frames.reference, th.ignore_columns)
    labelled = reason is None and label_in_batch is not None
    if labelled:
        assert label_in_batch is not None
        checks.extend(
            _label_results(
                dict(sorted(batch.label_counts.items())),
                dict(sorted(reference.label_counts.items())),
                batch.labels_missing,
                batch.new_class_rows.rows,
                batch.new_class_rows.count,
                label_in_batch,
                th,
            )
        )
    else:
        checks.extend([_skipped("integrity.label_shift", str(reason)), _skipped("integrity.class_set", str(reason))])
    sampled: dict[str, Any] = {}
    draw = {
        "method": SAMPLE_METHOD,
        "random_state": random_state,
        "sample_rows": size,
        "batch_rows_sampled": len(batch_sample),
        "batch_rows": batch.rows,
        "reference_rows_sampled": len(ref_sample),
        "reference_rows": reference.rows,
    }
    checks.append(_streamed_duplicates(batch, frames, th, shared))
    if ref_sampled and shared:
        sampled["integrity.duplicates"] = {**draw, "what": "the reference's duplicate share (the baseline)"}
    if not features:
        checks.append(_skipped("integrity.near_duplicates", "batch and reference share no comparable feature column"))
    elif batch_sampled:
        checks.append(
            _skipped(
                "integrity.near_duplicates",
                f"the batch has {batch.rows:,} rows, more than the {size:,} a streamed check holds in memory "
                "(sample_rows): the near-duplicate search needs every row at once, and a sample would miss most pairs",
            )
        )
    else:
        checks.append(_near_duplicates(frames))
        if ref_sampled:
            sampled["integrity.near_duplicates"] = {**draw, "what": "the reference's near-duplicate share (the baseline)"}
    checks.append(_streamed_out_of_range(batch, features, th))
    shift = _feature_shift(frames)
    if (batch_sampled or ref_sampled) and shift.status != "skipped":
        _mark_sampled(shift, draw)
        sampled["integrity.feature_shift"] = {**draw, "what": "KS statistics and total variation distances with their tests"}
    checks.append(shift)
    if labelled:
        flips = _label_flips(frames)
        if flips.status != "skipped":
            flips.rows = [int(batch_positions[r]) for r in flips.rows]
            if flips.rows:
                flips.location = _rows_text(flips.rows, total=flips.rows_total)
            if batch_sampled or ref_sampled:
                _mark_sampled(flips, draw)
                sampled["integrity.label_flips"] = {**draw, "what": "model fitted and rows scored on the samples"}
        checks.append(flips)
    else:
        checks.append(_skipped("integrity.label_flips", str(reason)))
    memory = {
        "row_hashes_bytes": batch.row_seen.nbytes + sum(s.nbytes for s in batch.id_seen.values()),
        "duplicates_method": HASH_METHOD,
    }
    return StreamedInputs(checks, batch_input, ref_input, column_roles, sampled, memory)


def _mark_sampled(check: _Check, draw: Mapping[str, Any]) -> None:
    check.message += (
        f" (streamed: on a uniform sample of {draw['batch_rows_sampled']:,} of {draw['batch_rows']:,} batch rows and "
        f"{draw['reference_rows_sampled']:,} of {draw['reference_rows']:,} reference rows)"
    )
    check.report["streamed_sample"] = dict(draw)


def _streamed_duplicates(batch: _BatchPass, frames: _Frames, th: IntegrityThresholds, shared: list[str]) -> _Check:
    if not shared:
        return _skipped("integrity.duplicates", "batch and reference share no column")
    ref_sample = _reference_sample(frames, batch.rows)[shared]
    ref_share = float(ref_sample.duplicated(keep="first").mean()) if len(ref_sample) else 0.0
    check = _duplicates_result(
        batch.duplicates.rows, batch.duplicates.count, batch.rows, ref_share, len(ref_sample), [], th, how=HASH_METHOD
    )
    check.report["pairs_recorded"] = False  # the first position of every row is not kept when streamed
    return check


def _streamed_out_of_range(batch: _BatchPass, features: list[_Feature], th: IntegrityThresholds) -> _Check:
    if not features:
        return _skipped("integrity.out_of_range", "batch and reference share no comparable feature column")
    per_feature = {name: info for name, info in batch.range_features.items() if name in {f.name for f in features}}
    for feature in features:
        if feature.name not in batch.ranges:
            per_feature[feature.name] = {
                "skipped": f"the reference has more than {MAX_CATEGORIES:,} distinct values: an identifier or free text "
                "(declare it in id_columns or ignore_columns)"
            }
    check = _out_of_range_result(batch.out_of_range.rows, batch.out_of_range.count, batch.rows, per_feature, th)
    if batch.dropped:
        check.report["kind_changed_during_stream"] = sorted(set(batch.dropped))
    return check
