"""Hand-written run folders for tests of the stages that read other stages' outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from endoked import tables
from endoked.io import write_jsonl, write_parquet
from endoked.runfolder import RunFolder


def fake_run(tmp_path: Path) -> tuple[RunFolder, dict[str, np.ndarray]]:
    """A run folder with ingest, extract and prompt_seg outputs written by hand."""
    run = RunFolder(tmp_path / "run")
    arch = tmp_path / "archive"
    rng = np.random.default_rng(0)
    images, labels, pseudo, masks = [], [], [], {}
    for e in range(2):
        for i in range(2):
            rel = f"E{e}/frame {i}.jpg"
            path = arch / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
            images.append({"exam_id": f"E{e}", "image": rel, "path": str(path), "width": 40, "height": 30})
            m = np.zeros((30, 40), bool)
            m[5:12, 4:15] = True
            if i == 1:
                m[20:27, 25:38] = True  # a second polyp: a second COCO instance
            masks[f"E{e}/{rel}"] = m
            mrel = f"prompt_seg/masks/E{e}/{i}.png"
            (run.root / mrel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((m * 255).astype(np.uint8)).save(run.root / mrel)
            pseudo.append({"exam_id": f"E{e}", "image": rel, "mask": mrel, "score": 0.9, "source": "litemedsam"})
        labels.append(
            {
                "exam_id": f"E{e}",
                "polyp": "present",
                "polyp_count": 2,
                "polyps": json.dumps(
                    [{"location": "sigmoid", "size_mm": 6.0, "morphology": "sessile", "removed": True}]
                ),
                "malignancy_suspected": False,
                "pathology": "adenoma" if e == 0 else None,
            }
        )
    report = "Findings: a 6 mm sessile polyp in the sigmoid colon, removed by cold snare. No other polyps."
    exams = [{"exam_id": f"E{e}", "report": report} for e in range(2)]
    rich = [
        {
            "id": f"E{e}",
            "polyp": "present",
            "polyp_count": 1,
            "pathology": None,
            "evidence": {
                k: [[report.index(w), report.index(w) + len(w)]]
                for k, w in (
                    ("polyp", "sessile polyp"),
                    ("size", "6 mm"),
                    ("location", "sigmoid colon"),
                    ("negated", "No other polyps"),
                )
            },
        }
        for e in range(2)
    ]
    scores = [
        {"exam_id": r["exam_id"], "image": r["image"], "score": 0.2 + 0.3 * i, "bag_label": 1}
        for i, r in enumerate(images)
    ]
    boxes = [
        {
            "exam_id": p["exam_id"],
            "image": p["image"],
            "box_id": 0,
            "x0": 4.0,
            "y0": 5.0,
            "x1": 15.0,
            "y1": 12.0,
            "cam_score": 0.8,
        }
        for p in pseudo
    ]
    outputs: dict[str, dict[str, list[dict]]] = {
        "ingest": {"images": images, "exams": exams},
        "extract": {"labels": labels},
        "mil": {"image_scores": scores},
        "cam": {"boxes": boxes, "dropped": [{"exam_id": "E9", "image": "x.jpg", "reason": "touches_border"}]},
        "prompt_seg": {"pseudo_labels": pseudo},
    }
    for stage, stage_tables in outputs.items():
        files = {}
        for name, rows in stage_tables.items():
            path = run.stage_dir(stage) / f"{name}.parquet"
            if f"{stage}/{name}" in tables.TABLES:  # the contract's columns, missing ones null
                tables.write(path, f"{stage}/{name}", rows)
            else:
                write_parquet(path, pa.Table.from_pylist(rows))
            files[name] = run.rel(path)
        if stage == "ingest":
            write_jsonl(
                run.stage_dir(stage) / "rejects.jsonl",
                [
                    {
                        "code": "missing_file",
                        "message": "manifest.jsonl:3: exam E2: image file not found: E2/1.jpg",
                        "source": "manifest.jsonl:3",
                        "row": 3,
                        "exam_id": "E2",
                        "image": "E2/1.jpg",
                        "level": "image",
                        "severity": "error",
                    }
                ],
            )
            files["rejects"] = run.rel(run.stage_dir(stage) / "rejects.jsonl")
        if stage == "extract":
            write_jsonl(run.stage_dir(stage) / "labels.jsonl", rich)
            files["labels_jsonl"] = run.rel(run.stage_dir(stage) / "labels.jsonl")
        run.mark_running(stage, "fp", {})
        run.mark_done(stage, files, {"n": len(next(iter(stage_tables.values())))}, 0.5)
    return run, masks
