"""CLI start-up: wall time and peak RSS of ``endoked --help`` and ``endoked extract --help``.

Runs each command ``--repeat`` times in fresh interpreters (alternating between the source trees given, so a
baseline and the current tree see the same machine load) and prints medians.

    python benchmarks/bench_startup.py --tree src --tree /path/to/baseline/src --repeat 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["extract", "--help"])


def run_once(src: str, args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``python -m endoked ARGS`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": src}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "endoked", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN holds the largest child so far; main() measures each run in a fresh process.
    return wall, max(peak, before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", required=True, help="a source tree (the folder holding endoked/)")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print("tree\tcommand\tmedian wall s\tpeak RSS MiB")
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(a.repeat):
        for tree in a.tree:
            for cmd in COMMANDS:
                # a fresh measuring process per run, so RUSAGE_CHILDREN's maximum belongs to this run alone
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        "import sys; sys.path.insert(0, 'benchmarks'); import bench_startup as b; "
                        f"w, m = b.run_once({tree!r}, {cmd!r}); print(w, m)",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
                results.setdefault((tree, " ".join(cmd)), []).append((float(out[0]), float(out[1])))
    for (tree, cmd), runs in results.items():
        print(
            f"{tree}\tendoked {cmd}\t{statistics.median(r[0] for r in runs):.2f}\t"
            f"{statistics.median(r[1] for r in runs):.0f}"
        )


if __name__ == "__main__":
    main()
