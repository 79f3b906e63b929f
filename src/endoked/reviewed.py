"""Reviewer decisions on pseudo labels: the SQLite store in the run folder and the one helper that applies them.

The store is ``<run>/review/decisions.sqlite`` (WAL mode, so several pages writing at once lose nothing). A
decision is one of ``accept``, ``reject`` or ``fix`` for an image (``fix`` carries a new mask PNG relative to the
run folder), or ``label`` for an exam (a corrected report field such as ``polyp`` or ``polyp_count``). The latest
decision per image (or per exam and field) wins. :func:`apply_decisions` is what refinement and export call:
rejected masks leave the pool, fixed ones replace the automatic mask; :func:`apply_label_corrections` is what
the mil stage calls on the report labels. :func:`inputs_hash` is the part of a stage's ledger fingerprint that
makes a new decision re-run the stages it affects, and :func:`summary` gives the run report its figures.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_NAME = "review/decisions.sqlite"
TABLE_NAME = "review/decisions"
ACTIONS = ("accept", "reject", "fix", "label")
# Report fields a reviewer may correct, and the values each takes (None: any non-negative integer or null).
LABEL_FIELDS: dict[str, tuple[str, ...] | None] = {"polyp": ("present", "absent", "uncertain"), "polyp_count": None}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  exam_id TEXT NOT NULL, image TEXT NOT NULL DEFAULT '', action TEXT NOT NULL,
  reviewer TEXT NOT NULL, at TEXT NOT NULL,
  mask_before TEXT, mask_after TEXT, field TEXT, value TEXT
)"""


def db_path(run_root: Path) -> Path:
    """Where a run folder keeps its decisions."""
    return Path(run_root) / DB_NAME


def connect(run_root: Path) -> sqlite3.Connection:
    """Open (creating) the decisions store in WAL mode."""
    path = db_path(run_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(_SCHEMA)
    return con


def record(
    run_root: Path,
    *,
    exam_id: str,
    image: str,
    action: str,
    reviewer: str,
    mask_before: str | None = None,
    mask_after: str | None = None,
    field: str | None = None,
    value: Any = None,
) -> int:
    """Append one decision; returns its id. Raises ValueError on an unknown action."""
    if action not in ACTIONS:
        raise ValueError(f"unknown review action {action!r}; choose one of {', '.join(ACTIONS)}")
    if action == "fix" and not mask_after:
        raise ValueError("a fix decision needs mask_after (the corrected mask)")
    con = connect(run_root)
    try:
        cur = con.execute(
            "INSERT INTO decisions (exam_id, image, action, reviewer, at, mask_before, mask_after, field, value) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                exam_id,
                image,
                action,
                reviewer,
                datetime.now(UTC).isoformat(timespec="seconds"),
                mask_before,
                mask_after,
                field,
                None if value is None else json.dumps(value),
            ),
        )
        return int(cur.lastrowid or 0)
    finally:
        con.close()


def all_decisions(run_root: Path) -> list[dict[str, Any]]:
    """Every decision in order (empty when the run has none)."""
    if not db_path(run_root).is_file():
        return []
    con = connect(run_root)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM decisions ORDER BY id")]
    finally:
        con.close()


def latest_image_decisions(run_root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The last accept/reject/fix per (exam_id, image)."""
    return {(d["exam_id"], d["image"]): d for d in all_decisions(run_root) if d["action"] != "label"}


def label_corrections(run_root: Path) -> dict[str, dict[str, Any]]:
    """Corrected report fields per exam: ``{exam_id: {field: value}}`` (the latest per field)."""
    out: dict[str, dict[str, Any]] = {}
    for d in all_decisions(run_root):
        if d["action"] == "label" and d["field"]:
            out.setdefault(d["exam_id"], {})[d["field"]] = json.loads(d["value"]) if d["value"] else None
    return out


def decisions_hash(run_root: Path) -> str:
    """A hash of all decisions (for a stage's input fingerprint); ``""`` when there are none."""
    rows = all_decisions(run_root)
    if not rows:
        return ""
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def check_label_value(field: str, value: Any) -> Any:
    """``value`` when it is a valid correction of report field ``field``; raises ValueError otherwise."""
    if field not in LABEL_FIELDS:
        raise ValueError(f"report field {field!r} cannot be corrected; choose one of {', '.join(LABEL_FIELDS)}")
    allowed = LABEL_FIELDS[field]
    if allowed is not None and value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}, not {value!r}")
    if allowed is None and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{field} must be a non-negative integer or null, not {value!r}")
    return value


def inputs_hash(run_root: Path, kind: str) -> str:
    """A hash of the decisions in effect of one kind, for a stage's ledger fingerprint; ``""`` when there are none.

    Args:
        run_root: the run folder.
        kind: ``"images"`` (the latest accept/reject/fix per image: what seg and export read) or ``"labels"``
            (the corrected report fields: what mil reads).

    Only what a stage reads enters the hash, so a decision repeated by another reviewer re-runs nothing.
    """
    if kind == "images":
        state: Any = sorted(
            [e, i, d["action"], d["mask_after"] or ""] for (e, i), d in latest_image_decisions(run_root).items()
        )
    elif kind == "labels":
        state = label_corrections(run_root)
    else:
        raise ValueError(f"unknown decision kind {kind!r}; choose images or labels")
    if not state:
        return ""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def apply_decisions(run_root: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pseudo-label rows with reviewer decisions applied: rejected rows leave, fixed rows get the reviewed mask.

    Args:
        run_root: the run folder.
        rows: rows of a pseudo-label table (``exam_id``, ``image``, ``mask`` ...).

    Returns:
        New rows; a reviewed row carries ``source="reviewed"`` and ``score=1.0``. A fix of an image that had no
        automatic mask is appended (a reviewer may draw the mask the pipeline missed).
    """
    decisions = latest_image_decisions(run_root)
    if not decisions:
        return rows
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (str(row.get("exam_id")), str(row.get("image")))
        seen.add(key)
        d = decisions.get(key)
        if d is None:
            out.append(row)
        elif d["action"] == "reject":
            continue
        elif d["action"] == "fix":
            out.append({**row, "mask": d["mask_after"], "source": "reviewed", "score": 1.0})
        else:
            out.append({**row, "source": "reviewed", "score": 1.0})
    for (exam_id, image), d in decisions.items():
        if d["action"] == "fix" and (exam_id, image) not in seen:
            out.append(
                {"exam_id": exam_id, "image": image, "mask": d["mask_after"], "source": "reviewed", "score": 1.0}
            )
    return out


def reviewed_keys(run_root: Path) -> dict[str, str]:
    """``"exam_id/image" -> action`` of every image whose latest decision is accept, reject or fix."""
    return {f"{e}/{i}": str(d["action"]) for (e, i), d in latest_image_decisions(run_root).items()}


def apply_label_corrections(run_root: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``extract/labels`` rows with the reviewers' corrections of ``polyp``/``polyp_count`` applied.

    A corrected row carries ``reviewed=True``; correcting ``polyp`` to ``absent`` also sets a count of 0 unless the
    count was corrected too.
    """
    fixes = label_corrections(run_root)
    if not fixes:
        return rows
    out = []
    for row in rows:
        fix = fixes.get(str(row.get("exam_id")))
        if not fix:
            out.append(row)
            continue
        new = {**row, **{k: v for k, v in fix.items() if k in LABEL_FIELDS}, "reviewed": True}
        if fix.get("polyp") == "absent" and "polyp_count" not in fix:
            new["polyp_count"] = 0
        out.append(new)
    return out


def summary(
    run_root: Path,
    machine_labels: dict[str, dict[str, Any]] | None = None,
    mask_reader: Any = None,
) -> dict[str, Any]:
    """Counts of the decisions and the agreement between reviewers and the machine (for the run report).

    Args:
        run_root: the run folder.
        machine_labels: ``extract/labels`` keyed by exam id, to count corrections that changed a field.
        mask_reader: ``path -> (H, W) bool``; with it, the mean Dice between the automatic and the fixed masks.

    Returns:
        ``decisions``, ``reviewers``, ``images_reviewed``, ``accepted``, ``rejected``, ``fixed``,
        ``machine_agreement`` (accepted / images reviewed), ``fix_dice`` (mean, or None), ``exams_corrected``,
        ``fields_changed``, ``images_multi_reviewer`` and ``reviewer_agreement`` (the share of images reviewed by
        several people whose latest actions agree; None when no image was).
    """
    rows = all_decisions(run_root)
    latest = latest_image_decisions(run_root)
    actions = [d["action"] for d in latest.values()]
    per_image: dict[tuple[str, str], dict[str, str]] = {}
    for d in rows:
        if d["action"] != "label":
            per_image.setdefault((d["exam_id"], d["image"]), {})[d["reviewer"]] = d["action"]
    multi = [v for v in per_image.values() if len(v) > 1]
    dices = []
    if mask_reader is not None:
        import numpy as np

        root = Path(run_root)
        for d in latest.values():
            if d["action"] == "fix" and d["mask_before"] and d["mask_after"]:
                try:
                    a, b = mask_reader(root / d["mask_before"]), mask_reader(root / d["mask_after"])
                except (OSError, ValueError):
                    continue
                if a.shape == b.shape:
                    denom = int(a.sum()) + int(b.sum())
                    dices.append(1.0 if denom == 0 else 2.0 * float(np.logical_and(a, b).sum()) / denom)
    fixes = label_corrections(run_root)
    changed = 0
    for exam_id, fields in fixes.items():
        machine = (machine_labels or {}).get(exam_id, {})
        changed += sum(1 for k, v in fields.items() if machine.get(k) != v)
    n = len(latest)
    return {
        "decisions": len(rows),
        "reviewers": sorted({str(d["reviewer"]) for d in rows}),
        "images_reviewed": n,
        "accepted": actions.count("accept"),
        "rejected": actions.count("reject"),
        "fixed": actions.count("fix"),
        "machine_agreement": actions.count("accept") / n if n else None,
        "fix_dice": sum(dices) / len(dices) if dices else None,
        "exams_corrected": len(fixes),
        "fields_changed": changed,
        "images_multi_reviewer": len(multi),
        "reviewer_agreement": sum(1 for v in multi if len(set(v.values())) == 1) / len(multi) if multi else None,
    }


def export_table(run_root: Path) -> Path:
    """Write ``review/decisions.parquet`` (every decision; table ``review/decisions`` of the run-folder contract)
    atomically; returns its path."""
    from endoked import tables

    path = Path(run_root) / "review" / "decisions.parquet"
    return tables.write(path, TABLE_NAME, all_decisions(run_root))
