"""What every benchmark group shares: result rows, targets, interleaved timing, subprocess timing.

No heavy import here: this module is loaded by the orchestrator and by every group's subprocess.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TMP_ENV = "MLSECOPS_BENCH_TMP"

# Everything a benchmark process (and its children) must see: no telemetry, a private Airflow
# home, no project configuration inherited from the caller's shell.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "PYTHONWARNINGS": "ignore",
    "TQDM_DISABLE": "1",
}
UNSET_ENV = (
    "MLSECOPS_HOME",
    "MLSECOPS_SIGNING_KEY",
    "MLSECOPS_SIGNING_KEY_PEM",
    "MLSECOPS_SIGNING_KEY_PASSWORD",
    "MLSECOPS_TRUSTED_KEYS",
    "MLSECOPS_LEDGER_URL",
    "MLSECOPS_ARTIFACT_ROOT",
    "MLFLOW_TRACKING_URI",
    "PYTHONDONTWRITEBYTECODE",  # the import rows measure warm .pyc
)


def bench_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env.update(QUIET_ENV)
    env["AIRFLOW_HOME"] = str(tmp / "airflow-home")
    env[TMP_ENV] = str(tmp)
    return env


def apply_env(tmp: Path) -> None:
    """Make this process's environment the benchmark environment (before any heavy import)."""
    for name in UNSET_ENV:
        os.environ.pop(name, None)
    os.environ.update(QUIET_ENV)
    os.environ["AIRFLOW_HOME"] = str(tmp / "airflow-home")
    os.environ[TMP_ENV] = str(tmp)


# --------------------------------------------------------------------------------------------
# Rows and targets


@dataclass(frozen=True)
class Target:
    """A target on ``ours`` (kind ``abs``), on ``ours/peer`` (``ratio``) or on ``ours - peer`` (``delta``)."""

    kind: str
    op: str
    value: float
    unit: str = ""

    def describe(self) -> str:
        if self.kind == "ratio":
            return f"{self.op} {self.value:g}x"
        prefix = "ours-peer " if self.kind == "delta" else ""
        return f"{prefix}{self.op} {self.value:g}{(' ' + self.unit) if self.unit else ''}"

    def check(self, value: float) -> bool:
        return {
            "<": value < self.value,
            "<=": value <= self.value,
            ">": value > self.value,
            ">=": value >= self.value,
            "==": value == self.value,
        }[self.op]


@dataclass
class Row:
    group: str
    name: str
    unit: str
    ours: float | None
    peer: float | None = None
    peer_label: str = ""
    ratio: float | None = None  # ours/peer unless the group says otherwise
    target: Target | None = None
    runs: int = 0
    notes: str = ""
    error: str | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.ours is not None and self.peer:
            self.ratio = self.ours / self.peer

    @property
    def met(self) -> bool | None:
        if self.target is None or self.error or self.ours is None:
            return None
        if self.target.kind == "abs":
            return self.target.check(self.ours)
        if self.target.kind == "ratio":
            return None if self.ratio is None else self.target.check(self.ratio)
        return None if self.peer is None else self.target.check(self.ours - self.peer)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = asdict(self.target) if self.target else None
        data["target_text"] = self.target.describe() if self.target else None
        data["met"] = self.met
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        data = {k: v for k, v in data.items() if k not in ("met", "target_text")}
        target = data.pop("target", None)
        return cls(**data, target=Target(**target) if target else None)


def error_row(group: str, name: str, message: str) -> Row:
    return Row(group=group, name=name, unit="", ours=None, error=message)


# --------------------------------------------------------------------------------------------
# Timing


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def paired_ratio(ours: Sequence[float], peer: Sequence[float]) -> float:
    """Median of the per-round ratios ``ours[i] / peer[i]``. Both sides of a round run back to back,
    so a machine that gets busier or quieter during the run moves both alike; the ratio of the two
    medians would not cancel that drift."""
    return median([o / p for o, p in zip(ours, peer, strict=True)])


def paired_diff(ours: Sequence[float], peer: Sequence[float]) -> float:
    """Median of the per-round differences ``ours[i] - peer[i]`` (see :func:`paired_ratio`)."""
    return median([o - p for o, p in zip(ours, peer, strict=True)])


def interleaved(cases: Mapping[str, Callable[[], object]], rounds: int, *, warmup: int = 1) -> dict[str, list[float]]:
    """Run every case once per round (order rotated each round, so no case always runs first or
    right after the heavy one); return each case's wall-clock seconds per round."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - start)
    return times


def alternate(i: int, items: Sequence[Any]) -> list[Any]:
    """``items`` in order on even rounds, reversed on odd ones (so neither side always goes first)."""
    return list(items) if i % 2 == 0 else list(reversed(items))


def calibrate(fn: Callable[[], object], budget_s: float = 0.08) -> int:
    """How many calls of ``fn`` take about ``budget_s``."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s / 4 or n >= 1 << 20:
            return max(1, int(n * budget_s / max(elapsed, 1e-9)))
        n *= 4


def looped(fn: Callable[[], object], n: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            fn()

    return run


@dataclass(frozen=True)
class ProcessTime:
    wall: float  # seconds, start to exit as the parent sees it
    cpu: float  # user + system CPU seconds of the child (less sensitive to a busy machine)
    stdout: str


def run_timed(cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path = REPO_ROOT, timeout: float = 120) -> ProcessTime:
    """Time a whole subprocess (run one at a time: CPU time comes from RUSAGE_CHILDREN). Raises if it fails."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(list(cmd), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ProcessTime(wall=elapsed, cpu=cpu, stdout=done.stdout)


def python_cmd(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def last_json_line(stdout: str) -> dict[str, Any]:
    import json

    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"no JSON result in the output: {stdout[-500:]!r}")


# --------------------------------------------------------------------------------------------
# Formatting


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.1f} ms" if value < 1000 else f"{value:,.0f} ms"
    if unit == "us":
        return f"{value:,.1f} us"
    if unit in ("ops/s", "entries/s"):
        return f"{value:,.0f} {unit}"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    if unit == "count":
        return f"{value:g}"
    return f"{value:,.3g} {unit}".strip()


def tmp_root() -> Path:
    value = os.environ.get(TMP_ENV)
    if not value:
        raise RuntimeError(f"{TMP_ENV} is not set; run the benchmarks through `python -m benchmarks`")
    return Path(value)
