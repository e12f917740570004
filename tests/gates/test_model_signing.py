"""Model signing gates: sign and verify a real model directory with real keys, record what happened (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlsecops.evidence.digest import sha256_path
from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
from airflow_mlsecops.evidence.model_signing import PREDICATE_TYPE, sign_model
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.model_signing import sign_gate, verify_gate
from tests.evidence.model_signing_fixtures import make_model


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def trusted(key: SigningKey) -> dict[str, VerifyingKey]:
    return {key.keyid: key.public_key}


def test_the_gates_pin_the_model_with_its_signature_inside(tmp_path: Path, key: SigningKey) -> None:
    model = make_model(tmp_path)
    sig = model / "model.sig"
    sig.write_bytes(sign_model(model, key, signature_path=sig))
    # The gates pin the directory as it is on disk, signature included, as sha256_path sees it.
    signed = sign_gate(model, key, signature_path=sig)
    assert signed.result.subjects[0].sha256 == sha256_path(model)
    checked = verify_gate(model, sig.read_bytes(), {key.keyid: key.public_key})
    assert checked.verdict is Verdict.PASSED and checked.result.subjects == signed.result.subjects


def test_sign_and_verify_gates(tmp_path: Path, key: SigningKey, trusted: dict[str, VerifyingKey]) -> None:
    model = make_model(tmp_path)
    out = tmp_path / "signatures" / "model.sig"
    signed = sign_gate(model, key, name="models:/fraud/3", signature_path=out)
    assert signed.verdict is Verdict.PASSED, signed.result.summary
    assert signed.result.gate == "model-signing"
    assert set(signed.files) == {"model.sig"} and signed.files["model.sig"] == out.read_bytes()
    (subject,) = signed.result.subjects
    assert subject.name == "models:/fraud/3"
    assert subject.sha256 == sha256_path(model)  # the directory as on disk, .git included: verify_run re-checks it
    details = signed.result.details
    assert details["keyid"] == key.keyid and details["predicate_type"] == PREDICATE_TYPE

    checked = verify_gate(model, out.read_bytes(), trusted, name="models:/fraud/3")
    assert checked.verdict is Verdict.PASSED, checked.result.summary
    assert checked.result.gate == "model-signature-verification"
    assert checked.result.subjects == signed.result.subjects
    assert checked.result.details["model_digest"] == details["model_digest"]

    (model / "config.json").write_text('{"layers": 3}')
    (model / "extra.txt").write_text("x")
    failed = verify_gate(model, out.read_bytes(), trusted)
    assert failed.verdict is Verdict.FAILED
    assert {f.id for f in failed.result.failed_findings} == {"model-signing.changed", "model-signing.added"}
    assert "config.json changed since it was signed" in failed.result.summary

    untrusted = verify_gate(model, out.read_bytes(), {})
    assert untrusted.verdict is Verdict.FAILED
    assert [f.id for f in untrusted.result.failed_findings] == ["model-signing.signature"]


def test_gates_report_errors_never_a_pass(tmp_path: Path, key: SigningKey, trusted: dict[str, VerifyingKey]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sign_gate(empty, key).verdict is Verdict.ERROR
    assert sign_gate(make_model(tmp_path), SigningKey.generate("ed25519")).verdict is Verdict.ERROR
    bundle = sign_model(tmp_path / "model", key)
    missing = verify_gate(tmp_path / "nowhere", bundle, trusted)
    assert missing.verdict is Verdict.ERROR and "does not exist" in missing.result.summary


def test_warn_only_verification_turns_a_rejection_into_warned_never_an_error(
    tmp_path: Path, key: SigningKey, trusted: dict[str, VerifyingKey]
) -> None:
    model = make_model(tmp_path)
    bundle = sign_model(model, key)
    (model / "config.json").write_text('{"layers": 3}')
    warned = verify_gate(model, bundle, trusted, warn_only=True)
    assert warned.verdict is Verdict.WARNED and warned.result.warn_only is True
    assert [f.id for f in warned.result.failed_findings] == ["model-signing.changed"]
    untrusted = verify_gate(model, bundle, {}, warn_only=True)
    assert untrusted.verdict is Verdict.WARNED
    assert [f.id for f in untrusted.result.failed_findings] == ["model-signing.signature"]
    # An input that cannot be read is no verdict at all: warn-only does not soften it.
    missing = verify_gate(tmp_path / "nowhere", bundle, trusted, warn_only=True)
    assert missing.verdict is Verdict.ERROR
    assert verify_gate(
        make_model(tmp_path / "fresh"), sign_model(tmp_path / "fresh" / "model", key), trusted, warn_only=True
    ).verdict is (Verdict.PASSED)
