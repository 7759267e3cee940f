"""The error-budget burn-rate rule of the SLA watch (plan section 16, as SRE practice adds).

A burn rate is the 5xx ratio over a window divided by the error budget (``1 - slo``): 1
spends the budget exactly over the SLO period, 14.4 spends 2% of a 30-day budget in an
hour. The watch alerts only when a long and a short window both burn faster than
``factor`` (the long one proves it is not a blip, the short one that it is still going on).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BurnRate(BaseModel):
    """Both windows must burn the error budget faster than ``factor`` for a breach."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factor: float = Field(14.4, gt=0)
    long_s: float = Field(300, gt=0)
    short_s: float = Field(60, gt=0)
    slo: float = Field(0.99, gt=0, lt=1)

    @model_validator(mode="after")
    def _windows(self) -> BurnRate:
        if self.short_s > self.long_s:
            raise ValueError(
                f"short_s ({self.short_s:g}) must not be longer than long_s ({self.long_s:g})"
            )
        return self

    @property
    def budget(self) -> float:
        """The error ratio the SLO allows."""
        return 1.0 - self.slo
