"""``mlsecops he``: encrypted scoring of a batch by a linear model (TenSEAL CKKS; the ``he`` extra).

The data owner runs ``keygen``, ``encrypt`` and ``decrypt``; the scoring side runs ``score`` with the
public context only (it refuses one holding the secret key)::

    mlsecops he keygen --secret owner.ctx --public public.ctx          # data owner; owner.ctx stays
    mlsecops he encrypt --context owner.ctx --data batch.csv --out batch.ckks
    mlsecops he score --public-context public.ctx --batch batch.ckks \\
        --model models:/credit-risk@champion --out scores.ckks            # scoring side
    mlsecops he decrypt --context owner.ctx --scores scores.ckks --batch batch.ckks --out scores.csv
    mlsecops he inspect batch.ckks                                      # the header: names, rows, key id

Exit codes: ``0`` done, ``2`` the command could not run (a missing file, a non-linear model, a
corrupt or foreign ciphertext, no TenSEAL), with one clear line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_OK, add_store_options, apply_store_options, print_json


def _read(path: str, what: str) -> bytes:
    from airflow_mlsecops.exceptions import ConfigurationError

    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"{what} {path} does not exist or is not a file")
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be read: {exc}") from exc


def _write(path: str, data: bytes, *, force: bool, private: bool = False) -> None:
    from airflow_mlsecops.exceptions import ConfigurationError

    file = Path(path)
    if file.exists() and not force:
        raise ConfigurationError(f"{path} exists; pass --force to overwrite it")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise ConfigurationError(f"{path} cannot be written: {exc}") from exc


def cmd_keygen(args: argparse.Namespace) -> int:
    from airflow_mlsecops.privacy import encrypted_scoring as he

    context = he.make_context(poly_modulus_degree=args.poly_modulus_degree, global_scale_bits=args.scale_bits)
    _write(args.secret, he.secret_context(context), force=args.force, private=True)
    _write(args.public, he.public_context(context), force=args.force)
    print_json(
        {
            "secret": args.secret,
            "public": args.public,
            "key_sha256": he.context_digest(context),
            **he.context_parameters(context).to_dict(),
        }
    )
    return EXIT_OK


def cmd_encrypt(args: argparse.Namespace) -> int:
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.io.locations import load_table_at
    from airflow_mlsecops.privacy import encrypted_scoring as he

    context = he.load_context(_read(args.context, "context"))
    table = load_table_at(args.data, csv_delimiter=args.csv_delimiter)
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    if features is None:
        features = [str(c) for c in table.frame.select_dtypes("number").columns]
        if not features:
            raise ConfigurationError(f"{args.data} has no numeric column; name the features with --features")
    encrypted = he.encrypt_batch(context, table.frame, features)
    _write(args.out, encrypted, force=args.force)
    header = he.read_header(encrypted)
    print_json(
        {
            "out": args.out,
            "rows": header["rows"],
            "features": header["features"],
            "bytes": len(encrypted),
            "sha256": _sha(encrypted),
        }
    )
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    import tempfile

    from airflow_mlsecops.io.locations import fetch_artifact
    from airflow_mlsecops.io.model_loader import load_model, quiet_warnings
    from airflow_mlsecops.privacy import encrypted_scoring as he

    apply_store_options(args)
    public = _read(args.public_context, "public context")
    batch = _read(args.batch, "encrypted batch")
    with tempfile.TemporaryDirectory(prefix="mlsecops-he-") as tmp:
        artifact = fetch_artifact(args.model, Path(tmp))
        with quiet_warnings():
            model = load_model(artifact.path, trust_pickle=args.trust_pickle).estimator
    scored, details = he.score_with_details(public, batch, model)
    _write(args.out, scored, force=args.force)
    print_json({"out": args.out, "model": artifact.ref.to_dict(), **details})
    return EXIT_OK


def cmd_decrypt(args: argparse.Namespace) -> int:
    import pandas as pd

    from airflow_mlsecops.privacy import encrypted_scoring as he

    context = he.load_context(_read(args.context, "context"))
    scored = _read(args.scores, "encrypted scores")
    batch = _read(args.batch, "encrypted batch") if args.batch else None
    values = he.decrypt_scores(context, scored, batch=batch)
    frame = (
        pd.DataFrame(values.reshape(len(values), -1)).rename(columns=lambda k: f"score_{k}")
        if values.ndim == 2
        else pd.DataFrame({"score": values})
    )
    if args.probabilities and he.read_header(scored).get("link") == "logit":
        proba = he.probabilities(values)
        if proba.ndim == 1:
            frame["probability"] = proba
        else:
            for k in range(proba.shape[1]):
                frame[f"probability_{k}"] = proba[:, k]
    text = frame.to_csv(index=False)
    if args.out == "-":
        print(text, end="")
    else:
        _write(args.out, text.encode(), force=args.force, private=True)
        print_json({"out": args.out, "rows": len(frame), "columns": list(frame.columns)})
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from airflow_mlsecops.privacy import encrypted_scoring as he

    data = _read(args.file, "file")
    header = he.read_header(data)
    header["ciphertexts"] = len(header.pop("blobs"))
    print_json({**header, "bytes": len(data), "sha256": _sha(data)})
    return EXIT_OK


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def add_parsers(sub: Any) -> None:
    """Add ``he keygen|encrypt|score|decrypt|inspect``."""
    p = sub.add_parser(
        "he",
        help="encrypted scoring with a linear model (TenSEAL CKKS; pip install 'airflow-mlsecops[he]')",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hsub = p.add_subparsers(dest="he_command", required=True, metavar="HE_COMMAND")

    q = hsub.add_parser("keygen", help="data owner: a CKKS key (secret context) and its public context")
    q.add_argument("--secret", required=True, help="where to write the secret context (mode 0600; never share it)")
    q.add_argument("--public", required=True, help="where to write the public context (for the scoring side)")
    q.add_argument(
        "--poly-modulus-degree", type=int, default=8192, help="ring dimension (default 8192: 4,096 rows per ciphertext)"
    )
    q.add_argument("--scale-bits", type=int, default=40, help="log2 of the encoding scale (default 40)")
    q.add_argument("--force", action="store_true", help="overwrite existing files")
    q.set_defaults(func=cmd_keygen)

    q = hsub.add_parser("encrypt", help="data owner: encrypt a CSV or Parquet batch's feature columns")
    q.add_argument("--context", required=True, help="the secret (or public) context file")
    q.add_argument("--data", required=True, help="the batch: local path or s3:// object (CSV or Parquet)")
    q.add_argument("--features", help="comma-separated feature columns in the model's names (default: every numeric column)")
    q.add_argument("--out", required=True, help="where to write the encrypted batch")
    q.add_argument("--csv-delimiter", help="delimiter of a CSV file (default ,)")
    q.add_argument("--force", action="store_true", help="overwrite an existing file")
    q.set_defaults(func=cmd_encrypt)

    q = hsub.add_parser("score", help="scoring side: score an encrypted batch with a linear model, never decrypting")
    q.add_argument("--public-context", required=True, help="the data owner's public context (one with a secret key is refused)")
    q.add_argument("--batch", required=True, help="the encrypted batch")
    q.add_argument("--model", required=True, help="MLflow model directory, .skops file, s3:// prefix, runs:/ or models:/ URI")
    q.add_argument("--out", required=True, help="where to write the encrypted scores")
    q.add_argument("--trust-pickle", action="store_true", help="load a pickle-based model (runs code from the file)")
    q.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_store_options(q)
    q.set_defaults(func=cmd_score)

    q = hsub.add_parser("decrypt", help="data owner: decrypt scores to CSV")
    q.add_argument("--context", required=True, help="the secret context file")
    q.add_argument("--scores", required=True, help="the encrypted scores")
    q.add_argument("--batch", help="the encrypted batch sent for scoring: scores of any other input are refused")
    q.add_argument("--out", default="-", help="CSV file to write (default: standard output)")
    q.add_argument("--probabilities", action="store_true", help="add the logistic model's probabilities (sigmoid/softmax)")
    q.add_argument("--force", action="store_true", help="overwrite an existing file")
    q.set_defaults(func=cmd_decrypt)

    q = hsub.add_parser("inspect", help="print the header of an encrypted batch or score file (no values)")
    q.add_argument("file", help="the file")
    q.set_defaults(func=cmd_inspect)
