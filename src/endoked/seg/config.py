"""Configuration of the seg stage: Polyp-PVT-style segmentation trained on (pseudo) masks, and refinement.

One section per concern: ``seg.model`` (the network), ``seg.augment`` (training augmentation), ``seg.optim``
(optimisation, schedule, loss, validation cadence), ``seg.predict`` (inference) and ``seg.refine`` (the
pseudo-label refinement rounds, with the shared box-filter shape ``seg.refine.boxes``); data settings stay at
the top of ``seg``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from endoked.boxes import BoxFilterConfig
from endoked.config_fields import EncoderSource

_STRICT = ConfigDict(extra="forbid", validate_assignment=True)

Decoder = Literal["endoked", "official"]
"""Decoder arithmetic of the network (:class:`endoked.seg.model.PolypPVT`)."""

# seg keys before the sections: old key -> new key (dotted, below ``seg``); the run config refuses the old ones
RENAMED: dict[str, str] = {
    "encoder": "model.backbone",
    "encoder_weights": "model.weights",
    "pretrained": "model.pretrained",
    "allow_download": "model.allow_download",
    "channel": "model.channel",
    "freeze_stages": "model.freeze_stages",
    "cache_views": "model.cache_views",
    "scales": "augment.scales",
    "scale_mode": "augment.scale_mode",
    "hflip": "augment.hflip",
    "vflip": "augment.vflip",
    "rotate90": "augment.rotate90",
    "crop_scale": "augment.crop_scale",
    "zoom_out": "augment.zoom_out",
    "zoom_min": "augment.zoom_min",
    "color_jitter": "augment.color_jitter",
    "epochs": "optim.epochs",
    "batch_size": "optim.batch_size",
    "lr": "optim.lr",
    "encoder_lr_scale": "optim.encoder_lr_scale",
    "weight_decay": "optim.weight_decay",
    "schedule": "optim.schedule",
    "warmup_epochs": "optim.warmup_epochs",
    "min_lr_ratio": "optim.min_lr_ratio",
    "poly_power": "optim.poly_power",
    "step_epochs": "optim.step_epochs",
    "step_rate": "optim.step_rate",
    "grad_clip": "optim.grad_clip",
    "clip_mode": "optim.clip_mode",
    "amp": "optim.amp",
    "legacy_loss": "optim.legacy_loss",
    "boundary_kernel": "optim.boundary_kernel",
    "val_every": "optim.val_every",
    "max_minutes": "optim.max_minutes",
    "log_every": "optim.log_every",
    "tta_flip": "predict.tta_flip",
    "predict_batch_size": "predict.batch_size",
    "refine_rounds": "refine.rounds",
    "refine_epochs": "refine.epochs",
    "refine_warm_start": "refine.warm_start",
    "refine_segmenter": "refine.segmenter",
    "refine_expand": "refine.expand",
    "refine_min_score_new": "refine.min_score_new",
    "refine_update": "refine.update",
    "refine_min_agreement": "refine.min_agreement",
    "refine_min_val_dice": "refine.min_val_dice",
    "refine_keep_previous": "refine.keep_previous",
    "refine_threshold": "refine.boxes.threshold",
    "min_box_area": "refine.boxes.min_area",
    "max_box_area": "refine.boxes.max_area",
    "max_components": "refine.boxes.max_components",
    "reject_border": "refine.boxes.drop_border",
    "min_component_area": "refine.boxes.min_component_area",
}


class SegModelConfig(EncoderSource):
    """The network: encoder backbone, its weights, decoder width and arithmetic, a checkpoint to start from,
    frozen stages."""

    model_config = _STRICT

    channel: int = Field(default=32, ge=4, description="Width of the decoder (CFM/SAM), 32 in Polyp-PVT.")
    decoder: Decoder = Field(
        default="endoked",
        description="Decoder arithmetic: 'endoked' (every conv-BN unit ends in a ReLU, as the paper describes; the "
        "CFM upsamples the deepest level x4 at once) or 'official' (the published Polyp-PVT code: no ReLU after "
        "its conv-BN units, the CFM upsamples x2 twice), which the released Polyp-PVT and EndoKED-SEG weights "
        "were trained with. Both have the same parameters.",
    )
    init: str | None = Field(
        default=None,
        description="Start the whole network (encoder and decoder) from this checkpoint: a model.pt or "
        "model.safetensors of this package (e.g. a run's seg/model.pt) or a published Polyp-PVT / EndoKED-SEG "
        ".pth. The checkpoint decides the architecture: its encoder, decoder width and arithmetic replace "
        "backbone, channel and decoder (logged); pretrained and weights are then not used.",
    )
    freeze_stages: int = Field(
        default=0,
        ge=0,
        le=4,
        description="Number of encoder stages (strides 4, 8, 16, 32) kept frozen at their pretrained "
        "values; frozen stages run in eval mode and, with cache_views > 0, once per image.",
    )
    cache_views: int = Field(
        default=0,
        ge=0,
        description="With freeze_stages > 0: precompute the frozen stages' features for this many "
        "augmented views of every training image (the first view un-augmented) and train on them; "
        "multi-scale training is then off. 0 = run the frozen stages on every batch.",
    )


class SegAugmentConfig(BaseModel):
    """Training augmentation (multi-scale training included)."""

    model_config = _STRICT

    scales: list[float] = Field(
        default_factory=lambda: [0.75, 1.0, 1.25],
        description="Multi-scale training: each batch is resized by one of these factors (size rounded "
        "to a multiple of 32).",
    )
    scale_mode: Literal["all", "random"] = Field(
        default="all",
        description="'all': every batch is trained at every scale (one optimizer step each, as Polyp-PVT); "
        "'random': one scale drawn per batch (a third of the cost with three scales).",
    )
    hflip: float = Field(default=0.5, ge=0.0, le=1.0, description="Probability of a horizontal flip.")
    vflip: float = Field(default=0.5, ge=0.0, le=1.0, description="Probability of a vertical flip.")
    rotate90: float = Field(default=0.5, ge=0.0, le=1.0, description="Probability of a rotation by 90/180/270 degrees.")
    crop_scale: float = Field(
        default=0.8, gt=0.0, le=1.0, description="Random crop of this minimal side fraction (1 = no crop)."
    )
    zoom_out: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Probability that a training sample is shrunk (to zoom_min..1 of its side, on a black canvas) "
        "instead of cropped: polyps then also appear smaller than in the training frames. Pseudo labels come "
        "from frames where CAMs found the polyp, which favours large polyps; zoom-outs show the small ones.",
    )
    zoom_min: float = Field(default=0.5, gt=0.0, le=1.0, description="Smallest zoom-out factor.")
    color_jitter: float = Field(
        default=0.2, ge=0.0, le=1.0, description="Maximal relative brightness and contrast change."
    )

    @model_validator(mode="after")
    def _check(self) -> SegAugmentConfig:
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError("scales must be a non-empty list of positive factors, e.g. [0.75, 1.0, 1.25]")
        return self


class SegOptimConfig(BaseModel):
    """Optimisation: epochs, batches, AdamW, LR schedule, gradient clipping, loss, validation cadence."""

    model_config = _STRICT

    epochs: int = Field(default=100, ge=1, description="Training epochs.")
    batch_size: int = Field(default=16, ge=1, description="Images per batch (per process under torchrun).")
    lr: float = Field(default=1e-4, gt=0.0, description="Peak learning rate of AdamW.")
    encoder_lr_scale: float = Field(
        default=1.0, ge=0.0, description="Learning-rate factor of trainable encoder stages."
    )
    weight_decay: float = Field(default=1e-4, ge=0.0, description="AdamW weight decay.")
    schedule: Literal["cosine", "poly", "step"] = Field(
        default="cosine",
        description="LR schedule after warm-up, computed from the peak LR at every step: cosine, poly, or "
        "step (x step_rate every step_epochs, as Polyp-PVT intended, without compounding).",
    )
    warmup_epochs: float = Field(
        default=1.0, ge=0.0, description="Linear warm-up length in epochs (fractions allowed)."
    )
    min_lr_ratio: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Final LR of cosine/poly as a fraction of lr."
    )
    poly_power: float = Field(default=0.9, gt=0.0, description="Exponent of the poly schedule.")
    step_epochs: int = Field(default=50, ge=1, description="Step schedule: epochs between decays.")
    step_rate: float = Field(default=0.1, gt=0.0, le=1.0, description="Step schedule: decay factor.")
    grad_clip: float | None = Field(default=0.5, gt=0.0, description="Clip gradient norm at this value (None: off).")
    clip_mode: Literal["value", "norm"] = Field(
        default="value", description="Clip each gradient value to +-grad_clip (Polyp-PVT) or the global gradient norm."
    )
    amp: bool = Field(default=True, description="fp16 autocast on CUDA (never on CPU/MPS).")
    legacy_loss: bool = Field(
        default=False,
        description="Reproduce the official code's structure loss, whose weighted BCE is silently "
        "mean-reduced (reduce='none'), i.e. an unweighted BCE. Only for comparisons.",
    )
    boundary_kernel: int = Field(
        default=31, ge=3, description="Window of the boundary weight of the structure loss (odd)."
    )
    val_every: int = Field(default=1, ge=1, description="Validate every this many epochs (and after the last).")
    max_minutes: float | None = Field(
        default=None, gt=0.0, description="Stop after the epoch during which this wall time is exceeded."
    )
    log_every: int = Field(default=20, ge=1, description="Log the running loss every this many steps.")
    tensorboard: bool = Field(
        default=False,
        description="Also write each epoch's loss, LR and validation figures as TensorBoard event files in "
        "<training folder>/tensorboard (needs the tensorboard package).",
    )

    @model_validator(mode="after")
    def _check(self) -> SegOptimConfig:
        if self.boundary_kernel % 2 == 0:
            raise ValueError(f"boundary_kernel must be odd, got {self.boundary_kernel}")
        return self


class SegPredictConfig(BaseModel):
    """Inference of the trained network (refinement rounds, ``endoked predict``, eval)."""

    model_config = _STRICT

    tta_flip: bool = Field(default=False, description="Average with the prediction of the horizontally flipped image.")
    batch_size: int = Field(default=8, ge=1, description="Images per forward pass when predicting.")


def _refine_boxes() -> BoxFilterConfig:
    # a network's probability map, not a blurred CAM: foreground = probability >= threshold, every passing
    # component a box, a looser area cap and no border rule (see the field descriptions)
    return BoxFilterConfig(
        threshold=0.5,
        min_area=0.01,
        max_area=0.8,
        drop_border=False,
        max_components=3,
        min_component_area=0.001,
        multi_box=True,
    )


class SegRefineConfig(BaseModel):
    """Refinement rounds: predict -> boxes (``boxes``) -> filter -> new pseudo labels -> retrain."""

    model_config = _STRICT

    rounds: int = Field(
        default=0, ge=0, description="Rounds of predict -> boxes -> filter -> new pseudo labels -> retrain."
    )
    epochs: int = Field(default=10, ge=1, description="Training epochs of each refinement round.")
    warm_start: bool = Field(
        default=True,
        description="A refinement round starts from the previous round's weights and trains "
        "refine.epochs (fresh optimizer and schedule); False trains it from the pretrained encoder for epochs, "
        "so nothing fitted to the previous round's masks carries over.",
    )
    segmenter: str | None = Field(
        default=None,
        description="Box-prompted segmenter (endoked.prompt_seg registry, e.g. litemedsam) run on the "
        "boxes of each prediction; None keeps the thresholded prediction as the new mask.",
    )
    expand: bool = Field(
        default=True,
        description="Refinement rounds also predict the MIL-selected positive images that have no "
        "pseudo mask yet and add those whose prediction passes the filters (the pool grows, as in EndoKED, where "
        "the network labels every positive frame).",
    )
    min_score_new: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="An image joining the pool needs at least this score: the mean "
        "probability inside the predicted mask, or the segmenter's predicted IoU with refine.segmenter.",
    )
    update: Literal["always", "agree", "never"] = Field(
        default="always",
        description="What a prediction that passes the filters does to an image already in "
        "the pool: 'always' replaces its mask; 'agree' replaces it only when the two masks agree (Dice >= "
        "refine.min_agreement), keeping the previous mask where the network contradicts it; 'never' keeps every "
        "previous mask, so rounds only add new images.",
    )
    min_agreement: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="With update='agree': the Dice with the previous mask a prediction needs to replace it.",
    )
    min_val_dice: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Truth-free gate of each refinement round: the previous round's network may replace or add masks "
        "only when its validation meanDice (held-out pool images, scored against their pseudo masks) reaches this. "
        "A network that cannot reproduce the masks it was taught on images it did not see predicts no better "
        "than those masks; below the gate the round predicts and records every image but changes no mask and adds "
        "none. 0 turns the gate off. 0.75 measured across archive designs and sizes (docs/BENCHMARKS.md, "
        "'Refinement gate').",
    )
    keep_previous: bool = Field(
        default=True,
        description="An image whose prediction fails the filters keeps its previous pseudo mask "
        "(False: it leaves the training pool for the next round).",
    )
    boxes: BoxFilterConfig = Field(
        default_factory=_refine_boxes,
        description="Box filter on the thresholded prediction. threshold: probability threshold (foreground = "
        "p >= threshold); max_area 0.8, looser than the CAM stage's 0.35: a network's prediction is no blurred "
        "CAM, and large polyps are common (in the public benchmark archive 47 % of the true polyp boxes cover more "
        "than 35 % of the frame, 10 % more than 80 %); drop_border off for predictions, since a third of the public "
        "archive's polyps touch the frame's edge; max_components 3 as EndoKED; min_component_area: noise.",
    )

    @model_validator(mode="after")
    def _check(self) -> SegRefineConfig:
        if self.boxes.min_area >= self.boxes.max_area:
            raise ValueError("boxes.min_area must be smaller than boxes.max_area")
        return self


class SegConfig(BaseModel):
    """Tunables of the segmentation network, its training, prediction and pseudo-label refinement.

    Defaults follow Polyp-PVT (352 px, AdamW 1e-4, multi-scale 0.75/1/1.25, clip 0.5, 100 epochs) with an
    encoder that has offline ImageNet weights; the ``gpu-paper`` profile switches to ``pvt_v2_b2``.
    """

    model_config = _STRICT

    model: SegModelConfig = Field(default_factory=SegModelConfig, description="The network.")
    augment: SegAugmentConfig = Field(default_factory=SegAugmentConfig, description="Training augmentation.")
    optim: SegOptimConfig = Field(default_factory=SegOptimConfig, description="Optimisation and validation.")
    predict: SegPredictConfig = Field(default_factory=SegPredictConfig, description="Inference.")
    refine: SegRefineConfig = Field(default_factory=SegRefineConfig, description="Pseudo-label refinement rounds.")
    image_size: int = Field(default=352, ge=32, description="Training and inference input size (square, pixels).")
    val_fraction: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Fraction of the training pool held out (seeded) to choose the checkpoint.",
    )
    val_max: int = Field(default=500, ge=1, description="Cap on the number of validation images.")
    negatives_ratio: float = Field(
        default=0.0,
        ge=0.0,
        description="Pseudo-label training (seg stage) also trains on polyp-free images with an empty mask: the "
        "MIL-selected negatives (mil/selection, label 0: the lowest-scored frames of exams whose report finds no "
        "polyp), up to this many per pseudo-labelled image (seeded draw). They teach the model what the polyp is "
        "not (folds, reflections, stool) and never enter the validation split. 0 = off.",
    )
    max_images: int | None = Field(default=None, ge=1, description="Use at most this many training images (seeded).")
    preload: bool = Field(default=True, description="Decode and resize every training image once, keep it in memory.")
    device: Literal["auto", "cpu", "cuda", "mps"] | None = Field(
        default=None, description="Device of this stage; None = the run's device."
    )
