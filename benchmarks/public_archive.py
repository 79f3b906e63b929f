"""Build a report-supervised benchmark archive from the public polyp datasets.

The archive has the manifest format of the pipeline (``manifest.jsonl``: exam_id, report, pathology, images
relative to the manifest) and is built so that polyp presence, not image source, separates the classes:

- positive exams hold 1-3 polyp frames (crops of PraNet TrainDataset images that contain the polyp) plus
  polyp-free frames; negative exams hold only polyp-free frames;
- polyp-free frames come from two sources, in both kinds of exam: PolypGen negative video frames (an exam
  draws them from one ``sequence``, like one patient's video) and crops cut from TrainDataset images away
  from the dilated polyp mask, at the same crop scales as the polyp frames, so "a Kvasir/ClinicDB crop"
  says nothing about the label;
- reports are short colonoscopy reports in varied English and Chinese phrasing.

Compositions (``--composition``), so that a setting chosen on one archive design can be checked on others:

- ``crops`` (the default, and the archive of the earlier figures): polyp frames are crops of TrainDataset
  images holding the polyp; polyp-free frames are PolypGen frames (centres A and B) and crops away from polyps.
- ``full``: polyp frames are the whole TrainDataset frames. Whole frames bring a label leak (a whole Kvasir or
  ClinicDB frame always shows a polyp), controlled here: the polyp-free crops are scaled back up to the size of
  the frame they were cut from and the PolypGen frames are cut to the aspect of a random polyp frame and scaled
  to its size, so size and aspect say little about the label. A crop scaled up to its frame's size is
  blurred, which would give polyp-free frames away, so every frame goes through the same loss of detail: each
  whole polyp frame and PolypGen frame is sampled down to a share of its output size drawn from the crop
  scales, then scaled up to it, as a crop of that share is. The leak that remains is measured (``leak_auroc``
  in ``truth/spec.json``: how well frame area, aspect, brightness and sharpness alone separate polyp from
  polyp-free frames; 0.5 is no leak). Every frame is then shown through one common endoscope mask (an octagon,
  black outside; ``scope_mask``), so that each source's own border and corner overlays, and the crops' lack of
  any, do not tell the classes apart (the ``dark_border`` cue); a whole polyp frame whose polyp the mask would
  hide (less than ``min_polyp_fraction`` of it visible) is not drawn, and the true masks are cut by it too.
  ``--no-scope-mask`` keeps the sources' own borders (the archives of the figures before the mask).
- ``heldout``: sources the chain was never tuned on: polyp frames are whole BKAI-IGH NeoPolyp frames
  (``biopsy/``), polyp-free frames are PolypGen centre B frames and BKAI crops away from the polyp, scaled as
  in ``full``.

``truth/images.csv`` names each frame's ``origin`` (kvasir, clinicdb, bkai, polypgen_A, polypgen_B), and the
run scores give the pseudo-mask figures per origin.

The truth is kept apart, in the layout of the synthetic archive: ``truth/exams.jsonl`` (report labels in
the report-label contract, ``id`` = exam_id), ``truth/meta.jsonl`` (exam_id, category, lang),
``truth/images.csv`` (image, exam_id, polyp 0/1, mask: PNG
path relative to the archive, empty when polyp-free) and ``truth/masks/``. Deterministic for a seed.

Usage::

    python benchmarks/public_archive.py --out DIR --exams 300 --seed 0 [--composition crops|full|heldout]

The public data is found at ``$ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

logger = logging.getLogger("endoked.benchmarks.public_archive")

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCATIONS_EN = {
    "cecum": "cecum",
    "ascending": "ascending colon",
    "hepatic_flexure": "hepatic flexure",
    "transverse": "transverse colon",
    "splenic_flexure": "splenic flexure",
    "descending": "descending colon",
    "sigmoid": "sigmoid colon",
    "rectum": "rectum",
}
LOCATIONS_ZH = {
    "cecum": "回盲部",
    "ascending": "升结肠",
    "hepatic_flexure": "肝曲",
    "transverse": "横结肠",
    "splenic_flexure": "脾曲",
    "descending": "降结肠",
    "sigmoid": "乙状结肠",
    "rectum": "直肠",
}
MORPH_EN = {"sessile": "sessile", "pedunculated": "pedunculated", "flat": "flat"}
MORPH_ZH = {"sessile": "无蒂", "pedunculated": "有蒂", "flat": "平坦型"}
PATHOLOGY_TEXT = {
    "adenoma": ("tubular adenoma, low-grade dysplasia", "管状腺瘤，低级别上皮内瘤变"),
    "hyperplastic": ("hyperplastic polyp", "增生性息肉"),
    "sessile_serrated": ("sessile serrated lesion", "无蒂锯齿状病变"),
    "inflammatory": ("inflammatory polyp", "炎性息肉"),
}
NUM_EN = {1: "one", 2: "two", 3: "three"}
NUM_ZH = {1: "一枚", 2: "两枚", 3: "三枚"}


def shared_data_root() -> Path:
    """``$ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("ENDOKED_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


COMPOSITIONS = ("crops", "full", "heldout")
HELDOUT_CENTRE = "centre_B"


@dataclass(frozen=True)
class ArchiveSpec:
    """What to build. Ranges are inclusive ``(low, high)``."""

    exams: int = 300
    seed: int = 0
    positive_fraction: float = 0.5
    polyp_frames: tuple[int, int] = (1, 3)
    free_frames_positive: tuple[int, int] = (1, 4)
    free_frames_negative: tuple[int, int] = (2, 6)
    negative_source_share: float = 0.5  # share of polyp-free frames taken from negatives/ (rest: crops)
    crop_scale: tuple[float, float] = (0.5, 0.85)  # crop side / image side, for polyp and polyp-free crops
    min_free_scale: float = 0.3
    min_crop_side: int = 96
    dilate_fraction: float = 0.04  # mask dilation radius / longest image side
    min_polyp_fraction: float = 0.7  # share of the polyp mask a polyp crop must keep
    max_side: int = 720
    jpeg_quality: int = 92
    zh_fraction: float = 0.5
    composition: str = "crops"  # crops | full | heldout (see the module docstring)
    # whole-frame designs: every frame is shown through one common endoscope mask (see scope_mask)
    scope_mask: bool = True


@dataclass
class Sources:
    """Public images the archive draws from (sorted, so plans are deterministic)."""

    polyp_images: list[tuple[Path, Path]]  # (image, mask) of TrainDataset
    negative_frames: dict[str, list[Path]]  # "centre/sequence" -> frames
    bkai_images: list[tuple[Path, Path]] = field(default_factory=list)  # (image, class mask) of biopsy/

    @classmethod
    def load(cls, root: Path, composition: str = "crops") -> Sources:
        train = root / "polyp" / "TrainDataset"
        neg_csv = root / "negatives" / "frames.csv"
        if not (train / "images").is_dir() or not neg_csv.is_file():
            raise FileNotFoundError(
                f"public data not found under {root}: need polyp/TrainDataset/{{images,masks}} "
                "and negatives/frames.csv; set ENDOKED_SHARED_DATA"
            )
        pairs = []
        for img in sorted((train / "images").iterdir()):
            mask = train / "masks" / f"{img.stem}.png"
            if mask.is_file():
                pairs.append((img, mask))
        frames: dict[str, list[Path]] = {}
        with open(neg_csv, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                frames.setdefault(f"{row['centre']}/{row['sequence']}", []).append(root / "negatives" / row["image"])
        bkai: list[tuple[Path, Path]] = []
        if composition == "heldout":
            bdir = root / "biopsy"
            if not (bdir / "images").is_dir():
                raise FileNotFoundError(f"composition 'heldout' needs {bdir}/{{images,masks}}; set ENDOKED_SHARED_DATA")
            for img in sorted((bdir / "images").iterdir()):
                mask = bdir / "masks" / f"{img.stem}.png"
                if mask.is_file():
                    bkai.append((img, mask))
        return cls(pairs, {k: sorted(v) for k, v in sorted(frames.items())}, bkai)


# ----------------------------------------------------------------------------------------------- crops
def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask: (H, W)`` bool -> dilated by a disc of ``radius`` pixels."""
    if radius <= 0:
        return mask.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def window_sums(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sum of ``mask: (H, W)`` over every ``h x w`` window: ``(H - h + 1, W - w + 1)`` int64."""
    ii = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return ii[h:, w:] - ii[:-h, w:] - ii[h:, :-w] + ii[:-h, :-w]


def free_crop_box(
    mask: np.ndarray, scale: float, rng: np.random.Generator, spec: ArchiveSpec
) -> tuple[int, int, int, int] | None:
    """A crop ``(x0, y0, x1, y1)`` of the image's aspect that avoids the dilated polyp mask, or None.

    Tries ``scale`` first and shrinks it (x0.85) down to ``spec.min_free_scale``.
    """
    height, width = mask.shape
    grown = dilate(mask, round(spec.dilate_fraction * max(height, width)))
    s = scale
    while s >= spec.min_free_scale:
        h, w = round(s * height), round(s * width)
        if min(h, w) >= spec.min_crop_side:
            ys, xs = np.nonzero(window_sums(grown, h, w) == 0)
            if len(ys):
                i = int(rng.integers(len(ys)))
                return int(xs[i]), int(ys[i]), int(xs[i]) + w, int(ys[i]) + h
        s *= 0.85
    return None


def polyp_crop_box(
    mask: np.ndarray, scale: float, rng: np.random.Generator, spec: ArchiveSpec
) -> tuple[int, int, int, int] | None:
    """A crop of the image's aspect holding the polyp's bounding box (grown if needed), or None if no polyp."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    bx0, by0, bx1, by1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    s = min(1.0, max(scale, (bx1 - bx0) / width, (by1 - by0) / height))
    w, h = min(width, round(s * width)), min(height, round(s * height))
    x0 = int(rng.integers(max(0, bx1 - w), min(bx0, width - w) + 1)) if w < width else 0
    y0 = int(rng.integers(max(0, by1 - h), min(by0, height - h) + 1)) if h < height else 0
    kept = mask[y0 : y0 + h, x0 : x0 + w].sum() / mask.sum()
    if kept < spec.min_polyp_fraction:
        return None
    return x0, y0, x0 + w, y0 + h


# ----------------------------------------------------------------------------------------------- reports
@dataclass
class Finding:
    location: str
    size_mm: float
    morphology: str


def render_report(
    findings: Sequence[Finding], pathology: str | None, lang: str, rng: np.random.Generator
) -> tuple[str, str | None]:
    """Report text and pathology text for an exam's findings (empty ``findings``: a normal exam)."""
    prep_en = rng.choice(
        ["Bowel preparation was good.", "Prep adequate (BBPS 7).", "Preparation: fair.", "Boston bowel prep score 8."]
    )
    prep_zh = rng.choice(["肠道准备良好。", "肠道准备尚可（BBPS 7分）。", "肠道清洁度良好。"])
    reach_en = rng.choice(
        [
            "The scope was advanced to the cecum.",
            "Cecal intubation achieved.",
            "Advanced to the terminal ileum without difficulty.",
        ]
    )
    reach_zh = rng.choice(["循腔进镜至回盲部。", "进镜至回肠末端。", "顺利插镜至回盲部，见阑尾开口。"])
    if lang == "en":
        if not findings:
            body = rng.choice(
                [
                    "The colonic mucosa appeared normal throughout. No polyps or masses were seen.",
                    "No polyps identified. Normal vascular pattern.",
                    "Examined mucosa unremarkable; no mass, polyp or ulcer.",
                    "Findings: normal colonoscopy, no polyp.",
                ]
            )
            impression = rng.choice(["IMPRESSION: Normal colonoscopy.", "Impression: no polyps.", ""])
        else:
            parts = []
            for f in findings:
                parts.append(
                    rng.choice(
                        [
                            f"A {f.size_mm:g} mm {MORPH_EN[f.morphology]} polyp was found in the "
                            f"{LOCATIONS_EN[f.location]} and removed with a cold snare.",
                            f"In the {LOCATIONS_EN[f.location]} there was a {MORPH_EN[f.morphology]} polyp measuring "
                            f"{f.size_mm:g} mm; polypectomy performed.",
                            f"{LOCATIONS_EN[f.location].capitalize()}: {f.size_mm:g}mm {MORPH_EN[f.morphology]} polyp, "
                            "resected.",
                        ]
                    )
                )
            n = len(findings)
            body = " ".join(parts)
            impression = f"IMPRESSION: {NUM_EN[n]} polyp{'s' if n > 1 else ''}, removed."
        text = " ".join(t for t in (str(prep_en), str(reach_en), body, str(impression)) if t)
        path_text = PATHOLOGY_TEXT[pathology][0] if pathology else None
    else:
        if not findings:
            body = rng.choice(
                [
                    "所见结直肠黏膜光滑，血管纹理清晰，未见息肉及新生物。",
                    "全结肠未见息肉。",
                    "各段结肠黏膜未见明显异常，未见隆起性病变。",
                ]
            )
            impression = rng.choice(["诊断：结肠镜检查未见异常。", "诊断：未见息肉。", ""])
        else:
            parts = []
            for f in findings:
                size = f"{f.size_mm / 10:g}cm" if f.size_mm >= 10 and rng.random() < 0.5 else f"{f.size_mm:g}mm"
                parts.append(
                    rng.choice(
                        [
                            f"{LOCATIONS_ZH[f.location]}见一{MORPH_ZH[f.morphology]}息肉，大小约{size}，予圈套器切除。",
                            f"于{LOCATIONS_ZH[f.location]}可见大小约{size}的{MORPH_ZH[f.morphology]}息肉，已行内镜下切除。",
                        ]
                    )
                )
            body = "".join(parts)
            impression = (
                f"诊断：结肠多发息肉（{NUM_ZH[len(findings)]}），已切除。"
                if len(findings) > 1
                else f"诊断：{LOCATIONS_ZH[findings[0].location]}息肉，已切除。"
            )
        text = "".join(str(t) for t in (prep_zh, reach_zh, body, impression))
        path_text = PATHOLOGY_TEXT[pathology][1] if pathology else None
    return text, path_text


def exam_labels(findings: Sequence[Finding], pathology: str | None) -> dict[str, Any]:
    """Gold report labels (report-label contract) for an exam."""
    return {
        "polyp": "present" if findings else "absent",
        "polyp_count": len(findings),
        "polyps": [
            {"location": f.location, "size_mm": f.size_mm, "morphology": f.morphology, "removed": True}
            for f in findings
        ],
        "malignancy_suspected": False,
        "pathology": pathology,
    }


# ----------------------------------------------------------------------------------------------- plan
@dataclass
class FramePlan:
    """One image of an exam: ``kind`` is "polyp", "crop" (polyp-free TrainDataset crop) or "negative"."""

    kind: str
    source: Path
    mask: Path | None = None
    box: tuple[int, int, int, int] | None = None
    resize_to: tuple[int, int] | None = None  # (width, height) the cut box is scaled to (full/heldout crops)
    # whole-frame designs: the share of the output size the frame is sampled at before it is scaled up to it, so
    # every frame (whole, crop or PolypGen) carries the blur of a crop scaled up by 1/detail
    detail: float | None = None
    scope: bool = False  # shown through the common endoscope mask (whole-frame designs, ArchiveSpec.scope_mask)


@dataclass
class ExamPlan:
    exam_id: str
    positive: bool
    lang: str
    frames: list[FramePlan] = field(default_factory=list)


class _Pool:
    """Draw items without replacement, reshuffling when exhausted (deterministic for a generator)."""

    def __init__(self, items: Sequence[Any], rng: np.random.Generator) -> None:
        self.items, self.rng, self.order, self.cycles = list(items), rng, [], 0

    def draw(self) -> Any:
        if not self.order:
            self.order = list(self.rng.permutation(len(self.items)))
            self.cycles += 1
        return self.items[self.order.pop()]


def _load_mask(path: Path) -> np.ndarray:
    """A polyp mask as bool: 0/255 masks (TrainDataset) at > 127, class-index masks (BKAI: 0 background, 1 and
    2 the polyp's class) at > 0."""
    arr = np.asarray(Image.open(path).convert("L"))
    return arr > (127 if arr.max() > 2 else 0)


def origin_of(frame: FramePlan) -> str:
    """The dataset or centre a frame comes from (``truth/images.csv``'s ``origin``)."""
    if frame.kind == "negative":
        return "polypgen_" + frame.source.name.split("_", 1)[0]  # PolypGen frames are named by centre: A_..., B_...
    if frame.source.parent.parent.name == "biopsy":
        return "bkai"
    return "clinicdb" if frame.source.name.startswith("clinicdb_") else "kvasir"


def plan_archive(sources: Sources, spec: ArchiveSpec) -> list[ExamPlan]:
    """Decide every exam's frames and crop boxes (reads masks, writes nothing)."""
    if spec.composition not in COMPOSITIONS:
        raise ValueError(f"unknown composition {spec.composition!r}; choose one of {', '.join(COMPOSITIONS)}")
    rng = np.random.default_rng(spec.seed)
    whole = spec.composition != "crops"
    pairs = sources.bkai_images if spec.composition == "heldout" else sources.polyp_images
    if not pairs:
        raise FileNotFoundError(f"composition {spec.composition!r}: no polyp images with masks found")
    centre = HELDOUT_CENTRE if spec.composition == "heldout" else None
    seq_names = [s for s in sources.negative_frames if centre is None or s.startswith(centre + "/")]
    if not seq_names:
        raise FileNotFoundError(f"composition {spec.composition!r}: no PolypGen frames of {centre}")

    def polyp_frame(img: Path, mask_path: Path) -> FramePlan | None:
        mask = _load_mask(mask_path)
        if whole:  # the whole frame, with a crop's blur
            if not mask.any():
                return None
            if spec.scope_mask:  # most of the polyp must stay visible through the endoscope mask
                seen = np.count_nonzero(mask & scope_mask((mask.shape[1], mask.shape[0])))
                if seen < spec.min_polyp_fraction * np.count_nonzero(mask):
                    return None
            box = (0, 0, mask.shape[1], mask.shape[0])
            detail = float(rng.uniform(*spec.crop_scale))
            return FramePlan("polyp", img, mask_path, box, detail=detail, scope=spec.scope_mask)
        box = polyp_crop_box(mask, float(rng.uniform(*spec.crop_scale)), rng, spec)
        return FramePlan("polyp", img, mask_path, box) if box is not None else None

    def free_frame(img: Path, mask_path: Path) -> FramePlan | None:
        mask = _load_mask(mask_path)
        box = free_crop_box(mask, float(rng.uniform(*spec.crop_scale)), rng, spec)
        if box is None:
            return None
        if not whole:
            return FramePlan("crop", img, mask_path, box)
        # whole-frame designs scale the crop back up to its source frame's size: its detail is its width's share
        width = mask.shape[1]
        return FramePlan(
            "crop", img, mask_path, box, (width, mask.shape[0]), (box[2] - box[0]) / width, spec.scope_mask
        )

    def negative_frame(frame: Path) -> FramePlan:
        if not whole:
            return FramePlan("negative", frame)
        # cut to the aspect of a random polyp frame and scaled to its size: geometry says little
        target = _image_size(pairs[int(rng.integers(len(pairs)))][0])
        box = aspect_box(_image_size(frame), target)
        return FramePlan("negative", frame, None, box, target, float(rng.uniform(*spec.crop_scale)), spec.scope_mask)

    n_pos = round(spec.exams * spec.positive_fraction)
    positive = np.zeros(spec.exams, dtype=bool)
    positive[rng.permutation(spec.exams)[:n_pos]] = True
    order = rng.permutation(len(pairs))
    n_polyp_needed = n_pos * spec.polyp_frames[1]
    polyp_pool = _Pool([pairs[i] for i in order[:n_polyp_needed]], rng)
    crop_pool = _Pool([pairs[i] for i in order[n_polyp_needed:]] or pairs, rng)
    seq_pools = {s: _Pool(sources.negative_frames[s], rng) for s in seq_names}
    plans: list[ExamPlan] = []
    for e in range(spec.exams):
        plan = ExamPlan(f"P{e:04d}", bool(positive[e]), "zh" if rng.random() < spec.zh_fraction else "en")
        sequence = seq_names[int(rng.integers(len(seq_names)))]
        lo, hi = spec.polyp_frames if plan.positive else (0, 0)
        for _ in range(int(rng.integers(lo, hi + 1))):
            for _attempt in range(20):
                frame = polyp_frame(*polyp_pool.draw())
                if frame is not None:
                    plan.frames.append(frame)
                    break
        lo, hi = spec.free_frames_positive if plan.positive else spec.free_frames_negative
        for _ in range(int(rng.integers(lo, hi + 1))):
            if rng.random() < spec.negative_source_share:
                plan.frames.append(negative_frame(seq_pools[sequence].draw()))
                continue
            for _attempt in range(20):
                frame = free_frame(*crop_pool.draw())
                if frame is not None:
                    plan.frames.append(frame)
                    break
        order_f = rng.permutation(len(plan.frames))
        plan.frames = [plan.frames[i] for i in order_f]
        plans.append(plan)
    if polyp_pool.cycles > 1 or crop_pool.cycles > 1:
        logger.warning(
            "source images were reused (polyp frames: %d passes, crops: %d passes)", polyp_pool.cycles, crop_pool.cycles
        )
    return plans


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # reads the header only
        return im.size


def aspect_box(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centred box of ``size = (width, height)`` with the aspect of ``target``."""
    w, h = size
    tw, th = target
    if w * th > h * tw:  # too wide: trim the sides
        cw = max(1, round(h * tw / th))
        x0 = (w - cw) // 2
        return x0, 0, x0 + cw, h
    ch = max(1, round(w * th / tw))
    y0 = (h - ch) // 2
    return 0, y0, w, y0 + ch


LEAK_CUES = ("area", "aspect", "brightness", "sharpness", "dark_border")
Cues = tuple[int, float, float, float, float, float]


def leak_auroc(frames: Sequence[Cues]) -> dict[str, float]:
    """How well each cue alone separates polyp from polyp-free frames: ``frames`` are ``(polyp 0/1, area,
    aspect, mean brightness, sharpness, dark border)``; per cue the AUROC of the better direction (0.5: no leak,
    1.0: a give-away). Sharpness (variance of the grey Laplacian) shows frames scaled up from crops; the dark
    border (:func:`dark_border`) the endoscope's black frame and overlays that whole frames show and crops cut
    from their inside do not."""
    from endoked.stats import auroc

    y = np.asarray([f[0] for f in frames])
    out: dict[str, float] = {}
    for i, name in enumerate(LEAK_CUES, start=1):
        score = np.asarray([f[i] for f in frames], dtype=np.float64)
        a = float(auroc(y, score)) if 0 < y.sum() < len(y) else float("nan")
        out[name] = round(max(a, 1.0 - a), 4)
    return out


# ----------------------------------------------------------------------------------------------- write
def _findings(n: int, rng: np.random.Generator) -> list[Finding]:
    locs = list(LOCATIONS_EN)
    return [
        Finding(
            str(rng.choice(locs)),
            float(rng.choice([3, 4, 5, 6, 8, 10, 12, 15, 20, 25])),
            str(rng.choice(["sessile", "sessile", "pedunculated", "flat"])),
        )
        for _ in range(n)
    ]


def _fit_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    if max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _fit(image: Image.Image, max_side: int, resample: Image.Resampling) -> Image.Image:
    size = _fit_size(image.size, max_side)
    return image if size == image.size else image.resize(size, resample)


def resample_frame(image: Image.Image, frame: FramePlan, max_side: int) -> Image.Image:
    """The cut ``image`` at its output size: scaled to ``frame.resize_to`` (if any) and fitted into ``max_side``.
    With ``frame.detail``, the frame is first sampled down to that share of the output size (never up), so
    that the output shows the same loss of detail as a crop of that share scaled up to the frame."""
    target = _fit_size(frame.resize_to or image.size, max_side)
    if frame.detail is not None:
        mid = (max(1, round(target[0] * frame.detail)), max(1, round(target[1] * frame.detail)))
        if mid[0] < image.width and mid[1] < image.height:
            image = image.resize(mid, Image.Resampling.BILINEAR)
    return image if image.size == target else image.resize(target, Image.Resampling.BILINEAR)


SHARPNESS_SEED = 64  # polyp-free frames measured before the first polyp frame is matched


def sharpness(image: Image.Image) -> float:
    """Variance of the grey image's Laplacian: high for fine detail, low for a frame scaled up from a crop."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def dark_border(image: Image.Image, ring: float = 0.06, level: int = 20) -> float:
    """Share of the outer ring (``ring`` of the shorter side wide) darker than ``level`` grey levels."""
    gray = np.asarray(image.convert("L"))
    k = max(1, round(ring * min(gray.shape)))
    edge = np.concatenate([gray[:k].ravel(), gray[-k:].ravel(), gray[k:-k, :k].ravel(), gray[k:-k, -k:].ravel()])
    return float((edge < level).mean())


SCOPE_RING = 0.07  # the common endoscope mask's black ring, as a share of the frame's shorter side
SCOPE_CORNER = 0.22  # its cut corners (an octagon, as many endoscopes show), same unit


@functools.lru_cache(maxsize=64)  # a few frame sizes, each masked many times (renders, sharpness steps, truth)
def scope_mask(size: tuple[int, int], ring: float = SCOPE_RING, corner: float = SCOPE_CORNER) -> np.ndarray:
    """The common endoscope mask of a ``size = (width, height)`` frame: ``(height, width)`` bool, True inside an
    octagon inset by ``ring`` and with corners cut by ``corner`` (both shares of the shorter side). Every frame of a
    whole-frame design is blacked out outside it, so that each source's own border, corner overlays and the
    crops' lack of any border no longer tell polyp from polyp-free frames. Cached per size: read-only."""
    w, h = size
    side = min(w, h)
    r, c = ring * side, corner * side
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    dx = np.minimum(x - r, (w - r) - x)  # distance inside the inset rectangle, per axis
    dy = np.minimum(y - r, (h - r) - y)
    inside = (dx >= 0) & (dy >= 0) & (dx + dy >= c)
    inside.flags.writeable = False
    return inside


def render_frame(frame: FramePlan, max_side: int) -> Image.Image:
    """The frame's image as written: cut to its box, scaled (whole-frame designs) and fitted into ``max_side``,
    and shown through the common endoscope mask when ``frame.scope``."""
    image = Image.open(frame.source).convert("RGB")
    if frame.box is not None:
        image = image.crop(frame.box)
    if frame.resize_to is not None or frame.detail is not None:
        image = resample_frame(image, frame, max_side)
        if frame.scope:
            image = Image.fromarray(np.asarray(image) * scope_mask(image.size)[..., None].astype(np.uint8))
        return image
    return _fit(image, max_side, Image.Resampling.BILINEAR)  # the crops design, byte for byte as before


MIN_DETAIL = 0.15  # the least detail match_sharpness samples a polyp frame at


def match_sharpness(
    frame: FramePlan, image: Image.Image, sharp: float, target: float, spec: ArchiveSpec
) -> tuple[Image.Image, float]:
    """Whole-frame designs: a whole polyp frame shows the endoscope's border, overlays and the polyp's own edges,
    which no polyp-free crop has, so at the same ``detail`` it stays sharper than they are. It is sampled at a
    lower detail (x0.9 per step, down to ``MIN_DETAIL``) until it is no sharper than ``target``: quantile matching
    of the polyp frames' sharpness to the polyp-free frames'. ``sharp`` is ``image``'s sharpness; returns the
    image and its sharpness."""
    detail = frame.detail if frame.detail is not None else 1.0
    while sharp > target and detail * 0.9 >= MIN_DETAIL:
        detail *= 0.9
        image = render_frame(replace(frame, detail=detail), spec.max_side)
        sharp = sharpness(image)
    return image, sharp


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_archive(plans: Sequence[ExamPlan], out: Path, spec: ArchiveSpec) -> dict[str, Any]:
    """Write images, ``manifest.jsonl`` and ``truth/`` for ``plans`` into ``out``; returns counts."""
    rng = np.random.default_rng(spec.seed + 1)
    out.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, Any]] = []
    truth_exams: list[dict[str, Any]] = []
    truth_images: list[dict[str, Any]] = []
    truth_meta: list[dict[str, Any]] = []
    cues: list[Cues] = []
    counts: dict[str, Any] = {
        "exams": 0,
        "positive_exams": 0,
        "negative_exams": 0,
        "images": 0,
        "polyp_images": 0,
        "crop_images": 0,
        "negative_source_images": 0,
    }
    # whole-frame designs: each polyp frame is blurred down to the sharpness the polyp-free frames written so far
    # (seeded with the first ones planned) have at its own quantile among the first polyp frames planned
    whole = [f for p in plans for f in p.frames if f.detail is not None]
    free_sharp = [
        sharpness(render_frame(f, spec.max_side)) for f in [f for f in whole if f.kind != "polyp"][:SHARPNESS_SEED]
    ]
    polyp_sharp = np.sort(
        [sharpness(render_frame(f, spec.max_side)) for f in [f for f in whole if f.kind == "polyp"][:SHARPNESS_SEED]]
    )
    for plan in plans:
        n_polyp = sum(f.kind == "polyp" for f in plan.frames)
        findings = _findings(n_polyp, rng)
        pathology = None
        if findings and rng.random() < 0.8:
            pathology = str(
                rng.choice(["adenoma", "adenoma", "adenoma", "hyperplastic", "sessile_serrated", "inflammatory"])
            )
        report, path_text = render_report(findings, pathology, plan.lang, rng)
        images: list[str] = []
        for k, frame in enumerate(plan.frames):
            rel = f"{plan.exam_id}/{k:02d}.jpg"
            mask_rel = ""
            image = render_frame(frame, spec.max_side)
            sharp = sharpness(image)
            if frame.detail is not None:
                if frame.kind == "polyp":
                    # the free frames' sharpness at this frame's quantile among the polyp frames
                    q = float(np.searchsorted(polyp_sharp, sharp)) / max(1, len(polyp_sharp))
                    target = float(np.quantile(free_sharp, min(q, 1.0)))
                    image, sharp = match_sharpness(frame, image, sharp, target, spec)
                else:
                    free_sharp.append(sharp)
            (out / plan.exam_id).mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(_encode_jpeg(image, spec.jpeg_quality))
            if frame.kind == "polyp" and frame.mask is not None and frame.box is not None:
                cut = _load_mask(frame.mask)[frame.box[1] : frame.box[3], frame.box[0] : frame.box[2]]
                mask = Image.fromarray(np.where(cut, 255, 0).astype(np.uint8)).resize(
                    image.size, Image.Resampling.NEAREST
                )
                if frame.scope:  # the polyp's part under the endoscope mask cannot be seen
                    mask = Image.fromarray(np.asarray(mask) * scope_mask(image.size).astype(np.uint8))
                mask_rel = f"truth/masks/{plan.exam_id}/{k:02d}.png"
                (out / mask_rel).parent.mkdir(parents=True, exist_ok=True)
                mask.save(out / mask_rel)
            images.append(rel)
            truth_images.append(
                {
                    "image": rel,
                    "exam_id": plan.exam_id,
                    "polyp": int(frame.kind == "polyp"),
                    "mask": mask_rel,
                    "source": f"{frame.kind}:{frame.source.name}",
                    "origin": origin_of(frame),
                }
            )
            gray = np.asarray(image.convert("L"), dtype=np.float32)
            cues.append(
                (
                    int(frame.kind == "polyp"),
                    float(gray.size),
                    image.width / image.height,
                    float(gray.mean()),
                    sharp,
                    dark_border(image),
                )
            )
            counts["images"] += 1
            counts[
                {"polyp": "polyp_images", "crop": "crop_images", "negative": "negative_source_images"}[frame.kind]
            ] += 1
        manifest.append({"exam_id": plan.exam_id, "report": report, "pathology": path_text, "images": images})
        truth_exams.append({"id": plan.exam_id, **exam_labels(findings, pathology)})
        truth_meta.append({"exam_id": plan.exam_id, "category": "present" if findings else "absent", "lang": plan.lang})
        counts["exams"] += 1
        counts["positive_exams" if findings else "negative_exams"] += 1
    counts["leak_auroc"] = leak_auroc(cues)
    (out / "truth").mkdir(exist_ok=True)
    _write_lines(out / "manifest.jsonl", manifest)
    _write_lines(out / "truth" / "exams.jsonl", truth_exams)
    _write_lines(out / "truth" / "meta.jsonl", truth_meta)
    with open(out / "truth" / "images.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "exam_id", "polyp", "mask", "source", "origin"])
        writer.writeheader()
        writer.writerows(truth_images)
    spec_json = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}
    (out / "truth" / "spec.json").write_text(
        json.dumps({"spec": spec_json, "counts": counts}, indent=2) + "\n", encoding="utf-8"
    )
    return counts


def _write_lines(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def build_archive(out: Path, spec: ArchiveSpec | None = None, data_root: Path | None = None) -> dict[str, Any]:
    """Plan and write the public benchmark archive into ``out``; returns counts."""
    spec = spec or ArchiveSpec()
    sources = Sources.load(data_root or shared_data_root(), spec.composition)
    plans = plan_archive(sources, spec)
    counts = write_archive(plans, Path(out), spec)
    logger.info("public archive in %s: %s", out, counts)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output archive folder")
    parser.add_argument("--exams", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--positive-fraction", type=float, default=0.5)
    parser.add_argument("--composition", choices=COMPOSITIONS, default="crops", help="archive design (see above)")
    parser.add_argument("--data", type=Path, default=None, help="public data root (default: shared data)")
    parser.add_argument(
        "--no-scope-mask",
        dest="scope_mask",
        action="store_false",
        help="whole-frame designs: keep each source's own border instead of one common endoscope mask",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = ArchiveSpec(
        exams=args.exams,
        seed=args.seed,
        positive_fraction=args.positive_fraction,
        composition=args.composition,
        scope_mask=args.scope_mask,
    )
    counts = build_archive(args.out, spec, args.data)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
