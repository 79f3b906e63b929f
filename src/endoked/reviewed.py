"""Reviewer decisions on pseudo labels: the SQLite store in the run folder and the one helper that applies them.

The store is ``<run>/review/decisions.sqlite`` (WAL mode, so several pages writing at once lose nothing). A
decision is one of ``accept``, ``reject`` or ``fix`` for an image (``fix`` carries a new mask PNG relative to the
run folder), or ``label`` for an exam (a corrected report field such as ``polyp`` or ``polyp_count``). The latest
decision per image (or per exam and field) wins. :func:`apply_decisions` is what refinement and export call:
rejected masks leave the pool, fixed ones replace the automatic mask.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_NAME = "review/decisions.sqlite"
ACTIONS = ("accept", "reject", "fix", "label")
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


def apply_decisions(run_root: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pseudo-label rows with reviewer decisions applied: rejected rows leave, fixed rows get the reviewed mask.

    Args:
        run_root: the run folder.
        rows: rows of a pseudo-label table (``exam_id``, ``image``, ``mask`` ...).

    Returns:
        New rows; a reviewed row carries ``source="reviewed"`` and ``reviewed=<action>``.
    """
    decisions = latest_image_decisions(run_root)
    if not decisions:
        return rows
    out: list[dict[str, Any]] = []
    for row in rows:
        d = decisions.get((str(row.get("exam_id")), str(row.get("image"))))
        if d is None:
            out.append(row)
        elif d["action"] == "reject":
            continue
        elif d["action"] == "fix":
            out.append({**row, "mask": d["mask_after"], "source": "reviewed", "score": 1.0})
        else:
            out.append({**row, "source": "reviewed", "score": 1.0})
    return out


def export_table(run_root: Path) -> Path:
    """Write ``review/decisions.parquet`` (every decision) atomically; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = all_decisions(run_root)
    cols = ("id", "exam_id", "image", "action", "reviewer", "at", "mask_before", "mask_after", "field", "value")
    table = pa.table(
        {c: [r[c] for r in rows] for c in cols},
        schema=pa.schema([("id", pa.int64())] + [(c, pa.string()) for c in cols[1:]]),
    )
    path = Path(run_root) / "review" / "decisions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path
