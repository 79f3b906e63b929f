"""Labels and images of the optical-biopsy classifier.

- report fields -> class (:func:`pathology_class`), and the pre-training images of a run
  (:func:`pretrain_items`: top-k MIL-scored images of exams with a known pathology class);
- a small labelled image set from a CSV (``image,label[,group]``) or a class-per-folder tree
  (:func:`read_labelled_set`), with per-row error records;
- seeded, stratified, group-aware splits and subsets (:func:`split_indices`, :func:`subset_indices`).

Classes: 1 = neoplastic, 0 = non-neoplastic.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from endoked.biopsy.config import BiopsyConfig
from endoked.errors import DataFormatError

logger = logging.getLogger(__name__)

NEOPLASTIC = 1
NON_NEOPLASTIC = 0
CLASS_NAMES: tuple[str, str] = ("non_neoplastic", "neoplastic")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_LABEL_ALIASES = {
    "1": 1,
    "neoplastic": 1,
    "neoplasia": 1,
    "adenomatous": 1,
    "0": 0,
    "non_neoplastic": 0,
    "non-neoplastic": 0,
    "nonneoplastic": 0,
    "non neoplastic": 0,
}

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class LabelledImage:
    """One image with its class.

    Attributes:
        image: the image's identifier as given (manifest path or CSV value).
        path: file to read.
        label: 1 neoplastic, 0 non-neoplastic.
        group: patient / exam / sequence; images of one group never straddle a split.
        box: optional crop ``(x0, y0, x1, y1)``, pixels, original image frame (exclusive end).
    """

    image: str
    path: str
    label: int
    group: str
    box: Box | None = None

    @property
    def key(self) -> str:
        """Cache key: the file and the crop."""
        return f"{self.path}|{','.join(map(str, self.box)) if self.box else ''}"


def pathology_class(pathology: str | None, cfg: BiopsyConfig) -> int | None:
    """Class of a report's extracted ``pathology`` (contract value): 1, 0, or None (unknown/other/null)."""
    if pathology is None:
        return None
    value = str(pathology).strip().lower()
    if value in cfg.neoplastic:
        return NEOPLASTIC
    if value in cfg.non_neoplastic:
        return NON_NEOPLASTIC
    return None


def label_class(value: Any, cfg: BiopsyConfig) -> int | None:
    """Class of a fine-tuning label: ``neoplastic``/``non_neoplastic`` (and spellings), ``1``/``0``, or a
    pathology value of either class. None when not recognised."""
    text = str(value).strip().lower()
    if text in _LABEL_ALIASES:
        return _LABEL_ALIASES[text]
    return pathology_class(text.replace(" ", "_"), cfg)


def mask_box(mask: np.ndarray, margin: float) -> Box | None:
    """Bounding box of a mask, grown by ``margin`` x its side on each side and clipped to the image.

    Args:
        mask: ``(H, W)`` bool or 0/255 uint8.
        margin: fraction of the box width/height added on each side.

    Returns:
        ``(x0, y0, x1, y1)`` pixels (exclusive end), or None for an empty mask.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    h, w = mask.shape[:2]
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    dx, dy = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    return max(0, x0 - dx), max(0, y0 - dy), min(w, x1 + dx), min(h, y1 + dy)


def pretrain_items(
    labels: Sequence[Mapping[str, Any]],
    scores: Sequence[Mapping[str, Any]],
    images: Sequence[Mapping[str, Any]],
    cfg: BiopsyConfig,
    boxes: Mapping[tuple[str, str], Box] | None = None,
) -> tuple[list[LabelledImage], dict[str, int]]:
    """Report-supervised pre-training images of a run.

    An exam whose ``pathology`` maps to a class gives its top ``cfg.top_k`` scored images (score at least
    ``cfg.min_mil_score``; ties broken by image name) that label; its exam is the group.

    Args:
        labels: rows of ``extract/labels.parquet`` (exam_id, pathology, error, ...).
        scores: rows of ``mil/image_scores.parquet`` (exam_id, image, score; null scores are skipped).
        images: rows of ``ingest/images.parquet`` (exam_id, image, path).
        boxes: optional crop per ``(exam_id, image)`` (pseudo-mask boxes).

    Returns:
        ``(items, counts)``; counts has exams_neoplastic, exams_non_neoplastic, exams_unknown,
        exams_without_images, images_neoplastic, images_non_neoplastic, images_cropped.
    """
    paths = {(str(r["exam_id"]), str(r["image"])): str(r["path"]) for r in images}
    by_exam: dict[str, list[tuple[float, str]]] = {}
    for r in scores:
        if r.get("score") is None:
            continue
        by_exam.setdefault(str(r["exam_id"]), []).append((float(r["score"]), str(r["image"])))
    counts = dict.fromkeys(
        (
            "exams_neoplastic",
            "exams_non_neoplastic",
            "exams_unknown",
            "exams_without_images",
            "images_neoplastic",
            "images_non_neoplastic",
            "images_cropped",
        ),
        0,
    )
    items: list[LabelledImage] = []
    for row in sorted(labels, key=lambda r: str(r["exam_id"])):
        exam = str(row["exam_id"])
        cls = None if row.get("error") else pathology_class(row.get("pathology"), cfg)
        if cls is None:
            counts["exams_unknown"] += 1
            continue
        ranked = sorted(by_exam.get(exam, []), key=lambda t: (-t[0], t[1]))
        chosen = [img for s, img in ranked[: cfg.top_k] if s >= cfg.min_mil_score and (exam, img) in paths]
        if not chosen:
            counts["exams_without_images"] += 1
            continue
        name = CLASS_NAMES[cls]
        counts[f"exams_{name}"] += 1
        for img in chosen:
            box = boxes.get((exam, img)) if boxes else None
            counts["images_cropped"] += box is not None
            counts[f"images_{name}"] += 1
            items.append(LabelledImage(img, paths[(exam, img)], cls, exam, box))
    return items, counts


def read_labelled_set(path: Path, cfg: BiopsyConfig) -> tuple[list[LabelledImage], list[dict[str, Any]]]:
    """Read a labelled image set.

    ``path`` is either a CSV with columns ``image`` and ``label`` (optional ``group``; image paths relative to
    the CSV's folder or absolute), or a folder with one sub-folder per class (``neoplastic/``,
    ``non_neoplastic/``, or any label :func:`label_class` accepts) holding the images.

    Returns:
        ``(items, errors)``: errors are ``{"row", "image", "error"}`` records for rows that cannot be used
        (unknown label, missing file); they are reported, never silently dropped.

    Raises:
        DataFormatError: the path does not exist, the CSV lacks a column, or no usable row remains.
    """
    path = Path(path)
    if path.is_dir():
        rows = _folder_rows(path, cfg)
        base = path
    elif path.is_file():
        rows = _csv_rows(path)
        base = path.parent
    else:
        raise DataFormatError(
            f"labelled set {path} not found: give a CSV (image,label[,group]) or a folder with one sub-folder per class"
        )
    items: list[LabelledImage] = []
    errors: list[dict[str, Any]] = []
    for i, row in enumerate(rows, start=2 if path.is_file() else 1):
        image = str(row.get("image") or "").strip()
        cls = label_class(row.get("label", ""), cfg)
        file = Path(image) if Path(image).is_absolute() else base / image
        if not image:
            errors.append({"row": i, "image": image, "error": "empty image field"})
        elif cls is None:
            errors.append(
                {
                    "row": i,
                    "image": image,
                    "error": f"unknown label {row.get('label')!r}; use neoplastic/"
                    f"non_neoplastic, 1/0, or one of {cfg.neoplastic + cfg.non_neoplastic}",
                }
            )
        elif not file.is_file():
            errors.append({"row": i, "image": image, "error": f"file not found: {file}"})
        else:
            group = str(row.get("group") or "").strip() or f"image:{image}"
            items.append(LabelledImage(image, str(file), cls, group))
    if errors:
        logger.warning(
            "labelled set %s: %d row(s) unusable (first: row %s: %s)",
            path,
            len(errors),
            errors[0]["row"],
            errors[0]["error"],
        )
    if not items:
        raise DataFormatError(
            f"labelled set {path}: no usable row ({len(errors)} unusable; first: "
            f"{errors[0]['error'] if errors else 'the set is empty'})"
        )
    return items, errors


def _csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            missing = [c for c in ("image", "label") if c not in fields]
            if missing:
                raise DataFormatError(
                    f"{path}: missing column(s) {missing}; the CSV needs a header with image,label "
                    f"and optionally group (found: {reader.fieldnames})"
                )
            return [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(f"{path} is not a readable UTF-8 CSV: {exc}") from exc


def _folder_rows(path: Path, cfg: BiopsyConfig) -> list[dict[str, str]]:
    rows = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        if label_class(sub.name, cfg) is None:
            logger.warning("labelled set %s: sub-folder %s is not a class name; skipped", path, sub.name)
            continue
        for f in sorted(sub.rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                rows.append({"image": str(f.relative_to(path)), "label": sub.name, "group": ""})
    return rows


def split_indices(
    labels: Sequence[int] | np.ndarray, groups: Sequence[str], val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split into training and validation, stratified by class, whole groups on one side.

    A group's class is its majority class. Each class keeps at least one training group and gives at least
    one group to validation when it has two or more.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 index arrays.
    """
    labels_a = np.asarray(labels, dtype=np.int64)
    group_rows: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        group_rows.setdefault(str(g), []).append(i)
    rng = np.random.default_rng(seed)
    val_groups: list[str] = []
    for cls in (0, 1):
        names = sorted(g for g, rows in group_rows.items() if round(float(labels_a[rows].mean())) == cls)
        if len(names) < 2:
            continue
        n_val = min(len(names) - 1, max(1, round(val_fraction * len(names))))
        val_groups.extend(names[i] for i in rng.permutation(len(names))[:n_val])
    val = np.array(sorted(i for g in val_groups for i in group_rows[g]), dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels_a), dtype=np.int64), val)
    return train, val


def subset_indices(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int, min_per_class: int = 2
) -> np.ndarray:
    """A seeded, class-stratified subset holding ``fraction`` of the images (at least ``min_per_class`` of each
    class present, when available). Returns sorted int64 indices."""
    labels_a = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for cls in (0, 1):
        idx = np.flatnonzero(labels_a == cls)
        if len(idx) == 0:
            continue
        n = min(len(idx), max(min_per_class, round(fraction * len(idx))))
        chosen.extend(int(i) for i in rng.permutation(idx)[:n])
    return np.array(sorted(chosen), dtype=np.int64)
