"""in-toto Statement v1 for a gate result: payload round trip and refusal of foreign or edited statements."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_mlsecops.evidence.dsse import sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.evidence.statement import GATE_RESULT_PREDICATE, STATEMENT_TYPE, GateStatement, canonical_json
from airflow_mlsecops.exceptions import VerificationError

T0 = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _result(subjects: tuple[Subject, ...] = (Subject("train.csv", _sha("a")), Subject("model.pkl", _sha("b")))) -> GateResult:
    return GateResult.create(
        gate="artifact-provenance",
        verdict=Verdict.PASSED,
        subjects=subjects,
        findings=[Finding(id="pickle.opcode", severity=Severity.LOW, message="GLOBAL opcode", location="model.pkl@12")],
        metrics={"files": 2.0},
        policy={"allow_pickle": False},
        tool_versions={"cryptography": "46"},
        started_at=T0,
        finished_at=T0,
        context=PipelineContext("dag", "run", "task"),
        summary="ok \u2713",  # non-ASCII survives canonical JSON
    )


def _statement() -> GateStatement:
    return GateStatement(
        result=_result(),
        evidence_files={"result.json": _sha("r"), "reports/scan.json": _sha("s")},
        policy_digest=_sha("policy"),
    )


def _edited(statement: GateStatement, edit: Any) -> bytes:
    data = json.loads(statement.to_payload())
    edit(data)
    return canonical_json(data)


def test_payload_round_trip() -> None:
    statement = _statement()
    again = GateStatement.from_payload(statement.to_payload())
    assert again == statement
    assert again.to_payload() == statement.to_payload()


def test_payload_is_canonical_in_toto_json() -> None:
    payload = _statement().to_payload()
    data = json.loads(payload)
    assert payload == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert "\u2713".encode() in payload
    assert data["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert data["predicateType"] == GATE_RESULT_PREDICATE
    assert data["subject"] == [
        {"name": "train.csv", "digest": {"sha256": _sha("a")}},
        {"name": "model.pkl", "digest": {"sha256": _sha("b")}},
    ]
    assert data["predicate"]["evidence_files"] == {
        "reports/scan.json": {"sha256": _sha("s")},
        "result.json": {"sha256": _sha("r")},
    }
    assert data["predicate"]["policy_digest"] == _sha("policy")
    assert data["predicate"]["result"] == _result().to_dict()


def test_signed_statement_round_trip() -> None:
    key = SigningKey.generate()
    statement = _statement()
    envelope = sign_envelope(statement.to_payload(), key)
    verify_envelope(envelope, {key.keyid: key.public_key})
    assert GateStatement.from_payload(envelope.payload) == statement


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"), "not an in-toto Statement v1"),
        (lambda d: d.pop("_type"), "not an in-toto Statement v1"),
        (lambda d: d.update(predicateType="https://slsa.dev/provenance/v1"), "unexpected predicate type"),
        (lambda d: d.pop("predicateType"), "unexpected predicate type"),
        (lambda d: d.update(predicate=None), "holds no gate result"),
        (lambda d: d["predicate"].pop("result"), "holds no gate result"),
        (lambda d: d["predicate"]["result"].update(verdict="maybe"), "predicate is malformed"),
        (lambda d: d["predicate"].update(evidence_files={"a": "not-a-map"}), "predicate is malformed"),
    ],
)
def test_foreign_or_malformed_statement_is_refused(edit: Any, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        GateStatement.from_payload(_edited(_statement(), edit))


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"\xff\xfe", b"[]", b'"statement"', b"null"], ids=["empty", "truncated", "utf16", "list", "str", "null"]
)
def test_non_statement_payload_is_refused(raw: bytes) -> None:
    with pytest.raises(VerificationError):
        GateStatement.from_payload(raw)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda d: d["subject"][0]["digest"].update(sha256=_sha("other")), id="digest-changed"),
        pytest.param(lambda d: d["subject"][1].update(name="other.pkl"), id="name-changed"),
        pytest.param(lambda d: d["subject"].pop(), id="subject-dropped"),
        pytest.param(lambda d: d["subject"].append({"name": "x", "digest": {"sha256": _sha("x")}}), id="subject-added"),
        pytest.param(lambda d: d["subject"].reverse(), id="subjects-reordered"),
        pytest.param(lambda d: d.update(subject=[]), id="subjects-emptied"),
        pytest.param(lambda d: d.pop("subject"), id="subjects-removed"),
    ],
)
def test_statement_subjects_must_match_the_result(edit: Any) -> None:
    with pytest.raises(VerificationError, match="subjects differ"):
        GateStatement.from_payload(_edited(_statement(), edit))


def test_result_without_subjects_still_has_an_in_toto_subject() -> None:
    result = _result(subjects=())
    data = GateStatement(result).to_dict()
    expected_digest = hashlib.sha256(canonical_json(result.to_dict())).hexdigest()
    assert data["subject"] == [{"name": "mlsecops-gate-result:artifact-provenance", "digest": {"sha256": expected_digest}}]
    assert GateStatement.from_payload(GateStatement(result).to_payload()).result == result


def test_subjectless_results_differ_in_subject_digest() -> None:
    first = GateStatement(_result(subjects=())).to_dict()["subject"]
    second = GateStatement(_result(subjects=()).with_context(None)).to_dict()["subject"]
    assert first[0]["name"] == second[0]["name"]
    assert first[0]["digest"] != second[0]["digest"]


def test_edited_subject_of_a_subjectless_result_is_refused() -> None:
    statement = GateStatement(_result(subjects=()))

    def claim_a_model(data: dict[str, Any]) -> None:
        data["subject"] = [{"name": "model.pkl", "digest": {"sha256": _sha("some other model")}}]

    with pytest.raises(VerificationError, match="subjects differ"):
        GateStatement.from_payload(_edited(statement, claim_a_model))


# ----------------------------------------------------------------------------- the record's signed identity (issue 11, item 8)
def test_the_statement_names_its_record() -> None:
    statement = GateStatement(result=_result(), evidence_files={"result.json": _sha("r")}, record="decision-2")
    data = json.loads(statement.to_payload())
    assert data["predicate"]["record"] == "decision-2"
    assert data["predicate"]["result"]["context"] == {
        "dag_id": "dag",
        "run_id": "run",
        "task_id": "task",
        "try_number": 1,
        "map_index": -1,
    }
    again = GateStatement.from_payload(statement.to_payload())
    assert again.record == "decision-2" and again.names_record
    assert json.loads(_statement().to_payload())["predicate"]["record"] is None


def test_a_statement_from_before_the_record_was_signed_stays_readable() -> None:
    legacy = _edited(_statement(), lambda d: d["predicate"].pop("record"))
    statement = GateStatement.from_payload(legacy)
    assert statement.record is None and not statement.names_record
    assert statement.to_payload() == legacy  # read back byte for byte, as it was signed


def test_a_record_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(VerificationError, match="record is int"):
        GateStatement.from_payload(_edited(_statement(), lambda d: d["predicate"].update(record=3)))
