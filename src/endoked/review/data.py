"""What the review app shows, read from a run folder's tables once, plus the decisions read live from SQLite.

Everything here is plain Python (no web framework): the app in :mod:`endoked.review.app` turns these records
into JSON and PNG responses. Images are found only through the run's ``ingest/images`` table (an image the run
does not list cannot be asked for); run-folder files only through :func:`endoked.review.security.run_file`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from endoked import reviewed, tables
from endoked.errors import EndokedError
from endoked.imaging import encode_png, read_mask, read_rgb
from endoked.io import read_jsonl
from endoked.runfolder import RunFolder

logger = logging.getLogger(__name__)

Key = tuple[str, str]
# Overlay colours (RGB) of the mask layers: the automatic pseudo mask, the seg stage's refined mask, the reviewer's.
LAYER_COLOURS: dict[str, tuple[int, int, int]] = {
    "mask": (40, 230, 60),
    "pred": (40, 140, 255),
    "reviewed": (255, 200, 0),
}
SPAN_FIELDS = frozenset(
    {"polyp", "negated", "size", "size_mm", "location", "morphology", "pathology", "removed", "polyp_count"}
)


def evidence_spans(evidence: Any) -> list[list[Any]]:
    """``[start, end, field]`` spans into the report text from an extract evidence structure (a mapping field ->
    span(s), a span being ``[start, end]`` or ``{"start", "end", "src"}``, possibly nested)."""
    spans: list[list[Any]] = []

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("start"), int) and isinstance(node.get("end"), int):
                if str(node.get("src", "text")) == "text":
                    spans.append([node["start"], node["end"], str(node.get("field", name))])
                return
            for k, v in node.items():
                if k in ("ensemble", "llm"):
                    continue
                walk(v, k if name in ("", "polyps") or k in SPAN_FIELDS else name)
        elif isinstance(node, list | tuple):
            if len(node) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in node):
                spans.append([node[0], node[1], name or "other"])
            else:
                for v in node:
                    walk(v, name)

    walk(evidence, "")
    return sorted(spans)


def backend_disagreement(record: dict[str, Any]) -> bool | None:
    """Whether the extract backends (``ensemble``: rules and llm) disagreed on this report; None when only one
    backend labelled it."""
    evidence = record.get("evidence") if isinstance(record.get("evidence"), dict) else record
    ens = evidence.get("ensemble") if isinstance(evidence, dict) else None
    if not isinstance(ens, dict):
        return None
    if ens.get("agree") is False:
        return True
    return bool(ens.get("disagree_fields")) if ens.get("agree") else None


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


@dataclass
class ReviewData:
    """A run's tables as the review app needs them (read once; decisions are read live)."""

    run: RunFolder
    exams: dict[str, dict[str, Any]]
    labels: dict[str, dict[str, Any]]
    rich: dict[str, dict[str, Any]]
    frames: dict[str, list[dict[str, Any]]]
    images: dict[Key, dict[str, Any]]
    scores: dict[Key, dict[str, Any]]
    boxes: dict[Key, list[list[float]]] = field(default_factory=dict)
    pseudo: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pred: dict[Key, dict[str, Any]] = field(default_factory=dict)
    cams: dict[Key, tuple[str, str]] = field(default_factory=dict)
    _cam_cache: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def read(cls, run: RunFolder) -> ReviewData:
        """Read every table the app shows from ``run`` (missing stages give empty tables)."""

        def key(r: dict[str, Any]) -> Key:
            return str(r["exam_id"]), str(r["image"])

        frames: dict[str, list[dict[str, Any]]] = {}
        images: dict[Key, dict[str, Any]] = {}
        for r in tables.finished_rows(run, "ingest/images", "review"):
            frames.setdefault(str(r["exam_id"]), []).append(r)
            images[key(r)] = r
        rich: dict[str, dict[str, Any]] = {}
        if "labels_jsonl" in (run.entry("extract") or {}).get("outputs", {}):
            try:
                records = read_jsonl(run.output("extract", "labels_jsonl"))
                rich = {str(r.get("id", r.get("exam_id"))): r for r in records}
            except (EndokedError, OSError, ValueError) as exc:
                logger.warning("review: extract/labels_jsonl not read (%s)", exc)
        data = cls(
            run=run,
            exams={str(r["exam_id"]): r for r in tables.finished_rows(run, "ingest/exams", "review")},
            labels={str(r["exam_id"]): r for r in tables.finished_rows(run, "extract/labels", "review")},
            rich=rich,
            frames=frames,
            images=images,
            scores={key(r): r for r in tables.finished_rows(run, "mil/image_scores", "review")},
        )
        for b in tables.finished_rows(run, "cam/boxes", "review"):
            data.boxes.setdefault(key(b), []).append([float(b["x0"]), float(b["y0"]), float(b["x1"]), float(b["y1"])])
        data.pseudo = {key(r): r for r in tables.finished_rows(run, "prompt_seg/pseudo_labels", "review")}
        seg = run.entry("seg") or {}
        if seg.get("status") == "done" and "pseudo_labels" in seg.get("outputs", {}):
            with contextlib.suppress(EndokedError, OSError):
                refined = tables.read(run.output("seg", "pseudo_labels"), "prompt_seg/pseudo_labels").to_pylist()
                data.pred = {key(r): r for r in refined}
        data.cams = {
            key(r): (str(r["file"]), str(r["key"]))
            for r in tables.finished_rows(run, "cam/cams", "review")
            if r.get("file")
        }
        return data

    # ---- records -------------------------------------------------------------------------------------------

    def exam_ids(self) -> list[str]:
        return sorted(set(self.exams) | set(self.frames))

    def image_record(self, k: Key, decision: dict[str, Any] | None) -> dict[str, Any]:
        """One image: its scores, box, pseudo-mask quality and the latest decision."""
        img = self.images[k]
        pseudo = self.pseudo.get(k) or {}
        score = self.scores.get(k) or {}
        box = self.boxes.get(k) or []
        if pseudo.get("box_x0") is not None:
            box = [[float(pseudo[c]) for c in ("box_x0", "box_y0", "box_x1", "box_y1")], *box[1:]]
        return {
            "exam_id": k[0],
            "image": k[1],
            "width": int(img.get("width") or 0),
            "height": int(img.get("height") or 0),
            "mil_score": _float(score.get("score")),
            "bag_label": score.get("bag_label"),
            "boxes": box,
            "has_cam": k in self.cams,
            "has_mask": bool(pseudo.get("mask")),
            "has_pred": k in self.pred,
            "quality": _float(pseudo.get("score")),
            "rank": _float(pseudo.get("rank")),
            "source": pseudo.get("source"),
            "decision": None
            if decision is None
            else {k2: decision.get(k2) for k2 in ("action", "reviewer", "at", "mask_after")},
        }

    def exam_summary(self, exam_id: str, decisions: dict[Key, dict[str, Any]], fixes: dict[str, Any]) -> dict[str, Any]:
        """One row of the exam list."""
        label = self.labels.get(exam_id) or {}
        keys = [(exam_id, str(f["image"])) for f in self.frames.get(exam_id, [])]
        mil = [s for k in keys if (s := _float((self.scores.get(k) or {}).get("score"))) is not None]
        quality = [q for k in keys if (q := _float((self.pseudo.get(k) or {}).get("score"))) is not None]
        ranks = [r for k in keys if (r := _float((self.pseudo.get(k) or {}).get("rank"))) is not None]
        masked = [k for k in keys if k in self.pseudo]
        corrected = fixes.get(exam_id) or {}
        return {
            "exam_id": exam_id,
            "polyp": label.get("polyp"),
            "polyp_count": label.get("polyp_count"),
            "corrected": corrected,
            "n_images": len(keys),
            "n_masks": len(masked),
            "n_reviewed": sum(1 for k in keys if k in decisions),
            "mil_max": max(mil) if mil else None,
            "quality_min": min(quality) if quality else None,
            "rank_min": min(ranks) if ranks else None,
            "sources": sorted({str(self.pseudo[k].get("source")) for k in masked if self.pseudo[k].get("source")}),
            "source": str((self.exams.get(exam_id) or {}).get("source") or ""),
            "disagree": backend_disagreement(self.rich.get(exam_id) or {}),
        }

    def exam_detail(self, exam_id: str) -> dict[str, Any]:
        """The exam page: report text, evidence spans, labels, corrections and every image."""
        decisions = reviewed.latest_image_decisions(self.run.root)
        fixes = reviewed.label_corrections(self.run.root)
        exam = self.exams.get(exam_id) or {}
        rich = self.rich.get(exam_id) or {}
        label = self.labels.get(exam_id) or {}
        polyps = label.get("polyps")
        if isinstance(polyps, str):
            with contextlib.suppress(ValueError):
                polyps = json.loads(polyps)
        return {
            **self.exam_summary(exam_id, decisions, fixes),
            "report": str(exam.get("report") or ""),
            "pathology_text": str(exam.get("pathology") or ""),
            "spans": evidence_spans(rich.get("evidence", {})),
            "labels": {
                "polyp": label.get("polyp"),
                "polyp_count": label.get("polyp_count"),
                "pathology": label.get("pathology"),
                "malignancy_suspected": label.get("malignancy_suspected"),
                "polyps": polyps if isinstance(polyps, list) else [],
            },
            "images": [
                self.image_record((exam_id, str(f["image"])), decisions.get((exam_id, str(f["image"]))))
                for f in self.frames.get(exam_id, [])
            ],
        }

    def exam_list(self) -> list[dict[str, Any]]:
        decisions = reviewed.latest_image_decisions(self.run.root)
        fixes = reviewed.label_corrections(self.run.root)
        return [self.exam_summary(e, decisions, fixes) for e in self.exam_ids()]

    def queue(self, limit: int = 500) -> list[dict[str, Any]]:
        """Unreviewed images with a pseudo mask, least certain first: the lowest pseudo-mask quality score, then
        the MIL score closest to 0.5."""
        decisions = reviewed.latest_image_decisions(self.run.root)
        todo = [k for k in self.pseudo if k not in decisions and k in self.images]

        def certainty(k: Key) -> tuple[float, float, str, str]:
            q = _float(self.pseudo[k].get("score"))
            m = _float((self.scores.get(k) or {}).get("score"))
            return (q if q is not None else 0.0, abs(m - 0.5) if m is not None else 0.5, *k)

        return [self.image_record(k, None) for k in sorted(todo, key=certainty)[:limit]]

    # ---- pixels --------------------------------------------------------------------------------------------

    def image_path(self, k: Key) -> Path:
        return Path(str(self.images[k]["path"]))

    def current_mask_rel(self, k: Key, decision: dict[str, Any] | None = None) -> str | None:
        """The mask an image has now: the reviewer's fix when there is one, else the automatic pseudo mask."""
        if decision and decision.get("action") == "fix" and decision.get("mask_after"):
            return str(decision["mask_after"])
        mask = (self.pseudo.get(k) or {}).get("mask")
        return str(mask) if mask else None

    def layer_png(self, k: Key, layer: str) -> bytes | None:
        """An RGBA overlay PNG of one layer (``cam``, ``mask``, ``pred`` or ``reviewed``), or None when the image
        has none. Mask layers have the image's size; the CAM keeps its own resolution (the page scales it)."""
        if layer == "cam":
            heat = self._cam(k)
            if heat is None:
                return None
            return encode_png(_heat_rgba(heat))
        if layer == "mask":
            rel = (self.pseudo.get(k) or {}).get("mask")
        elif layer == "pred":
            rel = (self.pred.get(k) or {}).get("mask")
        elif layer == "reviewed":
            d = reviewed.latest_image_decisions(self.run.root).get(k)
            rel = d.get("mask_after") if d and d.get("action") == "fix" else None
        else:
            raise ValueError(f"unknown layer {layer!r}; choose cam, mask, pred or reviewed")
        if not rel:
            return None
        mask = read_mask(self.run.abs(str(rel)))
        return encode_png(mask_rgba(mask, LAYER_COLOURS[layer]))

    def _cam(self, k: Key) -> np.ndarray | None:
        where = self.cams.get(k)
        if where is None:
            return None
        file, name = where
        with self._lock:
            arrays = self._cam_cache.get(file)
            if arrays is None:
                try:
                    with np.load(self.run.abs(file)) as npz:
                        arrays = {n: npz[n] for n in npz.files}
                except (OSError, ValueError) as exc:
                    logger.warning("review: CAM file %s not read (%s)", file, exc)
                    arrays = {}
                if len(self._cam_cache) > 8:
                    self._cam_cache.clear()
                self._cam_cache[file] = arrays
        arr = arrays.get(name)
        return None if arr is None else arr.astype(np.float32) / 255.0

    def save_fix(self, k: Key, png: bytes) -> str:
        """Store a reviewer's mask (a PNG of the image's size; any non-zero pixel or alpha is foreground) as
        ``review/masks/<digest>.png`` (0/255) and return its run-relative path.

        Raises:
            ValueError: not a PNG, or not the image's size.
        """
        from PIL import Image

        img = self.images[k]
        try:
            with Image.open(io.BytesIO(png)) as im:
                im.load()
                arr = np.asarray(im.convert("RGBA"))
        except Exception as exc:  # PIL raises many kinds on hostile bytes
            raise ValueError(f"the mask is not a readable PNG: {exc}") from exc
        want = (int(img.get("height") or 0), int(img.get("width") or 0))
        if arr.shape[:2] != want:
            raise ValueError(f"the mask is {arr.shape[1]}x{arr.shape[0]}, the image {want[1]}x{want[0]}")
        fg = (arr[..., 3] > 127) & (arr[..., :3].max(axis=2) > 127)
        data = encode_png((fg * 255).astype(np.uint8))
        digest = hashlib.sha256(f"{k[0]}\0{k[1]}".encode("utf-8", "surrogatepass") + data).hexdigest()[:20]
        rel = f"{reviewed.DB_NAME.rsplit('/', 1)[0]}/masks/{digest}.png"
        dest = self.run.abs(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.is_file():
            tmp = dest.with_name(f".{dest.name}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(dest)
        return rel


def mask_rgba(mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """``(H, W) bool`` -> ``(H, W, 4) uint8``: ``colour`` where the mask is set, transparent elsewhere."""
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[mask] = (*colour, 255)
    return out


def _heat_rgba(heat: np.ndarray) -> np.ndarray:
    """``(h, w) float`` in [0, 1] -> jet colours with alpha rising with the heat."""
    import cv2

    u8 = (255 * np.clip(heat, 0, 1)).astype(np.uint8)
    rgb = cv2.applyColorMap(u8, cv2.COLORMAP_JET)[..., ::-1]
    return np.dstack([rgb, u8]).astype(np.uint8)


class LiveSegmenter:
    """The prompted segmenter of the run, built on first use and kept (one image embedding cached)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._seg: Any = None
        self._key: Key | None = None
        self._lock = threading.Lock()

    def segment(self, data: ReviewData, k: Key, box_xyxy: list[float]) -> np.ndarray:
        """``(H, W) bool`` mask of image ``k`` for one box (pixels, ``x0, y0, x1, y1``)."""
        with self._lock:
            if self._seg is None:
                self._seg = self._build()
            if self._key != k:
                self._seg.set_image(read_rgb(data.image_path(k)))
                self._key = k
            masks, _ = self._seg.predict(np.asarray([box_xyxy], dtype=np.float32))
        return np.asarray(masks[0], bool)
