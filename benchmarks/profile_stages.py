"""Where the time of the per-image stages goes, as a fraction of what the machine can do.

For ``prompt_seg`` (LiteMedSAM, consensus selection) and ``cam`` (the CAM classifier with its scales and flips) it
runs the stage's own functions on real polyp frames and splits the wall time by step, by wrapping the step
functions with timers (inclusive times; a parent's "self" time is its total minus its children's):

- prompt_seg: decode (file -> RGB), preprocess (resize + pad), encoder, prompt decoding (prompt encoder + mask
  decoder), upsample (logits -> image-size masks), candidates (CAM boxes at other thresholds, scaled copies),
  clean-up (largest component, holes), measures (CAM agreement, areas), consensus, PNG encoding;
- cam: decode, to_input (resize + normalise), forward passes (all scales and flips), box extraction.

Beside it prints the FLOPs per image of each model (``torch.utils.flop_counter``) and the machine's measured
matmul rate (fp32, and bf16 where the CPU has it natively), so every step's time is also a fraction of the limit.

Usage::

    python benchmarks/profile_stages.py --images 16 --stage both --json /tmp/profile.json

Frames come from ``polyp/TrainDataset`` of the shared data (``$ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``);
each frame's CAM is simulated by a blurred copy of its true mask (profiling needs realistic prompts, not a
trained classifier). Run it on an idle machine; the JSON keeps the machine, the torch threads and the command.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("ENDOKED_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def machine() -> dict[str, Any]:
    """CPU model, the SIMD features that matter here, torch threads."""
    model, flags = platform.processor(), ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("Flags:"):
                flags = line.split(":", 1)[1]
    except OSError:
        pass
    feats = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags.split()]
    return {
        "cpu": model,
        "features": feats,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def matmul_rate(dtype: torch.dtype, n: int = 1024, seconds: float = 1.5) -> float:
    """Measured GFLOP/s of an ``n x n`` matmul in ``dtype`` (the best of repeated timings)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def count_flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        fn()
    return int(counter.get_total_flops())


class Timers:
    """Inclusive wall time and call count per named step."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.total[name] += time.perf_counter() - t0
            self.calls[name] += 1

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        """Replace ``owner.attr`` by a timed version (for the lifetime of the process)."""
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.step(name):
                return fn(*args, **kwargs)

        setattr(owner, attr, timed)


def frames(n: int) -> list[tuple[Path, Path]]:
    root = shared_data() / "polyp" / "TrainDataset"
    images = sorted((root / "images").iterdir())
    if not images:
        raise SystemExit(f"no frames under {root}")
    step = max(1, len(images) // n)
    picked = images[::step][:n]
    return [(p, root / "masks" / (p.stem + ".png")) for p in picked]


def simulated_cam(mask_path: Path, size_hw: tuple[int, int]) -> np.ndarray:
    import cv2
    from PIL import Image

    m = np.asarray(Image.open(mask_path).convert("L").resize((size_hw[1], size_hw[0]))) > 127
    k = max(3, (min(size_hw) // 8) | 1)
    cam = cv2.GaussianBlur(m.astype(np.float32), (k, k), 0)
    return cam / max(float(cam.max()), 1e-6)


def profile_prompt_seg(pairs: list[tuple[Path, Path]], timers: Timers, bf16: bool) -> dict[str, Any]:
    from endoked.imaging import encode_png, mask_to_u8
    from endoked.prompt_seg import litemedsam, refine
    from endoked.prompt_seg import stage as ps_stage
    from endoked.prompt_seg.config import PromptSegConfig
    from endoked.prompt_seg.litemedsam import LiteMedSamSegmenter

    cfg = PromptSegConfig()
    seg = LiteMedSamSegmenter(device="cpu", bf16=bf16, channels_last=cfg.channels_last, multimask=cfg.multimask)
    timers.wrap(litemedsam, "preprocess", "preprocess")
    timers.wrap(LiteMedSamSegmenter, "_encode", "encoder")
    timers.wrap(LiteMedSamSegmenter, "_predict", "decode+upsample")
    if hasattr(LiteMedSamSegmenter, "upsample_logits"):  # low-res ranking: only the winner is upsampled
        timers.wrap(LiteMedSamSegmenter, "upsample_logits", "upsample")
    timers.wrap(refine, "cam_component_boxes", "candidates")
    timers.wrap(refine, "clean_mask", "clean-up")
    timers.wrap(refine, "_measure", "measures")
    timers.wrap(refine, "mask_consensus", "consensus")
    sel = ps_stage._selection(cfg)
    n_prompts = [0]
    real_predict_logits = LiteMedSamSegmenter.predict_logits

    def counting(self: Any, boxes: np.ndarray) -> Any:
        n_prompts[0] += len(boxes)
        return real_predict_logits(self, boxes)

    LiteMedSamSegmenter.predict_logits = counting  # type: ignore[method-assign]
    timers.wrap(LiteMedSamSegmenter, "predict_logits", "prompt decoding")
    t0 = time.perf_counter()
    for image_path, mask_path in pairs:
        with timers.step("decode"):
            from PIL import Image

            with Image.open(image_path) as im:
                img = np.asarray(im.convert("RGB"))
        cam = simulated_cam(mask_path, img.shape[:2])
        box = refine.box_of_mask(cam > 0.5)
        if box is None:
            continue
        seg.set_image(img)
        best = refine.select_mask(seg, cam, box[None], sel, cfg.keep_largest_component, cfg.fill_holes)
        if best is not None:
            with timers.step("png"):
                encode_png(mask_to_u8(best.mask))
    wall = time.perf_counter() - t0
    prompts = n_prompts[0]
    x = torch.zeros(1, 3, litemedsam.INPUT_SIZE, litemedsam.INPUT_SIZE)
    enc_flops = count_flops(lambda: seg.model.image_encoder(x))
    seg.set_image(np.zeros((288, 384, 3), np.uint8))
    dec_flops = count_flops(lambda: real_predict_logits(seg, np.array([[10, 10, 200, 200]], np.float32)))
    return {
        "images": len(pairs),
        "wall_s": wall,
        "prompts_per_image": prompts / max(len(pairs), 1),
        "flops": {"image encoder (per image)": enc_flops, "mask decoder (per prompt)": dec_flops},
    }


def profile_cam(pairs: list[tuple[Path, Path]], timers: Timers, batch: int) -> dict[str, Any]:
    import yaml

    from endoked.cam import core, methods
    from endoked.cam.config import CamConfig

    profile = yaml.safe_load((REPO_ROOT / "src/endoked/profiles/cpu-small.yaml").read_text())["cam"]
    cfg = CamConfig.model_validate(profile)
    net, normalize = core.build_net(cfg)
    net.eval()
    timers.wrap(core, "to_input", "to_input")
    timers.wrap(core, "tta_maps", "forward passes")
    timers.wrap(core, "boxes_from_cam", "boxes")
    t0 = time.perf_counter()
    for i in range(0, len(pairs), batch):
        imgs = []
        for image_path, _ in pairs[i : i + batch]:
            with timers.step("decode"):
                from PIL import Image

                with Image.open(image_path) as im:
                    imgs.append(np.asarray(im.convert("RGB")))
        core.cams_for_images(net, normalize, imgs, cfg, torch.device("cpu"))
    wall = time.perf_counter() - t0
    flops = 0
    side = cfg.image_size
    for s in cfg.scales:
        size = max(32, round(side * s / 32) * 32)
        x = torch.zeros(1, 3, size, size)
        per = (
            count_flops(lambda x=x: methods.activation_maps(net, x, cfg.method))
            if cfg.method == "cam"
            else count_flops(lambda x=x: net(x))
        )
        flops += per * (2 if cfg.flip else 1)
    return {
        "images": len(pairs),
        "wall_s": wall,
        "views_per_image": len(cfg.scales) * (2 if cfg.flip else 1),
        "flops": {"classifier, all views (per image)": flops},
    }


def report(name: str, res: dict[str, Any], timers: Timers, steps: list[str], rate_fp32: float) -> list[str]:
    n = max(res["images"], 1)
    lines = [
        f"## {name}: {res['images']} images, {res['wall_s'] / n:.3f} s/image ({n / res['wall_s']:.2f} images/s)",
        "",
        "| step | s/image | share | calls/image |",
        "|---|---|---|---|",
    ]
    children = {"decode+upsample": ["prompt decoding"], "measures": []}
    for step in steps:
        t = timers.total.get(step, 0.0)
        if step in timers.calls:  # a parent's self time (not called at all: nothing to subtract from)
            t -= sum(timers.total.get(c, 0.0) for c in children.get(step, []))
        label = "upsample (logits -> masks)" if step == "decode+upsample" else step
        lines.append(f"| {label} | {t / n:.4f} | {t / res['wall_s']:.1%} | {timers.calls.get(step, 0) / n:.1f} |")
    for what, flops in res["flops"].items():
        limit = flops / (rate_fp32 * 1e9)
        lines.append(f"\n{what}: {flops / 1e9:.2f} GFLOP = {limit:.3f} s at the measured fp32 matmul rate")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--stage", choices=("prompt_seg", "cam", "both"), default="both")
    ap.add_argument("--bf16", action="store_true", help="prompt_seg encoder under bf16 autocast")
    ap.add_argument("--cam-batch", type=int, default=8)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    info = machine()
    rates = {"fp32": matmul_rate(torch.float32)}
    if {"avx512_bf16", "amx_bf16"} & set(info["features"]):
        rates["bf16"] = matmul_rate(torch.bfloat16)
    lines = [f"machine: {info}", "matmul rate: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items()), ""]
    pairs = frames(args.images)
    out: dict[str, Any] = {"machine": info, "matmul_gflops": rates, "command": " ".join(sys.argv)}
    if args.stage in ("prompt_seg", "both"):
        timers = Timers()
        res = profile_prompt_seg(pairs, timers, args.bf16)
        steps = [
            "decode",
            "preprocess",
            "encoder",
            "prompt decoding",
            "decode+upsample",
            "upsample",
            "candidates",
            "clean-up",
            "measures",
            "consensus",
            "png",
        ]
        lines += report("prompt_seg", res, timers, steps, rates["fp32"])
        out["prompt_seg"] = {**res, "steps": dict(timers.total), "calls": dict(timers.calls)}
    if args.stage in ("cam", "both"):
        timers = Timers()
        res = profile_cam(pairs, timers, args.cam_batch)
        lines += ["", *report("cam", res, timers, ["decode", "to_input", "forward passes", "boxes"], rates["fp32"])]
        out["cam"] = {**res, "steps": dict(timers.total), "calls": dict(timers.calls)}
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
