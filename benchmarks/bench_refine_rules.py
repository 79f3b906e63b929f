"""Replay truth-free refinement rules on finished runs: which rule would have kept the pool's masks best?

A refinement round writes one record per image (``seg/roundN/records.jsonl``): the network's filtered
prediction (the candidate), its agreement with the previous mask (``dice_prev``), its score, and, when the
archive has truth, the truth Dice of the previous mask and of the candidate. For round 1, whose candidates do
not depend on the update rule, every rule can be replayed exactly from these records: the pool's truth Dice
after the round is the mean over the pool's images of the candidate's truth Dice where the rule takes it, else
the previous mask's. The gate figure is the validation meanDice of the model that made the candidates (its
held-out pool images, scored against their pseudo masks: no truth), from ``seg/round0/summary.json``.

Usage::

    python benchmarks/bench_refine_rules.py RUN [RUN ...]

Prints one Markdown table: per run, the pool before, each rule's pool after, the gate figure, and each rule under
the round gate ``refine.min_val_dice`` (``--gates``: the rule where the gate figure reaches it, else no change).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Record = dict[str, Any]
RULES: dict[str, Callable[[Record], bool]] = {
    "always": lambda r: True,
    "agree 0.7": lambda r: r.get("dice_prev") is not None and r["dice_prev"] >= 0.7,
    "agree 0.8": lambda r: r.get("dice_prev") is not None and r["dice_prev"] >= 0.8,
    "score 0.8": lambda r: r["score"] >= 0.8,
    "never": lambda r: False,
}


def pool_after(records: Sequence[Record], rule: Callable[[Record], bool]) -> list[float]:
    """Per image of the pool (images that had a mask before the round and truth), its truth Dice after ``rule``."""
    return [
        r["dice_truth_candidate"] if r.get("dice_truth_candidate") is not None and rule(r) else r["dice_truth_prev"]
        for r in records
        if not r.get("new") and r.get("dice_truth_prev") is not None
    ]


def replay(records: Sequence[Record], rule: Callable[[Record], bool]) -> float:
    """Truth Dice of the pool (images that had a mask before the round and truth) after applying ``rule``."""
    out = pool_after(records, rule)
    return float(np.mean(out)) if out else float("nan")


def added(records: Sequence[Record]) -> list[float]:
    """Truth Dice of the images the round added to the pool (their masks are the network's; a gated round adds
    none). Polyp-free frames that joined have no truth mask and are not counted."""
    return [r["dice_truth"] for r in records if r.get("new") and r["kept"] and r.get("dice_truth") is not None]


def run_figures(run: Path) -> dict[str, Any] | None:
    rec_path = run / "seg" / "round1" / "records.jsonl"
    summary = run / "seg" / "round0" / "summary.json"
    if not rec_path.is_file() or not summary.is_file():
        return None
    records = [json.loads(line) for line in rec_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    pool = [r for r in records if not r.get("new") and r.get("dice_truth_prev") is not None]
    if not pool:
        return None
    val = json.loads(summary.read_text(encoding="utf-8")).get("best_val") or {}
    return {
        "run": str(run),
        "pool": len(pool),
        "val_mean_dice": float(val.get("mean_dice", float("nan"))),
        "before": replay(records, RULES["never"]),
        "oracle": float(np.mean([max(r["dice_truth_prev"], r.get("dice_truth_candidate") or 0.0) for r in pool])),
        **{name: replay(records, rule) for name, rule in RULES.items()},
        "added": len(added(records)),
        "always, with added": float(np.mean([*pool_after(records, RULES["always"]), *added(records)])),
    }


def gated(fig: dict[str, Any], gate: float, rule: str) -> float:
    """The pool after the round under ``refine.min_val_dice = gate``: ``rule`` where the round-0 network's
    validation meanDice reaches the gate, else the pool before (a gated round changes no mask)."""
    return float(fig[rule]) if fig["val_mean_dice"] >= gate else float(fig["before"])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--gates", nargs="*", type=float, default=[0.7, 0.8], help="refine.min_val_dice values to replay")
    args = ap.parse_args(argv)
    rows = [f for f in (run_figures(r) for r in args.runs) if f is not None]
    names = [n for n in RULES if n != "never"]
    gates = [(g, r) for g in args.gates for r in ("always", "agree 0.8")]
    print(
        "| run | pool (truth) | round-0 val meanDice (pseudo masks) | before | "
        + " | ".join(names + [f"gate {g} + {r}" for g, r in gates])
        + " | best possible | added (truth) | always, with added |"
    )
    print("|" + "---|" * (7 + len(names) + len(gates)))
    for f in rows:
        cells = " | ".join([f"{f[n]:.3f}" for n in names] + [f"{gated(f, g, r):.3f}" for g, r in gates])
        print(
            f"| {f['run']} | {f['pool']} | {f['val_mean_dice']:.3f} | {f['before']:.3f} | {cells} | "
            f"{f['oracle']:.3f} | {f['added']} | {f['always, with added']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
