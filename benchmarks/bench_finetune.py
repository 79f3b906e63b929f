"""Pre-train on reports, fine-tune on masks: the data-efficiency curve of the segmentation network.

For each share of the labelled training set (``polyp/TrainDataset``: Kvasir + CVC-ClinicDB frames with true
masks), the same network is trained twice with the same budget (the profile's epochs, the same seed and the same
images): from a report-supervised checkpoint (``--init``, e.g. the seg model of a pipeline run trained on pseudo
masks only) and from ImageNet weights. Both are scored on the public test sets; the figures carry percentile
bootstrap 95 % intervals over the test images, and the gain of the pre-trained arm a paired interval (the same
resamples for both arms).

Subsets are nested (5 % is a prefix of 10 % ...) and stratified by source (Kvasir / ClinicDB), seeded. Every
(share, arm) trains into its own folder, which resumes when interrupted; finished points are kept in
``OUT/points.json`` and not redone.

Usage::

    python benchmarks/bench_finetune.py --out /tmp/ft --init RUN/seg/model.pt [--profile cpu-small] \
        [--fractions 0.05 0.1 0.25 0.5 1.0] [--seed 0] [--set seg.optim.epochs=10 ...]

Prints and writes ``OUT/curve.md`` (the table for docs/BENCHMARKS.md) and ``OUT/points.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from endoked.biopsy.metrics import bootstrap
from endoked.device import resolve_device
from endoked.eval import EvalConfig, evaluate_sets
from endoked.io import atomic_write_json, atomic_write_text
from endoked.seg.api import fit
from endoked.seg.data import SegItem, list_image_files, list_pranet_folder
from endoked.seg.predict import Predictor, predict_files
from endoked.seg.stage import resolve_seg_config

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ENDOKED_SHARED_DATA", REPO.parent / "shared" / "data"))
ARMS = ("report-pretrained", "imagenet")


def nested_subsets(items: Sequence[SegItem], fractions: Sequence[float], seed: int) -> dict[float, list[SegItem]]:
    """Per share, a seeded subset stratified by source (ClinicDB frames are named ``clinicdb_*``); a smaller
    share's subset is a prefix of every larger one's."""
    rng = np.random.default_rng(seed)
    strata: dict[str, list[SegItem]] = {}
    for it in sorted(items, key=lambda i: i.key):
        strata.setdefault("clinicdb" if Path(it.image).name.startswith("clinicdb_") else "kvasir", []).append(it)
    order = {k: [v[i] for i in rng.permutation(len(v))] for k, v in sorted(strata.items())}
    return {f: [it for v in order.values() for it in v[: max(1, round(f * len(v)))]] for f in fractions}


def per_image_dice(pred_root: Path, test: Path, sets: Sequence[str]) -> dict[str, np.ndarray]:
    """Per set, each test image's mean Dice over the 256 thresholds (their mean is the set's meanDice)."""
    results = evaluate_sets({"m": pred_root}, test, EvalConfig(), sets=list(sets))
    for r in results:  # the per-image means must give the set's figure, or the intervals would be of another one
        assert abs(np.mean([rec["dice"] for rec in r.images]) - float(r.metrics["mean_dice"])) < 1e-6, r.set
    return {r.set: np.asarray([rec["dice"] for rec in r.images], dtype=np.float64) for r in results}


def run_point(
    items: list[SegItem], init: Path | None, out: Path, args: argparse.Namespace
) -> dict[str, Any]:  # one (share, arm)
    cfg, run_cfg = resolve_seg_config(args.profile, None, args.overrides)
    device = resolve_device(cfg.device or run_cfg.device)
    t0 = time.perf_counter()
    res = fit(items, out / "train", cfg, seed=args.seed, device=device, workers=2, init_checkpoint=init)
    predictor = Predictor.from_checkpoint(out / "train" / "model.pt", device)
    for name in args.sets:
        files = [(p.stem, p) for p in list_image_files(args.test / name / "images")]
        predict_files(predictor, files, out / "pred" / name, batch_size=cfg.predict.batch_size)
    dices = per_image_dice(out / "pred", args.test, args.sets)
    return {
        "n_train": res.n_train,
        "n_val": res.n_val,
        "best_epoch": res.best_epoch,
        "seconds": round(time.perf_counter() - t0, 1),
        "dice": {k: v.tolist() for k, v in dices.items()},
    }


def table(points: dict[str, Any], fractions: Sequence[float], sets: Sequence[str], seed: int) -> str:
    head = "| share | train / val images | init | " + " | ".join(f"{s} meanDice [95% CI]" for s in sets)
    head += " | " + " | ".join(f"{s} gain [95% CI]" for s in sets) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(sets))]
    for f in fractions:
        got = {a: points.get(f"{f:g}/{a}") for a in ARMS}
        if any(v is None for v in got.values()):
            continue
        for a in ARMS:
            p = got[a]
            cells = []
            for s in sets:
                d = np.asarray(p["dice"][s])
                ci = bootstrap(d.size, lambda i, d=d: {"m": float(d[i].mean())}, 2000, 0.95, seed)["m"]
                cells.append(f"{d.mean():.3f} [{ci[0]:.3f}, {ci[1]:.3f}]")
            gains = []
            for s in sets:
                if a != ARMS[0]:
                    gains.append("")
                    continue
                da, db = np.asarray(got[ARMS[0]]["dice"][s]), np.asarray(got[ARMS[1]]["dice"][s])
                ci = bootstrap(
                    da.size, lambda i, da=da, db=db: {"g": float(da[i].mean() - db[i].mean())}, 2000, 0.95, seed
                )
                gains.append(f"{da.mean() - db.mean():+.3f} [{ci['g'][0]:+.3f}, {ci['g'][1]:+.3f}]")
            lines.append(
                f"| {f:.0%} | {p['n_train']} / {p['n_val']} | {a} | "
                + " | ".join(cells)
                + " | "
                + " | ".join(gains)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init", type=Path, required=True, help="report-supervised checkpoint (e.g. RUN/seg/model.pt)")
    ap.add_argument("--profile", default="cpu-small")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--train", type=Path, default=DATA / "polyp" / "TrainDataset")
    ap.add_argument("--test", type=Path, default=DATA / "polyp" / "TestDataset")
    ap.add_argument("--sets", nargs="*", default=["Kvasir", "CVC-ClinicDB"])
    ap.add_argument("--fractions", nargs="*", type=float, default=[0.05, 0.1, 0.25, 0.5, 1.0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.init.is_file():
        raise SystemExit(f"--init {args.init}: no such checkpoint")
    items, _missing = list_pranet_folder(args.train)
    subsets = nested_subsets(items, args.fractions, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    points_path = args.out / "points.json"
    points: dict[str, Any] = json.loads(points_path.read_text()) if points_path.is_file() else {}
    for f in args.fractions:
        for arm in ARMS:
            key = f"{f:g}/{arm}"
            if key in points:
                continue
            init = args.init if arm == ARMS[0] else None
            points[key] = run_point(subsets[f], init, args.out / f"share-{f:g}" / arm, args)
            atomic_write_json(points_path, points)  # recorded as it goes
            print(f"{key}: " + ", ".join(f"{s} {np.mean(v):.3f}" for s, v in points[key]["dice"].items()), flush=True)
    md = (
        f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; profile {args.profile}; "
        f"init {args.init}; seed {args.seed}\n\n" + table(points, args.fractions, args.sets, args.seed)
    )
    atomic_write_text(args.out / "curve.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
