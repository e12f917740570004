"""Row 7: the data validation gate's overhead over Great Expectations itself.

``validate_data`` on a 1M-row x 6-column frame written as Parquet, with a 6-expectation suite,
vs calling GX directly the way its docs show (ephemeral context, pandas data source, whole-frame
batch, the same suite, SUMMARY results):

* fair peer: GX plus ``pd.read_parquet`` of the same file (the gate must read it too); target < 1.2x;
* in-memory peer: GX on the same frame already in memory (what the file read and digest add).

Each call builds a fresh ephemeral context, as the gate does. Calls are interleaved.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from benchmarks._common import Row, Target, median, paired_ratio, tmp_root

GROUP = "validation"
RATIO_TARGET = 1.2

SUITE: dict[str, Any] = {
    "name": "bench_training_data",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 18, "max_value": 100}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "debt_ratio", "min_value": 0, "max_value": 5}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "defaulted", "value_set": [0, 1]}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "defaulted", "min_value": 0.05, "max_value": 0.6}},
    ],
}


def _gx_direct(frame: Any) -> Any:
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    source = context.data_sources.add_pandas("peer")
    batch = (
        source.add_dataframe_asset("data")
        .add_batch_definition_whole_dataframe("batch")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    return batch.validate(ExpectationSuite(**copy.deepcopy(SUITE)), result_format="SUMMARY")


def run(quick: bool) -> list[Row]:
    import logging

    import pandas as pd

    from airflow_mlsecops.demo.example_data import credit_frame
    from airflow_mlsecops.gates.data_validation import validate_data

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    rounds = 3 if quick else 5
    rows_n = 200_000 if quick else 1_000_000
    work = tmp_root() / "validation"
    work.mkdir(parents=True, exist_ok=True)
    frame = credit_frame(rows=rows_n, seed=11).drop(columns=["account_age_months"])
    path = work / "train.parquet"
    frame.to_parquet(path, index=False)
    size_mb = path.stat().st_size / 1e6
    # The in-memory peer gets the frame exactly as the file holds it.
    frame = pd.read_parquet(path)

    def ours() -> None:
        outcome = validate_data(str(path), copy.deepcopy(SUITE))
        if outcome.error is not None or outcome.verdict.value != "passed":
            raise RuntimeError(f"validate_data did not pass: {outcome.result.summary}")

    def peer_read() -> None:
        if not _gx_direct(pd.read_parquet(path)).success:
            raise RuntimeError("GX did not pass")

    def peer_memory() -> None:
        if not _gx_direct(frame).success:
            raise RuntimeError("GX did not pass")

    cases = {"ours": ours, "peer_read": peer_read, "peer_memory": peer_memory}
    for fn in cases.values():  # warm-up: GX import, expectation registry, first context
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}  # process CPU time: every thread (Arrow reads in parallel)
    names = list(cases)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start, cpu_start = time.perf_counter(), time.process_time()
            cases[name]()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    ms = {name: median(ts) * 1e3 for name, ts in times.items()}

    def cpu_note(peer: str) -> str:
        return (
            f"CPU time: ours {median(cpu['ours']) * 1e3:,.0f} vs {median(cpu[peer]) * 1e3:,.0f} ms "
            f"({paired_ratio(cpu['ours'], cpu[peer]):.2f}x)"
        )

    shape = f"{rows_n // 1000:,}k rows x {frame.shape[1]} cols, {size_mb:.1f} MB Parquet"
    shape += f", {len(SUITE['expectations'])} expectations"
    samples = {f"{name}_ms": [t * 1e3 for t in ts] for name, ts in times.items()}
    samples.update({f"{name}_cpu_ms": [t * 1e3 for t in ts] for name, ts in cpu.items()})
    return [
        Row(
            group=GROUP,
            name="validate_data vs GX incl. read_parquet",
            unit="ms",
            ours=ms["ours"],
            peer=ms["peer_read"],
            peer_label="pd.read_parquet + GX ephemeral",
            ratio=paired_ratio(times["ours"], times["peer_read"]),
            target=Target("ratio", "<", RATIO_TARGET),
            runs=rounds,
            notes=f"{shape}; {cpu_note('peer_read')}",
            samples=samples,
        ),
        Row(
            group=GROUP,
            name="validate_data vs GX on in-memory frame",
            unit="ms",
            ours=ms["ours"],
            peer=ms["peer_memory"],
            peer_label="GX ephemeral, frame in memory",
            ratio=paired_ratio(times["ours"], times["peer_memory"]),
            runs=rounds,
            notes=f"what reading + hashing the file adds on top of GX (info); {cpu_note('peer_memory')}",
        ),
    ]
