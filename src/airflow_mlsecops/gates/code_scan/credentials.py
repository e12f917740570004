"""The secret scan: hard-coded credentials found with detect-secrets' Python API.

Every detect-secrets plugin runs (cloud keys of AWS, Azure, IBM; private keys; GitHub, GitLab,
Slack, Stripe, OpenAI, PyPI, npm... tokens; JWTs; passwords in URLs (a user and password before the host);
values assigned to secret-like names, ``password = "..."``), with these changes to its defaults,
each to keep the scan quiet on ordinary pipeline code without hiding a credential:

* ``HexHighEntropyString`` is off: SHA-256 digests are everyday content of an MLSecOps pipeline
  (pinned suites, data sets, models) and have the entropy of a hex key. A hex credential is still
  found when it is assigned to a secret-like name (the keyword plugin).
* ``Base64HighEntropyString`` keeps its limit of 4.5 bits per character.
* ``IPPublicDetector`` is off: an address is not a credential.
* The keyword plugin ignores values that are environment variable names (``PASSWORD_ENV =
  "AIRFLOW_API_PASSWORD"``: an upper-case identifier with an underscore) and file names
  (``PASSWORDS_FILE = "passwords.json"``): they say where a secret is, not what it is.
* ``# pragma: allowlist secret`` comments are ignored (detect-secrets' own inline allow list): a
  found secret is always a rejection, and cannot be suppressed.

What is recorded of a secret: its type, ``file:line`` and a fingerprint ``sha256:<12 hex>`` (the
first 48 bits of the SHA-256 of the value, enough to tell two findings apart or see the same value
again), never the value. A weak password can be confirmed by hashing guesses against the
fingerprint: rotate any secret this gate finds.

detect-secrets keeps its settings in process-global state; :func:`scan_secrets` sets them for the
duration of the scan (not thread-safe) and restores them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_mlsecops.gates.code_scan.files import CodeScanInputError, SourceFile

#: Plugins turned off (see the module docstring), and the entropy limit kept.
DISABLED_PLUGINS = ("HexHighEntropyString", "IPPublicDetector")
BASE64_LIMIT = 4.5
#: detect-secrets' default filters, except its inline allow list; plus this module's two.
_FILTERS = (
    "detect_secrets.filters.heuristic.is_indirect_reference",
    "detect_secrets.filters.heuristic.is_likely_id_string",
    "detect_secrets.filters.heuristic.is_lock_file",
    "detect_secrets.filters.heuristic.is_not_alphanumeric_string",
    "detect_secrets.filters.heuristic.is_potential_uuid",
    "detect_secrets.filters.heuristic.is_prefixed_with_dollar_sign",
    "detect_secrets.filters.heuristic.is_sequential_string",
    "detect_secrets.filters.heuristic.is_swagger_file",
    "detect_secrets.filters.heuristic.is_templated_secret",
    f"{__name__}.is_environment_variable_name",
    f"{__name__}.is_file_name",
)
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_FILE_NAME = re.compile(
    r"[\w.-]*\w\.(?:json|ya?ml|toml|ini|cfg|conf|env|txt|pem|key|crt|p12|pfx|jks|csv|generated)(?:\.[A-Za-z]+)?", re.IGNORECASE
)
FINGERPRINT_HEX = 12


@dataclass(frozen=True)
class FoundSecret:
    """A credential in a file: its type, where, and a fingerprint; never its value."""

    type: str
    file: str
    line: int
    fingerprint: str

    @property
    def slug(self) -> str:
        """``AWS Access Key`` -> ``aws-access-key`` (the finding id is ``secret.<slug>``)."""
        return re.sub(r"[^a-z0-9]+", "-", self.type.lower()).strip("-") or "unknown"

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "file": self.file, "line": self.line, "fingerprint": self.fingerprint}


def fingerprint(value: str) -> str:
    """``sha256:`` and the first :data:`FINGERPRINT_HEX` hex digits of the value's SHA-256."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX]


def _is_keyword(plugin: Any) -> bool:
    return type(plugin).__name__ == "KeywordDetector"


def is_environment_variable_name(secret: str, plugin: Any = None) -> bool:
    """A keyword value that names an environment variable (``AIRFLOW_API_PASSWORD``), not a secret."""
    return _is_keyword(plugin) and bool(_ENV_NAME.fullmatch(secret))


def is_file_name(secret: str, plugin: Any = None) -> bool:
    """A keyword value that names a file (``passwords.json``), not a secret."""
    return _is_keyword(plugin) and bool(_FILE_NAME.fullmatch(secret))


def plugin_names() -> list[str]:
    """The detect-secrets plugins the scan runs."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
    return sorted(c.__name__ for c in classes if c.__name__ not in DISABLED_PLUGINS)


def scan_secrets(files: Sequence[SourceFile]) -> tuple[list[FoundSecret], dict[str, set[str]]]:
    """Credentials in ``files``, and per file the values found (in memory only: the caller redacts
    them from anything else it records, then drops them).

    :raises CodeScanInputError: detect-secrets could not load a plugin or a filter.
    """
    from detect_secrets.core import scan
    from detect_secrets.settings import get_filters, get_plugins, transient_settings

    names = plugin_names()
    config = {
        "plugins_used": [{"name": n, "limit": BASE64_LIMIT} if n == "Base64HighEntropyString" else {"name": n} for n in names],
        "filters_used": [{"path": p} for p in _FILTERS],
    }
    found: list[FoundSecret] = []
    values: dict[str, set[str]] = {}
    with transient_settings(config) as settings:
        for name in list(settings.plugins):
            if name not in names:  # left over from global settings someone else configured
                settings.plugins.pop(name)
        get_plugins.cache_clear()
        loaded = {type(p).__name__ for p in get_plugins()}
        filters = {f"{f.__module__}.{f.__name__}" for f in get_filters()}
        if loaded != set(names) or not set(_FILTERS) <= filters:
            missing = sorted((set(names) - loaded) | (set(_FILTERS) - filters))
            raise CodeScanInputError(f"detect-secrets could not load {', '.join(missing)}", "scanner-failed")
        for source in files:
            seen: set[tuple[str, int, str]] = set()
            for secret in scan.scan_file(str(source.path)):
                value = secret.secret_value or ""
                key = (secret.type, secret.line_number, value)
                if key in seen:
                    continue
                seen.add(key)
                found.append(FoundSecret(secret.type, source.name, int(secret.line_number), fingerprint(value)))
                if value:
                    values.setdefault(source.name, set()).add(value)
    found.sort(key=lambda s: (s.file, s.line, s.type))
    return found, values
