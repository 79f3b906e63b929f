"""Corrected masks from a labelling tool back into a run: ``endoked import-labels RUN FILE``.

Every image of the file is matched to the run by its ``exam_id``/``image`` attributes (or, failing those, by
its exported file name), checked against the image's size, and recorded in the run's reviewer-decision store
(:mod:`endoked.reviewed`) like a decision taken in the review pages, so the next refinement round and export
use it through :func:`endoked.reviewed.apply_decisions`:

* a mask that differs from the run's current pseudo mask is a ``fix`` (the mask is saved under
  ``review/imported/<format>/``);
* an image whose polyp shapes were all deleted is a ``reject`` (its pseudo mask leaves the pool);
* an unchanged mask records nothing, or an ``accept`` with ``accept_unchanged``;
* a ``polyp`` status or ``polyp_count`` that differs from the run's report labels is a ``label`` correction.

The whole file is checked before anything is recorded; importing the same file twice records nothing new.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from endoked import reviewed, tables
from endoked.errors import DataFormatError
from endoked.export.source import ExportItem, load_items
from endoked.export.tools import POLYP_STATUS, ToolLabel, read_cvat, read_labelstudio
from endoked.imaging import encode_png
from endoked.io import atomic_write_bytes
from endoked.runfolder import RunFolder

READERS = {"cvat": read_cvat, "labelstudio": read_labelstudio}


@dataclass
class ImportSummary:
    """What :func:`import_labels` recorded (counts of images, and of corrected report fields)."""

    format: str
    images: int = 0
    fixed: int = 0
    rejected: int = 0
    accepted: int = 0
    unchanged: int = 0
    already: int = 0
    labels: int = 0
    decisions: list[int] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """``cvat`` for ``.xml``/``.zip``, ``labelstudio`` for ``.json``."""
    suffix = path.suffix.lower()
    if suffix in (".xml", ".zip"):
        return "cvat"
    if suffix == ".json":
        return "labelstudio"
    raise DataFormatError(f"{path}: cannot tell the format from the suffix; pass --format cvat or labelstudio")


def _label_value(field_name: str, text: str, origin: str) -> Any:
    text = text.strip()
    if field_name == "polyp":
        if text not in POLYP_STATUS:
            raise DataFormatError(f"{origin}: polyp must be one of {', '.join(POLYP_STATUS)}, not {text!r}")
        return text
    if text.lower() in ("", "none", "null"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(f"{origin}: polyp_count must be a non-negative integer, not {text!r}") from None
    if value < 0 or value != int(value):
        raise DataFormatError(f"{origin}: polyp_count must be a non-negative integer, not {text!r}")
    return int(value)


@dataclass
class _Planned:
    key: tuple[str, str]
    label: ToolLabel
    item: ExportItem | None
    mask: np.ndarray
    labels: dict[str, Any]


def _match(
    label: ToolLabel,
    images: dict[tuple[str, str], dict[str, Any]],
    by_name: dict[str, ExportItem],
    run: RunFolder,
) -> tuple[str, str]:
    exam_id, image = label.attributes.get("exam_id", ""), label.attributes.get("image", "")
    if exam_id and image:
        if (exam_id, image) not in images:
            raise DataFormatError(f"{label.origin}: image {exam_id}/{image} is not an image of run {run.root}")
        return exam_id, image
    stem = Path(label.name).stem.casefold()
    it = by_name.get(stem) or by_name.get(label.attributes.get("case_id", "").casefold())
    if it is None:
        raise DataFormatError(
            f"{label.origin}: cannot tell which image of run {run.root} this is (no exam_id/image attributes and "
            "no exported file name); import the file exported from this run"
        )
    return it.exam_id, it.image


def import_labels(
    run: RunFolder,
    path: Path,
    fmt: str = "auto",
    *,
    reviewer: str | None = None,
    accept_unchanged: bool = False,
) -> ImportSummary:
    """Record a labelling tool's corrected masks (and report fields) in the run's decision store.

    Args:
        run: the run folder the file was exported from.
        path: a CVAT for images 1.1 XML (or its zip) or a Label Studio JSON export.
        fmt: ``auto`` (by suffix), ``cvat`` or ``labelstudio``.
        reviewer: recorded as the decisions' reviewer (default ``<format>:<annotator>``, or the format).
        accept_unchanged: record an ``accept`` for masks the annotator left as they were.

    Raises:
        DataFormatError: the file is malformed, or an image is not in the run or has another size (nothing is
            recorded then; the message names the file and the image).
    """
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in READERS:
        raise DataFormatError(f"unknown label format {fmt!r}; choose auto, cvat or labelstudio")
    labels = READERS[fmt](path)
    images = tables.images(run)
    _stage, items = load_items(run)
    by_key = {(it.exam_id, it.image): it for it in items}
    by_name = {it.case_id.casefold(): it for it in items}
    machine = tables.labels_by_exam(run) if (run.entry("extract") or {}).get("status") == "done" else {}
    planned: list[_Planned] = []
    seen: dict[tuple[str, str], str] = {}
    for label in labels:
        key = _match(label, images, by_name, run)
        if key in seen:
            raise DataFormatError(f"{label.origin}: image {key[0]}/{key[1]} is also given by {seen[key]}")
        seen[key] = label.origin
        h, w = int(images[key]["height"]), int(images[key]["width"])
        mask = np.zeros((h, w), dtype=bool) if label.mask.size == 0 else label.mask
        if mask.shape != (h, w):
            raise DataFormatError(
                f"{label.origin}: mask is {mask.shape[1]}x{mask.shape[0]} but image {key[0]}/{key[1]} is {w}x{h}"
            )
        fixes: dict[str, Any] = {}
        for name in ("polyp", "polyp_count"):
            if name in label.attributes and label.attributes[name].strip():
                value = _label_value(name, label.attributes[name], label.origin)
                if value != (machine.get(key[0]) or {}).get(name):
                    fixes[name] = value
        planned.append(_Planned(key, label, by_key.get(key), mask, fixes))
    return _record(run, fmt, planned, reviewer, accept_unchanged)


def _fix_file(fmt: str, p: _Planned) -> tuple[bytes, str]:
    """The PNG of an imported mask and its run-relative path (named by the case and the PNG's digest)."""
    png = encode_png((p.mask * 255).astype(np.uint8))
    exam_id, image = p.key
    stem = p.item.case_id if p.item is not None else hashlib.sha256(f"{exam_id}\0{image}".encode()).hexdigest()
    return png, f"review/imported/{fmt}/{stem[:120]}-{hashlib.sha256(png).hexdigest()[:12]}.png"


def _record(
    run: RunFolder, fmt: str, planned: list[_Planned], reviewer: str | None, accept_unchanged: bool
) -> ImportSummary:
    summary = ImportSummary(fmt, images=len(planned))
    latest = reviewed.latest_image_decisions(run.root)
    corrected = reviewed.label_corrections(run.root)
    for p in planned:
        who = reviewer or (f"{fmt}:{p.label.annotator}" if p.label.annotator else fmt)
        exam_id, image = p.key
        before = run.rel(p.item.mask_path) if p.item is not None and p.item.mask_path is not None else None
        current = p.item.load_mask() if p.item is not None else None
        last = latest.get(p.key)
        has_mask = bool(p.mask.any())
        # the mask file a fix would record, encoded only where it is compared or written
        fix = _fix_file(fmt, p) if has_mask and last and last["action"] == "fix" else None
        # the same decision recorded before (the current mask already shows it, as reviewed decisions apply)
        if last and (
            (last["action"] == "reject" and not has_mask) or (fix is not None and last["mask_after"] == fix[1])
        ):
            summary.already += 1
        elif current is not None and np.array_equal(current, p.mask):
            summary.unchanged += 1
            if accept_unchanged and not (last and last["action"] == "accept"):
                summary.decisions.append(
                    reviewed.record(run.root, exam_id=exam_id, image=image, action="accept", reviewer=who)
                )
                summary.accepted += 1
        elif not has_mask:
            summary.decisions.append(
                reviewed.record(
                    run.root, exam_id=exam_id, image=image, action="reject", reviewer=who, mask_before=before
                )
            )
            summary.rejected += 1
        else:
            png, rel = fix or _fix_file(fmt, p)
            atomic_write_bytes(run.abs(rel), png)
            summary.decisions.append(
                reviewed.record(
                    run.root,
                    exam_id=exam_id,
                    image=image,
                    action="fix",
                    reviewer=who,
                    mask_before=before,
                    mask_after=rel,
                )
            )
            summary.fixed += 1
        for name, value in p.labels.items():
            if corrected.get(exam_id, {}).get(name, object()) == value:
                continue
            summary.decisions.append(
                reviewed.record(
                    run.root, exam_id=exam_id, image="", action="label", reviewer=who, field=name, value=value
                )
            )
            corrected.setdefault(exam_id, {})[name] = value
            summary.labels += 1
    return summary
