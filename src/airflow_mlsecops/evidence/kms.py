"""AWS KMS as a remote signer: ``awskms:///<key id | key ARN | alias/NAME>`` (the cosign/sigstore form).

The private key never exists in this process: KMS signs, and the signer only holds the key's public
half (from ``GetPublicKey``), so a KMS signature verifies exactly like a PEM key's signature, by key
id (the SHA-256 of the DER SubjectPublicKeyInfo) against a trusted public key.

Only ECDSA P-256 keys are used (``KeySpec=ECC_NIST_P256``, ``KeyUsage=SIGN_VERIFY``, algorithm
``ECDSA_SHA_256``): what DSSE envelopes and OpenSSF model signatures are verified with.

Messages longer than 4,096 bytes
    KMS accepts at most 4,096 bytes with ``MessageType=RAW``. A longer message (a DSSE PAE of a
    large statement) is sent as ``MessageType=DIGEST`` with its SHA-256: real KMS then uses those 32
    bytes as the hash to sign and skips its own hashing step, so the signature is an ordinary
    ECDSA-SHA256 signature over the whole message and verifies locally over it. Every signature is
    verified locally over the message before it is returned (sign-then-verify): a KMS (or a stand-in
    such as moto, which hashes a DIGEST message once more) that returns anything else is refused
    with :class:`SignerUnavailable`; nothing is signed with a signature nobody could verify.

Region, credentials and endpoint come from boto3's own configuration (``AWS_REGION``,
``AWS_PROFILE``, IRSA's web identity, ``AWS_ENDPOINT_URL``...); the region of a key ARN wins, and
``awskms://HOST[:PORT]/KEY`` sends requests to ``https://HOST[:PORT]`` as cosign does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow_mlsecops.evidence.keys import VerifyingKey
from airflow_mlsecops.exceptions import KeyLoadError, SignatureInvalid, SignerUnavailable

SCHEME = "awskms"
FORM = "awskms:///<key id | key ARN | alias/NAME>"
#: The longest message KMS signs with ``MessageType=RAW``; longer ones are sent as a SHA-256 digest.
RAW_MESSAGE_LIMIT = 4096
KEY_SPEC = "ECC_NIST_P256"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
#: Seconds to connect and to wait for an answer, and attempts per request: a signer that cannot
#: reach KMS says so in seconds rather than hang a gate.
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 3

_KEY_ID = r"[a-zA-Z0-9_-]+"
_ALIAS = r"alias/[a-zA-Z0-9:/_-]+"
_ARN = r"arn:aws(?:-us-gov|-cn|-iso|-iso-b)?:kms:([a-z0-9-]+):\d{12}:(?:key/[a-zA-Z0-9_-]+|alias/[a-zA-Z0-9:/_-]+)"
_REFERENCE = re.compile(rf"^awskms://(?P<host>[^/]*)/(?P<key>{_ARN}|{_ALIAS}|{_KEY_ID})$", re.IGNORECASE)
#: AWS error codes that mean the key itself cannot sign (not a passing outage): a configuration problem.
_KEY_UNUSABLE = {
    "NotFoundException": "does not exist (or is not visible to these credentials)",
    "DisabledException": "is disabled",
    "KMSInvalidStateException": "is not usable in its current state (disabled, pending deletion or import)",
    "InvalidKeyUsageException": "is not a signing key",
}


@dataclass(frozen=True)
class AwsKmsReference:
    """A parsed ``awskms://`` reference.

    :param reference: the text as given.
    :param key: the key id, key ARN, alias ARN or ``alias/NAME`` sent to KMS.
    :param endpoint: ``https://HOST[:PORT]`` from ``awskms://HOST[:PORT]/KEY``; None: boto3's own.
    :param region: the region of an ARN; None: boto3's own.
    """

    reference: str
    key: str
    endpoint: str | None = None
    region: str | None = None

    @classmethod
    def parse(cls, reference: str, *, where: str = "") -> AwsKmsReference:
        """:raises KeyLoadError: ``reference`` is not one of the ``awskms://`` forms."""
        match = _REFERENCE.match(reference.strip())
        if match is None or not reference.lower().startswith(f"{SCHEME}://"):
            raise KeyLoadError(
                f"key reference {reference}{where} is not an AWS KMS key reference; use {FORM} "
                "(or awskms://HOST[:PORT]/<key> for another endpoint)"
            )
        key = match.group("key")
        host = match.group("host")
        if host.lower() == "alias":
            raise KeyLoadError(
                f"key reference {reference}{where}: 'alias' is read as an endpoint host here; "
                f"did you mean awskms:///alias/{key} (three slashes)?"
            )
        region_match = re.match(_ARN, key)
        return cls(
            reference=reference.strip(),
            key=key,
            endpoint=f"https://{host}" if host else None,
            region=region_match.group(1) if region_match else None,
        )


def kms_client(endpoint: str | None = None, region: str | None = None) -> Any:
    """A boto3 KMS client with short timeouts and few retries (see :data:`CONNECT_TIMEOUT_S`)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        user_agent_extra="airflow-mlsecops",
    )
    return boto3.session.Session().client("kms", region_name=region, endpoint_url=endpoint, config=config)


class AwsKmsSigner:
    """Signs with an AWS KMS key; implements :class:`airflow_mlsecops.evidence.signers.Signer`.

    Creating one asks KMS once (``DescribeKey``, ``GetPublicKey``) and refuses a key that cannot
    sign evidence; each :meth:`sign` is one ``Sign`` request, verified locally before it is returned.
    The boto3 client is made once per signer.

    :param reference: ``awskms:///<key id | key ARN | alias/NAME>``.
    :param origin: the setting that named it (``MLSECOPS_SIGNING_KEY``), for messages.
    :raises KeyLoadError: a malformed reference, no AWS region, a key that does not exist, is not
        enabled or is not an ECDSA P-256 signing key.
    :raises SignerUnavailable: KMS cannot be reached or refuses (no credentials, access denied, timeout).
    """

    def __init__(self, reference: str, *, origin: str = "") -> None:
        self._where = f" (from {origin})" if origin and origin != "default" else ""
        self.reference = AwsKmsReference.parse(reference, where=self._where)
        self._client = self._make_client()
        metadata = self._call("DescribeKey", KeyId=self.reference.key)["KeyMetadata"]
        self.key_arn: str = metadata["Arn"]
        self._check_metadata(metadata)
        public = self._call("GetPublicKey", KeyId=self.key_arn)
        self._public_key = _verifying_key(public["PublicKey"], origin=self.reference.reference + self._where)

    def __repr__(self) -> str:
        return f"AwsKmsSigner({self.reference.reference}, keyid={self.keyid[:16]})"

    @property
    def public_key(self) -> VerifyingKey:
        return self._public_key

    @cached_property
    def keyid(self) -> str:
        return self._public_key.keyid

    @property
    def client(self) -> Any:
        """The boto3 KMS client this signer sends its requests with."""
        return self._client

    def sign(self, data: bytes) -> bytes:
        """An ECDSA-SHA256 signature (DER) over ``data``, made by KMS and verified here.

        :raises SignerUnavailable: KMS cannot be reached, refuses, or returns a signature that does
            not verify over ``data`` with this key's public key.
        :raises KeyLoadError: the key was disabled or deleted since the signer was made.
        """
        if len(data) <= RAW_MESSAGE_LIMIT:
            message, message_type = data, "RAW"
        else:
            message, message_type = hashlib.sha256(data).digest(), "DIGEST"
        response = self._call(
            "Sign", KeyId=self.key_arn, Message=message, MessageType=message_type, SigningAlgorithm=SIGNING_ALGORITHM
        )
        signature: bytes = response["Signature"]
        try:
            self._public_key.verify(signature, data)
        except SignatureInvalid as exc:
            raise SignerUnavailable(
                f"{self.reference.reference}{self._where}: the KMS returned a signature that does not verify over the "
                f"{len(data)}-byte message (sent as MessageType={message_type}) with the key's public key; nothing was signed"
                + (
                    " (a KMS stand-in that hashes DIGEST messages again, such as moto, cannot sign messages over "
                    f"{RAW_MESSAGE_LIMIT} bytes)"
                    if message_type == "DIGEST"
                    else ""
                )
            ) from exc
        return signature

    # ------------------------------------------------------------------ internals

    def _make_client(self) -> Any:
        from botocore.exceptions import BotoCoreError, NoRegionError

        try:
            return kms_client(self.reference.endpoint, self.reference.region)
        except NoRegionError as exc:
            raise KeyLoadError(
                f"{self.reference.reference}{self._where}: no AWS region is configured; set AWS_REGION (or "
                "AWS_DEFAULT_REGION, or a profile's region) or use the key's ARN"
            ) from exc
        except BotoCoreError as exc:
            raise SignerUnavailable(f"{self.reference.reference}{self._where}: cannot set up the KMS client: {exc}") from exc

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One KMS request; AWS and network errors become :class:`KeyLoadError` or :class:`SignerUnavailable`."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        method = {"DescribeKey": "describe_key", "GetPublicKey": "get_public_key", "Sign": "sign"}[operation]
        name = f"{self.reference.reference}{self._where}"
        nothing = "; nothing was signed" if operation == "Sign" else ""
        try:
            return getattr(self._client, method)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "unknown"))
            detail = str(error.get("Message", "")).strip()
            suffix = f" ({code}: {detail})" if detail else f" ({code})"
            if code in _KEY_UNUSABLE:
                raise KeyLoadError(f"{name}: the KMS key {_KEY_UNUSABLE[code]}{suffix}{nothing}") from exc
            raise SignerUnavailable(f"{name}: KMS {operation} failed{suffix}{nothing}") from exc
        except NoCredentialsError as exc:
            raise SignerUnavailable(
                f"{name}: no AWS credentials found (NoCredentialsError): configure a role (IRSA), a profile or "
                f"AWS_ACCESS_KEY_ID{nothing}"
            ) from exc
        except BotoCoreError as exc:
            raise SignerUnavailable(f"{name}: KMS {operation} failed ({type(exc).__name__}: {exc}){nothing}") from exc

    def _check_metadata(self, metadata: dict[str, Any]) -> None:
        name = f"{self.reference.reference}{self._where}"
        state = metadata.get("KeyState", "Enabled")
        if state != "Enabled":
            raise KeyLoadError(f"{name}: the KMS key {self.key_arn} is {state}, not Enabled: it cannot sign")
        usage = metadata.get("KeyUsage")
        spec = metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec")
        if usage != "SIGN_VERIFY":
            raise KeyLoadError(
                f"{name}: the KMS key {self.key_arn} is {_article(usage)} {usage} key ({spec}); "
                f"evidence needs a SIGN_VERIFY {KEY_SPEC} key"
            )
        if spec != KEY_SPEC:
            raise KeyLoadError(
                f"{name}: the KMS key {self.key_arn} is {_article(spec)} {spec} key; evidence is signed with ECDSA P-256: "
                f"create the key with KeySpec={KEY_SPEC}, KeyUsage=SIGN_VERIFY"
            )
        algorithms = metadata.get("SigningAlgorithms") or []
        if SIGNING_ALGORITHM not in algorithms:
            raise KeyLoadError(
                f"{name}: the KMS key {self.key_arn} does not offer {SIGNING_ALGORITHM} (only {', '.join(algorithms)})"
            )


def _article(word: object) -> str:
    """``a`` or ``an`` before a KMS name read letter by letter or as a word (an ECC_..., an RSA_..., a SYMMETRIC_...)."""
    return "an" if str(word)[:1].upper() in "AEIOUFHLMNRSX" and not str(word).upper().startswith("SYM") else "a"


def _verifying_key(der: bytes, *, origin: str) -> VerifyingKey:
    """The P-256 public key of a ``GetPublicKey`` answer (DER SubjectPublicKeyInfo)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyLoadError(f"{origin}: KMS returned a public key that cannot be read") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeyLoadError(f"{origin}: KMS returned a {type(key).__name__.lstrip('_')} public key, not ECDSA P-256")
    return VerifyingKey(key, origin=origin)


def load_public_key(reference: str, *, origin: str = "") -> VerifyingKey:
    """The public key of the KMS key ``reference`` names (``DescribeKey`` and ``GetPublicKey``, no signing)."""
    return AwsKmsSigner(reference, origin=origin).public_key
