"""Which code produced evidence: identities of real classes and files, RECORD digests, look-alikes.

Real files only: the installed package itself, modules written to a temporary directory, a small
wheel-like install (``dist-info`` with a ``RECORD``) put on ``sys.path``, and a copy of the whole
package installed that way in a subprocess with one file changed after installation.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.models import GateResult, PipelineContext, Subject, Verdict
from airflow_mlsecops.evidence.producer import (
    INSTALL_EDITABLE,
    INSTALL_WHEEL,
    CodeIdentity,
    producer_problem,
    trusted_problems,
)
from airflow_mlsecops.gates.base import Evaluation, run_gate
from airflow_mlsecops.gates.provenance import attest_artifacts
from airflow_mlsecops.operators.robustness import RobustnessGateOperator

SRC = Path(__file__).parents[2] / "src"


class DefinedInATest(RobustnessGateOperator):
    def evaluate(self, context, pipeline):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _install_like_a_wheel(site: Path, name: str, files: dict[str, str], *, dist: str | None = None) -> Path:
    """Write ``files`` into ``site`` with a ``<dist>-1.0.dist-info`` whose RECORD lists their digests."""
    dist = dist or name
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = []
    for relative, text in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        lines.append(f"{relative},{_record_hash(text.encode())},{len(text.encode())}")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    lines.append(f"{info.name}/METADATA,,")
    lines.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(lines) + "\n")
    return info


# ----------------------------------------------------------------------------- the package's own code
def test_a_package_class_is_trusted_and_its_install_is_described() -> None:
    identity = CodeIdentity.of(RobustnessGateOperator)
    assert identity.name == "airflow_mlsecops.operators.robustness.RobustnessGateOperator"
    assert identity.distribution == "airflow-mlsecops"
    assert identity.version == importlib.metadata.version("airflow-mlsecops")
    assert identity.file == os.path.realpath(sys.modules["airflow_mlsecops.operators.robustness"].__file__ or "")
    assert identity.sha256 == hashlib.sha256(Path(identity.file).read_bytes()).hexdigest()
    assert identity.resolves and identity.matches
    direct_url = importlib.metadata.distribution("airflow-mlsecops").read_text("direct_url.json") or "{}"
    if json.loads(direct_url).get("dir_info", {}).get("editable"):
        # The project's .venv: an editable install, whose RECORD has no digest for the source files.
        assert (identity.install, identity.record_sha256) == (INSTALL_EDITABLE, None)
    else:
        assert identity.install == INSTALL_WHEEL and identity.record_sha256 == identity.sha256
    assert trusted_problems(identity) == []
    assert CodeIdentity.from_dict(identity.to_dict()) == identity
    assert json.loads(json.dumps(identity.to_dict())) == identity.to_dict()


def test_functions_methods_and_nested_code_of_the_package_are_trusted() -> None:
    assert trusted_problems(CodeIdentity.of(attest_artifacts)) == []
    assert trusted_problems(CodeIdentity.of(RobustnessGateOperator.evaluate)) == []
    assert trusted_problems(CodeIdentity.of(GateResult.to_dict)) == []


# ----------------------------------------------------------------------------- code that is not the package's
def test_a_class_defined_in_a_test_module_is_not_trusted() -> None:
    identity = CodeIdentity.of(DefinedInATest)
    assert identity.name == f"{__name__}.DefinedInATest"
    assert identity.distribution != "airflow-mlsecops"
    problems = trusted_problems(identity)
    assert problems[0] == f"module {__name__} is not part of the airflow_mlsecops package"
    assert "not airflow-mlsecops" in problems[1]  # no distribution owns tests/ (or one that ships a stray tests/)
    # The policy may allow it by name (allowed_operators), and then its members too.
    assert trusted_problems(identity, allowed=[identity.name]) == []
    assert trusted_problems(CodeIdentity.of(DefinedInATest.evaluate), allowed=[identity.name]) == []
    assert trusted_problems(identity, allowed=[f"{identity.name}Else"]) != []
    # Allowed by name, a look-alike that only borrows the name is still refused.
    borrowed = CodeIdentity.from_dict({**identity.to_dict(), "resolves": False})
    assert trusted_problems(borrowed, allowed=[identity.name]) == [
        f"the name {identity.name} does not resolve to the code that ran, in the file of its module"
    ]


def test_a_gate_subclass_in_a_file_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "lax_gates.py"
    path.write_text(
        textwrap.dedent(
            """
            from airflow_mlsecops.operators.robustness import RobustnessGateOperator

            class LaxRobustness(RobustnessGateOperator):
                def evaluate(self, context, pipeline):
                    return "passed"
            """
        )
    )
    spec = importlib.util.spec_from_file_location("lax_gates", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["lax_gates"] = module
    try:
        spec.loader.exec_module(module)
        identity = CodeIdentity.of(module.LaxRobustness)
    finally:
        del sys.modules["lax_gates"]
    assert identity.name == "lax_gates.LaxRobustness" and identity.file == os.path.realpath(path)
    assert identity.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and identity.resolves
    assert trusted_problems(identity) == [
        "module lax_gates is not part of the airflow_mlsecops package",
        "its file belongs to no installed distribution, not airflow-mlsecops",
    ]


def test_a_look_alike_that_borrows_a_trusted_name_is_not_trusted() -> None:
    class LookAlike(RobustnessGateOperator):
        __module__ = "airflow_mlsecops.operators.robustness"
        __qualname__ = "RobustnessGateOperator"

        def evaluate(self, context, pipeline):  # type: ignore[no-untyped-def]
            return "passed"

    identity = CodeIdentity.of(LookAlike)
    assert identity.name == "airflow_mlsecops.operators.robustness.RobustnessGateOperator"
    assert identity.distribution == "airflow-mlsecops" and identity.matches  # the borrowed module's file is fine
    assert not identity.resolves
    assert trusted_problems(identity) == [
        "the name airflow_mlsecops.operators.robustness.RobustnessGateOperator does not resolve to the code that ran, "
        "in the file of its module"
    ]

    def fake() -> None: ...

    fake.__module__, fake.__qualname__ = "airflow_mlsecops.gates.provenance", "attest_artifacts"
    assert not CodeIdentity.of(fake).resolves


# ----------------------------------------------------------------------------- RECORD digests
def test_a_wheel_install_is_matched_against_its_record_and_a_changed_file_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    engine = "def judge():\n    return 'passed'\n"
    _install_like_a_wheel(
        site, "tinygate", {"tinygate/__init__.py": "", "tinygate/engine.py": engine, "tinygate/other.py": engine}
    )
    (site / "tinygate" / "other.py").write_text(engine.replace("passed", "failed"))  # changed after installation
    monkeypatch.syspath_prepend(str(site))
    for name in ("tinygate", "tinygate.engine", "tinygate.other"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    intact = CodeIdentity.of(importlib.import_module("tinygate.engine").judge)
    changed = CodeIdentity.of(importlib.import_module("tinygate.other").judge)
    for name in ("tinygate", "tinygate.engine", "tinygate.other"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    assert (intact.distribution, intact.version, intact.install) == ("tinygate", "1.0", INSTALL_WHEEL)
    assert intact.record_sha256 == intact.sha256 == hashlib.sha256(engine.encode()).hexdigest()
    assert intact.matches and intact.resolves
    assert (changed.install, changed.record_sha256) == (INSTALL_WHEEL, hashlib.sha256(engine.encode()).hexdigest())
    assert changed.sha256 != changed.record_sha256 and not changed.matches
    problems = trusted_problems(changed)
    assert "its file belongs to distribution tinygate, not airflow-mlsecops" in problems
    assert any("the RECORD of tinygate lists" in p and "the installed file was changed" in p for p in problems)


def test_a_changed_file_of_an_installed_airflow_mlsecops_is_not_trusted(tmp_path: Path) -> None:
    """The package installed from a wheel-like copy (RECORD with digests), one module changed afterwards:
    that module's classes are refused, the others still trusted."""
    site = tmp_path / "site"
    files = {
        str(path.relative_to(SRC)): path.read_text()
        for path in (SRC / "airflow_mlsecops").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    _install_like_a_wheel(site, "airflow_mlsecops", files, dist="airflow-mlsecops")
    changed = site / "airflow_mlsecops" / "operators" / "robustness.py"
    changed.write_text(changed.read_text() + "\n# min_robust_accuracy ignored from here on\n")
    added = site / "airflow_mlsecops" / "operators" / "lax.py"  # dropped into the installed package afterwards
    added.write_text("from airflow_mlsecops.operators.robustness import RobustnessGateOperator as LaxRobustness\n")
    probe = textwrap.dedent(
        """
        import json
        import airflow_mlsecops
        from airflow_mlsecops.evidence.producer import CodeIdentity, trusted_problems
        from airflow_mlsecops.operators.robustness import RobustnessGateOperator
        from airflow_mlsecops.operators.pii import PIIScanGateOperator
        import airflow_mlsecops.operators.lax as lax

        class LaxRobustness(RobustnessGateOperator):
            pass

        LaxRobustness.__module__ = "airflow_mlsecops.operators.lax"
        lax.LaxRobustness = LaxRobustness
        out = {}
        for key, cls in (("tampered", RobustnessGateOperator), ("intact", PIIScanGateOperator), ("added", LaxRobustness)):
            identity = CodeIdentity.of(cls)
            out[key] = {**identity.to_dict(), "problems": trusted_problems(identity)}
        out["package"] = airflow_mlsecops.__file__
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["package"] == str(site / "airflow_mlsecops" / "__init__.py")  # the copy, not the source tree
    intact, tampered, added_class = out["intact"], out["tampered"], out["added"]
    assert intact["install"] == "wheel" and intact["matches"] and intact["problems"] == []
    assert tampered["install"] == "wheel" and not tampered["matches"]
    assert tampered["record_sha256"] == hashlib.sha256(files["airflow_mlsecops/operators/robustness.py"].encode()).hexdigest()
    (problem,) = tampered["problems"]
    assert "robustness.py hashes to sha256" in problem and "the RECORD of airflow-mlsecops lists" in problem
    assert "the installed file was changed" in problem
    assert added_class["install"] == "unlisted" and added_class["distribution"] == "airflow-mlsecops"
    assert (
        f"{added.resolve()} is not listed in the RECORD of airflow-mlsecops: it was added after installation"
        in (added_class["problems"])
    )


# ----------------------------------------------------------------------------- producers on results
def test_run_gate_names_its_caller_as_the_engine(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    real = attest_artifacts([str(data)]).result
    assert real.producer is not None and real.producer["operator"] is None
    assert real.producer["engine"]["name"] == "airflow_mlsecops.gates.provenance.attest_artifacts"
    assert trusted_problems(real.producer["engine"]) == []

    # A body that "judges" nothing, run by code outside the package: named as what it is.
    made_up = run_gate("robustness", lambda: Evaluation(passed=True, summary="robust")).result
    assert made_up.producer is not None
    assert made_up.producer["engine"]["name"] == f"{__name__}.test_run_gate_names_its_caller_as_the_engine"
    assert "not part of the airflow_mlsecops package" in trusted_problems(made_up.producer["engine"])[0]

    by_hand = GateResult.create(gate="robustness", verdict=Verdict.PASSED)
    assert by_hand.producer is None and "producer" not in by_hand.to_dict()


def test_a_result_with_a_producer_round_trips_and_old_records_stay_readable() -> None:
    operator = CodeIdentity.of(RobustnessGateOperator).to_dict()
    result = GateResult.create(
        gate="robustness",
        verdict=Verdict.PASSED,
        subjects=[Subject("model", "a" * 64)],
        context=PipelineContext("dag", "run", "check_robustness"),
    ).with_producer(engine=CodeIdentity.of(attest_artifacts).to_dict(), operator=operator)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["producer"]["operator"]["name"] == "airflow_mlsecops.operators.robustness.RobustnessGateOperator"
    assert GateResult.from_dict(data) == result
    assert GateResult.from_dict(data).to_dict() == data

    old = dict(data)
    del old["producer"]
    assert GateResult.from_dict(old).producer is None
    with pytest.raises(Exception, match="producer must be a mapping"):
        GateResult.from_dict({**data, "producer": "airflow_mlsecops"})


def test_producer_problem_names_the_class_and_why() -> None:
    engine = CodeIdentity.of(attest_artifacts).to_dict()
    trusted = {"engine": engine, "operator": CodeIdentity.of(RobustnessGateOperator).to_dict()}
    assert producer_problem(trusted) is None
    lax = {"engine": engine, "operator": CodeIdentity.of(DefinedInATest).to_dict()}
    problem = producer_problem(lax)
    assert problem is not None
    assert problem.startswith(f"was produced by {__name__}.DefinedInATest, which is not airflow-mlsecops code (")
    assert "[" not in problem and "]" not in problem  # Airflow's import error table strips brackets
    assert producer_problem(lax, allowed=[f"{__name__}.DefinedInATest"]) is None
    assert "names no producer" in (producer_problem(None) or "")
    # A gate run outside Airflow (CLI, library call) has no operator; every gate operator stamps itself.
    assert producer_problem({"engine": engine, "operator": None}) is None
    assert "names no engine" in (producer_problem({"engine": None, "operator": trusted["operator"]}) or "")
    made_up = CodeIdentity.of(DefinedInATest.evaluate).to_dict()
    assert (producer_problem({"engine": made_up, "operator": None}) or "").startswith(
        f"was produced by the engine {__name__}.DefinedInATest.evaluate, which is not airflow-mlsecops code"
    )
    assert "malformed" in (producer_problem({"engine": engine, "operator": {"name": 3}}) or "")
