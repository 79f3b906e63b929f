"""The cam stage: ``ingest/images.parquet`` + ``mil/selection.parquet`` -> ``cam/boxes.parquet``,
``cam/dropped.parquet``, ``cam/cams.parquet`` (index of the saved CAMs) and ``cam/classifier.pt``.

1. The classifier is trained on the MIL selection (label 1 vs 0) with a frozen encoder and cached
   features, or loaded from ``cam.checkpoint``; the trained head is written first, so a resumed run
   does not train again.
2. Every selected positive image gets a CAM and boxes; work goes in chunks of ``cam.chunk_size``
   images (``cam/chunks/part-NNNNN.*``), each written atomically and reused on resume.
3. Unreadable images and images that fail a filter are listed in ``dropped`` with the reason.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from endoked import tables
from endoked.cam.config import CamConfig
from endoked.cam.core import ImageCam, build_net, cams_for_images, load_classifier, save_classifier
from endoked.cam.train import cache_features, fit_head, to_input
from endoked.device import resolve_device
from endoked.errors import DataFormatError, StageError
from endoked.io import atomic_write_bytes, read_parquet, write_parquet
from endoked.pipeline import StageContext, StageResult, StageSpec
from endoked.progress import bar

logger = logging.getLogger(__name__)

BOXES_SCHEMA = tables.spec("cam/boxes").schema
DROPPED_SCHEMA = tables.spec("cam/dropped").schema
CAMS_SCHEMA = tables.spec("cam/cams").schema


def read_rgb(path: str | Path) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB pixels of an image file (EXIF orientation not applied, as in ingest)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read image {path}: {exc}") from exc


def _selection_rows(ctx: StageContext) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    images = read_parquet(ctx.upstream("ingest", "images")).to_pylist()
    paths = {(str(r["exam_id"]), str(r["image"])): str(r["path"]) for r in images}
    selection = read_parquet(ctx.upstream("mil", "selection")).to_pylist()
    for i, row in enumerate(selection):
        if (str(row["exam_id"]), str(row["image"])) not in paths:
            raise StageError(f"mil selection row {i} ({row['exam_id']}/{row['image']}) is not in ingest/images")
    return selection, paths


def _train(ctx: StageContext, cfg: CamConfig, selection: list[dict[str, Any]], paths: dict[tuple[str, str], str],
           device: Any) -> tuple[Any, Any, CamConfig, dict[str, Any]]:
    ckpt = ctx.work_dir / "classifier.pt"
    if cfg.checkpoint:
        net, normalize, arch = load_classifier(cfg.checkpoint, cfg)
        save_classifier(net, arch, ckpt, extra={"copied_from": str(cfg.checkpoint)})
        return net.to(device), normalize, arch, {"classifier": "loaded"}
    if ckpt.is_file():
        net, normalize, arch = load_classifier(ckpt, cfg)
        return net.to(device), normalize, arch, {"classifier": "resumed"}
    rng = np.random.default_rng(ctx.config.seed)
    train_rows: list[dict[str, Any]] = []
    for label in (1, 0):
        rows = [r for r in selection if int(r["label"]) == label]
        if cfg.max_train_per_class is not None and len(rows) > cfg.max_train_per_class:
            keep = np.sort(rng.choice(len(rows), cfg.max_train_per_class, replace=False))
            rows = [rows[i] for i in keep]
        train_rows.extend(rows)
    net, normalize = build_net(cfg)
    net.to(device)
    skipped = 0

    def pairs() -> Any:
        nonlocal skipped
        for r in train_rows:
            try:
                img = read_rgb(paths[(str(r["exam_id"]), str(r["image"]))])
            except DataFormatError as exc:
                logger.warning("cam training: skipping %s/%s: %s", r["exam_id"], r["image"], exc)
                skipped += 1
                continue
            yield to_input(img, cfg.input_size), float(r["label"])

    with bar(len(train_rows), desc="cam features", unit="img", enabled=ctx.progress) as pb:
        cache = cache_features(net, pairs(), normalize, batch_size=cfg.encode_batch_size, flip=cfg.train_flip,
                               device=device, on_batch=pb.update)
    history = fit_head(net, cache, epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       batch_size=cfg.batch_size, seed=ctx.config.seed, feature_dropout=cfg.feature_dropout,
                       progress=ctx.progress)
    info = {"classifier": "trained", "train_images": len(train_rows) - skipped, "train_skipped": skipped,
            "final_loss": round(history[-1], 5)}
    save_classifier(net, cfg, ckpt, extra=info)
    return net, normalize, cfg, info


def _chunk_rows(rows: list[dict[str, Any]], results: list[ImageCam | str], cam_file: str
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], dict[str, np.ndarray]]:
    boxes: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    cams_idx: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for k, (row, res) in enumerate(zip(rows, results, strict=True)):
        ident: dict[str, Any] = {"exam_id": str(row["exam_id"]), "image": str(row["image"])}
        if isinstance(res, str):
            dropped.append({**ident, "reason": res, "class_prob": None})
            continue
        key = f"c{k}"
        arrays[key] = np.round(res.cam * 255).astype(np.uint8)
        cams_idx.append({**ident, "file": cam_file, "key": key})
        if res.reason is not None:
            dropped.append({**ident, "reason": res.reason, "class_prob": res.prob})
            continue
        for j, b in enumerate(res.boxes):
            boxes.append({**ident, "box_id": j, "x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1,
                          "cam_score": b.score, "class_prob": res.prob, "area_fraction": b.area_fraction})
    return boxes, dropped, cams_idx, arrays


def run(ctx: StageContext) -> StageResult:
    """Train (or load) the classifier, then CAMs and boxes for every selected positive image, in chunks."""
    cfg: CamConfig = ctx.config.cam
    device = resolve_device(ctx.config.device)
    selection, paths = _selection_rows(ctx)
    net, normalize, arch, info = _train(ctx, cfg, selection, paths, device)
    infer_cfg = cfg.model_copy(update={k: getattr(arch, k) for k in ("levels", "head", "pool", "input_size")})
    targets = [r for r in selection if int(r["label"]) == 1]
    chunk_dir = ctx.work_dir / "chunks"
    all_boxes: list[dict[str, Any]] = []
    all_dropped: list[dict[str, Any]] = []
    all_cams: list[dict[str, Any]] = []
    reused = 0
    with bar(len(targets), desc="cam", unit="img", enabled=ctx.progress) as pb:
        for n, start in enumerate(range(0, len(targets), cfg.chunk_size)):
            rows = targets[start:start + cfg.chunk_size]
            stem = chunk_dir / f"part-{n:05d}"
            names = {"boxes": stem.with_suffix(".boxes.parquet"), "dropped": stem.with_suffix(".dropped.parquet"),
                     "cams": stem.with_suffix(".cams.parquet"), "npz": stem.with_suffix(".npz")}
            if all(p.is_file() for p in names.values()):
                reused += 1
                pb.update(len(rows))
            else:
                results: list[ImageCam | str] = []
                for b0 in range(0, len(rows), cfg.encode_batch_size):
                    batch = rows[b0:b0 + cfg.encode_batch_size]
                    imgs: list[np.ndarray] = []
                    slots: list[int] = []
                    results_batch: list[ImageCam | str] = []
                    for r in batch:
                        try:
                            imgs.append(read_rgb(paths[(str(r["exam_id"]), str(r["image"]))]))
                            slots.append(len(results_batch))
                            results_batch.append("")
                        except DataFormatError:
                            results_batch.append("unreadable_image")
                    for slot, res in zip(slots, cams_for_images(net, normalize, imgs, infer_cfg, device), strict=True):
                        results_batch[slot] = res
                    results.extend(results_batch)
                    pb.update(len(batch))
                rel_npz = ctx.run.rel(names["npz"]) if cfg.save_cams else ""
                boxes, dropped, cams_idx, arrays = _chunk_rows(rows, results, rel_npz)
                buf = io.BytesIO()
                np.savez_compressed(buf, **(arrays if cfg.save_cams else {}))  # type: ignore[arg-type]
                atomic_write_bytes(names["npz"], buf.getvalue())
                write_parquet(names["boxes"], boxes, schema=BOXES_SCHEMA)
                write_parquet(names["dropped"], dropped, schema=DROPPED_SCHEMA)
                write_parquet(names["cams"], cams_idx if cfg.save_cams else [], schema=CAMS_SCHEMA)
            all_boxes.extend(read_parquet(names["boxes"]).to_pylist())
            all_dropped.extend(read_parquet(names["dropped"]).to_pylist())
            all_cams.extend(read_parquet(names["cams"]).to_pylist())
    out = ctx.work_dir
    write_parquet(out / "boxes.parquet", all_boxes, schema=BOXES_SCHEMA)
    write_parquet(out / "dropped.parquet", all_dropped, schema=DROPPED_SCHEMA)
    write_parquet(out / "cams.parquet", all_cams, schema=CAMS_SCHEMA)
    reasons: dict[str, int] = {}
    for r in all_dropped:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    images_with_boxes = len({(r["exam_id"], r["image"]) for r in all_boxes})
    counts: dict[str, Any] = {"images": len(targets), "images_with_boxes": images_with_boxes,
                              "boxes": len(all_boxes), "dropped": len(all_dropped), "chunks_reused": reused,
                              "drop_reasons": reasons, **info}
    outputs = {"boxes": ctx.run.rel(out / "boxes.parquet"), "dropped": ctx.run.rel(out / "dropped.parquet"),
               "cams": ctx.run.rel(out / "cams.parquet"), "checkpoint": ctx.run.rel(out / "classifier.pt")}
    return StageResult(outputs=outputs, counts=counts)


STAGE = StageSpec(name="cam", run=run, depends=("ingest", "mil"))
