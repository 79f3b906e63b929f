"""Scores against archive truth, on hand-made truth with values worked out by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from endoked.scoring import dice, load_truth, score_run
from tests.fakes import fake_run


def _truth(archive: Path, masks: dict[str, np.ndarray], polyp_free: str, origin: bool = False) -> None:
    (archive / "truth" / "masks").mkdir(parents=True)
    rows = []
    for key, m in masks.items():
        exam, image = key.split("/", 1)
        rel = f"truth/masks/{exam}_{Path(image).stem.replace(' ', '_')}.png"
        if key == polyp_free:
            rows.append({"image": image, "exam_id": exam, "polyp": 0, "mask": ""})
            continue
        shifted = np.roll(m, 1, axis=1)  # truth one pixel to the right of the pseudo mask
        Image.fromarray((shifted * 255).astype(np.uint8)).save(archive / rel)
        rows.append({"image": image, "exam_id": exam, "polyp": 1, "mask": rel})
    if origin:  # exam E0's frames from one source, E1's from another
        rows = [{**r, "origin": "kvasir" if r["exam_id"] == "E0" else "clinicdb"} for r in rows]
    with open(archive / "truth" / "images.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "exam_id", "polyp", "mask", *(["origin"] if origin else [])])
        w.writeheader()
        w.writerows(rows)
    gold = [
        {
            "id": f"E{e}",
            "polyp": "present",
            "polyp_count": 1 if e == 0 else 2,
            "polyps": [],
            "malignancy_suspected": False,
            "pathology": "adenoma",
        }
        for e in range(2)
    ]
    (archive / "truth" / "exams.jsonl").write_text("\n".join(json.dumps(g) for g in gold) + "\n")


def test_scores_against_truth(tmp_path: Path) -> None:
    run, masks = fake_run(tmp_path)
    archive = tmp_path / "archive"
    free = "E1/E1/frame 0.jpg"
    _truth(archive, masks, polyp_free=free)
    truth = load_truth(archive)
    assert truth is not None and truth.polyp[("E1", "E1/frame 0.jpg")] == 0
    scores = score_run(run, archive)
    # fake labels: both exams "present", count 2, pathology adenoma / None
    assert scores["extract"]["polyp_acc"] == 1.0
    assert scores["extract"]["polyp_count_acc"] == 0.5 and scores["extract"]["pathology_acc"] == 0.5
    # fake MIL scores 0.2, 0.5, 0.8, 1.1 in image order; the third image is the polyp-free one
    # positives 0.2, 0.5, 1.1 vs negative 0.8: one of three positives ranks above it -> AUROC 1/3
    np.testing.assert_allclose(scores["mil"]["instance_auroc"], 1 / 3)
    # pseudo masks vs truth shifted by one pixel (each rectangle loses one column); frame 1 has both rectangles
    d1 = 2 * 70 / (77 + 77)
    d2 = 2 * (70 + 84) / (77 + 91 + 77 + 91)
    np.testing.assert_allclose(scores["prompt_seg"]["dice"], np.mean([d1, d2, d2]))
    assert scores["prompt_seg"]["coverage"] == 1.0
    assert scores["prompt_seg"]["masks_on_polyp_free"] == 1.0
    assert not any("[" in k for k in scores["prompt_seg"])  # no origin column: no per-origin figures


def test_pseudo_mask_figures_per_origin(tmp_path: Path) -> None:
    run, masks = fake_run(tmp_path)
    archive = tmp_path / "archive"
    _truth(archive, masks, polyp_free="E1/E1/frame 0.jpg", origin=True)
    ps = score_run(run, archive)["prompt_seg"]
    d1 = 2 * 70 / (77 + 77)  # one rectangle (E0 frame 0), see above
    d2 = 2 * (70 + 84) / (77 + 91 + 77 + 91)  # both rectangles (E0 frame 1, E1 frame 1)
    np.testing.assert_allclose(ps["dice[kvasir]"], np.mean([d1, d2]))
    np.testing.assert_allclose(ps["dice[clinicdb]"], d2)
    assert ps["coverage[kvasir]"] == 1.0 and ps["coverage[clinicdb]"] == 1.0
    assert ps["masks_on_polyp_free[clinicdb]"] == 1.0  # its one polyp-free frame got a mask
    assert "masks_on_polyp_free[kvasir]" not in ps  # E0 has no polyp-free frame: no figure, not nan
    np.testing.assert_allclose(ps["dice"], np.mean([d1, d2, d2]))


def test_dice_edge_cases() -> None:
    a = np.zeros((4, 4), bool)
    assert dice(a, a) == 1.0
    b = a.copy()
    b[0, 0] = True
    assert dice(a, b) == 0.0 and dice(b, b) == 1.0
