"""Exports read back with each format's own reader give the pseudo masks and report fields back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked.cli import main
from endoked.errors import ConfigError, StageError
from endoked.export.formats import write_export
from endoked.export.source import load_items
from endoked.runfolder import RunFolder
from tests.fakes import fake_run as _fake_run


def test_pranet_export_round_trip(tmp_path: Path) -> None:
    run, masks = _fake_run(tmp_path)
    _, items = load_items(run)
    write_export("pranet", items, tmp_path / "pranet")
    got = sorted(p.name for p in (tmp_path / "pranet" / "masks").iterdir())
    assert got == ["E0__E0_frame_0.png", "E0__E0_frame_1.png", "E1__E1_frame_0.png", "E1__E1_frame_1.png"]
    for it in items:
        m = np.asarray(Image.open(tmp_path / "pranet" / "masks" / f"{it.case_id}.png"))
        assert set(np.unique(m)) <= {0, 255}
        np.testing.assert_array_equal(m > 127, masks[f"{it.exam_id}/{it.image}"])
        assert (tmp_path / "pranet" / "images" / f"{it.case_id}.jpg").read_bytes() == it.image_path.read_bytes()


def test_coco_export_reads_back_with_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    run, masks = _fake_run(tmp_path)
    _, items = load_items(run)
    summary = write_export("coco", items, tmp_path / "coco")
    assert summary["annotations"] == 6  # 2 exams x (1 + 2 instances)
    coco = COCO(str(tmp_path / "coco" / "annotations.json"))
    assert len(coco.getImgIds()) == 4
    for img in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        union = np.zeros((img["height"], img["width"]), bool)
        for ann in anns:
            union |= coco.annToMask(ann).astype(bool)
        np.testing.assert_array_equal(union, masks[f"{img['exam_id']}/{img['source_image']}"])
        assert img["report"]["polyps"][0]["location"] == "sigmoid"
    first = coco.loadImgs(1)[0]
    assert first["report"]["pathology"] == "adenoma" and first["report"]["polyp_count"] == 2
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    assert ann["bbox"] == [4.0, 5.0, 11.0, 7.0] and ann["area"] == 77.0


def test_nnunet_export_layout(tmp_path: Path) -> None:
    run, masks = _fake_run(tmp_path)
    _, items = load_items(run)
    write_export("nnunet", items, tmp_path / "nn")
    root = tmp_path / "nn" / "Dataset501_EndokedPolyp"
    ds = json.loads((root / "dataset.json").read_text())
    assert ds["numTraining"] == 4 and ds["labels"] == {"background": 0, "polyp": 1} and ds["file_ending"] == ".png"
    cases = sorted(p.name[: -len(".png")] for p in (root / "labelsTr").iterdir())
    assert sorted(p.name for p in (root / "imagesTr").iterdir()) == [f"{c}_0000.png" for c in cases]
    for it in items:
        lab = np.asarray(Image.open(root / "labelsTr" / f"{it.case_id}.png"))
        np.testing.assert_array_equal(lab.astype(bool), masks[f"{it.exam_id}/{it.image}"])
        assert set(np.unique(lab)) <= {0, 1}
        rgb = np.asarray(Image.open(root / "imagesTr" / f"{it.case_id}_0000.png"))
        np.testing.assert_array_equal(rgb, np.asarray(Image.open(it.image_path).convert("RGB")))
    try:
        from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO
    except ImportError:
        return
    img, _props = NaturalImage2DIO().read_images([str(root / "imagesTr" / f"{items[0].case_id}_0000.png")])
    assert img.shape[0] == 3


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = _fake_run(tmp_path)
    _, items = load_items(run)
    with pytest.raises(ConfigError, match="unknown export format"):
        write_export("voc", items, tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        write_export("pranet", items, tmp_path / "full")
    with pytest.raises(StageError, match="no finished pseudo labels"):
        load_items(RunFolder(tmp_path / "empty"))
    assert main(["export", str(tmp_path / "empty"), "--format", "coco", "--out", str(tmp_path / "o")]) == 1
    assert "prompt_seg" in capsys.readouterr().err
    assert main(["export", str(run.root), "--format", "pranet", "--out", str(tmp_path / "ok")]) == 0
