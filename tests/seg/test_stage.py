from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import Field

from endoked import tables
from endoked.config import RunConfig
from endoked.errors import StageError
from endoked.io import read_jsonl, read_parquet, sha256_file
from endoked.pipeline import run_stage
from endoked.runfolder import RunFolder
from endoked.seg.config import SegConfig
from endoked.seg.stage import STAGE
from tests.seg.conftest import disk_pair, tiny_config


class SegRunConfig(RunConfig):
    seg: SegConfig = Field(default_factory=SegConfig)


def _done(run: RunFolder, stage: str, outputs: dict[str, str]) -> None:
    run.mark_running(stage, "fp", {})
    run.mark_done(stage, outputs, {}, 0.0)


def _run_folder(tmp_path: Path, n: int = 8) -> tuple[RunFolder, Path]:
    archive = tmp_path / "archive"
    run = RunFolder(tmp_path / "run")
    run.init("{}", 0, "cpu")
    ps_dir = run.stage_dir("prompt_seg") / "masks"
    ps_dir.mkdir(parents=True)
    (archive / "truth").mkdir(parents=True)
    images, labels, truth = [], [], []
    for i in range(n):
        exam, name = f"E{i // 2}", f"E{i // 2}/{i % 2}.png"
        img, mask = disk_pair((64, 64), i)
        (archive / exam).mkdir(exist_ok=True)
        Image.fromarray(img).save(archive / name)
        Image.fromarray(mask).save(archive / "truth" / f"{i}.png")
        ys, xs = np.nonzero(mask)
        box = np.zeros_like(mask)
        box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 255  # box-shaped pseudo mask
        Image.fromarray(box).save(ps_dir / f"{i}.png")
        images.append({"exam_id": exam, "image": name, "path": str(archive / name), "width": 64, "height": 64})
        labels.append(
            {"exam_id": exam, "image": name, "mask": f"prompt_seg/masks/{i}.png", "score": 0.9, "source": "ellipse"}
        )
        truth.append({"image": name, "exam_id": exam, "polyp": 1, "mask": f"truth/{i}.png"})
    labels.append(
        {"exam_id": "E9", "image": "E9/0.png", "mask": "prompt_seg/masks/none.png", "score": 0.5, "source": "ellipse"}
    )
    # MIL selection: the labelled images, two positives without a pseudo mask and one negative
    selection = [{"exam_id": r["exam_id"], "image": r["image"], "label": 1, "score": 0.9} for r in images]
    for j, label in ((0, 1), (1, 1), (2, 0)):
        exam, name = "U", f"U/{j}.png"
        img, mask = disk_pair((64, 64), 100 + j)
        (archive / exam).mkdir(exist_ok=True)
        Image.fromarray(img).save(archive / name)
        images.append({"exam_id": exam, "image": name, "path": str(archive / name), "width": 64, "height": 64})
        selection.append({"exam_id": exam, "image": name, "label": label, "score": 0.9 if label else 0.1})
    tables.write(run.stage_dir("mil") / "selection.parquet", "mil/selection", selection)
    with open(archive / "truth" / "images.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "exam_id", "polyp", "mask"])
        writer.writeheader()
        writer.writerows(truth)
    tables.write(run.stage_dir("ingest") / "images.parquet", "ingest/images", images)
    tables.write(run.stage_dir("prompt_seg") / "pseudo_labels.parquet", "prompt_seg/pseudo_labels", labels)
    _done(run, "ingest", {"images": "ingest/images.parquet"})
    _done(run, "mil", {"selection": "mil/selection.parquet"})
    _done(run, "prompt_seg", {"pseudo_labels": "prompt_seg/pseudo_labels.parquet"})
    return run, archive


def test_stage_trains_refines_and_is_skipped_when_done(tmp_path: Path) -> None:
    run, archive = _run_folder(tmp_path)
    seg = tiny_config(
        optim__epochs=2,
        refine__rounds=1,
        refine__epochs=1,
        refine__boxes__threshold=0.3,
        refine__boxes__max_area=0.9,
        refine__min_val_dice=0.0,  # the round's mechanics, ungated (the gate has its own test)
    )
    config = SegRunConfig(device="cpu", seg=seg, ingest={"archive": str(archive)})
    status, result = run_stage(run, config, STAGE, progress=False)
    assert status == "ran" and result is not None
    for name in ("checkpoint", "metrics", "curve", "pseudo_stats", "pseudo_labels"):
        assert run.output("seg", name).is_file()
    assert result.counts["images"] == 8 and result.counts["rejected_rows"] == 1
    errors = read_jsonl(run.root / "seg" / "errors.jsonl")
    assert errors[0]["key"] == "E9/E9/0.png" and "not in ingest" in errors[0]["reason"]
    stats = read_jsonl(run.output("seg", "pseudo_stats"))
    # the round predicts the 8 labelled images and the 2 selected positives without a mask (not the negative)
    assert [s["round"] for s in stats] == [1] and stats[0]["n_images"] == 10 and stats[0]["n_pool_before"] == 8
    assert stats[0]["gated"] is False
    records = read_jsonl(run.root / "seg" / "round1" / "records.jsonl")
    assert sorted(r["key"] for r in records if r["new"]) == ["U/U/0.png", "U/U/1.png"]
    assert stats[0]["n_pool_after"] == 8 + stats[0]["n_added"]
    assert stats[0]["mean_dice_truth_before"] is not None  # box masks scored against the true disks
    metrics = json.loads(run.output("seg", "metrics").read_text())
    assert len(metrics["rounds"]) == 2 and "mean_dice" in metrics["final_val"]
    table = read_parquet(run.output("seg", "pseudo_labels")).to_pylist()
    assert len(table) == stats[0]["n_pool_after"] and {"exam_id", "image", "mask", "score", "source"} <= set(table[0])
    assert all(run.abs(r["mask"]).is_file() for r in table)
    assert all(0.0 <= r["score"] <= 1.0 for r in table) and {r["source"] for r in table} == {"seg_refine"}
    assert run_stage(run, config, STAGE, progress=False)[0] == "skipped"

    # an interrupted stage re-runs without repeating finished rounds
    records = run.root / "seg" / "round1" / "records.jsonl"
    before = (records.stat().st_mtime_ns, sha256_file(run.root / "seg" / "model.pt"))
    run.mark_failed("seg", "interrupted")
    assert run_stage(run, config, STAGE, progress=False)[0] == "resumed"
    assert (records.stat().st_mtime_ns, sha256_file(run.root / "seg" / "model.pt")) == before


def test_round_gate_on_the_previous_rounds_validation(tmp_path: Path) -> None:
    run, archive = _run_folder(tmp_path)
    kw = {"optim__epochs": 2, "refine__rounds": 1, "refine__epochs": 1, "refine__boxes__threshold": 0.3}
    seg = tiny_config(refine__boxes__max_area=0.9, refine__min_val_dice=1.0, **kw)  # no network reaches 1.0
    config = SegRunConfig(device="cpu", seg=seg, ingest={"archive": str(archive)})
    assert run_stage(run, config, STAGE, progress=False)[0] == "ran"
    stats = read_jsonl(run.output("seg", "pseudo_stats"))[0]
    val = json.loads((run.root / "seg" / "round0" / "summary.json").read_text())["best_val"]["mean_dice"]
    assert stats["gated"] is True and stats["val_mean_dice_before"] == pytest.approx(val, abs=1e-4)
    assert stats["n_updated"] == 0 and stats["n_added"] == 0 and stats["n_pool_after"] == 8
    table = read_parquet(run.output("seg", "pseudo_labels")).to_pylist()
    assert all("/round1/" not in r["mask"] for r in table)  # every mask is still prompt_seg's


def test_stage_without_usable_labels_fails_clearly(tmp_path: Path) -> None:
    run, _archive = _run_folder(tmp_path, n=2)
    for p in (run.root / "prompt_seg" / "masks").glob("*.png"):
        p.unlink()
    config = SegRunConfig(device="cpu", seg=tiny_config(optim__epochs=1))
    with pytest.raises(StageError, match="too few pseudo masks to train on: 0 usable") as err:
        run_stage(run, config, STAGE, progress=False)
    # every file the message names exists: the unusable rows are listed with their reasons
    errors = run.root / "seg" / "errors.jsonl"
    assert str(errors) in str(err.value) and errors.is_file()
    assert len(errors.read_text(encoding="utf-8").splitlines()) == 3


def test_stage_trains_on_mil_negatives_with_empty_masks(tmp_path: Path) -> None:
    run, archive = _run_folder(tmp_path)
    seg = tiny_config(optim__epochs=1, negatives_ratio=1.0, val_fraction=0.25)
    config = SegRunConfig(device="cpu", seg=seg, ingest={"archive": str(archive)})
    status, result = run_stage(run, config, STAGE, progress=False)
    assert status == "ran" and result is not None
    assert result.counts["negatives"] == 1  # the selection holds one negative (U/2.png); ratio 1 would allow 8
    summary = json.loads((run.root / "seg" / "round0" / "summary.json").read_text())
    assert summary["n_negatives"] == 1 and summary["n_pool"] == 8
    assert summary["n_val"] == 2 and summary["n_train"] == 6 + 1  # validation is drawn from the 8 pseudo labels only
    assert "U/U/2.png" not in summary["val_keys"]
    # the pool written out holds pseudo-labelled images only
    table = read_parquet(run.output("seg", "pseudo_labels")).to_pylist()
    assert len(table) == 8 and all(r["mask"] for r in table)


def test_mil_negatives_draw_is_seeded_and_capped(tmp_path: Path) -> None:
    from endoked.seg.stage import mil_negatives

    run, _archive = _run_folder(tmp_path)
    selection = read_parquet(run.output("mil", "selection")).to_pylist()
    images = read_parquet(run.output("ingest", "images")).to_pylist()
    # five more negatives
    for j in range(5):
        name = f"N/{j}.png"
        images.append({"exam_id": "N", "image": name, "path": str(tmp_path / name), "width": 64, "height": 64})
        selection.append({"exam_id": "N", "image": name, "label": 0, "score": 0.01})
    tables.write(run.stage_dir("mil") / "selection.parquet", "mil/selection", selection)
    tables.write(run.stage_dir("ingest") / "images.parquet", "ingest/images", images)
    assert mil_negatives(run, 0, 0) == []
    all_neg = mil_negatives(run, 100, 0)
    assert [it.key for it in all_neg] == ["U/U/2.png"] + [f"N/N/{j}.png" for j in range(5)]
    assert all(it.mask is None for it in all_neg)
    three = mil_negatives(run, 3, 0)
    assert len(three) == 3 and [it.key for it in three] == [it.key for it in mil_negatives(run, 3, 0)]
    assert {it.key for it in three} <= {it.key for it in all_neg}


@pytest.mark.parametrize(("warm", "round1_epochs"), [(True, 1), (False, 2)])
def test_refinement_round_warm_start_or_fresh_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm: bool, round1_epochs: int
) -> None:
    import endoked.seg.stage as stage_mod

    calls: list[dict[str, object]] = []
    real_fit = stage_mod.fit

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(dict(kwargs))
        return real_fit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stage_mod, "fit", spy)
    run, archive = _run_folder(tmp_path)
    seg = tiny_config(
        optim__epochs=2,
        refine__rounds=1,
        refine__epochs=1,
        refine__boxes__threshold=0.3,
        refine__boxes__max_area=0.9,
        refine__warm_start=warm,
    )
    config = SegRunConfig(device="cpu", seg=seg, ingest={"archive": str(archive)})
    assert run_stage(run, config, STAGE, progress=False)[0] == "ran"
    assert [c["epochs"] for c in calls] == [2, round1_epochs]
    round0_model = run.root / "seg" / "round0" / "model.pt"
    assert calls[0]["init_checkpoint"] is None
    assert calls[1]["init_checkpoint"] == (round0_model if warm else None)
    summary = json.loads((run.root / "seg" / "round1" / "summary.json").read_text())
    assert summary["epochs_run"] == round1_epochs
