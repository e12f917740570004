"""Row 2: parse time of ``dags/secure_training_pipeline.py`` vs a DAG of the same 15-task shape written with
only ``@task`` and standard-provider operators.

Each parse runs in a fresh interpreter that has already done ``import airflow.sdk`` (as a DAG
processor has): the time is that of importing the DAG file the way ``DagBag`` does
(``spec_from_file_location`` + ``exec_module``), warm ``.pyc``, alternating ours and the peer.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks._common import (
    REPO_ROOT,
    Row,
    Target,
    alternate,
    bench_env,
    last_json_line,
    median,
    paired_ratio,
    python_cmd,
    run_timed,
    tmp_root,
)

GROUP = "dagparse"
OUR_DAG = REPO_ROOT / "dags" / "secure_training_pipeline.py"
DELTA_TARGET_MS = 150.0
POLICY = REPO_ROOT / "policy" / "mlsecops-policy.yaml"
POLICY_TARGET_MS = 100.0

_PROBE = """\
import importlib.util, json, sys, time
import airflow.sdk
from airflow.sdk import BaseOperator
_t0, _c0 = time.perf_counter(), time.process_time()
_spec = importlib.util.spec_from_file_location("bench_dag_module", {path!r})
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module
_spec.loader.exec_module(_module)
_t1, _c1 = time.perf_counter(), time.process_time()
_dags = [v for v in vars(_module).values() if type(v).__name__ == "DAG"]
_policy_ms = None
if {policy!r}:
    from airflow_mlsecops.policy.cluster_policy import violations_for
    _t2 = time.perf_counter()
    _found = [m for d in _dags for m in violations_for(d)]
    _policy_ms = (time.perf_counter() - _t2) * 1e3
    if _found:
        raise SystemExit(f"the DAG breaks the policy: {{_found}}")
print(json.dumps({{
    "parse_ms": (_t1 - _t0) * 1e3,
    "policy_ms": _policy_ms,
    "cpu_ms": (_c1 - _c0) * 1e3,
    "dags": len(_dags),
    "tasks": sum(len(d.tasks) for d in _dags),
}}))
"""

# Same tasks, same dependencies, same DAG arguments; the gates are PythonOperators.
PEER_DAG = '''\
"""Peer of secure_training_pipeline: the same 15-task shape with @task, PythonOperator and the
standard provider's ApprovalOperator only (no mlsecops import).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param, task

HERE = Path(__file__).parent
MODEL_URI = "{{ ti.xcom_pull(task_ids='train_model')['model_uri'] }}"


@task
def ingest(**context) -> str:
    import re

    return "/tmp/" + re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"]) + "/train.csv"


@task
def train_model(data_path: str, verified: dict, **context) -> dict:
    import mlflow

    return {"model_uri": f"models:/{mlflow.__version__}", "data": data_path, "verified": verified}


def gate(name: str, **kwargs) -> dict:
    import hashlib

    return {"gate": name, "digest": hashlib.sha256(repr(sorted(kwargs.items())).encode()).hexdigest()}


with DAG(
    dag_id="peer_training_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["mlsecops", "example"],
    params={
        "rows": Param(5000, type="integer", minimum=100),
        "seed": Param(7, type="integer"),
        "osv_db": Param("", type="string"),
    },
    doc_md=__doc__,
) as dag:
    data = ingest()

    def step(task_id: str, **kwargs) -> PythonOperator:
        return PythonOperator(task_id=task_id, python_callable=gate, op_kwargs={"name": task_id, **kwargs})

    validate = step("validate_data", data=data, suite=str(HERE / "suites" / "training_data.json"))
    integrity = step("check_integrity", data=data, reference=str(HERE / "data" / "credit_reference.csv"))
    pii = step("scan_pii", data=data)
    sign_data = step("sign_training_data", artifacts=[data])
    verify_data = step("verify_training_data", artifacts=[data], attestation=sign_data.output)
    trained = train_model(data, verify_data.output)
    scan = step("scan_model", path=MODEL_URI)
    robustness = step("check_robustness", model=MODEL_URI, epsilon=0.1)
    sbom = step("build_sbom", model=MODEL_URI)
    sign_model = step("sign_model", path=MODEL_URI)
    attest_model = step("attest_model", artifacts=[MODEL_URI])
    register = step("register_model", model_uri=MODEL_URI)
    approve = ApprovalOperator(task_id="approve_model", subject="Promote credit-risk to champion?")
    promote = step("promote_model", alias="champion")
    validate >> integrity >> pii >> sign_data
    trained >> scan >> robustness >> sbom >> sign_model >> attest_model >> register >> approve >> promote
'''


def run(quick: bool) -> list[Row]:
    runs = 3 if quick else 7
    tmp = tmp_root()
    env = bench_env(tmp)
    peer_dir = tmp / "peer-dags"
    peer_dir.mkdir(parents=True, exist_ok=True)
    peer_path = peer_dir / "peer_training_pipeline.py"
    peer_path.write_text(PEER_DAG, encoding="utf-8")

    # Ours is judged by the cluster policy under the example policy, as the DAG processor does
    # (every structure, producer and parameter check of the policy engine, cold in a fresh process).
    env = {**env, "MLSECOPS_POLICY": str(POLICY)}
    codes = {
        "ours": _PROBE.format(path=str(OUR_DAG), policy=True),
        "peer": _PROBE.format(path=str(peer_path), policy=False),
    }
    shapes = {}
    for name, code in codes.items():  # warm-up: .pyc of the DAG files and everything they import
        shapes[name] = last_json_line(run_timed(python_cmd(code), env=env).stdout)
    if shapes["ours"]["tasks"] != shapes["peer"]["tasks"]:
        raise RuntimeError(f"the peer DAG does not have the same shape: {shapes}")

    parse: dict[str, list[float]] = {"ours": [], "peer": []}
    cpu: dict[str, list[float]] = {"ours": [], "peer": []}
    policy: list[float] = []
    for i in range(runs):
        for name in alternate(i, ("ours", "peer")):
            report = last_json_line(run_timed(python_cmd(codes[name]), env=env).stdout)
            parse[name].append(report["parse_ms"])
            cpu[name].append(report["cpu_ms"])
            if report["policy_ms"] is not None:
                policy.append(report["policy_ms"])
    return [
        Row(
            group=GROUP,
            name=f"DAG parse: {Path(OUR_DAG).name}",
            unit="ms",
            ours=median(parse["ours"]),
            peer=median(parse["peer"]),
            ratio=paired_ratio(parse["ours"], parse["peer"]),
            peer_label="same shape, @task + PythonOperator + ApprovalOperator",
            target=Target("delta", "<", DELTA_TARGET_MS, "ms"),
            runs=runs,
            notes=(
                f"{shapes['ours']['tasks']} tasks each; fresh interpreter after `import airflow.sdk`, warm .pyc; "
                f"CPU medians {median(cpu['ours']):.0f} vs {median(cpu['peer']):.0f} ms"
            ),
            samples={"ours_ms": parse["ours"], "peer_ms": parse["peer"], "ours_cpu_ms": cpu["ours"], "peer_cpu_ms": cpu["peer"]},
        ),
        Row(
            group=GROUP,
            name="cluster policy check of that DAG",
            unit="ms",
            ours=median(policy),
            peer=median(parse["ours"]),
            peer_label="parsing the same DAG file (its share of the DAG processor's work)",
            target=Target("abs", "<", POLICY_TARGET_MS, "ms"),
            runs=runs,
            notes="violations_for() under policy/mlsecops-policy.yaml, first call in a fresh interpreter (cold)",
            samples={"ours_ms": policy, "parse_ms": parse["ours"]},
        ),
    ]
