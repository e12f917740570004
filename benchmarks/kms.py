"""Evidence signing with an AWS KMS key (``awskms:///alias/...``) over loopback, against a moto_server
with AWS's ``Sign`` semantics (``tests/kms_server.py``) this group starts on a free port and stops;
peer: a local PEM ECDSA P-256 key signing the same
~2 KiB statement (so the envelope goes to KMS as ``MessageType=RAW``).

Every KMS signature is one HTTPS-less loopback round trip plus the signer's local verification;
real KMS adds a network round trip (typically 5-20 ms in-region), so these rates are an upper
bound. For information: the only target is a loose floor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from benchmarks._common import TMP_ENV, Row, Target, calibrate, error_row, interleaved, looped, median, paired_ratio
from tests.kms_server import start_kms_server

GROUP = "kms"
ROW = "evidence signing with a KMS key over loopback (moto_server)"
FLOOR_OPS = 20.0  # a gate signs a handful of envelopes: 20/s is far more than it needs


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run(quick: bool) -> list[Row]:
    tmp = Path(os.environ.get(TMP_ENV, "/tmp"))
    try:
        process, endpoint = start_kms_server(faithful=True, log_path=tmp / "kms-moto_server.log")
    except (OSError, RuntimeError) as exc:
        return [error_row(GROUP, ROW, f"moto_server could not start: {exc}")]
    try:
        return _measure(endpoint, quick)
    finally:
        _stop(process)


def _measure(endpoint: str, quick: bool) -> list[Row]:
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    import boto3

    from airflow_mlsecops.evidence.dsse import INTOTO_PAYLOAD_TYPE, pae, sign_envelope, verify_envelope
    from airflow_mlsecops.evidence.keys import SigningKey
    from airflow_mlsecops.evidence.kms import RAW_MESSAGE_LIMIT, AwsKmsSigner
    from benchmarks._fixtures import statement_payload

    client = boto3.client("kms")
    key_id = client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    alias = f"alias/bench-{uuid.uuid4().hex[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=key_id)
    reference = f"awskms:///{alias}"

    rounds = 3 if quick else 9
    payload = statement_payload()
    message_bytes = len(pae(INTOTO_PAYLOAD_TYPE, payload))
    assert message_bytes <= RAW_MESSAGE_LIMIT
    created = []
    for _ in range(3 if quick else 7):
        start = time.perf_counter()
        kms = AwsKmsSigner(reference)
        created.append(time.perf_counter() - start)
    local = SigningKey.generate("ecdsa-p256")
    verify_envelope(sign_envelope(payload, kms), {kms.keyid: kms.public_key})

    def kms_sign() -> object:
        return sign_envelope(payload, kms)

    def local_sign() -> object:
        return sign_envelope(payload, local)

    counts = {"kms": calibrate(kms_sign, 0.3), "local": calibrate(local_sign)}
    times = interleaved({"kms": looped(kms_sign, counts["kms"]), "local": looped(local_sign, counts["local"])}, rounds)
    rates = {name: [counts[name] / t for t in ts] for name, ts in times.items()}
    ours, peer = median(rates["kms"]), median(rates["local"])
    return [
        Row(
            group=GROUP,
            name=ROW,
            unit="ops/s",
            ours=ours,
            peer=peer,
            peer_label="local PEM ECDSA P-256, same envelope",
            ratio=paired_ratio(rates["kms"], rates["local"]),
            target=Target("abs", ">=", FLOOR_OPS, "ops/s"),
            runs=rounds,
            notes=(
                f"payload {len(payload)} B, PAE {message_bytes} B (MessageType=RAW); one Sign request + local verify "
                f"per envelope, {1e3 / ours:.1f} ms/op; {counts['kms']} calls per round"
            ),
            samples=rates,
        ),
        Row(
            group=GROUP,
            name="KMS signer creation (DescribeKey + GetPublicKey) over loopback",
            unit="ms",
            ours=median(created) * 1e3,
            runs=len(created),
            notes="once per task process: a boto3 session and KMS client (service model load), then two requests",
        ),
    ]
