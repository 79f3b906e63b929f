"""Figures for the run report, returned as base64 PNG data URIs so the page is self-contained."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from endoked.imaging import encode_png, read_rgb, resize_map


def png_data_uri(image: np.ndarray | Image.Image) -> str:
    """``data:image/png;base64,...`` of an (H, W[, 3]) uint8 array or a PIL image."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image, optimize=True)).decode("ascii")


def file_data_uri(path: Path) -> str:
    """Data URI of an existing PNG file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def figure_uri(fig: object) -> str:
    """Render a matplotlib figure to a data URI and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def score_histogram(scores_by_label: Mapping[str, Sequence[float]], title: str) -> str:
    """Overlaid histograms of scores, one per group (e.g. bag label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    bins = [float(b) for b in np.linspace(0, 1, 26)]
    for name, values in scores_by_label.items():
        if len(values):
            ax.hist(values, bins=bins, alpha=0.55, label=f"{name} (n={len(values)})")
    ax.set_xlabel("score")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend()
    return figure_uri(fig)


def overlay(
    image_path: Path,
    mask: np.ndarray | None = None,
    boxes: Sequence[Sequence[float]] = (),
    truth: np.ndarray | None = None,
    heat: np.ndarray | None = None,
    side: int = 224,
) -> np.ndarray:
    """Image with an optional heat map (jet, 40 %), pseudo-mask contour (green), boxes (yellow) and true-mask
    contour (red), resized to ``side`` on the longest edge. Returns (h, w, 3) uint8 RGB."""
    img = read_rgb(image_path).copy()
    h, w = img.shape[:2]
    if heat is not None:
        hm = resize_map(heat, (h, w))
        hm = (255 * np.clip(hm, 0, 1)).astype(np.uint8)
        colour = cv2.applyColorMap(hm, cv2.COLORMAP_JET)[..., ::-1]
        img = (0.6 * img + 0.4 * colour).astype(np.uint8)
    thick = max(1, round(max(h, w) / 200))
    for m, edge in ((truth, (255, 40, 40)), (mask, (40, 255, 40))):
        if m is not None and m.shape == (h, w):
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(img, contours, -1, edge, thick)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), (255, 220, 0), thick)
    scale = side / max(h, w)
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
