"""Box geometry and EndoKED's box filters, shared by the cam, prompt_seg and seg stages (pure numpy/OpenCV).

The map is normalised by its maximum, thresholded (foreground = CAM > ``threshold``), split into
8-connected components, and the box of the largest component is kept unless a filter drops the image:

========================  ====================================================================
reason                    when
========================  ====================================================================
``no_foreground``         nothing above the threshold (also an all-zero or non-finite map)
``too_many_components``   ``max_components`` or more components (EndoKED: 3)
``box_too_small``         box area < ``min_area`` of the image (EndoKED: 1 %)
``box_too_large``         box area > ``max_area`` of the image (EndoKED: 35 %)
``touches_border``        the component touches the image border
========================  ====================================================================

In multi-box mode every component that passes the area and border filters gives a box; the image is
dropped (with the reason of the largest component) only when none passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict
from pydantic import Field as ConfigField

from endoked.errors import DataFormatError

DROP_REASONS = ("no_foreground", "too_many_components", "box_too_small", "box_too_large", "touches_border")


@dataclass(frozen=True)
class BoxFilter:
    """Box extraction settings (defaults are EndoKED's).

    Attributes:
        threshold: foreground = max-normalised CAM > threshold.
        min_area: smallest box area as a fraction of the image.
        max_area: largest box area as a fraction of the image.
        drop_border: drop a component that touches the image border.
        border_margin: pixels from the edge that count as the border (0 = the outermost row/column).
        max_components: drop the image when it has this many components or more (``None``: never).
        min_component_area: components smaller than this fraction of the image are ignored (noise).
        multi_box: one box per passing component instead of the largest only.
    """

    threshold: float = 0.65
    min_area: float = 0.01
    max_area: float = 0.35
    drop_border: bool = True
    border_margin: int = 0
    max_components: int | None = 3
    min_component_area: float = 0.0
    multi_box: bool = False


class BoxFilterConfig(BaseModel):
    """The box filter as a config section, one shape wherever boxes are cut from a map (``cam.boxes``,
    ``seg.refine.boxes``); defaults are EndoKED's CAM filter. :meth:`to_filter` gives the :class:`BoxFilter`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    threshold: float = ConfigField(0.65, gt=0, lt=1, description="Foreground = max-normalised map > threshold.")
    min_area: float = ConfigField(0.01, ge=0, le=1, description="Drop boxes smaller than this fraction of the image.")
    max_area: float = ConfigField(0.35, gt=0, le=1, description="Drop boxes larger than this fraction of the image.")
    drop_border: bool = ConfigField(True, description="Drop a foreground region that touches the image border.")
    border_margin: int = ConfigField(0, ge=0, description="Pixels from the image edge that count as border.")
    max_components: int | None = ConfigField(3, ge=1, description="Drop images with this many components or more.")
    min_component_area: float = ConfigField(0.0, ge=0, lt=1, description="Ignore smaller components (image fraction).")
    multi_box: bool = ConfigField(False, description="One box per passing component instead of the largest only.")

    def to_filter(self, **changes: object) -> BoxFilter:
        """The filter these settings describe (``changes`` override single fields)."""
        return BoxFilter(**{**self.model_dump(), **changes})  # type: ignore[arg-type]


@dataclass
class Box:
    """A box in continuous pixel coordinates of the map (pixel ``i`` spans ``[i, i+1)``), xyxy."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    """Mean normalised CAM inside the component."""
    area_fraction: float
    """Box area over the map's area."""

    def scaled(self, sx: float, sy: float) -> Box:
        """The same box in a frame scaled by ``sx`` horizontally and ``sy`` vertically."""
        return Box(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy, self.score, self.area_fraction)

    def as_array(self) -> np.ndarray:
        """``(4,) float32`` xyxy."""
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float32)


@dataclass
class BoxResult:
    """Boxes kept for one map, or the reason it was dropped (``reason`` is None when boxes were kept)."""

    boxes: list[Box] = field(default_factory=list)
    reason: str | None = None
    n_components: int = 0


def normalise_cam(cam: np.ndarray) -> np.ndarray:
    """Map ``cam`` (any real values) to ``[0, 1]`` by clipping negatives and dividing by the maximum.

    Returns an all-zero map when the maximum is not positive or values are not finite.
    """
    arr = np.asarray(cam, dtype=np.float32)
    if arr.ndim != 2:
        raise DataFormatError(f"a CAM must be a 2-D (H, W) map, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        return np.zeros_like(arr)
    arr = np.maximum(arr, 0.0)
    peak = float(arr.max()) if arr.size else 0.0
    return arr / peak if peak > 0 else np.zeros_like(arr)


def _touches_border(stats_row: np.ndarray, h: int, w: int, margin: int) -> bool:
    x, y, bw, bh = (int(v) for v in stats_row[:4])
    return x <= margin or y <= margin or x + bw >= w - margin or y + bh >= h - margin


def boxes_from_cam(cam: np.ndarray, params: BoxFilter | None = None) -> BoxResult:
    """Boxes of a CAM under EndoKED's filters.

    Args:
        cam: ``(H, W) float`` activation map in the frame the boxes should be in (upsample it to the image
            size first to get boxes in image pixels).
        params: filter settings.

    Returns:
        The kept boxes (largest component first), or an empty list and the drop reason.
    """
    p = params or BoxFilter()
    norm = normalise_cam(cam)
    h, w = norm.shape
    fg = (norm > p.threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    comps = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= p.min_component_area * h * w]
    comps.sort(key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))
    if not comps:
        return BoxResult(reason="no_foreground")
    if p.max_components is not None and len(comps) >= p.max_components:
        return BoxResult(reason="too_many_components", n_components=len(comps))
    kept: list[Box] = []
    first_reason: str | None = None
    for i in comps if p.multi_box else comps[:1]:
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        frac = bw * bh / float(h * w)
        reason = None
        if frac < p.min_area:
            reason = "box_too_small"
        elif frac > p.max_area:
            reason = "box_too_large"
        elif p.drop_border and _touches_border(stats[i], h, w, p.border_margin):
            reason = "touches_border"
        if reason is not None:
            first_reason = first_reason or reason
            continue
        score = float(norm[labels == i].mean())
        kept.append(Box(float(x), float(y), float(x + bw), float(y + bh), score, frac))
    if not kept:
        return BoxResult(reason=first_reason, n_components=len(comps))
    return BoxResult(boxes=kept, n_components=len(comps))


def box_of_mask(mask: np.ndarray) -> np.ndarray | None:
    """``(4,) float32`` xyxy box of the non-zero pixels of a 2-D mask, ``None`` when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def mask_components_boxes(mask: np.ndarray, min_area: int = 1) -> np.ndarray:
    """``(N, 4) float32`` xyxy boxes of the 8-connected components of a mask with at least ``min_area`` px."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((np.asarray(mask) > 0).astype(np.uint8), connectivity=8)
    rows = [[s[0], s[1], s[0] + s[2], s[1] + s[3]] for s in stats[1:n] if s[4] >= min_area]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes, ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
