"""A tiny pre-train / fine-tune / eval run on colour-coded images with a tiny random network."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked import tables
from endoked.biopsy.api import evaluate_model, predict_images, train_classifier
from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.model import load_model
from endoked.cli import main

TINY = {
    "backbone": "test_efficientnet",
    "pretrained": False,
    "image_size": 32,
    "pretrain_steps": 40,
    "finetune_steps": 40,
    "bootstrap": 50,
    "batch_size": 8,
    "feature_batch_size": 8,
    "dropout": 0.0,
}


def _image(path: Path, cls: int, seed: int) -> None:
    """Neoplastic: reddish; non-neoplastic: greenish; plus noise."""
    rng = np.random.default_rng(seed)
    base = np.array([170, 60, 60] if cls == 1 else [60, 160, 70], dtype=np.float64)
    arr = np.clip(base + rng.normal(0, 25, (24, 28, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _labelled_csv(root: Path, name: str, n: int, seed: int) -> Path:
    rows = []
    for i in range(n):
        cls = i % 2
        rel = f"{name}/{i:02d}.png"
        _image(root / rel, cls, seed + i)
        rows.append({"image": rel, "label": "neoplastic" if cls else "non_neoplastic", "group": f"{name}{i // 2}"})
    path = root / f"{name}.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "label", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run_folder(root: Path) -> Path:
    """Run tables as the extract, mil and ingest stages write them: 8 exams, 4 images each."""
    run = root / "run"
    labels, scores, images = [], [], []
    for e in range(8):
        exam = f"E{e}"
        cls = e % 2
        labels.append(
            {"exam_id": exam, "polyp": "present", "pathology": "adenoma" if cls else "hyperplastic", "error": None}
        )
        for i in range(4):
            img = f"{exam}/{i}.png"
            path = root / "archive" / img
            _image(path, cls if i < 3 else 1 - cls, 1000 + 10 * e + i)  # image 3: lowest score, other class
            images.append({"exam_id": exam, "image": img, "path": str(path)})
            scores.append({"exam_id": exam, "image": img, "score": 0.9 - 0.2 * i, "bag_label": 1})
    labels.append({"exam_id": "E9", "polyp": "absent", "pathology": None, "error": None})
    for stage, name, rows in (
        ("extract", "labels", labels),
        ("mil", "image_scores", scores),
        ("ingest", "images", images),
    ):
        tables.write(run / stage / f"{name}.parquet", f"{stage}/{name}", rows)
    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("biopsy")
    run = _run_folder(root)
    finetune = _labelled_csv(root, "finetune", 16, 0)
    test = _labelled_csv(root, "test", 12, 500)
    cfg = BiopsyConfig(**TINY)
    summary = train_classifier(cfg, root / "model", run_dir=run, labels=finetune, device="cpu", workers=1)
    return {"root": root, "run": run, "finetune": finetune, "test": test, "summary": summary}


def test_train_writes_model_and_summary(trained: dict) -> None:
    out = trained["root"] / "model"
    summary = trained["summary"]
    assert (out / "model.pt").is_file() and (out / "splits.csv").is_file()
    assert json.loads((out / "train.json").read_text(encoding="utf-8"))["pretrain_counts"] == summary["pretrain_counts"]
    # top-3 of 8 exams with known pathology
    assert summary["pretrain_counts"]["images_neoplastic"] == 12
    assert summary["pretrain_counts"]["images_non_neoplastic"] == 12
    assert summary["pretrain_counts"]["exams_unknown"] == 1
    assert summary["pretrain"]["steps"] == 40 and summary["finetune"]["steps"] == 40
    assert summary["calibration"]["source"] == "finetune_val"
    select = summary["finetune"]["select"]  # the default rule: interpolate, chosen on validation AUROC, anchored
    assert select["select"] == "interpolate" and select["metric"] == "auroc" and select["anchor"] == 10.0
    assert select["kept"] in ("pretrained", "finetuned", "interpolated") and 0.0 <= select["alpha"] <= 1.0
    with open(out / "splits.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fine = [r for r in rows if r["set"] == "finetune"]
    assert len(fine) == 16
    groups = {s: {r["group"] for r in fine if r["split"] == s} for s in ("train", "val")}
    assert groups["val"] and not groups["train"] & groups["val"]


def test_eval_separates_classes_and_checkpoint_round_trips(trained: dict) -> None:
    out = trained["root"] / "eval"
    res = evaluate_model(trained["root"] / "model" / "model.pt", trained["test"], out, device="cpu", workers=1)
    assert res["n"] == 12 and res["unscored"] == 0
    assert res["auroc"] >= 0.9
    assert res["auroc_ci"][0] <= res["auroc"] <= res["auroc_ci"][1]
    assert (out / "roc.png").read_bytes()[:4] == b"\x89PNG"
    model, cfg, _meta = load_model(trained["root"] / "model" / "model.pt")
    assert cfg.backbone == "test_efficientnet" and model.threshold == pytest.approx(
        trained["summary"]["calibration"]["threshold"]
    )
    rows = predict_images(trained["root"] / "model" / "model.pt", trained["test"], device="cpu", workers=1)
    with open(out / "predictions.csv", encoding="utf-8") as fh:
        saved = list(csv.DictReader(fh))
    np.testing.assert_allclose(
        [float(r["prob_neoplastic"]) for r in saved], [r["prob_neoplastic"] for r in rows], rtol=1e-6
    )


def test_cli_predict_on_image_folder(trained: dict, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    _image(folder / "a.png", 1, 7)
    _image(folder / "b.png", 0, 8)
    (folder / "c.png").write_bytes(b"not an image")
    code = main(
        [
            "--no-progress",
            "biopsy",
            "predict",
            "--model",
            str(trained["root"] / "model" / "model.pt"),
            "--images",
            str(folder),
            "--out",
            str(tmp_path / "p.csv"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    with open(tmp_path / "p.csv", encoding="utf-8") as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    assert rows["a.png"]["prediction"] == "neoplastic" and rows["b.png"]["prediction"] == "non_neoplastic"
    assert rows["c.png"]["prob_neoplastic"] == "" and "c.png" in rows["c.png"]["error"]


def test_finetune_selection_is_recorded(trained: dict, tmp_path: Path) -> None:
    from endoked.biopsy.train import INTERPOLATION_GRID

    cfg = BiopsyConfig(**{**TINY, "finetune_select": "interpolate", "finetune_anchor": 0.1})
    summary = train_classifier(
        cfg, tmp_path / "m", run_dir=trained["run"], labels=trained["finetune"], device="cpu", workers=1
    )
    select = summary["finetune"]["select"]
    assert select["select"] == "interpolate" and select["metric"] == "auroc" and select["anchor"] == 0.1
    assert select["alpha"] in INTERPOLATION_GRID and set(select["scores"]) == {f"{a:g}" for a in INTERPOLATION_GRID}
    saved = json.loads((tmp_path / "m" / "train.json").read_text(encoding="utf-8"))
    assert saved["finetune"]["select"]["alpha"] == select["alpha"]
    _, _, meta = load_model(tmp_path / "m" / "model.pt")
    assert meta["finetune"]["select"]["kept"] == select["kept"]


def test_pretrain_only_calibrates_on_report_labels(trained: dict, tmp_path: Path) -> None:
    cfg = BiopsyConfig(**{**TINY, "pretrain_steps": 10})
    summary = train_classifier(cfg, tmp_path / "m", run_dir=trained["run"], device="cpu", workers=1)
    assert summary["calibration"]["source"].startswith("pretrain_val")
    assert "finetune" not in summary


@pytest.mark.parametrize("blocks", [1, -1])
def test_partly_and_fully_trainable_encoder(trained: dict, tmp_path: Path, blocks: int) -> None:
    cfg = BiopsyConfig(**{**TINY, "trainable_blocks": blocks, "finetune_steps": 3, "flip_views": False})
    summary = train_classifier(cfg, tmp_path / "m", labels=trained["finetune"], device="cpu", workers=1)
    model, _, _ = load_model(tmp_path / "m" / "model.pt")
    import torch

    from endoked.biopsy.model import build_model

    torch.manual_seed(cfg.seed)
    fresh = build_model(cfg)
    last = model.encoder.model.blocks[-1]
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(last.parameters(), fresh.encoder.model.blocks[-1].parameters(), strict=True)
    )
    first = all(
        torch.equal(a, b)
        for a, b in zip(
            model.encoder.model.conv_stem.parameters(), fresh.encoder.model.conv_stem.parameters(), strict=True
        )
    )
    assert changed and first == (blocks > 0)
    assert summary["finetune"]["steps"] == 3


def test_anchor_and_interpolation_with_a_trainable_encoder_part(trained: dict, tmp_path: Path) -> None:
    cfg = BiopsyConfig(
        **{
            **TINY,
            "trainable_blocks": 1,
            "pretrain_steps": 3,
            "finetune_steps": 3,
            "flip_views": False,
            "finetune_select": "interpolate",
            "finetune_anchor": 1.0,
        }
    )
    summary = train_classifier(
        cfg, tmp_path / "m", run_dir=trained["run"], labels=trained["finetune"], device="cpu", workers=1
    )
    assert summary["finetune"]["select"]["select"] == "interpolate"
    model, _, _ = load_model(tmp_path / "m" / "model.pt")
    assert model.threshold == pytest.approx(summary["calibration"]["threshold"])
