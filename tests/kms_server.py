"""moto_server with AWS KMS's documented ``Sign`` semantics: ``python -m tests.kms_server -H HOST -p PORT``.

moto 5 (KMS, S3 and the rest, on one loopback port) differs from AWS KMS's ``Sign`` in two ways that
matter to a signer (see FACTS.md):

* ``MessageType=DIGEST``: AWS signs the given digest as the message's hash (the signature verifies
  over the original message); moto ignores ``MessageType`` and hashes the digest once more.
* ``MessageType=RAW``: AWS refuses messages over 4,096 bytes; moto signs any length.

This launcher starts moto's own server with those two points made to follow the AWS API reference
(https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html), and nothing else changed, so
that a signer that is right for AWS is also right here: the example pipeline, whose larger
statements are signed as digests, can then run end to end against a KMS key. The stock behaviour
stays tested too (``tests/evidence/test_kms.py`` starts a plain ``moto_server`` and checks that the
signer refuses its DIGEST answer).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

#: AWS KMS's limit for ``MessageType=RAW`` messages.
RAW_MESSAGE_LIMIT = 4096
_DIGEST_SIZES = {"ECDSA_SHA_256": 32, "ECDSA_SHA_384": 48, "ECDSA_SHA_512": 64}
_message_type = threading.local()


def _patch_moto() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from moto.kms import responses, utils
    from moto.kms.exceptions import ValidationException

    stock_sign = responses.KmsResponse.sign
    stock_ecdsa_sign = utils.ECDSAPrivateKey.sign

    def sign(self: Any) -> str:
        message_type = self._get_param("MessageType") or "RAW"
        message = self._get_param("Message") or b""
        if isinstance(message, str):
            message = message.encode("utf-8")
        if message_type == "RAW" and len(message) > RAW_MESSAGE_LIMIT:
            raise ValidationException(
                f"Digest or message is too long: a RAW message is at most {RAW_MESSAGE_LIMIT} bytes; "
                "send MessageType=DIGEST with the message's digest"
            )
        _message_type.value = message_type
        try:
            return str(stock_sign(self))
        finally:
            _message_type.value = "RAW"

    def ecdsa_sign(self: Any, message: bytes, signing_algorithm: str) -> bytes:
        if getattr(_message_type, "value", "RAW") != "DIGEST":
            return bytes(stock_ecdsa_sign(self, message, signing_algorithm))
        utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
        size = _DIGEST_SIZES[signing_algorithm]
        if len(message) != size:
            raise ValidationException(f"Digest is invalid length for algorithm {signing_algorithm}: {len(message)} bytes")
        hash_cls = {32: "SHA256", 48: "SHA384", 64: "SHA512"}[size]
        from cryptography.hazmat.primitives import hashes

        return bytes(self.private_key.sign(message, ec.ECDSA(Prehashed(getattr(hashes, hash_cls)()))))

    responses.KmsResponse.sign = sign  # type: ignore[method-assign]
    utils.ECDSAPrivateKey.sign = ecdsa_sign  # type: ignore[method-assign]


def start_kms_server(*, faithful: bool, log_path: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A moto_server of the caller alone on a free loopback port: AWS's ``Sign`` semantics
    (``faithful``, this module) or stock moto; its output to ``log_path`` (default: discarded).
    The caller stops it (it leads its own process group). Raises RuntimeError if it does not answer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    if faithful:
        command = [sys.executable, "-m", "tests.kms_server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    log = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115 - the child holds it
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=log,
        stderr=subprocess.STDOUT if log_path is not None else subprocess.DEVNULL,
        start_new_session=True,
    )
    if log_path is not None:
        log.close()  # type: ignore[union-attr]
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
    process.kill()
    raise RuntimeError(f"{' '.join(command)} did not start")


def main(argv: list[str] | None = None) -> None:
    _patch_moto()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
