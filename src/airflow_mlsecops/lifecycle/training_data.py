"""The data a model was trained on, tied to the data gates that judged it (promotion check ``training-data``).

Data gates can run on one file while training reads another (a decoy). So the link is made from
three signed or logged facts:

1. the training step logs the SHA-256 of the bytes it trained on with the model: the logged
   model's (and the run's) parameter ``training_data_sha256`` (:data:`TRAINING_DATA_PARAM`, one
   digest or several separated by commas; :func:`training_data_params` builds it). The example
   DAG reads its batch with :func:`airflow_mlsecops.io.tabular.load_verified_table`, so the digest
   is of exactly the bytes it parsed;
2. the ``model-registration`` gate records every digest declared for the model, by that parameter
   and by its own ``training_data`` argument, in its signed evidence (``details["training_data"]``)
   and tags the version ``mlsecops.training_data_sha256``;
3. at promotion, :func:`training_data_check` requires each of those digests to be a subject of a
   passed, verified record of every required data gate of the same pipeline run. A model that
   declares no training data fails the check whenever a data gate is required: nothing would tie
   the judged data to the model.

>>> from airflow_mlsecops.lifecycle.training_data import training_data_check
>>> check = training_data_check(evidence, model_sha256, required_gates)   # doctest: +SKIP
>>> check.status, check.detail                                             # doctest: +SKIP

What this cannot do: a training step the DAG author writes can log the digest of the decoy while
it trains on other bytes. The check binds the declaration to the judged data; that the declaration
is true rests on the training code (use the library's loaders, review the DAG).
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.evidence.models import GateResult, Verdict
from airflow_mlsecops.exceptions import ConfigurationError
from airflow_mlsecops.lifecycle.model_registry import RegistryCheck
from airflow_mlsecops.lifecycle.verification import Status

if TYPE_CHECKING:
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore
    from airflow_mlsecops.lifecycle._registry_checks import PipelineEvidence

#: The logged model / run parameter a training step names its training data's digest(s) with.
TRAINING_DATA_PARAM = "training_data_sha256"
#: The model version tag registration sets to the declared digests (comma separated).
TAG_TRAINING_DATA = "mlsecops.training_data_sha256"
#: The promotion check's name.
CHECK_NAME = "training-data"

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: Gates whose first N subjects are the data they judged; the others are references (data-integrity
#: compares its batch against a trusted reference: training data named as the reference was not judged).
_JUDGED_SUBJECTS = {gate_names.DATA_INTEGRITY: 1}


@dataclass(frozen=True)
class TrainingData:
    """One declared training data digest and who declared it."""

    sha256: str
    declared_by: tuple[str, ...]
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "declared_by": list(self.declared_by), "location": self.location}


def training_data_params(*digests: str) -> dict[str, str]:
    """The parameters a training step logs with its model to name the data it trained on."""
    checked = [_digest(d, "training data") for d in digests]
    if not checked:
        raise ConfigurationError("name at least one training data digest")
    return {TRAINING_DATA_PARAM: ",".join(dict.fromkeys(checked))}


def _digest(value: str, what: str) -> str:
    text = str(value).strip().lower().removeprefix("sha256:")
    if not _SHA256_HEX.match(text):
        raise ConfigurationError(f"{what}: {value!r} is not a sha256 digest (64 hex digits)")
    return text


def _items(value: object) -> list[str]:
    """A declaration as a list of strings: a list, a JSON or Python list literal, or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null", "[]"):
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError) as exc:
                    raise ConfigurationError(f"training_data: {value!r} is not a list") from exc
            return _items(parsed)
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, Mapping):
        raise ConfigurationError("training_data: expected digests or paths, not a mapping")
    if isinstance(value, Iterable):
        return [item for entry in value for item in _items(entry)]
    return _items(str(value))


def _hash_location(location: str) -> str:
    from airflow_mlsecops.evidence.digest import sha256_path
    from airflow_mlsecops.io.artifacts import fetch

    with tempfile.TemporaryDirectory(prefix="mlsecops-training-data-") as tmp:
        return sha256_path(fetch(location, Path(tmp)))


def declared_by_argument(value: object) -> list[TrainingData]:
    """The ``training_data`` argument of registration: digests as they are, locations hashed now.

    A value that is 64 hex digits (``sha256:`` prefix allowed) is a digest; anything else is a
    location (local path, ``s3://``, ``runs:/``) whose bytes are hashed now (a directory by its
    manifest, as the provenance gate does).
    """
    found: list[TrainingData] = []
    for item in _items(value):
        text = item.strip().lower().removeprefix("sha256:")
        if _SHA256_HEX.match(text):
            found.append(TrainingData(text, ("argument",)))
        else:
            found.append(TrainingData(_hash_location(item), ("argument",), item))
    return found


def logged_training_data(store: MLflowEvidenceStore, model_uri: str) -> list[TrainingData]:
    """The digests the training step logged with the model (parameter :data:`TRAINING_DATA_PARAM`).

    ``models:/<model id>``: the logged model's parameters; ``models:/<name>/<version>``: those of
    the version's logged model; ``runs:/<run id>/...``: the run's parameters. A value that is not a
    digest is a :class:`ConfigurationError` (never ignored).
    """
    client = store.client
    params: Mapping[str, str] = {}
    where = model_uri
    with store.errors(f"cannot read the parameters of {model_uri}"):
        if model_uri.startswith("models:/"):
            head, _, rest = model_uri[len("models:/") :].rstrip("/").partition("/")
            model_id: str | None = head
            if "@" in head or (rest and rest.split("/", 1)[0].isdigit()):
                if "@" in head:
                    name, alias = head.split("@", 1)
                    mv = client.get_model_version_by_alias(name, alias)
                else:
                    mv = client.get_model_version(head, rest.split("/", 1)[0])
                model_id = getattr(mv, "model_id", None)
                if not model_id and mv.run_id:
                    params = client.get_run(mv.run_id).data.params
                    where = f"run {mv.run_id}"
                    model_id = None
            if model_id:
                params = client.get_logged_model(model_id).params or {}
                where = f"logged model {model_id}"
        elif model_uri.startswith("runs:/"):
            run_id = model_uri[len("runs:/") :].split("/", 1)[0]
            params = client.get_run(run_id).data.params
            where = f"run {run_id}"
    raw = params.get(TRAINING_DATA_PARAM)
    if raw is None:
        return []
    source = f"{where} parameter {TRAINING_DATA_PARAM}"
    return [TrainingData(_digest(item, source), (source,)) for item in _items(raw)]


def merge(*groups: Iterable[TrainingData]) -> list[TrainingData]:
    """Every declared digest once, with everyone who declared it (first location kept)."""
    merged: dict[str, TrainingData] = {}
    for group in groups:
        for item in group:
            seen = merged.get(item.sha256)
            if seen is None:
                merged[item.sha256] = item
            else:
                merged[item.sha256] = TrainingData(
                    item.sha256, tuple(dict.fromkeys((*seen.declared_by, *item.declared_by))), seen.location or item.location
                )
    return list(merged.values())


def _short(digest: str) -> str:
    return f"{digest[:16]}..."


def judged_digests(result: GateResult) -> set[str]:
    """The digests of the data a data gate's result judged (not the references it compared against)."""
    subjects = result.subjects
    count = _JUDGED_SUBJECTS.get(result.gate)
    if count is not None:
        subjects = subjects[:count]
    return {s.sha256 for s in subjects}


def declared_in_registration(evidence: PipelineEvidence, digest: str) -> tuple[list[str], list[str]]:
    """(declared training data digests, registration scopes) of the passed, verified
    ``model-registration`` records of the model with ``digest`` in this pipeline run."""
    declared: dict[str, None] = {}
    scopes: list[str] = []
    for attempt in evidence.latest(gate_names.MODEL_REGISTRATION):
        result = attempt.result
        if not attempt.verified or result.verdict is not Verdict.PASSED or not attempt.covers(digest):
            continue
        scopes.append(attempt.scope)
        items = result.details.get("training_data")
        for item in items if isinstance(items, list) else []:
            value = item.get("sha256") if isinstance(item, Mapping) else None
            if isinstance(value, str) and _SHA256_HEX.match(value):
                declared[value] = None
    return list(declared), scopes


def training_data_check(evidence: PipelineEvidence | None, digest: str | None, required_gates: Sequence[str]) -> RegistryCheck:
    """``training-data``: every digest the model was declared to be trained on was judged, and
    passed, by every required data gate of the pipeline run.

    :param evidence: the version's pipeline evidence (``None``: none could be read, a failure).
    :param digest: the model's digest (the registered one).
    :param required_gates: the gates the promotion requires (the policy's included); the data gates
        among them (:data:`~airflow_mlsecops.gate_names.DATA_GATES`) are the ones that must have judged
        the training data.
    :return: ok, or failed naming each digest and the gates that did not judge it.
    """
    data_gates = list(dict.fromkeys(g for g in required_gates if g in gate_names.DATA_GATES))
    if evidence is None:
        if not data_gates:
            return RegistryCheck(CHECK_NAME, Status.OK, "no data gate is required")
        return RegistryCheck(CHECK_NAME, Status.FAILED, "no pipeline evidence to look in")
    if digest is None:
        return RegistryCheck(CHECK_NAME, Status.FAILED, "the model's digest is unknown, so no training data can be bound to it")
    declared, scopes = declared_in_registration(evidence, digest)
    if not data_gates:
        named = ", ".join(_short(d) for d in declared) or "none declared"
        return RegistryCheck(CHECK_NAME, Status.OK, f"no data gate is required (training data: {named})")
    if not scopes:
        return RegistryCheck(
            CHECK_NAME,
            Status.FAILED,
            f"no passed, verified {gate_names.MODEL_REGISTRATION} record of this model (sha256 {_short(digest)}) "
            f"in the pipeline run {evidence.run_id}, so nothing says what it was trained on",
        )
    if not declared:
        return RegistryCheck(
            CHECK_NAME,
            Status.FAILED,
            f"no training data is declared for this model, so the data gates ({', '.join(data_gates)}) cannot be bound "
            f"to it: log the digest of the data it was trained on with the model (parameter {TRAINING_DATA_PARAM}) "
            "or pass training_data to the registration",
        )
    problems: list[str] = []
    for gate in data_gates:
        attempts = evidence.latest(gate)
        passed = [a for a in attempts if a.verified and a.result.verdict is Verdict.PASSED]
        judged = set().union(*(judged_digests(a.result) for a in passed)) if passed else set()
        missing = [d for d in declared if d not in judged]
        if not missing:
            continue
        seen = sorted(judged)
        what = f"it judged {', '.join(_short(d) for d in seen)}" if seen else "it judged nothing that passed"
        problems.append(f"{gate} never judged the training data {', '.join(_short(d) for d in missing)} ({what})")
    if problems:
        return RegistryCheck(CHECK_NAME, Status.FAILED, "; ".join(problems) + ": the model was trained on other data")
    return RegistryCheck(
        CHECK_NAME,
        Status.OK,
        f"the training data {', '.join(_short(d) for d in declared)} passed {', '.join(data_gates)}",
    )
