"""Encrypted scoring (TenSEAL CKKS) on the demo credit data: the decrypted scores equal scikit-learn's
within CKKS precision, the scoring side never holds the secret key, and anything else is refused.

Tolerance: ``rtol=1e-4, atol=1e-4``. At scale 2^40 one plaintext multiplication and a rescale keep
about 20 bits after the point; the measured error on these data is below 1e-6 (decision values of
magnitude up to ~10), so the tolerance leaves two orders of magnitude of margin and still catches
a wrong weight, a dropped intercept or a swapped column (errors of 1e-2 and more).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_mlsecops.demo.example_data import FEATURES, LABEL
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.privacy import encrypted_scoring as he
from tests.conftest import REPO_ROOT

pytest.importorskip("tenseal")

RTOL = ATOL = 1e-4
DATA = REPO_ROOT / "dags" / "data" / "credit_reference.csv"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(DATA)


@pytest.fixture(scope="module")
def key() -> Any:
    return he.make_context()


@pytest.fixture(scope="module")
def batch(key: Any, frame: pd.DataFrame) -> bytes:
    return he.encrypt_batch(key, frame, FEATURES)


def _fit(kind: str, frame: pd.DataFrame) -> Any:
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    x, y = frame[list(FEATURES)], frame[LABEL]
    if kind == "logistic-pipeline":  # the monitoring DAG's champion
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    if kind == "sgd-classifier":
        return make_pipeline(MinMaxScaler(), SGDClassifier(random_state=0)).fit(x, y)
    if kind == "ridge":
        return Ridge(alpha=1.0).fit(x, frame["debt_ratio"] * 3 + frame["late_payments"])
    if kind == "linear-regression":
        return LinearRegression().fit(x.to_numpy(), frame["age"] * 0.5 - frame["credit_lines"])  # no feature names
    if kind == "multiclass":
        classes = pd.cut(frame["debt_ratio"], 3, labels=False)
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, classes)
    raise AssertionError(kind)


def _plain(model: Any, x: pd.DataFrame) -> np.ndarray:
    features = x if hasattr(model, "feature_names_in_") else x.to_numpy()
    return np.asarray(model.decision_function(features) if hasattr(model, "decision_function") else model.predict(features))


@pytest.mark.parametrize("kind", ["logistic-pipeline", "sgd-classifier", "ridge", "linear-regression", "multiclass"])
def test_decrypted_scores_match_plaintext_scoring(kind: str, key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    model = _fit(kind, frame)
    scored = he.score_encrypted(he.public_context(key), batch, model)
    scores = he.decrypt_scores(key, scored)
    expected = _plain(model, frame[list(FEATURES)])
    assert scores.shape == expected.shape == ((len(frame), 3) if kind == "multiclass" else (len(frame),))
    np.testing.assert_allclose(scores, expected, rtol=RTOL, atol=ATOL)
    assert np.ptp(expected) > 0.1  # scores that vary: a constant could not show a swapped column


def test_probabilities_are_the_models_own(key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    model = _fit("logistic-pipeline", frame)
    scored = he.score_encrypted(he.public_context(key), batch, model)
    assert he.read_header(scored)["link"] == "logit"
    proba = he.probabilities(he.decrypt_scores(key, scored))
    np.testing.assert_allclose(proba, model.predict_proba(frame[list(FEATURES)])[:, 1], atol=1e-5)


def test_batches_larger_than_one_ciphertext_are_split_by_rows(key: Any, frame: pd.DataFrame) -> None:
    big = pd.concat([frame, frame.iloc[:1500]], ignore_index=True)  # 4,500 rows: two chunks of 4,096 slots
    encrypted = he.encrypt_batch(key, big, FEATURES)
    header = he.read_header(encrypted)
    assert header["chunks"] == [4096, 404] and header["rows"] == 4500 and len(header["blobs"]) == 2 * len(FEATURES)
    model = _fit("ridge", frame)
    scores = he.decrypt_scores(key, he.score_encrypted(he.public_context(key), encrypted, model))
    np.testing.assert_allclose(scores, model.predict(big[list(FEATURES)]), rtol=RTOL, atol=ATOL)


def test_columns_are_matched_by_name_and_extra_ones_left_unused(key: Any, frame: pd.DataFrame) -> None:
    shuffled = [*reversed(FEATURES), LABEL]
    encrypted = he.encrypt_batch(key, frame, shuffled)
    model = _fit("logistic-pipeline", frame)
    scored, details = he.score_with_details(he.public_context(key), encrypted, model)
    assert details["features_used"] == list(FEATURES) and details["features_unused"] == [LABEL]
    np.testing.assert_allclose(he.decrypt_scores(key, scored), _plain(model, frame[list(FEATURES)]), rtol=RTOL, atol=ATOL)


def test_the_public_context_cannot_decrypt_but_scores(key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    import tenseal as ts

    public = he.load_context(he.public_context(key))
    assert not public.has_secret_key() and key.has_secret_key()
    _, blobs = he._unpack(batch, he.BATCH)
    with pytest.raises(ValueError, match="secret_key"):
        ts.ckks_vector_from(public, blobs[0]).decrypt()
    scored = he.score_encrypted(he.public_context(key), batch, _fit("ridge", frame))
    with pytest.raises(ConfigurationError, match="secret key"):
        he.decrypt_scores(public, scored)
    # Encrypting needs only the public key (an ingestion service may do it); decrypting needs the owner's.
    from_public = he.encrypt_batch(public, frame.iloc[:100], FEATURES)
    ridge = _fit("ridge", frame)
    decrypted = he.decrypt_scores(key, he.score_encrypted(he.public_context(key), from_public, ridge))
    np.testing.assert_allclose(decrypted, ridge.predict(frame.iloc[:100][list(FEATURES)]), rtol=RTOL, atol=ATOL)


def test_scoring_refuses_a_context_holding_the_secret_key(key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    with pytest.raises(ConfigurationError, match="holds the secret key"):
        he.score_encrypted(he.secret_context(key), batch, _fit("ridge", frame))


def test_the_key_id_survives_saving_the_secret_context(key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    reloaded = he.load_context(he.secret_context(key))
    assert he.context_digest(reloaded) == he.context_digest(key) == he.read_header(batch)["context_sha256"]
    scored = he.score_encrypted(he.public_context(reloaded), batch, _fit("ridge", frame))
    assert he.decrypt_scores(reloaded, scored).shape == (len(frame),)


def test_the_parameters_are_read_from_the_context(key: Any) -> None:
    params = he.context_parameters(he.load_context(he.public_context(key)))
    assert params.to_dict() == {
        "scheme": "CKKS",
        "poly_modulus_degree": 8192,
        "coeff_mod_bit_sizes": [60, 40, 40, 60],
        "coeff_modulus_bits": 200,
        "global_scale_bits": 40.0,
        "slots": 4096,
        "has_secret_key": False,
        "has_galois_keys": False,
    }


def test_parameters_seal_calls_insecure_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="SEAL refused"):
        he.make_context(poly_modulus_degree=4096, coeff_mod_bit_sizes=(60, 40, 40, 60))  # 200 bits > 109 allowed


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a few iterations: only the type matters
@pytest.mark.parametrize("kind", ["forest", "polynomial", "clipped-minmax", "subclass"])
def test_non_linear_models_are_refused(kind: str, key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures

    class Shifted(LogisticRegression):  # a subclass may compute anything: refused by exact type
        def decision_function(self, x: Any) -> Any:
            return super().decision_function(x) + 1

    x, y = frame[list(FEATURES)].iloc[:300], frame[LABEL].iloc[:300]
    model = {
        "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        "polynomial": lambda: make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=20)),
        "clipped-minmax": lambda: make_pipeline(MinMaxScaler(clip=True), LogisticRegression(max_iter=20)),
        "subclass": lambda: Shifted(max_iter=20),
    }[kind]().fit(x, y)
    with pytest.raises(he.UnsupportedModel, match=r"not linear|not a linear model|not an affine"):
        he.score_encrypted(he.public_context(key), batch, model)


def test_a_tampered_ciphertext_fails_cleanly(key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    model, public = _fit("ridge", frame), he.public_context(key)
    flipped = bytearray(batch)
    flipped[len(batch) // 2] ^= 0x01  # inside a ciphertext: CKKS would decrypt it to garbage silently
    with pytest.raises(he.InvalidCiphertext, match="does not match its digest"):
        he.score_encrypted(public, bytes(flipped), model)
    with pytest.raises(he.InvalidCiphertext, match="truncated"):
        he.score_encrypted(public, batch[: len(batch) - 1000], model)
    with pytest.raises(he.InvalidCiphertext, match="unexpected bytes"):
        he.score_encrypted(public, batch + b"\x00", model)
    with pytest.raises(he.InvalidCiphertext, match="wrong magic"):
        he.score_encrypted(public, b"PK\x03\x04" + batch, model)
    scored = he.score_encrypted(public, batch, model)
    with pytest.raises(he.InvalidCiphertext, match="expected an encrypted-batch"):
        he.score_encrypted(public, scored, model)
    tampered = bytearray(scored)
    tampered[-10] ^= 0x80
    with pytest.raises(he.InvalidCiphertext, match="does not match its digest"):
        he.decrypt_scores(key, bytes(tampered))


def test_another_key_is_refused_on_both_sides(key: Any, batch: bytes, frame: pd.DataFrame) -> None:
    other = he.make_context()
    model = _fit("ridge", frame)
    with pytest.raises(he.InvalidCiphertext, match="another key"):
        he.score_encrypted(he.public_context(other), batch, model)
    scored = he.score_encrypted(he.public_context(key), batch, model)
    with pytest.raises(he.InvalidCiphertext, match="another key"):
        he.decrypt_scores(other, scored)
    # The data owner can bind the scores to the batch it sent.
    assert he.decrypt_scores(key, scored, batch=batch).shape == (len(frame),)
    with pytest.raises(he.InvalidCiphertext, match="another encrypted batch"):
        he.decrypt_scores(key, scored, batch=he.encrypt_batch(key, frame.iloc[:10], FEATURES))


def test_bad_batches_are_refused_before_encryption(key: Any, frame: pd.DataFrame) -> None:
    with pytest.raises(ConfigurationError, match="no column"):
        he.encrypt_batch(key, frame, [*FEATURES, "salary"])
    with pytest.raises(ConfigurationError, match="missing or infinite"):
        he.encrypt_batch(key, frame.assign(income=np.where(frame.index == 3, np.nan, frame["income"])), FEATURES)
    with pytest.raises(ConfigurationError, match="exceeds"):
        he.encrypt_batch(key, frame.assign(income=frame["income"] * 1e6), FEATURES)
    with pytest.raises(ConfigurationError, match="no rows"):
        he.encrypt_batch(key, frame.iloc[:0], FEATURES)


def test_a_batch_without_a_model_feature_is_refused(key: Any, frame: pd.DataFrame) -> None:
    encrypted = he.encrypt_batch(key, frame, FEATURES[:-1])
    with pytest.raises(ConfigurationError, match="lacks the model's feature"):
        he.score_encrypted(he.public_context(key), encrypted, _fit("logistic-pipeline", frame))


def test_the_recorded_step_names_digests_and_holds_no_plaintext(
    key: Any, batch: bytes, frame: pd.DataFrame, tmp_path: Path
) -> None:
    import hashlib
    import json

    model = _fit("logistic-pipeline", frame)
    out = tmp_path / "scores.ckks"

    def write(data: bytes) -> str:
        out.write_bytes(data)
        return str(out)

    outcome = he.evaluate_encrypted_scoring(
        batch, he.public_context(key), model, write_output=write, input_name="batch.ckks", context_name="public.ctx"
    )
    result = outcome.result
    assert result.verdict is Verdict.PASSED and result.gate == he.ENCRYPTED_SCORING
    digests = {s.name: s.sha256 for s in result.subjects}
    assert digests["batch.ckks"] == hashlib.sha256(batch).hexdigest()
    assert digests[str(out)] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.details["ckks"]["poly_modulus_degree"] == 8192 and result.details["rows"] == len(frame)
    text = json.dumps(result.to_dict()) + outcome.files["encrypted_scoring.json"].decode()
    for value in frame.iloc[:50]["income"]:  # no input value (and no score) is in the evidence
        assert f"{value}" not in text
    assert np.allclose(he.decrypt_scores(key, out.read_bytes()), _plain(model, frame[list(FEATURES)]), atol=ATOL)


def test_the_recorded_step_fails_closed(key: Any, batch: bytes, frame: pd.DataFrame, tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(frame[list(FEATURES)], frame[LABEL])
    written: list[bytes] = []

    def write(data: bytes) -> str:
        written.append(data)
        return "x"

    outcome = he.evaluate_encrypted_scoring(
        batch, he.public_context(key), forest, write_output=write, input_name="b", context_name="c"
    )
    assert outcome.result.verdict is Verdict.ERROR and not written
    assert [f.id for f in outcome.result.findings] == ["gate.could-not-run"]

    def broken(data: bytes) -> str:
        raise he.InvalidCiphertext("disk full")  # any GateError of the writer

    outcome = he.evaluate_encrypted_scoring(
        batch, he.public_context(key), _fit("ridge", frame), write_output=broken, input_name="b", context_name="c"
    )
    assert outcome.result.verdict is Verdict.ERROR and "disk full" in outcome.result.summary


def test_a_missing_tenseal_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tenseal", None)  # what an environment without the he extra sees
    with pytest.raises(ConfigurationError, match=r"pip install 'airflow-mlsecops\[he\]'"):
        he.make_context()


@pytest.fixture(scope="module")
def small(key: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """A 20-row batch, its scores and a model: small enough to mutate many times."""
    model = _fit("logistic-pipeline", frame)
    batch = he.encrypt_batch(key, frame.iloc[:20], FEATURES)
    public = he.public_context(key)
    return {"model": model, "batch": batch, "public": public, "scores": he.score_encrypted(public, batch, model)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_byte_change_is_refused_never_scored(data: st.DataObject, key: Any, small: dict[str, Any]) -> None:
    """Encrypt, mutate one byte anywhere (magic, header, length fields, ciphertexts), score: always refused.

    Positions are drawn from the header half the time: it is small, and where a silent change would hide.
    """
    from airflow_mlsecops.exceptions import MLSecOpsError

    for name, operation in (("batch", "score"), ("scores", "decrypt")):
        blob = small[name]
        header_end = len(he._MAGIC) + 4 + int.from_bytes(blob[len(he._MAGIC) : len(he._MAGIC) + 4], "big")
        limit = header_end + 16 if data.draw(st.booleans(), label=f"{name} header") else len(blob)
        position = data.draw(st.integers(0, limit - 1), label=f"{name} position")
        mask = data.draw(st.integers(1, 255), label=f"{name} mask")
        mutated = bytearray(blob)
        mutated[position] ^= mask
        with pytest.raises(MLSecOpsError):
            if operation == "score":
                he.score_encrypted(small["public"], bytes(mutated), small["model"])
            else:
                he.decrypt_scores(key, bytes(mutated), batch=small["batch"])
