"""``mlsecops``: run gates, verify evidence, manage keys, run the demo.

Exit codes, the same for every command: ``0`` passed / verified, ``1`` a gate rejected its input or
evidence failed verification, ``2`` the command could not run (bad arguments, missing key,
unreachable store). Errors print one clear line; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_mlsecops.exceptions import (
    ConfigurationError,
    GateRejected,
    MLSecOpsError,
    VerificationError,
)

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _apply_store_options(args: argparse.Namespace) -> None:
    if getattr(args, "tracking_uri", None):
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    if getattr(args, "ledger_url", None):
        os.environ["MLSECOPS_LEDGER_URL"] = args.ledger_url
    if getattr(args, "trusted_key", None):
        os.environ["MLSECOPS_TRUSTED_KEYS"] = os.pathsep.join(args.trusted_key)
    # A CLI user wants a clear answer about an unreachable server, not minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


# ----------------------------------------------------------------------------- verify
def cmd_verify(args: argparse.Namespace) -> int:
    _apply_store_options(args)
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
    )
    if args.json:
        _print_json(report.to_dict())
    else:
        marks = {Status.OK: "ok", Status.FAILED: "FAILED", Status.SKIPPED: "skipped"}
        print(f"MLflow run {report.mlflow_run_id} ({report.tracking_uri})")
        scope = None
        for check in report.checks:
            if check.scope != scope:
                scope = check.scope
                gate = report.gates.get(scope)
                print(f"  {scope}" + (f"  [{gate['gate']}: {gate['verdict']}]" if gate else ""))
            print(f"    {marks[check.status]:<8} {check.name:<32} {check.detail}")
        print()
        if report.ok:
            print(f"VERIFIED: {sum(c.status is Status.OK for c in report.checks)} checks passed")
        else:
            print(f"NOT VERIFIED: {len(report.failures)} check(s) failed")
            for check in report.failures:
                print(f"  - {check.scope}: {check.name}: {check.detail}")
    return EXIT_OK if report.ok else EXIT_REJECTED


# ----------------------------------------------------------------------------- ledger
def cmd_ledger_verify(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.ledger import EvidenceLedger

    ledger = EvidenceLedger(Settings.from_env().ledger_url, create=False)
    chain = ledger.verify_chain()  # raises LedgerIntegrityError (exit 1)
    if args.json:
        _print_json({"verified": True, "entries": chain.entries, "head_hash": chain.head_hash})
    else:
        print(f"ledger chain intact: {chain.entries} entries, head {chain.head_hash}")
    return EXIT_OK


# ----------------------------------------------------------------------------- keygen
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
        _print_json(result)
    else:
        print(f"created {args.key_type} key {key.keyid}")
        print(f"  private key (mode 0600, keep it secret): {result['private_key']}")
        print(f"  public key (give it to verifiers):        {result['public_key']}")
    return EXIT_OK


# ----------------------------------------------------------------------------- gates
def _finish_gate(args: argparse.Namespace, outcome: Any) -> int:
    from airflow_mlsecops.evidence.models import Verdict

    result = outcome.result
    payload: dict[str, Any] = {
        "gate": result.gate,
        "verdict": result.verdict.value,
        "summary": result.summary,
        "findings": [
            {"id": f.id, "severity": f.severity.value, "message": f.message, "location": f.location, "passed": f.passed}
            for f in result.findings
        ],
        "metrics": dict(result.metrics),
        "subjects": [s.to_intoto() for s in result.subjects],
        "evidence": None,
    }
    if getattr(args, "attestation_out", None) or args.record:
        from airflow_mlsecops.config import Settings
        from airflow_mlsecops.evidence.dsse import sign_envelope
        from airflow_mlsecops.evidence.statement import GateStatement

        settings = Settings.from_env()
        if args.attestation_out:
            # The attestation a downstream verifier wants: the gate's SLSA provenance if it has one,
            # else the signed gate result.
            key = settings.load_signing_key()
            if outcome.statements:
                envelope = sign_envelope(next(iter(outcome.statements.values())), key)
            else:
                digests = {name: hashlib.sha256(data).hexdigest() for name, data in outcome.files.items()}
                envelope = sign_envelope(GateStatement(result=result, evidence_files=digests).to_payload(), key)
                # The statement pins these files by digest: write them beside the attestation.
                files_dir = Path(f"{args.attestation_out}.files")
                for name, data in outcome.files.items():
                    (files_dir / name).parent.mkdir(parents=True, exist_ok=True)
                    (files_dir / name).write_bytes(data)
                payload["attestation_files"] = str(files_dir)
            Path(args.attestation_out).write_bytes(envelope.to_json())
            payload["attestation"] = args.attestation_out
        if args.record:
            from airflow_mlsecops.lifecycle.recorder import EvidenceRecorder

            recorded = EvidenceRecorder.from_settings(settings).record(
                result,
                experiment_name=args.experiment,
                files=outcome.files,
                statements=outcome.statements,
                mlflow_run_id=args.mlflow_run_id,
            )
            payload["evidence"] = recorded.to_dict()
    if args.json:
        _print_json(payload)
    else:
        print(f"{result.gate}: {result.verdict.value.upper()} - {result.summary}")
        for finding in result.findings:
            if not finding.passed or args.verbose:
                where = f" ({finding.location})" if finding.location else ""
                print(f"  [{finding.severity.value}] {finding.id}{where}: {finding.message}")
        if payload["evidence"]:
            ev = payload["evidence"]
            print(f"  evidence: MLflow run {ev['mlflow_run_id']} {ev['artifact_dir']} (ledger seq {ev['ledger_seq']})")
    if result.verdict is Verdict.ERROR:
        if args.verbose and outcome.error is not None:
            traceback.print_exception(outcome.error, file=sys.stderr)
        return EXIT_ERROR
    return EXIT_REJECTED if result.verdict is Verdict.FAILED else EXIT_OK


def cmd_gate_data_validation(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.gates.data_validation import load_suite_spec, validate_data

    load_suite_spec(args.suite)  # a bad suite is a usage error (exit 2) before any data is read
    return _finish_gate(
        args,
        validate_data(
            args.data,
            args.suite,
            warn_only=args.warn_only,
            csv_delimiter=args.delimiter,
            include_unexpected_values=args.keep_unexpected_values,
        ),
    )


def cmd_gate_data_integrity(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.gates.data_integrity import IntegrityThresholds, check_integrity

    thresholds = IntegrityThresholds.from_mapping(_parse_assignments(args.threshold or [], "--threshold"))
    outcome = check_integrity(
        args.data,
        args.reference,
        label_column=args.label_column,
        thresholds=thresholds,
        warn_only=args.warn_only,
        csv_delimiter=args.delimiter,
    )
    return _finish_gate(args, outcome)


def cmd_gate_pii(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.gates.pii import PII_TYPES, scan_pii

    types = _split_list(args.types)
    unknown = sorted(set(types or ()) - set(PII_TYPES))
    if unknown:
        raise ConfigurationError(f"unknown PII type(s) {', '.join(unknown)}; known: {', '.join(PII_TYPES)}")
    outcome = scan_pii(
        args.data,
        allow_columns=_split_list(args.allow_columns) or (),
        types=types,
        max_rows=args.max_rows,
        warn_only=args.warn_only,
        csv_delimiter=args.delimiter,
    )
    return _finish_gate(args, outcome)


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _parse_assignments(items: list[str], flag: str) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"{flag} takes NAME=VALUE, got {item!r}")
        try:
            parsed[name.strip()] = json.loads(raw)
        except ValueError:
            parsed[name.strip()] = raw
    return parsed


def cmd_gate_provenance(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.provenance import attest_artifacts
    from airflow_mlsecops.io.artifacts import fetch, subject_name

    with tempfile.TemporaryDirectory(prefix="mlsecops-provenance-") as tmp:
        named = {subject_name(p): str(fetch(p, Path(tmp, str(i)))) for i, p in enumerate(args.paths)}
        return _finish_gate(args, attest_artifacts(named, gate=args.gate_name))


def cmd_gate_model_scan(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.model_scan import scan_model
    from airflow_mlsecops.io.artifacts import fetch, subject_name

    with tempfile.TemporaryDirectory(prefix="mlsecops-model-scan-") as tmp:
        local = fetch(args.path, Path(tmp, "model"))
        outcome = scan_model(
            str(local), warn_only=args.warn_only, allow_globals=args.allow_global or (), subject=subject_name(args.path)
        )
        return _finish_gate(args, outcome)


def cmd_gate_robustness(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.gates.robustness import evaluate_robustness

    outcome = evaluate_robustness(
        args.model,
        args.data,
        label_column=args.label_column,
        epsilon=args.epsilon,
        min_robust_accuracy=args.min_robust_accuracy,
        max_accuracy_drop=args.max_accuracy_drop,
        method=args.method,
        max_samples=args.max_samples,
        epsilon_scale=args.epsilon_scale,
        allow_bounds=args.allow_bounds,
        warn_only=args.warn_only,
    )
    return _finish_gate(args, outcome)


def cmd_gate_sbom(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.gates.sbom import DEFAULT_FAIL_ON, DatasetRef, build_and_check_sbom

    outcome = build_and_check_sbom(
        args.model,
        python=args.python,
        osv_db=args.osv_db,
        online=args.online,
        datasets=[DatasetRef.parse(d) for d in args.dataset or []],
        fail_on=args.fail_on or DEFAULT_FAIL_ON,
        require_vulnerability_check=not args.no_vulnerability_check,
        warn_only=args.warn_only,
    )
    if args.bom and "bom.cdx.json" in outcome.files:
        Path(args.bom).write_bytes(outcome.files["bom.cdx.json"])
    return _finish_gate(args, outcome)


def cmd_gate_drift(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.gates.drift import detect_drift

    outcome = detect_drift(
        args.reference,
        args.current,
        columns=_split_list(args.columns),
        drift_share=args.drift_share,
        max_rows=None if args.max_rows == 0 else args.max_rows,
        html=bool(args.html) or args.record,
        warn_only=args.warn_only,
    )
    if args.html:
        report = next((data for name, data in outcome.files.items() if name.endswith(".html")), None)
        if report is not None:
            Path(args.html).write_bytes(report)
    return _finish_gate(args, outcome)


def cmd_gate_input_anomaly(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.gates.input_detection import score_batch

    outcome = score_batch(
        args.data, args.detector, model_uri=args.model, max_flagged_share=args.max_flagged_share, warn_only=args.warn_only
    )
    return _finish_gate(args, outcome)


# ----------------------------------------------------------------------------- model signing
def cmd_sign(args: argparse.Namespace) -> int:
    from airflow_mlsecops.evidence.keys import SigningKey
    from airflow_mlsecops.evidence.model_signing import sign_model

    password = os.environ[args.password_env].encode("utf-8") if args.password_env and os.environ.get(args.password_env) else None
    key = SigningKey.from_file(args.private_key, password=password)
    bundle = sign_model(args.path, key, signature_path=args.signature)
    Path(args.signature).write_bytes(bundle)
    info = {
        "model": args.path,
        "signature": args.signature,
        "keyid": key.keyid,
        "bundle_sha256": hashlib.sha256(bundle).hexdigest(),
    }
    if args.json:
        _print_json(info)
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
        _print_json(info)
    else:
        print(f"VERIFIED: {args.path} ({len(signature.files)} files) signed by key {signature.keyid[:16]}")
    return EXIT_OK


# ----------------------------------------------------------------------------- approval and promotion
def _airflow_env(args: argparse.Namespace) -> None:
    """Point Airflow at the embedded default's database unless AIRFLOW_HOME says otherwise."""
    from airflow_mlsecops.config import Settings

    os.environ.setdefault("AIRFLOW_HOME", str(Settings.from_env().home / "airflow"))


def cmd_approvals(args: argparse.Namespace) -> int:
    _airflow_env(args)
    from airflow_mlsecops.lifecycle.hitl import pending_approvals

    pending = pending_approvals(args.dag_id, args.run_id)
    if args.json:
        _print_json([p.to_dict() for p in pending])
    elif not pending:
        print(f"no approval is waiting in DAG {args.dag_id}")
    else:
        for p in pending:
            print(f"{p.dag_id} {p.run_id} {p.task_id}: {p.subject}")
            if p.assigned_users:
                print(f"  reviewers: {', '.join(p.assigned_users)}")
            if p.body:
                print("  " + "\n  ".join(p.body.splitlines()))
    return EXIT_OK


def _respond(args: argparse.Namespace, approve: bool) -> int:
    _airflow_env(args)
    from airflow_mlsecops.lifecycle.hitl import respond, wait_for_run

    written = respond(dag_id=args.dag_id, run_id=args.run_id, user=args.as_user, approve=approve, task_id=args.task_id)
    result: dict[str, Any] = {"response": written}
    if args.wait:
        result["run"] = wait_for_run(args.dag_id, args.run_id, timeout=args.wait)
    if args.json:
        _print_json(result)
    else:
        print(f"{written['responded_by']} chose {written['choice']} for {written['task_id']} in {args.dag_id} {args.run_id}")
        if "run" in result:
            run = result["run"]
            waiting = f", waiting for more responses in {', '.join(run['waiting_for'])}" if run["waiting_for"] else ""
            print(f"DAG run state: {run['state']}{waiting}")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    return _respond(args, approve=True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _respond(args, approve=False)


def cmd_rollback(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.registry import rollback

    settings = Settings.from_env()
    store = MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    record = rollback(store, name=args.model, alias=args.alias, settings=settings, force=args.force, reason=args.reason)
    data = record.to_dict() if hasattr(record, "to_dict") else dict(record.__dict__)
    if args.json:
        _print_json(data)
    else:
        print(f"{args.model}@{args.alias}: rolled back to version {data.get('to_version')} (was {data.get('from_version')})")
    return EXIT_OK


def cmd_verify_model_version(args: argparse.Namespace) -> int:
    _apply_store_options(args)
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle.registry import verify_model_version

    settings = Settings.from_env()
    store = MLflowEvidenceStore(settings.tracking_uri, settings.artifact_root)
    result = verify_model_version(store, name=args.name, version=str(args.version), settings=settings)
    if args.json:
        _print_json(result.to_dict())
    elif result.ok:
        print(f"VERIFIED: {args.name} version {args.version} has a valid evidence chain")
    else:
        print(f"NOT VERIFIED: {args.name} version {args.version}")
        for problem in result.problems:
            print(f"  - {problem}")
    return EXIT_OK if result.ok else EXIT_REJECTED


# ----------------------------------------------------------------------------- verify-artifact
def cmd_verify_artifact(args: argparse.Namespace) -> int:
    import tempfile

    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.evidence.keys import load_trusted_keys
    from airflow_mlsecops.gates.provenance import verify_artifacts
    from airflow_mlsecops.io.artifacts import fetch, read_bytes, subject_name

    keys = load_trusted_keys(args.public_key) if args.public_key else Settings.from_env().load_trusted_keys()
    if not keys:
        raise ConfigurationError("no public key given (--public-key) and none configured (MLSECOPS_TRUSTED_KEYS)")
    with tempfile.TemporaryDirectory(prefix="mlsecops-verify-artifact-") as tmp:
        attestation = read_bytes(args.attestation, Path(tmp, "attestation"))
        named = {subject_name(p): str(fetch(p, Path(tmp, str(i)))) for i, p in enumerate(args.paths)}
        outcome = verify_artifacts(named, attestation, keys)
    args.record = False
    args.attestation_out = None
    return _finish_gate(args, outcome)


# ----------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from airflow_mlsecops.demo.run import next_steps, run_demo

    if args.approve_as and args.reject_as:
        raise ConfigurationError("give --approve-as or --reject-as, not both")
    conf = {"rows": args.rows, "seed": args.seed}
    echo = None if args.json else (lambda msg: print(f"mlsecops demo: {msg}", flush=True))
    result = run_demo(
        dags_folder=Path(args.dags_folder),
        conf=conf,
        echo=echo,
        approve_as=args.approve_as,
        reject_as=args.reject_as,
        approval_timeout=args.approval_timeout,
    )
    if args.json:
        _print_json(result.to_dict())
    else:
        print()
        print(f"DAG {result.dag_id} run {result.run_id}: {result.state} in {result.seconds:.0f} s")
        for task, state in sorted(result.tasks.items()):
            verdict = result.gates.get(task) if state not in ("awaiting_input", "None", "none") else None
            shown = "not run yet" if state in ("None", "none") else state
            print(f"  {task:<22} {shown:<14} {('gate verdict: ' + verdict) if verdict else ''}")
        print(f"evidence: MLflow run {result.mlflow_run_id} in {result.tracking_uri}")
        print(f"verification: {'VERIFIED' if result.verified else 'NOT VERIFIED'}")
        for failure in result.verification_failures:
            print(f"  - {failure['scope']}: {failure['check']}: {failure['detail']}")
        if result.approval:
            a = result.approval
            print(
                f"approval: {a['decision']}"
                + (f" by {a['responded_by']} at {a['responded_at']}" if a.get("responded_by") else "")
            )
        if result.promoted:
            p = result.promoted
            print(f"promoted: {p['model']} version {p['version']} is now @{p['alias']}")
        elif result.state != "awaiting_approval":
            print("promoted: nothing")
        print()
        if result.state == "awaiting_approval":
            task = result.waiting_for[0]["task_id"] if result.waiting_for else "approve_model"
            print(f"The run is waiting for a reviewer at {task} (it keeps waiting in the background).")
            print("Approve or reject it in the Airflow UI (Browse > Required actions), or here:")
            home = f"MLSECOPS_HOME={result.home} {_command()}"
            print(f"  {home} approve --dag-id {result.dag_id} --run-id '{result.run_id}' --as alice --wait 600")
            print(f"  {home} reject  --dag-id {result.dag_id} --run-id '{result.run_id}' --as bob --wait 600")
            print("The DAG run's triggering user and the model's author may not approve (separation of duties).")
            print()
        for line in next_steps(result, _command()):
            print(f"  {line}")
    return EXIT_OK if result.ok else EXIT_REJECTED


# ----------------------------------------------------------------------------- parser
def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or the embedded SQLite store)")
    parser.add_argument("--ledger-url", help="SQLAlchemy URL of the evidence ledger (default: $MLSECOPS_LEDGER_URL)")


def _add_gate_output(parser: argparse.ArgumentParser) -> None:
    _add_store_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--record", action="store_true", help="sign the result and record it in the ledger and MLflow")
    parser.add_argument(
        "--attestation",
        dest="attestation_out",
        metavar="FILE",
        help="write the signed attestation (DSSE) to FILE: SLSA provenance for the provenance gate, else the gate result",
    )
    parser.add_argument("--experiment", default="mlsecops-cli", help="MLflow experiment for --record (default: mlsecops-cli)")
    parser.add_argument("--mlflow-run-id", help="record into this MLflow run (default: a new run)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlsecops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", "-v", action="store_true", help="show tracebacks and passing findings")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("verify", help="re-verify every piece of evidence recorded in an MLflow run")
    p.add_argument("--mlflow-run-id", required=True, help="the MLflow run holding the evidence")
    _add_store_options(p)
    p.add_argument("--trusted-key", action="append", metavar="PEM", help="trusted public key file or directory (repeatable)")
    p.add_argument("--no-subjects", action="store_true", help="do not re-hash the attested artifacts (models, data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("ledger", help="evidence ledger maintenance")
    lsub = p.add_subparsers(dest="ledger_command", required=True, metavar="SUBCOMMAND")
    lp = lsub.add_parser("verify", help="check the whole ledger's hash chain")
    lp.add_argument("--ledger-url", help="SQLAlchemy URL of the evidence ledger (default: $MLSECOPS_LEDGER_URL)")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_ledger_verify)

    p = sub.add_parser("keygen", help="create a signing key pair")
    p.add_argument("--key-type", default="ecdsa-p256", choices=["ecdsa-p256", "ecdsa-p384", "ed25519"])
    p.add_argument("--out", help="directory for the key pair (default: $MLSECOPS_HOME/keys)")
    p.add_argument("--password-env", metavar="VAR", help="encrypt the private key with the password in this environment variable")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("gate", help="run one gate outside Airflow (exit 0 passed, 1 rejected, 2 could not run)")
    gsub = p.add_subparsers(dest="gate", required=True, metavar="GATE")
    gp = gsub.add_parser("data-validation", help="validate a CSV/Parquet file against a Great Expectations suite")
    gp.add_argument("--data", required=True, help="path or s3:// URI of the data file")
    gp.add_argument("--suite", required=True, help="expectation suite file (GX JSON or YAML)")
    gp.add_argument("--delimiter", help="CSV delimiter (default ',')")
    gp.add_argument("--warn-only", action="store_true", help="report a failing suite as 'warned' (exit 0)")
    gp.add_argument(
        "--keep-unexpected-values", action="store_true", help="keep GX's sample of offending values (may be personal data)"
    )
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_data_validation)
    gp = gsub.add_parser("data-integrity", help="compare a training batch with a trusted reference (poisoning, corruption)")
    gp.add_argument("--data", required=True, help="path or s3:// URI of the new batch")
    gp.add_argument("--reference", required=True, help="path or s3:// URI of the trusted reference data")
    gp.add_argument("--label-column", help="label column (enables label shift, class set and label-flip checks)")
    gp.add_argument("--threshold", action="append", metavar="NAME=VALUE", help="override one threshold (repeatable)")
    gp.add_argument("--delimiter", help="CSV delimiter (default ',')")
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_data_integrity)
    gp = gsub.add_parser("pii", help="find personal data in columns that may not hold it")
    gp.add_argument("--data", required=True, help="path or s3:// URI of the data file")
    gp.add_argument("--allow-columns", help="comma-separated columns allowed to hold personal data")
    gp.add_argument("--types", help="comma-separated PII types to look for (default: all)")
    gp.add_argument("--max-rows", type=int, help="scan only the first N rows (reported in the evidence)")
    gp.add_argument("--delimiter", help="CSV delimiter (default ',')")
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_pii)
    gp = gsub.add_parser("model-scan", help="scan a model file or directory for code execution and unsafe formats")
    gp.add_argument("path", help="model file or directory (local, s3://, runs:/ or models:/)")
    gp.add_argument("--allow-global", action="append", metavar="MODULE.NAME", help="also allow this exact pickle global")
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_model_scan)
    gp = gsub.add_parser("robustness", help="accuracy under adversarial perturbation")
    gp.add_argument("--model", required=True, help="MLflow model directory or URI")
    gp.add_argument("--data", required=True, help="labelled evaluation data (CSV/Parquet, local or s3://)")
    gp.add_argument("--label-column", required=True)
    gp.add_argument(
        "--epsilon", type=float, required=True, help="perturbation radius (input units, or std with --epsilon-scale std)"
    )
    gp.add_argument("--epsilon-scale", choices=["input", "std"], default="input")
    gp.add_argument("--min-robust-accuracy", type=float, default=0.0, help="reject below this robust accuracy")
    gp.add_argument("--max-accuracy-drop", type=float, help="reject when clean minus robust accuracy exceeds this")
    gp.add_argument("--method", default="auto", choices=["auto", "linear-exact", "noise", "fgsm", "pgd", "hopskipjump"])
    gp.add_argument("--max-samples", type=int, default=2000)
    gp.add_argument("--allow-bounds", action="store_true", help="accept a noise bound when no exact method or attack applies")
    gp.add_argument("--warn-only", action="store_true")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_robustness)
    gp = gsub.add_parser("sbom", help="CycloneDX 1.6 ML-BOM of a model and an offline OSV vulnerability check")
    gp.add_argument("--model", required=True, help="MLflow model directory or URI")
    gp.add_argument("--python", help="interpreter of the training environment (default: the model's requirements.txt)")
    gp.add_argument("--osv-db", help="OSV database directory or zip (PyPI export) for the offline check")
    gp.add_argument("--online", action="store_true", help="also ask pip-audit's online service when reachable")
    gp.add_argument("--dataset", action="append", metavar="NAME=SHA256", help="training data set used (repeatable)")
    gp.add_argument("--fail-on", help="severities that reject (default: critical,high,unknown)")
    gp.add_argument("--no-vulnerability-check", action="store_true", help="do not fail when no check could be performed")
    gp.add_argument("--bom", metavar="FILE", help="also write the BOM to FILE")
    gp.add_argument("--warn-only", action="store_true")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_sbom)
    gp = gsub.add_parser("drift", help="data drift of a production batch against the training reference (Evidently)")
    gp.add_argument("--reference", required=True)
    gp.add_argument("--current", required=True)
    gp.add_argument("--columns", help="comma-separated columns to compare (default: all shared)")
    gp.add_argument("--drift-share", type=float, default=0.5, help="share of drifted columns that means dataset drift")
    gp.add_argument("--max-rows", type=int, default=50_000, help="sample above this many rows (0: never sample)")
    gp.add_argument("--html", metavar="FILE", help="write Evidently's HTML report to FILE")
    gp.add_argument("--warn-only", action="store_true")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_drift)
    gp = gsub.add_parser("input-anomaly", help="flag off-distribution and adversarial inputs in a production batch")
    gp.add_argument("--data", required=True)
    gp.add_argument("--detector", help="detector directory (default: the one stored inside the model)")
    gp.add_argument("--model", help="model directory or URI")
    gp.add_argument("--max-flagged-share", type=float, default=0.05)
    gp.add_argument("--warn-only", action="store_true")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_input_anomaly)
    gp = gsub.add_parser("provenance", help="hash files or directories and attest their manifest")
    gp.add_argument("paths", nargs="+", help="files or directories, s3:// objects or prefixes, runs:/ or models:/ URIs")
    gp.add_argument("--gate-name", default="dataset-provenance", help="gate name in the evidence")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_provenance)

    p = sub.add_parser("verify-artifact", help="check files byte for byte against a signed SLSA provenance attestation")
    p.add_argument("paths", nargs="+", help="files, directories, s3:// or MLflow URIs, named as they were signed")
    p.add_argument("--attestation", required=True, help="the signed provenance (DSSE JSON): path, s3:// or runs:/ URI")
    p.add_argument("--public-key", action="append", metavar="PEM", help="trusted public key file or directory (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify_artifact)

    p = sub.add_parser("sign", help="sign a model in the OpenSSF model-signing format (ECDSA)")
    p.add_argument("path", help="model file or directory")
    p.add_argument("--private-key", required=True, help="PEM private key (ECDSA P-256 or P-384)")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the key's password")
    p.add_argument("--signature", required=True, help="where to write the signature (Sigstore bundle v0.3 JSON)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify-model", help="verify an OpenSSF model signature (ours or model_signing's)")
    p.add_argument("path", help="model file or directory")
    p.add_argument("--public-key", required=True, action="append", help="trusted PEM public key (repeatable)")
    p.add_argument("--signature", required=True, help="the signature (Sigstore bundle v0.3 JSON)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_model)

    for name, func, what in (("approve", cmd_approve, "approve"), ("reject", cmd_reject, "reject")):
        p = sub.add_parser(name, help=f"{what} a model waiting for human approval (Airflow human-in-the-loop)")
        p.add_argument("--dag-id", required=True)
        p.add_argument("--run-id", required=True)
        p.add_argument("--as", dest="as_user", required=True, metavar="USER", help="the reviewer answering")
        p.add_argument("--task-id", help="the approval task, if the run has several waiting")
        p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="then wait up to SECONDS for the run to go on")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("approvals", help="list approvals waiting in a DAG")
    p.add_argument("--dag-id", required=True)
    p.add_argument("--run-id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_approvals)

    p = sub.add_parser("rollback", help="move an alias back to its previous holder, with signed evidence")
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument("--alias", default="champion")
    p.add_argument("--force", action="store_true", help="roll back even if the previous holder's evidence chain is broken")
    p.add_argument("--reason", help="why (recorded in the evidence)")
    _add_store_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("verify-model-version", help="check that a registered model version has a valid evidence chain")
    p.add_argument("name")
    p.add_argument("version")
    _add_store_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_model_version)

    from airflow_mlsecops.cli.policy import add_policy_parser

    add_policy_parser(sub)

    p = sub.add_parser("demo", help="run the example secure training pipeline end to end (embedded default)")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--dags-folder", default="dags", help="folder holding the example DAG (default: ./dags)")
    p.add_argument("--rows", type=int, default=5000, help="rows of generated training data")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    p.add_argument("--approve-as", metavar="USER", help="answer the approval as this reviewer (Approve) and run to the end")
    p.add_argument("--reject-as", metavar="USER", help="answer the approval as this reviewer (Reject)")
    p.add_argument("--approval-timeout", type=float, default=3600, help="seconds the run waits in the background for a reviewer")
    p.set_defaults(func=cmd_demo)
    return parser


def _command() -> str:
    """How to call this CLI again: ``mlsecops`` when it is on PATH, else its full path (a venv)."""
    import shutil

    found = shutil.which("mlsecops")
    local = Path(sys.executable).with_name("mlsecops")
    if found and Path(found).resolve() == local.resolve():
        return "mlsecops"
    return str(local) if local.exists() else "mlsecops"


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("airflow-mlsecops")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (VerificationError, GateRejected) as exc:
        print(f"mlsecops: {exc}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_REJECTED
    except MLSecOpsError as exc:
        print(f"mlsecops: error: {exc}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mlsecops: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - never a bare traceback for the user; never a pass
        print(f"mlsecops: internal error ({type(exc).__name__}: {exc}); rerun with --verbose for details", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
