"""Which pseudo labels of a run are exported, joined with the image and report tables."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from endoked import reviewed, tables
from endoked.errors import StageError
from endoked.imaging import read_mask
from endoked.runfolder import RunFolder

# Latest first: refined labels of the seg stage when present, else the prompt-seg pseudo labels.
LABEL_SOURCES: tuple[tuple[str, str], ...] = (("seg", "pseudo_labels"), ("prompt_seg", "pseudo_labels"))
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BENIGN = re.compile(r"[\s/\\]+")  # whitespace and path separators: replaced by "_" without losing the id
MAX_STEM = 120  # longer base names are cut (and hashed) so "<stem>_0000.png" fits any file system
REPORT_FIELDS = ("polyp", "polyp_count", "malignancy_suspected", "pathology", "polyps")


@dataclass(frozen=True)
class ExportItem:
    """One image with its pseudo mask and the exam's report fields."""

    exam_id: str
    image: str  # as in the manifest
    image_path: Path  # absolute
    mask_path: Path | None  # absolute PNG, 0/255; None for a polyp-free image (empty mask)
    width: int
    height: int
    report: dict[str, Any]

    case_id: str = ""  # the exported file stem, set by :func:`with_case_ids` (``load_items`` does)

    @property
    def base_name(self) -> str:
        """``<exam_id>__<image path without suffix>`` with every run of characters outside ``A-Za-z0-9._-``
        replaced by ``_`` (not unique on its own: see :func:`with_case_ids`)."""
        return f"{_SAFE.sub('_', self.exam_id)}__{_SAFE.sub('_', str(Path(self.image).with_suffix('')))}"

    @property
    def key_hash(self) -> str:
        """The first 8 hex digits of sha256 over ``exam_id NUL image``: identifies the original ids."""
        return hashlib.sha256(f"{self.exam_id}\0{self.image}".encode("utf-8", "surrogatepass")).hexdigest()[:8]

    def load_mask(self) -> np.ndarray:
        """The mask as (H, W) bool (all False for a polyp-free image)."""
        if self.mask_path is None:
            return np.zeros((self.height, self.width), dtype=bool)
        return read_mask(self.mask_path)


def _lossy(item: ExportItem) -> bool:
    """Whether sanitising dropped characters other than whitespace and path separators (non-ASCII letters,
    punctuation): then the base name alone does not say which exam it was."""
    raw = f"{item.exam_id}__{Path(item.image).with_suffix('')}"
    return _SAFE.sub("_", _BENIGN.sub("_", raw)) != _BENIGN.sub("_", raw)


def with_case_ids(items: Sequence[ExportItem]) -> list[ExportItem]:
    """The items with collision-free, stable file stems in ``case_id``.

    The stem is :attr:`ExportItem.base_name` as is when that is unique among ``items`` (ignoring case, for
    case-insensitive file systems), at most :data:`MAX_STEM` characters, and sanitising only replaced
    whitespace or path separators; otherwise it is the base name (cut to fit) plus ``-`` and
    :attr:`ExportItem.key_hash`. The same items always get the same stems, in any order.

    Raises:
        StageError: the same (exam_id, image) is listed twice.
    """
    dup = [k for k, n in Counter((it.exam_id, it.image) for it in items).items() if n > 1]
    if dup:
        raise StageError(
            f"image {dup[0][0]}/{dup[0][1]} is listed twice in the pseudo labels; cannot export it to one file"
        )
    base = [it.base_name for it in items]
    counts = Counter(b.casefold() for b in base)
    names = []
    for it, b in zip(items, base, strict=True):
        if counts[b.casefold()] > 1 or len(b) > MAX_STEM or _lossy(it):
            b = f"{b[:MAX_STEM]}-{it.key_hash}"
        names.append(b)
    # a hashed stem could (in principle) equal another's plain one, or two 8-digit hashes could collide
    taken = Counter(n.casefold() for n in names)
    for i, it in enumerate(items):
        if taken[names[i].casefold()] > 1:
            full = hashlib.sha256(f"{it.exam_id}\0{it.image}".encode("utf-8", "surrogatepass")).hexdigest()
            names[i] = f"{base[i][:MAX_STEM]}-{full}"
    if len({n.casefold() for n in names}) != len(names):  # pragma: no cover - a sha256 collision
        raise StageError("export file names collide even with full hashes")
    return [replace(it, case_id=n) for it, n in zip(items, names, strict=True)]


def pick_source(run: RunFolder, source: str = "auto") -> tuple[str, Path]:
    """The pseudo-label table to export: ``auto`` (latest available), ``seg`` or ``prompt_seg``."""
    candidates = LABEL_SOURCES if source == "auto" else tuple(s for s in LABEL_SOURCES if s[0] == source)
    if not candidates:
        raise StageError(f"unknown export source {source!r}; choose auto, seg or prompt_seg")
    for stage, name in candidates:
        entry = run.entry(stage)
        if entry and entry.get("status") == "done" and name in entry.get("outputs", {}):
            return stage, run.output(stage, name)
    raise StageError(
        f"run {run.root} has no finished pseudo labels ({source}); run the pipeline through "
        "prompt_seg first (endoked run --to prompt_seg)"
    )


def load_items(run: RunFolder, source: str = "auto") -> tuple[str, list[ExportItem]]:
    """The export items of a run (sorted by exam and image), with the reviewers' decisions applied: a rejected
    mask is not exported, a fixed one replaces the automatic mask (:func:`endoked.reviewed.apply_decisions`)."""
    stage, table = pick_source(run, source)
    labels = tables.read(table, "prompt_seg/pseudo_labels").to_pylist()  # seg's table has the same contract
    labels = reviewed.apply_decisions(run.root, labels)  # reviewed labels outrank the automatic ones
    images = tables.images(run)
    reports: dict[str, dict[str, Any]] = {}
    entry = run.entry("extract")
    if entry and entry.get("status") == "done":
        for exam_id, r in tables.labels_by_exam(run).items():
            rec = {k: r.get(k) for k in REPORT_FIELDS}
            polyps = rec.get("polyps")
            if isinstance(polyps, str):
                rec["polyps"] = json.loads(polyps)
            reports[exam_id] = rec
    items = []
    for r in labels:
        img = images.get((str(r["exam_id"]), str(r["image"])))
        if img is None:
            raise StageError(f"{table}: image {r['exam_id']}/{r['image']} is not in the ingest images table")
        items.append(
            ExportItem(
                r["exam_id"],
                r["image"],
                Path(img["path"]),
                run.abs(r["mask"]),
                int(img["width"]),
                int(img["height"]),
                reports.get(r["exam_id"], {}),
            )
        )
    items.sort(key=lambda it: (it.exam_id, it.image))
    return stage, with_case_ids(items)


def negative_items(run: RunFolder, exclude: Sequence[ExportItem] = ()) -> list[ExportItem]:
    """The MIL-selected polyp-free images (``mil/selection``, label 0: low-scored frames of exams whose report
    finds no polyp) as items with an empty mask, without those in ``exclude``; empty when mil has not run."""
    entry = run.entry("mil")
    if not entry or entry.get("status") != "done" or "selection" not in entry.get("outputs", {}):
        return []
    images = tables.images(run)
    taken = {(it.exam_id, it.image) for it in exclude}
    out = []
    for r in tables.selection(run):
        key = (str(r["exam_id"]), str(r["image"]))
        if int(r["label"]) != 0 or key in taken or key not in images:
            continue
        taken.add(key)
        img = images[key]
        out.append(ExportItem(key[0], key[1], Path(img["path"]), None, int(img["width"]), int(img["height"]), {}))
    out.sort(key=lambda it: (it.exam_id, it.image))
    return out
