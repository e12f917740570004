"""``mlsecops key``: inspect signing keys named by a reference (a PEM path, ``env:VAR``, ``awskms:///...``)."""

from __future__ import annotations

import argparse
from typing import Any


def add_key_parsers(sub: Any) -> None:
    p = sub.add_parser("key", help="inspect signing keys named by a reference")
    ksub = p.add_subparsers(dest="key_command", required=True, metavar="KEY_COMMAND")
    del ksub  # `mlsecops key public REF` is added with the KMS signer


def _unused(args: argparse.Namespace) -> int:  # pragma: no cover - placeholder until `key public` lands
    return 2
