"""Configuration of the prompt_seg stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PromptSegConfig(BaseModel):
    """Tunables of the prompt_seg stage (placeholder until the stage lands)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
