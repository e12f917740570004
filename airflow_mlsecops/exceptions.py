"""The one exception root of airflow-mlsecops and a subclass per outcome a caller must tell apart.

Every error raised on purpose by this package derives from :class:`MLSecOpsError`, so the CLI can
catch it, print its message and exit with a clear code instead of a traceback.
"""

from __future__ import annotations


class MLSecOpsError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(MLSecOpsError):
    """Settings, arguments or inputs are wrong: the check could not run (CLI exit 2)."""


class KeyLoadError(ConfigurationError):
    """A signing or verification key is missing, unreadable or of an unsupported type."""


class GateRejected(MLSecOpsError):
    """A gate judged its input and rejected it (CLI exit 1, Airflow task fails without retry)."""

    def __init__(self, message: str, *, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class GateError(MLSecOpsError):
    """A gate could not reach a verdict (unreadable input, tool failure, timeout). Never a pass."""


class VerificationError(MLSecOpsError):
    """Evidence, a signature, a digest or the ledger chain did not verify (CLI exit 1)."""


class SignatureInvalid(VerificationError):
    """A DSSE envelope's signature does not verify against any trusted key."""


class DigestMismatch(VerificationError):
    """An artifact's bytes no longer match the digest recorded in its attestation."""


class LedgerIntegrityError(VerificationError):
    """The evidence ledger's hash chain is broken (a row was changed, removed or inserted)."""


class EvidenceRecordingError(MLSecOpsError):
    """Evidence could not be persisted; the gate fails closed rather than pass unrecorded."""


class StoreUnavailable(MLSecOpsError):
    """A tracking server, database or object store could not be reached (CLI exit 2, retried in Airflow)."""
