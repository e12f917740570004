"""SLSA provenance v1 statements for datasets and models, and verification of artifacts against them.

A statement names every file of every artifact as an in-toto subject, annotated with the artifact
it belongs to and its path inside it, so a verifier can tell a changed file from a missing or an
added one::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "/data/train.csv", "digest": {"sha256": "..."},
                  "annotations": {"mlsecops.artifact": "/data/train.csv", "mlsecops.path": ""}}],
     "predicateType": "https://slsa.dev/provenance/v1",
     "predicate": {"buildDefinition": {"buildType": "...", "externalParameters": {...},
                                       "internalParameters": {...}, "resolvedDependencies": [...]},
                   "runDetails": {"builder": {"id": "..."}, "metadata": {...}}}}

>>> from airflow_mlsecops.evidence.slsa import build_provenance
>>> payload = build_provenance({"/data/train.csv": manifest}, builder_id="airflow://dag/task")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_mlsecops.evidence.digest import FileEntry
from airflow_mlsecops.evidence.statement import STATEMENT_TYPE, canonical_json
from airflow_mlsecops.exceptions import VerificationError

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://airflow-mlsecops.dev/buildtypes/airflow-task/v1"
ARTIFACT_ANNOTATION = "mlsecops.artifact"
PATH_ANNOTATION = "mlsecops.path"


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None


def build_provenance(
    manifests: Mapping[str, Sequence[FileEntry]],
    *,
    artifact_is_file: Mapping[str, bool] | None = None,
    builder_id: str,
    external_parameters: Mapping[str, Any] | None = None,
    internal_parameters: Mapping[str, Any] | None = None,
    resolved_dependencies: Sequence[Mapping[str, Any]] = (),
    invocation_id: str | None = None,
    started_on: datetime | None = None,
    finished_on: datetime | None = None,
) -> bytes:
    """The canonical JSON payload of a SLSA v1 provenance statement for ``manifests``.

    :param manifests: artifact name -> its files (one entry with path = file name for a single file).
    :param artifact_is_file: artifact name -> whether it is a single file (its subject then carries
        the artifact's own name and an empty path).
    """
    subjects: list[dict[str, Any]] = []
    for artifact, entries in manifests.items():
        is_file = (artifact_is_file or {}).get(artifact, False)
        for entry in entries:
            rel = "" if is_file else entry.path
            subjects.append(
                {
                    "name": artifact if is_file else f"{artifact.rstrip('/')}/{entry.path}",
                    "digest": {"sha256": entry.sha256},
                    "annotations": {ARTIFACT_ANNOTATION: artifact, PATH_ANNOTATION: rel, "size": entry.size},
                }
            )
    if not subjects:
        raise VerificationError("a provenance statement needs at least one subject")
    metadata: dict[str, Any] = {"invocationId": invocation_id}
    if started_on:
        metadata["startedOn"] = _iso(started_on)
    if finished_on:
        metadata["finishedOn"] = _iso(finished_on)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": dict(external_parameters or {}),
                "internalParameters": dict(internal_parameters or {}),
                "resolvedDependencies": [dict(d) for d in resolved_dependencies],
            },
            "runDetails": {"builder": {"id": builder_id}, "metadata": metadata},
        },
    }
    return canonical_json(statement)


@dataclass(frozen=True)
class AttestedArtifact:
    """What a provenance statement says about one artifact: relative path -> sha256."""

    name: str
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return list(self.files) == [""]


@dataclass(frozen=True)
class ProvenanceStatement:
    artifacts: Mapping[str, AttestedArtifact]
    predicate: Mapping[str, Any]

    @property
    def builder_id(self) -> str:
        return str(self.predicate.get("runDetails", {}).get("builder", {}).get("id", ""))


def _safe_relative(path: str) -> bool:
    if path == "":
        return True
    if path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    normal = posixpath.normpath(path)
    return normal == path and not normal.startswith("../") and normal != ".."


def parse_provenance(payload: bytes) -> ProvenanceStatement:
    """Parse a SLSA v1 provenance payload; raise :class:`VerificationError` on anything malformed,
    including a subject path that would escape its artifact (``../``, absolute paths)."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"provenance is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("_type") != STATEMENT_TYPE:
        raise VerificationError("provenance is not an in-toto Statement v1")
    if data.get("predicateType") != SLSA_PROVENANCE_V1:
        raise VerificationError(f"predicate type is {data.get('predicateType')!r}, expected {SLSA_PROVENANCE_V1}")
    subjects = data.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("provenance names no subject")
    grouped: dict[str, dict[str, str]] = {}
    for subject in subjects:
        try:
            annotations = subject.get("annotations") or {}
            artifact = str(annotations.get(ARTIFACT_ANNOTATION, subject["name"]))
            rel = str(annotations.get(PATH_ANNOTATION, ""))
            digest = str(subject["digest"]["sha256"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise VerificationError(f"malformed provenance subject: {exc}") from exc
        if not _safe_relative(rel):
            raise VerificationError(f"provenance subject path {rel!r} escapes its artifact {artifact!r}")
        files = grouped.setdefault(artifact, {})
        if rel in files:
            raise VerificationError(f"provenance names {artifact!r} path {rel!r} twice")
        files[rel] = digest
    for artifact, files in grouped.items():
        if "" in files and len(files) > 1:
            raise VerificationError(f"provenance describes {artifact!r} both as a file and as a directory")
    return ProvenanceStatement(
        artifacts={name: AttestedArtifact(name, files) for name, files in grouped.items()},
        predicate=data.get("predicate") or {},
    )
