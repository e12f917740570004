"""GateResult and its parts: lossless JSON round trip, validation, malformed input."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_mlsecops.evidence.models import Finding, GateResult, PipelineContext, Severity, Subject, Verdict
from airflow_mlsecops.exceptions import ConfigurationError


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def full_result() -> GateResult:
    """A result with every field set to something other than its default."""
    return GateResult.create(
        gate="data-validation",
        verdict=Verdict.FAILED,
        subjects=[Subject("data/train.csv", _sha("train")), Subject("model/model.pkl", _sha("model"))],
        findings=[
            Finding(
                id="expectation.expect_column_values_to_not_be_null",
                severity=Severity.HIGH,
                message="column age has 12% nulls, at most 1% allowed",
                location="data/train.csv:age",
                atlas=("AML.T0020",),
                owasp_ml=("ML02:2023",),
                passed=False,
            ),
            Finding(id="expectation.expect_table_row_count_to_be_between", severity=Severity.INFO, message="ok", passed=True),
        ],
        metrics={"rows": 1200.0, "null_share": 0.12},
        policy={"max_null_share": 0.01, "columns": ["age", "income"], "nested": {"strict": True, "limit": None}},
        tool_versions={"great_expectations": "1.3.0", "python": "3.11.7"},
        started_at=datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
        finished_at=datetime(2025, 1, 2, 3, 4, 7, 623456, tzinfo=timezone.utc),
        context=PipelineContext(dag_id="train_model", run_id="manual__2025-01-02", task_id="validate", try_number=2, map_index=3),
        summary="1 of 2 expectations failed",
        warn_only=True,
        details={"unexpected_rows": [3, 17, 99], "sample": {"age": None, "income": 1.5}},
    )


def test_round_trip_keeps_every_field() -> None:
    result = full_result()
    again = GateResult.from_dict(result.to_dict())
    assert again == result
    assert again.findings[0].atlas == ("AML.T0020",)
    assert again.context == PipelineContext("train_model", "manual__2025-01-02", "validate", 2, 3)
    assert again.details["unexpected_rows"] == [3, 17, 99]


def test_round_trip_through_json_text() -> None:
    result = full_result()
    text = json.dumps(result.to_dict(), sort_keys=True)
    again = GateResult.from_dict(json.loads(text))
    assert again == result
    assert json.dumps(again.to_dict(), sort_keys=True) == text


def test_to_dict_uses_stable_json_names() -> None:
    data = full_result().to_dict()
    assert data["verdict"] == "failed"
    assert data["started_at"] == "2025-01-02T03:04:05.123456Z"
    assert data["finished_at"] == "2025-01-02T03:04:07.623456Z"
    assert data["subjects"][0] == {"name": "data/train.csv", "digest": {"sha256": _sha("train")}}
    assert data["findings"][0]["severity"] == "high"
    assert data["findings"][0]["atlas"] == ["AML.T0020"]
    assert data["context"]["try_number"] == 2
    assert data["warn_only"] is True
    assert set(data) == {
        "gate",
        "verdict",
        "summary",
        "warn_only",
        "subjects",
        "findings",
        "metrics",
        "policy",
        "tool_versions",
        "started_at",
        "finished_at",
        "context",
        "details",
    }


def test_timestamps_in_another_zone_are_written_as_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = GateResult.create(
        gate="g",
        verdict=Verdict.PASSED,
        started_at=datetime(2025, 6, 1, 12, 0, 0, tzinfo=plus_two),
        finished_at=datetime(2025, 6, 1, 12, 0, 30, tzinfo=plus_two),
    )
    data = result.to_dict()
    assert data["started_at"] == "2025-06-01T10:00:00Z"
    again = GateResult.from_dict(data)
    assert again.started_at == result.started_at
    assert again.started_at.utcoffset() == timedelta(0)
    assert again.duration_seconds == 30.0


def test_minimal_dict_gets_defaults() -> None:
    result = GateResult.from_dict(
        {"gate": "g", "verdict": "error", "started_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:00:01Z"}
    )
    assert result.subjects == ()
    assert result.findings == ()
    assert result.context is None
    assert result.warn_only is False
    assert result.verdict is Verdict.ERROR


def test_result_without_context_round_trips() -> None:
    result = GateResult.create(gate="g", verdict=Verdict.WARNED)
    assert result.to_dict()["context"] is None
    assert GateResult.from_dict(result.to_dict()) == result


def test_failed_findings_and_duration() -> None:
    result = full_result()
    assert [f.id for f in result.failed_findings] == ["expectation.expect_column_values_to_not_be_null"]
    assert result.duration_seconds == pytest.approx(2.5)


def test_results_are_frozen() -> None:
    result = full_result()
    with pytest.raises(FrozenInstanceError):
        result.verdict = Verdict.PASSED  # type: ignore[misc]
    ctx = PipelineContext("d", "r", "t")
    assert result.with_context(ctx).context == ctx
    assert result.context != ctx


@pytest.mark.parametrize(
    ("verdict", "blocks"),
    [(Verdict.PASSED, False), (Verdict.WARNED, False), (Verdict.FAILED, True), (Verdict.ERROR, True)],
)
def test_verdict_blocks(verdict: Verdict, blocks: bool) -> None:
    assert verdict.blocks is blocks


def test_severity_rank_is_ordered() -> None:
    ranks = [s.rank for s in (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 5


def test_subject_accepts_a_sha256_and_speaks_in_toto() -> None:
    digest = _sha("x")
    subject = Subject("x.csv", digest)
    assert subject.to_intoto() == {"name": "x.csv", "digest": {"sha256": digest}}
    assert Subject.from_intoto(subject.to_intoto()) == subject


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "0" * 63,
        "0" * 65,
        "g" * 64,
        "A" * 64,  # upper case: not how sha256 digests are written in in-toto
        " " + "0" * 63,
        "0" * 32 + "-" + "0" * 31,
    ],
)
def test_subject_rejects_a_bad_digest(digest: str) -> None:
    with pytest.raises(ConfigurationError, match="sha256 must be 64 lowercase hex digits"):
        Subject("x.csv", digest)


def test_subject_rejects_a_digest_with_a_trailing_newline() -> None:
    with pytest.raises(ConfigurationError):
        Subject("x.csv", "0" * 64 + "\n")


def test_subject_rejects_an_empty_name() -> None:
    with pytest.raises(ConfigurationError, match="name"):
        Subject("", "0" * 64)


def _valid() -> dict[str, Any]:
    return full_result().to_dict()


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data[key] = value

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data[key]

    return mutate


_DROP = object()


def _finding(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data["findings"][0].update(changes)
        for key in [k for k, v in changes.items() if v is _DROP]:
            del data["findings"][0][key]

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_drop("gate"), id="no-gate"),
        pytest.param(_drop("verdict"), id="no-verdict"),
        pytest.param(_set("verdict", "maybe"), id="unknown-verdict"),
        pytest.param(_drop("started_at"), id="no-started-at"),
        pytest.param(_set("finished_at", "yesterday"), id="bad-timestamp"),
        pytest.param(_set("subjects", [{"name": "x"}]), id="subject-without-digest"),
        pytest.param(_set("subjects", [{"name": "x", "digest": "abc"}]), id="subject-digest-not-a-map"),
        pytest.param(_set("subjects", [{"name": "x", "digest": {"sha256": "xyz"}}]), id="subject-bad-digest"),
        pytest.param(_set("subjects", [{"name": "", "digest": {"sha256": "0" * 64}}]), id="subject-empty-name"),
        pytest.param(_set("subjects", ["data.csv"]), id="subject-not-a-map"),
        pytest.param(_finding(severity="apocalyptic"), id="unknown-severity"),
        pytest.param(_finding(id=_DROP), id="finding-without-id"),
        pytest.param(_finding(atlas=5), id="finding-atlas-not-a-list"),
        pytest.param(_set("findings", [None]), id="finding-null"),
        pytest.param(_set("metrics", {"rows": "many"}), id="metric-not-a-number"),
        pytest.param(_set("metrics", [1, 2]), id="metrics-not-a-map"),
        pytest.param(_set("context", {"dag_id": "d"}), id="context-incomplete"),
        pytest.param(_set("context", {"dag_id": "d", "run_id": "r", "task_id": "t", "try_number": "two"}), id="bad-try"),
        pytest.param(_set("context", "dag/run/task"), id="context-not-a-map"),
    ],
)
def test_malformed_dict_is_a_configuration_error(mutate: Callable[[dict[str, Any]], None]) -> None:
    data = copy.deepcopy(_valid())
    GateResult.from_dict(copy.deepcopy(data))  # the unmodified dict is valid
    mutate(data)
    with pytest.raises(ConfigurationError):
        GateResult.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "gate", 42], ids=["none", "list", "str", "int"])
def test_non_mapping_is_a_configuration_error(data: Any) -> None:
    with pytest.raises(ConfigurationError, match="not a valid gate result"):
        GateResult.from_dict(data)
