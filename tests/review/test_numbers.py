"""How numbers, times and verdict counts read to a reviewer."""

from __future__ import annotations

import pytest

from airflow_mlsecops.review.numbers import format_time, verdict_counts


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-12-04T05:20:41.377445+00:00", "2026-12-04 05:20:41 UTC"),
        ("2026-12-04T07:20:41+02:00", "2026-12-04 05:20:41 UTC"),  # shown in UTC, whatever the offset
        ("2026-12-04T05:20:41Z", "2026-12-04 05:20:41 UTC"),
        ("2026-12-04T05:20:41", "2026-12-04 05:20:41"),  # no zone: none is invented
        ("yesterday", "yesterday"),  # not a time: as given, never dropped
        (None, "—"),
    ],
)
def test_times_read_without_microseconds_and_in_utc(value: object, shown: str) -> None:
    assert format_time(value) == shown


def test_verdict_counts_put_what_is_not_passed_first_and_name_it() -> None:
    gates = [
        {"gate": "data-validation", "verdict": "passed"},
        {"gate": "sbom", "verdict": "warned"},
        {"gate": "model-scan", "verdict": "failed"},
        {"gate": "robustness", "verdict": "passed"},
        {"gate": "training-environment", "verdict": "warned"},
    ]
    assert verdict_counts(gates) == "1 failed (model-scan), 2 warned (sbom, training-environment), 2 passed"
    assert verdict_counts([]) == "no gate recorded evidence"
    retried = [{"gate": "sbom", "verdict": "error", "latest": False}, {"gate": "sbom", "verdict": "passed", "latest": True}]
    assert verdict_counts(retried) == "1 passed"  # the earlier attempt is shown, not counted
