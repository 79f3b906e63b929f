"""Project a run's measured per-image costs to an archive of 10^6 images on one or several nodes.

Reads a finished run's ledger (stage seconds and the items each stage processed), turns each stage into core
seconds per archive image (stage seconds x the cores the run had / the archive's images: a stage that runs on
a subset, such as cam on the MIL-selected images, is charged per archive image), and divides the cost of
``--images`` archive images by the cores of ``--nodes`` nodes of ``--cores-per-node`` cores each. Assumes
what the Ray executor provides for the batch stages: independent actors, each chunk on one, scaling linearly
with cores. This is a CPU projection: GPU actors are much faster per image, so on GPU nodes it is an upper
bound. Training (the MIL and CAM heads, the segmentation network) is charged the same way, which holds for its
data-parallel share only.

Usage::

    python benchmarks/project_scale.py RUN --cores 2 [--images 1000000] [--cores-per-node 64] [--nodes 1 4]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def project(
    ledger: dict[str, dict], archive_images: int, cores: int, images: int, cores_per_node: int, nodes: Sequence[int]
) -> list[dict[str, float | str]]:
    rows: list[dict[str, float | str]] = []
    for stage, entry in ledger.items():
        secs = float(entry.get("seconds") or 0.0)
        if secs <= 0:
            continue
        per_image = secs * cores / archive_images  # core seconds per archive image
        row: dict[str, float | str] = {"stage": stage, "core_s_per_image": per_image}
        for n in nodes:
            row[f"hours_{n}"] = per_image * images / (cores_per_node * n) / 3600
        rows.append(row)
    total: dict[str, float | str] = {"stage": "total"}
    for key in rows[0] if rows else []:
        if key != "stage":
            total[key] = sum(float(r[key]) for r in rows)
    return [*rows, total]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--cores", type=int, required=True, help="cores of the machine the run was measured on")
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--cores-per-node", type=int, default=64)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 4])
    args = ap.parse_args(argv)
    ledger = json.loads((args.run / "ledger.json").read_text(encoding="utf-8"))["stages"]
    archive_images = int(ledger["ingest"]["counts"]["images"])
    rows = project(ledger, archive_images, args.cores, args.images, args.cores_per_node, args.nodes)
    head = ["stage", "core-s per archive image", *(f"{args.images:,} images, {n} node(s): hours" for n in args.nodes)]
    print(f"Measured on {archive_images} archive images ({args.cores} cores); {args.cores_per_node} cores per node\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        cells = [str(r["stage"]), f"{float(r['core_s_per_image']):.3f}"]
        cells += [f"{float(r[f'hours_{n}']):.2f}" for n in args.nodes]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
