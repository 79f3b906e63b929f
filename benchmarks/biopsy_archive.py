"""Build the optical-biopsy benchmark from BKAI-IGH NeoPolyp-Small (``<shared data>/biopsy``).

The 1,000 polyp images are split once, by seed and stratified by class (neoplastic / non-neoplastic,
``labels.csv``'s majority label), into:

- 50 %: a report-supervised archive in the pipeline's manifest format. Images of one class are grouped into
  exams of 1-3 polyp frames, each exam with a colonoscopy report (English or Chinese, the phrase generators of
  :mod:`endoked.synth`) and, for 85 % of them, a pathology text written to match the class (neoplastic:
  adenoma or sessile serrated lesion; non-neoplastic: hyperplastic or inflammatory polyp); the text sits in
  the separate ``pathology`` field or is appended to the report. Each polyp exam also holds 0-2 polyp-free
  frames and there are normal exams made of polyp-free frames only (``negatives/``, one video sequence per
  exam). Nothing in the archive carries the class masks: pre-training sees report text and images only.
- 20 %: the small labelled fine-tuning pool (``finetune.csv``: image, label, group);
- 30 %: the test set (``test.csv``).

Layout of ``OUT``: ``archive/manifest.jsonl`` + images, ``archive/truth/{exams.jsonl,images.csv}`` (gold
report labels and each image's class, for checks only), ``finetune.csv``, ``test.csv``, ``split.json``.
CSV image paths are absolute paths into the shared data folder (nothing is copied into the project).

Usage::

    python benchmarks/biopsy_archive.py --out DIR --seed 0
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from endoked.synth import phrases as P
from endoked.synth.findings import sample_findings
from endoked.synth.report_en import pick, render_en
from endoked.synth.report_zh import render_zh

logger = logging.getLogger("endoked.benchmarks.biopsy_archive")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARES = {"archive": 0.5, "finetune": 0.2, "test": 0.3}
NEOPLASTIC_PATHOLOGY = (("adenoma", 0.85), ("sessile_serrated", 0.15))
NON_NEOPLASTIC_PATHOLOGY = (("hyperplastic", 0.75), ("inflammatory", 0.25))


def shared_data_root() -> Path:
    """``$ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("ENDOKED_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def read_labels(root: Path) -> list[dict[str, Any]]:
    """Rows of ``biopsy/labels.csv`` with ``path`` (absolute) and ``cls`` (1 neoplastic, 0 non-neoplastic)."""
    path = root / "biopsy" / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; set ENDOKED_SHARED_DATA to the public data folder")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        {
            "image": r["image"],
            "path": str(root / "biopsy" / r["image"]),
            "label": r["label"],
            "cls": int(r["label"] == "neoplastic"),
        }
        for r in sorted(rows, key=lambda r: r["image"])
    ]


def split_rows(rows: Sequence[dict[str, Any]], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Seeded, class-stratified 50/20/30 split."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in SHARES}
    for cls in (0, 1):
        members = [r for r in rows if r["cls"] == cls]
        order = rng.permutation(len(members))
        n_arch = round(SHARES["archive"] * len(members))
        n_fine = round(SHARES["finetune"] * len(members))
        out["archive"] += [members[i] for i in order[:n_arch]]
        out["finetune"] += [members[i] for i in order[n_arch : n_arch + n_fine]]
        out["test"] += [members[i] for i in order[n_arch + n_fine :]]
    return {k: sorted(v, key=lambda r: r["image"]) for k, v in out.items()}


def _pathology_text(rng: np.random.Generator, category: str, lang: str) -> str:
    zh = lang == "zh"
    phrase = pick(rng, P.PATHOLOGY_TEXT[category][1 if zh else 0])
    return phrase + ("。" if zh else ".")


def _draw(rng: np.random.Generator, choices: Sequence[tuple[str, float]]) -> str:
    names = [c for c, _ in choices]
    return str(rng.choice(names, p=[w for _, w in choices]))


def _negative_sequences(root: Path) -> dict[str, list[Path]]:
    frames: dict[str, list[Path]] = {}
    with open(root / "negatives" / "frames.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            frames.setdefault(f"{row['centre']}/{row['sequence']}", []).append(root / "negatives" / row["image"])
    return {k: sorted(v) for k, v in sorted(frames.items())}


def build(
    out: Path,
    seed: int = 0,
    data_root: Path | None = None,
    pathology_rate: float = 0.85,
    normal_exam_ratio: float = 0.4,
) -> dict[str, Any]:
    """Write the benchmark folders into ``out`` (see the module docstring); returns counts."""
    root = data_root or shared_data_root()
    rng = np.random.default_rng(seed + 17)
    split = split_rows(read_labels(root), seed)
    arch = out / "archive"
    (arch / "truth").mkdir(parents=True, exist_ok=True)
    sequences = _negative_sequences(root)
    seq_names = list(sequences)
    seq_left = {s: list(rng.permutation(len(v))) for s, v in sequences.items()}

    def free_frames(n: int) -> list[Path]:
        seq = seq_names[int(rng.integers(len(seq_names)))]
        if len(seq_left[seq]) < n:
            seq_left[seq] = list(rng.permutation(len(sequences[seq])))
        return [sequences[seq][seq_left[seq].pop()] for _ in range(n)]

    exams: list[tuple[int | None, list[dict[str, Any]]]] = []
    for cls in (0, 1):
        members = [
            split["archive"][i] for i in rng.permutation(len(split["archive"])) if split["archive"][i]["cls"] == cls
        ]
        while members:
            k = min(len(members), int(rng.integers(1, 4)))
            exams.append((cls, members[:k]))
            members = members[k:]
    n_normal = round(normal_exam_ratio * len(exams))
    exams += [(None, []) for _ in range(n_normal)]
    exams = [exams[i] for i in rng.permutation(len(exams))]
    manifest, truth_exams, truth_images = [], [], []
    counts = {
        "exams": 0,
        "polyp_exams": 0,
        "normal_exams": 0,
        "with_pathology": 0,
        "polyp_images": 0,
        "free_images": 0,
        "neoplastic_exams": 0,
        "non_neoplastic_exams": 0,
    }
    for e, (cls, polyps) in enumerate(exams):
        exam_id = f"B{e:04d}"
        lang = "zh" if rng.random() < 0.5 else "en"
        if cls is None:
            findings = sample_findings(rng, "absent")
            findings.pathology = []
            frames = [("free", p) for p in free_frames(int(rng.integers(2, 5)))]
        else:
            findings = sample_findings(rng, "present", pathology_rate=0.0)
            category = _draw(rng, NEOPLASTIC_PATHOLOGY if cls == 1 else NON_NEOPLASTIC_PATHOLOGY)
            findings.pathology = [category] if rng.random() < pathology_rate else []
            frames = [("polyp", Path(r["path"])) for r in polyps]
            frames += [("free", p) for p in free_frames(int(rng.integers(0, 3)))]
            frames = [frames[i] for i in rng.permutation(len(frames))]
        text = render_en(rng, findings) if lang == "en" else render_zh(rng, findings)
        pathology = None
        if findings.pathology:
            ptext = _pathology_text(rng, findings.pathology[0], lang)
            if rng.random() < 0.3:
                head = "病理：" if lang == "zh" else "Pathology: "
                text = f"{text}\n{head}{ptext}"
            else:
                pathology = ptext
        images = []
        (arch / exam_id).mkdir(exist_ok=True)
        for k, (kind, src) in enumerate(frames):
            rel = f"{exam_id}/{k:02d}{src.suffix.lower()}"
            shutil.copyfile(src, arch / rel)
            images.append(rel)
            truth_images.append(
                {
                    "image": rel,
                    "exam_id": exam_id,
                    "polyp": int(kind == "polyp"),
                    "cls": "" if kind == "free" else cls,
                    "source": src.name,
                }
            )
            counts["polyp_images" if kind == "polyp" else "free_images"] += 1
        manifest.append({"exam_id": exam_id, "report": text, "pathology": pathology, "images": images})
        truth_exams.append({"id": exam_id, **findings.labels()})
        counts["exams"] += 1
        counts["normal_exams" if cls is None else "polyp_exams"] += 1
        if cls is not None:
            counts["neoplastic_exams" if cls == 1 else "non_neoplastic_exams"] += 1
        counts["with_pathology"] += bool(findings.pathology)
    _lines(arch / "manifest.jsonl", manifest)
    _lines(arch / "truth" / "exams.jsonl", truth_exams)
    _csv(arch / "truth" / "images.csv", truth_images, ["image", "exam_id", "polyp", "cls", "source"])
    for name in ("finetune", "test"):
        _csv(
            out / f"{name}.csv",
            [{"image": r["path"], "label": r["label"], "group": Path(r["image"]).stem} for r in split[name]],
            ["image", "label", "group"],
        )
    summary = {
        "seed": seed,
        "counts": counts,
        "split": {k: {"images": len(v), "neoplastic": sum(r["cls"] for r in v)} for k, v in split.items()},
    }
    (out / "split.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _lines(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="public data root (default: shared data)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(json.dumps(build(args.out, args.seed, args.data), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
