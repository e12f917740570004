"""The one exception root of airflow-mlsecops and a subclass per outcome a caller must tell apart.

Every error raised on purpose by this package derives from :class:`MLSecOpsError`, so the CLI can
catch it, print its message and exit with a clear code instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class _Issue(Protocol):
    """What :class:`PolicyError` needs of a problem (:class:`airflow_mlsecops.policy.model.PolicyIssue`)."""

    @property
    def line(self) -> int: ...

    @property
    def pointer(self) -> str: ...

    @property
    def message(self) -> str: ...

    def render(self, source: str) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class MLSecOpsError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(MLSecOpsError):
    """Settings, arguments or inputs are wrong: the check could not run (CLI exit 2)."""


class PolicyError(ConfigurationError):
    """The policy file cannot be used: unreadable, not YAML, or not valid against the schema.

    ``issues`` lists each problem with its line; ``str()`` is one line per problem, each
    ``<file>:<line>: <where>: <what>``.
    """

    def __init__(self, source: str, issues: Sequence[_Issue]) -> None:
        self.source = source
        self.issues = tuple(sorted(issues, key=lambda i: (i.line, i.pointer, i.message)))
        super().__init__("; ".join(i.render(source) for i in self.issues) or f"{source}: invalid policy")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "issues": [i.to_dict() for i in self.issues]}


class KeyLoadError(ConfigurationError):
    """A signing or verification key is missing, unreadable or of an unsupported type."""


class GateRejected(MLSecOpsError):
    """A gate judged its input and rejected it (CLI exit 1, Airflow task fails without retry)."""

    def __init__(self, message: str, *, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class ApprovalRefused(GateRejected):
    """An approval response was refused (separation of duties, not a reviewer, already answered)."""


class GateError(MLSecOpsError):
    """A gate could not reach a verdict (unreadable input, tool failure, timeout). Never a pass.

    ``finding`` names the gate's finding for the error (``<gate>.<finding>``); without one the
    error verdict's finding is ``gate.could-not-run``.
    """

    finding: str | None = None


class EmptyBatch(GateError):
    """A data gate's batch holds no rows or no columns: nothing to judge (finding ``<gate>.empty-batch``)."""

    finding = "empty-batch"


class EmptyReference(GateError):
    """A data gate's trusted reference holds no data: it vouches for nothing (finding ``<gate>.empty-reference``)."""

    finding = "empty-reference"


class ModelFileError(GateError):
    """The model scanner's parsers stopped on a file's bytes; the scanner turns each into a finding."""


class Truncated(ModelFileError):
    """The stream ended before the bytes a structure declares."""


class LimitExceeded(ModelFileError):
    """A decompression or size limit was reached; the message says which."""


class FormatError(ModelFileError):
    """The bytes do not follow the format they claim (the message says how)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class PickleError(ModelFileError):
    """The stream is not a valid pickle at ``offset`` (the unpickler would stop there too)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class VerificationError(MLSecOpsError):
    """Evidence, a signature, a digest or the ledger chain did not verify (CLI exit 1)."""


class SignatureInvalid(VerificationError):
    """A DSSE envelope's signature does not verify against any trusted key."""


class DigestMismatch(VerificationError):
    """An artifact's bytes no longer match the digest recorded in its attestation."""


class LedgerIntegrityError(VerificationError):
    """The evidence ledger's hash chain is broken (a row was changed, removed or inserted)."""


class CheckpointMismatch(LedgerIntegrityError):
    """The ledger is shorter than a signed checkpoint, or differs from it at the checkpoint's position."""


class EvidenceRecordingError(MLSecOpsError):
    """Evidence could not be persisted; the gate fails closed rather than pass unrecorded."""


class StoreUnavailable(MLSecOpsError):
    """A tracking server, database or object store could not be reached (CLI exit 2, retried in Airflow)."""


class SignerUnavailable(StoreUnavailable):
    """A remote signer (a KMS) could not be reached or refused a request: nothing was signed (CLI exit 2)."""
