"""Configuration of the cam stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CamConfig(BaseModel):
    """Tunables of the cam stage (placeholder until the stage lands)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
