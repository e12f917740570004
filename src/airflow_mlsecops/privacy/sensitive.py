"""Data the policy marks sensitive, and what it demands of evidence and training about such data.

A policy's ``sensitive_data`` section lists data sets by the names their gates record as subjects
(paths, ``s3://`` URIs, ``runs:/`` locations; ``fnmatch`` patterns) or by digest (``sha256:<hex>``)::

    sensitive_data:
      - name: customer-loans
        match: ["*/loans*.csv", "s3://bank-data/loans/*"]
        evidence:                 # statistics written into evidence about it are released through OpenDP
          epsilon_per_release: 0.5
          delta: 0
          total_epsilon: 10       # the budget across every release about this data set
        training:                 # a model trained on it must declare a DP guarantee at least this strong
          max_epsilon: 8
          max_delta: 1.0e-5

When several entries match, the strictest value of each field wins (smallest epsilon, delta and
budget), so adding an entry never loosens another.

>>> loans = {"name": "loans", "match": ["*/loans*.csv"], "evidence": {"epsilon_per_release": 0.5, "total_epsilon": 5}}
>>> entries = parse_sensitive_data([loans])
>>> sensitive_data_for(entries, ["/data/loans-2026.csv"]).evidence.epsilon_per_release
0.5
>>> sensitive_data_for(entries, ["/data/iris.csv"]) is None
True
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_mlsecops.exceptions import ConfigurationError


@dataclass(frozen=True)
class EvidencePrivacy:
    """How statistics about a sensitive data set are released into evidence."""

    epsilon_per_release: float
    total_epsilon: float
    delta: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"epsilon_per_release": self.epsilon_per_release, "total_epsilon": self.total_epsilon, "delta": self.delta}


@dataclass(frozen=True)
class TrainingPrivacyRequirement:
    """The weakest differential-privacy guarantee a model trained on the data may declare."""

    max_epsilon: float
    max_delta: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"max_epsilon": self.max_epsilon, "max_delta": self.max_delta}


@dataclass(frozen=True)
class SensitiveData:
    """One entry of the policy's ``sensitive_data`` section (or the strictest merge of several)."""

    name: str
    match: tuple[str, ...]
    evidence: EvidencePrivacy | None = None
    training: TrainingPrivacyRequirement | None = None

    def matches(self, subject_names: Iterable[str] = (), digests: Iterable[str] = ()) -> bool:
        """Whether any subject name matches a pattern, or any digest is named as ``sha256:<hex>``."""
        wanted = {f"sha256:{d.lower().removeprefix('sha256:')}" for d in digests}
        for pattern in self.match:
            if pattern.lower().startswith("sha256:"):
                if pattern.lower() in wanted:
                    return True
                continue
            if any(fnmatch.fnmatchcase(name, pattern) for name in subject_names):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "match": list(self.match),
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "training": self.training.to_dict() if self.training else None,
        }


def _positive(value: object, where: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        raise ConfigurationError(f"{where} must be a finite number {'>= 0' if zero else '> 0'}, got {value!r}")
    return number


def parse_sensitive_data(section: Sequence[Mapping[str, Any]] | None) -> tuple[SensitiveData, ...]:
    """The policy's ``sensitive_data`` section as :class:`SensitiveData` entries.

    :raises ConfigurationError: a malformed entry (no name, no pattern, a non-positive epsilon, a
        budget smaller than one release, an unknown key).
    """
    entries = []
    for index, raw in enumerate(section or ()):
        where = f"sensitive_data[{index}]"
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"{where} must be a mapping")
        unknown = sorted(set(raw) - {"name", "match", "evidence", "training"})
        if unknown:
            raise ConfigurationError(f"{where} has unknown key(s) {', '.join(unknown)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{where} needs a name")
        match = raw.get("match")
        if isinstance(match, str):
            match = [match]
        if not match or not all(isinstance(p, str) and p for p in match):
            raise ConfigurationError(f"{where} ({name}) needs at least one match pattern")
        evidence = None
        if raw.get("evidence") is not None:
            ev = raw["evidence"]
            if not isinstance(ev, Mapping) or sorted(set(ev) - {"epsilon_per_release", "total_epsilon", "delta"}):
                raise ConfigurationError(f"{where}.evidence takes epsilon_per_release, total_epsilon and delta")
            per = _positive(ev.get("epsilon_per_release"), f"{where}.evidence.epsilon_per_release")
            total = _positive(ev.get("total_epsilon"), f"{where}.evidence.total_epsilon")
            if total < per:
                raise ConfigurationError(f"{where}.evidence.total_epsilon ({total}) is smaller than one release ({per})")
            evidence = EvidencePrivacy(per, total, _positive(ev.get("delta", 0.0), f"{where}.evidence.delta", zero=True))
        training = None
        if raw.get("training") is not None:
            tr = raw["training"]
            if not isinstance(tr, Mapping) or sorted(set(tr) - {"max_epsilon", "max_delta"}):
                raise ConfigurationError(f"{where}.training takes max_epsilon and max_delta")
            training = TrainingPrivacyRequirement(
                _positive(tr.get("max_epsilon"), f"{where}.training.max_epsilon"),
                _positive(tr.get("max_delta", 0.0), f"{where}.training.max_delta", zero=True),
            )
        entries.append(SensitiveData(name, tuple(match), evidence, training))
    return tuple(entries)


def _strictest(entries: Sequence[SensitiveData]) -> SensitiveData:
    evidence = [e.evidence for e in entries if e.evidence]
    training = [e.training for e in entries if e.training]
    return SensitiveData(
        name=", ".join(e.name for e in entries),
        match=tuple(p for e in entries for p in e.match),
        evidence=EvidencePrivacy(
            min(e.epsilon_per_release for e in evidence), min(e.total_epsilon for e in evidence), min(e.delta for e in evidence)
        )
        if evidence
        else None,
        training=TrainingPrivacyRequirement(min(t.max_epsilon for t in training), min(t.max_delta for t in training))
        if training
        else None,
    )


def sensitive_data_for(
    entries: Sequence[SensitiveData], subject_names: Iterable[str] = (), digests: Iterable[str] = ()
) -> SensitiveData | None:
    """The entry governing data named ``subject_names`` (or with these digests): the strictest merge
    of every matching entry, or ``None`` when the data is not marked sensitive."""
    names, sums = list(subject_names), list(digests)
    matching = [entry for entry in entries if entry.matches(names, sums)]
    if not matching:
        return None
    return matching[0] if len(matching) == 1 else _strictest(matching)
