"""Configuration of the biopsy stage (optical biopsy: neoplastic vs non-neoplastic polyps)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from endoked.config_fields import EncoderSource

FinetuneSelect = Literal["last", "validation", "interpolate"]
"""Which weights a fine-tuned pre-trained model keeps (see ``BiopsyConfig.finetune_select``)."""
SelectMetric = Literal["auroc", "log_loss"]
"""The validation criterion of that choice (see ``BiopsyConfig.finetune_select_metric``)."""


class BiopsyConfig(EncoderSource):
    """Tunables of the optical-biopsy classifier: report-supervised pre-training, few-label fine-tuning,
    calibration, operating point and evaluation."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Labels from report fields.
    neoplastic: list[str] = Field(
        ["adenoma", "sessile_serrated", "adenocarcinoma"],
        description="Report pathology values (and fine-tuning label names) of the neoplastic class (label 1).",
    )
    non_neoplastic: list[str] = Field(
        ["hyperplastic", "inflammatory"],
        description="Report pathology values (and fine-tuning label names) of the non-neoplastic class (label 0); "
        "other values ('other', null) are not used for pre-training.",
    )
    # Pre-training images from a run folder.
    top_k: int = Field(
        3,
        ge=1,
        description="Top-k MIL-scored images of each exam with a known pathology class "
        "carry the exam's label in pre-training.",
    )
    min_mil_score: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Images with a MIL score below this are not used for pre-training even when among the top k.",
    )
    crop_to_mask: bool = Field(
        False,
        description="Crop pre-training images to the bounding box of their "
        "prompt_seg pseudo mask (images without a mask stay whole).",
    )
    crop_margin: float = Field(
        0.15,
        ge=0.0,
        le=2.0,
        description="Margin added around the pseudo-mask box on each side, as a fraction of the box side.",
    )
    init_from_mil: bool = Field(
        False,
        description="Initialise the encoder from the run's MIL checkpoint "
        "(mil/model.pt, same backbone) instead of ImageNet weights, when it exists.",
    )
    # Encoder and head.
    image_size: int = Field(224, ge=32, description="Images are resized to image_size x image_size.")
    trainable_blocks: int = Field(
        0,
        ge=-1,
        description="0: frozen encoder, pooled features cached once (CPU profile); k > 0: the last k "
        "block stages and the head convolution train on cached feature maps; -1: the whole encoder trains.",
    )
    freeze_bn: bool = Field(True, description="Keep BatchNorm statistics of trainable encoder parts fixed.")
    hidden_dim: int = Field(0, ge=0, description="Width of a hidden layer in the head (0: a linear classifier).")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="Dropout on the pooled features before the head.")
    flip_views: bool = Field(
        True,
        description="Cache horizontally and vertically flipped views of training "
        "images as augmentation (3x the encoder passes for training images).",
    )
    feature_batch_size: int = Field(32, ge=1, description="Images per batch in the encoder pass.")
    cache_dtype: Literal["float16", "float32"] = Field(
        "float16", description="Storage type of cached feature maps (pooled features are kept in float32)."
    )
    # Optimisation.
    batch_size: int = Field(32, ge=2, description="Images per optimisation step.")
    pretrain_steps: int = Field(600, ge=1, description="Optimisation steps of report-supervised pre-training.")
    finetune_steps: int = Field(
        300, ge=1, description="Optimisation steps of fine-tuning; the same budget with and without pre-training."
    )
    lr: float = Field(
        1e-3, gt=0, description="Learning rate of the head in pre-training and training from scratch (AdamW)."
    )
    finetune_lr: float = Field(
        3e-4, gt=0, description="Learning rate of the head when fine-tuning a pre-trained model."
    )
    encoder_lr: float = Field(1e-4, gt=0, description="Learning rate of trainable encoder parts.")
    weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay.")
    finetune_anchor: float = Field(
        10.0,
        ge=0.0,
        description="L2-SP strength alpha when fine-tuning a pre-trained model (Li et al., ICML 2018): the loss "
        "gains alpha/2 * ||w - w0||^2 over the trainable weights, w0 being their values when fine-tuning starts, "
        "and those weights get no weight decay towards 0; 0: plain weight decay (weight_decay). Default 10 with "
        "finetune_select 'interpolate': the pair that never fell clearly below the pre-trained head in the "
        "biopsy benchmark (docs/BENCHMARKS.md). Training from a fresh head is not affected.",
    )
    finetune_select: FinetuneSelect = Field(
        "interpolate",
        description="Which weights a fine-tuned pre-trained model keeps: 'last': the fine-tuned ones; 'validation': "
        "the fine-tuned ones only when they beat the pre-trained ones on the validation split "
        "(finetune_select_metric; ties keep the pre-trained ones); 'interpolate': (1 - a) * w0 + a * w_ft with a "
        "in {0, 0.25, 0.5, 0.75, 1} chosen the same way (WiSE-FT, Wortsman et al., CVPR 2022; ties keep the "
        "smallest a). Training from a fresh head always keeps the last weights.",
    )
    finetune_select_metric: SelectMetric = Field(
        "auroc",
        description="Validation criterion of finetune_select: 'auroc' (higher is better; a validation split "
        "lacking a class keeps the pre-trained weights) or 'log_loss' (binary log-loss after temperature "
        "scaling; lower is better).",
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=0.5, description="Label smoothing of the binary targets in fine-tuning."
    )
    pretrain_label_smoothing: float = Field(
        0.1, ge=0.0, lt=0.5, description="Label smoothing in pre-training (report-derived labels are noisy)."
    )
    class_balance: Literal["sampler", "loss", "none"] = Field(
        "sampler",
        description="'sampler': each batch draws both classes equally often; 'loss': the loss weights "
        "each class by the inverse of its frequency; 'none'.",
    )
    # Validation, calibration, operating point.
    val_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Share of the labelled images (whole groups when "
        "groups are given; stratified, seeded) held out for calibration and the threshold.",
    )
    calibration: Literal["temperature", "none"] = Field(
        "temperature", description="Temperature scaling of the logit fitted on the validation split."
    )
    operating_point: Literal["youden", "sensitivity", "fixed"] = Field(
        "youden",
        description="Threshold on the calibrated probability: maximise Youden's J on validation, reach "
        "target_sensitivity on validation, or the fixed threshold.",
    )
    target_sensitivity: float = Field(
        0.9, gt=0.0, le=1.0, description="Sensitivity to reach on validation when operating_point='sensitivity'."
    )
    threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Threshold when operating_point='fixed' (and the "
        "fallback when the validation split lacks a class).",
    )
    # Evaluation.
    bootstrap: int = Field(2000, ge=0, description="Bootstrap resamples for the 95% confidence intervals (0: none).")
    ci_level: float = Field(0.95, gt=0.0, lt=1.0, description="Confidence level of the bootstrap intervals.")
    # Data-efficiency curve.
    curve_fractions: list[float] = Field(
        [0.05, 0.1, 0.25, 0.5, 1.0],
        description="Shares of the labelled training pool used for the data-efficiency curve.",
    )
    curve_repeats: int = Field(
        5,
        ge=1,
        description="Random subsets drawn per share (fewer are used when the share "
        "is the whole pool); figures are pooled over repeats.",
    )
    seed: int = Field(0, description="Seed of splits, sampling, dropout and bootstrap.")

    @model_validator(mode="after")
    def _check(self) -> BiopsyConfig:
        overlap = sorted(set(self.neoplastic) & set(self.non_neoplastic))
        if overlap:
            raise ValueError(f"neoplastic and non_neoplastic share {overlap}; a value maps to one class only")
        bad = [f for f in self.curve_fractions if not 0.0 < f <= 1.0]
        if bad:
            raise ValueError(f"curve_fractions must lie in (0, 1], got {bad}")
        return self
