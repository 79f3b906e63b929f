"""Output of evaluation results: one text or Markdown table, JSON, per-image CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from endoked import __version__
from endoked.eval.config import EvalConfig
from endoked.eval.folder import SetResult
from endoked.io import atomic_write_json, atomic_write_text

#: (metric key, column header) of the printed table.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mean_dice", "mDice"),
    ("mean_iou", "mIoU"),
    ("max_dice", "maxDice"),
    ("dice_05", "Dice@.5"),
    ("iou_05", "IoU@.5"),
    ("wf_beta", "wFb"),
    ("s_alpha", "Sa"),
    ("mean_e", "meanEm"),
    ("max_e", "maxEm"),
    ("adaptive_e", "adpEm"),
    ("mae", "MAE"),
)
CSV_FIELDS: tuple[str, ...] = (
    "set",
    "method",
    "name",
    "missing",
    "resized",
    "dice",
    "iou",
    "max_dice",
    "dice_05",
    "iou_05",
    "wf_beta",
    "s_alpha",
    "mean_e",
    "max_e",
    "adaptive_e",
    "mae",
    "tp_05",
    "fp_05",
    "fn_05",
    "tn_05",
    "n_fg",
    "height",
    "width",
)
REPORT_COLUMNS = COLUMNS
"""The metric columns of the eval tables, ``(metric key, heading)``, as other packages import them."""


def _fmt(value: float | int) -> str:
    return "nan" if isinstance(value, float) and math.isnan(value) else f"{value:.3f}"


def table_rows(results: Sequence[SetResult]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (strings, 3 decimals) of the results table."""
    with_method = any(r.method for r in results)
    header = ["set", *(["method"] if with_method else []), "n", *(h for _, h in COLUMNS)]
    rows = []
    for r in results:
        n = str(r.metrics["n"]) + (f" ({r.metrics['n_missing']} missing)" if r.metrics["n_missing"] else "")
        rows.append([r.set, *([r.method] if with_method else []), n, *(_fmt(r.metrics[k]) for k, _ in COLUMNS)])
    return header, rows


def format_table(results: Sequence[SetResult], markdown: bool = False) -> str:
    """One table for all (set, method) results: aligned plain text, or a Markdown pipe table."""
    header, rows = table_rows(results)
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    left = {0, header.index("method")} if "method" in header else {0}

    def fmt_row(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([fmt_row(header), "  ".join("-" * w for w in widths), *map(fmt_row, rows)]) + "\n"


def results_json(results: Sequence[SetResult], config: EvalConfig) -> dict[str, Any]:
    """JSON document: version, config, and per (set, method) metrics and mean curves."""
    return {
        "endoked_version": __version__,
        "config": config.model_dump(mode="json"),
        "results": [r.to_dict() for r in results],
    }


def write_json(path: str | Path, results: Sequence[SetResult], config: EvalConfig) -> Path:
    """Write :func:`results_json` atomically."""
    return atomic_write_json(path, results_json(results, config))


def write_csv(path: str | Path, results: Sequence[SetResult]) -> Path:
    """Write one row per (set, method, image) with the per-image figures, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in results:
        for rec in r.images:
            writer.writerow({"set": r.set, "method": r.method, **rec})
    return atomic_write_text(path, buf.getvalue())
