"""Validate helm/values-airflow.yaml (and overlays) against the official Airflow chart's values.schema.json.

CI cannot fetch the official chart, so this runs by hand after ``helm pull apache-airflow/airflow --untar``
(or on any local copy of the chart)::

    python helm/validate_airflow_values.py path/to/airflow-chart helm/values-airflow.yaml [overlay.yaml ...]

The files are merged over the chart's own values.yaml the way Helm merges ``-f`` files (maps deeply,
everything else replaced), then checked with the chart's JSON schema (draft 7). Exit 0 valid, 1 invalid,
2 unreadable input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml  # noqa: TID253 - a standalone script, never imported at DAG parse


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of two values files: nested maps merge, any other value replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        merged[key] = merge(current, value) if isinstance(value, dict) and isinstance(current, dict) else value
    return merged


def main(argv: list[str]) -> int:
    """Print each schema violation with its path; exit 0 when there is none."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    chart, files = Path(argv[0]), [Path(name) for name in argv[1:]]
    try:
        schema = json.loads((chart / "values.schema.json").read_text(encoding="utf-8"))
        values: dict[str, Any] = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
        for path in files:
            values = merge(values, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"validate_airflow_values: cannot read the input: {error}", file=sys.stderr)
        return 2
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(values), key=lambda e: list(e.absolute_path))
    for violation in errors:
        print(f"{'/'.join(str(p) for p in violation.absolute_path) or '(top)'}: {violation.message}", file=sys.stderr)
    version = (yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8")) or {}).get("version", "?")
    names = " + ".join(str(p) for p in files)
    print(f"{names}: {'valid' if not errors else f'{len(errors)} violations'} (official chart {version})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
