"""``mlsecops gate model-scan --allow-model-code``: an MLflow model that runs code shipped with it is
rejected (critical ``mlflow-model-code``) unless the user accepts it explicitly."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_mlsecops.cli import main


def model_from_code(root: Path) -> Path:
    """A minimal MLflow "models from code" directory (never loaded: the code only defines a name)."""
    model = root / "model"
    model.mkdir()
    (model / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    model_code_path: model_code.py\n"
        "    python_version: 3.11.7\nmlflow_version: 3.17.2\n"
    )
    (model / "model_code.py").write_text("ANSWER = 42\n")
    return model


def test_model_code_is_rejected_unless_allowed(capsys, home, tmp_path: Path) -> None:
    model = str(model_from_code(tmp_path))
    code = main(["gate", "model-scan", model, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["verdict"] == "failed"
    assert any(f["id"] == "model-scan.mlflow-model-code" and f["severity"] == "critical" for f in out["findings"])
    code = main(["gate", "model-scan", model, "--allow-model-code", "--json"])
    out = json.loads(capsys.readouterr().out)
    # Allowed, but the code was not scanned: a check not performed reads warned (incomplete), never passed.
    assert code == 0 and out["verdict"] == "warned", out["findings"]
    assert out["not_performed"] == ["model-scan.model-code-not-scanned"]
