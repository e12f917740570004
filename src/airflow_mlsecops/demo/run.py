"""``mlsecops demo``: run the example pipeline end to end on the embedded default.

Everything lives under ``$MLSECOPS_HOME`` (default ``./.mlsecops``): Airflow's SQLite database
(``airflow/``), the MLflow SQLite store and artifacts, the evidence ledger, a demo signing key
(created on first use) and the generated data. No server is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_mlsecops import gate_names
from airflow_mlsecops.config import SIGNING_KEY_FILE, Settings, telemetry_off
from airflow_mlsecops.exceptions import ConfigurationError, MLSecOpsError
from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_PREFIX, TAG_RUN_ID, MLflowEvidenceStore

DEFAULT_DAG_ID = "secure_training_pipeline"


@dataclass
class DemoResult:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str]
    mlflow_run_id: str | None
    tracking_uri: str
    gates: dict[str, str]
    verified: bool
    verification_failures: list[dict[str, str]]
    log_file: str
    home: str
    dags_folder: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    approval: dict[str, Any] | None = None
    promoted: dict[str, Any] | None = None
    waiting_for: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Verified evidence, and the run ended as designed: promoted, waiting for a reviewer, or
        stopped by a recorded rejection."""
        rejected = self.state == "failed" and (self.approval or {}).get("decision") == "rejected"
        return self.verified and (self.state in ("success", "awaiting_approval") or rejected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "tasks": self.tasks,
            "mlflow_run_id": self.mlflow_run_id,
            "tracking_uri": self.tracking_uri,
            "gates": self.gates,
            "verified": self.verified,
            "verification_failures": self.verification_failures,
            "log_file": self.log_file,
            "home": self.home,
            "dags_folder": self.dags_folder,
            "seconds": round(self.seconds, 1),
            "notes": self.notes,
            "approval": self.approval,
            "promoted": self.promoted,
            "waiting_for": [{k: v for k, v in w.items() if k != "body"} for w in self.waiting_for],
        }


def prepare_environment(dags_folder: Path) -> tuple[Settings, dict[str, str], list[str]]:
    """Point Airflow and MLflow at ``$MLSECOPS_HOME``; create the demo key if none is configured."""
    telemetry_off()
    notes: list[str] = []
    home = Path(os.environ.get("MLSECOPS_HOME") or ".mlsecops").absolute()
    os.environ["MLSECOPS_HOME"] = str(home)
    settings = Settings.from_env()
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    env.setdefault("PYTHONWARNINGS", "ignore")
    example_policy = dags_folder.parent / "policy" / "mlsecops-policy.yaml"
    if "MLSECOPS_POLICY" not in env and example_policy.is_file():
        # The demo runs under the example platform policy: enforced at parse time (cluster policy)
        # and at promotion, and its digest is in every evidence record.
        env["MLSECOPS_POLICY"] = str(example_policy)
        notes.append(f"enforcing the example policy {example_policy}")
    if settings.signing_key_path is None and not settings.signing_key_pem_set:
        key = settings.generate_key_pair()
        notes.append(f"created a demo signing key {settings.keys_dir / SIGNING_KEY_FILE} (key id {key.keyid[:16]})")
        settings = Settings.from_env()
    return settings, env, notes


def _migrate(env: dict[str, str], log: Any) -> None:
    import importlib.metadata

    marker = Path(env["AIRFLOW_HOME"], f".mlsecops-migrated-{importlib.metadata.version('apache-airflow')}")
    if marker.exists():
        return
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise ConfigurationError(f"`airflow db migrate` failed (exit {done.returncode}); see {log.name}")
    marker.touch()


def _latest_run(dag_id: str, since: datetime) -> tuple[str, str, dict[str, str]] | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.start_date >= since)
            .order_by(DagRun.start_date.desc())
            .first()
        )
        if run is None:
            return None
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        return run.run_id, str(run.state), tasks


def run_demo(
    *,
    dags_folder: Path,
    dag_id: str = DEFAULT_DAG_ID,
    conf: dict[str, Any] | None = None,
    echo: Any = None,
    approve_as: str | None = None,
    reject_as: str | None = None,
    approval_timeout: float = 3600,
) -> DemoResult:
    """Run the example DAG; stop at the approval unless ``approve_as``/``reject_as`` answers it."""
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    dag_file = dags_folder / f"{dag_id}.py"
    if not dag_file.is_file():
        raise ConfigurationError(f"example DAG {dag_file} not found; run the demo from the project's root or pass --dags-folder")
    settings, env, notes = prepare_environment(dags_folder.absolute())
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AIRFLOW", "MLFLOW", "MLSECOPS"))})
    say = echo or (lambda _msg: None)
    for note in notes:
        say(note)
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    log_path = logs / f"demo-{stamp}.log"
    result_path = logs / f"demo-{stamp}.json"
    with open(log_path, "w") as log:
        say(f"preparing Airflow's database in {env['AIRFLOW_HOME']} ...")
        _migrate(env, log)
    say(f"running {dag_id} with dag.test() (log: {log_path}) ...")
    command = [
        sys.executable,
        "-m",
        "airflow_mlsecops.demo._runner",
        str(dag_file.absolute()),
        dag_id,
        str(result_path),
        json.dumps(conf or {}),
        str(approval_timeout),
    ]
    with open(log_path, "a") as log:
        # Its own session: when the demo stops at the approval, this run keeps waiting for a reviewer.
        runner = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    from airflow_mlsecops.lifecycle.hitl import pending_approvals, respond

    answered = False
    waiting: list[Any] = []
    run_id, state = "", "running"
    tasks: dict[str, str] = {}
    while True:
        finished = runner.poll() is not None
        latest = _latest_run(dag_id, started_at)
        if latest:
            run_id, state, tasks = latest
            waiting = pending_approvals(dag_id, run_id)
        if finished:
            break
        if waiting:
            if answered:
                pass  # another response is needed (quorum): the demo answers once, then reports
            elif approve_as or reject_as:
                user = approve_as or reject_as or ""
                say(f"answering {waiting[0].task_id} as {user}: {'Approve' if approve_as else 'Reject'}")
                try:
                    respond(dag_id=dag_id, run_id=run_id, user=user, approve=bool(approve_as))
                except MLSecOpsError:
                    runner.terminate()
                    raise
                answered = True
                waiting = []
                time.sleep(1)
                continue
            if not answered:
                break
        time.sleep(1)
    if runner.poll() is not None and result_path.exists():
        run = json.loads(result_path.read_text())
        run_id, state, tasks = run.get("run_id", run_id), run["state"], run.get("tasks", tasks)
        if runner.returncode not in (0, None) and state != "timed_out":
            raise ConfigurationError(f"the example DAG could not be run (exit {runner.returncode}); see {log_path}")
    elif runner.poll() is not None:
        raise ConfigurationError(f"the example DAG could not be run (exit {runner.returncode}); see {log_path}")
    else:
        state = "awaiting_approval"

    store = MLflowEvidenceStore.from_settings(settings)
    mlflow_run_id = None
    with store.errors("cannot find the demo's MLflow run"):
        experiment = store.client.get_experiment_by_name(dag_id)
        if experiment is not None and run_id:
            found = store.client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{TAG_DAG_ID}` = '{dag_id}' and tags.`{TAG_RUN_ID}` = '{run_id}'",
            )
            mlflow_run_id = found[0].info.run_id if found else None
    gates: dict[str, str] = {}
    verified, failures = False, []
    approval: dict[str, Any] | None = None
    if mlflow_run_id:
        tags = store.run_tags(mlflow_run_id)
        gates = {
            key[len(TAG_PREFIX) : -len(".verdict")]: value
            for key, value in sorted(tags.items())
            if key.startswith(TAG_PREFIX) and key.endswith(".verdict")
        }
        from airflow_mlsecops.lifecycle.verification import verify_run

        try:
            report = verify_run(mlflow_run_id, settings=settings, store=store)
            verified, failures = report.ok, [c.to_dict() for c in report.failures]
            approval = _approval_summary(report.results)
        except MLSecOpsError as exc:
            failures = [{"scope": "run", "check": "verify", "status": "failed", "detail": str(exc)}]
    if state == "awaiting_approval":
        approval = {"decision": "pending", "responded_by": None, "responded_at": None}
    return DemoResult(
        dag_id=dag_id,
        run_id=run_id,
        state=state,
        tasks=tasks,
        mlflow_run_id=mlflow_run_id,
        tracking_uri=settings.tracking_uri,
        gates=gates,
        verified=verified,
        verification_failures=failures,
        log_file=str(log_path),
        home=str(settings.home),
        dags_folder=str(dags_folder.absolute()),
        seconds=time.monotonic() - started,
        notes=notes,
        approval=approval,
        promoted=_promoted(store, run_id) if state == "success" else None,
        waiting_for=[w.to_dict() for w in waiting] if state == "awaiting_approval" else [],
    )


def _approval_summary(results: dict[str, Any]) -> dict[str, Any] | None:
    decisions = [r for _, r in sorted(results.items()) if r.gate == gate_names.MODEL_APPROVAL]
    if not decisions:
        return None
    final = decisions[-1]
    details = final.details
    approvals = details.get("approvals") or []
    by = details.get("rejected_by") or (approvals[-1] if approvals else None)
    return {
        "decision": details.get("decision"),
        "responded_by": (by or {}).get("name"),
        "responded_at": (by or {}).get("responded_at") or final.finished_at.isoformat(),
        "approvals": [a.get("name") for a in approvals],
    }


def _promoted(
    store: MLflowEvidenceStore, run_id: str, name: str = "credit-risk", alias: str = "champion"
) -> dict[str, Any] | None:
    from airflow_mlsecops.exceptions import ConfigurationError as _Missing

    try:
        with store.errors("cannot read the registry"):
            version = store.client.get_model_version_by_alias(name, alias)
    except (_Missing, MLSecOpsError):
        return None
    if version.tags.get("mlsecops.run_id") != run_id:
        return None
    return {"model": name, "version": str(version.version), "alias": alias}


def next_steps(result: DemoResult, mlsecops: str = "mlsecops") -> list[str]:
    """The commands that take the user on from the demo; ``mlsecops`` is how the CLI is called again."""
    home = Path(result.home)
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(home / "airflow")
    env = f"MLSECOPS_HOME={home}" + (
        f" MLSECOPS_POLICY={os.environ['MLSECOPS_POLICY']}" if os.environ.get("MLSECOPS_POLICY") else ""
    )
    return [
        f"verify the evidence again:  {env} {mlsecops} verify --mlflow-run-id {result.mlflow_run_id}",
        f"open the MLflow UI:         mlflow ui --backend-store-uri {result.tracking_uri} --port 5000",
        f"open the Airflow UI:        {env} AIRFLOW_HOME={airflow_home} AIRFLOW__CORE__DAGS_FOLDER={result.dags_folder} "
        "AIRFLOW__CORE__LOAD_EXAMPLES=False airflow standalone   (then http://localhost:8080)",
    ]
