"""Data and model locations turned into local inputs: registry aliases pinned, MLflow files fetched.

Callers (operators, the CLI) resolve and fetch here; the monitoring engines under ``gates/`` then
read only local paths, tables and :class:`LocalArtifact` values::

    import tempfile
    from pathlib import Path
    from airflow_mlsecops.io.locations import fetch_artifact, load_table_at

    table = load_table_at("runs:/<run id>/data/reference.csv")     # named by its URI in the evidence
    with tempfile.TemporaryDirectory() as tmp:
        model = fetch_artifact("models:/credit-risk@champion", Path(tmp))
        print(model.ref.uri, model.path)                          # models:/credit-risk/3 /tmp/.../model

Without a store, MLflow locations go through the MLflow store configured in the environment (as
:func:`airflow_mlsecops.io.artifacts.fetch` does).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_mlsecops.evidence.models import Subject
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.io.artifacts import MLFLOW_SCHEMES, fetch
from airflow_mlsecops.io.tabular import LoadedTable, load_table

if TYPE_CHECKING:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore


@dataclass(frozen=True)
class ModelRef:
    """A model location with any registry alias resolved to the version it pointed at.

    :param requested: the location as given (``models:/credit-risk@champion``).
    :param uri: the pinned location (``models:/credit-risk/3``): what the evidence names, so a
        later verification re-hashes the version that was judged even after the alias moved.
    :param name: registered model name, if the location names one.
    :param version: registered model version, if known.
    :param alias: the alias that was resolved, if any.
    """

    requested: str
    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"requested": self.requested, "uri": self.uri, "name": self.name, "version": self.version, "alias": self.alias}


@dataclass(frozen=True)
class LocalArtifact:
    """An artifact (a model, a detector directory) available at a local path.

    :param ref: where it came from: ``ref.uri`` names it in the evidence, ``ref.requested`` is the
        location as the user gave it.
    :param path: the local file or directory holding its bytes.
    """

    ref: ModelRef
    path: Path


def is_remote(location: str) -> bool:
    """Whether ``location`` must be fetched first (``s3://``, ``runs:/``, ``models:/``, any other scheme)."""
    return location.startswith(MLFLOW_SCHEMES) or ("://" in location and not location.startswith("file://"))


def _configured_store(store: MLflowEvidenceStore | None) -> MLflowEvidenceStore:
    if store is not None:
        return store
    from airflow_mlsecops.config import Settings
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    settings = Settings.from_env()
    return MLflowEvidenceStore.from_settings(settings)


def parse_model_ref(location: str) -> ModelRef:
    """The :class:`ModelRef` of a location that needs no registry lookup (no ``@alias``).

    :raises ConfigurationError: ``location`` names a registry alias; pin it with :func:`resolve_model_ref`.
    """
    if not location.startswith("models:/"):
        return ModelRef(requested=location, uri=location)
    head, _, rest = location[len("models:/") :].partition("/")
    if "@" in head:
        raise ConfigurationError(
            f"{location} names a registry alias; resolve it to a version first (airflow_mlsecops.io.locations.resolve_model_ref)"
        )
    first = rest.split("/", 1)[0]
    if first.isdigit():
        return ModelRef(requested=location, uri=location, name=head, version=first)
    return ModelRef(requested=location, uri=location)


def resolve_model_ref(location: str, store: MLflowEvidenceStore | None = None) -> ModelRef:
    """Pin ``models:/<name>@<alias>[/path]`` to ``models:/<name>/<version>[/path]``.

    Other locations (local paths, ``s3://``, ``runs:/``, ``models:/<name>/<version>``,
    ``models:/<model id>``) are returned as they are, with the name and version when the location
    carries them. An unknown model or alias is a :class:`ConfigurationError`.

    :param location: where the model (or a file inside it) is.
    :param store: the MLflow store that resolves aliases (default: the configured one).
    """
    if not location.startswith("models:/"):
        return ModelRef(requested=location, uri=location)
    head, _, rest = location[len("models:/") :].partition("/")
    if "@" not in head:
        return parse_model_ref(location)
    name, alias = head.split("@", 1)
    if not name or not alias:
        raise ConfigurationError(f"{location}: expected models:/<name>@<alias>")
    resolved = _configured_store(store)
    with resolved.errors(f"cannot resolve the alias {alias!r} of model {name!r}"):
        version = str(resolved.client.get_model_version_by_alias(name, alias).version)
    pinned = f"models:/{name}/{version}" + (f"/{rest}" if rest else "")
    return ModelRef(requested=location, uri=pinned, name=name, version=version, alias=alias)


def load_table_at(
    location: str,
    *,
    store: MLflowEvidenceStore | None = None,
    csv_delimiter: str | None = None,
    sha256: str | None = None,
) -> LoadedTable:
    """:func:`~airflow_mlsecops.io.tabular.load_table`, plus data files stored in MLflow.

    ``runs:/`` and ``models:/`` locations are downloaded through ``store`` and named in the
    evidence by their (alias-pinned) URI. The file is read once: the frame is parsed from the
    bytes its digest names.

    :param location: local path, ``s3://`` object, or ``runs:/`` / ``models:/`` URI of one file.
    :param store: the MLflow store for MLflow URIs (default: the configured one).
    :param csv_delimiter: delimiter of a CSV file (default ``,``).
    :param sha256: if given, the digest the bytes must have (a gate's recorded digest):
        :class:`~airflow_mlsecops.exceptions.DigestMismatch` otherwise.
    """
    if not location.startswith(MLFLOW_SCHEMES):
        return load_table(location, csv_delimiter=csv_delimiter, sha256=sha256)
    ref = resolve_model_ref(location, store)
    with tempfile.TemporaryDirectory(prefix="mlsecops-table-") as tmp:
        path = fetch(ref.uri, Path(tmp), _configured_store(store))
        if not path.is_file():
            raise GateError(f"{location} is not a single data file")
        table = load_table(str(path), csv_delimiter=csv_delimiter, sha256=sha256)
    return LoadedTable(
        frame=table.frame, subject=Subject(ref.uri, table.subject.sha256), format=table.format, size_bytes=table.size_bytes
    )


def fetch_artifact(location: str, dst: Path, store: MLflowEvidenceStore | None = None) -> LocalArtifact:
    """Pin ``location``'s alias (if any) and fetch what it names into ``dst`` (local paths stay where they are).

    :param location: local path, ``s3://`` object or prefix, ``runs:/`` or ``models:/`` URI.
    :param dst: a directory for the download.
    :param store: the MLflow store for MLflow URIs (default: the configured one).
    """
    needs_store = location.startswith(MLFLOW_SCHEMES)
    mlflow_store = _configured_store(store) if needs_store else store
    ref = resolve_model_ref(location, mlflow_store)
    return LocalArtifact(ref=ref, path=fetch(ref.uri, dst, mlflow_store))


def local_artifact(location: str | Path) -> LocalArtifact:
    """A local path as a :class:`LocalArtifact`, named by the location as given (it may not exist).

    :raises ConfigurationError: ``location`` is remote; fetch it with :func:`fetch_artifact`.
    """
    text = str(location)
    if is_remote(text):
        raise ConfigurationError(
            f"{text} is not a local path; fetch it first (airflow_mlsecops.io.locations.fetch_artifact), "
            "as the operators and the CLI do"
        )
    return LocalArtifact(ref=ModelRef(requested=text, uri=text), path=Path(text.removeprefix("file://")))


def local_table(data: str | Path | LoadedTable, *, csv_delimiter: str | None = None) -> LoadedTable:
    """``data`` as a :class:`~airflow_mlsecops.io.tabular.LoadedTable`: loaded already, or a local file to load.

    :raises ConfigurationError: ``data`` is remote; load it with :func:`load_table_at`.
    """
    if isinstance(data, LoadedTable):
        return data
    text = str(data)
    if is_remote(text):
        raise ConfigurationError(
            f"{text} is not a local path; load it first (airflow_mlsecops.io.locations.load_table_at), "
            "as the operators and the CLI do"
        )
    return load_table(text, csv_delimiter=csv_delimiter)


def table_name(data: str | Path | LoadedTable) -> str:
    """How an engine's messages name a table input: the location as given, or, for a table loaded
    already, the name it is attested under (its URI, or the absolute path of a local file)."""
    return data.subject.name if isinstance(data, LoadedTable) else str(data)
