"""The one time format every record uses."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> str:
    """UTC time as an ISO string with a Z, the one format every record uses."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
