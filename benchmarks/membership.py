"""Group ``membership``: the membership-inference gate on 10,000 training and 10,000 holdout rows.

A random forest (100 trees, unpruned: it memorises) is trained on 10,000 demo credit rows and
saved as a skops file; 10,000 other rows are the holdout. Measured, interleaved in one process:

* ours (full): :func:`~airflow_mlsecops.gates.membership.evaluate_membership_inference` with every
  attack (loss, confidence, calibrated loss: one reference forest fitted on half the holdout) and
  200 bootstrap rounds: load the files and the model, check overlap, attack, judge, report;
* ours (global attacks): the same gate with ``attacks=["loss", "confidence"]``;
* peer (bare): the same two attacks with scikit-learn alone on frames already in memory:
  ``predict_proba``, ``roc_auc_score`` and ``roc_curve`` (no loading, no intervals, no evidence);
* peer (ART): IBM ART's ``MembershipInferenceBlackBoxRuleBased`` (member = correctly classified)
  on the same rows, when the robustness extra is installed.
"""

from __future__ import annotations

import time

from benchmarks._common import Row, alternate, median, paired_ratio, tmp_root

GROUP = "membership"


def run(quick: bool) -> list[Row]:
    import numpy as np
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score, roc_curve

    from airflow_mlsecops.demo.example_data import FEATURES, LABEL, credit_frame
    from airflow_mlsecops.gates.membership import evaluate_membership_inference

    rows = 2_000 if quick else 10_000
    rounds = 2 if quick else 5
    work = tmp_root() / "membership"
    work.mkdir(parents=True, exist_ok=True)
    setup_start = time.perf_counter()
    frame = credit_frame(rows=2 * rows, seed=13)
    train, holdout = frame.iloc[:rows].reset_index(drop=True), frame.iloc[rows:].reset_index(drop=True)
    train.to_csv(work / "train.csv", index=False)
    holdout.to_csv(work / "holdout.csv", index=False)
    model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(train[list(FEATURES)], train[LABEL])
    sio.dump(model, work / "forest.skops")
    setup_s = time.perf_counter() - setup_start
    paths = (str(work / "forest.skops"), str(work / "train.csv"), str(work / "holdout.csv"))
    results: dict[str, object] = {}

    def full() -> None:
        results["full"] = evaluate_membership_inference(*paths, label_column=LABEL).result

    def global_attacks() -> None:
        results["global"] = evaluate_membership_inference(*paths, label_column=LABEL, attacks=["loss", "confidence"]).result

    def bare() -> None:
        members = model.predict_proba(train[list(FEATURES)])
        others = model.predict_proba(holdout[list(FEATURES)])
        labels = np.r_[np.ones(len(members)), np.zeros(len(others))]
        index = {c: i for i, c in enumerate(model.classes_)}
        y = np.r_[train[LABEL].map(index).to_numpy(), holdout[LABEL].map(index).to_numpy()]
        proba = np.r_[members, others]
        loss = -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))
        out = {}
        for name, score in (("loss", -loss), ("confidence", proba.max(axis=1))):
            fpr, tpr, _ = roc_curve(labels, score)
            out[name] = (roc_auc_score(labels, score), float(np.max(tpr - fpr)))
        results["bare"] = out

    cases: list[tuple[str, object]] = [("full", full), ("global", global_attacks), ("bare", bare)]
    art_version = None
    try:
        import art
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBoxRuleBased
        from art.estimators.classification import SklearnClassifier

        art_version = art.__version__
        classifier = SklearnClassifier(model=model)

        def art_rule_based() -> None:
            attack = MembershipInferenceBlackBoxRuleBased(classifier)
            x = np.r_[train[list(FEATURES)].to_numpy(), holdout[list(FEATURES)].to_numpy()].astype(np.float32)
            y = np.r_[train[LABEL].to_numpy(), holdout[LABEL].to_numpy()]
            inferred = attack.infer(x, np.eye(len(model.classes_))[np.searchsorted(model.classes_, y)])
            results["art"] = float(inferred[:rows].mean() - inferred[rows:].mean())  # TPR - FPR

        cases.append(("art", art_rule_based))
    except ImportError:
        pass
    for _, fn in cases:
        fn()  # warm: imports, skops, the first tree walk
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for i in range(rounds):
        for name, fn in alternate(i, cases):
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            times[name].append(time.perf_counter() - start)
    full_result = results["full"]
    metrics = full_result.metrics  # type: ignore[attr-defined]
    bare_numbers = results["bare"]
    ms = {name: median(ts) for name, ts in times.items()}
    load = _load()
    common = f"{rows:,} training + {rows:,} holdout rows, RandomForest(100); setup {setup_s:.1f} s (not measured); load {load}"
    out = [
        Row(
            group=GROUP,
            name="membership-inference gate, all attacks (loss, confidence, calibrated), 200 bootstrap rounds",
            unit="s",
            ours=ms["full"],
            peer=ms["bare"],
            ratio=paired_ratio(times["full"], times["bare"]),
            peer_label="loss + confidence AUC/advantage with scikit-learn on frames in memory",
            runs=rounds,
            notes=(
                f"{common}; verdict {full_result.verdict.value}, attack AUC {metrics['attack_auc']:.3f}, "  # type: ignore[attr-defined]
                f"advantage {metrics['advantage']:.3f}, {int(metrics['members'])} rows per side"
            ),
            samples={f"{k}_s": v for k, v in times.items()},
        ),
        Row(
            group=GROUP,
            name="membership-inference gate, global-threshold attacks only (loss, confidence)",
            unit="s",
            ours=ms["global"],
            peer=ms["bare"],
            ratio=paired_ratio(times["global"], times["bare"]),
            peer_label="the same attacks with scikit-learn, no files, no intervals, no evidence",
            runs=rounds,
            notes=(
                f"bare loss AUC {bare_numbers['loss'][0]:.3f} vs gate "  # type: ignore[index]
                f"{results['global'].metrics['auc_loss']:.3f} (same rows: the gate samples all {rows:,})"  # type: ignore[attr-defined]
            ),
        ),
    ]
    if "art" in times:
        out.append(
            Row(
                group=GROUP,
                name="peer: ART MembershipInferenceBlackBoxRuleBased on the same rows",
                unit="s",
                ours=ms["full"],
                peer=ms["art"],
                ratio=paired_ratio(times["full"], times["art"]),
                peer_label=f"ART {art_version} rule-based attack (member = correctly classified)",
                runs=rounds,
                notes=f"ART's advantage (TPR - FPR) {results['art']:.3f}; the gate's {metrics['advantage']:.3f}",  # type: ignore[attr-defined]
            )
        )
    return out


def _load() -> str:
    import os

    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f} (1/5 min)"
