"""The public benchmark archive builder on a tiny fake data root (the real data is not needed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from tests.scripts import load_script


@pytest.fixture(scope="module")
def pa() -> ModuleType:
    return load_script(Path("benchmarks/public_archive.py"))


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "polyp/TrainDataset/images").mkdir(parents=True)
    (root / "polyp/TrainDataset/masks").mkdir(parents=True)
    (root / "negatives/images").mkdir(parents=True)
    yy, xx = np.mgrid[:240, :320]
    for i in range(12):
        cx, cy = 100 + 10 * i, 90 + 5 * i
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < 30**2).astype(np.uint8) * 255
        img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / f"polyp/TrainDataset/images/img{i:02d}.jpg")
        Image.fromarray(mask).save(root / f"polyp/TrainDataset/masks/img{i:02d}.png")
    rows = ["image,centre,sequence,width,height"]
    for s in range(3):
        centre = "AB"[s // 2]  # two sequences of centre A, one of centre B; named like PolypGen's frames
        for j in range(5):
            name = f"images/{centre}_s{s}_{j}.jpg"
            Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(root / "negatives" / name)
            rows.append(f"{name},centre_{centre},seq{s}_neg,300,200")
    (root / "negatives/frames.csv").write_text("\n".join(rows) + "\n")
    (root / "biopsy/images").mkdir(parents=True)
    (root / "biopsy/masks").mkdir(parents=True)
    yy, xx = np.mgrid[:160, :200]
    for i in range(8):  # class-index masks (0 background, 1/2 the polyp's class), another frame size
        mask = ((xx - 60 - 10 * i) ** 2 + (yy - 70) ** 2 < 25**2).astype(np.uint8) * (1 + i % 2)
        Image.fromarray(rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)).save(root / f"biopsy/images/b{i}.jpg")
        Image.fromarray(mask).save(root / f"biopsy/masks/b{i}.png")
    return root


def test_window_sums_match_brute_force(pa: ModuleType) -> None:
    mask = np.random.default_rng(1).random((7, 9)) > 0.7
    sums = pa.window_sums(mask, 3, 4)
    assert sums.shape == (5, 6)
    for y in range(5):
        for x in range(6):
            assert sums[y, x] == mask[y : y + 3, x : x + 4].sum()


def test_crop_boxes_respect_the_mask(pa: ModuleType) -> None:
    spec = pa.ArchiveSpec(min_crop_side=20)
    mask = np.zeros((200, 300), dtype=bool)
    mask[80:120, 130:170] = True
    rng = np.random.default_rng(0)
    grown = pa.dilate(mask, round(spec.dilate_fraction * 300))
    for _ in range(20):
        x0, y0, x1, y1 = pa.free_crop_box(mask, 0.4, rng, spec)
        assert not grown[y0:y1, x0:x1].any()
        assert abs((x1 - x0) / (y1 - y0) - 1.5) < 0.05  # the image's aspect
        px0, py0, px1, py1 = pa.polyp_crop_box(mask, 0.5, rng, spec)
        assert mask[py0:py1, px0:px1].sum() == mask.sum()
    assert pa.polyp_crop_box(np.zeros((50, 50), bool), 0.5, rng, spec) is None
    full = np.ones((100, 100), dtype=bool)
    assert pa.free_crop_box(full, 0.5, rng, spec) is None


def test_build_archive_layout_truth_and_determinism(pa: ModuleType, data_root: Path, tmp_path: Path) -> None:
    spec = pa.ArchiveSpec(exams=8, seed=3, min_crop_side=20)
    counts = pa.build_archive(tmp_path / "a", spec, data_root)
    assert counts["exams"] == 8 and counts["positive_exams"] == 4
    manifest = [json.loads(x) for x in (tmp_path / "a/manifest.jsonl").read_text().splitlines()]
    truth = {r["id"]: r for r in map(json.loads, (tmp_path / "a/truth/exams.jsonl").read_text().splitlines())}
    with open(tmp_path / "a/truth/images.csv", newline="") as fh:
        images = list(csv.DictReader(fh))
    assert {"image", "exam_id", "polyp", "mask"} <= set(images[0])
    by_exam: dict[str, list[dict[str, str]]] = {}
    for row in images:
        by_exam.setdefault(row["exam_id"], []).append(row)
    for exam in manifest:
        assert set(exam) == {"exam_id", "report", "pathology", "images"}
        rows = by_exam[exam["exam_id"]]
        assert [r["image"] for r in rows] == exam["images"]
        n_polyp = sum(int(r["polyp"]) for r in rows)
        label = truth[exam["exam_id"]]
        assert label["polyp_count"] == n_polyp
        assert label["polyp"] == ("present" if n_polyp else "absent")
        if n_polyp:
            assert 1 <= n_polyp <= 3 and n_polyp < len(rows)  # also polyp-free frames
        for r in rows:
            assert (tmp_path / "a" / r["image"]).is_file()
            if r["polyp"] == "1":
                m = np.asarray(Image.open(tmp_path / "a" / r["mask"]))
                assert m.shape == np.asarray(Image.open(tmp_path / "a" / r["image"])).shape[:2]
                assert set(np.unique(m)) == {0, 255}
            else:
                assert r["mask"] == ""
    sources = {r["source"].split(":")[0] for r in images}
    assert sources == {"polyp", "crop", "negative"}
    from endoked.synth.truth import load_truth

    truth_obj = load_truth(tmp_path / "a")
    assert sum(truth_obj.image_polyp.values()) == counts["polyp_images"]
    pa.build_archive(tmp_path / "b", spec, data_root)
    for name in ("manifest.jsonl", "truth/images.csv", "truth/exams.jsonl", manifest[0]["images"][0]):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_missing_data_root_names_the_variable(pa: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ENDOKED_SHARED_DATA"):
        pa.build_archive(tmp_path / "x", pa.ArchiveSpec(exams=2), tmp_path / "nothing")


def test_aspect_box_and_leak_auroc(pa: ModuleType) -> None:
    assert pa.aspect_box((300, 200), (200, 200)) == (50, 0, 250, 200)  # too wide: sides trimmed
    assert pa.aspect_box((300, 200), (400, 100)) == (0, 62, 300, 137)  # too tall: 75 rows kept, centred
    assert pa.aspect_box((300, 200), (600, 400)) == (0, 0, 300, 200)
    # area separates perfectly (either direction counts), aspect not at all (ties), brightness ranks one of the
    # four polyp/polyp-free pairs right (1.0 > 0.5): AUROC 0.25, i.e. 0.75 the other way round
    # sharpness: polyp frames 5 and 7 against 6 and 8: only 7 > 6 of the four pairs -> 0.25, i.e. 0.75
    # dark border: the polyp frames' 0.3 and 0.2 against 0.0 and 0.1: every pair ranked -> 1.0
    frames = [
        (1, 100.0, 1.0, 1.0, 5.0, 0.3),
        (1, 200.0, 1.0, 0.0, 7.0, 0.2),
        (0, 10.0, 1.0, 0.5, 6.0, 0.0),
        (0, 20.0, 1.0, 2.0, 8.0, 0.1),
    ]
    want = {"area": 1.0, "aspect": 0.5, "brightness": 0.75, "sharpness": 0.75, "dark_border": 1.0}
    assert pa.leak_auroc(frames) == want
    assert pa.leak_auroc([(1, 1.0, 1.0, 1.0, 0.0, 0.0), (0, 2.0, 1.0, 1.0, 0.0, 0.0)])["area"] == 1.0
    # the dark border: a 100 x 50 frame, black but for a bright centre; the ring is 3 px wide (6 % of 50)
    img = np.full((50, 100), 200, np.uint8)
    img[:3], img[:, :3] = 0, 0  # the top rows and the left columns of the ring are dark
    ring = 2 * 3 * 100 + 2 * 3 * 44
    # dark: the top 3 rows, the left 3 columns between them and the bottom rows, and the left columns' 3 x 3
    # corner in the bottom rows
    assert pa.dark_border(Image.fromarray(img)) == pytest.approx((3 * 100 + 3 * 44 + 3 * 3) / ring)


@pytest.mark.parametrize("composition", ["full", "heldout"])
def test_whole_frame_compositions(pa: ModuleType, data_root: Path, tmp_path: Path, composition: str) -> None:
    spec = pa.ArchiveSpec(exams=10, seed=1, min_crop_side=20, composition=composition)
    counts = pa.build_archive(tmp_path / "a", spec, data_root)
    assert counts["polyp_images"] > 0 and counts["crop_images"] > 0 and counts["negative_source_images"] > 0
    assert set(counts["leak_auroc"]) == {"area", "aspect", "brightness", "sharpness", "dark_border"}
    with open(tmp_path / "a/truth/images.csv", newline="") as fh:
        images = list(csv.DictReader(fh))
    polyp_size = (320, 240) if composition == "full" else (200, 160)
    origins = {r["origin"] for r in images}
    if composition == "full":
        assert "kvasir" in origins and origins <= {"kvasir", "polypgen_A", "polypgen_B"}
    else:  # held-out sources only: BKAI polyps and crops, PolypGen centre B
        assert origins == {"bkai", "polypgen_B"}
    for r in images:
        with Image.open(tmp_path / "a" / r["image"]) as im:
            assert im.size == polyp_size  # whole polyp frames; crops and PolypGen frames scaled to the same size
        if r["polyp"] == "1":
            source = r["source"].split(":", 1)[1]
            folder = "polyp/TrainDataset" if composition == "full" else "biopsy"
            m = np.asarray(Image.open(tmp_path / "a" / r["mask"])) > 0
            want = np.asarray(Image.open(data_root / folder / "masks" / f"{Path(source).stem}.png")) > 0
            # the whole frame's mask (class masks read as polyp where > 0), cut by the common endoscope mask
            assert (m == (want & pa.scope_mask(polyp_size))).all()
            assert m.sum() >= spec.min_polyp_fraction * want.sum()  # most of the polyp stays in sight
        with Image.open(tmp_path / "a" / r["image"]) as im:  # black outside the mask (JPEG's ringing aside)
            outside = np.asarray(im.convert("L"))[~pa.scope_mask(polyp_size)]
        assert np.percentile(outside, 95) < 20
    assert counts["leak_auroc"]["dark_border"] == 0.5  # every frame's border is the same black ring
    with pytest.raises(ValueError, match="unknown composition"):
        pa.plan_archive(pa.Sources.load(data_root), pa.ArchiveSpec(composition="tiles"))


def test_whole_frames_carry_a_crops_loss_of_detail(pa: ModuleType, data_root: Path) -> None:
    spec = pa.ArchiveSpec(exams=10, seed=1, min_crop_side=20, composition="full")
    frames = [f for p in pa.plan_archive(pa.Sources.load(data_root), spec) for f in p.frames]
    lo, hi = spec.crop_scale
    for f in frames:
        assert f.detail is not None
        if f.kind == "crop":  # a crop's detail is its width's share of the frame it is scaled back up to
            assert f.detail == pytest.approx((f.box[2] - f.box[0]) / f.resize_to[0])
        else:
            assert lo <= f.detail <= hi
    assert all(
        f.detail is None
        for p in pa.plan_archive(pa.Sources.load(data_root), pa.ArchiveSpec(exams=10))
        for f in p.frames
    )
    polyp = next(f for f in frames if f.kind == "polyp")
    sharp = {d: pa.sharpness(pa.render_frame(pa.replace(polyp, detail=d), 512)) for d in (1.0, 0.7, 0.4)}
    assert sharp[1.0] > sharp[0.7] > sharp[0.4]  # noise frames: less detail, smaller Laplacian variance
    assert pa.render_frame(pa.replace(polyp, detail=0.4), 512).size == (320, 240)  # scaled back to the frame
    assert pa.render_frame(pa.replace(polyp, detail=0.4), 200).size == (200, 150)  # and fitted into max_side
    start = pa.render_frame(pa.replace(polyp, detail=1.0), 512)
    matched, got = pa.match_sharpness(pa.replace(polyp, detail=1.0), start, sharp[1.0], sharp[0.4], spec)
    assert pa.sharpness(matched) == got <= sharp[0.4] < pa.sharpness(start)
    # unreachable: stops at the floor
    floor, got = pa.match_sharpness(pa.replace(polyp, detail=1.0), start, sharp[1.0], 0.0, spec)
    assert pa.sharpness(floor) == got > 0.0


def test_scope_mask_is_an_inset_octagon(pa: ModuleType) -> None:
    m = pa.scope_mask((200, 100), ring=0.1, corner=0.2)  # ring 10 px, corners cut 20 px (shorter side 100)
    assert m.shape == (100, 200) and m.dtype == bool
    assert not m[:10].any() and not m[-10:].any() and not m[:, :10].any() and not m[:, -10:].any()
    assert m[50, 100] and m[50, 11] and m[11, 100]  # inside, next to the ring
    assert not m[11, 11] and not m[88, 188] and m[30, 30]  # corners cut along x + y = 10 + 10 + 20
    # area: the 180 x 80 inset rectangle less four right triangles with 20 px legs
    assert m.sum() == pytest.approx(180 * 80 - 4 * 20 * 20 / 2, rel=0.01)
    assert (m == m[::-1]).all() and (m == m[:, ::-1]).all()


def test_no_scope_mask_keeps_the_sources_borders(pa: ModuleType, data_root: Path) -> None:
    spec = pa.ArchiveSpec(exams=6, seed=1, min_crop_side=20, composition="full", scope_mask=False)
    frames = [f for p in pa.plan_archive(pa.Sources.load(data_root), spec) for f in p.frames]
    assert frames and not any(f.scope for f in frames)
    with_scope = pa.replace(frames[0], scope=True)
    plain = np.asarray(pa.render_frame(frames[0], 512))
    masked = np.asarray(pa.render_frame(with_scope, 512))
    inside = pa.scope_mask((plain.shape[1], plain.shape[0]))
    assert (masked[inside] == plain[inside]).all() and not masked[~inside].any() and plain[~inside].any()
