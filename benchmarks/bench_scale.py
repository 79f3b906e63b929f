"""Scale benchmark: memory per stage on a large archive of small frames, and batch-stage throughput per executor.

``memory``: writes an archive of ``--images`` small frames (``--size`` px, 10 a exam, random JPEGs and short
reports; fast enough for 10^5 frames), then runs ingest, extract and MIL inference, each in its own process, and
records wall time, images/s and peak RSS of that process (``os.wait4``; Ray or torch worker processes would be
children of it and are not counted). MIL inference uses a randomly initialised model (the speed and memory of
inference do not depend on the weights) through the batch driver, as ``endoked mil score`` would.

``throughput``: a small ``endoked synth`` archive run up to prompt_seg with the local executor, then with Ray
at 1 and at 2 actors (one Ray cluster, started here, shared by the runs so its start-up is not counted); the
extract, cam and prompt_seg stage times come from each run's ledger.

Usage::

    python benchmarks/bench_scale.py memory --out /tmp/scale_mem --images 10000
    python benchmarks/bench_scale.py throughput --out /tmp/scale_tp --exams 8
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
REPORTS = (
    "Colonoscopy to the cecum. A 6 mm sessile polyp in the sigmoid colon was removed with a snare.",
    "Colonoscopy to the cecum. No polyps or masses seen. Good preparation.",
    "Colonoscopy to the cecum. Two polyps, 4 mm and 8 mm, in the transverse colon; both resected.",
    "Colonoscopy to the cecum. Normal mucosa throughout; no polyp found.",
)


def write_archive(root: Path, images: int, size: int, per_exam: int = 10, seed: int = 0) -> Path:
    """A manifest of ``images`` random ``size`` px JPEG frames, ``per_exam`` to an exam (all distinct)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    with (root / "manifest.jsonl").open("w", encoding="utf-8") as fh:
        for e in range(-(-images // per_exam)):
            exam = f"E{e:07d}"
            (root / exam).mkdir(exist_ok=True)
            names = []
            for k in range(min(per_exam, images - e * per_exam)):
                arr = base.copy()
                arr[: size // 4, : size // 4] = rng.integers(0, 255, 3, dtype=np.uint8)  # distinct bytes
                arr[0, :8] = np.frombuffer((e * per_exam + k).to_bytes(8, "little"), dtype=np.uint8)[:, None]
                buf = io.BytesIO()
                Image.fromarray(arr).save(buf, format="JPEG", quality=90)
                name = f"{exam}/{k:03d}.jpg"
                (root / name).write_bytes(buf.getvalue())
                names.append(name)
            fh.write(json.dumps({"exam_id": exam, "report": REPORTS[e % len(REPORTS)], "images": names}) + "\n")
    return root / "manifest.jsonl"


def _child(args: list[str]) -> tuple[float, float, str]:
    """Run ``python args`` from the repository root; ``(wall seconds, peak RSS MiB of that process, stdout)``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read() if proc.stdout is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{args[:3]} failed with exit {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, stdout  # ru_maxrss: KiB on Linux


MIL_SCORE = """
import sys, time
from pathlib import Path
from endoked import tables
from endoked.batching import run_batches
from endoked.mil import api
from endoked.mil.checkpoint import save_model
from endoked.mil.config import MilConfig
from endoked.mil.encoder import build_encoder
from endoked.mil.model import MilHeads

run, size = Path(sys.argv[1]), int(sys.argv[2])
cfg = MilConfig(backbone="tf_efficientnet_lite0", pretrained=False, image_size=size, trainable_blocks=0)
encoder = build_encoder(cfg)
heads = MilHeads(encoder.num_features, cfg.hidden_dim, cfg.attention_dim, cfg.dropout)
model = run / "bench_mil" / "model.pt"
model.parent.mkdir(parents=True, exist_ok=True)
save_model(model, heads, encoder, cfg, {"random": True})
rows = [{"exam_id": r["exam_id"], "image": r["image"], "path": r["path"]}
        for r in tables.read(run / "ingest" / "images.parquet", "ingest/images").to_pylist()]
t0 = time.perf_counter()
res = run_batches(rows, setup=lambda: api.setup(model), process_batch=api.process_batch,
                  outputs=["mil/image_scores"], chunk_dir=run / "bench_mil" / "chunks", run_root=run,
                  chunk_size=512, desc="mil score", progress=False, collect=False)
print(sum(len(c) for c in res.chunk_rows("mil/image_scores")), time.perf_counter() - t0)
"""


def memory(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    t0 = time.perf_counter()
    manifest = out / "archive" / "manifest.jsonl"
    exams = -(-args.images // 10)
    if not manifest.is_file() or sum(1 for _ in manifest.open(encoding="utf-8")) != exams:  # else: resumed
        manifest = write_archive(out / "archive", args.images, args.size)
    result: dict[str, Any] = {"images": args.images, "size": args.size, "archive_s": time.perf_counter() - t0}
    result["mil_size"] = args.mil_size
    run = out / "run"
    base = ["-m", "endoked", "run", "--out", str(run), "--archive", str(manifest), "--profile", "cpu-small"]
    base += ["--no-check"]
    for stage in ("ingest", "extract"):
        wall, rss, _ = _child([*base, "--to", stage])
        secs = float(json.loads((run / "ledger.json").read_text())["stages"][stage]["seconds"])
        result[stage] = {"process_s": wall, "stage_s": secs, "images_per_s": args.images / secs, "peak_rss_mib": rss}
        (out / "memory.partial.json").write_text(json.dumps(result, indent=2))  # recorded as it goes
    result["extract"]["reports_per_s"] = -(-args.images // 10) / result["extract"]["stage_s"]
    wall, rss, stdout = _child(["-c", MIL_SCORE, str(run), str(args.mil_size)])
    secs = float(stdout.split()[-1])
    result["mil_inference"] = {"process_s": wall, "stage_s": secs, "images_per_s": args.images / secs}
    result["mil_inference"]["peak_rss_mib"] = rss
    return result


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    out: Path = args.out
    arch = out / "archive"
    if not (arch / "manifest.jsonl").is_file():
        _child(["-m", "endoked", "synth", "--out", str(arch), "--exams", str(args.exams), "--size", "128"])
    sets = ["mil.epochs=2", "mil.image_size=128", "cam.epochs=1", "cam.image_size=128", "cam.scales=[1.0]"]
    sets += ["cam.chunk_size=1", "prompt_seg.chunk_size=1", "extract.chunk_size=1"]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", configure_logging=False)
    address = str(ray.get_runtime_context().gcs_address)
    result: dict[str, Any] = {}
    try:
        for name, extra in (
            ("local", ["--executor", "local"]),
            ("ray_1", ["--executor", "ray", "--ray-address", address, "--set", "executor.actors=1"]),
            ("ray_2", ["--executor", "ray", "--ray-address", address, "--set", "executor.actors=2"]),
        ):
            run = out / name
            cmd = ["-m", "endoked", "run", "--out", str(run), "--archive", str(arch), "--profile", "cpu-small"]
            cmd += ["--to", "prompt_seg", "--no-check", "--overwrite", *extra]
            cmd += [a for s in sets for a in ("--set", s)]
            _child(cmd)  # stage seconds from the ledger
            stages = json.loads((run / "ledger.json").read_text())["stages"]
            result[name] = {}
            for stage, key in (("extract", "n"), ("cam", "images"), ("prompt_seg", "images")):
                counts = stages[stage].get("counts", {})
                secs = float(stages[stage]["seconds"])
                n = int(counts.get(key, 0))
                result[name][stage] = {"items": n, "seconds": secs, "items_per_s": n / secs if secs else None}
    finally:
        ray.shutdown()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--images", type=int, default=10_000)
    m.add_argument("--size", type=int, default=64)
    m.add_argument("--mil-size", type=int, default=64, help="MIL input side (random model)")
    t = sub.add_parser("throughput")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--exams", type=int, default=8)
    args = ap.parse_args(argv)
    result = memory(args) if args.cmd == "memory" else throughput(args)
    print(json.dumps(result, indent=2))
    (args.out / f"{args.cmd}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
