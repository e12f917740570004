"""Artifact provenance gate: hash every file of one or more artifacts and attest the manifest.

>>> from airflow_mlsecops.gates.provenance import attest_artifacts
>>> outcome = attest_artifacts(["data/train.csv"])   # doctest: +SKIP

Each artifact (a file or a directory, local or an MLflow ``runs:/``/``models:/`` URI already
downloaded by the caller) becomes one in-toto subject: a file's digest is the SHA-256 of its bytes,
a directory's is the SHA-256 of its manifest (see :mod:`airflow_mlsecops.evidence.digest`). The
per-file manifest (path, size, sha256) is recorded as ``manifest.json`` and covered by the
signature. Hashing is streamed and parallel across files; symbolic links and empty directories are
refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from airflow_mlsecops.evidence.digest import file_manifest, manifest_digest
from airflow_mlsecops.evidence.models import PipelineContext, Subject
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.gates.base import Evaluation, GateOutcome, run_gate

GATE_NAME = "artifact-provenance"


def attest_artifacts(
    artifacts: Sequence[str] | Mapping[str, str],
    *,
    gate: str = GATE_NAME,
    context: PipelineContext | None = None,
    workers: int | None = None,
) -> GateOutcome:
    """Hash ``artifacts`` and build the provenance result.

    :param artifacts: local paths, or a mapping of subject name (e.g. ``models:/m-1``) to the local
        path holding its bytes.
    """
    named = dict(artifacts) if isinstance(artifacts, Mapping) else {str(Path(a).absolute()): a for a in artifacts}
    if not named:
        raise ConfigurationError("no artifacts to attest")

    def body() -> Evaluation:
        subjects: list[Subject] = []
        manifest: dict[str, list[dict[str, object]]] = {}
        total_bytes = 0
        total_files = 0
        for name, local in named.items():
            entries = file_manifest(local, workers=workers)
            is_file = Path(local).is_file()
            digest = entries[0].sha256 if is_file else manifest_digest(entries)
            subjects.append(Subject(name, digest))
            manifest[name] = [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries]
            total_bytes += sum(e.size for e in entries)
            total_files += len(entries)
        return Evaluation(
            passed=True,
            summary=f"attested {len(subjects)} artifact(s): {total_files} file(s), {total_bytes} bytes",
            subjects=subjects,
            metrics={"files": float(total_files), "bytes": float(total_bytes)},
            files={"manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")},
        )

    return run_gate(gate, body, policy={"digest": "sha256", "symlinks": "refused"}, context=context)
