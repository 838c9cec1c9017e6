"""The base of every settings section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: unknown keys are errors (a typo must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid")


Action = Literal["auto", "approve", "off"]
