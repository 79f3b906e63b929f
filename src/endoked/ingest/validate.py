"""Pure validation of archive rows (no image I/O: images are checked in :mod:`endoked.ingest.images`)."""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from endoked.ingest.archive import RawExam, decode_report
from endoked.ingest.config import IngestConfig
from endoked.ingest.reasons import Reject
from endoked.safe_read import display_name

CORE_KEYS = ("exam_id", "report", "pathology", "images")
ID_KEYS = ("exam_id", "id")
REPORT_KEYS = ("report", "text")


@dataclass
class ImageTask:
    """An image that passed path checks and awaits the file check."""

    image: str  # exactly as in the manifest
    path: str  # absolute


@dataclass
class ExamDraft:
    """An exam that passed row-level checks; becomes a table row if any image survives."""

    row: int
    source: str
    exam_id: str
    report: str
    pathology: str | None
    report_encoding: str
    report_truncated: bool
    meta: dict[str, Any]
    images: list[ImageTask] = field(default_factory=list)
    n_listed: int = 0


def _is_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:20000]
    bad = sum(1 for ch in sample if unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch not in "\t\n\r\f\v")
    return bad > max(8, 0.05 * len(sample))


def _not_utf8(text: str) -> bool:
    """True when ``text`` cannot be stored as UTF-8 (lone surrogates: from JSON ``\\ud800`` escapes or from
    file names that are not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clip_report(text: str, limit: int) -> tuple[str, bool]:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text, False
    return raw[:limit].decode("utf-8", errors="ignore"), True


def _check_text(
    text: Any, what: str, raw: RawExam, exam_id: str, cfg: IngestConfig, rejects: list[Reject]
) -> tuple[str | None, bool]:
    """Validate a report/pathology string; returns (text or None when rejected, truncated)."""
    if not isinstance(text, str):
        rejects.append(
            Reject(
                "missing_key",
                f"{raw.source}: '{what}' must be a string, got {type(text).__name__}",
                raw.source,
                raw.row,
                exam_id,
            )
        )
        return None, False
    if _not_utf8(text):
        rejects.append(
            Reject(
                "bad_text",
                f"{raw.source}: {what} of exam {exam_id} holds characters that are not valid Unicode (lone surrogates)",
                raw.source,
                raw.row,
                exam_id,
            )
        )
        return None, False
    if _is_binary(text):
        rejects.append(
            Reject(
                "report_binary",
                f"{raw.source}: {what} of exam {exam_id} contains binary data",
                raw.source,
                raw.row,
                exam_id,
            )
        )
        return None, False
    if not text.strip():
        if what == "pathology":
            return None, False
        rejects.append(
            Reject("empty_report", f"{raw.source}: report of exam {exam_id} is empty", raw.source, raw.row, exam_id)
        )
        return None, False
    clipped, truncated = _clip_report(text, cfg.max_report_bytes)
    if truncated:
        size = len(text.encode("utf-8"))
        if cfg.huge_report == "reject":
            rejects.append(
                Reject(
                    "report_too_large",
                    f"{raw.source}: {what} of exam {exam_id} is {size} bytes, "
                    f"over ingest.max_report_bytes={cfg.max_report_bytes}",
                    raw.source,
                    raw.row,
                    exam_id,
                )
            )
            return None, False
        rejects.append(
            Reject(
                "report_truncated",
                f"{raw.source}: {what} of exam {exam_id} is {size} bytes; cut "
                f"to ingest.max_report_bytes={cfg.max_report_bytes}",
                raw.source,
                raw.row,
                exam_id,
                severity="warning",
            )
        )
    return clipped, truncated


def _exam_id(raw: RawExam, rejects: list[Reject]) -> str | None:
    data = raw.data or {}
    key = next((k for k in ID_KEYS if k in data), None)
    if key is None:
        rejects.append(Reject("missing_key", f"{raw.source}: missing key 'exam_id'", raw.source, raw.row))
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, str | int):
        rejects.append(
            Reject("bad_exam_id", f"{raw.source}: exam_id must be a string, got {value!r}", raw.source, raw.row)
        )
        return None
    value = str(value).strip()
    if _not_utf8(value):
        rejects.append(
            Reject(
                "bad_text",
                f"{raw.source}: exam_id {display_name(value)} is not valid Unicode (a "
                "lone surrogate, or a folder name that is not UTF-8)",
                raw.source,
                raw.row,
            )
        )
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        rejects.append(
            Reject(
                "bad_exam_id",
                f"{raw.source}: exam_id {display_name(value)} contains a NUL or another control character",
                raw.source,
                raw.row,
            )
        )
        return None
    if not value or "/" in value or "\\" in value or value in (".", ".."):
        rejects.append(
            Reject(
                "bad_exam_id",
                f"{raw.source}: exam_id {value!r} is empty or contains a path separator",
                raw.source,
                raw.row,
                value or None,
            )
        )
        return None
    return value


def _resolve_image(
    entry: Any, raw: RawExam, exam_id: str, root: Path, cfg: IngestConfig, seen: dict[str, str], rejects: list[Reject]
) -> ImageTask | None:
    """Check one image entry's path; ``seen`` maps the normalised path of each earlier entry to its spelling."""
    if not isinstance(entry, str) or not entry.strip():
        rejects.append(
            Reject(
                "bad_image_entry",
                f"{raw.source}: exam {exam_id}: image entry {entry!r} is not a path string",
                raw.source,
                raw.row,
                exam_id,
                None,
                "image",
            )
        )
        return None
    if "\x00" in entry or _not_utf8(entry):
        why = "contains a NUL byte" if "\x00" in entry else "is not valid UTF-8"
        rejects.append(
            Reject(
                "bad_image_entry",
                f"{raw.source}: exam {exam_id}: image path {display_name(entry)} {why}",
                raw.source,
                raw.row,
                exam_id,
                display_name(entry),
                "image",
            )
        )
        return None
    key = os.path.normpath(entry)
    if key in seen:
        first = seen[key]
        how = "twice" if first == entry else f"twice (as {first} and {entry})"
        rejects.append(
            Reject(
                "duplicate_image_in_exam",
                f"{raw.source}: exam {exam_id} lists {entry} {how}; the first is kept",
                raw.source,
                raw.row,
                exam_id,
                entry,
                "image",
            )
        )
        return None
    seen[key] = entry
    p = Path(entry)
    if p.is_absolute():
        if not cfg.allow_absolute_paths:
            rejects.append(
                Reject(
                    "absolute_path_not_allowed",
                    f"{raw.source}: exam {exam_id}: absolute path "
                    f"{entry} (set ingest.allow_absolute_paths=true to accept)",
                    raw.source,
                    raw.row,
                    exam_id,
                    entry,
                    "image",
                )
            )
            return None
        return ImageTask(entry, os.path.normpath(entry))
    full = Path(os.path.normpath(root / p))
    try:
        full.resolve().relative_to(root)
    except ValueError:
        rejects.append(
            Reject(
                "path_escapes_root",
                f"{raw.source}: exam {exam_id}: {entry} resolves outside the archive root {root}",
                raw.source,
                raw.row,
                exam_id,
                entry,
                "image",
            )
        )
        return None
    return ImageTask(entry, str(full))


def validate_row(
    raw: RawExam, root: Path, cfg: IngestConfig, seen_ids: dict[str, int]
) -> tuple[ExamDraft | None, list[Reject]]:
    """Check one row: keys, id uniqueness, report text, image paths. ``seen_ids`` maps id -> first row.

    Returns:
        ``(draft, rejects)``; draft is None when the exam is rejected as a whole.
    """
    rejects: list[Reject] = []
    if raw.data is None:
        return None, [Reject(raw.parse_code, f"{raw.source}: {raw.parse_error}", raw.source, raw.row)]
    exam_id = _exam_id(raw, rejects)
    if exam_id is None:
        return None, rejects
    if exam_id in seen_ids:
        return None, [
            Reject(
                "duplicate_exam_id",
                f"{raw.source}: exam_id {exam_id} already used at row {seen_ids[exam_id]}; this row is skipped",
                raw.source,
                raw.row,
                exam_id,
            )
        ]
    seen_ids[exam_id] = raw.row
    data = raw.data
    encoding = "utf-8"
    if raw.folder:
        if raw.read_reject is not None:
            code, why = raw.read_reject
            return None, [Reject(code, f"{raw.source}: {why}", raw.source, raw.row, exam_id)]
        if raw.report_bytes is None:
            return None, [
                Reject("missing_report", f"{raw.source}: {exam_id}/report.txt not found", raw.source, raw.row, exam_id)
            ]
        report, encoding = decode_report(raw.report_bytes)
        if report is None:
            return None, [
                Reject(
                    "report_undecodable",
                    f"{raw.source}: report.txt is neither UTF-8 nor GB18030",
                    raw.source,
                    raw.row,
                    exam_id,
                )
            ]
        pathology: Any = decode_report(raw.pathology_bytes)[0] if raw.pathology_bytes is not None else None
    else:
        rkey = next((k for k in REPORT_KEYS if k in data), None)
        if rkey is None:
            return None, [
                Reject(
                    "missing_key", f"{raw.source}: exam {exam_id}: missing key 'report'", raw.source, raw.row, exam_id
                )
            ]
        report = data[rkey]
        pathology = data.get("pathology")
    text, truncated = _check_text(report, "report", raw, exam_id, cfg, rejects)
    if text is None:
        return None, rejects
    path_text: str | None = None
    if pathology is not None:
        n_before = len(rejects)
        path_text, p_trunc = _check_text(pathology, "pathology", raw, exam_id, cfg, rejects)
        truncated = truncated or p_trunc
        if path_text is None and len(rejects) > n_before:
            return None, rejects
    if "images" not in data:
        rejects.append(
            Reject("missing_key", f"{raw.source}: exam {exam_id}: missing key 'images'", raw.source, raw.row, exam_id)
        )
        return None, rejects
    images = data["images"]
    if isinstance(images, tuple):
        images = list(images)
    if not isinstance(images, list):
        rejects.append(
            Reject(
                "bad_images_field",
                f"{raw.source}: exam {exam_id}: 'images' must be a list of paths, got {type(images).__name__}",
                raw.source,
                raw.row,
                exam_id,
            )
        )
        return None, rejects
    if not images:
        rejects.append(
            Reject("no_images", f"{raw.source}: exam {exam_id} lists no images", raw.source, raw.row, exam_id)
        )
        return None, rejects
    meta = {k: v for k, v in data.items() if k not in CORE_KEYS + ID_KEYS + REPORT_KEYS}
    if _not_utf8(meta_json(meta)):
        rejects.append(
            Reject(
                "bad_text",
                f"{raw.source}: exam {exam_id}: an extra field holds characters that are "
                "not valid Unicode (lone surrogates)",
                raw.source,
                raw.row,
                exam_id,
            )
        )
        return None, rejects
    draft = ExamDraft(raw.row, raw.source, exam_id, text, path_text, encoding, truncated, meta, n_listed=len(images))
    seen: dict[str, str] = {}
    for entry in images:
        task = _resolve_image(entry, raw, exam_id, root, cfg, seen, rejects)
        if task is not None:
            draft.images.append(task)
    return draft, rejects


def meta_json(meta: dict[str, Any]) -> str:
    """Extra manifest keys as a JSON string (non-JSON values stringified)."""
    return json.dumps(meta, ensure_ascii=False, default=str, sort_keys=True)
