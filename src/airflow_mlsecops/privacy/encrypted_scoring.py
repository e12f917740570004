"""Encrypted scoring of production batches for linear models (TenSEAL, CKKS).

The data owner encrypts a batch with a key only it holds; the scoring side computes the linear
part of the model (``w·x + b``, scikit-learn's ``decision_function``, or ``predict`` for a
regressor) on the ciphertexts and returns encrypted scores; only the data owner can decrypt them.
The scoring side never holds the secret key: it works with :func:`public_context`, and refuses a
context that carries the secret key.

Packing is by column: one CKKS ciphertext holds one feature for up to ``poly_modulus_degree / 2``
rows (4,096 with the defaults), so the score is ``sum_j w_j * col_j + b``: one plaintext
multiplication per feature and no rotation, hence no Galois keys (tens of MB) in the public
context. A logistic model's sigmoid (or a softmax) is applied by the data owner after decryption
(:func:`probabilities`), exactly: a polynomial approximation inside the ciphertext would need two
more multiplicative levels, relinearisation keys and bigger parameters, and be off at the tails.

What it protects and what it does not: the scoring side learns nothing about the values (only
the feature names and the row count, which travel in clear); the data owner learns the scores
(and, from enough of them, the linear model); the weights are in plaintext on the scoring side;
CKKS is approximate (about 1e-6 absolute error here). The digests in the container catch a
corrupted or truncated file; CKKS ciphertexts are malleable, so they do not prove who made it.

Data owner and scoring side, end to end (needs ``pip install 'airflow-mlsecops[he]'``)::

    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from airflow_mlsecops.privacy import encrypted_scoring as he
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]])
    >>> model = LinearRegression().fit(x, np.array([1.0, 2.0, 4.0]))
    >>> context = he.make_context()                                  # data owner: keeps this
    >>> batch = he.encrypt_batch(context, x, ["a", "b"])             # data owner
    >>> scored = he.score_encrypted(he.public_context(context), batch, model)   # scoring side
    >>> bool(np.allclose(he.decrypt_scores(context, scored), model.predict(x), atol=1e-4))
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from airflow_mlsecops import gate_names
from airflow_mlsecops.exceptions import ConfigurationError, GateError

if TYPE_CHECKING:
    import numpy as np

    from airflow_mlsecops.evidence.models import PipelineContext
    from airflow_mlsecops.gates.base import GateOutcome

#: The name the scoring step's evidence is recorded under (not a policy gate: it judges nothing).
ENCRYPTED_SCORING: Final = gate_names.ENCRYPTED_SCORING
INSTALL_HINT: Final = "pip install 'airflow-mlsecops[he]'"

POLY_MODULUS_DEGREE: Final = 8192
#: 60-bit first and special primes around two 40-bit primes: 200 bits, within SEAL's 128-bit security
#: bound for degree 8192 (218 bits), and one level to spare after the single rescale scoring needs.
COEFF_MOD_BIT_SIZES: Final[tuple[int, ...]] = (60, 40, 40, 60)
GLOBAL_SCALE_BITS: Final = 40
#: Inputs are refused above this magnitude: CKKS keeps about 20 bits before the point at this scale.
MAX_ABS_VALUE: Final = float(2**30)

FORMAT: Final = "airflow-mlsecops/ckks-columns"
FORMAT_VERSION: Final = 1
BATCH, SCORES = "encrypted-batch", "encrypted-scores"
_MAGIC: Final = b"MLSECOPS-CKKS\x00"
_MAX_HEADER: Final = 1 << 20
_MAX_BLOB: Final = 1 << 28

#: Linear estimators scored exactly as scikit-learn does: ``decision_function`` for classifiers,
#: ``predict`` for regressors. Matched by exact type: a subclass may override what it computes.
CLASSIFIERS: Final[tuple[str, ...]] = (
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn.linear_model._ridge.RidgeClassifier",
    "sklearn.svm._classes.LinearSVC",
)
REGRESSORS: Final[tuple[str, ...]] = (
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.linear_model._coordinate_descent.Lasso",
    "sklearn.linear_model._coordinate_descent.ElasticNet",
    "sklearn.linear_model._stochastic_gradient.SGDRegressor",
)
#: Affine preprocessing a pipeline may put before the estimator (folded into the weights).
SCALERS: Final[tuple[str, ...]] = (
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.preprocessing._data.MaxAbsScaler",
)
_PIPELINE: Final = "sklearn.pipeline.Pipeline"
_LOGIT_LINK: Final = ("sklearn.linear_model._logistic.LogisticRegression",)


class UnsupportedModel(ConfigurationError):
    """The model is not one whose score is a linear function of its inputs: it cannot be scored encrypted."""


class InvalidCiphertext(GateError):
    """An encrypted batch or score file is corrupt, truncated, of another format or for another key."""

    finding = "invalid-ciphertext"


def _tenseal() -> Any:
    try:
        import tenseal
    except ImportError as exc:
        raise ConfigurationError(f"encrypted scoring needs TenSEAL: {INSTALL_HINT}") from exc
    return tenseal


def _qualname(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


# --------------------------------------------------------------------------------------------
# Keys and parameters


@dataclass(frozen=True)
class CkksParameters:
    """The CKKS parameters of a context, read from the context itself (never from a file's claims).

    :param poly_modulus_degree: ring dimension; a ciphertext holds half as many values (``slots``).
    :param coeff_mod_bit_sizes: bit sizes of the coefficient modulus primes, the special prime last.
    :param global_scale_bits: log2 of the scale values are encoded at.
    :param has_secret_key: whether this context can decrypt (a scoring side's must not).
    :param has_galois_keys: whether rotation keys are present (column packing needs none).
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    global_scale_bits: float
    has_secret_key: bool
    has_galois_keys: bool

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": "CKKS",
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "coeff_modulus_bits": sum(self.coeff_mod_bit_sizes),
            "global_scale_bits": self.global_scale_bits,
            "slots": self.slots,
            "has_secret_key": self.has_secret_key,
            "has_galois_keys": self.has_galois_keys,
        }


def context_parameters(context: Any) -> CkksParameters:
    """The :class:`CkksParameters` of a TenSEAL context."""
    data = context.seal_context().data
    key = data.key_context_data()
    parms = key.parms()
    if getattr(parms.scheme(), "name", None) != "CKKS":
        raise ConfigurationError(f"the context uses {parms.scheme()}, not CKKS")
    totals, level = [], data.first_context_data()
    while level is not None:
        totals.append(int(level.total_coeff_modulus_bit_count()))
        level = level.next_context_data()
    # Each level drops one prime: the differences of the chain's totals are the primes' sizes.
    primes = [totals[-1]] + [totals[i] - totals[i + 1] for i in range(len(totals) - 2, -1, -1)]
    special = int(key.total_coeff_modulus_bit_count()) - totals[0]
    return CkksParameters(
        poly_modulus_degree=int(parms.poly_modulus_degree()),
        coeff_mod_bit_sizes=(*primes, special),
        global_scale_bits=round(math.log2(context.global_scale), 3),
        has_secret_key=bool(context.has_secret_key()),
        has_galois_keys=bool(context.has_galois_keys()),
    )


def make_context(
    *,
    poly_modulus_degree: int = POLY_MODULUS_DEGREE,
    coeff_mod_bit_sizes: Sequence[int] = COEFF_MOD_BIT_SIZES,
    global_scale_bits: int = GLOBAL_SCALE_BITS,
) -> Any:
    """A fresh CKKS context with its secret key: the data owner's, never to leave it.

    SEAL refuses parameters below 128-bit security. No Galois or relinearisation keys are needed
    for column-packed linear scoring, and :func:`public_context` leaves them out.

    :raises ConfigurationError: without TenSEAL, or for parameters SEAL or scoring cannot use.
    """
    ts = _tenseal()
    bits = [int(b) for b in coeff_mod_bit_sizes]
    if len(bits) < 3:
        raise ConfigurationError("coeff_mod_bit_sizes needs at least 3 primes (data, one rescale, special)")
    if not 20 <= int(global_scale_bits) <= min(bits[1:-1]):
        raise ConfigurationError(
            f"global_scale_bits must be at least 20 and at most the middle primes' size, not {global_scale_bits}"
        )
    try:
        context = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=int(poly_modulus_degree), coeff_mod_bit_sizes=bits)
    except ValueError as exc:
        raise ConfigurationError(f"SEAL refused the CKKS parameters ({poly_modulus_degree}, {bits}): {exc}") from exc
    context.global_scale = 2.0 ** int(global_scale_bits)
    return context


def public_context(context: Any) -> bytes:
    """The context serialized without its secret key (public key only): what the scoring side gets."""
    return bytes(context.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False))


def secret_context(context: Any) -> bytes:
    """The context serialized with its secret key: the data owner's key file. Keep it private."""
    return bytes(context.serialize(save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False))


def load_context(data: bytes) -> Any:
    """A context from :func:`public_context` or :func:`secret_context` bytes.

    :raises InvalidCiphertext: the bytes are not a TenSEAL context.
    """
    ts = _tenseal()
    try:
        return ts.context_from(bytes(data))
    except Exception as exc:
        raise InvalidCiphertext(f"not a TenSEAL context ({type(exc).__name__}: {exc})") from exc


def context_digest(context: Any) -> str:
    """SHA-256 of the public part of ``context``: the key id batches and scores are bound to."""
    return hashlib.sha256(public_context(context)).hexdigest()


# --------------------------------------------------------------------------------------------
# The container: magic, a JSON header, then length-prefixed ciphertexts whose digests the header names


def _pack(header: Mapping[str, Any], blobs: Sequence[bytes]) -> bytes:
    meta = dict(header, blobs=[hashlib.sha256(b).hexdigest() for b in blobs])
    text = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    parts = [_MAGIC, struct.pack(">I", len(text)), text]
    for blob in blobs:
        parts += [struct.pack(">Q", len(blob)), blob]
    return b"".join(parts)


def read_header(data: bytes, kind: str | None = None) -> dict[str, Any]:
    """The header of an encrypted batch or score file (feature names, row count, key id; no values).

    :raises InvalidCiphertext: not such a file, or of another ``kind``.
    """
    return _unpack(data, kind)[0]


def _unpack(data: bytes, kind: str | None) -> tuple[dict[str, Any], list[bytes]]:
    data = bytes(data)
    what = kind or "encrypted file"
    if not data.startswith(_MAGIC):
        raise InvalidCiphertext(f"not an {what} of airflow-mlsecops (wrong magic bytes)")
    pos = len(_MAGIC)
    try:
        (size,) = struct.unpack_from(">I", data, pos)
        if size > _MAX_HEADER:
            raise InvalidCiphertext(f"{what}: header of {size} bytes is too large")
        header = json.loads(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    except (struct.error, ValueError) as exc:
        raise InvalidCiphertext(f"{what}: unreadable header ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise InvalidCiphertext(f"{what}: unknown format (expected {FORMAT} version {FORMAT_VERSION})")
    if kind is not None and header.get("kind") != kind:
        raise InvalidCiphertext(f"expected an {kind}, got an {header.get('kind')!r}")
    for name, allowed in _ALLOWED_VALUES.get(str(header.get("kind")), {}).items():
        if header.get(name) not in allowed:
            raise InvalidCiphertext(f"{what}: header field {name!r} is {header.get(name)!r}, not one of {', '.join(allowed)}")
    digests = header.get("blobs")
    if not isinstance(digests, list) or not digests:
        raise InvalidCiphertext(f"{what}: the header lists no ciphertexts")
    blobs: list[bytes] = []
    for index, digest in enumerate(digests):
        if pos + 8 > len(data):
            raise InvalidCiphertext(f"{what} is truncated: ciphertext {index} of {len(digests)} is missing")
        (length,) = struct.unpack_from(">Q", data, pos)
        if length > _MAX_BLOB or pos + 8 + length > len(data):
            raise InvalidCiphertext(f"{what} is truncated or corrupt at ciphertext {index}")
        blob = data[pos + 8 : pos + 8 + length]
        if hashlib.sha256(blob).hexdigest() != digest:
            raise InvalidCiphertext(f"{what}: ciphertext {index} does not match its digest (altered or corrupted)")
        blobs.append(blob)
        pos += 8 + length
    if pos != len(data):
        raise InvalidCiphertext(f"{what}: {len(data) - pos} unexpected bytes after the last ciphertext")
    return header, blobs


#: Header fields with a closed set of values, per kind of file (anything else is not a file this code wrote).
_ALLOWED_VALUES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    BATCH: {"packing": ("column",)},
    SCORES: {"shape": ("1d", "2d"), "link": ("logit", "identity"), "output": ("decision_function", "predict")},
}


def _int_list(header: Mapping[str, Any], key: str) -> list[int]:
    values = header.get(key)
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise InvalidCiphertext(f"header field {key!r} must be a list of positive integers")
    return values


def _vectors(context: Any, header: Mapping[str, Any], blobs: Sequence[bytes], per_chunk: int) -> list[list[Any]]:
    """The ciphertexts, ``per_chunk`` per chunk of rows, each checked to hold that chunk's row count."""
    ts = _tenseal()
    chunks = _int_list(header, "chunks")
    if sum(chunks) != header.get("rows"):
        raise InvalidCiphertext("the header's row counts do not add up")
    if len(blobs) != len(chunks) * per_chunk:
        raise InvalidCiphertext(f"{len(blobs)} ciphertexts for {len(chunks)} chunks of {per_chunk}")
    out: list[list[Any]] = []
    for c, rows in enumerate(chunks):
        row: list[Any] = []
        for j in range(per_chunk):
            index = c * per_chunk + j
            try:
                vector = ts.ckks_vector_from(context, blobs[index])
            except Exception as exc:
                raise InvalidCiphertext(f"ciphertext {index} is not a CKKS vector ({exc})") from exc
            if vector.size() != rows:
                raise InvalidCiphertext(f"ciphertext {index} holds {vector.size()} values, the header says {rows}")
            row.append(vector)
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------
# Data owner: encrypt, decrypt


def encrypt_batch(context: Any, data: Any, features: Sequence[str]) -> bytes:
    """Encrypt the ``features`` columns of ``data`` (a DataFrame, or an array in that column order).

    One ciphertext per feature per chunk of up to ``slots`` rows. Encrypting needs only the public
    key, so a public context encrypts too (for an ingestion service): only the secret key decrypts.

    :raises ConfigurationError: no features, a missing column, a non-numeric, non-finite or too
        large value, or no rows.
    """
    import numpy as np

    features = [str(f) for f in features]
    if not features or len(set(features)) != len(features):
        raise ConfigurationError("features must name at least one column, each once")
    if hasattr(data, "columns"):
        missing = [f for f in features if f not in data.columns]
        if missing:
            raise ConfigurationError(f"the batch has no column(s) {', '.join(missing)}")
        data = data[features]
    try:
        matrix = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"the batch's features must be numeric: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[1] != len(features):
        raise ConfigurationError(f"expected a table of {len(features)} feature column(s), got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ConfigurationError("the batch has no rows")
    if not np.isfinite(matrix).all():
        raise ConfigurationError("the batch holds missing or infinite values: impute them before encrypting")
    if np.abs(matrix).max() > MAX_ABS_VALUE:
        raise ConfigurationError(f"a value exceeds {MAX_ABS_VALUE:.0f} in magnitude: CKKS would lose it at this scale")
    ts = _tenseal()
    slots = context_parameters(context).slots
    blobs, chunks = [], []
    for start in range(0, matrix.shape[0], slots):
        part = matrix[start : start + slots]
        chunks.append(int(part.shape[0]))
        blobs += [ts.ckks_vector(context, part[:, j].tolist()).serialize() for j in range(len(features))]
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": BATCH,
        "packing": "column",
        "features": features,
        "rows": int(matrix.shape[0]),
        "chunks": chunks,
        "context_sha256": context_digest(context),
    }
    return _pack(header, blobs)


def decrypt_scores(context: Any, scored: bytes, *, batch: bytes | None = None) -> np.ndarray:
    """The scores, decrypted: shape ``(rows,)``, or ``(rows, outputs)`` for a multi-output model.

    :param batch: the encrypted batch the data owner sent: if given, scores computed from any
        other input are refused (the score file names its input's SHA-256).
    :raises InvalidCiphertext: not a score file, scores encrypted under another key, or of another batch.
    :raises ConfigurationError: ``context`` holds no secret key.
    """
    import numpy as np

    if not context.has_secret_key():
        raise ConfigurationError("decrypting needs the data owner's context with its secret key")
    header, blobs = _unpack(scored, SCORES)
    if header.get("context_sha256") != context_digest(context):
        raise InvalidCiphertext("these scores were encrypted under another key than this context's")
    if batch is not None and header.get("input_sha256") != hashlib.sha256(bytes(batch)).hexdigest():
        raise InvalidCiphertext("these scores were computed from another encrypted batch than the one given")
    outputs = header.get("outputs")
    if not isinstance(outputs, int) or isinstance(outputs, bool) or outputs < 1:
        raise InvalidCiphertext("header field 'outputs' must be a positive integer")
    vectors = _vectors(context, header, blobs, outputs)
    columns = [np.concatenate([np.asarray(row[k].decrypt()) for row in vectors]) for k in range(outputs)]
    result = np.stack(columns, axis=1)
    return result[:, 0] if header.get("shape") == "1d" else result


def probabilities(scores: np.ndarray) -> np.ndarray:
    """A logistic model's probabilities from its decrypted decision values (the data owner's step).

    Binary (1-d scores): the probability of the positive class, ``expit(s)``. Multiclass (2-d):
    the softmax per row, as ``LogisticRegression.predict_proba`` computes it.
    """
    import numpy as np
    from scipy.special import expit, softmax

    scores = np.asarray(scores, dtype=np.float64)
    return np.asarray(expit(scores) if scores.ndim == 1 else softmax(scores, axis=1))


# --------------------------------------------------------------------------------------------
# Scoring side: the linear part of the model, computed on ciphertexts


@dataclass(frozen=True)
class LinearParts:
    """A model's score as ``x @ weights.T + intercept`` over ``features`` (preprocessing folded in).

    :param model_type: the estimator's class (``sklearn.linear_model._logistic.LogisticRegression``),
        with its pipeline's scalers before it.
    :param output: ``decision_function`` (classifiers) or ``predict`` (regressors).
    :param link: ``logit`` when the data owner turns scores into probabilities, else ``identity``.
    """

    weights: Any  # np.ndarray (outputs, features)
    intercept: Any  # np.ndarray (outputs,)
    features: tuple[str, ...] | None
    model_type: str
    output: str
    one_dimensional: bool
    steps: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """What the evidence says about the model (its type and shape; the weights stay out)."""
        return {
            "model_type": self.model_type,
            "pipeline_steps": list(self.steps),
            "output": self.output,
            "link": "logit" if self.model_type in _LOGIT_LINK else "identity",
            "outputs": int(self.weights.shape[0]),
            "n_features": int(self.weights.shape[1]),
        }


def linear_parts(model: Any) -> LinearParts:
    """The linear map a supported model computes; any other model is refused.

    Supported: :data:`CLASSIFIERS` and :data:`REGRESSORS`, alone or as the last step of a
    ``Pipeline`` whose earlier steps are :data:`SCALERS` (a ``MinMaxScaler`` only without ``clip``).

    :raises UnsupportedModel: naming the type that cannot be scored as a linear function.
    """
    import numpy as np

    steps: list[tuple[str, Any]]
    if _qualname(model) == _PIPELINE:
        steps = [(str(name), step) for name, step in model.steps if step is not None and step != "passthrough"]
    else:
        steps = [("model", model)]
    if not steps:
        raise UnsupportedModel("the pipeline has no estimator")
    final = steps[-1][1]
    kind = _qualname(final)
    if kind not in CLASSIFIERS + REGRESSORS:
        raise UnsupportedModel(
            f"{kind} is not a linear model that encrypted scoring supports (supported: "
            f"{', '.join(k.rsplit('.', 1)[1] for k in CLASSIFIERS + REGRESSORS)}, after "
            f"{', '.join(k.rsplit('.', 1)[1] for k in SCALERS)} in a Pipeline)"
        )
    if not hasattr(final, "coef_"):
        raise UnsupportedModel(f"{kind} is not fitted")
    coef = np.asarray(final.coef_, dtype=np.float64)
    one_dimensional = coef.ndim == 1 or (kind in CLASSIFIERS and coef.shape[0] == 1)
    weights = np.atleast_2d(coef)
    intercept = np.broadcast_to(np.asarray(final.intercept_, dtype=np.float64).reshape(-1), (weights.shape[0],)).copy()
    # Fold the scalers in, last first: z = x * a + c gives w·z + b = (w * a)·x + (b + w·c).
    for name, step in reversed(steps[:-1]):
        a, c = _affine(name, step, weights.shape[1])
        intercept = intercept + weights @ c
        weights = weights * a
    if not (np.isfinite(weights).all() and np.isfinite(intercept).all()):
        raise UnsupportedModel(f"{kind} has non-finite weights")
    names = getattr(model, "feature_names_in_", None)
    return LinearParts(
        weights=weights,
        intercept=intercept,
        features=tuple(str(n) for n in names) if names is not None else None,
        model_type=kind,
        output="decision_function" if kind in CLASSIFIERS else "predict",
        one_dimensional=bool(one_dimensional),
        steps=tuple(_qualname(s) for _, s in steps[:-1]),
    )


def _affine(name: str, step: Any, width: int) -> tuple[Any, Any]:
    """``(a, c)`` with ``step.transform(x) == x * a + c``."""
    import numpy as np

    kind = _qualname(step)
    ones, zeros = np.ones(width), np.zeros(width)
    if kind == SCALERS[0]:  # StandardScaler: (x - mean) / scale
        scale = np.asarray(step.scale_, dtype=np.float64) if getattr(step, "scale_", None) is not None else ones
        mean = np.asarray(step.mean_, dtype=np.float64) if getattr(step, "with_mean", True) and step.mean_ is not None else zeros
        return 1.0 / scale, -mean / scale
    if kind == SCALERS[1]:  # MinMaxScaler: x * scale + min, unless clipped (not linear)
        if getattr(step, "clip", False):
            raise UnsupportedModel(f"pipeline step {name!r}: MinMaxScaler(clip=True) is not linear")
        return np.asarray(step.scale_, dtype=np.float64), np.asarray(step.min_, dtype=np.float64)
    if kind == SCALERS[2]:  # MaxAbsScaler: x / scale
        return 1.0 / np.asarray(step.scale_, dtype=np.float64), zeros
    raise UnsupportedModel(
        f"pipeline step {name!r} ({kind}) is not an affine scaler that encrypted scoring can fold into the weights"
    )


def score_encrypted(public_context_bytes: bytes, encrypted: bytes, model: Any) -> bytes:
    """Score an encrypted batch with ``model`` without decrypting anything: the encrypted scores.

    The columns are matched to the model's features by name (``feature_names_in_``), or taken in
    order when the model was fitted without names. Extra encrypted columns are left unused.

    :raises UnsupportedModel: ``model`` is not a supported linear model (see :func:`linear_parts`).
    :raises ConfigurationError: the context holds the secret key, or the batch lacks a feature.
    :raises InvalidCiphertext: the batch is corrupt, truncated or not for this context.
    """
    return score_with_details(public_context_bytes, encrypted, model)[0]


def score_with_details(public_context_bytes: bytes, encrypted: bytes, model: Any) -> tuple[bytes, dict[str, Any]]:
    """:func:`score_encrypted`, and what the evidence records about it (digests, parameters, model type)."""
    parts = linear_parts(model)  # refuse a model before any ciphertext is read
    context = load_context(public_context_bytes)
    if context.has_secret_key():
        raise ConfigurationError(
            "the context given to the scoring side holds the secret key: the data owner must send public_context() only"
        )
    params = context_parameters(context)
    context_sha = hashlib.sha256(bytes(public_context_bytes)).hexdigest()
    header, blobs = _unpack(encrypted, BATCH)
    if header.get("context_sha256") != context_sha:
        raise InvalidCiphertext("the batch was encrypted under another key than the public context given")
    features = header.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise InvalidCiphertext("header field 'features' must be a list of column names")
    if parts.features is not None:
        missing = [f for f in parts.features if f not in features]
        if missing:
            raise ConfigurationError(f"the encrypted batch lacks the model's feature(s) {', '.join(missing)}")
        order = [features.index(f) for f in parts.features]
    elif len(features) == parts.weights.shape[1]:
        order = list(range(len(features)))
    else:
        raise ConfigurationError(f"the model takes {parts.weights.shape[1]} features, the batch has {len(features)}")
    chunks = _int_list(header, "chunks")
    if sum(chunks) != header.get("rows") or any(rows > params.slots for rows in chunks):
        raise InvalidCiphertext("the header's row counts do not add up")
    ts = _tenseal()
    out: list[bytes] = []
    for c, row in enumerate(_vectors(context, header, blobs, len(features))):
        for k in range(parts.weights.shape[0]):
            acc = None
            for j, column in enumerate(order):
                term = row[column] * float(parts.weights[k, j])
                acc = term if acc is None else acc + term
            bias = [float(parts.intercept[k])] * chunks[c]
            out.append((acc + bias if acc is not None else ts.ckks_vector(context, bias)).serialize())
    scores_header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": SCORES,
        "rows": header["rows"],
        "chunks": chunks,
        "outputs": int(parts.weights.shape[0]),
        "shape": "1d" if parts.one_dimensional else "2d",
        "context_sha256": context_sha,
        "input_sha256": hashlib.sha256(bytes(encrypted)).hexdigest(),
        **{key: value for key, value in parts.to_dict().items() if key in ("output", "link")},
    }
    scored = _pack(scores_header, out)
    details = {
        "ckks": params.to_dict(),
        "model": parts.to_dict(),
        "rows": int(header["rows"]),
        "chunks": len(chunks),
        "features_used": [features[i] for i in order],
        "features_unused": [f for i, f in enumerate(features) if i not in order],
        "packing": "column",
        "context_sha256": context_sha,
        "input_sha256": scores_header["input_sha256"],
        "output_sha256": hashlib.sha256(scored).hexdigest(),
        "input_bytes": len(encrypted),
        "output_bytes": len(scored),
    }
    return scored, details


# --------------------------------------------------------------------------------------------
# The recorded step: evidence of what scored which encrypted input


def evaluate_encrypted_scoring(
    encrypted: bytes,
    public_context_bytes: bytes,
    model: Any,
    *,
    write_output: Callable[[bytes], str],
    input_name: str,
    context_name: str,
    model_subject: tuple[str, str] | None = None,
    model_ref: Mapping[str, Any] | None = None,
    context: PipelineContext | None = None,
) -> GateOutcome:
    """Score, write the encrypted scores with ``write_output`` and describe it as a gate result.

    ``passed`` when the scores were computed and written; ``error`` on anything else (an
    unsupported model, a corrupt batch, a context holding the secret key, a failed write), never
    a pass. The evidence names the encrypted input, the public context and the model by digest,
    the CKKS parameters and the model type; no plaintext value (none is ever seen here).

    :param write_output: stores the scored bytes and returns where (a path or URI).
    :param model_subject: ``(name, sha256)`` of the model artifact, if it has one.
    :param model_ref: the model's registry reference (requested, pinned uri, name, version, alias).
    """
    from airflow_mlsecops.evidence.models import Finding, Severity, Subject
    from airflow_mlsecops.gates.base import Evaluation, run_gate

    def body() -> Evaluation:
        scored, details = score_with_details(public_context_bytes, encrypted, model)
        location = write_output(scored)
        subjects = [
            Subject(name=input_name, sha256=details["input_sha256"]),
            Subject(name=context_name, sha256=details["context_sha256"]),
            Subject(name=location, sha256=details["output_sha256"]),
        ]
        if model_subject is not None:
            subjects.append(Subject(name=model_subject[0], sha256=model_subject[1]))
        details = {**details, "output": location, "model_ref": dict(model_ref or {})}
        ckks, model_name = details["ckks"], details["model"]["model_type"].rsplit(".", 1)[1]
        message = (
            f"{details['rows']} encrypted rows scored by {model_name} without decryption "
            f"(CKKS N={ckks['poly_modulus_degree']}, scale 2^{ckks['global_scale_bits']:g})"
        )
        return Evaluation(
            passed=True,
            summary=message,
            subjects=subjects,
            findings=[Finding(id=f"{ENCRYPTED_SCORING}.scored", severity=Severity.INFO, message=message, passed=True)],
            metrics={
                "rows": float(details["rows"]),
                "input_bytes": float(details["input_bytes"]),
                "output_bytes": float(details["output_bytes"]),
            },
            details=details,
            files={"encrypted_scoring.json": json.dumps(details, indent=2, sort_keys=True).encode()},
        )

    return run_gate(ENCRYPTED_SCORING, body, policy=_policy(), distributions=("tenseal", "scikit-learn"), context=context)


def _policy() -> dict[str, Any]:
    return {"packing": "column", "accepts": "public context only (no secret key)", "max_abs_value": MAX_ABS_VALUE}


def inputs_unavailable(error: BaseException, *, context: PipelineContext | None = None) -> GateOutcome:
    """The ``error`` outcome of a scoring step whose inputs could not be fetched or loaded."""
    from airflow_mlsecops.gates.base import raising, run_gate

    return run_gate(
        ENCRYPTED_SCORING, raising(error), policy=_policy(), distributions=("tenseal", "scikit-learn"), context=context
    )
