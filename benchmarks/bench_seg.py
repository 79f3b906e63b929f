"""Segmentation benchmark: train on a PraNet-layout training set, predict the test sets, score them.

Usage::

    python benchmarks/bench_seg.py --out /tmp/endoked-bench-seg [--profile cpu-small] \
        [--set seg.image_size=256 --set seg.epochs=12 ...] [--train DATA/polyp/TrainDataset] \
        [--test DATA/polyp/TestDataset] [--sets Kvasir CVC-ClinicDB] [--skip-train] [--tta]
    python benchmarks/bench_seg.py --out OUT --pseudo-run RUN [...]   # train on a run's pseudo labels
    python benchmarks/bench_seg.py --out OUT --archive-truth ARCHIVE [...]  # the archive's frames, true masks

``DATA`` defaults to ``$ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``. Training resumes from
``OUT/train`` when interrupted. Prints and writes ``OUT/results.json``: the training summary (wall time,
epochs, validation figures on the held-out part of the training set), inference time per image, and the
PraNet-toolbox figures of every test set.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from endoked.device import resolve_device
from endoked.eval import EvalConfig, evaluate_sets
from endoked.runfolder import RunFolder
from endoked.scoring import load_truth
from endoked.seg.api import fit, train_folder
from endoked.seg.data import SegItem, list_image_files
from endoked.seg.predict import Predictor, predict_files
from endoked.seg.stage import pseudo_label_items, resolve_seg_config

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ENDOKED_SHARED_DATA", REPO.parent / "shared" / "data"))


def archive_truth_items(archive: Path) -> list[SegItem]:
    """The polyp frames of a benchmark archive with their true masks, keyed ``exam_id/image``."""
    truth = load_truth(archive)
    if truth is None:
        raise SystemExit(
            f"{archive / 'truth' / 'images.csv'} not found: --archive-truth needs a benchmark archive with truth/"
        )
    return [
        SegItem(f"{exam_id}/{image}", truth.root / image, truth.root / mask)
        for (exam_id, image), mask in truth.masks.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--train", type=Path, default=DATA / "polyp" / "TrainDataset")
    ap.add_argument("--test", type=Path, default=DATA / "polyp" / "TestDataset")
    ap.add_argument("--sets", nargs="*", default=["Kvasir", "CVC-ClinicDB"])
    ap.add_argument(
        "--pseudo-run",
        type=Path,
        default=None,
        help="Train on the pseudo labels of this run folder (prompt_seg done) instead of --train.",
    )
    ap.add_argument(
        "--archive-truth",
        type=Path,
        default=None,
        help="Train on the polyp frames of this benchmark archive with their true masks "
        "(ARCHIVE/truth/images.csv): what perfect pseudo labels of that archive would give.",
    )
    ap.add_argument("--skip-train", action="store_true", help="Reuse OUT/train/model.pt.")
    ap.add_argument("--tta", action="store_true", help="Flip test-time augmentation.")
    args = ap.parse_args()

    cfg, run_cfg = resolve_seg_config(args.profile, None, args.overrides)
    device = resolve_device(cfg.device or run_cfg.device)
    train_dir = args.out / "train"
    results: dict[str, object] = {
        "config": cfg.model_dump(mode="json"),
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
    }
    if not args.skip_train:
        t0 = time.perf_counter()
        if args.archive_truth is not None:
            items = archive_truth_items(args.archive_truth)
            results["archive_truth"] = {"archive": str(args.archive_truth), "n": len(items)}
            res = fit(items, train_dir, cfg, seed=run_cfg.seed, device=device, workers=2)
        elif args.pseudo_run is not None:
            items, errors, _ = pseudo_label_items(RunFolder(args.pseudo_run))
            results["pseudo_labels"] = {"n": len(items), "unusable_rows": len(errors)}
            res = fit(items, train_dir, cfg, seed=run_cfg.seed, device=device, workers=2)
        else:
            res = train_folder(args.train, train_dir, cfg, seed=run_cfg.seed, device=device, workers=2)
        results["train"] = {
            "seconds_this_call": round(time.perf_counter() - t0, 1),
            "seconds_total": round(res.seconds, 1),
            "best_epoch": res.best_epoch,
            "best_val": res.best_val,
            "epochs_run": len(res.history),
            "n_train": res.n_train,
            "n_val": res.n_val,
            "stopped_early": res.stopped_early,
        }
    predictor = Predictor.from_checkpoint(train_dir / "model.pt", device, tta_flip=args.tta)
    pred_root = args.out / ("pred_tta" if args.tta else "pred")
    timing: dict[str, float] = {}
    for name in args.sets:
        files = [(p.stem, p) for p in list_image_files(args.test / name / "images")]
        t0 = time.perf_counter()
        predict_files(predictor, files, pred_root / name, batch_size=cfg.predict.batch_size)
        timing[name] = round((time.perf_counter() - t0) / max(1, len(files)), 4)
    results["predict_seconds_per_image"] = timing
    scores = evaluate_sets({"seg": pred_root}, args.test, EvalConfig(), sets=args.sets)
    results["test"] = {r.set: r.metrics for r in scores}
    results["load_avg_end"] = os.getloadavg()
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {
                "train": results.get("train"),
                "test": {
                    k: {m: round(v, 4) for m, v in d.items() if m in ("mean_dice", "mean_iou", "dice_05", "n")}
                    for k, d in results["test"].items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
