"""in-toto Statement v1 for a gate result, and the reverse.

The statement's subjects are the artifacts the gate judged (dataset files, model files), so the
attestation is bound to their exact bytes. The predicate is the full :class:`GateResult` plus the
digest of every evidence file stored beside the envelope (reports, manifests), so the verifier can
tell if one of them changed::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "train.csv", "digest": {"sha256": "..."}}],
     "predicateType": "https://airflow-mlsecops.dev/attestation/gate-result/v1",
     "predicate": {"result": {...}, "evidence_files": {"result.json": {"sha256": "..."}},
                   "policy_digest": null, "record": null}}

The statement names the record it is, from signed content only: the result's ``context`` (dag,
run, task, try number, map index; ``started_at`` and the gate outside Airflow) and ``record``
(``decision-1``..., or ``null`` for the one record of an attempt). The verifier recomputes from
them where the envelope must be stored. Statements written before ``record`` existed have no
``record`` key (:attr:`GateStatement.names_record` is false); they stay readable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlsecops.evidence.models import GateResult
from airflow_mlsecops.exceptions import VerificationError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
GATE_RESULT_PREDICATE = "https://airflow-mlsecops.dev/attestation/gate-result/v1"


def canonical_json(data: Any) -> bytes:
    """Deterministic JSON (sorted keys, no whitespace) for hashing and signing."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _result_subject(gate: str, result: Any) -> dict[str, Any]:
    """in-toto requires at least one subject. A gate that could not read its inputs judged nothing,
    so its statement is about the result itself, content-addressed."""
    return {"name": f"mlsecops-gate-result:{gate}", "digest": {"sha256": hashlib.sha256(canonical_json(result)).hexdigest()}}


@dataclass(frozen=True)
class GateStatement:
    """A gate result as an in-toto statement, with the digests of its evidence files."""

    result: GateResult
    evidence_files: Mapping[str, str] = field(default_factory=dict)  # relative path -> sha256
    policy_digest: str | None = None
    record: str | None = None  # which record of the attempt (``response-2``...), None for the only one
    names_record: bool = True  # False for a statement written before ``record`` was signed

    def to_dict(self) -> dict[str, Any]:
        subjects = [s.to_intoto() for s in self.result.subjects]
        predicate: dict[str, Any] = {
            "result": self.result.to_dict(),
            "evidence_files": {path: {"sha256": digest} for path, digest in sorted(self.evidence_files.items())},
            "policy_digest": self.policy_digest,
        }
        if self.names_record:
            predicate["record"] = self.record
        if not subjects:
            subjects = [_result_subject(self.result.gate, predicate["result"])]
        return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": GATE_RESULT_PREDICATE, "predicate": predicate}

    def to_payload(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_payload(cls, payload: bytes) -> GateStatement:
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise VerificationError(f"statement is not valid JSON: {type(exc).__name__}") from exc
        if not isinstance(data, dict) or data.get("_type") != STATEMENT_TYPE:
            raise VerificationError("payload is not an in-toto Statement v1")
        if data.get("predicateType") != GATE_RESULT_PREDICATE:
            raise VerificationError(f"unexpected predicate type {data.get('predicateType')!r}")
        predicate = data.get("predicate")
        if not isinstance(predicate, dict) or "result" not in predicate:
            raise VerificationError("statement predicate holds no gate result")
        try:
            result = GateResult.from_dict(predicate["result"])
            files = {str(k): str(v["sha256"]) for k, v in dict(predicate.get("evidence_files", {})).items()}
        except Exception as exc:
            raise VerificationError(f"statement predicate is malformed: {exc}") from exc
        record = predicate.get("record")
        if record is not None and not isinstance(record, str):
            raise VerificationError(f"statement predicate is malformed: record is {type(record).__name__}, not a string")
        declared = [s.to_intoto() for s in result.subjects] or [_result_subject(result.gate, predicate["result"])]
        if data.get("subject") != declared:
            raise VerificationError("statement subjects differ from the gate result's subjects")
        return cls(
            result=result,
            evidence_files=files,
            policy_digest=predicate.get("policy_digest"),
            record=record,
            names_record="record" in predicate,
        )
