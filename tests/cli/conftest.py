"""Fixtures of the CLI tests. The policy fixtures are shared with the policy tests."""

from __future__ import annotations

import os

import pytest

from tests.policy.conftest import policy_file

__all__ = ["policy_file"]


@pytest.fixture(autouse=True)
def _restore_environ():
    """The CLI applies its options to ``os.environ`` (as a user's shell would keep them): undo that after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
