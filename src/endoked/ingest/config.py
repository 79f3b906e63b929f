"""Configuration of the ingest stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IngestConfig(BaseModel):
    """How an archive is read and validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    archive: str | None = Field(None, description="Manifest file (.jsonl/.csv/.parquet) or archive folder.")
    max_report_bytes: int = Field(
        1_000_000, ge=1024, strict=True, description="Reports longer than this (UTF-8 bytes)..."
    )
    huge_report: Literal["truncate", "reject"] = Field(
        "truncate", description="...are cut to max_report_bytes (with a warning row) or rejected."
    )
    max_report_file_bytes: int = Field(
        16_000_000,
        ge=1024,
        strict=True,
        description="Folder layout: report.txt/pathology.txt files larger than this are rejected unread.",
    )
    max_image_bytes: int = Field(
        256_000_000, ge=1024, strict=True, description="Image files larger than this are rejected unread."
    )
    allowed_formats: list[str] = Field(
        default_factory=lambda: ["JPEG", "PNG", "BMP", "TIFF"], description="Pillow format names accepted."
    )
    verify: Literal["decode", "header"] = Field(
        "decode", description="'decode' fully decodes every image (finds truncated files); 'header' is faster."
    )
    allow_absolute_paths: bool = Field(True, strict=True, description="Accept absolute image paths in a manifest.")
    min_side: int = Field(16, ge=1, strict=True, description="Images smaller than this on either side are rejected.")
    chunk_size: int = Field(
        256, ge=1, strict=True, description="Exams per chunk; each finished chunk survives a crash."
    )
    workers: int = Field(0, ge=0, strict=True, description="Image-check processes; 0 = number of CPU cores.")
