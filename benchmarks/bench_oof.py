"""Out-of-fold agreement as a truth-free quality signal for a run's pseudo masks.

The pool of ``prompt_seg/pseudo_labels`` is split in ``--folds`` seeded folds; for each fold the segmentation
network (the run's profile settings, :func:`endoked.seg.api.fit`) is trained on the other folds and predicts the
held-out fold's images, so that every pool image gets a prediction from a network that never saw its mask. Each
mask's Dice with that prediction (its **out-of-fold agreement**) is then tried as a ranking of the pool against the
stage's own rank: the pool is cut by each ranking to 60 % and 40 % of the archive's polyp frames and the kept
masks are scored against ``truth/images.csv`` (masks on polyp-free frames counted apart).

Usage::

    python benchmarks/bench_oof.py --run RUN --archive ARCHIVE --out OUT [--folds 2] [--profile cpu-small]

Writes ``OUT/fold<k>/`` (each fold's network), ``OUT/rows.json`` (per mask: rank, agreement, truth Dice of the mask
and of the out-of-fold prediction) and prints a Markdown table. Re-running reuses the folds' trained networks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.config import resolve_config
from endoked.imaging import read_mask, read_rgb
from endoked.io import read_parquet
from endoked.runfolder import RunFolder
from endoked.scoring import Truth, dice, load_truth
from endoked.seg.api import fit
from endoked.seg.data import SegItem
from endoked.seg.predict import Predictor


def oof_rows(run: RunFolder, truth: Truth, out: Path, folds: int, profile: str, seed: int) -> list[dict[str, Any]]:
    """One record per pool mask: its rank, its out-of-fold agreement and (on polyp frames) both truth Dices."""
    cfg = resolve_config(profile=profile, overrides=[f"seed={seed}"]).seg
    paths = {(r["exam_id"], r["image"]): r["path"] for r in read_parquet(run.output("ingest", "images")).to_pylist()}
    pool = read_parquet(run.output("prompt_seg", "pseudo_labels")).to_pylist()
    items = [
        SegItem(f"{p['exam_id']}/{p['image']}", Path(paths[(p["exam_id"], p["image"])]), run.abs(p["mask"]))
        for p in pool
    ]
    fold_of = np.random.default_rng(seed).permutation(len(items)) % folds
    rows: list[dict[str, Any]] = []
    for f in range(folds):
        fold_dir = out / f"fold{f}"
        if not (fold_dir / "model.pt").is_file():
            fit([it for it, k in zip(items, fold_of, strict=True) if k != f], fold_dir, cfg, seed=seed, progress=False)
        predictor = Predictor.from_checkpoint(fold_dir / "model.pt", "cpu")
        for it, p, k in zip(items, pool, fold_of, strict=True):
            if k != f:
                continue
            mask = read_mask(it.mask)
            pred = predictor.predict([read_rgb(it.image)])[0] > 0.5
            rec: dict[str, Any] = {
                "exam_id": p["exam_id"],
                "image": p["image"],
                "rank": float(p["rank"] or 0.0),
                "agreement": dice(mask, pred),
                "dice": None,
                "oof_dice": None,
            }
            g = truth.mask(p["exam_id"], p["image"]) if truth.polyp.get((p["exam_id"], p["image"])) == 1 else None
            if g is not None:
                rec["dice"], rec["oof_dice"] = dice(mask, g), dice(pred, g)
            rows.append(rec)
        print(f"fold {f + 1}/{folds} predicted", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--archive", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--profile", default="cpu-small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    truth = load_truth(args.archive)
    if truth is None:
        raise SystemExit(f"{args.archive} has no truth/images.csv to score against")
    rows = oof_rows(RunFolder(args.run), truth, args.out, args.folds, args.profile, args.seed)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    n_polyp = sum(1 for v in truth.polyp.values() if v == 1)
    pos = [r for r in rows if r["dice"] is not None]
    masks_dice = np.mean([r["dice"] for r in pos])
    oof_dice = np.mean([r["oof_dice"] for r in pos])
    print(
        f"{len(rows)} pool masks, {len(pos)} on polyp frames ({n_polyp} polyp frames): pseudo masks "
        f"{masks_dice:.3f} Dice, out-of-fold predictions {oof_dice:.3f}\n"
    )
    print("| pool cut by | to 60 % of polyp frames: Dice (on polyp-free) | to 40 %: Dice (on polyp-free) |")
    print("|---|---|---|")
    rankings = {
        "the stage's rank": lambda r: r["rank"],
        "out-of-fold agreement": lambda r: r["agreement"],
        "rank + agreement": lambda r: r["rank"] + r["agreement"],
    }
    for name, key in rankings.items():
        order = sorted(rows, key=lambda r: -key(r))
        cells = []
        for share in (0.6, 0.4):
            top = order[: round(share * n_polyp)]
            kept = [r["dice"] for r in top if r["dice"] is not None]
            cells.append(f"{np.mean(kept):.3f} ({sum(1 for r in top if r['dice'] is None)})")
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
