"""The expectation suite: read it (path, dict, JSON/YAML text, ``ExpectationSuite``), refuse an empty one
or one with a type Great Expectations would silently drop, and what the policy judges of it."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_mlsecops.exceptions import ConfigurationError


def quiet_gx() -> None:
    """Silence the INFO lines Great Expectations logs on import (~200 under Airflow's logging)."""
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def load_suite_spec(suite: Any) -> dict[str, Any]:
    """Normalise a suite (path, dict, JSON/YAML text or ``ExpectationSuite``) to its JSON form."""
    return _check_spec(_read_suite_spec(suite))


def _read_suite_spec(suite: Any) -> dict[str, Any]:
    """The suite's JSON form as given, not checked (no Great Expectations import)."""
    if isinstance(suite, (str, Path)) and not (isinstance(suite, str) and suite.lstrip().startswith("{")):
        path = Path(suite)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigurationError(f"expectation suite {path} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"expectation suite {path} cannot be read: {exc}") from exc
        spec = _parse_suite_text(text, str(path))
    elif isinstance(suite, str):
        spec = _parse_suite_text(suite, "expectation suite")
    elif isinstance(suite, Mapping):
        spec = dict(suite)
    elif hasattr(suite, "to_json_dict"):
        spec = dict(suite.to_json_dict())
    else:
        raise ConfigurationError(
            f"an expectation suite must be a path, a dict or an ExpectationSuite, not {type(suite).__name__}"
        )
    return spec


def suite_policy(suite: Any) -> dict[str, Any]:
    """What the policy judges of a suite: ``suite_sha256``, the SHA-256 of its canonical JSON (sorted
    keys, no spaces) as given, and ``min_mostly``, the smallest ``mostly`` of its expectations (the
    share of rows each must hold for; ``1`` when not given). ``{}`` when the suite cannot be read
    (the gate then reports an ``error`` verdict). Reads no data and imports no Great Expectations:
    the policy check calls it when a DAG is parsed."""
    try:
        spec = _read_suite_spec(suite)
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    except (ConfigurationError, TypeError, ValueError):
        return {}
    out: dict[str, Any] = {"suite_sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest()}
    expectations = spec.get("expectations")
    if isinstance(expectations, list) and expectations:
        shares: list[Any] = []
        for item in expectations:
            kwargs = item.get("kwargs") if isinstance(item, Mapping) else None
            shares.append(kwargs.get("mostly", 1.0) if isinstance(kwargs, Mapping) else 1.0)
        odd = [str(v) for v in shares if isinstance(v, bool) or not isinstance(v, (int, float))]
        # a mostly that is not a number is recorded as given (text): no policy floor accepts it
        out["min_mostly"] = odd[0] if odd else min(float(v) for v in shares)
    return out


def _parse_suite_text(text: str, origin: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{origin} is neither JSON nor YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{origin} must be a mapping with 'name' and 'expectations'")
    return data


def _check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    quiet_gx()
    from great_expectations.expectations.registry import get_expectation_impl

    expectations = spec.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ConfigurationError("the expectation suite holds no expectations; an empty suite would pass anything")
    for index, item in enumerate(expectations):
        if not isinstance(item, Mapping) or "type" not in item:
            raise ConfigurationError(f"expectation #{index + 1} has no 'type'")
        try:
            get_expectation_impl(str(item["type"]))
        except Exception as exc:  # ExpectationNotFoundError
            raise ConfigurationError(
                f"expectation #{index + 1} has unknown type {item['type']!r}; Great Expectations would silently drop it"
            ) from exc
        if not isinstance(item.get("kwargs", {}), Mapping):
            raise ConfigurationError(f"expectation #{index + 1} ({item['type']}): 'kwargs' must be a mapping")
    spec.setdefault("name", "mlsecops-suite")
    return spec


def suite_name(suite: Any) -> str:
    """How the policy on record names the suite: its path, or its name."""
    if isinstance(suite, (str, Path)) and not str(suite).lstrip().startswith("{"):
        return str(suite)
    if isinstance(suite, Mapping):
        return str(suite.get("name", "inline"))
    return str(getattr(suite, "name", "inline"))
