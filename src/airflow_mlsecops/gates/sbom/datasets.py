"""The training data sets an ML-BOM names: :class:`DatasetRef` and the forms it is accepted in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlsecops.exceptions import ConfigurationError

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class DatasetRef:
    """A training data set, named and pinned by its SHA-256 (e.g. a dataset-provenance subject).

    :param name: the data set's name (a file name, path or URI).
    :param sha256: SHA-256 of its bytes (or of its manifest, for a directory), 64 hex digits.
    :param uri: where it lives, recorded as the component's ``distribution`` reference.
    """

    name: str
    sha256: str
    uri: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError("a dataset needs a name")
        digest = str(self.sha256).strip().lower()
        if not _SHA256_HEX.fullmatch(digest):
            raise ConfigurationError(f"dataset {self.name!r}: sha256 must be 64 hex digits, not {self.sha256!r}")
        object.__setattr__(self, "sha256", digest)

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        """``NAME=SHA256`` (as the CLI's ``--dataset`` takes it)."""
        name, sep, digest = str(text).rpartition("=")
        if not sep or not name:
            raise ConfigurationError(f"--dataset {text!r}: expected NAME=SHA256")
        return cls(name=name, sha256=digest, uri=name if "://" in name else None)

    @classmethod
    def from_value(cls, value: DatasetRef | Mapping[str, Any] | str) -> DatasetRef:
        """Accept a :class:`DatasetRef`, ``NAME=SHA256``, ``{"name", "sha256", "uri"}`` or an
        in-toto subject ``{"name", "digest": {"sha256"}}`` (a provenance task's XCom ``subjects``)."""
        if isinstance(value, DatasetRef):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            name = value.get("name")
            digest = value.get("sha256")
            if digest is None and isinstance(value.get("digest"), Mapping):
                digest = value["digest"].get("sha256")
            uri = value.get("uri")
            if uri is None and isinstance(name, str) and "://" in name:
                uri = name
            if not isinstance(name, str) or not isinstance(digest, str):
                raise ConfigurationError(f"a dataset needs a name and a sha256: {dict(value)!r}")
            return cls(name=name, sha256=digest, uri=str(uri) if uri else None)
        raise ConfigurationError(f"a dataset must be a DatasetRef, a mapping or NAME=SHA256, not {type(value).__name__}")


def dataset_refs(datasets: Iterable[DatasetRef | Mapping[str, Any] | str] | Mapping[str, Any] | str | None) -> list[DatasetRef]:
    """Datasets in any accepted form (see :meth:`DatasetRef.from_value`); a mapping with a
    ``subjects`` key (a provenance task's whole XCom return value) gives its subjects."""
    if not datasets:
        return []
    if isinstance(datasets, str) and datasets.lstrip()[:1] in ("[", "{"):
        datasets = _literal(datasets)  # a list rendered by a Jinja template into its text
    if isinstance(datasets, Mapping):
        datasets = datasets.get("subjects", [datasets])
    if isinstance(datasets, (str, bytes)):
        datasets = [str(datasets)]
    return [DatasetRef.from_value(item) for item in datasets]


def _literal(text: str) -> Any:
    import ast

    try:
        return json.loads(text)
    except ValueError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ConfigurationError(f"datasets: {text[:80]!r} is neither JSON nor a Python literal") from exc
