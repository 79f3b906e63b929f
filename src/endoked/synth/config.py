"""Configuration of the synth stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SynthConfig(BaseModel):
    """Tunables of the synth stage (placeholder until the stage lands)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
