"""Archive readers. Each yields :class:`RawExam` rows one at a time (streaming), whatever the layout:

- manifest JSON Lines (``.jsonl``/``.ndjson``), CSV (``.csv``; ``images`` as a JSON list or ``;``-separated)
  or Parquet (``.parquet``; ``images`` a list column) — paths relative to the manifest's folder;
- folder layout ``ARCHIVE/<exam_id>/report.txt`` (+ optional ``pathology.txt``) and image files.

A manifest path given as a folder that contains ``manifest.jsonl`` (or ``.csv``/``.parquet``) is read as
that manifest.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from endoked.errors import DataFormatError

MANIFEST_NAMES = ("manifest.jsonl", "manifest.ndjson", "manifest.csv", "manifest.parquet")
REPORT_FILE = "report.txt"
PATHOLOGY_FILE = "pathology.txt"


@dataclass
class RawExam:
    """One archive row before validation.

    Attributes:
        row: 1-based row number (manifest line / CSV record / Parquet row / folder index).
        source: human-readable location, e.g. ``manifest.jsonl:12`` or ``E0001/``.
        data: the row's fields; ``None`` when the row could not be parsed (see ``parse_error``).
        report_bytes: folder layout only: raw bytes of report.txt (decoded during validation).
        pathology_bytes: folder layout only: raw bytes of pathology.txt.
    """

    row: int
    source: str
    data: dict[str, Any] | None
    parse_error: str | None = None
    parse_code: str = "bad_row"
    report_bytes: bytes | None = None
    pathology_bytes: bytes | None = None
    folder: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Archive:
    """A located archive: its root (image paths are relative to it) and how to read it."""

    root: Path
    kind: str  # "jsonl" | "csv" | "parquet" | "folder"
    manifest: Path | None

    def describe(self) -> str:
        return str(self.manifest) if self.manifest else f"{self.root}/ (folder layout)"


def locate_archive(path: str | os.PathLike[str]) -> Archive:
    """Decide how to read ``path``; raises DataFormatError when it is neither a manifest nor an archive folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataFormatError(f"archive not found: {p}")
    if p.is_file():
        suffix = p.suffix.lower()
        kind = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(
            suffix)
        if kind is None:
            raise DataFormatError(f"{p}: unknown manifest type {suffix!r}; use .jsonl, .csv or .parquet")
        return Archive(root=p.parent.resolve(), kind=kind, manifest=p.resolve())
    for name in MANIFEST_NAMES:
        if (p / name).is_file():
            return locate_archive(p / name)
    return Archive(root=p.resolve(), kind="folder", manifest=None)


def iter_archive(archive: Archive) -> Iterator[RawExam]:
    """Yield the archive's rows in order."""
    if archive.kind == "jsonl":
        yield from _iter_jsonl(archive.manifest)  # type: ignore[arg-type]
    elif archive.kind == "csv":
        yield from _iter_csv(archive.manifest)  # type: ignore[arg-type]
    elif archive.kind == "parquet":
        yield from _iter_parquet(archive.manifest)  # type: ignore[arg-type]
    else:
        yield from _iter_folder(archive.root)


def _iter_jsonl(path: Path) -> Iterator[RawExam]:
    name = path.name
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            src = f"{name}:{i}"
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield RawExam(i, src, None, f"line is not UTF-8 ({exc.reason} at byte {exc.start})", "bad_json")
                continue
            except json.JSONDecodeError as exc:
                yield RawExam(i, src, None, f"invalid JSON ({exc.msg} at column {exc.colno})", "bad_json")
                continue
            if not isinstance(obj, dict):
                yield RawExam(i, src, None, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield RawExam(i, src, obj)


def _split_images_cell(cell: str) -> Any:
    cell = cell.strip()
    if not cell:
        return []
    if cell.startswith("["):
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return cell  # left as a string: validation reports bad_images_field
    return [part.strip() for part in cell.split(";") if part.strip()]


def _iter_csv(path: Path) -> Iterator[RawExam]:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            header = reader.fieldnames
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{path}: CSV manifest must be UTF-8 ({exc})") from exc
        if not header:
            raise DataFormatError(f"{path}: CSV manifest has no header row")
        i = 1
        while True:
            try:
                rec = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                i += 1
                yield RawExam(i, f"{path.name}:record {i}", None, f"unreadable CSV record ({exc})")
                continue
            i += 1
            src = f"{path.name}:line {reader.line_num}"
            if None in rec:
                yield RawExam(i, src, None, "record has more fields than the header")
                continue
            data: dict[str, Any] = {k: v for k, v in rec.items() if v is not None}
            if "images" in data:
                data["images"] = _split_images_cell(str(data["images"]))
            if data.get("pathology") == "":
                data.pop("pathology")
            yield RawExam(i, src, data)


def _iter_parquet(path: Path) -> Iterator[RawExam]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataFormatError(f"{path}: cannot read Parquet manifest ({exc})") from exc
    i = 0
    for batch in pf.iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            i += 1
            yield RawExam(i, f"{path.name}:row {i}", {k: v for k, v in rec.items() if v is not None})


def _iter_folder(root: Path) -> Iterator[RawExam]:
    try:
        entries = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise DataFormatError(f"cannot list archive folder {root}: {exc}") from exc
    for i, name in enumerate(entries, start=1):
        exam_dir = root / name
        files = sorted(f.name for f in os.scandir(exam_dir) if not f.name.startswith("."))
        report_bytes = (exam_dir / REPORT_FILE).read_bytes() if REPORT_FILE in files else None
        pathology_bytes = (exam_dir / PATHOLOGY_FILE).read_bytes() if PATHOLOGY_FILE in files else None
        images = [f"{name}/{f}" for f in files if f not in (REPORT_FILE, PATHOLOGY_FILE)]
        yield RawExam(i, f"{name}/", {"exam_id": name, "images": images}, report_bytes=report_bytes,
                      pathology_bytes=pathology_bytes, folder=True)


def decode_report(data: bytes) -> tuple[str | None, str]:
    """Decode report-file bytes: UTF-8 (BOM allowed) first, then GB18030 (a superset of GBK/GB2312).

    Returns:
        ``(text, encoding)``; ``text`` is None when neither decodes.
    """
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc), "utf-8" if enc == "utf-8-sig" else enc
        except UnicodeDecodeError:
            continue
    return None, ""
