"""The prompt_seg stage: boxes to pseudo masks with a box-prompted segmenter.

Public API: :func:`create_segmenter` builds a registered :class:`BoxPromptSegmenter` (``litemedsam``,
``sam``, ``medsam``, ``sam2``, ``ellipse``) with the segment-anything predictor interface (``set_image``,
``predict``).
"""

from endoked.lazy import lazy_attributes

# Names are imported on first use so that importing the package (e.g. by the CLI) stays light.
_LAZY: dict[str, str] = {
    "BoxPromptSegmenter": "endoked.prompt_seg.base",
    "SEGMENTERS": "endoked.prompt_seg.base",
    "create_segmenter": "endoked.prompt_seg.base",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = ["SEGMENTERS", "BoxPromptSegmenter", "create_segmenter"]
