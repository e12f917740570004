"""Fixtures of the CLI tests: the policy fixtures are shared with the policy tests."""

from tests.policy.conftest import policy_file

__all__ = ["policy_file"]
