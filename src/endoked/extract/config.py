"""Configuration of the extract stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ExtractConfig(BaseModel):
    """Tunables of the extract stage (placeholder until the stage lands)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
