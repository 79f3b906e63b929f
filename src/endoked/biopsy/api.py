"""Train, predict and evaluate the optical-biopsy classifier (the I/O edge over the pure core).

``train_classifier`` writes into its output folder:

- ``model.pt``: self-contained checkpoint (encoder, head, temperature, threshold, config);
- ``train.json``: counts, step budgets, timings, pre-training validation AUROC against report labels, which
  weights fine-tuning kept (``finetune.select``: rule, criterion, ``alpha``, validation figure of each
  candidate), calibration (temperature, threshold and how it was chosen);
- ``splits.csv``: image, path, label, group, set (pretrain / finetune), split (train / val);
- ``rejects.csv``: rows of the labelled set that could not be used, with the reason (when any);
- ``cache/``: encoder outputs, reused by a re-run with the same images and encoder.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked import tables
from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.data import (
    CLASS_NAMES,
    Box,
    LabelledImage,
    mask_box,
    pretrain_items,
    read_labelled_set,
    split_indices,
)
from endoked.biopsy.features import VIEWS, Features, encode_items
from endoked.biopsy.metrics import evaluate, plot_roc, point_metrics
from endoked.biopsy.model import BiopsyModel, build_model, load_model, mil_encoder_state, save_model
from endoked.biopsy.train import calibrate, finetune, probabilities, train_steps
from endoked.device import resolve_device
from endoked.errors import ConfigError, DataFormatError, StageError
from endoked.imaging import read_mask
from endoked.io import atomic_write_json, atomic_write_text, sha256_file, sha256_json
from endoked.runfolder import RunFolder
from endoked.stats import auroc

logger = logging.getLogger(__name__)


def _run_table(run: RunFolder, stage: str, name: str, default: str) -> Path | None:
    """A finished stage's output from the run ledger, else the contract path when the file exists."""
    try:
        return run.output(stage, name)
    except StageError:
        path = run.abs(default)
        return path if path.is_file() else None


def pretrain_set_from_run(run_dir: Path, cfg: BiopsyConfig) -> tuple[list[LabelledImage], dict[str, int]]:
    """Pre-training images of a run folder (see :func:`endoked.biopsy.data.pretrain_items`).

    Reads ``extract/labels.parquet``, ``mil/image_scores.parquet``, ``ingest/images.parquet`` and, with
    ``cfg.crop_to_mask``, ``prompt_seg/pseudo_labels.parquet`` (mask PNGs relative to the run folder).

    Raises:
        StageError: a required table is missing.
    """
    run = RunFolder(run_dir)
    if not run.root.is_dir():
        raise StageError(f"run folder {run_dir} not found")
    loaded = {}
    for stage, name, default in (
        ("extract", "labels", "extract/labels.parquet"),
        ("mil", "image_scores", "mil/image_scores.parquet"),
        ("ingest", "images", "ingest/images.parquet"),
    ):
        path = _run_table(run, stage, name, default)
        if path is None:
            raise StageError(f"run {run.root} has no {default}; run `endoked run --out {run_dir} --to {stage}` first")
        loaded[name] = tables.read(path, f"{stage}/{name}").to_pylist()
    boxes: dict[tuple[str, str], Box] = {}
    if cfg.crop_to_mask:
        path = _run_table(run, "prompt_seg", "pseudo_labels", "prompt_seg/pseudo_labels.parquet")
        if path is None:
            logger.warning(
                "biopsy: crop_to_mask is set but the run has no prompt_seg pseudo labels; using whole images"
            )
        else:
            for row in tables.read(path, "prompt_seg/pseudo_labels").to_pylist():
                try:
                    box = mask_box(read_mask(run.abs(str(row["mask"]))), cfg.crop_margin)
                except (OSError, ValueError) as exc:
                    logger.warning("biopsy: pseudo mask %s unreadable (%s); image kept whole", row["mask"], exc)
                    continue
                if box is not None:
                    boxes[(str(row["exam_id"]), str(row["image"]))] = box
    items, counts = pretrain_items(loaded["labels"], loaded["image_scores"], loaded["images"], cfg, boxes)
    logger.info("biopsy pre-training set: %s", counts)
    return items, counts


@dataclass
class _Encoder:
    """What every feature pass of one training run shares: the model, its device, the cache and its key."""

    model: BiopsyModel
    cfg: BiopsyConfig
    device: torch.device
    workers: int
    cache_dir: Path | None
    signature: str
    progress: bool | None

    def __call__(self, items: list[LabelledImage], views: int, name: str) -> Features:
        cfg = self.cfg
        store = torch.float16 if (cfg.cache_dtype == "float16" and cfg.trainable_blocks > 0) else None
        cache = self.cache_dir / f"{name}.pt" if self.cache_dir is not None else None
        return encode_items(
            items,
            self.model.encoder.prefix,
            cfg.image_size,
            views,
            self.device,
            cfg.feature_batch_size,
            self.workers,
            store,
            cache,
            self.signature,
            self.progress,
            desc=f"biopsy encode {name}",
        )


@dataclass
class _Phase:
    """One training phase's result: validation features and labels, its summary and its split rows."""

    val_feats: Features
    val_y: np.ndarray
    summary: dict[str, Any]
    split_lines: list[str]


def _train_phase(
    encode: _Encoder,
    items: list[LabelledImage],
    name: str,
    *,
    seed: int,
    pretrained: bool | None = None,
) -> _Phase:
    """Split ``items`` by group, encode both splits (train with flip views), train and return the phase.

    ``pretrained`` None: report-supervised pre-training (``pretrain_steps`` at ``lr`` with
    ``pretrain_label_smoothing``); True / False: fine-tuning from the pre-trained / a fresh head by
    :func:`endoked.biopsy.train.finetune` (the recipe the data-efficiency curve uses), whose choice of weights
    on the validation split is recorded in the summary under ``select``.
    """
    cfg, model, dev = encode.cfg, encode.model, encode.device
    y = np.array([it.label for it in items])
    tr, va = split_indices(y, [it.group for it in items], cfg.val_fraction, cfg.seed)
    n_views = len(VIEWS) if cfg.flip_views else 1
    feats = encode([items[i] for i in tr], n_views, f"{name}_train")
    val_feats = encode([items[i] for i in va], 1, f"{name}_val")
    select: dict[str, Any] | None = None
    if pretrained is None:
        log = train_steps(
            model,
            feats,
            y[tr],
            cfg,
            steps=cfg.pretrain_steps,
            lr=cfg.lr,
            label_smoothing=cfg.pretrain_label_smoothing,
            seed=seed,
            device=dev,
            progress=encode.progress,
            desc="biopsy pre-train",
        )
    else:
        log, fitted = finetune(
            model,
            feats,
            y[tr],
            val_feats,
            y[va],
            cfg,
            pretrained=pretrained,
            seed=seed,
            device=dev,
            progress=encode.progress,
            desc="biopsy fine-tune",
        )
        select = fitted[0][1]
    summary: dict[str, Any] = {"steps": log.steps, "seconds": log.seconds, "n_train": log.n_train}
    summary["losses"] = log.losses
    summary["unreadable"] = len(feats.failed) + len(val_feats.failed)
    if select is not None:
        summary["select"] = select
    return _Phase(val_feats, y[va], summary, _split_rows(items, tr, va, name))


def _split_rows(items: list[LabelledImage], train: np.ndarray, val: np.ndarray, set_name: str) -> list[str]:
    split = {int(i): "train" for i in train} | {int(i): "val" for i in val}
    out = []
    for i, it in enumerate(items):
        out.append(
            ",".join(
                _csv_cell(v) for v in (it.image, it.path, CLASS_NAMES[it.label], it.group, set_name, split.get(i, ""))
            )
        )
    return out


def _csv_cell(value: Any) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow([value])
    return buf.getvalue().rstrip("\r\n")


def train_classifier(
    cfg: BiopsyConfig,
    out_dir: Path,
    *,
    run_dir: Path | None = None,
    labels: Path | None = None,
    device: str = "auto",
    workers: int = 2,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Pre-train on a run's report-derived labels (if ``run_dir``), fine-tune on a labelled set (if ``labels``),
    calibrate on the validation split and save the model (see the module docstring for the files).

    Without ``labels`` the model is calibrated on the validation exams of the pre-training set (report labels).

    Returns:
        The summary written to ``train.json``.

    Raises:
        ConfigError: neither ``run_dir`` nor ``labels`` given.
        StageError / DataFormatError: missing run tables, unusable labelled set.
    """
    if run_dir is None and labels is None:
        raise ConfigError(
            "give a run folder to pre-train from (--run), a labelled set to fine-tune on (--labels), or both"
        )
    t0 = time.perf_counter()
    dev = resolve_device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "device": str(dev)}
    pre_items: list[LabelledImage] = []
    encoder_state = None
    mil_sha = None
    if run_dir is not None:
        pre_items, summary["pretrain_counts"] = pretrain_set_from_run(run_dir, cfg)
        if not pre_items:
            raise StageError(
                f"run {run_dir}: no exam with a known pathology class and scored images; check "
                "extract/labels.parquet (pathology) and biopsy.neoplastic/non_neoplastic"
            )
        mil_ckpt = _run_table(RunFolder(run_dir), "mil", "checkpoint", "mil/model.pt")
        if cfg.init_from_mil:
            if mil_ckpt is None:
                logger.warning("biopsy: init_from_mil is set but the run has no mil/model.pt; ImageNet weights used")
            else:
                encoder_state = mil_encoder_state(mil_ckpt, cfg.backbone)
                mil_sha = sha256_file(mil_ckpt)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, encoder_state).to(dev).eval()
    source = getattr(model.encoder.model, "weights_source", None)
    summary["encoder_weights"] = (
        f"MIL checkpoint (sha256 {mil_sha})" if mil_sha else (source.describe() if source is not None else "unknown")
    )
    signature = sha256_json(
        {
            "backbone": cfg.backbone,
            "weights": summary["encoder_weights"],
            "size": cfg.image_size,
            "blocks": cfg.trainable_blocks,
            "dtype": cfg.cache_dtype,
        }
    )
    encode = _Encoder(model, cfg, dev, workers, out_dir / "cache", signature, progress)
    split_lines = ["image,path,label,group,set,split"]
    last: _Phase | None = None
    if pre_items:
        last = _train_phase(encode, pre_items, "pretrain", seed=cfg.seed)
        p = probabilities(model, last.val_feats, dev)
        ok = np.isfinite(p)
        summary["pretrain"] = {
            **{k: last.summary[k] for k in ("steps", "seconds", "n_train")},
            "n_val": int(ok.sum()),
            "losses": last.summary["losses"],
            "val_auroc_vs_report_labels": auroc(last.val_y[ok], p[ok]) if ok.any() else None,
        }
        split_lines += last.split_lines
    if labels is not None:
        items, errors = read_labelled_set(labels, cfg)
        if errors:
            atomic_write_text(
                out_dir / "rejects.csv",
                "row,image,error\n"
                + "".join(",".join(_csv_cell(e[k]) for k in ("row", "image", "error")) + "\n" for e in errors),
            )
        last = _train_phase(encode, items, "finetune", seed=cfg.seed + 1, pretrained=bool(pre_items))
        summary["finetune"] = {
            **{k: last.summary[k] for k in ("steps", "seconds", "n_train")},
            "n_val": len(last.val_y),
            "losses": last.summary["losses"],
            "rejected_rows": len(errors),
            "unreadable": last.summary["unreadable"],
            "select": last.summary["select"],
        }
        split_lines += last.split_lines
    if last is None:  # unreachable: one of the two sets is given
        raise ConfigError("nothing to train on")
    summary["calibration"] = calibrate(model, last.val_feats, last.val_y, cfg, dev)
    summary["calibration"]["source"] = "finetune_val" if labels is not None else "pretrain_val (report labels)"
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    save_model(out_dir / "model.pt", model, cfg, {k: v for k, v in summary.items() if k != "config"})
    atomic_write_text(out_dir / "splits.csv", "\n".join(split_lines) + "\n")
    atomic_write_json(out_dir / "train.json", summary)
    return summary


def _items_for_prediction(images: Path, cfg: BiopsyConfig) -> tuple[list[LabelledImage], list[dict[str, Any]]]:
    """Images to score: a labelled set (CSV/folder), an image folder, or one image file."""
    images = Path(images)
    if images.is_file() and images.suffix.lower() != ".csv":
        return [LabelledImage(images.name, str(images), -1, "")], []
    if images.is_dir() and not any(p.is_dir() for p in images.iterdir()):
        files = sorted(
            p
            for p in images.iterdir()
            if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
        )
        if not files:
            raise DataFormatError(f"{images}: no image files (.jpg, .png, ...)")
        return [LabelledImage(p.name, str(p), -1, "") for p in files], []
    return read_labelled_set(images, cfg)


def predict_images(
    model_path: Path,
    images: Path,
    device: str = "auto",
    workers: int = 2,
    tta: bool = False,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Score images with a saved model.

    Returns:
        Rows ``{"image", "path", "prob_neoplastic" (float | None), "prediction" (neoplastic | non_neoplastic |
        None), "label" (given label or None), "error"}`` in input order.
    """
    dev = resolve_device(device)
    model, cfg, _ = load_model(model_path, dev)
    items, errors = _items_for_prediction(images, cfg)
    feats = encode_items(
        items,
        model.encoder.prefix,
        cfg.image_size,
        len(VIEWS) if tta else 1,
        dev,
        cfg.feature_batch_size,
        workers,
        progress=progress,
        desc="biopsy predict",
    )
    probs = probabilities(model, feats, dev, tta=tta)
    rows = []
    for i, (it, p) in enumerate(zip(items, probs, strict=True)):
        ok = bool(np.isfinite(p))
        rows.append(
            {
                "image": it.image,
                "path": it.path,
                "prob_neoplastic": float(p) if ok else None,
                "prediction": CLASS_NAMES[int(p >= model.threshold)] if ok else None,
                "label": CLASS_NAMES[it.label] if it.label >= 0 else None,
                "error": feats.failed.get(i),
            }
        )
    rows += [
        {
            "image": e["image"],
            "path": None,
            "prob_neoplastic": None,
            "prediction": None,
            "label": None,
            "error": e["error"],
        }
        for e in errors
    ]
    return rows


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write :func:`predict_images` rows as CSV."""
    keys = ["image", "path", "prob_neoplastic", "prediction", "label", "error"]
    lines = [",".join(keys)] + [",".join(_csv_cell("" if r[k] is None else r[k]) for k in keys) for r in rows]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def evaluate_model(
    model_path: Path,
    labels: Path,
    out_dir: Path | None = None,
    device: str = "auto",
    workers: int = 2,
    tta: bool = False,
    progress: bool | None = None,
    cfg_override: BiopsyConfig | None = None,
) -> dict[str, Any]:
    """Score a labelled set with a saved model: AUROC, accuracy, sensitivity, specificity at the model's
    threshold, with bootstrap CIs (``bootstrap``/``ci_level``/``seed`` of the model's config, or of
    ``cfg_override``). With ``out_dir``: ``metrics.json``, ``predictions.csv`` and ``roc.png``."""
    rows = predict_images(model_path, labels, device, workers, tta, progress)
    model, cfg, _ = load_model(model_path, "cpu")
    ecfg = cfg_override or cfg
    scored = [r for r in rows if r["prob_neoplastic"] is not None and r["label"] is not None]
    if not scored:
        raise DataFormatError(f"{labels}: no labelled, readable image to evaluate")
    y = np.array([CLASS_NAMES.index(r["label"]) for r in scored])
    p = np.array([r["prob_neoplastic"] for r in scored])
    result = evaluate(y, p, model.threshold, ecfg.bootstrap, ecfg.ci_level, ecfg.seed)
    result["unscored"] = len(rows) - len(scored)
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_json(out_dir / "metrics.json", result)
        write_predictions(out_dir / "predictions.csv", rows)
        pm = point_metrics(y, p, model.threshold)
        plot_roc(
            out_dir / "roc.png",
            {"model": (y, p)},
            title="Neoplastic vs non-neoplastic",
            points={f"threshold {model.threshold:.2f}": (1 - pm["specificity"], pm["sensitivity"])},
        )
    return result
