"""Group ``dp-evidence``: what differentially private evidence costs against exact evidence.

A real data-integrity result (the gate run once, not measured, on 20,000 demo credit rows with
planted duplicates against a 20,000-row reference: 17 statistics, row positions, a 10+ KiB
report) is recorded as a gate task records it (sign, MLflow run, ledger, files) into SQLite
stores in the temp dir:

* ours: :func:`~airflow_mlsecops.privacy.dp_evidence.protect` (look up the policy entry, spend
  one release from the SQLite budget ledger, noise every known statistic through OpenDP, withhold
  the rest) and then record the released result;
* peer: record the exact result, in the same run, interleaved.

A second row times the release step alone, and the notes split it into the budget spend and the
OpenDP noising (the release with an in-memory budget).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks._common import Row, alternate, median, paired_ratio, tmp_root

GROUP = "dp-evidence"


def run(quick: bool) -> list[Row]:
    import logging

    import pandas as pd

    from airflow_mlsecops.demo.example_data import LABEL, credit_frame
    from airflow_mlsecops.evidence.keys import SigningKey
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from airflow_mlsecops.gates.data_integrity.gate import check_integrity
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder
    from airflow_mlsecops.privacy.dp_evidence import MemoryBudget, protect, release, sensitive_datasets
    from airflow_mlsecops.privacy.sensitive import parse_sensitive_data
    from benchmarks.recording import _fresh_mlflow_db

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    rounds = 3 if quick else 11
    work = tmp_root() / "dp-evidence"
    work.mkdir(parents=True, exist_ok=True)
    setup_start = time.perf_counter()
    rows = 5_000 if quick else 20_000
    batch = credit_frame(rows=rows - rows // 20, seed=3)
    pd.concat([batch, batch.iloc[: rows // 20]], ignore_index=True).to_csv(work / "loans-batch.csv", index=False)
    credit_frame(rows=rows, seed=7).to_csv(work / "reference.csv", index=False)
    outcome = check_integrity(str(work / "loans-batch.csv"), str(work / "reference.csv"), label_column=LABEL)
    entries = parse_sensitive_data(
        [{"name": "loans", "match": ["*/loans-*.csv"], "evidence": {"epsilon_per_release": 1.0, "total_epsilon": 1e9}}]
    )
    _fresh_mlflow_db(work / "mlflow.db")
    store = MLflowEvidenceStore(f"sqlite:///{work / 'mlflow.db'}", work / "mlartifacts")
    ledger_url = f"sqlite:///{work / 'ledger.db'}"
    ledger = EvidenceLedger(ledger_url)
    recorder = EvidenceRecorder(signing_key=SigningKey.generate(), ledger=ledger, store=store)
    run_id = recorder.record(outcome.result, experiment_name="bench", files=outcome.files).mlflow_run_id
    setup_s = time.perf_counter() - setup_start
    found = sensitive_datasets(entries, outcome.result)
    assert found is not None and found[0].evidence is not None
    entry, keys = found
    evidence = found[0].evidence

    def record(o: Any) -> None:
        recorder.record(o.result, experiment_name="bench", files=o.files, mlflow_run_id=run_id)

    def ours() -> None:
        record(protect(outcome, entries, ledger_url))

    def peer() -> None:
        record(outcome)

    def release_only() -> None:
        protect(outcome, entries, ledger_url)

    def noise_only() -> None:
        release(outcome, evidence, MemoryBudget(), datasets=keys, sensitive_name=entry.name)

    for fn in (ours, peer, release_only, noise_only):
        fn()  # warm: imports, OpenDP's library, the budget tables
    times: dict[str, list[float]] = {"ours": [], "peer": [], "release": [], "noise": []}
    cases = (("ours", ours), ("peer", peer), ("release", release_only), ("noise", noise_only))
    for i in range(rounds):
        for name, fn in alternate(i, cases):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ledger.dispose()
    released = protect(outcome, entries, ledger_url).result.details["dp_release"]
    exact_bytes = sum(len(v) for v in outcome.files.values())
    ms = {name: median(ts) * 1e3 for name, ts in times.items()}
    return [
        Row(
            group=GROUP,
            name="record a data-integrity result, DP release included",
            unit="ms",
            ours=ms["ours"],
            peer=ms["peer"],
            ratio=paired_ratio(times["ours"], times["peer"]),
            peer_label="record the exact result (SQLite MLflow + ledger)",
            runs=rounds,
            notes=(
                f"{rows:,} rows; {len(released['fields'])} fields released at epsilon 1.0, "
                f"{len(released['withheld'])} withheld (exact files {exact_bytes:,} B not recorded); "
                f"gate run and store setup {setup_s:.1f} s (not measured)"
            ),
            samples={"ours_ms": [t * 1e3 for t in times["ours"]], "peer_ms": [t * 1e3 for t in times["peer"]]},
        ),
        Row(
            group=GROUP,
            name="DP release alone (protect: policy match, SQLite budget spend, OpenDP)",
            unit="ms",
            ours=ms["release"],
            runs=rounds,
            notes=f"of which OpenDP noising with an in-memory budget {ms['noise']:.1f} ms; the rest is the budget spend",
            samples={"release_ms": [t * 1e3 for t in times["release"]], "noise_ms": [t * 1e3 for t in times["noise"]]},
        ),
    ]
