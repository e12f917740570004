"""All settings in one place, read from the environment when asked for (never at import time).

- ``MLSECOPS_HOME``: project-local home of the embedded default. Default ``./.mlsecops`` for the
  stores and the signing key; its ``keys/`` folder is trusted for verification only when
  ``MLSECOPS_HOME`` is set (see ``MLSECOPS_TRUSTED_KEYS``).
- ``MLSECOPS_SIGNING_KEY``: path of the PEM private key that signs evidence. Default
  ``$MLSECOPS_HOME/keys/signing-key.pem`` if that file exists (``mlsecops keygen`` creates it).
- ``MLSECOPS_SIGNING_KEY_PEM``: the PEM private key itself (e.g. injected from a secret). Unset.
- ``MLSECOPS_SIGNING_KEY_PASSWORD``: password of an encrypted private key. Unset.
- ``MLSECOPS_TRUSTED_KEYS``: public key PEM files, or directories of ``*.pub.pem`` files,
  separated by ``os.pathsep``, that the verifier trusts. Default ``$MLSECOPS_HOME/keys`` when
  ``MLSECOPS_HOME`` is set, else none: the ``./.mlsecops/keys`` of whatever directory a verifier
  runs in is never trusted by default (anyone who can write there would choose the trusted keys).
  ``mlsecops demo`` sets ``MLSECOPS_HOME`` to its own home, and prints it in every command it
  suggests. Every verification report names the trusted key ids and where each came from.
- ``MLSECOPS_LEDGER_URL``: SQLAlchemy URL of the evidence ledger. Default
  ``sqlite:///$MLSECOPS_HOME/ledger.db``.
- ``MLFLOW_TRACKING_URI``: MLflow tracking URI. Default ``sqlite:///$MLSECOPS_HOME/mlflow.db``.
- ``MLSECOPS_REGISTRY_URI``: MLflow model registry URI. Default: the tracking URI. (MLflow's own
  ``MLFLOW_REGISTRY_URI`` is not read: ``mlflow.set_registry_uri()`` rewrites it inside a process.)
- ``MLSECOPS_ARTIFACT_ROOT``: artifact root of experiments this package creates in a
  database-backed store used directly (an MLflow server decides its own). Default
  ``$MLSECOPS_HOME/mlartifacts``.
- ``MLSECOPS_MLFLOW_UI_URL``: base URL of the MLflow UI for task links. Default: the tracking URI
  when it is http(s), else no link.
- ``MLSECOPS_S3_ENDPOINT_URL``: S3-compatible endpoint (MinIO...) for ``s3://`` inputs. Default:
  ``MLFLOW_S3_ENDPOINT_URL``, then boto3's own configuration.

Inside Airflow these are set the usual way (environment of the worker, or a secrets backend that
exports them). A key is never logged; only its key id is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey, load_trusted_keys
from airflow_mlsecops.exceptions import KeyLoadError

SIGNING_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


@dataclass(frozen=True)
class Settings:
    home: Path
    tracking_uri: str
    ledger_url: str
    artifact_root: Path
    signing_key_path: Path | None
    signing_key_pem_set: bool
    trusted_key_paths: tuple[Path, ...]
    #: What configured the trusted keys: ``MLSECOPS_TRUSTED_KEYS``, ``MLSECOPS_HOME``, or "" (nothing: none trusted).
    trust_source: str = ""
    #: MLflow model registry URI; empty means the tracking URI.
    registry_uri_set: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        home_set = _env("MLSECOPS_HOME")
        home = Path(home_set or ".mlsecops").expanduser().absolute()
        keys_dir = home / "keys"
        signing = _env("MLSECOPS_SIGNING_KEY")
        default_key = keys_dir / SIGNING_KEY_FILE
        trusted = _env("MLSECOPS_TRUSTED_KEYS")
        if trusted:
            trusted_paths, source = tuple(Path(p) for p in trusted.split(os.pathsep) if p), "MLSECOPS_TRUSTED_KEYS"
        elif home_set:
            trusted_paths, source = (keys_dir,), "MLSECOPS_HOME"
        else:
            # Never the working directory's ./.mlsecops/keys: a verifier started in a directory
            # someone else prepared would trust their key.
            trusted_paths, source = (), ""
        return cls(
            home=home,
            tracking_uri=_env("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
            ledger_url=_env("MLSECOPS_LEDGER_URL") or f"sqlite:///{home / 'ledger.db'}",
            artifact_root=Path(_env("MLSECOPS_ARTIFACT_ROOT") or home / "mlartifacts").absolute(),
            signing_key_path=Path(signing) if signing else (default_key if default_key.exists() else None),
            signing_key_pem_set=_env("MLSECOPS_SIGNING_KEY_PEM") is not None,
            trusted_key_paths=trusted_paths,
            trust_source=source,
            registry_uri_set=_env("MLSECOPS_REGISTRY_URI") or "",
        )

    @property
    def registry_uri(self) -> str:
        return self.registry_uri_set or self.tracking_uri

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    def load_signing_key(self) -> SigningKey:
        """The configured signing key; a clear :class:`KeyLoadError` if there is none."""
        password_text = _env("MLSECOPS_SIGNING_KEY_PASSWORD")
        password = password_text.encode("utf-8") if password_text else None
        pem = _env("MLSECOPS_SIGNING_KEY_PEM")
        if pem is not None:
            return SigningKey.from_pem(pem.encode("utf-8"), password=password, origin="MLSECOPS_SIGNING_KEY_PEM")
        if self.signing_key_path is None:
            raise KeyLoadError(
                "no signing key is configured: set MLSECOPS_SIGNING_KEY to a PEM private key, "
                f"or run `mlsecops keygen` to create {self.keys_dir / SIGNING_KEY_FILE}"
            )
        return SigningKey.from_file(self.signing_key_path, password=password)

    def load_trusted_keys(self) -> dict[str, VerifyingKey]:
        """The trusted public keys, keyed by key id, each with its ``origin`` (the file, and the
        setting that named it). Empty when nothing is configured: verification then fails."""
        existing = [p for p in self.trusted_key_paths if p.exists()]
        missing = [p for p in self.trusted_key_paths if not p.exists()]
        if missing and self.trust_source == "MLSECOPS_TRUSTED_KEYS":
            raise KeyLoadError(f"trusted key path {missing[0]} does not exist")
        keys = load_trusted_keys(existing)
        return {keyid: replace(key, origin=f"{key.origin} ({self.trust_source})") for keyid, key in keys.items()}

    def generate_key_pair(self, key_type: str = "ecdsa-p256", password: bytes | None = None) -> SigningKey:
        key = SigningKey.generate(key_type)
        key.write_pair(self.keys_dir / SIGNING_KEY_FILE, self.keys_dir / PUBLIC_KEY_FILE, password=password)
        return key


def telemetry_off() -> None:
    """Stop MLflow and Evidently from calling home (set wherever this package starts them)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
