"""Row 3: DSSE envelope sign and verify (ops/s) on a ~2 KiB in-toto statement, ECDSA P-256 (the
default) and Ed25519, vs bare ``cryptography`` signing and verifying the very same PAE bytes.

The ratio is our overhead: PAE encoding, key-id lookup, envelope objects.
"""

from __future__ import annotations

from benchmarks._common import Row, Target, calibrate, interleaved, looped, median, paired_ratio

GROUP = "signing"
RATIO_TARGET = 0.8  # a thin wrapper keeps >= 80% of the primitive's rate


def run(quick: bool) -> list[Row]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from airflow_mlsecops.evidence.dsse import INTOTO_PAYLOAD_TYPE, pae, sign_envelope, verify_envelope
    from airflow_mlsecops.evidence.keys import SigningKey
    from benchmarks._fixtures import statement_payload

    rounds = 3 if quick else 9
    payload = statement_payload()
    message = pae(INTOTO_PAYLOAD_TYPE, payload)
    rows: list[Row] = []
    for key_type, label in (("ecdsa-p256", "ECDSA P-256"), ("ed25519", "Ed25519")):
        key = SigningKey.generate(key_type)
        trusted = {key.keyid: key.public_key}
        envelope = sign_envelope(payload, key)
        verify_envelope(envelope, trusted)
        raw_private = key.key
        raw_public = raw_private.public_key()
        if isinstance(raw_private, ed25519.Ed25519PrivateKey):
            assert isinstance(raw_public, ed25519.Ed25519PublicKey)
            sig = raw_private.sign(message)

            def bare_sign(k=raw_private) -> bytes:
                return k.sign(message)

            def bare_verify(k=raw_public, s=sig) -> None:
                k.verify(s, message)
        else:
            sig = raw_private.sign(message, ec.ECDSA(hashes.SHA256()))

            def bare_sign(k=raw_private) -> bytes:
                return k.sign(message, ec.ECDSA(hashes.SHA256()))

            def bare_verify(k=raw_public, s=sig) -> None:
                k.verify(s, message, ec.ECDSA(hashes.SHA256()))

        def ours_sign(k=key) -> object:
            return sign_envelope(payload, k)

        def ours_verify(e=envelope, t=trusted) -> object:
            return verify_envelope(e, t)

        def keyid(k=key) -> str:
            return k.keyid

        funcs = {
            "ours_sign": ours_sign,
            "bare_sign": bare_sign,
            "ours_verify": ours_verify,
            "bare_verify": bare_verify,
            "keyid": keyid,
        }
        counts = {name: calibrate(fn) for name, fn in funcs.items()}
        times = interleaved({name: looped(fn, counts[name]) for name, fn in funcs.items()}, rounds, warmup=0)
        rates = {name: [counts[name] / t for t in ts] for name, ts in times.items()}
        rate = {name: median(values) for name, values in rates.items()}
        keyid_us = 1e6 / rate["keyid"]
        for op in ("sign", "verify"):
            ours, bare = rate[f"ours_{op}"], rate[f"bare_{op}"]
            note = f"payload {len(payload)} B, PAE {len(message)} B; {counts[f'ours_{op}']} calls per round"
            if op == "sign":
                spent = 1e6 / ours - 1e6 / bare
                note += f"; overhead {spent:.1f} us/op, of which SigningKey.keyid (recomputed per sign) {keyid_us:.1f} us"
            rows.append(
                Row(
                    group=GROUP,
                    name=f"DSSE {op}, {label} (~2 KiB statement)",
                    unit="ops/s",
                    ours=ours,
                    peer=bare,
                    peer_label=f"bare cryptography {op}(PAE)",
                    ratio=paired_ratio(rates[f"ours_{op}"], rates[f"bare_{op}"]),
                    target=Target("ratio", ">=", RATIO_TARGET),
                    runs=rounds,
                    notes=note,
                )
            )
    return rows
