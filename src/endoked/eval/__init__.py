"""The eval stage: polyp-segmentation metrics as the PraNet MATLAB toolbox computes them.

Library API:

* :class:`PolypMetrics` -- streaming ``update(pred, gt)`` / ``compute() -> dict`` (validation loops);
* :func:`evaluate_folder` / :func:`evaluate_sets` -- score folders of maps (names matched by stem);
* :func:`score_pair` -- every metric of one prepared (map, mask) pair.
"""

from endoked.eval.config import EvalConfig
from endoked.eval.folder import SetResult, evaluate_folder, evaluate_sets, find_sets
from endoked.eval.metrics import THRESHOLDS, ImageScore, score_pair
from endoked.eval.streaming import METRIC_KEYS, PolypMetrics

__all__ = [
    "METRIC_KEYS",
    "THRESHOLDS",
    "EvalConfig",
    "ImageScore",
    "PolypMetrics",
    "SetResult",
    "evaluate_folder",
    "evaluate_sets",
    "find_sets",
    "score_pair",
]
