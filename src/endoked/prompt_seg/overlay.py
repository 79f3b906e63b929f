"""Overlays for people to look at: the image, its CAM as a heat map, the CAM box(es), the prompt box(es)
and the pseudo mask's outline, as one PNG."""

from __future__ import annotations

import cv2
import numpy as np

from endoked.imaging import encode_png

CAM_BOX_RGB = (255, 220, 0)
PROMPT_BOX_RGB = (0, 200, 255)
MASK_RGB = (0, 255, 80)


def overlay_image(
    image: np.ndarray,
    cam: np.ndarray | None,
    cam_boxes: np.ndarray,
    prompt_boxes: np.ndarray,
    mask: np.ndarray | None,
    alpha: float = 0.35,
    max_side: int = 512,
) -> np.ndarray:
    """Compose an overlay.

    Args:
        image: ``(H, W, 3) uint8`` RGB.
        cam: ``(H, W)`` map in [0, 1] or ``None``.
        cam_boxes: ``(N, 4)`` xyxy boxes from the CAM (yellow).
        prompt_boxes: ``(M, 4)`` xyxy boxes the segmenter was prompted with (cyan).
        mask: ``(H, W) bool`` pseudo mask (green outline) or ``None``.
        alpha: heat-map opacity.
        max_side: the result is downscaled so that its longest side is at most this.

    Returns:
        ``(h, w, 3) uint8`` RGB.
    """
    out: np.ndarray = image.astype(np.float32)
    if cam is not None:
        heat = cv2.applyColorMap(np.clip(cam * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
        out = (1 - alpha) * out + alpha * heat.astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    thick = max(1, round(max(image.shape[:2]) / 250))
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, MASK_RGB, thick)
    for boxes, color in ((cam_boxes, CAM_BOX_RGB), (prompt_boxes, PROMPT_BOX_RGB)):
        for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            cv2.rectangle(out, (round(x0), round(y0)), (round(x1) - 1, round(y1) - 1), color, thick)
    scale = max_side / max(out.shape[:2])
    if scale < 1:
        out = cv2.resize(out, (round(out.shape[1] * scale), round(out.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return out


def overlay_png(
    image: np.ndarray, cam: np.ndarray | None, cam_boxes: np.ndarray, prompt_boxes: np.ndarray, mask: np.ndarray | None
) -> bytes:
    """:func:`overlay_image` encoded as PNG bytes."""
    return encode_png(overlay_image(image, cam, cam_boxes, prompt_boxes, mask), library="opencv")
