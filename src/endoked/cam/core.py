"""Building, saving and applying the CAM classifier: images in, CAMs and boxes out (no file I/O but the
checkpoint)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.boxes import Box, BoxFilter, boxes_from_cam
from endoked.cam.config import CamConfig
from endoked.cam.methods import tta_maps
from endoked.cam.model import CamNet
from endoked.cam.train import Normalizer, to_input
from endoked.errors import DataFormatError, WeightsNotFoundError
from endoked.imaging import resize_map

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "endoked.cam/1"
ARCH_KEYS = ("backbone", "pretrained", "levels", "head", "hidden", "pool", "lse_r", "topk", "image_size")
# arch keys of checkpoints written before a rename: old -> new
LEGACY_ARCH_KEYS = {"input_size": "image_size"}


def build_net(cfg: CamConfig) -> tuple[CamNet, Normalizer]:
    """The classifier of ``cfg`` (ImageNet encoder weights unless ``cfg.pretrained`` is false) and its input
    normalisation."""
    from endoked.backbones import create_backbone, normalize_images

    encoder = create_backbone(
        cfg.backbone,
        pretrained=cfg.pretrained,
        weights=cfg.weights if cfg.pretrained else None,
        allow_download=cfg.allow_download,
        features_only=True,
    )
    info: Any = encoder.feature_info
    net = CamNet(
        encoder,
        info.channels(),
        info.reduction(),
        levels=cfg.levels,
        head=cfg.head,
        hidden=cfg.hidden,
        pool=cfg.pool,
        lse_r=cfg.lse_r,
        topk=cfg.topk,
        freeze_encoder=True,
    )

    def normalize(x: torch.Tensor) -> torch.Tensor:
        return normalize_images(x, cfg.backbone)

    return net.eval(), normalize


def save_classifier(net: CamNet, cfg: CamConfig, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write the head's weights and the architecture settings; the pretrained encoder is rebuilt from the
    registry, a randomly initialised one (``cfg.pretrained`` false) is saved too."""
    from endoked.io import atomic_path

    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "arch": {k: getattr(cfg, k) for k in ARCH_KEYS},
        "head": {k: v.detach().cpu() for k, v in net.head.state_dict().items()},
        "extra": extra or {},
    }
    if not cfg.pretrained:
        payload["encoder"] = {k: v.detach().cpu() for k, v in net.encoder.state_dict().items()}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def load_classifier(path: str | Path, cfg: CamConfig) -> tuple[CamNet, Normalizer, CamConfig]:
    """Rebuild a saved classifier; returns the net, its normalisation and ``cfg`` with the saved architecture."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"CAM classifier checkpoint not found: {path} (unset cam.checkpoint to train one)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataFormatError(f"{path} is not a CAM classifier checkpoint ({CHECKPOINT_FORMAT})")
    arch = {LEGACY_ARCH_KEYS.get(k, k): v for k, v in payload["arch"].items()}
    arch_cfg = cfg.model_copy(update=arch)
    net, normalize = build_net(arch_cfg)
    net.head.load_state_dict(payload["head"])
    if "encoder" in payload:
        net.encoder.load_state_dict(payload["encoder"])
    return net.eval(), normalize, arch_cfg


def box_filter(cfg: CamConfig) -> BoxFilter:
    """The box filter settings of a config."""
    return cfg.boxes.to_filter()


def inference_net(net: CamNet, cfg: CamConfig, device: torch.device) -> Any:
    """The classifier as the maps should run it: ``net`` itself, or (``cfg.runtime`` resolving to ONNX Runtime,
    method ``cam``) an :class:`~endoked.cam.model.OrtCamNet` around it; gradient methods need torch."""
    from endoked.onnxrt import resolve_runtime

    if cfg.method != "cam" or resolve_runtime(cfg.runtime, device) != "onnxruntime":
        return net
    from endoked.cam.model import OrtCamNet
    from endoked.onnxrt import OnnxExportError

    ort_net = OrtCamNet(net)
    try:  # export the base size now, so a model the exporter cannot handle is known before the first batch
        ort_net.prepare(cfg.image_size)
    except OnnxExportError as exc:
        if cfg.runtime == "onnxruntime":
            raise
        logger.warning("cam maps stay in torch: %s", exc)
        return net
    logger.info("cam maps run in ONNX Runtime (cam.runtime=%s)", cfg.runtime)
    return ort_net


@dataclass
class ImageCam:
    """The CAM result of one image.

    Attributes:
        cam: ``(h, w) float32`` in [0, 1], max-normalised, in the (stretched) classifier frame.
        prob: classifier probability of a polyp.
        boxes: kept boxes in original image pixels (xyxy); empty when dropped.
        reason: why the image was dropped, ``None`` when kept.
    """

    cam: np.ndarray
    prob: float
    boxes: list[Box] = field(default_factory=list)
    reason: str | None = None


@torch.no_grad()
def cams_for_images(
    net: CamNet, normalize: Normalizer, images: Sequence[np.ndarray], cfg: CamConfig, device: torch.device | None = None
) -> list[ImageCam]:
    """CAMs and boxes for a batch of images.

    Args:
        net: trained classifier.
        normalize: its input normalisation.
        images: ``(H, W, 3) uint8`` RGB images (any sizes).
        cfg: maps (method, scales, flip), classifier gate (``min_class_prob``) and box filters.
        device: where the classifier runs.

    Returns:
        One :class:`ImageCam` per image, in order.
    """
    if not images:
        return []
    device = device or torch.device("cpu")
    x = normalize(torch.stack([to_input(img, cfg.image_size) for img in images]).to(device))
    maps, probs = tta_maps(net, x, cfg.method, cfg.scales, cfg.flip, layers=cfg.cam_layers)
    params = box_filter(cfg)
    out: list[ImageCam] = []
    for img, cam_t, prob_t in zip(images, maps.cpu().numpy(), probs.cpu().numpy(), strict=True):
        peak = float(cam_t.max())
        cam = (cam_t / peak if peak > 0 else np.zeros_like(cam_t)).astype(np.float32)
        prob = float(prob_t)
        if prob < cfg.min_class_prob:
            out.append(ImageCam(cam, prob, reason="low_class_prob"))
            continue
        h, w = img.shape[:2]
        res = boxes_from_cam(resize_map(cam, (h, w)), params)
        out.append(ImageCam(cam, prob, boxes=res.boxes, reason=res.reason))
    return out
