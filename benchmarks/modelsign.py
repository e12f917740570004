"""OpenSSF model signing: ``sign_model`` / ``verify_model`` throughput (MB/s) vs the ``model_signing``
package (its Python API, and its CLI as a second peer) on the same 1 GiB model directory.

The model: 1 x 512 MiB + 7 x 64 MiB weight shards + 200 small files (1-64 KiB configs, vocab,
tokenizer; ~6 MiB), ~966 MiB in all (``--quick``: 1 x 128 + 7 x 16 MiB + 200 small, ~246 MiB). Page
cache warm. Both sides get the same ECDSA P-256 key pair as PEM files and do the same work:

* sign: load the private key from its PEM file, hash every file (SHA-256, ``files`` serialization,
  git paths ignored), sign the in-toto statement, write the Sigstore bundle (``model.sig``, outside
  the model). Ours: ``SigningKey.from_file`` + ``sign_model`` + write. Peer:
  ``model_signing.signing.Config().use_elliptic_key_signer(private_key=...).sign(model, sig)``.
* verify: read the bundle and the public key, check the signature, re-hash and compare every file.
  Ours: ``load_trusted_keys`` + ``verify_model``. Peer: ``model_signing.verifying.Config()
  .use_elliptic_key_verifier(public_key=...).verify(model, sig)``. Each verifies its own bundle;
  before timing, each also verifies the other's (the two formats interoperate).
* CLI: ``model_signing sign key MODEL --private_key K --signature S`` and ``model_signing verify key
  MODEL --signature S --public_key P``, a whole process each (interpreter start and imports
  included; the time of ``model_signing --help`` is in the notes).

Both sides hash files in parallel threads (ours: CPU count + 4, at most 32; OpenSSF: the
ThreadPoolExecutor default). MB/s are decimal (model bytes / wall seconds). Target: ours >= the
API on signing. Calls are interleaved (order rotated per round).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._common import Row, Target, median, paired_ratio, run_timed, tmp_root

GROUP = "modelsign"
MiB = 1 << 20
MB = 1_000_000
SMALL_FILES = 200
CLI = Path(sys.executable).parent / "model_signing"


def _write_model(root: Path, big_mib: int, shard_mib: int, shards: int) -> int:
    """The model directory; returns its size in bytes."""
    block = os.urandom(16 * MiB)  # SHA-256's speed does not depend on the content; only the bytes count

    def write(path: Path, size: int, seed: int) -> None:
        with open(path, "wb") as fh:
            written = 0
            while written < size:
                chunk = min(len(block), size - written)
                start = (seed * 7919 + written) % (len(block) - chunk + 1)
                fh.write(seed.to_bytes(8, "little") + block[start + 8 : start + chunk])
                written += chunk

    root.mkdir(parents=True)
    write(root / "model-00000.safetensors", big_mib * MiB, 0)
    for i in range(1, shards + 1):
        write(root / f"model-{i:05d}.safetensors", shard_mib * MiB, i)
    for i in range(SMALL_FILES):
        folder = root / ("tokenizer" if i % 4 == 0 else "config" if i % 4 == 1 else "")
        folder.mkdir(exist_ok=True)
        write(folder / f"part-{i:03d}.json", 1024 * (1 + (i * 37) % 64), 1000 + i)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # ignored by both sides
    os.sync()  # no background writeback while we measure
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)


def run(quick: bool) -> list[Row]:
    from model_signing import signing as openssf_signing
    from model_signing import verifying as openssf_verifying

    from airflow_mlsecops.evidence.keys import SigningKey, load_trusted_keys
    from airflow_mlsecops.evidence.model_signing import sign_model, verify_model

    rounds = 3 if quick else 5
    big_mib, shard_mib = (128, 16) if quick else (512, 64)
    work = tmp_root() / "modelsign"
    model = work / "model"
    private, public = work / "keys" / "bench.pem", work / "keys" / "bench.pub.pem"
    sigs = work / "sigs"
    ours_sig, api_sig, cli_sig = sigs / "ours.sig", sigs / "api.sig", sigs / "cli.sig"
    env = dict(os.environ)
    try:
        total = _write_model(model, big_mib, shard_mib, 7)
        SigningKey.generate("ecdsa-p256").write_pair(private, public)
        sigs.mkdir(parents=True)

        def ours_sign() -> None:
            key = SigningKey.from_file(private)
            ours_sig.write_bytes(sign_model(model, key, signature_path=ours_sig))

        def api_sign() -> None:
            openssf_signing.Config().use_elliptic_key_signer(private_key=private).sign(model, api_sig)

        def cli_sign() -> None:
            run_timed([str(CLI), "sign", "key", str(model), "--private_key", str(private), "--signature", str(cli_sig)], env=env)

        def ours_verify(sig: Path = ours_sig) -> None:
            verify_model(model, sig.read_bytes(), load_trusted_keys([public]), signature_path=sig)

        def api_verify(sig: Path = api_sig) -> None:
            openssf_verifying.Config().use_elliptic_key_verifier(public_key=public).verify(model, sig)

        def cli_verify() -> None:
            run_timed([str(CLI), "verify", "key", str(model), "--signature", str(cli_sig), "--public_key", str(public)], env=env)

        cases: dict[str, Callable[[], None]] = {
            "ours_sign": ours_sign,
            "api_sign": api_sign,
            "cli_sign": cli_sign,
            "ours_verify": ours_verify,
            "api_verify": api_verify,
            "cli_verify": cli_verify,
        }
        for fn in cases.values():  # warm-up (page cache, imports), in dependency order
            fn()
        ours_verify(api_sig)  # interoperability both ways: the comparison is of the same work
        api_verify(ours_sig)
        ours_verify(cli_sig)
        startup = median([run_timed([str(CLI), "--help"], env=env).wall for _ in range(3)])

        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for r in range(rounds):
            # a round signs before it verifies (verification reads the signature just written), so rotate
            # within each half and alternate which half of the peers leads
            for half in (names[:3], names[3:]):
                for name in half[r % 3 :] + half[: r % 3]:
                    start = time.perf_counter()
                    cases[name]()
                    times[name].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mb_s(name: str) -> float:
        return median([total / t / MB for t in times[name]])

    size = f"{total / 2**30:.2f} GiB" if total >= 2**29 else f"{total / MiB:,.0f} MiB"
    layout = f"1 x {big_mib} + 7 x {shard_mib} MiB + {SMALL_FILES} small files"
    wall = {name: median(ts) * 1e3 for name, ts in times.items()}
    rows: list[Row] = []
    for op in ("sign", "verify"):
        rows.append(
            Row(
                group=GROUP,
                name=f"OpenSSF {op}, {size} model",
                unit="MB/s",
                ours=mb_s(f"ours_{op}"),
                peer=mb_s(f"api_{op}"),
                peer_label=(
                    "model_signing.signing.Config().use_elliptic_key_signer(...).sign (API, in process)"
                    if op == "sign"
                    else "model_signing.verifying.Config().use_elliptic_key_verifier(...).verify (API, in process)"
                ),
                ratio=paired_ratio(times[f"api_{op}"], times[f"ours_{op}"]),
                target=Target("ratio", ">=", 1.0) if op == "sign" else None,
                runs=rounds,
                notes=(
                    f"{layout}; wall: ours {wall[f'ours_{op}']:,.0f} ms vs {wall[f'api_{op}']:,.0f} ms; key loaded from PEM "
                    f"{'and bundle written' if op == 'sign' else 'and bundle read'} on both sides; {os.cpu_count()} CPUs"
                ),
                samples={"ours_s": times[f"ours_{op}"], "peer_s": times[f"api_{op}"]},
            )
        )
    for op in ("sign", "verify"):
        rows.append(
            Row(
                group=GROUP,
                name=f"OpenSSF {op}, {size} model, vs the CLI",
                unit="MB/s",
                ours=mb_s(f"ours_{op}"),
                peer=mb_s(f"cli_{op}"),
                peer_label=f"model_signing {op} key (CLI, one process per call)",
                ratio=paired_ratio(times[f"cli_{op}"], times[f"ours_{op}"]),
                runs=rounds,
                notes=(
                    f"wall: ours {wall[f'ours_{op}']:,.0f} ms (in process) vs CLI {wall[f'cli_{op}']:,.0f} ms; "
                    f"the CLI's start alone (model_signing --help): {startup * 1e3:,.0f} ms"
                ),
                samples={"ours_s": times[f"ours_{op}"], "peer_s": times[f"cli_{op}"]},
            )
        )
    return rows
