"""Synthetic archive: determinism across workers, truth consistent with the manifest, reuse/overwrite."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked.errors import ConfigError, DataFormatError
from endoked.synth.archive import generate_archive
from endoked.synth.config import SynthConfig
from endoked.synth.truth import load_truth

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO.parent / "shared" / "tools" / "check_report_labels.py"


def _cfg(**kw: object) -> SynthConfig:
    base: dict[str, object] = {"exams": 14, "seed": 5, "size": 64, "images_per_exam": (2, 4)}
    base.update(kw)
    return SynthConfig.model_validate(base)


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("arch") / "a"
    generate_archive(out, _cfg(), progress=False)
    return out


def test_same_seed_identical_bytes_any_workers(archive: Path, tmp_path: Path) -> None:
    again = tmp_path / "b"
    summary = generate_archive(again, _cfg(workers=2), progress=False)
    assert summary.exams == 14 and not summary.reused
    da, db = _digest(archive), _digest(again)
    assert da.keys() == db.keys()
    assert da == db
    assert (archive / "manifest.jsonl").read_bytes() == (again / "manifest.jsonl").read_bytes()


def test_different_seed_differs(archive: Path, tmp_path: Path) -> None:
    other = tmp_path / "c"
    generate_archive(other, _cfg(seed=6), progress=False)
    assert (archive / "manifest.jsonl").read_bytes() != (other / "manifest.jsonl").read_bytes()
    a, b = _digest(archive), _digest(other)
    common = [k for k in a if k.endswith(".jpg") and k in b]
    assert common and all(a[k] != b[k] for k in common)


def test_manifest_layout(archive: Path) -> None:
    rows = [json.loads(line) for line in (archive / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 14
    for r in rows:
        assert set(r) <= {"exam_id", "report", "pathology", "images"} and {"exam_id", "report", "images"} <= set(r)
        assert r.get("pathology", "x") is not None
        assert r["report"].strip()
        assert 2 <= len(r["images"]) <= 4
        for i, img in enumerate(r["images"], 1):
            assert img == f"{r['exam_id']}/{i:03d}.jpg"
            with Image.open(archive / img) as im:
                assert im.format == "JPEG" and im.size == (64, 64) and im.mode == "RGB"
    assert not list(archive.glob(".*"))  # no temporary folders left


def test_truth_consistent_with_manifest(archive: Path) -> None:
    manifest = [json.loads(line) for line in (archive / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    images = [img for r in manifest for img in r["images"]]
    with open(archive / "truth" / "images.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["image"] for r in rows] == images
    n_polyp = 0
    for r in rows:
        assert r["polyp"] in ("0", "1")
        if r["polyp"] == "1":
            n_polyp += 1
            assert r["mask"] == f"truth/masks/{r['image'][:-4]}.png"
            mask = np.asarray(Image.open(archive / r["mask"]))
            assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255} and (mask > 0).sum() > 0
        else:
            assert r["mask"] == ""
    masks = sorted(p.relative_to(archive).as_posix() for p in (archive / "truth" / "masks").rglob("*.png"))
    assert masks == sorted(r["mask"] for r in rows if r["mask"])
    assert n_polyp > 0
    truth = [json.loads(line) for line in (archive / "truth" / "exams.jsonl").read_text().splitlines()]
    assert [t["id"] for t in truth] == [m["exam_id"] for m in manifest]
    assert all(set(t) == {"id", "polyp", "polyp_count", "polyps", "malignancy_suspected", "pathology"} for t in truth)
    # exams whose report states no current polyp have no polyp frames
    by_exam = {t["id"]: t for t in truth}
    for r in rows:
        if r["polyp"] == "1":
            assert by_exam[r["exam_id"]]["polyp"] in ("present", "uncertain")


@pytest.mark.skipif(not CHECKER.exists(), reason="report-label checker not available")
def test_truth_passes_contract_checker(archive: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(CHECKER), str(archive / "truth" / "exams.jsonl"), str(archive / "manifest.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout


def test_load_truth(archive: Path) -> None:
    truth = load_truth(archive)
    assert len(truth.exams) == 14
    assert set(truth.categories.values()) <= {"present", "absent", "history", "uncertain", "malignancy"}
    for image, flag in truth.image_polyp.items():
        mask = truth.image_mask[image]
        assert (mask is not None) == flag
        if mask is not None:
            assert mask.is_absolute() and mask.exists()
        assert truth.image_exam[image] == image.split("/")[0]
    assert truth.polyp_images() == [k for k, v in truth.image_polyp.items() if v]
    with pytest.raises(DataFormatError, match="missing"):
        load_truth(archive / "nowhere")


def test_reuse_and_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "r"
    cfg = _cfg(exams=3)
    first = generate_archive(out, cfg, progress=False)
    again = generate_archive(out, cfg.model_copy(update={"workers": 2}), progress=False)
    assert again.reused and again.images == first.images
    with pytest.raises(ConfigError, match="different settings"):
        generate_archive(out, _cfg(exams=3, seed=9), progress=False)
    replaced = generate_archive(out, _cfg(exams=2, seed=9), progress=False, overwrite=True)
    assert not replaced.reused and replaced.exams == 2
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 2


def test_foreign_manifest_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_text('{"exam_id": "X"}\n')
    with pytest.raises(ConfigError, match="did not write"):
        generate_archive(tmp_path, _cfg(exams=1), progress=False)
    assert (tmp_path / "manifest.jsonl").read_text() == '{"exam_id": "X"}\n'


def test_category_fractions_honoured(tmp_path: Path) -> None:
    cfg = _cfg(
        exams=20,
        size=32,
        images_per_exam=(1, 2),
        fractions={"present": 0.5, "absent": 0.5, "history": 0, "uncertain": 0, "malignancy": 0},
    )
    summary = generate_archive(tmp_path / "f", cfg, progress=False)
    assert summary.categories == {"present": 10, "absent": 10, "history": 0, "uncertain": 0, "malignancy": 0}
    truth = load_truth(tmp_path / "f")
    assert sum(t["polyp"] == "present" for t in truth.exams.values()) == 10
    assert sum(truth.image_polyp.values()) >= 10  # every present exam shows its polyp on >= 1 frame


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="images_per_exam"):
        SynthConfig(images_per_exam=(5, 2))
    with pytest.raises(ValueError, match="polyp_area"):
        SynthConfig(polyp_area=(0.3, 0.9))
    with pytest.raises(ValueError):
        SynthConfig(unknown=1)  # type: ignore[call-arg]
