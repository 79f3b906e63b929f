"""The cam stage on a hand-made run folder (ingest images + a hand-written mil selection)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endoked import tables
from endoked.cam.stage import BOXES_SCHEMA, DROPPED_SCHEMA, STAGE
from endoked.config import resolve_config
from endoked.errors import StageError
from endoked.io import read_parquet
from endoked.pipeline import available_stages, run_stage
from endoked.runfolder import RunFolder

CAM_SET = [
    "cam.backbone=test_efficientnet",
    "cam.pretrained=false",
    "cam.image_size=64",
    "cam.epochs=3",
    "cam.levels=[2, 3]",
    "cam.chunk_size=3",
    "cam.encode_batch_size=2",
    "cam.min_class_prob=0.0",
    "cam.hidden=8",
]


def make_run(tmp_path: Path, broken: bool = False) -> RunFolder:
    """Ingest and mil outputs written by hand: 4 positives with a blob, 4 negatives, one unreadable file."""
    run = RunFolder(tmp_path / "run")
    arch = tmp_path / "archive"
    rng = np.random.default_rng(0)
    images, selection = [], []
    for i in range(8):
        label = int(i < 4)
        img = np.full((48, 64, 3), (200, 120, 110), dtype=np.uint8)
        img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
        if label:
            img[15:30, 20:40] = (120, 40, 40)
        rel = f"E{i}/{i:02d}.jpg"
        path = arch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
        images.append({"exam_id": f"E{i}", "image": rel, "path": str(path), "width": 64, "height": 48})
        selection.append({"exam_id": f"E{i}", "image": rel, "label": label, "score": 0.9 if label else 0.1})
    if broken:
        bad = arch / "E9" / "bad.jpg"
        bad.parent.mkdir(parents=True)
        bad.write_bytes(b"not an image")
        images.append({"exam_id": "E9", "image": "E9/bad.jpg", "path": str(bad), "width": 64, "height": 48})
        selection.append({"exam_id": "E9", "image": "E9/bad.jpg", "label": 1, "score": 0.95})
    for stage, name, rows in (("ingest", "images", images), ("mil", "selection", selection)):
        path = run.stage_dir(stage) / f"{name}.parquet"
        tables.write(path, f"{stage}/{name}", rows)
        run.mark_running(stage, "fp", {})
        run.mark_done(stage, {name: run.rel(path)}, {}, 0.0)
    return run


def test_cam_stage_is_registered() -> None:
    assert available_stages()["cam"] is STAGE
    assert STAGE.depends == ("ingest", "mil")


def test_cam_stage_outputs_and_resume(tmp_path: Path) -> None:
    run = make_run(tmp_path, broken=True)
    cfg = resolve_config("cpu-small", overrides=CAM_SET)
    status, result = run_stage(run, cfg, STAGE, progress=False)
    assert status == "ran" and result is not None
    boxes = read_parquet(run.output("cam", "boxes"))
    dropped = read_parquet(run.output("cam", "dropped"))
    assert boxes.schema.equals(BOXES_SCHEMA) and dropped.schema.equals(DROPPED_SCHEMA)
    # Every selected positive is either boxed or dropped with a reason; negatives get nothing.
    boxed = {r["image"] for r in boxes.to_pylist()}
    reasons = {r["image"]: r["reason"] for r in dropped.to_pylist()}
    assert boxed | set(reasons) == {"E0/00.jpg", "E1/01.jpg", "E2/02.jpg", "E3/03.jpg", "E9/bad.jpg"}
    assert not boxed & set(reasons)
    assert reasons["E9/bad.jpg"] == "unreadable_image"
    for r in boxes.to_pylist():
        assert 0 <= r["x0"] < r["x1"] <= 64 and 0 <= r["y0"] < r["y1"] <= 48
        assert 0 < r["cam_score"] <= 1
    assert result.counts["images"] == 5 and result.counts["classifier"] == "trained"
    assert run.output("cam", "checkpoint").is_file()
    cams = read_parquet(run.output("cam", "cams")).to_pylist()
    assert {c["image"] for c in cams} == {"E0/00.jpg", "E1/01.jpg", "E2/02.jpg", "E3/03.jpg"}
    for c in cams:
        with np.load(run.abs(c["file"])) as npz:
            arr = npz[c["key"]]
        assert arr.dtype == np.uint8 and arr.shape == (16, 16)  # stride 8 at 64 px, aggregated at the 2x scale
        assert arr.max() == 255 or reasons[c["image"]] == "no_foreground"  # max-normalised
    # Interrupted run: final tables gone, chunks and classifier kept -> nothing is recomputed.
    ledger_entry = run.entry("cam")
    assert ledger_entry is not None
    run.mark_running("cam", ledger_entry["fingerprint"], {})
    (run.stage_dir("cam") / "boxes.parquet").unlink()
    status, result = run_stage(run, cfg, STAGE, progress=False)
    assert status == "resumed" and result is not None
    assert result.counts["chunks_reused"] == 2 and result.counts["classifier"] == "resumed"
    assert read_parquet(run.output("cam", "boxes")).equals(boxes)


def test_cam_stage_loads_a_given_checkpoint(tmp_path: Path) -> None:
    run = make_run(tmp_path / "a")
    cfg = resolve_config("cpu-small", overrides=CAM_SET)
    run_stage(run, cfg, STAGE, progress=False)
    ckpt = run.output("cam", "checkpoint")
    run2 = make_run(tmp_path / "b")
    cfg2 = resolve_config("cpu-small", overrides=[*CAM_SET, f"cam.checkpoint={ckpt}"])
    _, result = run_stage(run2, cfg2, STAGE, progress=False)
    assert result is not None and result.counts["classifier"] == "loaded"
    assert read_parquet(run2.output("cam", "boxes")).equals(read_parquet(run.output("cam", "boxes")))


def test_cam_stage_result_does_not_depend_on_the_global_rng_state(tmp_path: Path) -> None:
    """The same stage in two processes' worth of history (e.g. mil run first vs mil skipped) gives one result."""
    import torch

    cfg = resolve_config("cpu-small", overrides=[*CAM_SET, "cam.feature_dropout=0.5"])
    results = []
    for k, state in enumerate((0, 12345)):
        torch.manual_seed(state)
        torch.rand(1000 * k + 1)  # leave the global generator somewhere else each time
        np.random.seed(state)
        run = make_run(tmp_path / str(k))
        run_stage(run, cfg, STAGE, progress=False)
        ckpt = torch.load(run.output("cam", "checkpoint"), map_location="cpu", weights_only=False)
        results.append((read_parquet(run.output("cam", "boxes")), ckpt))
    (boxes_a, ckpt_a), (boxes_b, ckpt_b) = results
    assert boxes_a.equals(boxes_b)
    for part in ("head", "encoder"):  # the untrained encoder is saved too (cam.pretrained=false)
        state_a, state_b = ckpt_a[part], ckpt_b[part]
        assert state_a.keys() == state_b.keys()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_cam_stage_rejects_selection_rows_missing_from_ingest(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    path = run.output("mil", "selection")
    rows = read_parquet(path).to_pylist()
    rows.append({"exam_id": "X", "image": "X/1.jpg", "label": 1, "score": 0.9})
    tables.write(path, "mil/selection", rows)
    run.mark_running("mil", "fp2", {})
    run.mark_done("mil", {"selection": run.rel(path)}, {}, 0.0)
    with pytest.raises(StageError, match=r"X/1\.jpg"):
        run_stage(run, resolve_config("cpu-small", overrides=CAM_SET), STAGE, progress=False)


def test_classifier_checkpoint_of_the_old_arch_keys_loads(tmp_path: Path) -> None:
    import torch

    from endoked.cam.core import build_net, load_classifier, save_classifier

    cfg = resolve_config(None, overrides=[*CAM_SET]).cam
    net, _ = build_net(cfg)
    path = tmp_path / "classifier.pt"
    save_classifier(net, cfg, path)
    payload = torch.load(path, weights_only=True)
    payload["arch"]["input_size"] = payload["arch"].pop("image_size")  # as written before the rename
    torch.save(payload, path)
    loaded, _, arch = load_classifier(path, cfg.model_copy(update={"image_size": 352}))
    assert arch.image_size == 64
    for a, b in zip(loaded.head.state_dict().values(), net.head.state_dict().values(), strict=True):
        assert torch.equal(a, b)
