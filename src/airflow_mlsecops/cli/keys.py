"""``mlsecops key``: inspect signing keys named by a reference (a PEM path, ``env:VAR``, ``awskms:///...``).

``mlsecops key public REF`` prints the public half of a key as PEM, preceded by ``#`` lines with its
key id and type (PEM readers, ``openssl`` and this package's trust loader skip text before the
``BEGIN`` line), so ``mlsecops key public awskms:///alias/evidence > evidence.pub.pem`` makes a trust
anchor for verifiers that have no access to KMS.
"""

from __future__ import annotations

import argparse
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, print_json


def cmd_key_public(args: argparse.Namespace) -> int:
    from airflow_mlsecops.evidence.keys import VerifyingKey
    from airflow_mlsecops.evidence.signers import load_public_key

    if args.reference:
        reference, origin = args.reference, ""
        public: VerifyingKey = load_public_key(reference, origin=origin)
    else:
        from airflow_mlsecops.config import Settings

        settings = Settings.from_env()
        signer = settings.load_signing_key()
        reference = settings.source_of("signing_key_pem") if settings.signing_key_pem_set else str(settings.signing_key_ref)
        public = signer.public_key
    pem = public.to_pem().decode("ascii")
    if args.json:
        print_json({"reference": reference, "keyid": public.keyid, "key_type": public.key_type, "public_key_pem": pem})
    else:
        print(f"# key id: {public.keyid}\n# key type: {public.key_type}\n# reference: {reference}\n{pem}", end="")
    return EXIT_OK


def add_key_parsers(sub: Any) -> None:
    """Add ``key public``."""
    p = sub.add_parser("key", help="inspect signing keys named by a reference")
    ksub = p.add_subparsers(dest="key_command", required=True, metavar="KEY_COMMAND")
    q = ksub.add_parser(
        "public",
        help="print a key's public half (PEM), key id and type",
        description="Print the public key (PEM) of the key REF names, with its key id and type. REF is a PEM file "
        "(private or public key), env:VAR (a PEM key in the variable VAR) or awskms:///<key id | key ARN | alias/NAME> "
        "(needs kms:DescribeKey and kms:GetPublicKey). Without REF: the configured signing key (MLSECOPS_SIGNING_KEY).",
    )
    q.add_argument("reference", nargs="?", metavar="REF", help="the key reference (default: the configured signing key)")
    q.add_argument("--json", action="store_true", help="print reference, keyid, key_type and public_key_pem as JSON")
    q.set_defaults(func=cmd_key_public)
