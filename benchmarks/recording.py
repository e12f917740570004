"""Row 6: what recording one gate's evidence costs.

``EvidenceRecorder.record`` of a typical data-validation result with a 5 KiB GX report, into a
local SQLite MLflow store and a SQLite ledger (both files in the temp dir), as a gate task does it:
sign, resolve the pipeline's MLflow run, append to the ledger, log the three files, log tags and
metrics. The peer is ``MlflowClient.log_artifacts`` of the same three files alone, into the same
run. A per-step breakdown of ``record`` is reported in the notes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import Row, alternate, median, paired_ratio, tmp_root

GROUP = "recording"


def _fresh_mlflow_db(target: Path) -> None:
    """An initialised MLflow SQLite store at ``target``. Migrations run on tmpfs when there is one
    (dozens of committed DDL steps) and the file is then copied to the temp dir on disk."""
    from mlflow import MlflowClient

    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="mlsecops-bench-", dir=shm if os.access(shm, os.W_OK) else None))
    try:
        MlflowClient(tracking_uri=f"sqlite:///{scratch / 'mlflow.db'}").search_experiments()
        shutil.copyfile(scratch / "mlflow.db", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _timed(steps: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            steps.setdefault(name, []).append(time.perf_counter() - start)

    return wrapper


def run(quick: bool) -> list[Row]:
    import logging

    from airflow_mlsecops.evidence.dsse import sign_envelope
    from airflow_mlsecops.evidence.keys import SigningKey
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from airflow_mlsecops.evidence.statement import GateStatement
    from airflow_mlsecops.io.mlflow_store import ENVELOPE_FILE, RESULT_FILE, MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
    from benchmarks._fixtures import gate_result, gx_report

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    rounds = 3 if quick else 9
    work = tmp_root() / "recording"
    work.mkdir(parents=True, exist_ok=True)
    setup_start = time.perf_counter()
    _fresh_mlflow_db(work / "mlflow.db")
    store = MLflowEvidenceStore(f"sqlite:///{work / 'mlflow.db'}", work / "mlartifacts")
    ledger = EvidenceLedger(f"sqlite:///{work / 'ledger.db'}")
    key = SigningKey.generate()
    recorder = EvidenceRecorder(signing_key=key, ledger=ledger, store=store)
    report = gx_report()
    files = {"gx_validation_result.json": report}

    # The peer's files: byte for byte what record() writes for the same result.
    sample = gate_result("peer")
    result_bytes = json.dumps(sample.to_dict(), indent=2, sort_keys=True).encode("utf-8") + b"\n"
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in {**files, RESULT_FILE: result_bytes}.items()}
    envelope = sign_envelope(GateStatement(result=sample, evidence_files=digests).to_payload(), key).to_json()
    peer_src = work / "peer-files"
    peer_src.mkdir()
    for name, data in {**files, RESULT_FILE: result_bytes, ENVELOPE_FILE: envelope}.items():
        (peer_src / name).write_bytes(data)

    counter = iter(range(1_000_000))
    run_id = recorder.record(gate_result("warmup"), experiment_name="bench", files=files).mlflow_run_id
    setup_s = time.perf_counter() - setup_start

    def ours() -> None:
        recorder.record(gate_result(f"validate_data_{next(counter)}"), experiment_name="bench", files=files)

    def peer() -> None:
        store.client.log_artifacts(run_id, str(peer_src), artifact_path=f"peer/{next(counter)}")

    ours()
    peer()
    steps: dict[str, list[float]] = {}
    store.resolve_pipeline_run = _timed(steps, "resolve run", store.resolve_pipeline_run)  # type: ignore[method-assign]
    ledger.append = _timed(steps, "ledger append", ledger.append)  # type: ignore[method-assign]
    store.log_files = _timed(steps, "log files", store.log_files)  # type: ignore[method-assign]
    store.log_tags_and_metrics = _timed(steps, "tags+metrics", store.log_tags_and_metrics)  # type: ignore[method-assign]
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    for i in range(rounds):
        for name, fn in alternate(i, (("ours", ours), ("peer", peer))):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ledger.dispose()

    ours_ms = median(times["ours"]) * 1e3
    breakdown = {name: median(ts) * 1e3 for name, ts in steps.items()}
    breakdown["sign+rest"] = ours_ms - sum(breakdown.values())
    return [
        Row(
            group=GROUP,
            name="EvidenceRecorder.record (SQLite MLflow + ledger)",
            unit="ms",
            ours=ours_ms,
            peer=median(times["peer"]) * 1e3,
            ratio=paired_ratio(times["ours"], times["peer"]),
            peer_label="MlflowClient.log_artifacts, same 3 files",
            runs=rounds,
            notes=(
                f"{len(report)} B report; median steps: "
                + ", ".join(f"{name} {ms:.1f}" for name, ms in breakdown.items())
                + f" ms; store setup {setup_s:.1f} s (not measured)"
            ),
            samples={"ours_ms": [t * 1e3 for t in times["ours"]], "peer_ms": [t * 1e3 for t in times["peer"]]},
        )
    ]
