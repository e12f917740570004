"""``mlsecops verify``, ``ledger verify``, ``ledger checkpoint``, ``keygen`` and ``verify-artifact``: keys, signed
ledger checkpoints, and re-verifying recorded evidence."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, EXIT_REJECTED, add_store_options, apply_store_options, print_json
from airflow_mlsecops.cli.gate import finish_gate
from airflow_mlsecops.exceptions import ConfigurationError


def cmd_verify(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.ledger import EvidenceLedger
    from airflow_mlsecops.lifecycle.verification import Status, verify_run

    settings = Settings.from_env()
    ledger_path = settings.ledger_url
    if ledger_path.startswith("sqlite:///") and not Path(ledger_path[len("sqlite:///") :]).exists():
        raise ConfigurationError(f"no evidence ledger at {ledger_path}; set MLSECOPS_LEDGER_URL or --ledger-url")
    report = verify_run(
        args.mlflow_run_id,
        settings=settings,
        ledger=EvidenceLedger(settings.ledger_url, create=False),
        check_subjects=not args.no_subjects,
        checkpoint=args.checkpoint,
    )
    if args.json:
        print_json(report.to_dict())
    else:
        marks = {Status.OK: "ok", Status.FAILED: "FAILED", Status.SKIPPED: "skipped"}
        print(f"MLflow run {report.mlflow_run_id} ({report.tracking_uri})")
        if report.trusted_keys:
            for key in report.trusted_keys:
                print(f"  trusted key {key['keyid']} ({key['key_type']}) from {key['source']}, valid {key['validity']}")
        else:
            print("  trusted keys: none configured (set MLSECOPS_TRUSTED_KEYS, or MLSECOPS_HOME to trust its keys/ folder)")
        scope = None
        for check in report.checks:
            if check.scope != scope:
                scope = check.scope
                gate = report.gates.get(scope)
                result = report.results.get(scope)  # warned says why: incomplete (what was not performed) or warn-only
                verdict = result.verdict_label if result is not None else gate["verdict"] if gate else ""
                print(f"  {scope}" + (f"  [{gate['gate']}: {verdict}]" if gate else ""))
            print(f"    {marks[check.status]:<8} {check.name:<32} {check.detail}")
        print()
        if report.ok:
            print(f"VERIFIED: {sum(c.status is Status.OK for c in report.checks)} checks passed")
        else:
            print(f"NOT VERIFIED: {len(report.failures)} check(s) failed")
            for check in report.failures:
                print(f"  - {check.scope}: {check.name}: {check.detail}")
    return EXIT_OK if report.ok else EXIT_REJECTED


def _open_ledger() -> tuple[Any, Any]:
    """The settings and the configured ledger (never created here: a missing SQLite file is an error)."""
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.ledger import EvidenceLedger

    settings = Settings.from_env()
    url = settings.ledger_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        raise ConfigurationError(f"no evidence ledger at {url}; set MLSECOPS_LEDGER_URL or --ledger-url")
    return settings, EvidenceLedger(url, create=False)


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.evidence.checkpoint import verify_ledger

    settings, ledger = _open_ledger()
    # raises LedgerIntegrityError / CheckpointMismatch / SignatureInvalid (exit 1), StoreUnavailable (exit 2)
    result = verify_ledger(
        ledger, settings=settings, trusted_keys=settings.load_trusted_keys(), checkpoint=args.checkpoint, full=args.full
    )
    if args.json:
        print_json(result.to_dict())
        return EXIT_OK
    print(f"ledger chain intact: {result.entries} entries, head {result.head_hash}")
    print(f"  walked {result.rows_walked} row(s), seq {result.start_seq} to {result.entries}")
    if result.checkpoint is not None:
        cp = result.checkpoint.checkpoint
        print(f"  agrees with the checkpoint {result.checkpoint.location}")
        print(f"    seq {cp.size}, head {cp.head_hash[:16]}..., signed {cp.signed_at_text} by {cp.keyid[:16]}")
    else:
        print(f"  {result.note}")
    return EXIT_OK


def cmd_ledger_checkpoint(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.evidence.checkpoint import write_checkpoint

    if args.retention_days is not None and args.retention_days < 1:
        raise ConfigurationError(f"--retention-days must be at least 1, not {args.retention_days}")
    settings, ledger = _open_ledger()
    if not (args.to or settings.ledger_checkpoints):
        raise ConfigurationError(
            "no checkpoint store: pass --to DIR|s3://bucket/prefix, or set MLSECOPS_LEDGER_CHECKPOINTS "
            "(or [mlsecops] ledger_checkpoints)"
        )
    written = write_checkpoint(ledger, settings=settings, to=args.to, retention_days=args.retention_days)
    if written is None:
        if args.json:
            print_json({"written": False, "reason": "the ledger is empty and no checkpoint exists yet"})
        else:
            print("the ledger is empty and no checkpoint exists yet: nothing to checkpoint")
        return EXIT_OK
    if args.json:
        print_json({"written": True, **written.to_dict()})
        return EXIT_OK
    cp, walked = written.checkpoint, written.verification
    print(f"checkpoint written: {written.stored.location}")
    print(f"  ledger size {cp.size}, head {cp.head_hash}")
    print(f"  ledger {cp.ledger_id[:16]}... (its first entry), signed {cp.signed_at_text} by {cp.keyid[:16]}")
    if written.stored.locked:
        print(f"  locked: {written.stored.retention}")
    else:
        print("  locked: no" + (f" ({written.stored.retention})" if written.stored.retention else ""))
    since = f"from the checkpoint {walked.checkpoint.location}" if walked.checkpoint else "(no checkpoint before)"
    print(f"  chain verified first: walked {walked.rows_walked} row(s) from seq {walked.start_seq} {since}")
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    from airflow_mlsecops.config import PUBLIC_KEY_FILE, SIGNING_KEY_FILE, Settings
    from airflow_mlsecops.evidence.keys import SigningKey

    password = None
    if args.password_env:
        if not os.environ.get(args.password_env):
            raise ConfigurationError(f"--password-env {args.password_env}: that environment variable is unset or empty")
        password = os.environ[args.password_env].encode("utf-8")
    key = SigningKey.generate(args.key_type)
    if args.out:
        out = Path(args.out)
        key.write_pair(out / SIGNING_KEY_FILE, out / PUBLIC_KEY_FILE, password=password)
    else:
        settings = Settings.from_env()
        out = settings.keys_dir
        key.write_pair(out / SIGNING_KEY_FILE, out / PUBLIC_KEY_FILE, password=password)
    result = {
        "key_type": args.key_type,
        "keyid": key.keyid,
        "private_key": str(out / SIGNING_KEY_FILE),
        "public_key": str(out / PUBLIC_KEY_FILE),
    }
    if args.json:
        print_json(result)
    else:
        print(f"created {args.key_type} key {key.keyid}")
        print(f"  private key (mode 0600, keep it secret): {result['private_key']}")
        print(f"  public key (give it to verifiers):        {result['public_key']}")
    return EXIT_OK


def cmd_verify_artifact(args: argparse.Namespace) -> int:
    import tempfile

    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.keys import load_trusted_keys
    from airflow_mlsecops.gates.provenance import verify_artifacts
    from airflow_mlsecops.io.artifacts import fetch, read_bytes, subject_name

    keys = load_trusted_keys(args.public_key) if args.public_key else Settings.from_env().load_trusted_keys()
    if not keys:
        raise ConfigurationError(
            "no public key given (--public-key) and none configured "
            "(MLSECOPS_TRUSTED_KEYS, or MLSECOPS_HOME for its keys/ folder)"
        )
    with tempfile.TemporaryDirectory(prefix="mlsecops-verify-artifact-") as tmp:
        attestation = read_bytes(args.attestation, Path(tmp, "attestation"))
        named = {subject_name(p): str(fetch(p, Path(tmp, str(i)))) for i, p in enumerate(args.paths)}
        outcome = verify_artifacts(named, attestation, keys)
    args.record = False
    args.attestation_out = None
    return finish_gate(args, outcome)


def add_evidence_parsers(sub: Any) -> None:
    """Add ``verify``, ``ledger verify``, ``ledger checkpoint`` and ``keygen``."""
    p = sub.add_parser("verify", help="re-verify every piece of evidence recorded in an MLflow run")
    p.add_argument("--mlflow-run-id", required=True, help="the MLflow run holding the evidence")
    add_store_options(p)
    p.add_argument("--trusted-key", action="append", metavar="PEM", help="trusted public key file or directory (repeatable)")
    p.add_argument("--no-subjects", action="store_true", help="do not re-hash the attested artifacts (models, data)")
    p.add_argument(
        "--checkpoint",
        metavar="URI",
        help="check the ledger against this signed checkpoint (a file, a directory or s3://bucket/prefix: its newest) "
        "(default: the newest in $MLSECOPS_LEDGER_CHECKPOINTS)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("ledger", help="evidence ledger maintenance")
    lsub = p.add_subparsers(dest="ledger_command", required=True, metavar="SUBCOMMAND")
    lp = lsub.add_parser(
        "verify",
        help="check the ledger's hash chain, from the newest signed checkpoint (or the whole chain when there is none)",
    )
    lp.add_argument("--ledger-url", help="SQLAlchemy URL of the evidence ledger (default: $MLSECOPS_LEDGER_URL)")
    lp.add_argument(
        "--checkpoint",
        metavar="URI",
        help="a signed checkpoint: a file, a directory or s3://bucket/prefix (its newest); "
        "default: the newest in $MLSECOPS_LEDGER_CHECKPOINTS",
    )
    lp.add_argument(
        "--full", action="store_true", help="walk the whole chain from the first entry (and still check the checkpoint)"
    )
    lp.add_argument("--trusted-key", action="append", metavar="PEM", help="trusted public key file or directory (repeatable)")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_ledger_verify)
    lp = lsub.add_parser(
        "checkpoint",
        help="verify the chain, then sign a checkpoint of the ledger's size and head and store it outside the database",
    )
    lp.add_argument("--ledger-url", help="SQLAlchemy URL of the evidence ledger (default: $MLSECOPS_LEDGER_URL)")
    lp.add_argument("--to", metavar="URI", help="a directory or s3://bucket/prefix (default: $MLSECOPS_LEDGER_CHECKPOINTS)")
    lp.add_argument(
        "--retention-days",
        type=int,
        metavar="N",
        help="S3 Object Lock: keep the checkpoint in COMPLIANCE mode for N days "
        "(default: the bucket's default retention, else 365 days)",
    )
    lp.add_argument(
        "--trusted-key",
        action="append",
        metavar="PEM",
        help="trusted public key file or directory for the existing checkpoints (repeatable; the signing key's own is trusted)",
    )
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_ledger_checkpoint)

    p = sub.add_parser("keygen", help="create a signing key pair")
    p.add_argument("--key-type", default="ecdsa-p256", choices=["ecdsa-p256", "ecdsa-p384", "ed25519"])
    p.add_argument("--out", help="directory for the key pair (default: $MLSECOPS_HOME/keys)")
    p.add_argument("--password-env", metavar="VAR", help="encrypt the private key with the password in this environment variable")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keygen)


def add_verify_artifact_parser(sub: Any) -> None:
    """Add ``verify-artifact``."""
    p = sub.add_parser("verify-artifact", help="check files byte for byte against a signed SLSA provenance attestation")
    p.add_argument("paths", nargs="+", help="files, directories, s3:// or MLflow URIs, named as they were signed")
    p.add_argument("--attestation", required=True, help="the signed provenance (DSSE JSON): path, s3:// or runs:/ URI")
    p.add_argument("--public-key", action="append", metavar="PEM", help="trusted public key file or directory (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify_artifact)
