"""The artifact provenance gate: manifests of files and directories, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

from airflow_mlsecops.evidence.digest import file_manifest, manifest_digest, sha256_file
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.provenance import attest_artifacts


def test_file_and_directory_subjects_and_manifest(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "sub" / "weights.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    outcome = attest_artifacts([str(data), str(model)])
    result = outcome.result
    assert result.verdict is Verdict.PASSED
    subjects = {s.name: s.sha256 for s in result.subjects}
    assert subjects[str(data.absolute())] == sha256_file(data)
    assert subjects[str(model.absolute())] == manifest_digest(file_manifest(model))
    manifest = json.loads(outcome.files["manifest.json"])
    paths = {e["path"] for e in manifest[str(model.absolute())]}
    assert paths == {"MLmodel", "sub/weights.bin"}
    assert result.metrics["files"] == 3


def test_named_subjects_keep_their_uri(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.skops").write_bytes(b"x" * 10)
    result = attest_artifacts({"models:/m-123": str(tmp_path / "m")}, gate="model-provenance").result
    assert result.gate == "model-provenance"
    assert result.subjects[0].name == "models:/m-123"


def test_symlink_and_empty_directory_and_missing_path_are_errors(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the model")
    model = tmp_path / "model"
    model.mkdir()
    (model / "link").symlink_to(outside)
    linked = attest_artifacts([str(model)]).result
    assert linked.verdict is Verdict.ERROR and "symbolic link" in linked.summary

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty directory" in attest_artifacts([str(empty)]).result.summary
    assert attest_artifacts([str(tmp_path / "nope")]).result.verdict is Verdict.ERROR
