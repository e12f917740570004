"""Evidence signing with an AWS KMS key (``awskms:///alias/...``) over loopback, against a moto_server
this group starts on a free port and stops; peer: a local PEM ECDSA P-256 key signing the same
~2 KiB statement (so the envelope goes to KMS as ``MessageType=RAW``).

Every KMS signature is one HTTPS-less loopback round trip plus the signer's local verification;
real KMS adds a network round trip (typically 5-20 ms in-region), so these rates are an upper
bound. For information: the only target is a loose floor.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from benchmarks._common import TMP_ENV, Row, Target, calibrate, error_row, interleaved, looped, median, paired_ratio

GROUP = "kms"
ROW = "evidence signing with a KMS key over loopback (moto_server)"
FLOOR_OPS = 20.0  # a gate signs a handful of envelopes: 20/s is far more than it needs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto_server on a free loopback port; raises RuntimeError if it does not answer within 60 s."""
    moto = Path(sys.executable).with_name("moto_server")
    if not moto.exists():
        raise RuntimeError(f"{moto} is not installed")
    port = _free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - the child holds it; closed with the process
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return process, endpoint
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    _stop(process)
    raise RuntimeError(f"moto_server did not start on port {port}: see {log_path}")


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
        process, endpoint = _start_moto(tmp / "kms-moto_server.log")
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
