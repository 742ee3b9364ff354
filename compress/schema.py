"""Base class for every recipe and report section: unknown keys are errors, never ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that forbids extra keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
