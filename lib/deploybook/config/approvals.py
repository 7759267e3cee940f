"""Sign-offs (params ``approvals``): who may approve each role, and for how long.

Plan section 18 asks for five sign-offs. ``method: signed`` (the default) takes them as
approval files signed with the approver's SSH key (`deploybook approve`), verified against
``allowed_signers`` (role -> the public keys allowed to sign it; public keys are not
secrets). ``method: names`` is the rehearsal's free-text path (typed names); only a
sandbox may use it (`deploybook.session.environment` refuses it elsewhere).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from deploybook.config.duration import Duration

# An OpenSSH public key line: type, base64 blob, optional comment.
PUBLIC_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+)\s+[A-Za-z0-9+/=]{40,}(\s.*)?$"
)
PLACEHOLDER = "TODO"


class ApprovalsSpec(BaseModel):
    """How sign-offs are given and verified (plan section 18)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["signed", "names"] = "signed"
    # role -> OpenSSH public key lines ("ssh-ed25519 AAAA… name@host"); "TODO" = not yet known.
    allowed_signers: dict[str, list[str]] = {}
    expiry: Duration = timedelta(hours=24)  # how long a signed approval stays valid
    namespace: str = Field("deploybook-approval", pattern=r"^[a-z][a-z0-9.@-]{2,60}$")
    # Every role must sign before the first change: unset = in a production stage only;
    # true makes a staging rollout wait for them too.
    required: bool | None = None

    @field_validator("allowed_signers")
    @classmethod
    def _keys(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, keys in v.items():
            if not re.match(r"^[A-Za-z][A-Za-z0-9_-]{0,40}$", role):
                raise ValueError(f"role {role!r}: letters, digits, '_' or '-' (e.g. 'API')")
            for key in keys:
                if key.strip() != PLACEHOLDER and not PUBLIC_KEY.match(key.strip()):
                    raise ValueError(
                        f"{role}: {key[:40]!r}… is not an OpenSSH public key line "
                        "(the content of the approver's id_ed25519.pub) or 'TODO'"
                    )
        return v

    def keys_for(self, role: str) -> list[str]:
        """The usable public keys allowed for ``role`` (placeholders left out)."""
        found = next(
            (k for r, k in self.allowed_signers.items() if r.casefold() == role.casefold()), []
        )
        return [key.strip() for key in found if key.strip() != PLACEHOLDER]
