"""Scoring folders of prediction maps against folders of masks (names matched by stem).

Layouts:

* one set: ``--pred DIR --gt DIR`` (``DIR/<stem>.png`` maps, masks with any image suffix);
* several sets (PraNet layout): ``--data ROOT`` with ``ROOT/<set>/masks`` (and ``ROOT/<set>/images``), and
  predictions in ``PRED_ROOT/<set>/<stem>.png``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from endoked.errors import DataFormatError
from endoked.eval.config import EvalConfig
from endoked.eval.inputs import prepare_pair, read_map, read_mask
from endoked.eval.metrics import ImageScore
from endoked.eval.streaming import PolypMetrics
from endoked.progress import track
from endoked.workerpool import process_pool

logger = logging.getLogger(__name__)
_LIST_MAX = 20


@dataclass
class SetResult:
    """Scores of one method on one set.

    Attributes:
        set: set name; method: method name.
        metrics: :meth:`PolypMetrics.compute` output.
        curves: mean curves (``threshold``, ``dice``, ``iou``, ``e``), (256,) each.
        images: per-image records (``name`` = stem, plus the scalars of ``ImageScore``).
        missing: stems with a mask but no map (scored as all-zero maps); extra: maps without a mask (ignored).
    """

    set: str
    method: str
    metrics: dict[str, float | int]
    curves: dict[str, np.ndarray]
    images: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (curves as lists; per-image records left out)."""
        return {
            "set": self.set,
            "method": self.method,
            "metrics": self.metrics,
            "missing": self.missing,
            "extra": self.extra,
            "curves": {k: [float(x) for x in v] for k, v in self.curves.items()},
        }


def _stems(folder: Path, extensions: Sequence[str], what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataFormatError(f"{what} folder {folder} does not exist or is not a folder")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    out: dict[str, Path] = {}
    dupes: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in exts:
            continue
        if p.stem in out:
            dupes.append(f"{out[p.stem].name} / {p.name}")
        out[p.stem] = p
    if dupes:
        raise DataFormatError(
            f"{what} folder {folder} has several files with the same stem: {_listing(dupes)}; keep one file per stem"
        )
    return out


def _listing(items: Sequence[str]) -> str:
    head = ", ".join(items[:_LIST_MAX])
    return head + (f" ... ({len(items)} in all)" if len(items) > _LIST_MAX else f" ({len(items)})")


def match_stems(
    pred_dir: Path, gt_dir: Path, config: EvalConfig
) -> tuple[list[tuple[str, Path | None, Path]], list[str], list[str]]:
    """Pair maps with masks by file stem.

    Returns:
        (pairs (stem, map path or None when missing, mask path), missing stems, extra stems).

    Raises:
        DataFormatError: missing or extra maps (unless ``config.allow_missing``), an empty mask folder, or
            two files with one stem.
    """
    gts = _stems(gt_dir, config.extensions, "mask")
    if not gts:
        raise DataFormatError(f"mask folder {gt_dir} holds no image files ({', '.join(config.extensions)})")
    preds = _stems(pred_dir, config.extensions, "prediction") if pred_dir.is_dir() or not config.allow_missing else {}
    missing = sorted(set(gts) - set(preds))
    extra = sorted(set(preds) - set(gts))
    if (missing or extra) and not config.allow_missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} mask(s) in {gt_dir} have no prediction in {pred_dir}: {_listing(missing)}")
        if extra:
            parts.append(f"{len(extra)} prediction(s) in {pred_dir} have no mask in {gt_dir}: {_listing(extra)}")
        raise DataFormatError(
            "; ".join(parts) + "; fix the folders or pass --allow-missing to score missing predictions as empty maps"
        )
    if missing:
        logger.warning(
            "%d prediction(s) missing in %s, scored as all-zero maps: %s", len(missing), pred_dir, _listing(missing)
        )
    if extra:
        logger.warning("%d prediction(s) in %s have no mask and are ignored: %s", len(extra), pred_dir, _listing(extra))
    pairs = [(stem, preds.get(stem), gt_path) for stem, gt_path in sorted(gts.items())]
    return pairs, missing, extra


def score_files(pred_path: Path | None, gt_path: Path, config: EvalConfig, name: str = "") -> tuple[ImageScore, bool]:
    """Read and score one pair of files; a ``None`` map is scored as an all-zero map of the mask's size.

    Returns:
        (score, resized flag).
    """
    gt = read_mask(gt_path, config.gt_threshold)
    pred = np.zeros(gt.shape, np.uint8) if pred_path is None else read_map(pred_path)
    p, g, resized = prepare_pair(pred, gt, config, name=str(pred_path or name))
    return PolypMetrics(config, keep_per_image=False).score(p, g), resized


def _score_task(args: tuple[Path | None, Path, dict[str, Any], str]) -> tuple[ImageScore, bool]:
    pred_path, gt_path, cfg, name = args
    return score_files(pred_path, gt_path, EvalConfig(**cfg), name)


def _n_workers(config: EvalConfig, n_items: int) -> int:
    workers = config.workers or min(os.cpu_count() or 1, 8)
    return max(1, min(workers, n_items // 8 or 1))


def _scores(
    pairs: Sequence[tuple[str, Path | None, Path]], config: EvalConfig, desc: str
) -> Iterator[tuple[ImageScore, bool]]:
    workers = _n_workers(config, len(pairs))
    if workers == 1:
        for stem, pred, gt in track(pairs, total=len(pairs), desc=desc, unit="img"):
            yield score_files(pred, gt, config, stem)
        return
    cfg = config.model_dump()
    tasks = [(pred, gt, cfg, stem) for stem, pred, gt in pairs]
    with process_pool(workers, get_context("spawn")) as pool:
        yield from track(pool.map(_score_task, tasks, chunksize=4), total=len(tasks), desc=desc, unit="img")


def evaluate_folder(
    pred_dir: str | Path,
    gt_dir: str | Path,
    config: EvalConfig | None = None,
    set_name: str | None = None,
    method: str = "",
) -> SetResult:
    """Score every map in ``pred_dir`` against the mask with the same stem in ``gt_dir``.

    Args:
        pred_dir: folder of maps (``<stem>.png``; 0-255 grey).
        gt_dir: folder of masks.
        config: eval settings.
        set_name: name in the results (default: the mask folder's name, or its parent's when it is ``masks``).
        method: method name in the results.

    Returns:
        The set's scores.

    Raises:
        DataFormatError: missing/extra maps (unless allowed), unreadable files (named), size mismatch with
            ``on_size_mismatch="error"``.
    """
    config = config or EvalConfig()
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    name = set_name or (gt_dir.parent.name if gt_dir.name == "masks" else gt_dir.name)
    pairs, missing, extra = match_stems(pred_dir, gt_dir, config)
    metric = PolypMetrics(config)
    missing_set = set(missing)
    desc = f"eval {method + ' ' if method else ''}{name}"
    for (stem, _, _), (score, resized) in zip(pairs, _scores(pairs, config, desc), strict=True):
        metric.add(score, name=stem, resized=resized, missing=stem in missing_set)
    if metric.n_resized:
        logger.warning("%s: %d of %d prediction(s) resized to their mask's size", name, metric.n_resized, metric.n)
    return SetResult(
        set=name,
        method=method,
        metrics=metric.compute(),
        curves=metric.curves(),
        images=metric.records,
        missing=missing,
        extra=extra,
    )


def find_sets(data_root: str | Path) -> list[str]:
    """Names of the PraNet-layout sets under ``data_root`` (sub-folders that hold a ``masks`` folder)."""
    root = Path(data_root)
    if not root.is_dir():
        raise DataFormatError(f"data root {root} does not exist or is not a folder")
    sets = sorted(p.name for p in root.iterdir() if (p / "masks").is_dir())
    if not sets:
        raise DataFormatError(f"no set under {root}: expected {root}/<set>/masks (PraNet layout)")
    return sets


def evaluate_sets(
    preds: Mapping[str, str | Path],
    data_root: str | Path,
    config: EvalConfig | None = None,
    sets: Sequence[str] | None = None,
) -> list[SetResult]:
    """Score one or several methods on every PraNet-layout set under ``data_root``.

    Args:
        preds: method name -> prediction root holding ``<set>/<stem>.png``.
        data_root: root holding ``<set>/masks``.
        config: eval settings.
        sets: restrict to these set names (default: all found).

    Returns:
        One result per (set, method), sets in name order, methods in the given order.

    Raises:
        DataFormatError: a set without predictions for a method (unless ``allow_missing``), unknown set names,
            or any error of :func:`evaluate_folder`.
    """
    config = config or EvalConfig()
    found = find_sets(data_root)
    chosen = list(sets) if sets else found
    unknown = [s for s in chosen if s not in found]
    if unknown:
        raise DataFormatError(f"unknown set(s) {', '.join(unknown)} under {data_root}; found: {', '.join(found)}")
    results = []
    for set_name in chosen:
        for method, root in preds.items():
            pred_dir = Path(root) / set_name
            if not pred_dir.is_dir() and not config.allow_missing:
                raise DataFormatError(
                    f"method {method!r}: no predictions for set {set_name!r} (expected folder "
                    f"{pred_dir}); pass --allow-missing to score it as empty maps"
                )
            results.append(
                evaluate_folder(
                    pred_dir, Path(data_root) / set_name / "masks", config, set_name=set_name, method=method
                )
            )
    return results
