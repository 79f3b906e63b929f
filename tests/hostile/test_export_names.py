"""``endoked export`` with exam ids and image paths that clean up to the same file name: every image is
written to files of its own, and each format points at distinct files holding that image's data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked import tables
from endoked.cli import main
from endoked.export.source import ExportItem, load_items, with_case_ids
from endoked.runfolder import RunFolder

# (exam_id, image): pairs whose plain cleaned names collide, (ignoring case) or after dropping characters
HOSTILE = [
    ("检查1", "frame.png"),
    ("病例1", "frame.png"),
    ("E 6", "a.png"),
    ("E_6", "a.png"),
    ("E7", "x y.png"),
    ("E7", "x_y.png"),
    ("E8", "img.png"),
    ("E8", "img.jpg"),
    ("e9", "f.png"),
    ("E9", "f.png"),
]


def _run(tmp_path: Path, pairs: list[tuple[str, str]]) -> tuple[RunFolder, dict[tuple[str, str], np.ndarray]]:
    """A run folder with ingest images and prompt_seg pseudo labels; each image has its own pixels and mask."""
    run = RunFolder(tmp_path / "run")
    arch = tmp_path / "archive"
    images, pseudo, pixels = [], [], {}
    for k, (exam, rel) in enumerate(pairs):
        path = arch / f"{k}" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = np.full((12, 16, 3), 10 * k + 5, np.uint8)
        Image.fromarray(rgb).save(path, format="PNG" if rel.endswith(".png") else "JPEG", quality=100)
        images.append({"exam_id": exam, "image": rel, "path": str(path), "width": 16, "height": 12})
        m = np.zeros((12, 16), bool)
        m[1 : 2 + k, 1:3] = True  # a different mask per image
        mrel = f"prompt_seg/masks/{k}.png"
        (run.root / mrel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((m * 255).astype(np.uint8)).save(run.root / mrel)
        pseudo.append({"exam_id": exam, "image": rel, "mask": mrel, "score": 0.9, "source": "litemedsam"})
        pixels[(exam, rel)] = m
    for stage, name, rows in (("ingest", "images", images), ("prompt_seg", "pseudo_labels", pseudo)):
        path = run.stage_dir(stage) / f"{name}.parquet"
        tables.write(path, f"{stage}/{name}", rows)
        run.mark_running(stage, "fp", {})
        run.mark_done(stage, {name: run.rel(path)}, {"n": len(rows)}, 0.1)
    return run, pixels


def _distinct(names: list[str]) -> bool:
    return len({n.casefold() for n in names}) == len(names)


@pytest.mark.parametrize("fmt", ["pranet", "coco", "nnunet"])
def test_colliding_names_export_every_image(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, masks = _run(tmp_path, HOSTILE)
    out = tmp_path / "out"
    assert main(["export", str(run.root), "--format", fmt, "--out", str(out)]) == 0
    assert f"exported {len(HOSTILE)} images" in capsys.readouterr().out
    # nnunet writes into its dataset folder (out may be $nnUNet_raw, shared with other datasets)
    dest = next(out.glob("Dataset*")) if fmt == "nnunet" else out
    cases = json.loads((dest / "cases.json").read_text(encoding="utf-8"))
    assert sorted((c["exam_id"], c["image"]) for c in cases) == sorted(HOSTILE)
    assert _distinct([c["case_id"] for c in cases])
    if fmt == "pranet":
        got = {p.stem: p for p in (out / "masks").iterdir()}
        assert len(list((out / "images").iterdir())) == len(HOSTILE)
        for c in cases:
            m = np.asarray(Image.open(got[c["case_id"]])) > 127
            np.testing.assert_array_equal(m, masks[(c["exam_id"], c["image"])])
    elif fmt == "coco":
        coco = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
        files = [im["file_name"] for im in coco["images"]]
        assert len(files) == len(HOSTILE) and _distinct(files)
        assert sorted(p.name for p in (out / "images").iterdir()) == sorted(files)
        src = {(im["exam_id"], im["source_image"]): im["file_name"] for im in coco["images"]}
        assert set(src) == set(HOSTILE)
        for (exam, rel), fname in src.items():  # each file holds its own image
            k = HOSTILE.index((exam, rel))
            arr = np.asarray(Image.open(out / "images" / fname).convert("RGB")).astype(int)
            assert abs(arr.mean() - (10 * k + 5)) < 3
    else:
        root = next(out.glob("Dataset*"))
        labels = sorted(p.stem for p in (root / "labelsTr").iterdir())
        assert len(labels) == len(HOSTILE) and len(list((root / "imagesTr").iterdir())) == len(HOSTILE)
        for c in cases:
            lab = np.asarray(Image.open(root / "labelsTr" / f"{c['case_id']}.png"))
            np.testing.assert_array_equal(lab == 1, masks[(c["exam_id"], c["image"])])


def test_case_ids_are_stable_and_keep_plain_names(tmp_path: Path) -> None:
    run, _ = _run(tmp_path, [*HOSTILE, ("E10", "sub/frame 1.png")])
    _, items = load_items(run)
    ids = {(it.exam_id, it.image): it.case_id for it in items}
    assert ids[("E10", "sub/frame 1.png")] == "E10__sub_frame_1"  # unique, only separators replaced: kept
    assert ids[("检查1", "frame.png")].startswith("_1__frame-") and len(ids[("检查1", "frame.png")]) == 18
    assert ids[("E 6", "a.png")] != ids[("E_6", "a.png")]
    again = {(it.exam_id, it.image): it.case_id for it in with_case_ids(list(reversed(items)))}
    assert again == ids  # the same names in any order


def test_long_ids_are_cut_and_duplicates_refused() -> None:
    it = ExportItem("E" * 400, "a.png", Path("/x/a.png"), Path("/x/m.png"), 4, 4, {})
    (named,) = with_case_ids([it])
    assert len(named.case_id) == 120 + 9
    from endoked.errors import StageError

    with pytest.raises(StageError, match="listed twice"):
        with_case_ids([it, it])
