"""MLflow as the evidence store: one MLflow run per pipeline run, evidence files as artifacts.

Layout inside the MLflow run (predictable, so people and tools can find it)::

    mlsecops/evidence/<task_id>/try-<n>/envelope.dsse.json   signed in-toto statement (DSSE)
    mlsecops/evidence/<task_id>/try-<n>/result.json          the gate result, readable
    mlsecops/evidence/<task_id>/try-<n>/<gate files>         reports, manifests (digests in the statement)

The folder of a record is computed from its signed statement (:func:`evidence_dir_for`); the
verifier refuses an envelope stored anywhere else, and orders records by their ledger sequence,
never by folder name.

Tags: ``mlsecops.dag_id``, ``mlsecops.run_id`` on the run; per gate
``mlsecops.gate.<task_id>.verdict``, ``.gate``, ``.evidence`` (artifact path) and ``.ledger_seq``,
for people and the MLflow UI: the verifier recomputes them and never trusts them.
Metrics: ``mlsecops.<task_id>.<metric>``.

This module imports mlflow lazily; it has no Airflow import.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.config import Settings, telemetry_off
from airflow_mlsecops.evidence.models import GateResult
from airflow_mlsecops.exceptions import ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.models import Model

EVIDENCE_ROOT = "mlsecops/evidence"
ENVELOPE_FILE = "envelope.dsse.json"
RESULT_FILE = "result.json"
TAG_DAG_ID = "mlsecops.dag_id"
TAG_RUN_ID = "mlsecops.run_id"
TAG_PREFIX = "mlsecops.gate."

_SAFE = re.compile(r"[^A-Za-z0-9_.\- /]")
_LOCAL_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


#: A record name inside one attempt (``request-1``, ``response-2``, ``decision-1``, ``alias-1``).
RECORD_NAME = re.compile(r"^[a-z]+-[0-9]{1,9}$")


def safe_key(value: str) -> str:
    """A string MLflow accepts in tag/metric keys and artifact paths."""
    return _SAFE.sub("_", value)


def task_key_for(result: GateResult) -> str:
    """The task key of a result, from its signed content: ``<task_id>`` (``/map-<n>`` for a mapped
    task), or the gate's name for a result recorded outside Airflow."""
    if result.context is None:
        return safe_key(result.gate)
    key = result.context.task_id
    if result.context.map_index >= 0:
        key = f"{key}/map-{result.context.map_index}"
    return safe_key(key)


def evidence_dir_for(result: GateResult, record: str | None = None) -> str:
    """Where a signed result belongs, computed from its signed content only:
    ``mlsecops/evidence/<task key>/try-<n>[.<record>]``, or ``.../cli-<started at>`` outside Airflow.

    ``record`` (e.g. ``response-2``) tells apart several records of one attempt, such as the
    responses an approval task collects; it is part of the signed statement too. The verifier
    recomputes this path from the statement and refuses an envelope stored anywhere else.
    """
    if result.context is not None:
        attempt = f"try-{result.context.try_number}" + (f".{record}" if record else "")
    else:
        attempt = "cli-" + result.started_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{EVIDENCE_ROOT}/{task_key_for(result)}/{attempt}"


@dataclass(frozen=True)
class EvidenceLocation:
    """Where one recorded envelope lives in an MLflow run. The folder names are not signed: they say
    where to look, never which task, attempt or order a record is (the signed statement and the
    ledger say that)."""

    artifact_dir: str  # e.g. mlsecops/evidence/validate_data/try-1
    task_key: str  # e.g. validate_data


@contextmanager
def _mlflow_errors(action: str, tracking_uri: str) -> Iterator[None]:
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise ConfigurationError(f"{action}: {exc.message}") from exc
        raise StoreUnavailable(f"{action} at {tracking_uri}: {exc.message}") from exc
    except (OSError, ConnectionError) as exc:
        raise StoreUnavailable(f"{action}: MLflow at {tracking_uri} is unreachable ({exc})") from exc
    except Exception as exc:  # requests/sqlalchemy errors surface untyped through mlflow
        name = type(exc).__name__
        if "Connection" in name or "Timeout" in name or "OperationalError" in name or "MaxRetry" in name:
            raise StoreUnavailable(f"{action}: MLflow at {tracking_uri} is unreachable ({name})") from exc
        raise


class MLflowEvidenceStore:
    """Reads and writes evidence in an MLflow tracking store.

    :param tracking_uri: the MLflow tracking URI.
    :param artifact_root: where experiments created here keep artifacts, for database-backed
        stores used directly (an MLflow server chooses its own).
    :param registry_uri: the MLflow model registry URI (default: the tracking URI).

    Every call goes through this store's own client: nothing here reads or sets MLflow's
    process-global tracking or registry URI, so a task behaves the same in a fresh process.
    """

    def __init__(self, tracking_uri: str, artifact_root: Path | None = None, registry_uri: str | None = None) -> None:
        telemetry_off()
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.registry_uri = registry_uri or tracking_uri
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MLflowEvidenceStore:
        return cls(settings.tracking_uri, settings.artifact_root, registry_uri=settings.registry_uri)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            # Always both URIs: a registry URI left unset follows MLFLOW_REGISTRY_URI, which
            # mlflow.set_registry_uri() writes into the process environment, so whatever a task set
            # before (in a long-lived worker, another store) would win.
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def errors(self, action: str) -> Any:
        return _mlflow_errors(action, self.tracking_uri)

    def _is_local_db(self) -> bool:
        return self.tracking_uri.split(":", 1)[0].split("+", 1)[0] in _LOCAL_DB_SCHEMES

    def experiment_id(self, name: str) -> str:
        with self.errors(f"cannot open MLflow experiment {name!r}"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                return str(experiment.experiment_id)
            location = None
            if self._is_local_db() and self.artifact_root is not None:
                location = (self.artifact_root / safe_key(name).replace(" ", "_").replace("/", "_")).as_uri()
            try:
                return str(self.client.create_experiment(name, artifact_location=location))
            except Exception:
                experiment = self.client.get_experiment_by_name(name)  # created concurrently
                if experiment is None:
                    raise
                return str(experiment.experiment_id)

    def resolve_pipeline_run(self, *, experiment_name: str, dag_id: str, run_id: str) -> str:
        """The one MLflow run of this pipeline run, created on first use.

        Parallel gates of one DAG run may race to create it; every racer then keeps the oldest
        run and deletes its own empty duplicate, so all of them converge on one run.
        """
        experiment_id = self.experiment_id(experiment_name)
        query = f"tags.`{TAG_DAG_ID}` = '{_quote(dag_id)}' and tags.`{TAG_RUN_ID}` = '{_quote(run_id)}'"
        with self.errors(f"cannot find the MLflow run of {dag_id}/{run_id}"):
            found = self._search(experiment_id, query)
            if found:
                return found[0]
            created = self.client.create_run(
                experiment_id,
                tags={TAG_DAG_ID: dag_id, TAG_RUN_ID: run_id, "mlflow.runName": safe_key(f"{dag_id}/{run_id}")[:250]},
            ).info.run_id
            time.sleep(0.05)
            canonical = self._search(experiment_id, query)[0]
            if canonical != created:
                self.client.delete_run(created)
            return canonical

    def _search(self, experiment_id: str, query: str) -> list[str]:
        runs = self.client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time ASC"])
        return [run_id for _, run_id in sorted((r.info.start_time, r.info.run_id) for r in runs)]

    def create_run(self, *, experiment_name: str, run_name: str) -> str:
        experiment_id = self.experiment_id(experiment_name)
        with self.errors("cannot create an MLflow run"):
            return str(self.client.create_run(experiment_id, run_name=safe_key(run_name)[:250]).info.run_id)

    def log_files(self, mlflow_run_id: str, artifact_dir: str, files: Mapping[str, bytes]) -> None:
        with tempfile.TemporaryDirectory(prefix="mlsecops-evidence-") as tmp:
            for name, data in files.items():
                target = Path(tmp, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            with self.errors(f"cannot log evidence to MLflow run {mlflow_run_id}"):
                self.client.log_artifacts(mlflow_run_id, tmp, artifact_path=artifact_dir)

    def log_tags_and_metrics(self, mlflow_run_id: str, tags: Mapping[str, str], metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        with self.errors(f"cannot tag MLflow run {mlflow_run_id}"):
            self.client.log_batch(
                mlflow_run_id,
                metrics=[Metric(safe_key(k), float(v), now, 0) for k, v in metrics.items()],
                tags=[RunTag(safe_key(k), str(v)[:5000]) for k, v in tags.items()],
                synchronous=True,
            )

    def log_model(
        self,
        mlflow_run_id: str,
        save: Callable[[Path, Model], object],
        *,
        name: str = "model",
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Log an MLflow model as an output of ``mlflow_run_id``; returns its model id (``models:/<id>``).

        What ``mlflow.<flavor>.log_model`` does, through this store's client only (the fluent API
        needs an active run and the process-global tracking URI): create the logged model in the
        run's experiment, link it to the run (the MLflow UI lists it under the run), let ``save``
        write it, upload the files, and mark it ``READY`` (``FAILED`` if anything went wrong).

        :param mlflow_run_id: the run that produced the model.
        :param save: ``save(path, mlflow_model)`` writes the model in MLflow format into the new
            directory ``path``, passing ``mlflow_model`` on so the ``MLmodel`` file names the logged
            model and its run, e.g. ``lambda path, m: mlflow.sklearn.save_model(est, path, mlflow_model=m)``.
        :param name: the logged model's name.
        :param params: parameters, logged on the run and on the model.
        :param metrics: metrics, logged on the run and linked to the model.
        :param tags: tags of the logged model.
        """
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param
        from mlflow.models import Model

        params = {safe_key(k): str(v) for k, v in (params or {}).items()}
        with self.errors(f"cannot log model {name!r} to MLflow run {mlflow_run_id}"):
            logged = self.client.create_logged_model(
                self.run_experiment_id(mlflow_run_id),
                name=name,
                source_run_id=mlflow_run_id,
                tags={str(k): str(v) for k, v in (tags or {}).items()},
                params=params,
            )
            try:
                self.client.log_outputs(mlflow_run_id, [LoggedModelOutput(logged.model_id, step=0)])
                now = int(time.time() * 1000)
                self.client.log_batch(
                    mlflow_run_id,
                    metrics=[
                        Metric(safe_key(k), float(v), now, 0, model_id=logged.model_id, run_id=mlflow_run_id)
                        for k, v in (metrics or {}).items()
                    ],
                    params=[Param(k, v) for k, v in params.items()],
                    synchronous=True,
                )
                with tempfile.TemporaryDirectory(prefix="mlsecops-model-") as tmp:
                    local = Path(tmp, "model")
                    mlflow_model = Model(
                        artifact_path=logged.artifact_location,
                        run_id=mlflow_run_id,
                        model_uuid=logged.model_id,
                        model_id=logged.model_id,
                    )
                    save(local, mlflow_model)
                    self.client.log_model_artifacts(logged.model_id, str(local))
            except BaseException:
                # Marked FAILED when possible; the original error is what the caller must see.
                with suppress(Exception):
                    self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
                raise
            self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        return str(logged.model_id)

    def log_model_files(self, model_id: str, local_dir: Path | str, artifact_path: str | None = None) -> None:
        """Add the files of ``local_dir`` to logged model ``model_id`` (under ``artifact_path``)."""
        with self.errors(f"cannot log files to logged model {model_id}"):
            self.client.log_model_artifacts(model_id, str(local_dir), artifact_path=artifact_path)

    def run_tags(self, mlflow_run_id: str) -> dict[str, str]:
        with self.errors(f"cannot read MLflow run {mlflow_run_id}"):
            return dict(self.client.get_run(mlflow_run_id).data.tags)

    def run_experiment_id(self, mlflow_run_id: str) -> str:
        with self.errors(f"cannot read MLflow run {mlflow_run_id}"):
            return str(self.client.get_run(mlflow_run_id).info.experiment_id)

    def list_evidence(self, mlflow_run_id: str) -> list[EvidenceLocation]:
        """Every directory under ``mlsecops/evidence`` that holds an envelope."""
        found: list[EvidenceLocation] = []

        def walk(path: str, depth: int) -> None:
            entries = self.client.list_artifacts(mlflow_run_id, path)
            names = {Path(e.path).name for e in entries if not e.is_dir}
            if ENVELOPE_FILE in names:
                rel = path[len(EVIDENCE_ROOT) + 1 :]
                task_key = rel.rsplit("/", 1)[0]  # <task key>/<attempt: try-N or cli-TIMESTAMP>
                found.append(EvidenceLocation(artifact_dir=path, task_key=task_key))
            if depth < 6:
                for entry in entries:
                    if entry.is_dir:
                        walk(entry.path, depth + 1)

        with self.errors(f"cannot list evidence of MLflow run {mlflow_run_id}"):
            walk(EVIDENCE_ROOT, 0)
        return sorted(found, key=lambda e: e.artifact_dir)

    def list_files(self, mlflow_run_id: str, artifact_dir: str) -> list[str]:
        with self.errors(f"cannot list {artifact_dir} in MLflow run {mlflow_run_id}"):
            return sorted(e.path[len(artifact_dir) + 1 :] for e in self._list_recursive(mlflow_run_id, artifact_dir))

    def _list_recursive(self, mlflow_run_id: str, path: str) -> list[Any]:
        out = []
        for entry in self.client.list_artifacts(mlflow_run_id, path):
            if entry.is_dir:
                out.extend(self._list_recursive(mlflow_run_id, entry.path))
            else:
                out.append(entry)
        return out

    def download_dir(self, mlflow_run_id: str, artifact_dir: str, dst: Path) -> Path:
        with self.errors(f"cannot download {artifact_dir} from MLflow run {mlflow_run_id}"):
            return Path(self.client.download_artifacts(mlflow_run_id, artifact_dir, dst_path=str(dst)))

    def download_uri(self, uri: str, dst: Path) -> Path:
        """Download ``models:/<model id>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        ``runs:/<run id>/<path>`` or any artifact URI, always through this store's tracking URI."""
        import mlflow.artifacts

        with self.errors(f"cannot download {uri}"):
            source = self.resolve_artifact_uri(uri)
            return Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source,
                    dst_path=str(dst),
                    tracking_uri=self.tracking_uri,
                    registry_uri=self.registry_uri,
                )
            )

    def resolve_artifact_uri(self, uri: str) -> str:
        """The storage location behind a ``models:/`` URI (``runs:/`` and storage URIs pass through)."""
        if not uri.startswith("models:/"):
            return uri
        ref = uri[len("models:/") :]
        head, _, rest = ref.partition("/")
        if "@" in head:
            name, alias = head.split("@", 1)
            version = self.client.get_model_version_by_alias(name, alias)
            base = self.client.get_model_version_download_uri(name, version.version)
        elif rest and rest.split("/", 1)[0].isdigit():
            version_str, _, rest = rest.partition("/")
            base = self.client.get_model_version_download_uri(head, version_str)
        else:
            base = self.client.get_logged_model(head).artifact_location
        return f"{base.rstrip('/')}/{rest}" if rest else base


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
