"""nnU-Net v2 export: dataset id and name, $nnUNet_raw, polyp-free frames, imagesTs, nnU-Net's own check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked import tables
from endoked.cli import main
from endoked.runfolder import RunFolder
from tests.fakes import fake_run


def _with_negative(tmp_path: Path) -> RunFolder:
    """The fake run plus one polyp-free frame that mil selected as a negative (label 0)."""
    run, _ = fake_run(tmp_path)
    path = tmp_path / "archive" / "E5" / "clean.jpg"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(path)
    images = tables.rows(run, "ingest/images")
    images.append({"exam_id": "E5", "image": "E5/clean.jpg", "path": str(path), "width": 40, "height": 30})
    tables.write(run.output("ingest", "images"), "ingest/images", images)
    selection = [
        {"exam_id": "E5", "image": "E5/clean.jpg", "label": 0, "score": 0.01, "by": "mil"},
        {"exam_id": "E0", "image": "E0/frame 0.jpg", "label": 1, "score": 0.9, "by": "mil"},
    ]
    sel = tables.write(run.stage_dir("mil") / "selection.parquet", "mil/selection", selection)
    outputs = {k: v["path"] if isinstance(v, dict) else v for k, v in run.entry("mil")["outputs"].items()}  # type: ignore[index]
    outputs["selection"] = run.rel(sel)
    run.mark_running("mil", "fp", {})
    run.mark_done("mil", outputs, {"n": 2}, 0.1)
    return run


def test_nnunet_export_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _with_negative(tmp_path)
    raw = tmp_path / "raw"
    (raw / "Dataset501_Other").mkdir(parents=True)  # another dataset already there
    tests_dir = tmp_path / "test_images"
    tests_dir.mkdir()
    for name in ("a b.png", "c.jpg"):
        Image.fromarray(np.full((20, 24, 3), 50, np.uint8)).save(tests_dir / name)
    monkeypatch.setenv("nnUNet_raw", str(raw))
    args = ["export", str(run.root), "--format", "nnunet", "--dataset-id", "7", "--name", "Polyps"]
    assert main([*args, "--images-ts", str(tests_dir)]) == 0
    root = raw / "Dataset007_Polyps"
    ds = json.loads((root / "dataset.json").read_text())
    assert ds["numTraining"] == 5 and ds["name"] == "Polyps"
    assert sorted(p.name for p in (root / "imagesTs").iterdir()) == ["a_b_0000.png", "c_0000.png"]
    cases = json.loads((root / "cases.json").read_text())
    clean = next(c["case_id"] for c in cases if c["exam_id"] == "E5")
    assert not np.asarray(Image.open(root / "labelsTr" / f"{clean}.png")).any()
    assert json.loads((root / "export.json").read_text())["polyp_free"] == 1
    # the id is taken now, and without --out nor $nnUNet_raw there is nowhere to write
    assert main(["export", str(run.root), "--format", "nnunet", "--dataset-id", "7", "--name", "Again"]) == 2
    monkeypatch.delenv("nnUNet_raw")
    assert main(["export", str(run.root), "--format", "nnunet"]) == 2
    assert main([*args, "--no-negatives", "--out", str(tmp_path / "nn")]) == 0
    assert json.loads((tmp_path / "nn" / "Dataset007_Polyps" / "dataset.json").read_text())["numTraining"] == 4
    assert main([*args[:-1], "bad name", "--out", str(tmp_path / "x")]) == 2


def test_nnunet_export_passes_nnunets_integrity_check(tmp_path: Path) -> None:
    verify = pytest.importorskip(
        "nnunetv2.experiment_planning.verify_dataset_integrity",
        reason="nnunetv2 is not installed (pip install nnunetv2) so its dataset check cannot run",
    )
    run = _with_negative(tmp_path)
    assert main(["export", str(run.root), "--format", "nnunet", "--out", str(tmp_path / "raw")]) == 0
    verify.verify_dataset_integrity(str(tmp_path / "raw" / "Dataset501_EndokedPolyp"), 1)
