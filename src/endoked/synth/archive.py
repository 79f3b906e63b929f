"""Synthetic archive writer: manifest + frames + ground truth.

Layout of ``DIR``::

    manifest.jsonl                 one exam a line: exam_id, report, pathology (absent when none), images
    <exam_id>/<NNN>.jpg            frames (JPEG), paths in the manifest are relative to DIR
    truth/exams.jsonl              per exam: id + the report-label contract keys (gold labels)
    truth/meta.jsonl               per exam: exam_id, category, lang, n_images, polyp_images, mass_images
    truth/images.csv               image, exam_id, polyp (0/1), mask (PNG path relative to DIR or empty), mass (0/1)
    truth/masks/<exam_id>/<NNN>.png  polyp masks, 0/255, frame size (polyp frames only)
    truth/synth.json               the config and counts of the run

No pipeline stage reads ``truth/``. Exam ``i`` depends only on ``(seed, i)`` and the config, so any number
of worker processes gives byte-identical output. An exam's frames are written into a hidden temporary
folder that is renamed into place when complete; tables are written atomically last, so a manifest never
lists a missing frame.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from endoked.errors import ConfigError
from endoked.imaging import encode_png
from endoked.io import atomic_write_json, atomic_write_text, read_jsonl, write_jsonl
from endoked.progress import bar
from endoked.synth.config import SynthConfig
from endoked.synth.findings import CATEGORIES, Findings, plan_categories
from endoked.synth.frames import FrameSpec, PolypSpec, encode_jpeg, render_frame, texture_bank
from endoked.synth.reports import choose_lang, exam_rng, render_exam_report
from endoked.workerpool import process_pool

logger = logging.getLogger(__name__)

TRUTH_DIR = "truth"
_FRAME_STREAM = 1
_KINDS = {
    "pedunculated": ("dome",),
    "sessile": ("dome", "ellipse", "lobulated"),
    "flat": ("flat",),
    "unspecified": ("dome", "ellipse", "lobulated", "flat"),
}


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_archive` wrote.

    Attributes:
        out_dir: the archive folder.
        manifest: ``out_dir/manifest.jsonl``.
        exams: number of exams.
        images: number of frames.
        polyp_images: frames showing at least one polyp.
        categories: exams per category.
        langs: exams per report language.
        seconds: wall time of the generation (0 when an identical archive already existed).
        reused: the archive already existed with the same config and was kept.
    """

    out_dir: Path
    manifest: Path
    exams: int
    images: int
    polyp_images: int
    categories: dict[str, int] = field(default_factory=dict)
    langs: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False

    @property
    def frames_per_s(self) -> float:
        """Generation throughput in frames per second (0 when reused)."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------------------------------------------------ frame plan


def _polyp_specs(rng: np.random.Generator, f: Findings, cfg: SynthConfig) -> tuple[PolypSpec, ...]:
    """Polyps to draw on one polyp frame of an exam with findings ``f``."""
    lo_a, hi_a = cfg.polyp_area
    if not f.groups:  # a hedged lesion that really is a small polyp
        return (PolypSpec(float(rng.uniform(0.01, max(0.011, min(0.05, hi_a)))), str(rng.choice(_KINDS["sessile"]))),)
    count = f.labels()["polyp_count"]
    hi = cfg.polyps_per_frame[1] if count is None else min(cfg.polyps_per_frame[1], count)
    n = int(rng.integers(min(cfg.polyps_per_frame[0], hi), hi + 1))
    specs = []
    for _ in range(n):
        g = f.groups[int(rng.integers(len(f.groups)))]
        size = max((s or 0) for s in g.sizes_mm) or int(rng.integers(3, 12))
        if rng.random() < cfg.small_polyp_rate:
            area = float(rng.uniform(0.008, min(0.03, lo_a)))
        else:
            area = float(np.clip((0.015 + 0.009 * size) * rng.uniform(0.6, 1.5), lo_a, hi_a))
        kind = "lobulated" if f.malignant_polyp else str(rng.choice(_KINDS[g.morphology]))
        specs.append(PolypSpec(area, kind))
    return tuple(specs)


def plan_frames(rng: np.random.Generator, f: Findings, cfg: SynthConfig) -> list[FrameSpec]:
    """Frame specs of one exam (which frames show polyps, masses, diverticula, colitis)."""
    n = int(rng.integers(cfg.images_per_exam[0], cfg.images_per_exam[1] + 1))
    order = rng.permutation(n)
    polyp_idx: set[int] = set()
    if f.shows_polyp:
        k = 1 if not f.groups else int(rng.integers(min(cfg.polyp_frames[0], n), min(cfg.polyp_frames[1], n) + 1))
        polyp_idx = {int(i) for i in order[:k]}
    mass_idx: set[int] = set()
    if f.mass_location:
        rest = [int(i) for i in order if int(i) not in polyp_idx]
        mass_idx = set(rest[: int(rng.integers(1, 4))])
    specs = []
    for j in range(n):
        lesions: tuple[PolypSpec, ...] = ()
        if j in polyp_idx:
            lesions = _polyp_specs(rng, f, cfg)
        elif j in mass_idx:
            lesions = (PolypSpec(float(rng.uniform(0.15, 0.35)), "mass"),)
        specs.append(
            FrameSpec(
                polyps=lesions,
                diverticula="diverticula" in f.others and rng.random() < 0.5,
                colitis="colitis" in f.others and rng.random() < 0.8,
            )
        )
    return specs


# -------------------------------------------------------------------------------------------- one exam


def _write_folder(final: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a hidden temporary folder beside ``final``, then rename it into place."""
    tmp = final.parent / f".{final.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def make_exam(index: int, category: str, cfg: SynthConfig, out_dir: Path, width: int) -> dict[str, Any]:
    """Generate, write and describe exam ``index`` (a pure function of seed, index, category and config).

    Returns:
        ``{"manifest": row, "truth": row, "meta": row, "images": [truth image rows]}``.
    """
    exam_id = f"E{index + 1:0{width}d}"
    lang = choose_lang(cfg.seed, index, cfg.langs)
    rep = render_exam_report(
        exam_rng(cfg.seed, index, 0),
        category,
        lang,
        pathology_rate=cfg.pathology_rate,
        pathology_in_report=cfg.pathology_in_report,
        uncertain_shows_polyp=cfg.uncertain_shows_polyp,
    )
    rng = exam_rng(cfg.seed, index, _FRAME_STREAM)
    specs = plan_frames(rng, rep.findings, cfg)
    bank = texture_bank(cfg.seed, cfg.size)
    images: dict[str, bytes] = {}
    masks: dict[str, bytes] = {}
    image_rows = []
    for j, spec in enumerate(specs):
        frame, mask = render_frame(rng, cfg.size, spec, bank)
        name = f"{j + 1:03d}"
        images[f"{name}.jpg"] = encode_jpeg(frame, cfg.jpeg_quality)
        is_polyp = bool(mask.any())
        mask_rel = ""
        if is_polyp:
            masks[f"{name}.png"] = encode_png(mask, library="opencv")
            mask_rel = f"{TRUTH_DIR}/masks/{exam_id}/{name}.png"
        is_mass = any(p.kind == "mass" for p in spec.polyps)
        image_rows.append(
            {
                "image": f"{exam_id}/{name}.jpg",
                "exam_id": exam_id,
                "polyp": int(is_polyp),
                "mask": mask_rel,
                "mass": int(is_mass),
            }
        )
    _write_folder(out_dir / exam_id, images)
    mask_dir = out_dir / TRUTH_DIR / "masks" / exam_id
    if masks:
        _write_folder(mask_dir, masks)
    elif mask_dir.exists():
        shutil.rmtree(mask_dir)
    manifest: dict[str, Any] = {"exam_id": exam_id, "report": rep.text}
    if rep.pathology is not None:
        manifest["pathology"] = rep.pathology
    manifest["images"] = [r["image"] for r in image_rows]
    return {
        "manifest": manifest,
        "truth": {"id": exam_id, **rep.labels},
        "meta": {
            "exam_id": exam_id,
            "category": category,
            "lang": lang,
            "n_images": len(image_rows),
            "polyp_images": sum(r["polyp"] for r in image_rows),
            "mass_images": sum(r["mass"] for r in image_rows),
        },
        "images": image_rows,
    }


def _make_exam_star(args: tuple[int, str, SynthConfig, Path, int]) -> dict[str, Any]:
    return make_exam(*args)


# ---------------------------------------------------------------------------------------------- archive


def _images_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["image", "exam_id", "polyp", "mask", "mass"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _existing(out_dir: Path, cfg: SynthConfig) -> SynthSummary | None:
    """The summary of an identical archive already in ``out_dir``, None when there is none.

    Raises:
        ConfigError: ``out_dir`` holds an archive made with a different config.
    """
    info_path = out_dir / TRUTH_DIR / "synth.json"
    manifest = out_dir / "manifest.jsonl"
    if not manifest.exists():
        return None
    if not info_path.exists():
        raise ConfigError(
            f"{out_dir} already holds a manifest.jsonl that endoked synth did not write; "
            "choose an empty folder or pass --overwrite"
        )
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.get("config") != _identity(cfg):
        raise ConfigError(
            f"{out_dir} already holds a synthetic archive made with different settings; "
            "choose another folder or pass --overwrite to replace it"
        )
    c = info["counts"]
    return SynthSummary(
        out_dir=out_dir,
        manifest=manifest,
        exams=c["exams"],
        images=c["images"],
        polyp_images=c["polyp_images"],
        categories=c["categories"],
        langs=c["langs"],
        seconds=0.0,
        reused=True,
    )


def _identity(cfg: SynthConfig) -> dict[str, Any]:
    """The config fields that determine the archive's content (``workers`` does not)."""
    return cfg.model_dump(mode="json", exclude={"workers"})


def generate_archive(
    out_dir: str | os.PathLike[str], config: SynthConfig, *, progress: bool | None = None, overwrite: bool = False
) -> SynthSummary:
    """Write a synthetic archive (manifest, frames, truth) to ``out_dir``.

    Args:
        out_dir: destination folder (created).
        config: generator settings; ``config.workers > 1`` uses a process pool (same bytes either way).
        progress: show a progress bar (None: the process-wide setting).
        overwrite: replace an archive made with different settings. An archive made with the same
            settings is kept as it is (the call returns its summary with ``reused=True``).

    Returns:
        Counts and timing of what was written.

    Raises:
        ConfigError: ``out_dir`` holds another archive and ``overwrite`` is false.
    """
    out = Path(out_dir)
    if not overwrite:
        found = _existing(out, config)
        if found is not None:
            logger.info("synthetic archive in %s is up to date; kept", out)
            return found
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    cats = plan_categories(config.exams, config.fractions.model_dump(), config.seed)
    width = max(5, len(str(config.exams)))
    tasks = [(i, cat, config, out, width) for i, cat in enumerate(cats)]
    results: list[dict[str, Any]] = []
    with bar(config.exams, desc="synth", unit="exam", enabled=progress) as pbar:
        if config.workers > 1 and config.exams > 1:
            chunk = max(1, min(16, math.ceil(config.exams / (config.workers * 8))))
            with process_pool(config.workers) as pool:
                for res in pool.map(_make_exam_star, tasks, chunksize=chunk):
                    results.append(res)
                    pbar.update(1)
        else:
            for task in tasks:
                results.append(_make_exam_star(task))
                pbar.update(1)
    image_rows = [row for r in results for row in r["images"]]
    counts = {
        "exams": len(results),
        "images": len(image_rows),
        "polyp_images": sum(row["polyp"] for row in image_rows),
        "categories": {c: cats.count(c) for c in CATEGORIES},
        "langs": {lang: sum(r["meta"]["lang"] == lang for r in results) for lang in config.langs},
    }
    truth = out / TRUTH_DIR
    write_jsonl(truth / "exams.jsonl", (r["truth"] for r in results))
    write_jsonl(truth / "meta.jsonl", (r["meta"] for r in results))
    atomic_write_text(truth / "images.csv", _images_csv(image_rows))
    atomic_write_json(truth / "synth.json", {"config": _identity(config), "counts": counts})
    write_jsonl(out / "manifest.jsonl", (r["manifest"] for r in results))  # last: marks the archive complete
    seconds = time.perf_counter() - start
    logger.info(
        "synthetic archive: %d exams, %d frames (%d with polyps) in %.1f s -> %s",
        counts["exams"],
        counts["images"],
        counts["polyp_images"],
        seconds,
        out,
    )
    return SynthSummary(
        out_dir=out,
        manifest=out / "manifest.jsonl",
        exams=counts["exams"],
        images=counts["images"],
        polyp_images=counts["polyp_images"],
        categories=counts["categories"],
        langs=counts["langs"],
        seconds=seconds,
    )


def read_manifest(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The manifest rows of a synthetic archive."""
    return read_jsonl(Path(out_dir) / "manifest.jsonl")
