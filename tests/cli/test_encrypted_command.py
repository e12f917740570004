"""``mlsecops he keygen|encrypt|score|decrypt|inspect`` on the demo credit data: the round trip gives
scikit-learn's scores, and every bad input exits 2 with one clear line (never a traceback)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlsecops.cli import main
from airflow_mlsecops.demo.example_data import FEATURES, LABEL
from tests.conftest import REPO_ROOT

pytest.importorskip("tenseal")

DATA = REPO_ROOT / "dags" / "data" / "credit_reference.csv"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("he-cli")
    frame = pd.read_csv(DATA)
    x, y = frame[list(FEATURES)], frame[LABEL]
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x.iloc[:300], y.iloc[:300])
    sio.dump(linear, root / "linear.skops")
    sio.dump(forest, root / "forest.skops")
    return {
        "linear": linear,
        "linear_path": str(root / "linear.skops"),
        "forest_path": str(root / "forest.skops"),
        "frame": frame,
    }


def test_round_trip_gives_the_models_scores(capsys: pytest.CaptureFixture[str], models: dict[str, Any], tmp_path: Path) -> None:
    owner = {"secret": str(tmp_path / "owner.ctx"), "public": str(tmp_path / "public.ctx"), "batch": str(tmp_path / "batch.ckks")}
    code, out, err = run_cli(capsys, "he", "keygen", "--secret", owner["secret"], "--public", owner["public"], "--force")
    assert code == 0, err
    keygen = json.loads(out)
    assert keygen["poly_modulus_degree"] == 8192 and keygen["has_secret_key"] is True
    assert stat.S_IMODE(Path(owner["secret"]).stat().st_mode) == 0o600

    code, out, err = run_cli(
        capsys, "he", "encrypt", "--context", owner["secret"], "--data", str(DATA), "--features", ",".join(FEATURES),
        "--out", owner["batch"], "--force",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["rows"] == 3000

    code, out, err = run_cli(capsys, "he", "inspect", owner["batch"])
    assert code == 0, err
    header = json.loads(out)
    assert header["features"] == list(FEATURES) and header["context_sha256"] == keygen["key_sha256"]
    assert header["ciphertexts"] == len(FEATURES) and "blobs" not in header

    scores = str(tmp_path / "scores.ckks")
    code, out, err = run_cli(
        capsys, "he", "score", "--public-context", owner["public"], "--batch", owner["batch"], "--model", models["linear_path"],
        "--out", scores,
    )  # fmt: skip
    assert code == 0, err
    scored = json.loads(out)
    assert scored["ckks"]["has_secret_key"] is False and scored["input_sha256"] == header["sha256"]

    csv = tmp_path / "scores.csv"
    code, out, err = run_cli(
        capsys, "he", "decrypt", "--context", owner["secret"], "--scores", scores, "--batch", owner["batch"],
        "--out", str(csv), "--probabilities",
    )  # fmt: skip
    assert code == 0, err
    result = pd.read_csv(csv)
    x = models["frame"][list(FEATURES)]
    np.testing.assert_allclose(result["score"], models["linear"].decision_function(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result["probability"], models["linear"].predict_proba(x)[:, 1], atol=1e-5)


def _keys(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, str]:
    files = {"secret": str(root / "o.ctx"), "public": str(root / "p.ctx"), "batch": str(root / "b.ckks")}
    assert run_cli(capsys, "he", "keygen", "--secret", files["secret"], "--public", files["public"])[0] == 0
    code, _, err = run_cli(capsys, "he", "encrypt", "--context", files["public"], "--data", str(DATA), "--out", files["batch"])
    assert code == 0, err  # every numeric column, the label included (unused by the model)
    return files


def test_bad_inputs_exit_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], models: dict[str, Any], tmp_path: Path
) -> None:
    files = _keys(capsys, tmp_path)
    out = str(tmp_path / "s.ckks")
    cases = {
        "holds the secret key": [
            "--public-context",
            files["secret"],
            "--batch",
            files["batch"],
            "--model",
            models["linear_path"],
        ],
        "not a linear model": ["--public-context", files["public"], "--batch", files["batch"], "--model", models["forest_path"]],
        "does not exist": [
            "--public-context",
            files["public"],
            "--batch",
            str(tmp_path / "nope.ckks"),
            "--model",
            models["linear_path"],
        ],
        "not a TenSEAL context": [
            "--public-context",
            files["batch"],
            "--batch",
            files["batch"],
            "--model",
            models["linear_path"],
        ],
    }
    for message, args in cases.items():
        code, _, err = run_cli(capsys, "he", "score", *args, "--out", out)
        assert code == 2 and message in err, (message, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not Path(out).exists()

    tampered = bytearray(Path(files["batch"]).read_bytes())
    tampered[-100] ^= 0xFF
    Path(tmp_path / "t.ckks").write_bytes(bytes(tampered))
    code, _, err = run_cli(
        capsys, "he", "score", "--public-context", files["public"], "--batch", str(tmp_path / "t.ckks"), "--model",
        models["linear_path"], "--out", out,
    )  # fmt: skip
    assert code == 2 and "does not match its digest" in err

    code, _, err = run_cli(capsys, "he", "keygen", "--secret", files["secret"], "--public", files["public"])
    assert code == 2 and "--force" in err  # an existing key is never overwritten silently

    code, _, err = run_cli(capsys, "he", "decrypt", "--context", files["public"], "--scores", files["batch"])
    assert code == 2 and "secret key" in err
    code, _, err = run_cli(capsys, "he", "decrypt", "--context", files["secret"], "--scores", files["batch"])
    assert code == 2 and "expected an encrypted-scores" in err


def test_without_tenseal_the_command_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tenseal", None)  # what an environment without the he extra sees
    code, _, err = run_cli(capsys, "he", "keygen", "--secret", str(tmp_path / "o.ctx"), "--public", str(tmp_path / "p.ctx"))
    assert code == 2 and "pip install 'airflow-mlsecops[he]'" in err
    assert not (tmp_path / "o.ctx").exists()
