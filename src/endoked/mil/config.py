"""Configuration of the mil stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MilConfig(BaseModel):
    """Tunables of the mil stage (placeholder until the stage lands)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
