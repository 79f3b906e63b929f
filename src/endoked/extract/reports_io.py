"""Reading report rows from JSON Lines (tolerating bad lines and mixed encodings) or Parquet, and
writing label files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from endoked.errors import DataFormatError
from endoked.io import read_parquet


def _decode(raw: bytes) -> tuple[str | None, str]:
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return None, ""


def iter_report_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a report file, one per input line (JSONL) or table row (Parquet).

    A JSONL line that is not UTF-8 is decoded as GB18030 (the usual legacy encoding of Chinese
    reports; the row gets ``encoding: "gb18030"``); a line that decodes as neither, is not JSON or is
    not an object yields a row with ``id`` ``"line-<n>"`` and an ``error`` instead of stopping the run.

    Raises:
        DataFormatError: the file does not exist or has an unsupported suffix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"report file not found: {path}")
    if path.suffix.lower() == ".parquet":
        yield from read_parquet(path).to_pylist()
        return
    if path.suffix.lower() not in (".jsonl", ".json", ".ndjson", ".txt"):
        raise DataFormatError(f"report file {path} must be JSON Lines (.jsonl) or Parquet (.parquet)")
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            line, enc = _decode(raw)
            if line is None:
                yield {"id": f"line-{n}", "error": f"line {n} of {path.name} is neither UTF-8 nor GB18030 text"}
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {"id": f"line-{n}", "error": f"line {n} of {path.name} is not valid JSON ({exc.msg})"}
                continue
            if not isinstance(row, dict):
                yield {"id": f"line-{n}", "error": f"line {n} of {path.name} is not a JSON object"}
                continue
            if "id" not in row and "exam_id" not in row:
                yield {"id": f"line-{n}", "error": f"line {n} of {path.name} has no 'id' or 'exam_id'"}
                continue
            if enc != "utf-8":
                row["encoding"] = enc
            yield row
