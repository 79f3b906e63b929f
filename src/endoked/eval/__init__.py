"""The eval stage: polyp-segmentation metrics as the PraNet MATLAB toolbox computes them.

Library API:

* :class:`PolypMetrics` -- streaming ``update(pred, gt)`` / ``compute() -> dict`` (validation loops);
* :func:`evaluate_folder` / :func:`evaluate_sets` -- score folders of maps (names matched by stem);
* :func:`score_pair` -- every metric of one prepared (map, mask) pair.
"""

from endoked.lazy import lazy_attributes

# Names are imported on first use so that importing the package (e.g. by the CLI) stays light.
_LAZY: dict[str, str] = {
    "REPORT_COLUMNS": "endoked.eval.report",
    "EvalConfig": "endoked.eval.config",
    "ImageScore": "endoked.eval.metrics",
    "METRIC_KEYS": "endoked.eval.streaming",
    "PolypMetrics": "endoked.eval.streaming",
    "SetResult": "endoked.eval.folder",
    "THRESHOLDS": "endoked.eval.metrics",
    "evaluate_folder": "endoked.eval.folder",
    "evaluate_sets": "endoked.eval.folder",
    "find_sets": "endoked.eval.folder",
    "score_pair": "endoked.eval.metrics",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "METRIC_KEYS",
    "REPORT_COLUMNS",
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
