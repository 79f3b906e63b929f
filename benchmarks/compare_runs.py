"""Compare the tables and stage figures of two run folders (e.g. the same seeded run before and after a change).

Every Parquet table under each stage folder is compared as a set of rows: same columns, same row count, and
equal values once both tables are sorted by all their columns; floats may differ by ``--atol`` (default 1e-6,
for a changed summation order). Mask and CAM files are compared by content hash where both runs list them. The
ledger's per-stage counts (the stage figures) are compared too; timings are ignored.

Usage::

    python benchmarks/compare_runs.py RUN_BEFORE RUN_AFTER [--atol 1e-6] [--ignore TABLE:COLUMN ...]
    python benchmarks/compare_runs.py RUN_BEFORE RUN_AFTER --masks   # agreement of the pseudo masks only

Exit status 0 when everything matches, 1 otherwise (each difference is printed). ``--masks`` compares changes
that alter masks on purpose: which images got a pseudo mask in either run, and the Dice between the two runs'
masks where both have one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

IGNORED_COUNT_KEYS = {"seconds", "wall_s", "images_per_s", "items_per_s"}


def _norm(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return v


def _sort_key(row: dict[str, Any], cols: list[str]) -> tuple[str, ...]:
    return tuple(repr(_norm(row[c])) if not isinstance(row[c], float) else f"{row[c]:.4f}" for c in cols)


def _values_equal(a: Any, b: Any, atol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return abs(a - b) <= atol
    return bool(a == b)


def _path_independent(v: Any, root: Path) -> Any:
    """Absolute paths inside a run folder, or beside it (an archive written next to it, as the demo does),
    compare by their part below the run folder's parent."""
    if isinstance(v, str) and v.startswith(str(root.parent)):
        return v[len(str(root.parent)) :]
    return v


def compare_table(
    a: Path, b: Path, root_a: Path, root_b: Path, atol: float, ignore: frozenset[str] = frozenset()
) -> list[str]:
    ta, tb = pq.read_table(a), pq.read_table(b)
    name = str(a.relative_to(root_a))
    drop = [c.split(":", 1)[1] for c in ignore if c.split(":", 1)[0] == name]
    ta, tb = (
        ta.drop_columns([c for c in drop if c in ta.schema.names]),
        tb.drop_columns([c for c in drop if c in tb.schema.names]),
    )
    if ta.schema.names != tb.schema.names:
        return [f"{name}: columns differ: {ta.schema.names} vs {tb.schema.names}"]
    if ta.num_rows != tb.num_rows:
        return [f"{name}: {ta.num_rows} rows vs {tb.num_rows}"]
    cols = ta.schema.names
    ra = [{k: _path_independent(v, root_a) for k, v in r.items()} for r in ta.to_pylist()]
    rb = [{k: _path_independent(v, root_b) for k, v in r.items()} for r in tb.to_pylist()]
    ra.sort(key=lambda r: _sort_key(r, cols))
    rb.sort(key=lambda r: _sort_key(r, cols))
    out = []
    for i, (x, y) in enumerate(zip(ra, rb, strict=True)):
        bad = [c for c in cols if not _values_equal(x[c], y[c], atol)]
        if bad:
            out.append(f"{name}: row {i} differs in {bad}: {[x[c] for c in bad]} vs {[y[c] for c in bad]}")
            if len(out) >= 5:
                out.append(f"{name}: (further differences not shown)")
                break
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare_files(root_a: Path, root_b: Path, pattern: str) -> list[str]:
    fa = {p.relative_to(root_a): p for p in root_a.glob(pattern)}
    fb = {p.relative_to(root_b): p for p in root_b.glob(pattern)}
    out = [f"{k}: only in {root_a if k in fa else root_b}" for k in sorted(set(fa) ^ set(fb))]
    out += [f"{k}: content differs" for k in sorted(set(fa) & set(fb)) if _digest(fa[k]) != _digest(fb[k])]
    return out


def compare_counts(root_a: Path, root_b: Path, atol: float) -> list[str]:
    la = json.loads((root_a / "ledger.json").read_text())
    lb = json.loads((root_b / "ledger.json").read_text())
    out = []
    for stage in sorted(set(la.get("stages", la)) | set(lb.get("stages", lb))):
        ca = (la.get("stages", la).get(stage) or {}).get("counts", {})
        cb = (lb.get("stages", lb).get(stage) or {}).get("counts", {})
        for k in sorted(set(ca) | set(cb)):
            if k in IGNORED_COUNT_KEYS:
                continue
            va, vb = ca.get(k), cb.get(k)
            if isinstance(va, float | int) and isinstance(vb, float | int) and not isinstance(va, bool):
                same = _values_equal(float(va), float(vb), atol)
            else:
                same = va == vb
            if not same:
                out.append(f"ledger {stage}.{k}: {va!r} vs {vb!r}")
    return out


def compare_runs(
    root_a: Path, root_b: Path, atol: float = 1e-6, ignore: frozenset[str] = frozenset()
) -> tuple[int, list[str]]:
    """``(number of tables compared, differences)`` between run folders ``root_a`` and ``root_b``."""
    tables_a = sorted(p.relative_to(root_a) for p in root_a.glob("*/*.parquet"))
    tables_b = sorted(p.relative_to(root_b) for p in root_b.glob("*/*.parquet"))
    diffs = [f"{t}: only in {root_a if t in tables_a else root_b}" for t in sorted(set(tables_a) ^ set(tables_b))]
    common = sorted(set(tables_a) & set(tables_b))
    for t in common:
        diffs += compare_table(root_a / t, root_b / t, root_a, root_b, atol, ignore)
    diffs += compare_files(root_a, root_b, "prompt_seg/masks/**/*.png")
    diffs += compare_counts(root_a, root_b, atol)
    return len(common), diffs


def mask_agreement(root_a: Path, root_b: Path) -> dict[str, Any]:
    """Pseudo masks of two runs: images masked in both / only one, and the mean (min) Dice between the two runs'
    masks on the images masked in both."""
    import numpy as np

    from endoked.imaging import read_mask
    from endoked.scoring import dice

    def masks(root: Path) -> dict[tuple[str, str], str]:
        rows = pq.read_table(root / "prompt_seg" / "pseudo_labels.parquet").to_pylist()
        return {(r["exam_id"], r["image"]): r["mask"] for r in rows}

    ma, mb = masks(root_a), masks(root_b)
    both = sorted(set(ma) & set(mb))
    dices = [dice(read_mask(root_a / ma[key]), read_mask(root_b / mb[key])) for key in both]
    return {
        "masked_both": len(both),
        "only_before": len(set(ma) - set(mb)),
        "only_after": len(set(mb) - set(ma)),
        "same_images": len(both) / max(1, len(set(ma) | set(mb))),
        "mean_dice": float(np.mean(dices)) if dices else float("nan"),
        "min_dice": float(np.min(dices)) if dices else float("nan"),
        "identical": int(sum(d == 1.0 for d in dices)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="TABLE:COLUMN",
        help="leave a column out, e.g. cam/cams.parquet:file (repeatable)",
    )
    ap.add_argument("--masks", action="store_true", help="only the pseudo masks' agreement (see above)")
    args = ap.parse_args(argv)
    if args.masks:
        print(json.dumps(mask_agreement(args.before.resolve(), args.after.resolve()), indent=2))
        return 0
    n, diffs = compare_runs(args.before.resolve(), args.after.resolve(), args.atol, frozenset(args.ignore))
    for d in diffs:
        print(d)
    print(f"{n} tables compared, {len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
