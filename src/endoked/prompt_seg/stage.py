"""The prompt_seg stage: ``cam/boxes.parquet`` (+ the saved CAMs) -> pseudo masks.

Images with CAM boxes, and (``rescue_dropped``) images the cam stage dropped for a box-filter reason, get one
mask each: the best of many candidate prompts (``selection``), kept when it passes the pseudo-label filter.

Outputs: ``prompt_seg/masks/<exam_id>/<stem>.png`` (0/255, image size; several boxes of an image are
merged), ``prompt_seg/pseudo_labels.parquet`` ("pseudo_labels": exam_id, image, mask, score, source and the
quality fields), ``prompt_seg/rejected.parquet`` ("rejected": images whose mask failed the filter, with the
reason) and ``prompt_seg/overlays/*.png`` for a sample. Work goes in chunks of ``prompt_seg.chunk_size``
images (``prompt_seg/chunks/part-NNNNN.parquet``), reused when an interrupted run resumes.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked import tables
from endoked.boxes import DROP_REASONS
from endoked.errors import DataFormatError, StageError
from endoked.imaging import mask_to_u8, read_rgb, resize_map, write_png
from endoked.io import atomic_write_bytes, read_parquet, sha256_bytes, write_parquet
from endoked.pipeline import StageContext, StageResult, StageSpec
from endoked.progress import bar
from endoked.prompt_seg.base import create_segmenter
from endoked.prompt_seg.config import PromptSegConfig
from endoked.prompt_seg.overlay import overlay_png
from endoked.prompt_seg.refine import MaskResult, Selection, passes_filter, segment_box, select_mask

logger = logging.getLogger(__name__)

PSEUDO_SCHEMA = tables.spec("prompt_seg/pseudo_labels").schema
# cam-stage drops by a box filter on a CAM with foreground: its components may still hold the polyp
RESCUABLE = frozenset(DROP_REASONS) - {"no_foreground"}
REJECTED_SCHEMA = tables.spec("prompt_seg/rejected").schema

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


class _CamStore:
    """Lazy access to the CAMs the cam stage saved (one npz per chunk)."""

    def __init__(self, ctx: StageContext) -> None:
        self.run = ctx.run
        self.index: dict[tuple[str, str], tuple[str, str]] = {}
        try:
            table = read_parquet(ctx.upstream("cam", "cams"))
        except StageError:
            return
        for r in table.to_pylist():
            if r["file"]:
                self.index[(str(r["exam_id"]), str(r["image"]))] = (str(r["file"]), str(r["key"]))
        self._file: str | None = None
        self._npz: dict[str, np.ndarray] = {}

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
    return Selection(thresholds=tuple(cfg.candidate_thresholds), scales=tuple(cfg.candidate_scales),
                     min_component_area=cfg.candidate_min_area, w_score=cfg.select_weight_score,
                     w_consensus=cfg.select_weight_consensus, w_cam=cfg.select_weight_agreement)


def _segment_image(seg: Any, cfg: PromptSegConfig, img: np.ndarray, boxes: list[dict[str, Any]],
                   cam_small: np.ndarray | None) -> tuple[list[MaskResult], np.ndarray | None]:
    seg.set_image(img)
    cam = resize_map(cam_small, img.shape[:2]) if cam_small is not None else None
    arr = np.array([[b["x0"], b["y0"], b["x1"], b["y1"]] for b in boxes], dtype=np.float32).reshape(-1, 4)
    if cfg.selection == "consensus":
        best = select_mask(seg, cam, arr, _selection(cfg), cfg.keep_largest_component, cfg.fill_holes)
        return ([best] if best is not None else []), cam
    results = [segment_box(seg, b, cam, cfg.candidate_thresholds, cfg.candidate_scales, cfg.select_weight_cam,
                           cfg.refine_iters, cfg.keep_largest_component, cfg.fill_holes) for b in arr]
    return results, cam


def _filter(r: MaskResult, cfg: PromptSegConfig) -> str | None:
    return passes_filter(r, cfg.min_score, cfg.min_cam_agreement, cfg.min_area_fraction, cfg.max_area_fraction,
                         cfg.min_box_fill, cfg.min_rank if cfg.selection == "consensus" else 0.0)


def _nan_to_none(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def _process_chunk(ctx: StageContext, cfg: PromptSegConfig, seg: Any, items: list[tuple[tuple[str, str], list]],
                   paths: dict[tuple[str, str], str], names: dict[tuple[str, str], str], cams: _CamStore,
                   overlay_budget: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for (exam_id, image), boxes in items:
        ident: dict[str, Any] = {"exam_id": exam_id, "image": image}
        try:
            img = read_rgb(paths[(exam_id, image)])
        except (DataFormatError, KeyError) as exc:
            logger.warning("prompt_seg: %s/%s unreadable: %s", exam_id, image, exc)
            rejected.append({**ident, "reason": "unreadable_image"})
            continue
        results, cam = _segment_image(seg, cfg, img, boxes, cams.get(exam_id, image))
        kept = [r for r in results if _filter(r, cfg) is None]
        if not kept:
            reason = _filter(results[0], cfg) if results else "no_candidates"
            rejected.append({**ident, "reason": reason})
            continue
        mask = np.logical_or.reduce([r.mask for r in kept])
        rel = names[(exam_id, image)]
        write_png(ctx.run.abs(rel), mask_to_u8(mask))
        best = max(kept, key=lambda r: r.score)
        agreement = float(np.nanmean([r.cam_agreement for r in kept])) if cam is not None else None
        if cfg.selection == "consensus":
            total = cfg.select_weight_score + cfg.select_weight_consensus + cfg.select_weight_agreement
            score = float(np.clip(best.rank / total, 0.0, 1.0)) if total > 0 else best.score
        else:
            score = float(np.mean([r.score for r in kept]))
        rows.append({**ident, "mask": rel, "score": score, "consensus": _nan_to_none(best.consensus),
                     "rank": _nan_to_none(best.rank), "rescued": not boxes,
                     "source": f"cam+{cfg.segmenter}", "segmenter_score": best.score, "cam_agreement": agreement,
                     "area_fraction": float(mask.mean()), "box_fill": best.box_fill, "n_boxes": len(kept),
                     "box_x0": float(best.box[0]), "box_y0": float(best.box[1]), "box_x1": float(best.box[2]),
                     "box_y1": float(best.box[3])})
        if overlay_budget[0] > 0:
            overlay_budget[0] -= 1
            boxes_xyxy = np.array([[b["x0"], b["y0"], b["x1"], b["y1"]] for b in boxes], dtype=np.float32)
            name = f"{safe_name(exam_id)}__{safe_name(Path(image).stem)}.png"
            atomic_write_bytes(ctx.work_dir / "overlays" / name,
                               overlay_png(img, cam, boxes_xyxy, np.stack([r.box for r in kept]), mask))
    return rows, rejected


def run(ctx: StageContext) -> StageResult:
    """Masks for every image with CAM boxes, filtered, in resumable chunks."""
    cfg: PromptSegConfig = ctx.config.prompt_seg
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    images = read_parquet(ctx.upstream("ingest", "images")).to_pylist()
    paths = {(str(r["exam_id"]), str(r["image"])): str(r["path"]) for r in images}
    by_image: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for b in read_parquet(ctx.upstream("cam", "boxes")).to_pylist():
        by_image[(str(b["exam_id"]), str(b["image"]))].append(b)
    cams = _CamStore(ctx)
    if cfg.selection == "consensus" and cfg.rescue_dropped:
        for d in read_parquet(ctx.upstream("cam", "dropped")).to_pylist():
            key = (str(d["exam_id"]), str(d["image"]))
            if d["reason"] in RESCUABLE and key in cams.index and key not in by_image:
                by_image[key] = []
    items = sorted(by_image.items(), key=lambda kv: kv[0])
    names = mask_relpaths([k for k, _ in items])
    seg = None
    chunk_dir = ctx.work_dir / "chunks"
    all_rows: list[dict[str, Any]] = []
    all_rejected: list[dict[str, Any]] = []
    overlay_budget = [cfg.overlays]
    reused = 0
    with bar(len(items), desc="prompt_seg", unit="img", enabled=ctx.progress) as pb:
        for n, start in enumerate(range(0, len(items), cfg.chunk_size)):
            chunk = items[start:start + cfg.chunk_size]
            part, rej = chunk_dir / f"part-{n:05d}.parquet", chunk_dir / f"part-{n:05d}.rejected.parquet"
            if part.is_file() and rej.is_file():
                reused += 1
            else:
                if seg is None:
                    seg = create_segmenter(cfg.segmenter, **_segmenter_kwargs(cfg, ctx.config.device))
                rows, rejected = _process_chunk(ctx, cfg, seg, chunk, paths, names, cams, overlay_budget)
                write_parquet(rej, rejected, schema=REJECTED_SCHEMA)
                write_parquet(part, rows, schema=PSEUDO_SCHEMA)
            all_rows.extend(read_parquet(part).to_pylist())
            all_rejected.extend(read_parquet(rej).to_pylist())
            pb.update(len(chunk))
    write_parquet(ctx.work_dir / "pseudo_labels.parquet", all_rows, schema=PSEUDO_SCHEMA)
    write_parquet(ctx.work_dir / "rejected.parquet", all_rejected, schema=REJECTED_SCHEMA)
    reasons: dict[str, int] = defaultdict(int)
    for r in all_rejected:
        reasons[r["reason"]] += 1
    counts = {"images": len(items), "rescued_images": sum(1 for _, b in items if not b),
              "pseudo_labels": len(all_rows), "rescued_labels": sum(1 for r in all_rows if r.get("rescued")),
              "rejected": len(all_rejected),
              "reject_reasons": dict(reasons), "chunks_reused": reused, "segmenter": cfg.segmenter}
    outputs = {"pseudo_labels": ctx.run.rel(ctx.work_dir / "pseudo_labels.parquet"),
               "rejected": ctx.run.rel(ctx.work_dir / "rejected.parquet")}
    return StageResult(outputs=outputs, counts=counts)


def _segmenter_kwargs(cfg: PromptSegConfig, device: str) -> dict[str, Any]:
    if cfg.segmenter == "ellipse":
        return {}
    kw: dict[str, Any] = {"weights": cfg.weights, "device": device, "multimask": cfg.multimask,
                          "decode_batch": cfg.decode_batch}
    if cfg.segmenter == "litemedsam":
        kw.update(bf16=cfg.bf16, channels_last=cfg.channels_last)
    else:
        kw.update(model_type=cfg.sam_model_type)
    return kw


STAGE = StageSpec(name="prompt_seg", run=run, depends=("ingest", "cam"))
