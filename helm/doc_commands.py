"""Render the Helm commands of docs/deploy-kubernetes.md, so the docs' commands are the ones CI checks.

Reads the doc's fenced shell blocks, joins continued lines, expands the ``export NAME=value``
variables the doc sets, and turns every ``helm install`` / ``helm upgrade --install`` /
``helm template`` of a chart in this repository into ``helm template`` (offline), writing one
manifest file per command into OUT_DIR::

    python helm/doc_commands.py HELM docs/deploy-kubernetes.md OUT_DIR

A command for a chart that is not in the repository (the official ``apache-airflow/airflow``) cannot
be rendered offline: its ``-f`` values files must exist and parse as YAML mappings, and, when
``HELM_CHECK_AIRFLOW_CHART`` names a local copy of that chart, it is rendered too (into
``official-*.yaml``, for schema validation only). A variable the
doc does not set, a missing values file, or a doc with no command for this repository's chart is an
error (exit 1): a check that rendered nothing has not passed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml  # noqa: TID253 - a standalone script, never imported at DAG parse

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(?:bash|sh|shell|console)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXPORT = re.compile(r"^export\s+([A-Z_][A-Z0-9_]*)=(\S+)\s*(?:#.*)?$")
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}|\$([A-Z_][A-Z0-9_]*)")
#: install/upgrade flags that ``helm template`` does not take or that need a cluster.
CLUSTER_ONLY_FLAGS = {"--wait", "--atomic", "--install", "--create-namespace", "--rollback-on-failure"}
CLUSTER_ONLY_OPTIONS = {"--timeout"}


class DocCommandError(Exception):
    """The doc's commands cannot be rendered as written."""


@dataclass(frozen=True)
class HelmCommand:
    """One helm install/upgrade/template command of the doc, as the doc writes it."""

    line: str
    release: str
    chart: str
    options: tuple[str, ...]

    @property
    def values_files(self) -> list[str]:
        """The ``-f`` / ``--values`` files, in order."""
        files: list[str] = []
        for i, option in enumerate(self.options):
            if option in ("-f", "--values") and i + 1 < len(self.options):
                files.append(self.options[i + 1])
            elif option.startswith("--values="):
                files.append(option.split("=", 1)[1])
        return files


def shell_lines(markdown: str) -> list[str]:
    """Every command line of the fenced shell blocks, continuations joined, comments dropped."""
    lines: list[str] = []
    for block in FENCE.findall(markdown):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        for line in joined.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                lines.append(stripped)
    return lines


def expand(line: str, variables: dict[str, str]) -> str:
    """The line with the doc's variables substituted; an unknown variable is an error."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise DocCommandError(f"{line!r} uses ${name}, which the doc never exports")
        return variables[name]

    return VARIABLE.sub(substitute, line)


def parse_helm(line: str) -> HelmCommand | None:
    """A helm install/upgrade/template command, or None for any other line."""
    if not line.startswith("helm "):
        return None
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise DocCommandError(f"{line!r}: {error}") from error
    if len(words) < 2 or words[0] != "helm" or words[1] not in ("install", "upgrade", "template"):
        return None
    rest = words[2:]
    positional: list[str] = []
    options: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        if word.startswith("-"):
            options.append(word)
            takes_value = "=" not in word and word not in CLUSTER_ONLY_FLAGS and word not in ("--debug", "--dry-run")
            if takes_value and i + 1 < len(rest):
                options.append(rest[i + 1])
                i += 1
        else:
            positional.append(word)
        i += 1
    if len(positional) != 2:
        raise DocCommandError(f"{line!r}: expected a release name and a chart, got {positional}")
    return HelmCommand(line=line, release=positional[0], chart=positional[1], options=tuple(options))


def template_args(command: HelmCommand, chart: Path) -> list[str]:
    """``helm template`` arguments equivalent to the doc's command, without cluster-only flags."""
    options: list[str] = []
    skip_next = False
    for option in command.options:
        if skip_next:
            skip_next = False
        elif option in CLUSTER_ONLY_FLAGS:
            continue
        elif option in CLUSTER_ONLY_OPTIONS:
            skip_next = True
        elif option.split("=", 1)[0] in CLUSTER_ONLY_OPTIONS:
            continue
        else:
            options.append(option)
    return ["template", command.release, str(chart), *options]


def check_values_files(command: HelmCommand) -> None:
    """Every values file of a command exists and is a YAML mapping."""
    for name in command.values_files:
        path = REPO / name
        if not path.is_file():
            raise DocCommandError(f"{command.line!r}: values file {name} does not exist")
        if not isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict):
            raise DocCommandError(f"{command.line!r}: values file {name} is not a YAML mapping")


def render(helm: str, doc: Path, out_dir: Path) -> list[Path]:
    """Render every renderable helm command of the doc into out_dir; the files written."""
    lines = shell_lines(doc.read_text(encoding="utf-8"))
    variables = {m.group(1): m.group(2).strip("\"'") for m in (EXPORT.match(line) for line in lines) if m}
    written: list[Path] = []
    local_commands = 0
    for line in lines:
        command = parse_helm(line)
        if command is None:
            continue
        command = parse_helm(expand(line, variables))
        assert command is not None
        check_values_files(command)
        chart = REPO / command.chart
        if not (chart / "Chart.yaml").is_file():
            local_copy = os.environ.get("HELM_CHECK_AIRFLOW_CHART")
            if not local_copy:
                print(f"doc_commands: values checked, not rendered offline (chart {command.chart}): {command.line}")
                continue
            chart = Path(local_copy)
        else:
            local_commands += 1
        args = template_args(command, chart)
        # official-*: the official chart's output (schema-validated; not held to this chart's hardening)
        prefix = "doc" if chart.is_relative_to(REPO) else "official"
        target = out_dir / f"{prefix}-{len(written) + 1:02d}-{command.release}.yaml"
        print(f"doc_commands: helm {shlex.join(args)}")
        result = subprocess.run([helm, *args], cwd=REPO, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DocCommandError(f"{command.line!r} does not render:\n{result.stderr.strip()}")
        target.write_text(result.stdout, encoding="utf-8")
        written.append(target)
    if local_commands == 0:
        raise DocCommandError(f"{doc} has no helm install/upgrade/template command of a chart in this repository")
    return written


def main(argv: list[str]) -> int:
    """Exit 0 when every command rendered, 1 when one did not, 2 on bad usage."""
    if len(argv) != 3:
        print("usage: doc_commands.py HELM DOC OUT_DIR", file=sys.stderr)
        return 2
    helm, doc, out_dir = argv[0], Path(argv[1]), Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        written = render(helm, doc, out_dir)
    except (DocCommandError, OSError, ValueError, yaml.YAMLError) as error:
        print(f"doc_commands: FAILED: {error}", file=sys.stderr)
        return 1
    print(f"doc_commands: {len(written)} commands of {doc} rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
