"""Configuration of the ingest stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IngestConfig(BaseModel):
    """How an archive is read and validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    archive: str | None = Field(None, description="Manifest file (.jsonl/.csv/.parquet) or archive folder.")
    max_report_bytes: int = Field(1_000_000, ge=1024, description="Reports longer than this (UTF-8 bytes)...")
    huge_report: Literal["truncate", "reject"] = Field(
        "truncate", description="...are cut to max_report_bytes (with a warning row) or rejected.")
    allowed_formats: list[str] = Field(
        default_factory=lambda: ["JPEG", "PNG", "BMP", "TIFF"], description="Pillow format names accepted.")
    verify: Literal["decode", "header"] = Field(
        "decode", description="'decode' fully decodes every image (finds truncated files); 'header' is faster.")
    allow_absolute_paths: bool = Field(True, description="Accept absolute image paths in a manifest.")
    min_side: int = Field(16, ge=1, description="Images smaller than this on either side are rejected.")
    chunk_size: int = Field(256, ge=1, description="Exams per chunk; each finished chunk survives a crash.")
    workers: int = Field(0, ge=0, description="Image-check processes; 0 = number of CPU cores.")
