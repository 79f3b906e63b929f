"""Writers of the export formats. Each writes into an empty or new folder and returns what it wrote.

File stems are the items' collision-free ``case_id`` (:func:`endoked.export.source.with_case_ids`), so every
exported image gets files of its own; ``cases.json`` maps each stem back to its exam and image."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from endoked.errors import ConfigError
from endoked.export.source import ExportItem, with_case_ids
from endoked.imaging import copy_upright, read_rgb
from endoked.io import atomic_path, atomic_write_json, atomic_write_text
from endoked.progress import track


def _save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def export_pranet(items: Sequence[ExportItem], out: Path) -> dict[str, Any]:
    """PraNet layout: ``out/images/<case>.<ext>`` (the original file; re-encoded upright when it carries an EXIF
    rotation) and ``out/masks/<case>.png`` (0/255)."""
    items = with_case_ids(items)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for it in track(items, total=len(items), desc="export pranet", unit="img"):
        dest = out / "images" / f"{it.case_id}{it.image_path.suffix.lower()}"
        copy_upright(it.image_path, dest)
        _save_png(out / "masks" / f"{it.case_id}.png", (it.load_mask() * 255).astype(np.uint8))
    return {"format": "pranet", "images": len(items)}


def _instances(mask: np.ndarray) -> list[np.ndarray]:
    """Connected components of a boolean mask, each as its own boolean mask (8-connectivity)."""
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [lab == i for i in range(1, n)]


def export_coco(items: Sequence[ExportItem], out: Path, copy_images: bool = True) -> dict[str, Any]:
    """COCO instances JSON (``out/annotations.json``) with one RLE annotation per connected component; the
    exam's report fields ride along as image attributes. Images are copied to ``out/images/``."""
    from pycocotools import mask as mask_utils

    items = with_case_ids(items)
    images, annotations = [], []
    ann_id = 1
    if copy_images:
        (out / "images").mkdir(parents=True, exist_ok=True)
    for img_id, it in enumerate(track(items, total=len(items), desc="export coco", unit="img"), start=1):
        file_name = f"{it.case_id}{it.image_path.suffix.lower()}"
        if copy_images:
            copy_upright(it.image_path, out / "images" / file_name)
        images.append(
            {
                "id": img_id,
                "file_name": file_name,
                "width": it.width,
                "height": it.height,
                "exam_id": it.exam_id,
                "source_image": it.image,
                "report": it.report,
            }
        )
        for inst in _instances(it.load_mask()):
            rle = mask_utils.encode(np.asfortranarray(inst.astype(np.uint8)))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": img_id,
                    "category_id": 1,
                    "iscrowd": 0,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [x, y, w, h],
                    "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
                }
            )
            ann_id += 1
    coco = {
        "info": {"description": "endoked pseudo labels", "version": "1.0"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "polyp", "supercategory": "lesion"}],
    }
    atomic_write_json(out / "annotations.json", coco)
    return {"format": "coco", "images": len(images), "annotations": len(annotations)}


NNUNET_RAW_ENV = "nnUNet_raw"
_NNUNET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def nnunet_root(out: Path, dataset_id: int, name: str) -> Path:
    """``out/DatasetXXX_Name`` after checking the id (1-999, not taken by another dataset in ``out``) and name.

    Raises:
        ConfigError: an id outside 1-999, a name nnU-Net cannot take, or the id already used in ``out``.
    """
    if not 1 <= dataset_id <= 999:
        raise ConfigError(f"nnU-Net dataset id must be 1-999, got {dataset_id}")
    if not _NNUNET_NAME.fullmatch(name):
        raise ConfigError(f"nnU-Net dataset name {name!r}: use letters, digits, '_' and '-' only")
    root = out / f"Dataset{dataset_id:03d}_{name}"
    if out.is_dir():
        taken = [p.name for p in out.glob(f"Dataset{dataset_id:03d}_*") if p.name != root.name]
        if taken:
            raise ConfigError(f"nnU-Net dataset id {dataset_id} is already used by {out / taken[0]}; pick another id")
    return root


def _test_images(folder: Path) -> list[tuple[str, Path]]:
    """``(case, file)`` for every image file in ``folder`` (sorted), with unique sanitised case names."""
    if not folder.is_dir():
        raise ConfigError(f"test image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"{folder} holds no images ({', '.join(_IMAGE_SUFFIXES)})")
    seen: set[str] = set()
    out = []
    for f in files:
        case = re.sub(r"[^A-Za-z0-9._-]+", "_", f.stem)[:120] or "image"
        base, n = case, 1
        while case.casefold() in seen:
            n += 1
            case = f"{base}-{n}"
        seen.add(case.casefold())
        out.append((case, f))
    return out


def export_nnunet(
    items: Sequence[ExportItem],
    out: Path,
    dataset_id: int = 501,
    name: str = "EndokedPolyp",
    images_ts: Path | None = None,
) -> dict[str, Any]:
    """nnU-Net v2 raw dataset ``out/DatasetXXX_Name/`` for 2D natural images: ``imagesTr/<case>_0000.png``
    (RGB), ``labelsTr/<case>.png`` (0 background / 1 polyp; all 0 for a polyp-free image) and ``dataset.json``;
    with ``images_ts``, that folder's images as ``imagesTs/<name>_0000.png`` (unlabelled test cases)."""
    items = with_case_ids(items)
    root = nnunet_root(out, dataset_id, name)
    tests = _test_images(images_ts) if images_ts is not None else []
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for it in track(items, total=len(items), desc="export nnunet", unit="img"):
        rgb = read_rgb(it.image_path)
        _save_png(root / "imagesTr" / f"{it.case_id}_0000.png", rgb)
        _save_png(root / "labelsTr" / f"{it.case_id}.png", it.load_mask().astype(np.uint8))
    if tests:
        (root / "imagesTs").mkdir(parents=True, exist_ok=True)
        for case, path in track(tests, total=len(tests), desc="export nnunet imagesTs", unit="img"):
            _save_png(root / "imagesTs" / f"{case}_0000.png", read_rgb(path))
    negatives = sum(1 for it in items if it.mask_path is None)
    dataset = {
        "channel_names": {"0": "R", "1": "G", "2": "B"},
        "labels": {"background": 0, "polyp": 1},
        "numTraining": len(items),
        "file_ending": ".png",
        "overwrite_image_reader_writer": "NaturalImage2DIO",
        "name": name,
        "description": "endoked pseudo labels (box-prompted segmentation of CAM boxes)"
        + (f"; {negatives} polyp-free images with empty labels" if negatives else ""),
    }
    atomic_write_json(root / "dataset.json", dataset)
    return {
        "format": "nnunet",
        "images": len(items),
        "polyp_free": negatives,
        "test_images": len(tests),
        "dataset": str(root),
    }


def export_cvat(items: Sequence[ExportItem], out: Path) -> dict[str, Any]:
    """CVAT for images 1.1 XML with mask RLE (see :mod:`endoked.export.tools`)."""
    from endoked.export.tools import export_cvat as write

    return write(items, out)


def export_labelstudio(items: Sequence[ExportItem], out: Path, image_prefix: str = "images/") -> dict[str, Any]:
    """Label Studio JSON tasks with brush RLE predictions (see :mod:`endoked.export.tools`)."""
    from endoked.export.tools import export_labelstudio as write

    return write(items, out, image_prefix)


WRITERS: dict[str, Callable[..., dict[str, Any]]] = {
    "pranet": export_pranet,
    "coco": export_coco,
    "nnunet": export_nnunet,
    "cvat": export_cvat,
    "labelstudio": export_labelstudio,
}


def write_export(fmt: str, items: Sequence[ExportItem], out: Path, **options: Any) -> dict[str, Any]:
    """Dispatch to a writer by name (``pranet``, ``coco``, ``nnunet``, ``cvat``, ``labelstudio``).

    The destination (``out``; for nnunet the dataset folder inside it, so ``out`` may be ``$nnUNet_raw`` with
    other datasets) must be new or empty; it receives ``cases.json`` (file stem -> exam and image) and
    ``export.json`` (the summary). ``options`` go to the writer (nnunet: ``dataset_id``, ``name``,
    ``images_ts``; labelstudio: ``image_prefix``).
    """
    if fmt not in WRITERS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(WRITERS)}")
    dest = out
    if fmt == "nnunet":
        dest = nnunet_root(out, int(options.get("dataset_id", 501)), str(options.get("name", "EndokedPolyp")))
    if dest.exists() and any(dest.iterdir()):
        raise ConfigError(f"export folder {dest} is not empty; choose a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    items = with_case_ids(items)
    summary = WRITERS[fmt](items, out, **options)
    atomic_write_json(
        dest / "cases.json", [{"case_id": it.case_id, "exam_id": it.exam_id, "image": it.image} for it in items]
    )
    atomic_write_text(dest / "export.json", json.dumps(summary, indent=2) + "\n")
    return summary
