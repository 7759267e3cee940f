"""Where announcements go (params ``notifications``): a webhook or an SMTP server.

Pure settings; sending is `deploybook.systems.notify`. Secrets (a webhook URL, the SMTP
login) are named by environment variable, never written here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NotificationTarget(BaseModel):
    """Where announcements go; addresses that are secrets are named by env var.

    ``required``: a failed delivery fails the run (03 stops before any change). Unset means
    required in a production-role environment and not elsewhere (`Params` resolves it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["webhook", "email"]
    required: bool | None = None
    url_env: str | None = None  # webhook URL (a Slack webhook URL is a secret)
    attempts: int = Field(3, ge=1, le=6)  # webhook tries, exponential backoff between them
    backoff_s: float = Field(1.0, gt=0, le=30)  # the first wait; doubled after each try
    smtp_host: str | None = None
    smtp_port: int | None = None
    # none | starttls (upgrade, usually port 587) | implicit (TLS from the start, port 465)
    tls: Literal["none", "starttls", "implicit"] = "none"
    ca_file: str | None = None  # a PEM bundle to verify the server with (default: system's)
    username_env: str | None = None  # SMTP login: the names of secret env variables
    password_env: str | None = None
    sender: str | None = None
    recipients: list[str] = []
    incident: bool = False  # also receives incident reports
