"""Configuration of the eval stage (polyp-segmentation metrics as the PraNet MATLAB toolbox computes them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    """How prediction maps are read, normalised and scored. The defaults reproduce the toolbox."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    normalize: bool = Field(
        default=True,
        description="Min-max normalise every prediction map to [0, 1] before scoring, as the toolbox "
        "does (MATLAB mapminmax). A constant map is left unchanged. Switch off to score calibrated "
        "probabilities as they are.",
    )
    quantize: bool = Field(
        default=True,
        description="Round float maps given to the library API to 8 bit (round(p * 255) / 255) before "
        "scoring, so that in-loop validation gives the same numbers as scoring the saved PNGs.",
    )
    gt_threshold: int = Field(
        default=128,
        ge=0,
        le=254,
        description="A ground-truth pixel is foreground when its 8-bit value is greater "
        "than this (toolbox: gt > 128). 16-bit masks are compared on the 8-bit scale.",
    )
    binary_threshold: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Threshold (map >= value, after normalisation) of Dice@0.5/IoU@0.5."
    )
    emeasure_binarize: Literal[">", ">="] = Field(
        default=">",
        description="Comparison that binarises the map for the E-measure curve. The PraNet toolbox "
        "uses map > t (its Dice/IoU use map >= t); '>=' gives the PySODMetrics curve.",
    )
    empty_score: Literal["zero", "one"] = Field(
        default="zero",
        description="Dice/IoU of a threshold where ground truth and binarised map are both empty: "
        "'zero' as the toolbox (any image without a true positive scores 0), 'one' to count a correctly "
        "empty prediction as perfect.",
    )
    alpha: float = Field(default=0.5, ge=0.0, le=1.0, description="Weight of the object term of the S-measure.")
    beta2: float = Field(default=1.0, gt=0.0, description="beta^2 of the weighted F-measure (toolbox: 1).")
    on_size_mismatch: Literal["resize", "error"] = Field(
        default="resize",
        description="A prediction whose size differs from its mask is resized to the mask's size "
        "with bicubic interpolation (as MATLAB imresize; a warning is logged) or rejected.",
    )
    allow_missing: bool = Field(
        default=False,
        description="Score a missing prediction as an all-zero map (and report it) instead of failing; "
        "extra predictions without a mask are then ignored and reported.",
    )
    extensions: list[str] = Field(
        default_factory=lambda: [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"],
        description="File suffixes (case-insensitive) read as maps and masks; names are matched by stem.",
    )
    workers: int = Field(default=0, ge=0, description="Processes scoring images in parallel; 0 = CPU cores (max 8).")
    hist_bins: int = Field(default=20, ge=2, le=200, description="Bins of the per-image Dice histogram plot.")
    data: str | None = Field(
        default=None,
        description="Pipeline only: PraNet-layout root (<set>/images, <set>/masks) on which `endoked run` "
        "scores the segmentation model after the seg stage; unset = the eval stage is skipped.",
    )
    sets: list[str] = Field(
        default_factory=list, description="Pipeline only: sets under `data` to score (empty = every set found)."
    )
    tta_flip: bool = Field(default=False, description="Pipeline only: horizontal-flip test-time augmentation.")
