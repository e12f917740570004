"""Where each setting comes from: an MLflow Connection > Airflow's ``[mlsecops]`` section >
``MLSECOPS_*`` environment > defaults. Each case runs in a fresh interpreter with its own
``AIRFLOW_HOME`` and ``airflow.cfg``, as an Airflow worker would start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlsecops.config import OPTIONS, Layer, Settings
from airflow_mlsecops.exceptions import ConfigurationError

_REPORT = """
import json, sys
from airflow_mlsecops.config import Settings
env_only = Settings.from_env()
assert "airflow" not in sys.modules, "Settings.from_env() must not import Airflow"
from airflow_mlsecops.hooks.evidence import EvidenceHook
from airflow_mlsecops.policy.model import configured_policy_path

def show(s):
    return {"tracking_uri": s.tracking_uri, "registry_uri": s.registry_uri, "ledger_url": s.ledger_url,
            "mlflow_ui_url": s.mlflow_ui_url, "signing_key": str(s.signing_key_path), "password": s.signing_key_password,
            "trusted": [str(p) for p in s.trusted_key_paths], "trust_source": s.trust_source, "sources": dict(s.sources)}

hook = EvidenceHook().settings
keyid = hook.load_signing_key().keyid if hook.signing_key_pem_set else None
print(json.dumps({"env_only": show(env_only), "hook": show(hook), "policy": str(configured_policy_path()), "keyid": keyid}))
"""


def _run(tmp_path: Path, env: dict[str, str], cfg: str = "") -> dict:
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir(exist_ok=True)
    (airflow_home / "airflow.cfg").write_text(cfg)
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLSECOPS_", "AIRFLOW__MLSECOPS__", "AIRFLOW_CONN_", "MLFLOW_"))
    }
    clean.update({"AIRFLOW_HOME": str(airflow_home), "AIRFLOW_CONFIG": str(airflow_home / "airflow.cfg"), **env})
    done = subprocess.run([sys.executable, "-c", _REPORT], capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_connection_beats_airflow_config_beats_environment(tmp_path: Path) -> None:
    cfg = f"""
[mlsecops]
tracking_uri = sqlite:///{tmp_path}/cfg-mlflow.db
ledger_url = sqlite:///{tmp_path}/cfg-ledger.db
mlflow_ui_url = https://ui.from-cfg
trusted_keys = {tmp_path}/a.pub.pem, {tmp_path}/keys
policy_file = {tmp_path}/cfg-policy.yaml
"""
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/env-mlflow.db",
        "MLSECOPS_REGISTRY_URI": f"sqlite:///{tmp_path}/env-registry.db",
        "MLSECOPS_LEDGER_URL": f"sqlite:///{tmp_path}/env-ledger.db",
        "AIRFLOW__MLSECOPS__LEDGER_URL": f"sqlite:///{tmp_path}/airflow-env-ledger.db",
        "MLSECOPS_SIGNING_KEY": f"{tmp_path}/env-key.pem",
        "AIRFLOW__MLSECOPS__SIGNING_KEY_PASSWORD_CMD": "echo from-a-command",
        "MLSECOPS_TRUSTED_KEYS": f"{tmp_path}/env.pub.pem",
        "MLSECOPS_POLICY": f"{tmp_path}/env-policy.yaml",
    }
    # No connection yet: [mlsecops] (AIRFLOW__MLSECOPS__* over airflow.cfg) beats MLSECOPS_*.
    seen = _run(tmp_path, env, cfg)
    hook = seen["hook"]
    assert hook["tracking_uri"] == f"sqlite:///{tmp_path}/cfg-mlflow.db"
    assert hook["sources"]["tracking_uri"] == "[mlsecops] tracking_uri"
    # The environment's registry URI belonged to the environment's tracking store: not paired with the cfg's.
    assert hook["registry_uri"] == hook["tracking_uri"]
    assert hook["ledger_url"] == f"sqlite:///{tmp_path}/airflow-env-ledger.db"
    assert hook["mlflow_ui_url"] == "https://ui.from-cfg"
    assert hook["signing_key"] == f"{tmp_path}/env-key.pem" and hook["sources"]["signing_key"] == "MLSECOPS_SIGNING_KEY"
    assert hook["password"] == "from-a-command"  # a sensitive option accepts _cmd
    assert hook["trusted"] == [f"{tmp_path}/a.pub.pem", f"{tmp_path}/keys"]
    assert hook["trust_source"] == "[mlsecops] trusted_keys"
    assert seen["policy"] == f"{tmp_path}/cfg-policy.yaml"
    # The environment alone, as the mlsecops CLI reads it.
    only = seen["env_only"]
    assert only["tracking_uri"] == env["MLFLOW_TRACKING_URI"] and only["registry_uri"] == env["MLSECOPS_REGISTRY_URI"]
    assert only["ledger_url"] == env["MLSECOPS_LEDGER_URL"] and only["password"] is None
    assert only["trusted"] == [f"{tmp_path}/env.pub.pem"] and only["trust_source"] == "MLSECOPS_TRUSTED_KEYS"

    # The default connection, in Airflow's JSON form, names the whole store.
    env["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps(
        {"conn_type": "mlflow", "host": "mlflow.internal", "port": 5000, "extra": {"registry_uri": "postgresql://db/registry"}}
    )
    hook = _run(tmp_path, env, cfg)["hook"]
    assert hook["tracking_uri"] == "http://mlflow.internal:5000"
    assert hook["registry_uri"] == "postgresql://db/registry"
    assert hook["mlflow_ui_url"] == "http://mlflow.internal:5000"  # not the cfg's UI of another store
    assert hook["sources"]["tracking_uri"] == "connection 'mlflow_default'"
    assert hook["ledger_url"] == f"sqlite:///{tmp_path}/airflow-env-ledger.db"  # not a store option: config still decides


@pytest.mark.slow
def test_environment_applies_when_airflow_config_leaves_options_empty(tmp_path: Path) -> None:
    env = {"MLSECOPS_HOME": str(tmp_path / "home"), "MLSECOPS_POLICY": f"{tmp_path}/env-policy.yaml"}
    seen = _run(tmp_path, env, "[mlsecops]\nledger_url =\ntracking_uri = \n")
    hook = seen["hook"]
    assert hook["tracking_uri"] == f"sqlite:///{tmp_path}/home/mlflow.db"
    assert hook["sources"] == {"home": "MLSECOPS_HOME", "policy_file": "MLSECOPS_POLICY"}
    assert hook["ledger_url"] == f"sqlite:///{tmp_path}/home/ledger.db"
    assert hook["trusted"] == [f"{tmp_path}/home/keys"] and hook["trust_source"] == "MLSECOPS_HOME"
    assert seen["policy"] == f"{tmp_path}/env-policy.yaml"


@pytest.mark.slow
def test_sensitive_options_come_from_the_secrets_backend(tmp_path: Path) -> None:
    from airflow_mlsecops.evidence.keys import SigningKey

    key = SigningKey.generate()
    secrets = tmp_path / "configs.json"
    secrets.write_text(
        json.dumps({"mlsecops/signing_key_pem": key.private_pem().decode(), "mlsecops/ledger_url": "sqlite:///from-secrets.db"})
    )
    backend = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
    kwargs = json.dumps({"configs_file_path": str(secrets)})
    cfg = f"""
[secrets]
backend = {backend}
backend_kwargs = {kwargs}

[workers]
secrets_backend = {backend}
secrets_backend_kwargs = {kwargs}

[mlsecops]
signing_key_pem_secret = mlsecops/signing_key_pem
ledger_url_secret = mlsecops/ledger_url
"""
    seen = _run(tmp_path, {"MLSECOPS_LEDGER_URL": "sqlite:///from-env.db"}, cfg)
    assert seen["keyid"] == key.keyid
    assert seen["hook"]["ledger_url"] == "sqlite:///from-secrets.db"
    assert seen["hook"]["sources"]["signing_key_pem"] == "[mlsecops] signing_key_pem"


def test_a_layer_refuses_unknown_options_and_drops_empty_values() -> None:
    with pytest.raises(ConfigurationError, match="unknown mlsecops setting"):
        Layer("airflow", {"ledger-url": "x"})
    assert Layer("airflow", {"ledger_url": "  ", "home": " /srv "}).values == {"home": "/srv"}


def test_trusted_keys_named_explicitly_must_exist(tmp_path: Path) -> None:
    settings = Settings.from_layers([Layer("airflow", {"trusted_keys": f"{tmp_path}/missing.pub.pem"})])
    with pytest.raises(ConfigurationError, match=r"missing\.pub\.pem does not exist \(from \[mlsecops\] trusted_keys\)"):
        settings.load_trusted_keys()


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_layers(
        [Layer("env", {"signing_key_pem": "-----BEGIN PRIVATE KEY-----", "signing_key_password": "pw"})]
    )
    assert settings.signing_key_pem_set and "BEGIN" not in repr(settings) and "'pw'" not in repr(settings)


def test_every_option_has_an_environment_twin_and_a_documented_row() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    for option in OPTIONS:
        assert f"`{option.name}`" in doc and f"`{option.env}`" in doc, option.name
    assert len({o.env for o in OPTIONS}) == len(OPTIONS)
