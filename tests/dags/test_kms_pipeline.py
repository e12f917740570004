"""Pipelines that sign their evidence with an AWS KMS key (moto_server on loopback), verified by a
verifier that trusts only the PEM printed by ``mlsecops key public``.

Evidence larger than 4,096 bytes (the DSSE PAE of a data-validation, data-integrity, robustness,
approval-request or promotion statement: 4.2-8.4 KiB in the example pipeline) is signed with
``MessageType=DIGEST``, as real KMS requires. Stock moto 5 hashes a DIGEST message once more (the
signer refuses its answer: ``tests/evidence/test_kms.py``), so the whole pipeline runs against
``tests/kms_server.py``, moto with AWS's documented ``Sign`` semantics.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The reviewer thread queries Airflow's models while dag.test() runs: import them here first.
import airflow.models.dagrun
import airflow.models.hitl
import airflow.models.taskinstance
import airflow.models.trigger
import airflow.models.xcom
import airflow.triggers.base  # noqa: F401
import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.dsse import pae
from airflow_mlsecops.evidence.keys import SigningKey
from airflow_mlsecops.evidence.kms import RAW_MESSAGE_LIMIT
from airflow_mlsecops.evidence.ledger import EvidenceLedger
from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
from airflow_mlsecops.lifecycle.verification import verify_run
from airflow_mlsecops.lifecycle.version_verification import verify_model_version
from tests.conftest import REPO_ROOT, load_dag_file
from tests.helpers import Reviewer, pipeline_run_id, run_dag_states, run_dag_with_reviewer, unique_dag_id, write_csv
from tests.kms_server import start_kms_server

pytestmark = pytest.mark.airflow

DAG_FILE = REPO_ROOT / "dags" / "secure_training_pipeline.py"


def _fresh_kms_key() -> tuple[str, str]:
    """A new ECDSA P-256 signing key on the moto_server; returns (its alias reference, its ARN)."""
    import boto3

    client = boto3.client("kms")
    metadata = client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    alias = f"alias/mlsecops-pipeline-{uuid.uuid4().hex[:10]}"
    client.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
    return f"awskms:///{alias}", metadata["Arn"]


def _export_public_key(reference: str, path: Path) -> str:
    """``mlsecops key public REF`` in a fresh process, its output written to ``path``; returns the key id."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow_mlsecops.cli", "key", "public", reference, "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    path.write_text(info["public_key_pem"])
    return str(info["keyid"])


def _kms_signs_digests_like_aws(arn: str) -> bool:
    """Whether this KMS signs ``MessageType=DIGEST`` as AWS does (the digest is the hash signed)."""
    import boto3
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    client = boto3.client("kms")
    data = b"d" * (RAW_MESSAGE_LIMIT + 1)
    signature = client.sign(
        KeyId=arn, Message=hashlib.sha256(data).digest(), MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]
    public = serialization.load_der_public_key(client.get_public_key(KeyId=arn)["PublicKey"])
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@pytest.fixture
def kms_signing(aws_endpoint: str, home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """MLSECOPS_SIGNING_KEY names a fresh KMS key; MLSECOPS_TRUSTED_KEYS only its exported PEM."""
    reference, arn = _fresh_kms_key()
    pem = tmp_path / "kms-evidence.pub.pem"
    keyid = _export_public_key(reference, pem)
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", reference)
    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(pem))
    return {"reference": reference, "arn": arn, "pem": pem, "keyid": keyid}


def test_kms_signed_evidence_verifies_with_the_exported_pem_only(
    airflow_db, home: Settings, kms_signing: dict[str, Any], tmp_path: Path, write_dag, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DAG signs a dataset's SLSA provenance with the KMS key and verifies it before use; a
    verifier trusting only the exported PEM verifies the run, one trusting another key does not."""
    dag_id = unique_dag_id("kms_provenance")
    data = write_csv(tmp_path, {"a": [1, 2, 3], "b": [4, 5, 6]})
    dag = write_dag(
        dag_id,
        f"""
sign = ProvenanceSignOperator(task_id="sign_data", artifacts=[{data!r}])
ProvenanceVerifyOperator(task_id="verify_data", artifacts=[{data!r}], attestation=sign.output["attestation"])
""",
        header="from airflow_mlsecops.operators import ProvenanceVerifyOperator",
    )
    _, states = run_dag_states(dag)
    assert states == {"sign_data": "success", "verify_data": "success"}, states

    settings = Settings.from_env()
    assert settings.trusted_key_refs == (str(kms_signing["pem"]),)
    store = MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    run_id = pipeline_run_id(store, dag_id)
    entries = EvidenceLedger(settings.ledger_url).entries_for_mlflow_run(run_id)
    envelopes = [json.loads(e.envelope) for e in entries]
    assert [e.gate for e in entries] == ["dataset-provenance", "provenance-verification"]
    assert {s["keyid"] for env in envelopes for s in env["signatures"]} == {kms_signing["keyid"]}
    # Every PAE here went to KMS as MessageType=RAW (see the module docstring for larger ones).
    assert all(len(pae(env["payloadType"], base64.b64decode(env["payload"]))) <= RAW_MESSAGE_LIMIT for env in envelopes)

    report = verify_run(run_id, settings=settings, store=store)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert [k["keyid"] for k in report.trusted_keys] == [kms_signing["keyid"]]

    other = tmp_path / "other.pub.pem"
    other.write_bytes(SigningKey.generate().public_key.to_pem())
    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(other))
    untrusted = verify_run(run_id, settings=Settings.from_env(), store=store)
    assert not untrusted.ok
    assert any("signature" in c.name or "signature" in c.detail for c in untrusted.failures), [
        c.to_dict() for c in untrusted.failures
    ]


@pytest.fixture
def aws_kms_server(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto_server of this test alone that signs ``MessageType=DIGEST`` as AWS KMS does
    (``tests/kms_server.py``), made boto3's endpoint."""
    process, endpoint = start_kms_server(faithful=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield endpoint
    finally:
        process.kill()
        process.wait(timeout=10)


def test_training_pipeline_signed_by_kms_verifies_with_the_exported_pem_only(
    airflow_db, home: Settings, aws_kms_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole example training pipeline (ingest to promotion, a reviewer approving) signs every
    record with a KMS key; statements over 4 KiB go as digests. A verifier trusting only the PEM
    printed by ``mlsecops key public`` verifies the run and the promoted model version."""
    reference, arn = _fresh_kms_key()
    assert _kms_signs_digests_like_aws(arn)
    pem = tmp_path / "kms-evidence.pub.pem"
    keyid = _export_public_key(reference, pem)
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", reference)
    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(pem))

    dag = load_dag_file(DAG_FILE, "secure_training_pipeline")
    reviewer = Reviewer(dag.dag_id, [("alice", True)], timeout=240)
    dag_run, states = run_dag_with_reviewer(dag, reviewer, run_conf={"rows": 1500, "seed": 11})
    assert dag_run.state == "success", states
    assert not reviewer.errors, reviewer.errors

    settings = Settings.from_env()
    store = MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    run_id = pipeline_run_id(store, dag.dag_id, run_id=dag_run.run_id)
    envelopes = [json.loads(e.envelope) for e in EvidenceLedger(settings.ledger_url).entries_for_mlflow_run(run_id)]
    assert {s["keyid"] for env in envelopes for s in env["signatures"]} == {keyid}
    sizes = [len(pae(env["payloadType"], base64.b64decode(env["payload"]))) for env in envelopes]
    assert max(sizes) > RAW_MESSAGE_LIMIT >= min(sizes)  # both the RAW and the DIGEST path signed evidence here

    report = verify_run(run_id, settings=settings, store=store)
    assert report.ok, [c.to_dict() for c in report.failures]
    assert [k["keyid"] for k in report.trusted_keys] == [keyid]
    champion = store.client.get_model_version_by_alias("credit-risk", "champion")
    assert verify_model_version(store, name="credit-risk", version=champion.version, settings=settings).ok

    other = tmp_path / "other.pub.pem"
    other.write_bytes(SigningKey.generate().public_key.to_pem())
    monkeypatch.setenv("MLSECOPS_TRUSTED_KEYS", str(other))
    assert not verify_run(run_id, settings=Settings.from_env(), store=store).ok
