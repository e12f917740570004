"""The pandas names real model bundles hold (timestamps, periods, categoricals, indexes, frames), each checked by hand.

Generated from pandas 2.3 by pickling (protocols 2-5) and ``joblib.dump`` -ing every kind of value
a training script keeps beside a model (``Timestamp``, ``Timedelta``, ``Period``, ``NaT``, ``NA``,
``Categorical``, every index type, ``DataFrame``/``Series`` with every extension dtype, date
offsets, ``Interval``) and recording what ``find_class`` was asked for.

**Why each is safe to import and call.** The classes are data types whose construction and
``__setstate__`` only copy and validate values. The functions are pandas' unpickle helpers:
``_unpickle_timestamp``, ``_timedelta_unpickle``, ``__nat_unpickle`` and ``_unpickle_block``
build a value from numbers, an array and a placement; ``__pyx_unpickle_NDArrayBacked`` is Cython's
helper that makes ``type.__new__`` for a subtype of ``NDArrayBacked`` (any other type is a
``TypeError``) and sets its fields; ``_new_Index``, ``_new_DatetimeIndex`` and
``_new_IntervalIndex`` call ``__new__`` / ``_simple_new`` / ``from_arrays`` of the class passed to
them, which is a reference in the same stream judged on its own (as for ``copyreg.__newobj__``).
None imports a module by name, evaluates text, opens a file or reaches the network. Left out on
purpose: ``pandas.read_*`` / ``to_*`` (files), ``pandas.eval`` / ``DataFrame.query`` (evaluate text),
and time-zone loaders (``zoneinfo``, ``pytz``: they read files named by the pickle).
"""

from __future__ import annotations

_OFFSETS = (
    "BusinessDay BusinessMonthBegin BusinessMonthEnd DateOffset Day Hour Micro Milli Minute MonthBegin MonthEnd "
    "Nano QuarterBegin QuarterEnd Second Week YearBegin YearEnd"
)

#: Exact ``module.name`` references of pandas (and ``dateutil.relativedelta``, which ``DateOffset`` holds).
PANDAS: frozenset[str] = frozenset(
    {
        *(f"pandas._libs.tslibs.offsets.{name}" for name in _OFFSETS.split()),
        "dateutil.relativedelta.relativedelta",
        "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
        "pandas._libs.internals._unpickle_block",
        "pandas._libs.interval.Interval",
        "pandas._libs.missing.NA",
        "pandas._libs.tslibs.nattype.__nat_unpickle",
        "pandas._libs.tslibs.period.Period",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas.core.arrays.boolean.BooleanArray",
        "pandas.core.arrays.boolean.BooleanDtype",
        "pandas.core.arrays.categorical.Categorical",
        "pandas.core.arrays.datetimes.DatetimeArray",
        "pandas.core.arrays.floating.Float32Dtype",
        "pandas.core.arrays.floating.Float64Dtype",
        "pandas.core.arrays.floating.FloatingArray",
        *(f"pandas.core.arrays.integer.{kind}{bits}Dtype" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64)),
        "pandas.core.arrays.integer.IntegerArray",
        "pandas.core.arrays.period.PeriodArray",
        "pandas.core.arrays.string_.StringArray",
        "pandas.core.arrays.string_.StringDtype",
        "pandas.core.arrays.timedeltas.TimedeltaArray",
        "pandas.core.dtypes.dtypes.CategoricalDtype",
        "pandas.core.dtypes.dtypes.DatetimeTZDtype",
        "pandas.core.dtypes.dtypes.PeriodDtype",
        "pandas.core.frame.DataFrame",
        "pandas.core.indexes.base.Index",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.indexes.category.CategoricalIndex",
        "pandas.core.indexes.datetimes.DatetimeIndex",
        "pandas.core.indexes.datetimes._new_DatetimeIndex",
        "pandas.core.indexes.interval.IntervalIndex",
        "pandas.core.indexes.interval._new_IntervalIndex",
        "pandas.core.indexes.multi.MultiIndex",
        "pandas.core.indexes.period.PeriodIndex",
        "pandas.core.indexes.range.RangeIndex",
        "pandas.core.indexes.timedeltas.TimedeltaIndex",
        "pandas.core.internals.managers.BlockManager",
        "pandas.core.internals.managers.SingleBlockManager",
        "pandas.core.series.Series",
    }
)
