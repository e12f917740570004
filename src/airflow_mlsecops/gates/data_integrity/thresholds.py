"""The data-integrity gate's limits (:class:`IntegrityThresholds`) and how given values are checked.

**Small samples**: a shift statistic (label shift, feature shift) or the estimated flip share over
its threshold is a violation only if it is also significant at ``significance`` (chi-square test of
homogeneity, KS test, likelihood-ratio test), so a batch of a few hundred rows is not rejected
for sampling noise. ``significance=1`` judges on the threshold alone.

>>> from airflow_mlsecops.gates.data_integrity import IntegrityThresholds
>>> IntegrityThresholds.from_mapping({"max_label_shift": "0.1", "max_feature_shift.income": 0.2}).feature_limit("income")
0.2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_mlsecops.exceptions import ConfigurationError

_FEATURE_SHIFT_PREFIX = "max_feature_shift."


@dataclass(frozen=True)
class IntegrityThresholds:
    """The limits of the data integrity gate. Every share is a fraction (``0.01`` is 1%).

    :param max_schema_changes: columns added, removed or changing kind that are tolerated.
        Default ``0``.
    :param max_label_shift: largest total variation distance between the class shares of batch and
        reference. Default ``0.05``.
    :param max_new_classes: classes the reference never had that may appear in the batch. Default ``0``.
    :param max_missing_classes: reference classes that may be absent from the batch. Default ``0``.
    :param max_duplicate_share: largest share of exact duplicate rows in the batch, in excess of the
        share in a same-size reference sample. Default ``0.01``.
    :param max_near_duplicate_share: largest share of near-duplicate rows, in excess of the
        reference's share. Default ``0.01``.
    :param near_duplicate_radius: two rows are near-duplicates when every numeric feature differs by
        at most this many reference standard deviations and categorical features are equal.
        Default ``0.01``.
    :param max_out_of_range_share: largest share of rows with a value outside the reference's range
        (or an unseen category, or a missing value the reference never has). Default ``0.01``.
    :param range_tolerance: the reference range ``[min, max]`` is widened by this fraction of
        ``max - min`` on each side. Default ``0.05``.
    :param max_non_finite_share: largest share of batch rows holding ``+inf``, ``-inf`` or a number
        too large for float32 in a numeric column. Default ``0``: any such row fails.
    :param max_formula_share: largest share of batch rows with a text cell a spreadsheet would run
        as a formula (CSV injection; a formula header fails unless this is ``1``). Default ``0``.
    :param max_feature_shift: largest KS statistic (numeric) or total variation distance
        (categorical) of any feature. Default ``0.1``.
    :param feature_shift_overrides: per-feature limits replacing ``max_feature_shift``; in
        :meth:`from_mapping` also given as ``max_feature_shift.<column>=<value>``. Default none.
    :param max_label_flip_share: largest estimated share of labels flipped (randomly, or away from
        one class) with respect to a calibrated model of the reference. Default ``0.03``.
    :param label_flip_max_rows: rows sampled from each of reference (to fit the model) and batch (to
        score) for the label-flip check; the evidence says how many were used. Default ``50000``.
    :param label_flip_min_class_rows: a reference class needs this many rows to be learnt; the check
        is skipped unless two classes have them. Default ``20``.
    :param significance: a shift or flip statistic over its threshold is a violation only if its
        test's p-value is below this (``1`` judges on thresholds alone). Default ``0.001``.
    :param ignore_columns: columns not judged at all (identifiers, timestamps, free text); a
        comma-separated string is accepted. Default none.
    :param max_rows_reported: suspect rows listed per check in the evidence. Default ``100``.
    """

    max_schema_changes: int = 0
    max_label_shift: float = 0.05
    max_new_classes: int = 0
    max_missing_classes: int = 0
    max_duplicate_share: float = 0.01
    max_near_duplicate_share: float = 0.01
    near_duplicate_radius: float = 0.01
    max_out_of_range_share: float = 0.01
    range_tolerance: float = 0.05
    max_non_finite_share: float = 0.0
    max_formula_share: float = 0.0
    max_feature_shift: float = 0.1
    feature_shift_overrides: Mapping[str, float] = field(default_factory=dict)
    max_label_flip_share: float = 0.03
    label_flip_max_rows: int = 50_000
    label_flip_min_class_rows: int = 20
    significance: float = 0.001
    ignore_columns: tuple[str, ...] = ()
    max_rows_reported: int = 100

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "feature_shift_overrides":
                if not isinstance(value, Mapping):
                    raise ConfigurationError("feature_shift_overrides must map column names to limits")
                checked = {str(k): _number(f"{_FEATURE_SHIFT_PREFIX}{k}", v, 0.0, 1.0) for k, v in value.items()}
                object.__setattr__(self, spec.name, checked)
            elif spec.name == "ignore_columns":
                object.__setattr__(self, spec.name, _columns(value))
            elif spec.name in _INT_LIMITS:
                low, high = _INT_LIMITS[spec.name]
                object.__setattr__(self, spec.name, _integer(spec.name, value, low, high))
            else:
                low_f, high_f = _FLOAT_LIMITS[spec.name]
                object.__setattr__(self, spec.name, _number(spec.name, value, low_f, high_f))
        if self.significance <= 0:
            raise ConfigurationError("threshold significance must be above 0 (1 judges on thresholds alone)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> IntegrityThresholds:
        """Build thresholds from ``{name: value}`` (defaults for the rest).

        Values may be strings (``"0.05"``) as they come from a command line.
        ``max_feature_shift.<column>`` sets one feature's limit.

        :param values: the thresholds to change, or ``None`` for all defaults.
        :raises ConfigurationError: naming an unknown key or a value out of range.
        """
        if values is None:
            return cls()
        if isinstance(values, IntegrityThresholds):
            return values
        if not isinstance(values, Mapping):
            raise ConfigurationError(f"thresholds must be a mapping of name to value, not {type(values).__name__}")
        known = {spec.name for spec in fields(cls)}
        kwargs: dict[str, Any] = {}
        overrides: dict[str, object] = {}
        for raw_key, value in values.items():
            key = str(raw_key).strip()
            if key.startswith(_FEATURE_SHIFT_PREFIX) and len(key) > len(_FEATURE_SHIFT_PREFIX):
                overrides[key[len(_FEATURE_SHIFT_PREFIX) :]] = value
            elif key == "feature_shift_overrides":
                if not isinstance(value, Mapping):
                    raise ConfigurationError("feature_shift_overrides must map column names to limits")
                overrides.update({str(k): v for k, v in value.items()})
            elif key in known:
                kwargs[key] = value
            else:
                raise ConfigurationError(
                    f"unknown data-integrity threshold {key!r}; known: {', '.join(sorted(known - {'feature_shift_overrides'}))}"
                    f", {_FEATURE_SHIFT_PREFIX}<column>"
                )
        if overrides:
            kwargs["feature_shift_overrides"] = overrides
        return cls(**kwargs)

    def feature_limit(self, column: str) -> float:
        """The shift limit of ``column``: its override or ``max_feature_shift``."""
        return float(self.feature_shift_overrides.get(column, self.max_feature_shift))

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as JSON-ready policy."""
        out: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            out[spec.name] = dict(value) if isinstance(value, Mapping) else list(value) if isinstance(value, tuple) else value
        return out


_INT_LIMITS: dict[str, tuple[int, int | None]] = {
    "max_schema_changes": (0, None),
    "max_new_classes": (0, None),
    "max_missing_classes": (0, None),
    "label_flip_max_rows": (100, None),
    "label_flip_min_class_rows": (2, None),
    "max_rows_reported": (0, 10_000),
}
_FLOAT_LIMITS: dict[str, tuple[float, float | None]] = {
    "max_label_shift": (0.0, 1.0),
    "max_duplicate_share": (0.0, 1.0),
    "max_near_duplicate_share": (0.0, 1.0),
    "near_duplicate_radius": (0.0, None),
    "max_out_of_range_share": (0.0, 1.0),
    "range_tolerance": (0.0, None),
    "max_non_finite_share": (0.0, 1.0),
    "max_formula_share": (0.0, 1.0),
    "max_feature_shift": (0.0, 1.0),
    "max_label_flip_share": (0.0, 1.0),
    "significance": (0.0, 1.0),
}


def _number(name: str, value: object, low: float, high: float | None) -> float:
    if isinstance(value, bool):
        raise ConfigurationError(f"threshold {name} must be a number, not {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(f"threshold {name} must be a number, not {value!r}") from None
    if math.isnan(number) or number < low or (high is not None and number > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigurationError(f"threshold {name} must be {bounds}, not {value!r}")
    return number


def _integer(name: str, value: object, low: int, high: int | None) -> int:
    number = _number(name, value, float(low), float(high) if high is not None else None)
    if not number.is_integer():
        raise ConfigurationError(f"threshold {name} must be a whole number, not {value!r}")
    return int(number)


def _columns(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (Sequence, set, frozenset)):
        return tuple(str(part) for part in value)
    raise ConfigurationError(f"ignore_columns must be a list of column names or a comma-separated string, not {value!r}")


def _resolve_thresholds(thresholds: IntegrityThresholds | Mapping[str, object] | None) -> IntegrityThresholds:
    """``thresholds`` as :class:`IntegrityThresholds` (defaults if ``None``).

    :param thresholds: thresholds, a mapping of threshold names to values, or ``None``.
    :raises ConfigurationError: naming an unknown key or a value out of range.
    """
    if isinstance(thresholds, IntegrityThresholds):
        return thresholds
    return IntegrityThresholds.from_mapping(thresholds)
