"""Signed ledger checkpoints: the ledger's size and head hash at a moment, signed, kept outside the
ledger's database (a directory, or S3 with Object Lock), so that cutting the ledger's tail is caught.

>>> from airflow_mlsecops.evidence.checkpoint import write_checkpoint, verify_ledger
>>> written = write_checkpoint(ledger, settings=settings, to="s3://audit/ledger")   # doctest: +SKIP
>>> verify_ledger(ledger, settings=settings, trusted_keys=keys).describe()          # doctest: +SKIP

The hash chain alone cannot tell a ledger whose last rows were removed (together with their MLflow
copies) from a ledger that never had them. A checkpoint can: it is an in-toto statement, signed in
a DSSE envelope (payload type :data:`CHECKPOINT_PAYLOAD_TYPE`), naming the ledger (the hash of its
first entry), its size (the head's seq), the head entry's hash, when, and the signer's key id.

Writing verifies the chain first, from the newest trusted checkpoint (or from the genesis when
there is none): a broken chain is never signed.

Reading (the rule): checkpoints are named ``checkpoint-<size, 12 digits>-<UTC time>.dsse.json`` so
that names sort by size, then time. The newest one is used, and it must verify: a trusted key
signed it (valid at its signed time), its name agrees with its signed content, and it is a
checkpoint of this ledger. If it does not, verification fails (exit 1); an older checkpoint is
never used instead, since an attacker able to write the store could otherwise hide the newest one
behind a forgery. Older checkpoints are not read: the newest covers the ledger up to its size.
Files whose names do not follow the pattern are ignored. A configured store that holds no
checkpoint yet (a fresh installation) means a full walk, and the result says so; a checkpoint
named explicitly must exist.

Verifying against a checkpoint: the ledger must have at least ``size`` entries, all ``size`` rows
up to it (an index count: a deleted row shows), its first entry must be the checkpoint's ledger,
and the entry at ``size`` must carry exactly the checkpoint's head hash; the chain is then walked
from there to the head only (see
:meth:`~airflow_mlsecops.evidence.ledger.EvidenceLedger.verify_chain`). Rows before the checkpoint
are not re-hashed: a row changed in place there (its hash column left alone) is caught by a walk
that reads it (``from_seq``, ``full``), not by the incremental one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_mlsecops.config import Settings
from airflow_mlsecops.evidence.checkpoint_store import (
    CheckpointStore,
    LocalCheckpointStore,
    StoredCheckpoint,
    open_checkpoint_store,
)
from airflow_mlsecops.evidence.dsse import Envelope, sign_envelope, verify_envelope
from airflow_mlsecops.evidence.keys import SigningTime, VerifyingKey
from airflow_mlsecops.evidence.ledger import ChainAnchor, EvidenceLedger
from airflow_mlsecops.evidence.signers import Signer
from airflow_mlsecops.evidence.statement import STATEMENT_TYPE, canonical_json
from airflow_mlsecops.exceptions import (
    CheckpointMismatch,
    ConfigurationError,
    SignatureInvalid,
    VerificationError,
)

CHECKPOINT_PAYLOAD_TYPE = "application/vnd.airflow-mlsecops.ledger-checkpoint+json"
CHECKPOINT_PREDICATE = "https://airflow-mlsecops.dev/attestation/ledger-checkpoint/v1"
#: The subject name of a checkpoint statement; its digest is the head entry's hash.
CHECKPOINT_SUBJECT = "mlsecops-evidence-ledger"
_NAME_TIME = "%Y%m%dT%H%M%S.%fZ"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LedgerCheckpoint:
    """The signed content of a checkpoint.

    :param ledger_id: the hash of the ledger's first entry: which ledger this is.
    :param size: the head's seq when it was signed.
    :param head_hash: the head entry's hash.
    :param signed_at: when (UTC).
    :param keyid: the signer's key id.
    """

    ledger_id: str
    size: int
    head_hash: str
    signed_at: datetime
    keyid: str

    @property
    def name(self) -> str:
        """The file or object name: sorts by size, then time."""
        return f"checkpoint-{self.size:012d}-{self.signed_at.strftime(_NAME_TIME)}.dsse.json"

    @property
    def signed_at_text(self) -> str:
        return self.signed_at.isoformat(timespec="microseconds").replace("+00:00", "Z")

    def describe(self) -> str:
        return f"the checkpoint of {self.signed_at_text} signed by {self.keyid[:16]}"

    def statement(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": CHECKPOINT_SUBJECT, "digest": {"sha256": self.head_hash}}],
            "predicateType": CHECKPOINT_PREDICATE,
            "predicate": {
                "ledger": {"genesis_entry_sha256": self.ledger_id},
                "size": self.size,
                "head_entry_sha256": self.head_hash,
                "signed_at": self.signed_at_text,
                "signer_keyid": self.keyid,
            },
        }

    @classmethod
    def from_payload(cls, payload: bytes) -> LedgerCheckpoint:
        """Parse a checkpoint statement; :class:`VerificationError` if it is not one."""
        try:
            data = json.loads(payload)
            if data.get("_type") != STATEMENT_TYPE or data.get("predicateType") != CHECKPOINT_PREDICATE:
                raise VerificationError("not a ledger checkpoint statement")
            predicate = data["predicate"]
            checkpoint = cls(
                ledger_id=str(predicate["ledger"]["genesis_entry_sha256"]),
                size=predicate["size"],
                head_hash=str(predicate["head_entry_sha256"]),
                signed_at=datetime.fromisoformat(str(predicate["signed_at"]).replace("Z", "+00:00")),
                keyid=str(predicate["signer_keyid"]),
            )
            (subject,) = data["subject"]
            subject_hash = subject["digest"]["sha256"]
        except VerificationError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise VerificationError(f"malformed ledger checkpoint statement ({type(exc).__name__}: {exc})") from exc
        if not isinstance(checkpoint.size, int) or isinstance(checkpoint.size, bool) or checkpoint.size < 1:
            raise VerificationError(f"malformed ledger checkpoint: size {checkpoint.size!r}")
        if (
            not (_HEX64.match(checkpoint.head_hash) and _HEX64.match(checkpoint.ledger_id))
            or subject_hash != checkpoint.head_hash
        ):
            raise VerificationError("malformed ledger checkpoint: hashes are not sha256 hex, or the subject is not the head")
        if checkpoint.signed_at.tzinfo is None:
            raise VerificationError("malformed ledger checkpoint: signed_at has no time zone")
        return checkpoint


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint whose signature verified, and where it was read."""

    checkpoint: LedgerCheckpoint
    location: str
    key_origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "location": self.location,
            "size": cp.size,
            "head_hash": cp.head_hash,
            "ledger_id": cp.ledger_id,
            "signed_at": cp.signed_at_text,
            "keyid": cp.keyid,
        }


@dataclass(frozen=True)
class LedgerVerification:
    """What a ledger verification established.

    :param entries: the ledger's size (the head's seq).
    :param head_hash: the head entry's hash.
    :param rows_walked: rows read and re-hashed, from ``start_seq`` to the head.
    :param start_seq: where the walk started (1: the whole chain).
    :param checkpoint: the checkpoint the ledger agreed with, or None (a full walk, no checkpoint).
    :param note: why no checkpoint was used, when none was.
    """

    entries: int
    head_hash: str
    rows_walked: int = 0
    start_seq: int = 1
    checkpoint: TrustedCheckpoint | None = None
    note: str = ""

    def describe(self) -> str:
        text = (
            f"{self.entries} entries, head {self.head_hash[:16]}...; walked {self.rows_walked} row(s) from seq {self.start_seq}"
        )
        if self.checkpoint is not None:
            cp = self.checkpoint.checkpoint
            text += f"; agrees with {cp.describe()} at seq {cp.size} ({self.checkpoint.location})"
        elif self.note:
            text += f"; {self.note}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": True,
            "entries": self.entries,
            "head_hash": self.head_hash,
            "rows_walked": self.rows_walked,
            "start_seq": self.start_seq,
            "checkpoint": self.checkpoint.to_dict() if self.checkpoint else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class WrittenCheckpoint:
    """A checkpoint written to its store, after the chain verified."""

    checkpoint: LedgerCheckpoint
    stored: StoredCheckpoint
    verification: LedgerVerification

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.stored.location,
            "locked": self.stored.locked,
            "retention": self.stored.retention,
            "size": self.checkpoint.size,
            "head_hash": self.checkpoint.head_hash,
            "ledger_id": self.checkpoint.ledger_id,
            "signed_at": self.checkpoint.signed_at_text,
            "keyid": self.checkpoint.keyid,
            "verification": self.verification.to_dict(),
        }


def _verify_signature(envelope: Envelope, trusted_keys: Mapping[str, VerifyingKey], signed_at: datetime) -> VerifyingKey:
    """:func:`verify_envelope` with the checkpoint's signing time, for keys with validity windows.

    The time is the one the checkpoint states: the signer's own word (nothing outside it records
    when a checkpoint was signed), so it cannot show that a signature predates a revocation.
    """
    when = SigningTime(at=signed_at, source="the checkpoint's own signing time", independent=False)
    return verify_envelope(envelope, trusted_keys, payload_type=CHECKPOINT_PAYLOAD_TYPE, signed_at=when)


def parse_checkpoint(raw: bytes, *, location: str, trusted_keys: Mapping[str, VerifyingKey]) -> TrustedCheckpoint:
    """A checkpoint's envelope, verified: a trusted key signed it, and the signer named inside is
    the key that verified.

    :raises SignatureInvalid: no trusted key signed it.
    :raises VerificationError: it is not a checkpoint envelope.
    """
    try:
        envelope = Envelope.from_json(raw)
        if envelope.payload_type != CHECKPOINT_PAYLOAD_TYPE:
            raise VerificationError(f"payload type {envelope.payload_type!r} is not a ledger checkpoint's")
        checkpoint = LedgerCheckpoint.from_payload(envelope.payload)
        key = _verify_signature(envelope, trusted_keys, checkpoint.signed_at)
    except SignatureInvalid as exc:
        raise SignatureInvalid(f"ledger checkpoint {location} is not trusted: {exc}") from exc
    except VerificationError as exc:
        raise VerificationError(f"ledger checkpoint {location} cannot be used: {exc}") from exc
    if key.keyid != checkpoint.keyid:
        raise SignatureInvalid(
            f"ledger checkpoint {location} names signer {checkpoint.keyid[:16]} but was signed by {key.keyid[:16]}"
        )
    return TrustedCheckpoint(checkpoint=checkpoint, location=location, key_origin=key.origin)


def newest_checkpoint(store: CheckpointStore, trusted_keys: Mapping[str, VerifyingKey]) -> TrustedCheckpoint | None:
    """The newest checkpoint in ``store``, verified; None when the store holds none.

    :raises SignatureInvalid, VerificationError: the newest one does not verify (an older one is
        never used instead), or its name disagrees with its signed content.
    :raises StoreUnavailable: the store cannot be read.
    """
    names = store.names()
    if not names:
        return None
    name = names[0]
    trusted = parse_checkpoint(store.read(name), location=store.location_of(name), trusted_keys=trusted_keys)
    if trusted.checkpoint.name != name:
        raise VerificationError(
            f"ledger checkpoint {trusted.location} is named for another checkpoint: its signed content is "
            f"{trusted.checkpoint.name} (renamed or copied to look newer)"
        )
    return trusted


def load_checkpoint(uri: str, trusted_keys: Mapping[str, VerifyingKey]) -> TrustedCheckpoint:
    """The checkpoint ``uri`` names: one checkpoint file or object, or the newest in a store.

    :raises ConfigurationError: a bad URI, or no checkpoint there.
    """
    store, single = open_checkpoint_store(uri)
    if single is not None:
        trusted = parse_checkpoint(store.read(single), location=store.location_of(single), trusted_keys=trusted_keys)
        if trusted.checkpoint.name != single:
            raise VerificationError(
                f"ledger checkpoint {trusted.location} is named for another checkpoint ({trusted.checkpoint.name})"
            )
        return trusted
    found = newest_checkpoint(store, trusted_keys)
    if found is None:
        raise ConfigurationError(f"no ledger checkpoint at {store.location}")
    return found


def check_against_checkpoint(
    ledger: EvidenceLedger, trusted: TrustedCheckpoint, *, from_seq: int | None = None
) -> LedgerVerification:
    """Verify ``ledger`` against one trusted checkpoint, walking from the checkpoint (or from
    ``from_seq`` when it is earlier) to the head.

    :raises CheckpointMismatch: the ledger is shorter, of another ledger, or differs at the
        checkpoint's position.
    :raises LedgerIntegrityError: the chain after the walk's start is broken.
    """
    cp = trusted.checkpoint
    head = ledger.head_seq()
    if head < cp.size:
        raise CheckpointMismatch(
            f"ledger has {head} entries, {cp.describe()} records {cp.size}: its tail was cut ({trusted.location})"
        )
    present = ledger.count_up_to(cp.size)
    if present != cp.size:
        # Rows before the checkpoint are not read by the walk; a deleted one still shows in the count.
        raise CheckpointMismatch(
            f"ledger has {present} entries up to seq {cp.size}, {cp.describe()} records {cp.size}: "
            f"{cp.size - present} were deleted ({trusted.location})"
        )
    first = ledger.entry_at(1)
    if first is None or first.entry_hash != cp.ledger_id or first.computed_hash() != first.entry_hash:
        found = first.entry_hash[:16] if first is not None else "none"
        raise CheckpointMismatch(
            f"{cp.describe()} is of ledger {cp.ledger_id[:16]} (its first entry's hash); this ledger's first entry is "
            f"{found}: a checkpoint of another ledger, or this ledger was rewritten from its start ({trusted.location})"
        )
    try:
        chain = ledger.verify_chain(anchor=ChainAnchor(seq=cp.size, entry_hash=cp.head_hash), from_seq=from_seq)
    except CheckpointMismatch as exc:
        raise CheckpointMismatch(f"the ledger differs from {cp.describe()} at seq {cp.size}: {exc} ({trusted.location})") from exc
    return LedgerVerification(
        entries=chain.entries,
        head_hash=chain.head_hash,
        rows_walked=chain.rows_walked,
        start_seq=chain.start_seq,
        checkpoint=trusted,
    )


def _full_walk(ledger: EvidenceLedger, note: str) -> LedgerVerification:
    chain = ledger.verify_chain()
    return LedgerVerification(
        entries=chain.entries, head_hash=chain.head_hash, rows_walked=chain.rows_walked, start_seq=1, note=note
    )


def verify_ledger(
    ledger: EvidenceLedger,
    *,
    settings: Settings,
    trusted_keys: Mapping[str, VerifyingKey],
    checkpoint: str | None = None,
    from_seq: int | None = None,
    full: bool = False,
) -> LedgerVerification:
    """Verify the ledger's chain, against the newest trusted checkpoint when there is one.

    Which checkpoint: ``checkpoint`` (a checkpoint file or object, or a store: a directory or
    ``s3://bucket/prefix``), else the newest in ``settings.ledger_checkpoints``; with neither,
    the whole chain is walked. A configured store with no checkpoint yet means a full walk (the
    result's ``note`` says so); an explicit ``checkpoint`` must hold one.

    :param from_seq: walk from this row when it is before the checkpoint, so the rows a caller
        relies on are re-hashed, not only chained. A run's entries older than the checkpoint are
        protected because their hashes chain into the signed head: pass the lowest seq of the
        run's entries (``verify_run`` does) to walk from min(that, checkpoint) to the head.
    :param full: walk the whole chain from the genesis, and still check the checkpoint.
    :raises CheckpointMismatch: the ledger is shorter than the checkpoint or differs at its position.
    :raises SignatureInvalid: the newest checkpoint is not signed by a trusted key.
    :raises VerificationError: the chain is broken, or the checkpoint cannot be used.
    :raises ConfigurationError: a bad checkpoint URI, or no checkpoint where one was named.
    :raises StoreUnavailable: the checkpoint store cannot be reached.
    """
    start = 1 if full else from_seq
    if checkpoint is not None:
        return check_against_checkpoint(ledger, load_checkpoint(checkpoint, trusted_keys), from_seq=start)
    if settings.ledger_checkpoints:
        store, single = open_checkpoint_store(settings.ledger_checkpoints)
        found = (
            load_checkpoint(settings.ledger_checkpoints, trusted_keys)
            if single is not None
            else newest_checkpoint(store, trusted_keys)
        )
        if found is not None:
            return check_against_checkpoint(ledger, found, from_seq=start)
        return _full_walk(ledger, f"no checkpoint at {store.location} yet: walked the whole chain")
    return _full_walk(ledger, "no checkpoint store configured (ledger_checkpoints): walked the whole chain")


def write_checkpoint(
    ledger: EvidenceLedger,
    *,
    settings: Settings,
    to: str | None = None,
    retention_days: int | None = None,
    signer: Signer | None = None,
    trusted_keys: Mapping[str, VerifyingKey] | None = None,
    now: datetime | None = None,
) -> WrittenCheckpoint | None:
    """Verify the ledger's chain (from the newest trusted checkpoint in the store, else from the
    genesis), sign a checkpoint of its head and write it to ``to`` (default
    ``settings.ledger_checkpoints``). Nothing is signed if the chain does not verify.

    Returns None, writing nothing, when the ledger is empty and the store holds no checkpoint (a
    fresh installation: nothing to protect yet). An empty ledger with a checkpoint is a cut tail.

    :param retention_days: S3 with Object Lock: keep the checkpoint in COMPLIANCE mode this many
        days (default: the bucket's default retention, else
        :data:`~airflow_mlsecops.evidence.checkpoint_store.DEFAULT_RETENTION_DAYS`).
        Refused for a store that cannot lock.
    :param signer: default ``settings.load_signing_key()``.
    :param trusted_keys: keys trusted for the store's existing checkpoints (default
        ``settings.load_trusted_keys()``); the signer's own key is always trusted for them.
    :raises ConfigurationError: no store given or configured, a bad URI.
    :raises VerificationError: the chain or the newest existing checkpoint does not verify.
    :raises StoreUnavailable: the store or ledger cannot be reached.
    """
    target = to or settings.ledger_checkpoints
    if not target:
        raise ConfigurationError(
            "no checkpoint store: pass --to DIR|s3://bucket/prefix, or set [mlsecops] ledger_checkpoints "
            "or MLSECOPS_LEDGER_CHECKPOINTS"
        )
    store, single = open_checkpoint_store(target)
    if single is not None:
        raise ConfigurationError(f"{target} names one checkpoint; write to its folder or prefix instead")
    signer = signer or settings.load_signing_key()
    trusted = dict(trusted_keys) if trusted_keys is not None else settings.load_trusted_keys()
    trusted.setdefault(signer.keyid, signer.public_key)
    if isinstance(store, LocalCheckpointStore):
        _make_directory(store)
    previous = newest_checkpoint(store, trusted)
    if previous is not None:
        verification = check_against_checkpoint(ledger, previous)
    else:
        verification = _full_walk(ledger, f"no checkpoint at {store.location} yet: walked the whole chain")
    if verification.entries == 0:
        return None  # no entry, and no checkpoint before (else the walk failed): nothing to protect yet
    first = ledger.entry_at(1)
    if first is None:  # the walk just read it; only a concurrent rewrite gets here
        raise CheckpointMismatch("the ledger's first entry disappeared while it was being checkpointed")
    checkpoint = LedgerCheckpoint(
        ledger_id=first.entry_hash,
        size=verification.entries,
        head_hash=verification.head_hash,
        signed_at=(now or datetime.now(timezone.utc)).astimezone(timezone.utc),
        keyid=signer.keyid,
    )
    envelope = sign_envelope(canonical_json(checkpoint.statement()), signer, payload_type=CHECKPOINT_PAYLOAD_TYPE)
    stored = store.write(checkpoint.name, envelope.to_json(), retention_days=retention_days)
    return WrittenCheckpoint(checkpoint=checkpoint, stored=stored, verification=verification)


def _make_directory(store: LocalCheckpointStore) -> None:
    try:
        store.directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the checkpoint directory {store.directory}: {exc.strerror}") from exc
