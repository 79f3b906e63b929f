"""Replay the CAM box filters on finished runs' saved maps: which settings box the polyp, on which archive design?

The cam stage keeps every selected image's map (``cam/cams.parquet`` -> ``cam/chunks/*.npz``) and its classifier
probability (``cam/boxes.parquet``, ``cam/dropped.parquet``). For each filter setting of a grid this script cuts
boxes from those maps exactly as the stage does (:func:`endoked.boxes.boxes_from_cam` on the map resized to the
image, the classifier gate ``cam.min_class_prob`` unchanged) and scores them against the archive's true masks:

- ``boxed``: share of the selected polyp frames that get a box;
- ``hit``: share of the selected polyp frames whose largest box overlaps the true polyp's box by IoU >= 0.5
  (a box a segmenter can turn into the right mask);
- ``on polyp``: share of the selected polyp frames whose largest box has its centre on the true mask (a box
  inside a larger polyp, which the segmenter's expanded prompts can still turn into its mask);
- ``precision``: boxes on the polyp (centre on the mask) over boxed polyp frames; ``free boxed``: boxes on
  selected polyp-free frames;
- per ``origin`` (``truth/images.csv``) the same ``on polyp`` share.

Nothing is re-run: no classifier, no segmenter. Usage::

    python benchmarks/bench_cam_filters.py RUN [RUN ...] [--json OUT]

Prints one Markdown table per run (the stage's setting first) and, with ``--json``, writes every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from endoked import tables
from endoked.boxes import BoxFilter, box_iou, box_of_mask, boxes_from_cam
from endoked.cam.config import CamConfig
from endoked.imaging import resize_map
from endoked.runfolder import RunFolder
from endoked.scoring import load_truth

GRID: dict[str, Sequence[Any]] = {
    "threshold": (0.5, 0.65),
    "max_components": (3, 5, None),
    "drop_border": (True, False),
    "max_area": (0.35, 0.5, 0.8),
}
HIT_IOU = 0.5


def settings() -> list[dict[str, Any]]:
    """The grid's settings, EndoKED's (the stage's default) first."""
    default = {"threshold": 0.65, "max_components": 3, "drop_border": True, "max_area": 0.35}
    rest = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    return [default, *[s for s in rest if s != default]]


def _label(s: dict[str, Any]) -> str:
    comps = "any" if s["max_components"] is None else f"<{s['max_components']}"
    border = "drop" if s["drop_border"] else "keep"
    return f"thr {s['threshold']}, comps {comps}, border {border}, max area {s['max_area']}"


def load_maps(run: RunFolder) -> list[dict[str, Any]]:
    """Every selected image's map, classifier probability and size (the cam stage's own tables)."""
    cams = tables.read(run.root / "cam" / "cams.parquet", "cam/cams").to_pylist()
    probs: dict[tuple[str, str], float] = {}
    for name, table in (("boxes", "cam/boxes"), ("dropped", "cam/dropped")):
        for r in tables.read(run.root / "cam" / f"{name}.parquet", table).to_pylist():
            if r.get("class_prob") is not None:
                probs[(r["exam_id"], r["image"])] = float(r["class_prob"])
    sizes = {
        (r["exam_id"], r["image"]): (int(r["height"]), int(r["width"]))
        for r in tables.read(run.root / "ingest" / "images.parquet", "ingest/images").to_pylist()
    }
    npz: dict[str, Any] = {}
    out = []
    for r in cams:
        key = (r["exam_id"], r["image"])
        if r["file"] not in npz:
            npz[r["file"]] = np.load(run.root / r["file"])
        out.append({"key": key, "cam": npz[r["file"]][r["key"]], "prob": probs.get(key), "size": sizes[key]})
    return out


def replay(run_dir: Path) -> dict[str, Any]:
    run = RunFolder(run_dir)
    config = yaml.safe_load(run.config_path.read_text(encoding="utf-8")) or {}
    archive = (config.get("ingest") or {}).get("archive")
    truth = load_truth(archive) if archive else None
    if truth is None:
        raise SystemExit(f"{run_dir}: the run's archive has no truth/")
    gate = float((config.get("cam") or {}).get("min_class_prob", CamConfig.model_fields["min_class_prob"].default))
    maps = load_maps(run)
    grid = settings()
    params = [BoxFilter(**s) for s in grid]
    tallies: list[dict[str, Any]] = [
        {"pos": 0, "boxed": 0, "hit": 0, "on": 0, "free": 0, "by_origin": defaultdict(list)} for _ in grid
    ]
    for m in maps:  # each map resized and each true mask read once, then cut under every setting
        key = m["key"]
        polyp = truth.polyp.get(key) == 1
        mask = truth.mask(*key) if polyp else None
        tb = box_of_mask(mask) if mask is not None else None
        passes_gate = m["prob"] is None or m["prob"] >= gate
        cam = resize_map(m["cam"], m["size"]) if passes_gate else None
        for p, t in zip(params, tallies, strict=True):
            boxes = boxes_from_cam(cam, p).boxes if cam is not None else []
            if not polyp:
                t["free"] += bool(boxes)
                continue
            t["pos"] += 1
            t["boxed"] += bool(boxes)
            t["hit"] += bool(boxes) and tb is not None and float(box_iou(boxes[0].as_array(), tb)[0, 0]) >= HIT_IOU
            on = False
            if boxes and mask is not None:
                b = boxes[0]
                cy = min(mask.shape[0] - 1, int((b.y0 + b.y1) / 2))
                cx = min(mask.shape[1] - 1, int((b.x0 + b.x1) / 2))
                on = bool(mask[cy, cx])
            t["on"] += on
            t["by_origin"][truth.origin.get(key, "all")].append(int(on))
    rows = [
        {
            "setting": s,
            "label": _label(s),
            "polyp_frames": t["pos"],
            "boxed": t["boxed"] / max(1, t["pos"]),
            "hit": t["hit"] / max(1, t["pos"]),
            "on_polyp": t["on"] / max(1, t["pos"]),
            "precision": t["on"] / max(1, t["boxed"]),
            "free_boxed": t["free"],
            "hit_by_origin": {o: float(np.mean(v)) for o, v in sorted(t["by_origin"].items())},
        }
        for s, t in zip(grid, tallies, strict=True)
    ]
    return {"run": str(run_dir), "images": len(maps), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--top", type=int, default=8, help="rows printed per run after the default (by hits)")
    args = ap.parse_args(argv)
    results = [replay(r) for r in args.runs]
    for res in results:
        print(f"\n{res['run']}: {res['images']} selected images\n")
        origins = sorted({o for r in res["rows"] for o in r["hit_by_origin"]})
        head = "| setting | boxed | box IoU >= 0.5 | on polyp | precision | free frames boxed | "
        print(head + " | ".join(f"on polyp: {o}" for o in origins) + " |")
        print("|" + "---|" * (6 + len(origins)))
        default, rest = res["rows"][0], sorted(res["rows"][1:], key=lambda r: -r["on_polyp"])
        for r in [default, *rest[: args.top]]:
            cells = " | ".join(f"{r['hit_by_origin'].get(o, float('nan')):.3f}" for o in origins)
            print(
                f"| {r['label']} | {r['boxed']:.3f} | {r['hit']:.3f} | {r['on_polyp']:.3f} | {r['precision']:.3f} | "
                f"{r['free_boxed']} | "
                f"{cells} |"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
