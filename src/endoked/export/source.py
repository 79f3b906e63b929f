"""Which pseudo labels of a run are exported, joined with the image and report tables."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from endoked.errors import StageError
from endoked.imaging import read_mask
from endoked.runfolder import RunFolder

# Latest first: refined labels of the seg stage when present, else the prompt-seg pseudo labels.
LABEL_SOURCES: tuple[tuple[str, str], ...] = (("seg", "pseudo_labels"), ("prompt_seg", "pseudo_labels"))
REPORT_FIELDS = ("polyp", "polyp_count", "malignancy_suspected", "pathology", "polyps")


@dataclass(frozen=True)
class ExportItem:
    """One image with its pseudo mask and the exam's report fields."""

    exam_id: str
    image: str  # as in the manifest
    image_path: Path  # absolute
    mask_path: Path  # absolute PNG, 0/255
    width: int
    height: int
    report: dict[str, Any]

    @property
    def case_id(self) -> str:
        """A file-name-safe unique id: ``<exam_id>__<image path with separators replaced>`` without suffix."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(Path(self.image).with_suffix("")))
        return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', self.exam_id)}__{stem}"

    def load_mask(self) -> np.ndarray:
        """The mask as (H, W) bool."""
        return read_mask(self.mask_path)


def pick_source(run: RunFolder, source: str = "auto") -> tuple[str, Path]:
    """The pseudo-label table to export: ``auto`` (latest available), ``seg`` or ``prompt_seg``."""
    candidates = LABEL_SOURCES if source == "auto" else tuple(s for s in LABEL_SOURCES if s[0] == source)
    if not candidates:
        raise StageError(f"unknown export source {source!r}; choose auto, seg or prompt_seg")
    for stage, name in candidates:
        entry = run.entry(stage)
        if entry and entry.get("status") == "done" and name in entry.get("outputs", {}):
            return stage, run.output(stage, name)
    raise StageError(f"run {run.root} has no finished pseudo labels ({source}); run the pipeline through "
                     "prompt_seg first (endoked run --to prompt_seg)")


def load_items(run: RunFolder, source: str = "auto") -> tuple[str, list[ExportItem]]:
    """The export items of a run (sorted by exam and image)."""
    stage, table = pick_source(run, source)
    labels = pq.read_table(table).to_pylist()
    images = {(r["exam_id"], r["image"]): r for r in pq.read_table(run.output("ingest", "images")).to_pylist()}
    reports: dict[str, dict[str, Any]] = {}
    entry = run.entry("extract")
    if entry and entry.get("status") == "done":
        for r in pq.read_table(run.output("extract", "labels")).to_pylist():
            rec = {k: r.get(k) for k in REPORT_FIELDS}
            if isinstance(rec.get("polyps"), str):
                rec["polyps"] = json.loads(rec["polyps"])
            reports[r["exam_id"]] = rec
    items = []
    for r in labels:
        img = images.get((r["exam_id"], r["image"]))
        if img is None:
            raise StageError(f"{table}: image {r['exam_id']}/{r['image']} is not in the ingest images table")
        items.append(ExportItem(r["exam_id"], r["image"], Path(img["path"]), run.abs(r["mask"]), int(img["width"]),
                                int(img["height"]), reports.get(r["exam_id"], {})))
    items.sort(key=lambda it: (it.exam_id, it.image))
    return stage, items
