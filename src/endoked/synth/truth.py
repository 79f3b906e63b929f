"""Ground truth of a synthetic archive (``DIR/truth/``), for scoring pipeline stages."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from endoked.errors import DataFormatError
from endoked.io import read_jsonl

LABEL_KEYS: tuple[str, ...] = ("polyp", "polyp_count", "polyps", "malignancy_suspected", "pathology")


@dataclass(frozen=True)
class SynthTruth:
    """Truth of a synthetic archive.

    Attributes:
        root: the archive folder.
        exams: gold report labels by exam_id (exactly the contract keys: polyp, polyp_count, polyps,
            malignancy_suspected, pathology).
        categories: exam category by exam_id (present, absent, history, uncertain, malignancy).
        langs: report language by exam_id.
        image_polyp: per image (the manifest's image string, e.g. ``"E00001/003.jpg"``): shows a polyp.
        image_mask: per image: absolute path of the truth mask PNG (0/255, image size), None when no polyp.
        image_mass: per image: shows a mass (a malignant lesion that is not a polyp; no mask).
        image_exam: per image: its exam_id.
    """

    root: Path
    exams: dict[str, dict[str, Any]]
    categories: dict[str, str]
    langs: dict[str, str]
    image_polyp: dict[str, bool]
    image_mask: dict[str, Path | None]
    image_mass: dict[str, bool]
    image_exam: dict[str, str]

    def polyp_images(self) -> list[str]:
        """Images that show a polyp, in archive order."""
        return [k for k, v in self.image_polyp.items() if v]


def load_truth(archive_dir: str | os.PathLike[str]) -> SynthTruth:
    """Load ``archive_dir/truth/`` written by :func:`endoked.synth.archive.generate_archive`.

    Raises:
        DataFormatError: the truth folder or one of its files is missing or malformed.
    """
    root = Path(archive_dir).resolve()
    tdir = root / "truth"
    paths = {name: tdir / name for name in ("exams.jsonl", "meta.jsonl", "images.csv")}
    for path in paths.values():
        if not path.is_file():
            raise DataFormatError(
                f"{path} is missing: {root} is not a complete synthetic archive "
                f"(re-create it with `endoked synth --out {root} ...`)"
            )
    exams: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(read_jsonl(paths["exams.jsonl"]), 1):
        missing = [k for k in ("id", *LABEL_KEYS) if k not in row]
        if missing:
            raise DataFormatError(f"{paths['exams.jsonl']} line {n}: missing keys {missing}")
        exams[str(row["id"])] = {k: row[k] for k in LABEL_KEYS}
    categories, langs = {}, {}
    for row in read_jsonl(paths["meta.jsonl"]):
        categories[str(row["exam_id"])] = str(row["category"])
        langs[str(row["exam_id"])] = str(row["lang"])
    image_polyp: dict[str, bool] = {}
    image_mask: dict[str, Path | None] = {}
    image_mass: dict[str, bool] = {}
    image_exam: dict[str, str] = {}
    with open(paths["images.csv"], encoding="utf-8", newline="") as fh:
        for n, rec in enumerate(csv.DictReader(fh), 2):
            try:
                image = rec["image"]
                image_polyp[image] = rec["polyp"] == "1"
                image_mask[image] = root / rec["mask"] if rec["mask"] else None
                image_mass[image] = rec.get("mass", "0") == "1"
                image_exam[image] = rec["exam_id"]
            except (KeyError, TypeError) as exc:
                raise DataFormatError(f"{paths['images.csv']} line {n}: missing column {exc}") from exc
    return SynthTruth(
        root=root,
        exams=exams,
        categories=categories,
        langs=langs,
        image_polyp=image_polyp,
        image_mask=image_mask,
        image_mass=image_mass,
        image_exam=image_exam,
    )
