"""SHA-256 of files and directory trees: streaming, manifests, refusals."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from airflow_mlsecops.evidence.digest import CHUNK_SIZE, FileEntry, file_manifest, manifest_digest, sha256_file, sha256_path
from airflow_mlsecops.exceptions import GateError


def _tree(root: Path) -> Path:
    files = {
        "train.csv": b"a,b\n1,2\n",
        "test.csv": b"a,b\n3,4\n",
        "meta/schema.json": b'{"a": "int"}',
        "meta/deep/er/notes.txt": b"notes",
        "empty.bin": b"",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12345], ids=lambda n: f"{n}B"
)
def test_sha256_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_path(path) == hashlib.sha256(data).hexdigest()


def test_sha256_file_refuses_missing_and_directories(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="does not exist"):
        sha256_file(tmp_path / "absent")
    with pytest.raises(GateError, match="is a directory"):
        sha256_file(tmp_path)


def test_manifest_lists_every_file_with_posix_paths(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    entries = file_manifest(root)
    assert sorted(e.path for e in entries) == ["empty.bin", "meta/deep/er/notes.txt", "meta/schema.json", "test.csv", "train.csv"]
    assert file_manifest(root) == entries  # the walk order is deterministic
    by_path = {e.path: e for e in entries}
    assert by_path["meta/schema.json"] == FileEntry("meta/schema.json", 12, hashlib.sha256(b'{"a": "int"}').hexdigest())
    assert by_path["empty.bin"].size == 0


def test_directory_digest_is_sha256_of_the_sorted_manifest(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    lines = []
    for path in root.rglob("*"):
        if path.is_file():
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(root).as_posix()}\n")
    expected = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    assert sha256_path(root) == expected
    assert manifest_digest(file_manifest(root)) == expected
    assert manifest_digest(reversed(file_manifest(root))) == expected  # order of entries does not matter


def test_same_content_elsewhere_gives_the_same_digest(tmp_path: Path) -> None:
    assert sha256_path(_tree(tmp_path / "one")) == sha256_path(_tree(tmp_path / "two"))


def test_one_changed_byte_changes_the_digest(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    before = sha256_path(root)
    target = root / "meta" / "deep" / "er" / "notes.txt"
    data = bytearray(target.read_bytes())
    data[2] ^= 0x01
    target.write_bytes(bytes(data))
    assert sha256_path(root) != before


def test_an_added_file_changes_the_digest(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    before = sha256_path(root)
    (root / "meta" / "extra.txt").write_bytes(b"")  # even an empty one
    assert sha256_path(root) != before


def test_a_removed_file_changes_the_digest(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    before = sha256_path(root)
    (root / "empty.bin").unlink()
    assert sha256_path(root) != before


@pytest.mark.parametrize("new_name", ["train2.csv", "meta/train.csv"], ids=["renamed", "moved"])
def test_a_renamed_file_changes_the_digest(tmp_path: Path, new_name: str) -> None:
    root = _tree(tmp_path / "data")
    before = sha256_path(root)
    (root / "train.csv").rename(root / new_name)
    assert sha256_path(root) != before


def test_swapping_contents_of_two_files_changes_the_digest(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    before = sha256_path(root)
    train, test = (root / "train.csv").read_bytes(), (root / "test.csv").read_bytes()
    (root / "train.csv").write_bytes(test)
    (root / "test.csv").write_bytes(train)
    assert sha256_path(root) != before


def test_symlink_to_a_file_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"x")
    (root / "meta" / "link.csv").symlink_to(outside)
    with pytest.raises(GateError, match="symbolic link"):
        sha256_path(root)
    with pytest.raises(GateError, match="symbolic link"):
        sha256_path(root / "meta" / "link.csv")


def test_symlink_to_a_directory_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    other = _tree(tmp_path / "other")
    (root / "meta" / "linked").symlink_to(other, target_is_directory=True)
    with pytest.raises(GateError, match="symbolic link"):
        sha256_path(root)
    with pytest.raises(GateError, match="symbolic link"):
        sha256_path(root / "meta" / "linked")


def test_dangling_symlink_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    (root / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(GateError, match="symbolic link"):
        sha256_path(root)


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(GateError, match="holds no files"):
        sha256_path(tmp_path / "empty")
    (tmp_path / "empty" / "a" / "b").mkdir(parents=True)  # only directories: still nothing to attest
    with pytest.raises(GateError, match="holds no files"):
        sha256_path(tmp_path / "empty")


def test_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="does not exist"):
        sha256_path(tmp_path / "absent")


def test_single_file_manifest(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"model")
    assert file_manifest(path) == [FileEntry("model.pkl", 5, hashlib.sha256(b"model").hexdigest())]


def test_parallel_and_serial_manifests_agree(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(40):
        sub = root / f"part-{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"shard-{i:03d}.bin").write_bytes(os.urandom(1000 + i * 997))
    (root / "big.bin").write_bytes(os.urandom(2 * CHUNK_SIZE + 7))
    serial = file_manifest(root, workers=1)
    parallel = file_manifest(root, workers=2)
    assert len(serial) == 41
    assert parallel == serial
    assert file_manifest(root) == serial
    assert manifest_digest(parallel) == manifest_digest(serial) == sha256_path(root)


def test_a_newline_in_a_file_name_cannot_forge_manifest_lines(tmp_path: Path) -> None:
    x, y = b"content x\n", b"content y\n"
    hx, hy = hashlib.sha256(x).hexdigest(), hashlib.sha256(y).hexdigest()
    honest = tmp_path / "honest"
    honest.mkdir()
    (honest / "a").write_bytes(x)
    (honest / "b").write_bytes(y)
    forged = tmp_path / "forged"
    forged.mkdir()
    # One file whose name spells out the second line of the honest manifest (lines sort by digest).
    if hx < hy:
        (forged / f"a\n{hy}  b").write_bytes(x)
    else:
        (forged / f"b\n{hx}  a").write_bytes(y)
    assert len(file_manifest(honest)) == 2
    try:
        assert len(file_manifest(forged)) == 1
        forged_digest = sha256_path(forged)
    except GateError:
        return  # refusing such a name is a fix too
    assert forged_digest != sha256_path(honest)


def test_a_non_utf8_file_name_gives_a_digest_or_a_gate_error(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.csv").write_bytes(b"1")
    fd = os.open(os.fsencode(root) + b"/\xff-latin1.csv", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    try:
        digest = sha256_path(root)
    except GateError:
        return
    assert len(digest) == 64
