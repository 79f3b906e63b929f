"""The prompt_seg stage on a hand-made run folder (ingest images + hand-written cam boxes and CAMs)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked import tables
from endoked.config import resolve_config
from endoked.io import atomic_write_bytes, read_parquet
from endoked.pipeline import available_stages, run_stage
from endoked.prompt_seg.stage import PSEUDO_SCHEMA, STAGE, mask_relpaths
from endoked.runfolder import RunFolder

SET = [
    "prompt_seg.selection=box",
    "prompt_seg.segmenter=ellipse",
    "prompt_seg.chunk_size=2",
    "prompt_seg.overlays=2",
    "prompt_seg.refine_iters=0",
    "prompt_seg.candidate_thresholds=[]",
    "prompt_seg.candidate_scales=[]",
    "prompt_seg.min_score=0.0",
    "prompt_seg.max_area_fraction=1.0",
]


def make_run(tmp_path: Path) -> RunFolder:
    """Three images with one box each (E1 has two boxes), one with a stem shared by two images."""
    run = RunFolder(tmp_path / "run")
    arch = tmp_path / "archive"
    specs = [
        ("E0", "E0/a.jpg", [(10, 8, 30, 24)]),
        ("E1", "E1/b.png", [(4, 4, 14, 12), (30, 20, 50, 40)]),
        ("E1", "E1/sub/b.png", [(20, 10, 40, 30)]),
    ]
    images, boxes, cams_idx, arrays, dropped = [], [], [], {}, []
    for k, (exam, rel, bxs) in enumerate(specs):
        path = arch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(path)
        images.append({"exam_id": exam, "image": rel, "path": str(path), "width": 64, "height": 48})
        cam = np.zeros((12, 16), np.float32)
        for j, (x0, y0, x1, y1) in enumerate(bxs):
            boxes.append(
                {
                    "exam_id": exam,
                    "image": rel,
                    "box_id": j,
                    "x0": float(x0),
                    "y0": float(y0),
                    "x1": float(x1),
                    "y1": float(y1),
                    "cam_score": 0.9,
                    "class_prob": 0.9,
                    "area_fraction": (x1 - x0) * (y1 - y0) / (64 * 48),
                }
            )
            cam[y0 // 4 : y1 // 4, x0 // 4 : x1 // 4] = 1.0
        arrays[f"c{k}"] = (cam * 255).astype(np.uint8)
        cams_idx.append({"exam_id": exam, "image": rel, "file": "cam/chunks/part-00000.npz", "key": f"c{k}"})
    # Two images the cam stage dropped: one for a box filter (its CAM is a blob touching the left border;
    # rescuable), one for a low classifier probability (not).
    for k, (rel, reason) in enumerate((("E2/c.jpg", "touches_border"), ("E2/d.jpg", "low_class_prob")), start=3):
        path = arch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(path)
        images.append({"exam_id": "E2", "image": rel, "path": str(path), "width": 64, "height": 48})
        cam = np.zeros((12, 16), np.float32)
        cam[3:9, 0:6] = 1.0
        arrays[f"c{k}"] = (cam * 255).astype(np.uint8)
        cams_idx.append({"exam_id": "E2", "image": rel, "file": "cam/chunks/part-00000.npz", "key": f"c{k}"})
        dropped.append({"exam_id": "E2", "image": rel, "reason": reason, "class_prob": 0.9})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(run.root / "cam/chunks/part-00000.npz", buf.getvalue())
    for stage, outputs in (
        ("ingest", {"images": images}),
        ("cam", {"boxes": boxes, "cams": cams_idx, "dropped": dropped}),
    ):
        files = {}
        for name, rows in outputs.items():
            path = run.stage_dir(stage) / f"{name}.parquet"
            tables.write(path, f"{stage}/{name}", rows)
            files[name] = run.rel(path)
        run.mark_running(stage, "fp", {})
        run.mark_done(stage, files, {}, 0.0)
    return run


def test_prompt_seg_stage_is_registered() -> None:
    assert available_stages()["prompt_seg"] is STAGE
    assert STAGE.depends == ("ingest", "cam")


def test_mask_paths_follow_the_contract_and_never_collide() -> None:
    names = mask_relpaths([("E1", "E1/b.png"), ("E1", "E1/sub/b.png"), ("E 2", "x/y z.jpg")])
    assert names[("E1", "E1/b.png")] == "prompt_seg/masks/E1/b.png"
    assert names[("E1", "E1/sub/b.png")].startswith("prompt_seg/masks/E1/b-")
    assert names[("E 2", "x/y z.jpg")] == "prompt_seg/masks/E_2/y_z.png"


def test_prompt_seg_stage_writes_masks_table_and_overlays(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    cfg = resolve_config("cpu-small", overrides=SET)
    status, result = run_stage(run, cfg, STAGE, progress=False)
    assert status == "ran" and result is not None
    table = read_parquet(run.output("prompt_seg", "pseudo_labels"))
    assert table.schema.equals(PSEUDO_SCHEMA)
    rows = {r["image"]: r for r in table.to_pylist()}
    assert set(rows) == {"E0/a.jpg", "E1/b.png", "E1/sub/b.png"}
    for r in rows.values():
        mask = np.asarray(Image.open(run.abs(r["mask"])))
        assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255}
        assert r["source"] == "cam+ellipse" and r["score"] == 1.0
        assert 0 < r["cam_agreement"] <= 1
        assert abs(r["area_fraction"] - (mask > 0).mean()) < 1e-9
    # Two boxes of one image are merged into one mask: two ellipses, areas add up.
    two = np.asarray(Image.open(run.abs(rows["E1/b.png"]["mask"]))) > 0
    assert rows["E1/b.png"]["n_boxes"] == 2
    assert abs(two.sum() - np.pi * (5 * 4 + 10 * 10)) < 0.1 * np.pi * 120
    assert two[8, 9] and two[30, 40] and not two[25, 20]
    assert len(list((run.stage_dir("prompt_seg") / "overlays").glob("*.png"))) == 2
    assert result.counts == {**result.counts, "images": 3, "pseudo_labels": 3, "rejected": 0}


def test_prompt_seg_filter_rejects_with_reason_and_resumes(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    cfg = resolve_config("cpu-small", overrides=[*SET, "prompt_seg.min_area_fraction=0.05"])
    _, result = run_stage(run, cfg, STAGE, progress=False)
    assert result is not None
    # Ellipse areas: E0 π·10·8 = 8.2 %, E1/b.png's boxes 2.0 % and 10.2 %, E1/sub/b.png 10.2 % of the image.
    assert read_parquet(run.output("prompt_seg", "rejected")).num_rows == 0
    rows = {r["image"]: r for r in read_parquet(run.output("prompt_seg", "pseudo_labels")).to_pylist()}
    assert set(rows) == {"E0/a.jpg", "E1/b.png", "E1/sub/b.png"}
    assert rows["E1/b.png"]["n_boxes"] == 1  # the small box's mask failed, the big one is kept alone
    assert abs(rows["E1/b.png"]["area_fraction"] - np.pi * 100 / 3072) < 0.01
    tight = resolve_config("cpu-small", overrides=[*SET, "prompt_seg.min_area_fraction=0.2"])
    run2 = make_run(tmp_path / "tight")
    _, result2 = run_stage(run2, tight, STAGE, progress=False)
    assert result2 is not None and result2.counts["pseudo_labels"] == 0
    assert {r["reason"] for r in read_parquet(run2.output("prompt_seg", "rejected")).to_pylist()} == {"mask_too_small"}
    # Resume: an interrupted run reuses its finished chunks.
    entry = run.entry("prompt_seg")
    assert entry is not None
    run.mark_running("prompt_seg", entry["fingerprint"], {})
    (run.stage_dir("prompt_seg") / "pseudo_labels.parquet").unlink()
    status, again = run_stage(run, cfg, STAGE, progress=False)
    assert status == "resumed" and again is not None and again.counts["chunks_reused"] == 2


def test_consensus_selection_one_mask_per_image_and_rescues_box_filter_drops(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    cfg = resolve_config(
        "cpu-small", overrides=["prompt_seg.segmenter=ellipse", "prompt_seg.overlays=0", "prompt_seg.min_rank=1.2"]
    )
    assert cfg.prompt_seg.selection == "consensus"
    _, result = run_stage(run, cfg, STAGE, progress=False)
    assert result is not None
    rows = {r["image"]: r for r in read_parquet(run.output("prompt_seg", "pseudo_labels")).to_pylist()}
    # the rescued image (dropped for touching the border) gets a mask; the low-probability one is not tried
    assert set(rows) == {"E0/a.jpg", "E1/b.png", "E1/sub/b.png", "E2/c.jpg"}
    assert rows["E2/c.jpg"]["rescued"] and not rows["E0/a.jpg"]["rescued"]
    assert result.counts["rescued_images"] == 1 and result.counts["rescued_labels"] == 1
    for r in rows.values():
        assert r["n_boxes"] == 1 and r["rank"] >= 1.2 and 0 < r["consensus"] <= 1
        assert r["rank"] == pytest.approx(r["segmenter_score"] + r["consensus"])  # default weights 1, 1, 0
        assert r["score"] == pytest.approx(min(r["rank"] / 2, 1.0))
    rescued = np.asarray(Image.open(run.abs(rows["E2/c.jpg"]["mask"]))) > 0
    assert rescued[24, 10] and not rescued[24, 40]  # on the CAM blob (x 0..24, y 12..36), not elsewhere
    # a stricter rank threshold rejects with the reason
    strict = resolve_config("cpu-small", overrides=["prompt_seg.segmenter=ellipse", "prompt_seg.min_rank=1.99"])
    run2 = make_run(tmp_path / "strict")
    _, result2 = run_stage(run2, strict, STAGE, progress=False)
    assert result2 is not None and result2.counts["pseudo_labels"] == 0
    assert {r["reason"] for r in read_parquet(run2.output("prompt_seg", "rejected")).to_pylist()} == {"low_rank"}
