"""Where signed ledger checkpoints are kept: a local directory or ``s3://bucket/prefix``.

Both stores never overwrite a checkpoint. A directory gets each file by an atomic hard link of a
fully written, read-only temporary file; S3 gets ``If-None-Match: *`` and, when the bucket has
Object Lock, a retention (COMPLIANCE mode: nobody, the root account included, can delete the
object version or shorten its retention until it expires).

:func:`open_checkpoint_store` returns the store and, when the URI names one checkpoint rather than a
folder or prefix, that checkpoint's name. boto3 is imported only when an S3 store is used.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from airflow_mlsecops.exceptions import ConfigurationError, StoreUnavailable

#: COMPLIANCE retention of a checkpoint in an Object Lock bucket that has no default retention.
DEFAULT_RETENTION_DAYS = 365
_NAME = re.compile(r"^checkpoint-(\d{12})-(\d{8}T\d{6}\.\d{6}Z)\.dsse\.json$")


def is_checkpoint_name(name: str) -> bool:
    """Whether ``name`` (a file or object name, without its folder) is a checkpoint's:
    ``checkpoint-<size, 12 digits>-<UTC time>.dsse.json``, which sorts by size, then time."""
    return _NAME.match(name) is not None


@dataclass(frozen=True)
class StoredCheckpoint:
    """Where a checkpoint was written and whether the store locked it.

    :param location: its path or ``s3://`` URI (with ``?versionId=`` on a versioned bucket).
    :param locked: an Object Lock retention protects it now.
    :param retention: e.g. ``COMPLIANCE until 2027-12-04T01:00:00Z (bucket default)``; "" if none.
    """

    location: str
    locked: bool
    retention: str = ""


class CheckpointStore(Protocol):
    """A folder of checkpoints."""

    @property
    def location(self) -> str: ...

    def location_of(self, name: str) -> str: ...

    def names(self) -> list[str]:
        """Checkpoint names, newest first (files not named like a checkpoint are left out).

        :raises ConfigurationError: the folder does not exist.
        :raises StoreUnavailable: it cannot be listed.
        """
        ...

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes, *, retention_days: int | None = None) -> StoredCheckpoint:
        """Write a new checkpoint; never overwrite one.

        :raises ConfigurationError: ``retention_days`` where nothing can be locked.
        :raises StoreUnavailable: the store refused or could not be reached.
        """
        ...


class LocalCheckpointStore:
    """Checkpoints in a directory (ideally on another machine or volume than the ledger)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def location(self) -> str:
        return str(self.directory)

    def location_of(self, name: str) -> str:
        return str(self.directory / name)

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            raise ConfigurationError(f"the ledger checkpoint directory {self.directory} does not exist")
        try:
            return sorted((p.name for p in self.directory.iterdir() if is_checkpoint_name(p.name)), reverse=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot list {self.directory}: {exc.strerror}") from exc

    def read(self, name: str) -> bytes:
        path = self.directory / name
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ConfigurationError(f"no ledger checkpoint at {path}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {path}: {exc.strerror}") from exc

    def write(self, name: str, data: bytes, *, retention_days: int | None = None) -> StoredCheckpoint:
        if retention_days is not None:
            raise ConfigurationError(
                f"{self.directory} is a directory: a retention needs an S3 bucket with Object Lock (s3://bucket/prefix)"
            )
        final = self.directory / name
        tmp = self.directory / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.chmod(0o444)
            try:
                os.link(tmp, final)  # atomic, and fails if the name exists: never an overwrite
            except FileExistsError as exc:
                raise StoreUnavailable(f"{final} exists already; a checkpoint is never overwritten") from exc
            directory_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory_fd)
            finally:
                os.close(directory_fd)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {final}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return StoredCheckpoint(location=str(final), locked=False)


class S3CheckpointStore:
    """Checkpoints under ``s3://bucket/prefix`` (the endpoint: ``MLSECOPS_S3_ENDPOINT_URL``, else
    boto3's own configuration)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from airflow_mlsecops.io.artifacts import s3_client

            self._client = s3_client()
        return self._client

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def location_of(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def _error(self, action: str, exc: Exception) -> StoreUnavailable:
        import botocore.exceptions

        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            return StoreUnavailable(f"{action} {self.location}: {error.get('Code', '')} {error.get('Message', '')}".rstrip())
        return StoreUnavailable(f"{action} {self.location}: {type(exc).__name__}: {exc}")

    def names(self) -> list[str]:
        """Every checkpoint with a stored version, including one a delete marker hides: on a
        versioned (Object Lock) bucket, ``DeleteObject`` without a version id only hides the newest
        checkpoint from a plain listing, which would let the one before it pass for the newest."""
        import botocore.exceptions

        folder = f"{self.prefix}/" if self.prefix else ""
        found: set[str] = set()
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=folder):
                for item in page.get("Versions", []):
                    name = item["Key"][len(folder) :]
                    if is_checkpoint_name(name):
                        found.add(name)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error("cannot list", exc) from exc
        return sorted(found, reverse=True)

    def read(self, name: str) -> bytes:
        """The newest stored version of ``name`` (read by version id, so a delete marker does not hide it)."""
        import botocore.exceptions

        key = self._key(name)
        try:
            versions = [
                item
                for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
                for item in page.get("Versions", [])
                if item["Key"] == key
            ]
            if not versions:
                raise ConfigurationError(f"no ledger checkpoint at {self.location_of(name)}")
            newest = max(versions, key=lambda item: (bool(item.get("IsLatest")), item["LastModified"]))
            extra = {"VersionId": newest["VersionId"]} if newest.get("VersionId") not in (None, "null") else {}
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error("cannot read", exc) from exc
        return body

    def lock_configuration(self) -> dict[str, Any] | None:
        """The bucket's Object Lock configuration when Object Lock is enabled, else None."""
        import botocore.exceptions

        try:
            answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ObjectLockConfigurationNotFoundError":
                return None
            raise self._error("cannot read the Object Lock configuration of", exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error("cannot read the Object Lock configuration of", exc) from exc
        config: dict[str, Any] = answer.get("ObjectLockConfiguration") or {}
        return config if config.get("ObjectLockEnabled") == "Enabled" else None

    def write(self, name: str, data: bytes, *, retention_days: int | None = None) -> StoredCheckpoint:
        import botocore.exceptions

        if retention_days is not None and retention_days < 1:
            raise ConfigurationError(f"retention days must be at least 1, not {retention_days}")
        lock = self.lock_configuration()
        now = datetime.now(timezone.utc)
        extra: dict[str, Any] = {}
        source = ""
        if lock is None:
            if retention_days is not None:
                raise ConfigurationError(
                    f"bucket {self.bucket} has no Object Lock, so a retention of {retention_days} days cannot be set "
                    "(create the bucket with Object Lock enabled, or leave out the retention)"
                )
        elif retention_days is not None:
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": now + timedelta(days=retention_days)}
            source = f" ({retention_days} days as asked)"
        elif (lock.get("Rule") or {}).get("DefaultRetention"):
            source = " (bucket default)"
        else:
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": now + timedelta(days=DEFAULT_RETENTION_DAYS)}
            source = f" ({DEFAULT_RETENTION_DAYS} days: the bucket has no default retention)"
        key = self._key(name)
        try:
            put = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/json",
                IfNoneMatch="*",  # never overwrite (S3 conditional write)
                ChecksumAlgorithm="SHA256",  # Object Lock requires an integrity checksum on upload
                **extra,
            )
            version = put.get("VersionId")
            head = self.client.head_object(Bucket=self.bucket, Key=key, **({"VersionId": version} if version else {}))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error(f"cannot write {name} to", exc) from exc
        location = self.location_of(name) + (f"?versionId={version}" if version else "")
        mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        if mode and isinstance(until, datetime) and until > now:
            until_text = until.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
            return StoredCheckpoint(location=location, locked=True, retention=f"{mode} until {until_text}{source}")
        if lock is not None:
            # Asked for (or the bucket defaults to) a lock that the object does not show: say so, do not
            # claim it. A reader without s3:GetObjectRetention does not see the retention either.
            return StoredCheckpoint(location=location, locked=False, retention=f"not visible on the object{source}")
        return StoredCheckpoint(location=location, locked=False)


def open_checkpoint_store(uri: str) -> tuple[CheckpointStore, str | None]:
    """The store ``uri`` names (a directory, ``file://`` or ``s3://bucket/prefix``), and the
    checkpoint's name when it names one checkpoint.

    :raises ConfigurationError: an empty URI or an unknown scheme.
    """
    text = uri.strip()
    if not text:
        raise ConfigurationError("the ledger checkpoint location is empty")
    if text.startswith("s3://"):
        bucket, _, key = text[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigurationError(f"{uri} is not an s3://bucket/prefix URI")
        head, _, last = key.rstrip("/").rpartition("/")
        if is_checkpoint_name(last):
            return S3CheckpointStore(bucket, head), last
        return S3CheckpointStore(bucket, key), None
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigurationError(f"{uri}: unknown checkpoint store scheme {scheme!r} (use a directory or s3://bucket/prefix)")
    path = Path(text).expanduser().absolute()
    if is_checkpoint_name(path.name):
        return LocalCheckpointStore(path.parent), path.name
    return LocalCheckpointStore(path), None
