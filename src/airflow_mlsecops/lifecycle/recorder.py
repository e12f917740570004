"""Turn a :class:`GateResult` into signed, recorded evidence: DSSE envelope, ledger entry, MLflow.

>>> from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
>>> recorder = EvidenceRecorder.from_settings()                      # doctest: +SKIP
>>> recorded = recorder.record(result, experiment_name="my-dag")    # doctest: +SKIP

Order of operations, chosen so that nothing recorded is ever lost and nothing unrecorded passes:

1. the statement is signed (a missing or bad key stops here: no evidence, the gate fails);
2. the envelope is appended to the ledger (the tamper-evident anchor);
3. the envelope, the readable result and the gate's files are logged to the MLflow run, with
   verdict tags and metrics. If MLflow fails here, a ``recording-failed`` entry pointing at the
   attestation is appended to the ledger, so an audit sees exactly what happened, and
   :class:`EvidenceRecordingError` is raised: the gate fails closed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.dsse import sign_envelope
from airflow_mlsecops.evidence.ledger import KIND_RECORDING_FAILED, EvidenceLedger
from airflow_mlsecops.evidence.models import GateResult
from airflow_mlsecops.evidence.signers import Signer
from airflow_mlsecops.evidence.statement import GateStatement
from airflow_mlsecops.exceptions import EvidenceRecordingError, MLSecOpsError
from airflow_mlsecops.io.mlflow_store import (
    ENVELOPE_FILE,
    RECORD_NAME,
    RESULT_FILE,
    TAG_PREFIX,
    MLflowEvidenceStore,
    evidence_dir_for,
    task_key_for,
)

_SAFE_FILE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


@dataclass(frozen=True)
class RecordedEvidence:
    """Where a gate's evidence went."""

    mlflow_run_id: str
    tracking_uri: str
    artifact_dir: str
    ledger_seq: int
    envelope_sha256: str
    keyid: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class EvidenceRecorder:
    """Signs gate results and records them in the ledger and in MLflow.

    :param signing_key: the key that signs every envelope.
    :param ledger: the tamper-evident ledger.
    :param store: the MLflow evidence store.
    """

    def __init__(self, *, signing_key: Signer, ledger: EvidenceLedger, store: MLflowEvidenceStore) -> None:
        self.signing_key = signing_key
        self.ledger = ledger
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> EvidenceRecorder:
        settings = settings or Settings.from_env()
        return cls(
            signing_key=settings.load_signing_key(),
            ledger=EvidenceLedger(settings.ledger_url),
            store=MLflowEvidenceStore.from_settings(settings),
        )

    def resolve_run(self, result: GateResult, *, experiment_name: str, mlflow_run_id: str | None = None) -> str:
        if mlflow_run_id:
            return mlflow_run_id
        if result.context is not None:
            return self.store.resolve_pipeline_run(
                experiment_name=experiment_name, dag_id=result.context.dag_id, run_id=result.context.run_id
            )
        return self.store.create_run(experiment_name=experiment_name, run_name=f"{result.gate}-cli")

    def record(
        self,
        result: GateResult,
        *,
        experiment_name: str,
        files: Mapping[str, bytes] | None = None,
        statements: Mapping[str, bytes] | None = None,
        mlflow_run_id: str | None = None,
        policy_digest: str | None = None,
        record: str | None = None,
    ) -> RecordedEvidence:
        """Sign ``result`` and record it with its evidence ``files`` (relative name -> bytes).

        :param statements: further in-toto statement payloads to sign and store as DSSE envelopes
            (file name -> payload), e.g. a SLSA provenance statement.
        :param record: which record of the attempt this is (``request-1``, ``response-2``,
            ``decision-1``...: a word and a number) when one attempt records several; signed in the
            statement, it names the folder the envelope must be stored in.
        """
        if policy_digest is None:
            # Every record names the policy that was in force (None when none is configured); a
            # configured but unreadable policy stops the recording: nothing passes unjudged.
            from airflow_mlsecops.policy.model import policy_digest as configured_policy_digest

            try:
                policy_digest = configured_policy_digest()
            except MLSecOpsError as exc:
                raise EvidenceRecordingError(f"the configured policy cannot be read: {exc}") from exc
        files = dict(files or {})
        for name, payload in (statements or {}).items():
            files[name] = sign_envelope(payload, self.signing_key).to_json()
        if record is not None and not RECORD_NAME.match(record):
            raise EvidenceRecordingError(f"record name {record!r} is not allowed (a word and a number, e.g. 'decision-1')")
        for name in files:
            if not _SAFE_FILE.match(name) or ".." in name.split("/") or name in (ENVELOPE_FILE,):
                raise EvidenceRecordingError(f"evidence file name {name!r} is not allowed")
        result_bytes = json.dumps(result.to_dict(), indent=2, sort_keys=True).encode("utf-8") + b"\n"
        files[RESULT_FILE] = result_bytes
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        statement = GateStatement(result=result, evidence_files=digests, policy_digest=policy_digest, record=record)
        envelope = sign_envelope(statement.to_payload(), self.signing_key)
        envelope_json = envelope.to_json().decode("utf-8")
        files[ENVELOPE_FILE] = envelope_json.encode("utf-8")

        try:
            run_id = self.resolve_run(result, experiment_name=experiment_name, mlflow_run_id=mlflow_run_id)
        except MLSecOpsError as exc:
            raise EvidenceRecordingError(f"evidence of gate {result.gate} could not be recorded: {exc}") from exc
        ctx = result.context
        try:
            entry = self.ledger.append(
                envelope_json=envelope_json,
                gate=result.gate,
                dag_id=ctx.dag_id if ctx else None,
                run_id=ctx.run_id if ctx else None,
                task_id=ctx.task_id if ctx else None,
                mlflow_run_id=run_id,
            )
        except MLSecOpsError as exc:
            raise EvidenceRecordingError(f"evidence of gate {result.gate} could not be written to the ledger: {exc}") from exc

        artifact_dir = evidence_dir_for(result, record)
        key = task_key_for(result)
        tags = {
            f"{TAG_PREFIX}{key}.verdict": result.verdict.value,
            f"{TAG_PREFIX}{key}.gate": result.gate,
            f"{TAG_PREFIX}{key}.evidence": artifact_dir,
            f"{TAG_PREFIX}{key}.ledger_seq": str(entry.seq),
        }
        metrics = {f"mlsecops.{key}.{name}": value for name, value in result.metrics.items()}
        metrics[f"mlsecops.{key}.passed"] = 1.0 if result.verdict.value == "passed" else 0.0
        try:
            self.store.log_files(run_id, artifact_dir, files)
            self.store.log_tags_and_metrics(run_id, tags, metrics)
        except MLSecOpsError as exc:
            note = {"reason": str(exc), "artifact_dir": artifact_dir, "at": datetime.now(timezone.utc).isoformat()}
            try:
                self.ledger.append(
                    envelope_json=json.dumps(note, sort_keys=True),
                    gate=result.gate,
                    kind=KIND_RECORDING_FAILED,
                    dag_id=ctx.dag_id if ctx else None,
                    run_id=ctx.run_id if ctx else None,
                    task_id=ctx.task_id if ctx else None,
                    mlflow_run_id=run_id,
                    ref_seq=entry.seq,
                )
            except MLSecOpsError:
                pass  # the original failure is what the user must see
            raise EvidenceRecordingError(
                f"evidence of gate {result.gate} is in the ledger (seq {entry.seq}) but could not be logged to MLflow: {exc}"
            ) from exc
        return RecordedEvidence(
            mlflow_run_id=run_id,
            tracking_uri=self.store.tracking_uri,
            artifact_dir=artifact_dir,
            ledger_seq=entry.seq,
            envelope_sha256=entry.envelope_sha256,
            keyid=self.signing_key.keyid,
        )
