"""cam and prompt_seg speed, old code against new on the same frames, with equivalence checks.

Each measurement runs in its own subprocess with ``PYTHONPATH`` pointing at one source tree (``--old-src``, by default
a detached checkout of commit 22bd02f at ``/tmp/old22``, made with ``git worktree add --detach /tmp/old22 22bd02f``;
``--new-src``, by default this repository's ``src``), so both trees run the same driver code below:

- prompt_seg: LiteMedSAM (fp32 on CPU, consensus selection with the stage's defaults) on polyp frames of
  ``polyp/TrainDataset``, prompted by the frame's simulated CAM (a blurred copy of its true mask, as in
  ``benchmarks/profile_stages.py``) and that CAM's box; checks: mean Dice of old vs new masks;
- cam: the cpu-small classifier (tf_efficientnet_lite0, scales 0.75/1/1.5/2 + flips) with one fixed random head
  (saved by the first run, loaded by all; classifier gate off, so the box filters decide), checks: share of
  frames boxed by both or neither, mean IoU of each old box with its best new box.

The new tree runs its default inference runtime (``auto``: ONNX Runtime on the CPU when installed); set
``BENCH_RUNTIME=torch`` to time its eager-torch path instead. Model setup (loading, and for ONNX Runtime the export
or the cached graph) is timed apart from the per-image loop (``setup_s``).

Runs alternate old/new ``--repeats`` times (the machine may be shared: alternating spreads other load over both);
images/s is the median. Usage::

    python benchmarks/bench_speed.py --images 32 --repeats 3 --json /tmp/bench_speed.json

One setting of the new tree against another (``--old-src`` = ``--new-src``, ``--old-env``/``--new-env``), e.g. ONNX
Runtime's memory arena per session ("old") against the default, one arena shared by the process::

    python benchmarks/bench_speed.py --old-src src --old-env ENDOKED_ORT_MEMORY_ARENA=session --stage cam
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("ENDOKED_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def frames(n: int) -> list[tuple[Path, Path]]:
    root = shared_data() / "polyp" / "TrainDataset"
    images = sorted((root / "images").iterdir())
    if not images:
        raise SystemExit(f"no frames under {root}")
    picked = images[:: max(1, len(images) // n)][:n]  # spread over the set, as the profiler picks them
    return [(p, root / "masks" / (p.stem + ".png")) for p in picked]


def simulated_cam(mask_path: Path, size_hw: tuple[int, int]) -> np.ndarray:
    """A blurred, max-normalised copy of the true mask (same recipe as the profiler)."""
    import cv2
    from PIL import Image

    with Image.open(mask_path) as im:
        m = np.asarray(im.convert("L").resize((size_hw[1], size_hw[0]))) > 127
    k = max(3, (min(size_hw) // 8) | 1)
    cam = cv2.GaussianBlur(m.astype(np.float32), (k, k), 0)
    return cam / max(float(cam.max()), 1e-6)


def read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def worker_prompt_seg(pairs: list[tuple[Path, Path]], out: Path) -> dict[str, Any]:
    import torch

    from endoked.prompt_seg import refine
    from endoked.prompt_seg.config import PromptSegConfig
    from endoked.prompt_seg.litemedsam import LiteMedSamSegmenter

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    cfg = PromptSegConfig()
    kw: dict[str, Any] = {
        "device": "cpu",
        "bf16": False,
        "channels_last": cfg.channels_last,
        "multimask": cfg.multimask,
    }
    if "runtime" in PromptSegConfig.model_fields:  # trees with the ONNX Runtime path
        kw["runtime"] = os.environ.get("BENCH_RUNTIME", "auto")
    t_setup = time.perf_counter()
    seg = LiteMedSamSegmenter(**kw)
    setup_s = time.perf_counter() - t_setup
    sel = refine.Selection(
        thresholds=tuple(cfg.candidate_thresholds),
        scales=tuple(cfg.candidate_scales),
        min_component_area=cfg.candidate_min_area,
        w_score=cfg.select_weight_score,
        w_consensus=cfg.select_weight_consensus,
        w_cam=cfg.select_weight_agreement,
    )
    inputs = []
    for image_path, mask_path in pairs:
        img = read(image_path)
        cam = simulated_cam(mask_path, img.shape[:2])
        box = refine.box_of_mask(cam > 0.5)
        inputs.append((img, cam, box))
    masks: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    for i, (img, cam, box) in enumerate(inputs):
        if box is None:
            continue
        seg.set_image(img)
        best = refine.select_mask(seg, cam, box[None], sel, cfg.keep_largest_component, cfg.fill_holes)
        masks[str(i)] = best.mask if best is not None else np.zeros(img.shape[:2], bool)
    wall = time.perf_counter() - t0
    np.savez_compressed(out, **masks)
    return {"wall_s": wall, "images": len(inputs), "setup_s": setup_s, "runtime": getattr(seg, "runtime", "torch")}


def worker_cam(pairs: list[tuple[Path, Path]], out: Path, head: Path, batch: int) -> dict[str, Any]:
    import torch
    import yaml

    from endoked.cam import core
    from endoked.cam.config import CamConfig

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    import endoked

    # each tree's own profile (an older tree spells some keys differently)
    profile = yaml.safe_load((Path(endoked.__file__).parent / "profiles/cpu-small.yaml").read_text())["cam"]
    # the head is random: let every frame through the classifier gate so that the box filters decide
    cfg = CamConfig.model_validate({**profile, "min_class_prob": 0.0})
    torch.manual_seed(0)
    net, normalize = core.build_net(cfg)
    if head.is_file():
        net.head.load_state_dict(torch.load(head, weights_only=True))
    else:
        torch.save(net.head.state_dict(), head)
    net.eval()
    runtime = "torch"
    t_setup = time.perf_counter()
    if hasattr(core, "inference_net"):  # trees with the ONNX Runtime path
        cfg = cfg.model_copy(update={"runtime": os.environ.get("BENCH_RUNTIME", "auto")})
        net = core.inference_net(net, cfg, torch.device("cpu"))
        runtime = "torch" if isinstance(net, torch.nn.Module) else "onnxruntime"
    setup_s = time.perf_counter() - t_setup
    imgs = [read(p) for p, _ in pairs]
    boxes: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    for i in range(0, len(imgs), batch):
        for j, res in enumerate(core.cams_for_images(net, normalize, imgs[i : i + batch], cfg, torch.device("cpu"))):
            boxes[str(i + j)] = np.array([b.as_array() for b in res.boxes], np.float32).reshape(-1, 4)
    wall = time.perf_counter() - t0
    np.savez_compressed(out, **boxes)
    return {"wall_s": wall, "images": len(imgs), "setup_s": setup_s, "runtime": runtime}


def encoder_int8_check(pairs: list[tuple[Path, Path]]) -> dict[str, Any]:
    """LiteMedSAM's image encoder in fp32 against torch int8 dynamic quantisation of its Linear layers: encoder
    seconds per image (alternating, median) and the Dice between the masks selected with either embedding."""
    import torch

    from endoked.prompt_seg import refine
    from endoked.prompt_seg.litemedsam import LiteMedSamSegmenter

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    seg = LiteMedSamSegmenter(device="cpu", bf16=False, cache_size=1)
    fp32 = seg.model.image_encoder
    int8 = torch.ao.quantization.quantize_dynamic(fp32, {torch.nn.Linear}, dtype=torch.qint8)
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    dices = []
    for image_path, mask_path in pairs:
        img = read(image_path)
        cam = simulated_cam(mask_path, img.shape[:2])
        box = refine.box_of_mask(cam > 0.5)
        if box is None:
            continue
        masks = {}
        for name, enc in (("fp32", fp32), ("int8", int8)):
            seg.model.image_encoder = enc
            seg.reset_image()
            seg._cache.clear()
            t0 = time.perf_counter()
            seg.set_image(img)
            times[name].append(time.perf_counter() - t0)
            best = refine.select_mask(seg, cam, box[None])
            masks[name] = best.mask if best is not None else np.zeros(img.shape[:2], bool)
        dices.append(dice(masks["fp32"], masks["int8"]))
    seg.model.image_encoder = fp32
    return {
        "frames": len(dices),
        "encoder_s": {k: statistics.median(v) for k, v in times.items()},
        "mean_dice_int8_vs_fp32": float(np.mean(dices)),
        "min_dice": float(np.min(dices)),
    }


def run_worker(
    src: Path, stage: str, n: int, out: Path, head: Path, batch: int, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), **(extra_env or {})}
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        stage,
        "--images",
        str(n),
        "--out",
        str(out),
        "--head",
        str(head),
        "--cam-batch",
        str(batch),
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"worker {stage} ({src}) failed:\n{res.stderr[-3000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float(np.logical_and(a, b).sum()) / s


def compare_masks(old: Path, new: Path) -> dict[str, Any]:
    with np.load(old) as o, np.load(new) as n:
        keys = sorted(set(o.files) | set(n.files), key=int)
        dices = [dice(o[k], n[k]) if k in o.files and k in n.files else 0.0 for k in keys]
    return {
        "frames": len(keys),
        "mean_dice": float(np.mean(dices)),
        "min_dice": float(np.min(dices)),
        "identical": int(sum(d == 1.0 for d in dices)),
    }


def compare_boxes(old: Path, new: Path) -> dict[str, Any]:
    from endoked.boxes import box_iou

    with np.load(old) as o, np.load(new) as n:
        keys = sorted(o.files, key=int)
        same = sum((len(o[k]) > 0) == (len(n[k]) > 0) for k in keys)
        ious = [float(box_iou(o[k], n[k]).max(1).mean()) for k in keys if len(o[k]) and len(n[k])]
        boxed = sum(len(o[k]) > 0 for k in keys)
    return {
        "frames": len(keys),
        "boxed_old": boxed,
        "same_boxed": same / max(len(keys), 1),
        "mean_box_iou": float(np.mean(ious)) if ious else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stage", choices=("prompt_seg", "cam", "both"), default="both")
    ap.add_argument("--old-src", type=Path, default=Path("/tmp/old22/src"))
    ap.add_argument("--new-src", type=Path, default=REPO_ROOT / "src")
    ap.add_argument("--cam-batch", type=int, default=8)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--old-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the old side's workers only (with --old-src = --new-src: an A/B of one setting)",
    )
    ap.add_argument("--new-env", action="append", default=[], metavar="KEY=VALUE", help="the same for the new side")
    ap.add_argument(
        "--encoder-int8",
        action="store_true",
        help="only compare the fp32 and int8-dynamic LiteMedSAM encoders (new tree, in process)",
    )
    ap.add_argument("--worker", choices=("prompt_seg", "cam"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--head", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    pairs = frames(args.images)
    if args.worker:
        res = (
            worker_prompt_seg(pairs, args.out)
            if args.worker == "prompt_seg"
            else worker_cam(pairs, args.out, args.head, args.cam_batch)
        )
        print(json.dumps(res))
        return 0
    if args.encoder_int8:
        res = encoder_int8_check(pairs)
        print(json.dumps(res, indent=1))
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return 0
    if not args.old_src.is_dir():
        raise SystemExit(f"{args.old_src} not found: git worktree add --detach /tmp/old22 22bd02f")
    stages = ("prompt_seg", "cam") if args.stage == "both" else (args.stage,)
    envs = {side: dict(kv.split("=", 1) for kv in getattr(args, f"{side}_env")) for side in ("old", "new")}
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "old_src": str(args.old_src),
        "new_src": str(args.new_src),
        "images": len(pairs),
        "env": envs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        head = Path(tmp) / "head.pt"
        for stage in stages:
            times: dict[str, list[float]] = {"old": [], "new": []}
            setups: dict[str, list[float]] = {"old": [], "new": []}
            runtimes: dict[str, str] = {}
            outs = {k: Path(tmp) / f"{stage}-{k}.npz" for k in ("old", "new")}
            for _ in range(args.repeats):
                for which, src in (("new", args.new_src), ("old", args.old_src)):
                    res = run_worker(src, stage, len(pairs), outs[which], head, args.cam_batch, envs[which])
                    times[which].append(res["images"] / res["wall_s"])
                    setups[which].append(res.get("setup_s", 0.0))
                    runtimes[which] = res.get("runtime", "torch")
                    print(f"{stage} {which}: {times[which][-1]:.3f} images/s ({runtimes[which]})", flush=True)
            check = (
                compare_masks(outs["old"], outs["new"])
                if stage == "prompt_seg"
                else compare_boxes(outs["old"], outs["new"])
            )
            med = {k: statistics.median(v) for k, v in times.items()}
            report[stage] = {
                "images_per_s": times,
                "median": med,
                "speedup": med["new"] / med["old"],
                "setup_s": setups,
                "runtime": runtimes,
                **check,
            }
            print(json.dumps({stage: report[stage]}, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
