"""The prompt_seg stage: boxes to pseudo masks with a box-prompted segmenter.

Public API: :func:`create_segmenter` builds a registered :class:`BoxPromptSegmenter` (``litemedsam``,
``sam``, ``ellipse``) with the segment-anything predictor interface (``set_image``, ``predict``).
"""

import importlib
from typing import Any

# Names are imported on first use so that importing the package (e.g. by the CLI) stays light.
_LAZY: dict[str, str] = {
    "BoxPromptSegmenter": "endoked.prompt_seg.base",
    "SEGMENTERS": "endoked.prompt_seg.base",
    "create_segmenter": "endoked.prompt_seg.base",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["SEGMENTERS", "BoxPromptSegmenter", "create_segmenter"]
