"""The mil stage end to end on a small synthetic archive (ingest for real, report labels faked from truth)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from endoked import tables
from endoked.config import resolve_config
from endoked.errors import StageError
from endoked.imaging import load_image
from endoked.io import read_parquet
from endoked.mil.checkpoint import load_model, score_images
from endoked.mil.config import MilConfig
from endoked.mil.metrics import instance_metrics
from endoked.mil.stage import STAGE, bag_labels, select_images
from endoked.pipeline import available_stages, run_stage
from endoked.runfolder import RunFolder

synth = pytest.importorskip("endoked.synth.archive")

MIL_SET = [
    "mil.backbone=test_efficientnet",
    "mil.pretrained=false",
    "mil.image_size=64",
    "mil.epochs=6",
    "mil.hidden_dim=32",
    "mil.attention_dim=16",
    "mil.bags_per_step=4",
    "mil.lr=0.003",
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from endoked.synth.config import SynthConfig

    out = tmp_path_factory.mktemp("synth")
    synth.generate_archive(out, SynthConfig(exams=24, size=64, images_per_exam=(3, 5), seed=1), progress=False)
    return out


def _labels_from_truth(archive: Path, override: dict[str, str] | None = None) -> list[dict[str, object]]:
    from endoked.synth.truth import load_truth

    truth = load_truth(archive)
    rows = []
    for exam_id, lab in truth.exams.items():
        rows.append(
            {
                "exam_id": exam_id,
                "polyp": (override or {}).get(exam_id, lab["polyp"]),
                "polyp_count": lab["polyp_count"],
                "polyps": json.dumps(lab["polyps"]),
                "malignancy_suspected": lab["malignancy_suspected"],
                "pathology": lab["pathology"],
                "error": None,
            }
        )
    return rows


def _run(tmp_path: Path, archive: Path, labels: list[dict[str, object]], extra: list[str] = ()) -> RunFolder:
    cfg = resolve_config("cpu-small", overrides=[f"ingest.archive={archive / 'manifest.jsonl'}", *MIL_SET, *extra])
    run = RunFolder(tmp_path / "run")
    run.init(cfg.to_yaml(), cfg.seed, cfg.device)
    run_stage(run, cfg, available_stages()["ingest"], progress=False)
    # the extract stage's output, written by hand
    path = run.stage_dir("extract") / "labels.parquet"
    tables.write(path, "extract/labels", labels)
    run.mark_running("extract", "fake", {})
    run.mark_done("extract", {"labels": run.rel(path)}, {}, 0.0)
    run_stage(run, cfg, STAGE, progress=False)
    return run


def test_stage_outputs_schema_and_checkpoint(tmp_path: Path, archive: Path) -> None:
    from endoked.synth.truth import load_truth

    truth = load_truth(archive)
    some_exam = sorted(truth.exams)[0]
    run = _run(tmp_path, archive, _labels_from_truth(archive, {some_exam: "uncertain"}))
    scores = read_parquet(run.output("mil", "image_scores"))
    assert scores.schema.names == ["exam_id", "image", "score", "bag_label"]
    assert scores.schema.field("score").type == pa.float32()
    rows = scores.to_pylist()
    images = read_parquet(run.output("ingest", "images")).to_pylist()
    assert len(rows) == len(images)  # every image scored
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    assert {r["bag_label"] for r in rows if r["exam_id"] == some_exam} == {-1}
    for r in rows:
        expected = {"present": 1, "absent": 0}.get(truth.exams[r["exam_id"]]["polyp"], -1)
        if r["exam_id"] != some_exam:
            assert r["bag_label"] == expected
    sel = read_parquet(run.output("mil", "selection")).to_pylist()
    cfg = resolve_config(None, run.config_path).mil  # the settings the stage ran with
    for r in sel:
        src = next(x for x in rows if x["image"] == r["image"])
        assert r["label"] == src["bag_label"]
        if r["label"] == 1 and r["by"] == "score":
            assert r["score"] >= cfg.positive_threshold
    # every positive exam with a scored image contributes at least its top-scored image
    positive_exams = {r["exam_id"] for r in rows if r["bag_label"] == 1}
    for exam in positive_exams:
        top = max((x for x in rows if x["exam_id"] == exam), key=lambda x: x["score"])
        if top["score"] >= cfg.top_min_score:
            assert any(r["image"] == top["image"] and r["label"] == 1 for r in sel), exam
    metrics = json.loads(run.output("mil", "metrics").read_text())
    assert 0.0 <= metrics["val_bag_auroc"] <= 1.0 and metrics["counts"]["excluded:uncertain"] >= 1
    assert metrics["history"] and metrics["best_epoch"] >= 1
    # the checkpoint alone reproduces the scores
    encoder, heads, ck_cfg, meta = load_model(run.output("mil", "checkpoint"))
    assert ck_cfg.image_size == 64 and meta["best_epoch"] == metrics["best_epoch"]
    first = images[:4]
    batch = torch.from_numpy(np.stack([load_image(r["path"], 64) for r in first]))
    again = score_images(encoder, heads, batch)
    np.testing.assert_allclose(again, [rows[i]["score"] for i in range(4)], atol=1e-5)
    # the CLI scores a folder with the checkpoint and gives the same numbers
    from endoked.cli import main

    exam_dir = Path(first[0]["path"]).parent
    csv_out = tmp_path / "scores.csv"
    assert (
        main(
            [
                "--no-progress",
                "mil",
                "score",
                "--model",
                str(run.output("mil", "checkpoint")),
                "--images",
                str(exam_dir),
                "--out",
                str(csv_out),
            ]
        )
        == 0
    )
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "image,score" and len(lines) == 1 + len(list(exam_dir.glob("*.jpg")))
    by_path = {str(exam_dir / line.split(",")[0]): float(line.split(",")[1]) for line in lines[1:]}
    assert by_path[first[0]["path"]] == pytest.approx(rows[0]["score"], abs=1e-5)
    assert main(["mil", "backbones"]) == 0
    # the batch core: a row per input, an undecodable image scored None, the bag label carried through
    from endoked.mil.api import process_batch, setup

    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    out = process_batch(
        [{**first[0], "bag_label": 1}, {"exam_id": "X", "image": "b", "path": str(tmp_path / "broken.jpg")}],
        setup(run.output("mil", "checkpoint")),
    ).tables["mil/image_scores"]
    assert out[0]["score"] == pytest.approx(rows[0]["score"], abs=1e-5) and out[0]["bag_label"] == 1
    assert out[1] == {"exam_id": "X", "image": "b", "score": None, "bag_label": -1}
    # image-level metrics against the truth are computable from the outputs
    flags = [int(truth.image_polyp[r["image"]]) for r in rows]
    m = instance_metrics([r["score"] for r in rows], flags)
    assert m["n"] == len(rows) and 0.0 <= m["auroc"] <= 1.0


def test_stage_without_positive_bags_is_a_stage_error(tmp_path: Path, archive: Path) -> None:
    labels = [{**r, "polyp": "absent"} for r in _labels_from_truth(archive)]
    with pytest.raises(StageError, match=r"0 positive"):
        _run(tmp_path, archive, labels)


def test_bag_labels_follow_the_config() -> None:
    rows = [
        {"exam_id": "a", "polyp": "present"},
        {"exam_id": "b", "polyp": "absent"},
        {"exam_id": "c", "polyp": "uncertain"},
        {"exam_id": "d", "polyp": None},
    ]
    labels, counts = bag_labels(rows, MilConfig())
    assert labels == {"a": 1, "b": 0, "c": -1, "d": -1}
    assert counts == {"positive": 1, "negative": 1, "excluded:uncertain": 1, "excluded:missing": 1}
    labels2, _ = bag_labels(rows, MilConfig(positive_labels=["present", "uncertain"]))
    assert labels2["c"] == 1


def test_selection_thresholds_and_lowest_negatives() -> None:
    rows = [{"exam_id": "p", "image": f"p{i}", "score": s, "bag_label": 1} for i, s in enumerate([0.9, 0.8, 0.5])]
    rows += [
        {"exam_id": "n", "image": f"n{i}", "score": s, "bag_label": 0} for i, s in enumerate([0.7, 0.1, 0.3, 0.2, None])
    ]
    rows += [{"exam_id": "u", "image": "u0", "score": 0.99, "bag_label": -1}]
    sel = select_images(rows, MilConfig(positive_threshold=0.8, negative_fraction=0.5))
    assert [(r["image"], r["label"], r["by"]) for r in sel] == [
        ("p0", 1, "score"),
        ("p1", 1, "score"),
        ("n1", 0, "score"),
        ("n3", 0, "score"),
    ]


def test_selection_adds_the_top_k_of_each_positive_exam() -> None:
    # exam a: nothing above the threshold, but its two best frames rank first; exam b: one frame above
    rows = [
        {"exam_id": "a", "image": f"a{i}", "score": s, "bag_label": 1} for i, s in enumerate([0.02, 0.3, 0.0001, 0.1])
    ]
    rows += [{"exam_id": "b", "image": f"b{i}", "score": s, "bag_label": 1} for i, s in enumerate([0.9, 0.2, None])]
    rows += [{"exam_id": "n", "image": "n0", "score": 0.5, "bag_label": 0}]
    cfg = MilConfig(positive_threshold=0.8, negative_fraction=0.0)
    pick = [(r["image"], r["by"]) for r in select_images(rows, cfg)]
    assert pick == [("a1", "rank"), ("b0", "score")]  # k = 1 without counts; b's top is above the threshold
    counts = {"a": 3, "b": 2}
    pick = [(r["image"], r["by"]) for r in select_images(rows, cfg, counts)]
    # a: k = 3 -> a1, a3, a0 (a2 ranks 4th); b: k = 2 -> b0 (score) and b1 (rank); None scores never count
    assert pick == [("a0", "rank"), ("a1", "rank"), ("a3", "rank"), ("b0", "score"), ("b1", "rank")]
    capped = MilConfig(positive_threshold=0.8, negative_fraction=0.0, max_top_per_bag=2, top_min_score=0.05)
    pick = [r["image"] for r in select_images(rows, capped, counts)]
    assert pick == ["a1", "a3", "b0", "b1"]  # cap 2; a0 (0.02) would be third anyway
    floor = MilConfig(positive_threshold=0.8, negative_fraction=0.0, top_min_score=0.5)
    assert [r["image"] for r in select_images(rows, floor, counts)] == ["b0"]
    off = MilConfig(positive_threshold=0.8, negative_fraction=0.0, top_per_bag=0, top_from_count=False)
    assert [r["image"] for r in select_images(rows, off, counts)] == ["b0"]  # the old rule
