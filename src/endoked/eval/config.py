"""Configuration of the eval stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EvalConfig(BaseModel):
    """Tunables of the eval stage (placeholder until the stage lands)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
