"""Fetch artifacts named by location into local files, so every gate hashes real bytes.

Locations: a local path (``file://`` allowed), ``s3://bucket/key`` (one object) or
``s3://bucket/prefix/`` (every object under it, as a directory), and MLflow's ``runs:/`` and
``models:/`` URIs. S3 uses boto3 and honours ``MLSECOPS_S3_ENDPOINT_URL`` (then
``MLFLOW_S3_ENDPOINT_URL``, then boto3's own configuration) so MinIO and other S3-compatible
stores work. An object key that would escape the download directory is refused.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import GateError

if TYPE_CHECKING:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

MLFLOW_SCHEMES = ("runs:/", "models:/")


def s3_client() -> Any:
    import boto3

    endpoint = os.environ.get("MLSECOPS_S3_ENDPOINT_URL") or os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None
    return boto3.client("s3", endpoint_url=endpoint)


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise GateError(f"{uri} is not an s3://bucket/key URI")
    return bucket, key


def _s3_errors(uri: str, exc: Exception) -> GateError:
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return GateError(f"{uri} cannot be read from S3 ({code or exc})")
    return GateError(f"{uri} cannot be read from S3: {exc}")


def download_s3(uri: str, dst: Path) -> Path:
    """Download one object, or every object under a prefix ending in ``/``; return the local path."""
    import botocore.exceptions

    bucket, key = _split_s3(uri)
    client = s3_client()
    try:
        if key and not key.endswith("/"):
            target = dst / (posixpath.basename(key) or "object")
            dst.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
            return target
        root = dst / (posixpath.basename(key.rstrip("/")) or bucket)
        root.mkdir(parents=True, exist_ok=True)
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(key) :]
                normal = posixpath.normpath(rel)
                if not rel or rel.endswith("/"):
                    continue
                if rel.startswith("/") or normal.startswith("..") or normal != rel:
                    raise GateError(f"{uri}: object key {obj['Key']!r} would escape the artifact directory")
                target = root / normal
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
                count += 1
        if count == 0:
            raise GateError(f"{uri} holds no objects")
        return root
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError) as exc:
        raise _s3_errors(uri, exc) from exc


def subject_name(location: str) -> str:
    """The name an artifact is attested under: its URI, or the absolute path of a local file."""
    if location.startswith("file://"):
        location = location[len("file://") :]
    if "://" in location or location.startswith(MLFLOW_SCHEMES):
        return location
    return str(Path(location).absolute())


def fetch(location: str, dst: Path, store: MLflowEvidenceStore | None = None) -> Path:
    """A local path holding the bytes of ``location`` (local paths are returned as they are)."""
    if location.startswith(MLFLOW_SCHEMES):
        if store is None:
            from airflow_mlsecops.config import Settings
            from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

            settings = Settings.from_env()
            store = MLflowEvidenceStore.from_settings(settings)
        return store.download_uri(location, dst)
    if location.startswith("s3://"):
        return download_s3(location, dst)
    if location.startswith("file://"):
        location = location[len("file://") :]
    if "://" in location:
        raise GateError(f"{location}: unsupported location (use a local path, s3://, runs:/ or models:/)")
    path = Path(location)
    if not path.exists():
        raise GateError(f"{location} does not exist")
    return path


def read_bytes(location: str, dst: Path, store: MLflowEvidenceStore | None = None) -> bytes:
    """The bytes of one file at ``location`` (for attestations and reports)."""
    path = fetch(location, dst, store)
    if not path.is_file():
        raise GateError(f"{location} is not a file")
    return path.read_bytes()
