"""Per-exam pages of the run report: ``exams/<safe name>.html`` next to ``report.html``.

One page per chosen exam (positives first, then by the highest MIL image score): the report text with its
evidence spans and labels, and every frame with its MIL score, CAM heat map, CAM boxes and pseudo mask.
Exam ids and texts come from the archive and are escaped everywhere; file names are built from a slug of the
id plus a digest of it, so ids such as ``../x``, ``a/b`` or Chinese text give distinct, harmless names.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from markupsafe import Markup

from endoked import tables
from endoked.errors import EndokedError
from endoked.imaging import read_mask
from endoked.io import atomic_write_text, read_jsonl
from endoked.report import DEFAULT_MAX_EXAMS
from endoked.report.figures import overlay, png_data_uri
from endoked.runfolder import RunFolder
from endoked.scoring import Truth

logger = logging.getLogger(__name__)

EXAMS_DIR = "exams"
__all__ = ["DEFAULT_MAX_EXAMS", "safe_name", "write_exam_pages"]
MAX_FRAMES = 24
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(exam_id: str) -> str:
    """A file name for an exam page: ASCII letters, digits, ``_`` and ``-`` from the id (at most 40), then 10
    hex digits of the id's sha256, so distinct ids never share a page and no id can leave the folder."""
    slug = _SLUG.sub("_", exam_id).strip("_")[:40] or "exam"
    return f"{slug}-{hashlib.sha256(exam_id.encode('utf-8')).hexdigest()[:10]}.html"


@dataclass
class ExamData:
    """What the exam pages draw from, read once for all pages."""

    exams: dict[str, dict[str, Any]]
    labels: dict[str, dict[str, Any]]
    rich: dict[str, dict[str, Any]]
    frames: dict[str, list[dict[str, Any]]]
    scores: dict[tuple[str, str], dict[str, Any]]
    boxes: dict[tuple[str, str], list[list[float]]] = field(default_factory=dict)
    masks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    rejected: dict[tuple[str, str], str] = field(default_factory=dict)
    dropped: dict[tuple[str, str], str] = field(default_factory=dict)
    cams: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, run: RunFolder) -> ExamData:
        frames: dict[str, list[dict[str, Any]]] = {}
        for r in tables.finished_rows(run, "ingest/images", "report"):
            frames.setdefault(str(r["exam_id"]), []).append(r)
        rich: dict[str, dict[str, Any]] = {}
        entry = run.entry("extract") or {}
        if "labels_jsonl" in entry.get("outputs", {}):
            try:
                records = read_jsonl(run.output("extract", "labels_jsonl"))
                rich = {str(r.get("id", r.get("exam_id"))): r for r in records}
            except (EndokedError, OSError, ValueError) as exc:
                logger.warning("report: extract/labels_jsonl not read for the exam pages (%s)", exc)

        def key(r: dict[str, Any]) -> tuple[str, str]:
            return str(r["exam_id"]), str(r["image"])

        data = cls(
            exams={str(r["exam_id"]): r for r in tables.finished_rows(run, "ingest/exams", "report")},
            labels={str(r["exam_id"]): r for r in tables.finished_rows(run, "extract/labels", "report")},
            rich=rich,
            frames=frames,
            scores={key(r): r for r in tables.finished_rows(run, "mil/image_scores", "report")},
        )
        for b in tables.finished_rows(run, "cam/boxes", "report"):
            data.boxes.setdefault(key(b), []).append([b["x0"], b["y0"], b["x1"], b["y1"]])
        data.masks = {key(r): r for r in tables.finished_rows(run, "prompt_seg/pseudo_labels", "report")}
        data.rejected = {key(r): str(r["reason"]) for r in tables.finished_rows(run, "prompt_seg/rejected", "report")}
        data.dropped = {key(r): str(r["reason"]) for r in tables.finished_rows(run, "cam/dropped", "report")}
        data.cams = {
            key(r): (str(r["file"]), str(r["key"]))
            for r in tables.finished_rows(run, "cam/cams", "report")
            if r.get("file")
        }
        return data

    def max_score(self, exam_id: str) -> float | None:
        vals = [
            float(s["score"])
            for f in self.frames.get(exam_id, [])
            if (s := self.scores.get((exam_id, str(f["image"])))) is not None and s.get("score") is not None
        ]
        return max(vals) if vals else None

    def chosen(self, max_exams: int) -> list[str]:
        """Up to ``max_exams`` exam ids: report-positive exams first, then by the highest MIL score, then id."""
        ids = sorted(set(self.exams) | set(self.frames))

        def rank(exam_id: str) -> tuple[int, float, str]:
            positive = (self.labels.get(exam_id) or {}).get("polyp") == "present"
            score = self.max_score(exam_id)
            return (0 if positive else 1, -(score if score is not None else -1.0), exam_id)

        return sorted(ids, key=rank)[: max(0, max_exams)]


class _CamMaps:
    """The CAMs saved by the cam stage, read one npz at a time."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.file: str | None = None
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, where: tuple[str, str]) -> np.ndarray | None:
        file, key = where
        if file != self.file:
            self.file, self.arrays = file, {}
            try:
                with np.load(self.run.abs(file)) as npz:
                    self.arrays = {k: npz[k] for k in npz.files}
            except (OSError, ValueError) as exc:
                logger.warning("report: CAM file %s not read (%s)", file, exc)
        arr = self.arrays.get(key)
        return None if arr is None else arr.astype(np.float32) / 255.0


def _labels_rows(label: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for k in ("polyp", "polyp_count", "pathology", "malignancy_suspected", "error"):
        if k in label and (k != "error" or label.get(k)):
            rows.append([k, label.get(k)])
    polyps = label.get("polyps")
    if isinstance(polyps, str) and polyps:
        with contextlib.suppress(ValueError):
            polyps = json.loads(polyps)
    if isinstance(polyps, list):
        for i, p in enumerate(polyps):
            desc = ", ".join(f"{k} {v}" for k, v in p.items()) if isinstance(p, dict) else str(p)
            rows.append([f"polyp {i + 1}", desc])
    elif polyps:
        rows.append(["polyps", str(polyps)])
    return rows


def _frame(
    run: RunFolder,
    data: ExamData,
    cams: _CamMaps,
    truth: Truth | None,
    exam_id: str,
    frame: dict[str, Any],
) -> dict[str, Any]:
    key = (exam_id, str(frame["image"]))
    path = Path(str(frame["path"]))
    score = data.scores.get(key) or {}
    notes: list[str] = []
    if score.get("score") is not None:
        bags: dict[Any, str] = {1: "positive bag", 0: "negative bag", -1: "uncertain bag"}
        bag = bags.get(score.get("bag_label"), "")
        notes.append(f"MIL score {float(score['score']):.3f}" + (f" ({bag})" if bag else ""))
    if key in data.dropped:
        notes.append(f"CAM dropped: {data.dropped[key]}")
    boxes = data.boxes.get(key, [])
    if boxes:
        notes.append(f"{len(boxes)} CAM box{'es' if len(boxes) > 1 else ''}")
    pseudo = data.masks.get(key)
    if pseudo is not None and pseudo.get("score") is not None:
        notes.append(f"pseudo mask score {float(pseudo['score']):.3f}")
    if key in data.rejected:
        notes.append(f"pseudo mask rejected: {data.rejected[key]}")
    figures: list[dict[str, str]] = []
    try:
        figures.append({"uri": png_data_uri(overlay(path)), "caption": "frame"})
        heat = cams.get(data.cams[key]) if key in data.cams else None
        if heat is not None:
            figures.append({"uri": png_data_uri(overlay(path, heat=heat, boxes=boxes)), "caption": "CAM and boxes"})
        elif boxes:
            figures.append({"uri": png_data_uri(overlay(path, boxes=boxes)), "caption": "CAM boxes"})
        if pseudo is not None:
            mask = read_mask(run.abs(str(pseudo["mask"])))
            gt = truth.mask(*key) if truth else None
            legend = "pseudo mask" + (" and true mask" if gt is not None else "")
            figures.append({"uri": png_data_uri(overlay(path, mask=mask, boxes=boxes, truth=gt)), "caption": legend})
    except (EndokedError, OSError, ValueError) as exc:
        notes.append(f"image not drawn: {exc}")
    return {"image": key[1], "notes": " · ".join(notes), "figures": figures}


def write_exam_pages(
    run: RunFolder,
    dest_dir: Path,
    render: Callable[..., str],
    report_name: str,
    truth: Truth | None = None,
    max_exams: int = DEFAULT_MAX_EXAMS,
    report_entry: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Write ``dest_dir/exams/<safe name>.html`` for the chosen exams and return the index blocks.

    Args:
        render: renders ``exam.html.j2`` with keyword arguments.
        report_name: file name of the main report, for the link back.
        report_entry: ``(labels_jsonl record, ingest exam row) -> {"html", "pathology_html", "lang", ...}``
            (the main report's evidence highlighter).
    """
    if max_exams <= 0 or (run.entry("ingest") or {}).get("status") != "done":
        return []
    data = ExamData.read(run)
    chosen = data.chosen(max_exams)
    if not chosen:
        return []
    cams = _CamMaps(run)
    folder = dest_dir / EXAMS_DIR
    rows: list[list[Any]] = []
    for exam_id in chosen:
        exam = data.exams.get(exam_id, {})
        label = data.labels.get(exam_id, {})
        rec = data.rich.get(exam_id) or {}
        text: dict[str, Any]
        if report_entry is not None:
            text = report_entry(rec, exam)
        else:
            text = {"html": Markup(html.escape(exam.get("report") or "")), "pathology_html": "", "lang": ""}
        frames = data.frames.get(exam_id, [])
        drawn = [_frame(run, data, cams, truth, exam_id, f) for f in frames[:MAX_FRAMES]]
        name = safe_name(exam_id)
        page = render(
            exam_id=exam_id,
            back=f"../{report_name}",
            labels=_labels_rows(label),
            text=text,
            frames=drawn,
            n_frames=len(frames),
            max_frames=MAX_FRAMES,
        )
        atomic_write_text(folder / name, page)
        score = data.max_score(exam_id)
        link = Markup('<a href="{}">{}</a>').format(f"{EXAMS_DIR}/{name}", exam_id)
        rows.append([link, label.get("polyp"), label.get("pathology"), len(frames), _round(score)])
    total = len(set(data.exams) | set(data.frames))
    blocks: list[dict[str, Any]] = [
        {
            "kind": "text",
            "text": f"{len(chosen)} of {total} exams have a page: report-positive exams first, then by the highest "
            "MIL image score.",
        },
        {
            "kind": "table",
            "title": "",
            "header": ["exam", "polyp", "pathology", "frames", "top MIL score"],
            "rows": rows,
        },
    ]
    return blocks


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
