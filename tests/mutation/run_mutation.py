"""Mutation testing of the security-critical modules with mutmut 3, one module at a time.

Usage (from the repository root; ``make mutation`` runs every module in :data:`CRITICAL_MODULES`)::

    nice -n 19 .venv/bin/python tests/mutation/run_mutation.py lifecycle/approval.py
    nice -n 19 .venv/bin/python tests/mutation/run_mutation.py --all --max-children 2
    .venv/bin/python tests/mutation/run_mutation.py --list

mutmut mutates every module under its source paths and runs the tests it is given; on the whole
suite that is hours (a ``dag.test()`` run is ~20 s). So each critical module runs alone, against
only the fast tests that exercise it, in a scratch copy of ``src/`` and ``tests/`` (mutmut writes a
``mutants/`` tree and a ``setup.cfg``; the repository is never touched). The kill rate and every
surviving mutant (with its diff) are printed and written to ``<workdir>/<module>/report.txt``.

A surviving mutant is either killed by a new test or explained as equivalent (it cannot change
behaviour) in tests/mutation/README.md; the mutants that guard a claim of the issue are also
ordinary tests (tests/lifecycle/test_critical_claims.py), so CI catches them without mutmut.

Needs ``mutmut>=3.8`` (the ``dev`` extra). Runs on Linux/macOS (mutmut forks).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "src/airflow_mlsecops"

#: Each critical module (under src/airflow_mlsecops) and the fast tests that exercise it. Modules whose
#: tests need Airflow task runs or servers are listed with the engine-level tests that cover them.
CRITICAL_MODULES: dict[str, list[str]] = {
    "lifecycle/approval.py": ["tests/lifecycle/test_critical_claims.py"],
    "evidence/dsse.py": [
        "tests/evidence/test_dsse.py",
        "tests/evidence/test_trust.py",
        "tests/evidence/test_properties.py",
        "tests/evidence/test_dsse_mutants.py",
    ],
    "evidence/digest.py": [
        "tests/evidence/test_digest.py",
        "tests/evidence/test_special_files.py",
        "tests/evidence/test_digest_mutants.py",
    ],
    "evidence/ledger.py": [
        "tests/evidence/test_ledger.py",
        "tests/evidence/test_checkpoint.py",
        "tests/evidence/test_ledger_mutants.py",
    ],
    "evidence/checkpoint.py": ["tests/evidence/test_checkpoint.py", "tests/evidence/test_checkpoint_mutants.py"],
    "evidence/keys.py": ["tests/evidence/test_keys.py", "tests/evidence/test_trust.py", "tests/evidence/test_keys_mutants.py"],
    "evidence/trust.py": ["tests/evidence/test_trust.py", "tests/evidence/test_trust_mutants.py"],
    "policy/engine.py": ["tests/policy/test_engine.py", "tests/policy/test_properties.py", "tests/policy/test_engine_mutants.py"],
    "policy/runtime.py": [
        "tests/policy/test_runtime.py",
        "tests/policy/test_enforcement.py",
        "tests/policy/test_runtime_mutants.py",
    ],
    "lifecycle/verification.py": [
        "tests/lifecycle/test_verification.py",
        "tests/lifecycle/test_key_rotation.py",
        "tests/lifecycle/test_verification_mutants.py",
    ],
    "gates/model_scan.py": ["tests/gates/test_model_scan.py", "tests/gates/test_model_scan_mutants.py"],
    "lifecycle/_registry_checks.py": ["tests/lifecycle/test_registry_checks_mutants.py", "tests/lifecycle/test_registry.py"],
}

#: Modules whose PostgreSQL paths have their own tests (marker ``postgres``): when
#: ``MLSECOPS_TEST_POSTGRES_URL`` is set those tests run against every mutant of these modules too.
POSTGRES_MODULES = frozenset({"evidence/ledger.py", "evidence/checkpoint.py"})

#: pytest options for every mutant: no Airflow task runs, no servers, stop at the first failure.
PYTEST_ARGS = [
    "-x",
    "-q",
    "-p",
    "no:randomly",
    "-p",
    "_mutation_session",
    "-m",
    "not airflow and not postgres and not mlflow_server and not s3",
]


def _pytest_args(module: str) -> list[str]:
    """:data:`PYTEST_ARGS`, with the PostgreSQL tests when the module has them and a server is configured."""
    if module in POSTGRES_MODULES and os.environ.get("MLSECOPS_TEST_POSTGRES_URL"):
        return [*PYTEST_ARGS[:-1], "not airflow and not mlflow_server and not s3"]
    return PYTEST_ARGS


def _workspace(module: str, workdir: Path, tests: list[str] | None = None) -> Path:
    """A scratch copy of the project (sources, tests, pytest config) with mutmut's config for one module.

    :param tests: the test files to run against each mutant (default: the module's in :data:`CRITICAL_MODULES`).
    """
    slug = module.replace("/", "_").removesuffix(".py")
    root = workdir / slug
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__", "mutation"))
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    for extra in ("policy", "dags"):  # data files some tests read relative to the repository root (also_copy: into mutants/)
        if (REPO / extra).is_dir():
            shutil.copytree(REPO / extra, root / extra, ignore=shutil.ignore_patterns("__pycache__"))
    # Copied into mutants/ (on sys.path while the tests run) by ``also_copy``: keeps tests/conftest.py's
    # session folder and MLflow template store across mutmut's sessions (see session_plugin.py).
    shutil.copy2(Path(__file__).with_name("session_plugin.py"), root / "_mutation_session.py")
    selection = "\n    ".join(tests or CRITICAL_MODULES[module])
    options = "\n    ".join(_pytest_args(module))
    (root / "setup.cfg").write_text(
        "[mutmut]\n"
        "source_paths = src\n"
        f"only_mutate = {PACKAGE}/{module}\n"
        "also_copy =\n    _mutation_session.py\n    policy\n    dags\n"
        f"pytest_add_cli_args_test_selection =\n    {selection}\n"
        f"pytest_add_cli_args =\n    {options}\n"
    )
    return root


def _mutmut(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MLSECOPS_FUZZ_CASES": os.environ.get("MLSECOPS_FUZZ_CASES", "200")}
    command = [sys.executable, "-m", "mutmut", *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)


def run(
    module: str, workdir: Path, max_children: int, only: list[str] | None = None, tests: list[str] | None = None
) -> tuple[int, int, list[str]]:
    """Mutate ``module``; return (killed, total, survivor names) and write its report.

    :param only: mutant name patterns (``fnmatch``, e.g. ``*.x__verdicts__mutmut_*``): run and report
        only those, e.g. the verdict logic of a large module.
    :param tests: test files to run instead of the module's list (e.g. only the fast ones under load).
    """
    root = _workspace(module, workdir, tests)
    patterns = list(only or [])
    done = _mutmut(root, "run", "--max-children", str(max_children), *patterns)
    tail = (done.stdout + done.stderr)[-3000:]
    if done.returncode != 0:
        raise SystemExit(f"mutmut failed on {module} (exit {done.returncode}):\n{tail}")
    results = _mutmut(root, "results", "--all", "true").stdout
    statuses = dict(re.findall(r"^\s*(\S+): (\w[\w ]*)$", results, flags=re.MULTILINE))
    if patterns:
        statuses = {name: status for name, status in statuses.items() if any(fnmatch.fnmatchcase(name, p) for p in patterns)}
    total = len(statuses)
    killed = sum(1 for status in statuses.values() if status == "killed")
    survivors = sorted(name for name, status in statuses.items() if status != "killed")
    scope = f" (only {', '.join(patterns)})" if patterns else ""
    report = [f"{module}{scope}: {killed} of {total} mutants killed ({100 * killed / max(total, 1):.1f}%)", ""]
    for name in survivors:
        report += [f"--- {name}: {statuses[name]}", _mutmut(root, "show", name).stdout.strip(), ""]
    (root / "report.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return killed, total, survivors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules under src/airflow_mlsecops, e.g. lifecycle/approval.py")
    parser.add_argument("--all", action="store_true", help="every module in CRITICAL_MODULES")
    parser.add_argument("--list", action="store_true", help="print the critical modules and their tests")
    parser.add_argument(
        "--only", action="append", metavar="PATTERN", help="only the mutants matching this fnmatch pattern (repeatable)"
    )
    parser.add_argument(
        "--tests", action="append", metavar="FILE", help="a test file to run instead of the module's list (repeatable)"
    )
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("MUTATION_DIR", "/tmp/mlsecops-mutation")))
    parser.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    args = parser.parse_args()
    if args.list:
        for module, tests in CRITICAL_MODULES.items():
            print(f"{module}: {' '.join(tests)}")
        return 0
    modules = list(CRITICAL_MODULES) if args.all else args.modules
    unknown = [m for m in modules if m not in CRITICAL_MODULES]
    if not modules or unknown:
        parser.error(f"name modules from --list (unknown: {', '.join(unknown) or 'none given'})")
    survived = 0
    for module in modules:
        _, _, survivors = run(module, args.workdir, args.max_children, args.only, args.tests)
        survived += len(survivors)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
