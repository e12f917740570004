"""Group ``encrypted-scoring``: CKKS scoring of a linear model (TenSEAL) against plaintext scikit-learn.

The model is the monitoring DAG's champion (StandardScaler + LogisticRegression on the demo credit
data); the batch is the demo production batch of 1,000 rows. Per 1,000 rows: encrypt (the data
owner), score (the scoring side, no secret key), decrypt (the data owner), each timed apart and
interleaved with plaintext ``decision_function`` on the same rows, the peer; and the bytes that
travel (the encrypted batch against the same rows as float64).

Column packing (ours) puts one feature of up to 4,096 rows in a ciphertext: 1,000 rows cost the
same as 4,096, so a second set of rows is measured on a full 4,096-row batch and divided by 4.096.
Row packing (one ciphertext per row, ``dot`` with the weights: rotations, hence Galois keys) is
measured on 100 rows and scaled to 1,000, to show why it is not the format.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks._common import Row, Target, interleaved, median

GROUP = "encrypted-scoring"
SCORE_TARGET_MS = 1000.0  # scoring 1,000 encrypted rows within a second keeps a daily batch of 1M rows in minutes


def _rows(name: str, unit: str, ours: float, **kwargs: Any) -> Row:
    return Row(group=GROUP, name=name, unit=unit, ours=ours, **kwargs)


def run(quick: bool) -> list[Row]:
    import numpy as np

    from airflow_mlsecops.demo.example_data import FEATURES, credit_frame
    from airflow_mlsecops.demo.monitoring_data import fit_example_model, normal_batch
    from airflow_mlsecops.privacy import encrypted_scoring as he

    rounds = 3 if quick else 7
    model, _ = fit_example_model(credit_frame())
    batch = normal_batch()[list(FEATURES)]  # 1,000 rows
    full = normal_batch(rows=4096, seed=11)[list(FEATURES)]
    key = he.make_context()
    public = he.public_context(key)
    encrypted = he.encrypt_batch(key, batch, FEATURES)
    scored = he.score_encrypted(public, encrypted, model)
    error = float(np.abs(he.decrypt_scores(key, scored) - model.decision_function(batch)).max())

    times = interleaved(
        {
            "encrypt": lambda: he.encrypt_batch(key, batch, FEATURES),
            "score": lambda: he.score_encrypted(public, encrypted, model),
            "decrypt": lambda: he.decrypt_scores(key, scored),
            "plain": lambda: model.decision_function(batch),
        },
        rounds,
    )
    plain_ms = median(times["plain"]) * 1e3
    peer = {"peer": plain_ms, "peer_label": "sklearn decision_function, plaintext"}
    rows = [
        _rows("encrypt 1,000 rows (data owner)", "ms", median(times["encrypt"]) * 1e3, runs=rounds, **peer),
        _rows(
            "score 1,000 encrypted rows (no secret key)",
            "ms",
            median(times["score"]) * 1e3,
            runs=rounds,
            target=Target("abs", "<", SCORE_TARGET_MS, "ms"),
            notes=f"max |encrypted - plaintext| = {error:.1e} (CKKS N=8192, scale 2^40)",
            **peer,
        ),
        _rows("decrypt 1,000 scores (data owner)", "ms", median(times["decrypt"]) * 1e3, runs=rounds, **peer),
        _rows(
            "encrypt + score + decrypt, 1,000 rows",
            "ms",
            (median(times["encrypt"]) + median(times["score"]) + median(times["decrypt"])) * 1e3,
            runs=rounds,
            **peer,
        ),
    ]

    # A full ciphertext (4,096 rows per feature): the cost per 1,000 rows once the slots are used.
    full_encrypted = he.encrypt_batch(key, full, FEATURES)
    full_times = interleaved(
        {
            "encrypt": lambda: he.encrypt_batch(key, full, FEATURES),
            "score": lambda: he.score_encrypted(public, full_encrypted, model),
            "plain": lambda: model.decision_function(full),
        },
        rounds,
    )
    per_k = 1000 / 4096
    full_peer = {"peer": median(full_times["plain"]) * 1e3 * per_k, "peer_label": "sklearn decision_function, plaintext"}
    rows += [
        _rows(
            "encrypt, per 1,000 rows of a 4,096-row batch",
            "ms",
            median(full_times["encrypt"]) * 1e3 * per_k,
            runs=rounds,
            **full_peer,
        ),
        _rows(
            "score, per 1,000 rows of a 4,096-row batch",
            "ms",
            median(full_times["score"]) * 1e3 * per_k,
            runs=rounds,
            **full_peer,
        ),
    ]

    # What travels: the encrypted batch and the scores, against the same values as float64.
    mb = 1e6
    rows += [
        _rows(
            "encrypted batch size, 1,000 rows x 6 features",
            "MB",
            len(encrypted) / mb,
            peer=batch.to_numpy(dtype=np.float64).nbytes / mb,
            peer_label="float64 plaintext",
            notes=f"a 4,096-row batch is {len(full_encrypted) / mb:.2f} MB (the same ciphertext count)",
        ),
        _rows("encrypted scores size, 1,000 rows", "MB", len(scored) / mb, peer=1000 * 8 / mb, peer_label="float64 plaintext"),
        _rows("public context size (public key only)", "MB", len(public) / mb, notes="no Galois or relinearisation keys"),
    ]
    rows += _row_packing(key, batch, model, he)
    return rows


def _row_packing(key: Any, batch: Any, model: Any, he: Any) -> list[Row]:
    """The alternative: one ciphertext per row and a dot product with the weights (rotations)."""
    import tenseal as ts

    parts = he.linear_parts(model)
    weights, bias = [float(w) for w in parts.weights[0]], float(parts.intercept[0])
    key.generate_galois_keys()
    galois_public = bytes(key.serialize(save_secret_key=False, save_galois_keys=True, save_relin_keys=True))
    public = ts.context_from(galois_public)
    sample = batch.to_numpy()[:100]
    start = time.perf_counter()
    blobs = [ts.ckks_vector(key, list(map(float, row))).serialize() for row in sample]
    encrypt_s = time.perf_counter() - start
    start = time.perf_counter()
    out = [(ts.ckks_vector_from(public, blob).dot(weights) + bias).serialize() for blob in blobs]
    score_s = time.perf_counter() - start
    scale = 1000 / len(sample)
    note = "measured on 100 rows, scaled to 1,000; needs Galois keys"
    return [
        _rows("row packing: encrypt 1,000 rows", "ms", encrypt_s * 1e3 * scale, runs=1, notes=note),
        _rows("row packing: score 1,000 rows (dot, rotations)", "ms", score_s * 1e3 * scale, runs=1, notes=note),
        _rows("row packing: encrypted batch size, 1,000 rows", "MB", sum(map(len, blobs)) * scale / 1e6, runs=1, notes=note),
        _rows("row packing: scores size, 1,000 rows", "MB", sum(map(len, out)) * scale / 1e6, runs=1, notes=note),
        _rows("public context with Galois and relinearisation keys", "MB", len(galois_public) / 1e6, runs=1),
    ]
