"""The ``ellipse`` segmenter: no model, the ellipse inscribed in each box (a baseline and a fallback)."""

from __future__ import annotations

import numpy as np

from endoked.prompt_seg.base import BoxPromptSegmenter


def ellipse_masks(boxes_xyxy: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Filled ellipses inscribed in boxes.

    Args:
        boxes_xyxy: ``(N, 4) float`` boxes in continuous pixel coordinates (pixel ``i`` spans ``[i, i+1)``).
        image_size: ``(H, W)``.

    Returns:
        ``(N, H, W) bool``: a pixel is inside when its centre lies inside the ellipse.
    """
    h, w = image_size
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    ys = np.arange(h, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float64)[None, :] + 0.5
    out = np.zeros((len(boxes), h, w), dtype=bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ax, ay = max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
        out[i] = ((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2 <= 1.0
    return out


class EllipseSegmenter(BoxPromptSegmenter):
    """Ellipse inscribed in the box; every score is 1."""

    name = "ellipse"

    def _embed(self, image: np.ndarray) -> None:
        return None

    def _predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ellipse_masks(boxes, self.image_size), np.ones(len(boxes), dtype=np.float32)
