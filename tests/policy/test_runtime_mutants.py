"""Exact tests for policy/runtime.py written from surviving mutants (tests/mutation/README.md).

How the promote step counts distinct approvers in a signed approval decision: by ``id``, else by
``name``; anything else in the record counts for nothing (never a crash, never an extra approver).
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlsecops.policy.runtime import _approvers


@pytest.mark.parametrize(
    ("approvals", "expected"),
    [
        ([{"id": "u1", "name": "Same"}, {"id": "u2", "name": "Same"}], {"u1", "u2"}),  # the id identifies
        ([{"name": "bob"}], {"bob"}),  # no id: the name
        ([{"id": "a"}, {"id": "b", "name": "Bob"}], {"a", "b"}),
        ([{"id": " a "}, {"id": "a"}, {"id": ""}, {"id": None}, {"name": "None"}, "c", 7], {"a"}),
        (5, set()),  # not a list: nobody (fail closed, no TypeError)
        ({"id": "a"}, set()),
        ("ab", set()),
    ],
)
def test_approvers_are_counted_by_id_then_name(approvals: Any, expected: set[str]) -> None:
    assert _approvers({"approvals": approvals}) == expected
