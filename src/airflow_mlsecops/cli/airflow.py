"""``mlsecops airflow`` (``make airflow``): a real local Airflow with the suite, on the embedded default.

It starts ``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` as separate
processes (LocalExecutor, SQLite under ``$MLSECOPS_HOME/airflow-local``), plus an MLflow UI on the
embedded MLflow store so the evidence links in the approval request open. Every task runs in its
own process, as in a deployment. The example DAGs, the example policy (enforced at parse time and
at promotion) and the example people are set up: ``admin``, the reviewers ``alice`` and ``bob``,
and the ML engineer ``carol``. Their passwords are printed once ready. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from airflow_mlsecops.cli._common import EXIT_ERROR, EXIT_OK, mlsecops_command
from airflow_mlsecops.exceptions import ConfigurationError


def _example_dags() -> Path:
    """The example DAGs of a source checkout (this package's repository)."""
    for candidate in (Path.cwd() / "dags", Path(__file__).resolve().parents[3] / "dags"):
        if (candidate / "secure_training_pipeline.py").is_file():
            return candidate
    raise ConfigurationError("no example DAGs found: run this in the project's checkout or pass --dags-folder")


def _require_free(port: int, option: str) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigurationError(f"port {port} is in use: pass another with {option}") from None


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop everything, even when started in the background (where a
    shell starts commands with SIGINT ignored, so Python would not raise KeyboardInterrupt)."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def cmd_airflow(args: argparse.Namespace) -> int:
    import os

    from airflow_mlsecops.config import Settings, pin_platform_environment, telemetry_off
    from airflow_mlsecops.demo.accounts import ADMIN, ML_ENGINEER, REVIEWERS
    from airflow_mlsecops.deployment.local import LocalAirflow, free_port

    telemetry_off()
    dags = Path(args.dags_folder).absolute() if args.dags_folder else _example_dags()
    policy = Path(args.policy).absolute() if args.policy else dags.parent / "policy" / "mlsecops-policy.yaml"
    if args.policy and not policy.is_file():
        raise ConfigurationError(f"--policy {args.policy}: no such file")
    mlflow_port = None if args.no_mlflow_ui else (args.mlflow_port or free_port())
    _require_free(args.port, "--port")
    if mlflow_port:
        _require_free(mlflow_port, "--mlflow-port")

    home = Path(os.environ.get("MLSECOPS_HOME") or ".mlsecops").absolute()
    os.environ["MLSECOPS_HOME"] = str(home)
    pin_platform_environment()  # this command is the platform here: its own settings are the platform's
    settings = Settings.from_env()
    if not settings.signing_key_configured:
        key = settings.generate_key_pair()
        print(f"created a signing key {settings.keys_dir / 'signing-key.pem'} (key id {key.keyid[:16]})")
    # The platform's settings, as a deployment would give them: the [mlsecops] section.
    env = {"MLSECOPS_HOME": str(home), "AIRFLOW__MLSECOPS__HOME": str(home)}
    if policy.is_file():
        env["AIRFLOW__MLSECOPS__POLICY_FILE"] = str(policy)
    if mlflow_port:
        env["AIRFLOW__MLSECOPS__MLFLOW_UI_URL"] = f"http://127.0.0.1:{mlflow_port}"
    users = {ADMIN: "admin", **dict.fromkeys(REVIEWERS, "user"), ML_ENGINEER: "user"}
    airflow = LocalAirflow(home=home / "airflow-local", dags_folder=dags, users=users, port=args.port, env=env)

    _stop_on_signals()
    started = time.monotonic()
    try:
        print(f"starting Airflow in {airflow.home} (logs in {airflow.home / 'logs'}) ...", flush=True)
        airflow.start()
        if mlflow_port:
            airflow.start_process(
                "mlflow-ui",
                [
                    sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                    "--workers", "1", "--backend-store-uri", settings.tracking_uri,
                ],
                {**airflow.environment(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )  # fmt: skip
        airflow.wait_until_ready(timeout=args.timeout)
        _print_ready(airflow, users, policy if policy.is_file() else None, mlflow_port, time.monotonic() - started)
        while True:
            dead = [name for name, proc in airflow.processes.items() if proc.poll() is not None]
            if dead:
                print(f"mlsecops: error: {dead[0]} stopped:\n{airflow.log_tail(dead[0])}", file=sys.stderr)
                return EXIT_ERROR
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping Airflow ...", flush=True)
        return EXIT_OK
    finally:
        airflow.stop()
        print("stopped: nothing of it is left running", flush=True)


def _print_ready(airflow: Any, users: dict[str, str], policy: Path | None, mlflow_port: int | None, seconds: float) -> None:
    passwords = airflow.passwords
    cli = mlsecops_command()
    print(f"\nAirflow is ready after {seconds:.0f} s: {airflow.api_url}")
    print("  logins (simple auth manager; passwords also in", airflow.home / "simple_auth_manager_passwords.json.generated", "):")
    roles = {"admin": "administrator", "alice": "reviewer", "bob": "reviewer", "carol": "ML engineer: triggers training"}
    for user in users:
        print(f"    {user:<6} {passwords.get(user, '?'):<20} {roles.get(user, users[user])}")
    if policy:
        print(f"  policy: {policy} (enforced at parse time and at promotion)")
    if mlflow_port:
        print(f"  MLflow UI: http://127.0.0.1:{mlflow_port}")
    print(
        "\nTry it: log in as carol, trigger secure_training_pipeline (defaults are fine); when it waits at\n"
        "approve_model, log in as alice or bob and open Required actions (carol may not approve her own model).\n"
        "From a shell, as a reviewer (the login decides who answers):\n"
        f"  export AIRFLOW_API_URL={airflow.api_url}\n"
        f"  {cli} approvals --dag-id secure_training_pipeline --username bob\n"
        f"  {cli} approve --dag-id secure_training_pipeline --run-id RUN_ID --username bob\n"
        "Ctrl-C stops all of it.",
        flush=True,
    )


def add_airflow_parser(sub: Any) -> None:
    p = sub.add_parser(
        "airflow",
        help="run a real local Airflow with the suite, the example DAGs and reviewers (Ctrl-C stops it)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=8080, help="the Airflow UI and API port (default 8080)")
    p.add_argument("--mlflow-port", type=int, default=5000, help="the MLflow UI port (default 5000)")
    p.add_argument("--no-mlflow-ui", action="store_true", help="do not start the MLflow UI")
    p.add_argument("--dags-folder", help="DAG files to run (default: the project's dags/)")
    p.add_argument("--policy", help="platform policy file (default: the project's policy/mlsecops-policy.yaml)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for Airflow to be ready")
    p.set_defaults(func=cmd_airflow)
