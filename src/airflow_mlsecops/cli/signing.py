"""``mlsecops sign`` and ``verify-model``: OpenSSF model signatures, interoperable with the ``model_signing`` tool."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, print_json
from airflow_mlsecops.exceptions import ConfigurationError


def cmd_sign(args: argparse.Namespace) -> int:
    from airflow_mlsecops.evidence.model_signing import sign_model
    from airflow_mlsecops.evidence.signers import Signer, load_signer

    password = None
    if args.password_env:
        if not os.environ.get(args.password_env):
            raise ConfigurationError(f"--password-env {args.password_env}: that environment variable is unset or empty")
        password = os.environ[args.password_env].encode("utf-8")
    key: Signer
    if args.key:
        key = load_signer(args.key, password=password, origin="--key")
    else:
        from airflow_mlsecops.config import Settings

        key = Settings.from_env().load_signing_key()  # MLSECOPS_SIGNING_KEY, as every other command signs
    bundle = sign_model(args.path, key, signature_path=args.signature)
    Path(args.signature).write_bytes(bundle)
    info = {
        "model": args.path,
        "signature": args.signature,
        "keyid": key.keyid,
        "bundle_sha256": hashlib.sha256(bundle).hexdigest(),
    }
    if args.json:
        print_json(info)
    else:
        print(f"signed {args.path} -> {args.signature} (key {key.keyid[:16]}, OpenSSF model signing v1.0 format)")
    return EXIT_OK


def cmd_verify_model(args: argparse.Namespace) -> int:
    from airflow_mlsecops.evidence.keys import load_trusted_keys
    from airflow_mlsecops.evidence.model_signing import verify_model

    try:
        bundle = Path(args.signature).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"signature {args.signature} cannot be read: {exc.strerror}") from exc
    signature = verify_model(args.path, bundle, load_trusted_keys(args.public_key), signature_path=args.signature)
    info = {
        "verified": True,
        "model": args.path,
        "keyid": signature.keyid,
        "model_digest": signature.model_digest,
        "files": len(signature.files),
    }
    if args.json:
        print_json(info)
    else:
        print(f"VERIFIED: {args.path} ({len(signature.files)} files) signed by key {signature.keyid[:16]}")
    return EXIT_OK


def add_signing_parsers(sub: Any) -> None:
    """Add ``sign`` and ``verify-model``."""
    p = sub.add_parser("sign", help="sign a model in the OpenSSF model-signing format (ECDSA)")
    p.add_argument("path", help="model file or directory")
    p.add_argument(
        "--key",
        "--private-key",
        dest="key",
        metavar="REF",
        help="the signing key (ECDSA P-256 or P-384): a PEM private key file, env:VAR or awskms:///<key id | key ARN | "
        "alias/NAME> (default: the configured signing key, MLSECOPS_SIGNING_KEY)",
    )
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding a PEM key's password")
    p.add_argument("--signature", required=True, help="where to write the signature (Sigstore bundle v0.3 JSON)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify-model", help="verify an OpenSSF model signature (ours or model_signing's)")
    p.add_argument("path", help="model file or directory")
    p.add_argument("--public-key", required=True, action="append", help="trusted PEM public key (repeatable)")
    p.add_argument("--signature", required=True, help="the signature (Sigstore bundle v0.3 JSON)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_model)
