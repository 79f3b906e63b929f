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
from endoked.safe_read import UnsafeFileError, display_name, open_regular_file, read_regular_file

MANIFEST_NAMES = ("manifest.jsonl", "manifest.ndjson", "manifest.csv", "manifest.parquet")
REPORT_FILE = "report.txt"
PATHOLOGY_FILE = "pathology.txt"
DEFAULT_MAX_REPORT_FILE_BYTES = 16_000_000


@dataclass
class RawExam:
    """One archive row before validation.

    Attributes:
        row: 1-based row number (manifest line / CSV record / Parquet row / folder index).
        source: human-readable location, e.g. ``manifest.jsonl:12`` or ``E0001/``.
        data: the row's fields; ``None`` when the row could not be parsed (see ``parse_error``).
        report_bytes: folder layout only: raw bytes of report.txt (decoded during validation).
        pathology_bytes: folder layout only: raw bytes of pathology.txt.
        read_reject: folder layout only: ``(code, message)`` when report.txt or pathology.txt was refused
            by the safe reader (a symlink out of the archive, a FIFO, a device, a directory, too large).
    """

    row: int
    source: str
    data: dict[str, Any] | None
    parse_error: str | None = None
    parse_code: str = "bad_row"
    report_bytes: bytes | None = None
    pathology_bytes: bytes | None = None
    folder: bool = False
    read_reject: tuple[str, str] | None = None
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
    if not p.is_file() and not p.is_dir():
        raise DataFormatError(f"archive {display_name(p)} is neither a regular file nor a folder")
    if p.is_file():
        suffix = p.suffix.lower()
        kind = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(
            suffix
        )
        if kind is None:
            raise DataFormatError(f"{p}: unknown manifest type {suffix!r}; use .jsonl, .csv or .parquet")
        return Archive(root=p.parent.resolve(), kind=kind, manifest=p.resolve())
    for name in MANIFEST_NAMES:
        if (p / name).is_file():
            return locate_archive(p / name)
    return Archive(root=p.resolve(), kind="folder", manifest=None)


def iter_archive(archive: Archive, max_report_file_bytes: int = DEFAULT_MAX_REPORT_FILE_BYTES) -> Iterator[RawExam]:
    """Yield the archive's rows in order; folder-layout report files above ``max_report_file_bytes`` are
    refused unread (the row carries a ``read_reject``)."""
    if archive.kind == "jsonl":
        yield from _iter_jsonl(archive.manifest)  # type: ignore[arg-type]
    elif archive.kind == "csv":
        yield from _iter_csv(archive.manifest)  # type: ignore[arg-type]
    elif archive.kind == "parquet":
        yield from _iter_parquet(archive.manifest)  # type: ignore[arg-type]
    else:
        yield from _iter_folder(archive.root, max_report_file_bytes)


def _open_manifest(path: Path) -> Any:
    try:
        return open_regular_file(path, what="manifest")
    except UnsafeFileError as exc:
        raise DataFormatError(str(exc)) from None


def _iter_jsonl(path: Path) -> Iterator[RawExam]:
    name = path.name
    physical = 0
    with _open_manifest(path) as fh:
        for i, raw in enumerate(fh, start=1):
            physical = i
            if i == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark is not part of the first record
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
            except RecursionError:
                yield RawExam(i, src, None, "invalid JSON (nested too deeply)", "bad_json")
                continue
            if not isinstance(obj, dict):
                yield RawExam(i, src, None, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield RawExam(i, src, obj)
    if physical == 0:
        raise DataFormatError(f"{path}: manifest is empty (no rows)")


def _split_images_cell(cell: str) -> Any:
    cell = cell.strip()
    if not cell:
        return []
    if cell.startswith("["):
        try:
            return json.loads(cell)
        except (json.JSONDecodeError, RecursionError):
            return cell  # left as a string: validation reports bad_images_field
    return [part.strip() for part in cell.split(";") if part.strip()]


def _csv_lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """Physical lines of ``path`` as ``(line number, text, is UTF-8)``; a line that is not UTF-8 is decoded
    with ``surrogateescape`` so the CSV parser still sees its delimiters and the record can be rejected alone."""
    with _open_manifest(path) as fh:
        for n, raw in enumerate(fh, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield n, raw.decode("utf-8"), True
            except UnicodeDecodeError:
                yield n, raw.decode("utf-8", errors="surrogateescape"), False


def _csv_records(path: Path) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
    """Every CSV record as ``(first line, last line, fields, error)``; each physical line belongs to exactly one
    record. A quote left open to the end of the file is reported on its own line and parsing restarts on the
    line after it, so the rows it would have swallowed are still read."""
    lines = list(_csv_lines(path))  # line texts only; records are parsed lazily below
    pos = 0
    while pos < len(lines):
        consumed: list[int] = []

        def feed(start: int = pos, used: list[int] = consumed) -> Iterator[str]:
            for j in range(start, len(lines)):
                used.append(j)
                yield lines[j][1]

        reader = csv.reader(feed(), strict=True)
        while True:
            mark = len(consumed)
            try:
                fields = next(reader)
            except StopIteration:
                pos = len(lines)
                break
            except csv.Error as exc:
                first = consumed[mark] if mark < len(consumed) else len(lines) - 1
                if "unexpected end of data" in str(exc) or "newline inside string" in str(exc):
                    msg = "unclosed quote: the quoted field runs to the end of the file"
                else:
                    msg = f"unreadable CSV record ({exc})"
                yield lines[first][0], lines[first][0], None, msg
                pos = first + 1
                break
            span = consumed[mark:]
            if not span:
                continue
            bad = [lines[j][0] for j in span if not lines[j][2]]
            first_no, last_no = lines[span[0]][0], lines[span[-1]][0]
            if bad:
                yield first_no, last_no, None, f"line {bad[0]} is not UTF-8"
            else:
                yield first_no, last_no, fields, None


def _iter_csv(path: Path) -> Iterator[RawExam]:
    csv.field_size_limit(sys.maxsize)
    records = _csv_records(path)
    header: list[str] | None = None
    for _first, _last, fields, err in records:
        if err is not None:
            raise DataFormatError(f"{path}: header row: {err}")
        if fields:
            header = fields
            break
    if header is None:
        raise DataFormatError(f"{path}: manifest is empty (no header row)")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataFormatError(f"{path}: header names column(s) {dupes} more than once")
    i = 1
    for first, last, fields, err in records:
        if fields == [] and err is None:
            continue  # blank line
        i += 1
        src = f"{path.name}:line {first}" if first == last else f"{path.name}:lines {first}-{last}"
        if err is not None:
            yield RawExam(i, src, None, err)
            continue
        assert fields is not None
        if len(fields) > len(header):
            yield RawExam(i, src, None, "record has more fields than the header")
            continue
        data: dict[str, Any] = dict(zip(header, fields, strict=False))
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


def _read_member(path: Path, root: Path, max_bytes: int, what: str) -> tuple[bytes | None, tuple[str, str] | None]:
    try:
        return read_regular_file(path, root=root, max_bytes=max_bytes, what=what), None
    except UnsafeFileError as exc:
        code = {"file_too_large": "report_too_large", "missing_file": "missing_report"}.get(
            exc.code, "report_unreadable"
        )
        return None, (code, str(exc))


def _iter_folder(root: Path, max_report_file_bytes: int = DEFAULT_MAX_REPORT_FILE_BYTES) -> Iterator[RawExam]:
    try:
        entries = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise DataFormatError(f"cannot list archive folder {root}: {exc}") from exc
    for i, name in enumerate(entries, start=1):
        exam_dir = root / name
        try:
            files = sorted(f.name for f in os.scandir(exam_dir) if not f.name.startswith("."))
        except OSError as exc:
            yield RawExam(
                i,
                f"{display_name(name)}/",
                {"exam_id": name, "images": []},
                folder=True,
                read_reject=(
                    "report_unreadable",
                    f"cannot list exam folder {display_name(exam_dir)}: {exc.strerror or exc}",
                ),
            )
            continue
        report_bytes = pathology_bytes = None
        read_reject: tuple[str, str] | None = None
        if REPORT_FILE in files:
            report_bytes, read_reject = _read_member(exam_dir / REPORT_FILE, root, max_report_file_bytes, "report file")
        if PATHOLOGY_FILE in files and read_reject is None:
            pathology_bytes, read_reject = _read_member(
                exam_dir / PATHOLOGY_FILE, root, max_report_file_bytes, "pathology file"
            )
        images = [f"{name}/{f}" for f in files if f not in (REPORT_FILE, PATHOLOGY_FILE)]
        yield RawExam(
            i,
            f"{display_name(name)}/",
            {"exam_id": name, "images": images},
            report_bytes=report_bytes,
            pathology_bytes=pathology_bytes,
            folder=True,
            read_reject=read_reject,
        )


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
