"""Folder evaluation, stem matching, failure modes, the streaming object and the ``endoked eval`` command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from PIL import Image

from endoked.cli import main
from endoked.errors import DataFormatError
from endoked.eval import EvalConfig, PolypMetrics, evaluate_folder, evaluate_sets


def disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def make_set(
    root: Path, n: int = 5, seed: int = 0, shift: int = 2
) -> tuple[Path, Path, list[np.ndarray], list[np.ndarray]]:
    """Masks (0/255 PNG) and blurred, shifted probability maps (PNG) of n small disks."""
    rng = np.random.default_rng(seed)
    gt_dir, pred_dir = root / "masks", root / "pred"
    gt_dir.mkdir(parents=True)
    pred_dir.mkdir(parents=True)
    gts, preds = [], []
    for i in range(n):
        gt = disk(24, 32, rng.uniform(8, 16), rng.uniform(8, 24), rng.uniform(3, 7))
        prob = np.clip(np.roll(gt, shift, axis=1) * 0.8 + rng.uniform(0, 0.3, gt.shape), 0, 1)
        pred = np.rint(prob * 255).astype(np.uint8)
        Image.fromarray(gt.astype(np.uint8) * 255).save(gt_dir / f"img{i}.png")
        Image.fromarray(pred).save(pred_dir / f"img{i}.png")
        gts.append(gt)
        preds.append(prob)
    return pred_dir, gt_dir, preds, gts


def test_folder_equals_streaming_on_float_probabilities(tmp_path: Path) -> None:
    pred_dir, gt_dir, probs, gts = make_set(tmp_path)
    res = evaluate_folder(pred_dir, gt_dir, EvalConfig(workers=1))
    metric = PolypMetrics()
    for prob, gt in zip(probs, gts, strict=True):
        metric.update(prob.astype(np.float32), gt)  # in-loop validation on float maps, rounded to 8 bit
    stream = metric.compute()
    for key, value in res.metrics.items():
        assert_allclose(stream[key], value, rtol=1e-9, err_msg=key)
    assert res.metrics["n"] == 5 and res.set == tmp_path.name  # "masks" folder -> its parent's name
    assert [r["name"] for r in res.images] == [f"img{i}" for i in range(5)]
    # Set figures are image means of the per-image figures.
    assert_allclose(np.mean([r["dice"] for r in res.images]), res.metrics["mean_dice"], rtol=1e-12)
    assert_allclose(np.mean([r["mae"] for r in res.images]), res.metrics["mae"], rtol=1e-12)


def test_parallel_workers_give_the_same_numbers(tmp_path: Path) -> None:
    pred_dir, gt_dir, _, _ = make_set(tmp_path, n=16)
    one = evaluate_folder(pred_dir, gt_dir, EvalConfig(workers=1))
    two = evaluate_folder(pred_dir, gt_dir, EvalConfig(workers=2))
    assert one.metrics.keys() == two.metrics.keys()
    for key, value in one.metrics.items():
        assert_allclose(two.metrics[key], value, rtol=1e-9, err_msg=key)


def test_streaming_memory_does_not_keep_curves_per_image() -> None:
    metric = PolypMetrics(keep_per_image=False)
    gt = disk(16, 16, 8, 8, 4)
    for _ in range(50):
        metric.update(gt.astype(np.uint8) * 255, gt)
    assert metric.records == [] and metric.n == 50
    assert all(v.shape == (256,) for v in metric.curves().values())
    metric.reset()
    assert metric.n == 0 and np.isnan(metric.compute()["mean_dice"])


def test_missing_and_extra_predictions_are_listed(tmp_path: Path) -> None:
    pred_dir, gt_dir, _, _ = make_set(tmp_path)
    (pred_dir / "img1.png").unlink()
    (pred_dir / "img3.png").unlink()
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(pred_dir / "stray.png")
    with pytest.raises(DataFormatError) as err:
        evaluate_folder(pred_dir, gt_dir, EvalConfig(workers=1))
    msg = str(err.value)
    assert "img1, img3" in msg and "stray" in msg and "--allow-missing" in msg
    res = evaluate_folder(pred_dir, gt_dir, EvalConfig(workers=1, allow_missing=True))
    assert res.missing == ["img1", "img3"] and res.extra == ["stray"]
    assert res.metrics["n"] == 5 and res.metrics["n_missing"] == 2
    missing_rows = [r for r in res.images if r["missing"]]
    # An all-zero map: no true positive except at t = 0, where map >= 0 switches every pixel on.
    assert [r["name"] for r in missing_rows] == ["img1", "img3"]
    for r in missing_rows:
        assert r["dice_05"] == 0.0 and r["max_dice"] == r["dice"] * 256
        assert_allclose(r["dice"], 2 * r["n_fg"] / (r["n_fg"] + 24 * 32) / 256, rtol=1e-12)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    pred_dir, gt_dir, _, _ = make_set(tmp_path, n=2)
    (pred_dir / "img1.png").write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match=r"img1\.png"):
        evaluate_folder(pred_dir, gt_dir, EvalConfig(workers=1))


def test_duplicate_stems_are_an_error(tmp_path: Path) -> None:
    pred_dir, gt_dir, _, _ = make_set(tmp_path, n=2)
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(pred_dir / "img0.jpg")
    with pytest.raises(DataFormatError, match="same stem"):
        evaluate_folder(pred_dir, gt_dir, EvalConfig(workers=1))


def test_jpeg_masks_and_rgb_maps_are_read(tmp_path: Path) -> None:
    gt = disk(24, 32, 12, 16, 6)
    (tmp_path / "m").mkdir()
    (tmp_path / "p").mkdir()
    Image.fromarray(np.stack([gt.astype(np.uint8) * 255] * 3, -1)).save(tmp_path / "m" / "a.png")
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = gt * 255  # the toolbox reads the first channel of a colour map
    rgb[..., 1] = 255
    Image.fromarray(rgb).save(tmp_path / "p" / "a.png")
    res = evaluate_folder(tmp_path / "p", tmp_path / "m", EvalConfig(workers=1))
    assert res.metrics["dice_05"] == 1.0


def pranet_layout(root: Path) -> tuple[Path, Path]:
    data, preds = root / "TestDataset", root / "preds"
    for k, name in enumerate(["SetA", "SetB"]):
        pred_dir, gt_dir, _, _ = make_set(root / "tmp" / name, n=3 + k, seed=k)
        (data / name).mkdir(parents=True)
        gt_dir.rename(data / name / "masks")
        (data / name / "images").mkdir()
        (preds / "good").mkdir(parents=True, exist_ok=True)
        pred_dir.rename(preds / "good" / name)
    return data, preds / "good"


def test_evaluate_sets_pranet_layout(tmp_path: Path) -> None:
    data, good = pranet_layout(tmp_path)
    results = evaluate_sets({"m1": good, "m2": good}, data, EvalConfig(workers=1))
    assert [(r.set, r.method, r.metrics["n"]) for r in results] == [
        ("SetA", "m1", 3),
        ("SetA", "m2", 3),
        ("SetB", "m1", 4),
        ("SetB", "m2", 4),
    ]
    assert_allclose(list(results[0].metrics.values()), list(results[1].metrics.values()), rtol=1e-9)
    only_a = evaluate_sets({"m": good}, data, EvalConfig(workers=1), sets=["SetA"])
    assert [r.set for r in only_a] == ["SetA"]
    (good / "SetB").rename(tmp_path / "gone")
    with pytest.raises(DataFormatError, match="no predictions for set 'SetB'"):
        evaluate_sets({"m": good}, data, EvalConfig(workers=1))
    allowed = evaluate_sets({"m": good}, data, EvalConfig(workers=1, allow_missing=True))
    assert allowed[1].metrics["n_missing"] == 4 and allowed[1].metrics["dice_05"] == 0.0


def test_cli_single_set_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred_dir, gt_dir, _, _ = make_set(tmp_path)
    out = tmp_path / "out"
    rc = main(
        [
            "eval",
            "--pred",
            str(pred_dir),
            "--gt",
            str(gt_dir),
            "--json",
            str(out / "m.json"),
            "--csv",
            str(out / "m.csv"),
            "--plots",
            str(out / "plots"),
            "--workers",
            "1",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "m.json").read_text())
    metrics = doc["results"][0]["metrics"]
    assert f"{metrics['mean_dice']:.3f}" in printed and "mDice" in printed and "maxEm" in printed
    assert len(doc["results"][0]["curves"]["dice"]) == 256 and doc["config"]["normalize"] is True
    rows = list(csv.DictReader((out / "m.csv").read_text().splitlines()))
    assert len(rows) == 5 and rows[0]["name"] == "img0"
    assert_allclose(np.mean([float(r["dice"]) for r in rows]), metrics["mean_dice"], rtol=1e-9)
    pngs = sorted(p.name for p in (out / "plots").iterdir())
    assert pngs == [f"{tmp_path.name}_dice_curve.png", f"{tmp_path.name}_dice_hist.png"]
    assert all((out / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_cli_methods_side_by_side_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, good = pranet_layout(tmp_path)
    rc = main(
        ["eval", "--pred", f"A={good}", "--pred", f"B={good}", "--data", str(data), "--markdown", "--workers", "1"]
    )
    assert rc == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| set | method | n | mDice | mIoU |")
    assert [ln.split("|")[1:3] for ln in lines[2:]] == [
        [" SetA ", " A "],
        [" SetA ", " B "],
        [" SetB ", " A "],
        [" SetB ", " B "],
    ]


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred_dir, gt_dir, _, _ = make_set(tmp_path, n=2)
    assert main(["eval", "--pred", str(pred_dir)]) == 2  # neither --gt nor --data
    (pred_dir / "img0.png").unlink()
    assert main(["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--workers", "1"]) == 2
    assert "img0" in capsys.readouterr().err
    assert main(["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--workers", "1", "--allow-missing"]) == 0
    assert "1 missing" in capsys.readouterr().err
