"""``mlsecops gate model-scan`` exit codes: 0 judged safe, 1 something unsafe found, 2 a file could not be judged.

A corrupt, truncated, empty or unknown file is never a pass: the scanner reached no verdict on it
(exit 2, verdict ``error``, even with ``--warn-only``); a file with anything unsafe in it is
rejected (exit 1), also when other files beside it could not be judged.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from airflow_mlsecops.cli import main


def _scan(capsys, path: Path, *extra: str) -> tuple[int, dict]:
    code = main(["gate", "model-scan", str(path), "--json", *extra])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


class _Touch:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _corrupt_files(tmp_path: Path) -> dict[str, Path]:
    good = pickle.dumps({"weights": [1.0, 2.0, 3.0], "bias": 0.5}, protocol=4)
    zipped = tmp_path / "ok.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("archive/data.pkl", good)
    npy = tmp_path / "ok.npy"
    np.save(npy, np.arange(1000, dtype=np.float64))
    files = {
        "truncated.pkl": good[: len(good) // 2],
        "empty.bin": b"",
        "random.bin": bytes(range(256)) * 4,
        "truncated.zip": zipped.read_bytes()[:-30],
        "truncated.npy": npy.read_bytes()[:-100],
    }
    out = {}
    for name, data in files.items():
        path = tmp_path / "corrupt" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        out[name] = path
    return out


def test_a_file_the_scanner_cannot_judge_exits_2_never_0(capsys, tmp_path: Path) -> None:
    for name, path in _corrupt_files(tmp_path).items():
        code, payload = _scan(capsys, path)
        assert (code, payload["verdict"]) == (2, "error"), (name, payload["summary"])
        assert payload["findings"], name  # says what could not be judged
        assert payload["summary"].startswith("could not judge"), (name, payload["summary"])
        code, payload = _scan(capsys, path, "--warn-only")
        assert (code, payload["verdict"]) == (2, "error"), name  # warn-only never lets it through


def test_unsafe_content_exits_1_even_beside_corrupt_files(capsys, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    model = tmp_path / "corrupt" / "model.pkl"
    _corrupt_files(tmp_path)
    model.write_bytes(pickle.dumps(_Touch(str(marker)), protocol=4))
    code, payload = _scan(capsys, model.parent)
    assert (code, payload["verdict"]) == (1, "failed")
    assert "could not be judged" in payload["summary"]
    assert not marker.exists()
    code, payload = _scan(capsys, model.parent, "--warn-only")
    assert code == 2 and payload["verdict"] == "error"  # the corrupt files still block a warn-only run


@pytest.mark.parametrize("protocol", [0, 4])
def test_a_readable_benign_pickle_exits_0(capsys, tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0], "name": "m"}, protocol=protocol))
    code, payload = _scan(capsys, path)
    assert (code, payload["verdict"]) == (0, "passed"), payload["summary"]
