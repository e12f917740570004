"""Rows 8-10: the drift gate's overhead over Evidently itself, and what recording its evidence costs.

``detect_drift`` on two Parquet files of 20 columns (14 float, 3 wide-range integer, 3 categorical
string; the current frame has 3 shifted float columns), 10k and 100k rows each, **with
``max_rows=None``: no sampling, both sides compare every row**. Ours includes everything the gate
produces: reading and hashing both files, the checks, Evidently, the HTML report, the trimmed JSON
report and the result. The peer calls Evidently the way its docs show on the same data:
``pd.read_parquet`` of both files, ``Report([DataDriftPreset(drift_share=0.5)],
include_tests=True).run(current, reference)``, ``snapshot.json()`` and the HTML string (what the
gate stores). Target: ours < 1.1x of the peer. Calls are interleaved (order alternates per round).

Recording to MLflow is excluded from those rows and reported on its own (row 10): the
``EvidenceRecorder.record`` of the 100k outcome (~4.7 MiB of evidence, mostly the HTML report)
into a local SQLite MLflow store and SQLite ledger.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Row, Target, alternate, median, paired_ratio, tmp_root

GROUP = "drift"
RATIO_TARGET = 1.1


def _frame(rows: int, seed: int, shift: float) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(14):
        data[f"num{i}"] = rng.normal(shift if i < 3 else 0.0, 1.0, rows)
    for i in range(3):
        data[f"int{i}"] = rng.integers(0, 500, rows)
    for i in range(3):
        data[f"cat{i}"] = rng.choice(["a", "b", "c", "d"], rows)
    return pd.DataFrame(data)


def _evidently(reference: Any, current: Any) -> tuple[dict[str, Any], bytes]:
    import json

    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset(drift_share=0.5)], include_tests=True).run(current_data=current, reference_data=reference)
    return json.loads(snapshot.json()), snapshot.get_html_str(as_iframe=False).encode("utf-8")


def _record_time(outcome: Any, work: Path, rounds: int) -> list[float]:
    from airflow_mlsecops.evidence.keys import SigningKey
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
    from benchmarks.recording import _fresh_mlflow_db

    _fresh_mlflow_db(work / "mlflow.db")
    recorder = EvidenceRecorder(
        signing_key=SigningKey.generate(),
        ledger=EvidenceLedger(f"sqlite:///{work / 'ledger.db'}"),
        store=MLflowEvidenceStore(f"sqlite:///{work / 'mlflow.db'}", work / "mlartifacts"),
    )
    run_id = recorder.store.create_run(experiment_name="bench-drift", run_name="bench")
    recorder.record(outcome.result, experiment_name="bench-drift", files=outcome.files, mlflow_run_id=run_id)  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        recorder.record(outcome.result, experiment_name="bench-drift", files=outcome.files, mlflow_run_id=run_id)
        times.append(time.perf_counter() - start)
    return times


def run(quick: bool) -> list[Row]:
    import logging
    import warnings

    import pandas as pd

    from airflow_mlsecops.gates.drift import HTML_FILE, detect_drift

    os.environ.setdefault("DO_NOT_TRACK", "true")
    warnings.simplefilter("ignore")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    work = tmp_root() / "drift"
    work.mkdir(parents=True, exist_ok=True)
    sizes = [(10_000, 3 if quick else 6)] + ([] if quick else [(100_000, 3)])
    rows_out: list[Row] = []
    last_outcome: Any = None
    for n, rounds in sizes:
        ref_path, cur_path = work / f"reference-{n}.parquet", work / f"current-{n}.parquet"
        _frame(n, 1, 0.0).to_parquet(ref_path, index=False)
        _frame(n, 2, 0.15).to_parquet(cur_path, index=False)
        outcomes: list[Any] = []

        def ours(ref: Path = ref_path, cur: Path = cur_path, keep: list[Any] = outcomes) -> None:
            outcome = detect_drift(str(ref), str(cur), max_rows=None, html=True)
            if outcome.error is not None or HTML_FILE not in outcome.files:
                raise RuntimeError(f"detect_drift did not reach a verdict: {outcome.result.summary}")
            keep.append(outcome)

        def peer(ref: Path = ref_path, cur: Path = cur_path) -> None:
            raw, page = _evidently(pd.read_parquet(ref), pd.read_parquet(cur))
            if not raw.get("tests") or not page:
                raise RuntimeError("Evidently produced no tests")

        if n == sizes[0][0]:
            ours()
            peer()  # warm-up: imports, Evidently's first report
        cases = {"ours": ours, "peer": peer}
        times: dict[str, list[float]] = {"ours": [], "peer": []}
        cpu: dict[str, list[float]] = {"ours": [], "peer": []}
        for i in range(rounds):
            for name in alternate(i, list(cases)):
                start, cpu_start = time.perf_counter(), time.process_time()
                cases[name]()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - cpu_start)
        last = outcomes[-1]
        last_outcome = last
        inner = median([o.result.metrics["evidently_seconds"] for o in outcomes[-rounds:]]) * 1e3
        evidence_kib = sum(len(b) for b in last.files.values()) / 1024
        notes = (
            f"{n // 1000}k rows x 20 cols each side (14 float, 3 int, 3 categorical), Parquet; max_rows=None (no sampling); "
            f"verdict {last.verdict.value}, {int(last.result.metrics['drifted_columns'])} drifted columns; "
            f"ours includes read + SHA-256 of both files, Evidently, HTML ({len(last.files[HTML_FILE]) / 2**20:.1f} MiB), "
            f"JSON and result ({evidence_kib:,.0f} KiB of evidence), recording excluded; Evidently inside ours: {inner:,.0f} ms; "
            f"CPU time: ours {median(cpu['ours']) * 1e3:,.0f} vs {median(cpu['peer']) * 1e3:,.0f} ms "
            f"({paired_ratio(cpu['ours'], cpu['peer']):.2f}x)"
        )
        rows_out.append(
            Row(
                group=GROUP,
                name=f"detect_drift vs Evidently, {n // 1000}k rows",
                unit="ms",
                ours=median(times["ours"]) * 1e3,
                peer=median(times["peer"]) * 1e3,
                peer_label="read_parquet + Evidently Report.run + json() + HTML string",
                ratio=paired_ratio(times["ours"], times["peer"]),
                target=Target("ratio", "<", RATIO_TARGET),
                runs=rounds,
                notes=notes,
                samples={"ours_ms": [t * 1e3 for t in times["ours"]], "peer_ms": [t * 1e3 for t in times["peer"]]},
            )
        )

    scratch = Path(tempfile.mkdtemp(prefix="record-", dir=work))
    try:
        record_rounds = 3 if quick else 5
        recorded = _record_time(last_outcome, scratch, record_rounds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    size_mib = sum(len(b) for b in last_outcome.files.values()) / 2**20
    rows_out.append(
        Row(
            group=GROUP,
            name="recording the drift evidence (info)",
            unit="ms",
            ours=median(recorded) * 1e3,
            runs=record_rounds,
            notes=f"EvidenceRecorder.record of the {int(last_outcome.result.metrics['rows_current']) // 1000}k-row outcome "
            f"({size_mib:.1f} MiB of files) into local SQLite MLflow + ledger; not part of the rows above",
        )
    )
    return rows_out
