"""``mlsecops gate GATE``: run one gate outside Airflow, print its verdict, optionally sign and record it."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_ERROR, EXIT_OK, EXIT_REJECTED, add_store_options, apply_store_options, print_json
from airflow_mlsecops.exceptions import ConfigurationError


def finish_gate(args: argparse.Namespace, outcome: Any) -> int:
    from airflow_mlsecops.evidence.models import Verdict

    if getattr(args, "attestation_out", None) or args.record:
        # Statistics about data the policy marks sensitive are released through OpenDP (or withheld)
        # before anything is signed; the verdict stays exact.
        from airflow_mlsecops.config import Settings
        from airflow_mlsecops.policy.model import load_configured_policy
        from airflow_mlsecops.privacy.dp_evidence import policy_entries, protect

        policy = load_configured_policy()
        if policy is not None and policy_entries(policy):
            outcome = protect(outcome, policy_entries(policy), Settings.from_env().ledger_url)
    result = outcome.result
    payload: dict[str, Any] = {
        "gate": result.gate,
        "verdict": result.verdict.value,
        "warned_reason": result.warned_reason,
        "not_performed": list(result.not_performed),
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
        print_json(payload)
    else:
        # An incomplete result exits 0 but never reads as passed: WARNED (incomplete), and what was not checked.
        reason = f" ({result.warned_reason})" if result.warned_reason else ""
        print(f"{result.gate}: {result.verdict.value.upper()}{reason} - {result.summary}")
        if result.not_performed:
            print(f"  not performed: {', '.join(result.not_performed)}")
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


def _add_column_roles(parser: argparse.ArgumentParser, *, label: bool = True, features: bool = True) -> None:
    """``--id-column`` (repeatable), ``--label-column``, ``--prediction-column``, ``--timestamp-column``, ``--features``."""
    parser.add_argument(
        "--id-column",
        action="append",
        dest="id_columns",
        metavar="COLUMN",
        help="identifier column: never compared as a feature (repeatable; id-like columns are also recognised)",
    )
    if label:
        parser.add_argument("--label-column", help="label (target) column; may be absent from a production batch")
    parser.add_argument("--prediction-column", help="the model's output column, never compared as a feature")
    parser.add_argument("--timestamp-column", help="the time of each row, never compared as a feature")
    if features:
        parser.add_argument("--features", help="comma-separated feature columns (default: every column without another role)")


def _role_options(args: argparse.Namespace) -> dict[str, Any]:
    """The column roles given on the command line, as the gates' keyword arguments (only those given)."""
    given = {
        "id_columns": [c for item in args.id_columns or [] for c in _split_list(item) or []] or None,
        "prediction_column": args.prediction_column,
        "timestamp_column": args.timestamp_column,
        "features": _split_list(getattr(args, "features", None)),
    }
    return {key: value for key, value in given.items() if value is not None}


def _add_gate_output(parser: argparse.ArgumentParser) -> None:
    add_store_options(parser)
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


def cmd_gate_data_validation(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.gates.data_validation import inputs_unavailable, load_suite_spec, validate_data
    from airflow_mlsecops.io.locations import load_table_at

    load_suite_spec(args.suite)  # a bad suite is a usage error (exit 2) before any data is read
    options: dict[str, Any] = {
        "warn_only": args.warn_only,
        "include_unexpected_values": args.keep_unexpected_values,
        "allow_empty": args.allow_empty,
        "label_column": args.label_column,
        **_role_options(args),
        "engine": args.engine,
    }
    if args.engine == "spark":  # Spark reads the file, directory of parts or s3:// prefix itself
        outcome = validate_data(args.data, args.suite, csv_delimiter=args.delimiter, spark_master=args.spark_master, **options)
        return finish_gate(args, outcome)
    try:
        table = load_table_at(args.data, csv_delimiter=args.delimiter)
    except Exception as exc:  # noqa: BLE001 - data that cannot be read is an error verdict, never a pass
        return finish_gate(args, inputs_unavailable(exc, suite=args.suite, **options))
    return finish_gate(args, validate_data(table, args.suite, csv_delimiter=args.delimiter, **options))


def cmd_gate_data_integrity(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.gates.data_integrity import IntegrityThresholds, check_integrity, inputs_unavailable
    from airflow_mlsecops.io.locations import load_table_at

    thresholds = IntegrityThresholds.from_mapping(_parse_assignments(args.threshold or [], "--threshold"))
    options: dict[str, Any] = {
        "label_column": args.label_column,
        "thresholds": thresholds,
        "warn_only": args.warn_only,
        "allow_empty": args.allow_empty,
        "batch_rows": args.batch_rows,
        "sample_rows": args.sample_rows,
        **_role_options(args),
    }
    from airflow_mlsecops.io.batches import should_stream

    locations = (args.data, args.reference)
    if not any(x.startswith(("runs:/", "models:/")) for x in locations) and (
        args.batch_rows is not None or any(should_stream(x, None) for x in locations)
    ):
        # read in frames by the engine itself: a file, a directory of parts or an s3:// prefix, hashed as read
        return finish_gate(args, check_integrity(args.data, args.reference, csv_delimiter=args.delimiter, **options))
    try:
        data = load_table_at(args.data, csv_delimiter=args.delimiter)
        reference = load_table_at(args.reference, csv_delimiter=args.delimiter)
    except Exception as exc:  # noqa: BLE001 - data that cannot be read is an error verdict, never a pass
        return finish_gate(args, inputs_unavailable(exc, reference=args.reference, **options))
    return finish_gate(args, check_integrity(data, reference, csv_delimiter=args.delimiter, **options))


def cmd_gate_pii(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.gates.pii import PII_TYPES, inputs_unavailable, scan_pii
    from airflow_mlsecops.io.locations import load_table_at

    types = _split_list(args.types)
    unknown = sorted(set(types or ()) - set(PII_TYPES))
    if unknown:
        raise ConfigurationError(f"unknown PII type(s) {', '.join(unknown)}; known: {', '.join(PII_TYPES)}")
    options: dict[str, Any] = {
        "allow_columns": _split_list(args.allow_columns) or (),
        "types": types,
        "max_rows": args.max_rows,
        "warn_only": args.warn_only,
        "allow_empty": args.allow_empty,
        "batch_rows": args.batch_rows,
        "engine": args.engine,
        **_role_options(args),
        **({"label_column": args.label_column} if args.label_column else {}),
    }
    from airflow_mlsecops.io.batches import should_stream
    from airflow_mlsecops.io.locations import is_remote

    local_or_s3 = not is_remote(args.data) or args.data.startswith("s3://")
    if args.engine == "spark" or (local_or_s3 and should_stream(args.data, args.batch_rows)):
        # the gate reads the data itself: in batches (each part hashed as read) or on Spark
        return finish_gate(
            args,
            scan_pii(
                args.data, csv_delimiter=args.delimiter, sample_seed=args.sample_seed, spark_master=args.spark_master, **options
            ),
        )
    try:
        table = load_table_at(args.data, csv_delimiter=args.delimiter)
    except Exception as exc:  # noqa: BLE001 - data that cannot be read is an error verdict, never a pass
        return finish_gate(args, inputs_unavailable(exc, **options))
    return finish_gate(args, scan_pii(table, csv_delimiter=args.delimiter, sample_seed=args.sample_seed, **options))


def cmd_gate_provenance(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.provenance import attest_artifacts
    from airflow_mlsecops.io.artifacts import fetch, subject_name

    with tempfile.TemporaryDirectory(prefix="mlsecops-provenance-") as tmp:
        named = {subject_name(p): str(fetch(p, Path(tmp, str(i)))) for i, p in enumerate(args.paths)}
        return finish_gate(args, attest_artifacts(named, gate=args.gate_name))


def cmd_gate_model_scan(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.model_scan import scan_model
    from airflow_mlsecops.io.artifacts import fetch, subject_name

    with tempfile.TemporaryDirectory(prefix="mlsecops-model-scan-") as tmp:
        local = fetch(args.path, Path(tmp, "model"))
        outcome = scan_model(
            str(local),
            warn_only=args.warn_only,
            allow_globals=args.allow_global or (),
            subject=subject_name(args.path),
            allow_model_code=args.allow_model_code,
        )
        return finish_gate(args, outcome)


def cmd_gate_robustness(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.robustness import evaluate_robustness, inputs_unavailable, robustness_policy
    from airflow_mlsecops.io.artifacts import fetch, subject_name
    from airflow_mlsecops.io.locations import load_table_at

    options: dict[str, Any] = {
        "label_column": args.label_column,
        "epsilon": args.epsilon,
        "min_robust_accuracy": args.min_robust_accuracy,
        "max_accuracy_drop": args.max_accuracy_drop,
        "method": args.method,
        "max_samples": args.max_samples,
        "epsilon_scale": args.epsilon_scale,
        "allow_bounds": args.allow_bounds,
    }
    with tempfile.TemporaryDirectory(prefix="mlsecops-robustness-") as tmp:
        try:
            local = fetch(args.model, Path(tmp, "model"))
            data = load_table_at(args.data)
        except Exception as exc:  # noqa: BLE001 - inputs that cannot be fetched are an error verdict, never a pass
            return finish_gate(args, inputs_unavailable(exc, policy=robustness_policy(**options), warn_only=args.warn_only))
        outcome = evaluate_robustness(
            str(local), data, **options, warn_only=args.warn_only, model_subject=subject_name(args.model)
        )
        return finish_gate(args, outcome)


def cmd_gate_sbom(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.sbom import BOM_FILE, DEFAULT_FAIL_ON, DatasetRef, build_and_check_sbom, inputs_unavailable
    from airflow_mlsecops.io.artifacts import fetch, subject_name

    options: dict[str, Any] = {
        "fail_on": args.fail_on or DEFAULT_FAIL_ON,
        "require_vulnerability_check": not args.no_vulnerability_check,
        "osv_db": args.osv_db,
        "online": args.online,
        "python": args.python,
        "warn_only": args.warn_only,
    }
    datasets = [DatasetRef.parse(d) for d in args.dataset or []]  # a bad --dataset is a usage error (exit 2)
    with tempfile.TemporaryDirectory(prefix="mlsecops-sbom-") as tmp:
        try:
            local = fetch(args.model, Path(tmp, "model"))
        except Exception as exc:  # noqa: BLE001 - a model that cannot be fetched is an error verdict, never a pass
            return finish_gate(args, inputs_unavailable(exc, **options))
        outcome = build_and_check_sbom(str(local), subject=subject_name(args.model), datasets=datasets, **options)
    if args.bom and BOM_FILE in outcome.files:
        Path(args.bom).write_bytes(outcome.files[BOM_FILE])
    return finish_gate(args, outcome)


def cmd_gate_environment(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.environment import BOM_FILE, check_training_environment, inputs_unavailable
    from airflow_mlsecops.gates.sbom import DEFAULT_FAIL_ON
    from airflow_mlsecops.io.artifacts import fetch, subject_name

    options: dict[str, Any] = {
        "site_packages": args.site_packages,
        "freeze": args.freeze,
        "osv_db": args.osv_db,
        "fail_on": args.fail_on or DEFAULT_FAIL_ON,
        "require_vulnerability_check": not args.no_vulnerability_check,
        "fail_on_mismatch": not args.allow_mismatch,
        "fail_on_undeclared": not args.allow_undeclared,
    }
    with tempfile.TemporaryDirectory(prefix="mlsecops-environment-") as tmp:
        try:
            local = fetch(args.model, Path(tmp, "model"))
        except Exception as exc:  # noqa: BLE001 - a model that cannot be fetched is an error verdict, never a pass
            return finish_gate(args, inputs_unavailable(exc, warn_only=args.warn_only, **options))
        outcome = check_training_environment(str(local), subject=subject_name(args.model), warn_only=args.warn_only, **options)
    if args.bom and BOM_FILE in outcome.files:
        Path(args.bom).write_bytes(outcome.files[BOM_FILE])
    return finish_gate(args, outcome)


def cmd_gate_drift(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.gates.drift import detect_drift, inputs_unavailable
    from airflow_mlsecops.io.locations import load_table_at

    options: dict[str, Any] = {
        "columns": _split_list(args.columns),
        "drift_share": args.drift_share,
        "max_missing_change": args.max_missing_change,
        "fail_on_severe_column": args.fail_on_severe_column,
        "random_state": args.random_state,
        "max_rows": None if args.max_rows == 0 else args.max_rows,
        "warn_only": args.warn_only,
        "allow_empty": args.allow_empty,
        **_role_options(args),
    }
    if args.label_column is not None:
        options["label_column"] = args.label_column
    if args.batch_rows is not None:
        options["batch_rows"] = args.batch_rows

    def table(location: str) -> Any:
        """A local path or s3:// location the engine streams itself, else the table loaded (named by its URI)."""
        from airflow_mlsecops.io.batches import should_stream
        from airflow_mlsecops.io.locations import is_remote

        streamable = not is_remote(location) or location.startswith("s3://")
        if streamable and options["max_rows"] is not None and should_stream(location, args.batch_rows):
            return location
        return load_table_at(location)

    try:
        reference, current = table(args.reference), table(args.current)
    except Exception as exc:  # noqa: BLE001 - data that cannot be read is an error verdict, never a pass
        outcome = inputs_unavailable(exc, **options)
    else:
        outcome = detect_drift(reference, current, html=bool(args.html) or args.record, **options)
    if args.html:
        report = next((data for name, data in outcome.files.items() if name.endswith(".html")), None)
        if report is not None:
            Path(args.html).write_bytes(report)
    return finish_gate(args, outcome)


def cmd_gate_input_anomaly(args: argparse.Namespace) -> int:
    apply_store_options(args)
    import tempfile

    from airflow_mlsecops.gates.input_detection import inputs_unavailable, score_batch
    from airflow_mlsecops.io.locations import fetch_artifact, load_table_at

    roles = {**_role_options(args), **({"label_column": args.label_column} if args.label_column else {})}
    with tempfile.TemporaryDirectory(prefix="mlsecops-input-anomaly-") as tmp:
        try:
            table = load_table_at(args.data)
            model = fetch_artifact(args.model, Path(tmp, "model")) if args.model else None
            detector = fetch_artifact(args.detector, Path(tmp, "detector")) if args.detector else None
        except Exception as exc:  # noqa: BLE001 - inputs that cannot be fetched are an error verdict, never a pass
            outcome = inputs_unavailable(
                exc,
                detector_dir=args.detector,
                model_uri=args.model,
                max_flagged_share=args.max_flagged_share,
                max_repeated_share=args.max_repeated_share,
                near_duplicate_radius=args.near_duplicate_radius,
                warn_only=args.warn_only,
                allow_empty=args.allow_empty,
                **roles,
            )
        else:
            outcome = score_batch(
                table,
                detector,
                model_uri=model,
                max_flagged_share=args.max_flagged_share,
                max_repeated_share=args.max_repeated_share,
                near_duplicate_radius=args.near_duplicate_radius,
                warn_only=args.warn_only,
                allow_empty=args.allow_empty,
                **roles,
            )
        return finish_gate(args, outcome)


def cmd_gate_code_scan(args: argparse.Namespace) -> int:
    apply_store_options(args)
    from airflow_mlsecops.gates.code_scan import levels_from, scan_code

    outcome = scan_code(
        args.paths,
        fail_on_severity=levels_from(args.severity),
        fail_on_confidence=levels_from(args.confidence),
        scan_secrets=not args.no_secrets,
        max_suppressions=args.max_suppressions,
        warn_only=args.warn_only,
    )
    return finish_gate(args, outcome)


def _add_batch_rows(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--batch-rows",
        type=int,
        metavar="N",
        help=f"read {what} in batches of N rows (memory bound by N, not the data). A directory of part files, an s3:// "
        "prefix ending in / and a file of 256 MiB or more are read in batches anyway",
    )


def _add_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine", choices=("pandas", "spark"), default="pandas", help="run on pandas (default) or as a Spark job"
    )
    parser.add_argument(
        "--spark-master",
        help="Spark master URL for --engine spark (default: [mlsecops] spark_master, MLSECOPS_SPARK_MASTER, else local[2])",
    )


def _add_allow_empty(parser: argparse.ArgumentParser, what: str = "a batch") -> None:
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help=f"accept {what} with no rows (WARNED, incomplete, exit 0); without it an empty batch exits 2",
    )


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def add_gate_parsers(sub: Any) -> None:
    """Add ``gate <name>`` for every gate."""
    p = sub.add_parser("gate", help="run one gate outside Airflow (exit 0 passed, 1 rejected, 2 could not run)")
    gsub = p.add_subparsers(dest="gate", required=True, metavar="GATE")
    gp = gsub.add_parser("data-validation", help="validate a CSV/Parquet file against a Great Expectations suite")
    gp.add_argument(
        "--data", required=True, help="path or s3:// URI of the data file (--engine spark: also a directory of part files)"
    )
    gp.add_argument("--suite", required=True, help="expectation suite file (GX JSON or YAML)")
    gp.add_argument("--delimiter", help="CSV delimiter (default ',')")
    gp.add_argument("--warn-only", action="store_true", help="report a failing suite as 'warned' (exit 0)")
    gp.add_argument(
        "--keep-unexpected-values", action="store_true", help="keep GX's sample of offending values (may be personal data)"
    )
    _add_column_roles(gp)
    _add_engine(gp)
    _add_allow_empty(gp)
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_data_validation)
    gp = gsub.add_parser("data-integrity", help="compare a training batch with a trusted reference (poisoning, corruption)")
    gp.add_argument("--data", required=True, help="path or s3:// URI of the new batch")
    gp.add_argument("--reference", required=True, help="path or s3:// URI of the trusted reference data")
    gp.add_argument(
        "--label-column",
        help="label column (enables label shift, class set and label-flip checks; absent from the batch: not performed)",
    )
    _add_column_roles(gp, label=False)
    gp.add_argument("--threshold", action="append", metavar="NAME=VALUE", help="override one threshold (repeatable)")
    gp.add_argument("--delimiter", help="CSV delimiter (default ',')")
    _add_batch_rows(gp, "the batch and the reference (one pass each; --data may be a directory of parts or an s3:// prefix)")
    gp.add_argument(
        "--sample-rows",
        type=int,
        help="rows of the uniform sample the streamed path keeps per side for feature shift and label flips (default 100000)",
    )
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_allow_empty(gp, "a batch (never the reference)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_data_integrity)
    gp = gsub.add_parser("pii", help="find personal data in columns that may not hold it")
    gp.add_argument("--data", required=True, help="path or s3:// URI of the data file")
    gp.add_argument("--allow-columns", help="comma-separated columns allowed to hold personal data")
    gp.add_argument("--types", help="comma-separated PII types to look for (default: all)")
    gp.add_argument(
        "--max-rows", type=int, help="scan a random sample of N rows (a fresh seed per run, recorded in the evidence)"
    )
    gp.add_argument("--sample-seed", type=_non_negative_int, help="re-draw the sample a report recorded (its sampling seed)")
    gp.add_argument("--delimiter", help="CSV delimiter (default ',')")
    _add_batch_rows(gp, "the data (same findings as in memory)")
    _add_engine(gp)
    _add_column_roles(gp)
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_allow_empty(gp, "a file")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_pii)
    gp = gsub.add_parser("model-scan", help="scan a model file or directory for code execution and unsafe formats")
    gp.add_argument("path", help="model file or directory (local, s3://, runs:/ or models:/)")
    gp.add_argument("--allow-global", action="append", metavar="MODULE.NAME", help="also allow this exact pickle global")
    gp.add_argument(
        "--allow-model-code",
        action="store_true",
        help="accept an MLflow model whose loading runs code shipped with it (recorded; critical finding otherwise)",
    )
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
    gp = gsub.add_parser(
        "environment", help="the packages installed where the model was trained: CycloneDX BOM, OSV, declared vs installed"
    )
    gp.add_argument("--model", required=True, help="MLflow model directory or URI")
    where = gp.add_mutually_exclusive_group()
    where.add_argument(
        "--site-packages", metavar="DIR", help="site-packages of the training environment (default: this Python's)"
    )
    where.add_argument("--freeze", metavar="FILE", help="pip freeze output of the training environment")
    gp.add_argument("--osv-db", help="OSV database directory or zip (PyPI export) for the offline check")
    gp.add_argument("--fail-on", help="severities that reject (default: critical,high,unknown)")
    gp.add_argument("--no-vulnerability-check", action="store_true", help="no OSV database is not a rejection (warned)")
    gp.add_argument("--allow-mismatch", action="store_true", help="report declared/installed differences without rejecting")
    gp.add_argument("--allow-undeclared", action="store_true", help="report undeclared packages without rejecting")
    gp.add_argument("--bom", metavar="FILE", help="also write the environment BOM to FILE")
    gp.add_argument("--warn-only", action="store_true")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_environment)
    gp = gsub.add_parser("drift", help="data drift of a production batch against the training reference (Evidently)")
    gp.add_argument("--reference", required=True)
    gp.add_argument("--current", required=True)
    gp.add_argument(
        "--columns", help="comma-separated columns that must be compared (default: every feature column, see --features)"
    )
    _add_column_roles(gp)
    gp.add_argument(
        "--drift-share", type=float, default=0.25, help="share of drifted columns that means dataset drift (default 0.25)"
    )
    gp.add_argument(
        "--max-missing-change",
        type=float,
        default=0.05,
        help="change in a column's share of missing values that counts as drift (default 0.05)",
    )
    gp.add_argument(
        "--no-fail-on-severe-column",
        dest="fail_on_severe_column",
        action="store_false",
        help="do not let one severely drifted column fail the batch on its own",
    )
    gp.add_argument(
        "--max-rows", type=int, default=50_000, help="sample above this many rows, with a fresh seed per run (0: never sample)"
    )
    gp.add_argument(
        "--random-state", type=_non_negative_int, help="the sampling seed a report recorded, to reproduce its comparison"
    )
    _add_batch_rows(gp, "both sides and compare a reservoir sample of --max-rows rows per side")
    gp.add_argument("--html", metavar="FILE", help="write Evidently's HTML report to FILE")
    gp.add_argument("--warn-only", action="store_true")
    _add_allow_empty(gp, "a current batch (never the reference)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_drift)
    gp = gsub.add_parser("input-anomaly", help="flag off-distribution and adversarial inputs in a production batch")
    gp.add_argument("--data", required=True)
    gp.add_argument("--detector", help="detector directory (default: the one stored inside the model)")
    gp.add_argument("--model", help="model directory or URI")
    gp.add_argument("--max-flagged-share", type=float, default=0.05)
    _add_column_roles(gp, features=False)
    gp.add_argument(
        "--max-repeated-share",
        type=float,
        default=0.05,
        help="share of repeated or near-duplicate inputs (a sign of probing) that fails the batch (default 0.05)",
    )
    gp.add_argument(
        "--near-duplicate-radius",
        type=float,
        default=0.05,
        help="two inputs closer than this many training standard deviations count as repeats (default 0.05)",
    )
    gp.add_argument("--warn-only", action="store_true")
    _add_allow_empty(gp)
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_input_anomaly)
    gp = gsub.add_parser("provenance", help="hash files or directories and attest their manifest")
    gp.add_argument("paths", nargs="+", help="files or directories, s3:// objects or prefixes, runs:/ or models:/ URIs")
    gp.add_argument("--gate-name", default="dataset-provenance", help="gate name in the evidence")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_provenance)
    gp = gsub.add_parser("code-scan", help="bandit and a secret scan of pipeline code and configuration")
    gp.add_argument("paths", nargs="+", metavar="PATH", help="Python files, configuration files or directories (local)")
    gp.add_argument("--severity", choices=["low", "medium", "high"], default="medium", help="lowest rejecting severity")
    gp.add_argument("--confidence", choices=["low", "medium", "high"], default="medium", help="lowest rejecting confidence")
    gp.add_argument("--no-secrets", action="store_true", help="skip the secret scan (recorded in the evidence)")
    gp.add_argument("--max-suppressions", type=_non_negative_int, help="most accepted '# nosec' comments (default: no limit)")
    gp.add_argument("--warn-only", action="store_true", help="report a rejection as 'warned' (exit 0)")
    _add_gate_output(gp)
    gp.set_defaults(func=cmd_gate_code_scan)
    from airflow_mlsecops.cli.gate_privacy import add_privacy_gate_parsers  # it imports this module

    add_privacy_gate_parsers(gsub)
