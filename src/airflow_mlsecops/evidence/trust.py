"""Trust anchors: the public keys a verifier trusts, and where each came from.

References: PEM files, directories (their ``*.pub.pem`` files).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from airflow_mlsecops.evidence.keys import VerifyingKey, load_trusted_keys
from airflow_mlsecops.exceptions import KeyLoadError


def load_trust_anchors(references: Sequence[str], *, source: str = "", explicit: bool = False) -> dict[str, VerifyingKey]:
    """The trusted keys named by ``references``, keyed by key id; each key's ``origin`` names its file
    or reference and ``source`` (the setting that listed it).

    :param explicit: the references were configured by name: a missing one is an error (the
        default ``<home>/keys`` may be absent).
    """
    paths = [Path(r) for r in references]
    existing = [p for p in paths if p.exists()]
    missing = [p for p in paths if not p.exists()]
    if missing and explicit:
        raise KeyLoadError(f"trusted key path {missing[0]} does not exist (from {source})")
    keys = load_trusted_keys(existing)
    suffix = f" ({source})" if source else ""
    return {keyid: replace(key, origin=f"{key.origin}{suffix}") for keyid, key in keys.items()}
