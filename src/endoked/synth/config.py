"""Configuration of the synth stage (synthetic archive generator)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CategoryFractions(BaseModel):
    """Share of each exam category (normalised to sum to 1; counts use the largest-remainder rule)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    present: float = Field(0.45, ge=0, description="Polyps found (1-3 stated, or 'multiple'); shown on 1-3 frames.")
    absent: float = Field(
        0.30,
        ge=0,
        description="Normal exam or non-polyp findings (diverticula, hemorrhoids, "
        "colitis, melanosis); no polyp frames.",
    )
    history: float = Field(0.10, ge=0, description="Previous polypectomy only (surveillance); label absent.")
    uncertain: float = Field(
        0.07,
        ge=0,
        description="Hedged finding (possible polyp vs fold); label uncertain; "
        "frames may or may not show a small polyp.",
    )
    malignancy: float = Field(
        0.08, ge=0, description="Mass/carcinoma (malignancy_suspected); polyps only if the text also states polyps."
    )

    @model_validator(mode="after")
    def _some_positive(self) -> CategoryFractions:
        if self.present + self.absent + self.history + self.uncertain + self.malignancy <= 0:
            raise ValueError("at least one category fraction must be > 0")
        return self


def _check_range(name: str, lo: float, hi: float) -> None:
    if lo > hi:
        raise ValueError(f"{name}: lower bound {lo} is above upper bound {hi}; give [low, high]")


Lang = Literal["en", "zh"]


def _default_langs() -> list[Lang]:
    return ["en", "zh"]


def _default_fractions() -> CategoryFractions:
    return CategoryFractions.model_validate({})


class SynthConfig(BaseModel):
    """Tunables of the synthetic archive generator (``endoked synth``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    exams: int = Field(40, ge=1, le=10_000_000, description="Number of exams to generate.")
    seed: int = Field(0, ge=0, description="Seed; the same config always gives byte-identical archives.")
    langs: list[Lang] = Field(
        default_factory=_default_langs, min_length=1, description="Report languages; each exam picks one uniformly."
    )
    size: int = Field(256, ge=32, le=2048, description="Frame side in pixels (square frames).")
    images_per_exam: tuple[int, int] = Field((4, 10), description="[min, max] frames per exam.")
    polyp_frames: tuple[int, int] = Field(
        (1, 3),
        description="[min, max] frames showing the polyp(s) in an exam with polyps (capped by the exam's frame count).",
    )
    polyps_per_frame: tuple[int, int] = Field(
        (1, 2), description="[min, max] polyps drawn on a polyp frame (capped by the stated count)."
    )
    polyp_area: tuple[float, float] = Field(
        (0.03, 0.25), description="[min, max] polyp area as a fraction of the field of view."
    )
    small_polyp_rate: float = Field(
        0.1, ge=0, le=1, description="Share of drawn polyps below the minimum area (0.8-3 % of the field)."
    )
    fractions: CategoryFractions = Field(default_factory=_default_fractions, description="Share of each exam category.")
    pathology_rate: float = Field(
        0.6, ge=0, le=1, description="Probability that an exam with a removal or biopsy has a pathology result."
    )
    pathology_in_report: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Probability that the pathology result is "
        "appended to the report instead of the "
        "separate pathology field.",
    )
    uncertain_shows_polyp: float = Field(
        0.5, ge=0, le=1, description="Probability that a hedged lesion is a real (small) polyp on the frames."
    )
    jpeg_quality: int = Field(90, ge=50, le=100, description="JPEG quality of the frames.")
    workers: int = Field(1, ge=1, le=256, description="Worker processes (output is identical for any value).")

    @model_validator(mode="after")
    def _ranges(self) -> SynthConfig:
        for name in ("images_per_exam", "polyp_frames", "polyps_per_frame"):
            lo, hi = getattr(self, name)
            if lo < 1:
                raise ValueError(f"{name}: values must be >= 1, got [{lo}, {hi}]")
            _check_range(name, lo, hi)
        lo_a, hi_a = self.polyp_area
        if not 0 < lo_a <= hi_a <= 0.6:
            raise ValueError(f"polyp_area must satisfy 0 < min <= max <= 0.6, got [{lo_a}, {hi_a}]")
        return self
