"""Reject reason codes written to ``rejects.jsonl`` (one line per problem).

Exam-level codes reject the whole exam; image-level codes reject one image (an exam left with no valid
image is then rejected with ``no_valid_images``). ``report_truncated`` is a warning: the exam is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

EXAM_CODES: dict[str, str] = {
    "bad_json": "the manifest line is not valid JSON",
    "bad_row": "the row is not a JSON object / record",
    "missing_key": "a required key (exam_id, report, images) is missing",
    "bad_exam_id": "exam_id is empty, not a string/number, or contains a path separator",
    "duplicate_exam_id": "exam_id was already used by an earlier row (the first one is kept)",
    "missing_report": "folder layout: report.txt is missing",
    "empty_report": "the report is empty or whitespace only",
    "report_binary": "the report holds binary data (NUL or many control characters)",
    "report_undecodable": "report.txt is neither UTF-8 nor GB18030/GBK",
    "report_too_large": "the report exceeds ingest.max_report_bytes (huge_report=reject), or a folder-layout "
    "report file exceeds ingest.max_report_file_bytes (refused unread)",
    "report_unreadable": "folder layout: report.txt/pathology.txt is a symlink out of the archive, a directory, "
    "a FIFO, a device or otherwise not a readable regular file",
    "bad_text": "a report, exam id or field holds characters that are not valid Unicode (lone surrogates, or a "
    "folder name that is not UTF-8)",
    "report_truncated": "warning: the report exceeded ingest.max_report_bytes and was cut (huge_report=truncate)",
    "bad_images_field": "images is not a list of paths",
    "no_images": "the exam lists no images",
    "no_valid_images": "none of the exam's images passed validation",
}

IMAGE_CODES: dict[str, str] = {
    "bad_image_entry": "an images entry is not a non-empty string, or holds a NUL byte or non-UTF-8 characters",
    "duplicate_image_in_exam": "the same image path is listed twice in one exam (also under two spellings, e.g. "
    "a.png and ./a.png)",
    "path_escapes_root": "a relative image path points outside the archive root",
    "absolute_path_not_allowed": "an absolute image path while ingest.allow_absolute_paths is false",
    "missing_file": "the image file does not exist",
    "not_a_file": "the image path is a directory or special file",
    "file_too_large": "the image file exceeds ingest.max_image_bytes (refused unread)",
    "empty_file": "the image file has zero bytes",
    "unreadable_file": "the image file cannot be read (permissions, I/O error)",
    "unsupported_format": "the file is not an image format in ingest.allowed_formats",
    "corrupt_image": "the image cannot be decoded (truncated or damaged)",
    "too_small": "the image is smaller than ingest.min_side on a side",
}

ALL_CODES = EXAM_CODES | IMAGE_CODES


@dataclass(frozen=True)
class Reject:
    """One problem found in the archive."""

    code: str
    message: str
    source: str
    row: int | None = None
    exam_id: str | None = None
    image: str | None = None
    level: Literal["exam", "image"] = "exam"
    severity: Literal["error", "warning"] = "error"

    def __post_init__(self) -> None:
        if self.code not in ALL_CODES:
            raise ValueError(f"unknown reject code {self.code!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
