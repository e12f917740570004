"""Runs one example DAG with ``dag.test()`` in its own process (used by ``mlsecops demo``).

Kept separate so Airflow reads the environment prepared by the demo, and so the DAG's own log
lines go to the demo's log file instead of the user's terminal. ``dag.test()`` keeps a run alive
while a human-in-the-loop task waits; this process therefore outlives ``mlsecops demo`` when the
demo stops at the approval, and finishes the run once someone answers (``mlsecops approve``),
or gives up after ``TIMEOUT`` seconds.

    python -m airflow_mlsecops.demo._runner DAG_FILE DAG_ID RESULT_JSON CONF_JSON TIMEOUT
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    dag_file, dag_id, result_path = argv[0], argv[1], Path(argv[2])
    conf = json.loads(argv[3]) if len(argv) > 3 else {}
    timeout = int(float(argv[4])) if len(argv) > 4 else 0

    def give_up(signum: int, frame: object) -> None:
        result_path.write_text(json.dumps({"dag_id": dag_id, "state": "timed_out", "tasks": {}}))
        raise SystemExit(f"gave up after {timeout} s without a decision")

    if timeout > 0:
        signal.signal(signal.SIGALRM, give_up)
        signal.alarm(timeout)
    spec = importlib.util.spec_from_file_location(f"mlsecops_demo_{Path(dag_file).stem}", dag_file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {dag_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id and hasattr(v, "test"))
    dag_run = dag.test(run_conf=conf)
    tasks = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    result_path.write_text(
        json.dumps({"dag_id": dag_id, "run_id": dag_run.run_id, "state": str(dag_run.state), "tasks": tasks}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
