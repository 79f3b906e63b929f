"""The prompt_seg stage: boxes to pseudo masks with a box-prompted segmenter.

Public API: :func:`create_segmenter` builds a registered :class:`BoxPromptSegmenter` (``litemedsam``,
``sam``, ``ellipse``) with the segment-anything predictor interface (``set_image``, ``predict``).
"""

from endoked.prompt_seg.base import SEGMENTERS, BoxPromptSegmenter, create_segmenter

__all__ = ["SEGMENTERS", "BoxPromptSegmenter", "create_segmenter"]
