"""The prompt_seg stage: ``cam/boxes.parquet`` (+ the saved CAMs) -> pseudo masks.

Images with CAM boxes, and (``rescue_dropped``) images the cam stage dropped for a box-filter reason, get one
mask each: the best of many candidate prompts (``selection``), kept when it passes the pseudo-label filter.

Outputs: ``prompt_seg/masks/<exam_id>/<stem>.png`` (0/255, image size; several boxes of an image are
merged), ``prompt_seg/pseudo_labels.parquet`` ("pseudo_labels": exam_id, image, mask, score, source and the
quality fields), ``prompt_seg/rejected.parquet`` ("rejected": images whose mask failed the filter, with the
reason) and ``prompt_seg/overlays/*.png`` for the first ``overlays`` images (kept or rejected).

The work is a batch core, :func:`setup` (the segmenter, loaded once) and :func:`process_batch` (rows of
:func:`batch_rows` -> table rows + PNG files), run by the generic driver in chunks of ``prompt_seg.chunk_size``
images (``prompt_seg/chunks/part-NNNNN.*``), reused when an interrupted run resumes.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from endoked import tables
from endoked.batching import BatchOutput, run_batches
from endoked.boxes import DROP_REASONS
from endoked.device import torch_threads
from endoked.errors import DataFormatError, StageError
from endoked.imaging import encode_png, mask_to_u8, read_rgb, resize_map
from endoked.io import sha256_bytes
from endoked.pipeline import StageContext, StageResult, StageSpec
from endoked.prompt_seg.base import create_segmenter
from endoked.prompt_seg.config import PromptSegConfig
from endoked.prompt_seg.overlay import overlay_png
from endoked.prompt_seg.refine import MaskResult, Selection, passes_filter, segment_box, select_mask
from endoked.runfolder import RunFolder

logger = logging.getLogger(__name__)

PSEUDO = "prompt_seg/pseudo_labels"
REJECTED = "prompt_seg/rejected"
PSEUDO_SCHEMA = tables.spec(PSEUDO).schema
# cam-stage drops by a box filter on a CAM with foreground: its components may still hold the polyp
RESCUABLE = frozenset(DROP_REASONS) - {"no_foreground"}
REJECTED_SCHEMA = tables.spec(REJECTED).schema

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-name-safe version of an id or stem (runs of other characters become ``_``)."""
    return _SAFE.sub("_", text).strip("._") or "_"


def mask_relpaths(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Run-relative PNG paths ``prompt_seg/masks/<exam_id>/<stem>.png`` for ``(exam_id, image)`` keys; a stem
    used twice in one exam (``a/1.jpg``, ``b/1.jpg``) gets a short hash of the image path appended."""
    out: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for exam_id, image in sorted(keys):
        rel = f"prompt_seg/masks/{safe_name(exam_id)}/{safe_name(Path(image).stem)}"
        if rel in taken:
            rel = f"{rel}-{sha256_bytes(image.encode('utf-8'))[:8]}"
        taken.add(rel)
        out[(exam_id, image)] = rel + ".png"
    return out


class CamStore:
    """Lazy access to the CAMs the cam stage of ``run`` saved (one npz per chunk), max-normalised float32."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.index: dict[tuple[str, str], tuple[str, str]] = {}
        self._file: str | None = None
        self._npz: dict[str, np.ndarray] = {}
        try:
            cams = tables.rows(run, "cam/cams")
        except StageError:
            return
        for r in cams:
            if r["file"]:
                self.index[(str(r["exam_id"]), str(r["image"]))] = (str(r["file"]), str(r["key"]))

    def get(self, exam_id: str, image: str) -> np.ndarray | None:
        hit = self.index.get((exam_id, image))
        if hit is None:
            return None
        file, key = hit
        if file != self._file:
            with np.load(self.run.abs(file)) as npz:
                self._npz = {k: npz[k] for k in npz.files}
            self._file = file
        arr = self._npz.get(key)
        return None if arr is None else arr.astype(np.float32) / 255.0


def _selection(cfg: PromptSegConfig) -> Selection:
    return Selection(
        thresholds=tuple(cfg.candidate_thresholds),
        scales=tuple(cfg.candidate_scales),
        min_component_area=cfg.candidate_min_area,
        w_score=cfg.select_weight_score,
        w_consensus=cfg.select_weight_consensus,
        w_cam=cfg.select_weight_agreement,
        merge_iou=cfg.merge_iou,
        lowres_consensus=cfg.lowres_consensus,
        peak_sizes=tuple(cfg.candidate_peak_sizes),
        peaks=cfg.candidate_peaks,
        peak_only=cfg.candidate_peak_only,
    )


def _segment_image(
    seg: Any, cfg: PromptSegConfig, img: np.ndarray, boxes: list[dict[str, Any]], cam_small: np.ndarray | None
) -> tuple[list[MaskResult], np.ndarray | None]:
    seg.set_image(img)
    cam = resize_map(cam_small, img.shape[:2]) if cam_small is not None else None
    arr = np.array([[b["x0"], b["y0"], b["x1"], b["y1"]] for b in boxes], dtype=np.float32).reshape(-1, 4)
    if cfg.selection == "consensus":
        best = select_mask(seg, cam, arr, _selection(cfg), cfg.keep_largest_component, cfg.fill_holes)
        return ([best] if best is not None else []), cam
    results = [
        segment_box(
            seg,
            b,
            cam,
            cfg.candidate_thresholds,
            cfg.candidate_scales,
            cfg.select_weight_cam,
            cfg.refine_iters,
            cfg.keep_largest_component,
            cfg.fill_holes,
        )
        for b in arr
    ]
    return results, cam


def _filter(r: MaskResult, cfg: PromptSegConfig) -> str | None:
    return passes_filter(
        r,
        cfg.min_score,
        cfg.min_cam_agreement,
        cfg.min_area_fraction,
        cfg.max_area_fraction,
        cfg.min_box_fill,
        cfg.min_rank if cfg.selection == "consensus" else 0.0,
    )


def _nan_to_none(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


@dataclass
class PromptSegState:
    """What every batch needs: the config, the segmenter (built once) and the cam stage's saved CAMs."""

    cfg: PromptSegConfig
    segmenter: Any
    cams: CamStore


def setup(ctx: StageContext) -> PromptSegState:
    """Build the batch core's state (the segmenter loads its weights here, once)."""
    cfg: PromptSegConfig = ctx.config.prompt_seg
    seg = create_segmenter(cfg.segmenter, **cfg.segmenter_kwargs(ctx.config.device))
    return PromptSegState(cfg, seg, CamStore(ctx.run))


def _overlay_name(exam_id: str, image: str) -> str:
    return f"prompt_seg/overlays/{safe_name(exam_id)}__{safe_name(Path(image).stem)}.png"


def process_batch(rows: list[dict[str, Any]], state: PromptSegState) -> BatchOutput:
    """Pseudo masks for a batch of images.

    Each row holds ``exam_id``, ``image``, ``path`` (None when the image is not in ingest), ``mask`` (the
    run-relative PNG path its mask gets), ``boxes`` (the cam stage's boxes, ``x0..y1``; empty for a rescued
    image) and ``overlay`` (write an inspection overlay). Returns ``prompt_seg/pseudo_labels`` and
    ``prompt_seg/rejected`` rows and the mask and overlay PNGs.
    """
    cfg, seg = state.cfg, state.segmenter
    out = BatchOutput(tables={PSEUDO: [], REJECTED: []})
    for row in rows:
        exam_id, image, boxes = str(row["exam_id"]), str(row["image"]), row["boxes"]
        ident: dict[str, Any] = {"exam_id": exam_id, "image": image}
        try:
            if row["path"] is None:
                raise DataFormatError("not in ingest/images")
            img = read_rgb(row["path"])
        except DataFormatError as exc:
            logger.warning("prompt_seg: %s/%s unreadable: %s", exam_id, image, exc)
            out.tables[REJECTED].append({**ident, "reason": "unreadable_image"})
            continue
        results, cam = _segment_image(seg, cfg, img, boxes, state.cams.get(exam_id, image))
        kept = [r for r in results if _filter(r, cfg) is None]
        cam_boxes = np.array([[b["x0"], b["y0"], b["x1"], b["y1"]] for b in boxes], dtype=np.float32).reshape(-1, 4)
        if not kept:
            reason = _filter(results[0], cfg) if results else "no_candidates"
            out.tables[REJECTED].append({**ident, "reason": reason})
            if row["overlay"]:
                out.files[_overlay_name(exam_id, image)] = overlay_png(img, cam, cam_boxes, np.zeros((0, 4)), None)
            continue
        mask = np.logical_or.reduce([r.mask for r in kept])
        out.files[row["mask"]] = encode_png(mask_to_u8(mask))
        best = max(kept, key=lambda r: r.score)
        agreement = float(np.nanmean([r.cam_agreement for r in kept])) if cam is not None else None
        if cfg.selection == "consensus":
            total = cfg.select_weight_score + cfg.select_weight_consensus + cfg.select_weight_agreement
            score = float(np.clip(best.rank / total, 0.0, 1.0)) if total > 0 else best.score
        else:
            score = float(np.mean([r.score for r in kept]))
        out.tables[PSEUDO].append(
            {
                **ident,
                "mask": row["mask"],
                "score": score,
                "source": f"cam+{cfg.segmenter}",
                "segmenter_score": best.score,
                "cam_agreement": agreement,
                "area_fraction": float(mask.mean()),
                "box_fill": best.box_fill,
                "n_boxes": len(kept),
                "box_x0": float(best.box[0]),
                "box_y0": float(best.box[1]),
                "box_x1": float(best.box[2]),
                "box_y1": float(best.box[3]),
                "consensus": _nan_to_none(best.consensus),
                "rank": _nan_to_none(best.rank),
                "rescued": not boxes,
            }
        )
        if row["overlay"]:
            out.files[_overlay_name(exam_id, image)] = overlay_png(
                img, cam, cam_boxes, np.stack([r.box for r in kept]), mask
            )
    return out


def batch_rows(ctx: StageContext, cfg: PromptSegConfig) -> list[dict[str, Any]]:
    """The batch core's input: every image with CAM boxes (and, with ``rescue_dropped``, every image the cam
    stage dropped by a box filter although its CAM has foreground), sorted by ``(exam_id, image)``."""
    paths = tables.image_paths(ctx.run)
    by_image: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for b in tables.boxes(ctx.run):
        by_image[(str(b["exam_id"]), str(b["image"]))].append({k: float(b[k]) for k in ("x0", "y0", "x1", "y1")})
    if cfg.selection == "consensus" and cfg.rescue_dropped:
        cams = CamStore(ctx.run)
        for d in tables.rows(ctx.run, "cam/dropped"):
            key = (str(d["exam_id"]), str(d["image"]))
            if d["reason"] in RESCUABLE and key in cams.index and key not in by_image:
                by_image[key] = []
    keys = sorted(by_image)
    names = mask_relpaths(keys)
    return [
        {
            "exam_id": e,
            "image": i,
            "path": str(paths[(e, i)]) if (e, i) in paths else None,
            "mask": names[(e, i)],
            "boxes": by_image[(e, i)],
            "overlay": n < cfg.overlays,
        }
        for n, (e, i) in enumerate(keys)
    ]


def run(ctx: StageContext) -> StageResult:
    """Masks for every image with CAM boxes, filtered, in resumable chunks (:func:`endoked.batching.run_batches`)."""
    cfg: PromptSegConfig = ctx.config.prompt_seg
    items = batch_rows(ctx, cfg)
    with torch_threads(cfg.threads):
        done = run_batches(
            items,
            setup=lambda: setup(ctx),
            process_batch=process_batch,
            outputs=(PSEUDO, REJECTED),
            chunk_dir=ctx.work_dir / "chunks",
            run_root=ctx.run.root,
            chunk_size=cfg.chunk_size,
            desc="prompt_seg",
            progress=ctx.progress,
        )
    all_rows, all_rejected = done.tables[PSEUDO], done.tables[REJECTED]
    tables.write(ctx.work_dir / "pseudo_labels.parquet", PSEUDO, all_rows)
    tables.write(ctx.work_dir / "rejected.parquet", REJECTED, all_rejected)
    reasons: dict[str, int] = defaultdict(int)
    for r in all_rejected:
        reasons[r["reason"]] += 1
    counts = {
        "images": len(items),
        "rescued_images": sum(1 for r in items if not r["boxes"]),
        "pseudo_labels": len(all_rows),
        "rescued_labels": sum(1 for r in all_rows if r.get("rescued")),
        "rejected": len(all_rejected),
        "reject_reasons": dict(reasons),
        "chunks_reused": done.chunks_reused,
        "segmenter": cfg.segmenter,
    }
    outputs = {
        "pseudo_labels": ctx.run.rel(ctx.work_dir / "pseudo_labels.parquet"),
        "rejected": ctx.run.rel(ctx.work_dir / "rejected.parquet"),
    }
    return StageResult(outputs=outputs, counts=counts)


STAGE = StageSpec(name="prompt_seg", run=run, depends=("ingest", "cam"))
