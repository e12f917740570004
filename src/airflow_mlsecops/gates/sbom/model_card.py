"""The model in the BOM: what its files say about it (:func:`describe_model`) and its CycloneDX ``modelCard``.

The model is never loaded: its name and version come from a ``models:/name/version`` URI or the
MLmodel file, its architecture from a skops file's ``schema.json``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.digest import FileEntry, file_manifest, manifest_digest
from airflow_mlsecops.exceptions import ConfigurationError, GateError
from airflow_mlsecops.gates.sbom.packages import read_text

if TYPE_CHECKING:
    from airflow_mlsecops.gates.sbom.datasets import DatasetRef


# --- the model ------------------------------------------------------------------------------------


@dataclass
class ModelInfo:
    """What the BOM says about the model, read from its files (the model is never loaded)."""

    name: str
    version: str | None
    digest: str
    files: list[FileEntry]
    mlmodel: dict[str, Any]
    architecture: str | None = None


def _read_mlmodel(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "MLmodel"
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise GateError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise GateError(f"{path} is not an MLmodel file (not a mapping)")
    return data


def _skops_architecture(path: Path) -> str | None:
    """``module.Class`` of a skops file's top-level object (``Pipeline(step classes)`` for a pipeline),
    read from its ``schema.json`` without loading anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > 64 << 20:
                return None
            schema = json.loads(archive.read(info))
        name = f"{schema['__module__']}.{schema['__class__']}"
        if schema["__class__"] == "Pipeline":
            steps = schema["content"]["content"]["steps"]["content"]
            name += "(" + ", ".join(str(step["content"][1]["__class__"]) for step in steps) + ")"
        return name
    except Exception:  # noqa: BLE001 - best effort: the architecture is informative, not judged
        return None


def _model_name_version(location: str, model_dir: Path, mlmodel: Mapping[str, Any]) -> tuple[str, str | None]:
    if location.startswith("models:/"):
        parts = location[len("models:/") :].strip("/").split("/")
        if len(parts) == 2 and parts[1].isdigit():
            return parts[0], parts[1]
    name = mlmodel.get("name") or mlmodel.get("artifact_path") or model_dir.name or "model"
    version = mlmodel.get("model_id") or mlmodel.get("model_uuid")
    return str(name), str(version) if version else None


def describe_model(location: str, model_path: Path) -> ModelInfo:
    """Hash every file of the model and read its MLmodel metadata."""
    files = file_manifest(model_path)
    if model_path.is_file():
        digest, model_dir = files[0].sha256, model_path.parent
        mlmodel: dict[str, Any] = {}
    else:
        digest, model_dir = manifest_digest(files), model_path
        mlmodel = _read_mlmodel(model_path)
    name, version = _model_name_version(location, model_path if model_path.is_dir() else model_dir, mlmodel)
    if model_path.is_file() and not location.startswith("models:/"):
        name = model_path.name
    architecture = None
    for entry in files:
        if entry.path.endswith(".skops"):
            architecture = _skops_architecture(model_path / entry.path if model_path.is_dir() else model_path)
            if architecture:
                break
    return ModelInfo(name=name, version=version, digest=digest, files=files, mlmodel=mlmodel, architecture=architecture)


# --- the modelCard -------------------------------------------------------------------------------


def build_model_card(
    model: ModelInfo, datasets: Sequence[tuple[str, DatasetRef]], metrics: Mapping[str, float] | None
) -> dict[str, Any]:
    """The CycloneDX ``modelCard`` of ``model``: ``modelParameters`` read from its MLmodel and skops
    files, the data components (``(bom-ref, dataset)`` pairs) it was trained on, and ``metrics`` as
    ``quantitativeAnalysis.performanceMetrics``."""
    raw_flavors = model.mlmodel.get("flavors")
    flavors: dict[str, Any] = raw_flavors if isinstance(raw_flavors, dict) else {}
    params: dict[str, Any] = {}
    metadata = model.mlmodel.get("metadata")
    task = metadata.get("task") if isinstance(metadata, dict) else None
    for config in flavors.values():
        if task is None and isinstance(config, dict) and config.get("task"):
            task = config["task"]
    if task:
        params["task"] = str(task)
    families = [name for name in flavors if name != "python_function"]
    if families:
        params["architectureFamily"] = ", ".join(families)
    if model.architecture:
        params["modelArchitecture"] = model.architecture
    if datasets:
        params["datasets"] = [{"ref": ref} for ref, _ in datasets]
    signature = model.mlmodel.get("signature")
    if isinstance(signature, dict):
        for key, target in (("inputs", "inputs"), ("outputs", "outputs")):
            spec = signature.get(key)
            if isinstance(spec, str) and spec.strip():
                params[target] = [{"format": "tensor" if '"tensor-spec"' in spec or "'tensor-spec'" in spec else "tabular"}]
    card: dict[str, Any] = {"bom-ref": "model-card"}
    if params:
        card["modelParameters"] = params
    if metrics:
        performance = []
        for key, value in metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"model_metrics[{key!r}] = {value!r} is not a number") from exc
            performance.append({"type": str(key), "value": repr(number)})
        card["quantitativeAnalysis"] = {"performanceMetrics": performance}
    return card


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` merged over ``base``, mappings key by key (``base`` is not changed)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
