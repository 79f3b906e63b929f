"""The cam stage: ``ingest/images.parquet`` + ``mil/selection.parquet`` -> ``cam/boxes.parquet``,
``cam/dropped.parquet``, ``cam/cams.parquet`` (index of the saved CAMs) and ``cam/classifier.pt``.

1. The classifier is trained on the MIL selection (label 1 vs 0) with a frozen encoder and cached
   features, or loaded from ``cam.checkpoint``; the trained head is written first, so a resumed run
   does not train again.
2. Every selected positive image gets a CAM and boxes: the batch core :func:`process_batch` (state: the
   classifier, built once) run by the generic driver (:mod:`endoked.batching`) in chunks of ``cam.chunk_size``
   images (``cam/chunks/part-NNNNN.*``, the CAMs in ``cam/chunks/cams-<digest>.npz``), each written
   atomically and reused on resume.
3. Unreadable images and images that fail a filter are listed in ``dropped`` with the reason.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from endoked import tables
from endoked.batching import BatchOutput, run_batches
from endoked.cam.config import CamConfig
from endoked.cam.core import ImageCam, build_net, cams_for_images, inference_net, load_classifier, save_classifier
from endoked.cam.train import cache_features, fit_head, to_input
from endoked.device import resolve_device
from endoked.errors import DataFormatError, StageError
from endoked.imaging import read_rgb
from endoked.io import sha256_json
from endoked.pipeline import StageContext, StageResult, StageSpec
from endoked.progress import bar

logger = logging.getLogger(__name__)

BOXES, DROPPED, CAMS = "cam/boxes", "cam/dropped", "cam/cams"
BOXES_SCHEMA = tables.spec(BOXES).schema
DROPPED_SCHEMA = tables.spec(DROPPED).schema
CAMS_SCHEMA = tables.spec(CAMS).schema


def _selection_rows(ctx: StageContext) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    paths = {k: str(v) for k, v in tables.image_paths(ctx.run).items()}
    selection = tables.selection(ctx.run)
    for i, row in enumerate(selection):
        if (str(row["exam_id"]), str(row["image"])) not in paths:
            raise StageError(f"mil selection row {i} ({row['exam_id']}/{row['image']}) is not in ingest/images")
    return selection, paths


def _train(
    ctx: StageContext, cfg: CamConfig, selection: list[dict[str, Any]], paths: dict[tuple[str, str], str], device: Any
) -> tuple[Any, Any, CamConfig, dict[str, Any]]:
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
            yield to_input(img, cfg.image_size), float(r["label"])

    with bar(len(train_rows), desc="cam features", unit="img", enabled=ctx.progress) as pb:
        cache = cache_features(
            net,
            pairs(),
            normalize,
            batch_size=cfg.encode_batch_size,
            flip=cfg.train_flip,
            device=device,
            on_batch=pb.update,
            jitter=cfg.train_jitter,
            seed=ctx.config.seed,
        )
    history = fit_head(
        net,
        cache,
        epochs=cfg.epochs,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        batch_size=cfg.batch_size,
        seed=ctx.config.seed,
        feature_dropout=cfg.feature_dropout,
        progress=ctx.progress,
    )
    info = {
        "classifier": "trained",
        "train_images": len(train_rows) - skipped,
        "train_skipped": skipped,
        "final_loss": round(history[-1], 5),
    }
    save_classifier(net, cfg, ckpt, extra=info)
    return net, normalize, cfg, info


@dataclass
class CamState:
    """What every batch needs: the trained classifier on its device, its normalisation, the inference config."""

    net: Any
    normalize: Any
    cfg: CamConfig
    device: Any


def process_batch(rows: list[dict[str, Any]], state: CamState) -> BatchOutput:
    """CAMs and boxes for a batch of selected images (rows: ``exam_id``, ``image``, ``path``).

    Returns ``cam/boxes``, ``cam/dropped`` and ``cam/cams`` rows, and (``save_cams``) one compressed npz of the
    batch's CAMs (uint8), named by the digest of its input rows.
    """
    cfg = state.cfg
    results: list[ImageCam | str] = []
    for b0 in range(0, len(rows), cfg.encode_batch_size):
        imgs: list[np.ndarray] = []
        slots: list[int] = []
        batch_results: list[ImageCam | str] = []
        for r in rows[b0 : b0 + cfg.encode_batch_size]:
            try:
                imgs.append(read_rgb(r["path"]))
                slots.append(len(batch_results))
                batch_results.append("")
            except DataFormatError:
                batch_results.append("unreadable_image")
        for slot, image_cam in zip(
            slots, cams_for_images(state.net, state.normalize, imgs, cfg, state.device), strict=True
        ):
            batch_results[slot] = image_cam
        results.extend(batch_results)
    cam_file = f"cam/chunks/cams-{sha256_json(rows)[:16]}.npz" if cfg.save_cams else ""
    out = BatchOutput(tables={BOXES: [], DROPPED: [], CAMS: []})
    arrays: dict[str, np.ndarray] = {}
    for k, (row, res) in enumerate(zip(rows, results, strict=True)):
        ident: dict[str, Any] = {"exam_id": str(row["exam_id"]), "image": str(row["image"])}
        if isinstance(res, str):
            out.tables[DROPPED].append({**ident, "reason": res, "class_prob": None})
            continue
        if cfg.save_cams:
            arrays[f"c{k}"] = np.round(res.cam * 255).astype(np.uint8)
            out.tables[CAMS].append({**ident, "file": cam_file, "key": f"c{k}"})
        if res.reason is not None:
            out.tables[DROPPED].append({**ident, "reason": res.reason, "class_prob": res.prob})
            continue
        for j, b in enumerate(res.boxes):
            out.tables[BOXES].append(
                {
                    **ident,
                    "box_id": j,
                    "x0": b.x0,
                    "y0": b.y0,
                    "x1": b.x1,
                    "y1": b.y1,
                    "cam_score": b.score,
                    "class_prob": res.prob,
                    "area_fraction": b.area_fraction,
                }
            )
    if cfg.save_cams:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        out.files[cam_file] = buf.getvalue()
    return out


def run(ctx: StageContext) -> StageResult:
    """Train (or load) the classifier, then CAMs and boxes for every selected positive image, in chunks."""
    cfg: CamConfig = ctx.config.cam
    device = resolve_device(ctx.config.device)
    selection, paths = _selection_rows(ctx)
    net, normalize, arch, info = _train(ctx, cfg, selection, paths, device)
    infer_cfg = cfg.model_copy(update={k: getattr(arch, k) for k in ("levels", "head", "pool", "image_size")})
    targets = [
        {"exam_id": str(r["exam_id"]), "image": str(r["image"]), "path": paths[(str(r["exam_id"]), str(r["image"]))]}
        for r in selection
        if int(r["label"]) == 1
    ]
    done = run_batches(
        targets,
        setup=lambda: CamState(inference_net(net, infer_cfg, device), normalize, infer_cfg, device),
        process_batch=process_batch,
        outputs=(BOXES, DROPPED, CAMS),
        chunk_dir=ctx.work_dir / "chunks",
        run_root=ctx.run.root,
        chunk_size=cfg.chunk_size,
        desc="cam",
        progress=ctx.progress,
    )
    all_boxes, all_dropped, all_cams = (done.tables[n] for n in (BOXES, DROPPED, CAMS))
    out = ctx.work_dir
    tables.write(out / "boxes.parquet", BOXES, all_boxes)
    tables.write(out / "dropped.parquet", DROPPED, all_dropped)
    tables.write(out / "cams.parquet", CAMS, all_cams)
    reasons: dict[str, int] = {}
    for r in all_dropped:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    images_with_boxes = len({(r["exam_id"], r["image"]) for r in all_boxes})
    counts: dict[str, Any] = {
        "images": len(targets),
        "images_with_boxes": images_with_boxes,
        "boxes": len(all_boxes),
        "dropped": len(all_dropped),
        "chunks_reused": done.chunks_reused,
        "drop_reasons": reasons,
        **info,
    }
    outputs = {
        "boxes": ctx.run.rel(out / "boxes.parquet"),
        "dropped": ctx.run.rel(out / "dropped.parquet"),
        "cams": ctx.run.rel(out / "cams.parquet"),
        "checkpoint": ctx.run.rel(out / "classifier.pt"),
    }
    return StageResult(outputs=outputs, counts=counts)


STAGE = StageSpec(name="cam", run=run, depends=("ingest", "mil"))
