"""One root exception and the children a caller can act on.

Every message names the thing (file, key, migration, URL without secrets), what was
expected, and the fix. Foreign errors (psycopg, httpx, subprocess) are mapped into these
at the boundary, so a lead never reads a raw traceback at 2 am.
"""

from __future__ import annotations


class DeploybookError(Exception):
    """Root of every error deploybook raises on purpose."""

    exit_code = 1


class ConfigError(DeploybookError):
    """A params file, parameter or argument is wrong; raised before anything is touched."""

    exit_code = 2

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class SecretMissing(ConfigError):
    """A required secret is not set in the environment (its value is never shown)."""


class GateFailed(DeploybookError):
    """A runbook's gate found failed critical checks; carries them for the record."""

    def __init__(self, message: str, failed: list | None = None) -> None:
        super().__init__(message)
        self.failed = list(failed or [])


class CommandFailed(DeploybookError):
    """A configured command (deploy, scale, test, pg_dump...) exited non-zero or timed out."""


class DatabaseError(DeploybookError):
    """The target database could not be reached or answered with an error."""


class MigrationFailed(DatabaseError):
    """A migration failed to apply; names the migration and the statement."""


class RestoreRefused(DatabaseError):
    """A restore or scratch target was refused by a safety rule (pattern, checksum, confirm)."""


class SnapshotCorrupt(DatabaseError):
    """A snapshot file is truncated, corrupt or does not match its recorded SHA-256."""


class LockHeld(DeploybookError):
    """Another rollout or rollback holds the environment's lock."""


class AuditError(DeploybookError):
    """The audit ledger or a record is missing, edited or out of order."""


class SandboxError(DeploybookError):
    """The local sandbox stack could not be started, reached or stopped."""


class NotifyFailed(DeploybookError):
    """A webhook or email announcement was not delivered; names the target, never its secret."""
