"""OpenSSF model signing: sign every file of a model, verify it before use, interoperable both ways.

The signature is the file the OpenSSF ``model_signing`` tool (``pip install model-signing``)
writes and reads: a Sigstore bundle v0.3 (``application/vnd.dev.sigstore.bundle.v0.3+json``)
whose DSSE envelope carries an in-toto Statement v1 with predicate type
``https://model_signing/signature/v1.0``, signed with an ECDSA key. A model signed here verifies
with ``model_signing verify key MODEL --signature model.sig --public_key key.pub``, and one signed
with ``model_signing sign key MODEL --private_key key.pem --signature model.sig`` verifies here.

>>> import tempfile
>>> from pathlib import Path
>>> from airflow_mlsecops.evidence.keys import SigningKey
>>> from airflow_mlsecops.evidence.model_signing import sign_model, verify_model
>>> model = Path(tempfile.mkdtemp()) / "model"
>>> model.mkdir()
>>> _ = (model / "weights.bin").write_bytes(b"\\x00" * 1024)
>>> _ = (model / "config.json").write_text('{"layers": 2}')
>>> key = SigningKey.generate()                      # ECDSA P-256
>>> bundle = sign_model(model, key)                  # the bytes of model.sig
>>> signature = verify_model(model, bundle, {key.keyid: key.public_key})
>>> sorted(signature.files)
['config.json', 'weights.bin']
>>> _ = (model / "config.json").write_text('{"layers": 3}')
>>> verify_model(model, bundle, {key.keyid: key.public_key})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
airflow_mlsecops.exceptions.DigestMismatch: ... config.json changed since it was signed ...

Where things live: :mod:`.manifest` lists and hashes the model's files, :mod:`.bundle` writes and
reads the signature file (what exactly is signed), :mod:`.signing` signs a model and
:mod:`.verifying` checks one (the checks, in order, and what is not supported). The gates that
record signing and verification as evidence are in :mod:`airflow_mlsecops.gates.model_signing`.
"""

from __future__ import annotations

from airflow_mlsecops.evidence.model_signing.bundle import (
    BUNDLE_MEDIA_TYPE,
    PREDICATE_TYPE,
    SIGNATURE_FILE,
    STATEMENT_TYPE,
    ModelSignature,
    public_key_hint,
)
from airflow_mlsecops.evidence.model_signing.manifest import DEFAULT_IGNORE_PATHS
from airflow_mlsecops.evidence.model_signing.signing import sign_model
from airflow_mlsecops.evidence.model_signing.verifying import verify_model

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "DEFAULT_IGNORE_PATHS",
    "PREDICATE_TYPE",
    "SIGNATURE_FILE",
    "STATEMENT_TYPE",
    "ModelSignature",
    "public_key_hint",
    "sign_model",
    "verify_model",
]
